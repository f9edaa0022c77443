"""ComfyUI's UI ("workflow") format and PNG-embedded workflows, converted to the API format.

The conversion follows the front end's ``graphToPrompt`` (ComfyUI_frontend ``executionUtil.ts``
and ``ExecutableNodeDTO.ts``): subgraph instances are flattened into ``"outer:inner"`` ids,
``widgets_values`` are mapped by the declared input order, links override widget values,
Reroutes pass through, a PrimitiveNode's value lands in the inputs it feeds, Notes and groups
are ignored, muted (mode 2) nodes are dropped and bypassed (mode 4) nodes pass the matching
input through. A muted or bypassed subgraph instance keeps its inner nodes, as in the front end:
a bypassed one passes its matching input to what its outputs feed, a muted one its inner output.
Both link layouts are read: v0.4 tuples and v1 objects.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from . import types as T
from .errors import WorkflowFormatError
from .limits import MAX_NODES
from .validate import types_match
from .workflow import MAX_WORKFLOW_BYTES, parse_json

MODE_MUTED = 2
MODE_BYPASS = 4
SUBGRAPH_INPUT_ID = "-10"
SUBGRAPH_OUTPUT_ID = "-20"
IGNORED_TYPES = frozenset({"Note", "MarkdownNote"})
#: workflows are untrusted: subgraphs instancing each other could otherwise flatten exponentially
MAX_SUBGRAPH_DEPTH = 32
#: the front end's fallback widget values when a declaration has no default
_TYPE_DEFAULTS = {T.INT: 0, T.FLOAT: 0.0, T.STRING: "", T.BOOLEAN: False}


@dataclass(frozen=True)
class Link:
    """One link: output ``origin_slot`` of ``origin_id`` feeds input ``target_slot`` of ``target_id``."""

    origin_id: str
    origin_slot: int
    target_id: str
    target_slot: int
    type: Any = "*"


@dataclass
class Graph:
    """One level of a UI workflow: the root graph or a subgraph definition."""

    nodes: dict[str, dict]
    links: dict[int, Link]
    definition: dict = field(default_factory=dict)


@dataclass
class _Dto:
    """A node at one place in the flattened graph (the front end's ExecutableNodeDTO)."""

    exec_id: str
    node: dict
    graph: Graph
    path: tuple[str, ...]
    instance: "_Dto | None"  # the subgraph instance this node lives in

    @property
    def inputs(self) -> list[dict]:
        return [i for i in self.node.get("inputs") or [] if isinstance(i, dict)]


# ---------------------------------------------------------------------------------------------
# widgets_values -> input names


def widget_layout(cls, legacy: bool = False, upload: bool = False) -> list[str | None]:
    """Input names in the order the front end creates widgets; ``None`` marks a slot that is no input.

    Required inputs come before optional ones (``INPUT_TYPES`` order). Seed-like INT inputs are
    followed by their "control after generate" slot. ``legacy`` is the layout before front end
    1.16, where a ``forceInput`` input still had a widget (its value is not an input); ``upload``
    that of front ends which save an ``image_upload`` combo's upload button ("image") after it.
    """
    ordered = [s for s in cls.inputs if not s.optional] + [s for s in cls.inputs if s.optional]
    slots: list[str | None] = []
    for spec in ordered:
        if not spec.is_widget or (spec.force_input and not legacy):
            continue
        slots.append(None if spec.force_input else spec.name)
        if spec.has_control_widget or (upload and spec.image_upload):
            slots.append(None)
    return slots


def widget_default(spec) -> Any:
    """The value a fresh front-end widget holds: the declared default, else the type's zero."""
    if spec.has_default:
        return spec.default
    if spec.type == T.COMBO:
        return (spec.choices or spec.listed_choices() or ("",))[0]
    return _TYPE_DEFAULTS.get(spec.type)


def map_widget_values(cls, values: Any) -> dict[str, Any]:
    """Literal inputs from a node's ``widgets_values`` (a positional list, or a dict by name)."""
    widgets = {s.name: s for s in cls.inputs if s.is_widget and not s.force_input}
    if isinstance(values, dict):
        found = {k: v for k, v in values.items() if k in widgets}
    else:
        values = values if isinstance(values, list) else []
        # Old files keep a slot per forceInput widget (the front end migrates them by length), and
        # some front ends an upload button's; the first layout of the values' length is theirs.
        layouts = [widget_layout(cls, legacy, upload) for legacy in (False, True) for upload in (False, True)]
        layout = next((slots for slots in layouts if len(slots) == len(values)), layouts[0])
        found = {name: value for name, value in zip(layout, values) if name is not None}
    for name, spec in widgets.items():  # values missing from older files: the widget's default
        if name not in found:
            found[name] = widget_default(spec)
    return {k: v for k, v in found.items() if v is not None}


# ---------------------------------------------------------------------------------------------
# parsing


def _int(value: Any, where: str) -> int:
    """An integer, also from a numeric string as the front end's schema allows for slots."""
    if not isinstance(value, bool) and isinstance(value, (int, str)):
        try:
            return int(value)
        except ValueError:
            pass
    raise WorkflowFormatError(f"{where}: expected an integer, got {str(value)[:40]!r}")


def _node_id(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise WorkflowFormatError(f"{where}: a node id is a number or text, got {str(value)[:40]!r}")
    return str(value)


def _list_of_dicts(value: Any, where: str) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise WorkflowFormatError(f"{where}: expected a list of objects")
    return value


def parse_links(raw_links: Any) -> dict[int, Link]:
    """Links by id from either layout: ``[id, origin, slot, target, slot, type]`` or objects."""
    if raw_links is not None and not isinstance(raw_links, list):
        raise WorkflowFormatError("links: expected a list")
    links = {}
    for raw in raw_links or []:
        if isinstance(raw, list) and len(raw) >= 5:
            fields = raw[:5] + [raw[5] if len(raw) > 5 else "*"]
        elif isinstance(raw, dict) and "id" in raw:
            fields = [raw.get(k) for k in ("id", "origin_id", "origin_slot", "target_id", "target_slot")]
            fields.append(raw.get("type", "*"))
        else:
            raise WorkflowFormatError(f"links: expected [id, origin, slot, target, slot, type] or a "
                                      f"link object, got {str(raw)[:80]}")
        where = f"link {str(fields[0])[:20]}"
        links[_int(fields[0], where)] = Link(_node_id(fields[1], where), _int(fields[2], where),
                                             _node_id(fields[3], where), _int(fields[4], where), fields[5])
    return links


def _check_node(node: Any) -> dict:
    """A node object with the fields the conversion reads, each of the right kind."""
    if not isinstance(node, dict) or "id" not in node or not isinstance(node.get("type"), str):
        raise WorkflowFormatError(f"nodes: every node needs an id and a type, got {str(node)[:80]}")
    where = f"node {_node_id(node['id'], 'nodes')}"
    for entry in _list_of_dicts(node.get("inputs"), f"{where} inputs"):
        if not isinstance(entry.get("name", ""), str) or isinstance(entry.get("link"), bool) or \
                entry.get("link") is not None and not isinstance(entry["link"], int):
            raise WorkflowFormatError(f"{where}: input {str(entry)[:60]} needs a name and an integer link or null")
    for entry in _list_of_dicts(node.get("outputs"), f"{where} outputs"):
        if not isinstance(entry.get("type", "*"), (str, list, int)):
            raise WorkflowFormatError(f"{where}: output {str(entry)[:60]} has no valid type")
    if not isinstance(node.get("widgets_values"), (list, dict, type(None))):
        raise WorkflowFormatError(f"{where}: widgets_values must be a list or an object")
    if isinstance(node.get("mode", 0), bool) or not isinstance(node.get("mode", 0), int):
        raise WorkflowFormatError(f"{where}: mode must be an integer")
    return node


def _graph(data: dict) -> Graph:
    if not isinstance(data.get("nodes"), list):
        raise WorkflowFormatError("a UI-format workflow (or subgraph) needs a 'nodes' list")
    nodes = {}
    for node in data["nodes"]:
        nodes[_node_id(_check_node(node)["id"], "nodes")] = node
    return Graph(nodes, parse_links(data.get("links")), data)


def _subgraph_definitions(data: dict) -> dict[str, Graph]:
    """Every subgraph definition by id, including definitions nested inside definitions."""
    found: dict[str, Graph] = {}
    stack = [data]
    while stack:
        definitions = stack.pop().get("definitions") or {}
        subgraphs = definitions.get("subgraphs") if isinstance(definitions, dict) else None
        for sub in _list_of_dicts(subgraphs, "definitions.subgraphs"):
            if not isinstance(sub.get("id"), str):
                raise WorkflowFormatError("definitions.subgraphs: every subgraph needs a text id")
            for side in ("inputs", "outputs"):
                for slot in _list_of_dicts(sub.get(side), f"subgraph {sub['id']} {side}"):
                    ids = slot.get("linkIds") or []
                    if not isinstance(slot.get("name"), str) or not isinstance(ids, list) or \
                            not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
                        raise WorkflowFormatError(f"subgraph {sub['id']}: {side} need a name and integer linkIds")
            if sub["id"] not in found:
                found[sub["id"]] = _graph(sub)
                stack.append(sub)
    return found


# ---------------------------------------------------------------------------------------------
# conversion


def ui_to_api(data: dict, registry=None) -> dict:
    """Convert a UI-format workflow to the API format, resolving nodes against ``registry``.

    Raises WorkflowFormatError naming every node type that is neither in the registry nor a
    front-end-only type, with the pack it came from when the workflow records it.
    """
    if registry is None:
        from ..nodes import default_registry

        registry = default_registry()
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise WorkflowFormatError("a UI-format workflow needs a 'nodes' list")
    return _Converter(data, registry).convert()


class _Converter:
    """Flattens one UI workflow and emits its API form."""

    def __init__(self, data: dict, registry):
        self.registry = registry
        self.subgraphs = _subgraph_definitions(data)
        self.dtos: dict[str, _Dto] = {}
        self._resolved: dict[tuple, tuple | None] = {}
        self._flatten(_graph(data), (), None, depth=0)

    def _flatten(self, graph: Graph, path: tuple[str, ...], instance: _Dto | None, depth: int) -> None:
        if depth > MAX_SUBGRAPH_DEPTH:
            raise WorkflowFormatError(f"subgraphs are nested more than {MAX_SUBGRAPH_DEPTH} deep "
                                      "(does a subgraph contain itself?)")
        for node_id, node in graph.nodes.items():
            dto = _Dto(":".join(path + (node_id,)), node, graph, path, instance)
            self.dtos[dto.exec_id] = dto
            if len(self.dtos) > MAX_NODES:
                raise WorkflowFormatError(f"the workflow flattens to more than {MAX_NODES:,} nodes")
            sub = self.subgraphs.get(node.get("type"))
            if sub is not None:
                self._flatten(sub, path + (node_id,), dto, depth + 1)

    def convert(self) -> dict:
        api: dict[str, dict] = {}
        unknown = []
        for dto in self.dtos.values():
            if not self._emits(dto):
                continue
            cls = self.registry.get(dto.node["type"])
            if cls is None:
                unknown.append(dto)
                continue
            api[dto.exec_id] = self._api_node(dto, cls)
        if unknown:
            raise WorkflowFormatError(_unknown_message(unknown))
        for node in api.values():  # links into nodes that were not emitted (muted) are dropped
            node["inputs"] = {k: v for k, v in node["inputs"].items() if not _is_link(v) or v[0] in api}
        return api

    def _emits(self, dto: _Dto) -> bool:
        """True for a node that becomes an API node (not virtual, muted, bypassed or a subgraph)."""
        node = dto.node
        if node.get("type") in self.subgraphs or node.get("type") in ("PrimitiveNode", "Reroute"):
            return False
        if node.get("type") in IGNORED_TYPES:
            return False
        # Only the node's own mode counts: the front end flattens a muted or bypassed subgraph
        # instance's inner nodes like any other (SubgraphNode.getInnerNodes ignores the instance's
        # mode), so they are emitted; the instance's mode only changes what its outputs resolve to.
        return node.get("mode", 0) not in (MODE_MUTED, MODE_BYPASS)

    def _api_node(self, dto: _Dto, cls) -> dict:
        inputs = {k: _wrap(v) for k, v in map_widget_values(cls, dto.node.get("widgets_values")).items()}
        for entry in dto.inputs:
            if entry.get("link") is None or not entry.get("name"):
                continue
            resolved = self.resolve_input(dto, entry, entry.get("type", "*"))
            if resolved is None:
                continue
            kind, value = resolved
            inputs[entry["name"]] = list(value) if kind == "link" else _wrap(value)
        title = dto.node.get("title") or cls.display_name
        return {"inputs": inputs, "class_type": cls.node_id, "_meta": {"title": title}}

    # -- resolving links ------------------------------------------------------------------------
    # Reroute and bypass chains can be thousands of nodes long, so links are followed in a loop
    # (never by recursion), and every output step resolved is remembered for the other inputs
    # that pass through it.

    def resolve_input(self, dto: _Dto, entry: dict, want: Any) -> tuple[str, Any] | None:
        """Where an input's value comes from: ``("link", [id, slot])``, ``("value", v)`` or None."""
        seen: set = set()
        passed: list = []  # the output steps on the way, each resolved to the same answer
        step: tuple = ("in", dto, entry)
        while True:
            kind, dto, arg = step
            key = (dto.exec_id, kind, arg.get("name"), arg.get("link")) if kind == "in" else \
                (dto.exec_id, kind, arg, str(want))
            if key in self._resolved:
                result = self._resolved[key]
                break
            if key in seen:
                raise WorkflowFormatError(f"node {dto.exec_id}: links loop through reroutes or bypassed nodes")
            seen.add(key)
            if kind == "out":
                passed.append(key)
            step = self._input_step(dto, arg, want) if kind == "in" else self._output_step(dto, arg, want)
            if step[0] == "done":
                result = step[1]
                break
        for key in passed:
            self._resolved[key] = result
        return result

    def _input_step(self, dto: _Dto, entry: dict, want: Any) -> tuple:
        """One step back from an input: to the output feeding it, or to the subgraph instance's input."""
        link = dto.graph.links.get(entry.get("link"))
        if link is None:
            raise WorkflowFormatError(f"node {dto.exec_id} input {entry.get('name')!r}: link "
                                      f"{entry.get('link')} is not in the workflow's links")
        if dto.instance is not None and link.origin_id == SUBGRAPH_INPUT_ID:
            return self._subgraph_input_step(dto, link)
        origin = self.dtos.get(":".join(dto.path + (link.origin_id,)))
        if origin is None:
            raise WorkflowFormatError(f"node {dto.exec_id} input {entry.get('name')!r}: link "
                                      f"{entry.get('link')} starts at node {link.origin_id}, which does not exist")
        return "out", origin, link.origin_slot

    def _output_step(self, dto: _Dto, slot: int, want: Any) -> tuple:
        """One step back from an output: through a bypassed node, reroute or subgraph, or the answer."""
        node = dto.node
        kind = node.get("type")
        if node.get("mode", 0) == MODE_BYPASS:
            index = _bypass_input_index(dto, slot, want)
            if index < 0 or dto.inputs[index].get("link") is None:
                return "done", None
            return "in", dto, dto.inputs[index]
        if kind in self.subgraphs:
            return self._subgraph_output_step(dto, slot)
        if kind == "PrimitiveNode":
            values = node.get("widgets_values")
            return "done", (("value", values[0]) if isinstance(values, list) and values else None)
        if kind == "Reroute":
            entry = dto.inputs[0] if dto.inputs else None
            if entry is None or entry.get("link") is None:
                return "done", None
            return "in", dto, entry
        if kind in IGNORED_TYPES:
            return "done", None
        return "done", ("link", [dto.exec_id, slot])

    def _subgraph_input_step(self, dto: _Dto, link: Link) -> tuple:
        """An inner link from the subgraph's input node: to the instance's input, or its widget value."""
        instance = dto.instance
        declared = dto.graph.definition.get("inputs") or []
        if not 0 <= link.origin_slot < len(declared):
            raise WorkflowFormatError(f"subgraph {instance.node['type']}: input slot {link.origin_slot} "
                                      "is not declared")
        name = declared[link.origin_slot].get("name")
        entry = next((i for i in instance.inputs if i.get("name") == name), None)
        if entry is not None and entry.get("link") is not None:
            return "in", instance, entry
        values = instance.node.get("widgets_values")
        if isinstance(values, dict):
            return "done", (("value", values[name]) if name in values else None)
        index = _promoted_widget_index(dto.graph, name)
        if index is not None and isinstance(values, list) and index < len(values):
            return "done", ("value", values[index])
        return "done", None  # nothing connected: the inner node keeps its own widget value

    def _subgraph_output_step(self, dto: _Dto, slot: int) -> tuple:
        """An output of a subgraph instance: to the inner node that feeds the definition's output."""
        sub = self.subgraphs[dto.node["type"]]
        outputs = sub.definition.get("outputs") or []
        if not 0 <= slot < len(outputs):
            return "done", None
        for link_id in outputs[slot].get("linkIds") or []:
            link = sub.links.get(int(link_id))
            if link is not None and link.target_id == SUBGRAPH_OUTPUT_ID:
                inner = self.dtos.get(f"{dto.exec_id}:{link.origin_id}")
                if inner is not None:
                    return "out", inner, link.origin_slot
        return "done", None


def _bypass_input_index(dto: _Dto, slot: int, want: Any) -> int:
    """The input a bypassed node passes to output ``slot``: same index if the type fits, else by type."""
    inputs = dto.inputs
    outputs = dto.node.get("outputs") or []
    same = 0 <= slot < len(inputs)
    out_type = outputs[slot].get("type", "*") if 0 <= slot < len(outputs) else "*"
    if want in ("*", "", None):
        return slot if same else (0 if inputs else -1)
    if same and _fits(inputs[slot].get("type"), out_type) and _fits(inputs[slot].get("type"), want):
        return slot
    for index, entry in enumerate(inputs):
        if entry.get("type") == want:
            return index
    for index, entry in enumerate(inputs):
        if _fits(entry.get("type"), out_type) and _fits(entry.get("type"), want):
            return index
    return -1


def _fits(a: Any, b: Any) -> bool:
    """LiteGraph.isValidConnection: equal, wildcard or overlapping comma-separated types."""
    if a in ("*", "", 0, None) or b in ("*", "", 0, None):
        return True
    return types_match(str(a).upper(), str(b).upper())


def _promoted_widget_index(sub: Graph, name: str) -> int | None:
    """Position of a subgraph input among the instance's widgets (inputs that feed a widget)."""
    index = 0
    for declared in sub.definition.get("inputs") or []:
        if _feeds_widget(sub, declared):
            if declared.get("name") == name:
                return index
            index += 1
    return None


def _feeds_widget(sub: Graph, declared: dict) -> bool:
    for link_id in declared.get("linkIds") or []:
        link = sub.links.get(int(link_id))
        target = sub.nodes.get(link.target_id) if link else None
        for entry in (target or {}).get("inputs") or []:
            if isinstance(entry, dict) and entry.get("link") == int(link_id) and entry.get("widget"):
                return True
    return False


def _unknown_message(dtos: list[_Dto]) -> str:
    parts = []
    for dto in dtos:
        props = dto.node.get("properties")
        props = props if isinstance(props, dict) else {}
        pack = props.get("cnr_id") or props.get("aux_id")
        origin = f", from the pack {pack!r}" if pack else ""
        if str(dto.node["type"]).startswith(("workflow>", "workflow/")):
            origin = ", a legacy group node: convert it to a subgraph or to plain nodes in ComfyUI"
        parts.append(f"node {dto.exec_id} ({dto.node['type']}{origin})")
    kinds = sorted({d.node["type"] for d in dtos})
    return (f"the workflow uses node types this runtime does not have: {', '.join(kinds)}; "
            f"{'; '.join(parts)}. Only ImageTune nodes and the ComfyUI core nodes it implements can run here.")


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def _wrap(value: Any) -> Any:
    """List literals are wrapped as the front end does, so they are never mistaken for links."""
    return {"__value__": value} if isinstance(value, list) else value


# ---------------------------------------------------------------------------------------------
# PNG


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


def png_text_chunks(raw: bytes, source_name: str = "PNG", keys=("prompt", "workflow")) -> dict[str, bytes]:
    """The text chunks called ``keys`` (ComfyUI's ``prompt`` and ``workflow``), as undecoded bytes.

    Read from the chunk list itself, never decoding pixels: a few KB can describe a huge image.
    Compressed text is inflated up to the workflow size limit only; chunks must have valid CRCs,
    and a key given twice is refused (which one would ComfyUI read?). The bytes are decoded as
    strict UTF-8 by ``parse_json`` (Pillow would have read tEXt as Latin-1, accepting anything).
    """
    def broken(why: str) -> WorkflowFormatError:
        return WorkflowFormatError(f"{source_name}: not a readable PNG ({why})")

    if not raw.startswith(PNG_SIGNATURE):
        raise broken("no PNG signature")
    texts: dict[str, bytes] = {}
    pos, first = len(PNG_SIGNATURE), True
    while True:
        if pos + 12 > len(raw):
            raise broken("the file ends before its IEND chunk")
        length, kind = struct.unpack(">I4s", raw[pos:pos + 8])
        end = pos + 8 + length
        if end + 4 > len(raw):
            raise broken(f"chunk {kind!r} runs past the end of the file")
        data = raw[pos + 8:end]
        if zlib.crc32(raw[pos + 4:end]) != struct.unpack(">I", raw[end:end + 4])[0]:
            raise broken(f"chunk {kind!r} at byte {pos} has a wrong CRC")
        if first and kind != b"IHDR":
            raise broken("the first chunk is not IHDR")
        first, pos = False, end + 4
        if kind == b"IEND":
            return texts
        if kind in _TEXT_CHUNKS:
            key, _, rest = data.partition(b"\0")
            name = key.decode("latin-1")
            if name in keys:
                if name in texts:
                    raise WorkflowFormatError(f"{source_name}: the PNG has two {name!r} text chunks")
                texts[name] = _chunk_text(kind, rest, f"{source_name} ({name} chunk)")


def _chunk_text(kind: bytes, rest: bytes, where: str) -> bytes:
    """The text bytes of a tEXt, zTXt or iTXt chunk after its keyword."""
    if kind == b"tEXt":
        return rest
    if kind == b"zTXt":
        return _inflate(rest[1:], where)
    compressed = rest[:1] == b"\1"
    _lang, _, rest = rest[2:].partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    return _inflate(text, where) if compressed else text


def _inflate(data: bytes, where: str) -> bytes:
    """zlib-decompress at most MAX_WORKFLOW_BYTES: a small chunk may inflate to gigabytes."""
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(data, MAX_WORKFLOW_BYTES + 1)
    except zlib.error as exc:
        raise WorkflowFormatError(f"{where}: damaged compressed text ({exc})") from None
    if len(text) > MAX_WORKFLOW_BYTES:
        raise WorkflowFormatError(f"{where}: inflates to more than {MAX_WORKFLOW_BYTES:,} bytes")
    return text


def workflow_from_png(raw: bytes, source_name: str) -> dict:
    """The workflow embedded in a PNG: the API ``prompt`` chunk when present, else the UI ``workflow``."""
    texts = png_text_chunks(raw, source_name)
    for key in ("prompt", "workflow"):
        text = texts.get(key)
        if text and text.strip():
            data = parse_json(text, f"{source_name} ({key} chunk)")
            if isinstance(data, dict) and data:
                return data
    raise WorkflowFormatError(f"{source_name}: the PNG carries no 'prompt' or 'workflow' text chunk")
