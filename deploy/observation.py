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
import struct
from dataclasses import dataclass
from operator import itemgetter
from typing import Callable, Sequence

import numpy as np

from .contract import TERM_DIMS, PolicySpec

QUAT_NORM_TOLERANCE = 0.01
UNIT_NORM2 = ((1.0 - QUAT_NORM_TOLERANCE) ** 2, (1.0 + QUAT_NORM_TOLERANCE) ** 2)  # the same bound on |q|^2
# where each term's raw values sit in the builder's buffer (`build` packs the first five in this order)
RAW_ORDER = ("base_ang_vel", "projected_gravity", "command", "joint_pos", "joint_vel", "last_action", "height_scan")


class StateError(ValueError):
    """The robot state cannot produce an observation; the message says which field and why."""


@dataclass
class RobotState:
    joint_names: Sequence[str]
    joint_pos: Sequence[float]  # rad
    joint_vel: Sequence[float]  # rad/s
    orientation_xyzw: Sequence[float]  # base orientation, world from base
    angular_velocity: Sequence[float]  # base frame, rad/s
    stamp: float = 0.0  # seconds of the joint sample; increases from one new sample to the next
    imu_stamp: float | None = None  # seconds of the IMU sample (orientation, gyro); None: the same as `stamp`
    # perceptive policies (a height_scan term): the base's height above the ground (m) at each of the term's grid
    # points (`ScanGrid.points()`, its order), e.g. from an elevation map; and their stamp (None: `stamp`)
    height_samples: Sequence[float] | None = None
    height_stamp: float | None = None


def projected_gravity(q_xyzw: Sequence[float]) -> tuple[float, float, float]:
    """Unit gravity (0, 0, -1) expressed in the base frame: R(q)^T g, for a unit quaternion (x, y, z, w)."""
    x, y, z, w = q_xyzw
    # R^T (0, 0, -1) is minus the third row of R
    return (-2.0 * (x * z - w * y), -2.0 * (y * z + w * x), -(1.0 - 2.0 * (x * x + y * y)))


class ObservationBuilder:
    """Every raw value the terms read goes into one buffer, `values` (policy joint order, then a constant 1); the
    frame (each term picked, offset and scaled, in the model's order) is one matrix product of it, then clipped.
    With `out`, a control loop allocates nothing; `build` returns a float32 observation."""

    def __init__(self, spec: PolicySpec, state_joint_names: Sequence[str] | None = None):
        self.spec = spec
        n = spec.num_actions
        self._names: tuple[str, ...] | None = None
        self._pick: Callable[[Sequence[float]], Sequence[float]] | None = None  # state order -> policy order
        scan = next((t for t in spec.observation_terms if t.name == "height_scan"), None)
        dims = {**TERM_DIMS, "joint_pos": n, "joint_vel": n, "last_action": n,
                "height_scan": 0 if scan is None else scan.dim}
        self._slices, start = {}, 0
        for name in RAW_ORDER:
            self._slices[name] = slice(start, start + dims[name])
            start += dims[name]
        self.values = np.zeros(start + 1)
        self.values[-1] = 1.0  # the column that carries the offsets
        s = self._slices
        # the state's values are packed straight into the buffer's bytes (struct converts Python floats faster
        # than numpy's assignment from a sequence): all of them, or only the joints
        self._bytes = self.values.data
        self._pack_state = struct.Struct(f"={s['joint_vel'].stop}d")
        self._pack_joints = struct.Struct(f"={2 * n}d")
        self._joints_offset = s["joint_pos"].start * self.values.itemsize
        self.last_action = self.values[s["last_action"]]  # a controller may write the clipped action here directly
        terms = spec.observation_terms
        # values of terms the model does not read are zeroed once written: a non-finite one must neither fail the
        # check nor reach the product (0 * nan); the joint positions then live on in `measured`, a copy
        used = {t.name for t in terms}
        unused = [np.arange(s[name].start, s[name].stop) for name in RAW_ORDER if name not in used]
        self._unused = np.concatenate(unused) if unused else None
        self._copy_measured = "joint_pos" not in used
        # the joint positions of the last state read (policy order)
        self.measured = np.zeros(n) if self._copy_measured else self.values[s["joint_pos"]]
        default = np.asarray(spec.default_joint_pos)
        # joint_pos is relative to the default pose, a height scan to its offset
        self._affine = np.vstack([self.affine(t.name, t.scale, -default * t.scale if t.name == "joint_pos" else
                                              -t.grid.offset * np.asarray(t.scale) if t.grid is not None else 0.0)
                                  for t in terms])
        self._heights = None if scan is None else s["height_scan"]
        frame_dim = len(self._affine)
        self._frame = np.zeros(frame_dim)
        self._clip = np.concatenate([np.full(t.dim, t.clip) for t in terms])
        self._neg_clip = -self._clip
        # no frame element exceeds (largest scale) * |values| + (largest offset): values whose squared norm is below
        # this need no clipping (a 1% margin for rounding)
        scale, offset = np.abs(self._affine[:, :-1]).max(), np.abs(self._affine[:, -1]).max()
        room = 0.99 * min(t.clip for t in terms) - offset
        self._unclipped_norm2 = (room / scale) ** 2 if room > 0 and scale > 0 else 0.0
        self.max_history = max(t.history for t in terms)
        # observation index -> position in the flattened (history, frame) buffer, for terms with history
        gather: list[int] = []
        base = 0
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
        index = [position[n] for n in self.spec.joint_names]
        if index == list(range(len(names))):
            self._pick = None  # the state lists exactly the policy's joints, in its order
        else:
            self._pick = itemgetter(*index) if len(index) > 1 else lambda values: (values[index[0]],)
        self._names = names

    def affine(self, term: str, scale: Sequence[float] | np.ndarray | float,
               offset: Sequence[float] | np.ndarray | float = 0.0) -> np.ndarray:
        """The matrix M with M @ values == offset + scale * (the term's raw values), one row per element."""
        cols = np.arange(self._slices[term].start, self._slices[term].stop)
        m = np.zeros((len(cols), len(self.values)))
        m[np.arange(len(cols)), cols] = scale
        m[:, -1] = offset
        return m

    def joints(self, state: RobotState) -> tuple[Sequence[float], Sequence[float]]:
        """The state's joint positions and velocities in policy order (binds the state's names on first use)."""
        names = state.joint_names
        if names is not self._names and tuple(names) != self._names:
            self.bind(names)
        pos, vel = state.joint_pos, state.joint_vel
        if len(pos) != len(names) or len(vel) != len(names):
            raise StateError(f"joint_pos, joint_vel: expected {len(names)} values each (one per name), "
                             f"got {len(pos)} and {len(vel)}")
        pick = self._pick
        return (pos, vel) if pick is None else (pick(pos), pick(vel))

    def read_joints(self, state: RobotState) -> np.ndarray:
        """Take the state's joints into the builder; returns `measured`, its joint positions (a view)."""
        pos, vel = self.joints(state)
        self._pack_joints.pack_into(self._bytes, self._joints_offset, *pos, *vel)
        if self._unused is not None:
            self._zero_unused()
        return self.measured

    def _zero_unused(self) -> None:
        """Zero the values of terms the model does not read (keeping the joint positions in `measured`)."""
        if self._copy_measured:
            self.measured[...] = self.values[self._slices["joint_pos"]]
        self.values[self._unused] = 0.0

    def joint_positions(self, state: RobotState) -> np.ndarray:
        """The state's joint positions in the policy's joint order (binds the state's names on first use)."""
        return self.read_joints(state).copy()

    def reset(self) -> None:
        self._fresh_history = True

    def build(self, state: RobotState, command: Sequence[float], last_action: np.ndarray,
              out: np.ndarray | None = None,
              joints: tuple[Sequence[float], Sequence[float]] | None = None) -> np.ndarray:
        """The observation (num_obs,) float32. Raises StateError for a state it cannot use (the caller holds).
        Reads the state's joints too (`measured`); `joints`: what `joints(state)` returned, if already called."""
        pos, vel = self.joints(state) if joints is None else joints
        q = state.orientation_xyzw
        if len(q) != 4:
            raise StateError(f"orientation_xyzw: expected 4 values (x, y, z, w), got {len(q)}")
        x, y, z, w = q
        xx, yy, n2 = x * x, y * y, x * x + y * y + z * z + w * w
        if not UNIT_NORM2[0] <= n2 <= UNIT_NORM2[1]:  # |q| within the tolerance of 1 (also false for NaN)
            raise StateError(f"orientation_xyzw: norm {n2 ** 0.5:.4f} is not a unit quaternion (x, y, z, w)")
        # projected_gravity of q / |q|, written with |q|^2 so that q need not be divided first
        inv = 1.0 / n2
        gravity = (-2.0 * (x * z - w * y) * inv, -2.0 * (y * z + w * x) * inv, (xx + yy - z * z - w * w) * inv)
        ang_vel = state.angular_velocity
        if len(ang_vel) != 3 or len(command) != 3:  # written together below: a wrong length would shift the rest
            raise StateError(f"angular_velocity, command: expected 3 values each, got {len(ang_vel)} and "
                             f"{len(command)}")
        values = self.values
        self._pack_state.pack_into(self._bytes, 0, *ang_vel, *gravity, *command, *pos, *vel)
        if self._heights is not None:
            samples = getattr(state, "height_samples", None)
            n = self._heights.stop - self._heights.start
            if samples is None or len(samples) != n:
                raise StateError(f"height_samples: the policy reads a height scan of {n} points, got "
                                 f"{'none' if samples is None else len(samples)}")
            values[self._heights] = samples
        if last_action is not self.last_action:
            self.last_action[:] = last_action
        if self._unused is not None:
            self._zero_unused()
        # the squared norm is non-finite when any value is (or when one is absurd: its square overflows); checked
        # before the product (an infinity times the matrix's zeros) and before clipping (which would turn an
        # infinity into a plausible value)
        norm2 = values.dot(values)
        if not math.isfinite(norm2):
            terms = (t.name for t in self.spec.observation_terms)
            bad = next((t for t in terms if not np.isfinite(values[self._slices[t]]).all()), None)
            raise StateError(f"{bad}: non-finite value" if bad else "observation: a value too large to be real")
        f = self._affine.dot(values, out=self._frame)
        if norm2 >= self._unclipped_norm2:
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
        out[...] = f
        return out
