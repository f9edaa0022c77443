"""Benchmark: the generate node against a direct diffusers ``pipeline(...)`` call, and model caching.

Run: nice -n 10 .venv/bin/python bench/generate.py   (prints Markdown; numbers go to docs/models.md)

On one tiny Stable Diffusion pipeline (built here, saved, and loaded through the loader node):
1. overhead: the generate node vs ``pipe(prompt_embeds=..., output_type="pt")`` with the same
   embeddings, steps and seed, in ABBA order, median and best of several runs (goal <= 1.03x);
2. a workflow's time to first image (loads the models), second image (new seed: only the
   generate node runs) and a fresh runtime (the model cache supplies the weights);
3. peak resident memory of each way, each in its own process (ru_maxrss, and its excess over
   the resident memory right after the imports).
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _pack import load_pack  # bench/ is on sys.path when a script here runs

load_pack()

import torch  # noqa: E402

from imagetune.graph_runtime import ExecutionContext, Input, Node, NodeRegistry, Runtime  # noqa: E402

SIZE, STEPS, CONTEXT = 64, 10, 384


class KeepNode(Node):
    """Benchmark sink: an output node that keeps its input."""

    node_id = "ImageTuneBenchKeep"
    category = "ImageTune/bench"
    inputs = (Input("value", "*"),)
    output_node = True

    def run(self, ctx, value):
        return {"ui": {}, "result": ()}


def build_pipeline(folder: Path) -> None:
    """A small SD pipeline (MiniLM-width cross-attention, 4x VAE) saved with no text encoder."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=SIZE // 4, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(32, 64), norm_num_groups=16,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                                cross_attention_dim=CONTEXT, attention_head_dim=8)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32, 32),
                        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                        layers_per_block=1, norm_num_groups=16, sample_size=SIZE)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=None, tokenizer=None, unet=unet,
                                   scheduler=DDIMScheduler(beta_schedule="scaled_linear", clip_sample=False,
                                                           steps_offset=1),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder / "bench-sd", safe_serialization=True)


def workflow(seed: int) -> dict:
    auto = {"dtype": "auto", "device": "auto"}
    return {
        "1": {"class_type": "ImageTuneLoadTextEncoder", "inputs": {"text_encoder": "minilm", **auto}},
        "2": {"class_type": "ImageTuneEncodeText",
              "inputs": {"text_encoder": ["1", 0], "text": "a red circle on a blue background",
                         "one_prompt_per_line": False}},
        "3": {"class_type": "ImageTuneEncodeText",
              "inputs": {"text_encoder": ["1", 0], "text": "", "one_prompt_per_line": False}},
        "4": {"class_type": "ImageTuneLoadPipeline",
              "inputs": {"model": "bench-sd", "scheduler": "default", **auto, "cpu_offload": False,
                         "attention_slicing": False}},
        "5": {"class_type": "ImageTuneGenerate",
              "inputs": {"pipeline": ["4", 0], "positive": ["2", 0], "negative": ["3", 0], "width": SIZE,
                         "height": SIZE, "steps": STEPS, "guidance": 4.0, "seed": seed, "batch_size": 1}},
        "6": {"class_type": "ImageTuneBenchKeep", "inputs": {"value": ["5", 0]}},
    }


def make_runtime() -> Runtime:
    from imagetune.nodes import ALL_NODES

    return Runtime(NodeRegistry(list(ALL_NODES) + [KeepNode]))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def overhead(models: Path, repeats: int) -> dict:
    """Median seconds of the generate node and of the direct call, alternated in one process."""
    from imagetune.nodes.generate import GenerateImageNode

    runtime, ctx = make_runtime(), ExecutionContext(device="cpu", models_dirs=[models])
    outputs = runtime.run(workflow(0), ctx=ctx).outputs
    handle, positive, negative = outputs["4"][0], outputs["2"][0], outputs["3"][0]
    node_ctx = ctx.for_node("5")

    def node():
        GenerateImageNode().run(node_ctx, handle, positive, negative, SIZE, SIZE, STEPS, 4.0, 1, 1)

    def direct():
        handle.pipe(prompt_embeds=positive[0][0], negative_prompt_embeds=negative[0][0], width=SIZE,
                    height=SIZE, num_inference_steps=STEPS, guidance_scale=4.0, output_type="pt",
                    generator=torch.Generator().manual_seed(1))

    with torch.inference_mode():
        node(), direct()  # warm up
        node_times, direct_times = [], []
        for i in range(repeats):  # ABBA order, so drift on a shared machine hits both alike
            pair = [(node_times, node), (direct_times, direct)]
            for times, fn in (pair if i % 2 == 0 else pair[::-1]):
                times.append(timed(fn))
    return {"node": statistics.median(node_times), "direct": statistics.median(direct_times),
            "node_min": min(node_times), "direct_min": min(direct_times)}


def first_and_second(models: Path) -> dict:
    """Seconds to the first image of a workflow, the second (new seed), and in a fresh runtime."""
    from imagetune.ops.model_cache import MODELS

    MODELS.clear()
    runtime, ctx = make_runtime(), ExecutionContext(device="cpu", models_dirs=[models])
    first = timed(lambda: runtime.run(workflow(10), ctx=ctx))
    second = timed(lambda: runtime.run(workflow(11), ctx=ctx))
    loads = MODELS.stats.loads
    fresh = timed(lambda: make_runtime().run(workflow(12), ctx=ctx))
    return {"first": first, "second": second, "fresh_runtime": fresh,
            "loads_after_fresh": MODELS.stats.loads - loads}


def peak(models: Path, way: str) -> None:
    """Child process: print the resident-memory peak (MiB) above the imports for one way."""
    import diffusers  # noqa: F401  (count the imports in the baseline)
    import transformers  # noqa: F401

    from imagetune.nodes import ALL_NODES  # noqa: F401

    base = current_rss_kib()
    if way == "node":
        make_runtime().run(workflow(0), ctx=ExecutionContext(device="cpu", models_dirs=[models]))
    else:
        from diffusers import StableDiffusionPipeline
        from transformers import AutoModel, AutoTokenizer

        from imagetune.nodes.text_encoding import encode_prompts
        from imagetune.ops.text_encoders import minilm_path

        tok, enc = AutoTokenizer.from_pretrained(minilm_path()), AutoModel.from_pretrained(minilm_path())
        tokens, _ = encode_prompts(enc, tok, ["a red circle on a blue background", ""])
        pipe = StableDiffusionPipeline.from_pretrained(models / "bench-sd", text_encoder=None, tokenizer=None,
                                                       safety_checker=None, requires_safety_checker=False)
        with torch.inference_mode():
            pipe(prompt_embeds=tokens[:1], negative_prompt_embeds=tokens[1:], width=SIZE, height=SIZE,
                 num_inference_steps=STEPS, guidance_scale=4.0, output_type="pt",
                 generator=torch.Generator().manual_seed(0))
    top = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mib": top / 1024, "above_imports_mib": (top - base) / 1024}))


def current_rss_kib() -> int:
    """Resident memory now (VmRSS), KiB; the import peak may exceed it, so the baseline is not ru_maxrss."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child_peak(models: Path, way: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--peak", way, "--models", str(models)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--peak", choices=("node", "direct"))
    parser.add_argument("--models", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)  # steadier timings on a shared machine
    if args.peak:
        return peak(args.models, args.peak)
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp)
        build_pipeline(models)
        cost = overhead(models, args.repeats)
        runs = first_and_second(models)
        peaks = {way: child_peak(models, way) for way in ("direct", "node")}
    print(f"Tiny SD pipeline, {SIZE}x{SIZE}, {STEPS} DDIM steps, CFG, 1 thread, torch {torch.__version__}\n")
    print("| measure | seconds | ratio |\n|---|---|---|")
    print(f"| direct `pipe(...)`, median of {args.repeats} | {cost['direct']:.3f} | 1.00 |")
    print(f"| generate node, median of {args.repeats} | {cost['node']:.3f} | {cost['node'] / cost['direct']:.3f} |")
    print(f"| direct `pipe(...)`, best of {args.repeats} | {cost['direct_min']:.3f} | 1.00 |")
    print(f"| generate node, best of {args.repeats} | {cost['node_min']:.3f} | "
          f"{cost['node_min'] / cost['direct_min']:.3f} |")
    print(f"| workflow, first image (loads MiniLM + pipeline) | {runs['first']:.3f} | |")
    print(f"| same workflow, new seed (only generate runs) | {runs['second']:.3f} | |")
    print(f"| same workflow in a fresh Runtime (model cache: {runs['loads_after_fresh']} loads) "
          f"| {runs['fresh_runtime']:.3f} | |")
    print("\n| peak memory (own process) | peak RSS MiB | above imports MiB |\n|---|---|---|")
    for way in ("direct", "node"):
        print(f"| {way} | {peaks[way]['peak_mib']:.0f} | {peaks[way]['above_imports_mib']:.0f} |")


if __name__ == "__main__":
    main()
