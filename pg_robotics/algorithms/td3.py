"""TD3 (Fujimoto et al. 2018) beside the existing DDPG (seed 000, "Deep Deterministic Policy Gradient"; seed 004,
DDPG): a deterministic actor a = tanh(pi(s)) improved along grad_a Q(s, a), with the three fixes of TD3 —

    twin critics, target y = reward + gamma * mask * min_i Q'_i(s', clip(pi'(s') + clip(noise, -c, c), -1, 1))
    (target policy smoothing), and the actor and the targets updated every `policy_delay` critic updates.

Exploration: Gaussian noise of `exploration_noise` on the actor's action, clipped to [-1, 1]. CaT: replay_base.py."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pg_robotics.algorithms.replay_base import ReplayCfg, ReplayLearner


@dataclass
class TD3Cfg(ReplayCfg):
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    exploration_noise: float = 0.1
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    policy_delay: int = 2

    def __post_init__(self):
        super().__post_init__()
        if not self.actor_lr > 0 or not self.critic_lr > 0 or self.policy_delay < 1:
            raise ValueError(f"actor_lr > 0, critic_lr > 0, policy_delay >= 1: got {self.actor_lr}, {self.critic_lr}, "
                             f"{self.policy_delay}")
        for name in ("exploration_noise", "policy_noise", "noise_clip"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")


class Tanh(nn.Module):
    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.body(obs))


class TD3(ReplayLearner):
    def build(self) -> None:
        cfg, n = self.cfg, self.num_actions
        self.nets = {"actor": Tanh(self.mlp_net(self.num_obs, n)), "q0": self.mlp_net(self.num_critic_obs + n, 1),
                     "q1": self.mlp_net(self.num_critic_obs + n, 1)}
        for name in ("actor", "q0", "q1"):
            self.target_of(name)
        self.optims = {"actor": torch.optim.Adam(self.nets["actor"].parameters(), lr=cfg.actor_lr),
                       "critic": torch.optim.Adam([*self.nets["q0"].parameters(), *self.nets["q1"].parameters()],
                                                  lr=cfg.critic_lr)}
        self.updates = 0

    def q(self, name: str, critic_obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.nets[name](torch.cat([critic_obs, actions], dim=-1)).squeeze(-1)

    def sample(self, obs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        a = self.nets["actor"](obs)
        noise = torch.randn(a.shape, generator=gen, device=gen.device) * self.cfg.exploration_noise
        return (a + noise).clamp(-1, 1)

    def policy_net(self) -> nn.Module:
        return self.nets["actor"]

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        b, cfg, nets = self.normalized(batch), self.cfg, self.nets
        with torch.no_grad():
            a_next = nets["actor_target"](b["next_obs"])
            smoothing = (torch.randn_like(a_next) * cfg.policy_noise).clamp(-cfg.noise_clip, cfg.noise_clip)
            a_next = (a_next + smoothing).clamp(-1, 1)
            q_next = torch.min(self.q("q0_target", b["next_critic_obs"], a_next),
                               self.q("q1_target", b["next_critic_obs"], a_next))
            y = b["rewards"] + cfg.gamma * b["mask"] * q_next
        q0, q1 = self.q("q0", b["critic_obs"], b["actions"]), self.q("q1", b["critic_obs"], b["actions"])
        critic_loss = (q0 - y).square().mean() + (q1 - y).square().mean()
        self.step(critic_loss, "critic")
        self.updates += 1
        out = {"critic_loss": critic_loss.detach(), "q_mean": q0.detach().mean()}
        if self.updates % cfg.policy_delay == 0:
            actor_loss = -self.q("q0", b["critic_obs"], nets["actor"](b["obs"])).mean()
            self.step(actor_loss, "actor")
            for name in ("actor", "q0", "q1"):
                self.polyak(name)
            out["actor_loss"] = actor_loss.detach()
        return out

    def extra_state(self) -> dict:
        return {"updates": self.updates}

    def load_extra_state(self, state: dict) -> None:
        self.updates = int(state["updates"])
