"""What every simulation backend gives the tasks: N worlds of one MJCF model, stepped together, state as torch tensors.

Tasks (envs/locomotion, envs/manipulation) only use the members below, so a backend that has them runs every task.
Indices and layouts are MuJoCo's, taken from the host `model` (the MJCF file or the composed `mujoco.MjSpec` the task
gave): `qpos` (N, nq) and `qvel`
(N, nv) in MuJoCo's order (a free joint's qpos is position + quaternion w, x, y, z; its qvel is the linear velocity in
the world frame and the angular velocity in the body frame). Tensors live on `device`; `qpos`, `qvel`, `time` are
read-only views of the current state (write through `reset` and `set_qvel`). Sensors are the MJCF's `<sensor>`
entries by name, (N, dim) at the last substep, (N, decimation, dim) over the last step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # importing the backends package must stay light: `pgr` picks MUJOCO_GL before mujoco loads,
    # and the robot-side deploy runtime has no torch
    from pathlib import Path

    import mujoco
    import numpy as np
    import torch


def load_model(model: str | Path | mujoco.MjSpec, num_envs: int, decimation: int, timestep: float | None = None,
               opt: dict | None = None, model_path: str | Path | None = None) -> tuple[Path, mujoco.MjModel]:
    """The sizes every backend checks, and the host model with the task's timestep and MjOption overrides (e.g.
    {"iterations": 20}) applied: (path naming the model, model). `model` is an MJCF file or a composed
    `mujoco.MjSpec` (envs/scene.py), which `model_path` then names (default: the spec's model name)."""
    from pathlib import Path

    import mujoco

    if num_envs < 1:
        raise ValueError(f"num_envs: must be >= 1, got {num_envs}")
    if decimation < 1:
        raise ValueError(f"decimation: must be >= 1, got {decimation}")
    if isinstance(model, mujoco.MjSpec):
        path = Path(model_path if model_path is not None else f"{model.modelname}.xml").resolve()
        compiled = model.compile()
    else:
        path = Path(model).resolve()
        compiled = mujoco.MjModel.from_xml_path(str(path))
    if timestep is not None:
        compiled.opt.timestep = timestep
    for key, value in (opt or {}).items():
        setattr(compiled.opt, key, value)
    return path, compiled


def mjcf_file(model: str | Path | mujoco.MjSpec) -> Path:
    """An MJCF file of `model`, for simulators that read files: the file itself, or a composed spec written to a
    temporary folder (its mesh and texture folders made absolute, so the file loads from there)."""
    import tempfile
    from pathlib import Path

    import mujoco

    if not isinstance(model, mujoco.MjSpec):
        return Path(model).resolve()
    base = Path(model.modelfiledir or ".")
    for attr in ("meshdir", "texturedir"):
        folder = Path(getattr(model, attr) or ".")
        setattr(model, attr, str(folder if folder.is_absolute() else (base / folder).resolve()))
    model.compile()
    path = Path(tempfile.mkdtemp(prefix="pgr_scene_")) / f"{model.modelname or 'scene'}.xml"
    path.write_text(model.to_xml())
    return path


class Backend(Protocol):
    name: str
    model: mujoco.MjModel  # host model: names, sizes, ranges, defaults
    model_path: Path  # the MJCF file, or for a composed scene its robot's MJCF
    num_envs: int
    decimation: int  # physics substeps per `step`
    physics_dt: float  # seconds per substep
    device: torch.device
    qpos: torch.Tensor  # (N, nq)
    qvel: torch.Tensor  # (N, nv)
    time: torch.Tensor  # (N,) seconds since the world's last reset
    diverged: torch.Tensor  # (N,) bool: the world's state went non-finite or too fast in the last step

    @property
    def num_diverged(self) -> int: ...  # worlds flagged as diverged since construction

    @property
    def actuated_joint_names(self) -> list[str]: ...

    def joint_qpos_index(self, names: list[str]) -> list[int]: ...

    def joint_dof_index(self, names: list[str]) -> list[int]: ...

    def sensor_names(self) -> list[str]: ...

    def sensor(self, name: str) -> torch.Tensor: ...

    def sensor_history(self, name: str) -> torch.Tensor: ...

    @property
    def sensordata(self) -> torch.Tensor: ...  # (N, nsensordata) at the last substep, MuJoCo's layout

    def step(self, ctrl: torch.Tensor) -> None:
        """Hold `ctrl` (N, nu): actuator inputs, here joint position targets, for `decimation` substeps."""

    def reset(self, env_ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor) -> None:
        """Worlds `env_ids` start again from `qpos`, `qvel` (their time set to 0)."""

    def set_qvel(self, qvel: torch.Tensor) -> None:
        """Overwrite the velocity of every world (pushes)."""

    def set_geom_friction(self, geom: str, values: np.ndarray) -> None: ...

    def set_body_mass(self, body: str, values: np.ndarray) -> None: ...

    def set_pd_gains(self, kp: np.ndarray, kd: np.ndarray, force_limit: np.ndarray,
                     strength: np.ndarray | None = None, kd_strength: np.ndarray | None = None) -> None: ...

    def world_model(self, i: int) -> mujoco.MjModel:
        """A host MjModel with world `i`'s parameters, for rendering."""

    def keep_inputs(self, on: bool = True) -> None: ...

    def replay_last_step(self) -> float: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def close(self) -> None: ...


class MjcfNames:
    """Names, indices and sensors of the host `model`, for backends that keep every substep's MuJoCo sensordata in
    `self._sens_t` (N, decimation, nsensordata)."""

    model: mujoco.MjModel
    _sens_t: torch.Tensor
    _sensor_slices: dict[str, slice]

    def _index_sensors(self) -> None:
        m = self.model
        self._sensor_slices = {m.sensor(i).name: slice(int(m.sensor_adr[i]), int(m.sensor_adr[i] + m.sensor_dim[i]))
                               for i in range(m.nsensor)}

    @property
    def actuated_joint_names(self) -> list[str]:
        m = self.model
        return [m.joint(int(m.actuator_trnid[i, 0])).name for i in range(m.nu)]

    def joint_qpos_index(self, names: list[str]) -> list[int]:
        return [int(self.model.joint(n).qposadr[0]) for n in names]

    def joint_dof_index(self, names: list[str]) -> list[int]:
        return [int(self.model.joint(n).dofadr[0]) for n in names]

    def sensor_names(self) -> list[str]:
        return list(self._sensor_slices)

    def sensor(self, name: str) -> torch.Tensor:
        """Sensor `name` at the last substep of the last step: a (N, dim) view."""
        return self._sens_t[:, -1, self._sensor_slices[name]]

    def sensor_history(self, name: str) -> torch.Tensor:
        """Sensor `name` at every substep of the last step: a (N, decimation, dim) view."""
        return self._sens_t[:, :, self._sensor_slices[name]]

    @property
    def sensordata(self) -> torch.Tensor:
        """All sensors at the last substep of the last step: a (N, nsensordata) view (columns: `model.sensor_adr`)."""
        return self._sens_t[:, -1]
