"""Build the policy's observation from a robot's state, exactly as the task built it in simulation.

Conventions (the same as the simulator's, checked by replaying recorded sim states, see tests/test_deploy.py):
- joints are matched by **name**; the state may list them in any order and carry extra joints;
- `orientation_xyzw` is the base orientation (world from base) as a unit quaternion in ROS order x, y, z, w
  (`sensor_msgs/Imu.orientation`); MuJoCo's order is w, x, y, z;
- `angular_velocity` is the base's angular velocity in the base frame (a gyro's reading), rad/s;
- `joint_pos` is measured relative to the policy's `default_joint_pos`; `last_action` is the previous clipped
  policy output; `command` is (v_x, v_y, yaw rate) in the base frame;
- each term is scaled, then clipped to +-clip; a term with history h contributes its last h frames, oldest first
  (the first frame fills the history after a reset).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .contract import PolicySpec

QUAT_NORM_TOLERANCE = 0.01


class StateError(ValueError):
    """The robot state cannot produce an observation; the message says which field and why."""


@dataclass
class RobotState:
    joint_names: Sequence[str]
    joint_pos: Sequence[float]  # rad
    joint_vel: Sequence[float]  # rad/s
    orientation_xyzw: Sequence[float]  # base orientation, world from base
    angular_velocity: Sequence[float]  # base frame, rad/s
    stamp: float = 0.0  # seconds; must increase from one fresh state to the next


def projected_gravity(q_xyzw: Sequence[float]) -> tuple[float, float, float]:
    """Unit gravity (0, 0, -1) expressed in the base frame: R(q)^T g, for a unit quaternion (x, y, z, w)."""
    x, y, z, w = q_xyzw
    # R^T (0, 0, -1) is minus the third row of R
    return (-2.0 * (x * z - w * y), -2.0 * (y * z + w * x), -(1.0 - 2.0 * (x * x + y * y)))


class ObservationBuilder:
    """Writes each term into a preallocated frame through views fixed at start-up (a control loop allocates
    little); `build` returns a float32 observation, or writes it into `out`."""

    def __init__(self, spec: PolicySpec, state_joint_names: Sequence[str] | None = None):
        self.spec = spec
        self._names: tuple[str, ...] | None = None
        self._index = np.zeros(spec.num_actions, dtype=np.intp)
        terms = spec.observation_terms
        frame_dim = sum(t.dim for t in terms)
        self._frame = np.zeros(frame_dim)
        self._scale = np.concatenate([np.asarray(t.scale) for t in terms])
        self._clip = np.concatenate([np.full(t.dim, t.clip) for t in terms])
        self._neg_clip = -self._clip
        self._offset = np.zeros(frame_dim)  # joint_pos is relative to the default pose
        self._views: dict[str, np.ndarray] = {}
        start = 0
        for t in terms:
            self._views[t.name] = self._frame[start:start + t.dim]
            if t.name == "joint_pos":
                self._offset[start:start + t.dim] = spec.default_joint_pos
            start += t.dim
        self._setters = [getattr(self, f"_set_{t.name}") for t in terms]
        self.max_history = max(t.history for t in terms)
        # observation index -> position in the flattened (history, frame) buffer, for terms with history
        gather, base = [], 0
        for t in terms:
            for h in range(self.max_history - t.history, self.max_history):
                gather.extend(h * frame_dim + base + np.arange(t.dim))
            base += t.dim
        self._gather = np.asarray(gather, dtype=np.intp)
        self._history = np.zeros((self.max_history, frame_dim))
        self._fresh_history = True
        if state_joint_names is not None:
            self.bind(state_joint_names)

    def bind(self, state_joint_names: Sequence[str]) -> None:
        """Map the state's joint order to the policy's; a policy joint missing from the state is an error."""
        names = tuple(state_joint_names)
        position = {n: i for i, n in enumerate(names)}
        missing = [n for n in self.spec.joint_names if n not in position]
        if missing:
            raise StateError(f"joint_names: the robot state lacks the policy's joint(s) {', '.join(missing)} "
                             f"(state has: {', '.join(names)})")
        self._index[:] = [position[n] for n in self.spec.joint_names]
        self._names = names

    def joint_positions(self, state: RobotState) -> np.ndarray:
        """The state's joint positions in the policy's joint order (binds the state's names on first use)."""
        names = state.joint_names
        if names is not self._names and tuple(names) != self._names:
            self.bind(names)
        if len(state.joint_pos) != len(names) or len(state.joint_vel) != len(names):
            raise StateError(f"joint_pos, joint_vel: expected {len(names)} values each (one per name), "
                             f"got {len(state.joint_pos)} and {len(state.joint_vel)}")
        return np.asarray(state.joint_pos, dtype=np.float64).take(self._index)

    def reset(self) -> None:
        self._fresh_history = True

    # one setter per term: writes the term's raw value into its view of the frame
    def _set_base_ang_vel(self, state, command, last_action, joint_pos):
        self._views["base_ang_vel"][:] = state.angular_velocity

    def _set_projected_gravity(self, state, command, last_action, joint_pos):
        self._views["projected_gravity"][:] = projected_gravity(self._quat)

    def _set_command(self, state, command, last_action, joint_pos):
        self._views["command"][:] = command

    def _set_joint_pos(self, state, command, last_action, joint_pos):
        self._views["joint_pos"][:] = joint_pos

    def _set_joint_vel(self, state, command, last_action, joint_pos):
        np.asarray(state.joint_vel, dtype=np.float64).take(self._index, out=self._views["joint_vel"])

    def _set_last_action(self, state, command, last_action, joint_pos):
        self._views["last_action"][:] = last_action

    def build(self, state: RobotState, command: Sequence[float], last_action: np.ndarray,
              out: np.ndarray | None = None, joint_pos: np.ndarray | None = None) -> np.ndarray:
        """The observation (num_obs,) float32. Raises StateError for a state it cannot use (the caller holds).
        `joint_pos`: the state's joint positions already in policy order (from `joint_positions`)."""
        if joint_pos is None:
            joint_pos = self.joint_positions(state)
        q = state.orientation_xyzw
        if len(q) != 4:
            raise StateError(f"orientation_xyzw: expected 4 values (x, y, z, w), got {len(q)}")
        x, y, z, w = q
        norm = (x * x + y * y + z * z + w * w) ** 0.5
        if not abs(norm - 1.0) <= QUAT_NORM_TOLERANCE:  # also false for NaN
            raise StateError(f"orientation_xyzw: norm {norm:.4f} is not a unit quaternion (x, y, z, w)")
        self._quat = (x / norm, y / norm, z / norm, w / norm)
        for setter in self._setters:
            setter(state, command, last_action, joint_pos)
        f = self._frame
        f -= self._offset
        # a sum is non-finite when any element is (or the values are absurd): check before clipping, which
        # would turn an infinity into a plausible value
        if not math.isfinite(f.sum()):
            bad = next((name for name, v in self._views.items() if not np.isfinite(v).all()), "observation")
            raise StateError(f"{bad}: non-finite value")
        f *= self._scale
        np.minimum(f, self._clip, out=f)
        np.maximum(f, self._neg_clip, out=f)
        if self.max_history > 1:
            if self._fresh_history:
                self._history[:] = f
                self._fresh_history = False
            else:
                self._history[:-1] = self._history[1:]
                self._history[-1] = f
            f = self._history.reshape(-1)[self._gather]
        if out is None:
            return f.astype(np.float32)
        out[:] = f
        return out
