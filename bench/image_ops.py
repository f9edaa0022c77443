"""Image op speed on CPU: each op on a 512x512 batch of 4 as a ratio to its PIL/numpy baseline, same run.

Two ratios per op: against the library call alone on 8-bit images (PIL) or arrays (numpy), and
against the same call as a node must make it, starting from and returning an IMAGE tensor
(float [B,H,W,C] -> uint8 arrays -> PIL -> op -> float tensor), which is what a PIL-based
ComfyUI node costs. Also Real-ESRGAN compact x4 and x4plus in seconds per input megapixel.
Run: nice -n 10 .venv/bin/python bench/image_ops.py [--threads N] [--device cuda] [--only TEXT]
(prints a Markdown table; CLAHE's baseline needs scikit-image: pip install -e ".[bench]")
"""
from __future__ import annotations

import argparse
import time

from _pack import load_pack  # bench/ is on sys.path when a script here runs

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter, ImageOps



def best_of(fn, repeats: int) -> float:
    """Fastest of ``repeats`` timed calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def synced(fn, device: str):
    """``fn`` followed by a device synchronisation, so GPU timings include the work."""
    if not device.startswith("cuda"):
        return fn
    return lambda: (fn(), torch.cuda.synchronize())


def pictures(count=4, size=512):
    """Deterministic photo-like 8-bit RGB pictures, as PIL images and as a [B,3,H,W] tensor."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    arrays = []
    for i in range(count):
        base = np.stack([np.sin(6 * xx + i) * 0.3 + 0.5, yy, ((xx * 9).astype(int) + (yy * 7).astype(int)) % 2 * 0.5 + 0.25], -1)
        arrays.append((np.clip(base + rng.normal(0, 0.04, base.shape), 0, 1) * 255).astype(np.uint8))
    tensor = torch.from_numpy(np.stack(arrays).astype(np.float32) / 255).permute(0, 3, 1, 2).contiguous()
    return [Image.fromarray(a) for a in arrays], arrays, tensor


def pil_node(op, tensor: torch.Tensor):
    """``op`` on PIL images as a node runs it: IMAGE tensor in, 8-bit PIL in between, IMAGE tensor out."""
    def run():
        arrays = tensor.permute(0, 2, 3, 1).mul(255).round().to(torch.uint8).cpu().numpy()
        results = op([Image.fromarray(a) for a in arrays])
        return torch.from_numpy(np.stack([np.asarray(r) for r in results]).astype(np.float32) / 255)
    return run


def skimage_clahe(arrays):
    """scikit-image's CLAHE (the numpy implementation) on each 8-bit RGB array, 8x8 tiles."""
    from skimage.exposure import equalize_adapthist
    return [equalize_adapthist(a, kernel_size=(a.shape[0] // 8, a.shape[1] // 8), clip_limit=0.01) for a in arrays]


def numpy_reinhard(content: np.ndarray, style: np.ndarray) -> np.ndarray:
    """The lαβ colour transfer in numpy (float64), per image."""
    m = np.array([[0.3811, 0.5783, 0.0402], [0.1967, 0.7244, 0.0782], [0.0241, 0.1288, 0.8444]])
    rot = np.diag([3 ** -0.5, 6 ** -0.5, 2 ** -0.5]) @ np.array([[1, 1, 1], [1, 1, -2], [1, -1, 0]])
    fwd = lambda x: rot @ np.log10(np.maximum(m @ x.reshape(-1, 3).T, 1e-3))  # noqa: E731
    s, t = fwd(content / 255.0), fwd(style / 255.0)
    out = (s - s.mean(1, keepdims=True)) * (t.std(1, keepdims=True) / s.std(1, keepdims=True)) + t.mean(1, keepdims=True)
    return (np.linalg.inv(m) @ 10 ** (np.linalg.inv(rot) @ out)).T.reshape(content.shape)


def numpy_histogram_match(content: np.ndarray, style: np.ndarray) -> np.ndarray:
    out = np.empty(content.shape, np.float64)
    for c in range(3):
        src, tmpl = content[..., c].ravel(), style[..., c].ravel()
        values, idx, counts = np.unique(src, return_inverse=True, return_counts=True)
        t_values, t_counts = np.unique(tmpl, return_counts=True)
        out[..., c] = np.interp(np.cumsum(counts) / src.size, np.cumsum(t_counts) / tmpl.size, t_values)[idx].reshape(content.shape[:2])
    return out


def onnxruntime_session(name: str):
    """The fast-neural-style baseline: onnxruntime on one thread on the shipped model (created once)."""
    if name not in SESSIONS:
        import onnxruntime as ort
        from imagetune.ops.neural_style import models_folder

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        SESSIONS[name] = ort.InferenceSession(str(models_folder() / f"{name}.onnx"), options,
                                              providers=["CPUExecutionProvider"])
    return SESSIONS[name]


SESSIONS = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="where the ImageTune ops run (baselines stay on the CPU)")
    parser.add_argument("--only", default="", help="run only the rows whose name contains this text")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_pack()
    from imagetune.ops import enhance, neural_style, resample, style
    from imagetune.ops import upscale as U

    pil, arrays, batch = pictures()
    style_pil, style_arrays, style_batch = pictures(1)
    style_arr = np.asarray(style_pil[0].rotate(90)).astype(np.float64)
    batch, style_batch = batch.to(args.device), style_batch.to(args.device)
    r = args.repeats
    continuous = enhance.gaussian_box_blur(batch, 0.7)  # off the 8-bit grid, as after any float op
    continuous_arrays = [a.permute(1, 2, 0).double().cpu().numpy() for a in continuous]
    pil_rows = [  # (name, ours, PIL op on a list of PIL images, label)
        ("unsharp mask r2 150% t3", lambda: enhance.unsharp_mask(batch, 2.0, 1.5, 3),
         lambda ims: [p.filter(ImageFilter.UnsharpMask(2, 150, 3)) for p in ims], "PIL UnsharpMask"),
        ("brightness+contrast+saturation", lambda: enhance.adjust(batch, 1.1, 1.2, 0.9),
         lambda ims: [ImageEnhance.Color(ImageEnhance.Contrast(ImageEnhance.Brightness(p).enhance(1.1)).enhance(1.2)).enhance(0.9) for p in ims],
         "PIL ImageEnhance x3"),
        ("auto-contrast cutoff 1%", lambda: enhance.auto_contrast(batch, 1.0),
         lambda ims: [ImageOps.autocontrast(p, cutoff=1) for p in ims], "PIL autocontrast"),
        ("denoise median 5x5", lambda: enhance.denoise(batch, "median", radius=2),
         lambda ims: [p.filter(ImageFilter.MedianFilter(5)) for p in ims], "PIL MedianFilter(5)"),
        ("denoise gaussian 5x5", lambda: enhance.denoise(batch, "gaussian", radius=2),
         lambda ims: [p.filter(ImageFilter.GaussianBlur(5 / 3)) for p in ims], "PIL GaussianBlur"),
        ("denoise bilateral 5x5", lambda: enhance.denoise(batch, "bilateral", 0.1, 2),
         lambda ims: [p.filter(ImageFilter.MedianFilter(5)) for p in ims], "PIL MedianFilter(5) (no bilateral in PIL)"),
        ("resize x2 lanczos", lambda: resample.resize(batch, 1024, 1024, "lanczos"),
         lambda ims: [p.resize((1024, 1024), Image.LANCZOS) for p in ims], "PIL resize LANCZOS"),
        ("resize x2 bicubic", lambda: resample.resize(batch, 1024, 1024, "bicubic"),
         lambda ims: [p.resize((1024, 1024), Image.BICUBIC) for p in ims], "PIL resize BICUBIC"),
        ("resize /2 lanczos", lambda: resample.resize(batch, 256, 256, "lanczos"),
         lambda ims: [p.resize((256, 256), Image.LANCZOS) for p in ims], "PIL resize LANCZOS"),
    ]
    numpy_rows = [  # (name, ours, numpy baseline on arrays, label)
        ("gamma 2.2", lambda: enhance.adjust(batch, gamma=2.2),
         lambda: [np.power(a / 255.0, 1 / 2.2) for a in arrays], "numpy power"),
        ("CLAHE 8x8 (ours on CIELAB L)", lambda: enhance.clahe(batch, 2.0, 8),
         lambda: skimage_clahe(arrays), "scikit-image equalize_adapthist (on HSV V)"),
        ("Reinhard lαβ transfer", lambda: style.reinhard_transfer(batch, style_batch),
         lambda: [numpy_reinhard(a.astype(np.float64), style_arr) for a in arrays], "numpy lαβ"),
        ("histogram matching, 8-bit values", lambda: style.histogram_match(batch, style_batch),
         lambda: [numpy_histogram_match(a, style_arr) for a in arrays], "numpy (skimage's algorithm)"),
        ("histogram matching, float values", lambda: style.histogram_match(continuous, style_batch),
         lambda: [numpy_histogram_match(a, style_arr) for a in continuous_arrays], "numpy (skimage's algorithm)"),
        ("fast neural style (ONNX graph in torch)", lambda: neural_style.stylize_builtin(batch, neural_style.style_weights(3)),
         lambda: [onnxruntime_session("multistyle26").run(None, {"image": batch[i:i + 1].cpu().numpy(), "style_weights": neural_style.style_weights(3).numpy()}) for i in range(4)],
         "onnxruntime on numpy directly (1 thread)"),
    ]
    print(f"torch {torch.__version__}, {args.threads} threads, ops on {args.device}, batch of 4 x 512x512 RGB, best of {r}\n")
    print("| op | ImageTune (s) | baseline (s) | ratio | baseline as a node (s) | ratio | baseline |")
    print("|---|---:|---:|---:|---:|---:|---|")
    with torch.inference_mode():
        for name, ours, op, label in pil_rows:
            if args.only and args.only not in name:
                continue
            t_ours = best_of(synced(ours, args.device), r)
            t_base, t_node = best_of(lambda: op(pil), r), best_of(pil_node(op, batch), r)
            print(f"| {name} | {t_ours:.3f} | {t_base:.3f} | {t_ours / t_base:.2f} | {t_node:.3f} | "
                  f"{t_ours / t_node:.2f} | {label} |", flush=True)
        for name, ours, base, label in numpy_rows:
            if args.only and args.only not in name:
                continue
            t_ours, t_base = best_of(synced(ours, args.device), r), best_of(base, r)
            print(f"| {name} | {t_ours:.3f} | {t_base:.3f} | {t_ours / t_base:.2f} | | | {label} |", flush=True)
        print("\n| Real-ESRGAN (spandrel, fp32) | input | seconds | s per input megapixel | s per output megapixel |")
        print("|---|---|---:|---:|---:|")
        for name, size in (("RealESRGAN_animevideov3_x4 (compact)", 256), ("RealESRGAN_x4plus", 64)):
            if args.only and args.only not in name:
                continue
            model = U.load_builtin(name).to(args.device)
            x = torch.rand(1, 3, size, size, device=args.device)
            t = best_of(synced(lambda: model(x), args.device), 1)
            mp = size * size / 1e6
            print(f"| {name} | {size}x{size} | {t:.2f} | {t / mp:.1f} | {t / (mp * 16):.2f} |", flush=True)


if __name__ == "__main__":
    main()
