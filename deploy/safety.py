"""The safety filter between the policy and the robot. Whatever comes in, what goes out is finite, inside the joint
limits and changes by at most a bounded step; every intervention is counted.

Order of checks each control period:
  e-stop latched      -> hold the targets of the moment it latched (only `reset()` clears it)
  stale state         -> no fresh state for `stale_periods` periods: hold the last safe targets, or "damp"
                         (targets follow the measured pose, so the PD controller only damps)
  non-finite targets  -> hold the last safe targets
  soft start          -> blend from the pose measured at start to the policy over `soft_start_s`
  rate limit          -> change per period at most `max_target_rate * dt`
  joint limits        -> clamp into `joint_pos_limits` (shrunk by `limit_margin`)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .contract import PolicySpec

COUNTERS = ("estop", "stale", "nonfinite", "rate_limited", "clamped")


@dataclass
class SafetyCfg:
    soft_start_s: float = 2.0
    max_target_rate: float = 60.0  # rad/s of joint position target
    stale_periods: int = 3
    stale_mode: str = "hold"  # "hold" or "damp"
    limit_margin: float = 0.0  # rad kept free at each end of a joint's range

    def __post_init__(self):
        if self.soft_start_s < 0:
            raise ValueError(f"soft_start_s: must be >= 0, got {self.soft_start_s}")
        if self.max_target_rate <= 0:
            raise ValueError(f"max_target_rate: must be > 0, got {self.max_target_rate}")
        if self.stale_periods < 1:
            raise ValueError(f"stale_periods: must be >= 1, got {self.stale_periods}")
        if self.stale_mode not in ("hold", "damp"):
            raise ValueError(f"stale_mode: expected 'hold' or 'damp', got {self.stale_mode!r}")
        if self.limit_margin < 0:
            raise ValueError(f"limit_margin: must be >= 0, got {self.limit_margin}")


class SafetyFilter:
    def __init__(self, spec: PolicySpec, cfg: SafetyCfg | None = None):
        self.cfg = cfg or SafetyCfg()
        limits = np.asarray(spec.joint_pos_limits, dtype=np.float64)
        self.lower = limits[:, 0] + self.cfg.limit_margin
        self.upper = limits[:, 1] - self.cfg.limit_margin
        if np.any(self.lower > self.upper):
            raise ValueError(f"limit_margin: {self.cfg.limit_margin} rad leaves no range for some joints")
        self.default = np.clip(np.asarray(spec.default_joint_pos, dtype=np.float64), self.lower, self.upper)
        self.max_step = self.cfg.max_target_rate * spec.control_dt
        self.soft_start_steps = int(round(self.cfg.soft_start_s / spec.control_dt))
        self.counters = dict.fromkeys(COUNTERS, 0)
        n = len(self.lower)
        # a change whose squared norm is below this moves every joint by at most half a step, so the rate limit
        # cannot bind (the margin covers rounding; below 1e-9 rad a step, always the full check)
        self._unlimited_change2 = (0.5 * self.max_step) ** 2 if self.max_step > 1e-9 else 0.0
        self._lo, self._hi, self._next, self._change = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
        self.reset()

    def reset(self) -> None:
        """Clear the e-stop latch and start a new soft start from the next measured pose."""
        self.estopped = False
        self.last: np.ndarray | None = None  # last safe targets
        self.start_pose: np.ndarray | None = None
        self.steps = 0

    def estop(self) -> None:
        self.estopped = True

    @property
    def soft_starting(self) -> bool:
        return self.steps < self.soft_start_steps

    def _safe_pose(self, measured: np.ndarray | None) -> np.ndarray:
        if measured is not None and np.isfinite(measured).all():
            return np.clip(measured, self.lower, self.upper)
        return self.default.copy()

    def apply(self, targets: np.ndarray | None, measured: np.ndarray | None, stale: bool = False) -> np.ndarray:
        """Safe joint targets for this period. `targets` from the policy (None if it could not run), `measured`
        joint positions in the policy's joint order (None if unknown), `stale`: the watchdog has fired."""
        if self.last is None:
            self.last = self._safe_pose(measured)
            self.start_pose = self.last.copy()
        c = self.counters
        if self.estopped:
            c["estop"] += 1
            return self.last.copy()
        if stale:
            c["stale"] += 1
            return self.hold(measured)
        if targets is None:
            c["nonfinite"] += 1
            return self.last.copy()
        out = targets
        if self.steps < self.soft_start_steps:
            alpha = (self.steps + 1) / self.soft_start_steps
            out = self.start_pose + alpha * (targets - self.start_pose)
        change = np.subtract(out, self.last, out=self._change)
        change2 = change.dot(change)
        if not math.isfinite(change2):  # non-finite targets (or absurd ones: the square overflows)
            c["nonfinite"] += 1
            return self.last.copy()
        self.steps += 1
        new = self._next
        if change2 < self._unlimited_change2:  # every change well under max_step: only the joint limits can bind
            np.minimum(np.maximum(out, self.lower, out=new), self.upper, out=new)
        else:
            lo, hi = self._reachable()
            np.minimum(np.maximum(out, lo, out=new), hi, out=new)
        if new.tobytes() != out.tobytes():  # the filter changed something (cheaper than an elementwise compare)
            if np.any(np.abs(out - self.last) > self.max_step):
                c["rate_limited"] += 1
            if np.any(out < self.lower) or np.any(out > self.upper):
                c["clamped"] += 1
        self.last, self._next = new, self.last
        return new.copy()

    def hold(self, measured: np.ndarray | None) -> np.ndarray:
        """The stale-state command without running the policy: the last safe targets ("hold"), or targets that
        follow the measured pose within the rate limit ("damp"). Also what an inactive controller sends."""
        if self.last is None:
            self.last = self._safe_pose(measured)
            self.start_pose = self.last.copy()
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
