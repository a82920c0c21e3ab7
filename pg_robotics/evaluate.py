"""Evaluation of a trained run, whatever its algorithm; the protocol is the task kind's:

- locomotion: the deterministic policy for 20 s on six fixed velocity commands: tracking errors, falls, gait, and
  the walking criterion (`evaluate`; `sweep` over every checkpoint gives the time to the criterion);
- goal tasks: one deterministic episode in each of 100 seeded worlds: success rate and final distance;
- gymnasium envs (gym:<id>): one deterministic episode in each of 20 seeded worlds: the mean return.

`record` keeps what export's self-check replays through the deploy runtime: raw robot states (locomotion) or the
policy's named inputs (goal tasks), with the actions taken.

    from pg_robotics.evaluate import evaluate
    evaluate("runs/quadruped-flat/2026-11-21_11-18-00")["meets_criterion"]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pg_robotics import runs
from pg_robotics.envs import ConfigError
from pg_robotics.envs.config import deep_update
from pg_robotics.runners.off_policy import run_episode

COMMANDS = ((0.5, 0.0, 0.0), (1.0, 0.0, 0.0), (-0.3, 0.0, 0.0), (0.0, 0.3, 0.0), (0.0, 0.0, 0.6), (0.0, 0.0, 0.0))
# The walking criterion of the PPO goal: tracking errors at most these, and no world falls.
CRITERION = {"lin_vel_error": 0.10, "ang_vel_error": 0.15, "fall_rate": 0.0}


def meets_criterion(result: dict) -> bool:
    return all(result[k] <= limit for k, limit in CRITERION.items())


def fixed_command_agent(run_dir: Path, commands, worlds_per_command: int, seconds: float, seed: int = 1,
                        checkpoint: Path | None = None, backend: str = "mujoco", device: str = "cpu",
                        overrides: dict | None = None):
    """The run's agent on its task with commands held fixed. Episodes start standing still in the default pose (a
    robot starts that way; training's random initial joint angles and velocities are off), with no command
    resampling, pushes, observation noise or sensor biases; the run's physical randomization (friction, masses,
    gains, latency) stays. The
    simulation is C MuJoCo on the CPU unless `backend` / `device` say otherwise, whatever the run trained on.
    `overrides`: more task config on top (e.g. {"sim": {"nthread": 1}}). Returns (agent, commands tensor (N, 3))."""
    fixed = {"commands": {"resampling_time_s": 1e9}, "observations": {"add_noise": False},
             "randomization": {"push": {"interval_s": 0.0}, "joint_pos_scale": {"params": {"range": [1.0, 1.0]}},
                               "base_velocity": {"params": {"max": 0.0}},
                               "joint_pos_bias": {"enabled": False}, "imu_bias": {"enabled": False}},
             "sim": {"episode_length_s": seconds}}
    if overrides:
        fixed = deep_update(fixed, overrides)
    cmd = torch.tensor(commands, dtype=torch.float32, device=device).repeat_interleave(worlds_per_command, dim=0)
    agent = runs.load_agent(run_dir, checkpoint, len(cmd), seed, fixed, backend, device)
    agent.env.reset()
    agent.env.commands[:] = cmd
    return agent, cmd


def check_seconds(seconds: float, settle: float = 1.0) -> None:
    if seconds <= settle:
        raise ConfigError(f"--seconds: must be longer than the {settle:g} s settling time, got {seconds:g}")


def evaluate(run_dir: Path, episodes: int | None = None, seconds: float = 20.0, checkpoint: Path | None = None,
             backend: str = "mujoco", device: str = "cpu", seed: int = 1, overrides: dict | None = None) -> dict:
    """The run's deterministic policy under its task kind's protocol. `episodes`: worlds per command
    (locomotion, default 32) or episodes (goal tasks, default 100). `overrides`: task config on top of the run's
    (locomotion: e.g. another robot model, {"robot": {"mjcf": "other.xml"}}, or flat ground for a rough policy)."""
    kind = runs.read_recipe(run_dir).kind
    if kind == "goal":
        return evaluate_goal(run_dir, episodes or 100, checkpoint, seed, backend, device)
    if kind == "gym":
        return evaluate_gym(run_dir, episodes or 20, checkpoint, seed)
    return evaluate_locomotion(run_dir, episodes or 32, seconds, 1.0, seed, checkpoint, backend, device, overrides)


def evaluate_locomotion(run_dir: Path, episodes: int = 32, seconds: float = 20.0, settle: float = 1.0,
                        seed: int = 1, checkpoint: Path | None = None, backend: str = "mujoco",
                        device: str = "cpu", overrides: dict | None = None) -> dict:
    check_seconds(seconds, settle)
    agent, commands = fixed_command_agent(run_dir, COMMANDS, episodes, seconds, seed, checkpoint, backend, device,
                                          overrides)
    env, policy = agent.env, agent.act
    n, f = env.num_envs, dict(device=env.device)
    obs = env.observations()
    alive = torch.ones(n, dtype=torch.bool, **f)
    lin_err, ang_err, counted = torch.zeros(n, **f), torch.zeros(n, **f), torch.zeros(n, **f)
    ret = torch.zeros(n, **f)
    feet = env.state.foot_forces.shape[1]
    stance, touchdowns, leg_contact = torch.zeros(n, feet, **f), torch.zeros(n, feet, **f), torch.zeros(n, **f)
    steps = int(round(seconds / env.dt))
    settle_steps = int(round(settle / env.dt))
    for t in range(steps):
        obs, reward, done, info = env.step(policy(obs))
        fell = done & ~info["time_outs"] & alive
        ret += reward * alive
        if t >= settle_steps:
            s, live = env.state, alive & ~done
            lin_err += (s.base_lin_vel[:, :2] - commands[:, :2]).norm(dim=1) * live
            ang_err += (s.base_ang_vel[:, 2] - commands[:, 2]).abs() * live
            stance += s.foot_contact * live[:, None]
            touchdowns += s.first_contact * live[:, None]
            knees = (s.undesired_contact_forces.norm(dim=-1) > 1.0).any(dim=1)
            leg_contact += knees * live
            counted += live.float()
        alive &= ~fell
        env.commands[:] = commands  # fallen worlds were reset with a new command; keep the fixed ones
    agent.close()
    c, total_all = counted.clamp(min=1), counted.sum().clamp(min=1)
    per_command = []
    for i, cmd in enumerate(COMMANDS):
        sl = slice(i * episodes, (i + 1) * episodes)
        total = counted[sl].sum().clamp(min=1)
        per_command.append({
            "command": list(cmd), "lin_vel_error": float((lin_err[sl] / c[sl]).mean()),
            "ang_vel_error": float((ang_err[sl] / c[sl]).mean()), "fall_rate": float((~alive[sl]).float().mean()),
            # gait: share of time each foot is on the ground, touchdowns per foot per second, and the share of
            # time a thigh or calf touches the ground (knee walking)
            "duty_factor": [round(float(v), 3) for v in stance[sl].sum(0) / total],
            "steps_per_s": [round(float(v), 2) for v in touchdowns[sl].sum(0) / (total * env.dt)],
            "leg_contact": float(leg_contact[sl].sum() / total)})
    result = {"run_dir": str(run_dir), "checkpoint": str(agent.checkpoint), "iteration": agent.iteration,
              "train_seconds": round(agent.train_seconds, 3), "episodes_per_command": episodes,
              "seconds": seconds, "backend": env.sim.name, "lin_vel_error": float(lin_err.sum() / total_all),
              "ang_vel_error": float(ang_err.sum() / total_all),
              "fall_rate": float((~alive).float().mean()), "mean_return": float(ret.mean()),
              "leg_contact": float(leg_contact.sum() / total_all), "per_command": per_command}
    result["meets_criterion"] = meets_criterion(result)
    return result


# `pgr eval --terrain`: the difficulty each goal of the rough task names (slopes 20 degrees, rough +-5 cm, stairs 10 cm)
TERRAIN_GOALS = {"slope_up": 0.8, "slope_down": 0.8, "rough": 0.5, "stairs_up": 1 / 3, "stairs_down": 1 / 3}


def evaluate_terrain(run_dir: Path, terrain: str, difficulty: float, episodes: int = 32, seconds: float = 20.0,
                     speed: float = 0.6, seed: int = 1, checkpoint: Path | None = None, backend: str = "mujoco",
                     device: str = "cpu", distance: float = 4.0) -> dict:
    """`episodes` worlds on one tile of type `terrain` at `difficulty` (the run's terrain settings otherwise),
    commanded `speed` m/s forward, heading +x (up or down the pyramids), for `seconds`: `success_rate` (got
    `distance` m from the start, or to the tile's edge, without falling), `fall_rate`, tracking error."""
    from pg_robotics.envs.terrains import check_tile

    check_tile(terrain, difficulty, known_also=", all, goals")
    check_seconds(seconds)
    tile = {"type": "terrain", "terrain": {"types": [terrain], "difficulties": [difficulty], "spawn_offset": 0.0}}
    overrides = {"ground": tile, "curriculum": {"terms": {"terrain_levels": {"enabled": False}}},
                 "randomization": {"base_yaw": {"params": {"range": [0.0, 0.0]}}}}
    recipe = runs.read_recipe(run_dir)
    if "terrain_levels" not in recipe.task_cfg.curriculum.terms:
        overrides.pop("curriculum")
    agent, _ = fixed_command_agent(run_dir, [(speed, 0.0, 0.0)], episodes, seconds, seed, checkpoint, backend, device,
                                   overrides)
    env = agent.env
    n, f = env.num_envs, dict(device=env.device)
    start = env.state.base_pos[:, :2].clone()
    edge = env.terrain.cfg.tile_size / 2 - 0.05
    alive, reached = torch.ones(n, dtype=torch.bool, **f), torch.zeros(n, dtype=torch.bool, **f)
    lin_err, counted = torch.zeros(n, **f), torch.zeros(n, **f)
    obs = env.observations()
    for t in range(int(round(seconds / env.dt))):
        obs, _, done, info = env.step(agent.act(obs))
        fell = done & ~info["time_outs"] & alive
        s = env.state
        offset = s.base_pos[:, :2] - env.env_origins[:, :2]
        moved = (s.base_pos[:, :2] - start).norm(dim=1)
        live = alive & ~done
        reached |= live & ((moved >= distance) | (offset.abs().amax(dim=1) >= edge))
        if t * env.dt >= 1.0:
            lin_err += (s.base_lin_vel[:, :2] - env.commands[:, :2]).norm(dim=1) * (live & ~reached)
            counted += (live & ~reached).float()
        alive &= ~fell
        reached &= alive
    agent.close()
    return {"run_dir": str(run_dir), "checkpoint": str(agent.checkpoint), "iteration": agent.iteration,
            "train_seconds": round(agent.train_seconds, 3), "terrain": terrain, "difficulty": difficulty,
            "episodes": episodes, "speed": speed, "success_rate": float(reached.float().mean()),
            "fall_rate": float((~alive).float().mean()),
            "lin_vel_error": float(lin_err.sum() / counted.sum().clamp(min=1))}


# A terrain cell's goal (issue 19): at least this share of the worlds succeed and at most this share fall.
TERRAIN_GOAL = {"success_rate": 0.9, "fall_rate": 0.05}


def meets_terrain_goal(row: dict) -> bool:
    return row["success_rate"] >= TERRAIN_GOAL["success_rate"] and row["fall_rate"] <= TERRAIN_GOAL["fall_rate"]


def terrain_cells(terrain: str, difficulties=None) -> list[tuple[str, float]]:
    """The (type, difficulty) cells that `pgr eval --terrain` names: one type at the given difficulties (default:
    the rough task's goal for it), `all` (every type x 0, 0.25, ..., 1 unless given) or `goals` (the goal cells)."""
    from pg_robotics.envs.terrains import TYPES, check_tile

    if terrain == "goals":
        if difficulties:
            raise ConfigError("--difficulty: not with --terrain goals (each goal cell has its own difficulty)")
        return list(TERRAIN_GOALS.items())
    types = TYPES if terrain == "all" else (terrain,)
    default = (0.0, 0.25, 0.5, 0.75, 1.0) if terrain == "all" else (TERRAIN_GOALS.get(terrain, 0.5),)
    cells = [(t, float(d)) for t in types for d in (difficulties or default)]
    for t, d in cells:
        check_tile(t, d, known_also=", all, goals")
    return cells


def terrain_sweep(run_dir: Path, cells: list[tuple[str, float]], episodes: int = 32, every: int = 1,
                  on_result=None, **kwargs) -> dict:
    """Every `every`-th checkpoint of a run (counted back from the last, which is always in) on each terrain cell:
    the curve over training, written to `terrain_curve.png` in the run, and the first checkpoint that meets each
    cell's goal (`TERRAIN_GOAL`) with its training time."""
    run_dir = Path(run_dir)
    ckpts = runs.checkpoints(run_dir, every)
    if not ckpts:
        raise ConfigError(f"{run_dir}: no checkpoint found")
    points = []
    for ckpt in ckpts:
        rows = [evaluate_terrain(run_dir, t, d, episodes, checkpoint=ckpt, **kwargs) for t, d in cells]
        points.append({"checkpoint": str(ckpt), "iteration": rows[0]["iteration"],
                       "train_seconds": rows[0]["train_seconds"], "cells": rows})
        if on_result:
            on_result(points[-1])
    first = {}
    for i, (t, d) in enumerate(cells):
        met = [p for p in points if meets_terrain_goal(p["cells"][i])]
        first[f"{t} {d:.2f}"] = {k: met[0][k] for k in ("iteration", "train_seconds")} if met else None
    out = {"run_dir": str(run_dir), "goal": TERRAIN_GOAL, "points": points, "first_meeting": first,
           "plot": str(run_dir / "terrain_curve.png")}
    plot_terrain_curve(out, cells, run_dir / "terrain_curve.png")
    return out


def plot_terrain_curve(sweep_result: dict, cells: list[tuple[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sweep_result["points"]
    minutes = [p["train_seconds"] / 60 for p in points]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for i, (t, d) in enumerate(cells):
        line, = axes[0].plot(minutes, [p["cells"][i]["success_rate"] for p in points], marker=".",
                             label=f"{t} {d:.2f}")
        axes[1].plot(minutes, [p["cells"][i]["fall_rate"] for p in points], marker=".", color=line.get_color())
    axes[0].axhline(TERRAIN_GOAL["success_rate"], color="k", ls="--", lw=0.8)
    axes[1].axhline(TERRAIN_GOAL["fall_rate"], color="k", ls="--", lw=0.8)
    for ax, name in zip(axes, ("success rate", "fall rate")):
        ax.set_xlabel("training time (min)")
        ax.set_ylabel(name)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"pgr eval --terrain over checkpoints: {sweep_result['run_dir']}")
    fig.tight_layout()
    runs.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


def evaluate_goal(run_dir: Path, episodes: int = 100, checkpoint: Path | None = None, seed: int = 1,
                  backend: str = "mujoco", device: str = "cpu") -> dict:
    """One deterministic episode in each of `episodes` worlds (seeded, so runs compare on the same goals)."""
    agent = runs.load_agent(run_dir, checkpoint, episodes, seed, backend=backend, device=device)
    try:
        ep, _ = run_episode(agent.env, agent.act, agent.env.reset())
    finally:
        agent.close()
    return {"run_dir": str(run_dir), "task": agent.recipe.task, "checkpoint": str(agent.checkpoint),
            "iteration": agent.iteration, "train_seconds": round(agent.train_seconds, 3), "episodes": episodes,
            "success_rate": float(ep["success"].mean()), "final_distance": float(ep["final_distance"].mean())}


def gym_episodes(agent, max_steps: int = 100_000) -> dict[str, np.ndarray]:
    """One deterministic episode in each world of a gymnasium-env agent: returns, lengths, and what the policy saw
    and did up to the longest episode (steps, worlds, ...)."""
    env = agent.env
    obs = env.reset()
    n = env.num_envs
    total, length = np.zeros(n), np.zeros(n, dtype=int)
    running = np.ones(n, dtype=bool)
    seen, did = [], []
    for _ in range(max_steps):
        actions = agent.act(obs)
        seen.append(obs["policy"].double().numpy().copy())
        did.append(actions.double().numpy().copy())
        obs, reward, done, _ = env.step(actions)
        total += reward.double().numpy() * running
        length += running
        running &= ~done.numpy()
        if not running.any():
            break
    return {"returns": total, "lengths": length, "obs": np.stack(seen), "actions": np.stack(did)}


def evaluate_gym(run_dir: Path, episodes: int = 20, checkpoint: Path | None = None, seed: int = 1) -> dict:
    """One deterministic episode in each of `episodes` worlds (seeded): the mean undiscounted return."""
    agent = runs.load_agent(run_dir, checkpoint, episodes, seed)
    try:
        ep = gym_episodes(agent)
    finally:
        agent.close()
    return {"run_dir": str(run_dir), "task": agent.recipe.task, "algo": agent.recipe.algo,
            "checkpoint": str(agent.checkpoint), "iteration": agent.iteration,
            "train_seconds": round(agent.train_seconds, 3), "episodes": episodes,
            "mean_return": float(ep["returns"].mean()), "std_return": float(ep["returns"].std()),
            "mean_length": float(ep["lengths"].mean())}


def sweep(run_dir: Path, episodes: int | None = None, seconds: float = 20.0, on_result=None,
          backend: str = "mujoco", device: str = "cpu", every: int = 1) -> dict:
    """Evaluate every checkpoint of a run (or every `every`-th, counted back from the last), oldest first.
    Locomotion runs also report the first checkpoint that meets the walking criterion with its training time (the
    time-to-criterion)."""
    results, first = [], None
    for ckpt in runs.checkpoints(Path(run_dir), every):
        result = evaluate(run_dir, episodes, seconds, checkpoint=ckpt, backend=backend, device=device)
        results.append(result)
        if on_result:
            on_result(result)
        if first is None and result.get("meets_criterion"):
            first = result
    if not results:
        raise ConfigError(f"{run_dir}: no checkpoint found")
    out: dict = {"run_dir": str(run_dir), "checkpoints": results}
    if "meets_criterion" in results[0]:
        out.update(criterion=CRITERION, first_meeting=None if first is None else {k: first[k] for k in (
            "checkpoint", "iteration", "train_seconds", "lin_vel_error", "ang_vel_error", "fall_rate")})
    return out


def record(run_dir: Path, checkpoint: Path | None = None, worlds: int = 4, seconds: float = 2.0,
           seed: int = 2) -> dict:
    """What the policy saw and did, for the deploy runtime to replay (`pg_robotics.deploy.replay`): arrays
    (steps, worlds, ...) with `obs` (the policy's flat input) and `actions`, plus
    - locomotion (`worlds` per eval command, `seconds` each): the raw robot state behind each observation
      (joint positions and velocities, quaternion x, y, z, w as in ROS, angular velocity, command, last action)
      and `joint_names`;
    - goal tasks (one episode in each of `worlds` worlds): each named input (`observation`, `desired_goal`);
    - gymnasium envs (one episode in each of `worlds` worlds, at most 200 steps): `observation`."""
    kind = runs.read_recipe(run_dir).kind
    if kind == "gym":
        agent = runs.load_agent(run_dir, checkpoint, worlds, seed)
        try:
            ep = gym_episodes(agent, max_steps=200)
        finally:
            agent.close()
        # the actions the env applied: clipped to its Box, as the deploy runtime clips them
        return {"observation": ep["obs"], "actions": ep["actions"].clip(agent.env.low, agent.env.high),
                "obs": ep["obs"]}
    if kind == "goal":
        agent = runs.load_agent(run_dir, checkpoint, worlds, seed)
        try:
            ep, _ = run_episode(agent.env, agent.act, agent.env.reset())
        finally:
            agent.close()
        steps = lambda x: x.transpose(0, 1).double().numpy()  # noqa: E731  (N, T, D) -> (T, N, D)
        observation, goal = steps(ep["obs"][:, :-1]), steps(ep["goal"])
        return {"observation": observation, "desired_goal": goal, "actions": steps(ep["actions"]),
                "obs": np.concatenate([observation, goal], axis=-1)}
    agent, commands = fixed_command_agent(run_dir, COMMANDS, worlds, seconds, seed, checkpoint)
    env = agent.env
    keys = ("obs", "actions", "joint_pos", "joint_vel", "orientation_xyzw", "angular_velocity", "command",
            "last_action")
    scan = env.height_scan_params() if hasattr(env, "height_scan_params") else None
    if scan is not None:  # a perceptive policy: the raw samples an elevation map would give
        keys += ("height_samples",)
    out: dict[str, list] = {k: [] for k in keys}
    obs = env.observations()
    for _ in range(int(round(seconds / env.dt))):
        s = env.state
        actions = agent.act(obs)
        if scan is not None:
            from pg_robotics.envs.locomotion.observations import height_scan

            out["height_samples"].append(height_scan(s, scan["size"], scan["resolution"], 0.0).double().numpy())
        for key, value in (("obs", obs["policy"]), ("actions", actions), ("joint_pos", s.joint_pos),
                           ("joint_vel", s.joint_vel), ("orientation_xyzw", s.base_quat[:, [1, 2, 3, 0]]),
                           ("angular_velocity", s.base_ang_vel), ("command", s.command),
                           ("last_action", s.actions)):
            out[key].append(value.double().numpy().copy())
        env.step(actions)
        env.commands[:] = commands
        obs = env.observations()  # a world reset inside step drew a random command; observe the fixed one
    agent.close()
    result = {k: np.stack(v) for k, v in out.items()}
    result["joint_names"] = np.array(env.joint_names)
    return result
