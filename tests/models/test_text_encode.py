"""Text encode node: token states and pooled vectors against the encoders' own forward passes."""
from __future__ import annotations

import pytest
import torch

from imagetune.nodes.loaders import LoadTextEncoderNode
from imagetune.nodes.text_encode import EncodeTextNode, split_prompts


def encoder(ctx, name):
    return LoadTextEncoderNode().run(ctx.for_node("1"), name, "auto", "auto")[0]


def encode(ctx, handle, text, per_line=False):
    (cond,) = EncodeTextNode().run(ctx.for_node("2"), handle, text, per_line)
    assert isinstance(cond, list) and len(cond) == 1 and set(cond[0][1]) == {"pooled_output", "imagetune_prompts"}
    from imagetune.nodes.text_encode import split_prompts
    assert cond[0][1]["imagetune_prompts"] == split_prompts(text, per_line)  # what the rows encode, for Understand Prompt
    return cond[0][0], cond[0][1]["pooled_output"]


def reference_chunk(handle, words: list[str]):
    """The encoder's own output for <s> words </s> padded to 77, with its attention mask."""
    tok = handle.tokenizer
    ids = tok(" ".join(words))["input_ids"]
    mask = [1] * len(ids) + [0] * (77 - len(ids))
    ids = ids + [tok.pad_token_id] * (77 - len(ids))
    with torch.no_grad():
        out = handle.model(input_ids=torch.tensor([ids]), attention_mask=torch.tensor([mask]))
    return out, torch.tensor([mask])


def test_clip_tokens_and_projected_pooled_match_the_model(ctx_for):
    ctx = ctx_for()
    handle = encoder(ctx, "tiny-clip-proj")
    tokens, pooled = encode(ctx, handle, "a red circle on a blue background")
    out, _ = reference_chunk(handle, "a red circle on a blue background".split())
    assert tokens.shape == (1, 77, 32) and pooled.shape == (1, 24)
    assert tokens.dtype == pooled.dtype == torch.float32
    torch.testing.assert_close(tokens, out.last_hidden_state)
    torch.testing.assert_close(pooled, out.text_embeds)


def test_bert_pooled_is_the_masked_mean_of_the_token_states(ctx_for):
    ctx = ctx_for()
    handle = encoder(ctx, "tiny-bert")
    tokens, pooled = encode(ctx, handle, "the small dog")
    out, mask = reference_chunk(handle, "the small dog".split())
    valid = out.last_hidden_state[0, : int(mask.sum())]
    torch.testing.assert_close(tokens, out.last_hidden_state)
    torch.testing.assert_close(pooled[0], valid.mean(0))


def test_long_prompt_is_chunked_by_75_tokens_not_cut(ctx_for):
    ctx = ctx_for()
    handle = encoder(ctx, "tiny-clip")
    words = (["red", "green", "blue", "circle", "square"] * 40)[:160]  # 160 tokens: 75 + 75 + 10
    tokens, _ = encode(ctx, handle, " ".join(words))
    assert tokens.shape == (1, 3 * 77, 32)
    for i, chunk in enumerate((words[:75], words[75:150], words[150:])):
        out, _ = reference_chunk(handle, chunk)
        torch.testing.assert_close(tokens[:, 77 * i: 77 * (i + 1)], out.last_hidden_state)


@pytest.mark.parametrize("name", ["tiny-t5", "tiny-gpt2"])
def test_other_encoder_kinds_give_one_window_per_chunk(ctx_for, name):
    ctx = ctx_for()
    tokens, pooled = encode(ctx, encoder(ctx, name), "a green triangle")
    assert tokens.shape == (1, 77, 32) and pooled.shape == (1, 32)
    assert torch.isfinite(tokens).all()


def test_one_prompt_per_line_makes_a_batch_and_pads_to_the_longest(ctx_for):
    ctx = ctx_for()
    handle = encoder(ctx, "tiny-clip")
    long_line = " ".join(["red circle"] * 50)  # 100 tokens: two chunks
    tokens, pooled = encode(ctx, handle, f"a red circle\n\n{long_line}\n", per_line=True)
    assert tokens.shape == (2, 154, 32) and pooled.shape == (2, 32)
    alone, _ = encode(ctx, handle, "a red circle")
    empty, _ = encode(ctx, handle, "")
    torch.testing.assert_close(tokens[0:1, :77], alone)
    torch.testing.assert_close(tokens[0:1, 77:], empty)  # padded with the empty prompt's chunk


def test_multiline_text_is_one_prompt_by_default():
    assert split_prompts("a red\ncircle", False) == ["a red\ncircle"]
    assert split_prompts("a red\n  \ncircle ", True) == ["a red", "circle"]
    assert split_prompts("\n\n", True) == [""]


def test_empty_prompt_encodes_to_start_and_end_tokens(ctx_for):
    ctx = ctx_for()
    handle = encoder(ctx, "tiny-clip")
    tokens, pooled = encode(ctx, handle, "")
    out, _ = reference_chunk(handle, [])
    assert tokens.shape == (1, 77, 32)
    torch.testing.assert_close(tokens, out.last_hidden_state)


def test_minilm_matches_sentence_transformers_mean_pooling(ctx_for):
    ctx = ctx_for()
    handle = encoder(ctx, "minilm")
    tokens, pooled = encode(ctx, handle, "a red circle on a blue background")
    batch = handle.tokenizer(["a red circle on a blue background"], return_tensors="pt")
    with torch.no_grad():
        states = handle.model(**batch).last_hidden_state
    assert tokens.shape == (1, 77, 384)
    n = batch["input_ids"].shape[1]
    torch.testing.assert_close(tokens[:, :n], states, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(pooled, states.mean(1), atol=1e-5, rtol=1e-4)
