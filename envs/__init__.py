"""Batched simulation: backends, robots (MJCF + preset), scenes and tasks. Installs as ``pg_robotics.envs``.

The task registry below is the one explicit registry of the project. Importing this package does not import
torch or mujoco; `make` does.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from .config import ConfigError, merge


@dataclass(frozen=True)
class TaskSpec:
    name: str
    description: str
    env: str  # "module:Class", relative to this package
    config: str  # "module:Class" of the task's config dataclass
    robot: str
    kind: str  # "locomotion" | "goal" | "gym" (a gymnasium env with vector observations)


TASKS: dict[str, TaskSpec] = {
    spec.name: spec for spec in (
        TaskSpec("quadruped-flat", "Go1-class quadruped: velocity tracking on flat ground, CaT constraints",
                 "locomotion.env:QuadrupedFlatEnv", "locomotion.config:QuadrupedFlatCfg", "go1", "locomotion"),
        TaskSpec("quadruped-rough", "Go1-class quadruped: velocity tracking on the terrain grid (slopes, stairs, "
                 "rough ground, obstacles, waves), terrain curriculum, blind policy, height scan in the critic",
                 "locomotion.env:QuadrupedRoughEnv", "locomotion.config:QuadrupedRoughCfg", "go1", "locomotion"),
        TaskSpec("quadruped-rough-perceptive", "quadruped-rough with the height scan in the policy too",
                 "locomotion.env:QuadrupedRoughEnv", "locomotion.config:QuadrupedRoughPerceptiveCfg", "go1",
                 "locomotion"),
        TaskSpec("arm-reach", "Panda-class arm: move the gripper to a goal (sparse reward, Fetch-style control)",
                 "manipulation.env:ArmGoalEnv", "manipulation.config:ArmReachCfg", "panda", "goal"),
        TaskSpec("arm-push", "Panda-class arm: push a box to a goal on the table (sparse reward)",
                 "manipulation.env:ArmGoalEnv", "manipulation.config:ArmPushCfg", "panda", "goal"),
        TaskSpec("arm-pick-place", "Panda-class arm: pick a box and place it at a goal, half of them in the air",
                 "manipulation.env:ArmGoalEnv", "manipulation.config:ArmPickPlaceCfg", "panda", "goal"),
    )
}


def _load(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), attr)


def task_spec(name: str) -> TaskSpec:
    if name.startswith("gym:"):  # any registered gymnasium env, through the adapter of its kind
        from .gym_vector import gym_kind

        if gym_kind(name[4:]) == "goal":
            return TaskSpec(name, "gymnasium GoalEnv", "gym_goal:GymGoalEnv", "gym_goal:GymGoalCfg", "gym", "goal")
        return TaskSpec(name, "gymnasium env", "gym_vector:GymVectorEnv", "gym_vector:GymVectorCfg", "gym", "gym")
    if name not in TASKS:
        raise ConfigError(f"task: unknown task {name!r} (registered: {', '.join(sorted(TASKS))})")
    return TASKS[name]


def task_config(name: str, overrides: dict | None = None):
    """The task's default config with `overrides` (a nested mapping, e.g. from YAML) applied and validated."""
    default = _load(task_spec(name).config)()
    if name.startswith("gym:"):
        default.env_id = name[4:]
    migrate = getattr(type(default), "migrate", None)  # configs saved by older versions (run directories)
    try:
        overrides = migrate(overrides) if migrate else overrides
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    cfg = merge(default, overrides or {}, "task")
    goal = getattr(cfg, "goal", None)
    if goal is not None and goal.task != default.goal.task:
        raise ConfigError(f"task.goal.task: {name} is the {default.goal.task!r} task, not {goal.task!r} "
                          f"(choose the task by name: {', '.join(n for n, t in TASKS.items() if t.kind == 'goal')})")
    return cfg


def make(name: str, num_envs: int, device: str = "cpu", seed: int = 0, backend: str = "mujoco",
         overrides: dict | None = None, cfg: Any = None):
    """Build a batched env of task `name` (config defaults, then `overrides`; or a ready `cfg`)."""
    spec = task_spec(name)
    cfg = cfg if cfg is not None else task_config(name, overrides)
    return _load(spec.env)(cfg, num_envs=num_envs, device=device, seed=seed, backend=backend)
