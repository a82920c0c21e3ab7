"""CEM: the cross-entropy method in policy-parameter space (seed 000, slide "Cross Entropy Method"): sample
candidates theta_i ~ N(mu, diag(sigma^2)), evaluate each, refit mu and sigma to the best `elite_fraction` of them
(with `extra_std` added to sigma so the search does not collapse early, decaying over `extra_std_decay_iterations`).
The candidates run together: one world (or `worlds_per_candidate` worlds) each, one batched forward pass."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pg_robotics.algorithms.search_base import SearchCfg, SearchLearner


@dataclass
class CEMCfg(SearchCfg):
    elite_fraction: float = 0.2
    extra_std: float = 0.01
    extra_std_decay_iterations: int = 100

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.elite_fraction <= 1 or not self.extra_std >= 0 or self.extra_std_decay_iterations < 1:
            raise ValueError(f"elite_fraction in (0, 1], extra_std >= 0, extra_std_decay_iterations >= 1: got "
                             f"{self.elite_fraction}, {self.extra_std}, {self.extra_std_decay_iterations}")


def cem_refit(samples: torch.Tensor, returns: torch.Tensor, elite_fraction: float, extra_std: float = 0.0
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) of the best `elite_fraction` of `samples` (rows) by `returns`, std plus `extra_std`."""
    k = max(1, round(elite_fraction * len(samples)))
    elite = samples[returns.topk(k).indices]
    return elite.mean(0), elite.std(0, unbiased=False) + extra_std


class CEM(SearchLearner):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.std = torch.full_like(self.mean, self.cfg.init_std)
        self.iterations = 0

    def population(self, gen: torch.Generator) -> torch.Tensor:
        noise = torch.randn(self.size, self.num_params, generator=gen, device=gen.device)
        self.candidates = self.mean + self.std * noise
        return self.candidates

    def update(self, returns: torch.Tensor) -> dict[str, float]:
        cfg = self.cfg
        extra = cfg.extra_std * max(0.0, 1 - self.iterations / cfg.extra_std_decay_iterations)
        self.mean, self.std = cem_refit(self.candidates, returns, cfg.elite_fraction, extra)
        self.iterations += 1
        k = max(1, round(cfg.elite_fraction * len(returns)))
        return {"return_best": float(returns.max()), "return_elite": float(returns.topk(k).values.mean()),
                "return_mean": float(returns.mean()), "search_std": float(self.std.mean())}

    def extra_state(self) -> dict:
        return {"std": self.std, "iterations": self.iterations}

    def load_extra_state(self, state: dict) -> None:
        self.std, self.iterations = state["std"].to(self.device).clone(), int(state["iterations"])
