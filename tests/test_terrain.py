"""Rough terrain: the generator's heights against their formulas, the built geometry against the height map, the
terrain curriculum's rule, the height scan against a brute-force lookup, per-world model copies, and every
sim-to-real randomization acting on the simulation (not only parsed)."""

import mujoco
import numpy as np
import pytest
import torch

from pg_robotics.envs import ConfigError, make
from pg_robotics.envs.locomotion.observations import height_scan, scan_grid
from pg_robotics.envs.scene import add_terrain
from pg_robotics.envs.terrains import TerrainCfg, generate
from pg_robotics.envs.terrains.types import Tile

from pgr_cli import pgr

ONE = {"sim": {"nthread": 1}}
QUIET = {**ONE, "observations": {"add_noise": False}, "randomization": {"enabled": False}}


@pytest.fixture(scope="module")
def terrain():
    return generate(TerrainCfg(levels=3))


def local(terrain, level, col):
    """The tile's exact heights and its vertex coordinates (u, v) and Chebyshev distance from the centre."""
    cfg = terrain.cfg
    tile = Tile(cfg.tile_size, cfg.resolution, cfg.platform, cfg)
    per, b = tile.n - 1, int(round(cfg.border / cfg.resolution))
    i, j = b + level * per, b + col * per
    u, v = tile.grid()
    return terrain.heights[i:i + per + 1, j:j + per + 1], u, v, tile.ring()


def test_each_type_follows_its_formula(terrain):
    cfg = terrain.cfg
    col = {name: k for k, name in enumerate(cfg.types)}
    half, p = cfg.tile_size / 2, cfg.platform / 2
    for level in range(cfg.levels):
        d = level / (cfg.levels - 1)
        h, u, v, rho = local(terrain, level, col["flat"])
        assert np.all(h == 0.0)
        for name, sign in (("slope_down", 1.0), ("slope_up", -1.0)):
            h, u, v, rho = local(terrain, level, col[name])
            rise = np.tan(np.radians(25.0 * d))
            np.testing.assert_allclose(h, sign * rise * (half - np.maximum(rho, p)), atol=1e-12)
        height = 0.05 + 0.15 * d
        for name, sign in (("stairs_down", 1.0), ("stairs_up", -1.0)):
            h, u, v, rho = local(terrain, level, col[name])
            inside = (rho < half - 1e-9) & (np.abs((half - rho) / 0.3 - np.round((half - rho) / 0.3)) > 1e-6)
            steps = np.minimum(np.floor((half - rho[inside]) / 0.3) + 1, 10)
            np.testing.assert_allclose(h[inside], sign * steps * height, atol=1e-12)
            assert abs(h[rho < p].max() - sign * 10 * height) < 1e-12  # the platform: ten steps up (or down)
        h, u, v, rho = local(terrain, level, col["waves"])
        amp = 0.02 + 0.23 * d
        np.testing.assert_allclose(h, amp * np.sin(2 * np.pi * u / 4.0) * np.sin(2 * np.pi * v / 4.0), atol=1e-12)
        h, u, v, rho = local(terrain, level, col["rough"])
        amp = 0.01 + 0.08 * d
        assert np.abs(h).max() <= amp + 1e-12 and np.all(h[(rho <= p) | (rho >= half)] == 0.0)
        assert np.abs(h[rho > p]).max() > 0.5 * amp  # noise, not flat
        h, u, v, rho = local(terrain, level, col["obstacles"])
        top = 0.05 + 0.15 * d
        assert np.all(h[rho < p] == 0.0) and 0.5 * top <= h.max() <= top + 1e-12
    origins = terrain.origins
    assert origins.shape == (3, len(cfg.types), 3)
    assert origins[2, col["stairs_up"], 2] == pytest.approx(-10 * 0.2) and origins[1, col["slope_down"], 2] > 0


def test_the_terrain_is_seeded():
    a, b, c = generate(TerrainCfg(levels=2)), generate(TerrainCfg(levels=2)), generate(TerrainCfg(levels=2, seed=1))
    assert np.array_equal(a.heights, b.heights) and a.boxes == b.boxes
    assert not np.array_equal(a.heights, c.heights)


@pytest.mark.parametrize("solids", ["boxes and meshes", "hfield"])
def test_the_built_terrain_sits_at_the_height_map(terrain, solids):
    """A ray from above at sample points hits the built geometry (heightfields, boxes, the slopes' convex meshes) at
    the map's height (points on a box's vertical face, where the surface has no single height, are left out)."""
    ter = terrain if solids != "hfield" else generate(TerrainCfg(levels=3, stairs="hfield", obstacles="hfield",
                                                                 slopes="hfield"))
    spec = mujoco.MjSpec()
    add_terrain(spec, terrain=ter)
    model = spec.compile()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    rng, res, geom = np.random.default_rng(0), ter.cfg.resolution, np.zeros(1, np.int32)
    box_types = {"stairs_up", "stairs_down", "obstacles"} if solids != "hfield" else set()
    solid_types = box_types | ({"slope_up", "slope_down"} if solids != "hfield" else set())
    checked = {}
    for _ in range(1500):
        level, col = rng.integers(ter.cfg.levels), rng.integers(len(ter.cfg.types))
        cx, cy, _ = ter.origins[level, col]
        i = int(round((cx + rng.uniform(-3.9, 3.9)) / res))
        j = int(round((cy + rng.uniform(-3.9, 3.9)) / res))
        if ter.cfg.types[col] in box_types and np.ptp(ter.heights[i - 1:i + 2, j - 1:j + 2]) > 0:
            continue
        x, y = i * res + rng.uniform(-0.04, 0.04), j * res + rng.uniform(-0.04, 0.04)
        if ter.cfg.types[col] not in solid_types:
            x, y = i * res, j * res  # the heightfield's vertices: MuJoCo's triangles and the bilinear map agree
        hit = 10.0 - mujoco.mj_ray(model, data, np.array([x, y, 10.0]), np.array([0, 0, -1.0]), None, 1, -1, geom)
        expected = float(ter.height_at([x], [y])[0])
        if ter.cfg.types[col] in solid_types - box_types:  # a slope's planes, exact between the map's vertices too
            rise = np.tan(np.radians(25.0 * level / (ter.cfg.levels - 1)))
            sign = 1.0 if ter.cfg.types[col] == "slope_down" else -1.0
            expected = sign * rise * (4.0 - max(abs(x - cx), abs(y - cy), 1.0))
        assert hit == pytest.approx(expected, abs=1e-6), (ter.cfg.types[col], x, y)
        kind = model.geom_type[geom[0]]
        checked[kind] = checked.get(kind, 0) + 1
    assert sum(checked.values()) > 1000
    solid = {mujoco.mjtGeom.mjGEOM_BOX, mujoco.mjtGeom.mjGEOM_MESH} if solids != "hfield" else set()
    assert {mujoco.mjtGeom.mjGEOM_HFIELD, *solid} <= set(checked), checked  # each kind of geometry was hit


def test_a_bad_terrain_config_names_its_field():
    for terrain, message in (({"slopes": "boxes"}, "slopes: expected 'meshes' or 'hfield'"),
                             ({"stairs": "meshes"}, "stairs: expected 'boxes' or 'hfield'"),
                             ({"types": ["flat", "stairz"]}, "types: unknown terrain type 'stairz'")):
        with pytest.raises(ConfigError, match="task.ground.terrain: " + message):
            make("quadruped-rough", 2, overrides={**ONE, "ground": {"terrain": terrain}})


def slope_contacts(name: str, slopes: str) -> list[tuple[str, str]]:
    """(robot geom, terrain geom) of each contact of a robot holding its default pose for 0.2 s halfway down a
    20-degree slope."""
    env = make("quadruped-rough", 1, overrides={**QUIET, "ground": {"terrain": {
        "types": [name], "difficulties": [0.8], "spawn_offset": 0.0, "slopes": slopes}}})
    env.reset()
    qpos = env.sim.qpos.clone()
    x, y = float(qpos[0, 0]), float(qpos[0, 1])
    qpos[0, 0] += 2.0  # off the platform
    qpos[0, 2] += float(env.terrain.height_at([x + 2.0], [y])[0] - env.terrain.height_at([x], [y])[0])
    env.sim.reset(torch.tensor([0]), qpos, torch.zeros_like(env.sim.qvel))
    for _ in range(10):
        env.step(torch.zeros(1, env.num_actions))
    model, data = env.sim.model, mujoco.MjData(env.sim.model)
    data.qpos[:], data.qvel[:] = env.sim.qpos[0].numpy(), env.sim.qvel[0].numpy()
    mujoco.mj_forward(model, data)
    env.close()
    terrain = {i for i in range(model.ngeom) if model.geom_bodyid[i] == 0}
    return [(model.geom(c.geom2 if c.geom1 in terrain else c.geom1).name,
             model.geom(c.geom1 if c.geom1 in terrain else c.geom2).name) for c in data.contact[:data.ncon]]


def test_a_slope_is_convex_solids_with_one_contact_a_foot():
    """The slopes are convex meshes (a frustum; a pit of four wedges on its floor): a robot standing on a 20-degree
    slope touches them with one contact per foot, where the same slope as a heightfield gives one per prism the foot
    (and calf) touches."""
    for name in ("slope_up", "slope_down"):
        contacts = slope_contacts(name, "meshes")
        assert sorted(robot for robot, _ in contacts) == ["FL_foot", "FR_foot", "RL_foot", "RR_foot"], contacts
        assert all(ground.startswith("terrain_mesh") for _, ground in contacts)
        assert len(slope_contacts(name, "hfield")) > 4


def test_the_ground_contact_sensors_see_every_terrain_geom():
    """The terrain's geoms live in the world body (cheap for MuJoCo's broadphase); the contact sensors measure
    against it: worlds standing on a box tile, a heightfield tile and a stair box carry their weight on the feet."""
    env = make("quadruped-rough", 3, overrides={**QUIET, "ground": {"terrain": {
        "types": ["flat", "waves", "stairs_down"], "difficulties": [0.5], "spawn_offset": 0.0}}})
    env.reset()
    assert sorted(env.terrain_types.tolist()) == [0, 1, 2]
    for _ in range(25):  # 0.5 s holding the default pose
        env.step(torch.zeros(3, env.num_actions))
    weight = float(env.sim.model.body_subtreemass[0]) * 9.81  # the robot: the terrain has no mass
    vertical = -env.state.foot_forces[..., 2].sum(dim=1)  # the sensors' sign, as on the plane
    assert torch.allclose(vertical, torch.full_like(vertical, weight), rtol=0.15), (vertical, weight)
    assert (env.state.base_pos[:, 2] - env.env_origins[:, 2] > 0.2).all()  # standing, not through the ground
    env.close()


def test_foot_clearance_measures_swinging_feet_from_the_ground_under_them():
    """The swing-height penalty reads each foot's height above the terrain under it (a raised platform here): feet
    planted or a standing command cost nothing, feet moving sideways at the ground cost (height - target)^2 each."""
    from dataclasses import replace

    from pg_robotics.envs.locomotion.rewards import foot_clearance

    env = make("quadruped-rough", 2, overrides={**QUIET, "ground": {"terrain": {
        "types": ["stairs_down"], "difficulties": [1.0], "spawn_offset": 0.0}}})
    env.reset()
    for _ in range(25):
        env.step(torch.zeros(2, env.num_actions))
    s = env.state
    assert float(env.env_origins[0, 2]) == pytest.approx(2.0)  # ten 20 cm steps up: the platform's height
    ground = env.terrain.height_at(s.foot_pos[..., 0].numpy(), s.foot_pos[..., 1].numpy())
    height = s.foot_pos[..., 2].numpy() - ground
    assert np.allclose(height, 0.02, atol=0.005)  # the feet's 2 cm spheres on the platform, not 2 m above z = 0
    forward = torch.tensor([[0.5, 0.0, 0.0], [0.05, 0.0, 0.0]])
    planted = replace(s, command=forward, foot_vel=torch.zeros_like(s.foot_vel))
    assert torch.allclose(foot_clearance(planted, target=0.08), torch.zeros(2), atol=1e-6)
    sliding = replace(s, command=forward, foot_vel=torch.tensor([1.0, 0.0, 0.0]).expand_as(s.foot_vel))
    cost = foot_clearance(sliding, target=0.08)
    expected = float(((height[0] - 0.08) ** 2).sum() * np.tanh(2.0))
    assert float(cost[0]) == pytest.approx(expected, rel=1e-4) and float(cost[1]) == 0.0  # world 1: command 0.05
    env.close()


def test_the_curriculum_moves_worlds_by_the_rule():
    env = make("quadruped-rough", 6, overrides={**QUIET, "ground": {"terrain": {"levels": 4, "max_init_level": 1}}})
    env.terrain_levels[:] = torch.tensor([1, 1, 1, 3, 0, 1])
    env.env_origins[:] = env.tile_origins[env.terrain_levels, env.terrain_types]
    env.commands[:] = torch.tensor([1.0, 0.0, 0.0])
    pos = env.env_origins[:, :2].clone()
    pos[0, 0] += 4.5  # farther than half a tile: up
    pos[1, 0] += 6.0  # also up
    pos[2, 0] += 1.0  # less than half of the 20 m the command asked for: down
    pos[3, 0] += 4.5  # up from the top level: spread to a random level
    pos[4, 0] += 0.5  # down from level 0: stays at 0
    pos[5, 0] += 12.0  # more than half of what was asked: up
    env.state.base_pos = torch.cat([pos, torch.zeros(6, 1)], dim=1)
    from pg_robotics.envs.locomotion.curricula import terrain_levels

    terrain_levels(env, torch.arange(6))
    levels = env.terrain_levels.tolist()
    assert levels[0] == 2 and levels[1] == 2 and levels[2] == 0 and levels[4] == 0 and levels[5] == 2
    assert 0 <= levels[3] < 4
    assert torch.equal(env.env_origins, env.tile_origins[env.terrain_levels, env.terrain_types])
    env.close()


def test_worlds_spawn_on_their_tile():
    env = make("quadruped-rough", 16, overrides=QUIET)
    env.reset()
    xy = env.state.base_pos[:, :2]
    assert (xy - env.env_origins[:, :2]).abs().max() <= env.terrain.cfg.spawn_offset + 1e-5
    above = env.state.base_pos[:, 2] - env.env_origins[:, 2]
    assert torch.allclose(above, torch.full_like(above, env.cfg.robot.init_height), atol=1e-5)
    assert set(env.terrain_types.tolist()) == set(range(len(env.terrain.cfg.types)))
    env.close()


def test_the_height_scan_is_a_lookup_that_turns_with_the_base(terrain):
    env = make("quadruped-rough", 4, overrides=QUIET)
    env.reset()
    s = env.state
    scan = height_scan(s, offset=0.0)
    grid = scan_grid((1.6, 1.0), 0.1).numpy()
    assert scan.shape == (4, 187)
    for w in range(4):  # brute force: each point turned by the yaw, looked up in numpy
        q = s.base_quat[w].numpy()
        yaw = np.arctan2(2 * (q[0] * q[3] + q[1] * q[2]), 1 - 2 * (q[2] ** 2 + q[3] ** 2))
        c, si = np.cos(yaw), np.sin(yaw)
        x = s.base_pos[w, 0].item() + c * grid[:, 0] - si * grid[:, 1]
        y = s.base_pos[w, 1].item() + si * grid[:, 0] + c * grid[:, 1]
        expected = s.base_pos[w, 2].item() - env.terrain.height_at(x, y)
        np.testing.assert_allclose(scan[w].numpy(), expected, atol=1e-5)
    # a quarter turn: the scan's forward axis is the world's y axis
    s.base_quat = torch.tensor([[np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)]] * 4, dtype=torch.float32)
    turned = height_scan(s, offset=0.0)
    x0, y0 = s.base_pos[0, 0].item(), s.base_pos[0, 1].item()
    expected = s.base_pos[0, 2].item() - env.terrain.height_at(x0 - grid[:, 1], y0 + grid[:, 0])
    np.testing.assert_allclose(turned[0].numpy(), expected, atol=1e-5)
    env.close()


def test_world_models_are_shared_copies():
    env = make("quadruped-rough", 40, overrides={**ONE, "sim": {"nthread": 1, "model_copies": 8}})
    models = env.sim.models
    assert len({id(m) for m in models}) == 8 and models[3] is models[11] and models[3] is not models[4]
    floor = env.scene.ground.friction_geoms[0]
    gid = env.sim.model.geom(floor).id
    assert len({float(m.geom_friction[gid, 0]) for m in models}) == 8  # randomized per copy
    env.close()


# ---- sim-to-real randomization acts on the simulation ------------------------------------------------------------------
def standing(overrides, n=2):
    env = make("quadruped-flat", n, overrides={**QUIET, **overrides})
    env.reset()
    return env


def test_actuator_latency_delays_the_applied_torque_by_its_steps():
    env = standing({"randomization": {"enabled": True, **{k: {"enabled": False} for k in (
        "friction", "added_base_mass", "motor_strength", "joint_pos_scale", "base_yaw", "base_velocity", "push")},
        "actuator_latency": {"enabled": True, "params": {"max_steps": 3}}}})
    env.latency = np.array([0, 3])
    for _ in range(10):
        env.step(torch.zeros(2, 12))
    torque = env.sim._sens_t[:, :, env._sensor_cols[env._torques[0]]]  # (worlds, substeps, joints) of the last step
    before = torque.clone()
    env.step(torch.full((2, 12), 4.0))  # every target steps by 1 rad: 20 N m more from the servo at once
    after = env.sim._sens_t[:, :, env._sensor_cols[env._torques[0]]]
    jump = (after - before[:, -1:, :]).abs().amax(dim=2)  # (worlds, substeps): how far each substep moved
    assert jump[0, 0] > 10.0  # no delay: the first substep already pushes
    assert jump[1, :3].max() < 3.0 and jump[1, 3] > 10.0  # three substeps late (the legs' own motion: < 3 N m)
    with pytest.raises(ConfigError, match="max_steps: must be in \\[0, decimation = 4\\]"):
        standing({"randomization": {"actuator_latency": {"enabled": True, "params": {"max_steps": 9}}}})


def test_pd_gain_scaling_changes_the_servo_per_world():
    env = standing({"randomization": {"enabled": True, "pd_gains": {"enabled": True, "params": {
        "kp_range": [0.5, 0.5001], "kd_range": [2.0, 2.0001]}}}})
    kp0, kd0 = 20.0, 0.5
    for w in range(2):
        m = env.sim.world_model(w)
        strength = float(env.kp_scale[w]) / 0.5  # motor_strength's own factor, times 0.5 here
        assert m.actuator_gainprm[0, 0] == pytest.approx(kp0 * 0.5 * strength, rel=1e-3)
        assert -m.actuator_biasprm[0, 2] == pytest.approx(kd0 * 2.0 * strength, rel=1e-3)
    env.close()


def test_encoder_bias_shifts_what_the_servo_holds_and_what_the_policy_sees():
    """World 1's encoders read 0.05 rad high. Commanded the default pose, it moves exactly as world 0 commanded
    0.05 rad below it (the servo acts on what the encoders say), and its policy sees that pose as the default."""
    env = standing({"randomization": {"enabled": True, **{k: {"enabled": False} for k in (
        "friction", "added_base_mass", "motor_strength", "joint_pos_scale", "base_yaw", "base_velocity", "push")},
        "joint_pos_bias": {"enabled": True}}})
    env.joint_pos_bias[0], env.joint_pos_bias[1] = 0.0, 0.05
    lower = torch.full((12,), -0.05 / env.cfg.robot.action_scale)
    for _ in range(50):
        obs, *_ = env.step(torch.stack([lower, torch.zeros(12)]))
    q = env.state.joint_pos
    assert torch.allclose(q[0], q[1], atol=1e-5)
    start = sum(d for n, d in env.observation_layout["policy"][:3])
    seen = obs["policy"][:, start:start + 12]  # joint_pos relative to the default pose, as the encoders read it
    assert torch.allclose(seen[1] - seen[0], torch.full((12,), 0.05), atol=1e-5)
    env.close()


def test_imu_bias_reaches_the_observations():
    env = standing({"randomization": {"enabled": True, "imu_bias": {"enabled": True, "params": {
        "gyro": 0.1, "gravity": 0.05}}}})
    env.gyro_bias[:] = torch.tensor([0.1, -0.1, 0.05])
    obs = env.observations()
    scale = env.cfg.observations.terms["base_ang_vel"].scale
    np.testing.assert_allclose(obs["policy"][:, :3].numpy(), ((env.state.base_ang_vel + env.gyro_bias) * scale).numpy(),
                               atol=1e-6)
    env.close()


def test_mass_com_and_armature_randomization_change_the_model_per_world():
    env = standing({"randomization": {"enabled": True, **{k: {"enabled": True} for k in (
        "base_com", "link_masses", "armature")}}}, n=3)
    m0, m1, m2 = (env.sim.world_model(w) for w in range(3))
    base, thigh = m0.body("trunk").id, m0.body("FR_thigh").id
    dof = int(m0.joint("FR_calf_joint").dofadr[0])
    assert len({tuple(m.body_ipos[base]) for m in (m0, m1, m2)}) == 3
    assert len({float(m.body_mass[thigh]) for m in (m0, m1, m2)}) == 3
    assert len({float(m.dof_armature[dof]) for m in (m0, m1, m2)}) == 3
    ref = env.sim.model
    assert np.abs(m1.body_ipos[base] - ref.body_ipos[base]).max() <= 0.03 + 1e-12
    assert 0.9 <= m1.body_mass[thigh] / ref.body_mass[thigh] <= 1.1
    env.close()


def test_an_event_waits_for_its_start_step_and_a_resumed_run_redraws_it():
    """`start_step`: a startup event (the base's centre of mass) leaves the model alone until the env's step counter
    reaches it, then acts once; a run resumed from a later state rebuilds its models and gets the same values. A
    reset event (the heading) waits the same way."""
    events = {"base_com": {"enabled": True, "start_step": 3}, "base_yaw": {"enabled": True, "start_step": 4}}
    env = standing({"randomization": {"enabled": True, **events}}, n=3)
    base = env.sim.model.body("trunk").id
    ipos = lambda e: np.array([e.sim.world_model(w).body_ipos[base] for w in range(3)])  # noqa: E731
    before = ipos(env)
    assert np.ptp(before, axis=0).max() == 0.0
    yaws = []
    for step in range(1, 6):
        env.step(torch.zeros(3, env.num_actions))
        assert (np.ptp(ipos(env), axis=0).max() > 0) == (step >= 3), step
        env.reset_idx(torch.arange(3))
        q = env.sim.qpos[:, 3:7]
        yaws.append(torch.atan2(2 * (q[:, 0] * q[:, 3] + q[:, 1] * q[:, 2]), 1 - 2 * (q[:, 2] ** 2 + q[:, 3] ** 2)))
    assert all(y.abs().max() < 1e-6 for y in yaws[:3]) and yaws[4].abs().max() > 1e-3  # heading drawn from step 4
    after = ipos(env)
    assert np.abs(after - before).max() <= 0.03 + 1e-12
    resumed = standing({"randomization": {"enabled": True, **events}}, n=3)
    assert np.ptp(ipos(resumed), axis=0).max() == 0.0
    resumed.load_state_dict(env.state_dict())
    np.testing.assert_array_equal(ipos(resumed), after)
    env.close()
    resumed.close()
    with pytest.raises(ConfigError, match=r"task.randomization.base_com: start_step: must be >= 0, got -1"):
        make("quadruped-flat", 2, overrides={**ONE, "randomization": {"base_com": {"start_step": -1}}})


def test_pgr_terrain_draws_the_grid(tmp_path):
    out = tmp_path / "terrain.png"
    r = pgr("terrain", "--out", str(out), "--levels", "3")
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 20_000 and "8 types x 3 levels" in r.stdout
    r = pgr("terrain", "--out", str(out), "--set", "task.ground.terrain.types=[lava]")
    assert r.returncode == 2 and "types: unknown terrain type 'lava'" in r.stderr


def test_a_perceptive_policy_exports_and_the_runtime_reads_its_height_scan(tmp_path):
    """quadruped-rough-perceptive: the height scan in the policy. It trains, exports (the export replays recorded sim
    states, height samples included, through the deploy runtime within 1e-4), and the runtime's contract says where
    the samples are; a state without them is refused by name, a broken grid too."""
    import json

    import onnx

    from pg_robotics.deploy import Controller, RobotState
    from pg_robotics.deploy.contract import ContractError, decode, parse

    run = tmp_path / "run"
    r = pgr("train", "quadruped-rough-perceptive", "--max-iterations", "2", "--num-envs", "8", "--no-progress",
            "--run-dir", str(run), "--set", "task.sim.nthread=1", "--set", "algorithm.num_steps_per_env=8",
            "--set", "algorithm.actor_hidden=[16]", "--set", "algorithm.critic_hidden=[16]")
    assert r.returncode == 0, r.stderr
    r = pgr("export", str(run))
    assert r.returncode == 0, r.stderr
    assert "max abs action diff" in r.stdout
    meta = decode({p.key: p.value for p in onnx.load(str(run / "policy.onnx")).metadata_props})
    term = meta["observation_terms"][-1]
    assert term["name"] == "height_scan" and term["dim"] == 187
    assert term["grid"] == {"size": [1.6, 1.0], "resolution": 0.1, "offset": 0.3, "frame": "base_yaw",
                            "order": "x-major"}
    ctl = Controller.load(run / "policy.onnx")
    assert ctl.inputs == ("joint_states", "imu", "height_scan")
    spec = ctl.spec
    names = list(spec.joint_names)
    ctl.start(names)
    points = spec.observation_terms[-1].grid.points()
    assert len(points) == 187 and points[0] == pytest.approx((-0.8, -0.5)) and points[1] == pytest.approx((-0.8, -0.4))
    for k in range(3):
        state = RobotState(names, list(spec.default_joint_pos), [0.0] * 12, (0, 0, 0, 1), (0, 0, 0), stamp=float(k),
                           height_samples=[0.3] * 187)
        assert ctl.step(state, (0.5, 0, 0)) is not None
    assert ctl.counters["bad_state"] == 0
    blind = RobotState(names, list(spec.default_joint_pos), [0.0] * 12, (0, 0, 0, 1), (0, 0, 0), stamp=3.0)
    ctl.step(blind, (0.5, 0, 0))
    assert ctl.counters["bad_state"] == 1 and "height_samples: the policy reads a height scan of 187" in ctl.last_error
    broken = json.loads(json.dumps(meta))
    del broken["observation_terms"][-1]["grid"]
    with pytest.raises(ContractError, match=r"observation_terms\[6\].grid: a height_scan term needs its grid"):
        parse(broken)
    broken["observation_terms"][-1]["grid"] = {**term["grid"], "resolution": 0.2}
    with pytest.raises(ContractError, match=r"observation_terms\[6\].dim: height_scan has 54 elements here"):
        parse(broken)


def test_pgr_eval_on_terrain_on_flat_ground_and_on_another_model(tmp_path):
    """`pgr eval --terrain TYPE --difficulty D` (worlds on one tile, 0.6 m/s forward), `--ground plane` (a rough
    policy on flat ground) and `--model` (the second Go1, envs/robots/go1/go1_alt.xml) run from the CLI; bad values
    are named."""
    import json

    run = tmp_path / "run"
    r = pgr("train", "quadruped-rough", "--max-iterations", "3", "--num-envs", "8", "--no-progress", "--run-dir",
            str(run), "--set", "task.sim.nthread=1", "--set", "algorithm.num_steps_per_env=8",
            "--set", "runner.save_interval=1",
            "--set", "algorithm.actor_hidden=[16]", "--set", "algorithm.critic_hidden=[16]")
    assert r.returncode == 0, r.stderr
    r = pgr("eval", str(run), "--terrain", "stairs_up", "--difficulty", "0.3", "--difficulty", "0.6", "--episodes",
            "3", "--seconds", "2", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(x["terrain"], x["difficulty"], x["episodes"]) for x in rows] == [("stairs_up", 0.3, 3), ("stairs_up", 0.6, 3)]
    assert all(0 <= x["success_rate"] <= 1 and 0 <= x["fall_rate"] <= 1 for x in rows)
    assert rows[0]["success_rate"] == 0.0  # an untrained policy does not climb 4 m in 2 s
    r = pgr("eval", str(run), "--ground", "plane", "--model", "go1/go1_alt.xml", "--episodes", "2", "--seconds", "2",
            "--json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["per_command"]) == 6
    # the goal cells over every 2nd checkpoint counted back from the last (3, 1): the curve, its plot, first meetings
    r = pgr("eval", str(run), "--terrain", "goals", "--all-checkpoints", "--every", "2", "--episodes", "2",
            "--seconds", "2", "--json", "--out", str(tmp_path / "curve.json"))
    assert r.returncode == 0, r.stderr
    curve = json.loads(r.stdout)
    assert [p["iteration"] for p in curve["points"]] == [1, 3]
    assert [(c["terrain"], round(c["difficulty"], 3)) for c in curve["points"][0]["cells"]] == [
        ("slope_up", 0.8), ("slope_down", 0.8), ("rough", 0.5), ("stairs_up", 0.333), ("stairs_down", 0.333)]
    assert curve["first_meeting"] == {"slope_up 0.80": None, "slope_down 0.80": None, "rough 0.50": None,
                                      "stairs_up 0.33": None, "stairs_down 0.33": None}  # 2 s: nobody gets 4 m
    assert (run / "terrain_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "curve.json").read_text())["goal"] == {"success_rate": 0.9, "fall_rate": 0.05}
    for args, message in ((("--terrain", "lava"), "--terrain: unknown terrain type 'lava'"),
                          (("--terrain", "goals", "--difficulty", "0.5"), "--difficulty: not with --terrain goals"),
                          (("--terrain", "rough", "--every", "2"), "--every: only with --all-checkpoints"),
                          (("--every", "2",), "--every: only with --all-checkpoints"),
                          (("--terrain", "goals", "--all-checkpoints", "--checkpoint", "x.pt"),
                           "--checkpoint: not with --all-checkpoints"),
                          (("--terrain", "flat", "--difficulty", "2"), "--difficulty: must be in [0, 1]"),
                          (("--difficulty", "0.5"), "--difficulty: only with --terrain"),
                          (("--model", "nothere.xml"), "task.robot.mjcf: no model")):
        r = pgr("eval", str(run), *args, "--episodes", "1", "--seconds", "2")
        assert r.returncode == 2 and message in r.stderr, (args, r.stderr)
