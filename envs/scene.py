"""Scenes composed in code with `mujoco.MjSpec`: a robot-only MJCF + a ground + what the task needs.

`legged_scene(robot)` loads the robot's MJCF as it is published (free-joint or fixed base, hinge joints, meshes, no
actuators, floor or sensors), checks every name its preset gives against the model (errors name the preset field and
list the joints, bodies and geoms the model really has), and adds:

- the ground (`GROUNDS`: a plane now; a terrain is another entry that adds its geometry to the world body and says what
  contact sensors measure against, `Ground`);
- one actuator per driven joint from the preset: a PD position servo or a torque motor;
- sensors, named for what they measure: ``<foot>_force`` (net contact force with the ground), ``<foot>_pos`` and
  ``<foot>_vel`` (world frame), ``<geom>_force`` for each collision geom of the bodies whose contact the task watches
  (feet excluded), ``<joint>_torque`` (applied actuator force) and ``imu_quat`` / ``imu_gyro`` at the IMU site;
- a ``home`` keyframe (the preset's default pose at its reset height).

The ground's geoms come first in the world body, as in a hand-written scene, so contacts keep their order. The
composed model can be saved (``pgr scene --out scene.xml``) to look at; it loads by itself (mesh and texture folders
are made absolute).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import mujoco
import numpy as np

from .config import ConfigError
from .robots import RobotCfg, resolve_mjcf

OBJ, GEOM, JOINT = mujoco.mjtObj, mujoco.mjtGeom, mujoco.mjtJoint
CONTACT_NETFORCE = [1 << int(mujoco.mjtConDataField.mjCONDATA_FORCE), 3, 1]  # data="force" reduce="netforce" num=1
FLOOR_FRICTION = (1.0, 0.005, 0.0001)


# ---- joint tables ---------------------------------------------------------------------------------------------------
def joint_table(table: dict, joints: list[str], where: str, required: bool = True, model: str = "the model",
                all_joints: list[str] | None = None) -> list:
    """Resolve a {regex: value} table to one value per joint, in `joints` order (None where an optional table has
    no value). A pattern matching no joint is an error listing every hinge or slide joint of the model."""
    values: list = [None] * len(joints)
    for pattern, value in table.items():
        try:
            hits = [i for i, j in enumerate(joints) if re.fullmatch(pattern, j)]
        except re.error as exc:
            raise ConfigError(f"{where}: {pattern!r} is not a valid pattern ({exc})") from None
        if not hits:
            known = all_joints if all_joints is not None else joints
            raise ConfigError(f"{where}: {pattern!r} matches no joint in {model} (joints: {', '.join(known)})")
        for i in hits:
            if values[i] is not None:
                raise ConfigError(f"{where}: joint {joints[i]} is matched by more than one pattern")
            values[i] = value
    missing = [j for j, v in zip(joints, values) if v is None]
    if required and missing:
        raise ConfigError(f"{where}: no value for joint(s) {', '.join(missing)}")
    return values


# ---- the robot --------------------------------------------------------------------------------------------------
@dataclass
class Robot:
    """A robot-only MJCF loaded as a spec, its preset, and what the preset's names resolved to."""

    cfg: RobotCfg
    path: Path  # the robot MJCF
    spec: mujoco.MjSpec
    model: mujoco.MjModel  # the robot alone, compiled: names, order, defaults applied
    joints: list[str]  # driven joints, in the model's order
    foot_geoms: list[list[str]]  # per foot: its collision geoms
    where: str = "task.robot"

    @property
    def hinge_joints(self) -> list[str]:
        m = self.model
        return [m.joint(j).name for j in range(m.njnt) if m.jnt_type[j] in (int(JOINT.mjJNT_HINGE), int(JOINT.mjJNT_SLIDE))]

    def inventory(self, kind: str) -> str:
        m = self.model
        if kind == "joint":
            names = self.hinge_joints
        elif kind == "body":
            names = [m.body(b).name for b in range(1, m.nbody)]
        elif kind == "geom":
            names = [m.geom(g).name for g in range(m.ngeom) if m.geom(g).name]
            unnamed = list(dict.fromkeys(m.body(int(m.geom_bodyid[g])).name for g in range(m.ngeom)
                                         if not m.geom(g).name))
            if unnamed:
                names.append(f"and unnamed ones in {', '.join(unnamed)} (name them in the MJCF, or give the body)")
        else:
            names = [m.site(s).name for s in range(m.nsite)]
        return f"{'bodies' if kind == 'body' else kind + 's'}: {', '.join(names) if names else 'none'}"

    def has(self, kind: str, name: str) -> bool:
        try:
            getattr(self.model, kind)(name)
            return True
        except KeyError:
            return False

    def table(self, name: str, required: bool = True) -> list:
        return joint_table(getattr(self.cfg, name), self.joints, f"{self.where}.{name}", required, self.path.name,
                           self.hinge_joints)

    def collision_geoms(self, body: str) -> list[int]:
        m = self.model
        b = m.body(body).id
        start, count = int(m.body_geomadr[b]), int(m.body_geomnum[b])
        return [g for g in range(start, start + max(count, 0)) if m.geom_contype[g] or m.geom_conaffinity[g]]


def load_robot(cfg: RobotCfg, where: str = "task.robot") -> Robot:
    """The preset's MJCF as a spec, every name of the preset checked against it."""
    if not cfg.mjcf:
        raise ConfigError(f"{where}.mjcf: the preset names no MJCF (set mjcf: path/to/robot.xml)")
    path = resolve_mjcf(cfg.mjcf)
    try:
        spec = mujoco.MjSpec.from_file(str(path))
        model = spec.compile()
    except ValueError as exc:
        raise ConfigError(f"{where}.mjcf: {path} does not load in MuJoCo ({exc})") from None
    robot = Robot(cfg, path, spec, model, [], [], where)
    hinges = robot.hinge_joints
    patterns = cfg.joints or [".*"]
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{where}.joints: {pattern!r} is not a valid pattern ({exc})") from None
        if not any(re.fullmatch(pattern, j) for j in hinges):
            raise ConfigError(f"{where}.joints: {pattern!r} matches no joint in {path.name} ({robot.inventory('joint')})")
    robot.joints = [j for j in hinges if any(re.fullmatch(p, j) for p in patterns)]
    if not robot.joints:
        raise ConfigError(f"{where}.joints: {path.name} has no hinge or slide joint to drive")
    world_geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] == 0]
    if world_geoms:
        raise ConfigError(f"{where}.mjcf: {path.name} has geoms in its world body ({robot.inventory('geom')}); a "
                          f"robot-only MJCF has none: the scene adds the ground")

    def body(name: str, field_: str) -> str:
        if not robot.has("body", name):
            raise ConfigError(f"{where}.{field_}: no body {name!r} in {path.name} ({robot.inventory('body')})")
        return name

    if not cfg.base_body:
        raise ConfigError(f"{where}.base_body: not set ({robot.inventory('body')})")
    body(cfg.base_body, "base_body")
    if cfg.imu and not (robot.has("site", cfg.imu) or robot.has("body", cfg.imu)):
        raise ConfigError(f"{where}.imu: no site or body {cfg.imu!r} in {path.name} ({robot.inventory('site')}; "
                          f"{robot.inventory('body')})")
    for foot in cfg.feet:
        if robot.has("geom", foot):
            robot.foot_geoms.append([foot])
        elif robot.has("body", foot):
            robot.foot_geoms.append([_geom_name(model, g) for g in robot.collision_geoms(foot)])
            if not robot.foot_geoms[-1]:
                raise ConfigError(f"{where}.feet: body {foot!r} has no collision geom")
        else:
            raise ConfigError(f"{where}.feet: {foot!r} is no geom or body of {path.name} ({robot.inventory('geom')}; "
                              f"{robot.inventory('body')})")
    for field_ in ("undesired_contacts", "constrained_contacts", "termination_contacts"):
        for name in getattr(cfg, field_):
            body(name, field_)
    for table in ("default_joint_pos", "kp", "kd", "torque_limits"):
        robot.table(table, required=not (cfg.actuator == "motor" and table in ("kp", "kd")))
    for table in ("velocity_limits", "armature", "target_limits"):
        robot.table(table, required=False)
    for limit in robot.table("torque_limits"):
        if not limit > 0:
            raise ConfigError(f"{where}.torque_limits: must be > 0, got {limit}")
    return robot


def _geom_name(model: mujoco.MjModel, g: int) -> str:
    return model.geom(g).name or f"{model.body(int(model.geom_bodyid[g])).name}_geom{g - model.body_geomadr[model.geom_bodyid[g]]}"


def _name_unnamed_geoms(robot: Robot) -> None:
    """Unnamed geoms of the robot get ``<body>_geom<k>`` names, so sensors can refer to them."""
    m = robot.model
    for b in range(1, m.nbody):
        if not m.body(b).name:
            continue
        for k, geom in enumerate(robot.spec.body(m.body(b).name).geoms):
            if not geom.name:
                geom.name = f"{m.body(b).name}_geom{k}"


# ---- grounds ----------------------------------------------------------------------------------------------------
@dataclass
class Ground:
    """What a ground added to the world body: the geoms whose friction randomization sets, and the object contact
    sensors measure against (a geom, or a body holding a terrain's geoms)."""

    friction_geoms: list[str]
    contact_type: mujoco.mjtObj
    contact_name: str


def add_visuals(spec: mujoco.MjSpec, texrepeat: float = 40.0) -> str:
    """A checker texture and material for the ground, and a light; returns the material's name."""
    spec.add_texture(name="grid", type=mujoco.mjtTexture.mjTEXTURE_2D, builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
                     rgb1=[0.2, 0.3, 0.4], rgb2=[0.3, 0.4, 0.5], width=32, height=32)
    material = spec.add_material(name="grid", texrepeat=[texrepeat, texrepeat], reflectance=0.1)
    material.textures[int(mujoco.mjtTextureRole.mjTEXROLE_RGB)] = "grid"
    spec.worldbody.add_light(pos=[0, 0, 3], dir=[0, 0, -1], type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL)
    return "grid"


def add_plane(spec: mujoco.MjSpec, friction: tuple[float, float, float] = FLOOR_FRICTION) -> Ground:
    """An infinite plane at z = 0 named ``floor``, with priority: its friction alone sets the contact friction."""
    material = add_visuals(spec)
    spec.worldbody.add_geom(name="floor", type=GEOM.mjGEOM_PLANE, size=[0, 0, 0.05], material=material, contype=1,
                            conaffinity=1, condim=3, priority=1, friction=list(friction))
    return Ground(["floor"], OBJ.mjOBJ_GEOM, "floor")


def add_terrain(spec: mujoco.MjSpec, friction: tuple[float, float, float] = FLOOR_FRICTION, terrain=None) -> Ground:
    """A generated terrain (envs/terrains) in the world body, all geoms with contact priority (their friction alone
    sets the contact's): a heightfield per tile (a box where the tile's heightfield part is level: flat tiles, the
    floor under stairs and slopes), the tiles' boxes and convex meshes, and boxes for the flat border. One
    heightfield per tile, not one for the grid, keeps each heightfield's bounding box small: a robot's geoms meet
    only the few tiles under them. The geoms sit in the world body itself, not in a static body of their own:
    MuJoCo pairs the world body with every body and goes straight to its geom tree, while a static body's ~700
    geoms went through the broadphase on every physics step (one world standing on a tile of the default grid: 42
    us a physics step with a static body, 24 us in the world body; docs/benchmarks.md, rough terrain). Contact
    sensors measure against the world body, which holds nothing but the terrain."""
    if terrain is None:
        raise ConfigError("task.ground.terrain: the terrain ground needs a terrain config")
    cfg, res = terrain.cfg, terrain.cfg.resolution
    material = add_visuals(spec, texrepeat=terrain.size[0] / 2)
    body = spec.worldbody
    common = dict(contype=1, conaffinity=1, condim=3, priority=1, friction=list(friction), material=material)
    names: list[str] = []

    def box(name: str, centre, half) -> None:
        names.append(name)
        body.add_geom(name=name, type=GEOM.mjGEOM_BOX, pos=[float(v) for v in centre], size=[float(v) for v in half],
                      **common)

    per, b = int(round(cfg.tile_size / res)), int(round(cfg.border / res))
    half_tile, floor = cfg.tile_size / 2, 0.5  # m of solid below a level surface
    for level in range(cfg.levels):
        for col in range(len(cfg.types)):
            i, j = b + level * per, b + col * per
            part = terrain.hfield[level, col]
            cx, cy = (i + per / 2) * res, (j + per / 2) * res
            low, high = float(part.min()), float(part.max())
            name = f"terrain_tile{level}_{col}"
            if high - low < 1e-9:
                box(name, (cx, cy, low - floor), (half_tile, half_tile, floor))
                continue
            spec.add_hfield(name=name, size=[half_tile, half_tile, high - low, floor], nrow=per + 1, ncol=per + 1,
                            userdata=((part - low) / (high - low)).T.flatten().tolist())  # rows along y
            names.append(name)
            body.add_geom(name=name, type=GEOM.mjGEOM_HFIELD, hfieldname=name, pos=[cx, cy, low], **common)
    sx, sy = terrain.size
    if cfg.border > 0:  # the flat border around the grid: four slabs with their top at 0
        inner_x = cfg.levels * cfg.tile_size
        box("terrain_border0", (cfg.border / 2, sy / 2, -floor), (cfg.border / 2, sy / 2, floor))
        box("terrain_border1", (sx - cfg.border / 2, sy / 2, -floor), (cfg.border / 2, sy / 2, floor))
        box("terrain_border2", (sx / 2, cfg.border / 2, -floor), (inner_x / 2, cfg.border / 2, floor))
        box("terrain_border3", (sx / 2, sy - cfg.border / 2, -floor), (inner_x / 2, cfg.border / 2, floor))
    for k, (centre, half) in enumerate(terrain.boxes):
        box(f"terrain_box{k}", centre, half)
    for k, (position, vertices) in enumerate(terrain.meshes):
        name = f"terrain_mesh{k}"
        spec.add_mesh(name=name, uservert=np.asarray(vertices, dtype=float).flatten().tolist())
        names.append(name)
        body.add_geom(name=name, type=GEOM.mjGEOM_MESH, meshname=name, pos=[float(v) for v in position], **common)
    return Ground(names, OBJ.mjOBJ_BODY, "world")


GROUNDS: dict[str, Callable[..., Ground]] = {"plane": add_plane, "terrain": add_terrain}


# ---- actuators and sensors ---------------------------------------------------------------------------------------
def add_actuators(robot: Robot, spec: mujoco.MjSpec | None = None) -> None:
    """One actuator per driven joint, named after it, from the preset: a position servo (kp, kd, torque limit,
    optional target range) or a torque motor (torque limit). Actuators already in the MJCF are removed. Joint armature
    from the preset's table where it has a value."""
    spec = spec or robot.spec
    for actuator in list(spec.actuators):
        spec.delete(actuator)
    kp, kd = robot.table("kp", required=False), robot.table("kd", required=False)
    limit, targets = robot.table("torque_limits"), robot.table("target_limits", required=False)
    for joint, armature in zip(robot.joints, robot.table("armature", required=False)):
        if armature is not None:
            spec.joint(joint).armature = armature
    for i, joint in enumerate(robot.joints):
        act = spec.add_actuator(name=joint, target=joint, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        if robot.cfg.actuator == "position":
            act.set_to_position(kp=kp[i], kv=kd[i])
        else:
            act.set_to_motor()
            act.ctrlrange, act.ctrllimited = [-limit[i], limit[i]], mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange, act.forcelimited = [-limit[i], limit[i]], mujoco.mjtLimited.mjLIMITED_TRUE
        if targets[i] is not None and robot.cfg.actuator == "position":
            act.ctrlrange, act.ctrllimited = list(targets[i]), mujoco.mjtLimited.mjLIMITED_TRUE


def add_contact_sensor(spec: mujoco.MjSpec, name: str, geom: str, ground: Ground) -> str:
    spec.add_sensor(name=name, type=mujoco.mjtSensor.mjSENS_CONTACT, objtype=OBJ.mjOBJ_GEOM, objname=geom,
                    reftype=ground.contact_type, refname=ground.contact_name, intprm=CONTACT_NETFORCE)
    return name


# ---- the legged scene -------------------------------------------------------------------------------------------
@dataclass
class Scene:
    """A composed scene: the spec, the robot it was built from, and the names of the sensors of each group."""

    spec: mujoco.MjSpec
    robot: Robot
    ground: Ground | None = None
    terrain: object = None  # envs.terrains.Terrain of a terrain ground
    foot_force: list[list[str]] = field(default_factory=list)  # per foot: contact sensors of its geoms
    foot_pos: list[str] = field(default_factory=list)
    foot_vel: list[str] = field(default_factory=list)
    body_force: dict[str, list[str]] = field(default_factory=dict)  # watched body -> contact sensors of its geoms
    torque: list[str] = field(default_factory=list)  # per driven joint

    @property
    def path(self) -> Path:
        return self.robot.path

    def compile(self) -> mujoco.MjModel:
        return self.spec.compile()

    def to_xml(self) -> str:
        """The composed model as MJCF that loads by itself (asset folders absolute)."""
        base = self.robot.path.parent
        for attr in ("meshdir", "texturedir"):
            folder = Path(getattr(self.spec, attr) or ".")
            setattr(self.spec, attr, str(folder if folder.is_absolute() else (base / folder).resolve()))
        self.spec.compile()
        return self.spec.to_xml()


def legged_scene(cfg: RobotCfg, ground: str = "plane", friction: tuple[float, float, float] = FLOOR_FRICTION,
                 where: str = "task.robot", terrain=None) -> Scene:
    """Robot + ground + actuators + the sensors of a legged task (see the module docstring)."""
    robot = load_robot(cfg, where)
    if not cfg.feet:
        raise ConfigError(f"{where}.feet: a legged robot needs feet ({robot.inventory('geom')}; "
                          f"{robot.inventory('body')})")
    m, spec = robot.model, robot.spec
    base = spec.body(cfg.base_body)
    if cfg.floating_base and not base.joints:
        if base.parent.name != "world":
            raise ConfigError(f"{where}.base_body: {cfg.base_body!r} is not a child of the world body, so it cannot "
                              f"float (floating_base: false for a fixed base)")
        base.add_freejoint(name="root")
    for key in list(spec.keys):
        spec.delete(key)
    _name_unnamed_geoms(robot)
    if ground not in GROUNDS:
        raise ConfigError(f"task.ground.type: unknown ground {ground!r} (known: {', '.join(GROUNDS)})")
    floor = GROUNDS[ground](spec, friction, terrain) if ground == "terrain" else GROUNDS[ground](spec, friction)
    scene = Scene(spec, robot, floor, terrain)
    add_actuators(robot)

    # sensors: feet, watched bodies (terminating, undesired, constrained; each once), torques, foot frames, IMU
    foot_set = {g for geoms in robot.foot_geoms for g in geoms}
    for geoms in robot.foot_geoms:
        scene.foot_force.append([add_contact_sensor(spec, f"{g}_force", g, floor) for g in geoms])
    watched = dict.fromkeys(b for f in ("termination_contacts", "undesired_contacts", "constrained_contacts")
                            for b in getattr(cfg, f))
    for body in watched:
        geoms = [_geom_name(m, g) for g in robot.collision_geoms(body)]
        geoms = [g for g in geoms if g not in foot_set]
        if not geoms:
            raise ConfigError(f"{where}: body {body!r} has no collision geom apart from feet, so its contact with the "
                              f"ground cannot be watched ({robot.inventory('geom')})")
        scene.body_force[body] = [add_contact_sensor(spec, f"{g}_force", g, floor) for g in geoms]
    for joint in robot.joints:
        spec.add_sensor(name=f"{joint}_torque", type=mujoco.mjtSensor.mjSENS_ACTUATORFRC, objtype=OBJ.mjOBJ_ACTUATOR,
                        objname=joint)
        scene.torque.append(f"{joint}_torque")
    for suffix, sensor in (("pos", mujoco.mjtSensor.mjSENS_FRAMEPOS), ("vel", mujoco.mjtSensor.mjSENS_FRAMELINVEL)):
        for foot in cfg.feet:
            kind = OBJ.mjOBJ_GEOM if robot.has("geom", foot) else OBJ.mjOBJ_XBODY  # a body foot: its frame
            spec.add_sensor(name=f"{foot}_{suffix}", type=sensor, objtype=kind, objname=foot)
            getattr(scene, f"foot_{suffix}").append(f"{foot}_{suffix}")
    imu = cfg.imu or cfg.base_body
    kind = OBJ.mjOBJ_SITE if robot.has("site", imu) else OBJ.mjOBJ_XBODY
    spec.add_sensor(name="imu_quat", type=mujoco.mjtSensor.mjSENS_FRAMEQUAT, objtype=kind, objname=imu)
    if kind == OBJ.mjOBJ_SITE:  # gyro sensors sit on sites
        spec.add_sensor(name="imu_gyro", type=mujoco.mjtSensor.mjSENS_GYRO, objtype=kind, objname=imu)
    add_home_key(scene)
    return scene


def free_joint(model: mujoco.MjModel, body: str) -> int | None:
    """The id of the free joint that floats `body`, or None when the body is fixed."""
    b = model.body(body).id
    if model.body_jntnum[b] and model.jnt_type[model.body_jntadr[b]] == int(JOINT.mjJNT_FREE):
        return int(model.body_jntadr[b])
    return None


def add_home_key(scene: Scene) -> None:
    """A ``home`` keyframe: the preset's default pose, the floating base at its reset height, targets at the pose."""
    robot = scene.robot
    model = scene.spec.compile()
    qpos = model.qpos0.copy()
    default = robot.table("default_joint_pos")
    for joint, q in zip(robot.joints, default):
        qpos[model.joint(joint).qposadr[0]] = q
    free = free_joint(model, robot.cfg.base_body)
    if free is not None:
        qpos[model.jnt_qposadr[free] + 2] = robot.cfg.init_height
    ctrl = default if robot.cfg.actuator == "position" else [0.0] * len(default)
    scene.spec.add_key(name="home", qpos=list(qpos), ctrl=list(ctrl))


def save(task: str, overrides: dict | None, out: str | Path) -> Path:
    """`pgr scene`: the scene task `task` composes (config defaults, then `overrides`), written as MJCF to `out`."""
    from . import _load, task_config, task_spec

    cfg = task_config(task, overrides)
    scene = _load(task_spec(task).env).build_scene(cfg)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(scene.to_xml())
    return out


def sim_model(ref: str, terrain=None) -> mujoco.MjModel:
    """The model a one-world simulator (the ROS 2 sim node) plays: `ref` is a robot preset (a shipped robot's name
    or a preset YAML) or a shipped robot's MJCF name (``go1.xml``), composed into the legged scene training uses;
    or the path of a complete scene MJCF (with actuators, e.g. from ``pgr scene``), loaded as it is.
    `terrain` (a `TerrainCfg`, robots composed here only) puts the robot on that generated terrain instead of the
    plane, its home pose at the first tile's spawn point (centre, on the surface)."""
    from .robots import load, preset_file, resolve_mjcf, shipped

    name = Path(ref).name
    stem = name[:-4] if name.endswith(".xml") else name
    if preset_file(ref) is not None and not ref.endswith(".xml"):
        robot = ref
    elif stem in shipped() and not Path(ref).is_file():
        robot = stem
    else:  # a complete scene, loaded as it is
        if terrain is not None:
            raise ConfigError(f"mjcf: {ref} is a complete scene: a terrain goes with a robot preset or a shipped "
                              f"robot")
        model = mujoco.MjModel.from_xml_path(str(resolve_mjcf(ref)))
        if model.nu == 0:
            raise ConfigError(f"mjcf: {ref} has no actuators (a robot-only MJCF): give its preset YAML instead")
        return model
    cfg = load(robot, "mjcf")
    if terrain is None:
        return legged_scene(cfg).compile()
    from .terrains import generate

    ground = generate(terrain)
    model = legged_scene(cfg, "terrain", terrain=ground).compile()
    free = free_joint(model, cfg.base_body)
    if free is not None:  # the home pose on the tile's spawn point
        adr = model.jnt_qposadr[free]
        model.key_qpos[0, adr:adr + 3] += ground.origins[0, 0]
    return model
