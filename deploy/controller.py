"""`Controller.step(state, command) -> joint targets`: observation, policy, safety filter, latency statistics."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .observation import ObservationBuilder, RobotState, StateError
from .policy import Policy
from .safety import SafetyCfg, SafetyFilter


class Controller:
    """One control period per `step`. The state is fresh when its stamp advanced since the last fresh one; after
    `stale_periods` periods without a fresh state the safety filter holds (the watchdog). A state the observation
    builder rejects (missing joint, wrong length, non-unit quaternion) or a non-finite observation counts as
    `bad_state` and the filter holds the last safe targets."""

    def __init__(self, policy: Policy, safety: SafetyCfg | None = None, latency_window: int = 100_000):
        self.policy, self.spec = policy, policy.spec
        self.builder = ObservationBuilder(self.spec)
        self.safety = SafetyFilter(self.spec, safety)
        self.scale = self.spec.action_scale
        self.clip = self.spec.action_clip
        self.default = np.asarray(self.spec.default_joint_pos, dtype=np.float64)
        self._targets = np.zeros(self.spec.num_actions)
        self._latency = np.zeros(latency_window, dtype=np.int64)
        self.counters = {"steps": 0, "bad_state": 0, "out_of_order": 0, "command_clipped": 0}
        self.reset()

    @classmethod
    def load(cls, path: str | Path, safety: SafetyCfg | None = None, threads: int = 1) -> "Controller":
        return cls(Policy.load(path, threads), safety)

    def start(self, state_joint_names: Sequence[str]) -> None:
        """Check at start-up that the robot reports every joint the policy drives (raises StateError)."""
        self.builder.bind(state_joint_names)

    def reset(self) -> None:
        """Clear the e-stop latch, the last action and the history; the next step starts a soft start."""
        self.last_action = np.zeros((1, self.spec.num_actions), dtype=np.float32)
        self.last_stamp = -math.inf
        self._state: RobotState | None = None
        self.missed = 0
        self.builder.reset()
        self.safety.reset()

    def estop(self) -> None:
        self.safety.estop()

    def step(self, state: RobotState | None, command: Sequence[float]) -> np.ndarray:
        """Joint position targets (policy joint order) for this period from the newest state seen so far."""
        t0 = time.perf_counter_ns()
        c = self.counters
        if state is not None and state.stamp > self.last_stamp:
            self._state, self.last_stamp, self.missed = state, state.stamp, 0
        else:
            c["out_of_order"] += state is not None and state.stamp < self.last_stamp
            self.missed += 1
        state = self._state
        stale = self.missed >= self.safety.cfg.stale_periods
        targets = measured = None
        if state is not None:
            try:
                measured = self.builder.joint_positions(state)
                if not self.safety.estopped and not stale:
                    targets = self._policy_targets(state, command, measured)
            except StateError:
                c["bad_state"] += 1
        out = self.safety.apply(targets, measured, stale)
        self._latency[c["steps"] % len(self._latency)] = time.perf_counter_ns() - t0
        c["steps"] += 1
        return out

    def idle(self, state: RobotState | None) -> np.ndarray:
        """Targets of a controller that is not running the policy (a deactivated node): the safety filter's hold
        or damp command (its `stale_mode`) from the measured pose, without counting an intervention."""
        measured = None
        if state is not None:
            try:
                measured = self.builder.joint_positions(state)
            except StateError:
                pass
        return self.safety.hold(measured)

    def _policy_targets(self, state: RobotState, command: Sequence[float], measured: np.ndarray) -> np.ndarray | None:
        if len(command) != 3:
            raise StateError(f"command: expected 3 values (vx, vy, yaw rate), got {len(command)}")
        vx, vy, wz = command
        if not (math.isfinite(vx) and math.isfinite(vy) and math.isfinite(wz)):
            raise StateError(f"command: non-finite value in {tuple(command)}")
        (lx, hx), (ly, hy), (lz, hz) = self.spec.command_ranges
        if not (lx <= vx <= hx and ly <= vy <= hy and lz <= wz <= hz):
            self.counters["command_clipped"] += 1
            command = (min(max(vx, lx), hx), min(max(vy, ly), hy), min(max(wz, lz), hz))
        policy = self.policy
        self.builder.build(state, command, self.last_action[0], out=policy.obs[0], joint_pos=measured)
        action = policy.run_bound()
        if not math.isfinite(action.sum()):
            return None  # the safety filter holds and counts it
        np.maximum(np.minimum(action, self.clip, out=self.last_action), -self.clip, out=self.last_action)
        np.multiply(self.last_action[0], self.scale, out=self._targets)
        self._targets += self.default
        return self._targets

    def stats(self) -> dict:
        """Steps, latency percentiles of `step` (µs) and every safety and input counter."""
        n = min(self.counters["steps"], len(self._latency))
        lat = self._latency[:n] / 1000.0
        pct = (lambda p: round(float(np.percentile(lat, p)), 2)) if n else (lambda p: 0.0)
        return {**self.counters, "step_p50_us": pct(50), "step_p99_us": pct(99), "step_max_us": pct(100),
                **{f"safety_{k}": v for k, v in self.safety.counters.items()},
                "interventions": self.safety.interventions + self.counters["bad_state"]}
