"""Termination terms: each returns an (N,) bool tensor, True where the episode ends (a failure, not a time-out)."""

from __future__ import annotations

import torch

from .state import LocoState


def base_contact(s: LocoState, threshold: float = 1.0) -> torch.Tensor:
    """One of the preset's termination_contacts bodies touches the ground."""
    return (s.termination_contact_forces.norm(dim=-1) > threshold).any(dim=1)


def upside_down(s: LocoState) -> torch.Tensor:
    """Gravity points up in the base frame."""
    return s.projected_gravity[:, 2] > 0


def bad_orientation(s: LocoState, limit: float = 1.0) -> torch.Tensor:
    """The base tilts more than `limit` rad from upright."""
    return s.projected_gravity[:, 2] > -torch.cos(torch.tensor(limit))


def base_height_below(s: LocoState, height: float = 0.1) -> torch.Tensor:
    """The base is lower than `height` m (flat ground)."""
    return s.base_pos[:, 2] < height
