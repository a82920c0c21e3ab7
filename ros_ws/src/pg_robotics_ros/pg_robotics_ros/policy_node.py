"""`policy_node`: the exported policy as a ROS 2 lifecycle node. All decisions are `pg_robotics.deploy`'s; this
node moves messages in and out and keeps time.

  configure   load the ONNX (`policy` parameter), check its contract and the `joint_names` map
  activate    soft start from the measured pose, then the control loop at the policy's control_dt (or `rate_hz`),
              on absolute time (pg_robotics_ros.loop)
  deactivate  the loop keeps sending the hold or damp command (`stale_mode`) without running the policy
  ~/estop     (std_srvs/Trigger) latches hold; deactivate + activate clears it

Every incoming message is checked where it arrives: a JointState whose name/position/velocity lengths differ,
with duplicate names, a non-finite value or a stamp not newer than the last accepted one is dropped and counted
(per topic and reason, in the diagnostics); so is an Imu with a non-finite or non-unit orientation and a
non-finite Twist. What passes goes to `Controller.step`, which holds on anything else (missing joint, stale
sensors, non-finite policy output) and clamps; the node publishes nothing before it has measured the robot's pose.
A `/cmd_vel` older than `cmd_vel_timeout_s` becomes a zero command.

Run: `python -m pg_robotics_ros.policy_node --ros-args -p policy:=policy.onnx -p autostart:=true`
(or `pgr ros policy ...`, or `ros2 launch pg_robotics_ros sim2sim.launch.py` with a full ROS install).
"""

from __future__ import annotations

import math
import time
from collections import Counter

import numpy as np
from geometry_msgs.msg import Twist
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from pg_robotics.deploy.contract import ContractError
from pg_robotics.deploy.controller import Controller
from pg_robotics.deploy.observation import QUAT_NORM_TOLERANCE, RobotState
from pg_robotics.deploy.safety import SafetyCfg

from . import common
from .common import ERROR, OK, WARN
from .loop import PeriodicLoop, percentile_ms

PARAMETERS = {
    "policy": "",  # path to policy.onnx
    "joint_names": Parameter.Type.STRING_ARRAY,  # order of the published command; default: the policy's
    "rate_hz": 0.0,  # 0: 1 / the policy's control_dt
    "soft_start_s": 2.0,
    "max_target_rate": 60.0,
    "stale_periods": 2,  # hold on the 2nd period without a fresh joint state
    "stale_mode": "hold",  # or "damp"; also what a deactivated node sends
    "limit_margin": 0.0,
    "cmd_vel_timeout_s": 0.5,
    "autostart": False,  # configure and activate at start-up
    "diagnostics_period_s": 1.0,
}


class PolicyNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("policy_node", **kwargs)
        for name, default in PARAMETERS.items():
            self.declare_parameter(name, default)
        self.controller: Controller | None = None
        self.loop: PeriodicLoop | None = None
        self.error = ""
        self.active = False
        self._subs, self._pub, self._estop_srv = [], None, None
        self.received, self.rejected = Counter(), Counter()
        self._diag = self.create_publisher(common.DiagnosticArray, common.DIAGNOSTICS, 10)
        self.create_timer(self.get_parameter("diagnostics_period_s").value, self._publish_diagnostics)
        if self.get_parameter("autostart").value and self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    # ---- lifecycle -------------------------------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        p = lambda name: common.param(self, name)  # noqa: E731
        try:
            path = p("policy")
            if not path:
                raise ContractError("policy: parameter not set (the path of an exported policy.onnx)")
            safety = SafetyCfg(soft_start_s=p("soft_start_s"), max_target_rate=p("max_target_rate"),
                               stale_periods=p("stale_periods"), stale_mode=p("stale_mode"),
                               limit_margin=p("limit_margin"))
            controller = Controller.load(path, safety)
            spec = controller.spec
            names = list(p("joint_names") or spec.joint_names)
            unknown = [n for n in names if n not in spec.joint_names]
            missing = [n for n in spec.joint_names if n not in names]
            if unknown or missing or len(set(names)) != len(names):
                raise ContractError(f"joint_names: must name each joint of the policy once; unknown {unknown}, "
                                    f"missing {missing} (policy joints: {', '.join(spec.joint_names)})")
            rate = p("rate_hz") or 1.0 / spec.control_dt
            if not rate > 0 or p("cmd_vel_timeout_s") <= 0:
                raise ValueError("rate_hz and cmd_vel_timeout_s: must be > 0")
        except (ContractError, ValueError, OSError) as exc:
            self.error = f"configure failed: {exc}"
            self.get_logger().error(self.error)
            self._publish_diagnostics()
            return TransitionCallbackReturn.FAILURE
        self.error = ""
        self.controller, self.out_index = controller, np.array([spec.joint_names.index(n) for n in names])
        self.out_names = names
        self.loop = PeriodicLoop(rate, self._tick, name="policy_loop")
        self._latency = np.zeros(1 << 16, dtype=np.int64)
        self._compute = np.zeros(1 << 16, dtype=np.int64)
        self._fresh = self._computed = 0
        self._joint = self._used = self._imu = None
        self._last_joint_stamp = self._last_imu_stamp = -math.inf
        self._cmd, self._cmd_ns = (0.0, 0.0, 0.0), 0
        self._cmd_timeout_ns = int(p("cmd_vel_timeout_s") * 1e9)
        self._msg = Float64MultiArray()
        self._subs = [self.create_subscription(JointState, common.JOINT_STATES, self._on_joint_state,
                                               common.SENSOR_QOS),
                      self.create_subscription(Imu, common.IMU, self._on_imu, common.SENSOR_QOS),
                      self.create_subscription(Twist, common.CMD_VEL, self._on_cmd_vel, common.SENSOR_QOS)]
        self._pub = self.create_publisher(Float64MultiArray, common.JOINT_COMMANDS, common.COMMAND_QOS)
        self._estop_srv = self.create_service(Trigger, "~/estop", self._on_estop)
        self.get_logger().info(f"configured: {path} ({spec.num_actions} joints, {rate:g} Hz)")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self.controller.reset()  # soft start from the next measured pose; clears an e-stop
        self._primed = False
        self.active = True
        if not self.loop.running:
            self.loop.start()
        self.get_logger().info("active: soft start")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.active = False  # the loop now sends hold / damp
        self.get_logger().info(f"inactive: {self.controller.safety.cfg.stale_mode}")
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def _teardown(self) -> None:
        self.active = False
        if self.loop is not None:
            self.loop.stop()
        for sub in self._subs:
            self.destroy_subscription(sub)
        if self._pub is not None:
            self.destroy_publisher(self._pub)
        if self._estop_srv is not None:
            self.destroy_service(self._estop_srv)
        self._subs, self._pub, self._estop_srv, self.controller = [], None, None, None

    def close(self) -> None:
        if self.loop is not None:
            self.loop.stop()

    # ---- inputs: checked where they arrive -----------------------------------------------------------------------
    def _reject(self, topic: str, reason: str) -> None:
        self.rejected[f"{topic}:{reason}"] += 1

    def _on_joint_state(self, msg: JointState) -> None:
        now = time.monotonic_ns()
        self.received["joint_states"] += 1
        n = len(msg.name)
        if n == 0 or len(msg.position) != n or len(msg.velocity) != n:
            return self._reject("joint_states", "length")
        stamp = common.stamp_seconds(msg.header.stamp)
        if not stamp > self._last_joint_stamp:
            return self._reject("joint_states", "stamp")
        pos, vel = np.array(msg.position), np.array(msg.velocity)
        if not math.isfinite(pos.sum() + vel.sum()):
            return self._reject("joint_states", "nonfinite")
        names = tuple(msg.name)
        if len(set(names)) != n:
            return self._reject("joint_states", "duplicate")
        self._last_joint_stamp = stamp
        self._joint = (now, names, pos, vel, stamp)

    def _on_imu(self, msg: Imu) -> None:
        self.received["imu"] += 1
        q, w = msg.orientation, msg.angular_velocity
        quat, gyro = (q.x, q.y, q.z, q.w), (w.x, w.y, w.z)
        norm = math.sqrt(sum(v * v for v in quat))
        if not (math.isfinite(sum(gyro)) and abs(norm - 1.0) <= QUAT_NORM_TOLERANCE):
            return self._reject("imu", "value")
        stamp = common.stamp_seconds(msg.header.stamp)
        if not stamp > self._last_imu_stamp:
            return self._reject("imu", "stamp")
        self._last_imu_stamp = stamp
        self._imu = (quat, gyro)

    def _on_cmd_vel(self, msg: Twist) -> None:
        self.received["cmd_vel"] += 1
        cmd = (msg.linear.x, msg.linear.y, msg.angular.z)
        if not math.isfinite(sum(cmd)):
            return self._reject("cmd_vel", "nonfinite")
        self._cmd, self._cmd_ns = cmd, time.monotonic_ns()

    def _on_estop(self, request, response):
        if self.controller is None:
            response.success, response.message = False, "not configured"
            return response
        self.controller.estop()
        self.get_logger().warning("e-stop latched: holding; deactivate and activate to clear")
        response.success, response.message = True, "e-stop latched"
        return response

    # ---- the control period --------------------------------------------------------------------------------------
    def _tick(self) -> None:
        t0 = time.monotonic_ns()
        ctl, joint, imu = self.controller, self._joint, self._imu
        if ctl is None:
            return
        state = None
        fresh = joint is not None and joint is not self._used and imu is not None
        if fresh:
            self._used = joint
            state = RobotState(joint[1], joint[2], joint[3], imu[0], imu[1], joint[4])
        if not self._primed:  # publish nothing until the robot's pose has been measured
            if state is None:
                return
            try:
                self._primed = bool(np.isfinite(ctl.builder.joint_positions(state)).all())
            except ValueError:
                pass
            if not self._primed:
                ctl.counters["bad_state"] += 1
                return
        if self.active:
            cmd = self._cmd if t0 - self._cmd_ns < self._cmd_timeout_ns else (0.0, 0.0, 0.0)
            targets = ctl.step(state, cmd)
        else:
            targets = ctl.idle(state)
        self._msg.data = targets[self.out_index].tolist()
        self._pub.publish(self._msg)
        t1 = time.monotonic_ns()
        self._compute[self._computed % len(self._compute)] = t1 - t0
        self._computed += 1
        if fresh:
            self._latency[self._fresh % len(self._latency)] = t1 - joint[0]
            self._fresh += 1

    # ---- diagnostics ---------------------------------------------------------------------------------------------
    def stats(self) -> dict:
        out = {"state": self._state_name()}
        if self.controller is None:
            return out
        loop = self.loop.stats()
        n_fresh, n = min(self._fresh, len(self._latency)), min(self._computed, len(self._compute))
        ctl = self.controller.stats()
        out.update(loop)
        out.update({"latency_p50_ms": percentile_ms(self._latency[:n_fresh], 50),
                    "latency_p99_ms": percentile_ms(self._latency[:n_fresh], 99),
                    "compute_p99_ms": percentile_ms(self._compute[:n], 99),
                    "safety_interventions": ctl.pop("interventions"), "estopped": self.controller.safety.estopped})
        out.update(ctl)
        out.update({f"received_{k}": v for k, v in self.received.items()})
        out.update({f"rejected_{k}": v for k, v in self.rejected.items()})
        out["rejected"] = sum(self.rejected.values())
        return out

    def _state_name(self) -> str:
        if self.error:
            return "error"
        if self.controller is None:
            return "unconfigured"
        return "active" if self.active else "inactive"

    def _publish_diagnostics(self) -> None:
        values = self.stats()
        name = values["state"]
        level, message = OK, name
        if self.error:
            level, message = ERROR, self.error
        elif self.controller is not None and self.controller.safety.estopped:
            level, message = ERROR, "e-stop latched"
        elif self.controller is not None and self.active and self.controller.missed >= \
                self.controller.safety.cfg.stale_periods:
            level, message = WARN, "stale sensors: holding"
        self._diag.publish(common.diagnostics(self, level, message, values))


def main(args: list[str] | None = None) -> int:
    return common.run(PolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
