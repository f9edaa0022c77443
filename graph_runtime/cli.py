"""The ``imagetune`` command line: run, validate and list nodes."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from . import types as T
from .errors import ExecutionInterrupted, GraphError, NodeExecutionError, ValidationError

EXIT_INVALID = 2
EXIT_FAILED = 3
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="imagetune", description="Run ImageTune node workflows headless.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="validate and run a workflow")
    run.add_argument("workflow", help="workflow file: API or UI JSON, or a PNG with an embedded workflow")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="ID.INPUT=VALUE",
                     help="override one input of one node (repeatable)")
    run.add_argument("--out", type=Path, help="output folder (default ./output or $IMAGETUNE_OUTPUT_DIR)")
    run.add_argument("--input-dir", type=Path, help="input folder for load nodes (default ./input)")
    run.add_argument("--models-dir", type=Path, action="append", default=[],
                     help="extra model folder, searched first (repeatable)")
    run.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    run.add_argument("--threads", type=_positive_int, metavar="N",
                     help="CPU threads for torch (default: torch's choice, one per core); on a shared or "
                          "busy machine 1 is often faster, and several single-thread runs side by side "
                          "make the most of a batch")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--json", action="store_true", help="print the result summary as JSON")
    run.add_argument("--allow-downloads", action="store_true",
                     help="let hub ids in the workflow download from the model hub (default: model folders "
                          "and the local hub cache only; also $IMAGETUNE_ALLOW_DOWNLOADS=1)")
    run.set_defaults(func=cmd_run)

    validate = sub.add_parser("validate", help="check a workflow without running it")
    validate.add_argument("workflow")
    validate.add_argument("--set", dest="overrides", action="append", default=[], metavar="ID.INPUT=VALUE")
    validate.add_argument("--json", action="store_true", help="print errors in ComfyUI's JSON shape")
    validate.set_defaults(func=cmd_validate)

    nodes = sub.add_parser("nodes", help="list the available nodes")
    nodes.add_argument("--json", action="store_true", help="the catalog in ComfyUI's /object_info shape")
    nodes.set_defaults(func=cmd_nodes)

    convert = sub.add_parser("convert", help="write a UI-format workflow or a PNG's workflow in the API format")
    convert.add_argument("workflow", help="UI or API JSON, or a PNG with an embedded workflow")
    convert.add_argument("-o", "--output", type=Path, help="file to write (default: print to stdout)")
    convert.set_defaults(func=cmd_convert)

    for extend in _EXTENSIONS:
        extend(sub)
    return parser


#: functions that add more subcommands: each takes the subparsers object
_EXTENSIONS: list = []


def _add_lit_tune(sub) -> None:
    from ..lit.cli import add_parser  # imports nothing heavy; torch loads when the command runs

    add_parser(sub)


_EXTENSIONS.append(_add_lit_tune)


def _add_sweep(sub) -> None:
    from .sweep_cli import add_parser

    add_parser(sub)


_EXTENSIONS.append(_add_sweep)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text}")
    return value


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``["6.text=a cat"]`` -> ``{"6.text": "a cat"}``."""
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise GraphError(f"--set {item!r}: expected ID.INPUT=VALUE")
        result[key.strip()] = value
    return result


def _runtime():
    from .executor import default_runtime

    return default_runtime()


def cmd_run(args) -> int:
    from .context import ExecutionContext

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.allow_downloads:
        import os

        os.environ["IMAGETUNE_ALLOW_DOWNLOADS"] = "1"  # what the loaders read (ops/model_files.downloads_allowed)
    runtime = _runtime()
    ctx = ExecutionContext()
    if args.device:
        ctx.device = args.device
    if args.out:
        ctx.output_dir = args.out
    if args.input_dir:
        ctx.input_dir = args.input_dir
    ctx.models_dirs = list(args.models_dir) + ctx.models_dirs
    previous = install_sigint(ctx.interrupt_event, "stopping after the current step")
    try:
        # --set changes the API prompt only: an embedded UI graph would show the old values, so
        # saved PNGs then carry the prompt alone (ComfyUI opens that too).
        ui_workflow = None if args.overrides else _ui_workflow(args.workflow)
        result = runtime.run(args.workflow, parse_overrides(args.overrides), ctx=ctx,
                             progress=not args.no_progress, ui_workflow=ui_workflow)
    finally:
        signal.signal(signal.SIGINT, previous)
    saved = [img for ui in result.ui.values() for img in ui.get("images", [])]
    if args.json:
        says = {node_id: ui["text"] for node_id, ui in result.ui.items() if ui.get("text")}
        print(json.dumps({"saved": saved, "says": says, "timings": result.timings, "executed": result.executed,
                          "cached": result.cached, "total_seconds": result.total_seconds}, indent=2))
    else:
        for node_id, seconds in result.timings.items():
            print(f"  node {node_id:>6} {result.class_types[node_id]:<32} {seconds * 1000:9.1f} ms",
                  file=sys.stderr)
        for node_id, ui in result.ui.items():  # what nodes say (an understood prompt, scores, labels)
            for text in ui.get("text", []):
                print(f"  node {node_id:>6} says: {text}", file=sys.stderr)
        for img in saved:
            print(Path(ctx.output_dir) / img.get("subfolder", "") / img["filename"])
    return 0


def _ui_workflow(source) -> dict | None:
    """The UI-format workflow to embed in saved PNGs, when the source file is one or a PNG carries one."""
    try:
        from .workflow import parse_json

        raw = Path(source).read_bytes()
        if raw.startswith(b"\x89PNG"):
            from .interchange import png_text_chunks

            raw = png_text_chunks(raw, str(source)).get("workflow", "")
        data = parse_json(raw, str(source))
    except Exception:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("nodes"), list) else None


def install_sigint(event: threading.Event, first_message: str):
    """First Ctrl-C prints ``first_message`` and sets ``event`` (stop at the next boundary); a second
    one stops at once (KeyboardInterrupt). Returns the previous handler, to restore afterwards."""
    if threading.current_thread() is not threading.main_thread():
        return signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if event.is_set():
            raise KeyboardInterrupt
        print(f"\nimagetune: {first_message} (Ctrl-C again to stop now)", file=sys.stderr)
        event.set()

    return signal.signal(signal.SIGINT, handler)


def cmd_validate(args) -> int:
    runtime = _runtime()
    try:
        plan = runtime.prepare(args.workflow, parse_overrides(args.overrides))
    except ValidationError as exc:
        print(json.dumps(exc.report, indent=2) if args.json else str(exc))
        return EXIT_INVALID
    print(f"valid: {len(plan.order)} nodes to run, outputs {', '.join(plan.outputs)}")
    return 0


def cmd_convert(args) -> int:
    from .workflow import load_workflow

    text = json.dumps(load_workflow(args.workflow), indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_nodes(args) -> int:
    from .comfy_bridge import object_info

    runtime = _runtime()
    classes = sorted(runtime.registry, key=lambda c: (c.category, c.node_id))
    if args.json:
        print(json.dumps(object_info(classes), indent=2, default=list))
        return 0
    for cls in classes:
        print(f"{cls.node_id}  [{cls.category}]  {cls.description.splitlines()[0] if cls.description else ''}")
        for spec in cls.inputs:
            extra = []
            if spec.has_default:
                extra.append(f"default {spec.default!r}")
            if spec.min is not None or spec.max is not None:
                extra.append(f"range {spec.min}..{spec.max}")
            choices = spec.listed_choices() if spec.type == T.COMBO else ()
            if choices:
                extra.append("one of " + ", ".join(choices[:8]) + (f" ... ({len(choices)} in all)" if len(choices) > 8 else ""))
            if spec.open:
                extra.append("or another name")
            opt = " (optional)" if spec.optional else ""
            print(f"    in  {spec.name}: {spec.type}{opt}" + (f"  [{'; '.join(extra)}]" if extra else "")
                  + (f"  {spec.tooltip}" if spec.tooltip else ""))
        for out in cls.outputs:
            print(f"    out {out.name}: {out.type}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``imagetune`` command."""
    _printable_streams()
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C before a run installs its own handler (imports, validation)
        print("imagetune: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _printable_streams() -> None:
    """Let stdout and stderr print any text, writing what they cannot encode as backslash escapes."""
    # a lone surrogate from a workflow, or any non-ASCII text under LANG=C, must not turn an
    # error message into a UnicodeEncodeError
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a closed or detached stream: leave it as it is
                pass


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    # Importing diffusers makes transformers warn that torchvision is missing for CLIP's image
    # processor, which no ImageTune node uses; keep that out of every headless run's output.
    logging.getLogger("transformers.utils.import_utils").setLevel(logging.ERROR)
    try:
        return args.func(args)
    except ValidationError as exc:
        print(f"imagetune: invalid workflow\n{exc}", file=sys.stderr)
        return EXIT_INVALID
    except ExecutionInterrupted as exc:
        print(f"imagetune: {exc}; {len(exc.completed)} node(s) had finished, saved files are kept",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except NodeExecutionError as exc:
        done = ", ".join(exc.completed) or "none"
        print(f"imagetune: {exc}\n  nodes that completed: {done}", file=sys.stderr)
        return EXIT_FAILED
    except GraphError as exc:
        print(f"imagetune: {exc}", file=sys.stderr)
        return EXIT_INVALID
