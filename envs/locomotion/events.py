"""Event terms: randomization, reset and push functions. Parameters are keyword arguments set in the task config
(`randomization.<term>.params`); the mode there says when a term runs:

- startup ``fn(env, **params)``: once, at construction (per-world model parameters);
- reset ``fn(env, ids, qpos, qvel, **params)``: on the reset of worlds `ids`, after the env wrote the default state
  into `qpos`, `qvel` (rows of the worlds `ids`, in the backend's dtype and device), which the term changes in place;
- interval ``fn(env, **params)``: every `interval_s` of simulated time, on all worlds.

Random numbers come from `env.uniform` (the env's generator), so a seed gives one trajectory.
"""

from __future__ import annotations

import torch

from .. import rotations
from ..config import ConfigError


# ---- startup ----------------------------------------------------------------------------------------------------
def friction(env, range: tuple[float, float]) -> None:
    """The ground's sliding friction, one value per world (the ground has contact priority: this value is the
    contact's friction)."""
    values = env.uniform(*range, env.num_envs).cpu().numpy()
    for geom in env.scene.ground.friction_geoms:
        env.sim.set_geom_friction(geom, values)


def added_base_mass(env, range: tuple[float, float]) -> None:
    """Mass added to the base body (kg), one value per world."""
    base = env.cfg.robot.base_body
    mass = float(env.sim.model.body(base).mass[0])
    env.sim.set_body_mass(base, mass + env.uniform(*range, env.num_envs).cpu().numpy())


def motor_strength(env, range: tuple[float, float]) -> None:
    """Scales every actuator of a world by one factor: kp and kd of a position servo, the torque of a motor."""
    env.set_motor_strength(env.uniform(*range, env.num_envs))


def pd_gains(env, kp_range: tuple[float, float] = (0.8, 1.2), kd_range: tuple[float, float] = (0.8, 1.2)) -> None:
    """Position servos' kp and kd, each scaled by its own factor per world (on top of motor_strength)."""
    env.scale_gains(env.uniform(*kp_range, env.num_envs), env.uniform(*kd_range, env.num_envs))


def actuator_latency(env, max_steps: int = 2) -> None:
    """A delay of 0..max_steps physics steps per world between the policy's output and the actuators (the previous
    targets stay on meanwhile); at most the decimation."""
    if not 0 <= max_steps <= env.cfg.sim.decimation:
        raise ConfigError(f"task.randomization.actuator_latency.params.max_steps: must be in [0, decimation = "
                          f"{env.cfg.sim.decimation}], got {max_steps}")
    if env.sim.name != "mujoco":
        raise ConfigError(f"task.randomization.actuator_latency: the {env.sim.name} backend steps its substeps with "
                          f"one control; actuator latency needs --backend mujoco")
    steps = torch.randint(0, max_steps + 1, (env.num_envs,), generator=env.gen, device=env.device)
    env.latency = steps.cpu().numpy()


def _model_call(env, method: str, term: str):
    fn = getattr(env.sim, method, None)
    if fn is None:
        raise ConfigError(f"task.randomization.{term}: the {env.sim.name} backend cannot change this per world "
                          f"(use --backend mujoco)")
    return fn


def base_com(env, range: tuple[float, float] = (-0.03, 0.03)) -> None:
    """The base's centre of mass moved by a random offset per world, each axis uniform in `range` (m)."""
    offsets = env.uniform(*range, env.num_envs, 3).cpu().numpy()
    _model_call(env, "set_body_com", "base_com")(env.cfg.robot.base_body, offsets)


def link_masses(env, range: tuple[float, float] = (0.9, 1.1)) -> None:
    """Every robot body but the base: its mass (and inertia) times a random factor per world and body."""
    model = env.sim.model
    for b in _links(model, model.body(env.cfg.robot.base_body).id):
        mass = float(model.body_mass[b])
        env.sim.set_body_mass(model.body(b).name, mass * env.uniform(*range, env.num_envs).cpu().numpy())


def _links(model, root: int) -> list[int]:
    """The bodies of the robot rooted at body `root` (its own tree), but `root`, that have mass."""
    return [b for b in range(1, model.nbody) if b != root and model.body_rootid[b] == model.body_rootid[root]
            and model.body_mass[b] > 0]


def armature(env, range: tuple[float, float] = (0.8, 1.2)) -> None:
    """The driven joints' armature (rotor inertia) times a random factor per world and joint."""
    model = env.sim.model
    dofs = [int(model.joint(j).dofadr[0]) for j in env.joint_names]
    factors = env.uniform(*range, env.num_envs, len(dofs)).cpu().numpy()
    _model_call(env, "set_dof_armature", "armature")(dofs, model.dof_armature[dofs] * factors)


# ---- reset ------------------------------------------------------------------------------------------------------
def joint_pos_scale(env, ids, qpos, qvel, range: tuple[float, float]) -> None:
    """Joint positions: the default pose times a random factor per joint, clamped to the joint ranges."""
    scale = env.uniform(*range, len(ids), env.num_actions)
    joints = torch.clamp(env.default_joint_pos * scale, env.joint_pos_limits[:, 0], env.joint_pos_limits[:, 1])
    qpos[:, env.joint_qpos_index] = joints.to(qpos)


def base_yaw(env, ids, qpos, qvel, range: tuple[float, float]) -> None:
    """Heading of the base about the world z axis (rad)."""
    a = env.base_qpos_adr
    qpos[:, a + 3:a + 7] = rotations.yaw_quat(env.uniform(*range, len(ids))).to(qpos)


def base_velocity(env, ids, qpos, qvel, max: float) -> None:
    """Linear (m/s) and angular (rad/s) base velocity, each of the 6 uniform in [-max, max]."""
    a = env.base_dof_adr
    qvel[:, a:a + 6] = env.uniform(-max, max, len(ids), 6).to(qvel)


def clean_start(env, ids, qpos, qvel, fraction: float = 0.25) -> None:
    """A random `fraction` of the resetting worlds start as a robot and `pgr eval` do: the default pose, at rest
    (undoing the random pose and velocity of the events before it; the heading stays)."""
    if not 0 <= fraction <= 1:
        raise ConfigError(f"task.randomization.clean_start.params.fraction: must be in [0, 1], got {fraction}")
    pick = (env.uniform(0.0, 1.0, len(ids)) < fraction).to(qpos.device)
    joints = env.joint_qpos_index
    qpos[:, joints] = torch.where(pick[:, None], env.reset_joint_pos.to(qpos), qpos[:, joints])
    qvel[pick] = 0.0


def joint_pos_bias(env, ids, qpos, qvel, range: tuple[float, float] = (-0.02, 0.02)) -> None:
    """Encoder offsets per world and joint for the episode (rad): the policy sees angle + offset, and the servo,
    acting on what the encoders say, holds target - offset."""
    env.joint_pos_bias[ids] = env.uniform(*range, len(ids), env.num_actions)


def imu_bias(env, ids, qpos, qvel, gyro: float = 0.05, gravity: float = 0.02) -> None:
    """IMU biases for the episode: gyro (rad/s) and projected gravity, each axis uniform in +-the value."""
    env.gyro_bias[ids] = env.uniform(-gyro, gyro, len(ids), 3)
    env.gravity_bias[ids] = env.uniform(-gravity, gravity, len(ids), 3)


# ---- interval ---------------------------------------------------------------------------------------------------
def push(env, max_vel: float) -> None:
    """Adds a random planar velocity, each component uniform in [-max_vel, max_vel] m/s, to every world's base."""
    a = env.base_dof_adr
    qvel = env.sim.qvel.clone()
    qvel[:, a:a + 2] += env.uniform(-max_vel, max_vel, env.num_envs, 2).to(qvel)
    env.sim.set_qvel(qvel)
