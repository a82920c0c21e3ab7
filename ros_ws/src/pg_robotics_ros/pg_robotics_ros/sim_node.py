"""`mujoco_sim_node`: plays the robot for sim2sim. One MuJoCo world of the training model (same MJCF, physics step
and PD position servo, with kp, kd and torque limits from the policy's contract), stepped in real time on absolute
deadlines. Each physics step it applies the newest `/joint_position_controller/commands` and publishes
`/joint_states` (stamped), `/imu/data` (base orientation x, y, z, w and gyro in the base frame) and ground-truth
`/odom` (pose in the world, twist in the base frame). A fall (trunk on the ground, or upside down: training's
terminations) is counted and the robot is put back standing. Optional pushes: `push_interval_s` > 0 adds a random
horizontal base velocity up to `push_velocity` m/s. `viewer:=true` shows the world in MuJoCo's viewer (`sim_viewer`:
P pushes by `push_velocity`, R resets, ctrl + drag perturbs).

Run: `python -m pg_robotics_ros.sim_node --ros-args -p policy:=policy.onnx` (or `pgr ros sim ...`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter

import mujoco
import numpy as np
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray

from pg_robotics.deploy.policy import Policy
from pg_robotics.envs.scene import sim_model
from pg_robotics.envs.terrains import TerrainCfg
from pg_robotics.envs.backends.mujoco_cpu import set_pd_gains

from . import common
from .common import OK, WARN
from .loop import PeriodicLoop

PARAMETERS = {
    "mjcf": "go1.xml",  # a robot preset (go1, my_robot.yaml) or its MJCF (go1.xml), composed as training does; or a scene
    "policy": "",  # policy.onnx whose contract gives kp, kd, torque limits and the default pose; "" = the MJCF's
    "physics_dt": 0.005,  # training's physics step
    "joint_names": Parameter.Type.STRING_ARRAY,  # order of the incoming commands; default: the MJCF actuators'
    "base_body": "trunk",
    "trunk_sensor": "trunk_force",  # contact force of the trunk with the floor
    "reset_on_fall": True,
    "push_interval_s": 0.0,
    "push_velocity": 0.5,
    "seed": 0,
    "diagnostics_period_s": 1.0,
    "viewer": False,  # MuJoCo's interactive viewer on this world (needs a display)
    "terrain": "",  # a terrain type (envs/terrains: rough, stairs_up, ...): one generated tile under it; "" = plane
    "terrain_difficulty": 0.5,  # in [0, 1]
    "terrain_seed": 0,
}


class MujocoSimNode(Node):
    def __init__(self, **kwargs):
        super().__init__("mujoco_sim_node", **kwargs)
        for name, default in PARAMETERS.items():
            self.declare_parameter(name, default)
        p = lambda name: common.param(self, name)  # noqa: E731
        terrain = None
        if p("terrain"):
            try:  # TerrainCfg checks the type and the difficulty
                terrain = TerrainCfg(types=[p("terrain")], difficulties=[p("terrain_difficulty")],
                                     seed=p("terrain_seed"))
            except ValueError as exc:
                given = f"terrain={p('terrain')!r}, terrain_difficulty={p('terrain_difficulty')}"
                raise ValueError(f"{given}: {exc}") from None
        m = self.model = sim_model(p("mjcf"), terrain)
        if not p("physics_dt") > 0:
            raise ValueError(f"physics_dt: must be > 0, got {p('physics_dt')}")
        m.opt.timestep = p("physics_dt")
        self.data = mujoco.MjData(m)
        joints = [m.joint(int(m.actuator_trnid[i, 0])).name for i in range(m.nu)]
        self.joint_names = joints
        self.qadr = np.array([m.joint(j).qposadr[0] for j in joints])
        self.dadr = np.array([m.joint(j).dofadr[0] for j in joints])
        if m.nkey:  # the model's home pose
            mujoco.mj_resetDataKeyframe(m, self.data, 0)
        self.home = self.data.qpos.copy()
        if p("policy"):
            spec = Policy.load(p("policy")).spec
            order = [spec.joint_names.index(j) for j in joints]
            take = lambda values: np.asarray(values, dtype=float)[order]  # noqa: E731
            set_pd_gains(m, take(spec.kp), take(spec.kd), take(spec.torque_limits))
            self.home[self.qadr] = take(spec.default_joint_pos)
        names = list(p("joint_names") or joints)
        if sorted(names) != sorted(joints):
            raise ValueError(f"joint_names: must name each actuated joint once ({', '.join(joints)}), got {names}")
        self.cmd_index = np.array([names.index(j) for j in joints])  # command order -> actuator order
        self.base = m.body(p("base_body")).id
        sensor = m.sensor(p("trunk_sensor"))
        self.trunk = slice(int(sensor.adr[0]), int(sensor.adr[0]) + int(sensor.dim[0]))
        self.rng = np.random.default_rng(p("seed"))
        self.push_every = int(round(p("push_interval_s") / m.opt.timestep)) if p("push_interval_s") > 0 else 0
        self.push_velocity = p("push_velocity")
        self.reset_on_fall = p("reset_on_fall")
        self.falls = self.pushes = self.steps = 0
        self.received, self.rejected = Counter(), Counter()
        self._reset()

        self.pub_joints = self.create_publisher(JointState, common.JOINT_STATES, common.SENSOR_QOS)
        self.pub_imu = self.create_publisher(Imu, common.IMU, common.SENSOR_QOS)
        self.pub_odom = self.create_publisher(Odometry, common.ODOM, common.SENSOR_QOS)
        self.create_subscription(Float64MultiArray, common.JOINT_COMMANDS, self._on_command, common.COMMAND_QOS)
        self._diag = self.create_publisher(common.DiagnosticArray, common.DIAGNOSTICS, 10)
        self.create_timer(p("diagnostics_period_s"), self._publish_diagnostics)
        self._js = JointState(name=joints)
        self._imu = Imu()
        self._imu.header.frame_id = "base_link"
        self._imu.linear_acceleration_covariance[0] = -1.0  # not provided
        self._odom = Odometry()
        self._odom.header.frame_id, self._odom.child_frame_id = "odom", "base_link"
        self.viewer = None
        if p("viewer"):
            from .sim_viewer import SimViewer

            self.viewer = SimViewer(self)
        self.loop = PeriodicLoop(1.0 / m.opt.timestep, self._tick, name="sim_loop")
        self._started = time.monotonic()
        self.loop.start()
        where = f" on {p('terrain')} terrain (difficulty {p('terrain_difficulty'):g}, seed {p('terrain_seed')})" \
            if terrain else ""
        self.get_logger().info(f"simulating {p('mjcf')}{where} at {1 / m.opt.timestep:g} Hz in real time")

    def _reset(self) -> None:
        d = self.data
        d.qpos[:], d.qvel[:], d.act[:] = self.home, 0.0, 0.0
        d.ctrl[:] = self.home[self.qadr]
        self._target = d.ctrl.copy()
        mujoco.mj_forward(self.model, d)

    def _on_command(self, msg: Float64MultiArray) -> None:
        self.received["commands"] += 1
        cmd = np.array(msg.data)
        if len(cmd) != len(self.cmd_index) or not np.isfinite(cmd).all():
            self.rejected["commands"] += 1
            return
        self._target = cmd[self.cmd_index]

    def _tick(self) -> None:
        with self.viewer.lock() if self.viewer else contextlib.nullcontext():  # the viewer reads this data
            self._step()
        self._publish(self.data)

    def _step(self) -> None:
        m, d = self.model, self.data
        d.ctrl[:] = self._target
        asked = self.viewer.requests if self.viewer else []
        while asked:
            if asked.pop(0) == "reset":
                self._reset()
            else:
                self._push(self.push_velocity)
        if self.push_every and self.steps % self.push_every == self.push_every - 1:
            self._push()
        mujoco.mj_step(m, d)
        self.steps += 1
        quat = d.qpos[3:7]  # w, x, y, z
        upside_down = 1.0 - 2.0 * (quat[1] ** 2 + quat[2] ** 2) < 0.0
        if np.linalg.norm(d.sensordata[self.trunk]) > 1.0 or upside_down:
            self.falls += 1
            if self.reset_on_fall:
                self._reset()

    def _push(self, velocity: float | None = None) -> None:
        """Add `velocity` m/s (default: random, up to `push_velocity`) to the base, horizontally, in a random
        direction."""
        angle = self.rng.uniform(0, 2 * math.pi)
        velocity = self.rng.uniform(0, self.push_velocity) if velocity is None else velocity
        self.data.qvel[0:2] += velocity * np.array([math.cos(angle), math.sin(angle)])
        self.pushes += 1

    def _publish(self, d: mujoco.MjData) -> None:
        stamp = self.get_clock().now().to_msg()
        js = self._js
        js.header.stamp = stamp
        js.position, js.velocity = d.qpos[self.qadr].tolist(), d.qvel[self.dadr].tolist()
        js.effort = d.actuator_force.tolist()
        self.pub_joints.publish(js)
        w, x, y, z = d.qpos[3:7]
        imu = self._imu
        imu.header.stamp = stamp
        o = imu.orientation
        o.x, o.y, o.z, o.w = float(x), float(y), float(z), float(w)
        g = imu.angular_velocity
        g.x, g.y, g.z = (float(v) for v in d.qvel[3:6])  # a free joint's angular velocity is in the body frame
        self.pub_imu.publish(imu)
        odom = self._odom
        odom.header.stamp = stamp
        pose = odom.pose.pose
        pose.position.x, pose.position.y, pose.position.z = (float(v) for v in d.qpos[0:3])
        pose.orientation = o
        lin = d.xmat[self.base].reshape(3, 3).T @ d.qvel[0:3]  # world -> base frame
        t = odom.twist.twist
        t.linear.x, t.linear.y, t.linear.z = (float(v) for v in lin)
        t.angular = g
        self.pub_odom.publish(odom)

    def stats(self) -> dict:
        elapsed = time.monotonic() - self._started
        return {**self.loop.stats(), "sim_time_s": round(self.data.time, 3),
                "real_time_factor": round(self.steps * self.model.opt.timestep / max(elapsed, 1e-9), 4),
                "falls": self.falls, "pushes": self.pushes,
                **{f"received_{k}": v for k, v in self.received.items()},
                **{f"rejected_{k}": v for k, v in self.rejected.items()}}

    def _publish_diagnostics(self) -> None:
        values = self.stats()
        level, message = (OK, "running") if not values["missed_deadlines"] else (WARN, "missed physics deadlines")
        self._diag.publish(common.diagnostics(self, level, message, values))

    def close(self) -> None:
        self.loop.stop()
        if self.viewer:
            self.viewer.close()


def main(args: list[str] | None = None) -> int:
    return common.run(MujocoSimNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
