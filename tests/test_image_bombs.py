"""Decoding bombs: images too large for memory are refused from their header, naming node and input."""
from __future__ import annotations

import resource
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from imagetune.graph_runtime import ExecutionContext, Runtime
from imagetune.graph_runtime.errors import NodeExecutionError, NodeInputError
from imagetune.nodes import default_registry, image_io
from imagetune.ops import image as image_ops


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, *extra: bytes, rows: int = 1) -> bytes:
    """An 8-bit RGB PNG header of any size, with only ``rows`` rows of (black) pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\0" * (rows * (1 + 3 * width)), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + b"".join(extra) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def actl(frames: int) -> bytes:
    return chunk(b"acTL", struct.pack(">II", frames, 0))


@pytest.fixture()
def no_decoding(monkeypatch):
    """Fail the test if any pixel gets decoded: the refusal must come from the header alone."""
    def decode(*_):
        raise AssertionError("pixels were decoded before the size was checked")

    monkeypatch.setattr(image_ops, "pil_to_array", decode)  # image_io imports it when it decodes


def load(tmp_path, name, data):
    (tmp_path / name).write_bytes(data)
    return image_io.load_image_file(tmp_path / name)


@pytest.mark.parametrize("side", [30_000, 12_000, 8193 * 2])
def test_a_huge_png_of_a_few_kb_is_refused_before_decoding(tmp_path, no_decoding, side):
    data = png(side, side)
    assert len(data) < 40_000
    with pytest.raises(NodeInputError) as caught:
        load(tmp_path, "big.png", data)
    assert caught.value.field == "image" and "too large" in str(caught.value) and "big.png" in str(caught.value)


def test_an_animated_png_of_many_big_frames_is_refused_from_its_header(tmp_path, no_decoding):
    # the bomb: a 4000² canvas with 300 frames (73 KB on disk, 7 GB decoded)
    with pytest.raises(NodeInputError) as caught:
        load(tmp_path, "anim.png", png(4000, 4000, actl(300)))
    assert "frames of 4000 x 4000" in str(caught.value)  # 300 + the default image


def test_too_many_tiny_frames_are_refused(tmp_path, no_decoding):
    with pytest.raises(NodeInputError, match="frames; expected at most"):
        load(tmp_path, "many.png", png(2, 2, actl(image_io.MAX_LOAD_FRAMES + 1)))


def test_the_limits_themselves_load(tmp_path):
    assert image_io.size_problem(8192, 8192, 1) is None
    assert image_io.size_problem(8192, 8193, 1) is not None
    assert image_io.size_problem(1024, 1024, 64) is None and image_io.size_problem(1024, 1024, 65) is not None
    frames = [Image.new("RGB", (16, 16), (i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "a.png", save_all=True, append_images=frames[1:])
    image, mask = image_io.load_image_file(tmp_path / "a.png")
    assert image.shape == (3, 16, 16, 3) and mask.shape == (3, 16, 16)


def test_a_large_allowed_image_loads_within_bounded_memory(tmp_path):
    Image.new("RGB", (4096, 4096), (200, 100, 50)).save(tmp_path / "l.png", compress_level=1)
    image, _ = image_io.load_image_file(tmp_path / "l.png")
    assert image.shape == (1, 4096, 4096, 3) and float(image[0, 0, 0, 0]) == pytest.approx(200 / 255)


@pytest.mark.parametrize("data", [
    png(8, 8)[:-20],                                                # cut short
    png(8, 8).replace(b"IDAT", b"IDAX"),                           # no image data, CRC wrong
    png(8, 8, chunk(b"zTXt", b"k\0\0" + zlib.compress(b"a" * 50_000_000))),  # a text-chunk bomb
    b"\x89PNG\r\n\x1a\n" + b"\0" * 40,
], ids=["truncated", "bad-chunk", "text-bomb", "garbage"])
def test_damaged_files_are_input_errors_not_crashes(tmp_path, data):
    with pytest.raises(NodeInputError) as caught:
        load(tmp_path, "d.png", data)
    assert caught.value.field == "image"


def test_the_run_error_names_the_node_and_input(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "big.png").write_bytes(png(20_000, 20_000))
    ctx = ExecutionContext(device="cpu", input_dir=tmp_path / "in", output_dir=tmp_path / "out", models_dirs=[])
    workflow = {"7": {"class_type": "LoadImage", "inputs": {"image": "big.png"}},
                "8": {"class_type": "PreviewImage", "inputs": {"images": ["7", 0]}}}
    with pytest.raises(NodeExecutionError) as caught:
        Runtime(default_registry()).run(workflow, ctx=ctx)
    message = str(caught.value)
    assert "node 7 (LoadImage)" in message and "image: big.png is too large to load" in message
    assert "400,000,000 pixels per frame" in message
