"""`pgr eval`: the deterministic policy of a run on fixed velocity commands; the walking criterion."""

from __future__ import annotations

from pathlib import Path

import torch

from pg_robotics.envs import ConfigError, make

COMMANDS = ((0.5, 0.0, 0.0), (1.0, 0.0, 0.0), (-0.3, 0.0, 0.0), (0.0, 0.3, 0.0), (0.0, 0.0, 0.6), (0.0, 0.0, 0.0))
# The walking criterion of the PPO goal: tracking errors at most these, and no world falls.
CRITERION = {"lin_vel_error": 0.10, "ang_vel_error": 0.15, "fall_rate": 0.0}


def meets_criterion(result: dict) -> bool:
    return all(result[k] <= limit for k, limit in CRITERION.items())


def load_policy(run_dir: Path, checkpoint: Path | None = None):
    """(task name, task config, algorithm config, runner config, checkpoint state, checkpoint path) of a run."""
    from pg_robotics.runner import latest_checkpoint
    from pg_robotics.train import read_run, resolve_recipe

    run_dir = Path(run_dir)
    task, recipe = read_run(run_dir)
    checkpoint = checkpoint or latest_checkpoint(run_dir)
    if checkpoint is None or not Path(checkpoint).is_file():
        raise ConfigError(f"{run_dir}: no checkpoint found")
    task_cfg, algo_cfg, runner_cfg = resolve_recipe(task, recipe, {})
    return task, task_cfg, algo_cfg, runner_cfg, torch.load(checkpoint, map_location="cpu", weights_only=True), checkpoint


def fixed_command_setup(run_dir: Path, commands, worlds_per_command: int, seconds: float, seed: int = 1,
                        checkpoint: Path | None = None, backend: str = "mujoco", device: str = "cpu"):
    """The run's task with commands held fixed and its deterministic policy. Episodes start standing still in the
    default pose (a robot starts that way; training's random initial joint angles and velocities are off), with no
    command resampling, pushes or observation noise; the run's friction, mass and motor-strength randomization
    stays. The simulation is C MuJoCo on the CPU unless `backend` / `device` say otherwise, whatever the run trained on.
    Returns (env, policy(obs) -> actions, commands tensor (N, 3), checkpoint state, checkpoint path)."""
    from pg_robotics.envs.config import merge
    from pg_robotics.ppo import PPO

    task, task_cfg, algo_cfg, _, state, ckpt = load_policy(run_dir, checkpoint)
    task_cfg = merge(task_cfg, {"commands": {"resampling_time_s": 1e9}, "observations": {"add_noise": False},
                                "randomization": {"push": {"interval_s": 0.0}, "joint_pos_scale": {"params": {"range": [1.0, 1.0]}},
                                                  "base_velocity": {"params": {"max": 0.0}}},
                                "sim": {"episode_length_s": seconds}})
    torch.set_num_threads(1)
    cmd = torch.tensor(commands, dtype=torch.float32, device=device).repeat_interleave(worlds_per_command, dim=0)
    env = make(task, len(cmd), seed=seed, cfg=task_cfg, backend=backend, device=device)
    ppo = PPO(algo_cfg, env.num_obs["policy"], env.num_obs.get("critic", env.num_obs["policy"]), env.num_actions, 1,
              device=env.device)
    ppo.load_state_dict(state["algorithm"])
    env.reset()
    env.commands[:] = cmd
    return env, ppo.act_inference, cmd, state, ckpt


def check_seconds(seconds: float, settle: float = 1.0) -> None:
    if seconds <= settle:
        raise ConfigError(f"--seconds: must be longer than the {settle:g} s settling time, got {seconds:g}")


def evaluate(run_dir: Path, episodes: int = 32, seconds: float = 20.0, settle: float = 1.0, seed: int = 1,
             checkpoint: Path | None = None, backend: str = "mujoco", device: str = "cpu") -> dict:
    check_seconds(seconds, settle)
    env, policy, commands, state, ckpt = fixed_command_setup(run_dir, COMMANDS, episodes, seconds, seed, checkpoint,
                                                             backend, device)
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
    env.close()
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
    result = {"run_dir": str(run_dir), "checkpoint": str(ckpt), "iteration": int(state["iteration"]),
              "train_seconds": round(float(state["elapsed"]), 3), "episodes_per_command": episodes,
              "seconds": seconds, "backend": env.sim.name, "lin_vel_error": float(lin_err.sum() / total_all),
              "ang_vel_error": float(ang_err.sum() / total_all),
              "fall_rate": float((~alive).float().mean()), "mean_return": float(ret.mean()),
              "leg_contact": float(leg_contact.sum() / total_all), "per_command": per_command}
    result["meets_criterion"] = meets_criterion(result)
    return result


def sweep(run_dir: Path, episodes: int = 32, seconds: float = 20.0, on_result=None, backend: str = "mujoco",
          device: str = "cpu") -> dict:
    """Evaluate every checkpoint of a run, oldest first; report the first that meets the walking criterion
    with its training time (the time-to-criterion)."""
    from pg_robotics.runner import checkpoints

    results, first = [], None
    for ckpt in checkpoints(Path(run_dir)):
        result = evaluate(run_dir, episodes, seconds, checkpoint=ckpt, backend=backend, device=device)
        results.append(result)
        if on_result:
            on_result(result)
        if first is None and result["meets_criterion"]:
            first = result
    if not results:
        raise ConfigError(f"{run_dir}: no checkpoint found")
    return {"run_dir": str(run_dir), "criterion": CRITERION,
            "first_meeting": None if first is None else {k: first[k] for k in (
                "checkpoint", "iteration", "train_seconds", "lin_vel_error", "ang_vel_error", "fall_rate")},
            "checkpoints": results}


def record(run_dir: Path, worlds_per_command: int = 4, seconds: float = 2.0, seed: int = 2,
           checkpoint: Path | None = None) -> dict:
    """Observations, actions and the raw robot state behind each observation, for the deploy runtime to replay
    (`pg_robotics.deploy.replay`). Arrays are (steps, worlds, ...); the quaternion is stored x, y, z, w (ROS)."""
    import numpy as np

    env, policy, commands, _, _ = fixed_command_setup(run_dir, COMMANDS, worlds_per_command, seconds, seed,
                                                      checkpoint)
    keys = ("obs", "actions", "joint_pos", "joint_vel", "orientation_xyzw", "angular_velocity", "command",
            "last_action")
    out: dict[str, list] = {k: [] for k in keys}
    obs = env.observations()
    for _ in range(int(round(seconds / env.dt))):
        s = env.state
        actions = policy(obs)
        for key, value in (("obs", obs["policy"]), ("actions", actions), ("joint_pos", s.joint_pos),
                           ("joint_vel", s.joint_vel), ("orientation_xyzw", s.base_quat[:, [1, 2, 3, 0]]),
                           ("angular_velocity", s.base_ang_vel), ("command", s.command),
                           ("last_action", s.actions)):
            out[key].append(value.double().numpy().copy())
        env.step(actions)
        env.commands[:] = commands
        obs = env.observations()  # a world reset inside step drew a random command; observe the fixed one
    env.close()
    result = {k: np.stack(v) for k, v in out.items()}
    result["joint_names"] = np.array(env.joint_names)
    return result
