"""`pgr play`: one world of a run driven by its deterministic policy through a tour of fixed commands, rendered
headless with MuJoCo's offscreen renderer into an MP4 (with the command and measured velocity written on it)."""

from __future__ import annotations

import ctypes.util
import os
from pathlib import Path

from pg_robotics.envs import ConfigError


def _choose_gl() -> None:
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


def play(run_dir: Path, video: Path, commands, seconds_per_command: float = 4.0, width: int = 640,
         height: int = 480, seed: int = 1, checkpoint: Path | None = None, progress: bool = True) -> dict:
    _choose_gl()
    import imageio.v2 as imageio
    import mujoco
    import numpy as np
    import torch
    from PIL import Image, ImageDraw
    from tqdm import tqdm

    from pg_robotics.evaluate import fixed_command_setup

    total = seconds_per_command * len(commands)
    env, policy, _, _, ckpt = fixed_command_setup(run_dir, commands[:1], 1, total + 1.0, seed, checkpoint)
    model = env.sim.world_model(0)
    data = mujoco.MjData(model)
    renderer = mujoco.Renderer(model, height, width)
    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    cam.trackbodyid = model.body(env.cfg.robot.base_body).id
    cam.distance, cam.elevation, cam.azimuth = 1.6, -20.0, 120.0
    fps = int(round(1 / env.dt))
    per_command = int(round(seconds_per_command / env.dt))
    video = Path(video)
    video.parent.mkdir(parents=True, exist_ok=True)
    falls, feet_down = 0, np.zeros(env.state.foot_forces.shape[1])
    obs = env.observations()
    with imageio.get_writer(video, fps=fps, codec="libx264", quality=7, macro_block_size=8) as writer:
        for t in tqdm(range(per_command * len(commands)), disable=not progress, unit="frame", desc="render"):
            cmd = commands[t // per_command]
            env.commands[:] = torch.tensor(cmd, dtype=torch.float32)
            obs = env.observations() if t % per_command == 0 else obs
            obs, _, done, info = env.step(policy(obs))
            falls += int(done[0] and not info["time_outs"][0])
            feet_down += env.state.foot_contact[0].numpy()
            data.qpos[:] = env.sim.qpos[0].numpy()
            data.qvel[:] = env.sim.qvel[0].numpy()
            mujoco.mj_forward(model, data)
            renderer.update_scene(data, camera=cam)
            frame = Image.fromarray(renderer.render())
            v = env.state.base_lin_vel[0]
            text = (f"t {t * env.dt:5.2f} s  command vx {cmd[0]:+.2f} vy {cmd[1]:+.2f} wz {cmd[2]:+.2f}\n"
                    f"measured    vx {float(v[0]):+.2f} vy {float(v[1]):+.2f} "
                    f"wz {float(env.state.base_ang_vel[0, 2]):+.2f}   falls {falls}")
            ImageDraw.Draw(frame).multiline_text((8, 8), text, fill=(255, 255, 255))
            writer.append_data(np.asarray(frame))
    renderer.close()
    env.close()
    frames = per_command * len(commands)
    return {"video": str(video), "checkpoint": str(ckpt), "frames": frames, "fps": fps,
            "width": width, "height": height, "falls": falls,
            "duty_factor": [round(float(v), 3) for v in feet_down / frames]}
