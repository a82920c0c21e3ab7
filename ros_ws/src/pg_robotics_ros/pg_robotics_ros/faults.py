"""Fault injection over the real policy node on loopback DDS, and its report:

    python -m pg_robotics_ros.faults --policy runs/demo/policy.onnx [--json] [--log-dir DIR]

A fake robot (`fake_robot.py`) plays the sensors; the policy node runs as its own process with robot limits
narrower than the policy's (`joint_pos_lower`/`joint_pos_upper`), its commands relayed to the robot by the
command watchdog (`watchdog.py`). Faults, one at a time: each sensor silenced alone, /cmd_vel silenced, the
robot's clock stepped back and forward, malformed parameters (NaN, inf, negative, wrong type) at configure and on
change, 10,000 malformed messages over every input topic, a policy that outputs NaN, a policy that makes
onnxruntime raise inside the tick, SIGTERM and SIGKILL of the active node. Every command the node publishes and
every command the robot receives is checked: finite, inside the robot's limits, within the rate limit. The time
from each fault to the first safe command is measured on this process's clock (arrival of the command).

The scenario functions are what tests/test_faults.py runs too, with its assertions on what they return.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pg_robotics.deploy.limits import bound, from_arrays
from pg_robotics.deploy.policy import Policy

from . import common
from .fake_robot import FakeRobot, Sway

RATE = 50.0  # Hz, the policy node's loop
MAX_TARGET_RATE = 10.0  # rad/s: 0.2 rad per period
WATCHDOG_TIMEOUT_S = 0.03  # 1.5 control periods
RELAY = ("-r", f"{common.JOINT_COMMANDS}:={common.POLICY_COMMANDS}")


def command_checks(commands: list, lower: np.ndarray, upper: np.ndarray, max_step: np.ndarray,
                   breaks: list[int] = ()) -> dict:
    """Commands that are non-finite, outside [lower, upper], or change by more than max_step from the one before
    (not across the indices in `breaks`, where another node process starts)."""
    if not commands:
        return {"commands": 0, "nonfinite": 0, "out_of_limits": 0, "over_rate": 0}
    c = np.array([cmd for _, cmd in commands])
    jumps = np.abs(np.diff(c, axis=0)) > max_step + 1e-9
    jumps[[b - 1 for b in breaks if 0 < b < len(c)]] = False
    return {"commands": len(c), "nonfinite": int((~np.isfinite(c)).any(axis=1).sum()),
            "out_of_limits": int(((c < lower - 1e-9) | (c > upper + 1e-9)).any(axis=1).sum()),
            "over_rate": int(jumps.any(axis=1).sum())}


def first_hold_after(commands: list, t: float) -> float | None:
    """Arrival of the first command at or after `t` that repeats the one before (a hold)."""
    for (_, a), (ta, b) in zip(commands, commands[1:]):
        if ta >= t and np.array_equal(a, b):
            return ta
    return None


class Rig:
    """The fake robot, the policy node(s) under test and, with `watchdog`, the command watchdog between them."""

    def __init__(self, robot: FakeRobot, policy: Path, watchdog: bool = False):
        self.robot, self.policy = robot, Path(policy)
        spec = self.spec = Policy.load(policy).spec
        self.sway = Sway(robot, spec.joint_names, spec.default_joint_pos)
        self.cmd_vel: tuple[float, float, float] | None = None  # published with every state when set
        # the robot's own limits: 0.3 rad either side of the default pose, inside the policy's
        default, limits = np.asarray(spec.default_joint_pos), np.asarray(spec.joint_pos_limits)
        self.robot_lower = np.maximum(limits[:, 0], default - 0.3)
        self.robot_upper = np.minimum(limits[:, 1], default + 0.3)
        robot_limits = from_arrays(spec.joint_names, self.robot_lower.tolist(), self.robot_upper.tolist())
        self.lower, self.upper, _ = bound(spec, robot_limits)
        self.max_step = np.full(len(default), MAX_TARGET_RATE / RATE)
        self.watchdog = watchdog
        self.raw = robot.commands  # what the policy node publishes
        if watchdog:
            self.raw = robot.record(common.POLICY_COMMANDS)
        self.breaks: list[int] = []  # where a new policy node's commands start in `raw`
        self.injected = 0

    def policy_params(self, **extra) -> dict:
        return {"policy": self.policy, "autostart": True, "rate_hz": RATE, "soft_start_s": 0.5,
                "max_target_rate": MAX_TARGET_RATE, "stale_periods": 1, "stale_mode": "hold", "escalate_after": 25,
                "cmd_vel_timeout_s": 0.3, "diagnostics_period_s": 0.2,
                "joint_pos_lower": [float(v) for v in self.robot_lower],
                "joint_pos_upper": [float(v) for v in self.robot_upper], **extra}

    def start_policy(self, policy: Path | None = None, name: str = "policy_node", **extra):
        """Start a policy node (autostart) and wait until it runs its policy (`running`); its process. The commands
        of a node stopped just before are drained first (callbacks run only while this process spins), so that none
        of them is counted as the new node's and taken for a jump at its start."""
        self.robot.spin_for(0.3, every=self.tick)
        self.breaks.append(len(self.raw))
        params = self.policy_params(**extra)
        if policy is not None:
            params["policy"] = policy
        proc, _ = self.robot.start("policy_node", params, name=name, ros_args=RELAY if self.watchdog else ())
        self.run_until("commands", lambda: len(self.raw) > self.breaks[-1] + 40)
        self.wait_running("a running policy", name)
        return proc

    def start_watchdog(self):
        limits = {k: v for k, v in self.policy_params().items() if k.startswith("joint_pos_")}
        proc, _ = self.robot.start("watchdog", {"policy": self.policy, "command_rate_hz": RATE, **limits,
                                                "max_target_rate": MAX_TARGET_RATE, "timeout_s": WATCHDOG_TIMEOUT_S,
                                                "mode": "damp", "diagnostics_period_s": 0.2})
        return proc

    def stand(self) -> None:
        """The swaying robot of the start again (after `stop_signal` moved it)."""
        self.sway.default, self.sway.amplitude = np.asarray(self.spec.default_joint_pos), 0.05

    def tick(self) -> None:
        self.sway.publish()
        if self.cmd_vel is not None:
            self.robot.publish_cmd_vel(*self.cmd_vel)

    def run_until(self, what: str, ready, timeout: float = 30.0) -> None:
        self.robot.wait_for(what, ready, timeout, every=self.tick)

    def run_commands(self, n: int, what: str = "commands") -> None:
        since = len(self.raw)
        self.run_until(what, lambda: len(self.raw) - since >= n)

    def running(self, name: str = "policy_node", periods: int = 5) -> bool:
        """The node runs its policy: between two fresh diagnostics it is "active" with no stale input and its
        count of periods in which the policy ran (`policy_runs`) grew by `periods` or more. Judged by the node,
        not by its commands: a policy whose targets sit at the robot's limits sends the same command often."""
        before = self.diagnostics(name)[0].get("policy_runs", 0)
        values, message, _ = self.diagnostics(name)
        return message == "active" and values.get("policy_runs", 0) - before >= periods

    def wait_running(self, what: str, name: str = "policy_node", timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.running(name):
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}: node {name} not running its policy "
                                   f"(diagnostics: {self.robot.diagnostics.latest.get(name, (0, {}, 'none'))[2]})")

    def activated(self, since: int) -> int:
        """Index of the first command after an activation requested when `since` commands had come (the first
        that differs from the hold before it); marked as a break for the rate check: an activation starts from
        the measured pose, whatever was held before."""
        i = next(i for i in range(since, len(self.raw)) if not np.array_equal(self.raw[i][1], self.raw[since - 1][1]))
        self.breaks.append(i)
        return i

    def measured(self, command: np.ndarray, last: int = 1000) -> bool:
        """`command` is one of the last poses the robot published, clipped into the limits."""
        return any(np.array_equal(command, np.clip(p, self.lower, self.upper)) for p in self.sway.published[-last:])

    def diagnostics(self, name: str = "policy_node") -> tuple[dict, str, int]:
        return self.robot.fresh_diagnostics(name, every=self.tick)

    def checks(self) -> dict:
        """The command checks of what the policy node(s) published and, with the watchdog, what the robot got."""
        out = {"policy_node": command_checks(self.raw, self.lower, self.upper, self.max_step, self.breaks)}
        if self.watchdog:
            out["robot"] = command_checks(self.robot.commands, self.lower, self.upper, self.max_step)
        return out


def _timing(t_fault: float, t_safe: float | None) -> dict:
    if t_safe is None:
        return {"time_to_safe_ms": None, "periods_to_safe": None}
    ms = 1e3 * (t_safe - t_fault)
    return {"time_to_safe_ms": round(ms, 1), "periods_to_safe": round(ms / (1e3 / RATE), 2)}


# ---- the faults -------------------------------------------------------------------------------------------------
def silence(rig: Rig, which: str) -> dict:
    """One input (`joints` or `imu`) stops while the other goes on: hold, counted for that input; then back."""
    rig.run_commands(10)
    setattr(rig.sway, which, False)
    t_fault = rig.sway.last_joints if which == "joints" else rig.sway.last_imu
    rig.injected += 1
    rig.run_until(f"a hold after silencing {which}", lambda: first_hold_after(rig.raw, t_fault) is not None)
    t_safe = first_hold_after(rig.raw, t_fault)
    rig.run_commands(10)
    values, message, level = rig.diagnostics()
    setattr(rig.sway, which, True)
    rig.wait_running(f"the policy running again after {which} returned")
    return {"fault": f"silence {which}", "message": message, "level": level,
            "stale_joint_states": values["stale_joint_states"], "stale_imu": values["stale_imu"],
            "recovered": rig.running(), **_timing(t_fault, t_safe)}


def cmd_vel_silence(rig: Rig) -> dict:
    """/cmd_vel stops: after cmd_vel_timeout_s the policy gets a zero command (counted as stale_cmd_vel)."""
    before = rig.diagnostics()[0]["stale_cmd_vel"]
    rig.cmd_vel = (0.3, 0.0, 0.0)
    rig.run_commands(10)
    rig.cmd_vel = None
    rig.injected += 1
    rig.robot.spin_for(0.5, every=rig.tick)  # longer than the node's cmd_vel_timeout_s (0.3)
    values = rig.diagnostics()[0]
    return {"fault": "silence cmd_vel", "stale_cmd_vel": values["stale_cmd_vel"] - before,
            "recovered": rig.running()}


def clock_steps(rig: Rig) -> dict:
    """The robot's clock goes back 1000 s for good, then one sample comes 1000 s ahead: never latched."""
    rig.run_commands(10)
    rig.sway.stamp_offset -= 1000.0
    rig.injected += 1
    rig.run_commands(20, "commands after the clock went back")
    back = rig.running()
    r, sway = rig.robot, rig.sway
    r.publish_state(sway.names, sway.pose(), stamp=r.stamp + sway.stamp_offset + 1000.0)
    rig.injected += 1
    rig.run_commands(20, "commands after a stamp from the future")
    values = rig.diagnostics()[0]
    return {"fault": "clock steps", "running_after_back": back, "running_after_forward": rig.running(),
            "reanchored_joint_states": values.get("reanchored_joint_states", 0),
            "reanchored_imu": values.get("reanchored_imu", 0),
            "rejected_stamps": values.get("rejected_joint_states:stamp", 0) + values.get("rejected_imu:stamp", 0)}


BAD_VALUES = [("max_target_rate", math.nan), ("limit_margin", math.nan), ("soft_start_s", math.inf),
              ("rate_hz", -50.0), ("cmd_vel_timeout_s", 0.0), ("stale_periods", "two"), ("escalate_after", 1.5),
              ("stale_mode", "brake"), ("autostart", "yes"), ("joint_pos_lower", [math.nan] * 3)]


def bad_parameters(rig: Rig, node: str = "policy_node") -> dict:
    """Each malformed value set on the running node is refused with a reason naming the parameter."""
    results = rig.robot.set_parameters(node, dict(BAD_VALUES))
    rig.injected += len(results)
    refused = [not ok and reason.startswith(name) for (name, _), (ok, reason) in zip(BAD_VALUES, results)]
    rig.run_commands(10)
    return {"fault": "malformed parameters on change", "injected": len(results), "refused": sum(refused),
            "reasons": [reason for _, reason in results], "running": rig.running()}


def fuzz(rig: Rig, messages: int = 10_000, seed: int = 0) -> dict:
    """`messages` messages over /joint_states, /imu/data and /cmd_vel, most of them malformed; diagnostics after."""
    spec, robot, sway = rig.spec, rig.robot, rig.sway
    names, default = list(spec.joint_names), np.asarray(spec.default_joint_pos)
    rng = np.random.default_rng(seed)
    bad = [math.nan, math.inf, -math.inf]
    start = rig.diagnostics()[0]

    def malformed() -> None:
        kind = rng.integers(14)
        pos = default + rng.normal(0, 0.5, len(names))
        state = lambda **kw: robot.publish_state(**{"names": names, "positions": pos, **kw})  # noqa: E731
        if kind == 0:  # NaN or infinity in a joint state
            pos[rng.integers(len(pos))] = rng.choice(bad)
            state(imu=False)
        elif kind == 1:  # wrong length
            state(positions=pos[:rng.integers(len(pos))], imu=False)
        elif kind == 2:  # a policy joint replaced by an unknown one
            state(names=[*names[:-1], "unknown_joint"], imu=False)
        elif kind == 3:  # an old joint state stamp
            state(stamp=robot.stamp + sway.stamp_offset - rng.uniform(0.01, 1.0), imu=False)
        elif kind == 4:  # duplicate names
            state(names=[names[0], *names[:-1]], imu=False)
        elif kind == 5:  # absurd joint angles and velocities
            state(positions=rng.normal(0, 1e6, len(names)), velocities=rng.normal(0, 1e6, len(names)), imu=False)
        elif kind == 6:  # not a unit quaternion
            state(quat=rng.normal(0, 3, 4), joints=False)
        elif kind == 7:  # non-finite gyro or quaternion
            state(quat=(0.0, 0.0, 0.0, rng.choice(bad)), gyro=(rng.choice(bad), 0.0, 0.0), joints=False)
        elif kind == 8:  # an old IMU stamp
            state(stamp=robot.stamp + sway.stamp_offset - rng.uniform(0.01, 1.0), joints=False)
        elif kind == 9:  # absurd but finite gyro
            state(gyro=rng.normal(0, 1e9, 3), joints=False)
        elif kind == 10:  # non-finite or huge velocity command
            robot.publish_cmd_vel(rng.choice([*bad, 1e9, -1e300]), rng.normal(), rng.normal())
        else:  # valid states in between
            sway.publish()

    def received() -> int:
        values = robot.diagnostics.latest.get("policy_node", (0, {}))[1]
        return sum(v for k, v in values.items() if k.startswith("received_")) - \
            sum(v for k, v in start.items() if k.startswith("received_"))

    deadline = time.monotonic() + 180.0  # publish until the node has received enough (best effort drops some)
    while received() < messages and time.monotonic() < deadline:
        robot.spin_for(0.5, every=malformed, period=0.0002)
    rig.diagnostics()
    values = rig.diagnostics()[0]
    rig.injected += received()
    rig.run_commands(20, "commands after the fuzz")
    return {"fault": "fuzz", "received": received(), "estopped": str(values["estopped"]) == "True",
            **{k: v - start.get(k, 0) for k, v in values.items() if k.startswith("rejected_")},
            "bad_state": values["bad_state"] - start["bad_state"]}


def bad_policy(rig: Rig, kind: str) -> dict:
    """A policy that outputs NaN ("nan") or raises in onnxruntime ("raise") from a /cmd_vel on."""
    top = rig.spec.command_ranges[0][1]
    rig.run_commands(10)
    t_fault = time.monotonic()
    rig.cmd_vel = (top, 0.0, 0.0)
    rig.injected += 1
    rig.run_until("a hold after the fault", lambda: first_hold_after(rig.raw, t_fault) is not None)
    t_safe = first_hold_after(rig.raw, t_fault)
    if kind == "nan":  # escalation: the e-stop latches after escalate_after held periods
        rig.run_until("the e-stop", lambda: rig.diagnostics()[1].startswith("e-stop latched"))
    else:
        rig.run_until("the node inactive", lambda: rig.robot.lifecycle_state("policy_node") == "inactive")
    since = len(rig.raw)
    rig.run_commands(10, "the loop going on sending hold")
    values, message, level = rig.diagnostics()
    held = all(np.array_equal(c, rig.raw[since][1]) for _, c in rig.raw[since:])
    rig.cmd_vel = None
    return {"fault": f"{kind} policy", "message": message, "level": level, "held_after": held,
            "lifecycle": rig.robot.lifecycle_state("policy_node"), "loop_errors": values["loop_errors"],
            "loop_last_tick_age_ms": values["loop_last_tick_age_ms"], "nonfinite": values["safety_nonfinite"],
            **_timing(t_fault, t_safe)}


def stop_signal(rig: Rig, proc, sig: int) -> dict:
    """SIGTERM or SIGKILL the active node (relayed by the watchdog) while the robot stands still at a pose away
    from the last targets: the node's own last command (SIGTERM), then the watchdog's damp commands, which end at
    the measured pose."""
    rig.sway.amplitude = 0.0
    rig.sway.default = rig.sway.default + 0.1  # stands 0.1 rad away from the policy's pose
    rig.run_commands(20)
    rig.run_until("the watchdog relaying this node", lambda: bool(rig.robot.commands) and any(  # DDS discovery
        np.array_equal(rig.robot.commands[-1][1], c) for _, c in rig.raw[-5:]))  # of a new node can lag
    raw_before = len(rig.raw)
    t_fault = time.monotonic()
    proc.send_signal(sig)
    rig.injected += 1
    rig.run_until("the node's exit", lambda: proc.poll() is not None)
    rig.run_until("the watchdog's damp commands", lambda: rig.robot.commands[-1][0] > t_fault + 0.5)
    last_raw = rig.raw[-1][1]
    sent_after = len(rig.raw) > raw_before  # the node's own last command (SIGTERM)
    own = [t for t, c in rig.robot.commands if t > t_fault and not np.array_equal(c, last_raw)]
    t_safe = rig.raw[-1][0] if sig == signal.SIGTERM and sent_after else (own[0] if own else None)
    settled = np.abs(rig.robot.commands[-1][1] - np.clip(rig.sway.pose(), rig.lower, rig.upper)).max()
    name = {signal.SIGTERM: "SIGTERM", signal.SIGKILL: "SIGKILL"}[sig]
    return {"fault": name, "exit_code": proc.returncode, "final_command_is_hold":
            bool(sent_after and np.array_equal(rig.raw[-1][1], rig.raw[-2][1])) if sig == signal.SIGTERM else None,
            "damped_to_measured_pose": bool(settled < 1e-9), **_timing(t_fault, t_safe)}


def bad_configure(robot: FakeRobot, rig: Rig) -> list[dict]:
    """Nodes started with malformed parameters: configure fails, naming the parameter; the node stays up."""
    cases = {"nan": ("max_target_rate", ".nan"), "inf": ("soft_start_s", ".inf"), "negative": ("rate_hz", "-5.0"),
             "type": ("stale_periods", "abc")}
    procs = {}
    for label, (name, text) in cases.items():
        params = {**rig.policy_params(autostart=False), name: text}
        procs[label] = robot.start("policy_node", params, name=f"policy_{label}")
    out = []
    for label, (name, _) in cases.items():
        try:
            robot.call(f"policy_{label}", "configure")
            failed = False
        except Exception as exc:  # CallError: configure failed, as it must
            failed = "configure failed" in str(exc)
        _, message, level = robot.fresh_diagnostics(f"policy_{label}")
        out.append({"fault": f"configure with {label} {name}", "refused": failed and message.startswith(
            f"configure failed: {name}"), "message": message, "level": level, "up": procs[label][0].poll() is None})
        rig.injected += 1
    return out


# ---- the report -------------------------------------------------------------------------------------------------
def report(policy: Path, log_dir: Path, domain_id: int) -> dict:
    from .fault_models import faulty_policy

    log_dir.mkdir(parents=True, exist_ok=True)
    nan_model = faulty_policy(policy, log_dir / "nan_policy.onnx", "nan")
    raise_model = faulty_policy(policy, log_dir / "raise_policy.onnx", "raise")
    robot = FakeRobot(log_dir, domain_id)
    rows = []
    try:
        rig = Rig(robot, policy, watchdog=True)
        rig.start_watchdog()
        node = rig.start_policy()
        rows += [silence(rig, "joints"), silence(rig, "imu"), cmd_vel_silence(rig), clock_steps(rig),
                 bad_parameters(rig), fuzz(rig)]
        rows.append(stop_signal(rig, node, signal.SIGTERM))
        rig.stand()
        for model, kind in ((nan_model, "nan"), (raise_model, "raise")):
            node = rig.start_policy(model)
            rows.append(bad_policy(rig, kind))
            node.send_signal(signal.SIGINT)
            node.wait(30)
        node = rig.start_policy()
        rows.append(stop_signal(rig, node, signal.SIGKILL))
        rows += bad_configure(robot, rig)
        checks = rig.checks()
        watchdog = robot.fresh_diagnostics("command_watchdog")[0]
    finally:
        robot.close()
    timed = [r for r in rows if r.get("periods_to_safe") is not None]
    worst = max(timed, key=lambda r: r["periods_to_safe"])
    bad = sum(checks[k][field] for k in checks for field in ("nonfinite", "out_of_limits", "over_rate"))
    return {"policy": str(policy), "rate_hz": RATE, "max_target_rate": MAX_TARGET_RATE,
            "watchdog_timeout_s": WATCHDOG_TIMEOUT_S, "faults_injected": rig.injected,
            "commands_published": checks["policy_node"]["commands"], "commands_received": checks["robot"]["commands"],
            "commands_nonfinite": checks["policy_node"]["nonfinite"] + checks["robot"]["nonfinite"],
            "commands_out_of_limits": checks["policy_node"]["out_of_limits"] + checks["robot"]["out_of_limits"],
            "commands_over_rate": checks["policy_node"]["over_rate"] + checks["robot"]["over_rate"],
            "bad_commands": bad, "worst_time_to_safe": f"{worst['fault']}: {worst['periods_to_safe']} periods",
            "watchdog": {k: watchdog[k] for k in ("timeouts", "safe_commands", "relayed", "clipped", "rejected")},
            "faults": rows, "checks": checks, "logs": str(log_dir), **machine()}


def machine() -> dict:
    import platform

    return {"python": platform.python_version(), "cpus": os.cpu_count(), "host": platform.node()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pg_robotics_ros.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", required=True, type=Path, help="an exported policy.onnx")
    parser.add_argument("--log-dir", type=Path, help="node logs and the broken models (default: a temp dir)")
    parser.add_argument("--domain-id", type=int, help="ROS domain (default: a random one in 101..140)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.policy.is_file():
        print(f"--policy: no file {args.policy}", file=sys.stderr)
        return 2
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="pgr_faults_"))
    domain = args.domain_id if args.domain_id is not None else random.Random(time.time_ns()).randint(101, 140)
    result = report(args.policy.resolve(), log_dir, domain)
    if args.json:
        print(json.dumps(result))
    else:
        for row in result.pop("faults"):
            print(f"  {row['fault']:<40} " + ", ".join(f"{k}={v}" for k, v in row.items() if k != "fault"))
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0 if result["bad_commands"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
