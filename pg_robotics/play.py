"""`pgr play`: one world of a run driven by its deterministic policy, rendered headless with MuJoCo's offscreen
renderer into an MP4. One render loop serves every task kind; a small view per kind says what to show:

- locomotion: a camera tracking the base through a tour of fixed velocity commands, the command and the measured
  velocity written on each frame;
- goal tasks: a fixed camera on the workspace, whole episodes, the goal drawn as a sphere (green once reached).

    from pg_robotics.play import play
    play("runs/quadruped-flat/2026-11-21_11-18-00", "walk.mp4")
"""

from __future__ import annotations

import ctypes.util
import os
from pathlib import Path

from pg_robotics import runs
from pg_robotics.envs import ConfigError


def choose_gl() -> None:
    """MuJoCo reads MUJOCO_GL when it is first imported: pick a headless backend before that."""
    if "MUJOCO_GL" in os.environ:
        return
    if os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "glfw"
    elif ctypes.util.find_library("OSMesa"):
        os.environ["MUJOCO_GL"] = "osmesa"
    elif ctypes.util.find_library("EGL"):
        os.environ["MUJOCO_GL"] = "egl"
    else:
        raise ConfigError("headless rendering needs OSMesa (Debian/Ubuntu: apt-get install libosmesa6) or EGL "
                          "(an NVIDIA driver); or set MUJOCO_GL yourself")


def add_sphere(scene, mujoco, np, pos, reached: bool, radius: float = 0.02) -> None:
    """The goal marker: a sphere at `pos`, green once reached, red before (if the scene has room)."""
    if scene.ngeom < scene.maxgeom:
        rgba = [0.1, 0.9, 0.1, 0.6] if reached else [0.9, 0.2, 0.1, 0.6]
        mujoco.mjv_initGeom(scene.geoms[scene.ngeom], mujoco.mjtGeom.mjGEOM_SPHERE, np.array([radius, 0, 0]),
                            np.asarray(pos, dtype=float), np.eye(3).flatten(), np.array(rgba, np.float32))
        scene.ngeom += 1


class LocomotionView:
    """A tour of fixed commands, `seconds` each, with a camera tracking the base."""

    def __init__(self, run_dir: Path, commands, seconds: float, seed: int, checkpoint: Path | None):
        from pg_robotics.evaluate import fixed_command_agent

        self.commands = list(commands)
        self.agent, _ = fixed_command_agent(run_dir, self.commands[:1], 1, seconds * len(self.commands) + 1.0, seed,
                                            checkpoint)
        env = self.agent.env
        self.per_command = int(round(seconds / env.dt))
        self.frames = self.per_command * len(self.commands)
        self.falls, self.feet_down = 0, 0.0
        self.first_obs = env.observations()

    def camera(self, model, mujoco):
        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        cam.trackbodyid = model.body(self.agent.env.cfg.robot.base_body).id
        cam.distance, cam.elevation, cam.azimuth = 1.6, -20.0, 120.0
        return cam

    def before(self, t: int, obs):
        """The observation to act on at frame `t` (a new command from its first frame)."""
        import torch

        env = self.agent.env
        if t % self.per_command:
            return obs
        env.commands[:] = torch.tensor(self.commands[t // self.per_command], dtype=torch.float32)
        return env.observations()

    def after(self, t: int, obs, done, info) -> str:
        env = self.agent.env
        self.falls += int(done[0] and not info["time_outs"][0])
        self.feet_down = self.feet_down + env.state.foot_contact[0].numpy()
        cmd, v = self.commands[t // self.per_command], env.state.base_lin_vel[0]
        return (f"t {t * env.dt:5.2f} s  command vx {cmd[0]:+.2f} vy {cmd[1]:+.2f} wz {cmd[2]:+.2f}\n"
                f"measured    vx {float(v[0]):+.2f} vy {float(v[1]):+.2f} "
                f"wz {float(env.state.base_ang_vel[0, 2]):+.2f}   falls {self.falls}")

    def markers(self, scene, mujoco, np) -> None:
        pass

    def result(self) -> dict:
        return {"falls": self.falls, "duty_factor": [round(float(v), 3) for v in self.feet_down / self.frames]}


class GoalView:
    """Whole episodes with the goal drawn in, from a fixed camera on the workspace."""

    def __init__(self, run_dir: Path, episodes: int, seed: int, checkpoint: Path | None):
        self.agent = runs.load_agent(run_dir, checkpoint, 1, seed)
        self.steps = self.agent.env.episode_steps
        self.frames = episodes * self.steps
        self.successes, self.goal, self.reached = 0, None, False
        self.first_obs = self.agent.env.reset()

    def camera(self, model, mujoco):
        cam = mujoco.MjvCamera()
        cam.lookat[:] = (0.5, 0.0, 0.1)
        cam.distance, cam.elevation, cam.azimuth = 1.3, -25.0, 150.0
        return cam

    def before(self, t: int, obs):
        self.goal = obs["desired_goal"][0].numpy().copy()  # the goal of this step (done resets it)
        return obs

    def after(self, t: int, obs, done, info) -> str:
        self.reached = bool(info["is_success"][0])
        self.successes += int(bool(done[0]) and self.reached)
        return (f"{self.agent.recipe.task}  episode {t // self.steps + 1}  step {t % self.steps + 1:2d}  "
                f"distance {float(info['distance'][0]):.3f} m  {'reached' if self.reached else ''}")

    def markers(self, scene, mujoco, np) -> None:
        add_sphere(scene, mujoco, np, self.goal, self.reached)

    def result(self) -> dict:
        return {"episodes": self.frames // self.steps, "successes": self.successes}


def play(run_dir: Path, video: Path, commands=None, seconds: float = 4.0, episodes: int = 4, width: int = 640,
         height: int = 480, seed: int = 1, checkpoint: Path | None = None, progress: bool = True) -> dict:
    """Render the run's policy into `video`: locomotion runs through `commands` (default: the six eval commands),
    `seconds` each; goal runs for `episodes` episodes."""
    choose_gl()
    import imageio.v2 as imageio
    import mujoco
    import numpy as np
    from PIL import Image, ImageDraw
    from tqdm import tqdm

    from pg_robotics.evaluate import COMMANDS

    task = runs.read_recipe(run_dir).task
    if task.startswith("gym:"):
        raise ConfigError(f"pgr play: {task} is not one of our MuJoCo tasks; nothing to render")
    if runs.read_recipe(run_dir).kind == "goal":
        view: LocomotionView | GoalView = GoalView(Path(run_dir), episodes, seed, checkpoint)
    else:
        view = LocomotionView(Path(run_dir), commands or COMMANDS, seconds, seed, checkpoint)
    agent = view.agent
    env = agent.env
    if not hasattr(env, "sim"):
        agent.close()
        raise ConfigError(f"pgr play: {agent.recipe.task} is not one of our MuJoCo tasks; nothing to render")
    model = env.sim.world_model(0)
    data = mujoco.MjData(model)
    renderer = mujoco.Renderer(model, height, width)
    cam = view.camera(model, mujoco)
    fps = int(round(1 / env.dt))
    video = Path(video)
    video.parent.mkdir(parents=True, exist_ok=True)
    obs = view.first_obs
    try:
        with imageio.get_writer(video, fps=fps, codec="libx264", quality=7, macro_block_size=8) as writer:
            for t in tqdm(range(view.frames), disable=not progress, unit="frame", desc="render"):
                obs = view.before(t, obs)
                obs, _, done, info = env.step(agent.act(obs))
                text = view.after(t, obs, done, info)
                data.qpos[:], data.qvel[:] = env.sim.qpos[0].numpy(), env.sim.qvel[0].numpy()
                mujoco.mj_forward(model, data)
                renderer.update_scene(data, camera=cam)
                view.markers(renderer.scene, mujoco, np)
                frame = Image.fromarray(renderer.render())
                ImageDraw.Draw(frame).multiline_text((8, 8), text, fill=(255, 255, 255))
                writer.append_data(np.asarray(frame))
    finally:
        renderer.close()
        agent.close()
    return {"video": str(video), "checkpoint": str(agent.checkpoint), "frames": view.frames, "fps": fps,
            "width": width, "height": height, **view.result()}
