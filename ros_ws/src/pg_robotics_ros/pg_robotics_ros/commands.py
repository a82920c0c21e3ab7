"""The `pgr` commands this package brings: `pgr sim2sim`, `pgr ros policy|sim|watchdog|teleop|call` and
`pgr bench faults`.
`pgr` finds them through the `pg_robotics.commands` entry point this package registers; pg_robotics itself never
imports ROS."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NODES = {"policy": ("pg_robotics_ros.policy_node", "the policy node (lifecycle)"),
         "sim": ("pg_robotics_ros.sim_node", "the MuJoCo sim node"),
         "watchdog": ("pg_robotics_ros.watchdog", "the command watchdog (robot side: damps when commands stop)"),
         "teleop": ("pg_robotics_ros.teleop", "the keyboard teleop (this terminal's keys -> /cmd_vel)")}


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


MAX_DOMAIN_ID = 232  # ROS 2's DDS domain ids on Linux: the domain's UDP ports (7400 + 250 id + ...) stay below 65536


def _domain_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_DOMAIN_ID:
        raise argparse.ArgumentTypeError(f"expected a ROS 2 domain id, an integer in 0..{MAX_DOMAIN_ID}, got {text!r}")
    return value


def add_parsers(sub, bench) -> None:
    """Add this package's commands to `pgr`'s subcommands and to `pgr bench`'s."""
    faults = bench.add_parser("faults", add_help=False, help="fault injection over the real policy node on loopback "
                              "DDS: --policy P [--json] [--log-dir D] [--domain-id N]")
    faults.add_argument("rest", nargs=argparse.REMAINDER)  # `raw` hands them to pg_robotics_ros.faults
    s2s = sub.add_parser("sim2sim", help="the exported policy walks the MuJoCo sim node through ROS 2 (two processes)")
    s2s.add_argument("--policy", type=Path, required=True, help="an exported policy.onnx")
    s2s.add_argument("--duration", type=_positive_float, help="measured seconds (default 20; --viewer: until the "
                     "window is closed)")
    s2s.add_argument("--rate-hz", type=_positive_float, default=50.0, help="control rate of the policy node")
    s2s.add_argument("--cmd-vx", type=float, default=0.5)
    s2s.add_argument("--cmd-vy", type=float, default=0.0)
    s2s.add_argument("--cmd-wz", type=float, default=0.0)
    s2s.add_argument("--settle", type=float, default=1.0, help="seconds after the soft start before measuring")
    s2s.add_argument("--push-interval", type=float, default=0.0, help="push the robot every N seconds (0: never)")
    s2s.add_argument("--terrain", metavar="TYPE", help="the sim node's robot on one generated tile of this terrain "
                     "type (as pgr eval --terrain: rough, slope_up, stairs_up, ...) instead of the plane")
    s2s.add_argument("--difficulty", type=float, default=0.5, help="with --terrain: in [0, 1]")
    s2s.add_argument("--terrain-seed", type=int, default=0, help="with --terrain: the generator's seed")
    s2s.add_argument("--eval", type=Path, metavar="EVAL.json", help="`pgr eval --out` result to compare with")
    s2s.add_argument("--log-dir", type=Path, help="node logs (default: beside the policy, sim2sim_logs/)")
    s2s.add_argument("--domain-id", type=_domain_id, metavar="N", help="ROS domain of the nodes (default: "
                     "ROS_DOMAIN_ID when set, else a free one in 1..101); printed at start, so ROS 2 tools on this "
                     "host can watch the topics with ROS_DOMAIN_ID=N")
    s2s.add_argument("--viewer", action="store_true", help="watch and drive it: the sim node's world in MuJoCo's "
                     "viewer (P push, R reset, ctrl + drag perturb) and this terminal's keys on /cmd_vel (arrows/WASD, "
                     "Q/E, space: the keys of pgr play --viewer), starting from --cmd-vx/vy/wz")
    s2s.add_argument("--json", action="store_true")
    s2s.set_defaults(handler=sim2sim_command)

    ros = sub.add_parser("ros", help="start a ROS 2 node, or call one (no ros2 CLI needed)")
    rsub = ros.add_subparsers(dest="ros", required=True)
    for name, text in NODES.items():  # `raw` hands their arguments to the node unparsed
        rsub.add_parser(name, help=f"run {text[1]}; takes --ros-args -p name:=value --params-file FILE")
    call = rsub.add_parser("call", help="a lifecycle transition or the e-stop of the policy node")
    call.add_argument("action", choices=("configure", "activate", "deactivate", "cleanup", "shutdown", "estop"))
    call.add_argument("--node", default="policy_node")
    call.add_argument("--timeout", type=_positive_float, default=10.0)
    ros.set_defaults(handler=call_command)


def raw(argv: list[str]) -> int | None:
    """Commands that parse their own arguments: `pgr ros policy|sim|watchdog --ros-args ...` (argparse would take
    the ROS arguments) and `pgr bench faults ...`."""
    if len(argv) >= 2 and argv[0] == "ros" and argv[1] in NODES:
        module = NODES[argv[1]][0]
        return __import__(module, fromlist=["main"]).main([module, *argv[2:]])
    if argv[:2] == ["bench", "faults"]:
        from pg_robotics_ros.faults import main

        return main(argv[2:])
    return None


def sim2sim_command(args) -> None:
    from pg_robotics.envs import ConfigError

    if not args.policy.is_file():
        raise ConfigError(f"--policy: no file {args.policy}")
    if args.eval is not None and not args.eval.is_file():
        raise ConfigError(f"--eval: no file {args.eval}")
    if args.terrain is not None:
        from pg_robotics.envs.terrains import check_tile

        check_tile(args.terrain, args.difficulty)
    from pg_robotics_ros.sim2sim import Sim2SimError, choose_domain, compare_with_eval, sim2sim, terrain_params

    if args.viewer:
        from pg_robotics_ros.sim_viewer import no_display

        if no_display():  # one line, and what works without a display
            print(f"pgr sim2sim --viewer: {no_display()}; run it without --viewer (it prints the tracking figures)",
                  file=sys.stderr)
            raise SystemExit(2)
    try:
        domain, source = choose_domain(args.domain_id)
    except Sim2SimError as exc:
        raise ConfigError(str(exc)) from None
    print(f"pgr sim2sim: ROS domain {domain} ({source}); watch it from this host with ROS_DOMAIN_ID={domain} "
          f"(e.g. ROS_DOMAIN_ID={domain} ros2 topic echo /odom)", file=sys.stderr, flush=True)
    if args.viewer:
        return sim2sim_viewer_command(args, domain, terrain_params(args.terrain, args.difficulty, args.terrain_seed))
    try:
        result = sim2sim(args.policy, args.duration or 20.0, args.rate_hz, (args.cmd_vx, args.cmd_vy, args.cmd_wz),
                         settle_s=args.settle, push_interval_s=args.push_interval, log_dir=args.log_dir,
                         domain_id=domain, terrain=args.terrain, difficulty=args.difficulty,
                         terrain_seed=args.terrain_seed)
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


def sim2sim_viewer_command(args, domain: int, ground: dict) -> None:
    from pg_robotics.deploy.teleop import HELP
    from pg_robotics_ros.sim2sim import Sim2SimError
    from pg_robotics_ros.sim2sim_viewer import watch

    print(f"pgr sim2sim --viewer: keys here drive /cmd_vel ({HELP}); in the window: P push, R reset, ctrl + drag "
          f"perturb; close the window or Ctrl-C to end", file=sys.stderr, flush=True)
    try:
        result = watch(args.policy, args.rate_hz, (args.cmd_vx, args.cmd_vy, args.cmd_wz), args.duration,
                       args.log_dir, domain, ground=ground)
    except Sim2SimError as exc:
        print(f"pgr sim2sim: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print(json.dumps(result) if args.json else "\n".join(f"{k:<22} {v}" for k, v in result.items()))


def call_command(args) -> None:
    from pg_robotics_ros.call import CallError, call

    try:
        print(call(args.node, args.action, args.timeout))
    except CallError as exc:
        print(f"pgr ros call: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
