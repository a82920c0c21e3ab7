"""The exported-policy contract: the metadata an ONNX policy carries (JSON-encoded values in `metadata_props`,
mirrored in a sidecar YAML) and its validation. The runtime refuses a model whose contract it cannot satisfy and
says which key and why.

Three keys are shared with other robot deploy stacks (mjlab-style exports, which ROS 2 controllers read):
`joint_names`, `default_joint_pos` and `command_names` are written comma-separated, their spelling, and read either
way (files exported before carry JSON lists). Keys that are not ours (e.g. the stacks' `joint_stiffness`, which the
exporter writes beside ours) are ignored."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

SCHEMA_VERSION = 3  # 2 added `kind` (a version-1 model is a joint_position policy); 3 writes CSV_KEYS comma-separated
KINDS = ("joint_position", "vector")  # robot state -> joint targets (below) | named input vectors -> action (vector.py)

# Observation terms the runtime can build from a robot's state (see `observation.py`).
KNOWN_TERMS = ("base_ang_vel", "projected_gravity", "command", "joint_pos", "joint_vel", "last_action", "height_scan")
TERM_DIMS = {"base_ang_vel": 3, "projected_gravity": 3, "command": 3}  # joint terms: one per joint
# A height scan's `grid`: where the samples are and what each one is (`scan_points` gives the points).
GRID_FRAME, GRID_ORDER = "base_yaw", "x-major"
GRID_VALUE = "height of the base above the ground at the point (m), minus offset"
MAX_SCAN_POINTS = 10_000

KEYS = ("schema_version", "task", "robot", "joint_names", "default_joint_pos", "action_scale", "action_clip", "kp",
        "kd", "torque_limits", "joint_pos_limits", "control_dt", "observation_terms", "command_names",
        "command_ranges", "git_commit")


# Every key of our contracts (joint_position: KEYS; vector: vector.py); `decode` ignores all others.
OWN_KEYS = frozenset(KEYS) | {"kind", "action_names", "action_low", "action_high", "safe_action", "task_params"}
# Ours, and read by other deploy stacks too: written in their comma-separated spelling (`encode`).
CSV_KEYS = ("joint_names", "default_joint_pos", "command_names")


class ContractError(ValueError):
    """The policy's metadata breaks the contract; the message names the key."""


@dataclass(frozen=True)
class ObsTerm:
    name: str
    dim: int
    scale: tuple[float, ...]  # one per element
    clip: float
    history: int  # frames of this term, oldest first
    grid: "ScanGrid | None" = None  # height_scan: its sample points


@dataclass(frozen=True)
class ScanGrid:
    """A height scan's sample points: a `size` (x, y) m rectangle every `resolution` m, centred on the base, in the
    base's heading frame (x forward, y left; turned with the yaw only, level), x-major (all y of the first x, the
    most backward, first, y from right to left). Each sample is the base's height above the ground there, and the
    term's value is that minus `offset`."""

    size: tuple[float, float]
    resolution: float
    offset: float
    frame: str = GRID_FRAME
    order: str = GRID_ORDER

    @property
    def shape(self) -> tuple[int, int]:
        return int(round(self.size[0] / self.resolution)) + 1, int(round(self.size[1] / self.resolution)) + 1

    def points(self) -> list[tuple[float, float]]:
        """(x, y) of every sample in the base's heading frame, in the term's order."""
        nx, ny = self.shape
        return [(-self.size[0] / 2 + i * self.size[0] / max(nx - 1, 1), -self.size[1] / 2 + j * self.size[1]
                 / max(ny - 1, 1)) for i in range(nx) for j in range(ny)]


@dataclass(frozen=True)
class PolicySpec:
    task: str
    robot: str
    joint_names: tuple[str, ...]
    default_joint_pos: tuple[float, ...]
    action_scale: float
    action_clip: float
    kp: tuple[float, ...]
    kd: tuple[float, ...]
    torque_limits: tuple[float, ...]
    joint_pos_limits: tuple[tuple[float, float], ...]
    control_dt: float
    observation_terms: tuple[ObsTerm, ...]
    command_names: tuple[str, ...]
    command_ranges: tuple[tuple[float, float], ...]
    git_commit: str
    kind: str = "joint_position"

    @property
    def num_actions(self) -> int:
        return len(self.joint_names)

    @property
    def num_obs(self) -> int:
        return sum(t.dim * t.history for t in self.observation_terms)


# Bounds of every number in the contract: (low, high, low excluded). A value outside is a ContractError naming the key:
# a gain of 1e9 or a control period of an hour is a broken export, not a robot.
MAX_JOINTS = 512
MAX_HISTORY = 100
BOUNDS = {
    "default_joint_pos": (-1e3, 1e3, False),  # rad (m for a slider)
    "joint_pos_limits": (-1e3, 1e3, False),
    "action_scale": (0.0, 100.0, True),
    "action_clip": (0.0, 1e3, True),
    "kp": (0.0, 1e5, True),  # N m / rad
    "kd": (0.0, 1e4, True),  # N m s / rad
    "torque_limits": (0.0, 1e5, True),  # N m
    "control_dt": (1e-4, 1.0, False),  # s: 10 kHz to 1 Hz
    "scale": (-1e6, 1e6, False),  # an observation term's scale
    "clip": (0.0, 1e6, True),
    "command_ranges": (-1e3, 1e3, False),
    "action": (-1e6, 1e6, False),  # a vector policy's action bounds and safe action
    "task_param": (-1e12, 1e12, False),  # a vector policy's task figures
}


def is_number(value) -> bool:
    """A real, finite int or float (not a bool, not an int too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond the float range
        return False


def _check(key: str, value, bounds: str) -> float:
    """`value` as a float inside BOUNDS[bounds], or a ContractError naming `key`."""
    if not is_number(value):
        raise ContractError(f"{key}: expected a finite number, got {short(value)}")
    low, high, open_low = BOUNDS[bounds]
    if value > high or value < low or (open_low and value == low):
        raise ContractError(f"{key}: {value} is outside {'(' if open_low else '['}{low:g}, {high:g}]")
    return float(value)


def short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _numbers(meta: dict, key: str, length: int | None = None, bounds: str | None = None,
             per: str = "joint in joint_names") -> tuple[float, ...]:
    value = meta[key]
    if not isinstance(value, list):
        raise ContractError(f"{key}: expected a list of numbers, got {short(value)}")
    if length is not None and len(value) != length:
        raise ContractError(f"{key}: expected {length} values (one per {per}), got {len(value)}")
    for i, v in enumerate(value):
        if not is_number(v):
            what = "non-finite value" if isinstance(v, float) else "not a number"
            raise ContractError(f"{key}: {what} at index {i} ({short(v)})")
    return tuple(_check(f"{key}[{i}]", v, bounds or key) for i, v in enumerate(value))


def _number(meta: dict, key: str, bounds: str | None = None) -> float:
    return _check(key, meta[key], bounds or key)


def number_list(meta: dict, key: str, length: int | None = None, bounds: str | None = None) -> tuple[float, ...]:
    """meta[key] as finite numbers, one per action, inside BOUNDS[bounds or key]; a ContractError naming the key."""
    return _numbers(meta, key, length, bounds, per="name in action_names")


def finite_number(value, key: str, bounds: str) -> float:
    return _check(key, value, bounds)


def require(meta: dict, keys) -> None:
    """A ContractError naming the first of `keys` missing from the metadata (and the others)."""
    missing = [k for k in keys if k not in meta]
    if missing:
        raise ContractError(f"{missing[0]}: missing from the policy metadata"
                            + (f" (also missing: {', '.join(missing[1:])})" if missing[1:] else ""))


def check_strings(meta: dict, keys=("task", "robot", "git_commit")) -> None:
    for key in keys:
        if not isinstance(meta[key], str) or len(meta[key]) > 1000:
            raise ContractError(f"{key}: expected a string (at most 1000 characters), got {short(meta[key])}")


def check_name(value, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 1000:
        raise ContractError(f"{where}: expected a non-empty name, got {short(value)}")
    return value


def _pairs(meta: dict, key: str, length: int) -> tuple[tuple[float, float], ...]:
    value = meta[key]
    if not isinstance(value, list) or len(value) != length:
        raise ContractError(f"{key}: expected {length} [low, high] pairs, got {short(value)}")
    out = []
    for i, pair in enumerate(value):
        if not (isinstance(pair, list) and len(pair) == 2 and all(is_number(v) for v in pair)):
            raise ContractError(f"{key}[{i}]: expected [low, high] finite numbers, got {short(pair)}")
        low, high = (_check(f"{key}[{i}]", v, key) for v in pair)
        if low > high:
            raise ContractError(f"{key}[{i}]: low {low} is above high {high}")
        out.append((low, high))
    return tuple(out)


def _terms(meta: dict, num_joints: int) -> tuple[ObsTerm, ...]:
    value = meta["observation_terms"]
    if not isinstance(value, list) or not value:
        raise ContractError(f"observation_terms: expected a non-empty list, got {short(value)}")
    terms = []
    for i, t in enumerate(value):
        where = f"observation_terms[{i}]"
        if not isinstance(t, dict):
            raise ContractError(f"{where}: expected a mapping with name, dim, scale, clip, history, got {short(t)}")
        missing = [k for k in ("name", "dim", "scale", "clip", "history") if k not in t]
        if missing:
            raise ContractError(f"{where}: missing {', '.join(missing)}")
        name = t["name"]
        if name not in KNOWN_TERMS:
            raise ContractError(f"{where}.name: unknown term {short(name)} (this runtime builds: "
                                f"{', '.join(KNOWN_TERMS)})")
        grid = _grid(t.get("grid"), f"{where}.grid") if name == "height_scan" else None
        expected = TERM_DIMS.get(name, num_joints) if grid is None else grid.shape[0] * grid.shape[1]
        if type(t["dim"]) is not int or t["dim"] != expected:
            raise ContractError(f"{where}.dim: {name} has {expected} elements here, the model says "
                                f"{short(t['dim'])}")
        history = t["history"]
        if type(history) is not int or not 1 <= history <= MAX_HISTORY:
            raise ContractError(f"{where}.history: expected an integer in [1, {MAX_HISTORY}], got {short(history)}")
        scale = t["scale"] if isinstance(t["scale"], list) else [t["scale"]] * expected
        scale = _numbers({f"{where}.scale": scale}, f"{where}.scale", expected, "scale")
        clip = _number({f"{where}.clip": t["clip"]}, f"{where}.clip", "clip")
        terms.append(ObsTerm(name, expected, scale, clip, history, grid))
    return tuple(terms)


def _grid(value, where: str) -> ScanGrid:
    """A height scan's grid description, validated."""
    if not isinstance(value, dict):
        raise ContractError(f"{where}: a height_scan term needs its grid (size, resolution, offset, frame, order), "
                            f"got {short(value)}")
    missing = [k for k in ("size", "resolution", "offset", "frame", "order") if k not in value]
    if missing:
        raise ContractError(f"{where}: missing {', '.join(missing)}")
    if value["frame"] != GRID_FRAME or value["order"] != GRID_ORDER:
        raise ContractError(f"{where}: this runtime reads frame {GRID_FRAME!r}, order {GRID_ORDER!r}; the model says "
                            f"{short(value['frame'])}, {short(value['order'])}")
    size = value["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(is_number(v) and 0 <= v <= 100 for v in size)):
        raise ContractError(f"{where}.size: expected [x, y] in metres (0 to 100), got {short(size)}")
    res = value["resolution"]
    if not (is_number(res) and 1e-3 <= res <= 10):
        raise ContractError(f"{where}.resolution: expected metres in [0.001, 10], got {short(res)}")
    if not (is_number(value["offset"]) and abs(value["offset"]) <= 100):
        raise ContractError(f"{where}.offset: expected metres in [-100, 100], got {short(value['offset'])}")
    grid = ScanGrid((float(size[0]), float(size[1])), float(res), float(value["offset"]))
    if grid.shape[0] * grid.shape[1] > MAX_SCAN_POINTS:
        raise ContractError(f"{where}: {grid.shape[0] * grid.shape[1]} points, more than {MAX_SCAN_POINTS}")
    return grid


def parse(meta: dict):
    """Validate decoded metadata; every key present and consistent (dims add up, joint lists of equal length).
    Returns a PolicySpec (kind joint_position) or a VectorSpec (kind vector, see vector.py)."""
    version = meta.get("schema_version")
    if type(version) is not int or not 1 <= version <= SCHEMA_VERSION:
        raise ContractError(f"schema_version: this runtime reads versions 1 to {SCHEMA_VERSION}, "
                            f"the model has {short(version)}")
    kind = meta.get("kind", "joint_position") if version == 1 else meta.get("kind")
    if kind not in KINDS:
        raise ContractError(f"kind: expected one of {', '.join(KINDS)}, got {short(kind)}")
    if kind == "vector":
        from .vector import parse_vector

        return parse_vector(meta)
    require(meta, KEYS)
    check_strings(meta)
    names = meta["joint_names"]
    if not isinstance(names, list) or not 0 < len(names) <= MAX_JOINTS or not all(isinstance(n, str) and n
                                                                                for n in names):
        raise ContractError(f"joint_names: expected a list of 1 to {MAX_JOINTS} names, got {short(names)}")
    if len(set(names)) != len(names):
        raise ContractError(f"joint_names: duplicate name {next(n for n in names if names.count(n) > 1)!r}")
    j = len(names)
    commands = meta["command_names"]
    if not isinstance(commands, list) or len(commands) != TERM_DIMS["command"] or not all(isinstance(c, str)
                                                                                         for c in commands):
        raise ContractError(f"command_names: expected 3 names (vx, vy, yaw rate), got {short(commands)}")
    spec = PolicySpec(
        task=meta["task"], robot=meta["robot"], joint_names=tuple(names),
        default_joint_pos=_numbers(meta, "default_joint_pos", j), action_scale=_number(meta, "action_scale"),
        action_clip=_number(meta, "action_clip"), kp=_numbers(meta, "kp", j), kd=_numbers(meta, "kd", j),
        torque_limits=_numbers(meta, "torque_limits", j), joint_pos_limits=_pairs(meta, "joint_pos_limits", j),
        control_dt=_number(meta, "control_dt"), observation_terms=_terms(meta, j),
        command_names=tuple(commands), command_ranges=_pairs(meta, "command_ranges", len(commands)),
        git_commit=meta["git_commit"])
    outside = [n for n, q, (lo, hi) in zip(names, spec.default_joint_pos, spec.joint_pos_limits) if not lo <= q <= hi]
    if outside:
        raise ContractError(f"default_joint_pos: {outside[0]} is outside its joint_pos_limits")
    return spec


def decode(props: dict[str, str]) -> dict:
    """ONNX metadata_props (string -> string) to a dict of our keys (the others are ignored): JSON values, and for
    CSV_KEYS also comma-separated ones. Names the key that is not valid JSON."""
    out = {}
    for key, text in props.items():
        if key not in OWN_KEYS:
            continue
        if key in CSV_KEYS and not text.lstrip().startswith("["):
            items = text.split(",") if text else []
            out[key] = [_csv_number(v) for v in items] if key == "default_joint_pos" else items
            continue
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ContractError(f"{key}: metadata value is not JSON ({exc.msg})") from None
        except RecursionError:
            raise ContractError(f"{key}: metadata value nests too deeply") from None
    return out


def _csv_number(text: str):
    try:
        return float(text)
    except ValueError:
        return text  # `parse` names the key and index of what is not a number


def encode(meta: dict) -> dict[str, str]:
    """metadata_props of `meta`: JSON values; CSV_KEYS comma-separated (numbers at full precision) when their
    elements allow it (names without commas, finite numbers)."""
    out = {}
    for key, value in meta.items():
        if key in CSV_KEYS and isinstance(value, list) and value:
            if key == "default_joint_pos" and all(is_number(v) for v in value):
                out[key] = ",".join(repr(float(v)) for v in value)
                continue
            if key != "default_joint_pos" and all(isinstance(v, str) and v and "," not in v for v in value) \
                    and not value[0].startswith("["):
                out[key] = ",".join(value)
                continue
        out[key] = json.dumps(value)
    return out
