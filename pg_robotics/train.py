"""`pgr train`: build the recipe (defaults < recipe file < CLI flags < --set), the env and the runner; train."""

from __future__ import annotations

import datetime
import os
import sys
from pathlib import Path

import pg_robotics
from pg_robotics.envs import ConfigError, make, task_config
from pg_robotics.envs.config import deep_update, load_yaml, merge, parse_overrides

CONFIGS = Path(pg_robotics.__file__).resolve().parent.parent / "configs"
SECTIONS = ("task", "algorithm", "runner")


def default_recipe(task: str) -> Path | None:
    path = CONFIGS / f"{task.replace('-', '_')}_ppo.yaml"
    return path if path.is_file() else None


def read_run(run_dir: Path) -> tuple[str, dict]:
    """The task name and resolved recipe saved in a run directory."""
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir}: no config.yaml there (not a run directory)")
    recipe = load_yaml(run_dir / "config.yaml")
    recipe.pop("git_commit", None)
    recipe.pop("world_size", None)
    return recipe.pop("task_name"), recipe


def resolve_recipe(task: str, recipe: dict, overrides: dict):
    """Validated (task_cfg, algo_cfg, runner_cfg) from a recipe mapping and CLI overrides."""
    from pg_robotics.ppo import PPOCfg
    from pg_robotics.runner import RunnerCfg

    data = deep_update(recipe, overrides)
    unknown = [k for k in data if k not in SECTIONS]
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section (known: {', '.join(SECTIONS)})")
    return (task_config(task, data.get("task")), merge(PPOCfg(), data.get("algorithm"), "algorithm"),
            merge(RunnerCfg(), data.get("runner"), "runner"))


def run_from_cli(args) -> None:
    if args.nproc and args.nproc > 1:
        return launch(args.nproc, args.argv)
    import torch

    from pg_robotics import distributed
    from pg_robotics.runner import OnPolicyRunner, latest_checkpoint

    overrides = parse_overrides(args.set)
    for key in overrides:
        if key not in SECTIONS:
            raise ConfigError(f"--set {key}: unknown section (known: {', '.join(SECTIONS)})")
    flags = {"num_envs": args.num_envs, "max_iterations": args.max_iterations, "seed": args.seed,
             "time_budget_min": args.time_budget}
    overrides = deep_update(overrides, {"runner": {k: v for k, v in flags.items() if v is not None}})
    if args.resume:
        run_dir = Path(args.resume)
        task, recipe = read_run(run_dir)
        ckpt = latest_checkpoint(run_dir)
        if ckpt is None:
            raise ConfigError(f"--resume {run_dir}: no checkpoint in {run_dir / 'checkpoints'}")
        if task != args.task:
            raise ConfigError(f"--resume {run_dir}: that run trained {task!r}, not {args.task!r}")
    else:
        task = args.task
        path = Path(args.config) if args.config else default_recipe(task)
        recipe = load_yaml(path) if path else {}
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / task / stamp
        if (run_dir / "config.yaml").exists():
            raise ConfigError(f"--run-dir {run_dir}: a run is already there; continue it with --resume {run_dir} "
                              f"or choose another directory")
    task_cfg, algo_cfg, runner_cfg = resolve_recipe(task, recipe, overrides)
    world = distributed.init(runner_cfg.device)  # a world of one unless started by torchrun
    try:
        run_dir = distributed.broadcast_object(run_dir)  # rank 0's time stamp names the run
        if world.active and task_cfg.sim.nthread == 0:  # share the cores among the ranks of this node
            task_cfg.sim.nthread = max(1, (os.cpu_count() or 1) // world.local_size)
            runner_cfg.threads = runner_cfg.threads or task_cfg.sim.nthread
        seed = runner_cfg.seed + world.rank  # each rank its own worlds
        torch.manual_seed(seed)
        env = make(task, runner_cfg.num_envs, device=runner_cfg.device, seed=seed, backend=runner_cfg.backend,
                   cfg=task_cfg)
        runner = OnPolicyRunner(env, task, task_cfg, algo_cfg, runner_cfg, run_dir, world)
        if args.resume:
            runner.load(ckpt)
            if world.main:
                print(f"resuming {run_dir} from {ckpt.name} (iteration {runner.iteration})", file=sys.stderr)
        runner.write_config()
        if world.main:
            print(f"run directory: {run_dir}" + (f" ({world.size} ranks)" if world.active else ""), file=sys.stderr)
        try:
            last = runner.learn(progress=not args.no_progress)
        finally:
            env.close()
    finally:
        distributed.shutdown()
    if world.main:
        print(f"done: iteration {runner.iteration}, {runner.total_steps} env steps, "
              f"mean return {last.get('mean_return', 0):.3f}; curves: {run_dir / 'learning_curves.png'}")


def launch(nproc: int, argv: list[str]) -> None:
    """`pgr train --nproc N ...`: the same command under torchrun, one process per rank on this machine."""
    import subprocess

    argv = argv[1:] if argv and argv[0] == "train" else argv
    rest, skip = [], False
    for arg in argv:  # drop --nproc N / --nproc=N: torchrun's own parser would take it, and ranks must not relaunch
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            rest.append(arg)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "pg_robotics.train", *rest]
    code = subprocess.call(cmd)
    if code:
        raise SystemExit(code)


if __name__ == "__main__":  # torchrun --nproc_per_node=2 -m pg_robotics.train quadruped-flat ...
    from pg_robotics.cli import main

    sys.exit(main(["train", *sys.argv[1:]]))
