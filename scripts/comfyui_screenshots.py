"""Screenshots of the pack in ComfyUI's real front end, taken in headless Chromium, for docs/comfyui.md.

    <ComfyUI's python> -m pip install playwright       # the Python package only: it drives the system Chromium
    <ComfyUI's python> scripts/comfyui_screenshots.py --comfyui /path/to/ComfyUI [--chromium /usr/bin/chromium]

Starts a throwaway ComfyUI with this pack (scripts/comfyui_server.py, folder name ``ImageTune`` as
the README's install steps use), opens its front end, and writes:

- docs/images/comfyui-templates.png: the templates dialog on the pack's own templates, with the
  thumbnails ComfyUI serves (scripts/make_thumbnails.py makes them);
- docs/images/comfyui-default-workflow.png: the text-to-image template picked from that dialog,
  in the canvas after it ran in ComfyUI (the save node shows its output).

Everything happens as a user would do it: the dialog opens through the front end's own
"Browse Templates" command, the pack's entry and the card are clicked, the run is queued through
the front end's own "Queue" command.
"""
from __future__ import annotations

import argparse
import json
import runpy
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
PACK_FOLDER = "ImageTune"
TEMPLATE = "imagetune-text-to-image"
VIEWPORT = {"width": 1440, "height": 960}
#: wide enough that the whole graph, fitted to the view, stays readable
CANVAS_VIEWPORT = {"width": 2400, "height": 760}
#: a fresh ComfyUI's user settings, less the first-run tour and the minimap over the canvas
SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Locale": "en", "Comfy.Minimap.Visible": False,
            "LiteGraph.Canvas.LowQualityRenderingZoomThreshold": 0.3}  # text stays drawn in the fitted view


def open_front_end(page, url: str) -> None:
    """Load the front end and wait until its app and graph exist and the node definitions are in."""
    page.goto(url)
    page.wait_for_function("() => window.app && window.app.graph && window.app.extensionManager"
                           " && LiteGraph.registered_node_types['ImageTuneGenerate']", timeout=180_000)
    page.wait_for_timeout(1500)  # the first canvas frames and toasts


def run_command(page, command: str) -> None:
    """Run one of the front end's own commands, as its menu and keybindings do."""
    page.evaluate("(id) => window.app.extensionManager.command.execute(id)", command)


def shoot_templates(page, out: Path) -> None:
    """Open Browse Templates, pick the pack's entry, wait for its thumbnails, screenshot the dialog."""
    run_command(page, "Comfy.BrowseTemplates")
    entry = page.locator(f".p-dialog [role=option][aria-label='{PACK_FOLDER}']")  # under "Custom Nodes"
    entry.scroll_into_view_if_needed(timeout=60_000)
    entry.click()
    # the cards' images: LazyImage fetches /api/workflow_templates/<pack>/<name>.jpg into a blob URL
    names = sorted(p.stem for p in (ROOT / "workflows").glob("*.json"))
    page.wait_for_function(
        "(names) => names.every(n => { const i = document.querySelector(`.p-dialog img[alt='${n}']`);"
        " return i && i.complete && i.naturalWidth > 0 })", arg=names, timeout=60_000)
    page.mouse.move(0, 0)  # no hover zoom on a card
    page.wait_for_timeout(1200)
    page.locator(".p-dialog").first.screenshot(path=str(out))


def shoot_default_workflow(page, server, out: Path) -> None:
    """Pick the text-to-image card, queue it through the front end, screenshot the canvas when done."""
    page.locator(f"[data-testid='template-workflow-{TEMPLATE}']").first.click()
    page.wait_for_function("() => window.app.graph.nodes.some(n => n.type === 'ImageTuneGenerate')", timeout=60_000)
    before = set(server.get("/history"))
    run_command(page, "Comfy.QueuePrompt")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        done = [e for k, e in server.get("/history").items() if k not in before and e["status"].get("completed")]
        if done:
            break
        time.sleep(1)
    else:
        raise SystemExit(f"the workflow did not finish in ComfyUI:\n{server.log_tail()}")
    page.set_viewport_size(CANVAS_VIEWPORT)
    page.wait_for_timeout(500)
    run_command(page, "Comfy.Canvas.FitView")
    # the save node loads its output image when it is drawn, so only once it is in view
    page.wait_for_function("() => window.app.graph.nodes.some(n => n.type === 'ImageTuneSaveImage'"
                           " && n.imgs && n.imgs.length && n.imgs[0].complete)", timeout=60_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(out))


def main() -> None:
    server_module = SimpleNamespace(**runpy.run_path(str(ROOT / "scripts" / "comfyui_server.py")))
    parser = server_module.comfyui_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium (or Chrome) to drive")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    IMAGES.mkdir(parents=True, exist_ok=True)
    with server_module.running(args.comfyui, args.python, PACK_FOLDER) as server:
        settings = server.base / "user" / "default" / "comfy.settings.json"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(json.dumps(SETTINGS))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
            open_front_end(page, server.url)
            shoot_templates(page, IMAGES / "comfyui-templates.png")
            shoot_default_workflow(page, server, IMAGES / "comfyui-default-workflow.png")
            browser.close()
    print(f"wrote {IMAGES / 'comfyui-templates.png'} and {IMAGES / 'comfyui-default-workflow.png'}")


if __name__ == "__main__":
    main()
