"""What both nodes share: QoS profiles, the diagnostics message, stamps, and the plain-Python entry point."""

from __future__ import annotations

import sys
import time
from typing import Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.exceptions import ParameterUninitializedException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

# Sensors and velocity commands: best effort, keep last 1 (a late sample is worth less than the next one).
SENSOR_QOS = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST, depth=1)
# Joint commands: reliable, so that a ros2_control forward_command_controller (reliable by default) matches.
COMMAND_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=1)

JOINT_STATES, IMU, CMD_VEL, ODOM = "/joint_states", "/imu/data", "/cmd_vel", "/odom"
JOINT_COMMANDS = "/joint_position_controller/commands"
DIAGNOSTICS = "/diagnostics"

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


def param(node, name: str):
    """A declared parameter's value; None for a typed parameter declared without a default and not set."""
    try:
        return node.get_parameter(name).value
    except ParameterUninitializedException:
        return None


def stamp_seconds(stamp) -> float:
    return stamp.sec + 1e-9 * stamp.nanosec


def diagnostics(node, level: bytes, message: str, values: dict) -> DiagnosticArray:
    status = DiagnosticStatus(level=level, name=node.get_name(), message=message, hardware_id="pg_robotics",
                              values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = node.get_clock().now().to_msg()
    return msg


def diagnostic_values(status: DiagnosticStatus) -> dict:
    """A status's values with numbers parsed back (what `diagnostics` wrote)."""
    out = {}
    for kv in status.values:
        try:
            out[kv.key] = int(kv.value)
        except ValueError:
            try:
                out[kv.key] = float(kv.value)
            except ValueError:
                out[kv.key] = kv.value
    return out


class DiagnosticsListener:
    """The newest /diagnostics status of each node: `latest[name] = (received at (monotonic s), values, message,
    level)`, values parsed by `diagnostic_values`."""

    def __init__(self, node):
        self.latest: dict[str, tuple[float, dict, str, int]] = {}
        node.create_subscription(DiagnosticArray, DIAGNOSTICS, self._on_diagnostics, 10)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for s in msg.status:
            self.latest[s.name] = (time.monotonic(), diagnostic_values(s), s.message, s.level[0])

    def newer_than(self, name: str, after: float) -> bool:
        return name in self.latest and self.latest[name][0] > after


def run(make_node: Callable, args: list[str] | None = None) -> int:
    """Start a node as a plain process (`python -m ...` takes `--ros-args -p name:=value --params-file F`):
    spin until SIGINT/SIGTERM, then close the node cleanly."""
    # A control loop thread waits for the GIL at most this long when the executor thread runs Python.
    sys.setswitchinterval(0.0002)
    rclpy.init(args=sys.argv if args is None else args)
    node = None
    try:
        node = make_node()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
