"""Any registered gymnasium environment with Box observations and Box or Discrete actions (Hopper-v5,
HalfCheetah-v5, Pendulum-v1, CartPole-v1, ...) as a batched env with the project's contract, so the on-policy
family trains it: `pgr train gym:CartPole-v1 --algo a2c`. An id may name the module that registers it
(`gym:module:Id-v0`; gymnasium imports it first). GoalEnvs (dict observations with compute_reward) go to
gym_goal.py instead; `gym_kind` tells which.

The worlds are N separate gymnasium envs stepped in turn, each resetting on its own when its episode ends;
continuous actions are clipped to the id's Box, discrete ones are the chosen index. Truncation (the id's
max_episode_steps) is reported as a time-out, termination as a true end; `info["final_obs"]` holds the observation
each world's step ended on (before a reset), for off-policy methods to bootstrap time-outs from."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .config import ConfigError


def make_gym(env_id: str, kwargs: dict | None = None, count: int = 1) -> list:
    """`count` gymnasium envs of `env_id` (gymnasium-robotics imported first for an id nothing has registered);
    a ConfigError naming the id when gymnasium cannot make it."""
    import gymnasium as gym

    robotics = importlib.util.find_spec("gymnasium_robotics") is not None
    if ":" not in env_id and env_id not in gym.registry and robotics:
        import gymnasium_robotics  # noqa: F401  (registers FetchReach-v4, FetchPush-v4, ... on import)
    try:
        with mujoco_warnings_once():
            return [gym.make(env_id, **(kwargs or {})) for _ in range(count)]
    except (gym.error.Error, ImportError, ModuleNotFoundError) as exc:
        hint = "" if robotics else " (Fetch* and other gymnasium-robotics ids: pip install gymnasium-robotics)"
        raise ConfigError(f"task: gymnasium cannot make {env_id!r} ({str(exc).rstrip('.')}){hint}") from None


_SHOWN: set[str] = set()  # MuJoCo warning texts shown in this process


@contextlib.contextmanager
def mujoco_warnings_once():
    """MuJoCo's warnings while gymnasium compiles its models, each shown once per process (a Python warning):
    HalfCheetah's `settotalmass` deprecation was printed at every one of the hundreds of compiles of a run. Once
    per text, kept here: Python's own "once" forgets what it showed whenever a warning filter changes (a `pgr
    compare` showed it three times)."""
    import mujoco

    def show_once(text: str) -> None:
        if text not in _SHOWN:
            _SHOWN.add(text)
            warnings.warn(f"MuJoCo: {text}", RuntimeWarning, stacklevel=2)

    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(show_once)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


@functools.lru_cache(maxsize=64)
def gym_kind(env_id: str) -> str:
    """"goal" for a GoalEnv (dict observations and compute_reward), else "gym"."""
    import gymnasium as gym

    env = make_gym(env_id)[0]
    try:
        goal = isinstance(env.observation_space, gym.spaces.Dict) and hasattr(env.unwrapped, "compute_reward")
    finally:
        env.close()
    return "goal" if goal else "gym"


def vector_contract(env, robot: str, terms: list[tuple[str, int]], action_names: list[str], low, high,
                    safe_action, task_params: dict[str, float] | None = None) -> dict[str, Any]:
    """The deploy contract of a policy on named input vectors (kind "vector"): `terms` (name, dim) in the order
    the policy reads them, actions bounded by `low`/`high`, and the action the robot side falls back to."""
    return {"kind": "vector", "robot": robot, "control_dt": float(env.dt),
            "observation_terms": [{"name": name, "dim": int(dim)} for name, dim in terms],
            "action_names": list(action_names), "action_low": [float(v) for v in low],
            "action_high": [float(v) for v in high], "safe_action": [float(v) for v in safe_action],
            "task_params": {k: float(v) for k, v in (task_params or {}).items()}}


@dataclass
class GymVectorCfg:  # also the config of gym_goal's adapter
    env_id: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)  # passed to gymnasium.make


class GymWorlds:
    """N gymnasium envs of one id: what both adapters (this one and gym_goal's) start from."""

    def __init__(self, cfg: GymVectorCfg, num_envs: int, device: str, seed: int):
        if num_envs < 1:
            raise ConfigError(f"num_envs: must be >= 1, got {num_envs}")
        self.cfg, self.num_envs, self.device, self.seed = cfg, num_envs, torch.device(device), seed
        self.task = f"gym:{cfg.env_id}"
        self.envs = make_gym(cfg.env_id, cfg.kwargs, num_envs)

    def close(self) -> None:
        for env in self.envs:
            env.close()


class GymVectorEnv(GymWorlds):
    kind = "gym"

    def __init__(self, cfg: GymVectorCfg, num_envs: int = 16, device: str = "cpu", seed: int = 0,
                 backend: str = "mujoco"):
        import gymnasium as gym

        super().__init__(cfg, num_envs, device, seed)
        env = self.envs[0]
        obs_space, act_space = env.observation_space, env.action_space
        if not isinstance(obs_space, gym.spaces.Box):
            raise ConfigError(f"task: {cfg.env_id} has {type(obs_space).__name__} observations; this adapter takes "
                              f"a Box (a GoalEnv's dict observations train with --algo ddpg_her)")
        self.discrete = isinstance(act_space, gym.spaces.Discrete)
        if not self.discrete and not isinstance(act_space, gym.spaces.Box):
            raise ConfigError(f"task: {cfg.env_id} has {type(act_space).__name__} actions; this adapter takes a "
                              f"Box or a Discrete action space")
        if self.discrete:
            self.num_actions = int(act_space.n)
            self.low, self.high = np.zeros(1), np.full(1, act_space.n - 1.0)
        else:
            self.num_actions = int(np.prod(act_space.shape))
            self.low, self.high = act_space.low.reshape(-1), act_space.high.reshape(-1)
        self.action_shape = act_space.shape
        self.num_obs = {"policy": int(np.prod(obs_space.shape))}
        self.dt = float(getattr(env.unwrapped, "dt", 1.0))
        self.episode_steps = env.spec.max_episode_steps if env.spec is not None else None
        self.resets = 0
        self._obs = self.reset()

    def _stack(self, items: list) -> dict[str, torch.Tensor]:
        x = np.stack([np.asarray(o, dtype=np.float32).reshape(-1) for o in items])
        return {"policy": torch.as_tensor(x, device=self.device)}

    def _reset_one(self, i: int):
        self.resets += 1
        return self.envs[i].reset(seed=self.seed * 1_000_003 + self.resets)[0]

    def reset(self) -> dict[str, torch.Tensor]:
        self._obs = self._stack([self._reset_one(i) for i in range(self.num_envs)])
        return self._obs

    def observations(self) -> dict[str, torch.Tensor]:
        return self._obs

    def step(self, actions: torch.Tensor):
        a = actions.detach().cpu().numpy()
        obs, final, rewards, terminated, truncated = [], [], [], [], []
        for i, env in enumerate(self.envs):
            if self.discrete:
                ai = int(np.clip(np.rint(a[i, 0]), self.low[0], self.high[0]))
            else:
                ai = np.clip(a[i], self.low, self.high).astype(env.action_space.dtype).reshape(self.action_shape)
            o, r, term, trunc, _ = env.step(ai)
            final.append(o)
            if term or trunc:
                o = self._reset_one(i)
            obs.append(o)
            rewards.append(float(r))
            terminated.append(bool(term))
            truncated.append(bool(trunc and not term))
        self._obs = self._stack(obs)
        term = torch.tensor(terminated, device=self.device)
        time_outs = torch.tensor(truncated, device=self.device)
        return (self._obs, torch.tensor(rewards, dtype=torch.float32, device=self.device), term | time_outs,
                {"time_outs": time_outs, "final_obs": self._stack(final)})

    def deploy_contract(self) -> dict[str, Any]:
        """The id's observation vector in, actions a0, a1, ... (clipped to its Box; a discrete policy outputs its
        choice's index) out; the safe action is the middle of the Box (the first choice when discrete)."""
        names = ["choice"] if self.discrete else [f"a{i}" for i in range(self.num_actions)]
        safe = np.zeros(1) if self.discrete else np.clip(0.5 * (self.low + self.high), self.low, self.high)
        if not (np.isfinite(self.low).all() and np.isfinite(self.high).all()):
            raise ConfigError(f"export: {self.cfg.env_id} has unbounded actions; the deploy contract needs bounds")
        return vector_contract(self, "gym", [("observation", self.num_obs["policy"])], names, self.low, self.high,
                               safe, {"discrete_choices": float(self.num_actions) if self.discrete else 0.0})

    def state_dict(self) -> dict:
        # gymnasium envs cannot be snapshotted in general: a resumed run starts its worlds at a new episode
        return {"resets": self.resets}

    def load_state_dict(self, state: dict) -> None:
        self.resets = int(state["resets"])
        self.reset()
