"""Configuration of the quadruped velocity-tracking task: plain dataclasses, validated by `envs.config.merge`.

Joint-keyed tables (`default_joint_pos`, `kp`, ...) map regular expressions to values; every actuated joint must be
matched and every pattern must match a joint of the model, or loading fails naming the pattern.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _range(name: str, lo_hi: tuple[float, float]) -> None:
    if lo_hi[0] > lo_hi[1]:
        raise ValueError(f"{name}: lower bound {lo_hi[0]} is above upper bound {lo_hi[1]}")


@dataclass
class RobotCfg:
    mjcf: str = "go1.xml"  # a file in envs/assets, or a path
    base_body: str = "trunk"
    init_height: float = 0.30
    default_joint_pos: dict[str, float] = field(default_factory=lambda: {
        "F[RL]_thigh_joint": 0.8, "R[RL]_thigh_joint": 1.0, ".*_calf_joint": -1.5,
        "[FR]R_hip_joint": -0.1, "[FR]L_hip_joint": 0.1})
    kp: dict[str, float] = field(default_factory=lambda: {".*": 20.0})
    kd: dict[str, float] = field(default_factory=lambda: {".*": 0.5})
    # Go1 datasheet peak torques and joint speeds (see the MJCF header)
    torque_limits: dict[str, float] = field(default_factory=lambda: {
        ".*_hip_joint": 23.7, ".*_thigh_joint": 23.7, ".*_calf_joint": 35.55})
    velocity_limits: dict[str, float] = field(default_factory=lambda: {
        ".*_hip_joint": 30.1, ".*_thigh_joint": 30.1, ".*_calf_joint": 20.06})
    action_scale: float = 0.25
    action_clip: float = 100.0
    # bodies with a "<name>_force" contact sensor in the MJCF
    feet: list[str] = field(default_factory=lambda: ["FR_foot", "FL_foot", "RR_foot", "RL_foot"])
    thighs: list[str] = field(default_factory=lambda: ["FR_thigh", "FL_thigh", "RR_thigh", "RL_thigh"])
    calves: list[str] = field(default_factory=lambda: ["FR_calf", "FL_calf", "RR_calf", "RL_calf"])
    floor_geom: str = "floor"

    def __post_init__(self):
        if self.action_scale <= 0:
            raise ValueError(f"action_scale: must be > 0, got {self.action_scale}")


@dataclass
class SimCfg:
    dt: float = 0.005
    decimation: int = 4
    episode_length_s: float = 20.0
    nthread: int = 0  # 0: one per CPU core
    max_qvel: float = 1000.0  # a world whose |qvel| exceeds this is diverged and reset
    solver_iterations: int = 0  # the constraint solver's iteration cap; 0: the MJCF's own

    def __post_init__(self):
        if self.solver_iterations < 0:
            raise ValueError(f"solver_iterations: must be >= 0, got {self.solver_iterations}")
        if self.dt <= 0:
            raise ValueError(f"dt: must be > 0, got {self.dt}")
        if self.decimation < 1:
            raise ValueError(f"decimation: must be >= 1, got {self.decimation}")
        if self.nthread < 0:
            raise ValueError(f"nthread: must be >= 0, got {self.nthread}")


@dataclass
class CommandsCfg:
    resampling_time_s: float = 10.0
    lin_vel_x: tuple[float, float] = (-1.0, 1.0)
    lin_vel_y: tuple[float, float] = (-0.6, 0.6)
    ang_vel_yaw: tuple[float, float] = (-1.0, 1.0)
    standing_fraction: float = 0.1  # share of commands that are exactly zero (stand still)
    small_to_zero: float = 0.1  # planar speed commands below this become zero

    def __post_init__(self):
        for name in ("lin_vel_x", "lin_vel_y", "ang_vel_yaw"):
            _range(name, getattr(self, name))
        if not 0 <= self.standing_fraction <= 1:
            raise ValueError(f"standing_fraction: must be in [0, 1], got {self.standing_fraction}")


@dataclass
class ObsTermCfg:
    scale: float | list[float] = 1.0
    noise: float = 0.0  # half-width of uniform noise, in the term's raw units
    clip: float = 100.0


@dataclass
class ObservationsCfg:
    policy: list[str] = field(default_factory=lambda: [
        "base_ang_vel", "projected_gravity", "command", "joint_pos", "joint_vel", "last_action"])
    critic: list[str] = field(default_factory=lambda: [
        "base_lin_vel", "base_ang_vel", "projected_gravity", "command", "joint_pos", "joint_vel", "last_action"])
    add_noise: bool = True
    base_lin_vel: ObsTermCfg = field(default_factory=lambda: ObsTermCfg(scale=2.0, noise=0.1))
    base_ang_vel: ObsTermCfg = field(default_factory=lambda: ObsTermCfg(scale=0.25, noise=0.2))
    projected_gravity: ObsTermCfg = field(default_factory=lambda: ObsTermCfg(noise=0.05))
    command: ObsTermCfg = field(default_factory=lambda: ObsTermCfg(scale=[2.0, 2.0, 0.25]))
    joint_pos: ObsTermCfg = field(default_factory=lambda: ObsTermCfg(noise=0.01))
    joint_vel: ObsTermCfg = field(default_factory=lambda: ObsTermCfg(scale=0.05, noise=1.5))
    last_action: ObsTermCfg = field(default_factory=ObsTermCfg)


@dataclass
class RewardsCfg:
    """Weights (per second: multiplied by the policy dt each step) and term parameters. Weight 0 disables."""
    tracking_lin_vel: float = 1.0
    tracking_ang_vel: float = 0.5
    lin_vel_z: float = -2.0
    ang_vel_xy: float = -0.05
    orientation: float = -1.0
    torques: float = -0.0002
    joint_acc: float = -2.5e-7
    action_rate: float = -0.01
    feet_air_time: float = 1.0
    undesired_contacts: float = -1.0
    joint_limits: float = -10.0
    tracking_sigma: float = 0.25
    air_time_target: float = 0.5
    soft_joint_limit: float = 0.9  # fraction of the joint range beyond which joint_limits penalizes
    # Clip the summed reward at 0 (legged_gym's default): with net-negative rewards, ending the episode early
    # (falling, or CaT's hard contact constraint) pays, and the policy learns to do exactly that.
    only_positive: bool = True

    def __post_init__(self):
        if self.tracking_sigma <= 0:
            raise ValueError(f"tracking_sigma: must be > 0, got {self.tracking_sigma}")


@dataclass
class ConstraintCfg:
    limit: float = 0.0
    p_max: float = 0.25
    enabled: bool = True

    def __post_init__(self):
        if not 0 <= self.p_max <= 1:
            raise ValueError(f"p_max: must be in [0, 1], got {self.p_max}")


@dataclass
class ConstraintsCfg:
    """Constraints as terminations (CaT). Each term yields c (positive = violated) per element."""
    tau: float = 0.95  # decay of the running maximum violation c_max
    torque: ConstraintCfg = field(default_factory=lambda: ConstraintCfg(limit=0.95))  # |tau| / torque limit
    joint_vel: ConstraintCfg = field(default_factory=lambda: ConstraintCfg(limit=0.9))  # |qdot| / speed limit
    joint_acc: ConstraintCfg = field(default_factory=lambda: ConstraintCfg(limit=800.0))  # rad/s^2
    action_rate: ConstraintCfg = field(default_factory=lambda: ConstraintCfg(limit=80.0))  # joint target rad/s
    body_contact: ConstraintCfg = field(default_factory=lambda: ConstraintCfg(limit=0.0, p_max=1.0))  # trunk, thighs
    foot_contact_force: ConstraintCfg = field(default_factory=lambda: ConstraintCfg(limit=300.0))  # N per foot
    base_orientation: ConstraintCfg = field(default_factory=lambda: ConstraintCfg(limit=0.5))  # |gravity_xy| in base

    def __post_init__(self):
        if not 0 <= self.tau < 1:
            raise ValueError(f"tau: must be in [0, 1), got {self.tau}")


@dataclass
class RandomizationCfg:
    friction: tuple[float, float] = (0.5, 1.25)
    added_base_mass: tuple[float, float] = (-1.0, 1.0)  # kg
    motor_strength: tuple[float, float] = (0.9, 1.1)
    push_interval_s: float = 15.0  # 0 disables pushes
    push_max_vel: float = 1.0  # m/s added to the base's planar velocity
    init_joint_pos_scale: tuple[float, float] = (0.5, 1.5)
    init_base_vel: float = 0.5
    enabled: bool = True

    def __post_init__(self):
        for name in ("friction", "added_base_mass", "motor_strength", "init_joint_pos_scale"):
            _range(name, getattr(self, name))
        if self.friction[0] < 0:
            raise ValueError(f"friction: must be >= 0, got {self.friction}")


@dataclass
class TerminationsCfg:
    base_contact: bool = True
    upside_down: bool = True  # gravity points up in the base frame


@dataclass
class QuadrupedFlatCfg:
    robot: RobotCfg = field(default_factory=RobotCfg)
    sim: SimCfg = field(default_factory=SimCfg)
    commands: CommandsCfg = field(default_factory=CommandsCfg)
    observations: ObservationsCfg = field(default_factory=ObservationsCfg)
    rewards: RewardsCfg = field(default_factory=RewardsCfg)
    constraints: ConstraintsCfg = field(default_factory=ConstraintsCfg)
    randomization: RandomizationCfg = field(default_factory=RandomizationCfg)
    terminations: TerminationsCfg = field(default_factory=TerminationsCfg)
