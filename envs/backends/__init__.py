"""Simulation backends: they step N worlds and expose state as torch tensors; tasks hold all task logic."""

from __future__ import annotations

from pathlib import Path

from ..config import ConfigError

BACKENDS = ("mujoco",)


def make_backend(name: str, model_path: Path, num_envs: int, decimation: int, **kwargs):
    if name == "mujoco":
        from .mujoco_cpu import MujocoBackend

        return MujocoBackend(model_path, num_envs, decimation, **kwargs)
    raise ConfigError(f"backend: unknown backend {name!r} (available: {', '.join(BACKENDS)})")
