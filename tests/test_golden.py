"""Golden trajectories: the tasks reproduce, bit for bit, what they did before robots, scenes and terms became data.

tests/data/golden_*.npz were recorded at commit b018f26 (go1.xml and panda.xml still held floor, actuators and sensors;
rewards, resets, pushes and randomization were hard-coded in `step`) by the rollouts below, with the config keys of
that time (`randomization.push_interval_s: 0.5` where the push event is set below). Randomization is on (friction,
base mass, motor strength, random initial pose, heading and velocity, pushes), observation noise on, and the
rollout provokes an upside-down world, a trunk in the floor and a diverged world, so every code path of `step` is
in the record. The composed scenes compile to the same MjModel as the old files (every numeric array equal apart
from the added sensors), so nothing may differ: equality is exact.
"""

from pathlib import Path

import numpy as np
import torch

from pg_robotics.envs import make

DATA = Path(__file__).parent / "data"
LOCO = {"sim": {"episode_length_s": 1.0}, "commands": {"resampling_time_s": 0.6},
        "randomization": {"push": {"interval_s": 0.5}}}


def locomotion_rollout() -> dict:
    env = make("quadruped-flat", 4, seed=0, overrides=LOCO)
    gen = torch.Generator().manual_seed(0)
    keys = ("policy", "critic", "reward", "done", "cat_delta", "time_outs", "terminated", "qpos", "commands",
            "num_diverged")
    out: dict = {k: [] for k in keys}
    episode, violation = [], []
    obs = env.reset()
    out["policy"].append(obs["policy"].numpy().copy())
    out["critic"].append(obs["critic"].numpy().copy())
    for t in range(150):
        actions = (torch.rand(4, 12, generator=gen) * 2 - 1) * 2.0
        if t == 20:  # world 0 upside down
            env.sim.qpos[0, 3:7] = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
            env.sim.qpos[0, 2] = 0.6
        if t == 70:  # world 1's trunk in the floor
            env.sim.qpos[1, 2] = 0.05
        if t == 110:  # world 2 diverges
            env.sim.qvel[2, 6] = float("nan")
        obs, reward, done, info = env.step(actions)
        for key, value in (("policy", obs["policy"]), ("critic", obs["critic"]), ("reward", reward), ("done", done),
                           ("cat_delta", info["cat_delta"]), ("time_outs", info["time_outs"]),
                           ("terminated", info["terminated"]), ("qpos", env.sim.qpos), ("commands", env.commands)):
            out[key].append(value.numpy().copy())
        out["num_diverged"].append(np.array(int(info["num_diverged"])))
        violation.append([float(v) for v in info["constraint_violation"].values()])
        if "episode" in info:
            episode.append([t] + [float(v) for v in info["episode"].values()])
    result = {k: np.stack(v) for k, v in out.items()}
    result.update(violation=np.array(violation), episode=np.array(episode),
                  violation_names=np.array(list(info["constraint_violation"])),
                  episode_names=np.array(list(env.reward_weights) + ["length"]))
    env.close()
    return result


def arm_rollout() -> dict:
    env = make("arm-pick-place", 3, seed=0)
    gen = torch.Generator().manual_seed(0)
    out: dict = {k: [] for k in ("observation", "achieved_goal", "desired_goal", "reward", "done", "is_success",
                                 "qpos")}
    env.reset()
    for _ in range(120):
        obs, reward, done, info = env.step(torch.rand(3, 4, generator=gen) * 2 - 1)
        for key in ("observation", "achieved_goal", "desired_goal"):
            out[key].append(obs[key].numpy().copy())
        for key, value in (("reward", reward), ("done", done), ("is_success", info["is_success"]),
                           ("qpos", env.sim.qpos)):
            out[key].append(value.numpy().copy())
    env.close()
    return {k: np.stack(v) for k, v in out.items()}


def assert_same(new: dict, path: Path, atol: float = 0.0) -> None:
    """Every array as recorded: exactly, or floating-point arrays within `atol`."""
    golden = np.load(path)
    assert sorted(golden.files) == sorted(new), path.name
    for key in golden.files:
        assert golden[key].shape == new[key].shape, key
        if atol and golden[key].dtype.kind == "f":
            np.testing.assert_allclose(new[key], golden[key], rtol=0, atol=atol, err_msg=key)
            continue
        assert np.array_equal(golden[key], new[key], equal_nan=golden[key].dtype.kind == "f"), \
            f"{key}: {golden[key]} != {new[key]}"


def test_quadruped_flat_reproduces_its_golden_trajectory():
    result = locomotion_rollout()
    assert result["terminated"].any() and result["time_outs"].any() and result["num_diverged"].sum() == 1
    assert len(result["episode"]) == 9  # every reward term's episode sum, at each of the 9 resets
    assert_same(result, DATA / "golden_quadruped_flat.npz")


def test_arm_pick_place_reproduces_its_golden_trajectory():
    # The arm's inverse kinematics runs torch matrix products and solves, whose rounding depends on the CPU's vector
    # units (recorded on an AMD EPYC; an Intel Xeon differs by 5e-7 in the observation and 2.4e-6 rad in qpos after
    # 120 steps): floats agree within 1e-5, everything discrete (rewards, successes, dones) exactly.
    assert_same(arm_rollout(), DATA / "golden_arm_pick_place.npz", atol=1e-5)
