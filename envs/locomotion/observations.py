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
