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

from pg_robotics.deploy import (ContractError, Controller, JointLimit, LimitsError, ObservationBuilder, Policy,
                                RobotState, SafetyCfg, SafetyFilter, StateError, read_description)
from pg_robotics.deploy.contract import OWN_KEYS, decode, parse
from pg_robotics.deploy.observation import projected_gravity
from pg_robotics.deploy.replay import load_record, replay
from pg_robotics.deploy.vector import VECTOR_KEYS
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
    assert meta["schema_version"] == 3 and meta["kind"] == "joint_position"
    assert meta["task"] == "quadruped-flat" and meta["robot"] == "go1"
    assert len(meta["joint_names"]) == 12 and meta["control_dt"] == pytest.approx(0.02)
    assert [t["name"] for t in meta["observation_terms"]] == [
        "base_ang_vel", "projected_gravity", "command", "joint_pos", "joint_vel", "last_action"]
    assert sum(t["dim"] for t in meta["observation_terms"]) == 45
    import yaml

    assert yaml.safe_load((run / "policy.yaml").read_text()) == meta
    assert [i.name for i in proto.graph.input] == ["obs"] and [o.name for o in proto.graph.output] == ["actions"]


def test_export_carries_the_keys_deploy_stacks_read_in_their_spelling(exported, tmp_path):
    """mjlab-style readers (the ROS 2 controllers of docs/architecture.md) split comma-separated values and read
    action_scale as a number: each key holds our contract's values, in joint_names order. Our runtime ignores keys
    it does not own and still reads a file exported before, whose lists are JSON."""
    run, _ = exported
    proto = onnx.load(str(run / "policy.onnx"))
    props = {p.key: p.value for p in proto.metadata_props}
    spec = Policy.load(run / "policy.onnx").spec

    def csv(key: str) -> list[str]:
        return props[key].split(",")

    assert csv("joint_names") == list(spec.joint_names) and len(spec.joint_names) == 12
    assert [float(v) for v in csv("default_joint_pos")] == list(spec.default_joint_pos)
    assert [float(v) for v in csv("joint_stiffness")] == list(spec.kp)
    assert [float(v) for v in csv("joint_damping")] == list(spec.kd)
    assert float(props["action_scale"]) == spec.action_scale
    assert csv("observation_names") == [t.name for t in spec.observation_terms]
    assert csv("command_names") == list(spec.command_names)
    # as exported before this spelling (every value JSON), with a key of another tool that is not JSON at all
    legacy = {k: json.dumps(v) for k, v in decode(props).items()}
    legacy.update(joint_stiffness=props["joint_stiffness"], run_path="some other tool's {not json")
    del proto.metadata_props[:]
    for key, value in legacy.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(tmp_path / "legacy.onnx"))
    assert legacy["joint_names"].startswith("[") and Policy.load(tmp_path / "legacy.onnx").spec == spec
    assert set(VECTOR_KEYS) | {"kind", "task_params"} <= OWN_KEYS, "decode keeps every key of the vector contract"


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
    (lambda m: m.update(schema_version=99), "schema_version: this runtime reads versions 1 to 3"),
    (lambda m: m["default_joint_pos"].__setitem__(3, math.nan), "default_joint_pos: non-finite value at index 3"),
    (lambda m: m.update(kd=m["kd"][:11]), "kd: expected 12 values (one per joint in joint_names), got 11"),
    (lambda m: m["observation_terms"][4].update(dim=13), "observation_terms[4].dim: joint_vel has 12 elements"),
    (lambda m: m["observation_terms"][1].update(history=2), "observation_terms: the terms add up to 48 values"),
    (lambda m: m["observation_terms"][0].update(name="base_lin_vel"), "unknown term 'base_lin_vel'"),
    (lambda m: m.update(joint_names=m["joint_names"][:11] + [m["joint_names"][0]]), "joint_names: duplicate name"),
    (lambda m: m["joint_pos_limits"].__setitem__(0, [1.0, -1.0]), "joint_pos_limits[0]: low 1.0 is above high"),
    (lambda m: m.update(control_dt=0), "control_dt: 0 is outside [0.0001, 1]"),
    (lambda m: m.update(control_dt=3600), "control_dt: 3600 is outside [0.0001, 1]"),
    (lambda m: m["observation_terms"][0].update(history=1000), "observation_terms[0].history: expected an integer in"),
    (lambda m: m["kp"].__setitem__(2, 0.0), "kp[2]: 0.0 is outside (0, 100000]"),
    (lambda m: m["kd"].__setitem__(0, -0.5), "kd[0]: -0.5 is outside (0, 10000]"),
    (lambda m: m["torque_limits"].__setitem__(5, 1e12), "torque_limits[5]: 1000000000000.0 is outside (0, 100000]"),
    (lambda m: m["kp"].__setitem__(1, "20"), "kp: not a number at index 1 ('20')"),
    (lambda m: m["kp"].__setitem__(1, 10 ** 400), "kp: not a number at index 1"),
    (lambda m: m.update(action_scale=True), "action_scale: expected a finite number, got True"),
    (lambda m: m["joint_pos_limits"].__setitem__(3, [-1e9, 1.0]), "joint_pos_limits[3]: -1000000000.0 is outside"),
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


GARBAGE = [None, True, "x", "", [], {}, [[]], {"a": 1}, -1, 0, 1e308, -1e308, 10 ** 400, math.nan, math.inf,
           [math.nan] * 12, ["1"] * 12, [[0.0, 1.0]] * 12, [None] * 3, list(range(100_000)), "y" * 100_000]


def test_any_metadata_value_of_any_type_or_size_is_a_contract_error_naming_its_key(exported):
    """Every key replaced by every kind of garbage: parse raises ContractError naming the key (or accepts a value
    that happens to be valid), never another exception."""
    run, _ = exported
    proto = onnx.load(str(run / "policy.onnx"))
    meta = decode({p.key: p.value for p in proto.metadata_props})
    refused = 0
    for key in meta:
        for value in GARBAGE:
            broken = json.loads(json.dumps(meta))
            broken[key] = value
            try:
                parse(broken)
            except ContractError as exc:
                assert key in str(exc), (key, value, exc)
                refused += 1
        for i, term in enumerate(meta["observation_terms"][:1]):  # and inside an observation term
            for field in term:
                for value in GARBAGE:
                    broken = json.loads(json.dumps(meta))
                    broken["observation_terms"][i][field] = value
                    try:
                        parse(broken)
                    except ContractError as exc:
                        assert str(exc).startswith(f"observation_terms[{i}]"), (field, value, exc)
                        refused += 1
    assert refused >= (len(meta) + len(meta["observation_terms"][0])) * (len(GARBAGE) - 3)
    with pytest.raises(ContractError, match="kp: metadata value nests too deeply"):
        decode({"kp": "[" * 100_000 + "]" * 100_000})


def test_a_model_whose_external_data_points_outside_its_folder_is_refused(tmp_path):
    """onnxruntime >= 1.24.1 (the pyproject's floor) refuses external-data paths that escape the model's folder."""
    from onnx import TensorProto, helper, numpy_helper

    np.ones(8, np.float32).tofile(tmp_path / "secret.bin")
    (tmp_path / "models").mkdir()
    weights = numpy_helper.from_array(np.ones((4, 2), np.float32), "W")
    weights.ClearField("raw_data")
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../secret.bin"), ("offset", "0"), ("length", "32")):
        weights.external_data.add(key=key, value=value)
    graph = helper.make_graph([helper.make_node("MatMul", ["obs", "W"], ["actions"])], "g",
                              [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, 2])], [weights])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "models/m.onnx"))
    with pytest.raises(ContractError, match="not a loadable ONNX model .*External data path .*escapes model directory"):
        Policy.load(tmp_path / "models/m.onnx")


# ---- the robot's own limits -------------------------------------------------------------------------------------------
URDF = """<robot name="r">
  <joint name="FR_hip_joint" type="revolute"><limit lower="-0.5" upper="0.4" velocity="5" effort="20"/></joint>
  <joint name="FR_thigh_joint" type="revolute"><limit lower="-1" upper="3" velocity="30"/>
    <safety_controller soft_lower_limit="0.2" soft_upper_limit="2.5" k_position="1"/></joint>
  <joint name="FR_calf_joint" type="continuous"/>
  <joint name="fixed_mount" type="fixed"/>
</robot>"""
MJCF = """<mujoco><compiler angle="degree"/>
  <default><joint range="-10 10"/><default class="hip"><joint range="-30 30"/></default></default>
  <worldbody><body childclass="hip"><joint name="FR_hip_joint"/>
    <body><joint name="FR_thigh_joint" class="main"/><joint name="FR_calf_joint" range="-150 -60"/>
      <joint name="free_spin" limited="false" range="-1 1"/></body></body></worldbody></mujoco>"""


def test_robot_descriptions_give_joint_limits(tmp_path):
    (tmp_path / "r.urdf").write_text(URDF)
    (tmp_path / "r.xml").write_text(MJCF)
    urdf = read_description(tmp_path / "r.urdf")
    assert urdf["FR_hip_joint"] == JointLimit(-0.5, 0.4, 5.0)
    assert urdf["FR_thigh_joint"] == JointLimit(0.2, 2.5, 30.0)  # the soft limits inside the hard ones
    assert urdf["FR_calf_joint"] == JointLimit() and "fixed_mount" not in urdf
    mjcf = read_description(tmp_path / "r.xml")
    assert mjcf["FR_hip_joint"] == JointLimit(math.radians(-30), math.radians(30))  # childclass, in degrees
    assert mjcf["FR_thigh_joint"] == JointLimit(math.radians(-10), math.radians(10))  # the top default class
    assert mjcf["FR_calf_joint"] == JointLimit(math.radians(-150), math.radians(-60)) and "free_spin" not in mjcf
    (tmp_path / "bad.urdf").write_text('<robot><joint name="j" type="revolute"><limit lower="a"/></joint></robot>')
    with pytest.raises(LimitsError, match="joint j lower: 'a' is not a number"):
        read_description(tmp_path / "bad.urdf")
    (tmp_path / "junk.xml").write_text("<robot")
    with pytest.raises(LimitsError, match="robot_description: cannot read"):
        read_description(tmp_path / "junk.xml")


def test_the_filter_uses_the_intersection_of_the_policys_and_the_robots_limits(exported, tmp_path):
    """A policy that claims +-100 rad is bounded by the robot's URDF; the URDF's velocity limit lowers the rate
    limit of that joint; a default pose outside the robot's range is refused, naming the joint."""
    run, _ = exported
    wide = rewrite_metadata(run / "policy.onnx", tmp_path / "wide.onnx",
                            lambda m: m.update(joint_pos_limits=[[-100.0, 100.0]] * 12))
    (tmp_path / "r.urdf").write_text(URDF)
    robot = read_description(tmp_path / "r.urdf")
    f = SafetyFilter(Policy.load(wide).spec, SafetyCfg(soft_start_s=0.0, max_target_rate=10.0), limits=robot)
    assert (f.lower[0], f.upper[0]) == (-0.5, 0.4) and (f.lower[1], f.upper[1]) == (0.2, 2.5)
    assert (f.lower[2], f.upper[2]) == (-100.0, 100.0)  # continuous in the URDF: the policy's own range
    np.testing.assert_allclose(f.max_step[:3], [5.0 * 0.02, 10.0 * 0.02, 10.0 * 0.02])
    measured = np.asarray(f.lower + f.upper) / 2
    f.apply(measured, measured)
    for _ in range(100):
        out = f.apply(np.full(12, 100.0), measured)
    assert out[0] == 0.4 and out[1] == 2.5 and f.counters["clamped"] > 0
    spec = Policy.load(run / "policy.onnx").spec
    with pytest.raises(LimitsError, match="FR_hip_joint: the policy's range .* and the robot's \\[0.3, 0.5\\] give "
                                          ".*excludes the policy's default pose -0.1"):
        SafetyFilter(spec, limits={"FR_hip_joint": JointLimit(0.3, 0.5)})
    with pytest.raises(LimitsError, match="FR_calf_joint: .* leave no range"):
        SafetyFilter(spec, limits={"FR_calf_joint": JointLimit(0.0, 1.0)})
    with pytest.raises(LimitsError, match="FR_calf_joint: .*less limit_margin 0.7 give .*excludes"):
        SafetyFilter(spec, SafetyCfg(limit_margin=0.7))


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
    first = ctl.step(standing_state(spec, stamp=0.5), (0.5, 0.0, 0.0))  # the first command: the measured pose
    np.testing.assert_array_equal(first, spec.default_joint_pos)
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
    """The first command is the measured pose itself; then the policy blends in over the soft start, every change
    within the rate limit."""
    spec = controller.spec
    limits = np.asarray(spec.joint_pos_limits)
    crouch = np.clip(np.asarray(spec.default_joint_pos) * 0.5, limits[:, 0], limits[:, 1])
    first = controller.step(standing_state(spec, joint_pos=crouch.tolist()), (0.0, 0.0, 0.0))
    np.testing.assert_array_equal(first, crouch)
    assert controller.safety.soft_start_steps == 10
    last = first
    for i in range(10):
        state = standing_state(spec, joint_pos=crouch.tolist(), stamp=2.0 + i)
        target = policy_target(controller, state, (0.0, 0.0, 0.0), controller.last_action[0])
        out = controller.step(state, (0.0, 0.0, 0.0))
        np.testing.assert_allclose(out, crouch + (i + 1) / 10 * (target - crouch), atol=1e-9)  # (i + 1) tenths
        assert np.abs(out - last).max() <= controller.safety.max_step.min() + 1e-12
        last = out
    assert not controller.safety.soft_starting
    state = standing_state(spec, joint_pos=crouch.tolist(), stamp=20.0)
    target = policy_target(controller, state, (0.0, 0.0, 0.0), controller.last_action[0])
    out = controller.step(state, (0.0, 0.0, 0.0))
    if controller.safety.counters["rate_limited"] == 0 and controller.safety.counters["clamped"] == 0:
        np.testing.assert_allclose(out, target, atol=1e-9)  # after the soft start: the policy itself
    assert np.abs(out - last).max() <= controller.safety.max_step.min() + 1e-12


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
    # 0.2 rad per 20 ms period; no escalation to an e-stop here (see test_persistent_interventions_latch_the_estop)
    f = SafetyFilter(spec, SafetyCfg(soft_start_s=0.0, max_target_rate=10.0, escalate_after=0))
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
    assert controller.stats()["out_of_order"] == 2  # refused by each input: joint states and IMU


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


@pytest.mark.parametrize("field, value, message", [
    ("max_target_rate", math.nan, "max_target_rate: expected a finite number, got nan"),
    ("limit_margin", math.nan, "limit_margin: expected a finite number, got nan"),
    ("soft_start_s", math.inf, "soft_start_s: expected a finite number, got inf"),
    ("max_target_rate", -1.0, "max_target_rate: -1.0 is outside (0, 1000]"),
    ("max_target_rate", 0.0, "max_target_rate: 0.0 is outside (0, 1000]"),
    ("stale_periods", 2.5, "stale_periods: expected an integer, got 2.5"),
    ("escalate_after", -3, "escalate_after: -3 is outside [0, 1e+06]"),
    ("soft_start_s", "2", "soft_start_s: expected a finite number, got '2'"),
    ("limit_margin", True, "limit_margin: expected a finite number, got True"),
    ("stale_mode", "brake", "stale_mode: expected 'hold' or 'damp'"),
])
def test_safety_settings_must_be_finite_and_in_range(field, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SafetyCfg(**{field: value})


def test_rate_limit_and_soft_start_are_per_second_at_the_loops_real_period(exported):
    """A 50 Hz policy run by a 200 Hz loop: a quarter of the per-period step, four times the soft-start periods."""
    run, _ = exported
    cfg = SafetyCfg(soft_start_s=0.5, max_target_rate=10.0)
    ctl = Controller.load(run / "policy.onnx", cfg, period_s=1 / 200)
    assert ctl.safety.max_step == pytest.approx(np.full(12, 10.0 / 200)) and ctl.safety.soft_start_steps == 100
    assert Controller.load(run / "policy.onnx", cfg).safety.soft_start_steps == 25  # the policy's 50 Hz
    with pytest.raises(ValueError, match="period_s: 0 is outside"):
        Controller.load(run / "policy.onnx", cfg, period_s=0)


def test_the_first_command_is_the_measured_pose_and_later_ones_respect_the_rate_limit(exported):
    """After start, and after an e-stop reset: nothing before a pose is measured (never the default pose), then the
    measured pose itself, then every change within max_step, from the first tick (no soft start here)."""
    run, _ = exported
    ctl = Controller.load(run / "policy.onnx", SafetyCfg(soft_start_s=0.0, max_target_rate=5.0))  # 0.1 rad/period
    spec, rng = ctl.spec, np.random.default_rng(0)
    limits = np.asarray(spec.joint_pos_limits)
    stamp = 0.0
    for attempt in range(2):
        assert ctl.step(None, (0.5, 0, 0)) is None and ctl.idle(None) is None
        pose = np.clip(np.asarray(spec.default_joint_pos) + rng.uniform(-0.6, 0.6, 12), limits[:, 0], limits[:, 1])
        outs = []
        for i in range(30):
            stamp += 1.0
            outs.append(ctl.step(standing_state(spec, stamp=stamp, joint_pos=pose.tolist()), (1.0, 0, 0)))
        np.testing.assert_array_equal(outs[0], pose)
        assert np.abs(np.diff(outs, axis=0)).max() <= 0.1 + 1e-12
        assert np.abs(outs[-1] - pose).max() > 0.1, "the policy moved the targets away from the measured pose"
        ctl.estop()
        ctl.reset()  # the operator's reset: the next command is the pose measured then


def test_each_input_has_its_own_age_check(exported):
    """A frozen IMU while joint states keep coming: stale, held, counted for the IMU alone; back when it returns."""
    run, _ = exported
    ctl = Controller.load(run / "policy.onnx", SafetyCfg(soft_start_s=0.0, stale_periods=2))
    spec = ctl.spec
    assert ctl.inputs == ("joint_states", "imu")
    outs = [ctl.step(standing_state(spec, stamp=1.0 + i, imu_stamp=1.0 + i, joint_vel=[0.1 * i] * 12), (0.5, 0, 0))
            for i in range(10)]
    assert not np.array_equal(outs[-1], outs[-2])
    frozen = [ctl.step(standing_state(spec, stamp=20.0 + i, imu_stamp=10.0, joint_vel=[0.1 * i] * 12), (0.5, 0, 0))
              for i in range(5)]
    for out in frozen[1:]:  # held from the 2nd period without a new IMU sample
        np.testing.assert_array_equal(out, frozen[0])
    s = ctl.stats()
    assert ctl.stale == ["imu"] and s["stale_imu"] == 4 and s["stale_joint_states"] == 0 and s["safety_stale"] == 4
    back = [ctl.step(standing_state(spec, stamp=30.0 + i, imu_stamp=30.0 + i, joint_vel=[0.1 * i] * 12), (0.5, 0, 0))
            for i in range(3)]
    assert ctl.stale == [] and not np.array_equal(back[-1], back[-2])


def test_clock_steps_either_way_are_recovered_from(exported):
    """A sender clock reset (stamps back by an hour for good) and one stamp an hour ahead: a few refused samples,
    held meanwhile, then the policy runs again; no reset needed."""
    run, _ = exported
    ctl = Controller.load(run / "policy.onnx", SafetyCfg(soft_start_s=0.0, stale_periods=2))
    spec = ctl.spec

    def run_from(stamp: float, n: int) -> list:
        return [ctl.step(standing_state(spec, stamp=stamp + 0.01 * i, joint_vel=[0.05 * i] * 12), (0.5, 0, 0))
                for i in range(n)]

    run_from(5000.0, 5)
    for jump in (-3600.0, 3600.0):
        start = 5000.0 + (jump if jump < 0 else 0.0)
        if jump > 0:  # one sample from the future, then the clock as it was
            ctl.step(standing_state(spec, stamp=5000.0 + jump), (0.5, 0, 0))
        outs = run_from(start, 10)
        assert not np.array_equal(outs[-1], outs[-2]), f"the policy runs again after a clock step of {jump} s"
    s = ctl.stats()
    assert s["reanchored"] == 2 * len(ctl.inputs) and s["out_of_order"] == 2 * 2 * len(ctl.inputs)


def test_persistent_interventions_latch_the_estop(exported, tmp_path):
    """A policy that outputs NaN from some command on: held each period, then after `escalate_after` periods in a
    row the e-stop latches with the reason; one good period in between restarts the count."""
    from pg_robotics_ros.fault_models import faulty_policy

    run, _ = exported
    path = faulty_policy(run / "policy.onnx", tmp_path / "nan.onnx", "nan")
    ctl = Controller.load(path, SafetyCfg(soft_start_s=0.0, escalate_after=5))
    spec = ctl.spec
    stamp = iter(range(1, 100))
    step = lambda vx: ctl.step(standing_state(spec, stamp=float(next(stamp))), (vx, 0, 0))  # noqa: E731
    step(0.0)
    good = step(0.0)
    for vx in (1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0):
        out = step(vx)
    assert not ctl.safety.estopped and ctl.safety.counters["nonfinite"] == 8
    np.testing.assert_array_equal(step(1.0), out)
    assert ctl.safety.estopped and ctl.safety.estop_reason == "5 intervened periods in a row (last: nonfinite)"
    np.testing.assert_array_equal(step(0.0), out)  # latched: only reset() clears it
    assert np.isfinite(good).all()


WRONG = [None, "abc", 3, 1.5, {"a": 1}, [None] * 12, ["x"] * 12, [[1.0]] * 12, object(), math.nan]


def test_malformed_state_and_command_of_any_type_are_held_never_raised(controller):
    spec = controller.spec
    run_steps(controller, 12)
    held = controller.step(None, (0.3, 0, 0))
    rng = np.random.default_rng(0)
    fields = ["joint_names", "joint_pos", "joint_vel", "orientation_xyzw", "angular_velocity", "stamp", "imu_stamp"]
    for i in range(300):
        field, value = fields[i % len(fields)], WRONG[int(rng.integers(len(WRONG)))]
        state = standing_state(spec, **{"stamp": 100.0 + i, field: value})
        command = (0.3, 0, 0) if i % 3 else WRONG[int(rng.integers(len(WRONG)))]
        out = controller.step(state, command)
        assert out.shape == (12,) and np.isfinite(out).all()
        assert np.abs(out - held).max() <= controller.safety.max_step.min() + 1e-12
        held = out
    assert controller.step("not a state", (0, 0, 0)) is not None
    s = controller.stats()
    assert s["bad_state"] > 100 and s["bad_stamp"] > 0 and controller.last_error


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
