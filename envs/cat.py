"""Constraints as terminations (CaT, Chane-Sane et al. 2024).

For each constraint element, c = value - limit (positive = violated). A running maximum violation
c_max <- tau * c_max + (1 - tau) * max over envs of c is kept per element, the termination probability is
p = p_max * clip(c / c_max, 0, 1), and delta = the max of p over all elements of all constraints. The learner
scales the reward by (1 - delta) and discounts the bootstrap and GAE by (1 - delta).
"""

from __future__ import annotations

import torch


class ConstraintsAsTerminations:
    def __init__(self, limits: dict[str, float], p_max: dict[str, float], tau: float = 0.95):
        self.limits, self.p_max, self.tau = dict(limits), dict(p_max), tau
        self.c_max: dict[str, torch.Tensor] = {}

    def __call__(self, values: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`values[name]` is (N, k). Returns delta (N,) and the share of envs violating each constraint."""
        delta = None
        rates = {}
        for name, value in values.items():
            c = value - self.limits[name]
            c_max = self.c_max.get(name)
            batch_max = c.max(dim=0).values.clamp(min=0)
            c_max = batch_max * (1 - self.tau) if c_max is None else self.tau * c_max + (1 - self.tau) * batch_max
            self.c_max[name] = c_max
            p = self.p_max[name] * (c / c_max.clamp(min=1e-6)).clamp(0.0, 1.0)
            p = p.max(dim=1).values
            delta = p if delta is None else torch.maximum(delta, p)
            rates[name] = (c > 0).any(dim=1).float().mean()
        if delta is None:
            raise ValueError("constraints: at least one constraint must be enabled")
        return delta, rates

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in self.c_max.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.c_max = {k: v.clone() for k, v in state.items()}
