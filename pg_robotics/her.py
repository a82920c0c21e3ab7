"""Episode replay buffer with hindsight experience relabelling (Andrychowicz et al. 2017), on the env's device.

Whole episodes from all parallel worlds are stored as (episodes, T+1, ...) tensors. Sampling a batch draws
(episode, t) pairs and, with probability 1 - 1/(1+k), replaces the desired goal by an achieved goal of the same
episode and world: `future` (a later step t' in [t+1, T]), `final` (the last step) or `episode` (any step 1..T).
Rewards are recomputed through the task's `compute_reward`. Everything is batched tensor indexing: no Python loop
over transitions."""

from __future__ import annotations

import torch

STRATEGIES = ("future", "final", "episode", "none")


class EpisodeBuffer:
    def __init__(self, capacity: int, episode_steps: int, obs_dim: int, goal_dim: int, action_dim: int,
                 device: torch.device | str = "cpu"):
        if capacity < 1:
            raise ValueError(f"buffer_episodes: must be >= 1, got {capacity}")
        t, f = episode_steps, dict(dtype=torch.float32, device=device)
        self.capacity, self.episode_steps, self.device = capacity, t, torch.device(device)
        self.obs = torch.zeros(capacity, t + 1, obs_dim, **f)
        self.ag = torch.zeros(capacity, t + 1, goal_dim, **f)
        self.goal = torch.zeros(capacity, t, goal_dim, **f)
        self.actions = torch.zeros(capacity, t, action_dim, **f)
        self.size, self.next = 0, 0

    def store(self, obs: torch.Tensor, ag: torch.Tensor, goal: torch.Tensor, actions: torch.Tensor) -> None:
        """Add E episodes: obs (E, T+1, O), achieved goals (E, T+1, G), desired goals (E, T, G), actions (E, T, A);
        the oldest episodes are overwritten once the buffer is full."""
        if obs.shape[0] > self.capacity:  # only the newest fit
            obs, ag, goal, actions = (x[-self.capacity:] for x in (obs, ag, goal, actions))
        ids = (self.next + torch.arange(obs.shape[0], device=self.device)) % self.capacity
        self.obs[ids], self.ag[ids], self.goal[ids], self.actions[ids] = obs, ag, goal, actions
        self.next = int(ids[-1] + 1) % self.capacity
        self.size = min(self.size + obs.shape[0], self.capacity)

    def sample(self, batch_size: int, compute_reward, strategy: str = "future", k: int = 4,
               gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """A relabelled batch: obs, goal, action, reward, next_obs (and the episode/step indices it came from)."""
        if strategy not in STRATEGIES:
            raise ValueError(f"her_strategy: unknown {strategy!r} (known: {', '.join(STRATEGIES)})")
        if self.size == 0:
            raise RuntimeError("sample: the replay buffer is empty")
        T, dev = self.episode_steps, self.device

        def uniform(n: int) -> torch.Tensor:
            return torch.rand(n, generator=gen, device=dev) if gen is not None else torch.rand(n, device=dev)

        ep = (uniform(batch_size) * self.size).long()
        t = (uniform(batch_size) * T).long()
        goal = self.goal[ep, t]  # advanced indexing: a copy
        source = torch.full_like(t, -1)  # the step whose achieved goal became the goal (-1: not relabelled)
        if strategy != "none" and k > 0:
            her = uniform(batch_size) < 1 - 1 / (1 + k)
            if strategy == "future":
                later = t + 1 + (uniform(batch_size) * (T - t)).long()
            elif strategy == "final":
                later = torch.full_like(t, T)
            else:  # episode
                later = 1 + (uniform(batch_size) * T).long()
            source = torch.where(her, later, source)
            goal = torch.where(her[:, None], self.ag[ep, source.clamp(min=0)], goal)  # no mask indexing: no sync
        ag_next = self.ag[ep, t + 1]
        return {"obs": self.obs[ep, t], "goal": goal, "action": self.actions[ep, t],
                "reward": compute_reward(ag_next, goal, None), "next_obs": self.obs[ep, t + 1],
                "episode": ep, "t": t, "goal_step": source}

    def state_dict(self) -> dict:
        n = self.size
        return {"obs": self.obs[:n].clone(), "ag": self.ag[:n].clone(), "goal": self.goal[:n].clone(),
                "actions": self.actions[:n].clone(), "size": n, "next": self.next, "capacity": self.capacity}

    def load_state_dict(self, state: dict) -> None:
        n = int(state["size"])
        if n > self.capacity:
            raise ValueError(f"buffer: the checkpoint holds {n} episodes, more than buffer_episodes {self.capacity}")
        keys = ("obs", "ag", "goal", "actions")
        saved = [state[k] for k in keys]
        nxt = int(state["next"])
        if int(state.get("capacity", self.capacity)) != self.capacity:  # a new size: oldest episode first
            order = (torch.arange(n) + (nxt if n == int(state["capacity"]) else 0)) % n
            saved, nxt = [x[order] for x in saved], n % self.capacity
        for key, value in zip(keys, saved):
            getattr(self, key)[:n] = value.to(self.device)
        self.size, self.next = n, nxt
