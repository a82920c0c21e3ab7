"""`pgr`: the command line, a thin leaf over the Python API (nothing imports it). Bad input exits with code 2 and a
message naming the argument or config field. Packages add commands through the `pg_robotics.commands` entry
point (the ROS 2 package brings `pgr sim2sim`, `pgr ros` and `pgr bench faults`): an object with
`add_parsers(subparsers, bench_subparsers)` and `raw(argv) -> exit code | None` (for commands that take their
arguments unparsed)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from importlib.metadata import entry_points
from pathlib import Path

from pg_robotics import algorithms
from pg_robotics.bench_train import ANCHOR_DONES
from pg_robotics.deploy.contract import ContractError
from pg_robotics.envs import TASKS, ConfigError
from pg_robotics.envs.backends import BACKENDS
from pg_robotics.envs.config import deep_update, load_yaml, parse_overrides
from pg_robotics.train import add_arguments as add_train_arguments
from pg_robotics.train import positive_float, positive_int, positive_ints, task_name

# commands other packages bring, and how to get them when they are missing
PLUGIN_HINTS = {"sim2sim": "pip install 'pg_robotics[ros]' (the ROS 2 package)",
                "ros": "pip install 'pg_robotics[ros]' (the ROS 2 package)"}


def positive_ints_or_zero(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers >= 0 separated by commas, got {text!r}") from None
    if min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected integers >= 0, got {text!r}")
    return values


def _command(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three numbers vx,vy,wz (m/s, m/s, rad/s), got {text!r}")
    return values  # type: ignore[return-value]


def plugins() -> list:
    return [ep.load() for ep in entry_points(group="pg_robotics.commands")]


def build_parser(extra: list) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pgr", description="pg_robotics: train in simulation, deploy to a robot.")
    sub = p.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="list the registered tasks and algorithms")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(handler=cmd_list)

    bench = sub.add_parser("bench", help="measure throughput")
    bsub = bench.add_subparsers(dest="bench", required=True)
    sim = bsub.add_parser("sim", help="step a task with random actions; report env and physics steps/s")
    sim.add_argument("--task", type=lambda v: [task_name(t) for t in v.split(",")], default=["quadruped-flat"],
                     help="a task, or several in one run: quadruped-flat,quadruped-rough (then their ratio)")
    sim.add_argument("--backend", choices=BACKENDS, default="mujoco")
    sim.add_argument("--device", default="cpu")
    sim.add_argument("--num-envs", type=positive_ints, default=[1024], help="one count, or several: 1024,4096")
    sim.add_argument("--seconds", type=positive_float, default=10.0)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--config", help="a recipe YAML whose task: section overrides the task defaults")
    sim.add_argument("--no-randomization", action="store_true", help="disable domain randomization")
    sim.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="task config override: task.KEY=VALUE")
    sim.add_argument("--json", action="store_true", help="print one JSON object per num-envs")
    dep = bsub.add_parser("deploy", help="latency of the deploy runtime's Controller.step vs bare onnxruntime")
    dep.add_argument("--policy", required=True, help="an exported policy.onnx")
    dep.add_argument("--steps", type=positive_int, default=20000)
    dep.add_argument("--threads", type=positive_int, default=1, help="onnxruntime intra-op threads")
    dep.add_argument("--json", action="store_true")
    bt = bsub.add_parser("train", help="our PPO beside rsl_rl's on quadruped-flat: same recipe and clock, every "
                                      "snapshot judged by pgr eval (make bench-train)")
    bt.add_argument("--minutes", type=positive_float, default=20.0, help="training time of each run")
    bt.add_argument("--seeds", type=positive_ints_or_zero, default=[0], help="e.g. 0,1,2")
    bt.add_argument("--anchor-python", help="python of an environment with rsl-rl-lib (default: none, ours alone)")
    bt.add_argument("--anchor-dones", choices=ANCHOR_DONES, default="float",
                    help="rsl_rl's storage of done = max(done, delta): float (default) keeps CaT's delta < 1, which "
                         "discounts its bootstrap as in ours; byte is rsl_rl's own dtype, which turns delta < 1 into "
                         "0 (its soft constraints then scale the reward only)")
    bt.add_argument("--save-interval", type=positive_int, default=25, help="iterations between snapshots")
    bt.add_argument("--episodes", type=positive_int, default=32, help="eval worlds per command")
    bt.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a recipe override both trainers train with (a trial side by side), e.g. "
                         "algorithm.learning_rate=5e-4; algorithm fields rsl_rl lacks change ours only")
    bt.add_argument("--out", type=Path, default=Path("runs/bench_train"))
    gym = bsub.add_parser("gym", help="reference point: a gymnasium env in a SyncVectorEnv")
    gym.add_argument("--env", default="Ant-v5")
    gym.add_argument("--num-envs", type=positive_ints, default=[16])
    gym.add_argument("--seconds", type=positive_float, default=10.0)
    gym.add_argument("--seed", type=int, default=0)
    gym.add_argument("--json", action="store_true")
    bench.set_defaults(handler=cmd_bench)

    scene = sub.add_parser("scene", help="save the MuJoCo scene a task composes (robot + ground + actuators + sensors)")
    scene.add_argument("--task", type=task_name, default="quadruped-flat")
    scene.add_argument("--config", help="a recipe YAML whose task: section overrides the task defaults")
    scene.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. task.robot=my_robot.yaml")
    scene.add_argument("--out", required=True, help="the MJCF file to write")
    scene.set_defaults(handler=cmd_scene)

    terrain = sub.add_parser("terrain", help="draw a task's terrain grid (height-coloured top view) into a PNG")
    terrain.add_argument("--task", type=task_name, default="quadruped-rough")
    terrain.add_argument("--config", help="a recipe YAML whose task: section overrides the task defaults")
    terrain.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="e.g. task.ground.terrain.seed=3")
    terrain.add_argument("--levels", type=positive_int, help="difficulty levels (rows)")
    terrain.add_argument("--seed", type=int, help="the terrain's seed")
    terrain.add_argument("--out", required=True, help="the PNG file to write")
    terrain.set_defaults(handler=cmd_terrain)

    train = sub.add_parser("train", help="train a policy on a task (algorithms: " + ", ".join(algorithms.names())
                           + ")")
    add_train_arguments(train)
    train.add_argument("--nproc", type=positive_int, help="ranks on this machine (torch.distributed via torchrun)")
    train.set_defaults(handler=cmd_train)

    cmp = sub.add_parser("compare", help="several algorithms on one task, the same clock or env steps, side by "
                         "side: compare.png, compare.md")
    cmp.add_argument("--task", type=task_name, required=True)
    cmp.add_argument("--algos", required=True, type=algo_list, help="comma-separated, e.g. ppo,trpo,a2c")
    budget = cmp.add_mutually_exclusive_group(required=True)
    budget.add_argument("--time-budget", type=positive_float, metavar="MINUTES",
                        help="of training, each run (the clock ends it, not the recipe's max_iterations)")
    budget.add_argument("--env-steps", type=positive_int,
                        help="each run's env steps (cem, es: to the end of the first iteration that reaches them)")
    cmp.add_argument("--seeds", type=positive_int, default=1, help="seeds 0 .. N-1 of each algorithm")
    cmp.add_argument("--threshold", type=float, help="report the time each run first reaches this eval score")
    cmp.add_argument("--episodes", type=positive_int, help="eval episodes (or worlds per command) per checkpoint")
    cmp.add_argument("--out", type=Path, required=True, help="the folder of the runs and the comparison")
    cmp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a recipe field of every run: task.*, algorithm.* or runner.*")
    cmp.add_argument("--no-progress", action="store_true")
    cmp.set_defaults(handler=cmd_compare)

    ev = sub.add_parser("eval", help="the deterministic policy of a run (fixed commands, or goal episodes)")
    ev.add_argument("run_dir")
    ev.add_argument("--episodes", type=positive_int,
                    help="worlds per command (default 32); goal tasks: episodes, one per world (default 100)")
    ev.add_argument("--seconds", type=positive_float, default=20.0)
    ev.add_argument("--checkpoint", type=Path, help="a checkpoint file (default: the run's latest)")
    ev.add_argument("--record", metavar="FILE.npz",
                    help="also record what the policy saw and did, for `pg_robotics.deploy.replay`")
    ev.add_argument("--all-checkpoints", action="store_true",
                    help="evaluate every checkpoint; report the first that meets the walking criterion (with "
                    "--terrain: each cell's goal, and plot the curve)")
    ev.add_argument("--every", type=positive_int, default=1, metavar="K",
                    help="with --all-checkpoints: every K-th checkpoint, counted back from the last")
    ev.add_argument("--backend", choices=BACKENDS, default="mujoco",
                    help="simulation backend of the evaluation (default: C MuJoCo, whatever the run trained on)")
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--out", type=Path, metavar="FILE.json", help="also write the result as JSON (for sim2sim --eval)")
    ev.add_argument("--terrain", metavar="TYPE", help="worlds on one terrain tile of TYPE (or `all`: every type x "
                    "difficulty; `goals`: the rough task's goal cells), commanded 0.6 m/s forward: success rate "
                    "(4 m or the tile's edge without falling)")
    ev.add_argument("--difficulty", type=float, action="append",
                    help="with --terrain: in [0, 1] (repeat for several; default: the rough task's goal for the type)")
    ev.add_argument("--model", metavar="ROBOT.xml",
                    help="evaluate on another robot-only MJCF with the same joints (a model it never trained on)")
    ev.add_argument("--ground", choices=("plane", "terrain"), help="evaluate on this ground instead of the run's")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(handler=cmd_eval)

    play = sub.add_parser("play", help="the deterministic policy of a run: rendered into a video (headless), or "
                          "live in MuJoCo's viewer, steered with the keyboard")
    play.add_argument("run_dir")
    shown = play.add_mutually_exclusive_group(required=True)
    shown.add_argument("--video", help="output file, e.g. out.mp4")
    shown.add_argument("--viewer", action="store_true",
                       help="watch it live in MuJoCo's interactive viewer (needs a display): arrows/WASD forward and "
                            "lateral speed, Q/E yaw rate, space stop, P push, R reset, [ ] world, T terrain tile; "
                            "goal tasks: the keys move the goal (I/J/K/L the box)")
    play.add_argument("--command", dest="commands", type=_command, action="append", metavar="VX,VY,WZ",
                      help="a fixed command to hold (repeat for a tour; default: the six eval commands); "
                           "--viewer: the command to start from")
    play.add_argument("--worlds", type=positive_int, default=1, help="--viewer: worlds side by side")
    play.add_argument("--duration", type=positive_float, metavar="S",
                      help="--viewer: close after S simulated seconds (default: when the window is closed)")
    play.add_argument("--log", type=Path, metavar="FILE.jsonl",
                      help="--viewer: JSON lines of every control step (time, command, measured velocity) and key")
    play.add_argument("--screenshot", type=Path, metavar="FILE.png", help="--viewer: the last frame, as an image")
    play.add_argument("--seconds", type=positive_float, default=4.0, help="seconds per command")
    play.add_argument("--width", type=positive_int, default=640)
    play.add_argument("--height", type=positive_int, default=480)
    play.add_argument("--checkpoint", type=Path, help="a checkpoint file (default: the run's latest)")
    play.add_argument("--episodes", type=positive_int, default=4, help="goal tasks: episodes to render")
    play.add_argument("--json", action="store_true")
    play.set_defaults(handler=cmd_play)

    ex = sub.add_parser("export", help="export a run's policy to ONNX with its deploy contract (self-checked)")
    ex.add_argument("run_dir")
    ex.add_argument("--out", help="output .onnx (default: RUN_DIR/policy.onnx); a .yaml sidecar goes beside it")
    ex.add_argument("--checkpoint", type=Path, help="a checkpoint file (default: the run's latest)")
    ex.add_argument("--json", action="store_true")
    ex.set_defaults(handler=cmd_export)

    for plugin in extra:
        plugin.add_parsers(sub, bsub)
    for name, hint in PLUGIN_HINTS.items():
        if name not in sub.choices:
            missing = sub.add_parser(name, help=f"(not installed: {hint})", add_help=False)
            missing.add_argument("rest", nargs=argparse.REMAINDER)
            missing.set_defaults(handler=lambda args, name=name, hint=hint: _missing(name, hint))
    return p


def _missing(name: str, hint: str) -> None:
    raise ConfigError(f"pgr {name}: this command comes with the ROS 2 package, which is not installed: {hint}")


def cmd_list(args) -> None:
    rows = [{"name": t.name, "robot": t.robot, "kind": t.kind, "description": t.description} for t in TASKS.values()]
    algos = [{"name": a.name, "runner": a.runner, "needs": a.needs, "summary": a.summary}
             for a in algorithms.ALGORITHMS.values()]
    if args.json:
        print(json.dumps({"tasks": rows, "algorithms": algos}, indent=2))
        return
    width = max(len(r["name"]) for r in rows)
    print("tasks:")
    for r in rows:
        print(f"  {r['name']:<{width}}  {r['robot']:<6}  {r['description']}")
    print("algorithms (pgr train TASK --algo NAME):")
    width = max(len(a["name"]) for a in algos)
    for a in algos:
        print(f"  {a['name']:<{width}}  {a['summary']}")


def algo_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in algorithms.ALGORITHMS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"unknown algorithm {unknown[0] if unknown else text!r} (known: "
                                         f"{', '.join(algorithms.names())})")
    return names


def cmd_compare(args) -> None:
    from pg_robotics.compare import compare

    result = compare(args.task, args.algos, args.out, args.seeds, args.time_budget, args.env_steps, args.threshold,
                     parse_overrides(args.set), args.episodes, progress=not args.no_progress)
    print((Path(result["out"]) / "compare.md").read_text())
    print(f"plot: {Path(result['out']) / 'compare.png'}")


def _print_result(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result), flush=True)
        return
    for key, value in result.items():
        print(f"  {key:<28} {value}")
    print(flush=True)


def task_overrides(config: str | None, sets: list[str]) -> dict:
    """The task section of a recipe file, with `--set task.key=value` overrides applied on top."""
    from pg_robotics.recipe import SECTIONS

    recipe = load_yaml(config) if config else {}
    unknown = set(recipe) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"{config}: {sorted(unknown)[0]}: unknown key (known: {', '.join(SECTIONS)})")
    overrides = parse_overrides(sets)
    for key in overrides:
        if key != "task":
            raise ConfigError(f"--set {key}: the simulation bench takes task.* keys only")
    return deep_update(recipe.get("task") or {}, overrides.get("task", {}))


def cmd_bench(args) -> None:
    from pg_robotics import bench

    if args.bench == "deploy":
        _print_result(bench.bench_deploy(args.policy, args.steps, args.threads), args.json)
        return
    if args.bench == "train":
        from pg_robotics.bench_train import bench_train

        report = bench_train(args.minutes, args.seeds, args.out, args.anchor_python, args.save_interval, args.episodes,
                             args.anchor_dones, args.set)
        print((args.out / "compare.md").read_text() + f"plot: {args.out / 'compare.png'}")
        return report
    if args.bench == "gym":
        for n in args.num_envs:
            _print_result(bench.bench_gym(args.env, n, args.seconds, args.seed), args.json)
        return
    for task in args.task:
        if task.startswith("gym:"):
            raise ConfigError(f"--task {task}: the simulation bench runs our batched tasks; time a gymnasium env "
                              f"with pgr bench gym --env ID")
    overrides = task_overrides(args.config, args.set)
    if args.no_randomization:
        overrides.setdefault("randomization", {})["enabled"] = False
    for n in args.num_envs:
        rates = {}
        for task in args.task:
            result = bench.bench_sim(task, args.backend, n, args.seconds, seed=args.seed, device=args.device,
                                     overrides=overrides, progress=not args.json and sys.stderr.isatty())
            rates[task] = result["env_steps_per_s"]
            _print_result(result, args.json)
        if len(rates) > 1:
            first, *rest = args.task
            ratios = {f"{t}_over_{first}": round(rates[t] / rates[first], 3) for t in rest}
            _print_result({"num_envs": n, **ratios}, args.json)


def cmd_scene(args) -> None:
    from pg_robotics.envs.scene import save

    print(save(args.task, task_overrides(args.config, args.set), args.out))


def cmd_terrain(args) -> None:
    from pg_robotics.envs import task_config
    from pg_robotics.envs.config import deep_update
    from pg_robotics.envs.terrains import draw, generate

    extra = {k: v for k, v in (("levels", args.levels), ("seed", args.seed)) if v is not None}
    overrides = deep_update(task_overrides(args.config, args.set) or {}, {"ground": {"terrain": extra}})
    ground = task_config(args.task, overrides).ground
    if ground.type != "terrain":
        raise ConfigError(f"--task {args.task}: its ground is a {ground.type!r}, not a terrain "
                          f"(set task.ground.type=terrain)")
    terrain = generate(ground.terrain)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    draw(terrain, args.out)
    cfg = terrain.cfg
    print(f"{args.out}: {len(cfg.types)} types x {cfg.levels} levels of {cfg.tile_size:g} m tiles "
          f"({terrain.size[0]:g} m x {terrain.size[1]:g} m, {len(terrain.boxes)} boxes), seed {cfg.seed}")


def cmd_train(args) -> None:
    from pg_robotics.train import done_line, from_args

    if args.nproc and args.nproc > 1:
        return launch(args.nproc, args.argv)
    print(done_line(from_args(args)))


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


def cmd_eval(args) -> None:
    from pg_robotics import evaluate, runs

    evaluate.check_seconds(args.seconds)
    if args.every != 1 and not args.all_checkpoints:
        raise ConfigError("--every: only with --all-checkpoints")
    if args.terrain:
        return eval_terrain(args)
    if args.difficulty:
        raise ConfigError("--difficulty: only with --terrain")
    overrides: dict = {}
    if args.model:
        model = Path(args.model)  # a file here, or a shipped robot's (go1/go1_alt.xml)
        overrides["robot"] = {"mjcf": str(model.resolve()) if model.is_file() else args.model}
    if args.ground:
        overrides["ground"] = {"type": args.ground}
    if overrides and (args.all_checkpoints or args.record):
        raise ConfigError("--model, --ground: not with --all-checkpoints or --record")
    if args.all_checkpoints:
        def line(r: dict) -> None:
            if args.json:
                return
            if "std_return" in r:  # a gymnasium env
                print(f"iteration {r['iteration']:>5}  train {r['train_seconds'] / 60:6.1f} min  return "
                      f"{r['mean_return']:.2f} +- {r['std_return']:.2f}", flush=True)
                return
            if "success_rate" in r:
                print(f"iteration {r['iteration']:>5}  train {r['train_seconds'] / 60:6.1f} min  success "
                      f"{r['success_rate']:.3f}  final distance {r['final_distance']:.3f} m", flush=True)
                return
            print(f"iteration {r['iteration']:>5}  train {r['train_seconds'] / 60:6.1f} min  lin "
                  f"{r['lin_vel_error']:.3f}  ang {r['ang_vel_error']:.3f}  falls {r['fall_rate']:.3f}"
                  f"{'  meets criterion' if r['meets_criterion'] else ''}", flush=True)

        result = evaluate.sweep(Path(args.run_dir), args.episodes, args.seconds, on_result=line,
                                backend=args.backend, device=args.device, every=args.every)
        first = result.get("first_meeting")
        if args.json:
            print(json.dumps(result))
        elif "criterion" not in result:
            pass
        elif first:
            print(f"first meets the criterion: iteration {first['iteration']} after "
                  f"{first['train_seconds'] / 60:.1f} min of training ({first['checkpoint']})")
        else:
            print("no checkpoint meets the criterion", dict(result["criterion"]))
        return
    result = evaluate.evaluate(Path(args.run_dir), args.episodes, args.seconds, args.checkpoint, args.backend,
                               args.device, overrides=overrides or None)
    if args.record:
        import numpy as np

        np.savez_compressed(args.record, **evaluate.record(Path(args.run_dir), args.checkpoint))
        result["record"] = args.record
    if args.out:
        runs.atomic_write_json(args.out, result)
    if args.json:
        print(json.dumps(result))
    elif "std_return" in result:
        print(f"mean_return      {result['mean_return']:.3f} +- {result['std_return']:.3f} (episode length "
              f"{result['mean_length']:.1f} steps)\n  ({result['episodes']} deterministic episodes of "
              f"{result['task']}, {result['algo']}, {result['checkpoint']})")
    elif "success_rate" in result:
        print(f"success_rate     {result['success_rate']:.4f}\nfinal_distance   {result['final_distance']:.4f} m"
              f"\n  ({result['episodes']} deterministic episodes of {result['task']}, {result['checkpoint']})")
    else:
        for key in ("lin_vel_error", "ang_vel_error", "fall_rate", "mean_return"):
            print(f"{key:<16} {result[key]:.4f}")
        for row in result["per_command"]:
            print(f"  command {row['command']}: lin {row['lin_vel_error']:.3f} m/s, ang {row['ang_vel_error']:.3f} "
                  f"rad/s, falls {row['fall_rate']:.2f}, duty factor {row['duty_factor']}, steps/s "
                  f"{row['steps_per_s']}, leg contact {row['leg_contact']:.3f}")
        limits = ", ".join(f"{k} <= {v:g}" for k, v in evaluate.CRITERION.items())
        print(f"walking criterion {'met' if result['meets_criterion'] else 'NOT met'} ({limits})")


def eval_terrain(args) -> None:
    from pg_robotics import evaluate, runs

    if args.record or args.model or args.ground:
        raise ConfigError("--terrain: not with --record, --model or --ground")
    cells = evaluate.terrain_cells(args.terrain, args.difficulty)
    common = dict(seconds=args.seconds, backend=args.backend, device=args.device)
    run, episodes = Path(args.run_dir), args.episodes or (16 if args.terrain == "all" else 32)
    if args.all_checkpoints:
        if args.checkpoint:
            raise ConfigError("--checkpoint: not with --all-checkpoints")
        show = (lambda p: None) if args.json else (lambda p: print(
            f"iteration {p['iteration']:>5}  train {p['train_seconds'] / 60:6.1f} min  " + "  ".join(
                f"{r['terrain']} {r['difficulty']:.2f}: {r['success_rate']:.2f}/{r['fall_rate']:.2f}"
                for r in p["cells"]), flush=True))
        if not args.json:
            print(f"success/falls of {episodes} worlds a cell, 0.6 m/s forward; goal: success >= "
                  f"{evaluate.TERRAIN_GOAL['success_rate']:g}, falls <= {evaluate.TERRAIN_GOAL['fall_rate']:g}")
        result = evaluate.terrain_sweep(run, cells, episodes, args.every, on_result=show, **common)
        if args.out:
            runs.atomic_write_json(args.out, result)
        if args.json:
            print(json.dumps(result))
            return
        for cell, first in result["first_meeting"].items():
            print(f"{cell:<18} " + ("not met" if first is None else
                                    f"first met at iteration {first['iteration']} "
                                    f"({first['train_seconds'] / 60:.1f} min of training)"))
        print(f"plot: {result['plot']}")
        return
    from tqdm import tqdm

    rows = [evaluate.evaluate_terrain(run, t, d, episodes, checkpoint=args.checkpoint, **common)
            for t, d in tqdm(cells, unit="cell", disable=len(cells) < 2 or not sys.stderr.isatty(), leave=False)]
    if args.out:
        runs.atomic_write_json(args.out, rows)
    if args.json:
        print(json.dumps(rows))
        return
    print(f"{'terrain':<12} {'difficulty':>10} {'success':>8} {'falls':>6} {'lin err':>8}   "
          f"({rows[0]['episodes']} worlds each, {rows[0]['speed']} m/s forward, {rows[0]['checkpoint']})")
    for r in rows:
        print(f"{r['terrain']:<12} {r['difficulty']:>10.2f} {r['success_rate']:>8.3f} {r['fall_rate']:>6.3f} "
              f"{r['lin_vel_error']:>8.3f}{'  goal met' if evaluate.meets_terrain_goal(r) else ''}")


def cmd_play(args) -> None:
    if args.viewer:
        return cmd_viewer(args)
    for name in ("log", "screenshot", "duration"):
        if getattr(args, name) is not None:
            raise ConfigError(f"--{name}: only with --viewer")
    if args.worlds != 1:
        raise ConfigError("--worlds: only with --viewer (a video shows one world)")
    from pg_robotics.play import play

    r = play(Path(args.run_dir), Path(args.video), args.commands, args.seconds, args.episodes, args.width,
             args.height, checkpoint=args.checkpoint, progress=not args.json and sys.stderr.isatty())
    if args.json:
        print(json.dumps(r))
    elif "successes" in r:
        print(f"video: {r['video']} ({r['frames']} frames at {r['fps']} fps, {r['successes']}/{r['episodes']} "
              f"episodes reached the goal)")
    else:
        print(f"video: {r['video']} ({r['frames']} frames at {r['fps']} fps, falls {r['falls']})")


def cmd_viewer(args) -> None:
    from pg_robotics.viewer import NoDisplay, watch

    if args.commands and len(args.commands) > 1:
        raise ConfigError("--command: --viewer starts from one command (the keys change it)")
    try:
        r = watch(Path(args.run_dir), args.worlds, args.commands[0] if args.commands else (0.0, 0.0, 0.0),
                  args.duration, args.log, args.screenshot, args.checkpoint,
                  say=None if args.json else lambda text: print(text, file=sys.stderr, flush=True))
    except NoDisplay as exc:  # one line, no traceback, no "pgr: error:" prefix
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    if args.json:
        print(json.dumps(r))
        return
    print(f"viewer: {r['sim_seconds']} s simulated in {r['wall_seconds']} s (real time x{r['real_time_factor']}), "
          f"{r['frames']} frames at {r['fps']} fps" + (f", screenshot {r['screenshot']}" if "screenshot" in r else ""))


def cmd_export(args) -> None:
    from pg_robotics.export import export

    report = export(Path(args.run_dir), Path(args.out) if args.out else None, args.checkpoint)
    if args.json:
        print(json.dumps(report))
        return
    print(f"wrote {report['onnx']} and {report['sidecar']} (kind {report['kind']})")
    print(f"  torch vs onnxruntime: max abs diff {report['onnx_max_abs_diff_random']:.1e} (1000 random inputs), "
          f"{report['onnx_max_abs_diff_recorded']:.1e} (1000 recorded inputs)")
    what = "sim states replayed through pg_robotics.deploy (joints shuffled)" if report["kind"] == "joint_position" \
        else "recorded inputs replayed through pg_robotics.deploy.VectorController"
    print(f"  {what}: max abs action diff {report['replay_action_max_abs_diff']:.1e} over "
          f"{report['replay_samples']} samples")


def main(argv: list[str] | None = None) -> int:
    from pg_robotics.runners import Stopped

    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `pgr ... | head` ends quietly
    argv = sys.argv[1:] if argv is None else argv
    extra = plugins()
    for plugin in extra:
        code = plugin.raw(argv)
        if code is not None:
            return code
    args = build_parser(extra).parse_args(argv)
    args.argv = argv
    try:
        args.handler(args)
    except (ConfigError, ContractError) as exc:
        print(f"pgr: error: {exc}", file=sys.stderr)
        return 2
    except Stopped as exc:
        print(f"pgr: stopped by {signal.Signals(exc.signum).name} (checkpoint saved)", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("pgr: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
