"""Reward terms: each returns an (N,) tensor; the config weight (negative for penalties) times the policy dt turns it
into the reward. Penalties here are non-negative magnitudes, bonuses non-negative too. Parameters are keyword
arguments, set in the task config (`rewards.<term>.params`)."""

from __future__ import annotations

import torch

from .state import LocoState


def tracking_lin_vel(s: LocoState, sigma: float = 0.25) -> torch.Tensor:
    err = (s.command[:, :2] - s.base_lin_vel[:, :2]).square().sum(1)
    return torch.exp(-err / sigma)


def tracking_ang_vel(s: LocoState, sigma: float = 0.25) -> torch.Tensor:
    err = (s.command[:, 2] - s.base_ang_vel[:, 2]).square()
    return torch.exp(-err / sigma)


def lin_vel_z(s: LocoState) -> torch.Tensor:
    return s.base_lin_vel[:, 2].square()


def ang_vel_xy(s: LocoState) -> torch.Tensor:
    return s.base_ang_vel[:, :2].square().sum(1)


def orientation(s: LocoState) -> torch.Tensor:
    return s.projected_gravity[:, :2].square().sum(1)


def torques(s: LocoState) -> torch.Tensor:
    return s.torques.square().sum(1)


def joint_acc(s: LocoState) -> torch.Tensor:
    return s.joint_acc.square().sum(1)


def action_rate(s: LocoState) -> torch.Tensor:
    return (s.actions - s.last_actions).square().sum(1)


def feet_air_time(s: LocoState, target: float = 0.5, min_command: float = 0.1, short_swing_cost: bool = True
                  ) -> torch.Tensor:
    """Rewards swings longer than `target` seconds, paid at touchdown; nothing while the planar command is below
    `min_command`. Shorter swings cost their shortfall, or nothing without `short_swing_cost`."""
    gain = (s.feet_air_time - target) * s.first_contact
    if not short_swing_cost:
        gain = gain.clamp(min=0.0)
    return gain.sum(1) * (s.command[:, :2].norm(dim=1) > min_command)


def foot_clearance(s: LocoState, target: float = 0.08, min_command: float = 0.1, speed_scale: float = 2.0
                   ) -> torch.Tensor:
    """How far swinging feet stay from `target` m above the ground under them (the terrain's height map; the plane
    z = 0 on flat ground): the squared difference per foot, weighted by how fast the foot moves sideways
    (tanh(speed_scale |v_xy|): a planted foot counts nothing), summed over feet (m^2); nothing while the planar
    command is below `min_command`. A penalty: feet that skim the ground trip on steps."""
    height = s.foot_pos[..., 2] - s.height_of(s.foot_pos[..., :2])
    moving = torch.tanh(speed_scale * s.foot_vel[..., :2].norm(dim=-1))
    return ((height - target).square() * moving).sum(1) * (s.command[:, :2].norm(dim=1) > min_command)


def undesired_contacts(s: LocoState, threshold: float = 1.0) -> torch.Tensor:
    """How many of the preset's undesired_contacts bodies touch the ground (force above `threshold` N)."""
    return (s.undesired_contact_forces.norm(dim=-1) > threshold).sum(1).to(s.joint_pos.dtype)


def joint_limits(s: LocoState, soft_limit: float = 0.9) -> torch.Tensor:
    """How far joints are beyond the middle `soft_limit` fraction of their range (rad, summed)."""
    lo, hi = s.joint_pos_limits[:, 0], s.joint_pos_limits[:, 1]
    mid, half = (lo + hi) / 2, (hi - lo) / 2 * soft_limit
    below = (mid - half - s.joint_pos).clamp(min=0)
    above = (s.joint_pos - (mid + half)).clamp(min=0)
    return (below + above).sum(1)


def base_height(s: LocoState, target: float = 0.3) -> torch.Tensor:
    """Squared distance of the base height from `target` (m^2), on flat ground."""
    return (s.base_pos[:, 2] - target).square()


def stand_still(s: LocoState, min_command: float = 0.1) -> torch.Tensor:
    """Joint offsets from the default pose while the whole command (planar and yaw: turning on the spot needs steps)
    is below `min_command` (rad, summed). A penalty: without it a robot told to stand may stand on three legs."""
    return (s.joint_pos - s.default_joint_pos).abs().sum(1) * (s.command.norm(dim=1) < min_command)
