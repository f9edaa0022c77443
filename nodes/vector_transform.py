"""Vector transform nodes on CONDITIONING: blend, concat, scale, noise, project, and text -> GAN z.

The maths lives in ``ops/conditioning.py``; widths that do not match raise an error naming the
input (the widths of linked tensors are only known when the node runs).
"""
from __future__ import annotations

from ..graph_runtime import Input, Node, Output, combo
from ..graph_runtime import types as T
from ..graph_runtime.errors import NodeInputError
from ..graph_runtime.paths import name_problems

# ops.conditioning (torch) is imported in run(): declaring and validating these nodes needs no torch.

_COND = Output(T.CONDITIONING, "conditioning")


class BlendConditioningNode(Node):
    """Blend two conditionings linearly or spherically (weight 0 = a, 1 = b)."""

    node_id = "ImageTuneBlendConditioning"
    category = "ImageTune/conditioning"
    inputs = (
        Input("conditioning_a", T.CONDITIONING),
        Input("conditioning_b", T.CONDITIONING),
        Input("weight", T.FLOAT, default=0.5, min=0.0, max=1.0, step=0.01, tooltip="0 gives a, 1 gives b"),
        combo("method", ("lerp", "slerp"), tooltip="slerp interpolates each vector's direction on the sphere"),
    )
    outputs = (_COND,)

    def run(self, ctx, conditioning_a, conditioning_b, weight, method):
        from ..ops import conditioning as C

        return (C.blend(conditioning_a, conditioning_b, weight, method),)


class ConcatConditioningNode(Node):
    """Append b's token states after a's (pooled output from a)."""

    node_id = "ImageTuneConcatConditioning"
    category = "ImageTune/conditioning"
    inputs = (Input("conditioning_a", T.CONDITIONING), Input("conditioning_b", T.CONDITIONING))
    outputs = (_COND,)

    def run(self, ctx, conditioning_a, conditioning_b):
        from ..ops import conditioning as C

        return (C.concat(conditioning_a, conditioning_b),)


class ScaleConditioningNode(Node):
    """Scale token states and/or the pooled vector, optionally normalising vector lengths first."""

    node_id = "ImageTuneScaleConditioning"
    category = "ImageTune/conditioning"
    inputs = (
        Input("conditioning", T.CONDITIONING),
        Input("scale", T.FLOAT, default=1.0, min=-10.0, max=10.0, step=0.01,
              tooltip="factor applied to the vectors (after normalising, if asked)"),
        Input("normalize", T.BOOLEAN, default=False,
              tooltip="first give every vector the mean length of its tensor"),
        combo("target", ("tokens", "pooled", "both"), default="both",
              tooltip="which part to change: the token states, the pooled vector, or both"),
    )
    outputs = (_COND,)

    def run(self, ctx, conditioning, scale, normalize, target):
        from ..ops import conditioning as C

        return (C.scale(conditioning, scale, normalize, target),)


class AddConditioningNoiseNode(Node):
    """Add seeded Gaussian noise, relative to each tensor's standard deviation."""

    node_id = "ImageTuneAddConditioningNoise"
    category = "ImageTune/conditioning"
    inputs = (
        Input("conditioning", T.CONDITIONING),
        Input("strength", T.FLOAT, default=0.1, min=0.0, max=10.0, step=0.01,
              tooltip="noise standard deviation, as a share of each tensor's own"),
        Input("seed", T.INT, default=0, min=0, max=T.MAX_SEED, tooltip="seed of the noise"),
    )
    outputs = (_COND,)

    def run(self, ctx, conditioning, strength, seed):
        from ..ops import conditioning as C

        return (C.add_noise(conditioning, strength, seed),)


class ProjectConditioningNode(Node):
    """Map conditioning to another width with a linear map from a .safetensors file."""

    node_id = "ImageTuneProjectConditioning"
    category = "ImageTune/conditioning"
    inputs = (
        Input("conditioning", T.CONDITIONING),
        Input("projection", T.STRING, default="",
              tooltip="a .safetensors under models/projections with 'weight' [D_out, D_in] and optional "
                      "'bias', 'pooled_weight', 'pooled_bias'"),
    )
    outputs = (_COND,)

    @classmethod
    def check_inputs(cls, projection="", **_):
        if isinstance(projection, str) and projection and not projection.lower().endswith(".safetensors"):
            return [("projection", f"expected a .safetensors file, got {projection!r}")]
        return name_problems({"projection": projection}, "projection")

    @classmethod
    def fingerprint(cls, ctx, projection="", **_):
        from ..ops.model_cache import files_signature

        try:
            return files_signature(_projection_path(ctx, projection))
        except Exception as exc:
            return repr(exc)

    def run(self, ctx, conditioning, projection):
        from ..ops import conditioning as C

        return (C.project(conditioning, load_projection(_projection_path(ctx, projection)), projection),)


def _projection_path(ctx, name: str):
    from ..ops.model_files import find_local

    path = find_local(ctx.models_dirs, name, ("projections",), "projection")
    if path is None or not path.is_file():
        raise NodeInputError("projection", f"expected a .safetensors file under the model roots (or their "
                                           f"projections/), got {name!r}, which is not there")
    return path


def load_projection(path) -> dict:
    """The tensors of a projection file, checked for a 2-D ``weight`` and matching ``bias``."""
    from safetensors.torch import load_file

    weights = load_file(str(path))
    weight = weights.get("weight")
    if weight is None or weight.dim() != 2:
        raise NodeInputError("projection", f"expected a 2-D 'weight' [D_out, D_in] in {path.name}, "
                                           f"got keys {sorted(weights)}")
    bias = weights.get("bias")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise NodeInputError("projection", f"expected 'bias' of shape [{weight.shape[0]}] in {path.name}, "
                                           f"got {list(bias.shape)}")
    return weights


class MapConditioningToGANLatentNode(Node):
    """Map a conditioning to a GAN latent z, deterministic from the text and the seed."""

    node_id = "ImageTuneConditioningToGANLatent"
    category = "ImageTune/conditioning"
    inputs = (
        Input("conditioning", T.CONDITIONING),
        Input("gan", T.GAN, tooltip="the generator whose z length is used"),
        Input("seed", T.INT, default=0, min=0, max=T.MAX_SEED, tooltip="chooses the text-to-z projection"),
        Input("variation", T.FLOAT, default=0.0, min=0.0, max=1.0, step=0.01,
              tooltip="share of seeded noise mixed into z (0: z from the text alone)"),
    )
    outputs = (Output(T.GAN_LATENT, "z"),)

    def run(self, ctx, conditioning, gan, seed, variation):
        from ..ops import conditioning as C

        return (C.to_gan_latent(conditioning, gan.z_dim, seed, variation),)


NODES = (BlendConditioningNode, ConcatConditioningNode, ScaleConditioningNode, AddConditioningNoiseNode,
         ProjectConditioningNode, MapConditioningToGANLatentNode)
