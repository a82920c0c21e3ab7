"""ONNX export and the torch-free deploy runtime: contract checks, sim-vs-deploy replay, joint mapping by name,
every safety behaviour, and a fresh venv without torch running a model."""

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from pg_robotics.deploy import (ContractError, Controller, ObservationBuilder, Policy, RobotState, SafetyCfg,
                                SafetyFilter, StateError)
from pg_robotics.deploy.contract import decode, parse
from pg_robotics.deploy.observation import projected_gravity
from pg_robotics.deploy.replay import load_record, replay
from pgr_cli import pgr
from policies import rewrite_metadata, train_and_export

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A briefly trained run and its exported policy; returns (run dir, export report)."""
    run = tmp_path_factory.mktemp("deploy") / "run"
    return run, train_and_export(run)


def standing_state(spec, names=None, stamp=1.0, **changes):
    names = list(names or spec.joint_names)
    pos = dict(zip(spec.joint_names, spec.default_joint_pos))
    fields = dict(joint_names=names, joint_pos=[pos.get(n, 0.0) for n in names], joint_vel=[0.0] * len(names),
                  orientation_xyzw=(0.0, 0.0, 0.0, 1.0), angular_velocity=(0.0, 0.0, 0.0), stamp=stamp)
    fields.update(changes)
    return RobotState(**fields)


# ---- export ---------------------------------------------------------------------------------------------------------
def test_export_checks_itself_and_writes_the_contract(exported):
    run, report = exported
    assert report["onnx_max_abs_diff_random"] <= 1e-5 and report["onnx_max_abs_diff_recorded"] <= 1e-5
    assert report["replay_action_max_abs_diff"] <= 1e-4 and report["replay_samples"] >= 1000
    proto = onnx.load(str(run / "policy.onnx"))
    meta = decode({p.key: p.value for p in proto.metadata_props})
    assert meta["schema_version"] == 2 and meta["kind"] == "joint_position" and meta["task"] == "quadruped-flat" and meta["robot"] == "go1"
    assert len(meta["joint_names"]) == 12 and meta["control_dt"] == pytest.approx(0.02)
    assert [t["name"] for t in meta["observation_terms"]] == [
        "base_ang_vel", "projected_gravity", "command", "joint_pos", "joint_vel", "last_action"]
    assert sum(t["dim"] for t in meta["observation_terms"]) == 45
    import yaml

    assert yaml.safe_load((run / "policy.yaml").read_text()) == meta
    assert [i.name for i in proto.graph.input] == ["obs"] and [o.name for o in proto.graph.output] == ["actions"]


def test_export_of_a_missing_run_exits_2(tmp_path):
    result = pgr("export", str(tmp_path / "nope"))
    assert result.returncode == 2 and "not a run directory" in result.stderr


# ---- sim and deploy agree -------------------------------------------------------------------------------------------
def test_states_recorded_in_sim_replay_to_the_same_actions(exported, tmp_path):
    run, _ = exported
    rec_path = tmp_path / "rec.npz"
    result = pgr("eval", str(run), "--episodes", "1", "--seconds", "2", "--record", str(rec_path), "--json")
    assert result.returncode == 0, result.stderr
    rec = load_record(rec_path)
    assert rec["obs"].shape[1:] == (6 * 4, 45) and rec["orientation_xyzw"].shape[-1] == 4
    policy = Policy.load(run / "policy.onnx")
    for shuffle in (None, 3):
        check = replay(policy, rec, shuffle_seed=shuffle)
        assert check["obs_max_abs_diff"] <= 1e-5 and check["action_max_abs_diff"] <= 1e-4, check
    # the replay catches the classic mistake: a w, x, y, z quaternion read as x, y, z, w
    wrong = dict(rec, orientation_xyzw=rec["orientation_xyzw"][..., [3, 0, 1, 2]])
    assert replay(policy, wrong)["obs_max_abs_diff"] > 0.5


# ---- the contract -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("kp"), "kp: missing from the policy metadata"),
    (lambda m: m.update(schema_version=99), "schema_version: this runtime reads versions 1 to 2"),
    (lambda m: m["default_joint_pos"].__setitem__(3, math.nan), "default_joint_pos: non-finite value at index 3"),
    (lambda m: m.update(kd=m["kd"][:11]), "kd: expected 12 values (one per joint in joint_names), got 11"),
    (lambda m: m["observation_terms"][4].update(dim=13), "observation_terms[4].dim: joint_vel has 12 elements"),
    (lambda m: m["observation_terms"][1].update(history=2), "observation_terms: the terms add up to 48 values"),
    (lambda m: m["observation_terms"][0].update(name="base_lin_vel"), "unknown term 'base_lin_vel'"),
    (lambda m: m.update(joint_names=m["joint_names"][:11] + [m["joint_names"][0]]), "joint_names: duplicate name"),
    (lambda m: m["joint_pos_limits"].__setitem__(0, [1.0, -1.0]), "joint_pos_limits[0]: low 1.0 is above high"),
    (lambda m: m.update(control_dt=0), "control_dt: must be > 0"),
])
def test_contract_violations_are_refused_naming_the_key(exported, tmp_path, change, message):
    run, _ = exported
    bad = rewrite_metadata(run / "policy.onnx", tmp_path / "bad.onnx", change)
    with pytest.raises(ContractError, match=re.escape(message)):
        Policy.load(bad)


def test_a_missing_or_broken_file_is_a_contract_error(tmp_path):
    with pytest.raises(ContractError, match="no such file"):
        Policy.load(tmp_path / "none.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ContractError, match="not a loadable ONNX model"):
        Policy.load(tmp_path / "junk.onnx")


# ---- joints by name -------------------------------------------------------------------------------------------------
def test_joint_order_and_extra_joints_do_not_change_actions(exported):
    run, _ = exported
    a, b = Controller.load(run / "policy.onnx"), Controller.load(run / "policy.onnx")
    spec = a.spec
    rng = np.random.default_rng(0)
    names = list(spec.joint_names)
    shuffled = [names[i] for i in rng.permutation(len(names))] + ["gripper_joint", "head_pan"]
    for step in range(30):
        pos = {n: q + rng.normal(0, 0.1) for n, q in zip(names, spec.default_joint_pos)}
        vel = {n: rng.normal(0, 1) for n in names}
        common = dict(orientation_xyzw=(0.02, -0.01, 0.3, math.sqrt(1 - 0.02**2 - 0.01**2 - 0.3**2)),
                      angular_velocity=(0.1, -0.2, 0.3), stamp=step + 1.0)
        ta = a.step(RobotState(names, [pos[n] for n in names], [vel[n] for n in names], **common), (0.5, 0, 0))
        tb = b.step(RobotState(shuffled, [pos.get(n, 7.0) for n in shuffled], [vel.get(n, 7.0) for n in shuffled],
                               **common), (0.5, 0, 0))
        np.testing.assert_array_equal(ta, tb)
    assert a.stats()["bad_state"] == 0


def test_a_missing_joint_is_an_error_at_start_up(exported):
    run, _ = exported
    ctl = Controller.load(run / "policy.onnx")
    names = list(ctl.spec.joint_names)
    with pytest.raises(StateError, match=f"lacks the policy's joint\\(s\\) {names[5]}"):
        ctl.start(names[:5] + names[6:])


# ---- the runtime's fast paths against the plain definitions -----------------------------------------------------------
def test_the_bound_run_gives_session_runs_actions(exported):
    run, _ = exported
    policy = Policy.load(run / "policy.onnx")
    for obs in np.random.default_rng(0).normal(0, 2, (50, policy.spec.num_obs)).astype(np.float32):
        policy.obs[0] = obs
        policy.run_bound()
        np.testing.assert_array_equal(policy.action[0], policy(obs[None])[0])


def test_the_observation_is_each_term_offset_scaled_and_clipped(exported):
    """Ordinary states and ones with elements beyond the clip, odd scales, joints in another order plus an extra
    one, and a term the model does not read (joint_vel) carrying garbage, which must not matter."""
    run, _ = exported
    proto = onnx.load(str(run / "policy.onnx"))
    meta = decode({p.key: p.value for p in proto.metadata_props})
    rng = np.random.default_rng(0)
    meta["observation_terms"] = [dict(t, scale=rng.uniform(-3, 3, t["dim"]).tolist(), clip=100.0)
                                 for t in meta["observation_terms"] if t["name"] != "joint_vel"]
    spec = parse(meta)
    names = list(spec.joint_names)
    state_names = [names[i] for i in rng.permutation(len(names))] + ["head_pan"]
    builder = ObservationBuilder(spec, state_names)
    clipped = 0
    for i in range(50):
        size = 100.0 if i % 2 else 1.0
        pos, vel = rng.normal(0, size, len(state_names)), np.full(len(state_names), math.nan)
        quat = rng.normal(0, 1, 4)
        quat /= np.linalg.norm(quat)
        command, last_action, ang_vel = rng.normal(0, size, 3), rng.normal(0, size, 12), rng.normal(0, size, 3)
        state = RobotState(state_names, pos.tolist(), vel.tolist(), quat.tolist(), ang_vel.tolist())
        by_name = dict(zip(state_names, pos))
        raw = {"base_ang_vel": ang_vel, "projected_gravity": np.asarray(projected_gravity(quat)), "command": command,
               "joint_pos": np.asarray([by_name[n] for n in names]) - spec.default_joint_pos,
               "last_action": last_action}
        scaled = np.concatenate([raw[t.name] * t.scale for t in spec.observation_terms])
        expected = np.clip(scaled, -100.0, 100.0)
        np.testing.assert_allclose(builder.build(state, command, last_action), expected, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(builder.measured, [by_name[n] for n in names])
        clipped += np.any(expected != scaled)
    assert 0 < clipped < 50


def test_the_safety_filter_is_a_rate_limit_then_the_joint_limits(exported):
    """Changes well under, near and over max_step, targets inside and outside the limits: every output and every
    count as the filter defines them."""
    run, _ = exported
    spec = Policy.load(run / "policy.onnx").spec
    f = SafetyFilter(spec, SafetyCfg(soft_start_s=0.0, max_target_rate=10.0))  # 0.2 rad per period
    limits = np.asarray(spec.joint_pos_limits)
    measured = np.asarray(spec.default_joint_pos)
    last = f.apply(measured, measured)
    rng = np.random.default_rng(0)
    counts = {"rate_limited": 0, "clamped": 0}
    for i in range(600):
        targets = last + rng.normal(0, (0.01, 0.1, 1.0)[i % 3], 12)
        lo, hi = np.maximum(last - f.max_step, limits[:, 0]), np.minimum(last + f.max_step, limits[:, 1])
        expected = np.minimum(np.maximum(targets, lo), hi)
        out = f.apply(targets, measured)
        np.testing.assert_array_equal(out, expected)
        if not np.array_equal(expected, targets):
            counts["rate_limited"] += bool(np.any(np.abs(targets - last) > f.max_step))
            counts["clamped"] += bool(np.any(targets < limits[:, 0]) or np.any(targets > limits[:, 1]))
        last = out
    assert counts["rate_limited"] > 100 and counts["clamped"] > 10
    assert {k: f.counters[k] for k in counts} == counts


def test_clipped_actions_are_fed_back_and_scaled_into_targets(exported, tmp_path):
    run, _ = exported
    path = rewrite_metadata(run / "policy.onnx", tmp_path / "clip.onnx", lambda m: m.update(action_clip=0.05))
    ctl = Controller.load(path, SafetyCfg(soft_start_s=0.0, max_target_rate=1000.0))
    spec, rng = ctl.spec, np.random.default_rng(0)
    clipped = 0
    for i in range(20):
        state = standing_state(spec, stamp=i + 1.0, joint_vel=rng.normal(0, 1, 12).tolist())
        obs = ObservationBuilder(spec, spec.joint_names).build(state, (0.5, 0.0, 0.0), ctl.last_action[0])
        action = np.clip(ctl.policy(obs[None])[0], -spec.action_clip, spec.action_clip)
        out = ctl.step(state, (0.5, 0.0, 0.0))
        np.testing.assert_array_equal(ctl.last_action[0], action)
        if ctl.safety.counters["clamped"] == 0:
            np.testing.assert_allclose(out, np.asarray(spec.default_joint_pos) + action * spec.action_scale, atol=1e-9)
        clipped += int(np.sum(np.abs(action) == np.float32(spec.action_clip)))
    assert clipped > 0


# ---- safety -----------------------------------------------------------------------------------------------------------
@pytest.fixture
def controller(exported):
    run, _ = exported
    ctl = Controller.load(run / "policy.onnx", SafetyCfg(soft_start_s=0.2, stale_periods=2))
    ctl.start(ctl.spec.joint_names)
    return ctl


def run_steps(ctl, n, start=1.0, **changes):
    out = None
    for i in range(n):
        out = ctl.step(standing_state(ctl.spec, stamp=start + i, **changes), (0.3, 0.0, 0.0))
    return out


def policy_target(ctl, state, command, last_action):
    """What the policy alone asks for in `state` (no safety filter)."""
    spec = ctl.spec
    obs = ObservationBuilder(spec, spec.joint_names).build(state, command, last_action)
    action = np.clip(ctl.policy(obs[None])[0], -spec.action_clip, spec.action_clip)
    return np.asarray(spec.default_joint_pos) + action * spec.action_scale


def test_soft_start_blends_from_the_measured_pose(controller):
    spec = controller.spec
    limits = np.asarray(spec.joint_pos_limits)
    crouch = np.clip(np.asarray(spec.default_joint_pos) * 0.5, limits[:, 0], limits[:, 1])
    state = standing_state(spec, joint_pos=crouch.tolist())
    target = policy_target(controller, state, (0.0, 0.0, 0.0), np.zeros(12, dtype=np.float32))
    first = controller.step(state, (0.0, 0.0, 0.0))
    assert controller.safety.soft_start_steps == 10
    np.testing.assert_allclose(first, crouch + 0.1 * (target - crouch), atol=1e-9)  # a tenth of the way
    for i in range(9):
        last = controller.step(standing_state(spec, joint_pos=crouch.tolist(), stamp=2.0 + i), (0.0, 0.0, 0.0))
    assert not controller.safety.soft_starting
    state = standing_state(spec, joint_pos=crouch.tolist(), stamp=20.0)
    target = policy_target(controller, state, (0.0, 0.0, 0.0), controller.last_action[0])
    out = controller.step(state, (0.0, 0.0, 0.0))
    if controller.safety.counters["rate_limited"] == 0 and controller.safety.counters["clamped"] == 0:
        np.testing.assert_allclose(out, target, atol=1e-9)  # after the soft start: the policy itself
    assert np.abs(out - last).max() <= controller.safety.max_step + 1e-12


def test_non_finite_state_holds_the_last_safe_command(controller):
    held = run_steps(controller, 15)
    bad_pos = list(controller.spec.default_joint_pos)
    bad_pos[2] = math.nan
    out = controller.step(standing_state(controller.spec, stamp=100.0, joint_pos=bad_pos), (0.3, 0, 0))
    np.testing.assert_array_equal(out, held)
    out = controller.step(standing_state(controller.spec, stamp=101.0, angular_velocity=(math.inf, 0, 0)),
                          (0.3, 0, 0))
    np.testing.assert_array_equal(out, held)
    out = controller.step(standing_state(controller.spec, stamp=102.0, orientation_xyzw=(0, 0, 0, 0.5)), (0.3, 0, 0))
    np.testing.assert_array_equal(out, held)
    s = controller.stats()
    assert s["bad_state"] == 3 and s["safety_nonfinite"] == 3 and s["interventions"] >= 6


def test_non_finite_policy_output_is_held(exported):
    run, _ = exported
    spec = Policy.load(run / "policy.onnx").spec
    f = SafetyFilter(spec, SafetyCfg(soft_start_s=0.0))
    measured = np.asarray(spec.default_joint_pos)
    first = f.apply(measured + 0.01, measured)
    out = f.apply(np.full(12, math.nan), measured)
    np.testing.assert_array_equal(out, first)
    assert f.counters["nonfinite"] == 1


def test_targets_are_clamped_to_limits_and_rate_limited(exported):
    run, _ = exported
    spec = Policy.load(run / "policy.onnx").spec
    f = SafetyFilter(spec, SafetyCfg(soft_start_s=0.0, max_target_rate=10.0))  # 0.2 rad per 20 ms period
    limits = np.asarray(spec.joint_pos_limits)
    measured = np.asarray(spec.default_joint_pos)
    f.apply(measured, measured)
    out = f.apply(measured + 5.0, measured)
    np.testing.assert_allclose(out, np.minimum(measured + 0.2, limits[:, 1]))
    assert f.counters["rate_limited"] == 1
    for _ in range(100):
        out = f.apply(limits[:, 1] + 1.0, measured)
    np.testing.assert_array_equal(out, limits[:, 1])
    assert f.counters["clamped"] >= 90


def test_stale_state_holds_within_two_periods_and_recovers(controller):
    run_steps(controller, 15)
    same = standing_state(controller.spec, stamp=15.0)  # no newer stamp: silence
    outs = [controller.step(same, (0.3, 0, 0)) for _ in range(4)]
    for out in outs[1:]:  # the second silent period already holds
        np.testing.assert_array_equal(out, outs[0])
    assert controller.stats()["safety_stale"] == 3  # periods 2, 3, 4 of silence
    controller.step(None, (0.3, 0, 0))
    assert controller.stats()["safety_stale"] == 4
    fresh = run_steps(controller, 3, start=20.0)
    assert controller.stats()["safety_stale"] == 4 and np.isfinite(fresh).all()
    controller.step(standing_state(controller.spec, stamp=5.0), (0.3, 0, 0))  # an old message
    assert controller.stats()["out_of_order"] == 1


def test_estop_latches_until_reset(controller):
    held = run_steps(controller, 15)
    controller.estop()
    for i in range(5):
        out = controller.step(standing_state(controller.spec, stamp=50.0 + i, joint_vel=[3.0] * 12), (1.0, 0, 0))
        np.testing.assert_array_equal(out, held)
    assert controller.stats()["safety_estop"] == 5
    controller.reset()
    assert not controller.safety.estopped
    run_steps(controller, 2, start=60.0)
    assert controller.stats()["safety_estop"] == 5


def test_fuzzed_states_never_give_a_bad_command(controller):
    spec, rng = controller.spec, np.random.default_rng(1)
    limits = np.asarray(spec.joint_pos_limits)
    garbage = [math.nan, math.inf, -math.inf, 1e30, -1e30, 0.0]
    for i in range(2000):
        names = list(spec.joint_names)
        if rng.random() < 0.1:
            names = names[:int(rng.integers(0, 12))]
        pos = rng.normal(0, 3, len(names))
        vel = rng.normal(0, 50, len(names))
        quat = rng.normal(0, 1, 4)
        if rng.random() < 0.8:
            quat /= np.linalg.norm(quat)
        for arr in (pos, vel, quat):
            if rng.random() < 0.2 and len(arr):
                arr[int(rng.integers(0, len(arr)))] = garbage[int(rng.integers(0, len(garbage)))]
        command = rng.normal(0, 2, 3) if rng.random() < 0.9 else (math.nan, 0, 0)
        state = RobotState(names, pos.tolist(), vel.tolist(), quat.tolist(), rng.normal(0, 5, 3).tolist(),
                           stamp=float(i + 1 - 3 * (rng.random() < 0.05)))
        out = controller.step(state, command)
        assert out.shape == (12,) and np.isfinite(out).all()
        assert np.all(out >= limits[:, 0]) and np.all(out <= limits[:, 1])
    s = controller.stats()
    assert s["steps"] == 2000 and s["bad_state"] > 100 and s["command_clipped"] > 100


# ---- a robot computer: base install only, no torch -------------------------------------------------------------------
def test_a_fresh_venv_without_torch_runs_the_policy(exported, tmp_path):
    run, _ = exported
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "pg_robotics", "envs", "deploy", "configs", "ros_ws/src/pg_robotics_ros"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, src / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    install = subprocess.run([str(py), "-m", "pip", "install", "-q", str(src)], capture_output=True, text=True,
                             timeout=600)
    assert install.returncode == 0, install.stderr
    code = (
        "import sys, importlib.util\n"
        "assert importlib.util.find_spec('torch') is None and importlib.util.find_spec('mujoco') is None\n"
        "from pg_robotics.deploy import Controller, RobotState\n"
        f"ctl = Controller.load({str(run / 'policy.onnx')!r})\n"
        "names = list(ctl.spec.joint_names)\n"
        "out = ctl.step(RobotState(names, list(ctl.spec.default_joint_pos), [0.0]*12, (0,0,0,1), (0,0,0), 1.0),"
        " (0.5, 0, 0))\n"
        "assert out.shape == (12,) and 'torch' not in sys.modules\n"
        "from pg_robotics.envs.robots import preset_file, resolve_mjcf\n"
        "assert resolve_mjcf('go1.xml').stat().st_size > 1000 and preset_file('go1')  # the wheel ships the robot\n"
        "print('ok', len(out))\n")
    result = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "ok 12", result.stderr
    bench = subprocess.run([str(venv / "bin" / "pgr"), "bench", "deploy", "--policy", str(run / "policy.onnx"),
                            "--steps", "500", "--json"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert bench.returncode == 0, bench.stderr
    figures = json.loads(bench.stdout)
    assert figures["steps"] == 500 and 0 < figures["ort_p50_us"] <= figures["step_p50_us"]
