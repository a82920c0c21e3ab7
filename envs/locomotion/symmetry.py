"""Left-right mirror symmetry of a legged robot: the reflection through its base's x-z plane (y -> -y) as signed
permutations of observations and actions, `mirrored = x[:, index] * sign`, for symmetry augmentation in training.

The robot's joints pair up by geometry, found in the compiled model at its reference pose (qpos0, every hinge at
zero): joint j's mirror is the joint whose anchor, in the base frame, is j's anchor reflected. A rotation by q about
axis a, reflected, is a rotation by q about -M a (M = diag(1, -1, 1)), so the mirror joint's angle keeps its sign
when its axis is -M a (axes normal to the plane: thighs, knees) and flips when its axis is M a (axes in the plane:
hip abduction, yaw). Feet pair the same way. No names are read, so any robot whose model is symmetric mirrors with
no table; one that is not gets an error naming the joint without a mirror image.

An observation term mirrors by its kind (`ObsTermCfg.mirror`, else `MIRROR_OF` below by the term's function):
  polar      a vector in the base frame (velocity, gravity): (x, y, z) -> (x, -y, z)
  axial      an angular velocity in the base frame: (x, y, z) -> (-x, y, -z)
  command    (v_x, v_y, yaw rate) -> (v_x, -v_y, -yaw rate)
  joints     one value per driven joint: the mirror joint's value, times the sign
  feet       one value per foot: the mirror foot's value
  invariant  unchanged (heights, scalars)
"""

from __future__ import annotations

import mujoco
import numpy as np
import torch

from ..config import ConfigError

VECTOR_SIGNS = {"polar": (1.0, -1.0, 1.0), "axial": (-1.0, 1.0, -1.0), "command": (1.0, -1.0, -1.0)}
KINDS = (*VECTOR_SIGNS, "joints", "feet", "invariant")
# how the shipped observation terms (observations.py) mirror
MIRROR_OF = {"base_lin_vel": "polar", "base_ang_vel": "axial", "projected_gravity": "polar", "command": "command",
             "joint_pos": "joints", "joint_vel": "joints", "last_action": "joints", "base_height": "invariant",
             "foot_contact": "feet"}
TOLERANCE = 2e-3  # m: how far a reflected anchor may lie from its mirror's


def _base_frame(model: mujoco.MjModel, base_body: str) -> tuple[mujoco.MjData, np.ndarray, np.ndarray]:
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    b = model.body(base_body).id
    return data, data.xpos[b].copy(), data.xmat[b].reshape(3, 3).copy()


def _pair(points: np.ndarray, names: list[str], what: str, where: str,
          axes: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """index[i]: the point that is point i reflected (base frame), or a ConfigError naming the one without.
    `axes` = (unit axes, the same reflected): points at one place (two hinges of one body) are told apart by the
    axis, the mirror's axis being parallel to point i's reflected one."""
    reflected = points * np.array([1.0, -1.0, 1.0])
    index = np.empty(len(points), dtype=np.int64)
    for i, target in enumerate(reflected):
        gap = np.linalg.norm(points - target, axis=1)
        distance = gap.copy()
        if axes is not None:  # a joint whose axis does not line up is no candidate, wherever it is
            distance += (np.abs(np.abs(axes[0] @ axes[1][i]) - 1.0) > 1e-3) * 1e3
        j = int(distance.argmin())
        if distance[j] > TOLERANCE:
            near = int(gap.argmin())
            turns = " and turns about another axis" if gap[near] <= TOLERANCE else ""
            raise ConfigError(f"{where}: {what} {names[i]!r} has no mirror image in the model (the nearest, "
                              f"{names[near]!r}, is {gap[near] * 1000:.1f} mm from its reflection{turns}); the robot "
                              f"is not left-right symmetric")
        index[i] = j
    if not (index[index] == np.arange(len(index))).all():
        raise ConfigError(f"{where}: the {what}s do not pair up under the reflection")
    return index


def joint_mirror(model: mujoco.MjModel, base_body: str, joints: list[str], where: str = "algorithm.symmetry"
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(index, sign) over `joints`: joint i's mirror image is joints[index[i]], its angle times sign[i]."""
    data, origin, rot = _base_frame(model, base_body)
    ids = [model.joint(j).id for j in joints]
    anchors = (data.xanchor[ids] - origin) @ rot
    axes = data.xaxis[ids] @ rot
    # a hinge's axis reflects as an axial vector, a slide's as a polar one
    slide = np.array([model.jnt_type[i] == mujoco.mjtJoint.mjJNT_SLIDE for i in ids])[:, None]
    reflected = axes * np.where(slide, VECTOR_SIGNS["polar"], VECTOR_SIGNS["axial"])
    index = _pair(anchors, joints, "joint", where, (axes, reflected))
    sign = np.einsum("ij,ij->i", reflected, axes[index])
    bad = np.abs(np.abs(sign) - 1.0) > 1e-3
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"{where}: joint {joints[i]!r} and its mirror image {joints[index[i]]!r} turn about axes "
                          f"that are not mirror images of each other")
    return index, np.sign(sign)


def foot_mirror(model: mujoco.MjModel, base_body: str, foot_geoms: list[list[str]],
                where: str = "algorithm.symmetry") -> np.ndarray:
    """index over the feet: foot i's mirror image is foot index[i] (by the position of its first geom)."""
    data, origin, rot = _base_frame(model, base_body)
    points = (np.array([data.geom_xpos[model.geom(g[0]).id] for g in foot_geoms]).reshape(-1, 3) - origin) @ rot
    return _pair(points, [g[0] for g in foot_geoms], "foot", where)


def layout_mirror(layout: list[tuple[str, int]], kinds: dict[str, str], joints: tuple[np.ndarray, np.ndarray],
                  feet: np.ndarray, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(index, sign) of a whole observation group: each term's mirror at its place in the layout."""
    index, sign, start = [], [], 0
    for name, dim in layout:
        kind = kinds[name]
        if kind in VECTOR_SIGNS:
            if dim != 3:
                raise ConfigError(f"{where}.{name}.mirror: {kind!r} mirrors 3-vectors; the term has {dim} values")
            index += [start, start + 1, start + 2]
            sign += VECTOR_SIGNS[kind]
        elif kind in ("joints", "feet"):
            perm, signs = joints if kind == "joints" else (feet, np.ones(len(feet)))
            if dim != len(perm):
                raise ConfigError(f"{where}.{name}.mirror: {kind!r} needs one value per "
                                  f"{'driven joint' if kind == 'joints' else 'foot'} ({len(perm)}); the term has {dim}")
            index += [start + int(p) for p in perm]
            sign += [float(s) for s in signs]
        elif kind == "invariant":
            index += list(range(start, start + dim))
            sign += [1.0] * dim
        else:
            raise ConfigError(f"{where}.{name}.mirror: say how this term mirrors left to right (one of "
                              f"{', '.join(KINDS)})")
        start += dim
    return torch.tensor(index), torch.tensor(sign)


def apply(x: torch.Tensor, index_sign: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The mirror image of a batch `x` (..., D)."""
    index, sign = index_sign
    return x[..., index] * sign
