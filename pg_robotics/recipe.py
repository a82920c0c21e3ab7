"""A recipe: the task, the algorithm, and three validated configs (task, algorithm, runner). It is built from the
defaults of the task and algorithm, then a recipe file (configs/<task>_<algo>.yaml, shipped inside the package),
then overrides (a nested mapping, as `--set` gives); every key is validated and an error names its dotted field.

    recipe = make_recipe("quadruped-flat", overrides={"runner": {"max_iterations": 10}})

Importing this module does not import torch."""

from __future__ import annotations

import dataclasses
import importlib.resources
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pg_robotics import algorithms
from pg_robotics.envs import ConfigError, task_config, task_spec
from pg_robotics.envs.config import deep_update, load_yaml, merge, to_dict
from pg_robotics.runners import CONFIGS as RUNNER_CONFIGS

SECTIONS = ("algo", "task", "algorithm", "runner")
# runner defaults of a task kind, below the recipe file: gymnasium envs step one by one in Python, so a few worlds
KIND_RUNNER_DEFAULTS = {"gym": {"num_envs": 16, "save_interval": 10}}
# the recipes shipped inside the package: the repository's configs/ folder, installed as pg_robotics.configs
CONFIGS = Path(str(importlib.resources.files("pg_robotics.configs")))


@dataclass
class Recipe:
    task: str  # the task's registered name (or gym:<id>)
    algo: str  # the algorithm's registered name
    task_cfg: Any
    algorithm: Any
    runner: Any

    @property
    def spec(self) -> algorithms.Algorithm:
        return algorithms.get(self.algo)

    @property
    def kind(self) -> str:
        """The task's kind: "locomotion" or "goal"."""
        return task_spec(self.task).kind

    def to_dict(self) -> dict:
        """As written into a run directory's config.yaml (read back by `from_saved`)."""
        return {"task_name": self.task, "algo": self.algo, "task": to_dict(self.task_cfg),
                "algorithm": to_dict(self.algorithm), "runner": to_dict(self.runner)}


def default_file(task: str, algo: str | None = None) -> Path | None:
    """The shipped recipe of a task and algorithm (default: the task's default algorithm), if there is one."""
    algo = algo or algorithms.default(task_spec(task).kind).name
    path = CONFIGS / f"{task.replace('-', '_')}_{algo}.yaml"
    return path if path.is_file() else None


def make_recipe(task: str, algo: str | None = None, file: str | Path | None = None,
                overrides: dict | None = None) -> Recipe:
    """Defaults < recipe file (default: the shipped one for the task and algorithm; for an algorithm without one,
    the task and runner sections and the networks of the task's shipped recipe, `borrowed`) < overrides. `algo`
    (or an `algo` key in the overrides or the file) picks the algorithm; default: the task kind's."""
    kind = task_spec(task).kind
    algo = algo or (overrides or {}).get("algo")
    algo = algorithms.for_task(algo, kind) if algo else algo
    path = Path(file) if file else default_file(task, algo)
    data = load_yaml(path) if path else {}
    if not file and path is None and algo and default_file(task) is not None:
        data = borrowed(load_yaml(default_file(task)), algo)
    return resolve(task, deep_update(data, {**(overrides or {}), **({"algo": algo} if algo else {})}), kind)


# what an algorithm without a recipe of its own for a task takes from the task's shipped recipe: the same task and
# runner, and the same networks where it has them (so `pgr compare` runs every algorithm on the same problem)
BORROWED_ALGORITHM_KEYS = ("actor_hidden", "critic_hidden", "activation", "noise_std_type", "init_noise_std")


def borrowed(data: dict, algo: str) -> dict:
    fields = {f.name for f in dataclasses.fields(algorithms.get(algo).config_class())}
    return {"task": data.get("task") or {}, "runner": data.get("runner") or {},
            "algorithm": {k: v for k, v in (data.get("algorithm") or {}).items()
                          if k in BORROWED_ALGORITHM_KEYS and k in fields}}


def from_saved(data: dict, overrides: dict | None = None) -> Recipe:
    """A recipe saved in a run directory (`Recipe.to_dict`), with `overrides` on top."""
    data = dict(data)
    data.pop("git_commit", None)
    data.pop("world_size", None)
    task = data.pop("task_name")
    # runs written before the algorithm was recorded trained their task kind's default
    data.setdefault("algo", algorithms.default(task_spec(task).kind).name)
    saved_algo = data["algo"]
    if overrides and algorithms.for_task(overrides.get("algo", saved_algo), task_spec(task).kind) != saved_algo:
        raise ConfigError(f"--algo {overrides['algo']}: this run was trained with {saved_algo}")
    return resolve(task, deep_update(data, overrides or {}), task_spec(task).kind)


def resolve(task: str, data: dict, kind: str) -> Recipe:
    unknown = [k for k in data if k not in SECTIONS]
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section (known: {', '.join(SECTIONS)})")
    algo = algorithms.get(algorithms.for_task(data["algo"], kind)) if data.get("algo") else algorithms.default(kind)
    algorithms.check(algo, task, kind)
    runner = deep_update(KIND_RUNNER_DEFAULTS.get(kind, {}), data.get("runner") or {})
    return Recipe(task, algo.name, task_config(task, data.get("task")),
                  merge(algo.config_class()(), data.get("algorithm"), "algorithm"),
                  merge(RUNNER_CONFIGS[algo.runner](), runner, "runner"))
