"""Sweeps on a real local Ray cluster started by the tests (``ray.init(num_cpus=2)``)."""
from __future__ import annotations

import os

import numpy as np
import pytest

from imagetune.graph_runtime import sweep
from imagetune.graph_runtime.sweep_ray import actor_plan

ray = pytest.importorskip("ray")


def start_cluster(**resources) -> None:
    """A fresh local cluster; token authentication off so no test depends on a token in $HOME."""
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(include_dashboard=False, log_to_driver=False, **resources)


@pytest.fixture(scope="module")
def _cluster_lifetime():
    before = os.environ.get("RAY_AUTH_MODE")
    yield
    ray.shutdown()
    if before is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = before


@pytest.fixture
def cluster(_cluster_lifetime):
    """A 2-CPU local cluster, started once for the module (again only after a test replaced it)."""
    if not ray.is_initialized():
        start_cluster(num_cpus=2)


def test_ray_sweep_makes_the_same_images_as_a_local_one(cluster, small, shared_runtime, tmp_path):
    local = sweep(small.workflow, small.vary, out=tmp_path / "local", runtime=shared_runtime)
    rows = sweep(small.workflow, small.vary, out=tmp_path / "ray", ray=True, threads=1)
    assert [r["status"] for r in rows] == ["done"] * 6
    assert [r["overrides"] for r in rows] == [r["overrides"] for r in local]
    pids = {r["worker"]["pid"] for r in rows}
    assert len(pids) == 2 and os.getpid() not in pids                  # two CPU actors did the work
    for mine, theirs in zip(local, rows):
        assert theirs["outputs"] == mine["outputs"]
        assert np.array_equal(small.pixels(tmp_path / "local" / mine["outputs"][0]),
                              small.pixels(tmp_path / "ray" / theirs["outputs"][0]))


def test_killed_actor_is_restarted_and_every_job_ends_done(cluster, small, tmp_path):
    workflow = small.write(tmp_path, steps=12)
    out = tmp_path / "out"
    rows, killed = small.run_killing_first_worker(
        lambda: sweep(workflow, {"6.seed": list(range(10))}, out=out, ray=True, threads=1), out)
    assert [r["status"] for r in rows] == ["done"] * 10
    assert sorted(r["job"] for r in rows) == list(range(10))
    pids = {r["worker"]["pid"] for r in rows}
    assert killed in pids and len(pids) >= 3                           # a restarted actor took over


def test_one_actor_per_gpu_each_with_its_own_device(cluster, small, tmp_path):
    ray.shutdown()
    start_cluster(num_cpus=2, num_gpus=2)        # Ray is told of two GPUs this machine does not have
    try:
        rows = sweep(small.workflow, {"6.seed": [0, 1, 2, 3]}, out=tmp_path, ray=True)
    finally:
        ray.shutdown()
    assert [r["status"] for r in rows] == ["done"] * 4
    assert {r["worker"]["gpus"] for r in rows} == {"0", "1"}
    assert {r["worker"]["device"] for r in rows} == {"cpu"}                # no CUDA here: torch says so


@pytest.mark.parametrize("resources, workers, threads, expected", [
    ({"CPU": 8.0}, None, None, (8, {"num_cpus": 1})),
    ({"CPU": 8.0}, None, 2, (4, {"num_cpus": 2})),
    ({"CPU": 8.0}, 3, None, (3, {"num_cpus": 1})),
    ({"CPU": 2.0}, 4, None, (2, {"num_cpus": 1})),
    ({"CPU": 2.0}, None, 4, (1, {"num_cpus": 2})),
    ({"CPU": 8.0, "GPU": 4.0}, None, None, (4, {"num_gpus": 1, "num_cpus": 1})),
    ({"CPU": 8.0, "GPU": 4.0}, 2, None, (2, {"num_gpus": 1, "num_cpus": 1})),
])
def test_actor_plan(resources, workers, threads, expected):
    assert actor_plan(resources, workers, threads) == expected
