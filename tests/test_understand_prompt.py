"""The prompt-understanding model and the Understand Prompt node: saving and loading, decoding, the
node end to end on the shipped model and the real MiniLM, and its errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from imagetune.graph_runtime import ExecutionContext, NodeInputError, Runtime, ValidationError
from imagetune.nodes import default_registry
from imagetune.nodes.understand_prompt import UnderstandPromptNode, load_reader
from imagetune.ops import conditioning as C
from imagetune.ops.model_files import DEFAULT_PROMPT_READER
from imagetune.shapes.reading import Mention, Reading
from imagetune.shapes.slots import IGNORE, SLOTS, decode, targets
from imagetune.shapes.understand import CONFIG, WEIGHTS, PromptReader, ReaderConfig, not_minilm, read

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / DEFAULT_PROMPT_READER

# Wordings training never produces (held-out fillers, templates, negation, relation and count phrasings)
# that the shipped model reads right, and the canonical caption each must become.
UNDERSTOOD = {
    "a render of a red circle on a green background, trending on artstation": "a red circle on a green background",
    "there is a yellow square on a black background": "a yellow square on a black background",
    "a blue triangle, avoid a white background": "a blue triangle on a black background",
    "a red circle sitting atop a blue square": "a red circle above a blue square",
    "a blue square lower than a yellow circle": "a yellow circle above a blue square",
    "a couple of yellow circles": "two yellow circles",
    "a photo of a square right of a circle": "a circle to the left of a square",  # GenEval's template, trained
}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    base = tmp_path_factory.mktemp("understand")
    return ExecutionContext(device="cpu", input_dir=base / "in", output_dir=base / "out", models_dirs=[ROOT / "models"])


@pytest.fixture(scope="module")
def minilm():
    from imagetune.ops.model_files import ModelSource
    from imagetune.ops.text_encoders import load_text_encoder, minilm_path
    return load_text_encoder(ModelSource("minilm", path=minilm_path()), "cpu")


def encoded(minilm, prompts, ctx, record: bool = True):
    """The CONDITIONING Encode Text makes of ``prompts`` (with the prompts recorded, unless not ``record``)."""
    from imagetune.ops.text_encoders import encode
    return C.make(*encode(minilm, prompts, ctx), prompts if record else None)


def small_reader(seed: int = 0) -> PromptReader:
    torch.manual_seed(seed)
    model = PromptReader(ReaderConfig(dim=32, layers=1, heads=2, ff=64)).eval()
    model.start_state.normal_()
    return model


def test_save_and_load_round_trip_through_the_node_loader(tmp_path):
    model = small_reader()
    folder = tmp_path / "prompt_readers" / "mine"
    model.save_pretrained(folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted([WEIGHTS, CONFIG])
    ctx = ExecutionContext(device="cpu", models_dirs=[tmp_path])
    for name in ("mine", "prompt_readers/mine"):
        loaded = load_reader(ctx, name)
        assert loaded.config == model.config and not loaded.training
        saved = load_file(folder / WEIGHTS)
        assert all(v.dtype == torch.float16 for v in saved.values())
        for key, value in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value.half().float()), key
    states = torch.randn(3, 77, 384)
    with torch.no_grad():
        ours = {k: v.float() for k, v in PromptReader.from_pretrained(folder)(states).items()}
        theirs = model.half().float()(states)
    assert all(torch.allclose(ours[k], theirs[k], atol=1e-5) for k in SLOTS)
    assert [r.kind for r in read(loaded, states)] == [r.kind for r in read(model.half().float(), states)]


def test_loading_refuses_what_is_not_a_reader(tmp_path):
    folder = tmp_path / "bad"
    small_reader().save_pretrained(folder)
    config = json.loads((folder / CONFIG).read_text())
    (folder / CONFIG).write_text(json.dumps({**config, "slots": {**config["slots"], "count": [2, 3, 4]}}))
    with pytest.raises(ValueError, match="slots"):
        PromptReader.from_pretrained(folder)
    (folder / CONFIG).write_text(json.dumps({**config, "format": "something-else"}))
    with pytest.raises(ValueError, match="format"):
        PromptReader.from_pretrained(folder)
    (folder / CONFIG).write_text(json.dumps(config))
    weights = load_file(folder / WEIGHTS)
    weights.pop("project.weight")
    save_file(weights, folder / WEIGHTS)
    with pytest.raises(ValueError, match="does not fit"):
        PromptReader.from_pretrained(folder)
    ctx = ExecutionContext(device="cpu", models_dirs=[tmp_path])
    with pytest.raises(NodeInputError, match="not a prompt-understanding model"):
        load_reader(ctx, "bad")
    with pytest.raises(NodeInputError, match="not there"):
        load_reader(ctx, "missing")
    assert UnderstandPromptNode.check_inputs(model="../outside") != []


def test_slots_round_trip_every_kind_of_reading():
    readings = [
        Reading(Mention("circle", "red"), background="blue"),
        Reading(Mention(None, "red"), background="blue", not_shape="triangle"),
        Reading(Mention("square", None), not_background="white"),
        Reading(Mention("circle", "red"), Mention("square", None)),
        Reading(Mention("circle", "red"), Mention("triangle", "green"), "above", background="white"),
        Reading(Mention("triangle", "yellow"), count=3, background="black"),
    ]
    for reading in readings:
        index = targets(reading)
        assert set(index) == set(SLOTS)
        assert decode({k: (v if v != IGNORE else 0) for k, v in index.items()}) == reading
    single = targets(readings[0])
    assert single["second_shape"] == single["relation"] == single["count"] == IGNORE


def understand_workflow(text: str, width_probe: str | None = None) -> dict:
    """Load MiniLM -> Encode Text (one prompt per line) -> Understand Prompt -> a sink."""
    return {
        "1": {"class_type": "ImageTuneLoadTextEncoder", "inputs": {"text_encoder": "minilm", "dtype": "auto",
                                                                 "device": "cpu"}},
        "2": {"class_type": "ImageTuneEncodeText", "inputs": {"text_encoder": ["1", 0], "text": text,
                                                            "one_prompt_per_line": True}},
        "3": {"class_type": "ImageTuneUnderstandPrompt", "inputs": {"conditioning": ["2", 0], "text_encoder": ["1", 0],
                                                                  "model": DEFAULT_PROMPT_READER}},
        "4": {"class_type": "ImageTuneTestKeep", "inputs": {"value": ["3", 0]}},
    }


def test_the_node_reads_unseen_wordings_into_canonical_captions(ctx, minilm, keep_node):
    from imagetune.graph_runtime import NodeRegistry
    from imagetune.nodes import ALL_NODES

    result = Runtime(NodeRegistry(ALL_NODES + (keep_node,))).run(understand_workflow("\n".join(UNDERSTOOD)), ctx=ctx)
    cond, captions = result.outputs["3"]
    assert captions.splitlines() == list(UNDERSTOOD.values())
    assert result.ui["3"]["text"] == [captions]
    expected = encoded(minilm, list(UNDERSTOOD.values()), ctx)  # one row per input row, in the generator's words
    # two-object rows: regional conditioning, its first window the understood caption (shapes/regions.py)
    assert len(cond) == 1 and cond[0][0].shape == (len(UNDERSTOOD), 154, 384)
    assert torch.allclose(cond[0][0][:, :77], expected[0][0], atol=1e-5)
    assert torch.allclose(cond[0][1][C.POOLED], expected[0][1][C.POOLED], atol=1e-5)
    seen = cond[0][1][C.REGIONS]
    assert seen.shape == (len(UNDERSTOOD), 154, 16, 16) and bool(seen[:, :77].all())
    assert not seen[:2, 77:].any()  # one thing: no thing blocks
    above = list(UNDERSTOOD).index("a red circle sitting atop a blue square")  # "red circle" seen from the top
    assert seen[above, 77, :8].all() and not seen[above, 77, 8:].any() and seen[above, 102, 8:].all()


def test_regions_off_gives_the_understood_caption_alone(ctx, minilm):
    prompts = ["a red circle sitting atop a blue square", "a couple of yellow circles"]
    cond, captions = UnderstandPromptNode().run(ctx, encoded(minilm, prompts, ctx), minilm, DEFAULT_PROMPT_READER,
                                                regions=False)["result"]
    expected = encoded(minilm, captions.splitlines(), ctx)
    assert C.REGIONS not in cond[0][1] and torch.allclose(cond[0][0], expected[0][0], atol=1e-5)


def test_every_conditioning_entry_is_read_and_its_extras_kept(ctx, minilm):
    first, second = encoded(minilm, ["a red circle on a blue background"], ctx), encoded(
        minilm, [f"a green square on a white background, {'very ' * 80}simple"], ctx)  # two 77-token windows
    second[0][1]["strength"] = 0.5
    cond, captions = UnderstandPromptNode().run(ctx, first + second, minilm, DEFAULT_PROMPT_READER)["result"]
    assert captions.splitlines() == ["a red circle on a blue background", "a green square on a white background"]
    assert len(cond) == 2 and cond[1][1]["strength"] == 0.5 and cond[1][0].shape == (1, 77, 384)


# colour names outside every word list of the language (training and held out), and the world colour each is
COLOUR_NAMED = {"a maroon circle on a periwinkle background": "a red circle on a blue background",
                "an aubergine square on a pistachio background": "a purple square on a green background"}


def test_colour_names_it_never_learnt_are_read_from_the_recorded_prompts(ctx, minilm, keep_node):
    from imagetune.graph_runtime import NodeRegistry
    from imagetune.nodes import ALL_NODES

    result = Runtime(NodeRegistry(ALL_NODES + (keep_node,))).run(understand_workflow("\n".join(COLOUR_NAMED)), ctx=ctx)
    cond, captions = result.outputs["3"]
    assert captions.splitlines() == list(COLOUR_NAMED.values())
    assert cond[0][1][C.PROMPTS] == list(COLOUR_NAMED.values())  # what its rows now encode
    alone = UnderstandPromptNode().run(ctx, encoded(minilm, list(COLOUR_NAMED), ctx, record=False), minilm,
                                       DEFAULT_PROMPT_READER)["result"][1]
    assert alone.splitlines() != list(COLOUR_NAMED.values())  # the model alone misreads them: the names did it


def test_recorded_prompts_are_ignored_once_the_tokens_are_not_theirs(ctx, minilm):
    prompts = list(COLOUR_NAMED)
    plain = UnderstandPromptNode().run(ctx, encoded(minilm, prompts, ctx, record=False), minilm,
                                       DEFAULT_PROMPT_READER)["result"][1]
    stale = encoded(minilm, prompts, ctx)
    stale[0][0] = stale[0][0] * 1.0001  # as a scale or blend after Encode Text leaves the recorded prompts behind
    changed = UnderstandPromptNode().run(ctx, stale, minilm, DEFAULT_PROMPT_READER)["result"][1]
    assert changed != "\n".join(COLOUR_NAMED.values())  # the stale prompts were not read
    assert changed == UnderstandPromptNode().run(ctx, [[stale[0][0], {C.POOLED: stale[0][1][C.POOLED]}]], minilm,
                                                 DEFAULT_PROMPT_READER)["result"][1]
    for bad in (["one prompt too few"], "not a list", [1, 2]):
        cond = encoded(minilm, prompts, ctx)
        cond[0][1][C.PROMPTS] = bad
        assert UnderstandPromptNode().run(ctx, cond, minilm, DEFAULT_PROMPT_READER)["result"][1] == plain


def test_the_node_names_what_it_expected(ctx, minilm):
    node, good = UnderstandPromptNode(), encoded(minilm, ["a red circle"], ctx)
    wide = C.make(torch.randn(1, 77, 768), None)
    with pytest.raises(NodeInputError, match="conditioning: expected MiniLM token states of width 384.*got width 768"):
        node.run(ctx, wide, minilm, DEFAULT_PROMPT_READER)
    cut = C.make(good[0][0][:, :50], None)
    with pytest.raises(NodeInputError, match="conditioning: expected a token length that is a multiple of 77.*got 50"):
        node.run(ctx, cut, minilm, DEFAULT_PROMPT_READER)
    rotated = C.make(good[0][0] @ torch.linalg.qr(torch.randn(384, 384, generator=torch.Generator().manual_seed(0)))[0],
                     None)
    with pytest.raises(NodeInputError, match=r"conditioning: expected MiniLM token states.*row\(s\) \[0\]"):
        node.run(ctx, rotated, minilm, DEFAULT_PROMPT_READER)
    with pytest.raises(NodeInputError, match="conditioning: expected CONDITIONING"):
        node.run(ctx, torch.zeros(1, 77, 384), minilm, DEFAULT_PROMPT_READER)
    with pytest.raises(NodeInputError, match="model: expected a prompt-understanding model folder"):
        node.run(ctx, good, minilm, "no-such-reader")


def test_minilm_states_pass_the_start_token_check(ctx, minilm):
    model = load_reader(ctx, DEFAULT_PROMPT_READER)
    prompts = ["", "a", "Ein rotes Quadrat auf blauem Hintergrund", "lorem ipsum dolor sit amet " * 30,
               "a photorealistic portrait of an astronaut riding a horse on mars, 8k"]
    from imagetune.ops.text_encoders import encode
    states, _ = encode(minilm, prompts, ctx)
    assert states.shape[1] > 77 and not_minilm(model, states) == []
    assert not_minilm(model, torch.randn(2, 154, 384)) == [0, 1]
    assert not_minilm(model, torch.cat([states[:1, :77], torch.full((1, 77, 384), float("nan"))])) == [1]


def test_a_workflow_with_a_bad_model_name_fails_validation(keep_node):
    from imagetune.graph_runtime import NodeRegistry
    from imagetune.nodes import ALL_NODES

    workflow = understand_workflow("a red circle")
    workflow["3"]["inputs"]["model"] = "../../etc"
    with pytest.raises(ValidationError, match="model"):
        Runtime(NodeRegistry(ALL_NODES + (keep_node,))).prepare(workflow)


def test_readers_in_prompt_readers_are_listed_after_the_shipped_one(tmp_path, monkeypatch):
    small_reader().save_pretrained(tmp_path / "prompt_readers" / "mine")
    monkeypatch.setenv("IMAGETUNE_MODELS_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    listed = UnderstandPromptNode.input("model").listed_choices()
    assert listed[0] == DEFAULT_PROMPT_READER and "mine" in listed


def test_the_shipped_reader_is_small_and_reads_minilm():
    sizes = {p.name: p.stat().st_size for p in SHIPPED.iterdir()}
    assert set(sizes) == {WEIGHTS, CONFIG} and sizes[WEIGHTS] < 4 * 2 ** 20
    config = json.loads((SHIPPED / CONFIG).read_text())
    assert config["width"] == 384 and config["window"] == 77 and config["text_encoder"]["hidden_size"] == 384
    assert "train_understand" in config["training"]["command"]


def test_the_evaluation_reads_prompts_as_the_default_workflow_does(ctx, minilm):
    from imagetune.shapes.evaluate import DEFAULT_WORKFLOW, understood, workflow_reader

    folder = workflow_reader(DEFAULT_WORKFLOW)  # the model the workflow's Understand Prompt node names
    assert folder == SHIPPED
    prompts = list(UNDERSTOOD) + ["a ruby orb, avoid an ebony background", "cobalt canvas and twin lemon cubes"]
    node = UnderstandPromptNode().run(ctx, encoded(minilm, prompts, ctx), minilm, DEFAULT_PROMPT_READER)["result"][1]
    text = (minilm.tokenizer, minilm.model)
    assert understood(PromptReader.from_pretrained(folder), text, prompts) == node.splitlines()
