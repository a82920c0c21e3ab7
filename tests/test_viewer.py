"""`pgr play RUN --viewer`, the live viewer, as a user drives it: a real `pgr` process with MuJoCo's viewer on an
Xvfb display, keys pressed in its window with xdotool, what it did read back from its `--log` and `--screenshot`.
Also the key table, the body forces the mouse perturbation goes through, and the one line without a display."""

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pg_robotics.cli import main
from pg_robotics.deploy import teleop
from pgr_cli import pgr
from policies import SMALL
from xdisplay import press, window, xvfb

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "runs" / "demo"  # `make demo`'s 20-minute run: a policy that walks (not in the repository)
ONE_THREAD = ["--set", "task.sim.nthread=1"]
ARM_TINY = ["--no-progress", "--set", "runner.num_envs=4", "--set", "runner.eval_envs=4", "--set",
            "runner.eval_interval=1", "--set", "algorithm.updates_per_cycle=2", "--set", "algorithm.batch_size=32",
            "--set", "algorithm.hidden=[32, 32]", "--set", "runner.threads=1", *ONE_THREAD]


@pytest.fixture(scope="module")
def legged_run(tmp_path_factory) -> Path:
    """Two iterations of PPO: a policy that stands and stumbles, enough to drive (not to walk)."""
    run = tmp_path_factory.mktemp("viewer") / "legged"
    assert main(["train", "quadruped-flat", "--max-iterations", "2", "--run-dir", str(run), *SMALL, *ONE_THREAD]) == 0
    return run


def live(run: Path, env: dict, tmp_path: Path, script, *args: str, duration: float = 6.0):
    """`pgr play RUN --viewer --duration ... --log ... --json`, with `script(window id)` pressing keys once its
    window is open; (result, log lines)."""
    log = tmp_path / "live.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "pg_robotics.cli", "play", str(run), "--viewer", "--duration",
                             str(duration), "--log", str(log), "--json", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        script(window(env, proc=proc))
        out, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    return json.loads(out), [json.loads(line) for line in log.read_text().splitlines()]


def wait_for_line(log: Path, ready, timeout: float = 30.0) -> dict:
    """The first line of the live log (written a line at a time) for which `ready(line)` holds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for text in log.read_text().splitlines() if log.exists() else []:
            try:
                line = json.loads(text)
            except ValueError:  # the line being written
                continue
            if ready(line):
                return line
        time.sleep(0.05)
    raise TimeoutError(f"no such line in {log} after {timeout:g} s")


def steps(lines):
    return [r for r in lines if "t" in r and "key" not in r and "end" not in r]


def key_times(lines, name):
    return [r["t"] for r in lines if r.get("key") == name]


# ---- without a window ---------------------------------------------------------------------------------------------
def test_the_teleop_keys_step_clamp_and_stop():
    c = (0.0, 0.0, 0.0)
    for _ in range(3):
        c = teleop.next_command(c, "up")
    assert c == (0.3, 0.0, 0.0)
    assert teleop.next_command(c, "a") == (0.3, 0.1, 0.0) and teleop.next_command(c, "right") == (0.3, -0.1, 0.0)
    assert teleop.next_command(c, "q") == (0.3, 0.0, 0.1) and teleop.next_command(c, "e") == (0.3, 0.0, -0.1)
    for _ in range(30):
        c = teleop.next_command(c, "w")
    assert c[0] == teleop.DEFAULT_RANGES[0][1] == 1.0  # held at the range's edge
    assert teleop.next_command(c, "x") == c and teleop.next_command(c, "space") == (0.0, 0.0, 0.0)


def test_body_forces_held_by_the_backend_act_as_mujocos_xfrc_applied():
    """What the viewer's mouse perturbation goes through: the same trajectory as mj_step with d.xfrc_applied."""
    import mujoco

    from pg_robotics.envs import make

    env = make("quadruped-flat", 2, seed=0, overrides={"sim": {"nthread": 1}, "randomization": {"enabled": False}})
    try:
        sim, m = env.sim, env.sim.model
        trunk = m.body("trunk").id
        force = np.zeros((2, m.nbody, 6))
        force[1, trunk, :3] = (150.0, -80.0, 40.0)
        d = mujoco.MjData(m)
        d.qpos[:], d.qvel[:] = sim.qpos[1].numpy(), sim.qvel[1].numpy()
        d.xfrc_applied[:] = force[1]
        ctrl = env.default_joint_pos.double().numpy()
        d.ctrl[:] = ctrl
        sim.apply_body_forces(force)
        for _ in range(3):
            sim.step(np.tile(ctrl, (2, 1)))
            for _ in range(sim.decimation):
                mujoco.mj_step(m, d)
        assert np.abs(sim.qpos[1].numpy() - d.qpos).max() < 1e-9
        assert sim.qpos[1, 0] - sim.qpos[0, 0] > 0.01  # pushed along +x, the other world not
        sim.apply_body_forces(None)
        with pytest.raises(ValueError, match=r"xfrc: expected shape \(2, 14, 6\)"):
            sim.apply_body_forces(force[:1])
    finally:
        env.close()


def test_without_a_display_it_says_so_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run([sys.executable, "-m", "pg_robotics.cli", "play", str(tmp_path), "--viewer"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr == (f"pgr play --viewer: no display (DISPLAY is not set); render a video instead: pgr play "
                             f"{tmp_path} --video out.mp4\n")
    for args, message in ((["--video", "x.mp4", "--log", "l.jsonl"], "--log: only with --viewer"),
                          (["--video", "x.mp4", "--worlds", "2"], "--worlds: only with --viewer"),
                          (["--viewer", "--worlds", "0"], "argument --worlds: expected positive integers, got '0'")):
        result = pgr("play", str(tmp_path), *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_t_puts_the_selected_world_on_the_next_terrain_tile(legged_run, tmp_path):
    """quadruped-rough (a small grid): T walks the selected world over the tiles, type by type, then a level up,
    each time standing at the tile's origin; the other world stays; a flat task says it has no terrain."""
    from pg_robotics.viewer import LiveLocomotion

    flat = LiveLocomotion(legged_run, 1, (0.0, 0.0, 0.0), 1, None)
    try:
        flat.key("t")
        assert flat.note == "T: this task has no terrain"
    finally:
        flat.agent.close()
    run = tmp_path / "rough"
    terrain = ["--set", "task.ground.terrain.levels=2", "--set", "task.ground.terrain.types=[flat,stairs_up]",
               "--set", "task.ground.terrain.max_init_level=0", "--set", "task.sim.model_copies=2"]
    assert main(["train", "quadruped-rough", "--max-iterations", "1", "--run-dir", str(run), *SMALL, *ONE_THREAD,
                 *terrain]) == 0
    view = LiveLocomotion(run, 2, (0.0, 0.0, 0.0), 1, None)
    try:
        env = view.agent.env
        other = env.sim.qpos[0, :3].clone()
        view.key("]")  # world 2
        tiles = []
        for _ in range(4):
            view.key("t")
            tiles.append((int(env.terrain_levels[1]), int(env.terrain_types[1]), view.note))
            origin = env.tile_origins[tiles[-1][0], tiles[-1][1]]
            xy = env.sim.qpos[1, :2].float()
            assert (xy - origin[:2]).abs().max() <= env.terrain.cfg.spawn_offset + 1e-5
            assert env.sim.qpos[1, 2] > origin[2]  # standing above the tile's surface
        first = tiles[0][0] * 2 + tiles[0][1]
        assert [level * 2 + kind for level, kind, _ in tiles] == [(first + k) % 4 for k in range(4)]
        assert "tile: level 1 of 2, stairs_up" in [note for *_, note in tiles]
        assert torch.equal(env.sim.qpos[0, :3], other)
        view.step()
    finally:
        view.agent.close()


# ---- in a window ----------------------------------------------------------------------------------------------------
def render_pair(env: dict, qpos, camera: dict, out: Path) -> tuple[np.ndarray, np.ndarray]:
    """Renders of the scene from the screenshot's camera, with the robot where it was and moved 100 m away (in a
    process of its own, on the same display and GL as the viewer)."""
    code = f"""
import mujoco, numpy as np
from pg_robotics.envs import make
m = make("quadruped-flat", 1, overrides={{"sim": {{"nthread": 1}}}}).sim.model
cam = mujoco.MjvCamera()
cam.lookat[:] = {camera['lookat']}
cam.distance, cam.azimuth, cam.elevation = {camera['distance']}, {camera['azimuth']}, {camera['elevation']}
d = mujoco.MjData(m)
r = mujoco.Renderer(m, {camera['height']}, {camera['width']})
images = []
for shift in (0.0, 100.0):
    d.qpos[:] = {list(qpos)}
    d.qpos[0] += shift
    mujoco.mj_forward(m, d)
    r.update_scene(d, camera=cam)
    images.append(r.render())
np.save("{out}", np.stack(images))
"""
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    with_robot, without = np.load(out)
    return with_robot.astype(int), without.astype(int)


def test_keys_drive_the_command_p_pushes_and_the_screenshot_shows_the_robot(legged_run, tmp_path):
    from PIL import Image

    shot = tmp_path / "viewer.png"
    with xvfb() as env:
        def script(wid):
            time.sleep(0.5)
            for keys in (("Up", "Up", "Up", "w", "a"), ("p",), ("q", "e", "e")):
                press(env, wid, *keys)
                time.sleep(1.0)  # each group handled between control steps of its own (a loaded host steps slowly)

        result, lines = live(legged_run, env, tmp_path, script, "--screenshot", str(shot))
        end = lines[-1]
        assert end["end"] and end["screenshot"] == str(shot)
        with_robot, without = render_pair(env, end["qpos"], end["camera"], tmp_path / "renders.npy")
    rows = steps(lines)
    assert len(rows) == result["steps"] - 1 == round(6.0 / 0.02) - 1  # every control step of the 6 s is logged
    assert 0.3 < result["real_time_factor"] <= 1.05  # paced by the wall clock, never faster
    # the command moves by the table's steps, in the order of the keys, from the step after each key on
    pressed = [r["key"] for r in lines if "key" in r]
    assert pressed == ["up", "up", "up", "w", "a", "p", "q", "e", "e"]
    command = (0.0, 0.0, 0.0)
    for name in ("up", "up", "up", "w", "a"):
        command = teleop.next_command(command, name)
    after_a = [r for r in rows if r["t"] > key_times(lines, "a")[0] and r["t"] <= key_times(lines, "p")[0]]
    assert after_a and all(r["command"] == [0.4, 0.1, 0.0] for r in after_a) and list(command) == [0.4, 0.1, 0.0]
    assert rows[-1]["command"] == [0.4, 0.1, -0.1]
    before_up = [r for r in rows if r["t"] < key_times(lines, "up")[0]]
    assert all(r["command"] == [0.0, 0.0, 0.0] for r in before_up)
    # P adds the push velocity (1 m/s, task.randomization.push.params.max_vel) to the selected world's base
    t_push = key_times(lines, "p")[0]
    before = [r["velocity"] for r in rows if r["t"] <= t_push][-1]
    after = next(r["velocity"] for r in rows if r["t"] > t_push)  # one control step (20 ms) later
    assert result["pushes"] == rows[-1]["pushes"] == 1
    assert math.hypot(after[0] - before[0], after[1] - before[1]) > 0.6
    # the screenshot: not blank, and where a render with the robot differs from one without it, it is the former
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert image.shape == with_robot.shape and image.std() > 10
    robot = np.abs(with_robot - without).max(axis=2) > 40
    assert robot.mean() > 0.02, "the robot fills part of the frame"
    on_robot = np.abs(image - with_robot).max(axis=2)[robot]
    assert np.median(on_robot) < 10 and (np.abs(image - without).max(axis=2)[robot] > 40).mean() > 0.9


@pytest.mark.skipif(not (DEMO / "checkpoints").is_dir(), reason=f"no walking policy: {DEMO} is made by `make demo`")
def test_a_walking_policy_follows_the_keys_within_the_tracking_error(tmp_path):
    """Five presses of Up: v_x command 0.5 m/s; after 1.5 s to get going the measured v_x follows it within the
    walking criterion's 0.10 m/s (mean planar error, as `pgr eval` measures it), without a fall."""
    with xvfb() as env:
        result, lines = live(DEMO, env, tmp_path, lambda wid: press(env, wid, *["Up"] * 5), duration=7.0)
    rows = steps(lines)
    t_key = key_times(lines, "up")[-1]
    held = [r for r in rows if r["t"] >= t_key + 1.5]
    assert len(held) > 100 and all(r["command"] == [0.5, 0.0, 0.0] for r in held)
    error = np.mean([math.hypot(r["velocity"][0] - 0.5, r["velocity"][1]) for r in held])
    assert error <= 0.10 and result["falls"] == 0, error


def test_arm_keys_move_the_goal_of_the_selected_world(tmp_path):
    run = tmp_path / "reach"
    assert main(["train", "arm-reach", "--max-iterations", "2", "--run-dir", str(run), *ARM_TINY]) == 0
    with xvfb() as env:
        def script(wid):
            time.sleep(0.5)
            press(env, wid, "bracketright")
            # a step of world 1 before the goal moves (a loaded machine may otherwise take all keys in one batch)
            wait_for_line(tmp_path / "live.jsonl", lambda r: "goal" in r and r.get("world") == 1)
            press(env, wid, "Up", "Up", "q", "a")

        result, lines = live(run, env, tmp_path, script, "--worlds", "2", duration=4.0)
    rows = steps(lines)
    assert result["worlds"] == 2 and [r["key"] for r in lines if "key" in r] == ["]", "up", "up", "q", "a"]
    t0, t1 = key_times(lines, "]")[0], key_times(lines, "a")[0]
    start = next(r for r in rows if r["t"] > t0)["goal"]
    moved = rows[-1]["goal"]
    assert rows[-1]["world"] == 1 and all(r["world"] == 1 for r in rows if r["t"] > t0)
    assert np.allclose(np.subtract(moved, start), [0.04, 0.02, 0.02], atol=1e-5), (start, moved)
    assert all(r["t"] <= t1 or r["goal"] == moved for r in rows)
    last = rows[-1]
    assert abs(last["distance"] - float(np.linalg.norm(np.subtract(last["goal"], last["achieved"])))) < 1e-3
    assert isinstance(last["success"], bool)
