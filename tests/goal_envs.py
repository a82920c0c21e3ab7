"""Toy goal tasks for the DDPG+HER tests: a point that moves toward a goal, with a sparse reward.

- `PointGoal`: batched in torch, with the contract of the arm tasks (dict observations, vectorized
  `compute_reward`, fixed-length episodes that all worlds start and end together, `final_obs` at the last step).
- `PointGoalEnv`: the same task as a single-world gymnasium GoalEnv, registered as ``PointGoal-v0`` when this module
  is imported, so ``pgr train gym:tests.goal_envs:PointGoal-v0`` trains it through the gymnasium adapter.

A step moves the point by 0.1 * action (action in [-1, 1]^dim), clipped to the box [-1, 1]^dim; start and goal are
uniform in that box, so every goal is reachable within 20 steps.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import torch

STEP = 0.1


class PointGoal:
    kind = "goal"
    task = "point-goal"

    def __init__(self, num_envs: int, seed: int = 0, dim: int = 2, episode_steps: int = 25, threshold: float = 0.05):
        self.num_envs, self.num_actions, self.goal_dim = num_envs, dim, dim
        self.device = torch.device("cpu")
        self.dt = 0.04
        self.episode_steps, self.threshold = episode_steps, threshold
        self.observation_dims = {"observation": dim, "achieved_goal": dim, "desired_goal": dim}
        self.gen = torch.Generator().manual_seed(seed)
        self.pos = torch.zeros(num_envs, dim)
        self.goal = torch.zeros(num_envs, dim)
        self.t = 0

    def _uniform(self) -> torch.Tensor:
        return torch.rand(self.num_envs, self.num_actions, generator=self.gen) * 2 - 1

    def compute_reward(self, achieved_goal: torch.Tensor, desired_goal: torch.Tensor, info=None) -> torch.Tensor:
        return -((achieved_goal - desired_goal).norm(dim=-1) > self.threshold).float()

    def observations(self) -> dict[str, torch.Tensor]:
        return {"observation": self.pos.clone(), "achieved_goal": self.pos.clone(), "desired_goal": self.goal.clone()}

    def reset(self) -> dict[str, torch.Tensor]:
        self.pos, self.goal, self.t = self._uniform(), self._uniform(), 0
        return self.observations()

    def step(self, actions: torch.Tensor):
        self.pos = (self.pos + STEP * actions.clamp(-1, 1)).clamp(-1, 1)
        self.t += 1
        obs = self.observations()
        reward = self.compute_reward(obs["achieved_goal"], obs["desired_goal"])
        done = torch.full((self.num_envs,), self.t >= self.episode_steps)
        info = {"is_success": (reward == 0).float(), "time_outs": done,
                "distance": (obs["achieved_goal"] - obs["desired_goal"]).norm(dim=-1)}
        if self.t >= self.episode_steps:
            info["final_obs"] = obs
            obs = self.reset()
        return obs, reward, done, info

    def state_dict(self) -> dict:
        return {"pos": self.pos.clone(), "goal": self.goal.clone(), "t": self.t, "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.pos, self.goal, self.t = state["pos"].clone(), state["goal"].clone(), int(state["t"])
        self.gen.set_state(state["gen"])

    def close(self) -> None:
        pass


class PointGoalEnv(gymnasium.Env):
    """One world of `PointGoal` as a gymnasium GoalEnv (episodes end by the TimeLimit of the registration)."""

    metadata = {"render_modes": []}

    def __init__(self, dim: int = 2, threshold: float = 0.05):
        self.dim, self.threshold = dim, threshold
        box = gymnasium.spaces.Box(-1.0, 1.0, (dim,), np.float32)
        self.observation_space = gymnasium.spaces.Dict({"observation": box, "achieved_goal": box,
                                                        "desired_goal": box})
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (dim,), np.float32)
        self.pos = np.zeros(dim, np.float32)
        self.goal = np.zeros(dim, np.float32)

    def compute_reward(self, achieved_goal, desired_goal, info):
        distance = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        return -(distance > self.threshold).astype(np.float32)

    def _obs(self) -> dict:
        return {"observation": self.pos.copy(), "achieved_goal": self.pos.copy(), "desired_goal": self.goal.copy()}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1, 1, self.dim).astype(np.float32)
        self.goal = self.np_random.uniform(-1, 1, self.dim).astype(np.float32)
        return self._obs(), {}

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float32), -1, 1)
        self.pos = np.clip(self.pos + STEP * action, -1, 1).astype(np.float32)
        obs = self._obs()
        reward = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], None))
        return obs, reward, False, False, {"is_success": float(reward == 0)}


if "PointGoal-v0" not in gymnasium.registry:  # imported as `goal_envs` and as `tests.goal_envs`: register once
    gymnasium.register(id="PointGoal-v0", entry_point=PointGoalEnv, max_episode_steps=25)
