"""Quadruped velocity tracking on flat ground (task `quadruped-flat`), batched over N worlds.

The backend only steps physics and exposes state; this class turns that state into observations, shaped rewards,
CaT termination probabilities and terminations, samples commands, randomizes, and auto-resets finished worlds
(the returned observation of a finished world is the first of its next episode).
"""

from __future__ import annotations

import re

import numpy as np

import torch

from .. import rotations
from ..assets import resolve as resolve_asset
from ..backends import make_backend
from ..cat import ConstraintsAsTerminations
from ..config import ConfigError
from . import constraints as constraint_terms
from . import observations as obs_terms
from . import rewards as reward_terms
from .config import QuadrupedFlatCfg
from .state import LocoState


def joint_table(table: dict[str, float], joints: list[str], where: str) -> list[float]:
    """Resolve a {regex: value} table to one value per joint, in `joints` order."""
    values: list[float | None] = [None] * len(joints)
    for pattern, value in table.items():
        try:
            hits = [i for i, j in enumerate(joints) if re.fullmatch(pattern, j)]
        except re.error as exc:
            raise ConfigError(f"{where}: {pattern!r} is not a valid pattern ({exc})") from None
        if not hits:
            raise ConfigError(f"{where}: {pattern!r} matches no joint in the model (joints: {', '.join(joints)})")
        for i in hits:
            if values[i] is not None:
                raise ConfigError(f"{where}: joint {joints[i]} is matched by more than one pattern")
            values[i] = value
    missing = [j for j, v in zip(joints, values) if v is None]
    if missing:
        raise ConfigError(f"{where}: no value for joint(s) {', '.join(missing)}")
    return values  # type: ignore[return-value]


class QuadrupedFlatEnv:
    task = "quadruped-flat"

    def __init__(self, cfg: QuadrupedFlatCfg | None = None, num_envs: int = 1024, device: str = "cpu", seed: int = 0,
                 backend: str = "mujoco"):
        cfg = cfg or QuadrupedFlatCfg()
        if num_envs < 1:
            raise ConfigError(f"num_envs: must be >= 1, got {num_envs}")
        self.cfg, self.num_envs, self.device = cfg, num_envs, torch.device(device)
        self.sim = make_backend(backend, resolve_asset(cfg.robot.mjcf), num_envs, cfg.sim.decimation, device=device,
                                nthread=cfg.sim.nthread, timestep=cfg.sim.dt, max_qvel=cfg.sim.max_qvel,
                                opt={"iterations": cfg.sim.solver_iterations} if cfg.sim.solver_iterations else None)
        # after the backend, which checks that `device` can run here, before anything uses the device
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self.dt = cfg.sim.dt * cfg.sim.decimation
        self.max_episode_length = int(round(cfg.sim.episode_length_s / self.dt))
        self._setup_robot()
        self._setup_terms()
        self._allocate_buffers()
        if cfg.randomization.enabled:
            self._randomize_models()
        self.reset()

    # ---- set-up ------------------------------------------------------------------------------------------------
    def _setup_robot(self) -> None:
        r, sim = self.cfg.robot, self.sim
        self.joint_names = sim.actuated_joint_names
        self.num_actions = len(self.joint_names)
        f = dict(dtype=torch.float32, device=self.device)
        self.default_joint_pos = torch.tensor(joint_table(r.default_joint_pos, self.joint_names,
                                                          "task.robot.default_joint_pos"), **f)
        self.kp = joint_table(r.kp, self.joint_names, "task.robot.kp")
        self.kd = joint_table(r.kd, self.joint_names, "task.robot.kd")
        self.torque_limits = torch.tensor(joint_table(r.torque_limits, self.joint_names,
                                                      "task.robot.torque_limits"), **f)
        self.velocity_limits = torch.tensor(joint_table(r.velocity_limits, self.joint_names,
                                                        "task.robot.velocity_limits"), **f)
        sim.set_pd_gains(self.kp, self.kd, self.torque_limits.cpu().numpy())
        # index tensors on the backend's device: a CPU index into GPU state would be copied over every step
        self._qpos_idx = torch.tensor(sim.joint_qpos_index(self.joint_names), device=sim.device)
        self._dof_idx = torch.tensor(sim.joint_dof_index(self.joint_names), device=sim.device)
        self._gravity = torch.tensor([0.0, 0.0, -1.0], **f).expand(self.num_envs, 3)
        model = sim.model
        self.joint_pos_limits = torch.tensor(np.array([model.joint(j).range for j in self.joint_names]), **f)

        def body_sensor(name: str, where: str) -> str:
            sensor = f"{name}_force"
            if sensor not in sim.sensor_names():
                raise ConfigError(f"{where}: {name!r} has no contact sensor {sensor!r} in {sim.model_path.name}")
            return sensor

        self._foot_sensors = [body_sensor(n, "task.robot.feet") for n in r.feet]
        self._foot_pos_sensors = [f"{n}_pos" for n in r.feet]
        self._foot_vel_sensors = [f"{n}_vel" for n in r.feet]
        missing = [s for s in self._foot_pos_sensors + self._foot_vel_sensors if s not in sim.sensor_names()]
        if missing:
            raise ConfigError(f"task.robot.feet: {sim.model_path.name} lacks foot sensors {missing}")
        self._thigh_sensors = [body_sensor(n, "task.robot.thighs") for n in r.thighs]
        self._calf_sensors = [body_sensor(n, "task.robot.calves") for n in r.calves]
        self._trunk_sensor = body_sensor(r.base_body, "task.robot.base_body")
        for where, name, kind in (("task.robot.base_body", r.base_body, "body"),
                                  ("task.robot.floor_geom", r.floor_geom, "geom")):
            try:
                getattr(model, kind)(name)
            except KeyError:
                raise ConfigError(f"{where}: no {kind} {name!r} in {sim.model_path.name}") from None
        self._torque_sensors = [f"{model.actuator(i).name}_torque" for i in range(model.nu)]
        missing = [s for s in self._torque_sensors if s not in sim.sensor_names()]
        if missing:
            raise ConfigError(f"task.robot.mjcf: {sim.model_path.name} lacks actuatorfrc sensors {missing}")

    def _setup_terms(self) -> None:
        oc, cc = self.cfg.observations, self.cfg.constraints
        self.observation_layout: dict[str, list[tuple[str, int]]] = {}
        self._obs_scale: dict[str, torch.Tensor] = {}
        self._obs_clip: dict[str, torch.Tensor] = {}
        for group in ("policy", "critic"):
            names = getattr(oc, group)
            for name in names:
                if not hasattr(obs_terms, name) or not hasattr(oc, name):
                    raise ConfigError(f"task.observations.{group}: unknown term {name!r}")
            self.observation_layout[group] = [(n, 0) for n in names]
        self.reward_weights = {n: getattr(self.cfg.rewards, n) * self.dt for n in reward_terms.TERMS
                               if getattr(self.cfg.rewards, n) != 0.0}
        enabled = [n for n in constraint_terms.TERMS if getattr(cc, n).enabled]
        self.cat = ConstraintsAsTerminations({n: getattr(cc, n).limit for n in enabled},
                                             {n: getattr(cc, n).p_max for n in enabled}, tau=cc.tau)

    def _allocate_buffers(self) -> None:
        n, a, f = self.num_envs, self.num_actions, dict(dtype=torch.float32, device=self.device)
        self.actions = torch.zeros(n, a, **f)
        self.last_actions = torch.zeros(n, a, **f)
        self.last_joint_vel = torch.zeros(n, a, **f)
        self.commands = torch.zeros(n, 3, **f)
        self.episode_length = torch.zeros(n, dtype=torch.long, device=self.device)
        self.feet_air_time = torch.zeros(n, len(self._foot_sensors), **f)
        self.last_contact = torch.zeros(n, len(self._foot_sensors), dtype=torch.bool, device=self.device)
        self.episode_sums = {k: torch.zeros(n, **f) for k in self.reward_weights}
        self.common_step_counter = 0
        rc = self.cfg.randomization
        self.push_interval = int(round(rc.push_interval_s / self.dt)) if rc.enabled and rc.push_interval_s > 0 else 0
        self.resample_interval = max(1, int(round(self.cfg.commands.resampling_time_s / self.dt)))
        self.state = self._read_state()
        for group, terms in self.observation_layout.items():
            dims = [getattr(obs_terms, name)(self.state).shape[1] for name, _ in terms]
            self.observation_layout[group] = [(name, d) for (name, _), d in zip(terms, dims)]
            scales = []
            for (name, _), d in zip(terms, dims):
                s = torch.as_tensor(getattr(self.cfg.observations, name).scale, **f).flatten()
                if s.numel() not in (1, d):
                    raise ConfigError(
                        f"task.observations.{name}.scale: expected 1 or {d} values, got {s.numel()}")
                scales.append(s.expand(d))
            self._obs_scale[group] = torch.cat(scales)
            self._obs_clip[group] = torch.cat([torch.full((d,), getattr(self.cfg.observations, name).clip, **f)
                                               for (name, _), d in zip(terms, dims)])
        self.num_obs = {g: sum(d for _, d in t) for g, t in self.observation_layout.items()}

    def _uniform(self, lo: float, hi: float, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.gen, device=self.device) * (hi - lo) + lo

    def _randomize_models(self) -> None:
        """Per-world friction, added base mass and motor strength (sampled once, at start-up)."""
        rc, n, sim = self.cfg.randomization, self.num_envs, self.sim
        sim.set_geom_friction(self.cfg.robot.floor_geom, self._uniform(*rc.friction, n).cpu().numpy())
        base_mass = float(sim.model.body(self.cfg.robot.base_body).mass[0])
        sim.set_body_mass(self.cfg.robot.base_body, base_mass + self._uniform(*rc.added_base_mass, n).cpu().numpy())
        sim.set_pd_gains(self.kp, self.kd, self.torque_limits.cpu().numpy(),
                         strength=self._uniform(*rc.motor_strength, n).cpu().numpy())

    # ---- state ---------------------------------------------------------------------------------------------
    def _sensors(self, names: list[str]) -> torch.Tensor:
        """Sensors `names` of equal dim, stacked: (N, len(names), dim)."""
        return torch.stack([self.sim.sensor(s) for s in names], dim=1).to(self.device, torch.float32)

    def _read_state(self, joint_acc: torch.Tensor | None = None) -> LocoState:
        """The state from the backend; joint_acc (a finite difference the caller owns) defaults to zero."""
        sim, dev = self.sim, self.device
        qpos = sim.qpos.to(dev, torch.float32)
        qvel = sim.qvel.to(dev, torch.float32)
        quat = qpos[:, 3:7]
        return LocoState(
            dt=self.dt, action_scale=self.cfg.robot.action_scale, base_pos=qpos[:, :3], base_quat=quat,
            base_lin_vel=rotations.rotate_inverse(quat, qvel[:, :3]), base_ang_vel=qvel[:, 3:6],
            projected_gravity=rotations.rotate_inverse(quat, self._gravity),
            joint_pos=qpos[:, self._qpos_idx], joint_vel=qvel[:, self._dof_idx],
            joint_acc=torch.zeros_like(self.actions) if joint_acc is None else joint_acc,
            torques=self._sensors(self._torque_sensors)[:, :, 0],
            actions=self.actions, last_actions=self.last_actions, command=self.commands,
            foot_forces=self._sensors(self._foot_sensors), foot_pos=self._sensors(self._foot_pos_sensors),
            foot_vel=self._sensors(self._foot_vel_sensors), trunk_force=self._sensors([self._trunk_sensor])[:, 0],
            thigh_forces=self._sensors(self._thigh_sensors), calf_forces=self._sensors(self._calf_sensors),
            feet_air_time=torch.zeros_like(self.feet_air_time), first_contact=torch.zeros_like(self.last_contact),
            default_joint_pos=self.default_joint_pos, joint_pos_limits=self.joint_pos_limits,
            torque_limits=self.torque_limits, velocity_limits=self.velocity_limits)

    def observations(self) -> dict[str, torch.Tensor]:
        out = {}
        oc = self.cfg.observations
        for group, terms in self.observation_layout.items():
            parts = []
            for name, _ in terms:
                term, tc = getattr(obs_terms, name)(self.state), getattr(oc, name)
                if group == "policy" and oc.add_noise and tc.noise > 0:
                    term = term + (torch.rand(term.shape, generator=self.gen, device=self.device) * 2 - 1) * tc.noise
                parts.append(term)
            obs = torch.cat(parts, dim=1) * self._obs_scale[group]
            clip = self._obs_clip[group]
            out[group] = torch.maximum(torch.minimum(obs, clip), -clip)
        return out

    # ---- commands, resets, pushes ----------------------------------------------------------------------------
    def _resample_commands(self, ids: torch.Tensor) -> None:
        if len(ids) == 0:
            return
        c, n = self.cfg.commands, len(ids)
        cmd = torch.stack([self._uniform(*c.lin_vel_x, n), self._uniform(*c.lin_vel_y, n),
                           self._uniform(*c.ang_vel_yaw, n)], dim=1)
        cmd[:, :2] *= (cmd[:, :2].norm(dim=1, keepdim=True) >= c.small_to_zero)
        cmd *= (self._uniform(0.0, 1.0, n) >= c.standing_fraction)[:, None]
        self.commands[ids] = cmd

    def reset_idx(self, ids: torch.Tensor) -> None:
        if len(ids) == 0:
            return
        rc, n, sim = self.cfg.randomization, len(ids), self.sim
        f = dict(dtype=sim.qpos.dtype, device=sim.device)
        qpos, qvel = torch.zeros(n, sim.model.nq, **f), torch.zeros(n, sim.model.nv, **f)
        qpos[:, 2] = self.cfg.robot.init_height
        scale = self._uniform(*rc.init_joint_pos_scale, n, self.num_actions) if rc.enabled else 1.0
        joints = torch.clamp(self.default_joint_pos * scale, self.joint_pos_limits[:, 0], self.joint_pos_limits[:, 1])
        qpos[:, self._qpos_idx] = joints.to(qpos)
        yaw = self._uniform(-3.14159, 3.14159, n) if rc.enabled else torch.zeros(n, device=self.device)
        qpos[:, 3:7] = rotations.yaw_quat(yaw).to(qpos)
        if rc.enabled:
            qvel[:, :6] = self._uniform(-rc.init_base_vel, rc.init_base_vel, n, 6).to(qvel)
        sim.reset(ids.to(sim.device), qpos, qvel)
        self.actions[ids] = 0.0
        self.last_actions[ids] = 0.0
        self.last_joint_vel[ids] = 0.0
        self.feet_air_time[ids] = 0.0
        self.last_contact[ids] = False
        self.episode_length[ids] = 0
        self._resample_commands(ids)

    def reset(self) -> dict[str, torch.Tensor]:
        self.reset_idx(torch.arange(self.num_envs, device=self.device))
        self.state = self._read_state()
        return self.observations()

    # ---- step ------------------------------------------------------------------------------------------------
    def step(self, actions: torch.Tensor):
        if actions.shape != (self.num_envs, self.num_actions):
            raise ValueError(f"actions: expected shape ({self.num_envs}, {self.num_actions}), "
                             f"got {tuple(actions.shape)}")
        rc = self.cfg.robot
        self.last_actions = self.actions
        self.actions = torch.nan_to_num(actions.to(self.device, torch.float32)).clamp(-rc.action_clip, rc.action_clip)
        targets = self.default_joint_pos + self.actions * rc.action_scale
        self.sim.step(targets)
        diverged = self.sim.diverged.to(self.device)
        self.episode_length += 1
        self.common_step_counter += 1

        s = self.state = self._read_state()
        s.joint_acc = (s.joint_vel - self.last_joint_vel) / self.dt
        self.last_joint_vel = s.joint_vel

        # feet air time: paid at touchdown (contact filtered over two steps, as legged_gym does)
        contact = s.foot_contact
        filtered = contact | self.last_contact
        first = (self.feet_air_time > 0) & filtered
        self.feet_air_time += self.dt
        s.feet_air_time = self.feet_air_time * first
        s.first_contact = first
        self.feet_air_time *= ~filtered
        self.last_contact = contact

        terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        if self.cfg.terminations.base_contact:
            terminated |= s.trunk_force.norm(dim=1) > 1.0
        if self.cfg.terminations.upside_down:
            terminated |= s.projected_gravity[:, 2] > 0
        time_outs = self.episode_length >= self.max_episode_length

        reward = torch.zeros(self.num_envs, device=self.device)
        for name, weight in self.reward_weights.items():
            term = getattr(reward_terms, name)(s, self.cfg.rewards) * weight
            reward += term
            self.episode_sums[name] += term
        if self.cfg.rewards.only_positive:
            reward = reward.clamp(min=0.0)
        cat_delta, violation = self.cat({n: getattr(constraint_terms, n)(s) for n in self.cat.limits})
        cat_delta = torch.where(terminated, torch.ones_like(cat_delta), cat_delta)

        done = terminated | time_outs | diverged
        reward = torch.where(diverged, torch.zeros_like(reward), reward)
        info = {"time_outs": time_outs & ~terminated & ~diverged, "terminated": terminated, "cat_delta": cat_delta,
                "constraint_violation": violation, "num_diverged": diverged.sum()}
        done_ids = done.nonzero().flatten()
        if len(done_ids):
            info["episode"] = {k: v[done_ids].mean() for k, v in self.episode_sums.items()}
            info["episode"]["length"] = self.episode_length[done_ids].float().mean() * self.dt
            for v in self.episode_sums.values():
                v[done_ids] = 0.0
        self.reset_idx(done_ids)

        due = ((self.episode_length % self.resample_interval) == 0) & (self.episode_length > 0)
        self._resample_commands(due.nonzero().flatten())
        pushed = bool(self.push_interval) and self.common_step_counter % self.push_interval == 0
        if pushed:
            push_max = self.cfg.randomization.push_max_vel
            qvel = self.sim.qvel.clone()
            qvel[:, :2] += self._uniform(-push_max, push_max, self.num_envs, 2).to(qvel)
            self.sim.set_qvel(qvel)
        if len(done_ids) or pushed:
            self.state = self._read_state(s.joint_acc)
        return self.observations(), reward, done, info

    _STATE = ("actions", "last_actions", "last_joint_vel", "commands", "episode_length", "feet_air_time",
              "last_contact")

    def state_dict(self) -> dict:
        """Everything a resumed run needs to continue bit-identically (with the same config and seed)."""
        return {"sim": self.sim.state_dict(), "gen": self.gen.get_state(), "cat": self.cat.state_dict(),
                "common_step_counter": self.common_step_counter,
                "episode_sums": {k: v.clone() for k, v in self.episode_sums.items()},
                **{k: getattr(self, k).clone() for k in self._STATE}}

    def load_state_dict(self, state: dict) -> None:
        self.sim.load_state_dict(state["sim"])
        self.gen.set_state(state["gen"])
        self.cat.load_state_dict({k: v.to(self.device) for k, v in state["cat"].items()})
        self.common_step_counter = state["common_step_counter"]
        self.episode_sums = {k: v.to(self.device, copy=True) for k, v in state["episode_sums"].items()}
        for k in self._STATE:
            setattr(self, k, state[k].clone().to(self.device))
        self.state = self._read_state()

    def close(self) -> None:
        self.sim.close()
