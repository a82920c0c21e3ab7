"""`pgr`: the command line. Bad input exits with code 2 and a message naming the argument or config field."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from pg_robotics.deploy.contract import ContractError
from pg_robotics.envs import TASKS, ConfigError
from pg_robotics.envs.backends import BACKENDS
from pg_robotics.envs.config import deep_update, load_yaml, parse_overrides


def _positive_ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    values = _positive_ints(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected one positive integer, got {text!r}")
    return values[0]


def _command(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three numbers vx,vy,wz (m/s, m/s, rad/s), got {text!r}")
    return values  # type: ignore[return-value]


def _task_name(text: str) -> str:
    if text not in TASKS and not (text.startswith("gym:") and len(text) > 4):
        raise argparse.ArgumentTypeError(f"unknown task {text!r} (registered: {', '.join(sorted(TASKS))}; or "
                                         f"gym:<id> for a registered gymnasium GoalEnv)")
    return text


NODES = {"policy": ("pg_robotics_ros.policy_node", "the policy node (lifecycle)"),
         "sim": ("pg_robotics_ros.sim_node", "the MuJoCo sim node")}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pgr", description="pg_robotics: train in simulation, deploy to a robot.")
    sub = p.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="list the registered tasks")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")

    bench = sub.add_parser("bench", help="measure throughput")
    bsub = bench.add_subparsers(dest="bench", required=True)
    sim = bsub.add_parser("sim", help="step a task with random actions; report env and physics steps/s")
    sim.add_argument("--task", type=_task_name, default="quadruped-flat")
    sim.add_argument("--backend", choices=BACKENDS, default="mujoco")
    sim.add_argument("--device", default="cpu")
    sim.add_argument("--num-envs", type=_positive_ints, default=[1024], help="one count, or several: 1024,4096")
    sim.add_argument("--seconds", type=_positive_float, default=10.0)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--config", help="a recipe YAML whose task: section overrides the task defaults")
    sim.add_argument("--no-randomization", action="store_true", help="disable domain randomization")
    sim.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="task config override: task.KEY=VALUE")
    sim.add_argument("--json", action="store_true", help="print one JSON object per num-envs")

    scene = sub.add_parser("scene", help="save the MuJoCo scene a task composes (robot + ground + actuators + sensors)")
    scene.add_argument("--task", type=_task_name, default="quadruped-flat")
    scene.add_argument("--config", help="a recipe YAML whose task: section overrides the task defaults")
    scene.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. task.robot=my_robot.yaml")
    scene.add_argument("--out", required=True, help="the MJCF file to write")

    train = sub.add_parser("train", help="train a policy on a task (PPO for locomotion, DDPG+HER for goal tasks)")
    train.add_argument("task", type=_task_name, help="a registered task, or gym:<id> for a gymnasium GoalEnv")
    train.add_argument("--algo", choices=("ppo", "ddpg_her"), help="default: ppo for locomotion, ddpg_her for goals")
    train.add_argument("--config", help="recipe YAML (default: configs/<task>_<algo>.yaml)")
    train.add_argument("--num-envs", type=_positive_int)
    train.add_argument("--max-iterations", type=_positive_int)
    train.add_argument("--time-budget", type=_positive_float, metavar="MINUTES")
    train.add_argument("--seed", type=int)
    train.add_argument("--backend", choices=BACKENDS, help="simulation backend (default: the recipe's, mujoco)")
    train.add_argument("--device", help="torch device of the worlds and networks: cpu or cuda (default: cpu)")
    train.add_argument("--run-dir", help="where to write the run (default: runs/<task>/<date-time>)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a recipe field: task.*, algorithm.* or runner.*")
    train.add_argument("--no-progress", action="store_true")
    train.add_argument("--nproc", type=_positive_int, help="ranks on this machine (torch.distributed via torchrun)")

    ev = sub.add_parser("eval", help="the deterministic policy of a run on fixed commands")
    ev.add_argument("run_dir")
    ev.add_argument("--episodes", type=_positive_int,
                    help="worlds per command (default 32); goal tasks: episodes, one per world (default 100)")
    ev.add_argument("--seconds", type=_positive_float, default=20.0)
    ev.add_argument("--checkpoint", type=Path, help="a checkpoint file (default: the run's latest)")
    ev.add_argument("--record", metavar="FILE.npz",
                    help="also record raw states, observations and actions for `pg_robotics.deploy.replay`")
    ev.add_argument("--all-checkpoints", action="store_true",
                    help="evaluate every checkpoint; report the first that meets the walking criterion")
    ev.add_argument("--backend", choices=BACKENDS, default="mujoco",
                    help="simulation backend of the evaluation (default: C MuJoCo, whatever the run trained on)")
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--out", type=Path, metavar="FILE.json", help="also write the result as JSON (for sim2sim --eval)")
    ev.add_argument("--json", action="store_true")

    play = sub.add_parser("play", help="render the deterministic policy of a run into a video (headless)")
    play.add_argument("run_dir")
    play.add_argument("--video", required=True, help="output file, e.g. out.mp4")
    play.add_argument("--command", dest="commands", type=_command, action="append", metavar="VX,VY,WZ",
                      help="a fixed command to hold (repeat for a tour; default: the six eval commands)")
    play.add_argument("--seconds", type=_positive_float, default=4.0, help="seconds per command")
    play.add_argument("--width", type=_positive_int, default=640)
    play.add_argument("--height", type=_positive_int, default=480)
    play.add_argument("--checkpoint", type=Path, help="a checkpoint file (default: the run's latest)")
    play.add_argument("--episodes", type=_positive_int, default=4, help="goal tasks: episodes to render")
    play.add_argument("--json", action="store_true")

    dep = bsub.add_parser("deploy", help="latency of the deploy runtime's Controller.step vs bare onnxruntime")
    dep.add_argument("--policy", required=True, help="an exported policy.onnx")
    dep.add_argument("--steps", type=_positive_int, default=20000)
    dep.add_argument("--threads", type=_positive_int, default=1, help="onnxruntime intra-op threads")
    dep.add_argument("--json", action="store_true")

    ex = sub.add_parser("export", help="export a run's policy to ONNX with its deploy contract (self-checked)")
    ex.add_argument("run_dir")
    ex.add_argument("--out", help="output .onnx (default: RUN_DIR/policy.onnx); a .yaml sidecar goes beside it")
    ex.add_argument("--checkpoint", type=Path, help="a checkpoint file (default: the run's latest)")
    ex.add_argument("--json", action="store_true")

    s2s = sub.add_parser("sim2sim", help="the exported policy walks the MuJoCo sim node through ROS 2 (two processes)")
    s2s.add_argument("--policy", type=Path, required=True, help="an exported policy.onnx")
    s2s.add_argument("--duration", type=_positive_float, default=20.0, help="measured seconds")
    s2s.add_argument("--rate-hz", type=_positive_float, default=50.0, help="control rate of the policy node")
    s2s.add_argument("--cmd-vx", type=float, default=0.5)
    s2s.add_argument("--cmd-vy", type=float, default=0.0)
    s2s.add_argument("--cmd-wz", type=float, default=0.0)
    s2s.add_argument("--settle", type=float, default=1.0, help="seconds after the soft start before measuring")
    s2s.add_argument("--push-interval", type=float, default=0.0, help="push the robot every N seconds (0: never)")
    s2s.add_argument("--eval", type=Path, metavar="EVAL.json", help="`pgr eval --out` result to compare with")
    s2s.add_argument("--log-dir", type=Path, help="node logs (default: beside the policy, sim2sim_logs/)")
    s2s.add_argument("--json", action="store_true")

    ros = sub.add_parser("ros", help="start a ROS 2 node, or call one (no ros2 CLI needed)")
    rsub = ros.add_subparsers(dest="ros", required=True)
    for name, text in NODES.items():  # main() hands their arguments to the node unparsed
        rsub.add_parser(name, help=f"run {text[1]}; takes --ros-args -p name:=value --params-file FILE")
    call = rsub.add_parser("call", help="a lifecycle transition or the e-stop of the policy node")
    call.add_argument("action", choices=("configure", "activate", "deactivate", "cleanup", "shutdown", "estop"))
    call.add_argument("--node", default="policy_node")
    call.add_argument("--timeout", type=_positive_float, default=10.0)

    gym = bsub.add_parser("gym", help="reference point: a gymnasium env in a SyncVectorEnv")
    gym.add_argument("--env", default="Ant-v5")
    gym.add_argument("--num-envs", type=_positive_ints, default=[16])
    gym.add_argument("--seconds", type=_positive_float, default=10.0)
    gym.add_argument("--seed", type=int, default=0)
    gym.add_argument("--json", action="store_true")
    return p


def cmd_list(args) -> None:
    rows = [{"name": t.name, "robot": t.robot, "kind": t.kind, "description": t.description} for t in TASKS.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['robot']:<6}  {r['description']}")


def _print_result(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result), flush=True)
        return
    for key, value in result.items():
        print(f"  {key:<28} {value}")
    print(flush=True)


def task_overrides(config: str | None, sets: list[str]) -> dict:
    """The task section of a recipe file, with `--set task.key=value` overrides applied on top."""
    from pg_robotics.train import SECTIONS

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
    if args.bench == "gym":
        for n in args.num_envs:
            _print_result(bench.bench_gym(args.env, n, args.seconds, args.seed), args.json)
        return
    if args.task.startswith("gym:"):
        raise ConfigError(f"--task {args.task}: the simulation bench runs our batched tasks; time a gymnasium env "
                          f"with pgr bench gym --env ID")
    overrides = task_overrides(args.config, args.set)
    if args.no_randomization:
        overrides.setdefault("randomization", {})["enabled"] = False
    for n in args.num_envs:
        result = bench.bench_sim(args.task, args.backend, n, args.seconds, seed=args.seed, device=args.device,
                                 overrides=overrides, progress=not args.json and sys.stderr.isatty())
        _print_result(result, args.json)


def cmd_scene(args) -> None:
    from pg_robotics.envs.scene import save

    print(save(args.task, task_overrides(args.config, args.set), args.out))


def run_algo(run_dir: str) -> str:
    """The algorithm a run directory was trained with (a ConfigError if it is not a run directory)."""
    from pg_robotics.train import read_run

    return read_run(Path(run_dir))[1]["algo"]


def cmd_eval(args) -> None:
    from pg_robotics.evaluate import CRITERION, check_seconds, evaluate, sweep

    check_seconds(args.seconds)
    if run_algo(args.run_dir) == "ddpg_her":
        if args.all_checkpoints or args.record:
            raise ConfigError("--all-checkpoints/--record: for locomotion runs; goal runs log their success curve "
                              "while training (summary.json, learning_curves.png)")
        if args.backend != "mujoco" or args.device != "cpu":
            raise ConfigError("--backend/--device: goal runs are evaluated on the CPU MuJoCo backend")
        from pg_robotics.goal_policy import evaluate_goal

        result = evaluate_goal(Path(args.run_dir), args.episodes or 100, args.checkpoint)
        if args.out:
            args.out.write_text(json.dumps(result, indent=1))
        if args.json:
            print(json.dumps(result))
        else:
            print(f"success_rate     {result['success_rate']:.4f}\nfinal_distance   {result['final_distance']:.4f} m"
                  f"\n  ({result['episodes']} deterministic episodes of {result['task']}, {result['checkpoint']})")
        return
    args.episodes = args.episodes or 32
    if args.all_checkpoints:
        def line(r: dict) -> None:
            if not args.json:
                print(f"iteration {r['iteration']:>5}  train {r['train_seconds'] / 60:6.1f} min  lin "
                      f"{r['lin_vel_error']:.3f}  ang {r['ang_vel_error']:.3f}  falls {r['fall_rate']:.3f}"
                      f"{'  meets criterion' if r['meets_criterion'] else ''}", flush=True)

        result = sweep(Path(args.run_dir), args.episodes, args.seconds, on_result=line, backend=args.backend,
                       device=args.device)
        first = result["first_meeting"]
        if args.json:
            print(json.dumps(result))
        elif first:
            print(f"first meets the criterion: iteration {first['iteration']} after "
                  f"{first['train_seconds'] / 60:.1f} min of training ({first['checkpoint']})")
        else:
            print("no checkpoint meets the criterion", {k: v for k, v in result["criterion"].items()})
        return
    result = evaluate(Path(args.run_dir), episodes=args.episodes, seconds=args.seconds, checkpoint=args.checkpoint,
                      backend=args.backend, device=args.device)
    if args.record:
        import numpy as np

        from pg_robotics.evaluate import record

        np.savez_compressed(args.record, **record(Path(args.run_dir), checkpoint=args.checkpoint))
        result["record"] = args.record
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    if args.json:
        print(json.dumps(result))
        return
    for key in ("lin_vel_error", "ang_vel_error", "fall_rate", "mean_return"):
        print(f"{key:<16} {result[key]:.4f}")
    for row in result["per_command"]:
        print(f"  command {row['command']}: lin {row['lin_vel_error']:.3f} m/s, ang {row['ang_vel_error']:.3f} rad/s,"
              f" falls {row['fall_rate']:.2f}, duty factor {row['duty_factor']}, steps/s {row['steps_per_s']},"
              f" leg contact {row['leg_contact']:.3f}")
    limits = ", ".join(f"{k} <= {v:g}" for k, v in CRITERION.items())
    print(f"walking criterion {'met' if result['meets_criterion'] else 'NOT met'} ({limits})")


def cmd_play(args) -> None:
    from pg_robotics.evaluate import COMMANDS
    from pg_robotics.play import play

    if run_algo(args.run_dir) == "ddpg_her":
        from pg_robotics.goal_policy import play_goal

        result = play_goal(Path(args.run_dir), Path(args.video), args.episodes, args.width, args.height,
                           checkpoint=args.checkpoint, progress=not args.json and sys.stderr.isatty())
        print(json.dumps(result) if args.json else
              f"video: {result['video']} ({result['frames']} frames at {result['fps']} fps, "
              f"{result['successes']}/{result['episodes']} episodes reached the goal)")
        return
    result = play(Path(args.run_dir), Path(args.video), args.commands or list(COMMANDS), args.seconds,
                  args.width, args.height, checkpoint=args.checkpoint,
                  progress=not args.json and sys.stderr.isatty())
    if args.json:
        print(json.dumps(result))
    else:
        print(f"video: {result['video']} ({result['frames']} frames at {result['fps']} fps, falls {result['falls']})")


def cmd_export(args) -> None:
    from pg_robotics.export import export

    if run_algo(args.run_dir) == "ddpg_her":
        from pg_robotics.goal_policy import export_goal

        report = export_goal(Path(args.run_dir), Path(args.out) if args.out else None, args.checkpoint)
        print(json.dumps(report) if args.json else
              f"wrote {report['onnx']} and {report['sidecar']}\n  torch vs onnxruntime: max abs diff "
              f"{report['onnx_max_abs_diff_random']:.1e} (1000 random inputs), "
              f"{report['onnx_max_abs_diff_recorded']:.1e} (1000 recorded inputs)")
        return
    report = export(Path(args.run_dir), Path(args.out) if args.out else None, args.checkpoint)
    if args.json:
        print(json.dumps(report))
        return
    print(f"wrote {report['onnx']} and {report['sidecar']}")
    print(f"  torch vs onnxruntime: max abs diff {report['onnx_max_abs_diff_random']:.1e} (1000 random obs), "
          f"{report['onnx_max_abs_diff_recorded']:.1e} (1000 recorded obs)")
    print(f"  sim states replayed through pg_robotics.deploy (joints shuffled): max abs action diff "
          f"{report['replay_action_max_abs_diff']:.1e} over {report['replay_samples']} samples")


def cmd_train(args) -> None:
    from pg_robotics import train

    train.run_from_cli(args)


def cmd_sim2sim(args) -> None:
    if not args.policy.is_file():
        raise ConfigError(f"--policy: no file {args.policy}")
    if args.eval is not None and not args.eval.is_file():
        raise ConfigError(f"--eval: no file {args.eval}")
    from pg_robotics_ros.sim2sim import Sim2SimError, compare_with_eval, sim2sim

    try:
        result = sim2sim(args.policy, args.duration, args.rate_hz, (args.cmd_vx, args.cmd_vy, args.cmd_wz),
                         settle_s=args.settle, push_interval_s=args.push_interval, log_dir=args.log_dir)
        if args.eval:
            result.update(compare_with_eval(result, args.eval))
    except Sim2SimError as exc:
        print(f"pgr sim2sim: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:<22} {value}")


def cmd_ros(args) -> None:
    """`pgr ros call`; `pgr ros policy|sim` never get here: main() hands their arguments to the node."""
    from pg_robotics_ros.call import CallError, call

    try:
        print(call(args.node, args.action, args.timeout))
    except CallError as exc:
        print(f"pgr ros call: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def run_node(name: str, ros_args: list[str]) -> int:
    module = NODES[name][0]
    return __import__(module, fromlist=["main"]).main([module, *ros_args])


COMMANDS = {"list": cmd_list, "bench": cmd_bench, "scene": cmd_scene, "train": cmd_train, "eval": cmd_eval, "play": cmd_play,
            "export": cmd_export, "sim2sim": cmd_sim2sim, "ros": cmd_ros}


def main(argv: list[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `pgr ... | head` ends quietly
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) >= 2 and argv[0] == "ros" and argv[1] in NODES:  # `pgr ros policy --ros-args ...`
        return run_node(argv[1], argv[2:])
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        COMMANDS[args.command](args)
    except (ConfigError, ContractError) as exc:
        print(f"pgr: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pgr: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
