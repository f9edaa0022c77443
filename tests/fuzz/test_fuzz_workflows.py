"""Fuzzing what a shared workflow can be: hostile API, UI and PNG files never crash, hang or print badly.

Every case goes through ``imagetune validate`` in this process, with stdout and stderr that accept
ASCII only (a terminal that cannot show the text must still get a readable rejection). A crash is
any exception that escapes the command (the runtime's own GraphErrors are caught and printed by
it), an exit status other than 0 or 2, or a message the ASCII terminal cannot encode; a hang is a
case past its deadline. ``scripts/fuzz_long.py`` runs the same strategies for thousands of cases.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagetune.graph_runtime.cli import main
from imagetune.nodes import default_registry

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 10.0  # a validation that takes this long on a case this small is a hang
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no case may reach the network; this makes one that tries fail fast


class Crash(AssertionError):
    """The command broke its contract on a case (the message says how)."""


class Hang(BaseException):
    """A case ran past its deadline (a BaseException, so no ``except Exception`` in the code swallows it)."""


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise Hang in this (main) thread when the block runs longer than ``seconds``."""
    def expire(signum, frame):
        raise Hang(f"no answer after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def ascii_terminal() -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="strict", write_through=True)


def validate_file(path: Path, seconds: float = DEADLINE_S) -> tuple[str, str]:
    """``imagetune validate PATH`` on an ASCII terminal: ("valid" or "invalid", what it printed), else Crash or Hang."""
    out, err = ascii_terminal(), ascii_terminal()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), deadline(seconds):
            code = main(["validate", str(path)])
    except UnicodeEncodeError as exc:
        if exc.encoding == "ascii":
            raise Crash(f"unprintable message: {exc}") from None
        raise Crash(f"UnicodeEncodeError: {exc}") from exc
    except (Hang, KeyboardInterrupt):
        raise
    except BaseException as exc:  # SystemExit and MemoryError too: the command must answer
        raise Crash(f"{type(exc).__name__}: {str(exc)[:300]}") from exc
    if code not in (0, 2):
        raise Crash(f"exit status {code}")
    printed = (out.buffer.getvalue() + err.buffer.getvalue()).decode("ascii")
    return ("valid" if code == 0 else "invalid"), printed


# ---------------------------------------------------------------------------------------------
# JSON with what json.dumps cannot write: numbers of thousands of digits, nesting past the
# recursion limit. Strategies place a marker string; ``to_bytes`` swaps in the raw text.

def huge_int(digits: int) -> str:
    return f"@@INT:{digits}@@"


def deep_list(depth: int) -> str:
    return f"@@DEEP:{depth}@@"


_MARKER = re.compile(r'"@@(INT|DEEP):(\d+)@@"')


def to_bytes(value, *, bom: bool = False, trailing_comma: bool = False) -> bytes:
    """JSON text of ``value`` (escaped ASCII, so lone surrogates survive), markers expanded."""
    def expand(found) -> str:
        n = int(found.group(2))
        return "9" * n if found.group(1) == "INT" else "[" * n + "]" * n

    # only a whole JSON string is a marker: generated text may contain "@@" or "INT:" too
    text = _MARKER.sub(expand, json.dumps(value))
    if trailing_comma and text.endswith("}") and len(text) > 2:
        text = text[:-1] + ",}"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("ascii")


REGISTRY = default_registry()
CLASSES = sorted(REGISTRY, key=lambda cls: cls.node_id)
CLASS_NAMES = [cls.node_id for cls in CLASSES]
SURROGATES = ["\ud800", "\udfff", "\udc80x", "a\udbff"]
HOSTILE_TEXT = ["²", "²9", "٣", "1e3", "0x1f", "-1", " 1", "", "..", "../x", "/etc/passwd", "~/tower", "NaN",
                "\x00", "é", "\u202e", "9" * 40, *SURROGATES]

text = st.text(max_size=10) | st.sampled_from(HOSTILE_TEXT)
numbers = (st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.integers(300, 330).map(lambda d: 10 ** d)
           | st.sampled_from([huge_int(309), huge_int(5000)]))
node_ids = st.sampled_from([str(i) for i in range(1, 13)]) | st.sampled_from(HOSTILE_TEXT)
links = st.tuples(node_ids, st.integers(-1, 4) | st.sampled_from([2**64, huge_int(400)])).map(list)
leaves = st.none() | st.booleans() | numbers | text
json_values = st.recursive(leaves, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(text, kids, max_size=3),
                           max_leaves=8) | st.integers(900, 1200).map(deep_list)


@st.composite
def input_value(draw, spec):
    """A value for one declared input: often right, often hostile."""
    plain = {"INT": st.integers(-2**40, 2**40) | st.floats(-1e6, 1e6).map(float),
             "FLOAT": st.floats(allow_nan=False) | st.integers(-10**6, 10**6),
             "STRING": text, "BOOLEAN": st.booleans()}.get(spec.type)
    options = [links, json_values, numbers]
    if spec.choices:
        options.append(st.sampled_from(list(spec.choices)))
    if plain is not None:
        options.append(plain)
    return draw(st.one_of(options))


@st.composite
def api_node(draw):
    cls = draw(st.sampled_from(CLASSES))
    class_type = draw(st.just(cls.node_id) | text | json_values) if draw(st.integers(0, 9)) == 0 else cls.node_id
    names = draw(st.lists(st.sampled_from([spec.name for spec in cls.inputs] or ["x"]), max_size=len(cls.inputs) + 1))
    inputs = {name: draw(input_value(next((s for s in cls.inputs if s.name == name), cls.inputs[0])))
              for name in names} if cls.inputs else {}
    if draw(st.booleans()):
        inputs[draw(text)] = draw(json_values)
    node = {"class_type": class_type, "inputs": inputs if draw(st.integers(0, 19)) else draw(json_values)}
    if draw(st.booleans()):
        node["_meta"] = {"title": draw(text | json_values)}
    return node


def examples(folder: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((ROOT / folder).glob("*.json"))]


API_EXAMPLES = examples("workflows/api")
#: the default workflow, which the cases of issue 15 edit (it has a prompt text and float inputs)
DEFAULT_API = json.loads((ROOT / "workflows" / "api" / "imagetune-text-to-image.json").read_text())
UI_EXAMPLES = examples("workflows") + [w for w in examples("tests/fixtures/ui") if "nodes" in w]


@st.composite
def mutated_api(draw):
    """A shipped API workflow with a few hostile edits: mostly valid graphs, so validation goes deep."""
    workflow = json.loads(json.dumps(draw(st.sampled_from(API_EXAMPLES))))
    for _ in range(draw(st.integers(1, 4))):
        node_id = draw(st.sampled_from(sorted(workflow)))
        node = workflow[node_id]
        how = draw(st.integers(0, 4))
        if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
            workflow[node_id] = draw(api_node())  # an earlier edit left no node to edit
            continue
        cls = REGISTRY.get(node.get("class_type")) if isinstance(node.get("class_type"), str) else None
        if how == 0 and cls is not None and cls.inputs:
            spec = draw(st.sampled_from(cls.inputs))
            node["inputs"][spec.name] = draw(input_value(spec))
        elif how == 1 and node["inputs"]:
            node["inputs"].pop(draw(st.sampled_from(sorted(node["inputs"]))))
        elif how == 2:
            workflow[draw(node_ids)] = workflow.pop(node_id)
        elif how == 3:
            workflow[draw(node_ids)] = draw(api_node())
        else:
            node["_meta"] = {"title": draw(json_values)}
    return workflow


api_workflows = st.dictionaries(node_ids, api_node() | json_values, max_size=10) | mutated_api()


@st.composite
def mutated_ui(draw):
    """A shipped UI workflow with hostile edits to nodes, widget values, modes and links."""
    workflow = json.loads(json.dumps(draw(st.sampled_from(UI_EXAMPLES))))
    nodes = workflow["nodes"]
    for _ in range(draw(st.integers(1, 4))):
        node = draw(st.sampled_from(nodes)) if nodes else {}
        how = draw(st.integers(0, 5))
        if how == 0:
            node["widgets_values"] = draw(st.lists(json_values | numbers | text, max_size=6) | json_values)
        elif how == 1:
            node["mode"] = draw(st.sampled_from([0, 2, 4]) | json_values)
        elif how == 2:
            node["id"] = draw(st.integers(-5, 60) | text | numbers)
        elif how == 3:
            node["type"] = draw(st.sampled_from(["Reroute", "PrimitiveNode", "Note"] + CLASS_NAMES) | text)
        elif how == 4 and isinstance(workflow.get("links"), list) and workflow["links"]:
            link = draw(st.sampled_from(workflow["links"]))
            if isinstance(link, list) and link:  # an earlier edit may have replaced the links
                link[draw(st.integers(0, len(link) - 1))] = draw(st.integers(-2, 60) | json_values)
        else:
            workflow[draw(st.sampled_from(["links", "nodes", "definitions", "last_node_id"]))] = draw(json_values)
    return workflow


def chain_ui(length: int, kind: str) -> dict:
    """LoadImage -> ``length`` Reroutes (or bypassed ImageInvert nodes) -> PreviewImage: valid, long."""
    middle = [{"id": 2 + i, "type": "Reroute" if kind == "reroute" else "ImageInvert", "mode": 0 if kind == "reroute" else 4,
               "inputs": [{"name": "" if kind == "reroute" else "image", "type": "*" if kind == "reroute" else "IMAGE",
                           "link": 1 + i}],
               "outputs": [{"name": "", "type": "IMAGE", "links": [2 + i]}]} for i in range(length)]
    ends = [{"id": 1, "type": "LoadImage", "mode": 0, "inputs": [],
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}], "widgets_values": ["example.png", "image"]},
            {"id": 2 + length, "type": "PreviewImage", "mode": 0,
             "inputs": [{"name": "images", "type": "IMAGE", "link": 1 + length}], "outputs": []}]
    links = [[1 + i, 1 + i, 0, 2 + i, 0, "IMAGE"] for i in range(length + 1)]
    return {"last_node_id": 2 + length, "last_link_id": 1 + length, "nodes": ends[:1] + middle + ends[1:],
            "links": links, "groups": [], "version": 0.4}


ui_workflows = mutated_ui() | st.builds(chain_ui, st.integers(0, 300), st.sampled_from(["reroute", "bypass"]))


def big_api(size: int, kind: str) -> dict:
    """Big graphs: a cycle, a chain with an error in every node, or a fan of independent nodes."""
    if kind == "cycle":
        return {str(i): {"class_type": "ImageInvert", "inputs": {"image": [str((i + 1) % size), 0]}} for i in range(size)}
    if kind == "errors":
        return {str(i): {"class_type": "ImageTuneResize", "inputs": {"image": [str(i - 1), 0], "width": "wide"}}
                for i in range(size)}
    graph = {str(i): {"class_type": "LoadImage", "inputs": {"image": f"{i}.png"}} for i in range(size)}
    graph["out"] = {"class_type": "PreviewImage", "inputs": {"images": ["0", 0]}}
    return graph


big_workflows = st.builds(big_api, st.integers(1, 400), st.sampled_from(["cycle", "errors", "fan"]))


# ---------------------------------------------------------------------------------------------
# PNG files: ComfyUI's text chunks (tEXt, zTXt, iTXt) around a tiny image, with damage.

def png_chunk(kind: bytes, data: bytes, crc_ok: bool = True) -> bytes:
    crc = zlib.crc32(kind + data) ^ (0 if crc_ok else 1)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


IHDR = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
IDAT = png_chunk(b"IDAT", zlib.compress(b"\0\0\0\0"))


@st.composite
def text_chunk(draw):
    key = draw(st.sampled_from([b"prompt", b"workflow"]) | st.binary(min_size=1, max_size=8).filter(lambda b: b"\0" not in b))
    payload = draw(api_workflows.map(to_bytes) | ui_workflows.map(to_bytes) | st.binary(max_size=40)
                   | st.sampled_from([b"\xff\xfe{}", b'{"1": {"class_type": "\xc3"}}', b"\xef\xbb\xbf{}", b"9" * 5000]))
    kind = draw(st.sampled_from(["tEXt", "zTXt", "iTXt", "iTXt-z"]))
    if kind == "tEXt":
        return png_chunk(b"tEXt", key + b"\0" + payload, draw(st.booleans()) or True)
    if kind == "zTXt":
        return png_chunk(b"zTXt", key + b"\0\0" + zlib.compress(payload))
    compressed = kind == "iTXt-z"
    body = zlib.compress(payload) if compressed else payload
    return png_chunk(b"iTXt", key + b"\0" + bytes([compressed, 0]) + b"\0\0" + body)


@st.composite
def png_files(draw):
    chunks = draw(st.lists(text_chunk(), min_size=1, max_size=3))
    after = draw(st.booleans())  # chunks after the image data need a full read
    raw = b"\x89PNG\r\n\x1a\n" + IHDR + (IDAT if after else b"") + b"".join(chunks) + (b"" if after else IDAT)
    raw += png_chunk(b"IEND", b"")
    damage = draw(st.integers(0, 3))
    if damage == 1:
        raw = raw[:draw(st.integers(8, len(raw)))]
    elif damage == 2:
        at = draw(st.integers(8, len(raw) - 1))
        raw = raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1:]
    return raw


# ---------------------------------------------------------------------------------------------
# the CI run: 800 cases per strategy (under a minute in all; IMAGETUNE_FUZZ_EXAMPLES changes it)

CI = settings(max_examples=int(os.environ.get("IMAGETUNE_FUZZ_EXAMPLES", "800")), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def case_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")

    def write(data: bytes, suffix: str = ".json") -> Path:
        path = folder / f"case{suffix}"
        path.write_bytes(data)
        return path

    return write


def json_cases(workflows):
    return st.builds(lambda w, bom, comma: to_bytes(w, bom=bom, trailing_comma=comma), workflows,
                     st.booleans(), st.integers(0, 9).map(lambda n: n == 0))


@CI
@given(json_cases(api_workflows))
def test_api_files(case_file, data):
    validate_file(case_file(data))


@CI
@given(json_cases(ui_workflows))
def test_ui_files(case_file, data):
    validate_file(case_file(data))


@CI
@given(png_files())
def test_png_files(case_file, data):
    validate_file(case_file(data, ".png"))


@settings(CI, max_examples=max(5, CI.max_examples // 6))
@given(big_workflows)
def test_big_graphs(case_file, workflow):
    validate_file(case_file(to_bytes(workflow)))


@CI
@given(api_workflows.map(to_bytes), st.data())
def test_damaged_json_text(case_file, data, cut):
    at = cut.draw(st.integers(0, len(data)))
    flipped = data[:at] + cut.draw(st.sampled_from([b"", b",", b"]", b"\xff", b"\\u", b"9" * 5000])) + data[at + 1:]
    validate_file(case_file(flipped))


# ---------------------------------------------------------------------------------------------
# the cases of issue 15, by name

def with_node(edit) -> dict:
    """The default API workflow after ``edit(workflow)``."""
    workflow = json.loads(json.dumps(DEFAULT_API))
    edit(workflow)
    return workflow


def float_input(workflow) -> tuple[str, str]:
    return next((node_id, name) for node_id, node in sorted(workflow.items())
                for name, value in node["inputs"].items() if isinstance(value, float))


def set_float(digits):
    def edit(workflow):
        node_id, name = float_input(workflow)
        workflow[node_id]["inputs"][name] = huge_int(digits)
    return edit


def png_with(key: bytes, payload: bytes) -> bytes:
    return (b"\x89PNG\r\n\x1a\n" + IHDR + png_chunk(b"tEXt", key + b"\0" + payload) + IDAT
            + png_chunk(b"IEND", b""))


def renamed(old: str, new: str):
    def edit(workflow):
        workflow[new] = workflow.pop(old)
    return edit


def deep_in(where: str):
    def edit(workflow):
        node = workflow[sorted(workflow)[0]]
        if where == "_meta":
            node["_meta"] = {"title": deep_list(950)}
        else:
            node["class_type"] = deep_list(950)
    return edit


def surrogate_input(workflow):
    workflow[sorted(workflow)[0]]["inputs"]["\udc80name"] = 1


REGRESSIONS = {
    "float-widget-309-digit-int": (lambda: to_bytes(with_node(set_float(309))), ".json", "invalid"),
    "json-number-5000-digits": (lambda: to_bytes(with_node(set_float(5000))), ".json", "invalid"),
    "png-chunk-5000-digit-number": (lambda: png_with(b"prompt", to_bytes(with_node(set_float(5000)))), ".png", "invalid"),
    "id-superscript-two": (lambda: to_bytes(with_node(renamed(sorted(DEFAULT_API)[0], "²"))), ".json", None),
    "id-superscript-two-nine": (lambda: to_bytes(with_node(renamed(sorted(DEFAULT_API)[0], "²9"))), ".json", None),
    "nested-950-in-meta": (lambda: to_bytes(with_node(deep_in("_meta"))), ".json", None),
    "nested-950-in-class-type": (lambda: to_bytes(with_node(deep_in("class_type"))), ".json", "invalid"),
    "lone-surrogate-id": (lambda: to_bytes(with_node(renamed(sorted(DEFAULT_API)[0], "\ud800"))), ".json", "invalid"),
    "lone-surrogate-input-name": (lambda: to_bytes(with_node(surrogate_input)), ".json", None),
    "utf8-bom": (lambda: to_bytes(DEFAULT_API, bom=True), ".json", "valid"),
    "trailing-comma": (lambda: to_bytes(DEFAULT_API, trailing_comma=True), ".json", "invalid"),
    "png-prompt-invalid-utf8": (lambda: png_with(b"prompt", to_bytes(DEFAULT_API).replace(b'"text": "', b'"text": "\xc3(', 1)),
                                ".png", "invalid"),
    "reroute-chain-5000": (lambda: to_bytes(chain_ui(5000, "reroute")), ".json", "valid"),
    "bypass-chain-5000": (lambda: to_bytes(chain_ui(5000, "bypass")), ".json", "valid"),
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_issue_15_case(case_file, name):
    make, suffix, expected = REGRESSIONS[name]
    verdict, printed = validate_file(case_file(make(), suffix))
    assert expected is None or verdict == expected, printed[-2000:]


BIG = {"cycle-10000": (10_000, "cycle"), "cycle-30000": (30_000, "cycle"), "errors-20000": (20_000, "errors"),
       "nodes-50000": (50_000, "fan")}


@pytest.mark.parametrize("name", sorted(BIG))
def test_issue_15_big_graph_answers_quickly_and_briefly(case_file, name):
    import time

    size, kind = BIG[name]
    data = to_bytes(big_api(size, kind))
    started = time.perf_counter()
    verdict, printed = validate_file(case_file(data), seconds=30.0)
    seconds = time.perf_counter() - started
    assert seconds < 6.0, f"{name}: {seconds:.1f} s"  # issue 15 asks 2 s for 10,000 nodes; CI machines are slow
    assert len(printed) < 1_000_000, f"{name}: a {len(printed):,}-character message"  # was 4 MB
    assert verdict == "invalid" or kind == "fan"
