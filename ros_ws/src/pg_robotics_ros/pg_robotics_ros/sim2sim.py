"""`pgr sim2sim`: the exported policy walks the simulated robot with ROS 2 between them.

The MuJoCo sim node and the policy node start as two separate processes, on a ROS domain of their own, limited
to this host: `domain_id` (`pgr sim2sim --domain-id N`), else ROS_DOMAIN_ID when set, else a free one
(`free_domain`). Anyone's ROS 2 tools on this host join it with that ROS_DOMAIN_ID. This driver (a third process)
talks to the nodes only over ROS 2: it configures and activates the policy node through its lifecycle services,
publishes `/cmd_vel`, reads ground truth from `/odom` and both nodes' figures from `/diagnostics`.

Measured over `duration` seconds after the soft start and `settle_s`: distance walked (start to end, m), the
planar velocity tracking error as `pgr eval` defines it (|v_xy - command_xy| in the base frame, mean), falls
(counted by the sim), and the policy node's loop: control rate, period jitter p99, latency p99 (joint state
received -> command published), missed deadlines, safety interventions.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.executors import SingleThreadedExecutor

from . import common
from .call import CallError, call_service
from .commands import MAX_DOMAIN_ID

SOFT_START_S = 2.0
FREE_DOMAINS = range(1, 102)  # ROS 2's advice: 0..101 keeps the ports out of Linux's ephemeral range; 0 is the default


class Sim2SimError(RuntimeError):
    pass


def domain_in_use(domain_id: int, participants: int = 5) -> bool:
    """Whether a DDS participant on this host is on `domain_id`: one of the domain's RTPS discovery ports (multicast
    7400 + 250 id, and unicast 7410 + 250 id + 2 k of its first participants k) is taken."""
    base = 7400 + 250 * domain_id
    for port in (base, *(base + 10 + 2 * k for k in range(participants))):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("", port))
            except OSError:
                return True
    return False


def free_domain(candidates=FREE_DOMAINS) -> int:
    """A random domain of `candidates` that no participant on this host uses."""
    order = list(candidates)
    random.Random(os.getpid() ^ time.time_ns()).shuffle(order)
    for domain_id in order:
        if not domain_in_use(domain_id):
            return domain_id
    raise Sim2SimError(f"--domain-id: every ROS domain in {min(candidates)}..{max(candidates)} is in use on this "
                       f"host; pass one")


def choose_domain(domain_id: int | None, environ=os.environ) -> tuple[int, str]:
    """The domain sim2sim runs on and where it came from: `domain_id`, else ROS_DOMAIN_ID when set, else a free one.
    A value outside 0..MAX_DOMAIN_ID is a Sim2SimError naming where it came from."""
    if domain_id is not None:
        source, text = "--domain-id", str(domain_id)
    elif environ.get("ROS_DOMAIN_ID", "").strip():
        source, text = "ROS_DOMAIN_ID", environ["ROS_DOMAIN_ID"].strip()
    else:
        return free_domain(), "a free one"
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_DOMAIN_ID:
        raise Sim2SimError(f"{source}: {text!r} is not a ROS 2 domain id (an integer in 0..{MAX_DOMAIN_ID})"
                           + ("; set another or pass --domain-id N" if source == "ROS_DOMAIN_ID" else ""))
    return value, source


def ros_env(domain_id: int) -> dict:
    """Environment of a child node: its own domain, discovery kept on this host."""
    return {**os.environ, "ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
            "ROS_LOCALHOST_ONLY": "1", "PYTHONUNBUFFERED": "1"}


def start_node(module: str, params: dict, domain_id: int, log: Path, ros_args: tuple = ()) -> subprocess.Popen:
    """`python -m pg_robotics_ros.<module> --ros-args -p key:=value ... *ros_args`, output into `log`."""
    args = [sys.executable, "-m", f"pg_robotics_ros.{module}", "--ros-args", *ros_args]
    for key, value in params.items():
        args += ["-p", f"{key}:={value}"]
    with open(log, "w") as out:
        return subprocess.Popen(args, env=ros_env(domain_id), stdout=out, stderr=subprocess.STDOUT)


def stop_node(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Driver:
    """The third process: lifecycle client, /cmd_vel publisher, /odom and /diagnostics listener."""

    def __init__(self, domain_id: int, command: tuple[float, float, float]):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("sim2sim_driver", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.command = command
        self.cmd_pub = self.node.create_publisher(Twist, common.CMD_VEL, 10)
        self.node.create_timer(0.05, self._publish_command)
        self.odom: list[tuple[float, ...]] = []
        self.record = False
        self.node.create_subscription(Odometry, common.ODOM, self._on_odom, common.SENSOR_QOS)
        self.diagnostics = common.DiagnosticsListener(self.node)
        self.odom_seen = False

    def _publish_command(self) -> None:
        msg = Twist()
        msg.linear.x, msg.linear.y, msg.angular.z = self.command
        self.cmd_pub.publish(msg)

    def _on_odom(self, msg: Odometry) -> None:
        self.odom_seen = True
        if self.record:
            p, v, w = msg.pose.pose.position, msg.twist.twist.linear, msg.twist.twist.angular
            self.odom.append((p.x, p.y, v.x, v.y, w.z))

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=min(0.05, max(end - time.monotonic(), 0.0)))

    def wait_for(self, what: str, ready, timeout: float, procs=()) -> None:
        """Spin until `ready()`; a child process that exits meanwhile is an error that quotes its log."""
        end = time.monotonic() + timeout
        while not ready():
            for proc, log in procs:
                if proc.poll() is not None:
                    raise Sim2SimError(f"{log.stem} exited with code {proc.returncode} while waiting for {what}:\n"
                                       + log.read_text()[-2000:])
            if time.monotonic() > end:
                raise Sim2SimError(f"timed out after {timeout:g} s waiting for {what}")
            self.executor.spin_once(timeout_sec=0.05)

    def transition(self, action: str, timeout: float = 10.0) -> None:
        try:
            call_service(self.node, self.executor, "policy_node", action, timeout)
        except CallError as exc:
            raise Sim2SimError(str(exc)) from None

    def fresh_diagnostics(self, name: str, after: float, timeout: float = 5.0) -> dict:
        self.wait_for(f"diagnostics from {name}", lambda: self.diagnostics.newer_than(name, after), timeout)
        return self.diagnostics.latest[name][1]

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def tracking(odom: np.ndarray, command: tuple[float, float, float]) -> dict:
    """Distance (start to end, m) and mean tracking errors from odometry rows (x, y, vx, vy, wz)."""
    if len(odom) < 2:
        raise Sim2SimError("no odometry received during the measurement")
    lin = np.hypot(odom[:, 2] - command[0], odom[:, 3] - command[1])
    return {"distance_m": round(float(np.hypot(*(odom[-1, :2] - odom[0, :2]))), 3),
            "lin_vel_error": round(float(lin.mean()), 4),
            "ang_vel_error": round(float(np.abs(odom[:, 4] - command[2]).mean()), 4), "odom_samples": len(odom)}


def terrain_params(terrain: str | None, difficulty: float = 0.5, seed: int = 0) -> dict:
    """The sim node's parameters for one generated terrain tile under the robot (none: the plane)."""
    return {"terrain": terrain, "terrain_difficulty": float(difficulty), "terrain_seed": int(seed)} if terrain else {}


def sim2sim(policy: Path, duration: float = 20.0, rate_hz: float = 50.0, command=(0.5, 0.0, 0.0),
            settle_s: float = 1.0, push_interval_s: float = 0.0, log_dir: Path | None = None,
            domain_id: int | None = None, startup_timeout: float = 60.0, terrain: str | None = None,
            difficulty: float = 0.5, terrain_seed: int = 0) -> dict:
    policy = Path(policy).resolve()
    if not policy.is_file():
        raise Sim2SimError(f"--policy: no file {policy}")
    if duration <= 0 or rate_hz <= 0:
        raise Sim2SimError("--duration and --rate-hz: must be > 0")
    domain_id, _ = choose_domain(domain_id)
    log_dir = Path(log_dir or policy.parent / "sim2sim_logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    # the sim publishes at its physics rate: at least the control rate, so every period sees a fresh state
    physics_dt = min(0.005, 1.0 / rate_hz)
    sim_log, policy_log = log_dir / "mujoco_sim_node.log", log_dir / "policy_node.log"
    procs = []
    driver = Driver(domain_id, tuple(command))
    try:
        ground = terrain_params(terrain, difficulty, terrain_seed)
        procs.append((start_node("sim_node", {"policy": policy, "physics_dt": physics_dt,
                                              "push_interval_s": push_interval_s, **ground}, domain_id, sim_log),
                      sim_log))
        procs.append((start_node("policy_node", {"policy": policy, "rate_hz": float(rate_hz),
                                                 "soft_start_s": SOFT_START_S}, domain_id, policy_log), policy_log))
        driver.wait_for("the sim node's /odom", lambda: driver.odom_seen, startup_timeout, procs)
        driver.transition("configure", startup_timeout)
        start_diag = driver.fresh_diagnostics("mujoco_sim_node", time.monotonic())
        driver.transition("activate")
        driver.spin_for(SOFT_START_S + settle_s)
        driver.record = True
        driver.spin_for(duration)
        driver.record = False
        end = time.monotonic()
        pol = driver.fresh_diagnostics("policy_node", end)
        sim = driver.fresh_diagnostics("mujoco_sim_node", end)
        driver.transition("deactivate")
        for proc, log in procs:
            if proc.poll() is not None:
                raise Sim2SimError(f"{log.stem} exited with code {proc.returncode}:\n{log.read_text()[-2000:]}")
    finally:
        for proc, _ in reversed(procs):
            stop_node(proc)
        driver.close()
    result = {"policy": str(policy), "command": list(command), "duration_s": duration, "rate_hz": rate_hz,
              "ground": f"{terrain} (difficulty {difficulty:g}, seed {terrain_seed})" if terrain else "plane",
              **tracking(np.asarray(driver.odom), command),
              "falls": sim["falls"] - start_diag["falls"],
              "control_rate_hz": pol["rate_hz"], "period_jitter_p99_ms": pol["period_jitter_p99_ms"],
              "period_jitter_max_ms": pol["period_jitter_max_ms"], "latency_p50_ms": pol["latency_p50_ms"],
              "latency_p99_ms": pol["latency_p99_ms"], "compute_p99_ms": pol["compute_p99_ms"],
              "missed_deadlines": pol["missed_deadlines"], "safety_interventions": pol["safety_interventions"],
              "rejected_messages": pol["rejected"], "sim_real_time_factor": sim["real_time_factor"],
              "sim_missed_deadlines": sim["missed_deadlines"], "ros_domain_id": domain_id, "logs": str(log_dir)}
    result["rate_error"] = round(abs(result["control_rate_hz"] - rate_hz) / rate_hz, 5)
    return result


def compare_with_eval(result: dict, eval_json: Path) -> dict:
    """Add `pgr eval`'s lin_vel_error at the same command and the ratio, and the goal check."""
    import json

    report = json.loads(Path(eval_json).read_text())
    rows = [r for r in report.get("per_command", []) if np.allclose(r["command"], result["command"])]
    if not rows:
        raise Sim2SimError(f"--eval: {eval_json} has no result for command {result['command']}")
    ref = rows[0]["lin_vel_error"]
    out = {"eval_lin_vel_error": round(ref, 4), "lin_vel_error_ratio": round(result["lin_vel_error"] / ref, 3)}
    out["meets_goal"] = bool(out["lin_vel_error_ratio"] <= 1.5 and result["falls"] == 0
                             and result["rate_error"] <= 0.01 and result["period_jitter_p99_ms"] <= 2.0)
    return out

