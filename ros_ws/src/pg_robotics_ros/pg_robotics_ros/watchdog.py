"""`command_watchdog`: the robot-side cover for a policy node that dies (SIGKILL, a crash, a lost network).

A ros2_control `forward_command_controller` holds the last command it got, forever: a policy that dies mid-gait
leaves the robot pushing towards a mid-gait pose. This node sits on the robot computer between the two: it relays
the policy node's commands (`input_topic`, where the policy node publishes when started with
`-r /joint_position_controller/commands:=/policy/commands`) to the controller (`output_topic`), and when none has
come for `timeout_s` (checked four times a command period) it sends safe commands itself, `command_rate_hz` times
a second, until they come back:

  damp  targets follow the measured joint positions (`/joint_states`, by name), moving from the last command at
        most `max_target_rate` rad/s, so the PD controller only damps (the hold of the last command while no
        joint states arrive)
  hold  the last command, explicitly

Only well-formed commands are relayed (one finite value per joint; others are dropped and counted), and every
command sent on, relayed or its own, lies inside the joint limits (the policy's, `robot_description`'s,
`joint_pos_lower`/`joint_pos_upper`'s) and moves at most `max_target_rate / command_rate_hz` from the one before
(a relayed command beyond either is clipped and counted): the switch between the policy's commands and the
watchdog's respects the rate limit too. Before the first command nothing is sent. The policy node itself also sends one last hold or damp command on SIGINT, SIGTERM
and lifecycle shutdown; this node covers what it cannot: SIGKILL, a crash, a stalled loop, a lost link.

Run: `python -m pg_robotics_ros.watchdog --ros-args -p policy:=policy.onnx` (or `pgr ros watchdog ...`, once wired).
"""

from __future__ import annotations

import math
import time
from collections import Counter

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from pg_robotics.deploy.limits import JointLimit, intersect, robot_limits
from pg_robotics.deploy.policy import Policy

from . import common, params
from .common import OK, WARN


class CommandWatchdog(Node):
    def __init__(self, **kwargs):
        super().__init__("command_watchdog", **kwargs)
        params.declare(self, params.WATCHDOG)
        p = params.read(self, params.WATCHDOG)  # a bad value: the node does not start, the error names it
        spec = Policy.load(p["policy"]).spec if p["policy"] else None
        names = p["joint_names"] or (list(spec.joint_names) if spec else None)
        if not names:
            raise ValueError("joint_names: set it (the order of the commands) or set policy")
        self.names, self.mode = list(names), p["mode"]
        tables = [robot_limits(names, p["robot_description"], p["joint_pos_lower"], p["joint_pos_upper"])]
        if spec is not None:
            tables.append({n: JointLimit(*r) for n, r in zip(spec.joint_names, spec.joint_pos_limits)})
        table = intersect(*tables)
        self.lower = np.array([table.get(n, JointLimit()).lower for n in names])
        self.upper = np.array([table.get(n, JointLimit()).upper for n in names])
        self.timeout_ns = int(p["timeout_s"] * 1e9)
        self.max_step = p["max_target_rate"] / p["command_rate_hz"]
        self.period_ns = int(1e9 / p["command_rate_hz"])
        self.last: np.ndarray | None = None  # the last command sent on
        self.last_in_ns = self.last_out_ns = 0
        self.measured: np.ndarray | None = None
        self.timed_out = False
        self.counts = Counter()
        self._msg = Float64MultiArray()
        self.pub = self.create_publisher(Float64MultiArray, p["output_topic"], common.COMMAND_PUB_QOS)
        self.create_subscription(Float64MultiArray, p["input_topic"], self._on_command, common.COMMAND_QOS)
        self.create_subscription(JointState, common.JOINT_STATES, self._on_joint_state, common.SENSOR_QOS)
        self.create_timer(0.25 / p["command_rate_hz"], self._check)
        self._diag = self.create_publisher(common.DiagnosticArray, common.DIAGNOSTICS, 10)
        self.create_timer(p["diagnostics_period_s"], self._publish_diagnostics)
        self.get_logger().info(f"relaying {p['input_topic']} -> {p['output_topic']}; {self.mode} after "
                               f"{p['timeout_s']:g} s without a command")

    def _on_command(self, msg: Float64MultiArray) -> None:
        self.counts["received"] += 1
        cmd = np.array(msg.data)
        if len(cmd) != len(self.names) or not np.isfinite(cmd).all():
            self.counts["rejected"] += 1
            return
        if self.timed_out:
            self.timed_out = False
            self.get_logger().info("commands are back: relaying")
        self.last_in_ns = time.monotonic_ns()
        self._send(cmd, relayed=True)

    def _send(self, cmd: np.ndarray, relayed: bool = False) -> None:
        """Send `cmd` on, clipped into the joint limits and within max_step of the last command sent."""
        lo, hi = self.lower, self.upper
        if self.last is not None:
            lo, hi = np.maximum(lo, self.last - self.max_step), np.minimum(hi, self.last + self.max_step)
        out = np.minimum(np.maximum(cmd, lo), hi)
        if relayed:
            self.counts["relayed"] += 1
            self.counts["clipped"] += not np.array_equal(out, cmd)
        self.last, self.last_out_ns = out, time.monotonic_ns()
        self._msg.data = out.tolist()
        self.pub.publish(self._msg)

    def _on_joint_state(self, msg: JointState) -> None:
        if len(msg.position) != len(msg.name):
            return
        by_name = dict(zip(msg.name, msg.position))
        pos = [by_name.get(n, math.nan) for n in self.names]
        if all(math.isfinite(v) for v in pos):
            self.measured = np.array(pos)

    def _check(self) -> None:
        now = time.monotonic_ns()
        if self.last is None or now - self.last_in_ns < self.timeout_ns or \
                self.timed_out and now - self.last_out_ns < 0.9 * self.period_ns:  # one safe command a period
            return
        if not self.timed_out:
            self.timed_out = True
            self.counts["timeouts"] += 1
            self.get_logger().warning(f"no command for {self.timeout_ns / 1e9:g} s: {self.mode}")
        self._send(self.measured if self.mode == "damp" and self.measured is not None else self.last)
        self.counts["safe_commands"] += 1

    def _publish_diagnostics(self) -> None:
        level, message = (WARN, f"no command: {self.mode}") if self.timed_out else (OK, "relaying")
        values = {"timeouts": 0, "safe_commands": 0, "relayed": 0, "rejected": 0, "clipped": 0, **self.counts}
        self._diag.publish(common.diagnostics(self, level, message, values))

    def close(self) -> None:
        pass


def main(args: list[str] | None = None) -> int:
    return common.run(CommandWatchdog, args)


if __name__ == "__main__":
    raise SystemExit(main())
