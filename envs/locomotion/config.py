"""Configuration of the legged velocity-tracking task (`quadruped-flat`): plain dataclasses validated by
`envs.config.merge`.

The robot is a preset (`envs/robots/`): ``robot: go1`` (the default), ``robot: path/to/my_robot.yaml``, or a mapping of
fields on top of one (``robot: {preset: go1, kp: {".*": 25.0}}``). Everything else is task data: each term section
(observations, rewards, constraints, terminations, randomization events, curriculum) maps a term name to its settings;
the name picks the plain function of the same name in the section's module (`observations.py`, `rewards.py`, ...)
unless `func` names another (or ``module:function`` of the user's), and `params` are that function's keyword
arguments, checked against its signature when the env is built. Terms read the robot through the preset's groups
(feet, watched bodies, base), so any legged preset runs with no task-code change.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

from ..config import ConfigError
from ..robots import RobotCfg, load
from ..terrains import TerrainCfg


def params_field():
    """A term's parameters: a mapping merged key by key (``--set task.rewards.x.params.sigma=0.3`` keeps the rest)."""
    return field(default_factory=dict, metadata={"merge": "update"})


def _range(name: str, lo_hi: tuple[float, float]) -> None:
    if lo_hi[0] > lo_hi[1]:
        raise ValueError(f"{name}: lower bound {lo_hi[0]} is above upper bound {lo_hi[1]}")


def functions(module: str) -> list[str]:
    """The term functions of `module` (a sibling module of this one): its public functions, in definition order."""
    mod = importlib.import_module(f"{__package__}.{module}")
    return [n for n, f in vars(mod).items() if inspect.isfunction(f) and f.__module__ == mod.__name__
            and not n.startswith("_")]


class _Terms:
    """Mixin of the term sections: `cfg.rewards.torques` reads the term `torques`."""

    terms: dict
    module = ""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "terms":
            raise AttributeError(name)
        try:
            return self.terms[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no field or term {name!r}") from None

    @classmethod
    def term_names(cls) -> list[str]:
        return functions(cls.module)


def go1() -> RobotCfg:
    return load("go1")


@dataclass
class GroundCfg:
    type: str = "plane"  # envs/scene.py GROUNDS: "plane" or "terrain" (the grid `terrain` describes)
    friction: tuple[float, float, float] = (1.0, 0.005, 0.0001)  # sliding, torsional, rolling
    terrain: TerrainCfg = field(default_factory=TerrainCfg)  # envs/terrains: used when type is "terrain"


@dataclass
class SimCfg:
    dt: float = 0.005
    decimation: int = 4
    episode_length_s: float = 20.0
    nthread: int = 0  # 0: one per CPU core
    max_qvel: float = 1000.0  # a world whose |qvel| exceeds this is diverged and reset
    solver_iterations: int = 0  # the constraint solver's iteration cap; 0: the MJCF's own
    # per-world randomization of model parameters: at most this many distinct models, world i using model
    # i % model_copies (0: one per world). A terrain lives in the model: 64 copies of it instead of thousands.
    model_copies: int = 0

    def __post_init__(self):
        if self.solver_iterations < 0:
            raise ValueError(f"solver_iterations: must be >= 0, got {self.solver_iterations}")
        if self.dt <= 0:
            raise ValueError(f"dt: must be > 0, got {self.dt}")
        if self.decimation < 1:
            raise ValueError(f"decimation: must be >= 1, got {self.decimation}")
        if self.nthread < 0:
            raise ValueError(f"nthread: must be >= 0, got {self.nthread}")
        if self.model_copies < 0:
            raise ValueError(f"model_copies: must be >= 0, got {self.model_copies}")


@dataclass
class CommandsCfg:
    """The command term: `func` (in commands.py) draws commands from these ranges."""

    func: str = "velocity"
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


# ---- observations ---------------------------------------------------------------------------------------------------
@dataclass
class ObsTermCfg:
    scale: float | list[float] = 1.0
    noise: float = 0.0  # half-width of uniform noise, in the term's raw units
    clip: float = 100.0
    func: str = ""
    params: dict[str, Any] = params_field()
    # how the term mirrors left to right (symmetry augmentation): polar, axial, command, joints, feet, invariant;
    # "" = the shipped term's own kind (symmetry.MIRROR_OF)
    mirror: str = ""

    def __post_init__(self):
        from .symmetry import KINDS

        if self.mirror and self.mirror not in KINDS:
            raise ValueError(f"mirror: expected one of {', '.join(KINDS)}, got {self.mirror!r}")


@dataclass
class ObservationsCfg(_Terms):
    __terms__ = True
    module = "observations"
    policy: list[str] = field(default_factory=lambda: [
        "base_ang_vel", "projected_gravity", "command", "joint_pos", "joint_vel", "last_action"])
    critic: list[str] = field(default_factory=lambda: [
        "base_lin_vel", "base_ang_vel", "projected_gravity", "command", "joint_pos", "joint_vel", "last_action"])
    add_noise: bool = True
    terms: dict[str, ObsTermCfg] = field(default_factory=lambda: {
        "base_lin_vel": ObsTermCfg(scale=2.0, noise=0.1),
        "base_ang_vel": ObsTermCfg(scale=0.25, noise=0.2),
        "projected_gravity": ObsTermCfg(noise=0.05),
        "command": ObsTermCfg(scale=[2.0, 2.0, 0.25]),
        "joint_pos": ObsTermCfg(noise=0.01),
        "joint_vel": ObsTermCfg(scale=0.05, noise=1.5),
        "last_action": ObsTermCfg(),
    })


# ---- rewards ----------------------------------------------------------------------------------------------------------
@dataclass
class RewardTermCfg:
    """weight: per second (multiplied by the policy dt each step), negative for penalties; 0 disables."""

    __shorthand__ = "weight"
    weight: float = 0.0
    func: str = ""
    params: dict[str, Any] = params_field()


@dataclass
class RewardsCfg(_Terms):
    """Reward terms (``torques: -2e-4`` sets a weight; ``torques: {weight: ..., params: {...}}`` both)."""

    __terms__ = True
    module = "rewards"
    # Clip the summed reward at 0 (legged_gym's default): with net-negative rewards, ending the episode early
    # (falling, or CaT's hard contact constraint) pays, and the policy learns to do exactly that.
    only_positive: bool = True
    terms: dict[str, RewardTermCfg] = field(default_factory=lambda: {
        "tracking_lin_vel": RewardTermCfg(1.0, params={"sigma": 0.25}),
        "tracking_ang_vel": RewardTermCfg(0.5, params={"sigma": 0.25}),
        "lin_vel_z": RewardTermCfg(-2.0),
        "ang_vel_xy": RewardTermCfg(-0.05),
        "orientation": RewardTermCfg(-1.0),
        "torques": RewardTermCfg(-0.0002),
        "joint_acc": RewardTermCfg(-2.5e-7),
        "action_rate": RewardTermCfg(-0.01),
        "feet_air_time": RewardTermCfg(1.0, params={"target": 0.5, "min_command": 0.1}),
        "undesired_contacts": RewardTermCfg(-1.0, params={"threshold": 1.0}),
        # soft limit: the fraction of the joint range beyond which the term penalizes
        "joint_limits": RewardTermCfg(-10.0, params={"soft_limit": 0.9}),
    })


# ---- constraints (CaT) ------------------------------------------------------------------------------------------------
@dataclass
class ConstraintTermCfg:
    __shorthand__ = "enabled"
    limit: float = 0.0
    p_max: float = 0.25
    enabled: bool = True
    func: str = ""
    params: dict[str, Any] = params_field()

    def __post_init__(self):
        if not 0 <= self.p_max <= 1:
            raise ValueError(f"p_max: must be in [0, 1], got {self.p_max}")


@dataclass
class ConstraintsCfg(_Terms):
    """Constraints as terminations (CaT). Each term yields c (positive = violated) per element."""

    __terms__ = True
    module = "constraints"
    tau: float = 0.95  # decay of the running maximum violation c_max
    # > 0: the soft constraints' p_max ramps from p_max_ramp_start over this many policy steps (envs/cat.py)
    p_max_ramp_steps: int = 0
    p_max_ramp_start: float = 0.05
    terms: dict[str, ConstraintTermCfg] = field(default_factory=lambda: {
        "torque": ConstraintTermCfg(limit=0.95),  # |tau| / torque limit
        "joint_vel": ConstraintTermCfg(limit=0.9),  # |qdot| / speed limit
        "joint_acc": ConstraintTermCfg(limit=800.0),  # rad/s^2
        "action_rate": ConstraintTermCfg(limit=80.0),  # joint target rad/s
        "body_contact": ConstraintTermCfg(limit=0.0, p_max=1.0, params={"threshold": 1.0}),  # constrained_contacts
        "foot_contact_force": ConstraintTermCfg(limit=300.0),  # N per foot
        "base_orientation": ConstraintTermCfg(limit=0.5),  # |gravity_xy| in base
    })

    def __post_init__(self):
        if not 0 <= self.tau < 1:
            raise ValueError(f"tau: must be in [0, 1), got {self.tau}")
        if self.p_max_ramp_steps < 0 or not 0 < self.p_max_ramp_start <= 1:
            raise ValueError(f"p_max_ramp_steps >= 0, p_max_ramp_start in (0, 1]: got {self.p_max_ramp_steps}, "
                             f"{self.p_max_ramp_start}")


# ---- terminations -----------------------------------------------------------------------------------------------------
@dataclass
class TerminationTermCfg:
    __shorthand__ = "enabled"
    enabled: bool = True
    func: str = ""
    params: dict[str, Any] = params_field()


@dataclass
class TerminationsCfg(_Terms):
    __terms__ = True
    module = "terminations"
    terms: dict[str, TerminationTermCfg] = field(default_factory=lambda: {
        "base_contact": TerminationTermCfg(params={"threshold": 1.0}),  # the preset's termination_contacts
        "upside_down": TerminationTermCfg(),  # gravity points up in the base frame
    })


# ---- events (randomization, resets, pushes) ---------------------------------------------------------------------------
MODES = ("startup", "reset", "interval")


@dataclass
class EventCfg:
    """mode: startup (once, at construction: per-world model parameters), reset (each world's reset, after the
    default pose is set: random initial state) or interval (every `interval_s` of simulated time, all worlds)."""

    mode: str = "startup"
    interval_s: float = 0.0  # interval events; 0 disables
    enabled: bool = True
    # env steps (of all worlds together: a PPO iteration is num_steps_per_env of them) before the event acts: a
    # startup event then runs once at that step, reset and interval events from it on. Randomization that a blind
    # policy must absorb can wait until it walks (the rough recipe did not walk with it from the start).
    start_step: int = 0
    func: str = ""
    params: dict[str, Any] = params_field()

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {self.mode!r}")
        if self.interval_s < 0:
            raise ValueError(f"interval_s: must be >= 0, got {self.interval_s}")
        if self.start_step < 0:
            raise ValueError(f"start_step: must be >= 0, got {self.start_step}")


@dataclass
class RandomizationCfg(_Terms):
    """Events, run in this order within each mode; `enabled: false` turns them all off (resets then start every
    world at the default pose, heading +x, at rest)."""

    __terms__ = True
    module = "events"
    enabled: bool = True
    terms: dict[str, EventCfg] = field(default_factory=lambda: {
        "friction": EventCfg("startup", params={"range": [0.5, 1.25]}),  # the ground's sliding friction
        "added_base_mass": EventCfg("startup", params={"range": [-1.0, 1.0]}),  # kg
        "motor_strength": EventCfg("startup", params={"range": [0.9, 1.1]}),  # scales kp, kd (or the torque)
        "joint_pos_scale": EventCfg("reset", params={"range": [0.5, 1.5]}),  # x the default pose
        "base_yaw": EventCfg("reset", params={"range": [-3.14159, 3.14159]}),
        "base_velocity": EventCfg("reset", params={"max": 0.5}),  # m/s, rad/s, each of the 6
        # a share of the resets at the default pose and at rest instead (the start of a robot and of `pgr eval`)
        "clean_start": EventCfg("reset", enabled=False, params={"fraction": 0.25}),
        "push": EventCfg("interval", interval_s=15.0, params={"max_vel": 1.0}),  # m/s added to the planar velocity
        # sim-to-real: off here (enabled: true, or the rough recipe, turns them on)
        "pd_gains": EventCfg("startup", enabled=False, params={"kp_range": [0.8, 1.2], "kd_range": [0.8, 1.2]}),
        "actuator_latency": EventCfg("startup", enabled=False, params={"max_steps": 2}),  # physics steps
        "base_com": EventCfg("startup", enabled=False, params={"range": [-0.03, 0.03]}),  # m per axis
        "link_masses": EventCfg("startup", enabled=False, params={"range": [0.9, 1.1]}),
        "armature": EventCfg("startup", enabled=False, params={"range": [0.8, 1.2]}),
        "joint_pos_bias": EventCfg("reset", enabled=False, params={"range": [-0.02, 0.02]}),  # rad
        "imu_bias": EventCfg("reset", enabled=False, params={"gyro": 0.05, "gravity": 0.02}),
    })


# ---- curricula ------------------------------------------------------------------------------------------------------
@dataclass
class CurriculumTermCfg:
    """A curriculum term runs when worlds reset, with the episode sums of the worlds that just finished."""

    __shorthand__ = "enabled"
    enabled: bool = True
    func: str = ""
    params: dict[str, Any] = params_field()


@dataclass
class CurriculumCfg(_Terms):
    __terms__ = True
    module = "curricula"
    terms: dict[str, CurriculumTermCfg] = field(default_factory=dict)


# Keys of task configs saved before robot presets and term sections (run directories of older versions):
# old key -> (term, parameter) or, for the robot, the keys the go1 preset now holds.
LEGACY_REWARD_PARAMS = {"tracking_sigma": [("tracking_lin_vel", "sigma"), ("tracking_ang_vel", "sigma")],
                        "air_time_target": [("feet_air_time", "target")],
                        "soft_joint_limit": [("joint_limits", "soft_limit")]}
LEGACY_EVENTS = {"friction": ("friction", "range"), "added_base_mass": ("added_base_mass", "range"),
                 "motor_strength": ("motor_strength", "range"), "init_joint_pos_scale": ("joint_pos_scale", "range"),
                 "init_base_vel": ("base_velocity", "max"), "push_max_vel": ("push", "max_vel")}
LEGACY_ROBOT = ("thighs", "calves", "floor_geom")


def migrate(data: dict | None) -> dict | None:
    """A task mapping in the layout of older versions (Go1 values in `robot`, reward parameters beside the weights,
    randomization as ranges) in today's: the go1 preset with the saved tables on top, term params, events."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    robot = data.get("robot")
    if isinstance(robot, dict) and any(k in robot for k in LEGACY_ROBOT):
        if robot.get("mjcf", "go1.xml") != "go1.xml":
            raise ConfigError(f"task.robot.mjcf: a config of an older version with its own model "
                              f"({robot['mjcf']}): write a robot preset for it")
        data["robot"] = {"preset": "go1", **{k: v for k, v in robot.items() if k not in (*LEGACY_ROBOT, "mjcf")}}
    rewards = data.get("rewards")
    if isinstance(rewards, dict) and any(k in rewards for k in LEGACY_REWARD_PARAMS):
        rewards = dict(rewards)
        for key, targets in LEGACY_REWARD_PARAMS.items():
            if key in rewards:
                value = rewards.pop(key)
                for term, param in targets:
                    entry = rewards.get(term, {})
                    entry = dict(entry) if isinstance(entry, dict) else {"weight": entry}
                    entry["params"] = {**entry.get("params", {}), param: value}
                    rewards[term] = entry
        data["rewards"] = rewards
    events = data.get("randomization")
    if isinstance(events, dict) and any(k in events and not isinstance(events[k], dict) for k in LEGACY_EVENTS) \
            or isinstance(events, dict) and "push_interval_s" in events:
        events = dict(events)
        for key, (term, param) in LEGACY_EVENTS.items():
            if key in events and not isinstance(events[key], dict):
                value = events.pop(key)
                entry = events.setdefault(term, {})
                entry["params"] = {**entry.get("params", {}), param: value}
        if "push_interval_s" in events:
            events.setdefault("push", {})["interval_s"] = events.pop("push_interval_s")
        data["randomization"] = events
    return data


@dataclass
class QuadrupedFlatCfg:
    migrate = staticmethod(migrate)
    robot: RobotCfg = field(default_factory=go1)
    ground: GroundCfg = field(default_factory=GroundCfg)
    sim: SimCfg = field(default_factory=SimCfg)
    commands: CommandsCfg = field(default_factory=CommandsCfg)
    observations: ObservationsCfg = field(default_factory=ObservationsCfg)
    rewards: RewardsCfg = field(default_factory=RewardsCfg)
    constraints: ConstraintsCfg = field(default_factory=ConstraintsCfg)
    terminations: TerminationsCfg = field(default_factory=TerminationsCfg)
    randomization: RandomizationCfg = field(default_factory=RandomizationCfg)
    curriculum: CurriculumCfg = field(default_factory=CurriculumCfg)


# ---- rough terrain -------------------------------------------------------------------------------------------------
def _rough_ground() -> GroundCfg:
    return GroundCfg(type="terrain")


def _rough_sim() -> SimCfg:
    return SimCfg(model_copies=64)


def _rough_observations(policy_scan: bool = False) -> ObservationsCfg:
    obs = ObservationsCfg()
    obs.terms["height_scan"] = ObsTermCfg(noise=0.02, clip=1.0, params={"offset": 0.3})  # m; Go1 stands at ~0.3 m
    obs.critic = [*obs.critic, "height_scan"]
    if policy_scan:
        obs.policy = [*obs.policy, "height_scan"]
    return obs


def _rough_randomization() -> RandomizationCfg:
    """The flat task's events with the sim-to-real ones on (a policy that must survive a robot it never saw)."""
    events = RandomizationCfg()
    for name in ("pd_gains", "actuator_latency", "base_com", "link_masses", "armature", "joint_pos_bias", "imu_bias"):
        events.terms[name].enabled = True
    events.terms["actuator_latency"].params = {"max_steps": 1}
    return events


def _rough_curriculum() -> CurriculumCfg:
    return CurriculumCfg(terms={"terrain_levels": CurriculumTermCfg()})


@dataclass
class QuadrupedRoughCfg(QuadrupedFlatCfg):
    """`quadruped-flat` on the terrain grid (envs/terrains): blind policy, the height scan in the critic only,
    the terrain-level curriculum on."""

    ground: GroundCfg = field(default_factory=_rough_ground)
    sim: SimCfg = field(default_factory=_rough_sim)
    observations: ObservationsCfg = field(default_factory=_rough_observations)
    randomization: RandomizationCfg = field(default_factory=_rough_randomization)
    curriculum: CurriculumCfg = field(default_factory=_rough_curriculum)


@dataclass
class QuadrupedRoughPerceptiveCfg(QuadrupedRoughCfg):
    """`quadruped-rough` with the height scan in the policy too (a robot with an elevation map)."""

    observations: ObservationsCfg = field(default_factory=lambda: _rough_observations(policy_scan=True))
