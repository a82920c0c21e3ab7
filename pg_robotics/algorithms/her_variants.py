"""SAC and TD3 with hindsight experience replay on goal tasks: the DDPG+HER learner (ddpg_her.py: normalizers of
observation and goal, the HER batches of the goal runner, export as a goal policy) with SAC's stochastic actor,
twin critics and tuned temperature (sac.py), or TD3's twin critics, target policy smoothing and delayed actor
(td3.py). `pgr train arm-push --algo sac_her`. The critic's target is clipped to the sparse reward's return range
[-1/(1-gamma), 0] as DDPG's is (SAC's entropy bonus lies outside it, so clipping is off by default there)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from pg_robotics import distributed
from pg_robotics.algorithms.ddpg_her import DDPG, Critic, DDPGCfg
from pg_robotics.distributed import SINGLE, World
from pg_robotics.algorithms.sac import GaussianTanh
from pg_robotics.networks import mlp


@dataclass
class SACHERCfg(DDPGCfg):
    alpha: float = 0.1
    autotune: bool = True
    target_entropy: float | None = None  # default -(number of actions)
    alpha_lr: float = 1e-3
    random_eps: float = 0.0  # the policy's own noise explores
    clip_target: bool = False


@dataclass
class TD3HERCfg(DDPGCfg):
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    policy_delay: int = 2

    def __post_init__(self):
        super().__post_init__()
        if self.policy_delay < 1 or not self.policy_noise >= 0 or not self.noise_clip >= 0:
            raise ValueError(f"policy_delay >= 1, policy_noise >= 0, noise_clip >= 0: got {self.policy_delay}, "
                             f"{self.policy_noise}, {self.noise_clip}")


class GoalGaussian(nn.Module):
    """(normalized obs, normalized goal) -> SAC's tanh-Gaussian; forward: the deterministic action."""

    def __init__(self, obs_dim: int, goal_dim: int, action_dim: int, hidden: list[int], activation: str):
        super().__init__()
        self.policy = GaussianTanh(mlp(obs_dim + goal_dim, hidden, 2 * action_dim, activation), action_dim)

    def sample(self, obs, goal, noise=None):
        return self.policy.sample(torch.cat([obs, goal], dim=-1), noise)

    def forward(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return self.policy(torch.cat([obs, goal], dim=-1))


class TwinCriticHER(DDPG):
    """DDPG+HER with a second critic (and its target): what SAC and TD3 add to it."""

    def __init__(self, cfg, obs_dim: int, goal_dim: int, action_dim: int, device="cpu", world: World = SINGLE):
        super().__init__(cfg, obs_dim, goal_dim, action_dim, device, world)
        self.dims = (obs_dim, goal_dim, action_dim)
        self.critic2 = Critic(*self.dims, cfg.hidden, cfg.activation).to(self.device)
        if world.active:
            distributed.broadcast_module(self.critic2)
        self.critic2_target = copy.deepcopy(self.critic2).requires_grad_(False)
        self.critic_opt = torch.optim.Adam([*self.critic.parameters(), *self.critic2.parameters()], lr=cfg.critic_lr)

    def clipped(self, target: torch.Tensor) -> torch.Tensor:
        return target.clamp(-1 / (1 - self.cfg.gamma), 0.0) if self.cfg.clip_target else target

    def critic_step(self, obs, goal, action, target) -> tuple[torch.Tensor, torch.Tensor]:
        q1, q2 = self.critic(obs, goal, action), self.critic2(obs, goal, action)
        loss = (q1 - target).square().mean() + (q2 - target).square().mean()
        self.critic_opt.zero_grad()
        loss.backward()
        self._sync(self.critic)
        self._sync(self.critic2)
        self.critic_opt.step()
        return loss.detach(), q1.detach().mean()

    NAMES = ("actor", "critic", "critic2", "actor_target", "critic_target", "critic2_target", "actor_opt",
             "critic_opt", "obs_normalizer", "goal_normalizer")

    def state_dict(self) -> dict:
        return {name: getattr(self, name).state_dict() for name in self.NAMES}


class SACHER(TwinCriticHER):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        cfg = self.cfg
        self.actor = GoalGaussian(*self.dims, cfg.hidden, cfg.activation).to(self.device)
        if self.world.active:
            distributed.broadcast_module(self.actor)
        del self.actor_target  # SAC's targets come from the critics' targets and the online actor
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.log_alpha = torch.tensor(math.log(cfg.alpha), device=self.device, requires_grad=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr)
        self.target_entropy = -float(self.dims[2]) if cfg.target_entropy is None else cfg.target_entropy

    @torch.no_grad()
    def explore(self, obs: dict[str, torch.Tensor], gen: torch.Generator | None = None) -> torch.Tensor:
        o, g = self._inputs(obs["observation"], obs["desired_goal"])
        mean, log_std = self.actor.policy.dist(torch.cat([o, g], dim=-1))
        noise = torch.randn(mean.shape, generator=gen, device=mean.device)
        a = torch.tanh(mean + log_std.exp() * noise)
        kw = dict(generator=gen, device=a.device)
        random = torch.rand(a.shape[0], **kw) < self.cfg.random_eps
        return torch.where(random[:, None], torch.rand(a.shape, **kw) * 2 - 1, a)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        obs, goal = self._inputs(batch["obs"], batch["goal"])
        next_obs, _ = self._inputs(batch["next_obs"], batch["goal"])
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            a2, logp2 = self.actor.sample(next_obs, goal)
            q_next = torch.min(self.critic_target(next_obs, goal, a2), self.critic2_target(next_obs, goal, a2))
            target = self.clipped(batch["reward"] + cfg.gamma * (q_next - alpha * logp2))
        critic_loss, q_mean = self.critic_step(obs, goal, batch["action"], target)
        a, logp = self.actor.sample(obs, goal)
        q_pi = torch.min(self.critic(obs, goal, a), self.critic2(obs, goal, a))
        actor_loss = (alpha * logp - q_pi).mean()
        self.actor_opt.zero_grad()
        actor_loss.backward()
        self._sync(self.actor)
        self.actor_opt.step()
        if cfg.autotune:
            alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
            self.alpha_opt.zero_grad()
            alpha_loss.backward()
            self.alpha_opt.step()
        return {"critic_loss": critic_loss, "actor_loss": actor_loss.detach(), "q_mean": q_mean,
                "alpha": alpha, "entropy": -logp.detach().mean()}

    def update_targets(self) -> None:  # no actor target in SAC
        self.polyak((self.critic, self.critic_target), (self.critic2, self.critic2_target))

    NAMES = tuple(name for name in TwinCriticHER.NAMES if name != "actor_target")

    def state_dict(self) -> dict:
        return {**super().state_dict(), "log_alpha": self.log_alpha.detach().clone(),
                "alpha_opt": self.alpha_opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        state.pop("actor_target", None)  # checkpoints of 2026-12-02 carried one
        with torch.no_grad():
            self.log_alpha.copy_(state.pop("log_alpha"))
        self.alpha_opt.load_state_dict(state.pop("alpha_opt"))
        super().load_state_dict(state)


class TD3HER(TwinCriticHER):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.updates = 0

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        obs, goal = self._inputs(batch["obs"], batch["goal"])
        next_obs, _ = self._inputs(batch["next_obs"], batch["goal"])
        with torch.no_grad():
            a2 = self.actor_target(next_obs, goal)
            a2 = (a2 + (torch.randn_like(a2) * cfg.policy_noise).clamp(-cfg.noise_clip, cfg.noise_clip)).clamp(-1, 1)
            q_next = torch.min(self.critic_target(next_obs, goal, a2), self.critic2_target(next_obs, goal, a2))
            target = self.clipped(batch["reward"] + cfg.gamma * q_next)
        critic_loss, q_mean = self.critic_step(obs, goal, batch["action"], target)
        self.updates += 1
        out = {"critic_loss": critic_loss, "q_mean": q_mean}
        if self.updates % cfg.policy_delay == 0:
            pi = self.actor(obs, goal)
            self.critic.requires_grad_(False)
            actor_loss = -self.critic(obs, goal, pi).mean() + cfg.action_l2 * pi.square().mean()
            self.critic.requires_grad_(True)
            self.actor_opt.zero_grad()
            actor_loss.backward()
            self._sync(self.actor)
            self.actor_opt.step()
            out["actor_loss"] = actor_loss.detach()
        return out

    def update_targets(self) -> None:
        super().update_targets()  # actor and first critic, as DDPG
        self.polyak((self.critic2, self.critic2_target))
