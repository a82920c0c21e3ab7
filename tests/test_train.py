"""`pgr train`: bad input, a smoke run, and resume continuing bit-identically."""

import json

import pytest
import torch

from pg_robotics.cli import main
from pg_robotics.envs import ConfigError
from pgr_cli import pgr, signal_training

SMALL = ["--num-envs", "8", "--no-progress", "--set", "algorithm.num_steps_per_env=8",
         "--set", "algorithm.actor_hidden=[16]", "--set", "algorithm.critic_hidden=[16]"]


@pytest.mark.parametrize("args, message", [
    (["train", "quadruped-hills"], "unknown task 'quadruped-hills'"),
    (["train", "quadruped-flat", "--num-envs", "-8"], "--num-envs"),
    (["train", "quadruped-flat", "--set", "algorithm.learning_rat=0.1"], "algorithm.learning_rat: unknown key"),
    (["train", "quadruped-flat", "--set", "optimizer.lr=0.1"], "--set optimizer: unknown section"),
    (["train", "quadruped-flat", "--set", "runner.save_interval=0"], "runner: save_interval: must be >= 1"),
    (["train", "quadruped-flat", "--resume", "/nonexistent/run"], "no config.yaml there (not a run directory)"),
    (["eval", "/nonexistent/run"], "no config.yaml there (not a run directory)"),
    (["eval", "/tmp", "--episodes", "0"], "--episodes"),
    (["eval", "/tmp", "--seconds", "1"], "--seconds: must be longer than the 1 s settling time"),
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


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "quadruped-flat", "--max-iterations", "2", "--run-dir", str(run), *SMALL,
                 "--set", "runner.save_interval=1"]) == 0
    return run


def test_eval_reports_tracking_errors_and_gait_on_fixed_commands(trained_run):
    result = pgr("eval", str(trained_run), "--episodes", "2", "--seconds", "2", "--json")
    assert result.returncode == 0, result.stderr
    r = json.loads(result.stdout)
    assert [row["command"] for row in r["per_command"]] == [
        [0.5, 0, 0], [1.0, 0, 0], [-0.3, 0, 0], [0, 0.3, 0], [0, 0, 0.6], [0, 0, 0]]
    assert 0 <= r["fall_rate"] <= 1 and r["lin_vel_error"] >= 0 and r["ang_vel_error"] >= 0
    # an untrained policy cannot follow 1 m/s: its error there is most of the command
    assert r["per_command"][1]["lin_vel_error"] > 0.5
    assert r["checkpoint"].endswith("model_2.pt") and r["iteration"] == 2 and r["meets_criterion"] is False
    for row in r["per_command"]:
        assert len(row["duty_factor"]) == 4 and all(0 <= d <= 1 for d in row["duty_factor"])
        assert 0 <= row["leg_contact"] <= 1


def test_eval_all_checkpoints_reports_time_to_criterion(trained_run):
    result = pgr("eval", str(trained_run), "--all-checkpoints", "--episodes", "1", "--seconds", "2", "--json")
    assert result.returncode == 0, result.stderr
    r = json.loads(result.stdout)
    assert [c["iteration"] for c in r["checkpoints"]] == [1, 2]
    assert 0 < r["checkpoints"][0]["train_seconds"] <= r["checkpoints"][1]["train_seconds"]
    assert r["criterion"] == {"lin_vel_error": 0.10, "ang_vel_error": 0.15, "fall_rate": 0.0}
    assert r["first_meeting"] is None  # two tiny iterations do not walk
    text = pgr("eval", str(trained_run), "--all-checkpoints", "--episodes", "1", "--seconds", "2")
    assert "iteration     1" in text.stdout and "no checkpoint meets the criterion" in text.stdout


def test_train_refuses_to_overwrite_a_run(trained_run):
    result = pgr("train", "quadruped-flat", "--run-dir", str(trained_run), "--max-iterations", "1")
    assert result.returncode == 2 and f"a run is already there; continue it with --resume {trained_run}" in result.stderr


def test_play_renders_a_video_headless(trained_run, tmp_path):
    import imageio.v2 as imageio
    import numpy as np

    video = tmp_path / "out.mp4"
    result = pgr("play", str(trained_run), "--video", str(video), "--command", "0.5,0,0", "--command", "0,0,0.6",
                 "--seconds", "0.4", "--width", "160", "--height", "120", "--json")
    assert result.returncode == 0, result.stderr
    r = json.loads(result.stdout)
    assert r["frames"] == 40 and r["fps"] == 50
    frames = [frame for frame in imageio.get_reader(video)]  # list() would ask len(): inf for ffmpeg streams
    assert len(frames) == 40 and frames[0].shape == (120, 160, 3)
    assert np.asarray(frames[-1], dtype=float).std() > 10  # a scene, not a blank frame
    bad = pgr("play", str(trained_run), "--video", str(video), "--command", "0.5,0")
    assert bad.returncode == 2 and "expected three numbers vx,vy,wz" in bad.stderr


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


def test_python_api_trains_resumes_evaluates_and_exports(tmp_path):
    from pg_robotics.evaluate import evaluate
    from pg_robotics.export import export
    from pg_robotics.recipe import make_recipe
    from pg_robotics.train import train

    run = tmp_path / "run"
    overrides = {"runner": {"num_envs": 8, "max_iterations": 2, "save_interval": 1},
                 "algorithm": {"num_steps_per_env": 8, "actor_hidden": [16], "critic_hidden": [16]}}
    recipe = make_recipe("quadruped-flat", overrides=overrides)
    assert (recipe.algo, recipe.kind, recipe.algorithm.num_epochs) == ("ppo", "locomotion", 3)  # the shipped YAML
    summary = train(recipe, run_dir=run, progress=False)
    assert summary["iteration"] == 2 and summary["total_env_steps"] == 2 * 8 * 8 and summary["run_dir"] == str(run)
    summary = train(resume=run, overrides={"runner": {"max_iterations": 3}}, progress=False)
    assert summary["iteration"] == 3
    result = evaluate(run, episodes=1, seconds=1.5)
    assert result["iteration"] == 3 and len(result["per_command"]) == 6
    report = export(run)
    assert report["kind"] == "joint_position" and report["replay_action_max_abs_diff"] <= 1e-4
    with pytest.raises(ConfigError, match="this run was trained with ppo"):
        train(resume=run, overrides={"algo": "ddpg_her"}, progress=False)


def test_train_help_lists_the_registry():
    from pg_robotics import algorithms

    text = pgr("train", "--help").stdout
    assert all(name in text for name in algorithms.names())


def test_sigterm_stops_at_an_iteration_boundary_and_the_run_resumes_exactly(tmp_path):
    """SIGTERM (as a cluster scheduler sends it) finishes the iteration, saves, exits 143; resuming from that
    checkpoint gives the same parameters as a run that never stopped. A second signal is not needed."""
    import signal

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    args = ["train", "quadruped-flat", "--run-dir", str(run), *SMALL, "--set", "runner.save_interval=100000",
            "--max-iterations", "100000"]
    code, err = signal_training(args, run, signal.SIGTERM, after_s=2.0)  # a few iterations in
    assert code == 143, err
    assert "SIGTERM: finishing this iteration" in err and "stopped by SIGTERM (checkpoint saved)" in err
    (ckpt,) = (run / "checkpoints").glob("model_*.pt")
    n = int(ckpt.stem.split("_")[1])
    state = torch.load(ckpt, weights_only=True)
    assert n >= 1 and state["iteration"] == n and len(json.loads(state["history"])) == n
    assert json.loads((run / "summary.json").read_text())["iteration"] == n
    assert not list(run.glob("**/*.tmp"))
    events = EventAccumulator(str(run)).Reload()  # what the runner logs, diverged worlds included
    assert {"train/diverged_worlds", "train/cat_delta_mean", "train/fps"} <= set(events.Tags()["scalars"])

    straight = tmp_path / "straight"
    assert main(["train", "quadruped-flat", "--run-dir", str(straight), *SMALL, "--max-iterations", str(n + 1)]) == 0
    assert main(["train", "quadruped-flat", "--resume", str(run), *SMALL, "--max-iterations", str(n + 1)]) == 0
    a = torch.load(straight / "checkpoints" / f"model_{n + 1}.pt", weights_only=True)
    b = torch.load(run / "checkpoints" / f"model_{n + 1}.pt", weights_only=True)
    for key, value in a["algorithm"]["policy"].items():
        assert torch.equal(value, b["algorithm"]["policy"][key]), key
