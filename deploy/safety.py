"""The safety filter between the policy and the robot. Whatever comes in, what goes out is finite, inside the joint
limits (the policy's and the robot's, intersected: `limits.py`) and changes by at most a bounded step per control
period; every intervention is counted.

The first command after start or `reset()` is the measured pose itself (clipped into the limits); with no measured
pose there is no command (`None`): the filter never invents a pose. Then, each control period:
  e-stop latched      -> hold the targets of the moment it latched (only `reset()` clears it)
  stale state         -> an input went silent (the controller decides): hold the last safe targets, or "damp"
                         (targets follow the measured pose within the rate limit, so the PD controller only damps)
  non-finite targets  -> hold the last safe targets
  soft start          -> blend from the pose measured at start to the policy over `soft_start_s`
  rate limit          -> change per period at most `max_target_rate * period` (and the robot's velocity limits)
  joint limits        -> clamp into the limits (shrunk by `limit_margin`)
Rates and durations are per second, turned into per-period amounts with the period the loop really runs at
(`period_s`; the policy's `control_dt` when not given). `escalate_after` intervened periods in a row (held
non-finite output or state, rate-limited, clamped) latch the e-stop with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Mapping

import numpy as np

from .contract import PolicySpec, is_number
from .limits import JointLimit, bound

COUNTERS = ("estop", "stale", "nonfinite", "rate_limited", "clamped")


def check_number(name: str, value, low: float, high: float, integer: bool = False, low_open: bool = False):
    """`value` if it is a finite number (an int where `integer`) in [low, high] ((low, high] with `low_open`);
    otherwise a ValueError that names `name` and says why."""
    if integer and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if not is_number(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if value > high or value < low or (low_open and value == low):
        raise ValueError(f"{name}: {value!r} is outside {'(' if low_open else '['}{low:g}, {high:g}]")
    return value


@dataclass
class SafetyCfg:
    soft_start_s: float = 2.0
    max_target_rate: float = 60.0  # rad/s of joint position target
    stale_periods: int = 3  # an input without a new sample for this many periods is stale
    stale_mode: str = "hold"  # "hold" or "damp"
    limit_margin: float = 0.0  # rad kept free at each end of a joint's range
    escalate_after: int = 50  # intervened periods in a row that latch the e-stop; 0: never

    # (low, high, integer, low excluded)
    RANGES = {"soft_start_s": (0.0, 60.0, False, False), "max_target_rate": (0.0, 1000.0, False, True),
              "stale_periods": (1, 1000, True, False), "limit_margin": (0.0, 1.0, False, False),
              "escalate_after": (0, 1_000_000, True, False)}

    def __post_init__(self):
        for f in fields(self):
            if f.name in self.RANGES:
                low, high, integer, low_open = self.RANGES[f.name]
                value = check_number(f.name, getattr(self, f.name), low, high, integer, low_open)
                setattr(self, f.name, value if integer else float(value))
        if self.stale_mode not in ("hold", "damp"):
            raise ValueError(f"stale_mode: expected 'hold' or 'damp', got {self.stale_mode!r}")


class SafetyFilter:
    def __init__(self, spec: PolicySpec, cfg: SafetyCfg | None = None, period_s: float | None = None,
                 limits: Mapping[str, JointLimit] | None = None):
        self.cfg = cfg or SafetyCfg()
        self.period_s = float(check_number("period_s", spec.control_dt if period_s is None else period_s,
                                           1e-4, 1.0))
        # LimitsError (a ValueError) names the joint whose range is empty or excludes the default pose
        self.lower, self.upper, velocity = bound(spec, limits, self.cfg.limit_margin)
        self.max_step = np.minimum(self.cfg.max_target_rate, velocity) * self.period_s  # per joint, per period
        self.soft_start_steps = int(round(self.cfg.soft_start_s / self.period_s))
        self.counters = dict.fromkeys(COUNTERS, 0)
        n = len(self.lower)
        # a change whose squared norm is below this moves every joint by at most half its step, so the rate limit
        # cannot bind (the margin covers rounding; below 1e-9 rad a step, always the full check)
        smallest = float(self.max_step.min())
        self._unlimited_change2 = (0.5 * smallest) ** 2 if smallest > 1e-9 else 0.0
        self._lo, self._hi, self._next, self._change = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
        self.reset()

    def reset(self) -> None:
        """Clear the e-stop latch; the next command is the next measured pose, then a new soft start."""
        self.estopped = False
        self.estop_reason = ""
        self.last: np.ndarray | None = None  # last safe targets
        self.start_pose: np.ndarray | None = None
        self.steps = 0
        self.streak = 0  # intervened periods in a row

    def estop(self, reason: str = "e-stop requested") -> None:
        if not self.estopped:
            self.estopped, self.estop_reason = True, reason

    @property
    def soft_starting(self) -> bool:
        return self.steps < self.soft_start_steps

    def _start(self, measured: np.ndarray | None) -> np.ndarray | None:
        """The first command: the measured pose, clipped into the limits; None when there is none."""
        if measured is None or not np.isfinite(measured).all():
            return None
        self.last = np.clip(measured, self.lower, self.upper)
        self.start_pose = self.last.copy()
        return self.last.copy()

    def _intervened(self, reason: str) -> None:
        self.streak += 1
        if self.cfg.escalate_after and self.streak >= self.cfg.escalate_after:
            self.estop(f"{self.streak} intervened periods in a row (last: {reason})")

    def apply(self, targets: np.ndarray | None, measured: np.ndarray | None, stale: bool = False
              ) -> np.ndarray | None:
        """Safe joint targets for this period. `targets` from the policy (None if it could not run), `measured`
        joint positions in the policy's joint order (None if unknown), `stale`: an input went silent. None only
        while no pose has been measured since start or reset."""
        if self.last is None:
            return self._start(measured)
        c = self.counters
        if self.estopped:
            c["estop"] += 1
            return self.last.copy()
        if stale:
            c["stale"] += 1
            return self.hold(measured)
        if targets is None:
            c["nonfinite"] += 1
            self._intervened("nonfinite")
            return self.last.copy()
        out = targets
        if self.steps < self.soft_start_steps:
            alpha = (self.steps + 1) / self.soft_start_steps
            out = self.start_pose + alpha * (targets - self.start_pose)
        change = np.subtract(out, self.last, out=self._change)
        change2 = change.dot(change)
        if not math.isfinite(change2):  # non-finite targets (or absurd ones: the square overflows)
            c["nonfinite"] += 1
            self._intervened("nonfinite")
            return self.last.copy()
        self.steps += 1
        new = self._next
        if change2 < self._unlimited_change2:  # every change well under max_step: only the joint limits can bind
            np.minimum(np.maximum(out, self.lower, out=new), self.upper, out=new)
        else:
            lo, hi = self._reachable()
            np.minimum(np.maximum(out, lo, out=new), hi, out=new)
        if new.tobytes() != out.tobytes():  # the filter changed something (cheaper than an elementwise compare)
            reason = "clamped"
            if np.any(np.abs(out - self.last) > self.max_step):
                c["rate_limited"] += 1
                reason = "rate_limited"
            if np.any(out < self.lower) or np.any(out > self.upper):
                c["clamped"] += 1
            self._intervened(reason)
        else:
            self.streak = 0
        self.last, self._next = new, self.last
        return new.copy()

    def hold(self, measured: np.ndarray | None) -> np.ndarray | None:
        """The stale-state command without running the policy: the last safe targets ("hold"), or targets that
        follow the measured pose within the rate limit ("damp"). Also what an inactive controller sends. None
        while no pose has been measured since start or reset."""
        if self.last is None:
            return self._start(measured)
        if self.cfg.stale_mode == "damp" and measured is not None and np.isfinite(measured).all():
            self.last = np.clip(measured, *self._reachable())
        return self.last.copy()

    def _reachable(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of this period's targets: within max_step of the last targets and inside the joint limits."""
        lo, hi = self._lo, self._hi
        np.maximum(np.subtract(self.last, self.max_step, out=lo), self.lower, out=lo)
        np.minimum(np.add(self.last, self.max_step, out=hi), self.upper, out=hi)
        return lo, hi

    @property
    def interventions(self) -> int:
        return sum(self.counters.values())
