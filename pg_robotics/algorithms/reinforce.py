"""REINFORCE: the "vanilla" policy gradient with reward-to-go, discount and a learned state-value baseline (seed
000, slide '"Vanilla" Policy Gradient Algorithm'; seed 004, "REINFORCE with baseline").

Per iteration, on the rollout of `num_steps_per_env` steps in every world:
    R_t = r_t + gamma r_t+1 + ...      the discounted reward-to-go (bootstrapped with b at the rollout's cut, where
                                       an episode goes on; `lam` = 1 in the family's estimator, pg_robotics.storage)
    A_t = R_t - b(s_t)                 with the baseline b as it was during the rollout
    one gradient step on  -mean(log pi(a_t | s_t) A_t)  (Adam)
    re-fit the baseline: `baseline_epochs` passes of mini-batch regression of b(s_t) onto R_t
CaT as in the family: the termination probability delta scales the rewards and cuts the reward-to-go."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pg_robotics.algorithms.actor_critic import ActorCriticLearner, OnPolicyCfg


@dataclass
class ReinforceCfg(OnPolicyCfg):
    lam: float = 1.0  # 1: the advantage is the reward-to-go minus the baseline
    num_steps_per_env: int = 50
    baseline_learning_rate: float = 1e-3
    baseline_epochs: int = 5
    baseline_mini_batches: int = 4
    normalize_advantages: bool = True
    entropy_coef: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        if self.baseline_epochs < 1 or self.baseline_mini_batches < 1:
            raise ValueError(f"baseline_epochs, baseline_mini_batches: must be >= 1, got {self.baseline_epochs}, "
                             f"{self.baseline_mini_batches}")
        if not self.baseline_learning_rate > 0:
            raise ValueError(f"baseline_learning_rate: must be > 0, got {self.baseline_learning_rate}")


class Reinforce(ActorCriticLearner):
    def make_optimizer(self) -> torch.optim.Optimizer:
        self.baseline_optimizer = torch.optim.Adam(self.policy.critic_parameters(),
                                                   lr=self.cfg.baseline_learning_rate)
        return torch.optim.Adam(self.policy.actor_parameters(), lr=self.cfg.learning_rate)

    def update(self, generator: torch.Generator | None = None) -> dict[str, float]:
        cfg, st, policy = self.cfg, self.storage, self.policy
        adv = self.normalized_advantages() if cfg.normalize_advantages else st.advantages
        dist = policy.distribution(st.obs.flatten(0, 1))
        entropy = policy.entropy(dist).mean()
        loss = -(policy.log_prob(dist, st.actions.flatten(0, 1)) * adv.flatten()).mean() - cfg.entropy_coef * entropy
        self.gradient_step(loss, self.optimizer, policy.actor_parameters())
        value_loss = self.fit_values(self.baseline_optimizer, cfg.baseline_epochs, cfg.baseline_mini_batches, generator)
        st.clear()
        return {"surrogate_loss": float(loss.detach()), "value_loss": value_loss,
                "entropy": float(entropy.detach()), **self.common_stats()}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "baseline_optimizer": self.baseline_optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.baseline_optimizer.load_state_dict(state["baseline_optimizer"])
