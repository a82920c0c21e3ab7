"""Keyboard velocity teleop as plain data: which key changes which component of the command (v_x, v_y, yaw rate)
and by how much. The live viewer (`pgr play RUN --viewer`) and the ROS 2 teleop node (`pgr ros teleop`, which
publishes `/cmd_vel`) drive with this one table, so a robot is steered the same way in simulation and through ROS.

    command = next_command((0.0, 0.0, 0.0), "up")      # (0.1, 0.0, 0.0)
"""

from __future__ import annotations

LINEAR_STEP = 0.1  # m/s per key press
ANGULAR_STEP = 0.1  # rad/s per key press

# key name -> (command component: 0 v_x, 1 v_y, 2 yaw rate; change per press). Left and Q turn counter-clockwise
# (the positive y and yaw of ROS's base frame, x forward, z up).
VELOCITY_KEYS: dict[str, tuple[int, float]] = {
    "up": (0, LINEAR_STEP), "w": (0, LINEAR_STEP), "down": (0, -LINEAR_STEP), "s": (0, -LINEAR_STEP),
    "left": (1, LINEAR_STEP), "a": (1, LINEAR_STEP), "right": (1, -LINEAR_STEP), "d": (1, -LINEAR_STEP),
    "q": (2, ANGULAR_STEP), "e": (2, -ANGULAR_STEP),
}
STOP_KEY = "space"  # zero command
# quadruped-flat's training ranges of (v_x, v_y, yaw rate); a policy's own are in its contract (command_ranges)
DEFAULT_RANGES = ((-1.0, 1.0), (-0.6, 0.6), (-1.0, 1.0))
HELP = "arrows/WASD: forward and lateral speed, Q/E: yaw rate, space: stop"


def next_command(command, key: str, ranges=DEFAULT_RANGES) -> tuple[float, float, float]:
    """The command after pressing `key` (a name in VELOCITY_KEYS or STOP_KEY; other keys leave it as it is), each
    component kept within its (low, high) range and rounded to 1e-6 (ten presses of 0.1 make exactly 1.0)."""
    if key == STOP_KEY:
        return 0.0, 0.0, 0.0
    out = [float(v) for v in command]
    if key in VELOCITY_KEYS:
        axis, step = VELOCITY_KEYS[key]
        low, high = ranges[axis]
        out[axis] = round(min(max(out[axis] + step, low), high), 6)
    return out[0], out[1], out[2]
