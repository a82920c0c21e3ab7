"""A user's own robot from a config alone: robot-only MJCF + preset YAML, the scene composed with MjSpec, task terms
as data. The robots here are built inside the tests: a Go1 as robot description repositories publish it (other
names, a free-joint base, feet as geoms in the lower-leg bodies, unnamed collision geoms, a mesh, no actuators,
sensors or floor) and a toy biped from primitives (no free joint, feet as bodies)."""

import json
import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch
import yaml

from pg_robotics.envs import ConfigError, make, task_config
from pg_robotics.envs.config import to_dict
from pg_robotics.envs.robots import load, resolve_mjcf
from pg_robotics.envs.scene import legged_scene, sim_model

from pgr_cli import pgr

LEGS = {"FR": "fr", "FL": "fl", "RR": "rr", "RL": "rl"}
TETRAHEDRON = "v 0 0 0\nv 0.1 0 0\nv 0 0.1 0\nv 0 0 0.1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"
SHORT = {"sim": {"episode_length_s": 0.2}}  # 10 steps: every world finishes an episode quickly


def write_repo_go1(folder: Path) -> Path:
    """Our Go1 as a repository would publish it: renamed bodies, joints and geoms, the thigh and calf collision
    geoms unnamed, the IMU site gone, a visual mesh on the base; no actuators, sensors or floor. Returns the preset."""
    spec = mujoco.MjSpec.from_file(str(resolve_mjcf("go1.xml")))
    spec.modelname = "repo_go1"
    spec.delete(spec.site("imu"))
    for body in spec.bodies[1:]:
        leg = body.name[:2]
        body.name = "base_link" if body.name == "trunk" else f"{LEGS[leg]}_{body.name[3:]}_link"
    for joint in spec.joints[1:]:
        joint.name = joint.name.replace("_joint", "").replace("calf", "knee")
        joint.name = LEGS[joint.name[:2]] + joint.name[2:]
    for geom in spec.geoms:
        if geom.name == "trunk":
            geom.name = "base_collision"
        elif geom.name.endswith("_foot"):
            geom.name = f"{LEGS[geom.name[:2]]}_toe"  # a geom in the calf body
        elif geom.name:
            geom.name = ""  # thigh and calf capsules: unnamed, as exported URDFs often are
    (folder / "meshes").mkdir(parents=True)
    (folder / "meshes" / "shell.obj").write_text(TETRAHEDRON)
    spec.modelfiledir, spec.meshdir = str(folder), "meshes"  # the file is written there
    spec.add_mesh(name="shell", file="shell.obj")
    spec.body("base_link").add_geom(type=mujoco.mjtGeom.mjGEOM_MESH, meshname="shell", contype=0, conaffinity=0,
                                    group=1, mass=0)
    (folder / "repo_go1.xml").write_text(spec.to_xml())
    legs = ["fr", "fl", "rr", "rl"]
    preset = {
        "name": "repo_go1", "mjcf": "repo_go1.xml", "base_body": "base_link", "init_height": 0.3,
        "default_joint_pos": {"f._thigh": 0.8, "r._thigh": 1.0, ".*_knee": -1.5, "[fr]r_hip": -0.1,
                              "[fr]l_hip": 0.1},
        "kp": {".*": 20.0}, "kd": {".*": 0.5},
        "torque_limits": {".*_hip": 23.7, ".*_thigh": 23.7, ".*_knee": 35.55},
        "velocity_limits": {".*_hip": 30.1, ".*_thigh": 30.1, ".*_knee": 20.06},
        "feet": [f"{leg}_toe" for leg in legs],
        "undesired_contacts": [f"{leg}_{part}_link" for part in ("thigh", "calf") for leg in legs],
        "constrained_contacts": ["base_link"] + [f"{leg}_thigh_link" for leg in legs],
        "termination_contacts": ["base_link"],
    }
    path = folder / "repo_go1.yaml"
    path.write_text(yaml.safe_dump(preset, sort_keys=False))
    return path


def write_biped(folder: Path, **changes) -> Path:
    """A two-legged toy from MjSpec primitives: a box torso with no joint of its own (the scene makes it float),
    hip roll, hip pitch and knee per leg, each foot a body with one unnamed box."""
    spec = mujoco.MjSpec()
    spec.modelname = "toy_biped"
    box, capsule = mujoco.mjtGeom.mjGEOM_BOX, mujoco.mjtGeom.mjGEOM_CAPSULE
    torso = spec.worldbody.add_body(name="torso", pos=[0, 0, 0.56])
    torso.add_geom(name="torso", type=box, size=[0.08, 0.12, 0.1], mass=4.0)
    torso.add_site(name="imu_site")
    for side, y in (("l", 0.08), ("r", -0.08)):
        thigh = torso.add_body(name=f"{side}_thigh", pos=[0, y, -0.1])
        thigh.add_joint(name=f"{side}_hip_roll", axis=[1, 0, 0], range=[-0.5, 0.5])
        thigh.add_joint(name=f"{side}_hip_pitch", axis=[0, 1, 0], range=[-1.5, 1.5])
        thigh.add_geom(type=capsule, fromto=[0, 0, -0.02, 0, 0, -0.2], size=[0.03, 0, 0], mass=1.0)
        shin = thigh.add_body(name=f"{side}_shin", pos=[0, 0, -0.22])
        shin.add_joint(name=f"{side}_knee", axis=[0, 1, 0], range=[-2.0, 0.0])
        shin.add_geom(name=f"{side}_shin", type=capsule, fromto=[0, 0, -0.02, 0, 0, -0.2], size=[0.025, 0, 0],
                      mass=0.5)
        foot = shin.add_body(name=f"{side}_foot", pos=[0, 0, -0.23])
        foot.add_geom(type=box, size=[0.06, 0.03, 0.01], mass=0.2)
    (folder / "biped.xml").write_text(spec.to_xml())
    preset = {
        "name": "toy_biped", "mjcf": "biped.xml", "base_body": "torso", "imu": "imu_site", "init_height": 0.57,
        "default_joint_pos": {".*_hip_pitch": 0.2, ".*_knee": -0.4, ".*_hip_roll": 0.0},
        "kp": {".*": 40.0}, "kd": {".*": 1.0}, "torque_limits": {".*": 30.0}, "velocity_limits": {".*": 20.0},
        "feet": ["l_foot", "r_foot"], "undesired_contacts": ["l_thigh", "r_thigh", "l_shin", "r_shin"],
        "constrained_contacts": ["torso"], "termination_contacts": ["torso"], **changes,
    }
    path = folder / "biped.yaml"
    path.write_text(yaml.safe_dump(preset, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def repo_go1(tmp_path_factory) -> Path:
    return write_repo_go1(tmp_path_factory.mktemp("robots") / "repo_go1")


@pytest.fixture(scope="module")
def biped(tmp_path_factory) -> Path:
    return write_biped(tmp_path_factory.mktemp("biped"))


# ---- the user's Go1: train, eval, export from the CLI ------------------------------------------------------------
def test_a_repository_go1_trains_evaluates_and_exports_from_the_cli(repo_go1, tmp_path):
    run = tmp_path / "run"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    train = subprocess.run(
        [sys.executable, "-m", "pg_robotics.cli", "train", "quadruped-flat", "--set", f"task.robot={repo_go1}",
         "--max-iterations", "2", "--num-envs", "8", "--run-dir", str(run), "--no-progress",
         "--set", "algorithm.num_steps_per_env=8"], capture_output=True, text=True, timeout=600, cwd=elsewhere)
    assert train.returncode == 0, train.stderr[-3000:]
    robot = yaml.safe_load((run / "config.yaml").read_text())["task"]["robot"]
    assert robot["preset"] == str(repo_go1) and robot["mjcf"] == str(repo_go1.parent / "repo_go1.xml")

    out = pgr("eval", str(run), "--episodes", "1", "--seconds", "1.5", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert 0 <= result["fall_rate"] <= 1 and len(result["per_command"][0]["duty_factor"]) == 4
    assert 0 <= result["leg_contact"] <= 1

    out = pgr("export", str(run))  # checks itself: the deploy runtime replays recorded sim states within 1e-4
    assert out.returncode == 0, out.stderr[-3000:]
    meta = yaml.safe_load((run / "policy.yaml").read_text())
    assert meta["robot"] == "repo_go1" and meta["joint_names"][:3] == ["fr_hip", "fr_thigh", "fr_knee"]
    assert meta["kp"] == [20.0] * 12 and meta["torque_limits"][2] == pytest.approx(35.55)

    from pg_robotics.deploy import Policy
    from pg_robotics.deploy.replay import replay
    from pg_robotics.evaluate import record

    check = replay(Policy.load(run / "policy.onnx"), record(run, worlds=2, seconds=0.4), shuffle_seed=1)
    assert check["action_max_abs_diff"] <= 1e-4


def test_the_repository_go1_is_our_go1_under_other_names(repo_go1):
    """Same masses, same contacts: the scene from the renamed robot-only file equals the one from ours."""
    ours = legged_scene(load("go1")).compile()
    theirs = legged_scene(load(str(repo_go1))).compile()
    assert theirs.nu == 12 and theirs.nbody == ours.nbody and theirs.nmesh == 1
    np.testing.assert_array_equal(theirs.body_mass, ours.body_mass)
    np.testing.assert_array_equal(theirs.actuator_gainprm, ours.actuator_gainprm)
    # its unnamed thigh and calf capsules were named by the scene, and watched
    assert theirs.sensor("fr_calf_link_geom0_force").dim[0] == 3
    assert theirs.sensor("fr_toe_force").dim[0] == 3 and theirs.sensor("fr_toe_pos").dim[0] == 3
    assert theirs.sensor("imu_quat").dim[0] == 4  # at the base body: the robot has no IMU site


def test_pgr_scene_writes_a_model_that_loads_by_itself(repo_go1, tmp_path):
    out = tmp_path / "view" / "scene.xml"
    result = pgr("scene", "--set", f"task.robot={repo_go1}", "--out", str(out))
    assert result.returncode == 0, result.stderr
    saved = mujoco.MjModel.from_xml_path(str(out))  # from another folder than the robot's, its mesh included
    env = make("quadruped-flat", 1, overrides={"robot": str(repo_go1)})
    m = env.sim.model
    for name in ("body_mass", "geom_size", "geom_friction", "actuator_gainprm", "actuator_biasprm", "jnt_range",
                 "sensor_type", "key_qpos", "mesh_vertnum"):
        np.testing.assert_array_equal(getattr(saved, name), getattr(m, name), err_msg=name)
    assert saved.geom("floor").id == 0  # the ground first in the world body
    env.close()
    arm = pgr("scene", "--task", "arm-push", "--out", str(tmp_path / "arm.xml"))
    assert arm.returncode == 0, arm.stderr
    assert mujoco.MjModel.from_xml_path(str(tmp_path / "arm.xml")).body("object").id > 0


# ---- a biped: no task code changes ---------------------------------------------------------------------------------
def test_a_biped_preset_constructs_steps_and_logs_every_term(biped):
    env = make("quadruped-flat", 4, seed=0, overrides={"robot": str(biped), **SHORT})
    assert env.joint_names == ["l_hip_roll", "l_hip_pitch", "l_knee", "r_hip_roll", "r_hip_pitch", "r_knee"]
    assert env.num_obs == {"policy": 3 + 3 + 3 + 6 * 3, "critic": 3 + 3 + 3 + 3 + 6 * 3}
    assert env.sim.model.joint("root").type == mujoco.mjtJoint.mjJNT_FREE  # the scene made the torso float
    episodes = []
    gen = torch.Generator().manual_seed(0)
    for t in range(12):
        obs, reward, done, info = env.step(torch.rand(4, 6, generator=gen) * 0.4 - 0.2)
        assert torch.isfinite(obs["policy"]).all() and torch.isfinite(reward).all()
        if "episode" in info:
            episodes.append(info["episode"])
        if t == 8:  # the last step of the first episode
            s = env.state
    assert s.foot_forces.shape == (4, 2, 3) and s.undesired_contact_forces.shape == (4, 4, 3)
    assert s.constrained_contact_forces.shape == s.termination_contact_forces.shape == (4, 1, 3)
    assert episodes and set(episodes[0]) == set(task_config("quadruped-flat").rewards.terms) | {"length"}
    assert set(info["constraint_violation"]) == set(task_config("quadruped-flat").constraints.terms)
    standing = s.foot_forces[..., 2].abs().sum(1)
    assert (standing > 0.5 * 7.4 * 9.81).all(), standing  # the feet carry most of its 7.4 kg
    env.close()


def test_imu_sensors_read_the_base(biped):
    """The IMU site sits at the torso's origin, unrotated: its orientation and gyro are the free joint's."""
    env = make("quadruped-flat", 2, seed=1, overrides={"robot": str(biped)})
    for _ in range(3):
        env.step(torch.zeros(2, 6))
    model = env.sim.world_model(0)
    data = mujoco.MjData(model)
    data.qpos[:], data.qvel[:] = env.sim.qpos[0].numpy(), env.sim.qvel[0].numpy()
    mujoco.mj_forward(model, data)
    np.testing.assert_allclose(data.sensor("imu_quat").data, data.qpos[3:7], atol=1e-12)
    np.testing.assert_allclose(data.sensor("imu_gyro").data, data.qvel[3:6], atol=1e-12)
    assert np.abs(data.qvel[3:6]).max() > 1e-3  # it moves: the check is not 0 == 0
    env.close()


def test_a_torque_motor_robot_applies_the_scaled_action(biped):
    env = make("quadruped-flat", 2, seed=0, overrides={"robot": {"preset": str(biped), "actuator": "motor",
                                                                 "action_scale": 5.0},
                                                       "randomization": {"enabled": False}})
    actions = torch.tensor([[1.0, -1.0, 0.5, 0.0, 2.0, 100.0]]).repeat(2, 1)
    env.step(actions)
    assert env.sim.model.actuator_biastype[0] == 0  # a plain motor: no position servo inside MuJoCo
    expected = torch.clamp(actions * 5.0, -30.0, 30.0)
    assert torch.allclose(env.state.torques, expected)
    with pytest.raises(ConfigError, match="task.robot.actuator: the deploy contract carries joint position targets"):
        env.deploy_contract()
    env.close()


def test_terms_from_the_users_own_module_and_a_second_use_of_a_function(biped):
    env = make("quadruped-flat", 2, seed=0, overrides={"robot": str(biped), **SHORT, "rewards": {
        "height": {"func": "base_height", "weight": -5.0, "params": {"target": 0.5}},
        "upright": {"func": "test_robots:upright", "weight": 0.5}}})
    assert {"height", "upright"} <= set(env.reward_weights)
    for _ in range(10):
        _, _, _, info = env.step(torch.zeros(2, 6))
    assert info["episode"]["upright"] > 0 and info["episode"]["height"] <= 0
    env.close()


def upright(s) -> torch.Tensor:
    """A reward term of the user's: 1 when the base is level."""
    return -s.projected_gravity[:, 2]


def test_the_command_curriculum_widens_the_range_and_resumes(biped):
    overrides = {"robot": str(biped), **SHORT, "randomization": {"enabled": False},
                 "curriculum": {"command_lin_vel": {"params": {"threshold": -1.0, "step": 0.25,
                                                               "limit": [-1.5, 1.5]}}}}
    env = make("quadruped-flat", 2, seed=0, overrides=overrides)
    for _ in range(10):
        env.step(torch.zeros(2, 6))
    assert env.command_ranges["lin_vel_x"] == (-1.25, 1.25)  # one episode ended in every world: one widening
    resumed = make("quadruped-flat", 2, seed=0, overrides=overrides)
    resumed.load_state_dict(env.state_dict())
    assert resumed.command_ranges["lin_vel_x"] == (-1.25, 1.25)
    env.close()
    resumed.close()


# ---- configuration ------------------------------------------------------------------------------------------------
def test_a_preset_yaml_can_start_from_a_shipped_robot(tmp_path):
    path = tmp_path / "stiff_go1.yaml"
    path.write_text("preset: go1\nname: stiff_go1\nkp: {'.*': 30.0}\n")
    cfg = task_config("quadruped-flat", {"robot": str(path)})
    assert cfg.robot.name == "stiff_go1" and cfg.robot.kp == {".*": 30.0} and cfg.robot.base_body == "trunk"
    assert cfg.robot.preset == str(path) and cfg.robot.mjcf == "go1/go1.xml"
    # what a run directory stores (to_dict) loads back to the same config
    again = task_config("quadruped-flat", to_dict(cfg))
    assert again == cfg


def test_term_sections_take_shorthands_params_and_removal():
    cfg = task_config("quadruped-flat", {
        "rewards": {"torques": -1e-4, "feet_air_time": {"params": {"target": 0.4}}, "lin_vel_z": 0},
        "terminations": {"upside_down": False}, "constraints": {"joint_acc": False}})
    assert cfg.rewards.torques.weight == -1e-4
    assert cfg.rewards.feet_air_time.params == {"target": 0.4, "min_command": 0.1}  # params merge key by key
    assert cfg.rewards.lin_vel_z.weight == 0.0  # off: the env neither computes nor logs it
    assert not cfg.terminations.upside_down.enabled and not cfg.constraints.joint_acc.enabled
    flat = to_dict(cfg)["rewards"]
    assert flat["only_positive"] is True and flat["torques"]["weight"] == -1e-4 and "terms" not in flat
    assert task_config("quadruped-flat", to_dict(cfg)) == cfg


@pytest.mark.parametrize("task, saved", [("quadruped-flat", "legacy_quadruped_flat_task.yaml"),
                                         ("arm-push", "legacy_arm_push_task.yaml")])
def test_task_configs_saved_by_the_previous_version_still_load(task, saved):
    """Run directories written before presets (config.yaml: Go1 values in task.robot, reward parameters beside the
    weights, randomization ranges; the arm's robot.mjcf) evaluate and export as before: the saved defaults of
    b018f26 (tests/data) give today's defaults."""
    old = yaml.safe_load((Path(__file__).parent / "data" / saved).read_text())
    assert task_config(task, old) == task_config(task)
    old["robot"]["mjcf"] = "spot.xml"
    with pytest.raises(ConfigError, match="task.robot.mjcf: a config of an older version with its own model"):
        task_config(task, old)


@pytest.mark.parametrize("overrides, message", [
    ({"rewards": {"tracking_lin_vel": {"params": {"sigmaa": 0.2}}}},
     "task.rewards.tracking_lin_vel.params.sigmaa: tracking_lin_vel takes no such parameter (takes: sigma)"),
    ({"rewards": {"mine": {"func": "no_such_term", "weight": 1.0}}},
     "task.rewards.mine.func: unknown rewards term 'no_such_term' (known: tracking_lin_vel"),
    ({"rewards": {"mine": {"func": "nowhere:fn", "weight": 1.0}}}, "task.rewards.mine.func: cannot import 'nowhere:fn'"),
    ({"randomization": {"slippery": {"func": "friction"}}}, "task.randomization.slippery.params: friction needs range"),
    ({"randomization": {"push": {"mode": "sometimes"}}}, "task.randomization.push: mode: expected one of startup"),
    ({"robot": {"actuator": "hydraulic"}}, "task.robot: actuator: expected one of position, motor"),
    ({"ground": {"type": "moon"}}, "task.ground.type: unknown ground 'moon' (known: plane, terrain)"),
    ({"robot": "no_such_robot"}, "task.robot.preset: no robot preset 'no_such_robot' (shipped: go1, panda"),
    ({"robot": {"fet": []}}, "task.robot.fet: unknown key"),
    ({"rewards": {"torques": None}}, "task.rewards.torques: a term is turned off, not removed: set weight: 0"),
])
def test_bad_task_config_names_the_field(overrides, message):
    with pytest.raises(ConfigError) as err:
        make("quadruped-flat", 1, overrides=overrides)
    assert message in str(err.value), str(err.value)


# ---- bad robot presets: the error names the field and lists what the model has -------------------------------------
@pytest.mark.parametrize("changes, message", [
    ({"default_joint_pos": {"F[RL]_thigh_joint": 0.8}},
     "task.robot.default_joint_pos: 'F[RL]_thigh_joint' matches no joint in repo_go1.xml (joints: fr_hip, fr_thigh, "
     "fr_knee, fl_hip"),
    ({"feet": ["FR_foot"]}, "task.robot.feet: 'FR_foot' is no geom or body of repo_go1.xml (geoms: base_collision, "
                            "fr_toe, fl_toe, rr_toe, rl_toe, and unnamed ones in base_link, fr_hip_link, fr_thigh_link"),
    ({"base_body": "trunk"}, "task.robot.base_body: no body 'trunk' in repo_go1.xml (bodies: base_link, fr_hip_link"),
    ({"imu": "imu"}, "task.robot.imu: no site or body 'imu' in repo_go1.xml (sites: none; bodies: base_link"),
    ({"undesired_contacts": ["FR_calf"]}, "task.robot.undesired_contacts: no body 'FR_calf' in repo_go1.xml"),
    ({"joints": ["FR_.*"]}, "task.robot.joints: 'FR_.*' matches no joint in repo_go1.xml (joints: fr_hip,"),
    ({"kp": {"fr_.*": 20.0}}, "task.robot.kp: no value for joint(s) fl_hip"),
    ({"velocity_limits": {"fr_hip": 30.0}}, "task.robot.velocity_limits: no value for joint(s) fr_thigh"),
    ({"mjcf": "missing.xml"}, "task.robot.mjcf: no model 'missing.xml'"),
])
def test_bad_presets_name_the_field_and_list_the_model(repo_go1, changes, message):
    with pytest.raises(ConfigError) as err:
        make("quadruped-flat", 1, overrides={"robot": {"preset": str(repo_go1), **changes}})
    assert message in str(err.value), str(err.value)


def test_a_body_watched_for_contact_needs_a_geom_besides_its_feet(tmp_path):
    path = write_biped(tmp_path, feet=["l_foot", "r_foot"], undesired_contacts=["l_foot"])
    with pytest.raises(ConfigError, match="task.robot: body 'l_foot' has no collision geom apart from feet"):
        make("quadruped-flat", 1, overrides={"robot": str(path)})


def test_a_robot_file_with_a_floor_is_refused(tmp_path):
    spec = mujoco.MjSpec.from_file(str(resolve_mjcf("go1.xml")))
    spec.worldbody.add_geom(name="ground", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 1])
    (tmp_path / "go1_floor.xml").write_text(spec.to_xml())
    with pytest.raises(ConfigError, match=r"task.robot.mjcf: go1_floor.xml has geoms in its world body .*the scene "
                                          r"adds the ground"):
        make("quadruped-flat", 1, overrides={"robot": {"mjcf": str(tmp_path / "go1_floor.xml")}})


# ---- the ROS sim node's model ------------------------------------------------------------------------------------
def test_the_sim_node_model_is_the_training_scene(repo_go1):
    go1 = sim_model("go1.xml")
    assert go1.nu == 12 and go1.nkey == 1 and go1.sensor("trunk_force").dim[0] == 3
    np.testing.assert_array_equal(go1.body_mass, legged_scene(load("go1")).compile().body_mass)
    assert sim_model(str(repo_go1)).sensor("base_collision_force").dim[0] == 3
    with pytest.raises(ConfigError, match="repo_go1.xml has no actuators"):
        sim_model(str(repo_go1.parent / "repo_go1.xml"))


def test_the_sim_node_model_on_a_terrain_tile_starts_standing_on_its_surface():
    from pg_robotics.envs.terrains import TerrainCfg, generate

    cfg = TerrainCfg(types=["stairs_up"], difficulties=[0.5], seed=2)
    model, origin = sim_model("go1", cfg), generate(cfg).origins[0, 0]
    assert model.body("world").geomnum > 10 and model.ngeom > sim_model("go1").ngeom  # the tile's stair boxes
    home = model.key_qpos[0]
    np.testing.assert_allclose(home[:3], origin + [0, 0, load("go1").init_height], atol=1e-9)
    assert origin[2] < -0.3  # climbing up from the centre: it starts at the bottom of the pit, below the plane
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    for _ in range(200):  # 1 s holding the home pose: it lands on the bottom step and stays up
        mujoco.mj_step(model, data)
    assert 0.15 < data.qpos[2] - origin[2] < load("go1").init_height + 0.01
    np.testing.assert_allclose(data.qpos[:2], origin[:2], atol=0.15)  # it settles, it does not slide off
    with pytest.raises(ConfigError, match="is a complete scene: a terrain goes with a robot preset"):
        sim_model(str(resolve_mjcf("go1.xml").parent / "go1_alt.xml"), cfg)
