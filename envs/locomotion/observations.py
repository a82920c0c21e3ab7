"""Observation terms: each maps the state to an (N, dim) tensor in raw units (scale, noise, clip come from config)."""

from __future__ import annotations

from functools import lru_cache

import torch

from .. import rotations
from .state import LocoState


def base_lin_vel(s: LocoState) -> torch.Tensor:
    return s.base_lin_vel


def base_ang_vel(s: LocoState) -> torch.Tensor:
    """The gyro: base angular velocity plus its bias."""
    return s.base_ang_vel if s.gyro_bias is None else s.base_ang_vel + s.gyro_bias


def projected_gravity(s: LocoState) -> torch.Tensor:
    """Gravity in the base frame as the IMU estimates it (plus its bias)."""
    return s.projected_gravity if s.gravity_bias is None else s.projected_gravity + s.gravity_bias


def command(s: LocoState) -> torch.Tensor:
    return s.command


def joint_pos(s: LocoState) -> torch.Tensor:
    """Encoder angles (plus their offsets) relative to the default pose."""
    q = s.joint_pos if s.joint_pos_bias is None else s.joint_pos + s.joint_pos_bias
    return q - s.default_joint_pos


def joint_vel(s: LocoState) -> torch.Tensor:
    return s.joint_vel


def last_action(s: LocoState) -> torch.Tensor:
    return s.actions


def base_height(s: LocoState) -> torch.Tensor:
    """Height of the base above z = 0 (privileged on flat ground)."""
    return s.base_pos[:, 2:3]


def foot_contact(s: LocoState, threshold: float = 1.0) -> torch.Tensor:
    """1 where a foot touches the ground, per foot."""
    return (s.foot_forces.norm(dim=-1) > threshold).to(s.joint_pos.dtype)


@lru_cache(maxsize=8)
def scan_grid(size: tuple[float, float], resolution: float) -> torch.Tensor:
    """(P, 2) points of a height scan in the base's heading frame: x (forward) from -size[0]/2 to size[0]/2, then y
    (left) likewise, every `resolution` m; x-major order (all y of the first x first). 1.6 m x 1.0 m at 0.1 m: 187."""
    nx, ny = int(round(size[0] / resolution)) + 1, int(round(size[1] / resolution)) + 1
    x = torch.linspace(-size[0] / 2, size[0] / 2, nx)
    y = torch.linspace(-size[1] / 2, size[1] / 2, ny)
    return torch.stack(torch.meshgrid(x, y, indexing="ij"), dim=-1).reshape(-1, 2)


def height_scan(s: LocoState, size: tuple[float, float] = (1.6, 1.0), resolution: float = 0.1,
                offset: float = 0.5) -> torch.Tensor:
    """Height of the base above the ground at a grid of points around it (`scan_grid`, turned with the base's yaw,
    not its roll or pitch), minus `offset`: (N, P). What a robot's elevation map gives, relative to its base."""
    grid = scan_grid(tuple(size), resolution).to(s.base_pos.device)
    yaw = rotations.yaw(s.base_quat)
    c, si = torch.cos(yaw)[:, None], torch.sin(yaw)[:, None]
    x = s.base_pos[:, None, 0] + c * grid[:, 0] - si * grid[:, 1]
    y = s.base_pos[:, None, 1] + si * grid[:, 0] + c * grid[:, 1]
    return s.base_pos[:, 2:3] - offset - s.height_of(torch.stack([x, y], dim=-1))
