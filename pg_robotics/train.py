"""Training, as a Python API and as the entry point torchrun starts on every rank.

    from pg_robotics.recipe import make_recipe
    from pg_robotics.train import train

    summary = train(make_recipe("quadruped-flat", overrides={"runner": {"time_budget_min": 5}}), run_dir="runs/a")
    summary = train(resume="runs/a", overrides={"runner": {"max_iterations": 2000}})

    torchrun --nproc_per_node=2 -m pg_robotics.train quadruped-flat --num-envs 512     # the arguments of `pgr train`
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

from pg_robotics import algorithms, runs
from pg_robotics.envs import TASKS, ConfigError
from pg_robotics.envs.backends import BACKENDS
from pg_robotics.envs.config import deep_update, parse_overrides
from pg_robotics.recipe import SECTIONS, Recipe, make_recipe


def train(recipe: Recipe | str | None = None, run_dir: str | Path | None = None, resume: str | Path | None = None,
          overrides: dict | None = None, progress: bool = True) -> dict:
    """Train `recipe` (a Recipe, or a task name for its shipped recipe) into `run_dir` (default:
    runs/<task>/<date-time>), or continue the run in `resume` from its last checkpoint. `overrides` (a nested
    mapping: task/algorithm/runner sections) go on top of either. Returns the last iteration's figures with
    `run_dir`, `iteration` and `total_env_steps`. Under torchrun every rank calls this and trains its own worlds."""
    import torch

    from pg_robotics import distributed
    from pg_robotics.envs import make
    from pg_robotics.runners import runner_class

    if resume is not None:
        run_dir = Path(resume)
        checkpoint = runs.latest_checkpoint(run_dir)
        saved = runs.read_recipe(run_dir, overrides)  # a ConfigError first if it is not a run directory
        if checkpoint is None:
            raise ConfigError(f"--resume {run_dir}: no checkpoint in {run_dir / 'checkpoints'}")
        if isinstance(recipe, (str, Recipe)) and (recipe if isinstance(recipe, str) else recipe.task) != saved.task:
            raise ConfigError(f"--resume {run_dir}: that run trained {saved.task!r}, not "
                              f"{recipe if isinstance(recipe, str) else recipe.task!r}")
        recipe = saved
    else:
        if recipe is None:
            raise ConfigError("train: give a recipe (or a task name) or a run to resume")
        if isinstance(recipe, str):
            recipe = make_recipe(recipe, overrides=overrides)
        elif overrides:
            raise ConfigError("train: overrides go into make_recipe(); give them with a task name or on resume")
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        run_dir = Path(run_dir) if run_dir else Path("runs") / recipe.task / stamp
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigError(f"--run-dir {run_dir}: exists and is not a directory")
        if (run_dir / runs.RECIPE_FILE).exists():
            raise ConfigError(f"--run-dir {run_dir}: a run is already there; continue it with --resume {run_dir} "
                              f"or choose another directory")
        checkpoint = None
    cfg = recipe.runner
    world = distributed.init(cfg.device)  # a world of one unless started by torchrun
    try:
        run_dir = distributed.broadcast_object(run_dir)  # rank 0's time stamp names the run
        sim = getattr(recipe.task_cfg, "sim", None)  # gym:<id> tasks have none
        if world.active and sim is not None and sim.nthread == 0:  # share the cores among the ranks of this node
            sim.nthread = max(1, (os.cpu_count() or 1) // world.local_size)
            cfg.threads = cfg.threads or sim.nthread
        seed = cfg.seed + world.rank  # each rank its own worlds
        torch.manual_seed(seed)
        spec = recipe.spec
        env = make(recipe.task, cfg.num_envs, device=cfg.device, seed=seed, backend=cfg.backend, cfg=recipe.task_cfg)
        eval_env = None
        try:
            if hasattr(cfg, "eval_envs"):
                eval_env = make(recipe.task, cfg.eval_envs, device=cfg.device, seed=seed + 100_000,
                                backend=cfg.backend, cfg=recipe.task_cfg)
            learner = spec.learner_class().from_env(recipe.algorithm, env, world)
            runner = runner_class(spec.runner)(env, recipe, learner, run_dir, world, eval_env)
            if checkpoint is not None:
                runner.load(checkpoint)
                if world.main:
                    print(f"resuming {run_dir} from {checkpoint.name} (iteration {runner.iteration})", file=sys.stderr)
            if world.main:
                runs.write_recipe(run_dir, recipe, world.size)
                group = f" ({world.size} rank{'s' * (world.size > 1)}, {world.backend})" if world.active else ""
                print(f"run directory: {run_dir}{group}", file=sys.stderr)
            last = runner.learn(progress=progress)
        finally:
            env.close()
            if eval_env is not None:
                eval_env.close()
    finally:
        distributed.shutdown()
    return {**last, "run_dir": str(run_dir), "iteration": runner.iteration, "total_env_steps": runner.total_steps}


# ---- command-line arguments (shared by `pgr train` and the torchrun entry point) ----------------------------------
def positive_ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def positive_int(text: str) -> int:
    values = positive_ints(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected one positive integer, got {text!r}")
    return values[0]


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def task_name(text: str) -> str:
    if text not in TASKS and not (text.startswith("gym:") and len(text) > 4):
        raise argparse.ArgumentTypeError(f"unknown task {text!r} (registered: {', '.join(sorted(TASKS))}; or "
                                         f"gym:<id> for a registered gymnasium env)")
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", type=task_name, help="a registered task, or gym:<id> for a gymnasium env")
    p.add_argument("--algo", choices=algorithms.names(),
                   help="algorithm (default: " + ", ".join(f"{a.name} for {' and '.join(a.default_for)} tasks"
                                                            for a in algorithms.ALGORITHMS.values() if a.default_for)
                   + ")")
    p.add_argument("--config", help="recipe YAML (default: the shipped configs/<task>_<algo>.yaml)")
    p.add_argument("--num-envs", type=positive_int)
    p.add_argument("--max-iterations", type=positive_int)
    p.add_argument("--time-budget", type=positive_float, metavar="MINUTES")
    p.add_argument("--seed", type=int)
    p.add_argument("--backend", choices=BACKENDS, help="simulation backend (default: the recipe's, mujoco)")
    p.add_argument("--device", help="torch device of the worlds and networks: cpu or cuda (default: cpu)")
    p.add_argument("--run-dir", help="where to write the run (default: runs/<task>/<date-time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe field: task.*, algorithm.* or runner.*")
    p.add_argument("--no-progress", action="store_true")


def from_args(args) -> dict:
    """`train()` from parsed `pgr train` arguments."""
    overrides = parse_overrides(args.set)
    for key in overrides:
        if key not in SECTIONS:
            raise ConfigError(f"--set {key}: unknown section (known: {', '.join(SECTIONS)})")
    flags = {"num_envs": args.num_envs, "max_iterations": args.max_iterations, "seed": args.seed,
             "time_budget_min": args.time_budget, "backend": args.backend, "device": args.device}
    overrides = deep_update(overrides, {"runner": {k: v for k, v in flags.items() if v is not None}})
    if args.algo:
        overrides["algo"] = args.algo
    progress = not args.no_progress
    if args.resume:
        return train(args.task, resume=args.resume, overrides=overrides, progress=progress)
    return train(make_recipe(args.task, file=args.config, overrides=overrides), run_dir=args.run_dir,
                 progress=progress)


def main(argv: list[str] | None = None) -> int:
    """The torchrun entry point: `python -m pg_robotics.train TASK [pgr train options]` on every rank."""
    from pg_robotics.runners import Stopped

    parser = argparse.ArgumentParser(prog="python -m pg_robotics.train")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        summary = from_args(args)
    except ConfigError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except Stopped as exc:
        return 128 + exc.signum
    if int(os.environ.get("RANK", "0")) == 0:
        print(done_line(summary))
    return 0


def done_line(summary: dict) -> str:
    score = (f"success rate {summary['success_rate']:.3f}" if "success_rate" in summary else
             f"mean return {summary.get('mean_return', 0.0):.3f}")
    return (f"done: iteration {summary['iteration']}, {summary['total_env_steps']} env steps, {score}; "
            f"curves: {Path(summary['run_dir']) / 'learning_curves.png'}")


if __name__ == "__main__":
    sys.exit(main())
