"""Simulation backends: they step N worlds and expose state as torch tensors; tasks hold all task logic.

`mujoco`: C MuJoCo on a CPU thread pool. `warp`: MuJoCo Warp, on a GPU (`device="cuda"`) or, slowly, the CPU.
`isaacgym`: Isaac Gym's tensor API (needs NVIDIA's isaacgym package). All of them follow `base.Backend`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import ConfigError
from .base import Backend

BACKENDS = ("mujoco", "warp", "isaacgym")
INSTALL = {
    "warp": "pip install 'pg_robotics[gpu]' (mujoco-warp and warp-lang)",
    "isaacgym": "download Isaac Gym Preview 4 from https://developer.nvidia.com/isaac-gym and "
                "pip install -e isaacgym/python (an NVIDIA GPU and driver; NVIDIA builds Preview 4 for Python 3.6-3.8, "
                "older than this package needs, so it takes a build of its bindings for your Python)",
}


def check_device(name: str, device: str) -> None:
    """A ConfigError naming the field when `device` cannot run backend `name` here."""
    import torch

    if name not in BACKENDS:
        raise ConfigError(f"backend: unknown backend {name!r} (available: {', '.join(BACKENDS)})")
    kind = str(device).split(":")[0]
    if kind not in ("cpu", "cuda"):
        raise ConfigError(f"device: expected cpu or cuda (cuda:N), got {device!r}")
    if name == "mujoco" and kind != "cpu":
        raise ConfigError(f"device: the mujoco backend runs on the CPU, got {device!r} "
                          f"(for a GPU use --backend warp --device cuda)")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} asked for, but torch sees no CUDA GPU here (use --device cpu)")


def make_backend(name: str, model: Path | Any, num_envs: int, decimation: int, device: str = "cpu",
                 **kwargs) -> Backend:
    """Backend `name` stepping `num_envs` worlds of `model`: an MJCF file or a composed `mujoco.MjSpec` (then
    `model_path=` names it, e.g. the robot's MJCF)."""
    check_device(name, device)
    if name == "mujoco":
        from .mujoco_cpu import MujocoBackend

        return MujocoBackend(model, num_envs, decimation, **kwargs)
    try:
        if name == "warp":
            from .warp import WarpBackend as cls
        else:
            from .isaacgym import IsaacGymBackend as cls  # type: ignore[no-redef]
    except ImportError as e:
        raise ConfigError(f"backend: {name!r} needs a package that is not installed ({e}); {INSTALL[name]}") from e
    return cls(model, num_envs, decimation, device=device, **kwargs)
