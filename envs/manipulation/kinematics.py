"""Batched kinematics of the Panda-class arm in torch: forward kinematics from the published (modified) DH table,
the geometric Jacobian, and damped-least-squares differential IK. The MJCF (`robots/panda/panda.xml`) is built from the
same table, so these agree with MuJoCo to float precision (a test checks it)."""

from __future__ import annotations

import math

import torch

# Franka Emika, Craig's convention, one row per joint: (a_{i-1}, d_i, alpha_{i-1}) in metres / radians.
DH = ((0.0, 0.333, 0.0), (0.0, 0.0, -math.pi / 2), (0.0, 0.316, math.pi / 2), (0.0825, 0.0, math.pi / 2),
      (-0.0825, 0.384, -math.pi / 2), (0.0, 0.0, math.pi / 2), (0.088, 0.0, math.pi / 2))
FLANGE = 0.107  # flange offset along the last z axis
HAND_YAW = -math.pi / 4  # the hand sits rotated about the flange axis
TCP = 0.0934  # tool centre point from the hand origin: 1 cm above the fingertips (0.1034), a grasp's centre


def _rot_x(alpha: float) -> torch.Tensor:
    c, s = math.cos(alpha), math.sin(alpha)
    return torch.tensor([[1, 0, 0, 0], [0, c, -s, 0], [0, s, c, 0], [0, 0, 0, 1]], dtype=torch.float64)


def _trans(x: float, y: float, z: float) -> torch.Tensor:
    t = torch.eye(4, dtype=torch.float64)
    t[:3, 3] = torch.tensor([x, y, z], dtype=torch.float64)
    return t


def _rot_z(theta: float) -> torch.Tensor:
    c, s = math.cos(theta), math.sin(theta)
    return torch.tensor([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.float64)


class PandaKinematics:
    """FK / Jacobian / IK for N arms at once, on `device` (float32)."""

    def __init__(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        self.fixed = torch.stack([_rot_x(alpha) @ _trans(a, 0, d) for a, d, alpha in DH]).to(device, dtype)
        self.tool = (_trans(0, 0, FLANGE) @ _rot_z(HAND_YAW) @ _trans(0, 0, TCP)).to(device, dtype)

    def forward(self, q: torch.Tensor):
        """q (N, 7) -> tcp position (N, 3), tcp rotation (N, 3, 3), Jacobian (N, 6, 7): linear rows, then angular."""
        n = q.shape[0]
        c, s = torch.cos(q), torch.sin(q)
        t = torch.eye(4, dtype=q.dtype, device=q.device).expand(n, 4, 4)
        origins, axes = [], []
        for i in range(7):
            t = t @ self.fixed[i]
            origins.append(t[:, :3, 3])
            axes.append(t[:, :3, 2])
            rz = torch.zeros(n, 4, 4, dtype=q.dtype, device=q.device)
            rz[:, 0, 0], rz[:, 0, 1], rz[:, 1, 0], rz[:, 1, 1] = c[:, i], -s[:, i], s[:, i], c[:, i]
            rz[:, 2, 2] = rz[:, 3, 3] = 1
            t = t @ rz
        t = t @ self.tool
        pos, rot = t[:, :3, 3], t[:, :3, :3]
        z, o = torch.stack(axes, dim=2), torch.stack(origins, dim=2)  # (N, 3, 7)
        jac = torch.cat([torch.linalg.cross(z, pos[:, :, None] - o, dim=1), z], dim=1)
        return pos, rot, jac


def orientation_error(rot: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Small-angle rotation (N, 3) taking `rot` to `target` (both (N, 3, 3) or target (3, 3))."""
    target = target.expand_as(rot)
    return 0.5 * torch.linalg.cross(rot, target, dim=1).sum(dim=2)


def dls_step(jac: torch.Tensor, err: torch.Tensor, damping: float) -> torch.Tensor:
    """Damped least squares: dq = J^T (J J^T + damping^2 I)^-1 err, batched."""
    jjt = jac @ jac.transpose(1, 2)
    eye = torch.eye(jjt.shape[1], dtype=jac.dtype, device=jac.device)
    # solve_ex: the solve without its error check, which waits for the GPU (the damped matrix is positive definite)
    dq, _ = torch.linalg.solve_ex(jjt + damping ** 2 * eye, err[:, :, None])
    return (jac.transpose(1, 2) @ dq).squeeze(2)


def solve_ik(kin: PandaKinematics, q: torch.Tensor, target_pos: torch.Tensor, target_rot: torch.Tensor,
             damping: float = 0.05, iterations: int = 2, orientation_weight: float = 1.0,
             max_step: torch.Tensor | None = None, limits: torch.Tensor | None = None) -> torch.Tensor:
    """Joint positions near `q` that move the tcp toward `target_pos` with rotation `target_rot`: `iterations`
    damped-least-squares steps, the total change scaled down (direction kept) so that no joint moves more than its
    `max_step`, and the result clipped to `limits` (7, 2)."""
    q_ik = q
    for _ in range(iterations):
        pos, rot, jac = kin.forward(q_ik)
        err = torch.cat([target_pos - pos, orientation_weight * orientation_error(rot, target_rot)], dim=1)
        jac = torch.cat([jac[:, :3], orientation_weight * jac[:, 3:]], dim=1)
        q_ik = q_ik + dls_step(jac, err, damping)
    if max_step is not None:
        dq = q_ik - q
        q_ik = q + dq / (dq.abs() / max_step).amax(dim=1, keepdim=True).clamp(min=1.0)
    if limits is not None:
        q_ik = q_ik.clamp(limits[:, 0], limits[:, 1])
    return q_ik
