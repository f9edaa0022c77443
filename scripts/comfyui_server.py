"""A throwaway ComfyUI with this pack: started headless on CPU, with a tiny client for its HTTP API.

Used by tests/test_real_comfyui.py and scripts/comfyui_screenshots.py; also by hand, to look at
the pack in a browser without touching a ComfyUI install:

    python scripts/comfyui_server.py --comfyui /path/to/ComfyUI --python /path/to/ComfyUI/.venv/bin/python

ComfyUI gets a temporary base directory whose custom_nodes/<folder> links to this repository,
an in-memory database and no bytecode writes, so nothing is left in the checkout or here. Only
the standard library: the script runs under any Python, the tests' or ComfyUI's.
"""
from __future__ import annotations

import argparse
import json
import mimetypes
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 600
RUN_SECONDS = 600
#: one HTTP request: /object_info of 500+ nodes takes seconds on a loaded 2-core machine
REQUEST_SECONDS = 120
#: the folder name the pack gets in custom_nodes (dashes and a dot: ComfyUI must cope with both)
PACK_FOLDER = "Image-Tune.pack"


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ComfyServer:
    """A ComfyUI process and a tiny client for its HTTP API."""

    def __init__(self, base: Path, port: int, process: subprocess.Popen, log: Path, pack_folder: str):
        self.base, self.url, self.process, self.log = base, f"http://127.0.0.1:{port}", process, log
        self.pack_folder = pack_folder

    def fetch(self, path: str) -> tuple[int, str, bytes]:
        """GET ``path``: (status, content type, body), also for an error status."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=REQUEST_SECONDS) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Content-Type", ""), exc.read()

    def get(self, path: str):
        """GET ``path`` and decode its JSON; fail on an error status."""
        status, _, body = self.fetch(path)
        assert status == 200, f"GET {path}: {status} {body[:300]!r}"
        return json.loads(body)

    def post(self, path: str, body: dict):
        """POST JSON; (status, decoded answer)."""
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        return self._send(request)

    def upload(self, path: str, field: str, name: str, data: bytes, **fields: str):
        """POST a multipart form with one file (as the front end's upload button does); (status, answer)."""
        boundary = uuid.uuid4().hex
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
                 for key, value in fields.items()]
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
                     f"Content-Type: {kind}\r\n\r\n".encode() + data + b"\r\n")
        request = urllib.request.Request(self.url + path, data=b"".join(parts) + f"--{boundary}--\r\n".encode(),
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        return self._send(request)

    @staticmethod
    def _send(request):
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_SECONDS) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            body = exc.read() or b"{}"
            try:
                return exc.code, json.loads(body)
            except ValueError:
                return exc.code, {"text": body.decode(errors="replace")}

    def queue(self, prompt: dict, workflow: dict | None = None) -> str:
        """POST /prompt and return the prompt id; fail with ComfyUI's validation errors."""
        body = {"prompt": prompt, "client_id": uuid.uuid4().hex}
        if workflow is not None:
            body["extra_data"] = {"extra_pnginfo": {"workflow": workflow}}
        status, answer = self.post("/prompt", body)
        assert status == 200 and not answer.get("node_errors"), f"ComfyUI refused the prompt: {answer}"
        return answer["prompt_id"]

    def wait(self, prompt_id: str) -> dict:
        """Poll /history until the prompt finished; return its history entry."""
        deadline = time.monotonic() + RUN_SECONDS
        while time.monotonic() < deadline:
            entry = self.get(f"/history/{prompt_id}").get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None and (
                    entry["status"]["completed"] or entry["status"].get("status_str") == "error"):
                return entry
            assert self.process.poll() is None, f"ComfyUI exited:\n{self.log_tail()}"
            time.sleep(0.5)
        raise AssertionError(f"prompt {prompt_id} did not finish in {RUN_SECONDS}s\n{self.log_tail()}")

    def run(self, prompt: dict, workflow: dict | None = None) -> dict:
        """Queue ``prompt``, wait for it, and fail unless it succeeded; its history entry."""
        entry = self.wait(self.queue(prompt, workflow))
        assert entry["status"]["status_str"] == "success", \
            f"{json.dumps(entry['status'], indent=1)[:4000]}\n{self.log_tail()}"
        return entry

    def image_files(self, entry: dict) -> list[Path]:
        """The files every output node of a finished prompt reported, checked to exist."""
        files = []
        for output in entry["outputs"].values():
            for image in output.get("images", []):
                assert set(image) >= {"filename", "subfolder", "type"}
                path = self.base / image["type"] / image["subfolder"] / image["filename"]
                assert path.is_file(), f"{path} was reported but not written"
                files.append(path)
        return files

    def log_tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def wait_until_up(self) -> None:
        """Return once /system_stats answers; fail if ComfyUI exits or takes too long."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"ComfyUI exited at startup:\n{self.log_tail()}"
            try:
                self.get("/system_stats")
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(1)
        raise AssertionError(f"ComfyUI did not answer within {STARTUP_SECONDS}s\n{self.log_tail()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def make_base(base: Path, pack_folder: str = PACK_FOLDER) -> None:
    """ComfyUI's folders under ``base``, with custom_nodes/<pack_folder> linking to this repository."""
    for folder in ("custom_nodes", "input", "output", "models", "user", "temp"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    (base / "custom_nodes" / pack_folder).symlink_to(ROOT, target_is_directory=True)


def start(comfy_dir: str | Path, python: str, base: Path, pack_folder: str = PACK_FOLDER,
          umask: int = 0o022, extra_args: tuple[str, ...] = ()) -> ComfyServer:
    """Start ComfyUI on ``base`` (made by make_base) under ``umask`` with ``extra_args`` (ComfyUI's
    command-line options) and wait until it answers."""
    port = free_port()
    log = base / "comfyui.log"
    command = [python, str(Path(comfy_dir) / "main.py"), "--cpu", "--listen", "127.0.0.1", "--port", str(port),
               "--base-directory", str(base), "--disable-auto-launch", "--database-url", "sqlite:///:memory:",
               *extra_args]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    for name in ("IMAGETUNE_OUTPUT_DIR", "IMAGETUNE_INPUT_DIR"):
        env.pop(name, None)
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, cwd=base, stdout=sink, stderr=subprocess.STDOUT, env=env, umask=umask)
    server = ComfyServer(base, port, process, log, pack_folder)
    try:
        server.wait_until_up()
    except BaseException:
        server.stop()
        raise
    return server


@contextmanager
def running(comfy_dir: str | Path, python: str, pack_folder: str = PACK_FOLDER):
    """A ComfyUI on a fresh temporary base directory for the length of the ``with`` block."""
    with tempfile.TemporaryDirectory(prefix="imagetune-comfyui-") as base:
        make_base(Path(base), pack_folder)
        server = start(comfy_dir, python, Path(base), pack_folder)
        try:
            yield server
        finally:
            server.stop()


def comfyui_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add --comfyui (the checkout) and --python (what runs it) to ``parser``; returns it."""
    parser.add_argument("--comfyui", required=True, help="a ComfyUI checkout (0.3.64 or newer)")
    parser.add_argument("--python", default=sys.executable, help="the Python that runs ComfyUI (default: this one)")
    return parser


def main() -> None:
    parser = comfyui_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--folder", default="ImageTune", help="the pack's folder name in custom_nodes")
    args = parser.parse_args()
    with running(args.comfyui, args.python, args.folder) as server:
        print(f"ComfyUI with ImageTune at {server.url} (base {server.base}); Ctrl-C stops it", flush=True)
        try:
            server.process.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
