"""Isaac Gym backend: N worlds of one MJCF model in PhysX, through Isaac Gym's tensor API (Preview 4).

Needs NVIDIA's `isaacgym` package (not on PyPI: make_backend says how to install it); without it, importing this
module raises ImportError. Isaac Gym must be imported before torch in a process, so a program that uses this
backend starts with `import isaacgym`; importing it here comes too late once torch is loaded.

The MJCF (a file, or a composed scene written to a temporary file) is loaded twice: by MuJoCo as the host `model`
(names, sizes, the qpos/qvel layout, ranges, gains, the timestep) and by Isaac Gym's MJCF importer for simulation, one actor per world (env). State is exposed in MuJoCo's
layout (base.py): Isaac's root state (position, quaternion x y z w, centre-of-mass linear velocity and angular
velocity, world frame) becomes the free joint's qpos/qvel (w x y z; body-origin velocity; angular velocity in the
body frame), and Isaac's DOFs are matched to MuJoCo's joints by name. Position actuators become PhysX position
drives (stiffness kp, damping kv plus the joint's own damping, effort limit forcerange); `ctrl` sets their targets.

Sensors are computed from Isaac's tensors after every substep: contact (data="force" reduce="netforce"),
actuatorfrc, jointpos, jointvel, framepos, framelinvel, frameangvel (no reference frame). Isaac keeps one net
contact force per rigid body: a contact sensor reads all contacts of the body that owns geom1, whatever geom2 is,
and sensors whose geoms share a body read the same force (warned at start-up). Other sensors raise ValueError
when read.

Limits: one body tree per world plus an optional ground plane (the Panda scene, with its free object and table,
is refused); friction and mass are set per world before the first step or reset; `world_model(i)` is the shared
host model; the bench's bare-physics ceiling (`keep_inputs`, `replay_last_step`) is MuJoCo-only.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from isaacgym import gymapi, gymtorch

import mujoco
import numpy as np
import torch

from .base import MjcfNames, load_model, mjcf_file

if TYPE_CHECKING:
    from .base import Backend

FORCE_ONLY, NETFORCE = 1 << int(mujoco.mjtConDataField.mjCONDATA_FORCE), 3  # contact sensor intprm[0], intprm[1]
S, OBJ = mujoco.mjtSensor, mujoco.mjtObj


def _rotate(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """R(q) v for quaternions q (..., 4) in Isaac's order (x, y, z, w) and vectors v (..., 3)."""
    xyz, w = q[..., :3], q[..., 3:]
    t = 2.0 * torch.cross(xyz, v, dim=-1)
    return v + w * t + torch.cross(xyz, t, dim=-1)


def _conj(q: torch.Tensor) -> torch.Tensor:
    return torch.cat([-q[..., :3], q[..., 3:]], dim=-1)


def _scaled(m: gymapi.Mat33, s: float) -> gymapi.Mat33:
    out = gymapi.Mat33()
    out.x, out.y, out.z = (gymapi.Vec3(r.x * s, r.y * s, r.z * s) for r in (m.x, m.y, m.z))
    return out


class IsaacGymBackend(MjcfNames):
    """Batched Isaac Gym worlds; see the module docstring."""

    name = "isaacgym"
    # Isaac's state tensors, acquired by `_start` (prepare_sim), then refreshed after every substep
    _root: torch.Tensor  # (N, 13) root state of each world's actor
    _dof_state: torch.Tensor  # (N * D, 2) position, velocity
    _rb: torch.Tensor  # (N, B, 13) rigid body states
    _contact: torch.Tensor  # (N, B, 3) net contact force on each body
    _dof_force: torch.Tensor  # (N, D)

    def __init__(self, model: str | Path | mujoco.MjSpec, num_envs: int, decimation: int, device: str = "cuda:0",
                 nthread: int = 0, timestep: float | None = None, max_qvel: float = 1000.0,
                 opt: dict | None = None, model_path: str | Path | None = None, model_copies: int = 0) -> None:
        # `opt` (MjOption fields) reaches the host model only: PhysX has solver settings of its own; `model_copies`
        # has no use (PhysX keeps per-actor properties)
        self.model_path, self.model = load_model(model, num_envs, decimation, timestep, opt, model_path)
        asset_file = mjcf_file(model)  # Isaac Gym's importer reads a file: a composed scene is written out
        m = self.model
        self.num_envs, self.decimation, self.max_qvel = num_envs, decimation, max_qvel
        self.physics_dt = float(m.opt.timestep)
        self.device = dev = torch.device(device)
        root, plane = self._check_model()
        free = [j for j in range(m.njnt) if m.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
        self._free = (int(m.jnt_qposadr[free[0]]), int(m.jnt_dofadr[free[0]])) if free else None

        gym = self._gym = gymapi.acquire_gym()
        params = gymapi.SimParams()
        params.dt, params.substeps, params.up_axis = self.physics_dt, 1, gymapi.UP_AXIS_Z
        params.gravity = gymapi.Vec3(*(float(g) for g in m.opt.gravity))
        params.use_gpu_pipeline = params.physx.use_gpu = dev.type == "cuda"
        params.physx.solver_type, params.physx.num_threads = 1, nthread or os.cpu_count() or 1  # PhysX on the CPU
        self._sim = gym.create_sim(dev.index or 0, -1, gymapi.SIM_PHYSX, params)
        if plane is not None:
            ground = gymapi.PlaneParams()
            ground.normal, ground.distance = gymapi.Vec3(0.0, 0.0, 1.0), -float(m.geom_pos[plane, 2])
            ground.static_friction = ground.dynamic_friction = float(m.geom_friction[plane, 0])
            gym.add_ground(self._sim, ground)
        opts = gymapi.AssetOptions()
        opts.fix_base_link, opts.collapse_fixed_joints = self._free is None, False
        opts.default_dof_drive_mode = int(gymapi.DOF_MODE_NONE)
        opts.disable_gravity = bool(m.body_gravcomp[m.body_dofnum > 0].any())  # all 1 (checked)
        opts.angular_damping = opts.linear_damping = opts.armature = 0.0
        opts.max_angular_velocity = opts.max_linear_velocity = 10.0 * max_qvel  # above the divergence test
        self._asset = asset = gym.load_asset(self._sim, str(asset_file.parent), asset_file.name, opts)

        # index maps, built once: MuJoCo hinge/slide joints <-> Isaac DOFs by name, MuJoCo bodies -> Isaac bodies
        dofs, bodies = gym.get_asset_dof_dict(asset), gym.get_asset_rigid_body_dict(asset)
        joints = [j for j in range(m.njnt) if m.jnt_type[j] != mujoco.mjtJoint.mjJNT_FREE]
        names = [m.joint(j).name for j in joints]
        if sorted(names) != sorted(dofs):
            raise RuntimeError(f"{self.model_path.name}: Isaac Gym's DOFs {sorted(dofs)} are not the MuJoCo joints "
                               f"{sorted(names)}")
        self._joints = np.array(joints, dtype=int)
        self._jdof, self._ndof = np.array([dofs[n] for n in names], dtype=int), len(dofs)
        self._jq, self._jv, self._jd = (torch.as_tensor(np.asarray(a), device=dev) for a in
                                        (m.jnt_qposadr[joints], m.jnt_dofadr[joints], self._jdof))
        act_joints = [m.joint(int(m.actuator_trnid[a, 0])).name for a in range(m.nu)]
        self._adof = np.array([dofs[n] for n in act_joints], dtype=int)
        self._adof_t = torch.as_tensor(self._adof, device=dev)
        self._body = {b: bodies[m.body(b).name] for b in range(1, m.nbody) if m.body(b).name in bodies}
        self._gains = (m.actuator_gainprm[:, 0].copy(), -m.actuator_biasprm[:, 2],
                       np.where(m.actuator_forcelimited, m.actuator_forcerange[:, 1], 1e9))
        self._ipos = torch.as_tensor(m.body_ipos[root], dtype=torch.float32, device=dev)

        spacing = max(1.0, float(m.stat.extent))
        lo, hi = gymapi.Vec3(-spacing, -spacing, 0.0), gymapi.Vec3(spacing, spacing, spacing)
        p, q = m.body_pos[root], m.body_quat[root]
        pose = gymapi.Transform(gymapi.Vec3(*(float(x) for x in p)), gymapi.Quat(*(float(x) for x in q[[1, 2, 3, 0]])))
        self._envs: list[gymapi.Env] = []
        self._actors: list[int] = []
        no_self_collision = 0 if self._self_collides() else 1  # shapes collide unless their filters share a bit
        for i in range(num_envs):  # collision group i: worlds never touch each other
            env = gym.create_env(self._sim, lo, hi, int(np.ceil(np.sqrt(num_envs))))
            actor = gym.create_actor(env, asset, pose, "robot", i, no_self_collision, 0)
            gym.enable_actor_dof_force_sensors(env, actor)
            self._envs.append(env)
            self._actors.append(actor)
        self._actor_ids = torch.tensor([gym.get_actor_index(e, a, gymapi.DOMAIN_SIM)
                                        for e, a in zip(self._envs, self._actors)], dtype=torch.int32, device=dev)
        self._origin = torch.tensor([[o.x, o.y, o.z] for o in map(gym.get_env_origin, self._envs)], device=dev)
        self.set_pd_gains(*self._gains)

        f32, n = torch.float32, num_envs
        self.qpos = torch.as_tensor(m.qpos0, dtype=f32, device=dev).repeat(n, 1)
        self.qvel = torch.zeros(n, m.nv, dtype=f32, device=dev)
        self.time = torch.zeros(n, dtype=f32, device=dev)
        self.diverged = torch.zeros(n, dtype=torch.bool, device=dev)
        self._diverged_total = torch.zeros((), dtype=torch.int64, device=dev)
        self._targets = torch.zeros(n, len(dofs), dtype=f32, device=dev)
        limited = m.actuator_ctrllimited.astype(bool)[:, None]  # MuJoCo clamps ctrl to ctrlrange
        ctrl_range = np.where(limited, m.actuator_ctrlrange, [-np.inf, np.inf])
        self._ctrl_lo, self._ctrl_hi = torch.as_tensor(ctrl_range.T, dtype=f32, device=dev)
        self._hist = torch.zeros(n, decimation, m.nsensordata, dtype=f32, device=dev)
        self._build_sensors()
        self._started, self._pending = False, False
        self._dirty = torch.zeros(n, dtype=torch.bool, device=dev)

    # ---- set-up ------------------------------------------------------------------------------------------------
    def _check_model(self) -> tuple[int, int | None]:
        """What the adapter simulates: one body tree, joints hinge/slide (and a free root), position servos, a
        ground plane. Returns the tree's root body and the plane geom (or None)."""
        m, file = self.model, self.model_path.name
        roots = [b for b in range(1, m.nbody) if m.body_parentid[b] == 0]
        if len(roots) != 1:
            raise NotImplementedError(f"{file}: the isaacgym backend simulates one body tree per world, this model "
                                      f"has {len(roots)} ({', '.join(m.body(b).name for b in roots)})")
        world = [g for g in range(m.ngeom) if m.geom_bodyid[g] == 0 and (m.geom_contype[g] or m.geom_conaffinity[g])]
        planes = [g for g in world if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE and m.geom_quat[g, 0] == 1.0]
        if len(world) > 1 or len(world) != len(planes):
            raise NotImplementedError(f"{file}: the isaacgym backend takes one horizontal plane as world geometry, "
                                      f"got {[m.geom(g).name for g in world]}")
        kinds = {int(t) for t in m.jnt_type} - {int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)}
        if kinds - {int(mujoco.mjtJoint.mjJNT_FREE)}:  # MuJoCo allows a free joint on a root body only
            raise NotImplementedError(f"{file}: joints must be hinge or slide, plus a free joint on the root body")
        servo = ((m.actuator_trntype == mujoco.mjtTrn.mjTRN_JOINT) & (m.actuator_gear[:, 0] == 1)
                 & (m.actuator_dyntype == 0) & (m.actuator_biasprm[:, 1] == -m.actuator_gainprm[:, 0]))
        if not servo.all():
            raise NotImplementedError(f"{file}: every actuator must be a joint <position> servo with gear 1")
        gravcomp = m.body_gravcomp[m.body_dofnum > 0]
        if gravcomp.any() and not (gravcomp == 1).all():
            raise NotImplementedError(f"{file}: gravcomp must be 1 on all moving bodies or on none")
        return roots[0], planes[0] if planes else None

    def _self_collides(self) -> bool:
        """Whether two geoms of the tree on non-adjacent bodies may collide (MuJoCo's contype/conaffinity rule)."""
        m = self.model
        g = np.flatnonzero(m.geom_bodyid > 0)
        ct, ca, b = m.geom_contype[g], m.geom_conaffinity[g], m.geom_bodyid[g]
        hit = (ct[:, None] & ca[None, :]) | (ca[:, None] & ct[None, :])
        parent = m.body_parentid[b]
        adjacent = (b[:, None] == b[None, :]) | (parent[:, None] == b[None, :]) | (b[:, None] == parent[None, :])
        return bool((hit.astype(bool) & ~adjacent).any())

    def _build_sensors(self) -> None:
        """Readers that fill the (N, decimation, nsensordata) history, one per sensor kind, in MuJoCo's layout."""
        m, dev = self.model, self.device
        self._slices: dict[str, slice] = {}
        self._unsupported: dict[str, str] = {}
        kinds: dict[str, tuple[list[int], list[int], list[np.ndarray]]] = {}  # kind -> Isaac index, columns, offset
        per_body: dict[int, list[str]] = {}  # contact sensors by Isaac body
        for i in range(m.nsensor):
            name, typ, adr, dim = m.sensor(i).name, S(int(m.sensor_type[i])), int(m.sensor_adr[i]), int(m.sensor_dim[i])
            self._slices[name] = slice(adr, adr + dim)
            objtype, obj, kind = OBJ(int(m.sensor_objtype[i])), int(m.sensor_objid[i]), typ.name[7:].lower()
            body, offset = self._frame(objtype, obj)
            netforce = tuple(m.sensor_intprm[i, :2]) == (FORCE_ONLY, NETFORCE)
            if typ == S.mjSENS_CONTACT and netforce and body in self._body:
                index = self._body[body]
                per_body.setdefault(index, []).append(name)
            elif typ == S.mjSENS_ACTUATORFRC:
                index = int(self._adof[obj])
            elif typ in (S.mjSENS_JOINTPOS, S.mjSENS_JOINTVEL) and obj in self._joints:
                index = int(self._jdof[self._joints == obj][0])
            elif typ in (S.mjSENS_FRAMEPOS, S.mjSENS_FRAMELINVEL, S.mjSENS_FRAMEANGVEL) and body in self._body \
                    and m.sensor_refid[i] < 0:
                index = self._body[body]
                offset = offset - m.body_ipos[body] if typ == S.mjSENS_FRAMELINVEL else offset  # Isaac: COM velocity
            else:
                self._unsupported[name] = typ.name
                continue
            indices, cols, offsets = kinds.setdefault(kind, ([], [], []))
            indices.append(index)
            cols.extend(range(adr, adr + dim))
            offsets.append(offset)
        if same := ["/".join(names) for names in per_body.values() if len(names) > 1]:
            warnings.warn(f"{self.model_path.name}: Isaac Gym keeps one net contact force per rigid body, so these "
                          f"contact sensors read the same force: {', '.join(same)}", stacklevel=3)

        n = self.num_envs
        # MuJoCo's netforce is the force geom1 applies to geom2 (-z for a standing foot): minus Isaac's force on it
        readers: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
            "contact": lambda i, _: -self._contact[:, i].flatten(1),
            "actuatorfrc": lambda i, _: self._dof_force[:, i],
            "jointpos": lambda i, _: self._dof_state.view(n, self._ndof, 2)[:, i, 0],
            "jointvel": lambda i, _: self._dof_state.view(n, self._ndof, 2)[:, i, 1],
            "framepos": lambda i, o: (self._rb[:, i, :3] - self._origin[:, None]
                                      + _rotate(self._rb[:, i, 3:7], o.expand(n, -1, -1))).flatten(1),
            "framelinvel": lambda i, o: (self._rb[:, i, 7:10] + torch.cross(
                self._rb[:, i, 10:13], _rotate(self._rb[:, i, 3:7], o.expand(n, -1, -1)), dim=-1)).flatten(1),
            "frameangvel": lambda i, _: self._rb[:, i, 10:13].flatten(1),
        }
        self._readers = [(torch.tensor(cols, device=dev), readers[kind], torch.tensor(indices, device=dev),
                          torch.as_tensor(np.array(offsets), dtype=torch.float32, device=dev))
                         for kind, (indices, cols, offsets) in kinds.items()]

    def _frame(self, objtype: mujoco.mjtObj, obj: int) -> tuple[int, np.ndarray]:
        """The body that carries a sensor's object, and the object's position in that body's frame."""
        m = self.model
        if objtype in (OBJ.mjOBJ_XBODY, OBJ.mjOBJ_BODY):  # body: its inertial frame; xbody: its own frame
            return obj, m.body_ipos[obj] if objtype == OBJ.mjOBJ_BODY else np.zeros(3)
        if objtype in (OBJ.mjOBJ_GEOM, OBJ.mjOBJ_SITE):
            kind = "geom" if objtype == OBJ.mjOBJ_GEOM else "site"
            return int(getattr(m, f"{kind}_bodyid")[obj]), getattr(m, f"{kind}_pos")[obj]
        return -1, np.zeros(3)

    def _start(self) -> None:
        """prepare_sim and the state tensors, on first use (Isaac takes mass and friction changes before it)."""
        if self._started:
            return
        gym, sim, n = self._gym, self._sim, self.num_envs
        gym.prepare_sim(sim)
        self._root = gymtorch.wrap_tensor(gym.acquire_actor_root_state_tensor(sim))
        self._dof_state = gymtorch.wrap_tensor(gym.acquire_dof_state_tensor(sim))
        self._rb = gymtorch.wrap_tensor(gym.acquire_rigid_body_state_tensor(sim)).view(n, -1, 13)
        self._contact = gymtorch.wrap_tensor(gym.acquire_net_contact_force_tensor(sim)).view(n, -1, 3)
        self._dof_force = gymtorch.wrap_tensor(gym.acquire_dof_force_tensor(sim)).view(n, self._ndof)
        self._started = True
        self._refresh()
        self._push(torch.arange(n, device=self.device))

    def _before_start(self, what: str) -> None:
        if self._started:
            raise RuntimeError(f"{what}: the isaacgym backend takes per-world {what} before the first step or reset")

    # ---- names ---------------------------------------------------------------------------------------------
    def sensor_names(self) -> list[str]:
        return list(self._slices)

    def _sensor_slice(self, name: str) -> slice:
        if name in self._unsupported:
            raise ValueError(f"sensor {name!r}: type {self._unsupported[name]} (or its options) is not computed by "
                             f"the isaacgym backend")
        return self._slices[name]

    def sensor(self, name: str) -> torch.Tensor:
        """Sensor `name` at the last substep of the last step: (N, dim)."""
        return self._hist[:, -1, self._sensor_slice(name)]

    def sensor_history(self, name: str) -> torch.Tensor:
        """Sensor `name` at every substep of the last step: (N, decimation, dim)."""
        return self._hist[:, :, self._sensor_slice(name)]

    @property
    def sensordata(self) -> torch.Tensor:
        """All sensors at the last substep, MuJoCo's layout (columns of sensors it does not compute stay 0)."""
        return self._hist[:, -1]

    # ---- state: Isaac <-> MuJoCo layout ----------------------------------------------------------------------
    def _refresh(self) -> None:
        gym, sim = self._gym, self._sim
        gym.refresh_actor_root_state_tensor(sim)
        gym.refresh_dof_state_tensor(sim)
        gym.refresh_rigid_body_state_tensor(sim)
        gym.refresh_net_contact_force_tensor(sim)
        gym.refresh_dof_force_tensor(sim)

    def _pull(self) -> None:
        """qpos, qvel from Isaac's root and DOF states."""
        if self._free is not None:
            a, b = self._free
            pos, quat, lin, ang = self._root[:, :3], self._root[:, 3:7], self._root[:, 7:10], self._root[:, 10:13]
            self.qpos[:, a:a + 3] = pos - self._origin
            self.qpos[:, a + 3:a + 7] = quat[:, [3, 0, 1, 2]]
            self.qvel[:, b:b + 3] = lin - torch.cross(ang, _rotate(quat, self._ipos.expand_as(ang)), dim=-1)
            self.qvel[:, b + 3:b + 6] = _rotate(_conj(quat), ang)
        dof = self._dof_state.view(self.num_envs, self._ndof, 2)
        self.qpos[:, self._jq] = dof[:, self._jd, 0]
        self.qvel[:, self._jv] = dof[:, self._jd, 1]

    def _push(self, ids: torch.Tensor) -> None:
        """Write qpos, qvel of worlds `ids` into Isaac's tensors; sent to Isaac by one indexed call before the next
        simulate (a second call on the same tensor in one step would replace the first)."""
        q, v = self.qpos[ids], self.qvel[ids]
        if self._free is not None:
            a, b = self._free
            quat = q[:, [a + 4, a + 5, a + 6, a + 3]]
            ang = _rotate(quat, v[:, b + 3:b + 6])
            lin = v[:, b:b + 3] + torch.cross(ang, _rotate(quat, self._ipos.expand_as(ang)), dim=-1)
            self._root[ids] = torch.cat([q[:, a:a + 3] + self._origin[ids], quat, lin, ang], dim=1)
        self._dof_state.view(self.num_envs, self._ndof, 2)[ids[:, None], self._jd] = torch.stack(
            [q[:, self._jq], v[:, self._jv]], dim=-1)
        self._dirty[ids], self._pending = True, True

    def _flush(self) -> None:
        if not self._pending:
            return
        actors = self._actor_ids[self._dirty]
        gym, sim, idx = self._gym, self._sim, gymtorch.unwrap_tensor(actors)
        if self._free is not None:
            gym.set_actor_root_state_tensor_indexed(sim, gymtorch.unwrap_tensor(self._root), idx, len(actors))
        if self._ndof:
            gym.set_dof_state_tensor_indexed(sim, gymtorch.unwrap_tensor(self._dof_state), idx, len(actors))
        self._dirty[:], self._pending = False, False

    # ---- stepping ----------------------------------------------------------------------------------------
    def step(self, ctrl: torch.Tensor | np.ndarray) -> None:
        """Hold `ctrl` (N, nu), position targets, for `decimation` substeps in every world; flag diverged worlds."""
        self._start()
        self._flush()
        gym, sim = self._gym, self._sim
        ctrl = torch.as_tensor(ctrl, dtype=torch.float32, device=self.device)
        if self.model.nu:
            self._targets[:, self._adof_t] = torch.clamp(ctrl, self._ctrl_lo, self._ctrl_hi)
            gym.set_dof_position_target_tensor(sim, gymtorch.unwrap_tensor(self._targets))
        for k in range(self.decimation):
            gym.simulate(sim)
            if self.device.type == "cpu":
                gym.fetch_results(sim, True)
            self._refresh()
            for cols, read, index, offset in self._readers:
                self._hist[:, k, cols] = read(index, offset)
        self._pull()
        self.time += self.decimation * self.physics_dt
        bad = ~(torch.isfinite(self.qpos).all(1) & torch.isfinite(self.qvel).all(1))
        bad |= self.qvel.abs().amax(1) > self.max_qvel
        self.diverged = bad
        self._diverged_total += bad.sum()
        for x in (self.qpos, self.qvel):  # as the CPU backend: the caller resets them
            x.copy_(torch.where(bad[:, None], x.nan_to_num(0.0, 0.0, 0.0), x))
        self._hist.masked_fill_(bad[:, None, None], 0.0)

    @property
    def num_diverged(self) -> int:
        return int(self._diverged_total)

    def reset(self, env_ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor) -> None:
        """Worlds `env_ids` start again from `qpos`, `qvel` (their time set to 0)."""
        self._start()
        ids = env_ids.to(self.device, torch.long)
        self.qpos[ids], self.qvel[ids] = qpos.to(self.qpos), qvel.to(self.qvel)
        self.time[ids], self._hist[ids] = 0.0, 0.0
        self._push(ids)

    def set_qvel(self, qvel: torch.Tensor) -> None:
        self._start()
        self.qvel.copy_(qvel)
        self._push(torch.arange(self.num_envs, device=self.device))

    def keep_inputs(self, on: bool = True) -> None:
        if on:
            raise NotImplementedError("keep_inputs: the bare-physics ceiling is measured on the mujoco backend only")

    def replay_last_step(self) -> float:
        raise NotImplementedError("replay_last_step: the bare-physics ceiling is measured on the mujoco backend only")

    # ---- per-world model parameters ------------------------------------------------------------------------
    def set_geom_friction(self, geom: str, values: np.ndarray) -> None:
        """Friction of `geom`, one value per world, on the Isaac shapes of its body; for a world geom (the floor,
        Isaac's ground plane, one for all worlds), on every shape of the robot. PhysX combines the two shapes'
        values by its own rule (not MuJoCo's priority)."""
        self._before_start("friction")
        gym, b = self._gym, int(self.model.geom_bodyid[self.model.geom(geom).id])
        for env, actor, v in zip(self._envs, self._actors, np.asarray(values, dtype=float)):
            props = gym.get_actor_rigid_shape_properties(env, actor)
            span = gym.get_actor_rigid_body_shape_indices(env, actor)[self._body[b]] if b else None
            for p in props[span.start:span.start + span.count] if span is not None else props:
                p.friction = float(v)
            gym.set_actor_rigid_shape_properties(env, actor, props)

    def set_body_mass(self, body: str, values: np.ndarray) -> None:
        """Mass of `body`, one value per world (inertia scaled with it)."""
        self._before_start("mass")
        gym, b = self._gym, self._body[self.model.body(body).id]
        for env, actor, v in zip(self._envs, self._actors, np.asarray(values, dtype=float)):
            props = gym.get_actor_rigid_body_properties(env, actor)
            props[b].inertia, props[b].mass = _scaled(props[b].inertia, float(v) / props[b].mass), float(v)
            gym.set_actor_rigid_body_properties(env, actor, props, False)

    def set_pd_gains(self, kp: np.ndarray, kd: np.ndarray, force_limit: np.ndarray,
                     strength: np.ndarray | None = None, kd_strength: np.ndarray | None = None) -> None:
        """PD drives per actuator (nu,), scaled per world by `strength` (N,): stiffness s kp, damping s kd (plus
        the joint's passive damping), effort limit force_limit. Joints keep MuJoCo's limits and armature."""
        m, gym = self.model, self._gym
        kp, kd, force_limit = (np.asarray(x, dtype=float) for x in (kp, kd, force_limit))
        scales = np.ones(self.num_envs) if strength is None else np.asarray(strength, dtype=float)
        j, d, v = self._joints, self._jdof, m.jnt_dofadr[self._joints]
        base = gym.get_asset_dof_properties(self._asset)  # structured array, one row per Isaac DOF
        base["hasLimits"][d] = m.jnt_limited[j]
        base["lower"][d], base["upper"][d] = m.jnt_range[j, 0], m.jnt_range[j, 1]
        base["armature"][d], base["friction"][d] = m.dof_armature[v], m.dof_frictionloss[v]
        base["velocity"][d] = 10.0 * self.max_qvel  # MuJoCo has no joint speed limit: keep PhysX's above the test
        base["driveMode"][self._adof] = int(gymapi.DOF_MODE_POS)
        kd_scales = scales if kd_strength is None else np.asarray(kd_strength, dtype=float)
        for env, actor, s, sd in zip(self._envs, self._actors, scales, kd_scales):
            props = base.copy()
            props["damping"][d] = m.dof_damping[v]
            props["stiffness"][self._adof] = s * kp
            props["damping"][self._adof] += sd * kd
            props["effort"][self._adof] = force_limit
            gym.set_actor_dof_properties(env, actor, props)

    def world_model(self, i: int) -> mujoco.MjModel:
        """The host model (per-world parameters live in Isaac only), for rendering world `i`'s state."""
        if not 0 <= i < self.num_envs:
            raise IndexError(f"world {i}: there are {self.num_envs}")
        return self.model

    def state_dict(self) -> dict:
        return {"qpos": self.qpos.cpu().clone(), "qvel": self.qvel.cpu().clone(), "time": self.time.cpu().clone(),
                "sensordata": self._hist.cpu().clone(), "num_diverged": self.num_diverged}

    def load_state_dict(self, state: dict) -> None:
        if "qpos" not in state or tuple(state["qpos"].shape) != tuple(self.qpos.shape):
            raise ValueError(f"backend state: expected isaacgym qpos of shape {tuple(self.qpos.shape)} (a different "
                             f"backend, num_envs or model?)")
        self._start()
        for x, key in ((self.qpos, "qpos"), (self.qvel, "qvel"), (self.time, "time"), (self._hist, "sensordata")):
            x.copy_(state[key])
        self._diverged_total.fill_(int(state["num_diverged"]))
        self._push(torch.arange(self.num_envs, device=self.device))

    def close(self) -> None:
        if self._sim is not None:
            self._gym.destroy_sim(self._sim)
            self._sim = None  # type: ignore[assignment]


if TYPE_CHECKING:
    def _conforms(backend: IsaacGymBackend) -> Backend:
        return backend  # mypy fails here, naming the member, if the adapter drifts from the Protocol
