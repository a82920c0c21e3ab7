"""The arm tasks' scene: the robot preset (a fixed-base arm, `envs/robots/panda/`) with its joint servos, a table and
a box on it, and a visual floor below the table, composed with `mujoco.MjSpec` (envs/scene.py)."""

from __future__ import annotations

import mujoco

from ..robots import RobotCfg
from ..scene import GEOM, Scene, add_actuators, load_robot

# Contacts: hand, fingers, box and table collide with each other. MuJoCo takes the larger friction of two geoms: the
# table's is low (0.5) so that the box's own, randomized per world, sets the box-table friction.
COLLIDE = dict(contype=1, conaffinity=1, condim=4, solref=[0.01, 1.0])


def arm_scene(robot_cfg: RobotCfg, object_half_size: float = 0.025, where: str = "task.robot") -> Scene:
    robot = load_robot(robot_cfg, where)
    spec = robot.spec
    spec.add_texture(name="grid", type=mujoco.mjtTexture.mjTEXTURE_2D, builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
                     rgb1=[0.25, 0.28, 0.32], rgb2=[0.18, 0.2, 0.24], width=256, height=256)
    material = spec.add_material(name="grid", texrepeat=[4, 4])
    material.textures[int(mujoco.mjtTextureRole.mjTEXROLE_RGB)] = "grid"
    world = spec.worldbody
    world.add_light(pos=[0.5, 0, 2.5], dir=[0, 0, -1], diffuse=[0.8, 0.8, 0.8])
    world.add_geom(name="floor", type=GEOM.mjGEOM_PLANE, size=[3, 3, 0.1], pos=[0, 0, -0.4], material="grid",
                   contype=0, conaffinity=0)  # visual only
    world.add_geom(name="table", type=GEOM.mjGEOM_BOX, size=[0.5, 0.6, 0.2], pos=[0.55, 0, -0.2],
                   friction=[0.5, 0.005, 0.0001], rgba=[0.55, 0.45, 0.35, 1], **COLLIDE)
    box = world.add_body(name="object", pos=[0.5, 0, object_half_size])
    box.add_freejoint(name="object")
    box.add_geom(name="object", type=GEOM.mjGEOM_BOX, size=[object_half_size] * 3, mass=0.2,
                 friction=[1.0, 0.01, 0.001], rgba=[0.85, 0.2, 0.2, 1], **COLLIDE)
    add_actuators(robot)
    return Scene(spec, robot)
