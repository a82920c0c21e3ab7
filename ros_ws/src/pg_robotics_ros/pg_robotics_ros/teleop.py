"""`keyboard_teleop` (`pgr ros teleop`): drive a robot from a terminal. The keys of `pg_robotics.deploy.teleop`
(the live viewer's: arrows/WASD forward and lateral speed, Q/E yaw rate, space stop) set a velocity command, published
as `geometry_msgs/Twist` on `/cmd_vel` every 1 / `rate_hz` s (so the policy node's `cmd_vel_timeout_s` does not fire
while it runs) and once more as zero when the node stops.

Keys come from stdin: a terminal is put in cbreak mode (each key at once, without Enter; Ctrl-C still stops the node)
and restored on exit; from a pipe the bytes are read as they come (how the tests type).

Run: `pgr ros teleop` (= `python -m pg_robotics_ros.teleop --ros-args -p max_vx:=0.8`), on the robot's ROS domain.
"""

from __future__ import annotations

import os
import sys
import threading

from geometry_msgs.msg import Twist
from rclpy.duration import Duration
from rclpy.node import Node

from pg_robotics.deploy import teleop

from . import common

PARAMETERS = {
    "rate_hz": 20.0,  # /cmd_vel publishing rate
    "max_vx": 1.0, "max_vy": 0.6, "max_wz": 1.0,  # |command| limits (m/s, m/s, rad/s): quadruped-flat's ranges
    "vx": 0.0, "vy": 0.0, "wz": 0.0,  # the command to start from
}
ARROWS = {"\x1b[A": "up", "\x1b[B": "down", "\x1b[C": "right", "\x1b[D": "left"}  # what a terminal sends


def key_names(text: str) -> list[str]:
    """The keys in typed text, as deploy.teleop names them: arrows (escape sequences), space, letters (either
    case); anything else is dropped."""
    names, i = [], 0
    while i < len(text):
        if text[i:i + 3] in ARROWS:
            names.append(ARROWS[text[i:i + 3]])
            i += 3
            continue
        ch = text[i]
        i += 1
        if ch == " ":
            names.append(teleop.STOP_KEY)
        elif ch.isascii() and ch.isalpha():
            names.append(ch.lower())
    return names


def twist(command) -> Twist:
    msg = Twist()
    msg.linear.x, msg.linear.y, msg.angular.z = (float(v) for v in command)
    return msg


def limits(max_vx: float, max_vy: float, max_wz: float) -> tuple[tuple[float, float], ...]:
    values = {"max_vx": max_vx, "max_vy": max_vy, "max_wz": max_wz}
    for name, value in values.items():
        if not 0 <= value < float("inf"):
            raise ValueError(f"{name}: must be a finite number >= 0, got {value}")
    return tuple((-v, v) for v in values.values())


class TeleopNode(Node):
    def __init__(self, stdin=None, **kwargs):
        super().__init__("keyboard_teleop", **kwargs)
        for name, default in PARAMETERS.items():
            self.declare_parameter(name, default)
        p = lambda name: float(common.param(self, name))  # noqa: E731
        if not 0 < p("rate_hz") <= 1000:
            raise ValueError(f"rate_hz: must be in (0, 1000], got {p('rate_hz')}")
        self.ranges = limits(p("max_vx"), p("max_vy"), p("max_wz"))
        self.command = tuple(min(max(p(n), lo), hi) for n, (lo, hi) in zip(("vx", "vy", "wz"), self.ranges))
        self.pub = self.create_publisher(Twist, common.CMD_VEL, 10)  # reliable: any /cmd_vel reader matches
        self.create_timer(1.0 / p("rate_hz"), lambda: self.pub.publish(twist(self.command)))
        self._fd = (stdin or sys.stdin).fileno()
        self._terminal = None
        if os.isatty(self._fd):
            import termios
            import tty

            self._terminal = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd)
        threading.Thread(target=self._read, name="keys", daemon=True).start()
        self.get_logger().info(f"{teleop.HELP}; command {self.command}")

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._fd, 64)
            except OSError:
                return
            if not data:  # end of input: the command stays
                return
            for name in key_names(data.decode(errors="ignore")):
                self.key(name)

    def key(self, name: str) -> None:
        command = teleop.next_command(self.command, name, self.ranges)
        if command != self.command:
            self.command = command
            self.get_logger().info(f"command vx {command[0]:+.2f} vy {command[1]:+.2f} wz {command[2]:+.2f}")

    def close(self) -> None:
        self.command = (0.0, 0.0, 0.0)
        self.pub.publish(twist(self.command))
        # reliable /cmd_vel: leave only once the readers have the zero (a loaded machine could otherwise lose it
        # with the process), at most 1 s
        self.pub.wait_for_all_acked(Duration(seconds=1.0))
        if self._terminal is not None:
            import termios

            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._terminal)


def main(args: list[str] | None = None) -> int:
    return common.run(TeleopNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
