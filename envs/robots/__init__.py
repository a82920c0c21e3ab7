"""Robots: one folder per robot (a robot-only MJCF and its preset YAML), and the preset's schema, `RobotCfg`.

A preset names what a task needs to know about a robot and the MJCF cannot say: joint tables (default pose, PD gains,
torque and speed limits, armature, servo target limits), the base body, the IMU site, the feet and the bodies whose
ground contact matters, and the actuator model. The scene builder (`envs/scene.py`) adds actuators, ground and sensors
from it, so the MJCF stays as robot description repositories publish it.

A user's robot is a YAML file in this schema beside its MJCF (`mjcf` is relative to the YAML's folder), given as
``task.robot=path/to/my_robot.yaml``; ``preset: go1`` inside a YAML starts from a shipped robot. Nothing here imports
torch or mujoco.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import ConfigError, load_yaml

ROBOTS = Path(__file__).resolve().parent
ACTUATORS = ("position", "motor")


def shipped() -> list[str]:
    """Names of the robots shipped here (a folder holding <name>.yaml)."""
    return sorted(p.parent.name for p in ROBOTS.glob("*/*.yaml") if p.stem == p.parent.name)


def preset_file(ref: str) -> Path | None:
    """The YAML of preset `ref` (a shipped robot's name, or a path), or None."""
    if (ROBOTS / ref / f"{ref}.yaml").is_file() and "/" not in ref:
        return ROBOTS / ref / f"{ref}.yaml"
    path = Path(ref).expanduser()
    return path.resolve() if path.is_file() else None


def resolve_mjcf(name: str) -> Path:
    """A robot MJCF: an absolute path, a path from the working directory, a path under envs/robots
    (``go1/go1.xml``) or the file name of a shipped robot's MJCF (``go1.xml``)."""
    path = Path(name).expanduser()
    for candidate in (path, ROBOTS / name, *(ROBOTS / r / name for r in shipped())):
        if candidate.is_file():
            return candidate.resolve()
    raise ConfigError(f"task.robot.mjcf: no model {name!r} (shipped robots: "
                      f"{', '.join(f'{r}/{r}.xml' for r in shipped())}; or give a path)")


def load(ref: str, where: str = "task.robot") -> "RobotCfg":
    """The preset `ref` (a shipped robot's name or a YAML path), validated."""
    from ..config import merge

    return merge(RobotCfg(), ref, where)


@dataclass
class RobotCfg:
    """A robot preset. Joint tables map regular expressions over the robot's joint names to values: every pattern
    must match a joint, and the required tables (default pose, kp, kd, torque limits) need a value for every joint."""

    preset: str = ""  # where this preset was loaded from: a shipped robot's name or a YAML file's path
    name: str = "robot"
    mjcf: str = ""  # the robot-only MJCF: relative to the preset's YAML, or a path
    joints: list[str] = field(default_factory=lambda: [".*"])  # patterns: the driven joints, in the MJCF's order
    base_body: str = ""
    floating_base: bool = True  # the scene adds a free joint to the base body unless it has one
    init_height: float = 0.0  # base height at reset (m), floating bases
    imu: str = ""  # a site or body of the MJCF; "" = the base body
    actuator: str = "position"  # position: PD servo in MuJoCo every physics step; motor: the action is a torque
    default_joint_pos: dict[str, float] = field(default_factory=dict)
    kp: dict[str, float] = field(default_factory=dict)  # N m/rad (position servos)
    kd: dict[str, float] = field(default_factory=dict)  # N m s/rad
    torque_limits: dict[str, float] = field(default_factory=dict)  # N m
    velocity_limits: dict[str, float] = field(default_factory=dict)  # rad/s (optional: tasks that need it say so)
    armature: dict[str, float] = field(default_factory=dict)  # kg m^2 (optional: the MJCF's own where unset)
    target_limits: dict[str, tuple[float, float]] = field(default_factory=dict)  # servo targets' range (optional)
    action_scale: float = 0.25  # position: target = default + action * scale (rad); motor: torque = action * scale
    action_clip: float = 100.0
    feet: list[str] = field(default_factory=list)  # geoms or bodies meant to touch the ground
    undesired_contacts: list[str] = field(default_factory=list)  # bodies whose ground contact is penalized
    constrained_contacts: list[str] = field(default_factory=list)  # bodies whose ground contact a hard constraint forbids
    termination_contacts: list[str] = field(default_factory=list)  # bodies whose ground contact ends the episode

    def __post_init__(self):
        if self.action_scale <= 0:
            raise ValueError(f"action_scale: must be > 0, got {self.action_scale}")
        if self.actuator not in ACTUATORS:
            raise ValueError(f"actuator: expected one of {', '.join(ACTUATORS)}, got {self.actuator!r}")
        for name, (lo, hi) in self.target_limits.items():
            if lo > hi:
                raise ValueError(f"target_limits: {name}: lower bound {lo} is above upper bound {hi}")

    @classmethod
    def load_preset(cls, ref: str, where: str) -> dict:
        """The mapping of preset `ref` with its `mjcf` made independent of the working directory."""
        path = preset_file(ref)
        if path is None:
            raise ConfigError(f"{where}: no robot preset {ref!r} (shipped: {', '.join(shipped())}; or a path to a "
                              f"YAML file)")
        data = load_yaml(path)
        mjcf = data.get("mjcf")
        if isinstance(mjcf, str) and mjcf and not Path(mjcf).is_absolute():
            local = path.parent / mjcf
            data["mjcf"] = str(local.relative_to(ROBOTS) if local.resolve().is_relative_to(ROBOTS) else local.resolve())
        return data

    @classmethod
    def preset_name(cls, ref: str) -> str:
        path = preset_file(ref)
        if path is not None and path.parent.parent == ROBOTS and path.stem == path.parent.name:
            return path.stem
        return str(path) if path is not None else ref
