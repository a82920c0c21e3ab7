"""Proximal Policy Optimization for batched envs: mini-batch epochs on a surrogate objective that keeps the new
policy near the one that collected the rollout, either by clipping the probability ratio (`surrogate: clip`, with a
clipped value loss, entropy bonus, gradient-norm clipping and a learning rate adapted from the measured KL) or by a
KL penalty whose coefficient adapts to `desired_kl` (`surrogate: kl_penalty`; seed 000, slide "'Proximal' Policy
Optimization": too high a KL raises the coefficient, too low lowers it). CaT-aware returns as the whole on-policy
family (`pg_robotics.storage`). Every hyperparameter is a field of `PPOCfg`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pg_robotics import distributed
from pg_robotics.algorithms.actor_critic import ActorCriticLearner, OnPolicyCfg


@dataclass
class PPOCfg(OnPolicyCfg):
    num_epochs: int = 5
    num_mini_batches: int = 4
    surrogate: str = "clip"  # "clip" (the ratio clipped at 1 +- clip_param) or "kl_penalty" (- kl_coef * KL)
    clip_param: float = 0.2
    kl_coef: float = 1.0  # kl_penalty: the initial coefficient; x2 after an update whose KL > 1.5 desired_kl, /2
    value_loss_coef: float = 1.0  # after one < desired_kl / 1.5
    use_clipped_value_loss: bool = True
    entropy_coef: float = 0.01
    schedule: str = "adaptive"  # the learning rate: "adaptive" (from desired_kl) or "fixed"
    desired_kl: float = 0.01
    # left-right symmetry augmentation: every mini-batch also holds its transitions' mirror images (the env's
    # `mirror()`), the normalizers see every observation and its mirror, so the policy learns both sides at once
    symmetry_augmentation: bool = False
    # with symmetry_augmentation, the mirror images also train the critic (false: the actor's loss only, the update
    # costs less)
    symmetry_value_loss: bool = True
    # before every epoch after the first, the critic's values and GAE are computed again with the critic as the
    # previous epochs left it ("What Matters in On-Policy RL", Andrychowicz et al. 2021, recommends it); the value
    # loss still clips around the values of the rollout
    recompute_advantages: bool = False
    # the rollout's order into mini-batches: a new shuffle each epoch ("epoch") or one for all epochs ("once": every
    # epoch sees the same mini-batches, rsl_rl's)
    shuffle: str = "epoch"

    def __post_init__(self):
        super().__post_init__()
        if self.schedule not in ("adaptive", "fixed"):
            raise ValueError(f"schedule: expected 'adaptive' or 'fixed', got {self.schedule!r}")
        if self.shuffle not in ("epoch", "once"):
            raise ValueError(f"shuffle: expected 'epoch' or 'once', got {self.shuffle!r}")
        if self.surrogate not in ("clip", "kl_penalty"):
            raise ValueError(f"surrogate: expected 'clip' or 'kl_penalty', got {self.surrogate!r}")
        for name in ("num_epochs", "num_mini_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not self.kl_coef >= 0 or not self.desired_kl > 0:
            raise ValueError(f"kl_coef, desired_kl: must be >= 0 and > 0, got {self.kl_coef}, {self.desired_kl}")


@dataclass
class PPOKLCfg(PPOCfg):
    """`ppo_kl` in the registry: the same PPO with the KL-penalty surrogate and a fixed learning rate (the penalty
    coefficient, not the learning rate, follows the KL)."""
    surrogate: str = "kl_penalty"
    schedule: str = "fixed"
    learning_rate: float = 3e-4


class PPO(ActorCriticLearner):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kl_coef = self.cfg.kl_coef

    def _augmented(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The mini-batch and its mirror images: the mirrored transition is taken to have the original's
        advantage, return, value and old log-probability (exact for a symmetric policy and task). Without
        `symmetry_value_loss` the value loss's inputs keep the rollout's own rows only."""
        keep = () if self.cfg.symmetry_value_loss else ("critic_obs", "values", "returns")
        out = {k: v if k in keep else torch.cat([v, v]) for k, v in batch.items() if k not in ("mu", "sigma")}
        for key, what in (("obs", "policy"), ("critic_obs", "critic"), ("actions", "actions")):
            if key not in keep:
                out[key] = torch.cat([batch[key], self._mirrored(batch[key], what)])
        return out

    def _epochs(self, generator: torch.Generator | None):
        """The mini-batches of every epoch, with the advantages computed again before each epoch after the first
        when `recompute_advantages` (the same shuffles either way); `shuffle: once`: one order for all epochs."""
        st = self.storage
        order = st.permutation(generator) if self.cfg.shuffle == "once" else None
        for epoch in range(self.cfg.num_epochs):
            if epoch and self.cfg.recompute_advantages:
                rollout_values = st.values.clone()
                self.compute_values_and_returns()
                st.advantages = self.normalized_advantages()
                st.values.copy_(rollout_values)
            yield from st.mini_batches(self.cfg.num_mini_batches, 1, generator, order)

    def update(self, generator: torch.Generator | None = None) -> dict[str, float]:
        cfg, st, policy = self.cfg, self.storage, self.policy
        st.advantages = self.normalized_advantages()
        sums = {"value_loss": 0.0, "surrogate_loss": 0.0, "entropy": 0.0, "kl": 0.0}
        count = 0
        for batch in self._epochs(generator):
            n = len(batch["obs"])  # the rollout's own transitions come first
            old_mu, old_sigma = batch["mu"], batch["sigma"]
            if self.mirror:
                batch = self._augmented(batch)
            dist = policy.distribution(batch["obs"])
            log_probs = policy.log_prob(dist, batch["actions"])
            values = policy.value(batch["critic_obs"])
            entropy = policy.entropy(dist).mean()
            mu, sigma = policy.params(dist)
            with torch.set_grad_enabled(cfg.surrogate == "kl_penalty"):  # KL(old || new), the rollout's own rows
                kl_rows = policy.kl(old_mu, old_sigma, mu[:n], sigma[:n])
            kl = kl_rows.detach().mean()
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
            if cfg.surrogate == "clip":
                surrogate = -torch.min(batch["advantages"] * ratio, batch["advantages"]
                                       * ratio.clamp(1 - cfg.clip_param, 1 + cfg.clip_param)).mean()
            else:
                surrogate = -(batch["advantages"] * ratio).mean() + self.kl_coef * kl_rows.mean()
            if cfg.use_clipped_value_loss:
                clipped = batch["values"] + (values - batch["values"]).clamp(-cfg.clip_param, cfg.clip_param)
                value_loss = torch.max((values - batch["returns"]).square(),
                                       (clipped - batch["returns"]).square()).mean()
            else:
                value_loss = (values - batch["returns"]).square().mean()
            self.gradient_step(surrogate + cfg.value_loss_coef * value_loss - cfg.entropy_coef * entropy)
            for key, value in (("value_loss", value_loss), ("surrogate_loss", surrogate), ("entropy", entropy),
                               ("kl", kl)):
                sums[key] += float(value.detach())
            count += 1
        st.clear()
        stats = {k: v / count for k, v in sums.items()}
        if cfg.surrogate == "kl_penalty":  # the coefficient follows the iteration's mean KL
            if stats["kl"] > 1.5 * cfg.desired_kl:
                self.kl_coef *= 2.0
            elif stats["kl"] < cfg.desired_kl / 1.5:
                self.kl_coef /= 2.0
            stats["kl_coef"] = self.kl_coef
        return {**stats, **self.common_stats()}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "kl_coef": self.kl_coef}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.kl_coef = state.get("kl_coef", self.cfg.kl_coef)  # checkpoints from before the KL-penalty form
