"""Every registered node has a display name a person would write: whole words, acronyms kept whole."""
from __future__ import annotations

import re

import pytest

from imagetune import NODE_DISPLAY_NAME_MAPPINGS
from imagetune.graph_runtime.spec import NODE_ID_PREFIX, SPELLED_WORDS, _title_from_id
from imagetune.nodes import ALL_NODES

SUFFIX = " (ImageTune)"


def name_problems(name: str) -> list[str]:
    """What makes a display name read like a split id rather than words a person wrote."""
    words = re.findall(r"[^\s()]+", name.removesuffix(SUFFIX))
    problems = []
    for index, word in enumerate(words):
        if re.search(r"[A-Z]{2,}[a-z]", word):
            problems.append(f"{word!r} runs an acronym into the next word")
        elif re.search(r"[a-z][A-Z]", word) and word not in SPELLED_WORDS:
            problems.append(f"{word!r} runs two words together")
        if re.fullmatch(r"[A-Za-z]", word) and index < len(words) - 1:
            problems.append(f"{word!r} is a lone letter inside the name (a split word?)")
    if not words:
        problems.append("no words")
    return problems


@pytest.mark.parametrize("cls", ALL_NODES, ids=lambda c: c.node_id)
def test_every_node_has_a_display_name_a_person_would_write(cls):
    assert name_problems(cls.display_name) == []
    if cls.comfy_core:
        assert not cls.display_name.endswith(SUFFIX)
    else:
        assert cls.display_name.endswith(SUFFIX) and NODE_DISPLAY_NAME_MAPPINGS[cls.node_id] == cls.display_name


def test_display_names_are_unique():
    names = [c.display_name for c in ALL_NODES]
    assert sorted(n for n in names if names.count(n) > 1) == []


@pytest.mark.parametrize("name", ["Li TBest Of N (ImageTune)", "Load Li TModel (ImageTune)", "GANGenerate (ImageTune)",
                                  "Conditioning To GANLatent (ImageTune)", "Generate FromImage (ImageTune)"])
def test_the_check_catches_split_acronyms_and_run_together_words(name):
    assert name_problems(name) != []


@pytest.mark.parametrize("node_id, title", [
    ("ImageTuneLiTBestOfN", "LiT Best Of N (ImageTune)"),
    ("ImageTuneLoadLiTModel", "Load LiT Model (ImageTune)"),
    ("ImageTuneGANGenerate", "GAN Generate (ImageTune)"),
    ("ImageTuneConditioningToGANLatent", "Conditioning To GAN Latent (ImageTune)"),
    ("ImageTuneCLAHE", "CLAHE (ImageTune)"),
    ("ImageTuneLoadGAN", "Load GAN (ImageTune)"),
    ("ImageTuneUpscale4x", "Upscale 4x (ImageTune)"),
    ("ImageTuneLiterature", "Literature (ImageTune)"),  # a spelled word only where it is a whole word
])
def test_derived_titles_keep_acronyms_and_spelled_words_whole(node_id, title):
    assert _title_from_id(node_id) == title
    assert "".join(title.removesuffix(SUFFIX).split()) == node_id[len(NODE_ID_PREFIX):]
