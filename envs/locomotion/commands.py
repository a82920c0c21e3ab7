"""Command terms: ``fn(env, n, cfg) -> (n, 3)`` draws the commands of `n` worlds; `cfg` is the task's commands
section (its ranges, possibly moved by a curriculum: `env.command_ranges`)."""

from __future__ import annotations

import torch

NAMES = ("lin_vel_x", "lin_vel_y", "ang_vel_yaw")


def velocity(env, n: int, cfg) -> torch.Tensor:
    """(v_x, v_y, yaw rate) uniform in their ranges; planar speeds below `small_to_zero` become 0 and a
    `standing_fraction` share of the commands is exactly zero."""
    ranges = env.command_ranges
    cmd = torch.stack([env.uniform(*ranges["lin_vel_x"], n), env.uniform(*ranges["lin_vel_y"], n),
                       env.uniform(*ranges["ang_vel_yaw"], n)], dim=1)
    cmd[:, :2] *= (cmd[:, :2].norm(dim=1, keepdim=True) >= cfg.small_to_zero)
    cmd *= (env.uniform(0.0, 1.0, n) >= cfg.standing_fraction)[:, None]
    return cmd
