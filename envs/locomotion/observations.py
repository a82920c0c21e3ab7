"""Observation terms: each maps the state to an (N, dim) tensor in raw units (scale, noise, clip come from config)."""

from __future__ import annotations

import torch

from .state import LocoState


def base_lin_vel(s: LocoState) -> torch.Tensor:
    return s.base_lin_vel


def base_ang_vel(s: LocoState) -> torch.Tensor:
    return s.base_ang_vel


def projected_gravity(s: LocoState) -> torch.Tensor:
    return s.projected_gravity


def command(s: LocoState) -> torch.Tensor:
    return s.command


def joint_pos(s: LocoState) -> torch.Tensor:
    return s.joint_pos - s.default_joint_pos


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
