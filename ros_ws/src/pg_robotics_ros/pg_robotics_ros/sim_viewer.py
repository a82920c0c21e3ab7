"""The MuJoCo sim node's world in MuJoCo's interactive viewer (`mujoco.viewer`, passive mode): sim node parameter
`viewer:=true`, and what `pgr sim2sim --viewer` shows. The viewer draws the node's own MjData, so its mouse
perturbation (double-click a body, ctrl + drag) acts on the simulated robot itself; the physics thread steps under
the viewer's lock. The camera tracks the base; P pushes it, R puts the robot back standing; the overlay shows the
last `/cmd_vel`, the measured base velocity and the fall and push counters. The velocity command comes over ROS
(`pgr ros teleop`, the same keys as `pgr play --viewer`). Closing the window stops the node as Ctrl-C does."""

from __future__ import annotations

import os
import signal
import threading
import time

import mujoco
from geometry_msgs.msg import Twist

from . import common

FRAME_S = 1 / 30
KEYS = {80: "push", 82: "reset"}  # GLFW codes of P and R


def no_display() -> str | None:
    """Why no window can open here (None: one can)."""
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.uname().sysname == "Darwin":
        return None
    return "no display (DISPLAY is not set)"


class SimViewer:
    def __init__(self, node):
        import mujoco.viewer

        reason = no_display()
        if reason:
            raise ValueError(f"viewer: {reason}")
        self.node, self.command = node, (0.0, 0.0, 0.0)
        self.requests: list[str] = []
        node.create_subscription(Twist, common.CMD_VEL, self._on_cmd_vel, common.SENSOR_QOS)
        self.handle = mujoco.viewer.launch_passive(node.model, node.data, key_callback=self._on_key,
                                                   show_left_ui=False, show_right_ui=False)
        with self.handle.lock():
            cam = self.handle.cam
            cam.type, cam.trackbodyid = mujoco.mjtCamera.mjCAMERA_TRACKING, node.base
            cam.distance, cam.elevation, cam.azimuth = 1.6, -20.0, 120.0
        # P and R are also the viewer's own shortcuts (contact split, reflection): held as they were
        self.vis = [i for i, (_, _, k) in enumerate(mujoco.mjVISSTRING) if k in "PR"]
        self.rnd = [i for i, (_, _, k) in enumerate(mujoco.mjRNDSTRING) if k in "PR"]
        self.saved = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="viewer", daemon=True)
        self._thread.start()

    def lock(self):
        return self.handle.lock()

    def _on_cmd_vel(self, msg: Twist) -> None:
        self.command = (msg.linear.x, msg.linear.y, msg.angular.z)

    def _on_key(self, code: int) -> None:
        if code in KEYS:
            self.requests.append(KEYS[code])  # done by the physics thread at its next step

    def overlay(self) -> tuple[str, str]:
        n, d = self.node, self.node.data
        with self.lock():
            lin = d.xmat[n.base].reshape(3, 3).T @ d.qvel[0:3]
            wz = float(d.qvel[5])
        c = self.command
        return ("/cmd_vel\nmeasured\nfalls / pushes",
                f"vx {c[0]:+.2f}  vy {c[1]:+.2f}  wz {c[2]:+.2f}\nvx {lin[0]:+.2f}  vy {lin[1]:+.2f}  wz {wz:+.2f}\n"
                f"{n.falls} / {n.pushes}")

    def _run(self) -> None:
        h, grid = self.handle, mujoco.mjtGridPos
        while not self._stop.is_set():
            if not h.is_running():  # the window was closed: stop the node as Ctrl-C does
                os.kill(os.getpid(), signal.SIGINT)
                return
            start = time.monotonic()
            with h.lock():
                if self.saved is not None:
                    h.opt.flags[self.vis], h.user_scn.flags[self.rnd] = self.saved
            h.set_texts([(None, grid.mjGRID_TOPLEFT, *self.overlay()),
                         (None, grid.mjGRID_BOTTOMLEFT, "P: push, R: reset, ctrl + drag: perturb",
                          "drive: pgr ros teleop")])
            h.sync()
            if self.saved is None:
                with h.lock():
                    self.saved = (h.opt.flags[self.vis].copy(), h.user_scn.flags[self.rnd].copy())
            self._stop.wait(max(0.0, FRAME_S - (time.monotonic() - start)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.handle.close()

