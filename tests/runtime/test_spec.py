"""One declaration per node: definition-time checks and everything derived from it."""
from __future__ import annotations

import pytest

from imagetune.graph_runtime import Input, Node, NodeDefinitionError, NodeRegistry, Output, combo
from imagetune.graph_runtime import types as T
from imagetune.graph_runtime.comfy_bridge import comfy_class, object_info


def define(**attrs):
    body = {"__doc__": "A node.", "node_id": "ImageTuneX", "category": "ImageTune/test",
            "outputs": (Output(T.INT, "v"),), "run": lambda self, ctx: (1,)}
    body.update(attrs)
    return type("XNode", (Node,), body)


@pytest.mark.parametrize("attrs,message", [
    ({"node_id": "Foo"}, "must be an identifier starting with 'ImageTune'"),
    ({"node_id": "ImageTune Foo"}, "must be an identifier"),
    ({"category": "image"}, "must be under 'ImageTune/'"),
    ({"version": "1.0"}, "not semver"),
    ({"__doc__": None}, "needs a docstring"),
    ({"outputs": ()}, "declares no outputs"),
    ({"inputs": (Input("a", T.INT), Input("a", T.INT)), "run": lambda self, ctx, a: (a,)}, "declared twice"),
    ({"inputs": (Input("a", T.INT, default=5, min=0, max=3),), "run": lambda self, ctx, a: (a,)}, "bigger than the maximum"),
    ({"inputs": (Input("a", T.INT, default="5"),), "run": lambda self, ctx, a: (a,)}, "default '5'"),
    ({"inputs": (Input("a", T.COMBO),), "run": lambda self, ctx, a: (a,)}, "needs choices"),
    ({"inputs": (Input("a", T.IMAGE, default=1),), "run": lambda self, ctx, a: (a,)}, "cannot have a default"),
    ({"inputs": (Input("a", T.INT),)}, "must match the declared inputs"),
])
def test_bad_declarations_fail_when_the_class_is_defined(attrs, message):
    with pytest.raises(NodeDefinitionError, match=message) as info:
        define(**attrs)
    assert "XNode" in str(info.value)


def test_registry_refuses_duplicate_ids():
    a, b = define(), define()
    with pytest.raises(NodeDefinitionError, match="declared by both"):
        NodeRegistry([a, b])


class ScaleNode(Node):
    """Scale an image.

    Longer description.
    """

    node_id = "ImageTuneScaleTest"
    category = "ImageTune/test"
    inputs = (
        Input("image", T.IMAGE, tooltip="the picture"),
        Input("factor", T.FLOAT, default=1.5, min=0.1, max=8.0, step=0.1, tooltip="how much"),
        combo("method", ("lanczos", "bicubic")),
        Input("seed", T.INT, default=0, min=0, max=T.MAX_SEED),
        Input("note", T.STRING, default="", multiline=True, optional=True),
    )
    outputs = (Output(T.IMAGE, "image", "the scaled picture"),)

    def run(self, ctx, image, factor, method, seed, note):
        return (image,)


def test_comfy_attributes_are_derived():
    cls = comfy_class(ScaleNode)
    types = cls.INPUT_TYPES()
    assert list(types["required"]) == ["image", "factor", "method", "seed"]
    assert types["required"]["image"] == ("IMAGE", {"tooltip": "the picture"})
    assert types["required"]["factor"] == ("FLOAT", {"default": 1.5, "min": 0.1, "max": 8.0, "step": 0.1,
                                                     "tooltip": "how much"})
    assert types["required"]["method"] == (["lanczos", "bicubic"], {"default": "lanczos"})
    assert types["optional"]["note"] == ("STRING", {"default": "", "multiline": True})
    assert set(types["hidden"].values()) == {"PROMPT", "EXTRA_PNGINFO", "UNIQUE_ID"}
    assert cls.RETURN_TYPES == ("IMAGE",) and cls.RETURN_NAMES == ("image",)
    assert cls.OUTPUT_TOOLTIPS == ("the scaled picture",)
    assert cls.FUNCTION == "execute" and callable(getattr(cls, cls.FUNCTION))
    assert cls.CATEGORY == "ImageTune/test" and cls.OUTPUT_NODE is False
    assert cls.DESCRIPTION == "Scale an image.\n\nLonger description."
    assert ScaleNode.display_name == "Scale Test (ImageTune)"
    assert ScaleNode.input("seed").has_control_widget and not ScaleNode.input("factor").has_control_widget


def test_comfy_function_runs_the_node():
    import torch

    cls = comfy_class(ScaleNode)
    image = torch.rand(1, 2, 2, 3)
    (out,) = getattr(cls(), cls.FUNCTION)(image=image, factor=2.0, method="bicubic", seed=1)
    assert out is image


def test_object_info_shape():
    info = object_info([ScaleNode])["ImageTuneScaleTest"]
    assert info["input_order"]["required"] == ["image", "factor", "method", "seed"]
    assert info["output"] == ["IMAGE"] and info["output_name"] == ["image"]
    assert info["category"] == "ImageTune/test" and info["output_node"] is False


def test_display_names_derived_from_ids():
    from imagetune.graph_runtime.spec import _title_from_id

    assert _title_from_id("ImageTuneUnsharpMask") == "Unsharp Mask (ImageTune)"
    assert _title_from_id("ImageScale", comfy_core=True) == "Image Scale"
