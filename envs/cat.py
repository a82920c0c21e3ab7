"""Constraints as terminations (CaT, Chane-Sane et al. 2024).

For each constraint element, c = value - limit (positive = violated). A running maximum violation
c_max <- tau * c_max + (1 - tau) * max over envs of c is kept per element, the termination probability is
p = p_max * clip(c / c_max, 0, 1), and delta = the max of p over all elements of all constraints. The learner
scales the reward by (1 - delta) and discounts the bootstrap and GAE by (1 - delta).

Optionally the soft constraints (p_max < 1) start lenient: over the first `ramp_steps` policy steps their p_max
moves from `ramp_start` to its value with the expected steps to a termination, 1 / p_max, linear in the step
(the curriculum of the reference implementation, Gepetto/constraints-as-terminations: 20 steps to 4 over 1000
iterations). Hard constraints (p_max 1), and soft ones already at or below `ramp_start`, hold from the start.
"""

from __future__ import annotations

import torch


class ConstraintsAsTerminations:
    def __init__(self, limits: dict[str, float], p_max: dict[str, float], tau: float = 0.95,
                 ramp_start: float = 0.05, ramp_steps: int = 0):
        self.limits, self.p_max, self.tau = dict(limits), dict(p_max), tau
        self.ramp_start, self.ramp_steps = ramp_start, ramp_steps
        self.c_max: dict[str, torch.Tensor] = {}

    def p_max_at(self, step: int) -> dict[str, float]:
        """Each constraint's p_max after `step` policy steps (the ramp of the soft ones; see the module)."""
        if self.ramp_steps <= 0 or step >= self.ramp_steps:
            return self.p_max
        first, done = 1 / self.ramp_start, step / self.ramp_steps  # expected steps to a termination, at step 0
        return {n: p if p >= 1 or p <= self.ramp_start else 1 / (first + done * (1 / p - first))
                for n, p in self.p_max.items()}

    def __call__(self, values: dict[str, torch.Tensor], step: int = 0
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`values[name]` is (N, k); `step`: the policy steps so far (for the ramp). Returns delta (N,) and the
        share of envs violating each constraint."""
        delta = None
        rates = {}
        p_max = self.p_max_at(step)
        for name, value in values.items():
            c = value - self.limits[name]
            c_max = self.c_max.get(name)
            batch_max = c.max(dim=0).values.clamp(min=0)
            c_max = batch_max * (1 - self.tau) if c_max is None else self.tau * c_max + (1 - self.tau) * batch_max
            self.c_max[name] = c_max
            p = p_max[name] * (c / c_max.clamp(min=1e-6)).clamp(0.0, 1.0)
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
