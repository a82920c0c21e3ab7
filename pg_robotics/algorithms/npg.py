"""NPG: the natural policy gradient (seed 003, "Natural Policy Gradient" and "Stepsize along the Natural Gradient
direction"; Kakade 2002). Per iteration, on the rollout's advantages (GAE, CaT-aware, pg_robotics.storage):

    g   = grad of the surrogate  mean(pi(a|s) / pi_old(a|s) A)  at theta_old        (the policy gradient)
    F   = the Hessian of the mean KL(pi_old || pi_theta) at theta_old               (the Fisher information)
    x   = F^-1 g by conjugate gradient, with F applied as Fisher-vector products (never formed)
    theta <- theta_old + sqrt(2 max_kl / (x' F x)) x                                  (KL ~ max_kl to 2nd order)

then the value function is fitted by mini-batch regression on the returns. TRPO (trpo.py) takes the same direction
and adds a backtracking line search on the step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from pg_robotics import distributed
from pg_robotics.algorithms.actor_critic import ActorCriticLearner, OnPolicyCfg


@dataclass
class NPGCfg(OnPolicyCfg):
    max_kl: float = 0.01  # the KL the step aims at (NPG) or must not exceed (TRPO)
    cg_iterations: int = 10
    cg_damping: float = 0.1  # F + damping I: keeps the solve well posed where the sample Fisher is flat
    # of the rollout used for the Fisher-vector products (every k-th sample): a quarter trains quadruped-flat at 1.30x
    # the env steps/s of the whole rollout, with a score as good after 5 minutes (docs/benchmarks.md)
    fisher_fraction: float = 0.25
    value_learning_rate: float = 1e-3
    value_epochs: int = 5
    value_mini_batches: int = 4
    normalize_advantages: bool = True

    def __post_init__(self):
        super().__post_init__()
        if not self.max_kl > 0 or not self.cg_damping >= 0 or not 0 < self.fisher_fraction <= 1:
            raise ValueError(f"max_kl > 0, cg_damping >= 0, fisher_fraction in (0, 1]: got {self.max_kl}, "
                             f"{self.cg_damping}, {self.fisher_fraction}")
        for name in ("cg_iterations", "value_epochs", "value_mini_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not self.value_learning_rate > 0:
            raise ValueError(f"value_learning_rate: must be > 0, got {self.value_learning_rate}")


def conjugate_gradient(apply: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iterations: int = 10,
                       tolerance: float = 1e-10) -> torch.Tensor:
    """x with A x = b for a symmetric positive definite A given as the product `apply(v)` = A v."""
    x = torch.zeros_like(b)
    r, p = b.clone(), b.clone()
    rr = r.dot(r)
    for _ in range(iterations):
        if rr <= tolerance:
            break
        ap = apply(p)
        alpha = rr / p.dot(ap)
        x += alpha * p
        r -= alpha * ap
        rr_new = r.dot(r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def flat_grad(y: torch.Tensor, params: list[torch.Tensor], create_graph: bool = False,
              retain_graph: bool | None = None) -> torch.Tensor:
    grads = torch.autograd.grad(y, params, create_graph=create_graph, retain_graph=retain_graph, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)])


class NPG(ActorCriticLearner):
    def make_optimizer(self) -> torch.optim.Optimizer:
        """Adam for the value function only; the policy moves by the natural-gradient step."""
        return torch.optim.Adam(self.policy.critic_parameters(), lr=self.cfg.value_learning_rate)

    def _mean(self, x: torch.Tensor) -> torch.Tensor:
        """The mean over ranks (gradients and Fisher-vector products of the data of all ranks)."""
        if self.world.active:
            x = distributed.all_reduce(x.clone()) / self.world.size
        return x

    def fisher_vector_product(self, obs: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """v -> (F + damping I) v with F the Hessian of the mean KL(pi_old || pi) at the current parameters."""
        params = self.policy.actor_parameters()
        dist = self.policy.distribution(obs)
        mu, sigma = self.policy.params(dist)
        kl = self.policy.kl(mu.detach(), sigma.detach(), mu, sigma).mean()
        grad_kl = flat_grad(kl, params, create_graph=True)

        def apply(v: torch.Tensor) -> torch.Tensor:
            hv = flat_grad(grad_kl.dot(v), params, retain_graph=True)  # one graph for every CG iteration
            return self._mean(hv) + self.cfg.cg_damping * v
        return apply

    def surrogate(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean ratio-weighted advantage, mean KL(pi_old || pi)) of the current parameters on `batch`."""
        dist = self.policy.distribution(batch["obs"])
        ratio = torch.exp(self.policy.log_prob(dist, batch["actions"]) - batch["log_probs"])
        mu, sigma = self.policy.params(dist)
        return (ratio * batch["advantages"]).mean(), self.policy.kl(batch["mu"], batch["sigma"], mu, sigma).mean()

    def take_step(self, step: torch.Tensor, batch: dict[str, torch.Tensor], gain: float) -> dict[str, float]:
        """Move the policy by `step` (NPG: the whole step); TRPO searches along it. Returns figures."""
        params = self.policy.actor_parameters()
        vector_to_parameters(parameters_to_vector(params) + step, params)
        with torch.no_grad():
            _, kl = self.surrogate(batch)
        return {"kl": float(self._mean(kl))}

    def update(self, generator: torch.Generator | None = None) -> dict[str, float]:
        cfg, st, policy = self.cfg, self.storage, self.policy
        st.advantages = self.normalized_advantages() if cfg.normalize_advantages else st.advantages
        batch = {k: getattr(st, k).flatten(0, 1) for k in ("obs", "actions", "log_probs", "mu", "sigma",
                                                            "advantages")}
        params = policy.actor_parameters()
        gain, _ = self.surrogate(batch)
        g = self._mean(flat_grad(gain, params))
        every = max(1, round(1 / cfg.fisher_fraction))
        fvp = self.fisher_vector_product(batch["obs"][::every])
        x = conjugate_gradient(fvp, g, cfg.cg_iterations)
        xfx = x.dot(fvp(x))
        step = torch.sqrt(2 * cfg.max_kl / xfx.clamp(min=1e-12)) * x
        stats = self.take_step(step.detach(), batch, float(self._mean(gain.detach())))
        value_loss = self.fit_values(self.optimizer, cfg.value_epochs, cfg.value_mini_batches, generator)
        st.clear()
        return {**stats, "value_loss": value_loss, "gradient_norm": float(g.norm()),
                "step_norm": float(step.norm()), **self.common_stats()}
