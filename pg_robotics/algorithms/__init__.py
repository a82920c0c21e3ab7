"""The algorithm registry: the one place that names algorithms.

Each entry binds an algorithm's config dataclass and learner class (one file each in this folder), the runner
that trains it (`on_policy`: rollouts of `num_steps_per_env` steps, then an update; `off_policy`: whole episodes
into a replay buffer, then gradient steps) and what it needs from a task (`vector`: observations
{"policy", optional "critic"} and a dense reward; `goal`: gymnasium GoalEnv observations and `compute_reward`).

A learner is built as `Learner(cfg, env, world)` and offers, whatever the algorithm:
    act_inference(obs) -> actions       deterministic actions on the env's observations (eval, play)
    inference_module() -> nn.Module     flat input [B, num_inputs] -> actions, normalizers inside (export)
    inference_input(obs) -> tensor      the env's observations as that flat input
    state_dict() / load_state_dict()    everything a checkpoint keeps
    digest_module() -> nn.Module        whose parameters must agree on every rank
and the calls of its runner's collect/update parts (see pg_robotics/runners/).

Adding an algorithm = one new file here + one entry below. Importing this module does not import torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from pg_robotics.envs.config import ConfigError


@dataclass(frozen=True)
class Algorithm:
    name: str
    summary: str
    module: str  # pg_robotics.algorithms.<module>: holds `config` and `learner`
    config: str  # the config dataclass's name
    learner: str  # the learner class's name
    runner: str  # "on_policy" | "off_policy" (goal episodes, HER) | "replay" (transitions) | "population"
    needs: str  # what it needs from a task: "vector" | "goal"
    default_for: tuple[str, ...] = ()  # the task kinds ("locomotion", "gym", "goal") it trains without --algo

    def _attr(self, name: str) -> Any:
        return getattr(importlib.import_module(f"{__name__}.{self.module}"), name)

    def config_class(self) -> type:
        return self._attr(self.config)

    def learner_class(self) -> type:
        return self._attr(self.learner)


ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm("ppo", "PPO: clipped surrogate, GAE, adaptive learning rate, CaT-aware returns",
              "ppo", "PPOCfg", "PPO", "on_policy", "vector", default_for=("locomotion", "gym")),
    Algorithm("ppo_kl", "PPO with the adaptive KL penalty instead of the clipped ratio (surrogate: kl_penalty)",
              "ppo", "PPOKLCfg", "PPO", "on_policy", "vector"),
    Algorithm("a2c", "A2C: advantage actor-critic, T-step returns, one gradient step per rollout",
              "a2c", "A2CCfg", "A2C", "on_policy", "vector"),
    Algorithm("reinforce", "REINFORCE: reward-to-go policy gradient with a learned state-value baseline",
              "reinforce", "ReinforceCfg", "Reinforce", "on_policy", "vector"),
    Algorithm("npg", "natural policy gradient: Fisher-vector products, conjugate gradient, a KL-sized step",
              "npg", "NPGCfg", "NPG", "on_policy", "vector"),
    Algorithm("trpo", "TRPO: the natural-gradient step with a KL-constrained backtracking line search",
              "trpo", "TRPOCfg", "TRPO", "on_policy", "vector"),
    Algorithm("sac", "SAC: tanh-Gaussian policy through twin learned Qs, entropy weight tuned to a target",
              "sac", "SACCfg", "SAC", "replay", "vector"),
    Algorithm("svg0", "SVG(0): the reparameterized policy gradient through one learned Q, fixed noise, no entropy",
              "sac", "SVG0Cfg", "SAC", "replay", "vector"),
    Algorithm("td3", "TD3: deterministic actor, twin critics, target smoothing, delayed actor updates",
              "td3", "TD3Cfg", "TD3", "replay", "vector"),
    Algorithm("dqn", "DQN: replay memory, target network, epsilon-greedy, for discrete actions",
              "dqn", "DQNCfg", "DQN", "replay", "vector"),
    Algorithm("cem", "CEM: the cross-entropy method on the policy's parameters, the population in one batched env",
              "cem", "CEMCfg", "CEM", "population", "vector"),
    Algorithm("es", "ES: antithetic Gaussian perturbations of the policy's parameters, ranked returns, Adam",
              "es", "ESCfg", "ES", "population", "vector"),
    Algorithm("ddpg_her", "DDPG with hindsight experience replay for sparse-reward goal tasks",
              "ddpg_her", "DDPGCfg", "DDPG", "off_policy", "goal", default_for=("goal",)),
    Algorithm("sac_her", "SAC with hindsight experience replay for sparse-reward goal tasks",
              "her_variants", "SACHERCfg", "SACHER", "off_policy", "goal"),
    Algorithm("td3_her", "TD3 with hindsight experience replay for sparse-reward goal tasks",
              "her_variants", "TD3HERCfg", "TD3HER", "off_policy", "goal"),
)}

# what a task kind offers, for the `needs` check
TASK_OFFERS = {"locomotion": "vector", "gym": "vector", "goal": "goal"}


def names() -> list[str]:
    return list(ALGORITHMS)


def get(name: str) -> Algorithm:
    if name not in ALGORITHMS:
        raise ConfigError(f"algo: unknown algorithm {name!r} (known: {', '.join(ALGORITHMS)})")
    return ALGORITHMS[name]


def default(task_kind: str) -> Algorithm:
    """The algorithm a task of this kind trains with when none is named."""
    return next(a for a in ALGORITHMS.values() if task_kind in a.default_for)


def for_task(name: str, task_kind: str) -> str:
    """The algorithm `name` trains on a task of this kind: on a goal task an off-policy method named without its
    HER form (`sac`, `td3`) is that form (`sac_her`, `td3_her`), so `--algo sac` trains arm-push; else `name`."""
    her = f"{name}_her"
    if TASK_OFFERS[task_kind] == "goal" and her in ALGORITHMS and (name not in ALGORITHMS or get(name).needs != "goal"):
        return her
    return name


def check(algo: Algorithm, task: str, task_kind: str) -> None:
    """A ConfigError naming `algo` when the task cannot offer what the algorithm needs."""
    if TASK_OFFERS[task_kind] == algo.needs:
        return
    fits = ", ".join(a.name for a in ALGORITHMS.values() if a.needs == TASK_OFFERS[task_kind])
    if algo.needs == "goal":
        raise ConfigError(f"algo: {algo.name} needs a goal task (dict observations, compute_reward); {task} is not "
                          f"one (algorithms for it: {fits})")
    raise ConfigError(f"algo: {task} is a goal task with a sparse reward; {algo.name} needs a dense-reward task "
                      f"(train it with {fits})")
