"""Any registered gymnasium `GoalEnv` (dict observations {"observation", "achieved_goal", "desired_goal"} and
`compute_reward(achieved_goal, desired_goal, info)`) as a batched env with the project's contract, so DDPG+HER
trains it: `pgr train gym:FetchPush-v4` (an id may name the module that registers it, `gym:module:Id-v0`;
gymnasium imports it first; gymnasium-robotics, when installed, is imported for an id nothing has registered).

The worlds are N separate gymnasium envs stepped in turn; episodes have the id's `max_episode_steps` and every
world starts and ends its episodes together (HER stores whole episodes)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .config import ConfigError
from .gym_vector import GymVectorCfg, GymWorlds, vector_contract

KEYS = ("observation", "achieved_goal", "desired_goal")


def goal_contract(env, robot: str, action_names: list[str], safe_action: list[float],
                  task_params: dict[str, float] | None = None) -> dict[str, Any]:
    """The deploy contract of a goal task's policy (kind "vector"): inputs `observation` and `desired_goal`, an
    action in the actor's [-1, 1] per element, and the action the robot side falls back to on bad input."""
    dims, n = env.observation_dims, env.num_actions
    return vector_contract(env, robot, [("observation", dims["observation"]), ("desired_goal", dims["desired_goal"])],
                           action_names, [-1.0] * n, [1.0] * n, safe_action, task_params)


GymGoalCfg = GymVectorCfg


class GymGoalEnv(GymWorlds):
    kind = "goal"

    def __init__(self, cfg: GymGoalCfg, num_envs: int = 16, device: str = "cpu", seed: int = 0,
                 backend: str = "mujoco"):
        import gymnasium as gym

        super().__init__(cfg, num_envs, device, seed)
        env = self.envs[0]
        space = env.observation_space
        if not isinstance(space, gym.spaces.Dict) or any(k not in space.spaces for k in KEYS):
            raise ConfigError(f"task: {cfg.env_id} is not a GoalEnv: its observations must be a Dict with keys "
                              f"{', '.join(KEYS)}")
        if not hasattr(env.unwrapped, "compute_reward"):
            raise ConfigError(f"task: {cfg.env_id} is not a GoalEnv: it has no compute_reward")
        if env.spec is None or not env.spec.max_episode_steps:
            raise ConfigError(f"task: {cfg.env_id} has no max_episode_steps; HER needs fixed-length episodes")
        if not isinstance(env.action_space, gym.spaces.Box):
            raise ConfigError(f"task: {cfg.env_id} has {type(env.action_space).__name__} actions; DDPG needs a Box")
        self.episode_steps = int(env.spec.max_episode_steps)
        self.num_actions = int(np.prod(env.action_space.shape))
        self.low, self.high = env.action_space.low, env.action_space.high
        if not (np.isfinite(self.low).all() and np.isfinite(self.high).all()):
            raise ConfigError(f"task: {cfg.env_id} has unbounded actions; DDPG's tanh actor needs finite bounds")
        self.dt = float(getattr(env.unwrapped, "dt", 1.0))
        self.observation_dims = {k: int(np.prod(space.spaces[k].shape)) for k in KEYS}
        self.goal_dim = self.observation_dims["desired_goal"]
        self.episodes = 0
        self.t = 0
        self._obs = self.reset()

    def _stack(self, items: list[dict]) -> dict[str, torch.Tensor]:
        return {k: torch.as_tensor(np.stack([np.asarray(o[k], dtype=np.float32).reshape(-1) for o in items]),
                                   device=self.device) for k in KEYS}

    def reset(self) -> dict[str, torch.Tensor]:
        obs = [env.reset(seed=self.seed * 1_000_003 + self.episodes * self.num_envs + i)[0]
               for i, env in enumerate(self.envs)]
        self.episodes += 1
        self.t = 0
        self._obs = self._stack(obs)
        return self._obs

    def observations(self) -> dict[str, torch.Tensor]:
        return self._obs

    def compute_reward(self, achieved_goal: torch.Tensor, desired_goal: torch.Tensor, info=None) -> torch.Tensor:
        reward = self.envs[0].unwrapped.compute_reward(achieved_goal.cpu().numpy(), desired_goal.cpu().numpy(), info)
        return torch.as_tensor(np.asarray(reward, dtype=np.float32), device=self.device)

    def step(self, actions: torch.Tensor):
        # actions in [-1, 1] (the actor's tanh) scaled to the env's Box
        a = actions.detach().cpu().numpy().clip(-1, 1)
        a = self.low + (a + 1) * 0.5 * (self.high - self.low)
        results = [env.step(ai.reshape(env.action_space.shape)) for env, ai in zip(self.envs, a)]
        self.t += 1
        obs = self._stack([r[0] for r in results])
        reward = torch.tensor([float(r[1]) for r in results], device=self.device)
        ended = torch.tensor([bool(r[2] or r[3]) for r in results], device=self.device)
        success = torch.tensor([float(r[4].get("is_success", r[1] == 0)) for r in results], device=self.device)
        info = {"is_success": success, "distance": (obs["achieved_goal"] - obs["desired_goal"]).norm(dim=1)}
        last = self.t >= self.episode_steps
        if not last and ended.any():
            raise RuntimeError(f"{self.cfg.env_id}: world(s) {ended.nonzero().flatten()[:5].tolist()} ended at step "
                               f"{self.t} of {self.episode_steps}; DDPG+HER needs fixed-length episodes")
        done = torch.full((self.num_envs,), last, device=self.device)
        info["time_outs"] = done
        if last:
            info["final_obs"] = obs
            obs = self.reset()
        self._obs = obs
        return obs, reward, done, info

    def deploy_contract(self) -> dict[str, Any]:
        """Actions a0, a1, ... in [-1, 1] (scaled onto the id's Box by this adapter); zero is the safe action."""
        return goal_contract(self, "gym", [f"a{i}" for i in range(self.num_actions)], [0.0] * self.num_actions,
                             {"action_space_low": float(self.low.min()), "action_space_high": float(self.high.max())})

    def state_dict(self) -> dict:
        # gymnasium envs cannot be snapshotted in general: a resumed run starts its worlds at a new episode
        return {"episodes": self.episodes}

    def load_state_dict(self, state: dict) -> None:
        # checkpoints are taken between episodes: redrawing the last reset's seeds gives the saved observation
        self.episodes = int(state["episodes"]) - 1
        self.reset()
