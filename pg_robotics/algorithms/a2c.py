"""A2C: advantage actor-critic with T-step returns, the synchronous batched form of A3C (seed 000, slide
"Advantage Actor-Critic"; seed 001's A3C loop with its asynchronous workers replaced by the batched worlds).

Per iteration, every world acts for T = `num_steps_per_env` steps, then
    R_t = r_t + gamma r_t+1 + ... + gamma^(T-t) V(s_T)      the T-step return (`lam` = 1 in pg_robotics.storage)
    A_t = R_t - V(s_t)
and one gradient step (Adam) on  mean(-log pi(a_t | s_t) A_t + c (V(s_t) - R_t)^2) - entropy_coef H[pi].
No epochs, no mini-batches, no ratio: what PPO adds on top of this is what the side-by-side comparison measures.
CaT as in the family (pg_robotics.storage)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pg_robotics.algorithms.actor_critic import ActorCriticLearner, OnPolicyCfg


@dataclass
class A2CCfg(OnPolicyCfg):
    lam: float = 1.0  # 1: T-step returns; below 1, GAE
    num_steps_per_env: int = 20
    value_loss_coef: float = 0.5
    entropy_coef: float = 0.01
    normalize_advantages: bool = False

    def __post_init__(self):
        super().__post_init__()
        if not self.value_loss_coef >= 0:
            raise ValueError(f"value_loss_coef: must be >= 0, got {self.value_loss_coef}")


class A2C(ActorCriticLearner):
    def update(self, generator: torch.Generator | None = None) -> dict[str, float]:
        cfg, st, policy = self.cfg, self.storage, self.policy
        adv = (self.normalized_advantages() if cfg.normalize_advantages else st.advantages).flatten()
        dist = policy.distribution(st.obs.flatten(0, 1))
        entropy = policy.entropy(dist).mean()
        surrogate = -(policy.log_prob(dist, st.actions.flatten(0, 1)) * adv).mean()
        value_loss = (policy.value(st.critic_obs.flatten(0, 1)) - st.returns.flatten()).square().mean()
        self.gradient_step(surrogate + cfg.value_loss_coef * value_loss - cfg.entropy_coef * entropy)
        st.clear()
        return {"surrogate_loss": float(surrogate.detach()), "value_loss": float(value_loss.detach()),
                "entropy": float(entropy.detach()), **self.common_stats()}
