"""`pgr train`: build the recipe (defaults < recipe file < CLI flags < --set), the env and the runner; train."""

from __future__ import annotations

import datetime
import os
import sys
from pathlib import Path

import pg_robotics
from pg_robotics.envs import ConfigError, make, task_config, task_spec
from pg_robotics.envs.config import deep_update, load_yaml, merge, parse_overrides

CONFIGS = Path(pg_robotics.__file__).resolve().parent.parent / "configs"
SECTIONS = ("algo", "task", "algorithm", "runner")
ALGOS = ("ppo", "ddpg_her")


def default_algo(task: str) -> str:
    """PPO for locomotion, DDPG+HER for goal tasks (ours and gymnasium GoalEnvs)."""
    return "ppo" if task_spec(task).kind == "locomotion" else "ddpg_her"


def recipe_algo(task: str, recipe: dict) -> str:
    algo = recipe.get("algo") or default_algo(task)
    if algo not in ALGOS:
        raise ConfigError(f"algo: unknown algorithm {algo!r} (known: {', '.join(ALGOS)})")
    if algo == "ppo" and task_spec(task).kind == "goal":
        raise ConfigError(f"algo: {task} is a goal task with a sparse reward; train it with ddpg_her")
    if algo == "ddpg_her" and task_spec(task).kind != "goal":
        raise ConfigError(f"algo: ddpg_her needs a goal task (dict observations, compute_reward); {task} is not one")
    return algo


def default_recipe(task: str, algo: str | None = None) -> Path | None:
    path = CONFIGS / f"{task.replace('-', '_')}_{algo or default_algo(task)}.yaml"
    return path if path.is_file() else None


def read_run(run_dir: Path) -> tuple[str, dict]:
    """The task name and resolved recipe saved in a run directory."""
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir}: no config.yaml there (not a run directory)")
    recipe = load_yaml(run_dir / "config.yaml")
    recipe.pop("git_commit", None)
    recipe.pop("world_size", None)
    recipe.setdefault("algo", "ppo")  # runs written before DDPG+HER existed
    return recipe.pop("task_name"), recipe


def resolve_recipe(task: str, recipe: dict, overrides: dict):
    """Validated (task_cfg, algo_cfg, runner_cfg) from a recipe mapping and CLI overrides; the algorithm is the
    recipe's `algo` (default: `default_algo(task)`)."""
    from pg_robotics.ddpg import DDPGCfg
    from pg_robotics.offpolicy_runner import OffPolicyRunnerCfg
    from pg_robotics.ppo import PPOCfg
    from pg_robotics.runner import RunnerCfg

    data = deep_update(recipe, overrides)
    unknown = [k for k in data if k not in SECTIONS]
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section (known: {', '.join(SECTIONS)})")
    algo_cfg, runner_cfg = {"ppo": (PPOCfg, RunnerCfg), "ddpg_her": (DDPGCfg, OffPolicyRunnerCfg)}[
        recipe_algo(task, data)]
    return (task_config(task, data.get("task")), merge(algo_cfg(), data.get("algorithm"), "algorithm"),
            merge(runner_cfg(), data.get("runner"), "runner"))


def run_from_cli(args) -> None:
    if args.nproc and args.nproc > 1:
        return launch(args.nproc, args.argv)
    import torch

    from pg_robotics import distributed
    from pg_robotics.offpolicy_runner import OffPolicyRunner
    from pg_robotics.runner import OnPolicyRunner, latest_checkpoint

    overrides = parse_overrides(args.set)
    for key in overrides:
        if key not in SECTIONS:
            raise ConfigError(f"--set {key}: unknown section (known: {', '.join(SECTIONS)})")
    flags = {"num_envs": args.num_envs, "max_iterations": args.max_iterations, "seed": args.seed,
             "time_budget_min": args.time_budget, "backend": args.backend, "device": args.device}
    overrides = deep_update(overrides, {"runner": {k: v for k, v in flags.items() if v is not None}})
    if args.algo:
        overrides["algo"] = args.algo
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
        path = Path(args.config) if args.config else default_recipe(task, args.algo)
        recipe = load_yaml(path) if path else {}
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / task / stamp
        if (run_dir / "config.yaml").exists():
            raise ConfigError(f"--run-dir {run_dir}: a run is already there; continue it with --resume {run_dir} "
                              f"or choose another directory")
    task_cfg, algo_cfg, runner_cfg = resolve_recipe(task, recipe, overrides)
    algo = recipe_algo(task, deep_update(recipe, overrides))
    if args.resume and algo != recipe["algo"]:
        raise ConfigError(f"--algo {algo}: {run_dir} was trained with {recipe['algo']}")
    world = distributed.init(runner_cfg.device)  # a world of one unless started by torchrun
    try:
        run_dir = distributed.broadcast_object(run_dir)  # rank 0's time stamp names the run
        sim = getattr(task_cfg, "sim", None)  # gym:<id> tasks have none
        if world.active and sim is not None and sim.nthread == 0:  # share the cores among the ranks of this node
            task_cfg.sim.nthread = max(1, (os.cpu_count() or 1) // world.local_size)
            runner_cfg.threads = runner_cfg.threads or task_cfg.sim.nthread
        seed = runner_cfg.seed + world.rank  # each rank its own worlds
        torch.manual_seed(seed)
        env = make(task, runner_cfg.num_envs, device=runner_cfg.device, seed=seed, backend=runner_cfg.backend,
                   cfg=task_cfg)
        if algo == "ppo":
            runner = OnPolicyRunner(env, task, task_cfg, algo_cfg, runner_cfg, run_dir, world)
        else:
            eval_env = make(task, runner_cfg.eval_envs, device=runner_cfg.device, seed=seed + 100_000,
                            backend=runner_cfg.backend, cfg=task_cfg)
            runner = OffPolicyRunner(env, task, task_cfg, algo_cfg, runner_cfg, run_dir, world, eval_env)
        if args.resume:
            runner.load(ckpt)
            if world.main:
                print(f"resuming {run_dir} from {ckpt.name} (iteration {runner.iteration})", file=sys.stderr)
        runner.write_config(algo)
        if world.main:
            ranks = f" ({world.size} rank{'s' * (world.size > 1)}, {world.backend})" if world.active else ""
            print(f"run directory: {run_dir}{ranks}", file=sys.stderr)
        try:
            last = runner.learn(progress=not args.no_progress)
        finally:
            env.close()
            if algo != "ppo":
                runner.eval_env.close()
    finally:
        distributed.shutdown()
    if world.main:
        score = (f"mean return {last.get('mean_return', 0):.3f}" if algo == "ppo" else
                 f"success rate {last.get('success_rate', 0):.3f}")
        print(f"done: iteration {runner.iteration}, {runner.total_steps} env steps, {score}; "
              f"curves: {run_dir / 'learning_curves.png'}")


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
