"""`policy_node`: the exported policy as a ROS 2 lifecycle node. All decisions are `pg_robotics.deploy`'s; this
node moves messages in and out and keeps time.

  configure   check every parameter (finite, in range, of the right type: `params.py`), load the ONNX (`policy`),
              check its contract, the `joint_names` map and the robot's limits (`robot_description`, a URDF or
              MJCF, and/or `joint_pos_lower`/`joint_pos_upper`): the filter uses their intersection with the
              policy's, and a default pose outside them fails configure, naming the joint
  activate    the first command is the measured pose, then a soft start into the control loop at the policy's
              control_dt (or `rate_hz`), on absolute time (pg_robotics_ros.loop); rate limit and soft start are
              per second, at the loop's period
  deactivate  the loop keeps sending the hold or damp command (`stale_mode`) without running the policy
  ~/estop     (std_srvs/Trigger) latches hold; deactivate + activate clears it
  shutdown    (lifecycle, SIGINT, SIGTERM) one last hold or damp command, then exit

Every incoming message is checked where it arrives: a JointState whose name/position/velocity lengths differ,
with duplicate names or a non-finite value, an Imu with a non-finite or non-unit orientation, a non-finite Twist is
dropped and counted (per topic and reason, in the diagnostics); so is a sample whose stamp is older than the last
accepted one, but a clock step either way is recovered from after a few samples (`deploy/freshness.py`, counted as
`reanchored_*`). Each input's age is judged on this node's monotonic clock: joint states and IMU each go stale
after `stale_periods` periods without a new sample (hold or damp, counted per input), and `/cmd_vel` older than
`cmd_vel_timeout_s` becomes a zero command. The node publishes nothing before it has measured the robot's pose
(joint states, and the IMU when the policy reads it).

A tick that raises (an onnxruntime error, anything) leaves the node safe and reported: the hold or damp command is
published at once, the node deactivates itself (lifecycle inactive, the loop goes on sending hold or damp) and the
diagnostics say ERROR with the exception until the next activate. The loop's liveness (age of its newest tick) is
in the diagnostics; a loop that stops ticking is an ERROR. `escalate_after` intervened periods in a row latch the
e-stop (ERROR, with the reason).

Run: `python -m pg_robotics_ros.policy_node --ros-args -p policy:=policy.onnx -p autostart:=true`
(or `pgr ros policy ...`, or `ros2 launch pg_robotics_ros sim2sim.launch.py` with a full ROS install).
"""

from __future__ import annotations

import math
import time
from collections import Counter

import numpy as np
from geometry_msgs.msg import Twist
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from pg_robotics.deploy.contract import ContractError
from pg_robotics.deploy.controller import Controller
from pg_robotics.deploy.freshness import NEW, REANCHORED, StampGate
from pg_robotics.deploy.limits import robot_limits
from pg_robotics.deploy.observation import QUAT_NORM_TOLERANCE, RobotState
from pg_robotics.deploy.policy import Policy
from pg_robotics.deploy.safety import SafetyCfg

from . import common, params
from .common import ERROR, OK, WARN
from .loop import PeriodicLoop, percentile_ms

SAFETY_FIELDS = ("soft_start_s", "max_target_rate", "stale_periods", "stale_mode", "limit_margin", "escalate_after")


class PolicyNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("policy_node", **kwargs)
        params.declare(self, params.POLICY_NODE)
        self.controller: Controller | None = None
        self.loop: PeriodicLoop | None = None
        self.error = ""  # why configure failed
        self.fault = ""  # why the control loop stopped running the policy (a tick raised)
        self.active = self._lifecycle_active = False
        self._subs, self._pub, self._estop_srv = [], None, None
        self.received, self.rejected, self.reanchored = Counter(), Counter(), Counter()
        self._diag = self.create_publisher(common.DiagnosticArray, common.DIAGNOSTICS, 10)
        try:
            period = params.check("diagnostics_period_s", self.get_parameter("diagnostics_period_s").value,
                                  params.POLICY_NODE)
        except ValueError as exc:  # recovered: the default period, and the reason reported
            period, self.error = params.POLICY_NODE["diagnostics_period_s"], f"configure failed: {exc}"
            self.get_logger().error(self.error)
        self.create_timer(period, self._publish_diagnostics)
        # a fault found by the loop thread is acted on (deactivate) in the executor's thread
        self._fault_gc = self.create_guard_condition(self._deactivate_after_fault)
        if self.get_parameter("autostart").value is True and \
                self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    # ---- lifecycle -------------------------------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            p = params.read(self, params.POLICY_NODE)
            path = p["policy"]
            if not path:
                raise ContractError("policy: parameter not set (the path of an exported policy.onnx)")
            safety = SafetyCfg(**{k: p[k] for k in SAFETY_FIELDS})
            policy = Policy.load(path)
            spec = policy.spec
            names = list(p["joint_names"] or spec.joint_names)
            unknown = [n for n in names if n not in spec.joint_names]
            missing = [n for n in spec.joint_names if n not in names]
            if unknown or missing or len(set(names)) != len(names):
                raise ContractError(f"joint_names: must name each joint of the policy once; unknown {unknown}, "
                                    f"missing {missing} (policy joints: {', '.join(spec.joint_names)})")
            rate = p["rate_hz"] or 1.0 / spec.control_dt
            if rate > params.RANGES["rate_hz"][1]:
                raise ValueError(f"rate_hz: the policy's control_dt {spec.control_dt} asks for {rate:g} Hz, "
                                 f"above {params.RANGES['rate_hz'][1]:g}; set rate_hz")
            # LimitsError (a ValueError) names the joint
            limits = robot_limits(names, p["robot_description"], p["joint_pos_lower"], p["joint_pos_upper"])
            controller = Controller(policy, safety, period_s=1.0 / rate, limits=limits)
        except (ContractError, ValueError, OSError) as exc:
            self.error = f"configure failed: {exc}"
            self.get_logger().error(self.error)
            self._publish_diagnostics()
            return TransitionCallbackReturn.FAILURE
        self.error = self.fault = ""
        self.controller, self.out_index = controller, np.array([spec.joint_names.index(n) for n in names])
        self.out_names = names
        self.loop = PeriodicLoop(rate, self._tick, name="policy_loop", on_error=self._on_tick_error)
        self._latency = np.zeros(1 << 16, dtype=np.int64)
        self._compute = np.zeros(1 << 16, dtype=np.int64)
        self._fresh = self._computed = 0
        self._joint = self._used = self._imu = None
        self._gates = {"joint_states": StampGate(), "imu": StampGate()}
        self._needs_imu = "imu" in controller.inputs
        self._cmd, self._cmd_ns = (0.0, 0.0, 0.0), None
        self._cmd_timeout_ns = int(p["cmd_vel_timeout_s"] * 1e9)
        self.cmd_vel_timeouts = 0  # periods run on a zero command because /cmd_vel went silent
        self._msg, self._sent = Float64MultiArray(), False
        self._subs = [self.create_subscription(JointState, common.JOINT_STATES, self._on_joint_state,
                                               common.SENSOR_QOS),
                      self.create_subscription(Imu, common.IMU, self._on_imu, common.SENSOR_QOS),
                      self.create_subscription(Twist, common.CMD_VEL, self._on_cmd_vel, common.SENSOR_QOS)]
        self._pub = self.create_publisher(Float64MultiArray, common.JOINT_COMMANDS, common.COMMAND_PUB_QOS)
        self._estop_srv = self.create_service(Trigger, "~/estop", self._on_estop)
        self.get_logger().info(f"configured: {path} ({spec.num_actions} joints, {rate:g} Hz)")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self.controller.reset()  # the next command is the measured pose, then a soft start; clears an e-stop
        self.fault = ""
        self.active = self._lifecycle_active = True
        if not self.loop.running:
            self.loop.start()
        self.get_logger().info("active: soft start")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.active = self._lifecycle_active = False  # the loop now sends hold / damp
        self.get_logger().info(f"inactive: {self.controller.safety.cfg.stale_mode}")
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def _teardown(self) -> None:
        """Stop the loop, send the last command (hold or damp), then drop the ROS interfaces."""
        self.close()
        for sub in self._subs:
            self.destroy_subscription(sub)
        if self._pub is not None:
            self.destroy_publisher(self._pub)
        if self._estop_srv is not None:
            self.destroy_service(self._estop_srv)
        self._subs, self._pub, self._estop_srv, self.controller = [], None, None, None

    def close(self) -> None:
        """Stop the loop and publish one last hold or damp command (SIGINT/SIGTERM, lifecycle shutdown)."""
        self.active = False
        if self.loop is not None:
            self.loop.stop()
        if self._pub is not None and self._sent:
            self._publish_safe()
            self._pub.wait_for_all_acked(Duration(seconds=0.5))
            self.get_logger().info(f"stopped: last command {self.controller.safety.cfg.stale_mode} sent")

    # ---- inputs: checked where they arrive -----------------------------------------------------------------------
    def _reject(self, topic: str, reason: str) -> None:
        self.rejected[f"{topic}:{reason}"] += 1

    def _stamp_ok(self, topic: str, stamp) -> bool:
        verdict = self._gates[topic].offer(common.stamp_seconds(stamp))
        if verdict == REANCHORED:
            self.reanchored[topic] += 1
        elif verdict != NEW:
            self._reject(topic, "stamp")
        return verdict == NEW or verdict == REANCHORED

    def _on_joint_state(self, msg: JointState) -> None:
        now = time.monotonic_ns()
        self.received["joint_states"] += 1
        n = len(msg.name)
        if n == 0 or len(msg.position) != n or len(msg.velocity) != n:
            return self._reject("joint_states", "length")
        pos, vel = np.array(msg.position), np.array(msg.velocity)
        if not math.isfinite(pos.sum() + vel.sum()):
            return self._reject("joint_states", "nonfinite")
        names = tuple(msg.name)
        if len(set(names)) != n:
            return self._reject("joint_states", "duplicate")
        if self._stamp_ok("joint_states", msg.header.stamp):
            self._joint = (now, names, pos, vel)

    def _on_imu(self, msg: Imu) -> None:
        now = time.monotonic_ns()
        self.received["imu"] += 1
        q, w = msg.orientation, msg.angular_velocity
        quat, gyro = (q.x, q.y, q.z, q.w), (w.x, w.y, w.z)
        norm = math.sqrt(sum(v * v for v in quat))
        if not (math.isfinite(sum(gyro)) and abs(norm - 1.0) <= QUAT_NORM_TOLERANCE):
            return self._reject("imu", "value")
        if self._stamp_ok("imu", msg.header.stamp):
            self._imu = (now, quat, gyro)

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
        self.controller.estop("e-stop service")
        self.get_logger().warning("e-stop latched: holding; deactivate and activate to clear")
        response.success, response.message = True, "e-stop latched"
        return response

    # ---- the control period --------------------------------------------------------------------------------------
    def _state(self) -> RobotState | None:
        """The newest samples as one state, stamped with their arrival times (this node's monotonic clock); None
        before every input has arrived."""
        joint, imu = self._joint, self._imu
        if joint is None or (imu is None and self._needs_imu):
            return None
        quat, gyro, imu_ns = imu[1:] + (imu[0],) if imu is not None else ((0.0, 0.0, 0.0, 1.0), (0.0,) * 3, None)
        return RobotState(joint[1], joint[2], joint[3], quat, gyro, joint[0] * 1e-9,
                          None if imu_ns is None else imu_ns * 1e-9)

    def _tick(self) -> None:
        t0 = time.monotonic_ns()
        ctl, joint = self.controller, self._joint
        if ctl is None:
            return
        state = self._state()
        if self.active:
            if self._cmd_ns is not None and t0 - self._cmd_ns >= self._cmd_timeout_ns:
                cmd = (0.0, 0.0, 0.0)  # /cmd_vel went silent: stand
                self.cmd_vel_timeouts += 1
            else:
                cmd = self._cmd
            targets = ctl.step(state, cmd)
        else:
            targets = ctl.idle(state)
        if targets is None:  # no pose measured yet: nothing to send
            return
        self._publish(targets)
        t1 = time.monotonic_ns()
        self._compute[self._computed % len(self._compute)] = t1 - t0
        self._computed += 1
        if state is not None and joint is not self._used:
            self._used = joint
            self._latency[self._fresh % len(self._latency)] = t1 - joint[0]
            self._fresh += 1

    def _publish(self, targets: np.ndarray) -> None:
        self._msg.data = targets[self.out_index].tolist()
        self._pub.publish(self._msg)
        self._sent = True

    def _publish_safe(self) -> None:
        """The hold or damp command now; if even that fails, the last command again (finite, inside the limits)."""
        try:
            targets = self.controller.idle(self._state())
        except Exception:  # the last command below is safe by construction
            targets = None
        if targets is not None and np.isfinite(targets).all():
            self._publish(targets)
        elif self._sent:
            self._pub.publish(self._msg)

    def _on_tick_error(self, exc: Exception) -> None:
        """Called by the loop (its thread) when a tick raised: safe command now, then deactivate and report."""
        first = not self.fault
        self.active = False
        self.fault = f"control tick raised {type(exc).__name__}: {exc}"[:500]
        self._publish_safe()
        if first:
            self.get_logger().error(f"{self.fault}; sent {self.controller.safety.cfg.stale_mode}, deactivating")
            self._fault_gc.trigger()

    def _deactivate_after_fault(self) -> None:
        if self._lifecycle_active and self.fault:
            self.trigger_deactivate()

    # ---- diagnostics ---------------------------------------------------------------------------------------------
    def stats(self) -> dict:
        out = {"state": self._state_name()}
        if self.controller is None:
            return out
        ctl = self.controller
        n_fresh, n = min(self._fresh, len(self._latency)), min(self._computed, len(self._compute))
        values = ctl.stats()
        out.update(self.loop.stats())
        out.update({"latency_p50_ms": percentile_ms(self._latency[:n_fresh], 50),
                    "latency_p99_ms": percentile_ms(self._latency[:n_fresh], 99),
                    "compute_p99_ms": percentile_ms(self._compute[:n], 99),
                    "safety_interventions": values.pop("interventions"), "estopped": ctl.safety.estopped,
                    "stale_cmd_vel": self.cmd_vel_timeouts, "fault": self.fault})
        out.update(values)
        out.update({f"received_{k}": v for k, v in self.received.items()})
        out.update({f"rejected_{k}": v for k, v in self.rejected.items()})
        out.update({f"reanchored_{k}": v for k, v in self.reanchored.items()})
        out["rejected"] = sum(self.rejected.values())
        return out

    def _state_name(self) -> str:
        if self.error:
            return "error"
        if self.controller is None:
            return "unconfigured"
        return "active" if self.active else "inactive"

    def _loop_problem(self) -> str:
        """Why the loop is not alive, or ""."""
        if self.loop is None or self.loop.ticks == 0 and not self.loop.running:
            return ""  # not started yet (configured, never activated)
        if not self.loop.running:
            return "control loop stopped"
        age = self.loop.last_tick_age_ms()
        if age > max(10 * 1e3 / self.loop.rate_hz, 500.0):
            return f"control loop stalled: last tick {age:.0f} ms ago"
        return ""

    def _publish_diagnostics(self) -> None:
        values = self.stats()
        level, message = OK, values["state"]
        ctl = self.controller
        loop_problem = self._loop_problem() if ctl is not None else ""
        if self.error:
            level, message = ERROR, self.error
        elif self.fault:
            level, message = ERROR, self.fault
        elif loop_problem:
            level, message = ERROR, loop_problem
        elif ctl is not None and ctl.safety.estopped:
            level, message = ERROR, f"e-stop latched: {ctl.safety.estop_reason}"
        elif ctl is not None and self.active and ctl.stale:
            doing = "holding" if ctl.safety.cfg.stale_mode == "hold" else "damping"
            level, message = WARN, f"stale {', '.join(ctl.stale)}: {doing}"
        self._diag.publish(common.diagnostics(self, level, message, values))


def main(args: list[str] | None = None) -> int:
    return common.run(PolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
