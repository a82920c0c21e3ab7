"""The exported-policy contract: the metadata an ONNX policy carries (JSON-encoded values in `metadata_props`,
mirrored in a sidecar YAML) and its validation. The runtime refuses a model whose contract it cannot satisfy and
says which key and why."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

SCHEMA_VERSION = 2  # 2 added `kind`; a version-1 model is a joint_position policy
KINDS = ("joint_position", "vector")  # robot state -> joint targets (below) | named input vectors -> action (vector.py)

# Observation terms the runtime can build from a robot's state (see `observation.py`).
KNOWN_TERMS = ("base_ang_vel", "projected_gravity", "command", "joint_pos", "joint_vel", "last_action")
TERM_DIMS = {"base_ang_vel": 3, "projected_gravity": 3, "command": 3}  # joint terms: one per joint

KEYS = ("schema_version", "task", "robot", "joint_names", "default_joint_pos", "action_scale", "action_clip", "kp",
        "kd", "torque_limits", "joint_pos_limits", "control_dt", "observation_terms", "command_names",
        "command_ranges", "git_commit")


class ContractError(ValueError):
    """The policy's metadata breaks the contract; the message names the key."""


@dataclass(frozen=True)
class ObsTerm:
    name: str
    dim: int
    scale: tuple[float, ...]  # one per element
    clip: float
    history: int  # frames of this term, oldest first


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


def _numbers(meta: dict, key: str, length: int | None = None) -> tuple[float, ...]:
    value = meta[key]
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                              for v in value):
        raise ContractError(f"{key}: expected a list of numbers, got {value!r}")
    if length is not None and len(value) != length:
        raise ContractError(f"{key}: expected {length} values (one per joint in joint_names), got {len(value)}")
    bad = [i for i, v in enumerate(value) if not math.isfinite(v)]
    if bad:
        raise ContractError(f"{key}: non-finite value at index {bad[0]} ({value[bad[0]]})")
    return tuple(float(v) for v in value)


def number_list(meta: dict, key: str, length: int | None = None) -> tuple[float, ...]:
    """meta[key] as finite numbers (`length` of them); a ContractError naming the key otherwise."""
    return _numbers(meta, key, length)


def finite_number(value, key: str, positive: bool = True) -> float:
    return _number({key: value}, key, positive)


def require(meta: dict, keys) -> None:
    """A ContractError naming the first of `keys` missing from the metadata (and the others)."""
    missing = [k for k in keys if k not in meta]
    if missing:
        raise ContractError(f"{missing[0]}: missing from the policy metadata"
                            + (f" (also missing: {', '.join(missing[1:])})" if missing[1:] else ""))


def check_name(value, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ContractError(f"{where}: expected a non-empty name, got {value!r}")
    return value


def _number(meta: dict, key: str, positive: bool = True) -> float:
    value = meta[key]
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ContractError(f"{key}: expected a finite number, got {value!r}")
    if positive and value <= 0:
        raise ContractError(f"{key}: must be > 0, got {value}")
    return float(value)


def _pairs(meta: dict, key: str, length: int) -> tuple[tuple[float, float], ...]:
    value = meta[key]
    if not isinstance(value, list) or len(value) != length:
        raise ContractError(f"{key}: expected {length} [low, high] pairs, got {value!r}")
    out = []
    for i, pair in enumerate(value):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, (int, float)) for v in pair)
                and all(math.isfinite(v) for v in pair)):
            raise ContractError(f"{key}[{i}]: expected [low, high] finite numbers, got {pair!r}")
        if pair[0] > pair[1]:
            raise ContractError(f"{key}[{i}]: low {pair[0]} is above high {pair[1]}")
        out.append((float(pair[0]), float(pair[1])))
    return tuple(out)


def _terms(meta: dict, num_joints: int) -> tuple[ObsTerm, ...]:
    value = meta["observation_terms"]
    if not isinstance(value, list) or not value:
        raise ContractError(f"observation_terms: expected a non-empty list, got {value!r}")
    terms = []
    for i, t in enumerate(value):
        where = f"observation_terms[{i}]"
        if not isinstance(t, dict):
            raise ContractError(f"{where}: expected a mapping with name, dim, scale, clip, history, got {t!r}")
        missing = [k for k in ("name", "dim", "scale", "clip", "history") if k not in t]
        if missing:
            raise ContractError(f"{where}: missing {', '.join(missing)}")
        name = t["name"]
        if name not in KNOWN_TERMS:
            raise ContractError(f"{where}.name: unknown term {name!r} (this runtime builds: {', '.join(KNOWN_TERMS)})")
        expected = TERM_DIMS.get(name, num_joints)
        if t["dim"] != expected:
            raise ContractError(f"{where}.dim: {name} has {expected} elements here, the model says {t['dim']}")
        if not isinstance(t["history"], int) or t["history"] < 1:
            raise ContractError(f"{where}.history: expected an integer >= 1, got {t['history']!r}")
        scale = t["scale"] if isinstance(t["scale"], list) else [t["scale"]] * expected
        scale = _numbers({f"{where}.scale": scale}, f"{where}.scale", expected)
        clip = _number({f"{where}.clip": t["clip"]}, f"{where}.clip")
        terms.append(ObsTerm(name, expected, scale, clip, t["history"]))
    return tuple(terms)


def parse(meta: dict):
    """Validate decoded metadata; every key present and consistent (dims add up, joint lists of equal length).
    Returns a PolicySpec (kind joint_position) or a VectorSpec (kind vector, see vector.py)."""
    version = meta.get("schema_version")
    if version not in (1, SCHEMA_VERSION) or isinstance(version, bool):
        raise ContractError(f"schema_version: this runtime reads versions 1 to {SCHEMA_VERSION}, "
                            f"the model has {version!r}")
    kind = meta.get("kind", "joint_position") if version == 1 else meta.get("kind")
    if kind not in KINDS:
        raise ContractError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "vector":
        from .vector import parse_vector

        return parse_vector(meta)
    require(meta, KEYS)
    names = meta["joint_names"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise ContractError(f"joint_names: expected a non-empty list of names, got {names!r}")
    if len(set(names)) != len(names):
        raise ContractError(f"joint_names: duplicate name {next(n for n in names if names.count(n) > 1)!r}")
    j = len(names)
    commands = meta["command_names"]
    if not isinstance(commands, list) or len(commands) != TERM_DIMS["command"]:
        raise ContractError(f"command_names: expected 3 names (vx, vy, yaw rate), got {commands!r}")
    spec = PolicySpec(
        task=str(meta["task"]), robot=str(meta["robot"]), joint_names=tuple(names),
        default_joint_pos=_numbers(meta, "default_joint_pos", j), action_scale=_number(meta, "action_scale"),
        action_clip=_number(meta, "action_clip"), kp=_numbers(meta, "kp", j), kd=_numbers(meta, "kd", j),
        torque_limits=_numbers(meta, "torque_limits", j), joint_pos_limits=_pairs(meta, "joint_pos_limits", j),
        control_dt=_number(meta, "control_dt"), observation_terms=_terms(meta, j),
        command_names=tuple(commands), command_ranges=_pairs(meta, "command_ranges", len(commands)),
        git_commit=str(meta["git_commit"]))
    outside = [n for n, q, (lo, hi) in zip(names, spec.default_joint_pos, spec.joint_pos_limits) if not lo <= q <= hi]
    if outside:
        raise ContractError(f"default_joint_pos: {outside[0]} is outside its joint_pos_limits")
    return spec


def decode(props: dict[str, str]) -> dict:
    """ONNX metadata_props (string -> JSON string) to a dict; names the key that is not valid JSON."""
    out = {}
    for key, text in props.items():
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ContractError(f"{key}: metadata value is not JSON ({exc.msg})") from None
    return out


def encode(meta: dict) -> dict[str, str]:
    return {k: json.dumps(v) for k, v in meta.items()}
