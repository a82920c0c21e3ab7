"""Arm goal tasks (`arm-reach`, `arm-push`, `arm-pick-place`), batched over N worlds, with gymnasium `GoalEnv`
semantics: dict observations {"observation", "achieved_goal", "desired_goal"} and a vectorized
`compute_reward(achieved_goal, desired_goal, info)`, so hindsight relabelling can recompute rewards.

Control as in Fetch: action (dx, dy, dz, gripper) in [-1, 1]^4 moves the gripper target by up to
`max_displacement` per 25 Hz step; batched damped-least-squares IK (gripper pointing down) turns that into joint
position targets for the arm's servos, so the same policy can drive a joint-position-controlled arm. Episodes have
a fixed length; all worlds start and end their episodes together. At the last step `info["final_obs"]` holds the
episode's last observation (the returned one is already the next episode's first).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..backends import make_backend
from ..config import ConfigError
from ..gym_goal import goal_contract
from ..robots import load
from ..scene import Scene
from .config import ArmGoalCfg
from .kinematics import PandaKinematics, solve_ik
from .scene import arm_scene

# the gripper points down, fingers opening along the world y axis
DOWN = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])


class ArmGoalEnv:
    kind = "goal"

    def __init__(self, cfg: ArmGoalCfg | None = None, num_envs: int = 64, device: str = "cpu", seed: int = 0,
                 backend: str = "mujoco"):
        cfg = cfg or ArmGoalCfg()
        if num_envs < 1:
            raise ConfigError(f"num_envs: must be >= 1, got {num_envs}")
        self.cfg, self.num_envs, self.device = cfg, num_envs, torch.device(device)
        self.task = {"reach": "arm-reach", "push": "arm-push", "pick_place": "arm-pick-place"}[cfg.goal.task]
        self.has_object = cfg.goal.task != "reach"
        self.scene = self.build_scene(cfg)
        self.sim = make_backend(backend, self.scene.spec, num_envs, cfg.sim.decimation, device=device,
                                model_path=self.scene.path, nthread=cfg.sim.nthread, timestep=cfg.sim.dt,
                                max_qvel=cfg.sim.max_qvel)
        # after the backend, which checks that `device` can run here, before anything uses the device
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self.dt = cfg.sim.dt * cfg.sim.decimation
        self.episode_steps = cfg.goal.episode_steps
        self.num_actions = 4
        self._setup_robot()
        self.t = 0
        self.goal = torch.zeros(num_envs, 3, device=self.device)
        self.last_tcp = torch.zeros(num_envs, 3, device=self.device)
        self.tcp_target = torch.zeros(num_envs, 3, device=self.device)
        self.last_fingers = torch.zeros(num_envs, 2, device=self.device)
        if cfg.randomization.enabled and self.has_object:
            self._randomize_models(seed)
        obs = self.reset()
        self.observation_dims = {k: int(v.shape[1]) for k, v in obs.items()}
        self.goal_dim = 3

    @staticmethod
    def build_scene(cfg: ArmGoalCfg) -> Scene:
        """The robot preset with its servos, the table and the box (envs/manipulation/scene.py)."""
        return arm_scene(load(cfg.robot.preset), cfg.robot.object_half_size)

    # ---- set-up ------------------------------------------------------------------------------------------------
    def _setup_robot(self) -> None:
        r, m, f = self.cfg.robot, self.sim.model, dict(dtype=torch.float32, device=self.device)

        def joints(names: list[str], where: str) -> list[int]:
            try:
                return [int(m.joint(n).id) for n in names]
            except KeyError:
                known = ", ".join(m.joint(i).name for i in range(m.njnt))
                raise ConfigError(f"{where}: a joint is not in {self.sim.model_path.name} (joints: {known})") from None

        arm, fingers = joints(r.arm_joints, "task.robot.arm_joints"), joints(r.finger_joints, "task.robot.finger_joints")
        obj = joints([r.object_joint], "task.robot.object_joint")[0]
        actuated = [int(m.actuator_trnid[i, 0]) for i in range(m.nu)]
        if actuated != arm + fingers:
            raise ConfigError(f"task.robot.mjcf: expected actuators on {r.arm_joints + r.finger_joints} in that order")
        index = dict(device=self.sim.device)  # on the backend's device: no copy of the indices every step
        self._arm_q = torch.tensor([int(m.jnt_qposadr[j]) for j in arm], **index)
        self._arm_v = torch.tensor([int(m.jnt_dofadr[j]) for j in arm], **index)
        self._finger_q = torch.tensor([int(m.jnt_qposadr[j]) for j in fingers], **index)
        self._finger_v = torch.tensor([int(m.jnt_dofadr[j]) for j in fingers], **index)
        self._obj_q, self._obj_v = int(m.jnt_qposadr[obj]), int(m.jnt_dofadr[obj])
        margin = r.joint_limit_margin
        self.joint_limits = torch.tensor(m.jnt_range[arm], **f) + torch.tensor([margin, -margin], **f)
        self.max_joint_step = torch.tensor(r.velocity_limits, **f) * self.dt
        self.kin = PandaKinematics(self.device)
        self.down = DOWN.to(self.device)
        self.ws_low, self.ws_high = torch.tensor(r.workspace_low, **f), torch.tensor(r.workspace_high, **f)
        self.gripper_start = torch.tensor(r.gripper_start, **f)
        ready = torch.tensor([r.ready_pose], **f)
        self.start_q = solve_ik(self.kin, ready, self.gripper_start[None], self.down, damping=0.01, iterations=100,
                                limits=self.joint_limits)[0]
        miss = float((self.kin.forward(self.start_q[None])[0][0] - self.gripper_start).norm())
        if miss > 1e-3:
            raise ConfigError(f"task.robot.gripper_start: {list(r.gripper_start)} is out of the arm's reach "
                              f"(IK misses by {miss:.3f} m)")
        self.start_tcp = self.kin.forward(self.start_q[None])[0][0]
        self.park = torch.tensor([r.gripper_start[0], 0.5, r.object_half_size], **f)  # reach: box out of the way
        self.table_z = float(r.object_half_size)  # resting box centre height

    def _randomize_models(self, seed: int) -> None:
        rc, rng = self.cfg.randomization, np.random.default_rng(seed)
        self.sim.set_body_mass("object", rng.uniform(*rc.object_mass, self.num_envs))
        self.sim.set_geom_friction("object", rng.uniform(*rc.object_friction, self.num_envs))

    def _uniform(self, n: int, dim: int, half: float) -> torch.Tensor:
        return (torch.rand(n, dim, generator=self.gen, device=self.device) * 2 - 1) * half

    # ---- goals ---------------------------------------------------------------------------------------------------
    def compute_reward(self, achieved_goal: torch.Tensor, desired_goal: torch.Tensor, info=None) -> torch.Tensor:
        """Sparse: 0 where the achieved goal is within the threshold of the desired goal, else -1 (any batch shape)."""
        return -((achieved_goal - desired_goal).norm(dim=-1) > self.cfg.goal.distance_threshold).float()

    def _sample(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Object positions and goals for worlds `ids`."""
        g, n, start = self.cfg.goal, len(ids), self.gripper_start
        obj = self.park.expand(n, 3).clone()
        if self.has_object:
            offset = self._uniform(n, 2, g.object_range)
            for _ in range(100):  # redraw offsets too close to the gripper
                close = offset.norm(dim=1) < g.min_object_distance
                if not close.any():
                    break
                offset[close] = self._uniform(int(close.sum()), 2, g.object_range)
            obj[:, :2] = start[:2] + offset
        if g.task == "reach":
            goal = start + self._uniform(n, 3, g.target_range)
            goal[:, 2] = goal[:, 2].clamp(min=self.table_z + 0.02)
        else:
            goal = torch.cat([start[:2] + self._uniform(n, 2, g.target_range),
                              torch.full((n, 1), self.table_z, device=self.device)], dim=1)
            if g.task == "pick_place":
                lift = torch.rand(n, generator=self.gen, device=self.device) < g.target_in_air_fraction
                height = torch.rand(n, generator=self.gen, device=self.device) * g.target_max_height
                goal[:, 2] += lift * height
        return obj, goal

    # ---- state and observations ----------------------------------------------------------------------------------
    def _arm_state(self):
        q = self.sim.qpos[:, self._arm_q].to(self.device, torch.float32)
        fingers = self.sim.qpos[:, self._finger_q].to(self.device, torch.float32)
        tcp, rot, jac = self.kin.forward(q)
        return q, fingers, tcp, rot, jac

    def observations(self) -> dict[str, torch.Tensor]:
        _, fingers, tcp, _, _ = self._arm_state()
        return self._observe(fingers, tcp)

    def _observe(self, fingers: torch.Tensor, tcp: torch.Tensor) -> dict[str, torch.Tensor]:
        """Fetch's layout: gripper position, finger positions, per-step gripper and finger displacement; with an
        object also its position, position relative to the gripper, orientation (quaternion) and per-step linear
        and angular displacement relative to the gripper."""
        grip_vel, finger_vel = tcp - self.last_tcp, fingers - self.last_fingers
        parts = [tcp, fingers, grip_vel, finger_vel]
        if self.has_object:
            qpos = self.sim.qpos.to(self.device, torch.float32)
            qvel = self.sim.qvel.to(self.device, torch.float32)
            obj, quat = qpos[:, self._obj_q:self._obj_q + 3], qpos[:, self._obj_q + 3:self._obj_q + 7]
            velp = qvel[:, self._obj_v:self._obj_v + 3] * self.dt - grip_vel
            velr = qvel[:, self._obj_v + 3:self._obj_v + 6] * self.dt
            parts += [obj, obj - tcp, quat, velp, velr]
            achieved = obj
        else:
            achieved = tcp
        return {"observation": torch.cat(parts, dim=1), "achieved_goal": achieved.clone(),
                "desired_goal": self.goal.clone()}

    # ---- reset and step ------------------------------------------------------------------------------------------
    def _reset_worlds(self, ids: torch.Tensor) -> None:
        n, m = len(ids), self.sim.model
        obj, goal = self._sample(ids)
        f = dict(dtype=self.sim.qpos.dtype, device=self.sim.device)
        qpos = torch.as_tensor(m.qpos0, **f).repeat(n, 1)
        qpos[:, self._arm_q] = self.start_q.to(qpos)
        qpos[:, self._finger_q] = self.cfg.robot.finger_open
        qpos[:, self._obj_q:self._obj_q + 3] = obj.to(qpos)
        qpos[:, self._obj_q + 3:self._obj_q + 7] = torch.tensor([1.0, 0, 0, 0], **f)
        self.sim.reset(ids.to(self.sim.device), qpos, torch.zeros(n, m.nv, **f))
        self.goal[ids] = goal
        self.last_tcp[ids] = self.start_tcp
        self.tcp_target[ids] = self.start_tcp
        self.last_fingers[ids] = self.cfg.robot.finger_open

    def reset(self) -> dict[str, torch.Tensor]:
        self._reset_worlds(torch.arange(self.num_envs, device=self.device))
        self.t = 0
        return self.observations()

    def step(self, actions: torch.Tensor):
        r = self.cfg.robot
        a = actions.to(self.device, torch.float32).clamp(-1.0, 1.0)
        q, fingers, tcp, _, _ = self._arm_state()
        # the target moves by the action from where it was, so servo lag is made up on later steps; it stays
        # within one displacement of the gripper so that pushing against the table or the box cannot wind it up
        target = self.tcp_target + r.max_displacement * a[:, :3]
        target = torch.minimum(torch.maximum(target, tcp - r.max_displacement), tcp + r.max_displacement)
        self.tcp_target = target = target.clamp(self.ws_low, self.ws_high)
        q_target = solve_ik(self.kin, q, target, self.down, r.ik_damping, r.ik_iterations, r.ik_orientation_weight,
                            self.max_joint_step, self.joint_limits)
        finger_target = ((a[:, 3:] + 1) * 0.5 * r.finger_open).expand(-1, 2)
        self.last_tcp, self.last_fingers = tcp, fingers
        self.sim.step(torch.cat([q_target, finger_target], dim=1))
        self.t += 1
        diverged = self.sim.diverged.to(self.device)
        if diverged.any():  # start those worlds over from a fresh state; the episode clock runs on
            self._reset_worlds(diverged.nonzero().flatten())
        _, fingers, tcp, _, _ = self._arm_state()
        obs = self._observe(fingers, tcp)
        reward = self.compute_reward(obs["achieved_goal"], obs["desired_goal"])
        info = {"is_success": (reward == 0).float(), "diverged": diverged,
                "distance": (obs["achieved_goal"] - obs["desired_goal"]).norm(dim=1)}
        done = torch.full((self.num_envs,), self.t >= self.episode_steps, device=self.device)
        info["time_outs"] = done
        if self.t >= self.episode_steps:
            info["final_obs"] = obs
            obs = self.reset()
        return obs, reward, done, info

    # ---- checkpoints -------------------------------------------------------------------------------------------
    def deploy_contract(self) -> dict:
        """Kind "vector": (dx, dy, dz, gripper) in [-1, 1]; the safe action stops the arm where it is with the gripper
        closed (it drops nothing); task_params are what a robot-side Cartesian driver needs to turn an action into
        motion."""
        r, g = self.cfg.robot, self.cfg.goal
        return goal_contract(self, Path(r.preset).stem, ["dx", "dy", "dz", "gripper"], [0.0, 0.0, 0.0, -1.0],
                             {"max_displacement": r.max_displacement, "finger_open": r.finger_open,
                              "distance_threshold": g.distance_threshold})

    def state_dict(self) -> dict:
        return {"sim": self.sim.state_dict(), "t": self.t, "goal": self.goal.clone(), "last_tcp": self.last_tcp.clone(),
                "tcp_target": self.tcp_target.clone(), "last_fingers": self.last_fingers.clone(), "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.sim.load_state_dict(state["sim"])
        self.t = int(state["t"])
        self.goal[:], self.last_tcp[:], self.last_fingers[:] = state["goal"], state["last_tcp"], state["last_fingers"]
        self.tcp_target[:] = state["tcp_target"]
        self.gen.set_state(state["gen"])

    def close(self) -> None:
        self.sim.close()
