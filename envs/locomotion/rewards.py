"""Reward terms: each returns an (N,) tensor; the config weight (negative for penalties) times the policy dt
turns it into the reward. Penalties here are non-negative magnitudes, bonuses non-negative too."""

from __future__ import annotations

import torch

from .config import RewardsCfg
from .state import LocoState


def tracking_lin_vel(s: LocoState, cfg: RewardsCfg) -> torch.Tensor:
    err = (s.command[:, :2] - s.base_lin_vel[:, :2]).square().sum(1)
    return torch.exp(-err / cfg.tracking_sigma)


def tracking_ang_vel(s: LocoState, cfg: RewardsCfg) -> torch.Tensor:
    err = (s.command[:, 2] - s.base_ang_vel[:, 2]).square()
    return torch.exp(-err / cfg.tracking_sigma)


def lin_vel_z(s: LocoState, cfg: RewardsCfg) -> torch.Tensor:
    return s.base_lin_vel[:, 2].square()


def ang_vel_xy(s: LocoState, cfg: RewardsCfg) -> torch.Tensor:
    return s.base_ang_vel[:, :2].square().sum(1)


def orientation(s: LocoState, cfg: RewardsCfg) -> torch.Tensor:
    return s.projected_gravity[:, :2].square().sum(1)


def torques(s: LocoState, cfg: RewardsCfg) -> torch.Tensor:
    return s.torques.square().sum(1)


def joint_acc(s: LocoState, cfg: RewardsCfg) -> torch.Tensor:
    return s.joint_acc.square().sum(1)


def action_rate(s: LocoState, cfg: RewardsCfg) -> torch.Tensor:
    return (s.actions - s.last_actions).square().sum(1)


def feet_air_time(s: LocoState, cfg: RewardsCfg) -> torch.Tensor:
    """Rewards long swings, paid at touchdown; nothing while the command is (near) zero."""
    gain = ((s.feet_air_time - cfg.air_time_target) * s.first_contact).sum(1)
    return gain * (s.command[:, :2].norm(dim=1) > 0.1)


def undesired_contacts(s: LocoState, cfg: RewardsCfg) -> torch.Tensor:
    forces = torch.cat([s.thigh_forces, s.calf_forces], dim=1)
    return (forces.norm(dim=-1) > 1.0).sum(1).to(s.joint_pos.dtype)


def joint_limits(s: LocoState, cfg: RewardsCfg) -> torch.Tensor:
    lo, hi = s.joint_pos_limits[:, 0], s.joint_pos_limits[:, 1]
    mid, half = (lo + hi) / 2, (hi - lo) / 2 * cfg.soft_joint_limit
    below = (mid - half - s.joint_pos).clamp(min=0)
    above = (s.joint_pos - (mid + half)).clamp(min=0)
    return (below + above).sum(1)


TERMS = ("tracking_lin_vel", "tracking_ang_vel", "lin_vel_z", "ang_vel_xy", "orientation", "torques", "joint_acc",
         "action_rate", "feet_air_time", "undesired_contacts", "joint_limits")
