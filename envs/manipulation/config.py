"""Configuration of the arm goal tasks (`arm-reach`, `arm-push`, `arm-pick-place`): plain dataclasses, validated
by `envs.config.merge`. Control, episode length, goal sampling and the success threshold follow gymnasium-robotics'
Fetch tasks."""

from __future__ import annotations

from dataclasses import dataclass, field

GOAL_TASKS = ("reach", "push", "pick_place")


def _positive(obj, *names: str) -> None:
    for name in names:
        if getattr(obj, name) <= 0:
            raise ValueError(f"{name}: must be > 0, got {getattr(obj, name)}")


@dataclass
class ArmRobotCfg:
    preset: str = "panda"  # the robot (envs/robots/): MJCF and joint servos; the kinematics below are the Panda's
    arm_joints: list[str] = field(default_factory=lambda: [f"joint{i}" for i in range(1, 8)])
    finger_joints: list[str] = field(default_factory=lambda: ["finger_joint1", "finger_joint2"])
    object_joint: str = "object"
    object_half_size: float = 0.025
    # Franka's "ready" pose: the IK that places the gripper at gripper_start starts here
    ready_pose: list[float] = field(default_factory=lambda: [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
    gripper_start: tuple[float, float, float] = (0.5, 0.0, 0.13)
    # action (dx, dy, dz) in [-1, 1] moves the gripper target by up to this much per step (m)
    max_displacement: float = 0.05
    workspace_low: tuple[float, float, float] = (0.25, -0.4, 0.02)
    workspace_high: tuple[float, float, float] = (0.8, 0.4, 0.55)
    finger_open: float = 0.04  # per finger (m); action gripper -1 closes, +1 opens
    velocity_limits: list[float] = field(default_factory=lambda: [2.175] * 4 + [2.61] * 3)  # rad/s, datasheet
    ik_damping: float = 0.05
    ik_iterations: int = 2
    ik_orientation_weight: float = 0.5
    joint_limit_margin: float = 0.02  # rad kept from each joint limit

    def __post_init__(self):
        if len(self.arm_joints) != 7:
            raise ValueError(f"arm_joints: the kinematics are for a 7-joint arm, got {len(self.arm_joints)}")
        if len(self.ready_pose) != 7:
            raise ValueError(f"ready_pose: expected 7 values, got {len(self.ready_pose)}")
        if len(self.velocity_limits) != 7:
            raise ValueError(f"velocity_limits: expected 7 values, got {len(self.velocity_limits)}")
        _positive(self, "max_displacement", "finger_open", "ik_damping", "ik_iterations")
        for lo, hi in zip(self.workspace_low, self.workspace_high):
            if lo >= hi:
                raise ValueError(f"workspace_low: {self.workspace_low} is not below workspace_high {self.workspace_high}")


@dataclass
class GoalCfg:
    task: str = "push"  # reach | push | pick_place
    episode_steps: int = 50
    distance_threshold: float = 0.05  # success: achieved goal within this of the desired goal (m)
    object_range: float = 0.15  # object xy sampled this far around the gripper's start
    target_range: float = 0.15  # goal sampled this far around the gripper's start (xy; reach: xyz)
    min_object_distance: float = 0.1  # the object starts at least this far from the gripper (xy)
    target_in_air_fraction: float = 0.5  # pick_place: share of goals lifted above the table
    target_max_height: float = 0.45  # pick_place: lifted goals up to this far above the resting object

    def __post_init__(self):
        if self.task not in GOAL_TASKS:
            raise ValueError(f"task: unknown goal task {self.task!r} (known: {', '.join(GOAL_TASKS)})")
        _positive(self, "episode_steps", "distance_threshold")
        if not 0 <= self.target_in_air_fraction <= 1:
            raise ValueError(f"target_in_air_fraction: must be in [0, 1], got {self.target_in_air_fraction}")
        if self.min_object_distance >= self.object_range * 2 ** 0.5:
            raise ValueError(f"min_object_distance: {self.min_object_distance} leaves no room in object_range "
                             f"{self.object_range}")


@dataclass
class ArmSimCfg:
    dt: float = 0.002
    decimation: int = 20  # 25 Hz control, as Fetch
    nthread: int = 0  # 0: one per CPU core
    max_qvel: float = 1000.0  # a world whose |qvel| exceeds this is diverged and reset

    def __post_init__(self):
        _positive(self, "dt", "decimation")
        if self.nthread < 0:
            raise ValueError(f"nthread: must be >= 0, got {self.nthread}")


@dataclass
class ArmRandomizationCfg:
    enabled: bool = True
    object_mass: tuple[float, float] = (0.1, 0.3)  # kg, per world
    object_friction: tuple[float, float] = (0.8, 1.2)  # sliding friction of the box, per world

    def __post_init__(self):
        for name in ("object_mass", "object_friction"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name}: expected 0 < low <= high, got {[lo, hi]}")


def migrate(data: dict | None) -> dict | None:
    """A task mapping of an older version (`robot.mjcf: panda.xml`, the arm scene in one file) in today's layout."""
    robot = data.get("robot") if isinstance(data, dict) else None
    if isinstance(robot, dict) and "mjcf" in robot:
        if robot["mjcf"] != "panda.xml":
            raise ValueError(f"task.robot.mjcf: a config of an older version with its own model ({robot['mjcf']})")
        data = {**data, "robot": {k: v for k, v in robot.items() if k != "mjcf"}}
    return data


@dataclass
class ArmGoalCfg:
    migrate = staticmethod(migrate)
    robot: ArmRobotCfg = field(default_factory=ArmRobotCfg)
    goal: GoalCfg = field(default_factory=GoalCfg)
    sim: ArmSimCfg = field(default_factory=ArmSimCfg)
    randomization: ArmRandomizationCfg = field(default_factory=ArmRandomizationCfg)


@dataclass
class ArmReachCfg(ArmGoalCfg):
    goal: GoalCfg = field(default_factory=lambda: GoalCfg(task="reach"))


@dataclass
class ArmPushCfg(ArmGoalCfg):
    goal: GoalCfg = field(default_factory=lambda: GoalCfg(task="push"))


@dataclass
class ArmPickPlaceCfg(ArmGoalCfg):
    goal: GoalCfg = field(default_factory=lambda: GoalCfg(task="pick_place"))
