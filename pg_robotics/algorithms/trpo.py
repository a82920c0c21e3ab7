"""TRPO: the natural-gradient direction of NPG (npg.py) with the KL-constrained step found by a backtracking line
search (seed 003, "Trust region Policy Optimization" and "Algorithm 2 Line Search for TRPO"; seed 000, "Trust
Region Policy Optimization"): the proposed step Delta = sqrt(2 delta / (x' F x)) x is tried as alpha^j Delta for
j = 0, 1, ..., L, and the first that improves the surrogate and keeps the mean KL(pi_old || pi) <= delta is taken;
when none does, the policy stays where it was."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from pg_robotics.algorithms.npg import NPG, NPGCfg


@dataclass
class TRPOCfg(NPGCfg):
    fisher_fraction: float = 1.0  # the whole rollout: a quarter is measured for NPG only
    backtracks: int = 10  # L: the line search tries alpha^0 .. alpha^L of the step
    backtrack_ratio: float = 0.5  # alpha

    def __post_init__(self):
        super().__post_init__()
        if self.backtracks < 0 or not 0 < self.backtrack_ratio < 1:
            raise ValueError(f"backtracks >= 0, backtrack_ratio in (0, 1): got {self.backtracks}, "
                             f"{self.backtrack_ratio}")


def line_search(theta: torch.Tensor, step: torch.Tensor, evaluate: Callable[[torch.Tensor], tuple[float, float]],
                max_kl: float, backtracks: int = 10, ratio: float = 0.5) -> tuple[torch.Tensor, int | None]:
    """The first theta + ratio^j step (j = 0 .. backtracks) whose `evaluate` -> (surrogate gain over theta, mean KL
    from theta) has gain >= 0 and KL <= max_kl, with j; (theta, None) when none has."""
    for j in range(backtracks + 1):
        candidate = theta + ratio ** j * step
        gain, kl = evaluate(candidate)
        if gain >= 0 and kl <= max_kl:
            return candidate, j
    return theta, None


class TRPO(NPG):
    def take_step(self, step: torch.Tensor, batch: dict[str, torch.Tensor], gain: float) -> dict[str, float]:
        params = self.policy.actor_parameters()
        theta = parameters_to_vector(params).detach()

        @torch.no_grad()
        def evaluate(candidate: torch.Tensor) -> tuple[float, float]:
            vector_to_parameters(candidate, params)
            new_gain, kl = self.surrogate(batch)
            return float(self._mean(new_gain)) - gain, float(self._mean(kl))

        new, j = line_search(theta, step, evaluate, self.cfg.max_kl, self.cfg.backtracks, self.cfg.backtrack_ratio)
        gain_now, kl = evaluate(new)  # leaves the parameters at the accepted point (or theta_old)
        return {"kl": kl, "surrogate_gain": gain_now, "line_search_backtracks": -1 if j is None else j}
