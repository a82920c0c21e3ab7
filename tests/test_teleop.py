"""Keyboard teleop over ROS 2: the key -> Twist functions, the teleop node typed at through its stdin and heard on
/cmd_vel over loopback DDS (a ROS domain of the test process's own), and `pgr sim2sim --viewer` on an Xvfb display:
the sim node's world in a window whose P key pushes the robot, the teleop node driving /cmd_vel."""

import json
import signal
import subprocess
import sys
import time

import pytest
from geometry_msgs.msg import Twist

from pg_robotics_ros import common
from pg_robotics_ros.sim2sim import ros_env
from pg_robotics_ros.teleop import key_names, limits, twist
from ros_harness import policy, ros  # noqa: F401 - fixtures
from xdisplay import press, window, xvfb


def test_typed_keys_become_names_and_twists():
    assert key_names("wW \x1b[A\x1b[D\x1b[Bq?E1\x1b[C") == ["w", "w", "space", "up", "left", "down", "q", "e", "right"]
    msg = twist((0.3, -0.1, 0.2))
    assert (msg.linear.x, msg.linear.y, msg.angular.z) == (0.3, -0.1, 0.2) and msg.linear.z == msg.angular.x == 0.0
    assert limits(0.5, 0.2, 1.0) == ((-0.5, 0.5), (-0.2, 0.2), (-1.0, 1.0))
    with pytest.raises(ValueError, match="max_vy: must be a finite number >= 0, got -1"):
        limits(0.5, -1, 1.0)


def hear_cmd_vel(ros) -> list:
    heard: list = []
    ros.node.create_subscription(Twist, common.CMD_VEL,
                                 lambda m: heard.append((m.linear.x, m.linear.y, m.angular.z)), 10)
    return heard


def test_the_teleop_node_publishes_the_keys_on_cmd_vel_and_zero_when_it_stops(ros, tmp_path):
    heard = hear_cmd_vel(ros)
    log = tmp_path / "teleop.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pg_robotics_ros.teleop", "--ros-args", "-p", "max_vx:=0.2",
                                 "-p", "wz:=0.5"], env=ros_env(ros.domain_id), stdin=subprocess.PIPE, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        ros.wait_for("the starting command on /cmd_vel", lambda: heard and heard[-1] == (0.0, 0.0, 0.5))
        proc.stdin.write(b"www\x1b[De")  # vx held at max_vx 0.2; left: vy 0.1; e: wz 0.5 - 0.1
        proc.stdin.flush()
        ros.wait_for("the typed command", lambda: heard[-1] == (0.2, 0.1, 0.4))
        n = len(heard)
        ros.spin_for(0.5)
        assert 5 <= len(heard) - n <= 15, "published at rate_hz (20 Hz) while the command holds"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        ros.spin_for(0.5)
        assert heard[-1] == (0.0, 0.0, 0.0), "a stopping teleop leaves the robot a zero command"
    finally:
        proc.kill()
    assert "command vx +0.20 vy +0.10 wz +0.40" in log.read_text()


def test_sim2sim_viewer_shows_the_world_p_pushes_and_the_teleop_drives_cmd_vel(ros, policy, tmp_path):
    heard = hear_cmd_vel(ros)
    with xvfb() as env:
        proc = subprocess.Popen([sys.executable, "-m", "pg_robotics.cli", "sim2sim", "--policy", str(policy),
                                 "--viewer", "--duration", "12", "--cmd-vx", "0.3", "--domain-id", str(ros.domain_id),
                                 "--log-dir", str(tmp_path / "logs"), "--json"], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wid = window(env, proc=proc)
            ros.wait_for("the teleop's command", lambda: heard and heard[-1] == (0.3, 0.0, 0.0), timeout=60)
            ros.wait_for("the sim node's diagnostics", lambda: "mujoco_sim_node" in ros.diagnostics.latest)
            time.sleep(1.0)
            press(env, wid, "p")
            pushes = lambda: ros.diagnostics.latest["mujoco_sim_node"][1]["pushes"]  # noqa: E731
            ros.wait_for("a push", lambda: pushes() >= 1, timeout=20)
            ros.wait_for("the end of sim2sim", lambda: proc.poll() is not None, timeout=120)  # listening meanwhile
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert result["ended"] == "duration" and result["ros_domain_id"] == ros.domain_id and pushes() == 1
    values = ros.diagnostics.latest["mujoco_sim_node"][1]  # its last, over the run
    assert values["ticks"] > 1000 and values["real_time_factor"] > 0.95, values
    # the viewer does not starve the physics loop (how many 5 ms ticks run late depends on the machine and on the
    # test processes beside it: 14% on a slow host under `make test -n 2`, ~0 alone; speed is for benchmarks)
    assert 0 <= values["missed_deadlines"] < 0.5 * values["ticks"], values
