"""`Controller.step(state, command) -> joint targets`: observation, policy, safety filter, latency statistics."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .contract import ContractError
from .freshness import INVALID, NEW, OLD, REANCHORED, StampGate
from .limits import JointLimit
from .observation import ObservationBuilder, RobotState, StateError
from .policy import Policy
from .safety import SafetyCfg, SafetyFilter

IMU_TERMS = ("base_ang_vel", "projected_gravity")
# each input's stamp in RobotState; None there means the joint sample's `stamp`
STAMP_FIELDS = {"joint_states": "stamp", "imu": "imu_stamp", "height_scan": "height_stamp"}


class Controller:
    """One control period per `step`. Each input the observation reads has its own age check: the joint states
    (`state.stamp`) and, when a term reads the base orientation or gyro, the IMU (`state.imu_stamp`, the same
    stamp when None). An input whose stamp has not advanced for `stale_periods` periods is stale and the safety
    filter holds (or damps); stale periods are counted per input. Stamps that go back are refused and counted,
    and a clock step in either direction is recovered from (`freshness.StampGate`).

    A state or command that cannot make an observation (missing joint, wrong length, wrong type, non-unit
    quaternion, non-finite value) counts as `bad_state` (`last_error` says why) and the filter holds the last safe
    targets. `step` returns None until a joint pose has been measured: the first command after start or `reset()`
    is that measured pose (the filter never invents one), then the policy blends in over the soft start. `step`
    raises only when the policy itself fails (an onnxruntime error), never for its input."""

    def __init__(self, policy: Policy, safety: SafetyCfg | None = None, latency_window: int = 100_000,
                 period_s: float | None = None, limits: Mapping[str, JointLimit] | None = None):
        if policy.spec.kind != "joint_position":
            raise ContractError(f"kind: {policy.path} is a {policy.spec.kind!r} policy (named input vectors -> "
                                f"action); run it with VectorController")
        self.policy, self.spec = policy, policy.spec
        self.builder = ObservationBuilder(self.spec)
        self.safety = SafetyFilter(self.spec, safety, period_s, limits)
        n = self.spec.num_actions
        clip = np.float32(self.spec.action_clip)  # the action is float32: clip it as float32 arithmetic would
        self._clip, self._neg_clip = np.full(n, clip), np.full(n, -clip)
        # an action whose squared norm is below this has every element well inside the clip (margin for rounding)
        self._unclipped_norm2 = float(0.5 * clip) ** 2
        self.scale, self.clip = self.spec.action_scale, self.spec.action_clip
        self.default = np.asarray(self.spec.default_joint_pos, dtype=np.float64)
        # targets = default + scale * last action: one product of the builder's values
        self._to_targets = self.builder.affine("last_action", self.scale, self.default)
        self._command_bounds = tuple(v for pair in self.spec.command_ranges for v in pair)
        self._targets = np.zeros(n)
        self._obs, self._action, self._run_bound = policy.obs[0], policy.action[0], policy.run_bound
        self.last_action = self.builder.last_action[None]  # [1, n] view: the previous clipped action
        self._latency = np.zeros(latency_window, dtype=np.int64)
        terms = {t.name for t in self.spec.observation_terms}
        self.inputs = ("joint_states", *(("imu",) if terms & set(IMU_TERMS) else ()),
                       *(("height_scan",) if "height_scan" in terms else ()))
        self._stamp_fields = tuple(STAMP_FIELDS[name] for name in self.inputs)
        self._usual_inputs = self.inputs in (("joint_states",), ("joint_states", "imu"))  # _take_all_new's cases
        # policy_runs: the periods the policy ran (not held, damped or e-stopped), what says "it is running"
        self.counters = {"steps": 0, "policy_runs": 0, "bad_state": 0, "out_of_order": 0, "reanchored": 0,
                         "bad_stamp": 0, "command_clipped": 0, **{f"stale_{name}": 0 for name in self.inputs}}
        self.last_error = ""
        self._gate_list = [StampGate() for _ in self.inputs]  # one per input, in `inputs` order
        self.reset()

    @classmethod
    def load(cls, path: str | Path, safety: SafetyCfg | None = None, threads: int = 1,
             period_s: float | None = None, limits: Mapping[str, JointLimit] | None = None) -> "Controller":
        return cls(Policy.load(path, threads), safety, period_s=period_s, limits=limits)

    def start(self, state_joint_names: Sequence[str]) -> None:
        """Check at start-up that the robot reports every joint the policy drives (raises StateError)."""
        self.builder.bind(state_joint_names)

    def reset(self) -> None:
        """Clear the e-stop latch, the last action, the history and the input ages; the next step with a
        measured pose commands that pose, then a soft start follows."""
        self.last_action[:] = 0.0
        self._state: RobotState | None = None
        for gate in self._gate_list:
            gate.reset()
        self._missed = [0] * len(self.inputs)  # periods since each input's last new sample
        self.stale: list[str] = []  # the inputs stale in the last step
        self.builder.reset()
        self.safety.reset()

    def estop(self, reason: str = "e-stop requested") -> None:
        self.safety.estop(reason)

    def _take(self, state) -> None:
        """Age each input by one period, or renew it when `state` brings a new sample of it."""
        missed, fresh = self._missed, False
        if state is not None:
            stamp = getattr(state, "stamp", None)
            own = (getattr(state, field, None) for field in self._stamp_fields)
            stamps = [stamp if value is None else value for value in own]
        for k, gate in enumerate(self._gate_list):
            verdict = INVALID if state is None else gate.offer(stamps[k])
            if verdict is NEW:
                missed[k] = 0
                fresh = True
            else:
                fresh |= self._aged(k, verdict, state is not None)
        if fresh:
            self._state = state
        if self._state is None:  # nothing has arrived since start or reset: nothing to go stale
            return
        if self.stale or max(missed) >= self.safety.cfg.stale_periods:
            self.stale = [name for name, m in zip(self.inputs, missed) if m >= self.safety.cfg.stale_periods]
            for name in self.stale:
                self.counters[f"stale_{name}"] += 1

    def _take_all_new(self, state) -> bool:
        """The usual period, decided before `_take`: every input brings a new float stamp. Then accept them all and
        return True; otherwise change nothing and return False (and `_take` judges each input)."""
        gates = self._gate_list
        stamp = getattr(state, "stamp", None)
        if not self._usual_inputs or type(stamp) is not float or not gates[0].last < stamp < math.inf:
            return False
        if len(gates) > 1:
            imu = getattr(state, "imu_stamp", None)
            imu = stamp if imu is None else imu
            if type(imu) is not float or not gates[1].last < imu < math.inf:
                return False
            gates[1].last, gates[1].refused = imu, 0
            self._missed[1] = 0
        gates[0].last, gates[0].refused = stamp, 0
        self._missed[0] = 0
        self._state = state
        if self.stale:
            self.stale = []
        return True

    def _aged(self, k: int, verdict: str, given: bool) -> bool:
        """Input k's sample was not new (or its sender's clock stepped: re-anchored, new after all)."""
        c = self.counters
        if verdict is REANCHORED:
            self._missed[k] = 0
            c["reanchored"] += 1
            return True
        self._missed[k] += 1
        c["out_of_order"] += verdict is OLD
        c["bad_stamp"] += given and verdict is INVALID
        return False

    @property
    def missed(self) -> dict[str, int]:
        """Periods since each input's last new sample."""
        return dict(zip(self.inputs, self._missed))

    def step(self, state: RobotState | None, command: Sequence[float]) -> np.ndarray | None:
        """Joint position targets (policy joint order) for this period from the newest state seen so far; None
        until a joint pose has been measured."""
        t0 = time.perf_counter_ns()
        c = self.counters
        if state is None or not self._take_all_new(state):
            self._take(state)
        state = self._state
        targets = measured = None
        if state is not None:
            run = not (self.safety.estopped or self.stale or self.safety.last is None)
            try:
                if run:
                    self._observe(state, command)
                    measured = self.builder.measured
                else:  # no policy this period: only the measured pose
                    measured = self.builder.read_joints(state)
            except Exception as exc:  # any malformed state or command (wrong length, type, value): hold
                c["bad_state"] += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                measured = self._measured(state)  # None when the joints themselves are bad
                run = False
            if run:
                targets = self._run_policy()
                c["policy_runs"] += 1
        out = self.safety.apply(targets, measured, bool(self.stale))
        steps = c["steps"]
        self._latency[steps % len(self._latency)] = time.perf_counter_ns() - t0
        c["steps"] = steps + 1
        return out

    def idle(self, state: RobotState | None) -> np.ndarray | None:
        """Targets of a controller that is not running the policy (a deactivated node): the safety filter's hold
        or damp command (its `stale_mode`) from the measured pose, without counting an intervention."""
        return self.safety.hold(None if state is None else self._measured(state))

    def _measured(self, state: RobotState) -> np.ndarray | None:
        try:
            return self.builder.read_joints(state)
        except Exception:  # malformed joints: no measured pose
            return None

    def _observe(self, state: RobotState, command: Sequence[float]) -> None:
        """The observation into the policy's input buffer; raises for a state or command it cannot use."""
        builder = self.builder
        joints = builder.joints(state)
        if len(command) != 3:
            raise StateError(f"command: expected 3 values (vx, vy, yaw rate), got {len(command)}")
        vx, vy, wz = command
        lx, hx, ly, hy, lz, hz = self._command_bounds
        if not (lx <= vx <= hx and ly <= vy <= hy and lz <= wz <= hz):  # also true for a non-finite value
            if not (math.isfinite(vx) and math.isfinite(vy) and math.isfinite(wz)):
                raise StateError(f"command: non-finite value in {tuple(command)}")
            self.counters["command_clipped"] += 1
            command = (min(max(vx, lx), hx), min(max(vy, ly), hy), min(max(wz, lz), hz))
        builder.build(state, command, builder.last_action, out=self._obs, joints=joints)

    def _run_policy(self) -> np.ndarray | None:
        """The policy's targets for the observation in its input buffer; None for a non-finite action."""
        self._run_bound()
        action = self._action
        norm2 = action.dot(action)
        if not math.isfinite(norm2):  # a non-finite action (or an absurd one: its square overflows)
            return None  # the safety filter holds and counts it
        if norm2 >= self._unclipped_norm2:  # some element may reach the clip
            np.maximum(np.minimum(action, self._clip, out=action), self._neg_clip, out=action)
        self.builder.last_action[...] = action
        return self._to_targets.dot(self.builder.values, out=self._targets)

    def stats(self) -> dict:
        """Steps, latency percentiles of `step` (µs) and every safety and input counter."""
        n = min(self.counters["steps"], len(self._latency))
        lat = self._latency[:n] / 1000.0
        pct = (lambda p: round(float(np.percentile(lat, p)), 2)) if n else (lambda p: 0.0)
        return {**self.counters, "step_p50_us": pct(50), "step_p99_us": pct(99), "step_max_us": pct(100),
                **{f"safety_{k}": v for k, v in self.safety.counters.items()},
                "interventions": self.safety.interventions + self.counters["bad_state"]}
