"""DQN for discrete actions (seed 004, "Deep Q-learning": a replay memory of past transitions sampled at random,
a target network reset to the online one every C steps, epsilon-greedy exploration; Mnih et al. 2015).

    y = reward + gamma * mask * max_a Q'(s', a)          (double_q: Q'(s', argmax_a Q(s', a)))
    loss = Huber(Q(s, a) - y);  Q' <- Q every `target_update_interval` gradient steps
    epsilon: linear from `epsilon_start` to `epsilon_end` over the first `exploration_fraction` x `total_steps`
    env steps (the runner's clock), then constant.

The policy exported is the greedy choice. CaT: replay_base.py."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from pg_robotics.algorithms.replay_base import ReplayCfg, ReplayLearner


@dataclass
class DQNCfg(ReplayCfg):
    hidden: list[int] = field(default_factory=lambda: [120, 84])  # CleanRL's CartPole network
    learning_rate: float = 2.5e-4
    learning_starts: int = 10_000
    buffer_size: int = 10_000
    batch_size: int = 128
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    exploration_steps: int = 50_000  # env steps of the linear epsilon decay
    target_update_interval: int = 500  # gradient steps between target resets (C)
    tau: float = 1.0  # 1: the target is reset, not averaged
    double_q: bool = False
    utd_ratio: float = 0.1  # one gradient step every 10 env steps

    def __post_init__(self):
        super().__post_init__()
        if not self.learning_rate > 0 or self.target_update_interval < 1 or self.exploration_steps < 1:
            raise ValueError(f"learning_rate > 0, target_update_interval >= 1, exploration_steps >= 1: got "
                             f"{self.learning_rate}, {self.target_update_interval}, {self.exploration_steps}")
        if not 0 <= self.epsilon_end <= self.epsilon_start <= 1:
            raise ValueError(f"epsilon_start, epsilon_end: need 0 <= end <= start <= 1, got {self.epsilon_start}, "
                             f"{self.epsilon_end}")


class Greedy(nn.Module):
    def __init__(self, q: nn.Module):
        super().__init__()
        self.q = q

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.q(obs).argmax(-1, keepdim=True).float()


class DQN(ReplayLearner):
    discrete_actions = True

    def build(self) -> None:
        self.nets = {"q": self.mlp_net(self.num_obs, self.num_actions)}
        self.target_of("q")
        self.optims = {"q": torch.optim.Adam(self.nets["q"].parameters(), lr=self.cfg.learning_rate)}
        self.updates, self.env_steps = 0, 0

    def epsilon(self) -> float:
        cfg = self.cfg
        frac = min(1.0, self.env_steps / cfg.exploration_steps)
        return cfg.epsilon_start + frac * (cfg.epsilon_end - cfg.epsilon_start)

    def sample(self, obs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n = len(obs)
        greedy = self.nets["q"](obs).argmax(-1)
        random = torch.randint(0, self.num_actions, (n,), generator=gen, device=gen.device)
        pick = torch.rand(n, generator=gen, device=gen.device) < self.epsilon()
        self.env_steps += n
        return torch.where(pick, random, greedy).unsqueeze(-1).float()

    def explore(self, obs, gen, random: bool = False):
        if random:
            self.env_steps += len(obs["policy"])
        return super().explore(obs, gen, random)

    def policy_net(self) -> nn.Module:
        return Greedy(self.nets["q"])

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        b, cfg, q = self.normalized(batch), self.cfg, self.nets["q"]
        with torch.no_grad():
            next_q = self.nets["q_target"](b["next_obs"])
            if cfg.double_q:
                best = next_q.gather(1, q(b["next_obs"]).argmax(-1, keepdim=True)).squeeze(-1)
            else:
                best = next_q.max(-1).values
            y = b["rewards"] + cfg.gamma * b["mask"] * best
        taken = q(b["obs"]).gather(1, b["actions"].long()).squeeze(-1)
        loss = nn.functional.smooth_l1_loss(taken, y)
        self.step(loss, "q")
        self.updates += 1
        if self.updates % cfg.target_update_interval == 0:
            self.polyak("q")
        return {"q_loss": loss.detach(), "q_mean": taken.detach().mean(), "epsilon": torch.tensor(self.epsilon())}

    def extra_state(self) -> dict:
        return {"updates": self.updates, "env_steps": self.env_steps}

    def load_extra_state(self, state: dict) -> None:
        self.updates, self.env_steps = int(state["updates"]), int(state["env_steps"])
