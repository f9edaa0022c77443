"""Saved outputs survive failures and races: no partial file, no overwrite, a normal file mode."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image

from imagetune.graph_runtime import atomic
from imagetune.nodes.image_io import save_images

# One saving process: waits for a start file so both processes save at the same moment, then
# saves BATCHES batches of 2 images, each tagged (process, index) in its prompt chunk.
SAVER = r"""
import os, sys, time, torch
from imagetune.nodes.image_io import save_images
folder, tag, go, batches = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
torch.manual_seed(int(tag))
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
for b in range(batches):
    images = torch.rand(2, 48, 48, 3)
    found = save_images(images, folder, "same", kind="output", prompt={"proc": tag, "batch": b})
    print(" ".join(f["filename"] for f in found), flush=True)
"""


def start_savers(folder, tags, batches):
    go = folder.parent / "go"
    procs = [subprocess.Popen([sys.executable, "-c", SAVER, str(folder), str(tag), str(go), str(batches)],
                              stdout=subprocess.PIPE, text=True) for tag in tags]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    go.write_text("")
    return procs


def tags_on_disk(folder):
    found = []
    for path in folder.glob("same_*_.png"):
        with Image.open(path) as picture:
            picture.load()  # a partial file fails here
            found.append(json.loads(picture.text["prompt"])["proc"])
    return found


def test_two_processes_saving_one_prefix_keep_every_image(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    procs = start_savers(folder, [1, 2], batches=12)
    reported = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        reported += out.split()
    assert len(reported) == 48 and len(set(reported)) == 48, "two images were given one name"
    assert sorted(p.name for p in folder.iterdir()) == sorted(reported), "a file was lost or left over"
    assert sorted(tags_on_disk(folder)) == ["1"] * 24 + ["2"] * 24, "one run overwrote the other's file"


def test_killed_save_leaves_only_whole_files(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (proc,) = start_savers(folder, [3], batches=200)
    proc.stdout.readline()
    proc.stdout.readline()  # two batches are saved; the kill lands mid-save of a later one
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    visible = tags_on_disk(folder)
    assert len(visible) >= 4 and set(visible) == {"3"}


def test_interrupted_save_keeps_finished_files_and_no_partial(tmp_path, monkeypatch):
    calls = []
    real_fsync = os.fsync

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the third file is being written
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    with pytest.raises(KeyboardInterrupt):
        save_images(torch.rand(4, 8, 8, 3), tmp_path, "cut", kind="output")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut_00001_.png", "cut_00002_.png"]
    for name in ("cut_00001_.png", "cut_00002_.png"):
        Image.open(tmp_path / name).load()


def test_an_existing_file_is_never_replaced(tmp_path):
    (tmp_path / "p_00001_.png").write_bytes(b"first run")
    # next_counter reads the folder before this run's file appears; the claim must still skip it
    path, n = atomic.write_new_bytes(lambda n: tmp_path / f"p_{n:05}_.png", b"second run", 1)
    assert (path.name, n) == ("p_00002_.png", 2)
    assert (tmp_path / "p_00001_.png").read_bytes() == b"first run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p_00001_.png", "p_00002_.png"]


def test_claim_without_hard_links_never_replaces(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise PermissionError(1, "Operation not permitted")  # what FAT and some FUSE mounts answer

    monkeypatch.setattr(atomic.os, "link", no_links)
    (tmp_path / "q_00001_.png").write_bytes(b"first")
    path, _ = atomic.write_new_bytes(lambda n: tmp_path / f"q_{n:05}_.png", b"second", 1)
    assert path.read_bytes() == b"second" and (tmp_path / "q_00001_.png").read_bytes() == b"first"
    assert len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_saved_file_mode_follows_the_umask(tmp_path, umask, mode):
    before = os.umask(umask)
    try:
        (found,) = save_images(torch.rand(1, 4, 4, 3), tmp_path, "m", kind="output")
    finally:
        os.umask(before)
    assert (tmp_path / found["filename"]).stat().st_mode & 0o777 == mode
