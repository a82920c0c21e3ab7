"""The oldest stack pyproject.toml's ranges allow, in an environment of its own (`make test-compat`: .venv-compat with
the lower bounds of mujoco and gymnasium, and gymnasium-robotics): the shipped tasks build and step, the MuJoCo
backend still reproduces plain `mujoco.mj_step`, and DDPG+HER trains gymnasium-robotics' FetchReach-v4 from the CLI.
The main suite does not collect this folder (tests/conftest.py); it needs gymnasium-robotics."""

import json
from importlib.metadata import requires, version

import pytest
import torch
from packaging.requirements import Requirement

pytest.importorskip("gymnasium_robotics")

import test_backend_conformance as conformance  # noqa: E402  (tests/ is on sys.path: tests/conftest.py)
from pg_robotics.envs import make  # noqa: E402
from pgr_cli import pgr  # noqa: E402


@pytest.mark.parametrize("package", ["mujoco", "gymnasium"])
def test_the_installed_versions_are_the_lower_bounds_of_the_train_extra(package):
    """What this environment tests is what the package metadata claims as its oldest."""
    reqs = [Requirement(r) for r in requires("pg_robotics")]
    req = next(r for r in reqs if r.name == package and r.marker and r.marker.evaluate({"extra": "train"}))
    floor = next(s.version for s in req.specifier if s.operator == ">=")
    assert version(package) == floor or version(package) == f"{floor}.0", (package, version(package), str(req))


@pytest.mark.parametrize("task", ["quadruped-flat", "arm-reach"])
def test_the_shipped_tasks_build_and_step(task):
    env = make(task, 2, seed=0, overrides={"sim": {"nthread": 1}})
    try:
        obs = env.reset()
        for _ in range(5):
            obs, reward, done, info = env.step(torch.zeros(2, env.num_actions))
        for value in obs.values():
            assert value.shape[0] == 2 and torch.isfinite(value).all()
        assert torch.isfinite(reward).all() and not info.get("diverged", torch.zeros(2)).any()
        assert info.get("num_diverged", 0) == 0
    finally:
        env.close()


def test_the_mujoco_backend_still_matches_mj_step():
    """The conformance suite's own checks (tests/test_backend_conformance.py), on this MuJoCo: 0.5 s of Go1 and of
    the arm against mj_step world by world, foot contact forces included."""
    go1 = conformance.backend("mujoco")
    try:
        conformance.test_trajectory_matches_c_mujoco(go1)
    finally:
        go1.close()
    conformance.test_arm_trajectory_matches_c_mujoco("mujoco")


def test_ddpg_her_trains_fetch_reach_from_the_cli(tmp_path):
    """40 cycles of 2 worlds (~15 s here): measured success 1.0 (seed 0); 0.9 and 1.0 for seeds 1 and 2 at 30."""
    run = tmp_path / "run"
    result = pgr("train", "gym:FetchReach-v4", "--algo", "ddpg_her", "--max-iterations", "40", "--run-dir", str(run),
                 "--no-progress", "--set", "runner.num_envs=2", "--set", "runner.eval_envs=20",
                 "--set", "runner.eval_interval=10", "--set", "runner.save_interval=20", "--set", "runner.threads=1",
                 "--set", "algorithm.hidden=[64, 64]")
    assert result.returncode == 0, result.stderr
    assert (run / "config.yaml").is_file() and (run / "learning_curves.png").is_file()
    assert {p.name for p in (run / "checkpoints").iterdir()} >= {"model_20.pt", "model_40.pt", "replay_buffer.pt"}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["task"] == "gym:FetchReach-v4" and summary["iteration"] == 40
    assert summary["success_rate"] >= 0.5, summary
    result = pgr("eval", str(run), "--episodes", "20", "--json")
    assert result.returncode == 0, result.stderr
    assert 0 <= json.loads(result.stdout)["success_rate"] <= 1
