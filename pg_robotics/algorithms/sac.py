"""SAC and SVG(0): a stochastic policy improved by the reparameterized gradient through a learned Q.

SVG(0) (seed 000, slide "SVG(0) Algorithm"; seed 002, "SVG(0)"): collect steps with pi, update pi along
grad_theta Q(s, pi(s, z; theta)) with z the policy's noise, and fit Q to its TD targets. SAC (Haarnoja et al. 2018) is
its entropy-regularized form: the target and the policy loss carry -alpha log pi, two critics with the minimum of
their targets, and alpha tuned so the policy's entropy tracks `target_entropy` (default -|A|).

    a = tanh(mu(s) + sigma(s) z),  z ~ N(0, I)           log pi(a|s) with the tanh correction
    y = reward + gamma * mask * (min_i Q'_i(s', a') - alpha log pi(a'|s')),  a' ~ pi(s')
    critics: mean (Q_i(s, a) - y)^2;  policy: mean (alpha log pi(a|s) - min_i Q_i(s, a)),  a ~ pi(s)
    alpha:  -mean(log_alpha * (log pi(a|s) + target_entropy))

`svg0` in the registry is this file with one critic, alpha 0 and no tuning, and its noise z from a fixed
distribution, as the slide has it: a = clip(tanh(mu(s)) + noise_std z, -1, 1). With a learned std and no entropy term
the critic's gradient alone drives the std to its floor and the mean into the tanh's saturation (on Hopper within
30k env steps: no exploration left, the replay holds one falling motion); a fixed noise keeps exploring. CaT: see
replay_base.py."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from pg_robotics.algorithms.replay_base import ReplayCfg, ReplayLearner

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


@dataclass
class SACCfg(ReplayCfg):
    actor_lr: float = 3e-4
    critic_lr: float = 1e-3
    twin_critics: bool = True
    alpha: float = 0.2  # the initial (or, without autotune, fixed) entropy weight
    autotune: bool = True
    target_entropy: float | None = None  # default -(number of actions)
    alpha_lr: float = 1e-3
    noise_std: float = 0.0  # > 0: a fixed Gaussian noise in action space instead of the learned std (needs alpha 0)

    def __post_init__(self):
        super().__post_init__()
        if not self.actor_lr > 0 or not self.critic_lr > 0 or not self.alpha_lr > 0:
            raise ValueError(f"actor_lr, critic_lr, alpha_lr: must be > 0, got {self.actor_lr}, {self.critic_lr}, "
                             f"{self.alpha_lr}")
        if not self.alpha >= 0 or (self.autotune and not self.alpha > 0):
            raise ValueError(f"alpha: must be >= 0 (> 0 with autotune), got {self.alpha}")
        if not self.noise_std >= 0 or (self.noise_std > 0 and (self.alpha > 0 or self.autotune)):
            raise ValueError(f"noise_std: must be >= 0, and > 0 only without an entropy term (alpha 0, autotune "
                             f"false), got noise_std {self.noise_std}, alpha {self.alpha}, autotune {self.autotune}")


@dataclass
class SVG0Cfg(SACCfg):
    twin_critics: bool = False
    alpha: float = 0.0
    autotune: bool = False
    noise_std: float = 0.2  # fixed noise (the learned std collapses without an entropy term)


class GaussianTanh(nn.Module):
    """Normalized obs -> (mean, log std) of the pre-tanh Gaussian; forward: the deterministic action tanh(mean).
    With `noise_std` > 0 the noise is fixed and added after the tanh (the log std output is unused)."""

    def __init__(self, body: nn.Module, num_actions: int, noise_std: float = 0.0):
        super().__init__()
        self.body, self.num_actions, self.noise_std = body, num_actions, noise_std

    def dist(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.body(obs).split(self.num_actions, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(action, log pi(action)) with the reparameterization a = tanh(mean + std * noise)."""
        mean, log_std = self.dist(obs)
        noise = torch.randn_like(mean) if noise is None else noise
        if self.noise_std:
            log_std = torch.full_like(mean, math.log(self.noise_std))
        log_prob = (-0.5 * noise.square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        if self.noise_std:  # the Gaussian's density, the clip ignored: only logged (no entropy term goes with it)
            return (torch.tanh(mean) + self.noise_std * noise).clamp(-1.0, 1.0), log_prob
        a = torch.tanh(mean + log_std.exp() * noise)
        return a, log_prob - torch.log(1 - a.square() + 1e-6).sum(-1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dist(obs)[0])


class SAC(ReplayLearner):
    def build(self) -> None:
        cfg, n = self.cfg, self.num_actions
        self.actor = GaussianTanh(self.mlp_net(self.num_obs, 2 * n), n, cfg.noise_std)
        self.critics = [f"q{i}" for i in range(2 if cfg.twin_critics else 1)]
        self.nets = {"actor": self.actor, **{q: self.mlp_net(self.num_critic_obs + n, 1) for q in self.critics}}
        for q in self.critics:
            self.target_of(q)
        self.optims = {"actor": torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr),
                       "critic": torch.optim.Adam([p for q in self.critics for p in self.nets[q].parameters()],
                                                  lr=cfg.critic_lr)}
        self.log_alpha = torch.tensor(math.log(cfg.alpha) if cfg.alpha > 0 else -math.inf, device=self.device,
                                      requires_grad=cfg.autotune)
        if cfg.autotune:
            self.optims["alpha"] = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr)
        self.target_entropy = -float(n) if cfg.target_entropy is None else cfg.target_entropy

    def q(self, name: str, critic_obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.nets[name](torch.cat([critic_obs, actions], dim=-1)).squeeze(-1)

    def min_q(self, critic_obs: torch.Tensor, actions: torch.Tensor, target: bool = False) -> torch.Tensor:
        suffix = "_target" if target else ""
        return torch.stack([self.q(q + suffix, critic_obs, actions) for q in self.critics]).min(0).values

    def sample(self, obs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        noise = torch.randn((obs.shape[0], self.num_actions), generator=gen, device=gen.device)
        return self.actor.sample(obs, noise)[0]

    def policy_net(self) -> nn.Module:
        return self.actor

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        b, cfg = self.normalized(batch), self.cfg
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            next_a, next_logp = self.actor.sample(b["next_obs"])
            y = b["rewards"] + cfg.gamma * b["mask"] * (self.min_q(b["next_critic_obs"], next_a, target=True)
                                                       - alpha * next_logp)
        qs = [self.q(q, b["critic_obs"], b["actions"]) for q in self.critics]
        critic_loss = sum((qi - y).square().mean() for qi in qs)
        self.step(critic_loss, "critic")
        a, logp = self.actor.sample(b["obs"])
        actor_loss = (alpha * logp - self.min_q(b["critic_obs"], a)).mean()
        self.step(actor_loss, "actor")
        out = {"critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach(), "q_mean": qs[0].detach().mean(),
               "entropy": -logp.detach().mean(), "alpha": alpha}
        if cfg.autotune:
            alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
            self.step(alpha_loss, "alpha")
        for q in self.critics:
            self.polyak(q)
        return out

    def extra_state(self) -> dict:
        return {"log_alpha": self.log_alpha.detach().clone()}

    def load_extra_state(self, state: dict) -> None:
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
