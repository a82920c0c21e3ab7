"""Potential-based reward shaping, F = gamma * Phi(s') - Phi(s) (Ng, Harada and Russell, 1999).

Adding F to the reward leaves the optimal policy unchanged for any potential Phi. At a true termination the next
state's potential is taken as 0 (the episode's return is then shifted by -Phi(s_0) only)."""

from __future__ import annotations

import torch


def potential_shaping(phi: torch.Tensor, phi_next: torch.Tensor, gamma: float,
                      terminated: torch.Tensor | None = None) -> torch.Tensor:
    if terminated is not None:
        phi_next = torch.where(terminated, torch.zeros_like(phi_next), phi_next)
    return gamma * phi_next - phi
