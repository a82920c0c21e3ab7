"""The run directory: everything that reads or writes one lives here.

    config.yaml        the resolved recipe (task, algorithm, runner), the git commit and the world size
    checkpoints/       model_<iteration>.pt, written atomically (temp file + fsync + rename), loadable with
                       weights_only=True; under torch.distributed, rank_<N>/model_<iteration>.pt holds rank N's own
                       worlds and RNG states; off-policy runs keep their replay buffer once, in replay_buffer.pt
    events.*           TensorBoard
    summary.json       the last iteration's figures, rewritten atomically after each checkpoint
    learning_curves.png

`load_agent` rebuilds a trained agent (task env + learner with the checkpoint's weights) for eval, export and play,
whatever the algorithm."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pg_robotics.envs import ConfigError
from pg_robotics.envs.config import load_yaml
from pg_robotics.recipe import Recipe, from_saved

RECIPE_FILE = "config.yaml"


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def atomic_write(path: Path, write) -> None:
    """`write(file)` into a temporary file beside `path`, flushed to disk, then renamed over `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=1))


def atomic_save(obj: Any, path: Path) -> None:
    import torch

    atomic_write(path, lambda f: torch.save(obj, f))


def write_recipe(run_dir: Path, recipe: Recipe, world_size: int = 1) -> None:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = {**recipe.to_dict(), "git_commit": git_commit(), "world_size": world_size}
    atomic_write_text(run_dir / RECIPE_FILE, yaml.safe_dump(data, sort_keys=False))


def saved_recipe(run_dir: Path) -> dict:
    """The recipe mapping saved in a run directory (a ConfigError if it is not one)."""
    path = Path(run_dir) / RECIPE_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no {RECIPE_FILE} there (not a run directory)")
    return load_yaml(path)


def read_recipe(run_dir: Path, overrides: dict | None = None) -> Recipe:
    return from_saved(saved_recipe(run_dir), overrides)


def run_commit(run_dir: Path) -> str:
    """The git commit a run was trained at."""
    return str(saved_recipe(run_dir).get("git_commit", "unknown"))


def checkpoints(run_dir: Path, every: int = 1) -> list[Path]:
    """The run's checkpoints, oldest first; every `every`-th of them counted back from the last (always in)."""
    found = sorted((Path(run_dir) / "checkpoints").glob("model_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    return found[::-1][::every][::-1]


def latest_checkpoint(run_dir: Path) -> Path | None:
    ckpts = checkpoints(run_dir)
    return ckpts[-1] if ckpts else None


def rank_path(checkpoint: Path, rank: int) -> Path:
    """Where rank > 0 keeps its own worlds and RNG states for `checkpoint`."""
    return checkpoint if rank == 0 else checkpoint.parent / f"rank_{rank}" / checkpoint.name


def load_checkpoint(run_dir: Path, checkpoint: Path | None = None) -> tuple[dict, Path]:
    """(state, path) of `checkpoint` (default: the run's latest), loaded to the CPU with weights_only=True."""
    import torch

    checkpoint = Path(checkpoint) if checkpoint else latest_checkpoint(run_dir)
    if checkpoint is None or not checkpoint.is_file():
        raise ConfigError(f"{run_dir}: no checkpoint found" if checkpoint is None else f"--checkpoint: no file {checkpoint}")
    return torch.load(checkpoint, map_location="cpu", weights_only=True), checkpoint


@dataclass
class Agent:
    """A trained agent: its recipe, an env of its task and the learner holding the checkpoint's weights."""
    recipe: Recipe
    env: Any
    learner: Any
    checkpoint: Path
    iteration: int
    train_seconds: float

    def act(self, obs):
        """Deterministic actions."""
        return self.learner.act_inference(obs)

    def close(self) -> None:
        self.env.close()


def load_agent(run_dir: Path, checkpoint: Path | None = None, num_envs: int = 1, seed: int = 1,
               task_overrides: dict | None = None, backend: str = "mujoco", device: str = "cpu") -> Agent:
    """The run's agent on `num_envs` worlds of its task (the recipe's task config with `task_overrides` on top),
    on C MuJoCo on the CPU unless `backend`/`device` say otherwise, whatever the run trained on."""
    import torch

    from pg_robotics.envs import make

    run_dir = Path(run_dir)
    recipe = read_recipe(run_dir, {"task": task_overrides} if task_overrides else None)
    state, checkpoint = load_checkpoint(run_dir, checkpoint)
    torch.set_num_threads(1)
    env = make(recipe.task, num_envs, seed=seed, cfg=recipe.task_cfg, backend=backend, device=device)
    try:
        learner = recipe.spec.learner_class().from_env(recipe.algorithm, env)
        learner.load_state_dict(state["algorithm"])
    except BaseException:
        env.close()
        raise
    return Agent(recipe, env, learner, checkpoint, int(state["iteration"]), float(state["elapsed"]))
