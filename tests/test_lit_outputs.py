"""LiT tuning never replaces an earlier model: it refuses a folder that is not empty."""
from __future__ import annotations

import pytest
import torch

from imagetune.graph_runtime.cli import main
from imagetune.lit.model import ModelExistsError

TINY = ["--pairs", "16", "--steps", "2", "--batch-size", "4", "--image-size", "32", "--image-tower",
        "efficientnet-lite0", "--no-progress", "--threads", "1"]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """One tiny tuning run into a fresh folder, and the bytes it wrote."""
    out = tmp_path_factory.mktemp("lit") / "head"
    before = torch.get_num_threads()
    try:
        assert main(["lit-tune", "shapes", "--out", str(out), *TINY]) == 0
    finally:
        torch.set_num_threads(before)
    return out, {p.name: p.read_bytes() for p in out.iterdir()}


def test_second_run_into_the_same_folder_is_refused_and_changes_nothing(tuned, capsys):
    out, first = tuned
    assert main(["lit-tune", "shapes", "--out", str(out), *TINY, "--seed", "1"]) == 2
    assert "--out" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    assert [p.name for p in out.parent.iterdir()] == ["head"], "a temp folder was left behind"


def test_save_refuses_a_folder_with_other_files_and_accepts_an_empty_one(tuned, tmp_path):
    from imagetune.lit.model import load_lit_model

    model = load_lit_model(tuned[0])
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ModelExistsError) as caught:
        model.save(tmp_path / "busy")
    assert str(caught.value).startswith("name: ")  # the node input the TuneLiT node reports
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]
    (tmp_path / "empty").mkdir()
    model.save(tmp_path / "empty")
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == ["config.json", "head.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "empty"]


def test_a_save_racing_another_into_one_name_fails_instead_of_mixing(tuned, tmp_path, monkeypatch):
    from imagetune.lit import model as lit_model

    model = lit_model.load_lit_model(tuned[0])
    target = tmp_path / "raced"
    real_check = lit_model.check_new_folder

    def check_then_lose_the_race(folder):
        real_check(folder)
        target.mkdir()
        (target / "config.json").write_text("the other run's")  # it finished between check and rename

    monkeypatch.setattr(lit_model, "check_new_folder", check_then_lose_the_race)
    with pytest.raises(ModelExistsError):
        model.save(target)
    assert [p.name for p in target.iterdir()] == ["config.json"]
    assert (target / "config.json").read_text() == "the other run's"
    assert [p.name for p in tmp_path.iterdir()] == ["raced"]
