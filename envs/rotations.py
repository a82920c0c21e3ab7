"""Quaternion helpers on batched tensors. Quaternions are (w, x, y, z), MuJoCo's convention."""

from __future__ import annotations

import torch


def rotate_inverse(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Express world-frame vectors `v` (N, 3) in the body frame given by `q` (N, 4): R(q)^T v."""
    w, xyz = q[:, :1], q[:, 1:]
    return v * (2.0 * w * w - 1.0) - 2.0 * w * torch.cross(xyz, v, dim=1) + 2.0 * xyz * (xyz * v).sum(1, keepdim=True)


def rotate(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Express body-frame vectors `v` (N, 3) in the world frame: R(q) v."""
    w, xyz = q[:, :1], q[:, 1:]
    return v * (2.0 * w * w - 1.0) + 2.0 * w * torch.cross(xyz, v, dim=1) + 2.0 * xyz * (xyz * v).sum(1, keepdim=True)


def yaw_quat(yaw: torch.Tensor) -> torch.Tensor:
    """Quaternions (N, 4) of rotations by `yaw` (N,) about the world z axis."""
    half = 0.5 * yaw
    zero = torch.zeros_like(half)
    return torch.stack([torch.cos(half), zero, zero, torch.sin(half)], dim=1)


def yaw(q: torch.Tensor) -> torch.Tensor:
    """Heading (N,) of quaternions `q` (N, 4): the angle about world z of the body's x axis projected on the ground."""
    w, x, y, z = q.unbind(-1)
    return torch.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
