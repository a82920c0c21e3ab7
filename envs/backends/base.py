"""What every simulation backend gives the tasks: N worlds of one MJCF model, stepped together, state as torch tensors.

Tasks (envs/locomotion, envs/manipulation) only use the members below, so a backend that has them runs every task.
Indices and layouts are MuJoCo's, taken from the host `model` (the MJCF the task named): `qpos` (N, nq) and `qvel`
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


def load_model(model_path: str | Path, num_envs: int, decimation: int, timestep: float | None = None,
               opt: dict | None = None) -> tuple[Path, mujoco.MjModel]:
    """The sizes every backend checks, and the MJCF as the host model with the task's timestep and MjOption
    overrides (e.g. {"iterations": 20}) applied: (resolved path, model)."""
    from pathlib import Path

    import mujoco

    if num_envs < 1:
        raise ValueError(f"num_envs: must be >= 1, got {num_envs}")
    if decimation < 1:
        raise ValueError(f"decimation: must be >= 1, got {decimation}")
    path = Path(model_path).resolve()
    model = mujoco.MjModel.from_xml_path(str(path))
    if timestep is not None:
        model.opt.timestep = timestep
    for key, value in (opt or {}).items():
        setattr(model.opt, key, value)
    return path, model


class Backend(Protocol):
    name: str
    model: mujoco.MjModel  # host model: names, sizes, ranges, defaults
    model_path: Path
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

    def step(self, ctrl: torch.Tensor) -> None:
        """Hold `ctrl` (N, nu): actuator inputs, here joint position targets, for `decimation` substeps."""

    def reset(self, env_ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor) -> None:
        """Worlds `env_ids` start again from `qpos`, `qvel` (their time set to 0)."""

    def set_qvel(self, qvel: torch.Tensor) -> None:
        """Overwrite the velocity of every world (pushes)."""

    def set_geom_friction(self, geom: str, values: np.ndarray) -> None: ...

    def set_body_mass(self, body: str, values: np.ndarray) -> None: ...

    def set_pd_gains(self, kp: np.ndarray, kd: np.ndarray, force_limit: np.ndarray,
                     strength: np.ndarray | None = None) -> None: ...

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
