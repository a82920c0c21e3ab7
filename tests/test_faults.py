"""Fault injection over the real policy node (separate processes, rclpy + Fast DDS on loopback, onnxruntime): each
fault of `pg_robotics_ros.faults` with what must follow, and every command the node publishes (and, through the
command watchdog, every command the robot receives) checked: finite, inside the robot's limits (narrower than the
policy's here), within the rate limit. No timing is asserted: events are counted, with generous deadlines."""

import signal

from pg_robotics_ros.fault_models import faulty_policy
from pg_robotics_ros.faults import (BAD_VALUES, Rig, bad_configure, bad_parameters, bad_policy, clock_steps,
                                    cmd_vel_silence, silence, stop_signal)
from ros_harness import policy, ros  # noqa: F401 - fixtures


def assert_every_command_safe(rig: Rig) -> None:
    for who, c in rig.checks().items():
        assert c["commands"] > 0 and c["nonfinite"] == c["out_of_limits"] == c["over_rate"] == 0, (who, c)


def test_each_input_silenced_alone_is_held_counted_for_it_and_recovered(ros, policy):
    rig = Rig(ros, policy)
    rig.start_policy(stale_periods=2)
    for which, name in (("joints", "joint_states"), ("imu", "imu")):
        before = rig.diagnostics()[0][f"stale_{name}"]
        r = silence(rig, which)
        assert r["message"] == f"stale {name}: holding" and r["level"] == 1, r
        assert r[f"stale_{name}"] - before >= 10 and r["time_to_safe_ms"] is not None and r["recovered"], r
    r = cmd_vel_silence(rig)
    assert r["stale_cmd_vel"] > 0 and r["recovered"], r
    assert_every_command_safe(rig)


def test_the_first_command_after_activate_and_after_an_estop_reset_is_the_measured_pose(ros, policy):
    """Never the default pose: the pose measured at that tick (clipped into the robot's limits), then every change
    within the rate limit."""
    rig = Rig(ros, policy)
    rig.sway.default = rig.sway.default + 0.1  # a robot standing away from the policy's default pose
    rig.start_policy(stale_periods=2)
    assert rig.measured(rig.raw[0][1]) and not rig.measured(rig.raw[5][1])
    ros.call("policy_node", "estop")
    rig.run_commands(10)
    ros.call("policy_node", "deactivate")
    since = len(rig.raw)
    ros.call("policy_node", "activate")
    rig.run_commands(20)
    assert rig.measured(rig.raw[rig.activated(since)][1])
    assert_every_command_safe(rig)


def test_clock_steps_either_way_never_latch_the_node(ros, policy):
    rig = Rig(ros, policy)
    rig.start_policy(stale_periods=2)
    r = clock_steps(rig)
    assert r["running_after_back"] and r["running_after_forward"], r
    assert r["reanchored_joint_states"] >= 1 and r["reanchored_imu"] >= 1 and r["rejected_stamps"] > 0, r
    assert_every_command_safe(rig)


def test_malformed_parameters_are_refused_at_configure_and_on_change(ros, policy):
    rig = Rig(ros, policy)
    rig.start_policy(stale_periods=2)
    r = bad_parameters(rig)
    assert r["refused"] == r["injected"] == len(BAD_VALUES) and r["running"], r
    assert r["reasons"][0] == "max_target_rate: expected a finite number, got nan"
    for row in bad_configure(ros, rig):  # nan, inf, negative, wrong type at start-up
        assert row["refused"] and row["level"] == 2 and row["up"], row
    assert_every_command_safe(rig)


def test_a_policy_that_outputs_nan_is_held_then_latches_the_estop(ros, policy, tmp_path):
    rig = Rig(ros, policy)
    rig.start_policy(faulty_policy(policy, tmp_path / "nan.onnx", "nan"), stale_periods=2)
    r = bad_policy(rig, "nan")
    assert r["time_to_safe_ms"] is not None and r["held_after"] and r["nonfinite"] >= 25, r
    assert r["message"] == "e-stop latched: 25 intervened periods in a row (last: nonfinite)" and r["level"] == 2
    assert_every_command_safe(rig)


def test_an_exception_in_the_tick_leaves_the_node_safe_inactive_and_reported(ros, policy, tmp_path):
    rig = Rig(ros, policy)
    rig.start_policy(faulty_policy(policy, tmp_path / "raise.onnx", "raise"), stale_periods=2)
    r = bad_policy(rig, "raise")
    assert r["time_to_safe_ms"] is not None and r["held_after"] and r["lifecycle"] == "inactive", r
    assert r["level"] == 2 and r["message"].startswith("control tick raised RuntimeError") and "Gather" in r["message"]
    assert r["loop_errors"] >= 1 and 0 <= r["loop_last_tick_age_ms"] < 5000, r  # the loop lives on
    ros.spin_for(0.5, every=rig.tick)  # longer than cmd_vel_timeout_s: the fault's cause, the command, is gone
    since = len(rig.raw)
    ros.call("policy_node", "activate")  # the operator's reset: the policy runs again
    rig.run_until("commands after the reset", lambda: len(rig.raw) > since + 20)
    rig.wait_running("the policy running again")
    assert rig.measured(rig.raw[rig.activated(since)][1])
    values, message, level = rig.diagnostics()
    assert message == "active" and level == 0 and values["fault"] == ""
    assert_every_command_safe(rig)


def test_sigterm_and_sigkill_of_the_active_node_leave_the_robot_damped(ros, policy):
    """Through the command watchdog: SIGTERM, the node's last command is a hold, then the watchdog damps (its
    targets end at the measured pose); SIGKILL, no last command, the watchdog damps after its timeout."""
    rig = Rig(ros, policy, watchdog=True)
    rig.start_watchdog()
    term = stop_signal(rig, rig.start_policy(stale_periods=2), signal.SIGTERM)
    assert term["exit_code"] == 0 and term["final_command_is_hold"] and term["damped_to_measured_pose"], term
    rig.stand()
    kill = stop_signal(rig, rig.start_policy(stale_periods=2), signal.SIGKILL)
    assert kill["exit_code"] == -signal.SIGKILL and kill["damped_to_measured_pose"], kill
    assert kill["time_to_safe_ms"] is not None
    assert_every_command_safe(rig)
    values, message, _ = ros.fresh_diagnostics("command_watchdog")
    assert message == "no command: damp" and values["timeouts"] >= 2 and values["safe_commands"] > 0
