"""`pgr eval`: the deterministic policy of a run on fixed velocity commands."""

from __future__ import annotations

from pathlib import Path

import torch

from pg_robotics.envs import ConfigError, make

COMMANDS = ((0.5, 0.0, 0.0), (1.0, 0.0, 0.0), (-0.3, 0.0, 0.0), (0.0, 0.3, 0.0), (0.0, 0.0, 0.6), (0.0, 0.0, 0.0))


def load_policy(run_dir: Path, checkpoint: Path | None = None):
    """(task name, task config, PPO with the checkpoint's weights and normalizers) of a run directory."""
    from pg_robotics.runner import latest_checkpoint
    from pg_robotics.train import read_run, resolve_recipe

    run_dir = Path(run_dir)
    task, recipe = read_run(run_dir)
    checkpoint = checkpoint or latest_checkpoint(run_dir)
    if checkpoint is None or not Path(checkpoint).is_file():
        raise ConfigError(f"{run_dir}: no checkpoint found")
    task_cfg, algo_cfg, runner_cfg = resolve_recipe(task, recipe, {})
    return task, task_cfg, algo_cfg, runner_cfg, torch.load(checkpoint, weights_only=True), checkpoint


def evaluate(run_dir: Path, episodes: int = 32, seconds: float = 20.0, settle: float = 1.0, seed: int = 1,
             checkpoint: Path | None = None) -> dict:
    from pg_robotics.envs.config import merge
    from pg_robotics.ppo import PPO

    task, task_cfg, algo_cfg, _, state, ckpt = load_policy(run_dir, checkpoint)
    task_cfg = merge(task_cfg, {"commands": {"resampling_time_s": 1e9}, "observations": {"add_noise": False},
                                "randomization": {"push_interval_s": 0.0}, "sim": {"episode_length_s": seconds}})
    n = episodes * len(COMMANDS)
    torch.set_num_threads(1)
    env = make(task, n, seed=seed, cfg=task_cfg)
    ppo = PPO(algo_cfg, env.num_obs["policy"], env.num_obs.get("critic", env.num_obs["policy"]), env.num_actions, 1)
    ppo.load_state_dict(state["algorithm"])
    commands = torch.tensor(COMMANDS, dtype=torch.float32).repeat_interleave(episodes, dim=0)
    env.reset()
    env.commands[:] = commands
    obs = env.observations()
    alive = torch.ones(n, dtype=torch.bool)
    lin_err, ang_err, counted = torch.zeros(n), torch.zeros(n), torch.zeros(n)
    ret = torch.zeros(n)
    steps = int(round(seconds / env.dt))
    settle_steps = int(round(settle / env.dt))
    for t in range(steps):
        actions = ppo.act_inference(obs)
        obs, reward, done, info = env.step(actions)
        fell = done & ~info["time_outs"] & alive
        ret += reward * alive
        if t >= settle_steps:
            s = env.state
            lin_err += (s.base_lin_vel[:, :2] - commands[:, :2]).norm(dim=1) * (alive & ~done)
            ang_err += (s.base_ang_vel[:, 2] - commands[:, 2]).abs() * (alive & ~done)
            counted += (alive & ~done).float()
        alive &= ~fell
        env.commands[:] = commands  # fallen worlds were reset with a new command; keep the fixed ones
    env.close()
    c = counted.clamp(min=1)
    per_command = []
    for i, cmd in enumerate(COMMANDS):
        sl = slice(i * episodes, (i + 1) * episodes)
        per_command.append({"command": list(cmd), "lin_vel_error": float((lin_err[sl] / c[sl]).mean()),
                            "ang_vel_error": float((ang_err[sl] / c[sl]).mean()),
                            "fall_rate": float((~alive[sl]).float().mean())})
    result = {"run_dir": str(run_dir), "checkpoint": str(ckpt), "episodes_per_command": episodes,
              "seconds": seconds, "lin_vel_error": float(lin_err.sum() / counted.sum().clamp(min=1)),
              "ang_vel_error": float(ang_err.sum() / counted.sum().clamp(min=1)),
              "fall_rate": float((~alive).float().mean()), "mean_return": float(ret.mean()),
              "per_command": per_command}
    return result
