"""Proximal Policy Optimization for batched envs (clipped surrogate, clipped value loss, entropy bonus,
gradient-norm clipping, mini-batch epochs, adaptive learning rate from the measured KL), with CaT-aware returns
(see `pg_robotics.storage`). Every hyperparameter is a field of `PPOCfg`."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from pg_robotics import distributed
from pg_robotics.distributed import SINGLE, World
from pg_robotics.envs import ConfigError
from pg_robotics.networks import ActorCritic, EmpiricalNormalizer
from pg_robotics.storage import RolloutStorage


@dataclass
class PPOCfg:
    actor_hidden: list[int] = field(default_factory=lambda: [256, 128, 64])
    critic_hidden: list[int] = field(default_factory=lambda: [256, 128, 64])
    activation: str = "elu"
    init_noise_std: float = 1.0
    noise_std_type: str = "log"  # the learned noise parameter: "log" (of the std) or "scalar" (the std itself)
    normalize_obs: bool = True
    num_steps_per_env: int = 24
    num_epochs: int = 5
    num_mini_batches: int = 4
    clip_param: float = 0.2
    gamma: float = 0.99
    lam: float = 0.95
    value_loss_coef: float = 1.0
    use_clipped_value_loss: bool = True
    entropy_coef: float = 0.01
    learning_rate: float = 1e-3
    schedule: str = "adaptive"  # "adaptive" (from desired_kl) or "fixed"
    desired_kl: float = 0.01
    max_grad_norm: float = 1.0
    # left-right symmetry augmentation: every mini-batch also holds its transitions' mirror images (the env's
    # `mirror()`), the normalizers see every observation and its mirror, so the policy learns both sides at once
    symmetry_augmentation: bool = False

    def __post_init__(self):
        if self.noise_std_type not in ("log", "scalar"):
            raise ValueError(f"noise_std_type: expected 'log' or 'scalar', got {self.noise_std_type!r}")
        if self.schedule not in ("adaptive", "fixed"):
            raise ValueError(f"schedule: expected 'adaptive' or 'fixed', got {self.schedule!r}")
        for name in ("num_steps_per_env", "num_epochs", "num_mini_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not 0 < self.gamma <= 1 or not 0 <= self.lam <= 1:
            raise ValueError(f"gamma, lam: must be in (0, 1] and [0, 1], got {self.gamma}, {self.lam}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate: must be > 0, got {self.learning_rate}")


class DeterministicPolicy(nn.Module):
    """obs -> actions: the observation normalizer followed by the actor's mean (what export and eval run)."""

    def __init__(self, normalizer: nn.Module, actor: nn.Module):
        super().__init__()
        self.normalizer, self.actor = normalizer, actor

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(self.normalizer(obs))


class PPO:
    @classmethod
    def from_env(cls, cfg: PPOCfg, env, world: World = SINGLE) -> "PPO":
        policy = env.num_obs["policy"]
        mirror = None
        if cfg.symmetry_augmentation:
            if not hasattr(env, "mirror"):
                raise ConfigError(f"algorithm.symmetry_augmentation: {getattr(env, 'task', 'this task')} has no "
                                  f"left-right mirror (an env method mirror())")
            mirror = env.mirror()
        return cls(cfg, policy, env.num_obs.get("critic", policy), env.num_actions, env.num_envs, env.device, world,
                   mirror)

    def __init__(self, cfg: PPOCfg, num_obs: int, num_critic_obs: int, num_actions: int, num_envs: int,
                 device: torch.device | str = "cpu", world: World = SINGLE,
                 mirror: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None):
        """`mirror`: (index, sign) of the left-right mirror image for "policy", "critic" (default: policy) and
        "actions" (`symmetry_augmentation`)."""
        self.cfg, self.device, self.world = cfg, torch.device(device), world
        if cfg.symmetry_augmentation and mirror is None:
            raise ConfigError("algorithm.symmetry_augmentation: no mirror of the observations and actions given")
        self.mirror = None if mirror is None else {"critic": mirror["policy"], **mirror}
        self.policy = ActorCritic(num_obs, num_critic_obs, num_actions, cfg.actor_hidden, cfg.critic_hidden,
                                  cfg.activation, cfg.init_noise_std, cfg.noise_std_type).to(self.device)
        distributed.broadcast_module(self.policy)  # every rank starts from rank 0's parameters
        self.obs_normalizer = (EmpiricalNormalizer(num_obs, distributed=world.active) if cfg.normalize_obs
                               else nn.Identity()).to(self.device)
        self.critic_obs_normalizer = (EmpiricalNormalizer(num_critic_obs, distributed=world.active)
                                      if cfg.normalize_obs else nn.Identity()).to(self.device)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=cfg.learning_rate)
        self.learning_rate = cfg.learning_rate
        self.storage = RolloutStorage(num_envs, cfg.num_steps_per_env, num_obs, num_critic_obs, num_actions,
                                      self.device)
        self._transition: dict = {}

    def normalize(self, obs: dict[str, torch.Tensor], update: bool) -> tuple[torch.Tensor, torch.Tensor]:
        policy_obs, critic_obs = obs["policy"], obs.get("critic", obs["policy"])
        if update and self.cfg.normalize_obs:
            if self.mirror:  # symmetric statistics: normalizing a mirror image = mirroring the normalized one
                self.obs_normalizer.update(torch.cat([policy_obs, self._mirrored(policy_obs, "policy")]))
                self.critic_obs_normalizer.update(torch.cat([critic_obs, self._mirrored(critic_obs, "critic")]))
            else:
                self.obs_normalizer.update(policy_obs)
                self.critic_obs_normalizer.update(critic_obs)
        return self.obs_normalizer(policy_obs), self.critic_obs_normalizer(critic_obs)

    def _mirrored(self, x: torch.Tensor, what: str) -> torch.Tensor:
        index, sign = self.mirror[what]
        return x[:, index] * sign

    def _augmented(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The mini-batch and its mirror images: the mirrored transition is taken to have the original's
        advantage, return, value and old log-probability (exact for a symmetric policy and task)."""
        out = {k: torch.cat([v, v]) for k, v in batch.items() if k not in ("mu", "sigma")}
        for key, what in (("obs", "policy"), ("critic_obs", "critic"), ("actions", "actions")):
            out[key] = torch.cat([batch[key], self._mirrored(batch[key], what)])
        return out

    @torch.no_grad()
    def act(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Sample actions for the rollout (updates the normalizers, remembers the transition's first half)."""
        policy_obs, critic_obs = self.normalize(obs, update=True)
        dist = self.policy.distribution(policy_obs)
        actions = dist.sample()
        # the critic's values wait for the whole rollout (compute_returns): one batch instead of one per step
        self._transition = dict(obs=policy_obs, critic_obs=critic_obs, actions=actions,
                                log_probs=dist.log_prob(actions).sum(-1), mu=dist.mean, sigma=dist.stddev)
        return actions

    @torch.no_grad()
    def act_inference(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Deterministic actions (the mean), normalizers frozen."""
        return self.policy.act_inference(self.normalize(obs, update=False)[0])

    def inference_module(self) -> nn.Module:
        return DeterministicPolicy(self.obs_normalizer, self.policy.actor).eval()

    @staticmethod
    def inference_input(obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return obs["policy"]

    def digest_module(self) -> nn.Module:
        return self.policy

    def process_env_step(self, rewards: torch.Tensor, dones: torch.Tensor, info: dict) -> None:
        n = rewards.shape[0]
        zeros = torch.zeros(n, device=self.device)
        self.storage.add(**self._transition, rewards=rewards, dones=dones.float(),
                         time_outs=info.get("time_outs", zeros).float(), cat_delta=info.get("cat_delta", zeros))

    @torch.no_grad()
    def compute_returns(self, last_obs: dict[str, torch.Tensor]) -> None:
        """The critic's value of every stored step, in one batch, then GAE. The stored critic observations were
        normalized as they were taken and the critic does not change during a rollout, so this is the value each
        step would have had."""
        st = self.storage
        st.values.copy_(self.policy.value(st.critic_obs.flatten(0, 1)).view_as(st.values))
        last_values = self.policy.value(self.normalize(last_obs, update=False)[1])
        st.compute_returns(last_values, self.cfg.gamma, self.cfg.lam)

    def update(self, generator: torch.Generator | None = None) -> dict[str, float]:
        cfg, st = self.cfg, self.storage
        adv = st.advantages
        st.advantages = (adv - adv.mean()) / (adv.std() + 1e-8)
        sums = {"value_loss": 0.0, "surrogate_loss": 0.0, "entropy": 0.0, "kl": 0.0}
        count = 0
        for batch in st.mini_batches(cfg.num_mini_batches, cfg.num_epochs, generator):
            n = len(batch["obs"])  # the rollout's own transitions come first
            old_mu, old_sigma = batch["mu"], batch["sigma"]
            if self.mirror:
                batch = self._augmented(batch)
            dist = self.policy.distribution(batch["obs"])
            log_probs = dist.log_prob(batch["actions"]).sum(-1)
            values = self.policy.value(batch["critic_obs"])
            entropy = dist.entropy().sum(-1).mean()
            with torch.no_grad():  # KL(old || new) of the diagonal Gaussians, on the rollout's transitions
                mu, sigma = dist.mean[:n], dist.stddev[:n]
                kl = (torch.log(sigma / old_sigma) + (old_sigma.square() + (old_mu - mu).square())
                      / (2 * sigma.square()) - 0.5).sum(-1).mean()
            if self.world.active:  # the same KL, hence the same learning rate, on every rank
                kl = distributed.all_reduce(kl.clone()) / self.world.size
            if cfg.schedule == "adaptive":
                if kl > 2 * cfg.desired_kl:
                    self.learning_rate = max(1e-5, self.learning_rate / 1.5)
                elif 0 < kl < cfg.desired_kl / 2:
                    self.learning_rate = min(1e-2, self.learning_rate * 1.5)
                for group in self.optimizer.param_groups:
                    group["lr"] = self.learning_rate
            ratio = torch.exp(log_probs - batch["log_probs"])
            surrogate = -torch.min(batch["advantages"] * ratio,
                                   batch["advantages"] * ratio.clamp(1 - cfg.clip_param, 1 + cfg.clip_param)).mean()
            if cfg.use_clipped_value_loss:
                clipped = batch["values"] + (values - batch["values"]).clamp(-cfg.clip_param, cfg.clip_param)
                value_loss = torch.max((values - batch["returns"]).square(),
                                       (clipped - batch["returns"]).square()).mean()
            else:
                value_loss = (values - batch["returns"]).square().mean()
            loss = surrogate + cfg.value_loss_coef * value_loss - cfg.entropy_coef * entropy
            self.optimizer.zero_grad()
            loss.backward()
            if self.world.active:
                distributed.all_reduce_mean_gradients(self.policy.parameters())
            nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            for key, value in (("value_loss", value_loss), ("surrogate_loss", surrogate), ("entropy", entropy),
                               ("kl", kl)):
                sums[key] += float(value.detach())
            count += 1
        st.clear()
        stats = {k: v / count for k, v in sums.items()}
        stats["learning_rate"] = self.learning_rate
        stats["action_std"] = float(self.policy.action_std().detach().mean())
        return stats

    def state_dict(self) -> dict:
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                "obs_normalizer": self.obs_normalizer.state_dict(),
                "critic_obs_normalizer": self.critic_obs_normalizer.state_dict(),
                "learning_rate": self.learning_rate}

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.obs_normalizer.load_state_dict(state["obs_normalizer"])
        self.critic_obs_normalizer.load_state_dict(state["critic_obs_normalizer"])
        self.learning_rate = state["learning_rate"]
