"""What the on-policy family shares (PPO, A2C, REINFORCE, NPG, TRPO): the actor-critic networks (Gaussian, or
softmax over discrete actions), the observation normalizers, the rollout with CaT-aware returns
(`pg_robotics.storage`), inference and checkpoints. A member is a subclass that writes `update()` and adds its own
config fields to `OnPolicyCfg`."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from pg_robotics import distributed
from pg_robotics.distributed import SINGLE, World
from pg_robotics.envs import ConfigError
from pg_robotics.networks import NORMALIZER_FORMS, ActorCritic, EmpiricalNormalizer
from pg_robotics.storage import RolloutStorage


@dataclass
class OnPolicyCfg:
    actor_hidden: list[int] = field(default_factory=lambda: [256, 128, 64])
    critic_hidden: list[int] = field(default_factory=lambda: [256, 128, 64])
    activation: str = "elu"
    init_noise_std: float = 1.0
    # the actor's last layer starts with its weights and bias times this: 0.01 makes every state's first action
    # nearly zero (the task's default pose), the exploration noise alone then varies it
    actor_output_scale: float = 1.0
    noise_std_type: str = "log"  # the learned noise parameter: "log" (of the std) or "scalar" (the std itself)
    normalize_obs: bool = True
    num_steps_per_env: int = 24
    gamma: float = 0.99
    lam: float = 0.95
    learning_rate: float = 1e-3
    max_grad_norm: float = 1.0
    # the gradient norm clipped at max_grad_norm over actor and critic together ("joint") or for each of them apart
    # ("per_network": the critic's larger gradients no longer shrink the actor's step)
    grad_clip: str = "joint"
    # when the observation normalizers learn: "step" (each env step, before acting) or "iteration" (once, after the
    # update, from the rollout's observations: frozen while the rollout is collected and learned from)
    normalizer_update: str = "step"
    # how they scale (pg_robotics.networks.EmpiricalNormalizer): "sqrt_var_eps", (x - mean) / sqrt(var + eps) clipped
    # at +-10, or "std_eps", (x - mean) / (std + eps) unclipped (rsl_rl's)
    normalizer_form: str = "sqrt_var_eps"
    # CaT: a constraint's termination probability delta scales the step's reward and discounts what follows by
    # (1 - delta) (true); false: it scales the reward only and only delta = 1 ends the bootstrap (what the anchor
    # rsl_rl does with done = max(done, delta), its dones being bytes)
    cat_soft_terminations: bool = True

    def __post_init__(self):
        if self.grad_clip not in ("joint", "per_network"):
            raise ValueError(f"grad_clip: expected 'joint' or 'per_network', got {self.grad_clip!r}")
        if self.normalizer_update not in ("step", "iteration"):
            raise ValueError(f"normalizer_update: expected 'step' or 'iteration', got {self.normalizer_update!r}")
        if self.normalizer_form not in NORMALIZER_FORMS:
            raise ValueError(f"normalizer_form: expected one of {', '.join(NORMALIZER_FORMS)}, "
                             f"got {self.normalizer_form!r}")
        if self.noise_std_type not in ("log", "scalar"):
            raise ValueError(f"noise_std_type: expected 'log' or 'scalar', got {self.noise_std_type!r}")
        if self.num_steps_per_env < 1:
            raise ValueError(f"num_steps_per_env: must be >= 1, got {self.num_steps_per_env}")
        if not 0 < self.gamma <= 1 or not 0 <= self.lam <= 1:
            raise ValueError(f"gamma, lam: must be in (0, 1] and [0, 1], got {self.gamma}, {self.lam}")
        if not self.actor_output_scale > 0:
            raise ValueError(f"actor_output_scale: must be > 0, got {self.actor_output_scale}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate: must be > 0, got {self.learning_rate}")
        if not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm: must be > 0, got {self.max_grad_norm}")


class DeterministicPolicy(nn.Module):
    """obs -> actions: the observation normalizer followed by the actor's mean, or its most likely choice
    (what export and eval run)."""

    def __init__(self, normalizer: nn.Module, actor: nn.Module, discrete: bool = False):
        super().__init__()
        self.normalizer, self.actor, self.discrete = normalizer, actor, discrete

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.actor(self.normalizer(obs))
        return out.argmax(-1, keepdim=True).float() if self.discrete else out


class ActorCriticLearner:
    """Rollouts of `num_steps_per_env` steps into storage, then the subclass's `update()`."""

    @classmethod
    def from_env(cls, cfg: OnPolicyCfg, env, world: World = SINGLE) -> "ActorCriticLearner":
        policy = env.num_obs["policy"]
        mirror = None
        if getattr(cfg, "symmetry_augmentation", False):
            without = " (train without it: --set algorithm.symmetry_augmentation=false)"
            if not hasattr(env, "mirror"):
                raise ConfigError(f"algorithm.symmetry_augmentation: {getattr(env, 'task', 'this task')} has no "
                                  f"left-right mirror (an env method mirror()){without}")
            try:
                mirror = env.mirror()
            except ConfigError as e:
                raise ConfigError(f"{e}{without}") from None
        return cls(cfg, policy, env.num_obs.get("critic", policy), env.num_actions, env.num_envs, env.device, world,
                   mirror, discrete=getattr(env, "discrete", False))

    def __init__(self, cfg: OnPolicyCfg, num_obs: int, num_critic_obs: int, num_actions: int, num_envs: int,
                 device: torch.device | str = "cpu", world: World = SINGLE,
                 mirror: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None, discrete: bool = False):
        """`mirror`: (index, sign) of the left-right mirror image for "policy", "critic" (default: policy) and
        "actions" (PPO's `symmetry_augmentation`). `discrete`: `num_actions` choices, a softmax policy."""
        self.cfg, self.device, self.world = cfg, torch.device(device), world
        if getattr(cfg, "symmetry_augmentation", False) and mirror is None:
            raise ConfigError("algorithm.symmetry_augmentation: no mirror of the observations and actions given")
        self.mirror = None if mirror is None else {"critic": mirror["policy"], **mirror}
        self.discrete = discrete
        self.policy = ActorCritic(num_obs, num_critic_obs, num_actions, cfg.actor_hidden, cfg.critic_hidden,
                                  cfg.activation, cfg.init_noise_std, cfg.noise_std_type, discrete,
                                  cfg.actor_output_scale).to(self.device)
        distributed.broadcast_module(self.policy)  # every rank starts from rank 0's parameters
        self.obs_normalizer, self.critic_obs_normalizer = (
            (EmpiricalNormalizer(size, distributed=world.active, form=cfg.normalizer_form) if cfg.normalize_obs
             else nn.Identity()).to(self.device) for size in (num_obs, num_critic_obs))
        self.optimizer = self.make_optimizer()
        self.learning_rate = cfg.learning_rate
        self.storage = RolloutStorage(num_envs, cfg.num_steps_per_env, num_obs, num_critic_obs,
                                      1 if discrete else num_actions, self.device, num_params=num_actions)
        self._transition: dict = {}
        self._rollout_obs: list[tuple[torch.Tensor, torch.Tensor]] = []  # normalizer_update "iteration"

    def make_optimizer(self) -> torch.optim.Optimizer:
        """One Adam over actor, critic and noise (PPO, A2C); NPG and TRPO step the actor themselves."""
        return torch.optim.Adam(self.policy.parameters(), lr=self.cfg.learning_rate)

    def normalize(self, obs: dict[str, torch.Tensor], update: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """`update`: a rollout step's observations, which the normalizers learn from now or after the update."""
        policy_obs, critic_obs = obs["policy"], obs.get("critic", obs["policy"])
        if update and self.cfg.normalize_obs:
            if self.cfg.normalizer_update == "step":
                self._learn_normalizers(policy_obs, critic_obs)
            else:
                self._rollout_obs.append((policy_obs, critic_obs))
        return self.obs_normalizer(policy_obs), self.critic_obs_normalizer(critic_obs)

    def _learn_normalizers(self, policy_obs: torch.Tensor, critic_obs: torch.Tensor) -> None:
        if self.mirror:  # symmetric statistics: normalizing a mirror image = mirroring the normalized one
            policy_obs = torch.cat([policy_obs, self._mirrored(policy_obs, "policy")])
            critic_obs = torch.cat([critic_obs, self._mirrored(critic_obs, "critic")])
        self.obs_normalizer.update(policy_obs)
        self.critic_obs_normalizer.update(critic_obs)

    def end_iteration(self) -> None:
        """After the update (the runner calls it): normalizer_update "iteration" learns the rollout's observations."""
        if self._rollout_obs:
            policy_obs, critic_obs = (torch.cat(x) for x in zip(*self._rollout_obs))
            self._rollout_obs = []
            self._learn_normalizers(policy_obs, critic_obs)

    def _mirrored(self, x: torch.Tensor, what: str) -> torch.Tensor:
        index, sign = self.mirror[what]
        return x[:, index] * sign

    @torch.no_grad()
    def act(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Sample actions for the rollout (updates the normalizers, remembers the transition's first half)."""
        policy_obs, critic_obs = self.normalize(obs, update=True)
        dist = self.policy.distribution(policy_obs)
        actions = self.policy.sample(dist)
        mu, sigma = self.policy.params(dist)
        # the critic's values wait for the whole rollout (compute_returns): one batch instead of one per step
        self._transition = dict(obs=policy_obs, critic_obs=critic_obs, actions=actions,
                                log_probs=self.policy.log_prob(dist, actions), mu=mu, sigma=sigma)
        return actions

    @torch.no_grad()
    def act_inference(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Deterministic actions (the mean, or the most likely choice), normalizers frozen."""
        return self.policy.act_inference(self.normalize(obs, update=False)[0])

    def inference_module(self) -> nn.Module:
        return DeterministicPolicy(self.obs_normalizer, self.policy.actor, self.discrete).eval()

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
        self._last_critic_obs = self.normalize(last_obs, update=False)[1]
        self.compute_values_and_returns()

    @torch.no_grad()
    def compute_values_and_returns(self) -> None:
        """The current critic's values of the stored rollout and of the step after it, then GAE."""
        st = self.storage
        st.values.copy_(self.policy.value(st.critic_obs.flatten(0, 1)).view_as(st.values))
        st.compute_returns(self.policy.value(self._last_critic_obs), self.cfg.gamma, self.cfg.lam,
                           self.cfg.cat_soft_terminations)

    def update(self, generator: torch.Generator | None = None) -> dict[str, float]:
        raise NotImplementedError

    # ---- shared pieces of the updates ------------------------------------------------------------------------
    def normalized_advantages(self) -> torch.Tensor:
        adv = self.storage.advantages
        return (adv - adv.mean()) / (adv.std() + 1e-8)

    def gradient_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer | None = None,
                      parameters=None) -> None:
        """Backward, the mean gradient over ranks, norm clipping at `max_grad_norm`, the optimizer's step."""
        optimizer = optimizer or self.optimizer
        whole = parameters is None
        parameters = list(self.policy.parameters() if whole else parameters)
        optimizer.zero_grad()
        loss.backward()
        if self.world.active:
            distributed.all_reduce_mean_gradients(parameters)
        if whole and self.cfg.grad_clip == "per_network":
            for group in (self.policy.actor_parameters(), self.policy.critic_parameters()):
                nn.utils.clip_grad_norm_(group, self.cfg.max_grad_norm)
        else:
            nn.utils.clip_grad_norm_(parameters, self.cfg.max_grad_norm)
        optimizer.step()

    def fit_values(self, optimizer: torch.optim.Optimizer, epochs: int, mini_batches: int,
                   generator: torch.Generator | None = None) -> float:
        """Regress V(s_t) onto the returns R_t over `epochs` passes of `mini_batches` (the baseline fit of
        REINFORCE, NPG, TRPO); the mean loss."""
        total, count = 0.0, 0
        for batch in self.storage.mini_batches(mini_batches, epochs, generator):
            loss = (self.policy.value(batch["critic_obs"]) - batch["returns"]).square().mean()
            self.gradient_step(loss, optimizer, self.policy.critic_parameters())
            total, count = total + float(loss.detach()), count + 1
        return total / count

    def common_stats(self) -> dict[str, float]:
        stats = {"learning_rate": self.learning_rate}
        if not self.discrete:
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
