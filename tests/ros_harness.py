"""A fake robot on real ROS 2 (rclpy, Fast DDS on loopback) for testing the nodes as separate processes: it
publishes joint states, IMU and /cmd_vel, records every joint command and the nodes' diagnostics, and calls
lifecycle transitions. Each harness uses its own ROS domain, so tests running in parallel do not hear each other."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import rclpy
from geometry_msgs.msg import Twist
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray

from pg_robotics_ros import common
from pg_robotics_ros.call import call_service
from pg_robotics_ros.sim2sim import start_node, stop_node


class Harness:
    def __init__(self, log_dir: Path):
        # xdist workers (gw0, gw1, ...) and processes get different domains
        worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
        self.domain_id = 150 + 20 * (worker % 4) + os.getpid() % 20
        self.log_dir = log_dir
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=self.domain_id)
        self.node = rclpy.create_node("test_harness", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        n = self.node
        self.pub_joints = n.create_publisher(JointState, common.JOINT_STATES, common.SENSOR_QOS)
        self.pub_imu = n.create_publisher(Imu, common.IMU, common.SENSOR_QOS)
        self.pub_cmd = n.create_publisher(Twist, common.CMD_VEL, common.SENSOR_QOS)
        self.commands: list[tuple[float, np.ndarray]] = []
        n.create_subscription(Float64MultiArray, common.JOINT_COMMANDS, self._on_command, common.COMMAND_QOS)
        self.diagnostics = common.DiagnosticsListener(n)
        self.procs = []
        self.stamp = 1.0

    def _on_command(self, msg) -> None:
        self.commands.append((time.monotonic(), np.array(msg.data)))

    # ---- processes --------------------------------------------------------------------------------------------
    def start(self, module: str, params: dict, name: str | None = None, ros_args: tuple = ()):
        name = name or module
        log = self.log_dir / f"{name}.log"
        remap = ("-r", f"__node:={name}") if name != module else ()
        proc = start_node(module, params, self.domain_id, log, (*remap, *ros_args))
        self.procs.append(proc)
        return proc, log

    def close(self) -> None:
        for proc in self.procs:
            stop_node(proc)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    # ---- time -------------------------------------------------------------------------------------------------
    def spin_for(self, seconds: float, every=None, period: float = 0.01) -> None:
        """Spin for `seconds`, calling `every()` each `period` (e.g. to publish a state)."""
        end = next_call = time.monotonic()
        end += seconds
        while (now := time.monotonic()) < end:
            if every is not None and now >= next_call:
                every()
                next_call += period
            self.executor.spin_once(timeout_sec=max(0.0, min(next_call - now if every else 0.02, end - now)))

    def wait_for(self, what: str, ready, timeout: float = 60.0, every=None) -> None:
        end = time.monotonic() + timeout
        while not ready():
            assert time.monotonic() < end, f"timed out waiting for {what}"
            self.spin_for(0.05, every)

    def wait_for_commands(self, what: str, since: int, count: float, every=None) -> list:
        """`count` more commands after the first `since`, however long a loaded machine takes (30 s at most):
        counted, not timed."""
        self.wait_for(what, lambda: len(self.commands) - since >= count, timeout=30.0, every=every)
        return self.commands[since:]

    def call(self, node_name: str, action: str, timeout: float = 30.0) -> str:
        return call_service(self.node, self.executor, node_name, action, timeout)

    def fresh_diagnostics(self, name: str, timeout: float = 10.0, every=None) -> tuple[dict, str, int]:
        after = time.monotonic()
        self.wait_for(f"diagnostics of {name}", lambda: self.diagnostics.newer_than(name, after), timeout, every)
        return self.diagnostics.latest[name][1:]

    # ---- the fake robot ---------------------------------------------------------------------------------------
    def publish_state(self, names, positions, velocities=None, quat=(0.0, 0.0, 0.0, 1.0), gyro=(0.0, 0.0, 0.0),
                      stamp: float | None = None) -> None:
        if stamp is None:
            self.stamp += 0.001
            stamp = self.stamp
        sec = math.floor(stamp)
        js = JointState(name=list(names), position=[float(v) for v in positions],
                        velocity=[0.0] * len(positions) if velocities is None else [float(v) for v in velocities])
        js.header.stamp.sec, js.header.stamp.nanosec = int(sec), int((stamp - sec) * 1e9)
        imu = Imu()
        imu.header.stamp = js.header.stamp
        o = imu.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in quat)
        w = imu.angular_velocity
        w.x, w.y, w.z = (float(v) for v in gyro)
        self.pub_imu.publish(imu)
        self.pub_joints.publish(js)

    def publish_cmd_vel(self, vx: float, vy: float = 0.0, wz: float = 0.0) -> None:
        msg = Twist()
        msg.linear.x, msg.linear.y, msg.angular.z = float(vx), float(vy), float(wz)
        self.pub_cmd.publish(msg)
