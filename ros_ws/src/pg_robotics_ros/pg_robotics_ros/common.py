"""What both nodes share: QoS profiles, the diagnostics message, stamps, and the plain-Python entry point."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.exceptions import ParameterUninitializedException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

# Sensors and velocity commands: best effort, keep last 1 (a late sample is worth less than the next one).
SENSOR_QOS = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST, depth=1)
# Joint commands: reliable, so that a ros2_control forward_command_controller (reliable by default) matches.
COMMAND_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=1)
# What publishes them keeps a few, so that a reader that falls behind for a moment still gets each one in order.
COMMAND_PUB_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=10)

JOINT_STATES, IMU, CMD_VEL, ODOM = "/joint_states", "/imu/data", "/cmd_vel", "/odom"
JOINT_COMMANDS = "/joint_position_controller/commands"
POLICY_COMMANDS = "/policy/commands"  # the policy node's output when a command watchdog relays it to the robot
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
    spin until SIGINT/SIGTERM, then `node.close()` while ROS is still up (the policy node publishes its last,
    safe command there), then shut down.

    rclpy's own signal handlers would shut the context down first, after which nothing can be published, so
    they are off. Python's handlers take both signals instead (whichever thread the kernel picks, nothing is
    killed) and write each to a wakeup pipe; a thread reading it wakes the executor at once."""
    # A control loop thread waits for the GIL at most this long when the executor thread runs Python.
    sys.setswitchinterval(0.0002)
    rclpy.init(args=sys.argv if args is None else args, signal_handler_options=SignalHandlerOptions.NO)
    node, stop = None, threading.Event()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.set_wakeup_fd(wake_write)
    try:
        node = make_node()
        executor = SingleThreadedExecutor()
        executor.add_node(node)

        def wait_for_signal() -> None:
            os.read(wake_read, 1)
            stop.set()
            executor.wake()

        threading.Thread(target=wait_for_signal, name="signals", daemon=True).start()
        while not stop.is_set() and rclpy.ok():
            executor.spin_once()
    except ExternalShutdownException:
        pass
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
        signal.set_wakeup_fd(-1)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
