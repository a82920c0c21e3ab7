"""`pgr train`: bad input, a smoke run, and resume continuing bit-identically."""

import json
import subprocess
import sys

import pytest
import torch

from pg_robotics.cli import main

SMALL = ["--num-envs", "8", "--no-progress", "--set", "algorithm.num_steps_per_env=8",
         "--set", "algorithm.actor_hidden=[16]", "--set", "algorithm.critic_hidden=[16]"]


def pgr(*args):
    return subprocess.run([sys.executable, "-m", "pg_robotics.cli", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("args, message", [
    (["train", "quadruped-hills"], "unknown task 'quadruped-hills'"),
    (["train", "quadruped-flat", "--num-envs", "-8"], "--num-envs"),
    (["train", "quadruped-flat", "--set", "algorithm.learning_rat=0.1"], "algorithm.learning_rat: unknown key"),
    (["train", "quadruped-flat", "--set", "optimizer.lr=0.1"], "--set optimizer: unknown section"),
    (["train", "quadruped-flat", "--set", "runner.save_interval=0"], "runner: save_interval: must be >= 1"),
    (["train", "quadruped-flat", "--resume", "/nonexistent/run"], "no config.yaml there (not a run directory)"),
    (["eval", "/nonexistent/run"], "no config.yaml there (not a run directory)"),
    (["eval", "/tmp", "--episodes", "0"], "--episodes"),
])
def test_bad_train_input_exits_2(args, message):
    result = pgr(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_train_smoke_writes_a_complete_run_directory(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "quadruped-flat", "--max-iterations", "2", "--run-dir", str(run), *SMALL]) == 0
    assert (run / "config.yaml").is_file() and (run / "learning_curves.png").stat().st_size > 1000
    assert list(run.glob("events.out.tfevents.*"))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["iteration"] == 2 and summary["total_env_steps"] == 2 * 8 * 8
    ckpt = torch.load(run / "checkpoints" / "model_2.pt", weights_only=True)
    assert ckpt["iteration"] == 2 and "obs_normalizer" in ckpt["algorithm"]
    assert not list(run.glob("checkpoints/*.tmp"))


def test_eval_reports_tracking_errors_on_fixed_commands(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "quadruped-flat", "--max-iterations", "1", "--run-dir", str(run), *SMALL]) == 0
    result = pgr("eval", str(run), "--episodes", "2", "--seconds", "2", "--json")
    assert result.returncode == 0, result.stderr
    r = json.loads(result.stdout)
    assert [row["command"] for row in r["per_command"]] == [
        [0.5, 0, 0], [1.0, 0, 0], [-0.3, 0, 0], [0, 0.3, 0], [0, 0, 0.6], [0, 0, 0]]
    assert 0 <= r["fall_rate"] <= 1 and r["lin_vel_error"] >= 0 and r["ang_vel_error"] >= 0
    # an untrained policy cannot follow 1 m/s: its error there is most of the command
    assert r["per_command"][1]["lin_vel_error"] > 0.5
    assert r["checkpoint"].endswith("model_1.pt")


def test_resume_continues_bit_identically(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = [*SMALL, "--set", "runner.save_interval=2"]
    assert main(["train", "quadruped-flat", "--max-iterations", "4", "--run-dir", str(straight), *common]) == 0
    assert main(["train", "quadruped-flat", "--max-iterations", "2", "--run-dir", str(split), *common]) == 0
    assert main(["train", "quadruped-flat", "--resume", str(split), "--max-iterations", "4", *common]) == 0
    a = torch.load(straight / "checkpoints" / "model_4.pt", weights_only=True)
    b = torch.load(split / "checkpoints" / "model_4.pt", weights_only=True)
    for key, value in a["algorithm"]["policy"].items():
        assert torch.equal(value, b["algorithm"]["policy"][key]), key
    assert torch.equal(a["env"]["sim"]["state"], b["env"]["sim"]["state"])
    assert torch.equal(a["obs"]["policy"], b["obs"]["policy"])
