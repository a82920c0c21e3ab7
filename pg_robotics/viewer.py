"""`pgr play RUN --viewer`: watch and steer a run's deterministic policy live in MuJoCo's interactive viewer
(`mujoco.viewer`, passive mode), in real time, on one world or several side by side.

The env steps its worlds as in `pgr eval` (C MuJoCo, commands held, no pushes or noise) at the task's control rate,
on wall-clock deadlines. Each frame the selected world's state is copied into the viewer's own MjData (the other
worlds are drawn beside it from theirs); the viewer's mouse perturbation (double-click a body, ctrl + drag) comes
back as that MjData's `xfrc_applied`, which the backend holds on the selected world through the next steps. A small
view per task kind says what the keys do and what the overlay shows:

- locomotion: the keys set the velocity command (`pg_robotics.deploy.teleop`: arrows/WASD, Q/E, space), P pushes
  the base, R resets, [ ] select a world, T moves it to the next terrain tile (terrain tasks); the overlay shows the
  command, the measured base velocity, CaT delta and the safety counters (falls, diverged worlds, pushes);
- goal tasks (arms): the keys move the goal (arrows/WASD in x/y, Q/E in z) and the box (I/J/K/L); the policy
  follows; the overlay shows the distance and success.

`--duration S` closes the viewer by itself, `--log FILE` writes JSON lines (every control step: time, command or
goal, measured velocity or distance; every key), `--screenshot FILE` renders the last frame (with the overlay) as the
viewer shows it. Without a display `pgr play --viewer` says so in one line and exits with code 2.

    from pg_robotics.viewer import watch
    watch("runs/demo", duration=30.0)
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
import warnings
from pathlib import Path

from pg_robotics import runs
from pg_robotics.deploy import teleop
from pg_robotics.envs import ConfigError
from pg_robotics.play import GoalView, LocomotionView, add_sphere

# GLFW key codes (what the viewer's key callback receives) -> the key names of the tables below
GLFW_KEYS = {265: "up", 264: "down", 263: "left", 262: "right", 32: "space", 91: "[", 93: "]",
             **{ord(c.upper()): c for c in "abcdefghijklmnopqrstuvwxyz"}}
LOCOMOTION_KEYS = {**{k: "command" for k in teleop.VELOCITY_KEYS}, teleop.STOP_KEY: "command", "p": "push",
                   "r": "reset", "[": "previous world", "]": "next world", "t": "next terrain tile"}
GOAL_STEP = 0.02  # m per key press
# key -> (what moves, axis, step); space puts the goal where the achieved goal is
GOAL_KEYS = {"up": ("goal", 0, GOAL_STEP), "w": ("goal", 0, GOAL_STEP), "down": ("goal", 0, -GOAL_STEP),
             "s": ("goal", 0, -GOAL_STEP), "left": ("goal", 1, GOAL_STEP), "a": ("goal", 1, GOAL_STEP),
             "right": ("goal", 1, -GOAL_STEP), "d": ("goal", 1, -GOAL_STEP), "q": ("goal", 2, GOAL_STEP),
             "e": ("goal", 2, -GOAL_STEP), "i": ("box", 0, GOAL_STEP), "k": ("box", 0, -GOAL_STEP),
             "j": ("box", 1, GOAL_STEP), "l": ("box", 1, -GOAL_STEP)}
GOAL_ACTIONS = {**{k: v[0] for k, v in GOAL_KEYS.items()}, "space": "hold", "r": "reset", "[": "previous world",
                "]": "next world"}
EPISODE_S = 1e5  # a live run has no time-outs to speak of
MAX_LAG_S = 0.25  # further behind the wall clock than this, the simulation gives up the time (runs slower)
FRAME_S = 1 / 60  # at most this many frames a second go to the viewer


class NoDisplay(ConfigError):
    """The viewer cannot open a window here; the message is the one line `pgr play --viewer` prints."""


def check_display(run_dir) -> None:
    """NoDisplay unless a window can open: a display to talk to (or macOS under mjpython)."""
    if sys.platform == "darwin" or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    raise NoDisplay(f"pgr play --viewer: no display (DISPLAY is not set); render a video instead: pgr play "
                    f"{run_dir} --video out.mp4")


def open_glfw(run_dir):
    """mujoco.viewer, once GLFW has opened the display (else NoDisplay, naming it)."""
    os.environ.setdefault("MUJOCO_GL", "glfw")  # offscreen renders (the screenshot) share GLFW's GL
    hint = f"; render a video instead: pgr play {run_dir} --video out.mp4"
    try:
        import glfw
        import mujoco.viewer
    except (ImportError, RuntimeError) as exc:
        raise NoDisplay(f"pgr play --viewer: cannot load GLFW ({exc}){hint}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GLFW's own warning says the same as the line below
        ok = glfw.init()
    if not ok:
        raise NoDisplay(f"pgr play --viewer: cannot open the display {os.environ.get('DISPLAY', '')!r}{hint}")
    if sys.platform == "darwin" and mujoco.viewer._MJPYTHON is None:
        raise NoDisplay(f"pgr play --viewer: on macOS run it under mjpython (mjpython -m pg_robotics.cli play "
                        f"{run_dir} --viewer){hint}")
    return mujoco.viewer


def shadowed_flags(mujoco, keys) -> tuple[list[int], list[int]]:
    """The viewer's visualization and rendering flags whose keyboard shortcuts (MuJoCo's simulate) are keys of
    ours: they are held as they were, so that W drives and does not also switch on the wireframe."""
    ours = {k.upper() for k in keys if len(k) == 1}
    return ([i for i, (_, _, key) in enumerate(mujoco.mjVISSTRING) if key in ours],
            [i for i, (_, _, key) in enumerate(mujoco.mjRNDSTRING) if key in ours])


def copy_camera(src, dst) -> None:
    dst.type, dst.trackbodyid, dst.fixedcamid = src.type, src.trackbodyid, src.fixedcamid
    dst.lookat[:] = src.lookat
    dst.distance, dst.azimuth, dst.elevation = src.distance, src.azimuth, src.elevation


class LiveLocomotion(LocomotionView):
    """A legged robot driven by the velocity keys; the camera of `pgr play` tracks the selected world's base."""

    keys = LOCOMOTION_KEYS
    help = teleop.HELP + ", P: push, R: reset, [ ]: world, T: terrain"
    catmask = "mjCAT_DYNAMIC"  # other worlds: the robot (a terrain lives once in the model, drawn once)
    spacing = 1.0  # m between worlds, side by side along y

    def __init__(self, run_dir: Path, worlds: int, command, seed: int, checkpoint: Path | None):
        import numpy as np

        from pg_robotics.envs.locomotion.commands import NAMES
        from pg_robotics.evaluate import fixed_command_agent

        self.command = tuple(float(v) for v in command)
        # every world starts heading +x, so that side by side they walk side by side
        self.agent, _ = fixed_command_agent(run_dir, [self.command], worlds, EPISODE_S, seed, checkpoint,
                                            overrides={"sim": {"nthread": 1},
                                                       "randomization": {"base_yaw": {"enabled": False}}})
        env = self.agent.env
        self.ranges = tuple(tuple(env.command_ranges[n]) for n in NAMES)
        push = env.cfg.randomization.terms.get("push")
        self.push_velocity = float(push.params.get("max_vel", 1.0)) if push is not None else 1.0
        self.rng = np.random.default_rng(seed)
        self.world = 0
        self.falls = self.pushes = self.diverged = 0
        self.delta, self.note = 0.0, ""
        self.obs = env.observations()

    def _hold_command(self) -> None:
        import torch

        self.agent.env.commands[:] = torch.tensor(self.command, dtype=torch.float32)
        self.obs = self.agent.env.observations()

    def key(self, name: str) -> None:
        env, action = self.agent.env, self.keys.get(name)
        if action == "command":
            self.command = teleop.next_command(self.command, name, self.ranges)
        elif action == "push":
            a, angle = env.base_dof_adr, self.rng.uniform(0.0, 2 * math.pi)
            qvel = env.sim.qvel.clone()
            qvel[self.world, a] += self.push_velocity * math.cos(angle)
            qvel[self.world, a + 1] += self.push_velocity * math.sin(angle)
            env.sim.set_qvel(qvel)
            self.pushes += 1
        elif action == "reset":
            env.reset()
        elif action in ("previous world", "next world"):
            self.world = (self.world + (1 if action == "next world" else -1)) % env.num_envs
        elif action == "next terrain tile":
            self.next_tile()
        self._hold_command()

    def next_tile(self) -> None:
        """Put the selected world, standing, on the next tile of the terrain grid (type by type, then level up),
        as the task spawns it (its reset at that tile's origin)."""
        import torch

        env, w = self.agent.env, self.world
        if getattr(env, "terrain", None) is None:
            self.note = "T: this task has no terrain"
            return
        levels, types = env.tile_origins.shape[:2]
        tile = (int(env.terrain_levels[w]) * types + int(env.terrain_types[w]) + 1) % (levels * types)
        level, kind = divmod(tile, types)
        env.terrain_levels[w], env.terrain_types[w] = level, kind
        env.env_origins[w] = env.tile_origins[level, kind]
        env.reset_idx(torch.tensor([w], device=env.device))
        self.note = f"tile: level {level} of {levels}, {env.terrain.cfg.types[kind]}"

    def step(self) -> dict:
        env, w = self.agent.env, self.world
        obs, _, done, info = env.step(self.agent.act(self.obs))
        self.falls += int((done & ~info["time_outs"]).sum())
        self.diverged += int(info["num_diverged"])
        self.delta = float(info["cat_delta"][w])
        self.obs = obs
        if done.any():  # those worlds were reset with new commands: back to the keyboard's
            self._hold_command()
        v, wz = env.state.base_lin_vel[w], float(env.state.base_ang_vel[w, 2])
        return {"command": list(self.command), "velocity": [round(float(v[0]), 4), round(float(v[1]), 4),
                                                            round(wz, 4)],
                "cat_delta": round(self.delta, 4), "falls": self.falls, "pushes": self.pushes}

    def overlay(self, record: dict) -> tuple[str, str]:
        c, v = record["command"], record["velocity"]
        left = "command\nmeasured\nCaT delta\nfalls / diverged / pushes\nworld"
        right = (f"vx {c[0]:+.2f}  vy {c[1]:+.2f}  wz {c[2]:+.2f}\nvx {v[0]:+.2f}  vy {v[1]:+.2f}  wz {v[2]:+.2f}\n"
                 f"{self.delta:.3f}\n{self.falls} / {self.diverged} / {self.pushes}\n"
                 f"{self.world + 1} of {self.agent.env.num_envs}")
        if self.note:
            left, right = left + "\n ", right + "\n" + self.note
        return left, right

    def markers(self, scene, mujoco, np, world: int, offset) -> None:
        pass

    def world_qpos(self, j: int):
        return self.agent.env.sim.qpos[j].numpy(), self.agent.env.sim.qvel[j].numpy()

    def result(self) -> dict:
        return {"falls": self.falls, "pushes": self.pushes, "diverged": self.diverged}


class LiveGoal(GoalView):
    """An arm goal task: the keys move the goal (and the box); the goal is drawn as in `pgr play`."""

    keys = GOAL_ACTIONS
    help = "arrows/WASD: goal x y, Q/E: goal z, I/J/K/L: box, space: goal here, R: reset, [ ]: world"
    catmask = "mjCAT_ALL"  # other worlds: their table and arm base too (their floor is left out)
    spacing = 1.2

    def __init__(self, run_dir: Path, worlds: int, seed: int, checkpoint: Path | None):
        self.agent = runs.load_agent(run_dir, checkpoint, worlds, seed,
                                     {"goal": {"episode_steps": 10 ** 9}, "sim": {"nthread": 1}})
        env = self.agent.env
        self.obs = env.reset()
        self.world, self.successes, self.note = 0, 0, ""
        self.reached, self.distance = False, float("nan")
        model = env.sim.model
        self.box = int(model.joint(env.cfg.robot.object_joint).qposadr[0]) if env.has_object else None
        self.goal_z_fixed = env.cfg.goal.task == "push"  # the push goal lies on the table

    def key(self, name: str) -> None:
        import torch

        env, w, action = self.agent.env, self.world, self.keys.get(name)
        if action == "goal" and not (self.goal_z_fixed and GOAL_KEYS[name][1] == 2):
            _, axis, step = GOAL_KEYS[name]
            env.goal[w, axis] = float(env.goal[w, axis] + step)
            env.goal[w] = torch.minimum(torch.maximum(env.goal[w], env.ws_low), env.ws_high)
            if self.goal_z_fixed:
                env.goal[w, 2] = env.table_z
        elif action == "box" and self.box is not None:
            _, axis, step = GOAL_KEYS[name]
            sim, ids = env.sim, torch.tensor([w])
            qpos, qvel = sim.qpos[ids].clone(), sim.qvel[ids].clone()
            qpos[0, self.box + axis] += step
            qvel[:] = 0.0  # the box is put down at rest, the arm held where it is
            sim.reset(ids, qpos, qvel)
        elif action == "hold":
            env.goal[w] = self.obs["achieved_goal"][w]
        elif action == "reset":
            env.reset()
        elif action in ("previous world", "next world"):
            self.world = (w + (1 if action == "next world" else -1)) % env.num_envs
        self.obs = env.observations()

    def step(self) -> dict:
        env, w = self.agent.env, self.world
        obs, _, done, info = env.step(self.agent.act(self.obs))
        was = self.reached
        self.reached, self.distance = bool(info["is_success"][w]), float(info["distance"][w])
        self.successes += int(self.reached and not was)
        self.obs = obs
        return {"goal": [round(float(x), 4) for x in env.goal[w]],
                "achieved": [round(float(x), 4) for x in obs["achieved_goal"][w]],
                "distance": round(self.distance, 4), "success": self.reached}

    def overlay(self, record: dict) -> tuple[str, str]:
        g, a = record["goal"], record["achieved"]
        return ("task\ngoal\nachieved\ndistance\nworld",
                f"{self.agent.recipe.task}\n{g[0]:+.3f} {g[1]:+.3f} {g[2]:+.3f}\n{a[0]:+.3f} {a[1]:+.3f} {a[2]:+.3f}\n"
                f"{self.distance:.3f} m  {'reached' if self.reached else ''}\n"
                f"{self.world + 1} of {self.agent.env.num_envs}")

    def markers(self, scene, mujoco, np, world: int, offset) -> None:
        env = self.agent.env
        reached = bool((env.goal[world] - self.obs["achieved_goal"][world]).norm() <= env.cfg.goal.distance_threshold)
        add_sphere(scene, mujoco, np, env.goal[world].numpy() + offset, reached)

    def world_qpos(self, j: int):
        return self.agent.env.sim.qpos[j].numpy(), self.agent.env.sim.qvel[j].numpy()

    def result(self) -> dict:
        return {"successes": self.successes}


def watch(run_dir: Path, worlds: int = 1, command=(0.0, 0.0, 0.0), duration: float | None = None,
          log: Path | None = None, screenshot: Path | None = None, checkpoint: Path | None = None, seed: int = 1,
          say=None) -> dict:
    """The live viewer on `worlds` worlds of the run's task until its window closes (or `duration` simulated
    seconds); see the module docstring. `command`: the locomotion command to start from. `say(text)`: where the
    key help goes (default: nowhere). Returns the run's figures (real-time factor, steps, frames, counters)."""
    run_dir = Path(run_dir)
    check_display(run_dir)
    recipe = runs.read_recipe(run_dir)
    if recipe.task.startswith("gym:"):
        raise ConfigError(f"pgr play --viewer: {recipe.task} is not one of our MuJoCo tasks; nothing to show")
    if screenshot is not None and Path(screenshot).suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise ConfigError(f"--screenshot: {screenshot}: expected a .png or .jpg file")
    viewer = open_glfw(run_dir)
    if recipe.kind == "goal":
        view: LiveLocomotion | LiveGoal = LiveGoal(run_dir, worlds, seed, checkpoint)
    else:
        view = LiveLocomotion(run_dir, worlds, command, seed, checkpoint)
    try:
        if not hasattr(view.agent.env.sim, "apply_body_forces"):
            raise ConfigError(f"pgr play --viewer: {recipe.task} does not run on C MuJoCo here; nothing to show")
        if say:
            say(f"pgr play --viewer: {view.help}; double-click a body and ctrl + drag to perturb it; close the "
                f"window to end")
        return Live(view, viewer).run(duration, log, screenshot)
    finally:
        view.agent.close()


class Live:
    """The real-time loop: steps on wall-clock deadlines, frames to the viewer, keys to the view."""

    def __init__(self, view, viewer):
        import copy
        from collections import deque

        import mujoco
        import numpy as np

        self.view, self.mujoco, self.np = view, mujoco, np
        env = self.env = view.agent.env
        self.model = copy.copy(env.sim.model)  # the viewer's own (renders only); screenshots up to 1920 x 1080
        vis = self.model.vis.global_
        vis.offwidth, vis.offheight = max(vis.offwidth, 1920), max(vis.offheight, 1080)
        self.data = mujoco.MjData(self.model)
        self.others = [mujoco.MjData(self.model) for _ in range(env.num_envs)]
        self.no_perturb = mujoco.MjvPerturb()
        self.catmask = int(getattr(mujoco.mjtCatBit, view.catmask))
        self.keys: deque[int] = deque()
        self.vis_flags, self.rnd_flags = shadowed_flags(mujoco, view.keys)
        self.saved = None
        self.forces_on = False
        before = set(threading.enumerate())
        self.handle = viewer.launch_passive(self.model, self.data, key_callback=self.keys.append,
                                            show_left_ui=False, show_right_ui=False)
        self.threads = [t for t in threading.enumerate() if t not in before]
        with self.handle.lock():
            copy_camera(view.camera(self.model, mujoco), self.handle.cam)
            self.handle.cam.distance += 0.8 * view.spacing * (env.num_envs - 1)  # the other worlds in the frame too

    # ---- drawing ---------------------------------------------------------------------------------------------
    def extras(self, scene) -> None:
        """Append the other worlds (beside the selected one, `spacing` apart along y) and every world's markers."""
        mujoco, np, view = self.mujoco, self.np, self.view
        for j in range(self.env.num_envs):
            offset = np.array([0.0, (j - view.world) * view.spacing, 0.0])
            if j != view.world:
                d = self.others[j]
                d.qpos[:], d.qvel[:] = view.world_qpos(j)
                mujoco.mj_forward(self.model, d)
                start = scene.ngeom
                mujoco.mjv_addGeoms(self.model, d, self.handle.opt, self.no_perturb, self.catmask, scene)
                for k in range(start, scene.ngeom):
                    g = scene.geoms[k]
                    if g.type == mujoco.mjtGeom.mjGEOM_PLANE:  # one floor is enough
                        g.rgba[3], g.size[:] = 0.0, 1e-4
                    g.pos[:] = g.pos + offset
            view.markers(scene, mujoco, np, j, offset)

    def frame(self, record: dict, rtf: float) -> None:
        mujoco, h = self.mujoco, self.handle
        with h.lock():
            self.data.qpos[:], self.data.qvel[:] = self.view.world_qpos(self.view.world)
            mujoco.mj_forward(self.model, self.data)
            h.user_scn.ngeom = 0
            self.extras(h.user_scn)
            if self.saved is not None:  # undo what our keys switched as the viewer's own shortcuts
                h.opt.flags[self.vis_flags] = self.saved[0]
                h.user_scn.flags[self.rnd_flags] = self.saved[1]
        grid = mujoco.mjtGridPos
        h.set_texts([(None, grid.mjGRID_TOPLEFT, *self.view.overlay(record)),
                     (None, grid.mjGRID_BOTTOMLEFT, self.view.help, f"real time x{rtf:.2f}")])
        h.sync()  # also writes the mouse perturbation into data.xfrc_applied
        with h.lock():
            if self.saved is None:
                self.saved = (h.opt.flags[self.vis_flags].copy(), h.user_scn.flags[self.rnd_flags].copy())
            xfrc = self.data.xfrc_applied.copy()
        if xfrc.any() or self.forces_on:
            full = self.np.zeros((self.env.num_envs, *xfrc.shape))
            full[self.view.world] = xfrc
            self.env.sim.apply_body_forces(full if xfrc.any() else None)
            self.forces_on = bool(xfrc.any())

    def screenshot(self, path: Path, record: dict) -> dict:
        """Render what the viewer shows (its camera, options and extras) offscreen, with the overlay, into `path`.
        Returns the camera as rendered (for a render that reproduces it)."""
        from PIL import Image, ImageDraw

        mujoco, h = self.mujoco, self.handle
        with h.lock():
            cam, opt = mujoco.MjvCamera(), mujoco.MjvOption()
            copy_camera(h.cam, cam)
            opt.flags[:], opt.geomgroup[:] = h.opt.flags, h.opt.geomgroup
            viewport = h.viewport
        vis = self.model.vis.global_
        width = min(viewport.width if viewport else 640, vis.offwidth) or 640
        height = min(viewport.height if viewport else 480, vis.offheight) or 480
        renderer = mujoco.Renderer(self.model, height, width)
        try:
            renderer.update_scene(self.data, camera=cam, scene_option=opt)
            self.extras(renderer.scene)
            image = Image.fromarray(renderer.render())
        finally:
            renderer.close()
        left, right = self.view.overlay(record)
        draw = ImageDraw.Draw(image)
        draw.multiline_text((8, 8), left, fill=(255, 255, 255))
        column = 16 + max(draw.textlength(line) for line in left.split("\n"))
        draw.multiline_text((column, 8), right, fill=(255, 255, 255))
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        return {"lookat": [round(float(v), 6) for v in cam.lookat], "distance": float(cam.distance),
                "azimuth": float(cam.azimuth), "elevation": float(cam.elevation), "width": width, "height": height}

    # ---- the loop --------------------------------------------------------------------------------------------
    def run(self, duration: float | None, log: Path | None, screenshot: Path | None) -> dict:
        view, env, h = self.view, self.env, self.handle
        period = env.dt
        out = open(log, "w", buffering=1) if log else None  # noqa: SIM115 - closed below; a line at a time

        def write(line: dict) -> None:
            if out:
                out.write(json.dumps(line) + "\n")

        try:
            steps, frames, lagged = 0, 0, 0
            record = view.step()
            steps = 1
            start = time.perf_counter()
            next_step = next_frame = start
            while h.is_running() and (duration is None or steps * period < duration):
                while self.keys:
                    name = GLFW_KEYS.get(self.keys.popleft())
                    if name in view.keys:
                        view.key(name)
                        write({"t": round(steps * period, 4), "key": name, "world": view.world})
                now = time.perf_counter()
                if now - next_step > MAX_LAG_S:  # slower than real time: let the time go
                    next_step, lagged = now, lagged + 1
                for _ in range(int(MAX_LAG_S / period) + 1):  # catch up after a slow frame
                    if next_step > now or (duration is not None and steps * period >= duration):
                        break
                    record = view.step()
                    steps, next_step = steps + 1, next_step + period
                    write({"t": round(steps * period, 4), "wall": round(time.perf_counter() - start, 4),
                           "world": view.world, **record, "perturbed": self.forces_on})
                if time.perf_counter() >= next_frame:
                    rtf = (steps - 1) * period / max(time.perf_counter() - start, 1e-9)
                    self.frame(record, rtf)
                    frames, next_frame = frames + 1, time.perf_counter() + FRAME_S
                time.sleep(max(0.0, min(next_step, next_frame) - time.perf_counter()))
            wall = time.perf_counter() - start
            result = {"task": view.agent.recipe.task, "checkpoint": str(view.agent.checkpoint),
                      "worlds": env.num_envs, "steps": steps, "sim_seconds": round(steps * period, 3),
                      "wall_seconds": round(wall, 3), "real_time_factor": round((steps - 1) * period / wall, 4),
                      "frames": frames, "fps": round(frames / wall, 2), "fell_behind": lagged, **view.result()}
            end = {"qpos": view.world_qpos(view.world)[0].tolist()}  # what the last frame shows
            if screenshot:
                end["camera"] = self.screenshot(screenshot, record)
                result["screenshot"] = str(screenshot)
            write({"end": True, **result, **end})
            return result
        finally:
            if out:
                out.close()
            h.close()
            for t in self.threads:  # the viewer's thread tears its window down; let it finish before we go on
                t.join(timeout=10)
