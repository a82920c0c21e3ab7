"""The arm goal tasks: kinematics against MuJoCo, the env contract, config errors, and `pgr` end to end for a
DDPG+HER run (train, resume, eval, export, play; the gymnasium adapter)."""

import importlib
import json
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch
import yaml

from pg_robotics.cli import main
from pg_robotics.envs import ConfigError, make
from pg_robotics.envs.robots import resolve_mjcf
from pg_robotics.envs.manipulation.kinematics import PandaKinematics
from pgr_cli import pgr, signal_training

REPO = Path(__file__).resolve().parent.parent
ONE_THREAD = {"sim": {"nthread": 1}}  # a 2-core machine: MuJoCo's pool must not fight the other tests
START = torch.tensor([0.5, 0.0, 0.13])  # default gripper_start
TABLE_Z = 0.025  # centre of a box resting on the table


def arm(task: str, num_envs: int, seed: int = 0, **overrides):
    return make(task, num_envs, seed=seed, overrides={**ONE_THREAD, **overrides})


# ---- kinematics ----------------------------------------------------------------------------------------------------
def mujoco_tcp(model, data, q: np.ndarray, dofs: list[int], qpos_ids: list[int]):
    data.qpos[:] = model.qpos0
    data.qpos[qpos_ids] = q
    mujoco.mj_forward(model, data)
    jacp, jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
    mujoco.mj_jacSite(model, data, jacp, jacr, model.site("tcp").id)
    site = data.site("tcp")
    return site.xpos.copy(), site.xmat.reshape(3, 3).copy(), np.vstack([jacp[:, dofs], jacr[:, dofs]])


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-7), (torch.float32, 1e-5)])
def test_kinematics_match_mujoco_on_random_configurations(dtype, tolerance):
    model = mujoco.MjModel.from_xml_path(str(resolve_mjcf("panda.xml")))
    data = mujoco.MjData(model)
    joints = [model.joint(f"joint{i}").id for i in range(1, 8)]
    qpos_ids = [int(model.jnt_qposadr[j]) for j in joints]
    dofs = [int(model.jnt_dofadr[j]) for j in joints]
    low, high = model.jnt_range[joints].T
    q = np.random.default_rng(0).uniform(low, high, (64, 7))
    pos, rot, jac = PandaKinematics(dtype=dtype).forward(torch.tensor(q, dtype=dtype))
    assert pos.shape == (64, 3) and rot.shape == (64, 3, 3) and jac.shape == (64, 6, 7)
    worst = np.zeros(3)
    for i in range(len(q)):
        p, r, j = mujoco_tcp(model, data, q[i], dofs, qpos_ids)
        worst = np.maximum(worst, [np.abs(pos[i].double().numpy() - p).max(), np.abs(rot[i].double().numpy() - r).max(),
                                   np.abs(jac[i].double().numpy() - j).max()])
    assert (worst < tolerance).all(), f"position, rotation, Jacobian max errors {worst}"


# ---- env contract --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task, obs_dim", [("arm-reach", 10), ("arm-push", 26), ("arm-pick-place", 26)])
def test_episode_contract(task, obs_dim):
    env = arm(task, 6)
    try:
        assert (env.num_actions, env.episode_steps, env.kind, env.task) == (4, 50, "goal", task)
        assert env.observation_dims == {"observation": obs_dim, "achieved_goal": 3, "desired_goal": 3}
        assert env.dt == pytest.approx(0.04)
        obs = env.reset()
        assert {k: tuple(v.shape) for k, v in obs.items()} == {"observation": (6, obs_dim), "achieved_goal": (6, 3),
                                                               "desired_goal": (6, 3)}
        assert torch.allclose(obs["observation"][:, :3], START.expand(6, 3), atol=1e-4)  # the gripper starts there
        goal = obs["desired_goal"].clone()
        gen = torch.Generator().manual_seed(0)
        for t in range(50):
            obs, reward, done, info = env.step(torch.rand(6, 4, generator=gen) * 2 - 1)
            last = t == 49
            assert bool(done.all()) == last and bool(done.any()) == last and ("final_obs" in info) == last
            assert torch.equal(info["time_outs"], done)
            ended = info["final_obs"] if last else obs
            assert torch.equal(ended["desired_goal"], goal)  # the goal holds for the whole episode
            ag = ended["achieved_goal"]
            assert torch.equal(reward, env.compute_reward(ag, goal, info))
            assert torch.equal(info["is_success"], (reward == 0).float())
            assert torch.allclose(info["distance"], (ag - goal).norm(dim=1))
            if task == "arm-reach":  # the achieved goal is the gripper, else the box
                assert torch.equal(ag, ended["observation"][:, :3])
            else:
                assert torch.equal(ag, ended["observation"][:, 10:13])
        # every world starts the next episode together: gripper back at its start, new goals
        assert env.t == 0 and torch.allclose(obs["observation"][:, :3], START.expand(6, 3), atol=1e-4)
        assert not torch.equal(obs["desired_goal"], goal)
    finally:
        env.close()


def test_compute_reward_is_vectorized_and_uses_the_threshold():
    env = arm("arm-reach", 1)
    try:
        g = torch.zeros(4, 7, 3)
        ag = torch.zeros(4, 7, 3)
        ag[..., 0] = torch.linspace(0, 0.1, 7)  # 0.05 is the threshold: within it counts as reached
        reward = env.compute_reward(ag, g, None)
        assert reward.shape == (4, 7)
        assert reward[0].tolist() == [0.0, 0.0, 0.0, 0.0, -1.0, -1.0, -1.0]
    finally:
        env.close()


def test_cartesian_control_moves_the_gripper_and_the_fingers():
    env = arm("arm-push", 4)
    try:
        obs = env.reset()
        start = obs["observation"][:, :3].clone()
        for _ in range(5):
            obs, *_ = env.step(torch.tensor([[1.0, 0.0, 0.0, 1.0]]).expand(4, 4))
        moved = obs["observation"][:, :3] - start
        assert (moved[:, 0] > 0.05).all() and (moved[:, 0] < 5 * 0.05 + 1e-3).all(), moved
        assert (moved[:, 1:].abs() < 0.01).all(), moved  # little drift off the commanded axis
        assert torch.allclose(obs["observation"][:, 3:5], torch.tensor(0.04), atol=1e-3)  # +1: open
        for _ in range(5):
            obs, *_ = env.step(torch.tensor([[0.0, 0.0, 0.0, -1.0]]).expand(4, 4))
        assert (obs["observation"][:, 3:5] < 0.002).all()  # -1: closed (nothing between the fingers)
        # the gripper displacement in the observation is the last step's motion
        before = obs["observation"][:, :3].clone()
        obs, *_ = env.step(torch.tensor([[0.0, 0.0, 1.0, -1.0]]).expand(4, 4))
        assert torch.allclose(obs["observation"][:, 5:8], obs["observation"][:, :3] - before, atol=1e-6)
        assert (obs["observation"][:, 7] > 0.01).all()
    finally:
        env.close()


def test_observed_gripper_is_mujocos_tcp_site():
    env = arm("arm-reach", 2)
    try:
        gen = torch.Generator().manual_seed(1)
        for _ in range(7):
            obs, *_ = env.step(torch.rand(2, 4, generator=gen) * 2 - 1)
        model, data = env.sim.model, mujoco.MjData(env.sim.model)
        for i in range(2):
            data.qpos[:] = env.sim.qpos[i].numpy()
            mujoco.mj_forward(model, data)
            assert np.abs(data.site("tcp").xpos - obs["achieved_goal"][i].numpy()).max() < 1e-5
            # the IK keeps the gripper pointing down, fingers opening along y
            down = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
            assert np.abs(data.site("tcp").xmat.reshape(3, 3) - down).max() < 0.05
    finally:
        env.close()


def test_no_world_diverges_under_random_actions():
    env = arm("arm-pick-place", 64, seed=3)
    try:
        gen = torch.Generator().manual_seed(0)
        diverged = 0
        for _ in range(100):
            _, _, _, info = env.step(torch.rand(64, 4, generator=gen) * 2 - 1)
            diverged += int(info["diverged"].sum())
        assert diverged == 0 and env.sim.num_diverged == 0
    finally:
        env.close()


def sampled(task: str, n: int = 256, resets: int = 2, **overrides):
    env = arm(task, n, seed=5, **overrides)
    try:
        states = [env.reset() for _ in range(resets)]
        return (torch.cat([s["desired_goal"] for s in states]),
                torch.cat([s["observation"][:, 10:13] if env.has_object else s["achieved_goal"] for s in states]))
    finally:
        env.close()


def test_goal_and_object_sampling_ranges():
    # push: goals on the table within 0.15 m (xy) of the gripper's start; the box there too, at least 0.1 m away
    goal, box = sampled("arm-push")
    assert torch.equal(goal[:, 2], torch.full((512,), TABLE_Z))
    assert ((goal[:, :2] - START[:2]).abs() <= 0.15 + 1e-6).all()
    assert ((box[:, :2] - START[:2]).abs() <= 0.15 + 1e-6).all()
    assert ((box[:, :2] - START[:2]).norm(dim=1) >= 0.1 - 1e-6).all()
    assert torch.allclose(box[:, 2], torch.tensor(TABLE_Z), atol=1e-6)
    assert goal[:, 0].std() > 0.06 and goal[:, 1].std() > 0.06  # spread over the range, not a point
    # pick and place: half the goals in the air, up to 0.45 m above the resting box
    goal, _ = sampled("arm-pick-place")
    lifted = goal[:, 2] > TABLE_Z + 1e-6
    assert 0.4 < lifted.float().mean() < 0.6
    assert (goal[:, 2] >= TABLE_Z).all() and goal[:, 2].max() <= TABLE_Z + 0.45 + 1e-6
    assert goal[:, 2].max() > 0.3
    # reach: goals within 0.15 m of the start on every axis, kept 2 cm above the box height
    goal, gripper = sampled("arm-reach")
    assert torch.allclose(gripper, START.expand(512, 3), atol=1e-4)
    assert ((goal - START).abs() <= 0.15 + 1e-6).all() and (goal[:, 2] >= TABLE_Z + 0.02 - 1e-6).all()
    # the ranges follow the config
    goal, _ = sampled("arm-push", goal={"target_range": 0.05})
    assert ((goal[:, :2] - START[:2]).abs() <= 0.05 + 1e-6).all()


# ---- config errors -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, field, message", [
    ({"goal": {"task": "fly"}}, "task.goal: task", "unknown goal task 'fly'"),
    ({"goal": {"distance_threshold": 0.0}}, "task.goal: distance_threshold", "must be > 0"),
    ({"goal": {"min_object_distance": 0.3}}, "task.goal: min_object_distance", "leaves no room"),
    ({"goal": {"target_in_air_fraction": 2.0}}, "task.goal: target_in_air_fraction", "must be in [0, 1]"),
    ({"goal": {"episode_steps": "long"}}, "task.goal.episode_steps", "expected an integer"),
    ({"robot": {"arm_joints": ["joint1"]}}, "task.robot: arm_joints", "7-joint arm"),
    ({"robot": {"gripper_start": [0.5, 0.0]}}, "task.robot.gripper_start", "expected a list of 3"),
    ({"robot": {"workspace_low": [0.9, -0.4, 0.02]}}, "task.robot: workspace_low", "is not below workspace_high"),
    ({"randomization": {"object_mass": [0.3, 0.1]}}, "task.randomization: object_mass", "expected 0 < low <= high"),
    ({"sim": {"nthread": -1}}, "task.sim: nthread", "must be >= 0"),
    ({"gripper": {}}, "task.gripper", "unknown key"),
])
def test_bad_task_config_names_the_field(overrides, field, message):
    with pytest.raises(ConfigError) as err:
        make("arm-push", 1, overrides=overrides)
    assert str(err.value).startswith(field) and message in str(err.value), str(err.value)


@pytest.mark.parametrize("overrides, message", [
    ({"robot": {"gripper_start": [3, 0, 0]}}, "task.robot.gripper_start: [3.0, 0.0, 0.0] is out of the arm's reach"),
    ({"robot": {"arm_joints": [f"j{i}" for i in range(7)]}}, "task.robot.arm_joints: a joint is not in panda.xml"),
    ({"robot": {"preset": "ur5"}}, "task.robot.preset: no robot preset 'ur5' (shipped: go1, panda"),
])
def test_model_dependent_errors_name_the_field(overrides, message):
    with pytest.raises(ConfigError) as err:
        make("arm-reach", 1, overrides={**ONE_THREAD, **overrides})
    assert message in str(err.value)


# ---- pgr end to end ------------------------------------------------------------------------------------------------
TINY = ["--no-progress", "--set", "runner.num_envs=4", "--set", "runner.eval_envs=8", "--set", "runner.eval_interval=2",
        "--set", "algorithm.updates_per_cycle=5", "--set", "algorithm.buffer_episodes=100",
        "--set", "algorithm.batch_size=64", "--set", "algorithm.hidden=[64, 64]", "--set", "runner.save_interval=2",
        "--set", "runner.threads=1"]
ARM_TINY = [*TINY, "--set", "task.sim.nthread=1"]  # not for gym:<id> tasks, whose config has no sim section


def test_pgr_train_eval_export_play_a_goal_run(tmp_path):
    import onnxruntime as ort

    from pg_robotics.deploy import VectorController
    from pg_robotics.runs import load_agent

    run = tmp_path / "run"
    result = pgr("train", "arm-reach", "--max-iterations", "4", "--run-dir", str(run), *ARM_TINY)
    assert result.returncode == 0, result.stderr
    assert "done: iteration 4, 800 env steps, success rate" in result.stdout  # 4 cycles x 4 worlds x 50 steps
    recipe = yaml.safe_load((run / "config.yaml").read_text())
    assert recipe["algo"] == "ddpg_her" and recipe["task_name"] == "arm-reach"
    assert recipe["task"]["goal"]["task"] == "reach" and recipe["algorithm"]["her_strategy"] == "future"
    assert recipe["algorithm"]["hidden"] == [64, 64] and recipe["runner"]["num_envs"] == 4
    summary = json.loads((run / "summary.json").read_text())
    assert summary["iteration"] == 4 and summary["total_env_steps"] == 800
    assert 0 <= summary["success_rate"] <= 1 and 0 <= summary["train_success_rate"] <= 1
    assert summary["q_target_mean"] <= 0  # the clipped target
    assert (run / "learning_curves.png").stat().st_size > 1000 and list(run.glob("events.out.tfevents.*"))
    ckpt = torch.load(run / "checkpoints" / "model_4.pt", weights_only=True)
    saved = torch.load(run / "checkpoints" / "replay_buffer.pt", weights_only=True)  # one file, the latest
    assert ckpt["iteration"] == 4 and "buffer" not in ckpt and saved["iteration"] == 4
    assert saved["buffer"]["size"] == 16 and saved["buffer"]["obs"].shape == (16, 51, 10)
    assert {"actor", "critic", "actor_target", "critic_target", "obs_normalizer"} <= set(ckpt["algorithm"])
    assert not list(run.glob("checkpoints/*.tmp"))

    result = pgr("eval", str(run), "--episodes", "8", "--json")
    assert result.returncode == 0, result.stderr
    r = json.loads(result.stdout)
    assert r["episodes"] == 8 and r["iteration"] == 4 and r["checkpoint"].endswith("model_4.pt")
    assert 0 <= r["success_rate"] <= 1 and r["success_rate"] * 8 == round(r["success_rate"] * 8)
    assert 0 <= r["final_distance"] < 1

    result = pgr("export", str(run), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["num_obs"] == 13 and report["num_actions"] == 4 and report["kind"] == "vector"
    assert report["onnx_max_abs_diff_random"] <= 1e-5 and report["onnx_max_abs_diff_recorded"] <= 1e-5
    # the deploy runtime replayed 20 recorded episodes of named inputs and gave the simulator's actions
    assert report["replay_samples"] == 1000 and report["replay_action_max_abs_diff"] <= 1e-4
    assert report["replay_bad_input"] == 0
    meta = yaml.safe_load((run / "policy.yaml").read_text())
    assert meta["kind"] == "vector" and meta["action_names"] == ["dx", "dy", "dz", "gripper"]
    assert [t["dim"] for t in meta["observation_terms"]] == [10, 3]
    assert meta["task_params"]["distance_threshold"] == 0.05 and meta["safe_action"] == [0.0, 0.0, 0.0, -1.0]
    session = ort.InferenceSession(str(run / "policy.onnx"), providers=["CPUExecutionProvider"])
    agent = load_agent(run, num_envs=3)
    obs = agent.env.reset()
    agent.close()
    x = torch.cat([obs["observation"], obs["desired_goal"]], dim=1).numpy()
    actions = session.run(None, {"obs": x[:1]})[0]
    assert actions.shape == (1, 4) and np.abs(actions).max() <= 1
    assert np.abs(session.run(None, {"obs": x})[0] - agent.act(obs).numpy()).max() < 1e-5
    # the robot side: named inputs in, a bounded action out; bad input gives the safe action and is counted
    ctl = VectorController.load(run / "policy.onnx")
    action = ctl.step({"observation": obs["observation"][0].numpy(), "desired_goal": obs["desired_goal"][0].numpy()})
    assert np.abs(action - agent.act(obs)[0].numpy()).max() < 1e-5
    assert ctl.step({"observation": [float("nan")] * 10, "desired_goal": [0.0] * 3}).tolist() == [0, 0, 0, -1]
    assert ctl.step({"observation": [0.0] * 9, "desired_goal": [0.0] * 3}).tolist() == [0, 0, 0, -1]
    assert ctl.step({"desired_goal": [0.0] * 3}).tolist() == [0, 0, 0, -1]
    assert ctl.counters["bad_input"] == 3 and ctl.counters["steps"] == 4
    wild = session.run(None, {"obs": (x * 1e4).astype(np.float32)})[0]
    assert np.isfinite(wild).all() and np.abs(wild).max() <= 1

    video = run / "v.mp4"
    result = pgr("play", str(run), "--video", str(video), "--episodes", "1", "--width", "160", "--height", "120",
                 "--json")
    assert result.returncode == 0, result.stderr
    r = json.loads(result.stdout)
    assert r["frames"] == 50 and r["fps"] == 25 and r["episodes"] == 1 and 0 <= r["successes"] <= 1
    assert video.stat().st_size > 1000


def test_goal_run_resume_continues_bit_identically(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["train", "arm-push", "--max-iterations", "4", "--run-dir", str(straight), *ARM_TINY]) == 0
    assert main(["train", "arm-push", "--max-iterations", "2", "--run-dir", str(split), *ARM_TINY]) == 0
    assert main(["train", "arm-push", "--resume", str(split), "--max-iterations", "4", *ARM_TINY]) == 0
    a = torch.load(straight / "checkpoints" / "model_4.pt", weights_only=True)
    b = torch.load(split / "checkpoints" / "model_4.pt", weights_only=True)
    for net in ("actor", "critic", "actor_target", "critic_target", "obs_normalizer", "goal_normalizer"):
        for key, value in a["algorithm"][net].items():
            assert torch.equal(value, b["algorithm"][net][key]), f"{net}.{key}"
    buffers = [torch.load(run / "checkpoints" / "replay_buffer.pt", weights_only=True)["buffer"]
               for run in (straight, split)]
    for key in ("obs", "ag", "goal", "actions"):
        assert torch.equal(buffers[0][key], buffers[1][key]), key
    assert torch.equal(a["env"]["sim"]["state"], b["env"]["sim"]["state"])
    assert torch.equal(a["eval_env"]["sim"]["state"], b["eval_env"]["sim"]["state"])
    assert all(torch.equal(a["obs"][k], b["obs"][k]) for k in a["obs"])
    history = [json.loads(c["history"]) for c in (a, b)]
    assert [r["success_rate"] for r in history[0] if "success_rate" in r] == \
           [r["success_rate"] for r in history[1] if "success_rate" in r]


@pytest.mark.parametrize("args, message", [
    (["train", "arm-push", "--algo", "ppo"], "algo: arm-push is a goal task with a sparse reward; ppo needs a "
                                             "dense-reward task (train it with ddpg_her, sac_her, td3_her)"),
    (["train", "quadruped-flat", "--algo", "ddpg_her"], "algo: ddpg_her needs a goal task"),
    (["train", "arm-push", "--set", "algorithm.her_strategy=bogus"], "algorithm: her_strategy: unknown 'bogus'"),
    (["train", "arm-push", "--set", "algorithm.gamma=1.0"], "algorithm: gamma: must be in (0, 1)"),
    (["train", "arm-push", "--set", "task.goal.task=fly"], "task.goal: task: unknown goal task 'fly'"),
    (["train", "arm-push", "--set", "runner.eval_envs=0"], "runner: eval_envs: must be >= 1"),
    (["train", "gym:Pendulum-v1", "--algo", "ddpg_her"], "algo: ddpg_her needs a goal task (dict observations, "
                                                         "compute_reward); gym:Pendulum-v1 is not one"),
    (["train", "gym:NoSuchEnv-v0"], "task: gymnasium cannot make 'NoSuchEnv-v0'"),
])
def test_bad_goal_train_input_exits_2(args, message, tmp_path, capsys):
    tiny = TINY if args[1].startswith("gym:") else ARM_TINY
    # the bad value last: a later --set wins
    assert main([*args[:2], "--run-dir", str(tmp_path / "run"), "--max-iterations", "1", *tiny, *args[2:]]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_bad_algo_choice_is_an_argparse_error():
    result = pgr("train", "arm-push", "--algo", "ppg")
    assert result.returncode == 2 and "--algo: invalid choice: 'ppg'" in result.stderr


def test_goal_run_eval_over_all_checkpoints_and_record(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "arm-reach", "--max-iterations", "4", "--run-dir", str(run), *ARM_TINY]) == 0
    result = pgr("eval", str(run), "--all-checkpoints", "--episodes", "4", "--json")
    assert result.returncode == 0, result.stderr
    r = json.loads(result.stdout)
    assert [c["iteration"] for c in r["checkpoints"]] == [2, 4] and "criterion" not in r
    assert all(0 <= c["success_rate"] <= 1 and c["episodes"] == 4 for c in r["checkpoints"])
    record = tmp_path / "rec.npz"
    result = pgr("eval", str(run), "--episodes", "4", "--record", str(record))
    assert result.returncode == 0, result.stderr
    with np.load(record) as rec:  # one episode of 4 worlds: the named inputs and the actions taken
        assert rec["observation"].shape == (50, 4, 10) and rec["desired_goal"].shape == (50, 4, 3)
        assert rec["actions"].shape == (50, 4, 4) and rec["obs"].shape == (50, 4, 13)
        assert np.abs(rec["actions"]).max() <= 1


# ---- gymnasium adapter ---------------------------------------------------------------------------------------------
def test_pgr_trains_a_gymnasium_goal_env(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # gymnasium imports `tests.goal_envs` from the working directory
    run = tmp_path / "run"
    result = pgr("train", "gym:tests.goal_envs:PointGoal-v0", "--max-iterations", "2", "--run-dir", str(run),
                 *TINY)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["task"] == "gym:tests.goal_envs:PointGoal-v0" and summary["iteration"] == 2
    assert summary["total_env_steps"] == 2 * 4 * 25 and 0 <= summary["success_rate"] <= 1
    recipe = yaml.safe_load((run / "config.yaml").read_text())
    assert recipe["algo"] == "ddpg_her" and recipe["task"]["env_id"] == "tests.goal_envs:PointGoal-v0"
    saved = torch.load(run / "checkpoints" / "replay_buffer.pt", weights_only=True)
    assert saved["iteration"] == 2 and saved["buffer"]["obs"].shape == (8, 26, 2)  # 2 cycles x 4 worlds, 25 steps + the last observation


def test_gym_adapter_contract():
    importlib.import_module("goal_envs")  # registers PointGoal-v0 in this process

    env = make("gym:PointGoal-v0", 3, seed=0)
    try:
        assert (env.episode_steps, env.num_actions, env.goal_dim, env.kind) == (25, 2, 2, "goal")
        obs = env.reset()
        goal = obs["desired_goal"].clone()
        for t in range(25):
            start = obs["achieved_goal"]
            obs, reward, done, info = env.step(torch.full((3, 2), 0.5))
            ended = info["final_obs"] if t == 24 else obs
            assert torch.allclose(ended["achieved_goal"], (start + 0.05).clamp(max=1.0), atol=1e-6)
            assert torch.equal(reward, env.compute_reward(ended["achieved_goal"], goal))
            assert bool(done.all()) == (t == 24) and bool(done.any()) == (t == 24)
        assert env.compute_reward(torch.zeros(4, 5, 2), torch.zeros(4, 5, 2)).shape == (4, 5)
        assert not torch.equal(obs["desired_goal"], goal)
    finally:
        env.close()


def test_resumed_gym_run_stores_consistent_episodes(tmp_path):
    importlib.import_module("goal_envs")  # registers PointGoal-v0 in this process

    run = tmp_path / "run"
    assert main(["train", "gym:PointGoal-v0", "--max-iterations", "1", "--run-dir", str(run), *TINY,
                 "--set", "runner.save_interval=1"]) == 0
    assert main(["train", "gym:PointGoal-v0", "--resume", str(run), "--max-iterations", "2", *TINY,
                 "--set", "runner.save_interval=1"]) == 0
    buffer = torch.load(run / "checkpoints" / "replay_buffer.pt", weights_only=True)["buffer"]
    assert buffer["size"] == 8
    # PointGoalEnv keeps its goal for the whole episode and moves at most 0.1 per axis a step
    for e in range(8):
        assert torch.equal(buffer["goal"][e], buffer["goal"][e, :1].expand(25, 2)), f"episode {e}: goal changed"
        assert (buffer["obs"][e, 1:] - buffer["obs"][e, :-1]).abs().max() <= 0.1 + 1e-6, f"episode {e}: a jump"


def test_goal_run_summary_reports_the_last_success_rate(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "arm-reach", "--max-iterations", "3", "--run-dir", str(run), *ARM_TINY]) == 0  # eval at 2
    summary = json.loads((run / "summary.json").read_text())
    assert summary["iteration"] == 3 and "success_rate" in summary


def test_ctrl_c_finishes_the_cycle_saves_and_the_run_resumes(tmp_path):
    import signal

    run = tmp_path / "run"
    args = ["train", "arm-reach", "--run-dir", str(run), *ARM_TINY, "--set", "runner.save_interval=100000",
            "--max-iterations", "100000"]
    code, err = signal_training(args, run, signal.SIGINT, after_s=3.0)  # the interrupt lands in the middle of a cycle
    assert code == 130, err
    assert "finishing this cycle" in err
    ckpts = list((run / "checkpoints").glob("model_*.pt"))
    assert len(ckpts) == 1
    n = int(ckpts[0].stem.split("_")[1])
    saved = torch.load(run / "checkpoints" / "replay_buffer.pt", weights_only=True)
    assert n >= 1 and saved["iteration"] == n and saved["buffer"]["size"] == min(4 * n, 100)
    assert torch.load(ckpts[0], weights_only=True)["env"]["t"] == 0  # saved between episodes
    resumed = pgr(*["train", "arm-reach", "--resume", str(run), *ARM_TINY, "--max-iterations", str(n + 2)])
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "summary.json").read_text())["iteration"] == n + 2


# on a goal task, an off-policy method named as on any other task (`--algo sac`) trains its HER form
@pytest.mark.parametrize("name, algo", [("sac_her", "sac_her"), ("td3", "td3_her")])
def test_sac_and_td3_with_her_train_resume_and_export_a_goal_task(name, algo, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "arm-reach", "--algo", name, "--max-iterations", "2", "--run-dir", str(run),
                 *ARM_TINY]) == 0
    assert main(["train", "arm-reach", "--resume", str(run), "--algo", name, "--max-iterations", "3",
                 *ARM_TINY]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["algo"] == algo and summary["iteration"] == 3 and 0 <= summary["success_rate"] <= 1
    result = pgr("export", str(run), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["replay_action_max_abs_diff"] <= 1e-4


def test_an_off_policy_name_on_a_goal_task_is_its_her_form_and_nothing_else_is():
    from pg_robotics.recipe import make_recipe

    assert make_recipe("arm-push", "sac").algo == "sac_her"
    assert make_recipe("arm-push", "td3").algo == "td3_her"
    assert make_recipe("arm-push", overrides={"algo": "sac"}).algorithm.her_strategy == "future"
    assert make_recipe("gym:Pendulum-v1", "sac").algo == "sac"  # a dense-reward task keeps plain SAC
    with pytest.raises(ConfigError, match="algo: arm-push is a goal task with a sparse reward; ppo needs"):
        make_recipe("arm-push", "ppo")
