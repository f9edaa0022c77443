"""Image op speed and memory on the CPU: each op as its node runs it, against the best peer library, same process.

Every implementation starts from and returns a ComfyUI IMAGE tensor (float32 [B,H,W,C] in 0..1), so a
peer's conversions (to 8-bit, to PIL, channel splits, back to a tensor) count on its side, done the
fastest way the peer allows. Peers: PIL, numpy/scipy, scikit-image, kornia and OpenCV. A peer whose
result is not ours within the op's tolerance (OpenCV's bicubic uses a = -0.75, its Lanczos does not
antialias when shrinking, ...) is timed and shown, marked "≠" ("✗" when its output is not even finite,
as scikit-image's unsharp_mask beside numpy 2.4 here), but is not the op: the ratio is against
the fastest peer that computes the same image. Times are medians of rounds that run ours and every
peer in turn (so a busy moment hits all of them). A peer more than 20x slower than ours at a size is
not run at larger sizes (it cannot be the best). Peak memory: the resident set's peak above what was
allocated before the call (input included there, output counted), over the input and output together.

Run: nice -n 10 .venv/bin/python bench/image_ops.py [--threads 1,2] [--sizes 512,2048] [--batches 1,4]
     [--only TEXT] [--repeats N] [--upscale]      (scikit-image: pip install -e ".[bench]")
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import os
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

from _pack import load_pack  # bench/ is on sys.path when a script here runs

import cv2
import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

Fn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Op:
    """One benchmark row: our node-level call, its peers, and how close a peer must be to count as the same op:
    at most ``levels`` 8-bit levels from ours on all but ``1 - quantile`` of the values, and ``mean`` on average
    (each op's tolerance against its reference in the tests)."""

    name: str
    ours: Fn
    peers: dict[str, Fn]
    levels: float = 0.01
    quantile: float = 1.0
    mean: float = 0.01
    max_side: int = 2048
    skipped: set = field(default_factory=set)


# ---- conversions a peer needs, the fastest way (OpenCV's) ----

def u8_arrays(image: torch.Tensor) -> list[np.ndarray]:
    """IMAGE -> uint8 [H,W,C] arrays (rounded)."""
    return [cv2.convertScaleAbs(a, alpha=255.0) for a in image.numpy()]


def from_u8(arrays: list[np.ndarray]) -> torch.Tensor:
    """uint8 [H,W,C] arrays -> IMAGE: numpy's division into numpy's memory (huge pages: a torch.empty output
    page-faults 4 KiB at a time), faster than OpenCV's lookup table at 512² and as fast at 2048²."""
    out = np.empty((len(arrays), *arrays[0].shape), np.float32)
    for a, o in zip(arrays, out):
        np.divide(a, np.float32(255), out=o, dtype=np.float32)
    return torch.from_numpy(out)


def from_float(arrays: list[np.ndarray]) -> torch.Tensor:
    """float [H,W,C] arrays -> IMAGE (float32)."""
    return torch.from_numpy(np.stack(arrays).astype(np.float32, copy=False))


def pil_op(fn) -> Fn:
    """A PIL op as a node: IMAGE -> 8-bit PIL images -> op -> IMAGE."""
    return lambda image: from_u8([np.asarray(fn(Image.fromarray(a))) for a in u8_arrays(image)])


def u8_op(fn) -> Fn:
    """An OpenCV/numpy op on 8-bit arrays as a node."""
    return lambda image: from_u8([fn(a) for a in u8_arrays(image)])


def float_op(fn) -> Fn:
    """An op on float32 [H,W,C] arrays (zero-copy views of the IMAGE) as a node."""
    return lambda image: from_float([fn(a) for a in image.numpy()])


def pil_float_resize(filter_):
    """PIL's float ("F") resize per channel: PIL's exact filter without 8-bit rounding."""
    def run(image: torch.Tensor, size) -> torch.Tensor:
        return from_float([np.clip(np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(a[..., c])).resize(size, filter_))
                                             for c in range(a.shape[-1])], -1), 0, 1) for a in image.numpy()])
    return run


def kornia_op(fn) -> Fn:
    """A kornia op on the [B,C,H,W] layout it expects (a contiguous copy in and out)."""
    return lambda image: fn(image.permute(0, 3, 1, 2).contiguous()).permute(0, 2, 3, 1).contiguous()


# ---- peers written for the ops the libraries lack as one call ----

def cv2_unsharp(a: np.ndarray, sigma=2.0, amount=1.5, threshold=3) -> np.ndarray:
    """The usual OpenCV unsharp mask: Gaussian blur, detail above the threshold added back."""
    detail = a - cv2.GaussianBlur(a, (0, 0), sigma)
    return np.clip(a + amount * detail * (np.abs(detail) > threshold / 255), 0, 1)


def cv2_adjust(a: np.ndarray, b=1.1, c=1.2, s=0.9) -> np.ndarray:
    """PIL's three enhancers written with OpenCV on float32."""
    out = np.clip(a * b, 0, 1)
    mean = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).mean()
    out = np.clip(cv2.addWeighted(out, c, out, 0, mean * (1 - c)), 0, 1)
    grey = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    return np.clip(cv2.addWeighted(out, s, grey, 1 - s, 0), 0, 1)


def cv2_autocontrast(a: np.ndarray, cutoff=1.0) -> np.ndarray:
    """PIL's autocontrast(cutoff) on 8-bit levels with OpenCV histograms and a lookup table."""
    luts = []
    for c in range(3):
        cdf = cv2.calcHist([a], [c], None, [256], [0, 256]).reshape(-1).cumsum()
        cut = cdf[-1] * cutoff / 100
        lo, hi = int(np.argmax(cdf > cut)), int(np.argmax(cdf >= cdf[-1] - cut))
        scale = 255.0 / max(hi - lo, 1)
        luts.append(np.clip((np.arange(256) - lo) * scale + 0.5, 0, 255).astype(np.uint8))
    return cv2.LUT(a, np.stack(luts, -1).reshape(1, 256, 3))


def cv2_clahe(a: np.ndarray, clip=2.0, grid=8) -> np.ndarray:
    """CLAHE on the L of OpenCV's 8-bit CIELAB."""
    lab = cv2.cvtColor(a, cv2.COLOR_RGB2Lab)
    lab[..., 0] = cv2.createCLAHE(clip, (grid, grid)).apply(np.ascontiguousarray(lab[..., 0]))
    return cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)


def numpy_reinhard(content: np.ndarray, style: np.ndarray) -> np.ndarray:
    """The lαβ colour transfer in numpy (float32), per image."""
    m = np.array([[0.3811, 0.5783, 0.0402], [0.1967, 0.7244, 0.0782], [0.0241, 0.1288, 0.8444]], np.float32)
    rot = (np.diag([3 ** -0.5, 6 ** -0.5, 2 ** -0.5]) @ np.array([[1, 1, 1], [1, 1, -2], [1, -1, 0]])).astype(np.float32)
    fwd = lambda x: np.log10(np.maximum(x.reshape(-1, 3) @ m.T, 1e-3)) @ rot.T  # noqa: E731
    s, t = fwd(content), fwd(style)
    out = (s - s.mean(0)) * (t.std(0) / s.std(0)) + t.mean(0)
    return (10 ** (out @ np.linalg.inv(rot).T) @ np.linalg.inv(m).T).reshape(content.shape)


def numpy_histogram_match(content: np.ndarray, style: np.ndarray) -> np.ndarray:
    """skimage's algorithm (np.unique + np.interp) per channel."""
    out = np.empty(content.shape, np.float32)
    for c in range(content.shape[-1]):
        src, tmpl = content[..., c].ravel(), style[..., c].ravel()
        values, idx, counts = np.unique(src, return_inverse=True, return_counts=True)
        t_values, t_counts = np.unique(tmpl, return_counts=True)
        out[..., c] = np.interp(np.cumsum(counts) / src.size, np.cumsum(t_counts) / tmpl.size, t_values)[idx].reshape(content.shape[:2])
    return out


# ---- inputs ----

def pictures(count: int, size: int, seed: int = 0) -> torch.Tensor:
    """Deterministic photo-like 8-bit RGB pictures as an IMAGE tensor (values level / 255, as loaded from a file)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    arrays = []
    for i in range(count):
        base = np.stack([np.sin(6 * xx + i) * 0.3 + 0.5, yy, ((xx * 9).astype(int) + (yy * 7).astype(int)) % 2 * 0.5 + 0.25], -1)
        arrays.append(np.round(np.clip(base + rng.normal(0, 0.04, base.shape), 0, 1) * 255).astype(np.uint8))
    return torch.from_numpy(np.stack(arrays).astype(np.float32) / np.float32(255))


def operations(style_image: torch.Tensor) -> list[Op]:
    """The benchmarked ops with their peers."""
    from imagetune.nodes import enhance as E
    from imagetune.ops import enhance, neural_style, resample, style
    from skimage import exposure, filters
    import kornia
    import scipy.ndimage as ndi

    def node(op):
        return lambda image: E.on_colour(image, op)

    def ours_resize(scale, method):
        def run(image):
            _, h, w, _ = image.shape
            return resample.resize(image.movedim(-1, 1), round(h * scale), round(w * scale), method).clamp_(0, 1).movedim(1, -1).contiguous()
        return run

    def peer_resize(scale, fn):
        return lambda image: fn(image, (round(image.shape[2] * scale), round(image.shape[1] * scale)))

    style_array = style_image[0].numpy()
    style_u8 = cv2.convertScaleAbs(style_array, alpha=255.0)
    style_bchw = style_image.movedim(-1, 1)
    weights = neural_style.style_weights(3)
    return [
        Op("unsharp mask r2 150% t3", node(lambda x: enhance.unsharp_mask(x, 2.0, 1.5, 3)), {
            "PIL UnsharpMask": pil_op(lambda p: p.filter(ImageFilter.UnsharpMask(2, 150, 3))),
            "OpenCV GaussianBlur + threshold": float_op(cv2_unsharp),
            "scikit-image unsharp_mask": float_op(lambda a: filters.unsharp_mask(a, 2, 1.5, channel_axis=-1))},
           levels=1.5, quantile=0.97, mean=0.6),
        Op("brightness+contrast+saturation", node(lambda x: enhance.adjust(x, 1.1, 1.2, 0.9)), {
            "PIL ImageEnhance x3": pil_op(lambda p: ImageEnhance.Color(ImageEnhance.Contrast(ImageEnhance.Brightness(p).enhance(1.1)).enhance(1.2)).enhance(0.9)),
            "OpenCV float32": float_op(cv2_adjust)}, levels=1.51, mean=1.51),
        Op("gamma 2.2", node(lambda x: enhance.adjust(x, gamma=2.2)), {
            "numpy power": float_op(lambda a: np.power(a, np.float32(1 / 2.2))),
            "OpenCV pow": float_op(lambda a: cv2.pow(a, 1 / 2.2)),
            "OpenCV 8-bit LUT": u8_op(lambda a: cv2.LUT(a, np.round((np.arange(256) / 255) ** (1 / 2.2) * 255).astype(np.uint8)))}),
        Op("auto-contrast cutoff 1%", node(lambda x: enhance.auto_contrast(x, 1.0)), {
            "PIL autocontrast": pil_op(lambda p: ImageOps.autocontrast(p, cutoff=1)),
            "OpenCV calcHist + LUT": u8_op(cv2_autocontrast)}, levels=1.0, mean=0.6),
        Op("denoise median 5x5", node(lambda x: enhance.denoise(x, "median", radius=2)), {
            "PIL MedianFilter(5)": pil_op(lambda p: p.filter(ImageFilter.MedianFilter(5))),
            "OpenCV medianBlur 8-bit": u8_op(lambda a: cv2.medianBlur(cv2.copyMakeBorder(a, 2, 2, 2, 2, cv2.BORDER_REFLECT_101), 5)[2:-2, 2:-2]),
            "OpenCV medianBlur float32": float_op(lambda a: cv2.medianBlur(cv2.copyMakeBorder(a, 2, 2, 2, 2, cv2.BORDER_REFLECT_101), 5)[2:-2, 2:-2]),
            "scipy median_filter": float_op(lambda a: ndi.median_filter(a, size=(5, 5, 1), mode="mirror")),
            "kornia median_blur": kornia_op(lambda x: kornia.filters.median_blur(x, 5))}),
        Op("denoise gaussian 5x5", node(lambda x: enhance.denoise(x, "gaussian", radius=2)), {
            "OpenCV GaussianBlur": float_op(lambda a: cv2.GaussianBlur(a, (5, 5), 5 / 3)),
            "scipy gaussian_filter": float_op(lambda a: ndi.gaussian_filter(a, (5 / 3, 5 / 3, 0), mode="mirror", truncate=1.2)),
            "PIL GaussianBlur": pil_op(lambda p: p.filter(ImageFilter.GaussianBlur(5 / 3))),
            "kornia gaussian_blur2d": kornia_op(lambda x: kornia.filters.gaussian_blur2d(x, (5, 5), (5 / 3, 5 / 3)))}),
        Op("denoise bilateral 5x5", node(lambda x: enhance.denoise(x, "bilateral", 0.1, 2)), {
            "OpenCV bilateralFilter float32": float_op(lambda a: cv2.bilateralFilter(a, 5, 0.1, 5 / 3)),
            "OpenCV bilateralFilter 8-bit": u8_op(lambda a: cv2.bilateralFilter(a, 5, 25.5, 5 / 3)),
            "kornia bilateral_blur": kornia_op(lambda x: kornia.filters.bilateral_blur(x, 5, 0.1, (5 / 3, 5 / 3)))},
           levels=0.51, mean=0.1),
        Op("CLAHE 8x8 (on CIELAB L)", node(lambda x: enhance.clahe(x, 2.0, 8)), {
            "OpenCV CLAHE on 8-bit CIELAB": u8_op(cv2_clahe),
            "kornia equalize_clahe on CIELAB": kornia_op(lambda x: kornia.color.lab_to_rgb(torch.cat([kornia.enhance.equalize_clahe(kornia.color.rgb_to_lab(x)[:, :1] / 100, 2.0, (8, 8)) * 100, kornia.color.rgb_to_lab(x)[:, 1:]], 1)).clamp(0, 1)),
            "scikit-image equalize_adapthist": float_op(lambda a: exposure.equalize_adapthist(a, kernel_size=a.shape[0] // 8, clip_limit=0.01))},
           levels=10.0, quantile=0.99, mean=3.0),
        Op("resize x2 bicubic", ours_resize(2, "bicubic"), {
            "PIL resize BICUBIC": peer_resize(2, lambda im, size: pil_op(lambda p: p.resize(size, Image.BICUBIC))(im)),
            "PIL float resize BICUBIC": peer_resize(2, pil_float_resize(Image.BICUBIC)),
            "OpenCV resize INTER_CUBIC": peer_resize(2, lambda im, size: float_op(lambda a: cv2.resize(a, size, interpolation=cv2.INTER_CUBIC))(im))}),
        Op("resize x2 lanczos", ours_resize(2, "lanczos"), {
            "PIL resize LANCZOS": peer_resize(2, lambda im, size: pil_op(lambda p: p.resize(size, Image.LANCZOS))(im)),
            "PIL float resize LANCZOS": peer_resize(2, pil_float_resize(Image.LANCZOS)),
            "OpenCV resize INTER_LANCZOS4": peer_resize(2, lambda im, size: float_op(lambda a: cv2.resize(a, size, interpolation=cv2.INTER_LANCZOS4))(im))}),
        Op("resize /2 lanczos", ours_resize(0.5, "lanczos"), {
            "PIL resize LANCZOS": peer_resize(0.5, lambda im, size: pil_op(lambda p: p.resize(size, Image.LANCZOS))(im)),
            "PIL float resize LANCZOS": peer_resize(0.5, pil_float_resize(Image.LANCZOS)),
            "OpenCV resize INTER_LANCZOS4": peer_resize(0.5, lambda im, size: float_op(lambda a: cv2.resize(a, size, interpolation=cv2.INTER_LANCZOS4))(im)),
            "OpenCV resize INTER_AREA": peer_resize(0.5, lambda im, size: float_op(lambda a: cv2.resize(a, size, interpolation=cv2.INTER_AREA))(im))}),
        Op("Reinhard lαβ transfer", lambda image: style.reinhard_transfer(image.movedim(-1, 1), style_bchw).movedim(1, -1).contiguous(), {
            "numpy lαβ (float32)": float_op(lambda a: numpy_reinhard(a, style_array))}),
        Op("histogram matching, 8-bit values", lambda image: style.histogram_match(image.movedim(-1, 1), style_bchw).movedim(1, -1).contiguous(), {
            "scikit-image match_histograms (8-bit)": lambda image: from_float([exposure.match_histograms(a, style_u8, channel_axis=-1) / 255 for a in u8_arrays(image)]),
            "numpy (skimage's algorithm)": float_op(lambda a: numpy_histogram_match(a, style_array))}),
        Op("histogram matching, float values", lambda image: style.histogram_match(image.movedim(-1, 1), style_bchw).movedim(1, -1).contiguous(), {
            "scikit-image match_histograms": float_op(lambda a: exposure.match_histograms(a, style_array, channel_axis=-1)),
            "numpy (skimage's algorithm)": float_op(lambda a: numpy_histogram_match(a, style_array))}),
        Op("fast neural style (multistyle26)", lambda image: neural_style.stylize_builtin(image.movedim(-1, 1), weights).movedim(1, -1).contiguous(), {
            "onnxruntime": lambda image: torch.cat([torch.from_numpy(onnx_session().run(None, {"image": image[i:i + 1].permute(0, 3, 1, 2).numpy(), "style_weights": weights.numpy()})[0]).permute(0, 2, 3, 1) for i in range(image.shape[0])])},
           levels=0.0255, max_side=512),
    ]


SESSION = []


def onnx_session():
    """onnxruntime on the shipped multistyle26 model, created once, on torch's thread count at the time."""
    if not SESSION:
        import onnxruntime as ort
        from imagetune.ops.neural_style import models_folder

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        SESSION.append(ort.InferenceSession(str(models_folder() / "multistyle26.onnx"), options, providers=["CPUExecutionProvider"]))
    return SESSION[0]


# ---- measuring ----

CLOCK = [time.perf_counter]


def median_times(fns: dict[str, Fn], image: torch.Tensor, repeats: int, budget_s: float) -> dict[str, float]:
    """Median seconds per call of each function, in rounds that run every function once (after a warm-up round).

    Each round runs them in a new order (seeded): a rotation kept every function behind the same neighbour, so
    the peer listed after ours always found the input in the caches ours had just warmed, and ours always ran
    after the slowest peer had flushed them. Rounds go on past ``repeats`` until they have taken MIN_ROUNDS_S
    (at most ``MAX_ROUNDS_FACTOR * repeats`` rounds): seven rounds of a 1 ms op put its median anywhere in
    0.99-1.22x the peer's. From the third round a function over SLOW_FACTOR x ours' median leaves the rounds
    (it cannot be the best peer; its median so far is kept), so fast ops get their rounds without waiting on it."""
    for fn in fns.values():
        fn(image)
    times = {name: [] for name in fns}
    started = time.perf_counter()
    names, order = list(fns), random.Random(0)
    for round_ in range(MAX_ROUNDS_FACTOR * repeats):
        for name in order.sample(names, len(names)):
            fn = fns[name]
            start = CLOCK[0]()
            fn(image)
            times[name].append(CLOCK[0]() - start)
        spent = time.perf_counter() - started
        if round_ >= 2 and (spent > budget_s or (round_ + 1 >= repeats and spent > MIN_ROUNDS_S)):
            break
        if round_ == 2:
            ours = statistics.median(times["ours"])
            names = [name for name in names if statistics.median(times[name]) <= SLOW_FACTOR * ours]
    return {name: statistics.median(t) for name, t in times.items()}


MIN_ROUNDS_S = 2.0
MAX_ROUNDS_FACTOR = 15
SLOW_FACTOR = 20


def same_image(a: torch.Tensor, b: torch.Tensor, op: Op) -> bool:
    """Whether ``a`` is ``b`` within the op's tolerance (8-bit levels: a quantile of |a - b| and its mean)."""
    if a.shape != b.shape or not torch.isfinite(a).all():
        return False
    diff = (a.float() - b.float()).abs().flatten() * 255
    if op.quantile < 1.0:
        spread = float(torch.quantile(diff[:: max(1, diff.numel() // 1_000_000)], op.quantile))
    else:
        spread = float(diff.max())
    return spread <= op.levels and float(diff.mean()) <= op.mean


LIBC = ctypes.CDLL("libc.so.6")


def rss_kib(field_name: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS now, VmHWM the peak since the last reset)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field_name}")


def peak_mib(fn: Fn, image: torch.Tensor) -> tuple[float, int]:
    """Peak resident memory of one call above the memory in use before it (MiB), and the output's bytes."""
    gc.collect()
    # buffers from 128 KiB up come from (and go back to) the OS while measuring, so the peak is the call's own;
    # afterwards glibc's usual ceiling (32 MiB) again, so timings see the allocator a node sees
    LIBC.mallopt(M_MMAP_THRESHOLD, 1 << 17)
    LIBC.malloc_trim(0)
    before = rss_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM to the current resident set
    out = fn(image)
    peak = rss_kib("VmHWM") - before
    out_bytes = out.numel() * out.element_size()
    del out
    LIBC.mallopt(M_MMAP_THRESHOLD, 32 << 20)
    return peak / 1024, out_bytes


M_MMAP_THRESHOLD = -3


def run_cell(op: Op, size: int, batch: int, threads: int, repeats: int, style_image) -> str | None:
    """One table row: ours, the best peer that computes the same image, the ratio, the others, memory."""
    image = pictures(batch, size)
    if op.name.startswith("histogram matching, float"):
        image = (image + torch.rand(image.shape, generator=torch.Generator().manual_seed(1)) * 0.004).clamp_(0, 1)
    peers = {name: fn for name, fn in op.peers.items() if name not in op.skipped}
    ours = op.ours(image)
    results = {name: fn(image) for name, fn in peers.items()}
    broken = {name for name, result in results.items() if not torch.isfinite(result).all()}
    same = {name: same_image(result, ours, op) for name, result in results.items()}
    del results
    times = median_times({"ours": op.ours, **peers}, image, repeats, budget_s=20.0)
    t_ours = times.pop("ours")
    for name, t in times.items():  # too slow to matter at larger sizes
        if t > SLOW_FACTOR * t_ours:
            op.skipped.add(name)
    exact = {n: t for n, t in times.items() if same[n]}
    best = min(exact, key=exact.get) if exact else None
    peak, out_bytes = peak_mib(op.ours, image)
    in_out = (image.numel() * image.element_size() + out_bytes) / 2 ** 20
    mark = {n: "✗ " if n in broken else ("≠ " if not same[n] else "") for n in times}
    others = "; ".join(f"{mark[n]}{n} {t_ours / t:.2f}" for n, t in sorted(times.items(), key=lambda kv: kv[1]) if n != best)
    ratio = f"**{t_ours / exact[best]:.2f}**" if best and t_ours / exact[best] > 1.10 else (f"{t_ours / exact[best]:.2f}" if best else "–")
    return (f"| {op.name} | {size}² ×{batch} | {threads} | {t_ours * 1e3:.1f} | {best or '–'} | "
            f"{exact[best] * 1e3 if best else float('nan'):.1f} | {ratio} | {peak:.0f} | {peak / in_out:.2f} | {others} |")


def upscale_rows(device: str) -> None:
    """Real-ESRGAN compact x4 and x4plus in seconds per input megapixel."""
    from imagetune.ops import upscale as U
    print("\n| Real-ESRGAN (fp32) | input | seconds | s per input megapixel |\n|---|---|---:|---:|")
    for name, size in (("RealESRGAN_animevideov3_x4 (compact)", 256), ("RealESRGAN_x4plus", 64)):
        model = U.load_builtin(name).to(device)
        x = torch.rand(1, 3, size, size, device=device)
        model(x)
        start = time.perf_counter()
        model(x)
        t = time.perf_counter() - start
        print(f"| {name} | {size}x{size} | {t:.2f} | {t / (size * size / 1e6):.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default=f"1,{os.cpu_count()}", help="comma-separated thread counts (torch and OpenCV)")
    parser.add_argument("--sizes", default="512,2048")
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--repeats", type=int, default=7, help="rounds per cell at least (more until they take 2 s; fewer when a cell passes 20 s)")
    parser.add_argument("--only", default="", help="run only the ops whose name contains this text")
    parser.add_argument("--upscale", action="store_true", help="also time the Real-ESRGAN models")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: the process's CPU seconds, steadier than wall time on a busy machine, "
                             "and the same thing at one thread (every library then runs in the calling thread)")
    args = parser.parse_args()
    CLOCK[0] = time.process_time if args.clock == "cpu" else time.perf_counter
    LIBC.mallopt(M_MMAP_THRESHOLD, 32 << 20)  # every cell sees the allocator ``peak_mib`` leaves behind, the first too
    load_pack()
    style_image = pictures(1, 512, seed=7).flip(1).contiguous()
    ops = [op for op in operations(style_image) if args.only in op.name]
    print(f"torch {torch.__version__}, OpenCV {cv2.__version__}, numpy {np.__version__}; IMAGE tensors in and out; "
          f"median {args.clock} time of at least {args.repeats} rounds (more until they take {MIN_ROUNDS_S:.0f} s); ratio = ours / best peer computing the same image (bold above 1.10)\n")
    print("| op | input | threads | ours (ms) | best peer | peer (ms) | ratio | peak (MiB) | peak ÷ (in + out) | other peers: ours ÷ theirs (≠ different result, ✗ NaN) |")
    print("|---|---|---:|---:|---|---:|---:|---:|---:|---|")
    with torch.inference_mode():
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            cv2.setNumThreads(threads)
            SESSION.clear()
            for op in ops:
                op.skipped.clear()
                for size in (int(s) for s in args.sizes.split(",")):
                    if size > op.max_side:
                        continue
                    for batch in (int(b) for b in args.batches.split(",")):
                        print(run_cell(op, size, batch, threads, args.repeats, style_image), flush=True)
        if args.upscale:
            upscale_rows("cpu")


if __name__ == "__main__":
    main()
