"""The robot's own joint limits, and how they bound a policy.

A policy file carries the limits it was trained with (`joint_pos_limits`), but the robot it runs on has its own:
from a robot description (URDF or MJCF, read with xml.etree) and/or from per-joint parameters. The safety filter
uses the intersection of all of them; a policy whose default pose lies outside the result cannot run on this
robot and is refused, naming the joint.

URDF: `<joint type="revolute|prismatic">` `<limit lower upper velocity>` (and `<safety_controller
soft_lower_limit soft_upper_limit>` when present); `continuous` joints have no position limits.
MJCF: `<joint range="lo hi">` on the joint or through its default class (`class`, `childclass`, nested
`<default>`s), in degrees unless `<compiler angle="radian">`; `limited="false"` drops the range. MJCF gives no
velocity limits.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .contract import PolicySpec, is_number


class LimitsError(ValueError):
    """The robot's limits cannot be read, or the policy cannot run inside them; the message names the joint."""


@dataclass(frozen=True)
class JointLimit:
    lower: float = -math.inf
    upper: float = math.inf
    velocity: float = math.inf  # rad/s (m/s for a slider)

    def __and__(self, other: "JointLimit") -> "JointLimit":
        return JointLimit(max(self.lower, other.lower), min(self.upper, other.upper),
                          min(self.velocity, other.velocity))


def intersect(*tables: Mapping[str, JointLimit]) -> dict[str, JointLimit]:
    out: dict[str, JointLimit] = {}
    for table in tables:
        for name, limit in table.items():
            out[name] = out[name] & limit if name in out else limit
    return out


def from_arrays(names: Sequence[str], lower: Sequence[float], upper: Sequence[float]) -> dict[str, JointLimit]:
    """Per-joint position limits given as two lists in the order of `names` (the node's parameters)."""
    if len(lower) != len(names) or len(upper) != len(names):
        raise LimitsError(f"joint_pos_lower, joint_pos_upper: expected {len(names)} values each (one per joint in "
                          f"joint_names), got {len(lower)} and {len(upper)}")
    out = {}
    for name, lo, hi in zip(names, lower, upper):
        if not (is_number(lo) and is_number(hi)) or lo > hi:
            raise LimitsError(f"{name}: position limits [{lo}, {hi}] are not finite numbers with lower <= upper")
        out[name] = JointLimit(float(lo), float(hi))
    return out


def robot_limits(names: Sequence[str], description: str | Path | None = None,
                 lower: Sequence[float] | None = None, upper: Sequence[float] | None = None) -> dict[str, JointLimit]:
    """The robot's limits from a description file and/or per-joint lists (in the order of `names`), intersected."""
    tables = [read_description(description)] if description else []
    if lower is not None or upper is not None:
        tables.append(from_arrays(names, lower or [], upper or []))
    return intersect(*tables)


def read_description(path: str | Path) -> dict[str, JointLimit]:
    """Joint limits by name from a URDF or MJCF file."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise LimitsError(f"robot_description: cannot read {path} ({exc})") from None
    if root.tag == "robot":
        return _urdf(root, path)
    if root.tag == "mujoco":
        return _mjcf(root, path)
    raise LimitsError(f"robot_description: {path} is neither URDF (<robot>) nor MJCF (<mujoco>), root <{root.tag}>")


def _float(text: str | None, what: str, default: float) -> float:
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise LimitsError(f"{what}: {text!r} is not a number") from None
    if math.isnan(value):
        raise LimitsError(f"{what}: {text!r} is not a number")
    return value


def _urdf(root: ET.Element, path: Path) -> dict[str, JointLimit]:
    out = {}
    for joint in root.iter("joint"):
        name, kind = joint.get("name"), joint.get("type")
        if not name or kind not in ("revolute", "prismatic", "continuous"):
            continue
        limit, soft = joint.find("limit"), joint.find("safety_controller")
        where = f"{path.name}: joint {name}"
        velocity = _float(limit.get("velocity") if limit is not None else None, f"{where} velocity", math.inf)
        if kind == "continuous":
            out[name] = JointLimit(velocity=velocity if velocity > 0 else math.inf)
            continue
        if limit is None:
            raise LimitsError(f"{where}: a {kind} joint needs <limit lower upper>")
        lo, hi = _float(limit.get("lower"), f"{where} lower", 0.0), _float(limit.get("upper"), f"{where} upper", 0.0)
        if soft is not None:
            lo = max(lo, _float(soft.get("soft_lower_limit"), f"{where} soft_lower_limit", -math.inf))
            hi = min(hi, _float(soft.get("soft_upper_limit"), f"{where} soft_upper_limit", math.inf))
        out[name] = JointLimit(lo, hi, velocity if velocity > 0 else math.inf)
    return out


def _mjcf(root: ET.Element, path: Path) -> dict[str, JointLimit]:
    compiler = root.find("compiler")
    degrees = compiler is None or compiler.get("angle", "degree") != "radian"
    # joint attributes of each default class, inherited down nested <default> elements ("main" at the top)
    classes: dict[str, dict[str, str]] = {}

    def read_defaults(element: ET.Element, inherited: dict[str, str]) -> None:
        name = element.get("class", "main")
        joint = element.find("joint")
        attrs = {**inherited, **(joint.attrib if joint is not None else {})}
        classes[name] = attrs
        for child in element.findall("default"):
            read_defaults(child, attrs)

    for top in root.findall("default"):
        read_defaults(top, {})
    out = {}

    def visit(element: ET.Element, childclass: str) -> None:
        for child in element:
            if child.tag == "joint":
                attrs = {**classes.get(child.get("class", childclass), classes.get("main", {})), **child.attrib}
                name, kind = attrs.get("name"), attrs.get("type", "hinge")
                if name and kind in ("hinge", "slide") and "range" in attrs and attrs.get("limited") != "false":
                    out[name] = _mjcf_range(attrs["range"], f"{path.name}: joint {name} range",
                                            degrees and kind == "hinge")
            elif child.tag == "body":
                visit(child, child.get("childclass", childclass))

    for world in root.findall("worldbody"):
        visit(world, "main")
    return out


def _mjcf_range(text: str, what: str, degrees: bool) -> JointLimit:
    parts = text.split()
    if len(parts) != 2:
        raise LimitsError(f"{what}: expected two numbers, got {text!r}")
    lo, hi = (_float(v, what, 0.0) for v in parts)
    if degrees:
        lo, hi = math.radians(lo), math.radians(hi)
    return JointLimit(lo, hi)


def bound(spec: PolicySpec, robot: Mapping[str, JointLimit] | None, margin: float = 0.0
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper position limits and velocity limits (policy joint order): the policy's limits and the
    robot's intersected, shrunk by `margin` at each end. Raises LimitsError naming the joint whose range is empty
    or excludes the policy's default pose."""
    robot = robot or {}
    lower, upper, velocity = [], [], []
    for name, q, (plo, phi) in zip(spec.joint_names, spec.default_joint_pos, spec.joint_pos_limits):
        limit = JointLimit(plo, phi) & robot.get(name, JointLimit())
        lo, hi = limit.lower + margin, limit.upper - margin
        where = f"{name}: the policy's range [{plo:g}, {phi:g}]"
        if name in robot:
            r = robot[name]
            where += f" and the robot's [{r.lower:g}, {r.upper:g}]"
        if margin:
            where += f" less limit_margin {margin:g}"
        if lo > hi:
            raise LimitsError(f"{where} leave no range")
        if not lo <= q <= hi:
            raise LimitsError(f"{where} give [{lo:g}, {hi:g}], which excludes the policy's default pose {q:g}")
        lower.append(lo)
        upper.append(hi)
        velocity.append(limit.velocity)
    return np.asarray(lower), np.asarray(upper), np.asarray(velocity)
