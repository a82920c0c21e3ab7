"""The ROS 2 nodes as separate processes over real rclpy / Fast DDS on loopback: configure errors, sensor silence,
e-stop, 10,000+ malformed messages, a killed sim node, sim2sim end to end, and a colcon build of ros_ws."""

import json
import math
import os
import signal
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from pg_robotics.deploy import Policy
from pg_robotics_ros.call import CallError
from pg_robotics_ros.faults import Rig, fuzz
from pgr_cli import pgr
from policies import rewrite_metadata
from ros_harness import Harness, Sway, policy, ros  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parent.parent
RATE = 50.0


def swaying_robot(ros: Harness, policy: Path) -> Sway:
    """Standing robot whose joints sway a little, so that every fresh state gives a different command."""
    spec = Policy.load(policy).spec
    return Sway(ros, spec.joint_names, spec.default_joint_pos)


def start_policy_node(ros: Harness, policy: Path, **params):
    params = {"policy": policy, "autostart": True, "soft_start_s": 0.0, "rate_hz": RATE,
              "diagnostics_period_s": 0.25, **params}
    return ros.start("policy_node", params)


def changes(commands: list) -> int:
    return sum(not np.array_equal(a[1], b[1]) for a, b in zip(commands, commands[1:]))


def test_configure_fails_clearly_for_a_missing_file_a_broken_contract_a_bad_joint_map_or_robot_limits(ros, policy,
                                                                                                      tmp_path):
    bad = rewrite_metadata(policy, tmp_path / "bad.onnx", lambda m: m.update(schema_version=99))
    spec = Policy.load(policy).spec
    urdf = tmp_path / "robot.urdf"  # a robot whose FR hip cannot reach the policy's default pose (-0.1)
    urdf.write_text('<robot name="r"><joint name="FR_hip_joint" type="revolute">'
                    '<limit lower="0.3" upper="0.5" velocity="20"/></joint></robot>')
    cases = {"missing": ({"policy": tmp_path / "nope.onnx"}, "policy: no such file"),
             "contract": ({"policy": bad}, "schema_version"),
             "joints": ({"policy": policy, "joint_names": str([*spec.joint_names[:-1], "tail_joint"])},
                        "joint_names: must name each joint of the policy once; unknown ['tail_joint']"),
             "urdf": ({"policy": policy, "robot_description": urdf},
                      "FR_hip_joint: the policy's range [-0.863, 0.863] and the robot's [0.3, 0.5] give [0.3, 0.5], "
                      "which excludes the policy's default pose -0.1"),
             "limits": ({"policy": policy, "joint_pos_lower": [-1.0] * 11, "joint_pos_upper": [1.0] * 11},
                        "joint_pos_lower, joint_pos_upper: expected 12 values each")}
    procs = {name: ros.start("policy_node", params, name=f"policy_{name}") for name, (params, _) in cases.items()}
    for name, (_, message) in cases.items():
        with pytest.raises(CallError, match="configure failed"):
            ros.call(f"policy_{name}", "configure")
        values, text, level = ros.fresh_diagnostics(f"policy_{name}")
        assert level == 2 and message in text and values["state"] == "error"
        proc, log = procs[name]
        assert proc.poll() is None, "a failed configure must leave the node up"
        assert message in log.read_text()
    assert not ros.commands


def test_sensor_silence_holds_within_two_periods_and_recovers(ros, policy, tmp_path):
    # parameters from a --params-file, as on a robot
    params_file = tmp_path / "policy_node.yaml"
    config = yaml.safe_load((ROOT / "ros_ws/src/pg_robotics_ros/config/policy_node.yaml").read_text())
    config["policy_node"]["ros__parameters"].update(policy=str(policy), autostart=True, soft_start_s=0.0,
                                                    diagnostics_period_s=0.25)
    params_file.write_text(yaml.safe_dump(config))
    proc, _ = ros.start("policy_node", {}, ros_args=("--params-file", str(params_file)))
    robot = swaying_robot(ros, policy)
    ros.wait_for("commands", lambda: len(ros.commands) > 20, every=robot.publish)
    assert changes(ros.commands[-10:]) == 9, "a swaying robot gives a new command every period"
    silence_start = len(ros.commands)
    # sensors silent: the node keeps sending (hold)
    silent = ros.wait_for_commands("commands while the sensors are silent", silence_start - 1, 0.8 * RATE + 1)
    # hold from the 2nd period without a fresh state: at most 2 new commands (+1 in flight when the sensors stopped)
    assert changes(silent) <= 3
    first_hold = next(i for i in range(1, len(silent)) if np.array_equal(silent[i][1], silent[i - 1][1]))
    assert first_hold <= 3 and changes(silent[first_hold:]) == 0
    values, text, level = ros.fresh_diagnostics("policy_node")
    assert values["safety_stale"] > 0 and text == "stale joint_states, imu: holding" and level == 1
    assert values["stale_joint_states"] > 0 and values["stale_imu"] > 0
    recovered = ros.wait_for_commands("commands once the data returns", len(ros.commands), 30, every=robot.publish)
    assert changes(recovered[-20:]) == 19, "the policy runs again when the data returns"
    values, text, _ = ros.fresh_diagnostics("policy_node", every=robot.publish)
    assert text == "active" and values["safety_nonfinite"] == 0 and proc.poll() is None


def test_the_loop_outlives_a_tick_that_raises_and_reports_its_liveness():
    """In-process: the exception goes to on_error and is counted, the next ticks run on time; a tick that blocks
    shows as a growing last-tick age."""
    import threading
    import time

    from pg_robotics_ros.loop import PeriodicLoop

    errors, ticks, release = [], [], threading.Event()

    def tick() -> None:
        ticks.append(1)
        if len(ticks) == 3:
            raise ZeroDivisionError("division by zero")
        if len(ticks) == 40:
            release.wait(30)  # a stuck tick

    loop = PeriodicLoop(200.0, tick, on_error=errors.append)
    loop.start()
    deadline = time.monotonic() + 30
    while len(ticks) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = loop.stats()
    assert len(ticks) >= 40 and stats["loop_errors"] == 1 and isinstance(errors[0], ZeroDivisionError)
    while loop.last_tick_age_ms() < 200 and time.monotonic() < deadline:  # stuck: the age grows
        time.sleep(0.01)
    assert loop.last_tick_age_ms() >= 200 and loop.running
    release.set()
    loop.stop()
    with pytest.raises(ValueError, match="rate_hz"):
        PeriodicLoop(math.nan, tick)


def test_estop_latches_until_deactivate_and_activate(ros, policy):
    start_policy_node(ros, policy)
    robot = swaying_robot(ros, policy)
    ros.wait_for("commands", lambda: len(ros.commands) > 10, every=robot.publish)
    assert ros.call("policy_node", "estop") == "policy_node: estop done"
    # fresh, changing states keep coming
    held = ros.wait_for_commands("commands after the e-stop", len(ros.commands), 0.8 * RATE, every=robot.publish)
    assert changes(held) == 0
    values, text, level = ros.fresh_diagnostics("policy_node", every=robot.publish)
    assert text == "e-stop latched: e-stop service" and level == 2 and values["safety_estop"] >= len(held)
    ros.call("policy_node", "deactivate")
    ros.call("policy_node", "activate")  # the operator's deliberate reset: soft start from the measured pose
    resumed = ros.wait_for_commands("commands after the reset", len(ros.commands), 30, every=robot.publish)
    assert changes(resumed[-20:]) == 19


def test_a_lost_reply_is_recovered_without_repeating_a_transition_that_took_effect(ros, monkeypatch):
    """In-process nodes on the test's domain whose first reply is dropped, as a Fast DDS server does when it has
    not yet discovered a fresh client's reply reader: an e-stop is sent again; a configure that took effect counts
    as done and is not repeated; a configure that failed is sent again and fails clearly."""
    import threading

    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
    from std_srvs.srv import Trigger

    import pg_robotics_ros.call as call

    monkeypatch.setattr(call, "FIRST_PATIENCE_S", 0.5)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros.domain_id)
    configures = {"ok": 0, "broken": 0}

    class Arm(LifecycleNode):
        def on_configure(self, state):
            configures[self.get_name()] += 1
            return TransitionCallbackReturn.SUCCESS if self.get_name() == "ok" else TransitionCallbackReturn.FAILURE

    def drop_first_reply(service):
        send, dropped = service.send_response, []
        service.send_response = lambda response, header: dropped.append(1) if not dropped else send(response, header)
        return dropped

    estops = []

    def on_estop(request, response):
        estops.append(1)
        response.success = True
        return response

    robot = rclpy.create_node("robot", context=context)
    estop = robot.create_service(Trigger, "/robot/estop", on_estop)
    arms = [Arm(name, context=context) for name in configures]
    dropped = [drop_first_reply(estop)] + [drop_first_reply(next(s for s in arm.services
                                                                  if s.srv_name.endswith("/change_state")))
                                           for arm in arms]
    executor = MultiThreadedExecutor(context=context)
    for node in (robot, *arms):
        executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        assert ros.call("robot", "estop", timeout=20) == "robot: estop done"
        assert len(estops) == 2
        assert ros.call("ok", "configure", timeout=20) == "ok: configure done"
        assert configures["ok"] == 1 and ros.lifecycle_state("ok") == "inactive"
        with pytest.raises(call.CallError, match="broken: configure failed"):
            ros.call("broken", "configure", timeout=20)
        assert configures["broken"] == 2 and ros.lifecycle_state("broken") == "unconfigured"
        assert all(d == [1] for d in dropped), "each server dropped its first reply"
    finally:
        executor.shutdown()
        for node in (robot, *arms):
            node.destroy_node()
        rclpy.try_shutdown(context=context)
        thread.join(5)


def test_fuzz_of_ten_thousand_malformed_messages_on_every_input_never_gives_a_bad_command(ros, policy):
    """Joint states, IMU and /cmd_vel, each malformed every way (non-finite, wrong length, unknown or duplicate
    joints, old stamps, absurd values, non-unit quaternions): each rejected where it arrives or held; every
    command finite, inside the robot's limits (narrower than the policy's here) and within the rate limit."""
    rig = Rig(ros, policy)
    proc = rig.start_policy(stale_periods=2)
    values = fuzz(rig, messages=10_000)
    assert values["received"] >= 10_000
    for reason in ("length", "nonfinite", "stamp", "duplicate"):
        assert values[f"rejected_joint_states:{reason}"] > 0, reason
    assert values["rejected_imu:value"] > 0 and values["rejected_imu:stamp"] > 0, values
    assert values["rejected_cmd_vel:nonfinite"] > 0
    assert values["bad_state"] > 0, "states lacking a policy joint are held by the controller"
    c = rig.checks()["policy_node"]
    assert c["commands"] >= RATE, "the node kept its control loop running through the fuzz"
    assert c["nonfinite"] == c["out_of_limits"] == c["over_rate"] == 0, c
    assert proc.poll() is None


def test_killing_the_sim_node_does_not_crash_the_policy_node(ros, policy):
    sim, _ = ros.start("sim_node", {"policy": policy})
    node, _ = start_policy_node(ros, policy, soft_start_s=1.0)
    ros.wait_for("commands from the policy node driving the sim", lambda: len(ros.commands) > 25)
    values, _, _ = ros.fresh_diagnostics("mujoco_sim_node")
    assert values["received_commands"] > 0 and values["real_time_factor"] > 0.5
    sim.kill()
    sim.wait()
    held = ros.wait_for_commands("the policy node to go on publishing", len(ros.commands), RATE)  # a second's worth
    assert node.poll() is None
    assert changes(held[5:]) == 0
    values, text, _ = ros.fresh_diagnostics("policy_node")
    assert text == "stale joint_states, imu: holding" and values["safety_stale"] > 0


def test_sim2sim_reports_tracking_and_timing_on_the_domain_it_prints(ros, policy, tmp_path, monkeypatch):
    """`--domain-id N` (over ROS_DOMAIN_ID), printed at start; another process on that domain (here the harness,
    standing in for the user's own ROS tools) hears the policy node's commands and both nodes' diagnostics. The
    sim node plays a generated terrain tile (`--terrain`) instead of the plane."""
    monkeypatch.setenv("ROS_DOMAIN_ID", str((ros.domain_id + 1) % 233))  # --domain-id wins over it
    proc = subprocess.Popen([sys.executable, "-m", "pg_robotics.cli", "sim2sim", "--policy", str(policy),
                             "--duration", "3", "--settle", "0", "--log-dir", str(tmp_path / "logs"), "--json",
                             "--domain-id", str(ros.domain_id), "--terrain", "slope_up", "--difficulty", "0.4",
                             "--terrain-seed", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)

    def heard() -> bool:
        return len(ros.commands) > 20 and {"policy_node", "mujoco_sim_node"} <= set(ros.diagnostics.latest)

    try:
        ros.wait_for("the nodes' commands and diagnostics, heard from outside sim2sim",
                     lambda: heard() or proc.poll() is not None, timeout=120)
        assert heard(), "sim2sim ended before anyone on its domain heard its nodes"
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:  # SIGINT: sim2sim stops its nodes on the way out
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert proc.returncode == 0, err
    assert f"ROS domain {ros.domain_id} (--domain-id)" in err and f"ROS_DOMAIN_ID={ros.domain_id}" in err
    r = json.loads(out)
    assert r["ros_domain_id"] == ros.domain_id
    for key in ("distance_m", "lin_vel_error", "falls", "control_rate_hz", "period_jitter_p99_ms", "latency_p99_ms",
                "missed_deadlines", "safety_interventions"):
        assert key in r, key
    assert abs(r["control_rate_hz"] - RATE) / RATE < 0.05  # scheduled on absolute time
    assert r["odom_samples"] > 3 * 100 and r["lin_vel_error"] >= 0 and r["falls"] >= 0
    assert 0 < r["latency_p99_ms"] < 1000 and r["sim_real_time_factor"] > 0.5
    assert "configured" in (tmp_path / "logs" / "policy_node.log").read_text()
    assert r["ground"] == "slope_up (difficulty 0.4, seed 3)"
    assert "on slope_up terrain (difficulty 0.4, seed 3)" in (tmp_path / "logs" / "mujoco_sim_node.log").read_text()


def test_sim2sim_domain_is_the_flag_else_ros_domain_id_else_a_free_one(ros):
    from pg_robotics_ros.sim2sim import Sim2SimError, choose_domain, domain_in_use, free_domain

    assert choose_domain(None, {"ROS_DOMAIN_ID": " 42 "}) == (42, "ROS_DOMAIN_ID")
    assert choose_domain(7, {"ROS_DOMAIN_ID": "42"}) == (7, "--domain-id")
    domain, source = choose_domain(None, {"ROS_DOMAIN_ID": ""})
    assert source == "a free one" and 1 <= domain <= 101
    # the harness's participant holds its domain: a free pick passes it by
    assert domain_in_use(ros.domain_id)
    with pytest.raises(Sim2SimError, match="--domain-id: every ROS domain in .* is in use on this host"):
        free_domain([ros.domain_id])
    spare = next(d for d in range(ros.domain_id + 1, 233) if not domain_in_use(d))
    assert all(free_domain([ros.domain_id, spare]) == spare for _ in range(5))


def test_sim2sim_and_ros_call_refuse_bad_input(tmp_path, monkeypatch):
    result = pgr("sim2sim", "--policy", str(tmp_path / "none.onnx"))
    assert result.returncode == 2 and "--policy: no file" in result.stderr
    result = pgr("sim2sim", "--policy", str(tmp_path), "--rate-hz", "-5")
    assert result.returncode == 2 and "--rate-hz" in result.stderr
    for bad in ("233", "-1", "abc"):
        result = pgr("sim2sim", "--policy", str(tmp_path), "--domain-id", bad)
        assert result.returncode == 2 and "argument --domain-id: expected a ROS 2 domain id, an integer in 0..232" \
            in result.stderr, result.stderr
    (tmp_path / "p.onnx").touch()
    with monkeypatch.context() as env:
        env.setenv("ROS_DOMAIN_ID", "999")
        result = pgr("sim2sim", "--policy", str(tmp_path / "p.onnx"))
    assert result.returncode == 2 and "ROS_DOMAIN_ID: '999' is not a ROS 2 domain id" in result.stderr
    assert "pass --domain-id N" in result.stderr
    result = pgr("sim2sim", "--policy", str(tmp_path / "p.onnx"), "--terrain", "lava")
    assert result.returncode == 2 and "--terrain: unknown terrain type 'lava' (known: flat, rough" in result.stderr
    result = pgr("sim2sim", "--policy", str(tmp_path / "p.onnx"), "--terrain", "rough", "--difficulty", "1.5")
    assert result.returncode == 2 and "--difficulty: must be in [0, 1], got 1.5" in result.stderr
    result = pgr("ros", "call", "activate", "--node", "no_such_node", "--timeout", "1")
    assert result.returncode == 1 and "timed out" in result.stderr


def test_colcon_builds_the_ros_workspace(tmp_path):
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent))
    assert colcon, "colcon is installed by the dev extra"
    result = subprocess.run([colcon, "--log-base", str(tmp_path / "log"), "build", "--base-paths",
                             str(ROOT / "ros_ws/src"), "--build-base", str(tmp_path / "build"), "--install-base",
                             str(tmp_path / "install")], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    share = tmp_path / "install/pg_robotics_ros/share/pg_robotics_ros"
    assert (share / "launch/sim2sim.launch.py").is_file() and (share / "config/policy_node.yaml").is_file()
    for exe in ("policy_node", "mujoco_sim_node", "command_watchdog"):
        assert (tmp_path / f"install/pg_robotics_ros/lib/pg_robotics_ros/{exe}").is_file()
    assert (tmp_path / "install/pg_robotics_ros/share/ament_index/resource_index/packages/pg_robotics_ros").is_file()


def test_pgr_ros_policy_starts_the_node_with_ros_args_and_stops_cleanly_on_sigint(tmp_path):
    env = {**os.environ, "ROS_DOMAIN_ID": "201", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    proc = subprocess.Popen([sys.executable, "-m", "pg_robotics.cli", "ros", "policy", "--ros-args", "-p",
                             f"policy:={tmp_path / 'none.onnx'}", "-p", "autostart:=true"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        while "configure failed" not in line:
            line = proc.stdout.readline()
            assert line, "the node exited before reporting the configure failure"
        assert "policy: no such file" in line and proc.poll() is None
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
