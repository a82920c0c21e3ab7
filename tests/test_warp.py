"""The MuJoCo Warp backend through the tasks and the CLI, as a user runs it (here on the CPU with a few worlds;
`--device cuda` on a GPU machine). Physics agreement with C MuJoCo is in test_backend_conformance.py."""

import json

import pytest
import torch
import yaml

from pg_robotics.envs import make
from pgr_cli import pgr


@pytest.fixture(scope="module")
def warp_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("warp") / "run"
    out = pgr("train", "quadruped-flat", "--backend", "warp", "--device", "cpu", "--num-envs", "4",
              "--max-iterations", "2", "--run-dir", str(run), "--no-progress")
    assert out.returncode == 0, out.stderr[-2000:]
    return run


def test_train_on_warp_writes_a_run_that_records_the_backend(warp_run):
    runner = yaml.safe_load((warp_run / "config.yaml").read_text())["runner"]
    assert runner["backend"] == "warp" and runner["device"] == "cpu"
    summary = json.loads((warp_run / "summary.json").read_text())
    assert summary["iteration"] == 2
    assert list((warp_run / "checkpoints").glob("*.pt"))
    out = pgr("train", "quadruped-flat", "--resume", str(warp_run), "--max-iterations", "3", "--no-progress")
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads((warp_run / "summary.json").read_text())["iteration"] == 3


def test_eval_on_warp_and_on_c_mujoco(warp_run):
    results = {}
    for backend in ("warp", "mujoco"):
        out = pgr("eval", str(warp_run), "--backend", backend, "--episodes", "1", "--seconds", "1.5", "--json")
        assert out.returncode == 0, out.stderr[-2000:]
        results[backend] = json.loads(out.stdout)
        assert results[backend]["backend"] == backend
        assert 0.0 <= results[backend]["fall_rate"] <= 1.0 and results[backend]["lin_vel_error"] >= 0.0


def test_bench_sim_on_warp():
    out = pgr("bench", "sim", "--backend", "warp", "--device", "cpu", "--num-envs", "4", "--seconds", "1", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["backend"] == "warp" and result["num_envs"] == 4 and result["env_steps_per_s"] > 0
    assert 0 < result["fraction_of_ceiling"] <= 1.5 and result["diverged"] == 0


def test_goal_task_runs_on_warp():
    """The arm: differential IK and the box on the table on Warp's worlds; the env contract holds."""
    env = make("arm-push", 2, backend="warp")
    obs = env.reset()
    assert obs["observation"].shape == (2, 26) and obs["desired_goal"].shape == (2, 3)
    start = obs["achieved_goal"].clone()
    for _ in range(10):
        obs, reward, done, info = env.step(torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, -1.0]]))
    assert torch.isfinite(obs["observation"]).all() and reward.shape == (2,) and "is_success" in info
    tcp = obs["observation"][:, :3]
    assert tcp[1, 2] > env.start_tcp[2] + 0.05, "world 1's gripper rose under dz = +1"
    assert torch.allclose(obs["achieved_goal"][:, 2], start[:, 2], atol=0.01), "the boxes stay on the table"
    env.close()


def test_captured_graph_steps_like_eager_launches():
    """From the second step on, `step` replays one captured graph; it must give bit for bit what launching the
    kernels one by one gives, also after resets and per-world parameters written once the graph exists."""
    import numpy as np

    from envs.backends.warp import WarpBackend
    from envs.robots import load
    from envs.scene import legged_scene

    graph, eager = (WarpBackend(legged_scene(load("go1")).spec, 2, 4, device="cpu") for _ in range(2))
    eager._launch = lambda: eager._substeps(eager.dw)  # kernel by kernel, every step
    stand = torch.as_tensor(graph.model.qpos0[7:], dtype=torch.float32)
    start_q = graph.qpos.clone()
    for k in range(12):
        if k == 5:
            for sim in (graph, eager):
                sim.reset(torch.tensor([1]), start_q[1:], torch.zeros(1, sim.model.nv))
                sim.set_pd_gains(np.full(12, 30.0), np.full(12, 1.0), np.full(12, 20.0), strength=np.array([0.8, 1.2]))
                sim.set_body_mass("trunk", np.array([6.0, 8.0]))
        ctrl = stand + 0.3 * torch.sin(torch.tensor([0.5 * k, 0.5 * k + 1.0]))[:, None]
        graph.step(ctrl)
        eager.step(ctrl)
        assert torch.equal(graph.qpos, eager.qpos) and torch.equal(graph.qvel, eager.qvel), f"step {k}"
    assert graph._graph is not None, "the step did not replay a graph"
    assert (graph.qpos[:, 7:] - stand).abs().max() > 0.05, "the legs moved"
    graph.close()
    eager.close()


@pytest.mark.parametrize("args, message", [
    (("bench", "sim", "--backend", "mujoco", "--device", "cuda", "--num-envs", "2", "--seconds", "1"),
     "device: the mujoco backend runs on the CPU"),
    (("bench", "sim", "--backend", "physx"), "invalid choice: 'physx'"),
])
def test_bad_backend_input_exits_2(args, message):
    out = pgr(*args)
    assert out.returncode == 2 and message in out.stderr, out.stderr[-2000:]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_cuda_without_a_gpu_says_so(tmp_path):
    out = pgr("train", "quadruped-flat", "--backend", "warp", "--device", "cuda", "--max-iterations", "1",
              "--run-dir", str(tmp_path / "run"))
    assert out.returncode == 2 and "torch sees no CUDA GPU" in out.stderr, out.stderr[-2000:]
