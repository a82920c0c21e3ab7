"""ES: stochastic gradient ascent on the expected return of a Gaussian around theta (seed 000, slides "Stochastic
Gradient Ascent on Distribution", antithetic sampling; Salimans et al. 2017):

    g = 1 / (n sigma) sum_j (F(theta + sigma eps_j) - F(theta - sigma eps_j)) / 2 eps_j,   eps_j ~ N(0, I)

with each pair of candidates sharing its noise eps_j (antithetic: the pair's common part of the return cancels),
returns replaced by their centred ranks when `rank_returns` (robust to the return's scale), and theta moved by Adam
along g (plus an L2 weight decay). The population runs together in one batched env."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pg_robotics.algorithms.search_base import SearchCfg, SearchLearner


@dataclass
class ESCfg(SearchCfg):
    init_std: float = 0.02  # sigma, the perturbation's size
    learning_rate: float = 0.01
    rank_returns: bool = True
    weight_decay: float = 0.005

    def __post_init__(self):
        super().__post_init__()
        if not self.learning_rate > 0 or not self.weight_decay >= 0:
            raise ValueError(f"learning_rate > 0, weight_decay >= 0: got {self.learning_rate}, {self.weight_decay}")


def centered_ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks of `x` scaled into [-0.5, 0.5]."""
    ranks = torch.empty_like(x)
    ranks[x.argsort()] = torch.arange(len(x), dtype=x.dtype, device=x.device)
    return ranks / max(1, len(x) - 1) - 0.5


def es_gradient(returns_plus: torch.Tensor, returns_minus: torch.Tensor, noise: torch.Tensor,
                sigma: float) -> torch.Tensor:
    """The antithetic estimate of the gradient of E[F(theta + sigma eps)] from pairs (F(+), F(-)) and their eps."""
    return ((returns_plus - returns_minus) / 2) @ noise / (len(noise) * sigma)


class ES(SearchLearner):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.size < 2 or self.size % 2:
            from pg_robotics.envs import ConfigError

            raise ConfigError(f"runner.num_envs: ES needs an even number of candidates (pairs), got {self.size}")
        self.theta = torch.nn.Parameter(self.mean.clone())
        self.optimizer = torch.optim.Adam([self.theta], lr=self.cfg.learning_rate)
        self.noise: torch.Tensor | None = None

    def population(self, gen: torch.Generator) -> torch.Tensor:
        half = self.size // 2
        self.noise = torch.randn(half, self.num_params, generator=gen, device=gen.device)
        theta = self.theta.detach()
        sigma = self.cfg.init_std
        # candidate 2j is theta + sigma eps_j, 2j+1 is theta - sigma eps_j
        self.candidates = torch.stack([theta + sigma * self.noise, theta - sigma * self.noise], 1).flatten(0, 1)
        return self.candidates

    def update(self, returns: torch.Tensor) -> dict[str, float]:
        cfg = self.cfg
        shaped = centered_ranks(returns) if cfg.rank_returns else returns
        g = es_gradient(shaped[0::2], shaped[1::2], self.noise, cfg.init_std)
        self.optimizer.zero_grad()
        self.theta.grad = -(g - cfg.weight_decay * self.theta.detach())  # ascent, with L2 decay
        self.optimizer.step()
        self.mean = self.theta.detach().clone()
        return {"return_best": float(returns.max()), "return_mean": float(returns.mean()),
                "gradient_norm": float(g.norm())}

    def extra_state(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        with torch.no_grad():
            self.theta.copy_(self.mean)
        self.optimizer.load_state_dict(state["optimizer"])
