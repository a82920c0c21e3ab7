"""MuJoCo CPU backend: N worlds of one MJCF model stepped in C on a thread pool.

One `step` is one Python call for all worlds: `mujoco.rollout` runs the `decimation` physics substeps of every
world on its thread pool without the GIL. The PD loop is MuJoCo's position actuator, so the torque
tau = kp (target - q) - kd qdot, clipped to the force range, is recomputed at every substep in C.

State lives in one float64 array of shape (N, nstate) (MuJoCo's mjSTATE_FULLPHYSICS: time, qpos, qvel, ...).
`qpos`, `qvel` and `time` are torch views of that array, and `sensors(name)` views of the last substep's sensor
data: zero copies, and writing to a view (a push, a reset) writes the state the next step starts from.

Per-world randomization of model parameters (friction, masses, actuator gains) gives each world its own MjModel
copy, made on first use; until then all worlds share one model. With `model_copies` K, there are only K copies:
world i uses copy i % K, and takes the values of world i % K (a model holding a terrain is megabytes: thousands of
copies would not fit in memory).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import mujoco
import mujoco.rollout
import numpy as np
import torch

from .base import MjcfNames, load_model

STATE_SPEC = mujoco.mjtState.mjSTATE_FULLPHYSICS
CTRL_SPEC = int(mujoco.mjtState.mjSTATE_CTRL)
XFRC_SPEC = int(mujoco.mjtState.mjSTATE_XFRC_APPLIED)


def set_pd_gains(model: mujoco.MjModel, kp, kd, force_limit) -> None:
    """Make every actuator of `model` the PD position servo of training, one value per actuator:
    tau = kp (target - q) - kd qdot, clipped to +-force_limit (the sim2sim bridge uses the same function)."""
    model.actuator_gainprm[:, 0] = kp
    model.actuator_biasprm[:, 1] = -np.asarray(kp)
    model.actuator_biasprm[:, 2] = -np.asarray(kd)
    model.actuator_forcerange[:, 0] = -np.asarray(force_limit)
    model.actuator_forcerange[:, 1] = force_limit
    model.actuator_forcelimited[:] = 1


def skip_static_geoms(model: mujoco.MjModel) -> None:
    """Let MuJoCo skip the world body's geoms in forward kinematics: it does so once sleeping is enabled, and
    with every kinematic tree's sleep policy "never" nothing ever sleeps, so the motion is bit-identical
    (tests/test_backend.py). A terrain puts ~700 static geoms in every world: their poses were recomputed in every
    physics step (5.4 of 22.7 us a step for one world on the default grid, 1.3 with this). A MuJoCo without
    sleeping (3.3.5, the oldest supported) leaves the geoms their cost."""
    if not hasattr(mujoco.mjtEnableBit, "mjENBL_SLEEP"):
        return
    model.opt.enableflags |= int(mujoco.mjtEnableBit.mjENBL_SLEEP)
    model.tree_sleep_policy[:] = int(mujoco.mjtSleepPolicy.mjSLEEP_NEVER)


class MujocoBackend(MjcfNames):
    """Batched MuJoCo worlds; see the module docstring."""

    name = "mujoco"
    device = torch.device("cpu")

    def __init__(self, model: str | Path | mujoco.MjSpec, num_envs: int, decimation: int, nthread: int = 0,
                 timestep: float | None = None, max_qvel: float = 1000.0,
                 opt: dict | None = None, model_path: str | Path | None = None, model_copies: int = 0):
        self.model_path, self.model = load_model(model, num_envs, decimation, timestep, opt, model_path)
        skip_static_geoms(self.model)
        self.model_copies = min(model_copies or num_envs, num_envs)
        self.num_envs = num_envs
        self.decimation = decimation
        self.nthread = nthread or os.cpu_count() or 1
        self.max_qvel = max_qvel
        self.physics_dt = float(self.model.opt.timestep)
        m = self.model
        self.models = [m] * num_envs
        self._per_world = False
        self._datas = [mujoco.MjData(m) for _ in range(self.nthread)]
        self._pool = mujoco.rollout.Rollout(nthread=self.nthread)

        nstate = mujoco.mj_stateSize(m, STATE_SPEC)
        self._state = np.zeros((num_envs, nstate))
        self._traj = np.zeros((num_envs, decimation, nstate))
        self._sens = np.zeros((num_envs, decimation, m.nsensordata))
        self._ctrl = np.zeros((num_envs, decimation, m.nu))
        self._warmstart = np.zeros((num_envs, m.nv))
        data = mujoco.MjData(m)
        mujoco.mj_getState(m, data, self._state[0], STATE_SPEC)
        self._state[:] = self._state[0]

        # zero-copy torch views of the state (float64, CPU)
        state = torch.from_numpy(self._state)
        self.time = state[:, 0]
        self.qpos = state[:, 1:1 + m.nq]
        self.qvel = state[:, 1 + m.nq:1 + m.nq + m.nv]
        self._sens_t = torch.from_numpy(self._sens)
        self._index_sensors()
        self.diverged = torch.zeros(num_envs, dtype=torch.bool)
        self.num_diverged = 0
        self._last_input: tuple[np.ndarray, np.ndarray] | None = None
        self._xfrc: np.ndarray | None = None  # (N, 1, nbody * 6) held by `apply_body_forces`

    # ---- stepping ----------------------------------------------------------------------------------------
    def step(self, ctrl: torch.Tensor | np.ndarray, delay: np.ndarray | None = None) -> None:
        """Hold `ctrl` (N, nu) for `decimation` substeps in every world; with `delay` (N,) physics steps per world,
        the previous step's ctrl stays on for that world's first `delay` substeps (actuator latency). Diverged
        worlds are flagged in `self.diverged` (and counted); their state is left for the caller to reset."""
        ctrl = ctrl.detach().cpu().numpy() if isinstance(ctrl, torch.Tensor) else np.asarray(ctrl)
        if delay is None:
            self._ctrl[:] = ctrl[:, None, :]
        else:
            previous = self._ctrl[:, -1].copy()
            late = np.arange(self.decimation)[None, :] < np.asarray(delay)[:, None]  # (N, decimation)
            self._ctrl[:] = np.where(late[:, :, None], previous[:, None, :], ctrl[:, None, :])
        t_expected = self._state[:, 0] + self.decimation * self.physics_dt
        if self._last_input is not None:
            np.copyto(self._last_input[0], self._state)
            np.copyto(self._last_input[1], self._ctrl)
        if self._xfrc is None:
            self._rollout(self._state, self._ctrl, self._traj, self._sens)
        else:  # control vectors [ctrl | xfrc_applied], MuJoCo's order of the mjSTATE_USER parts
            xfrc = np.broadcast_to(self._xfrc, (self.num_envs, self.decimation, self._xfrc.shape[2]))
            self._rollout(self._state, np.concatenate([self._ctrl, xfrc], axis=2), self._traj, self._sens,
                          CTRL_SPEC | XFRC_SPEC)
        np.copyto(self._state, self._traj[:, -1])
        # MuJoCo resets a world itself on a bad acceleration (time jumps back): that counts as divergence too.
        nq, nv = self.model.nq, self.model.nv
        qvel = self._state[:, 1 + nq:1 + nq + nv]
        bad = ~np.isfinite(self._state).all(axis=1)
        bad |= np.abs(np.nan_to_num(qvel, nan=np.inf)).max(axis=1) > self.max_qvel
        bad |= np.abs(self._state[:, 0] - t_expected) > 1e-6
        self.diverged = torch.from_numpy(bad)
        n = int(bad.sum())
        if n:
            self.num_diverged += n
            self._state[bad] = np.nan_to_num(self._state[bad], nan=0.0, posinf=0.0, neginf=0.0)
            self._sens[bad] = 0.0

    def _rollout(self, state: np.ndarray, ctrl: np.ndarray, traj: np.ndarray, sens: np.ndarray,
                 control_spec: int = CTRL_SPEC) -> None:
        """`decimation` substeps of every world from `state` under `ctrl`, into `traj` and `sens`, in C."""
        self._pool.rollout(self.models, self._datas, state, ctrl, control_spec=control_spec, skip_checks=True,
                           nstep=self.decimation, initial_warmstart=self._warmstart, state=traj, sensordata=sens,
                           chunk_size=None)

    def reset(self, env_ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor) -> None:
        """Set the state of worlds `env_ids` (time to 0, the rest of the state to `qpos`, `qvel`)."""
        ids = env_ids.cpu().numpy()
        m = self.model
        self._state[ids, 0] = 0.0
        self._state[ids, 1:1 + m.nq] = qpos.detach().cpu().numpy()
        self._state[ids, 1 + m.nq:1 + m.nq + m.nv] = qvel.detach().cpu().numpy()
        self._sens[ids] = 0.0

    def set_qvel(self, qvel: torch.Tensor) -> None:
        self.qvel.copy_(qvel)

    def apply_body_forces(self, xfrc: np.ndarray | None) -> None:
        """External forces held on the bodies through every later step until the next call: (N, nbody, 6), MuJoCo's
        `xfrc_applied` (force, then torque, in the world frame at each body's centre of mass); None: none (the
        default). The live viewer passes its mouse perturbation through this."""
        if xfrc is None:
            self._xfrc = None
            return
        xfrc = np.asarray(xfrc, dtype=float)
        if xfrc.shape != (self.num_envs, self.model.nbody, 6):
            raise ValueError(f"xfrc: expected shape ({self.num_envs}, {self.model.nbody}, 6), got {xfrc.shape}")
        self._xfrc = xfrc.reshape(self.num_envs, 1, -1).copy()

    def keep_inputs(self, on: bool = True) -> None:
        """Keep a copy of the (state, ctrl) each step starts from, for `replay_last_step`."""
        self._last_input = (np.empty_like(self._state), np.empty_like(self._ctrl)) if on else None

    def replay_last_step(self) -> float:
        """The ceiling, one call at a time: step the last step's exact input (same models, worlds, threads and
        substeps) through bare `mujoco.rollout`, with no task logic, into scratch buffers. Returns its seconds."""
        import time

        state, ctrl = self._last_input
        traj, sens = np.empty_like(self._traj), np.empty_like(self._sens)
        start = time.perf_counter()
        self._rollout(state, ctrl, traj, sens)
        return time.perf_counter() - start

    # ---- per-world model parameters ------------------------------------------------------------------------
    def _own_models(self) -> list[mujoco.MjModel]:
        """The distinct models (one per world, or `model_copies`), made on first use; world i's is copies[i % K]."""
        if not self._per_world:
            self._copies = [copy.copy(self.model) for _ in range(self.model_copies)]
            self.models = [self._copies[i % self.model_copies] for i in range(self.num_envs)]
            self._per_world = True
        return self._copies

    def set_geom_friction(self, geom: str, values: np.ndarray) -> None:
        """Sliding friction of `geom`, one value per world."""
        gid = self.model.geom(geom).id
        for model, v in zip(self._own_models(), np.asarray(values, dtype=float)):
            model.geom_friction[gid, 0] = v

    def set_body_mass(self, body: str, values: np.ndarray) -> None:
        """Mass of `body`, one value per world (inertia scaled with it; the constants MuJoCo derives from masses,
        such as the inverse weights that scale contact softness, recomputed)."""
        bid = self.model.body(body).id
        mass0, inertia0 = float(self.model.body_mass[bid]), self.model.body_inertia[bid].copy()
        data = mujoco.MjData(self.model)
        for model, v in zip(self._own_models(), np.asarray(values, dtype=float)):
            model.body_mass[bid] = v
            model.body_inertia[bid] = inertia0 * (v / mass0)
            mujoco.mj_setConst(model, data)

    def set_pd_gains(self, kp: np.ndarray, kd: np.ndarray, force_limit: np.ndarray,
                     strength: np.ndarray | None = None, kd_strength: np.ndarray | None = None) -> None:
        """PD gains and torque limits per actuator (nu,), scaled per world by `strength` (N,) if given (and the
        damping by `kd_strength` when given): tau = strength (kp (target - q)) - kd_strength kd qdot, clipped to
        +-force_limit."""
        kp, kd, force_limit = (np.asarray(x, dtype=float) for x in (kp, kd, force_limit))
        models = self._own_models() if strength is not None or self._per_world else [self.model]
        scales = np.ones(self.num_envs) if strength is None else np.asarray(strength, dtype=float)
        kd_scales = scales if kd_strength is None else np.asarray(kd_strength, dtype=float)
        for model, s, sd in zip(models, scales, kd_scales):
            set_pd_gains(model, s * kp, sd * kd, force_limit)

    def set_body_com(self, body: str, offsets: np.ndarray) -> None:
        """Shift the centre of mass of `body` by `offsets` (N, 3) (body frame, m), one per world."""
        bid = self.model.body(body).id
        ipos0 = self.model.body_ipos[bid].copy()
        data = mujoco.MjData(self.model)
        for model, off in zip(self._own_models(), np.asarray(offsets, dtype=float)):
            model.body_ipos[bid] = ipos0 + off
            mujoco.mj_setConst(model, data)

    def set_dof_armature(self, dofs: list[int], values: np.ndarray) -> None:
        """Armature (kg m^2) of degrees of freedom `dofs`, values (N, len(dofs)), one row per world."""
        data = mujoco.MjData(self.model)
        for model, row in zip(self._own_models(), np.asarray(values, dtype=float)):
            model.dof_armature[dofs] = row
            mujoco.mj_setConst(model, data)

    def world_model(self, i: int) -> mujoco.MjModel:
        return self.models[i]

    def state_dict(self) -> dict:
        """The worlds' physics state (models are rebuilt from the seed, not saved)."""
        return {"state": torch.from_numpy(self._state.copy()), "sensordata": torch.from_numpy(self._sens.copy()),
                "num_diverged": self.num_diverged}

    def load_state_dict(self, state: dict) -> None:
        if "state" not in state or tuple(state["state"].shape) != self._state.shape:
            got = tuple(state["state"].shape) if "state" in state else "a checkpoint of another backend"
            raise ValueError(f"backend state: expected shape {self._state.shape}, got {got}"
                             " (a different num_envs, model or backend?)")
        if tuple(state["sensordata"].shape) != self._sens.shape:
            raise ValueError(f"backend state: expected sensor data of shape {self._sens.shape}, got "
                             f"{tuple(state['sensordata'].shape)} (a checkpoint of a model with other sensors?)")
        self._state[:] = state["state"].numpy()
        self._sens[:] = state["sensordata"].numpy()
        self.num_diverged = int(state["num_diverged"])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
