"""Rollout storage for the on-policy family (PPO, A2C, REINFORCE, NPG, TRPO) on the env's device, with GAE,
time-out bootstrapping and CaT.

Per step t of world i, with CaT termination probability delta_t and done_t (true termination, time-out or reset):
    r'_t   = (1 - delta_t) * (r_t + gamma * V(s_t) * timeout_t)          time-outs bootstrap, as rsl_rl does
    d_t    = r'_t + gamma * (1 - delta_t) * (1 - done_t) * V(s_t+1) - V(s_t)
    A_t    = d_t + gamma * lambda * (1 - delta_t) * (1 - done_t) * A_t+1
    R_t    = A_t + V(s_t)
"""

from __future__ import annotations

import torch


class RolloutStorage:
    def __init__(self, num_envs: int, num_steps: int, num_obs: int, num_critic_obs: int, num_actions: int,
                 device: torch.device | str = "cpu", num_params: int | None = None):
        """`num_params`: the width of the stored distribution parameters (`mu`, `sigma`), default `num_actions`
        (a softmax policy stores one action index and the log-probabilities of all its choices)."""
        shape = (num_steps, num_envs)
        z = lambda *s: torch.zeros(*shape, *s, device=device)  # noqa: E731
        self.obs, self.critic_obs, self.actions = z(num_obs), z(num_critic_obs), z(num_actions)
        self.rewards, self.dones, self.time_outs, self.cat_delta = z(), z(), z(), z()
        num_params = num_actions if num_params is None else num_params
        self.values, self.log_probs, self.mu, self.sigma = z(), z(), z(num_params), z(num_params)
        self.advantages, self.returns = z(), z()
        self.num_steps, self.num_envs, self.step = num_steps, num_envs, 0

    def add(self, obs, critic_obs, actions, rewards, dones, time_outs, cat_delta, log_probs, mu, sigma,
            values=None):
        """One step of every world. `values` may be left out and written into `self.values` before
        compute_returns (PPO evaluates its critic once over the whole rollout)."""
        if self.step >= self.num_steps:
            raise RuntimeError("rollout storage is full: call clear() after the update")
        t = self.step
        for buf, x in ((self.obs, obs), (self.critic_obs, critic_obs), (self.actions, actions),
                       (self.rewards, rewards), (self.dones, dones), (self.time_outs, time_outs),
                       (self.cat_delta, cat_delta), (self.log_probs, log_probs), (self.mu, mu), (self.sigma, sigma)):
            buf[t].copy_(x)
        if values is not None:
            self.values[t].copy_(values)
        self.step += 1

    def clear(self) -> None:
        self.step = 0

    @torch.no_grad()
    def compute_returns(self, last_values: torch.Tensor, gamma: float, lam: float,
                        soft_terminations: bool = True) -> None:
        """`soft_terminations` false: a CaT probability below 1 scales the step's reward only, the bootstrap goes on
        (what rsl_rl makes of done = max(done, delta): it stores dones as bytes, so 0 < delta < 1 becomes 0)."""
        keep = 1.0 - self.cat_delta
        if soft_terminations:
            rewards, go_on = keep * (self.rewards + gamma * self.values * self.time_outs), keep
        else:
            rewards, go_on = keep * self.rewards + gamma * self.values * self.time_outs, (self.cat_delta < 1).float()
        advantage = torch.zeros_like(last_values)
        for t in reversed(range(self.num_steps)):
            next_values = last_values if t == self.num_steps - 1 else self.values[t + 1]
            carry = gamma * go_on[t] * (1.0 - self.dones[t])
            delta = rewards[t] + carry * next_values - self.values[t]
            advantage = delta + carry * lam * advantage
            self.advantages[t] = advantage
        self.returns.copy_(self.advantages + self.values)

    def permutation(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """A random order of the flattened rollout's transitions (drawn on the CPU: the same for a seed on any device)."""
        n = self.num_steps * self.num_envs
        return torch.randperm(n, generator=generator, device="cpu").to(self.obs.device)

    def mini_batches(self, num_mini_batches: int, num_epochs: int, generator: torch.Generator | None = None,
                     order: torch.Tensor | None = None):
        """Yield (epoch-shuffled) mini-batches of the flattened rollout as dicts of tensors; `order`: one
        permutation of the flattened rollout (`permutation()`) used for every epoch instead of a new one each."""
        n = self.num_steps * self.num_envs
        size = n // num_mini_batches
        flat = {k: getattr(self, k).flatten(0, 1) for k in (
            "obs", "critic_obs", "actions", "values", "advantages", "returns", "log_probs", "mu", "sigma")}
        for _ in range(num_epochs):
            epoch_order = self.permutation(generator) if order is None else order
            for i in range(num_mini_batches):
                idx = epoch_order[i * size:(i + 1) * size]
                yield {k: v.index_select(0, idx) for k, v in flat.items()}  # ~3x faster than v[idx] on CPU
