"""`Controller.step(state, command) -> joint targets`: observation, policy, safety filter, latency statistics."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .contract import ContractError
from .observation import ObservationBuilder, RobotState, StateError
from .policy import Policy
from .safety import SafetyCfg, SafetyFilter


class Controller:
    """One control period per `step`. The state is fresh when its stamp advanced since the last fresh one; after
    `stale_periods` periods without a fresh state the safety filter holds (the watchdog). A state the observation
    builder rejects (missing joint, wrong length, non-unit quaternion) or a non-finite observation counts as
    `bad_state` and the filter holds the last safe targets."""

    def __init__(self, policy: Policy, safety: SafetyCfg | None = None, latency_window: int = 100_000):
        if policy.spec.kind != "joint_position":
            raise ContractError(f"kind: {policy.path} is a {policy.spec.kind!r} policy (named input vectors -> "
                                f"action); run it with VectorController")
        self.policy, self.spec = policy, policy.spec
        self.builder = ObservationBuilder(self.spec)
        self.safety = SafetyFilter(self.spec, safety)
        n = self.spec.num_actions
        clip = np.float32(self.spec.action_clip)  # the action is float32: clip it as float32 arithmetic would
        self._clip, self._neg_clip = np.full(n, clip), np.full(n, -clip)
        # an action whose squared norm is below this has every element well inside the clip (margin for rounding)
        self._unclipped_norm2 = float(0.5 * clip) ** 2
        self.scale, self.clip = self.spec.action_scale, self.spec.action_clip
        self.default = np.asarray(self.spec.default_joint_pos, dtype=np.float64)
        # targets = default + scale * last action: one product of the builder's values
        self._to_targets = self.builder.affine("last_action", self.scale, self.default)
        self._targets = np.zeros(n)
        self._obs, self._action = policy.obs[0], policy.action[0]
        self.last_action = self.builder.last_action[None]  # [1, n] view: the previous clipped action
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
        self.last_action[:] = 0.0
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
                if self.safety.estopped or stale:
                    measured = self.builder.read_joints(state)
                else:
                    targets = self._policy_targets(state, command)
                    measured = self.builder.measured
            except StateError:
                c["bad_state"] += 1
                measured = self._measured(state)  # None when the joints themselves are bad
        out = self.safety.apply(targets, measured, stale)
        steps = c["steps"]
        self._latency[steps % len(self._latency)] = time.perf_counter_ns() - t0
        c["steps"] = steps + 1
        return out

    def idle(self, state: RobotState | None) -> np.ndarray:
        """Targets of a controller that is not running the policy (a deactivated node): the safety filter's hold
        or damp command (its `stale_mode`) from the measured pose, without counting an intervention."""
        return self.safety.hold(None if state is None else self._measured(state))

    def _measured(self, state: RobotState) -> np.ndarray | None:
        try:
            return self.builder.read_joints(state)
        except StateError:
            return None

    def _policy_targets(self, state: RobotState, command: Sequence[float]) -> np.ndarray | None:
        builder = self.builder
        joints = builder.joints(state)
        if len(command) != 3:
            raise StateError(f"command: expected 3 values (vx, vy, yaw rate), got {len(command)}")
        vx, vy, wz = command
        (lx, hx), (ly, hy), (lz, hz) = self.spec.command_ranges
        if not (lx <= vx <= hx and ly <= vy <= hy and lz <= wz <= hz):  # also true for a non-finite value
            if not (math.isfinite(vx) and math.isfinite(vy) and math.isfinite(wz)):
                raise StateError(f"command: non-finite value in {tuple(command)}")
            self.counters["command_clipped"] += 1
            command = (min(max(vx, lx), hx), min(max(vy, ly), hy), min(max(wz, lz), hz))
        builder.build(state, command, builder.last_action, out=self._obs, joints=joints)
        self.policy.run_bound()
        action = self._action
        norm2 = action.dot(action)
        if not math.isfinite(norm2):  # a non-finite action (or an absurd one: its square overflows)
            return None  # the safety filter holds and counts it
        if norm2 >= self._unclipped_norm2:  # some element may reach the clip
            np.maximum(np.minimum(action, self._clip, out=action), self._neg_clip, out=action)
        builder.last_action[...] = action
        return self._to_targets.dot(builder.values, out=self._targets)

    def stats(self) -> dict:
        """Steps, latency percentiles of `step` (µs) and every safety and input counter."""
        n = min(self.counters["steps"], len(self._latency))
        lat = self._latency[:n] / 1000.0
        pct = (lambda p: round(float(np.percentile(lat, p)), 2)) if n else (lambda p: 0.0)
        return {**self.counters, "step_p50_us": pct(50), "step_p99_us": pct(99), "step_max_us": pct(100),
                **{f"safety_{k}": v for k, v in self.safety.counters.items()},
                "interventions": self.safety.interventions + self.counters["bad_state"]}
