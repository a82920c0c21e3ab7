"""What the off-policy methods for vector tasks share (SAC, SVG(0), TD3, DQN; runner: pg_robotics/runners/replay.py):
observation normalizers, actions in [-1, 1] scaled onto the task's bounds, Polyak-averaged targets, the gradient
step, exploration during the warm-up, inference and checkpoints. A member writes `build()` (its networks and
optimizers, in `self.nets` and `self.optims`), `sample(obs)` (an exploring action in [-1, 1], or a choice),
`policy_net()` (normalized obs -> deterministic action) and `update(batch)`.

CaT: the runner stores reward (1 - delta) r and the mask (1 - delta)(1 - terminated), so every TD target here is
reward + gamma * mask * (what the next state is worth): delta acts as a soft termination."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from pg_robotics import distributed
from pg_robotics.distributed import SINGLE, World
from pg_robotics.envs import ConfigError
from pg_robotics.networks import ACTIVATIONS, EmpiricalNormalizer, FlatPolicyInference


@dataclass
class ReplayCfg:
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    activation: str = "relu"
    gamma: float = 0.99
    tau: float = 0.005  # target <- (1 - tau) target + tau online, after every gradient step
    batch_size: int = 256
    buffer_size: int = 1_000_000  # transitions
    learning_starts: int = 5000  # env steps of uniform random actions before learning
    num_steps_per_env: int = 1  # env steps of every world per iteration
    utd_ratio: float = 1.0  # gradient steps per env step (at least one per iteration)
    normalize_obs: bool = True
    action_bound: float = 1.0  # tasks without finite action bounds: actions in [-action_bound, action_bound]
    max_grad_norm: float = 0.0  # 0: no clipping

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: unknown {self.activation!r} (known: {', '.join(ACTIVATIONS)})")
        if not 0 < self.gamma < 1 or not 0 < self.tau <= 1:
            raise ValueError(f"gamma, tau: must be in (0, 1) and (0, 1], got {self.gamma}, {self.tau}")
        for name in ("batch_size", "buffer_size", "num_steps_per_env"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.learning_starts < 0 or not self.utd_ratio > 0 or not self.action_bound > 0 \
                or not self.max_grad_norm >= 0:
            raise ValueError(f"learning_starts >= 0, utd_ratio > 0, action_bound > 0, max_grad_norm >= 0: got "
                             f"{self.learning_starts}, {self.utd_ratio}, {self.action_bound}, {self.max_grad_norm}")


class Inference(nn.Module):
    """obs -> action: the normalizer, the deterministic policy, the scaling onto the task's bounds."""

    def __init__(self, normalizer: nn.Module, net: nn.Module, low: torch.Tensor, high: torch.Tensor,
                 discrete: bool):
        super().__init__()
        self.normalizer, self.net, self.discrete = normalizer, net, discrete
        self.register_buffer("low", low.clone())
        self.register_buffer("high", high.clone())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.net(self.normalizer(obs))
        return out if self.discrete else self.low + (out + 1) * 0.5 * (self.high - self.low)


class ReplayLearner(FlatPolicyInference):
    discrete_actions = False  # what the method needs: Discrete (DQN) or Box actions (the others)

    @classmethod
    def from_env(cls, cfg: ReplayCfg, env, world: World = SINGLE) -> "ReplayLearner":
        discrete = getattr(env, "discrete", False)
        name = cls.__name__
        if discrete != cls.discrete_actions:
            raise ConfigError(f"algo: {name} needs {'Discrete' if cls.discrete_actions else 'Box (continuous)'} "
                              f"actions; {getattr(env, 'task', 'this task')} has "
                              f"{'Discrete' if discrete else 'continuous'} ones")
        n = env.num_actions
        low, high = getattr(env, "low", None), getattr(env, "high", None)
        if discrete or low is None or not (np.isfinite(low).all() and np.isfinite(high).all()):
            low, high = np.full(n, -cfg.action_bound), np.full(n, cfg.action_bound)
        policy = env.num_obs["policy"]
        return cls(cfg, policy, env.num_obs.get("critic", policy), n, env.device, world, low, high, discrete)

    def __init__(self, cfg: ReplayCfg, num_obs: int, num_critic_obs: int, num_actions: int,
                 device: torch.device | str = "cpu", world: World = SINGLE, low=None, high=None,
                 discrete: bool = False):
        self.cfg, self.device, self.world, self.discrete = cfg, torch.device(device), world, discrete
        self.num_obs, self.num_critic_obs, self.num_actions = num_obs, num_critic_obs, num_actions
        f = dict(dtype=torch.float32, device=self.device)
        self.low = torch.as_tensor(np.full(num_actions, -1.0) if low is None else low, **f)
        self.high = torch.as_tensor(np.full(num_actions, 1.0) if high is None else high, **f)
        norm = lambda n: (EmpiricalNormalizer(n, distributed=world.active) if cfg.normalize_obs  # noqa: E731
                          else nn.Identity()).to(self.device)
        self.obs_normalizer, self.critic_obs_normalizer = norm(num_obs), norm(num_critic_obs)
        self.nets: dict[str, nn.Module] = {}
        self.optims: dict[str, torch.optim.Optimizer] = {}
        self.build()
        for net in self.nets.values():
            distributed.broadcast_module(net)  # every rank starts from rank 0's parameters
        self._inference: nn.Module | None = None  # act_inference's module, built on first use

    # ---- what a member provides ------------------------------------------------------------------------------
    def build(self) -> None:
        raise NotImplementedError

    def sample(self, obs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def policy_net(self) -> nn.Module:
        raise NotImplementedError

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    # ---- shared ----------------------------------------------------------------------------------------------
    def mlp_net(self, inputs: int, outputs: int) -> nn.Module:
        from pg_robotics.networks import mlp

        return mlp(inputs, self.cfg.hidden, outputs, self.cfg.activation).to(self.device)

    def target_of(self, name: str) -> nn.Module:
        """A frozen copy of `self.nets[name]` as `self.nets[name + "_target"]`."""
        target = copy.deepcopy(self.nets[name]).requires_grad_(False)
        self.nets[name + "_target"] = target
        return target

    @torch.no_grad()
    def polyak(self, name: str) -> None:
        tau = self.cfg.tau
        for p, t in zip(self.nets[name].parameters(), self.nets[name + "_target"].parameters()):
            t.lerp_(p, tau)

    def step(self, loss: torch.Tensor, optim: str) -> None:
        opt = self.optims[optim]
        params = [p for group in opt.param_groups for p in group["params"]]
        opt.zero_grad()
        loss.backward()
        if self.world.active:
            distributed.all_reduce_mean_gradients(params)
        if self.cfg.max_grad_norm:
            nn.utils.clip_grad_norm_(params, self.cfg.max_grad_norm)
        opt.step()

    def normalized(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The batch with its observations normalized by the current statistics and its actions in [-1, 1]."""
        out = dict(batch)
        for key, norm in (("obs", self.obs_normalizer), ("next_obs", self.obs_normalizer),
                          ("critic_obs", self.critic_obs_normalizer), ("next_critic_obs", self.critic_obs_normalizer)):
            out[key] = norm(batch[key])
        if not self.discrete:
            out["actions"] = (batch["actions"] - self.low) / (self.high - self.low) * 2 - 1
        return out

    @torch.no_grad()
    def explore(self, obs: dict[str, torch.Tensor], gen: torch.Generator, random: bool = False) -> torch.Tensor:
        """Exploring actions on the task's scale (updates the normalizers); uniform ones while `random`."""
        policy_obs, critic_obs = obs["policy"], obs.get("critic", obs["policy"])
        if self.cfg.normalize_obs:
            self.obs_normalizer.update(policy_obs)
            self.critic_obs_normalizer.update(critic_obs)
        n = len(policy_obs)
        if self.discrete:
            if random:
                return torch.randint(0, self.num_actions, (n, 1), generator=gen, device=gen.device).float()
            return self.sample(self.obs_normalizer(policy_obs), gen)
        if random:
            a = torch.rand(n, self.num_actions, generator=gen, device=gen.device) * 2 - 1
        else:
            a = self.sample(self.obs_normalizer(policy_obs), gen)
        return self.low + (a + 1) * 0.5 * (self.high - self.low)

    def inference_module(self) -> nn.Module:
        return Inference(self.obs_normalizer, self.policy_net(), self.low, self.high, self.discrete).eval()

    @torch.no_grad()
    def act_inference(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The inference module, built once: it holds the live networks and normalizer, not copies."""
        if self._inference is None:
            self._inference = self.inference_module()
        return self._inference(obs["policy"])

    def digest_module(self) -> nn.Module:
        return nn.ModuleDict(self.nets)

    def state_dict(self) -> dict:
        return {"nets": {k: v.state_dict() for k, v in self.nets.items()},
                "optims": {k: v.state_dict() for k, v in self.optims.items()},
                "obs_normalizer": self.obs_normalizer.state_dict(),
                "critic_obs_normalizer": self.critic_obs_normalizer.state_dict(), **self.extra_state()}

    def load_state_dict(self, state: dict) -> None:
        for k, v in self.nets.items():
            v.load_state_dict(state["nets"][k])
        for k, v in self.optims.items():
            v.load_state_dict(state["optims"][k])
        self.obs_normalizer.load_state_dict(state["obs_normalizer"])
        self.critic_obs_normalizer.load_state_dict(state["critic_obs_normalizer"])
        self.load_extra_state(state)
