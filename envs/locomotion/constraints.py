"""Constraint terms for CaT: each returns an (N, k) tensor of the constrained quantity; the violation is
c = value - limit (positive = violated), see `pg_robotics.envs.cat`."""

from __future__ import annotations

import torch

from .state import LocoState


def torque(s: LocoState) -> torch.Tensor:
    return s.torques.abs() / s.torque_limits


def joint_vel(s: LocoState) -> torch.Tensor:
    return s.joint_vel.abs() / s.velocity_limits


def joint_acc(s: LocoState) -> torch.Tensor:
    return s.joint_acc.abs()


def action_rate(s: LocoState) -> torch.Tensor:
    """Rate of change of the joint position targets (rad/s), not of the raw actions."""
    return (s.actions - s.last_actions).abs() * s.action_scale / s.dt


def body_contact(s: LocoState, threshold: float = 1.0) -> torch.Tensor:
    """1 for each of the preset's constrained_contacts bodies touching the ground."""
    return (s.constrained_contact_forces.norm(dim=-1) > threshold).to(s.joint_pos.dtype)


def foot_contact_force(s: LocoState) -> torch.Tensor:
    return s.foot_forces.norm(dim=-1)


def base_orientation(s: LocoState) -> torch.Tensor:
    return s.projected_gravity[:, :2].norm(dim=1, keepdim=True)
