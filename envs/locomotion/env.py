"""Legged velocity tracking on flat ground (task `quadruped-flat`), batched over N worlds, for any legged robot preset.

The scene (envs/scene.py) is composed from the robot preset; the backend only steps physics and exposes state; the
task is its config's term lists (observations, rewards, CaT constraints, terminations, events, commands, curricula:
plain functions in this package, picked by name) and the short `step` below: actions -> sim -> state -> terms ->
resets. Finished worlds auto-reset (the returned observation of a finished world is the first of its next episode).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

import numpy as np

import torch

from .. import rotations
from ..backends import make_backend
from ..cat import ConstraintsAsTerminations
from ..config import ConfigError
from ..scene import Scene, free_joint, legged_scene
from .. import terrains
from ..terrains import generate
from . import commands as command_terms
from . import symmetry
from .config import QuadrupedFlatCfg, functions
from .state import LocoState

UNLIMITED = 1e6  # the range (rad) given to a joint without limits


def bind(section: str, name: str, func: str, params: dict, fixed: int) -> Callable:
    """The term function `func` (default: `name`) of `section`'s module, or ``module:function``, with `params` bound;
    an unknown function or a parameter it does not take is a ConfigError naming the field."""
    where = f"task.{section}.{name}"
    ref = func or name
    module = {"observations": "observations", "rewards": "rewards", "constraints": "constraints",
              "terminations": "terminations", "randomization": "events", "curriculum": "curricula"}[section]
    if ":" in ref:
        mod, _, attr = ref.partition(":")
        try:
            fn = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"{where}.func: cannot import {ref!r} ({exc})") from None
    else:
        if ref not in functions(module):
            raise ConfigError(f"{where}{'.func' if func else ''}: unknown {section} term {ref!r} "
                              f"(known: {', '.join(functions(module))})")
        fn = getattr(importlib.import_module(f"{__package__}.{module}"), ref)
    signature = inspect.signature(fn)
    takes = list(signature.parameters)[fixed:]
    for key in params:
        if key not in takes:
            raise ConfigError(f"{where}.params.{key}: {ref} takes no such parameter "
                              f"(takes: {', '.join(takes) or 'none'})")
    missing = [p for p in takes if p not in params and signature.parameters[p].default is inspect.Parameter.empty]
    if missing:
        raise ConfigError(f"{where}.params: {ref} needs {', '.join(missing)}")
    return lambda *args: fn(*args, **params)


class LeggedEnv:
    task = "quadruped-flat"

    def __init__(self, cfg: QuadrupedFlatCfg | None = None, num_envs: int = 1024, device: str = "cpu", seed: int = 0,
                 backend: str = "mujoco"):
        cfg = cfg or QuadrupedFlatCfg()
        if num_envs < 1:
            raise ConfigError(f"num_envs: must be >= 1, got {num_envs}")
        self.cfg, self.num_envs, self.device = cfg, num_envs, torch.device(device)
        self.scene = self.build_scene(cfg)
        self.sim = make_backend(backend, self.scene.spec, num_envs, cfg.sim.decimation, device=device,
                                model_path=self.scene.path, nthread=cfg.sim.nthread, timestep=cfg.sim.dt,
                                max_qvel=cfg.sim.max_qvel, model_copies=cfg.sim.model_copies,
                                opt={"iterations": cfg.sim.solver_iterations} if cfg.sim.solver_iterations else None)
        # after the backend, which checks that `device` can run here, before anything uses the device
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self.dt = cfg.sim.dt * cfg.sim.decimation
        self.max_episode_length = int(round(cfg.sim.episode_length_s / self.dt))
        self._setup_robot()
        self._setup_terrain()
        self._setup_terms()
        self._allocate_buffers()
        self._seed = seed
        self._run_startup_events(lambda start: start == 0)
        self.reset()

    @staticmethod
    def build_scene(cfg: QuadrupedFlatCfg) -> Scene:
        """The task's scene: the robot preset on the configured ground, with a legged task's actuators and sensors."""
        terrain = generate(cfg.ground.terrain) if cfg.ground.type == "terrain" else None
        return legged_scene(cfg.robot, cfg.ground.type, cfg.ground.friction, terrain=terrain)

    # ---- set-up ------------------------------------------------------------------------------------------------
    def _setup_robot(self) -> None:
        r, sim, robot = self.cfg.robot, self.sim, self.scene.robot
        model = sim.model
        self.joint_names = list(robot.joints)
        self.num_actions = len(self.joint_names)
        f = dict(dtype=torch.float32, device=self.device)
        free = free_joint(model, r.base_body)
        if free is None:
            raise ConfigError(f"task.robot.floating_base: {self.task} needs a free-floating base, {r.base_body!r} "
                              f"is fixed (set floating_base: true)")
        self.base_qpos_adr = int(model.jnt_qposadr[free])
        self.base_dof_adr = int(model.jnt_dofadr[free])
        self.default_joint_pos = torch.tensor(robot.table("default_joint_pos"), **f)
        self.kp = [float(v or 0.0) for v in robot.table("kp", required=False)]
        self.kd = [float(v or 0.0) for v in robot.table("kd", required=False)]
        self.torque_limits = torch.tensor(robot.table("torque_limits"), **f)
        velocity = robot.table("velocity_limits", required="joint_vel" in self.cfg.constraints.terms
                               and self.cfg.constraints.terms["joint_vel"].enabled)
        self.velocity_limits = torch.tensor([np.inf if v is None else v for v in velocity], **f)
        if r.actuator == "position":
            sim.set_pd_gains(self.kp, self.kd, self.torque_limits.cpu().numpy())
        self.strength = torch.ones(self.num_envs, 1, **f)  # motor actuators: per-world torque scale
        # position servos: per-world factors on kp and kd (randomization events multiply them)
        self.kp_scale, self.kd_scale = torch.ones(self.num_envs, **f), torch.ones(self.num_envs, **f)
        # sim-to-real randomization the observations and servo see (events set them; zero = none)
        self.joint_pos_bias = torch.zeros(self.num_envs, self.num_actions, **f)  # encoder offsets (rad)
        self.gyro_bias = torch.zeros(self.num_envs, 3, **f)  # rad/s
        self.gravity_bias = torch.zeros(self.num_envs, 3, **f)  # added to the projected gravity
        self.latency: np.ndarray | None = None  # physics steps between the policy's output and the actuators
        # index tensors on the backend's device: a CPU index into GPU state would be copied over every step
        self.joint_qpos_index = torch.tensor(sim.joint_qpos_index(self.joint_names), device=sim.device)
        self.joint_dof_index = torch.tensor(sim.joint_dof_index(self.joint_names), device=sim.device)
        self._gravity = torch.tensor([0.0, 0.0, -1.0], **f).expand(self.num_envs, 3)
        ranges = np.array([model.joint(j).range if model.joint(j).limited[0] else [-UNLIMITED, UNLIMITED]
                           for j in self.joint_names])
        self.joint_pos_limits = torch.tensor(ranges, **f)
        # the joint angles every reset starts from: the default pose within the joint ranges
        self.reset_joint_pos = torch.clamp(self.default_joint_pos, self.joint_pos_limits[:, 0],
                                           self.joint_pos_limits[:, 1])

        # every sensor the state reads, gathered by one index per step; each group a slice of the gathered columns
        s, cols = self.scene, list[int]()

        def group(sensors: list[list[str]], dim: int = 3) -> tuple[slice, torch.Tensor | None, int]:
            """(columns, per-sensor group or None when every group is one sensor, number of groups) of groups of
            `dim`-d sensors whose values add up per group."""
            start, owner = len(cols), []
            for g, names in enumerate(sensors):
                for name in names:
                    adr = int(model.sensor(name).adr[0])
                    cols.extend(range(adr, adr + dim))
                    owner.append(g)
            summed = None if len(owner) == len(sensors) else torch.tensor(owner, device=self.device)
            return slice(start, len(cols)), summed, len(sensors)

        self._foot_force = group(s.foot_force)
        self._foot_pos = group([[n] for n in s.foot_pos])
        self._foot_vel = group([[n] for n in s.foot_vel])
        self._contact_groups = {role: group([s.body_force[b] for b in getattr(r, f"{role}_contacts")])
                                for role in ("undesired", "constrained", "termination")}
        self._torques = group([[n] for n in s.torque], dim=1)
        self._sensor_cols = torch.tensor(cols, dtype=torch.long, device=sim.device)

    def _setup_terrain(self) -> None:
        """On a generated terrain: its height map on the env's device, each world's tile (level, type) and origin."""
        self.terrain = self.scene.terrain
        self._ground_height = None
        if self.terrain is None:
            return
        t, f = self.terrain, dict(dtype=torch.float32, device=self.device)
        self.tile_origins = torch.tensor(t.origins, **f)  # (levels, types, 3)
        self.terrain_types = torch.arange(self.num_envs, device=self.device) % len(t.cfg.types)
        self.terrain_levels = torch.randint(0, min(t.cfg.max_init_level, t.cfg.levels - 1) + 1, (self.num_envs,),
                                            generator=self.gen,
                                            device=self.device)
        self.env_origins = self.tile_origins[self.terrain_levels, self.terrain_types]
        self._ground_height = terrains.HeightMap(t.heights, t.cfg.resolution, self.device)
        # an episode ends (a time-out, not a failure) within this margin (m) of the map's edge
        self._bounds = torch.tensor([1.0, 1.0, t.size[0] - 1.0, t.size[1] - 1.0], **f)

    def _setup_terms(self) -> None:
        cfg = self.cfg
        oc = cfg.observations
        self.observation_layout: dict[str, list[tuple[str, int]]] = {}
        self._obs_terms: dict[str, Callable] = {}
        for group in ("policy", "critic"):
            for name in getattr(oc, group):
                if name not in oc.terms:
                    raise ConfigError(f"task.observations.{group}: unknown term {name!r} (terms: "
                                      f"{', '.join(oc.terms)})")
                term = oc.terms[name]
                self._obs_terms[name] = bind("observations", name, term.func, term.params, 1)
            self.observation_layout[group] = [(n, 0) for n in getattr(oc, group)]
        self.reward_weights = {n: t.weight * self.dt for n, t in cfg.rewards.terms.items() if t.weight != 0.0}
        self._rewards = {n: bind("rewards", n, cfg.rewards.terms[n].func, cfg.rewards.terms[n].params, 1)
                         for n in self.reward_weights}
        cc = cfg.constraints
        enabled = {n: t for n, t in cc.terms.items() if t.enabled}
        self._constraints = {n: bind("constraints", n, t.func, t.params, 1) for n, t in enabled.items()}
        self.cat = ConstraintsAsTerminations({n: t.limit for n, t in enabled.items()},
                                             {n: t.p_max for n, t in enabled.items()}, tau=cc.tau,
                                             ramp_start=cc.p_max_ramp_start, ramp_steps=cc.p_max_ramp_steps)
        self._terminations = [bind("terminations", n, t.func, t.params, 1)
                              for n, t in cfg.terminations.terms.items() if t.enabled]
        rc = cfg.randomization
        fixed = {"startup": 1, "reset": 4, "interval": 1}
        # (start step, function) of each enabled event, by mode; startup events that start later run in `step`
        self._events: dict[str, list[tuple[int, Callable]]] = {mode: [] for mode in fixed}
        self._intervals: list[tuple[int, int, Callable]] = []
        for name, event in rc.terms.items():
            fn = bind("randomization", name, event.func, event.params, fixed[event.mode])
            if not (rc.enabled and event.enabled):
                continue
            if event.mode == "interval":
                steps = int(round(event.interval_s / self.dt))
                if steps > 0:
                    self._intervals.append((event.start_step, steps, fn))
            else:
                self._events[event.mode].append((event.start_step, fn))
        self._curricula = [bind("curriculum", n, t.func, t.params, 2)
                           for n, t in cfg.curriculum.terms.items() if t.enabled]
        if cfg.commands.func not in functions("commands"):
            raise ConfigError(f"task.commands.func: unknown command term {cfg.commands.func!r} "
                              f"(known: {', '.join(functions('commands'))})")
        self._command = getattr(command_terms, cfg.commands.func)
        self.command_ranges = {n: tuple(getattr(cfg.commands, n)) for n in command_terms.NAMES}

    def _allocate_buffers(self) -> None:
        n, a, f = self.num_envs, self.num_actions, dict(dtype=torch.float32, device=self.device)
        self.actions = torch.zeros(n, a, **f)
        self.last_actions = torch.zeros(n, a, **f)
        self.last_joint_vel = torch.zeros(n, a, **f)
        self.commands = torch.zeros(n, 3, **f)
        self.episode_length = torch.zeros(n, dtype=torch.long, device=self.device)
        self.feet_air_time = torch.zeros(n, len(self.cfg.robot.feet), **f)
        self.last_contact = torch.zeros(n, len(self.cfg.robot.feet), dtype=torch.bool, device=self.device)
        self.episode_sums = {k: torch.zeros(n, **f) for k in self.reward_weights}
        self.common_step_counter = 0
        self.resample_interval = max(1, int(round(self.cfg.commands.resampling_time_s / self.dt)))
        self.state = self._read_state()
        oc = self.cfg.observations
        self._obs_scale: dict[str, torch.Tensor] = {}
        self._obs_clip: dict[str, torch.Tensor] = {}
        for group, terms in self.observation_layout.items():
            dims = [self._obs_terms[name](self.state).shape[1] for name, _ in terms]
            self.observation_layout[group] = [(name, d) for (name, _), d in zip(terms, dims)]
            scales = []
            for (name, _), d in zip(terms, dims):
                s = torch.as_tensor(oc.terms[name].scale, **f).flatten()
                if s.numel() not in (1, d):
                    raise ConfigError(
                        f"task.observations.{name}.scale: expected 1 or {d} values, got {s.numel()}")
                scales.append(s.expand(d))
            self._obs_scale[group] = torch.cat(scales)
            self._obs_clip[group] = torch.cat([torch.full((d,), oc.terms[name].clip, **f)
                                               for (name, _), d in zip(terms, dims)])
        self.num_obs = {g: sum(d for _, d in t) for g, t in self.observation_layout.items()}

    def uniform(self, lo: float, hi: float, *shape: int) -> torch.Tensor:
        """Uniform random numbers in [lo, hi) from the env's generator, on its device."""
        return torch.rand(*shape, generator=self.gen, device=self.device) * (hi - lo) + lo

    def set_motor_strength(self, strength: torch.Tensor) -> None:
        """One factor per world on every actuator: kp and kd of position servos, the torque of motors."""
        if self.cfg.robot.actuator == "position":
            self.scale_gains(strength, strength)
        else:
            self.strength = strength.to(self.device, torch.float32).reshape(-1, 1)

    def scale_gains(self, kp_factor: torch.Tensor, kd_factor: torch.Tensor) -> None:
        """Multiply each world's servo gains kp and kd by factors (N,), on top of earlier scalings."""
        if self.cfg.robot.actuator != "position":
            raise ConfigError("task.randomization: PD gains belong to position servos; this robot's actuators are "
                              "torque motors (task.robot.actuator)")
        self.kp_scale = self.kp_scale * kp_factor.to(self.kp_scale)
        self.kd_scale = self.kd_scale * kd_factor.to(self.kd_scale)
        self.sim.set_pd_gains(self.kp, self.kd, self.torque_limits.cpu().numpy(), strength=self.kp_scale.cpu().numpy(),
                              kd_strength=self.kd_scale.cpu().numpy())

    # ---- state ---------------------------------------------------------------------------------------------
    def _group(self, values: torch.Tensor, reader: tuple[slice, torch.Tensor | None, int], dim: int = 3
               ) -> torch.Tensor:
        """(N, groups, dim): a group's columns of the gathered sensor values, summed per group where needed."""
        columns, owner, groups = reader
        x = values[:, columns].unflatten(1, (-1, dim))
        if owner is None:
            return x
        return torch.zeros(self.num_envs, groups, dim, device=self.device).index_add_(1, owner, x)

    def _read_state(self, joint_acc: torch.Tensor | None = None) -> LocoState:
        """The state from the backend; joint_acc (a finite difference the caller owns) defaults to zero."""
        sim, dev, r = self.sim, self.device, self.cfg.robot
        qpos = sim.qpos.to(dev, torch.float32)
        qvel = sim.qvel.to(dev, torch.float32)
        sens = torch.index_select(sim.sensordata, 1, self._sensor_cols).to(dev, torch.float32)
        a, v = self.base_qpos_adr, self.base_dof_adr
        quat = qpos[:, a + 3:a + 7]
        return LocoState(
            dt=self.dt, action_scale=r.action_scale, base_pos=qpos[:, a:a + 3], base_quat=quat,
            base_lin_vel=rotations.rotate_inverse(quat, qvel[:, v:v + 3]), base_ang_vel=qvel[:, v + 3:v + 6],
            projected_gravity=rotations.rotate_inverse(quat, self._gravity),
            joint_pos=qpos[:, self.joint_qpos_index], joint_vel=qvel[:, self.joint_dof_index],
            joint_acc=torch.zeros_like(self.actions) if joint_acc is None else joint_acc,
            torques=self._group(sens, self._torques, dim=1)[:, :, 0],
            actions=self.actions, last_actions=self.last_actions, command=self.commands,
            foot_forces=self._group(sens, self._foot_force), foot_pos=self._group(sens, self._foot_pos),
            foot_vel=self._group(sens, self._foot_vel),
            undesired_contact_forces=self._group(sens, self._contact_groups["undesired"]),
            constrained_contact_forces=self._group(sens, self._contact_groups["constrained"]),
            termination_contact_forces=self._group(sens, self._contact_groups["termination"]),
            feet_air_time=torch.zeros_like(self.feet_air_time), first_contact=torch.zeros_like(self.last_contact),
            default_joint_pos=self.default_joint_pos, joint_pos_limits=self.joint_pos_limits,
            torque_limits=self.torque_limits, velocity_limits=self.velocity_limits, ground_height=self._ground_height,
            joint_pos_bias=self.joint_pos_bias, gyro_bias=self.gyro_bias, gravity_bias=self.gravity_bias)

    def observations(self) -> dict[str, torch.Tensor]:
        out = {}
        oc = self.cfg.observations
        for group, terms in self.observation_layout.items():
            parts = []
            for name, _ in terms:
                term, noise = self._obs_terms[name](self.state), oc.terms[name].noise
                if group == "policy" and oc.add_noise and noise > 0:
                    term = term + (torch.rand(term.shape, generator=self.gen, device=self.device) * 2 - 1) * noise
                parts.append(term)
            obs = torch.cat(parts, dim=1) * self._obs_scale[group]
            clip = self._obs_clip[group]
            out[group] = torch.maximum(torch.minimum(obs, clip), -clip)
        return out

    # ---- commands and resets -------------------------------------------------------------------------------
    def _resample_commands(self, ids: torch.Tensor) -> None:
        if len(ids):
            self.commands[ids] = self._command(self, len(ids), self.cfg.commands)

    def reset_idx(self, ids: torch.Tensor) -> None:
        """Worlds `ids` start a new episode: the default pose at the reset height, heading +x, at rest, then the
        reset events (random pose, heading, velocity), and new commands."""
        if len(ids) == 0:
            return
        n, sim = len(ids), self.sim
        f = dict(dtype=sim.qpos.dtype, device=sim.device)
        qpos = torch.as_tensor(sim.model.qpos0, **f).repeat(n, 1)
        qvel = torch.zeros(n, sim.model.nv, **f)
        a = self.base_qpos_adr
        qpos[:, a:a + 3] = 0.0
        qpos[:, a + 2] = self.cfg.robot.init_height
        qpos[:, a + 3:a + 7] = torch.tensor([1.0, 0.0, 0.0, 0.0], **f)
        qpos[:, self.joint_qpos_index] = self.reset_joint_pos.to(qpos)
        if self.terrain is not None:  # at the world's tile, on its surface
            spread = self.terrain.cfg.spawn_offset
            qpos[:, a:a + 3] += self.env_origins[ids].to(qpos)
            qpos[:, a:a + 2] += self.uniform(-spread, spread, n, 2).to(qpos)
        for start, event in self._events["reset"]:
            if self.common_step_counter >= start:
                event(self, ids, qpos, qvel)
        sim.reset(ids.to(sim.device), qpos, qvel)
        for buffer in (self.actions, self.last_actions, self.last_joint_vel, self.feet_air_time):
            buffer[ids] = 0.0
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
        # actions -> sim
        self._apply(actions)
        diverged = self.sim.diverged.to(self.device)
        self.episode_length += 1
        self.common_step_counter += 1
        # state
        s = self.state = self._read_state()
        s.joint_acc = (s.joint_vel - self.last_joint_vel) / self.dt
        self.last_joint_vel = s.joint_vel
        self._feet_air_time(s)
        # terms
        terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        for term in self._terminations:
            terminated |= term(s)
        time_outs = self.episode_length >= self.max_episode_length
        if self.terrain is not None:  # near the terrain's edge: the episode ends there, as a time-out
            xy, b = s.base_pos[:, :2], self._bounds
            time_outs |= ((xy < b[:2]) | (xy > b[2:])).any(dim=1)
        reward = torch.zeros(self.num_envs, device=self.device)
        for name, weight in self.reward_weights.items():
            term = self._rewards[name](s) * weight
            reward += term
            self.episode_sums[name] += term
        if self.cfg.rewards.only_positive:
            reward = reward.clamp(min=0.0)
        cat_delta, violation = self.cat({n: c(s) for n, c in self._constraints.items()}, self.common_step_counter)
        cat_delta = torch.where(terminated, torch.ones_like(cat_delta), cat_delta)
        done = terminated | time_outs | diverged
        reward = torch.where(diverged, torch.zeros_like(reward), reward)
        info = {"time_outs": time_outs & ~terminated & ~diverged, "terminated": terminated, "cat_delta": cat_delta,
                "constraint_violation": violation, "num_diverged": diverged.sum()}
        # resets, commands, interval events
        done_ids = done.nonzero().flatten()
        if len(done_ids):
            info["episode"] = {k: v[done_ids].mean() for k, v in self.episode_sums.items()}
            info["episode"]["length"] = self.episode_length[done_ids].float().mean() * self.dt
            if self.terrain is not None:
                info["episode"]["terrain_level"] = self.terrain_levels.float().mean()
            for curriculum in self._curricula:
                curriculum(self, done_ids)
            for v in self.episode_sums.values():
                v[done_ids] = 0.0
        self.reset_idx(done_ids)
        due = ((self.episode_length % self.resample_interval) == 0) & (self.episode_length > 0)
        self._resample_commands(due.nonzero().flatten())
        fired = False
        for start, steps, event in self._intervals:
            if self.common_step_counter % steps == 0 and self.common_step_counter >= start:
                event(self)
                fired = True
        self._run_startup_events(lambda start: start == self.common_step_counter > 0)
        if len(done_ids) or fired:
            self.state = self._read_state(s.joint_acc)
        return self.observations(), reward, done, info

    def _apply(self, actions: torch.Tensor) -> None:
        """Actions -> actuator inputs, held for the decimation substeps: joint position targets (default pose +
        scaled action) for position servos, torques (scaled action, per-world strength) for motors."""
        r = self.cfg.robot
        self.last_actions = self.actions
        self.actions = torch.nan_to_num(actions.to(self.device, torch.float32)).clamp(-r.action_clip, r.action_clip)
        delay = {} if self.latency is None else {"delay": self.latency}
        if r.actuator == "position":  # the servo acts on the encoders' (biased) angles: it holds target - bias
            self.sim.step(self.default_joint_pos + self.actions * r.action_scale - self.joint_pos_bias, **delay)
        else:
            self.sim.step(self.actions * r.action_scale * self.strength, **delay)

    def _feet_air_time(self, s: LocoState) -> None:
        """Air time per foot, paid at touchdown (contact filtered over two steps, as legged_gym does)."""
        contact = s.foot_contact
        filtered = contact | self.last_contact
        first = (self.feet_air_time > 0) & filtered
        self.feet_air_time += self.dt
        s.feet_air_time = self.feet_air_time * first
        s.first_contact = first
        self.feet_air_time *= ~filtered
        self.last_contact = contact

    # ---- symmetry ------------------------------------------------------------------------------------------------
    def mirror(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """The left-right mirror image as (index, sign) per observation group and for the actions
        (`symmetry.apply(x, mirror["policy"])`), on the env's device. A ConfigError names what does not mirror: a
        robot that is not symmetric, a default pose that is not, a term of unknown kind."""
        if getattr(self, "_mirror", None) is None:
            model, r, where = self.sim.model, self.cfg.robot, "algorithm.symmetry"
            joints = symmetry.joint_mirror(model, r.base_body, self.joint_names, where)
            feet = symmetry.foot_mirror(model, r.base_body, self.scene.robot.foot_geoms, where)
            default = self.default_joint_pos.cpu().numpy()
            mirrored = default[joints[0]] * joints[1]
            if not np.allclose(mirrored, default, atol=1e-6):
                i = int(np.abs(mirrored - default).argmax())
                raise ConfigError(f"task.robot.default_joint_pos: not left-right symmetric ({self.joint_names[i]} "
                                  f"{default[i]:g}, its mirror image {self.joint_names[joints[0][i]]} "
                                  f"{default[joints[0][i]]:g}); symmetry augmentation needs a symmetric pose")
            oc = self.cfg.observations
            kinds = {n: oc.terms[n].mirror or symmetry.MIRROR_OF.get(oc.terms[n].func or n, "") for n in oc.terms}
            out = {g: symmetry.layout_mirror(layout, kinds, joints, feet, "task.observations")
                   for g, layout in self.observation_layout.items()}
            out["actions"] = (torch.as_tensor(joints[0]), torch.as_tensor(joints[1], dtype=torch.float32))
            self._mirror = {k: (i.to(self.device), s.to(self.device, torch.float32)) for k, (i, s) in out.items()}
        return self._mirror

    def height_scan_params(self, name: str | None = None) -> dict | None:
        """The grid of the policy's height scan term (size, resolution, offset), None for a blind policy."""
        from inspect import signature

        from .observations import height_scan

        oc = self.cfg.observations
        names = [name] if name else [n for n, _ in self.observation_layout["policy"]
                                     if (oc.terms[n].func or n) == "height_scan"]
        if not names:
            return None
        defaults = {k: v.default for k, v in signature(height_scan).parameters.items() if k != "s"}
        return {**defaults, **oc.terms[names[0]].params}

    # ---- the deploy contract ---------------------------------------------------------------------------------
    def deploy_contract(self) -> dict[str, Any]:
        """What a robot needs to run this task's policy, exactly as simulated (ARCHITECTURE.md's exported contract,
        less `schema_version`, `task` and `git_commit`, which the exporter adds)."""
        r, oc, c = self.cfg.robot, self.cfg.observations, self.cfg.commands
        if r.actuator != "position":
            raise ConfigError(f"task.robot.actuator: the deploy contract carries joint position targets; a "
                              f"{r.actuator!r}-driven robot cannot be exported")
        terms = []
        for name, dim in self.observation_layout["policy"]:
            scale, func = oc.terms[name].scale, oc.terms[name].func or name
            term = {"name": func if func == "height_scan" else name, "dim": dim,
                    "scale": [float(v) for v in (scale if isinstance(scale, list) else [scale] * dim)],
                    "clip": float(oc.terms[name].clip), "history": 1}
            if func == "height_scan":
                scan = self.height_scan_params(name)
                term["grid"] = {"size": [float(v) for v in scan["size"]], "resolution": float(scan["resolution"]),
                                "offset": float(scan["offset"]), "frame": "base_yaw", "order": "x-major"}
            terms.append(term)
        return {
            "kind": "joint_position", "robot": r.name, "joint_names": list(self.joint_names), "default_joint_pos": self.default_joint_pos.tolist(),
            "action_scale": float(r.action_scale), "action_clip": float(r.action_clip),
            "kp": [float(v) for v in self.kp], "kd": [float(v) for v in self.kd],
            "torque_limits": self.torque_limits.tolist(), "joint_pos_limits": self.joint_pos_limits.tolist(),
            "control_dt": float(self.dt), "observation_terms": terms, "command_names": list(command_terms.NAMES),
            "command_ranges": [[float(v) for v in getattr(c, n)] for n in command_terms.NAMES]}

    # ---- checkpoints -----------------------------------------------------------------------------------------
    _STATE = ("actions", "last_actions", "last_joint_vel", "commands", "episode_length", "feet_air_time",
              "last_contact", "strength", "terrain_levels", "env_origins", "joint_pos_bias", "gyro_bias",
              "gravity_bias")

    def _run_startup_events(self, due: Callable[[int], bool]) -> None:
        """The startup events whose start step `due` accepts. One that starts later draws from a generator of its
        own, seeded by the env's seed and its place in the list, so that a resumed run (which rebuilds its models
        and runs it again on load) gets the values the first run drew."""
        for k, (start, event) in enumerate(self._events["startup"]):
            if not due(start):
                continue
            if start == 0:
                event(self)
                continue
            gen, self.gen = self.gen, torch.Generator(device=self.device).manual_seed(self._seed * 7919 + 104_729 + k)
            try:
                event(self)
            finally:
                self.gen = gen

    def state_dict(self) -> dict:
        """Everything a resumed run needs to continue bit-identically (with the same config and seed)."""
        return {"sim": self.sim.state_dict(), "gen": self.gen.get_state(), "cat": self.cat.state_dict(),
                "common_step_counter": self.common_step_counter,
                "episode_sums": {k: v.clone() for k, v in self.episode_sums.items()},
                "command_ranges": {k: list(v) for k, v in self.command_ranges.items()},
                **{k: getattr(self, k).clone() for k in self._STATE if hasattr(self, k)}}

    def load_state_dict(self, state: dict) -> None:
        self.sim.load_state_dict(state["sim"])
        self.gen.set_state(state["gen"])
        self.cat.load_state_dict({k: v.to(self.device) for k, v in state["cat"].items()})
        self.common_step_counter = state["common_step_counter"]
        self._run_startup_events(lambda start: 0 < start <= self.common_step_counter)  # models are rebuilt, not saved
        self.episode_sums = {k: v.to(self.device, copy=True) for k, v in state["episode_sums"].items()}
        self.command_ranges.update({k: tuple(v) for k, v in state.get("command_ranges", {}).items()})
        for k in self._STATE:
            if k in state and hasattr(self, k):  # `strength` is new: checkpoints written before it keep the ones
                setattr(self, k, state[k].clone().to(self.device))
        self.state = self._read_state()

    def close(self) -> None:
        self.sim.close()


QuadrupedFlatEnv = LeggedEnv  # the name the task registry and older code use


class QuadrupedRoughEnv(LeggedEnv):
    task = "quadruped-rough"
