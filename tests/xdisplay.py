"""A virtual X display for the live-viewer tests: Xvfb on a free display number (Xvfb picks it: -displayfd), and
xdotool to find a window and press keys in it. Tests skip, saying why, only when Xvfb or xdotool is not installed
(`make` installs both when run as root: Debian's xvfb and xdotool)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import contextmanager

import pytest


def need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (apt-get install {package}; `make` does it when run as root)")
    return path


@contextmanager
def xvfb(screen: str = "640x480x24"):
    """An environment (os.environ with DISPLAY and MUJOCO_GL=glfw) for processes on a fresh Xvfb display."""
    need("Xvfb", "xvfb")
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", screen, "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as f:
            number = f.readline().strip()  # written once the server accepts clients
        if not number:
            raise RuntimeError(f"Xvfb exited with code {proc.wait(5)} before it opened a display")
        yield {**os.environ, "DISPLAY": f":{number}", "MUJOCO_GL": "glfw"}
    finally:
        proc.terminate()
        proc.wait(10)


def window(env: dict, name: str = "MuJoCo", timeout: float = 120.0, proc=None) -> str:
    """The id of the first window whose title contains `name`, once it exists (a process that exits meanwhile:
    an AssertionError with its output)."""
    xdotool = need("xdotool", "xdotool")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = subprocess.run([xdotool, "search", "--name", name], env=env, capture_output=True, text=True)
        if found.stdout.split():
            return found.stdout.split()[0]
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process exited ({proc.returncode}) before its window opened:\n"
                                 f"{proc.communicate()[1][-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"no window named {name!r} after {timeout:g} s")


def press(env: dict, wid: str, *keys: str, delay_ms: int = 50) -> None:
    """Press and release each X key name (Up, w, space, bracketright, ...) in window `wid`."""
    subprocess.run([need("xdotool", "xdotool"), "key", "--window", wid, "--delay", str(delay_ms), *keys], env=env,
                   check=True, capture_output=True)
