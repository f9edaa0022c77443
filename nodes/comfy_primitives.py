"""ComfyUI's primitive nodes (``comfy_extras/nodes_primitive.py``), so workflows that use them run headless.

One value typed into a primitive can feed several inputs: one prompt for both the text encoder
and the best-of-N judge, one seed for several samplers; ``imagetune run --set N.value=...`` then
changes all of them at once. Never registered into ComfyUI (``comfy_core = True``), which has the
originals with the same names, inputs and outputs.
"""
from __future__ import annotations

import sys

from ..graph_runtime import Input, Node, Output
from ..graph_runtime import types as T


class PrimitiveNode(Node):
    """Shared by the primitives: hand the typed value on unchanged."""

    category = "utils/primitive"
    comfy_core = True

    def run(self, ctx, value):
        return (value,)


class PrimitiveStringNode(PrimitiveNode):
    """ComfyUI's String primitive: one line of text for any STRING input."""

    node_id = "PrimitiveString"
    display_name = "String"
    inputs = (Input("value", T.STRING, default=""),)
    outputs = (Output(T.STRING, "STRING"),)


class PrimitiveStringMultilineNode(PrimitiveNode):
    """ComfyUI's String (Multiline) primitive: text for any STRING input."""

    node_id = "PrimitiveStringMultiline"
    display_name = "String (Multiline)"
    inputs = (Input("value", T.STRING, default="", multiline=True),)
    outputs = (Output(T.STRING, "STRING"),)


class PrimitiveIntNode(PrimitiveNode):
    """ComfyUI's Int primitive: a whole number for any INT input."""

    node_id = "PrimitiveInt"
    display_name = "Int"
    # ComfyUI gives it a "control after generate" widget, so UI-form workflows carry two values
    inputs = (Input("value", T.INT, default=0, min=-sys.maxsize, max=sys.maxsize, control_after_generate=True),)
    outputs = (Output(T.INT, "INT"),)


class PrimitiveFloatNode(PrimitiveNode):
    """ComfyUI's Float primitive: a number for any FLOAT input."""

    node_id = "PrimitiveFloat"
    display_name = "Float"
    inputs = (Input("value", T.FLOAT, default=0.0, min=-sys.maxsize, max=sys.maxsize),)
    outputs = (Output(T.FLOAT, "FLOAT"),)


class PrimitiveBooleanNode(PrimitiveNode):
    """ComfyUI's Boolean primitive: true or false for any BOOLEAN input."""

    node_id = "PrimitiveBoolean"
    display_name = "Boolean"
    inputs = (Input("value", T.BOOLEAN, default=False),)
    outputs = (Output(T.BOOLEAN, "BOOLEAN"),)


NODES = (PrimitiveStringNode, PrimitiveStringMultilineNode, PrimitiveIntNode, PrimitiveFloatNode,
         PrimitiveBooleanNode)
