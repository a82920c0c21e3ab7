"""MuJoCo Warp backend: N worlds of one MJCF model stepped by MuJoCo Warp kernels, on a GPU or (slowly) the CPU.

All worlds live in one `mujoco_warp.Data`; `qpos`, `qvel`, `time` and the sensor history are torch views of its
arrays (`wp.to_torch`: zero copies, on `device`). `step` copies the targets into `Data.ctrl`, runs the `decimation`
substeps (from the second step on as one captured graph: a CUDA graph replayed on torch's current stream on a GPU,
Warp's recorded launch list on the CPU) and flags diverged worlds with torch ops: no host round trip inside `step`.
Per-world randomization writes the batched model fields (friction, masses, actuator gains; one row per world) and
recomputes the derived constants with `mujoco_warp.set_const`, as the CPU backend does with `mj_setConst`.

The first use of a model compiles its kernels (~30 s on a CPU; cached by Warp in ~/.cache/warp after that).
"""

from __future__ import annotations

import copy
import time
import warnings
from pathlib import Path

import mujoco
import numpy as np
import torch
import warp as wp

wp.config.log_level = wp.LOG_WARNING  # no banner or per-kernel load lines; warnings and errors still show
import mujoco_warp as mjw  # noqa: E402

from .base import MjcfNames, load_model  # noqa: E402

# Model fields given one row per world (the ones set_* write and the constants set_const derives from them).
BATCHED = ("geom_friction", "body_mass", "body_inertia", "body_subtreemass", "body_invweight0", "dof_invweight0",
           "actuator_gainprm", "actuator_biasprm", "actuator_forcerange", "actuator_acc0")
# Contacts and constraint rows allocated per world: a fallen quadruped touches the floor with trunk, thighs and calves.
NCONMAX, NJMAX = 64, 256


@wp.kernel
def _record(src: wp.array2d(dtype=float), substep: int, dst: wp.array3d(dtype=float)):
    world, k = wp.tid()
    dst[world, substep, k] = src[world, k]


class WarpBackend(MjcfNames):
    """Batched MuJoCo Warp worlds; see the module docstring."""

    name = "warp"

    def __init__(self, model: str | Path | mujoco.MjSpec, num_envs: int, decimation: int, device: str = "cuda",
                 nthread: int = 0, timestep: float | None = None, max_qvel: float = 1000.0,
                 opt: dict | None = None, model_path: str | Path | None = None, model_copies: int = 0):
        # `model_copies` has no use here: per-world parameters are batched arrays of one model, the terrain is shared
        self.model_path, self.model = load_model(model, num_envs, decimation, timestep, opt, model_path)
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:  # Warp needs the GPU's number
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.num_envs, self.decimation, self.max_qvel = num_envs, decimation, max_qvel
        self.physics_dt = float(self.model.opt.timestep)
        wp.init()
        self._wp_device = wp.device_from_torch(self.device)
        self._stream = self._capture_stream = None  # the CPU has no streams
        self._graphs = True
        if self.device.type == "cuda":
            # the step runs on torch's current stream (ordered with the task's torch ops); CUDA cannot capture
            # that stream when it is the legacy default one, so the graph is captured on a stream of Warp's
            self._stream = wp.stream_from_torch(torch.cuda.current_stream(self.device))
            self._capture_stream = wp.Stream(self._wp_device)
            # mjw.step allocates temporaries, which a CUDA graph capture allows from Warp's memory pool only
            if not wp.is_mempool_enabled(self._wp_device) and wp.is_mempool_supported(self._wp_device):
                wp.set_mempool_enabled(self._wp_device, True)
            self._graphs = wp.is_mempool_enabled(self._wp_device)
            if not self._graphs:
                warnings.warn(f"{self._wp_device} has no CUDA memory pool: MuJoCo Warp steps without graph capture "
                              "(slower)", stacklevel=2)
        m = self.model
        data = mujoco.MjData(m)
        mujoco.mj_forward(m, data)
        with wp.ScopedDevice(self._wp_device):
            self.mw = mjw.put_model(m, batch_sizes={f: num_envs for f in BATCHED if getattr(m, f).size})
            # like C MuJoCo, stop at the model's solver iteration limits quietly; buffer overflows still warn
            self.mw.opt.warn_overflow &= ~(mjw.OverflowType.ITERATIONS | mjw.OverflowType.LS_ITERATIONS)
            self.dw = mjw.put_data(m, data, nworld=num_envs, nconmax=NCONMAX, njmax=NJMAX)
            self._hist = wp.zeros((num_envs, decimation, m.nsensordata), dtype=float)
        wp.synchronize_device(self._wp_device)  # the uploads are done before torch's stream touches the arrays
        d = self.dw
        self.qpos, self.qvel, self.time = wp.to_torch(d.qpos), wp.to_torch(d.qvel), wp.to_torch(d.time)
        self._ctrl, self._warmstart = wp.to_torch(d.ctrl), wp.to_torch(d.qacc_warmstart)
        self._sens_t = wp.to_torch(self._hist)
        self._index_sensors()
        self.diverged = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        self._num_diverged = torch.zeros((), dtype=torch.long, device=self.device)
        self._graph = None
        self._steps = 0
        self._replay: mjw.Data | None = None
        self._replay_graph = None

    @property
    def num_diverged(self) -> int:
        return int(self._num_diverged)

    # ---- stepping ----------------------------------------------------------------------------------------
    def _substeps(self, data: mjw.Data, record: bool = True) -> None:
        for i in range(self.decimation):
            mjw.step(self.mw, data)
            if record:
                wp.launch(_record, dim=(self.num_envs, self.model.nsensordata), inputs=[data.sensordata, i],
                          outputs=[self._hist])

    def _scope(self, capture: bool = False):
        """Warp launches go to this backend's device and, on a GPU, to torch's stream (ordered with torch's ops),
        or while capturing to the capture stream."""
        stream = self._capture_stream if capture else self._stream
        if stream is None:
            return wp.ScopedDevice(self._wp_device)
        return wp.ScopedStream(stream, sync_enter=False)

    def _capture(self, data: mjw.Data, record: bool = True):
        """The substeps recorded as one graph (not run): a CUDA graph, captured on a stream of Warp's and replayed
        on torch's; on the CPU, Warp's recorded launch list, replayed without Python's per-kernel overhead."""
        with self._scope(capture=True), wp.ScopedCapture(self._wp_device, stream=self._capture_stream) as cap:
            self._substeps(data, record)
        return cap.graph

    def _launch(self) -> None:
        """The substeps of all worlds: eagerly the first time (Warp compiles and loads its kernels), then as the
        graph captured on the second step. Model fields and state are written in place, so the graph stays valid
        across resets and randomization."""
        if self._steps == 0 or not self._graphs:
            with self._scope():
                self._substeps(self.dw)
            return
        if self._graph is None:
            self._graph = self._capture(self.dw)
        wp.capture_launch(self._graph, stream=self._stream)

    def step(self, ctrl: torch.Tensor | np.ndarray) -> None:
        """Hold `ctrl` (N, nu) for `decimation` substeps in every world. Diverged worlds (non-finite state or a
        speed above max_qvel) are flagged in `self.diverged` and zeroed; the caller resets them."""
        self._ctrl.copy_(torch.as_tensor(ctrl, device=self.device))
        if self._replay is not None:
            for dst, src in self._replay_io:
                dst.copy_(src)
        self._launch()
        self._steps += 1
        speed = torch.nan_to_num(self.qvel.abs(), nan=torch.inf).amax(dim=1)
        bad = ~torch.isfinite(self.qpos).all(dim=1) | (speed > self.max_qvel)
        self.diverged = bad
        self._num_diverged += bad.sum()
        for t in (self.qpos, self.qvel, self._warmstart):
            t.masked_fill_(bad[:, None], 0.0)
        self._sens_t.masked_fill_(bad[:, None, None], 0.0)

    def reset(self, env_ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor) -> None:
        """Set the state of worlds `env_ids` (time to 0, the rest of the state to `qpos`, `qvel`)."""
        ids = env_ids.to(self.device)
        self.qpos[ids] = qpos.to(self.qpos)
        self.qvel[ids] = qvel.to(self.qvel)
        self.time[ids] = 0.0
        self._warmstart[ids] = 0.0
        self._sens_t[ids] = 0.0

    def set_qvel(self, qvel: torch.Tensor) -> None:
        self.qvel.copy_(qvel)

    def keep_inputs(self, on: bool = True) -> None:
        """Keep a copy of the state each step starts from, for `replay_last_step`."""
        if on and self._replay is None:
            data = mujoco.MjData(self.model)
            with wp.ScopedDevice(self._wp_device):
                self._replay = mjw.put_data(self.model, data, nworld=self.num_envs, nconmax=NCONMAX, njmax=NJMAX)
            wp.synchronize_device(self._wp_device)
            self._replay_io = [(wp.to_torch(getattr(self._replay, name)), wp.to_torch(getattr(self.dw, name)))
                               for name in ("qpos", "qvel", "time", "ctrl", "qacc_warmstart")]
            self._replay_graph = None
        elif not on:
            self._replay = self._replay_graph = None

    def replay_last_step(self) -> float:
        """The ceiling: the last step's input stepped again by bare MuJoCo Warp (same model, worlds and substeps,
        no task logic; a captured graph, as the step uses) into a scratch Data. Returns its seconds."""
        if self._replay_graph is None and self._graphs:
            self._replay_graph = self._capture(self._replay, record=False)
        wp.synchronize_device(self._wp_device)
        start = time.perf_counter()
        if self._replay_graph is None:
            with self._scope():
                self._substeps(self._replay, record=False)
        else:
            wp.capture_launch(self._replay_graph, stream=self._stream)
        wp.synchronize_device(self._wp_device)
        return time.perf_counter() - start

    # ---- per-world model parameters ------------------------------------------------------------------------
    def _field(self, name: str) -> torch.Tensor:
        return wp.to_torch(getattr(self.mw, name))

    def _values(self, values) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values, dtype=np.float32), device=self.device)

    def set_geom_friction(self, geom: str, values: np.ndarray) -> None:
        """Sliding friction of `geom`, one value per world."""
        self._field("geom_friction")[:, self.model.geom(geom).id, 0] = self._values(values)

    def set_body_mass(self, body: str, values: np.ndarray) -> None:
        """Mass of `body`, one value per world (inertia scaled with it; derived constants recomputed)."""
        bid = self.model.body(body).id
        mass = self._values(values)
        self._field("body_mass")[:, bid] = mass
        inertia0 = torch.as_tensor(self.model.body_inertia[bid], dtype=torch.float32, device=self.device)
        self._field("body_inertia")[:, bid] = inertia0 * (mass[:, None] / float(self.model.body_mass[bid]))
        with self._scope():
            mjw.set_const(self.mw, self.dw)

    def set_pd_gains(self, kp: np.ndarray, kd: np.ndarray, force_limit: np.ndarray,
                     strength: np.ndarray | None = None, kd_strength: np.ndarray | None = None) -> None:
        """PD gains and torque limits per actuator (nu,), scaled per world by `strength` (N,) if given (the damping
        by `kd_strength` when given): tau = strength kp (target - q) - kd_strength kd qdot, clipped."""
        kp, kd, limit = self._values(kp), self._values(kd), self._values(force_limit)
        s = self._values(np.ones(self.num_envs) if strength is None else strength)[:, None]
        sd = s if kd_strength is None else self._values(kd_strength)[:, None]
        gain, bias, frange = self._field("actuator_gainprm"), self._field("actuator_biasprm"), \
            self._field("actuator_forcerange")
        gain[:, :, 0] = s * kp
        bias[:, :, 1] = -s * kp
        bias[:, :, 2] = -sd * kd
        frange[:, :, 0], frange[:, :, 1] = -limit, limit
        wp.to_torch(self.mw.actuator_forcelimited)[:] = True
        self.model.actuator_forcelimited[:] = 1

    def world_model(self, i: int) -> mujoco.MjModel:
        """A host MjModel with world `i`'s friction, masses and gains."""
        model = copy.copy(self.model)
        for name in BATCHED:
            if getattr(model, name).size:
                getattr(model, name)[:] = self._field(name)[i].cpu().numpy().reshape(getattr(model, name).shape)
        return model

    def state_dict(self) -> dict:
        """The worlds' physics state on the CPU (models are rebuilt from the seed, not saved)."""
        def copy(t: torch.Tensor) -> torch.Tensor:
            return t.to("cpu", copy=True)  # a copy even on the CPU, where the views would keep changing

        return {"qpos": copy(self.qpos), "qvel": copy(self.qvel), "time": copy(self.time),
                "qacc_warmstart": copy(self._warmstart), "sensordata": copy(self._sens_t),
                "num_diverged": self.num_diverged}

    def load_state_dict(self, state: dict) -> None:
        if "qpos" not in state or tuple(state["qpos"].shape) != tuple(self.qpos.shape):
            got = tuple(state["qpos"].shape) if "qpos" in state else "a checkpoint of another backend"
            raise ValueError(f"backend state: expected qpos of shape {tuple(self.qpos.shape)}, got {got}"
                             " (a different num_envs, model or backend?)")
        if tuple(state["sensordata"].shape) != tuple(self._sens_t.shape):
            raise ValueError(f"backend state: expected sensor data of shape {tuple(self._sens_t.shape)}, got "
                             f"{tuple(state['sensordata'].shape)} (a checkpoint of a model with other sensors?)")
        for t, key in ((self.qpos, "qpos"), (self.qvel, "qvel"), (self.time, "time"),
                       (self._warmstart, "qacc_warmstart"), (self._sens_t, "sensordata")):
            t.copy_(state[key])
        self._num_diverged.fill_(int(state["num_diverged"]))

    def close(self) -> None:
        self._graph = self._replay_graph = None
        self._replay = None
