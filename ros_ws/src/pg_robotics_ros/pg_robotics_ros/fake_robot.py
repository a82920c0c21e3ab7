"""A fake robot on real ROS 2 (rclpy, Fast DDS on loopback) for testing the nodes as separate processes: it starts
them, publishes joint states, IMU and /cmd_vel, records every joint command it receives (with its arrival time),
reads the nodes' diagnostics, calls lifecycle transitions and sets parameters. Used by the tests
(tests/ros_harness.py) and the fault-injection report (`pg_robotics_ros.faults`)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import rclpy
from geometry_msgs.msg import Twist
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray

from . import common
from .call import call_service, lifecycle_state, request
from .sim2sim import start_node, stop_node

# every command, in order, even when this process falls behind for a while
RECORD_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=1000)


class FakeRobot:
    def __init__(self, log_dir: Path, domain_id: int, commands_topic: str = common.JOINT_COMMANDS):
        self.domain_id, self.log_dir = domain_id, Path(log_dir)
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("fake_robot", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        n = self.node
        self.pub_joints = n.create_publisher(JointState, common.JOINT_STATES, common.SENSOR_QOS)
        self.pub_imu = n.create_publisher(Imu, common.IMU, common.SENSOR_QOS)
        self.pub_cmd = n.create_publisher(Twist, common.CMD_VEL, common.SENSOR_QOS)
        self.commands = self.record(commands_topic)
        self.diagnostics = common.DiagnosticsListener(n)
        self.procs = []
        self.stamp = 1.0

    def record(self, topic: str) -> list[tuple[float, np.ndarray]]:
        """Every Float64MultiArray on `topic` from now on, as (arrival (monotonic s), values), appended in order."""
        out: list[tuple[float, np.ndarray]] = []
        self.node.create_subscription(Float64MultiArray, topic,
                                      lambda msg: out.append((time.monotonic(), np.array(msg.data))), RECORD_QOS)
        return out

    # ---- processes --------------------------------------------------------------------------------------------
    def start(self, module: str, params: dict, name: str | None = None, ros_args: tuple = ()):
        """`python -m pg_robotics_ros.<module>` as node `name`, on this robot's domain; (process, log path)."""
        name = name or module
        log, k = self.log_dir / f"{name}.log", 1
        while log.exists():  # a node started again under the same name: a log of its own
            log, k = self.log_dir / f"{name}.{k}.log", k + 1
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
            if time.monotonic() > end:
                raise TimeoutError(f"timed out waiting for {what}")
            self.spin_for(0.05, every)

    def wait_for_commands(self, what: str, since: int, count: float, every=None) -> list:
        """`count` more commands after the first `since`, however long a loaded machine takes (30 s at most):
        counted, not timed."""
        self.wait_for(what, lambda: len(self.commands) - since >= count, timeout=30.0, every=every)
        return self.commands[since:]

    def call(self, node_name: str, action: str, timeout: float = 30.0) -> str:
        return call_service(self.node, self.executor, node_name, action, timeout)

    def set_parameters(self, node_name: str, values: dict) -> list[tuple[bool, str]]:
        """Set parameters of a running node (one request each); (successful, reason) for each."""
        out = []
        for name, value in values.items():
            req = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
            result = request(self.node, self.executor, SetParameters, f"/{node_name}/set_parameters", req,
                             30.0).results[0]
            out.append((result.successful, result.reason))
        return out

    def lifecycle_state(self, node_name: str) -> str:
        return lifecycle_state(self.node, self.executor, node_name, 30.0)

    def fresh_diagnostics(self, name: str, timeout: float = 10.0, every=None) -> tuple[dict, str, int]:
        """The first diagnostics of node `name` published from now on: (values, message, level)."""
        after = time.monotonic()
        self.wait_for(f"diagnostics of {name}", lambda: self.diagnostics.newer_than(name, after), timeout, every)
        return self.diagnostics.latest[name][1:]

    # ---- the fake robot ---------------------------------------------------------------------------------------
    def publish_state(self, names, positions, velocities=None, quat=(0.0, 0.0, 0.0, 1.0), gyro=(0.0, 0.0, 0.0),
                      stamp: float | None = None, joints: bool = True, imu: bool = True) -> None:
        """Joint states and IMU with one stamp (the next one when not given); `joints`/`imu` False: leave it out."""
        if stamp is None:
            self.stamp += 0.001
            stamp = self.stamp
        sec = math.floor(stamp)
        js = JointState(name=list(names), position=[float(v) for v in positions],
                        velocity=[0.0] * len(positions) if velocities is None else [float(v) for v in velocities])
        js.header.stamp.sec, js.header.stamp.nanosec = int(sec), min(int((stamp - sec) * 1e9), 999_999_999)
        msg = Imu()
        msg.header.stamp = js.header.stamp
        o = msg.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in quat)
        w = msg.angular_velocity
        w.x, w.y, w.z = (float(v) for v in gyro)
        if imu:
            self.pub_imu.publish(msg)
        if joints:
            self.pub_joints.publish(js)

    def publish_cmd_vel(self, vx: float, vy: float = 0.0, wz: float = 0.0) -> None:
        msg = Twist()
        msg.linear.x, msg.linear.y, msg.angular.z = float(vx), float(vy), float(wz)
        self.pub_cmd.publish(msg)


class Sway:
    """A standing robot whose joints sway a little, so that every new state gives a different command:
    `publish()` sends the next state (joint states and IMU unless switched off in `joints` / `imu`)."""

    def __init__(self, robot: FakeRobot, joint_names, default_pose, amplitude: float = 0.05):
        self.robot, self.names = robot, list(joint_names)
        self.default, self.amplitude = np.asarray(default_pose, dtype=float), amplitude
        self.t = 0.0
        self.joints = self.imu = True
        self.stamp_offset = 0.0  # added to every stamp: a clock step of the robot's computer
        self.last_joints = self.last_imu = 0.0  # when each was last published (monotonic s)
        self.published: list[np.ndarray] = []  # every joint pose published

    def pose(self) -> np.ndarray:
        return self.default + self.amplitude * np.sin(2 * math.pi * 1.5 * self.t + np.arange(len(self.names)))

    def publish(self) -> None:
        self.t += 0.01
        r = self.robot
        r.stamp += 0.001
        pose = self.pose()
        r.publish_state(self.names, pose, stamp=r.stamp + self.stamp_offset, joints=self.joints, imu=self.imu)
        if self.joints:
            self.published.append(pose)
        now = time.monotonic()
        self.last_joints = now if self.joints else self.last_joints
        self.last_imu = now if self.imu else self.last_imu
