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


# ---- interval ---------------------------------------------------------------------------------------------------
def push(env, max_vel: float) -> None:
    """Adds a random planar velocity, each component uniform in [-max_vel, max_vel] m/s, to every world's base."""
    a = env.base_dof_adr
    qvel = env.sim.qvel.clone()
    qvel[:, a:a + 2] += env.uniform(-max_vel, max_vel, env.num_envs, 2).to(qvel)
    env.sim.set_qvel(qvel)
