"""Runners: one loop skeleton (`base.py`) with three ways to fill an iteration (`on_policy.py`: a rollout then an
update; `off_policy.py`: whole goal episodes into a HER buffer, then gradient steps; `replay.py`: a few steps of
every world into a transition buffer, then gradient steps; `population.py`: one episode of every candidate of a
parameter-space search, then its update). An algorithm's registry entry
says which one trains it. The runner configs live here, apart from the loops, so that reading a recipe imports no
torch."""

from __future__ import annotations

import importlib
import signal
from dataclasses import dataclass


class Stopped(KeyboardInterrupt):
    """Training stopped on a signal after saving a checkpoint; `signum` is the signal (SIGINT or SIGTERM)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


@dataclass
class RunnerCfg:
    num_envs: int = 1024
    max_iterations: int = 1500
    time_budget_min: float = 0.0  # 0: no limit
    max_env_steps: int = 0  # 0: no limit; else the run ends with the first iteration that reaches it
    save_interval: int = 50
    seed: int = 0
    device: str = "cpu"
    backend: str = "mujoco"
    threads: int = 0  # torch threads for the update; 0: all cores (stepping always uses 1)

    def __post_init__(self):
        for name in ("num_envs", "max_iterations", "save_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.time_budget_min < 0 or self.max_env_steps < 0:
            raise ValueError(f"time_budget_min, max_env_steps: must be >= 0, got {self.time_budget_min}, "
                             f"{self.max_env_steps}")
        if self.threads < 0:
            raise ValueError(f"threads: must be >= 0, got {self.threads}")


@dataclass
class OffPolicyRunnerCfg(RunnerCfg):
    num_envs: int = 16  # worlds stepped together; one episode of each per cycle
    max_iterations: int = 100000  # cycles
    save_interval: int = 200
    eval_envs: int = 100  # worlds of the deterministic evaluation episode
    eval_interval: int = 10  # cycles between evaluations

    def __post_init__(self):
        super().__post_init__()
        for name in ("eval_envs", "eval_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")


CONFIGS = {"on_policy": RunnerCfg, "off_policy": OffPolicyRunnerCfg, "replay": RunnerCfg, "population": RunnerCfg}


def runner_class(kind: str) -> type:
    """The runner of an algorithm's `runner` kind (imports torch)."""
    return importlib.import_module(f"{__name__}.{kind}").RUNNER
