"""Training the prompt-understanding model: seeded, resumable, and what it saves loads."""
from safetensors.torch import load_file

from imagetune.shapes import train_understand
from imagetune.shapes.understand import WEIGHTS, PromptReader

TINY = ["--captions", "48", "--batch", "8", "--dim", "32", "--layers", "1", "--save-every", "2", "--lr", "3e-3"]


def test_a_stopped_run_continues_exactly_where_it_stopped(tmp_path):
    """6 steps at once == 4 steps, stop, then the same command again (weights, EMA, optimiser, RNG restored)."""
    results = {}
    for name, runs in (("straight", [[]]), ("resumed", [["--stop-at", "4"], []])):
        for extra in runs:
            train_understand.main(["--out", str(tmp_path / name / "out"), "--work", str(tmp_path / name / "work"),
                                   "--steps", "6", *TINY, *extra])
        results[name] = load_file(tmp_path / name / "out" / WEIGHTS)
    log = (tmp_path / "resumed" / "work" / "train.log").read_text()
    assert "stopped at step 4" in log and "resumed from" in log and "reusing the MiniLM states" in log
    straight, resumed = results["straight"], results["resumed"]
    assert straight.keys() == resumed.keys() and all((straight[k] == resumed[k]).all() for k in straight)
    model = PromptReader.from_pretrained(tmp_path / "resumed" / "out")
    assert model.config.dim == 32 and model.config.training["captions"] == 48
    assert float(model.start_state.norm()) > 1.0  # MiniLM's mean start-token state, not the zeros it starts as
