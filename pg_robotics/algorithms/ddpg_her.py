"""DDPG with hindsight experience replay for goal-conditioned tasks with sparse rewards, in one readable place
(Lillicrap et al. 2016; Andrychowicz et al. 2017; the details follow OpenAI baselines' HER).

- Deterministic actor pi(o, g) = tanh(MLP), critic Q(o, g, a); target copies updated by Polyak averaging.
- Exploration: Gaussian noise on the actor's action, or with probability `random_eps` a uniform random action.
- Observation and goal normalizers (running moments, clipped to +-`norm_clip`) in front of both networks.
- Critic target r + gamma Q'(o', g, pi'(o', g)) clipped to [-1/(1-gamma), 0], the range of returns of the sparse
  reward; actor loss -Q(o, g, pi(o, g)) plus an L2 penalty on the (pre-scaling) actions.
- Under torch.distributed, gradients and normalizer moments are averaged over ranks, as in PPO.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from pg_robotics import distributed
from pg_robotics.distributed import SINGLE, World
from pg_robotics.her import STRATEGIES
from pg_robotics.networks import ACTIVATIONS, EmpiricalNormalizer, mlp


@dataclass
class DDPGCfg:
    hidden: list[int] = field(default_factory=lambda: [256, 256, 256])
    activation: str = "relu"
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    gamma: float = 0.98
    polyak: float = 0.95  # target <- polyak * target + (1 - polyak) * online, once per cycle
    batch_size: int = 256
    updates_per_cycle: int = 40
    buffer_episodes: int = 20000  # 1M transitions of 50-step episodes
    her_strategy: str = "future"  # future | final | episode | none (plain DDPG)
    her_k: int = 4  # relabelled share 1 - 1/(1+k)
    noise_std: float = 0.2
    random_eps: float = 0.3
    action_l2: float = 1.0
    obs_clip: float = 200.0
    norm_clip: float = 5.0
    clip_target: bool = True

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: unknown {self.activation!r} (known: {', '.join(ACTIVATIONS)})")
        if self.her_strategy not in STRATEGIES:
            raise ValueError(f"her_strategy: unknown {self.her_strategy!r} (known: {', '.join(STRATEGIES)})")
        for name in ("actor_lr", "critic_lr", "batch_size", "updates_per_cycle", "buffer_episodes", "norm_clip"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")
        if not 0 < self.gamma < 1:
            raise ValueError(f"gamma: must be in (0, 1), got {self.gamma}")
        if not 0 <= self.polyak < 1:
            raise ValueError(f"polyak: must be in [0, 1), got {self.polyak}")
        if not 0 <= self.random_eps <= 1:
            raise ValueError(f"random_eps: must be in [0, 1], got {self.random_eps}")
        for name in ("her_k", "noise_std", "action_l2"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")


class Actor(nn.Module):
    """(normalized obs, normalized goal) -> action in [-1, 1]."""

    def __init__(self, obs_dim: int, goal_dim: int, action_dim: int, hidden: list[int], activation: str):
        super().__init__()
        self.net = mlp(obs_dim + goal_dim, hidden, action_dim, activation)

    def forward(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(torch.cat([obs, goal], dim=-1)))


class Critic(nn.Module):
    def __init__(self, obs_dim: int, goal_dim: int, action_dim: int, hidden: list[int], activation: str):
        super().__init__()
        self.net = mlp(obs_dim + goal_dim + action_dim, hidden, 1, activation)

    def forward(self, obs: torch.Tensor, goal: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, goal, action], dim=-1)).squeeze(-1)


class GoalPolicy(nn.Module):
    """[observation | desired_goal] -> action in [-1, 1]: clipping, both normalizers and the actor."""

    def __init__(self, agent: "DDPG"):
        super().__init__()
        self.obs_dim = agent.obs_normalizer.mean.shape[0]
        self.obs_normalizer, self.goal_normalizer, self.actor = agent.obs_normalizer, agent.goal_normalizer, agent.actor
        self.clip = float(agent.cfg.obs_clip)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        obs = obs.clamp(-self.clip, self.clip)
        return self.actor(self.obs_normalizer(obs[:, :self.obs_dim]), self.goal_normalizer(obs[:, self.obs_dim:]))


class DDPG:
    @classmethod
    def from_env(cls, cfg: DDPGCfg, env, world: World = SINGLE) -> "DDPG":
        dims = env.observation_dims
        return cls(cfg, dims["observation"], dims["desired_goal"], env.num_actions, env.device, world)

    def __init__(self, cfg: DDPGCfg, obs_dim: int, goal_dim: int, action_dim: int, device="cpu",
                 world: World = SINGLE):
        self.cfg, self.device, self.world, self.action_dim = cfg, torch.device(device), world, action_dim
        dist = world.active
        self.obs_normalizer = EmpiricalNormalizer(obs_dim, eps=1e-4, clip=cfg.norm_clip, distributed=dist).to(device)
        self.goal_normalizer = EmpiricalNormalizer(goal_dim, eps=1e-4, clip=cfg.norm_clip, distributed=dist).to(device)
        self.actor = Actor(obs_dim, goal_dim, action_dim, cfg.hidden, cfg.activation).to(device)
        self.critic = Critic(obs_dim, goal_dim, action_dim, cfg.hidden, cfg.activation).to(device)
        if world.active:
            distributed.broadcast_module(self.actor)
            distributed.broadcast_module(self.critic)
        self.actor_target, self.critic_target = copy.deepcopy(self.actor), copy.deepcopy(self.critic)
        for p in (*self.actor_target.parameters(), *self.critic_target.parameters()):
            p.requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)

    def _inputs(self, obs: torch.Tensor, goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        clip = self.cfg.obs_clip
        return self.obs_normalizer(obs.clamp(-clip, clip)), self.goal_normalizer(goal.clamp(-clip, clip))

    @torch.no_grad()
    def act_inference(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.actor(*self._inputs(obs["observation"], obs["desired_goal"]))

    def inference_module(self) -> nn.Module:
        return GoalPolicy(self).eval()

    @staticmethod
    def inference_input(obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([obs["observation"], obs["desired_goal"]], dim=-1)

    def digest_module(self) -> nn.Module:
        return self.actor

    @torch.no_grad()
    def explore(self, obs: dict[str, torch.Tensor], gen: torch.Generator | None = None) -> torch.Tensor:
        a = self.act_inference(obs)
        kw = dict(generator=gen, device=a.device)
        a = (a + self.cfg.noise_std * torch.randn(a.shape, **kw)).clamp(-1, 1)
        random = torch.rand(a.shape[0], **kw) < self.cfg.random_eps
        return torch.where(random[:, None], torch.rand(a.shape, **kw) * 2 - 1, a)

    def update_normalizers(self, obs: torch.Tensor, ag: torch.Tensor, goal: torch.Tensor) -> None:
        """With a new batch of episodes: observations (.., O), achieved and desired goals (.., G)."""
        clip = self.cfg.obs_clip
        self.obs_normalizer.update(obs.reshape(-1, obs.shape[-1]).clamp(-clip, clip))
        goals = torch.cat([ag.reshape(-1, ag.shape[-1]), goal.reshape(-1, goal.shape[-1])])
        self.goal_normalizer.update(goals.clamp(-clip, clip))

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One gradient step of the critic and the actor on a relabelled batch. Returns its figures as 0-d
        tensors on the device (the caller averages them over a cycle: no host sync per update)."""
        cfg = self.cfg
        obs, goal = self._inputs(batch["obs"], batch["goal"])
        next_obs, _ = self._inputs(batch["next_obs"], batch["goal"])
        with torch.no_grad():
            target = batch["reward"] + cfg.gamma * self.critic_target(next_obs, goal, self.actor_target(next_obs, goal))
            if cfg.clip_target:
                target = target.clamp(-1 / (1 - cfg.gamma), 0.0)
        q = self.critic(obs, goal, batch["action"])
        critic_loss = (q - target).square().mean()
        self.critic_opt.zero_grad()
        critic_loss.backward()
        self._sync(self.critic)
        self.critic_opt.step()

        pi = self.actor(obs, goal)
        self.critic.requires_grad_(False)  # the actor's step needs no critic weight gradients
        q_pi = self.critic(obs, goal, pi)
        self.critic.requires_grad_(True)
        actor_loss = -q_pi.mean() + cfg.action_l2 * pi.square().mean()
        self.actor_opt.zero_grad()
        actor_loss.backward()
        self._sync(self.actor)
        self.actor_opt.step()
        return {"critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach(), "q_mean": q.detach().mean(),
                "q_target_mean": target.mean()}

    def _sync(self, net: nn.Module) -> None:
        if self.world.active:
            distributed.all_reduce_mean_gradients(net.parameters())

    @torch.no_grad()
    def update_targets(self) -> None:
        self.polyak((self.actor, self.actor_target), (self.critic, self.critic_target))

    @torch.no_grad()
    def polyak(self, *pairs: tuple[nn.Module, nn.Module]) -> None:
        """target <- polyak * target + (1 - polyak) * online, for each (online, target) pair."""
        for net, target in pairs:
            for p, tp in zip(net.parameters(), target.parameters()):
                tp.mul_(self.cfg.polyak).add_(p, alpha=1 - self.cfg.polyak)

    def state_dict(self) -> dict:
        return {name: getattr(self, name).state_dict() for name in
                ("actor", "critic", "actor_target", "critic_target", "actor_opt", "critic_opt", "obs_normalizer",
                 "goal_normalizer")}

    def load_state_dict(self, state: dict) -> None:
        for name, value in state.items():
            getattr(self, name).load_state_dict(value)
