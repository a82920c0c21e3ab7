"""The MuJoCo CPU backend through the task, on real MuJoCo."""

import mujoco
import numpy as np
import pytest
import torch

from pg_robotics.envs import ConfigError, make

from conftest import STILL


def rollout_obs(seed, nthread=0, steps=20, n=6):
    env = make("quadruped-flat", n, seed=seed, overrides={"sim": {"nthread": nthread}})
    gen = torch.Generator().manual_seed(123)
    obs = [env.reset()["policy"]]
    for _ in range(steps):
        obs.append(env.step(torch.rand(n, 12, generator=gen) * 2 - 1)[0]["policy"])
    env.close()
    return torch.stack(obs)


def test_same_seed_same_trajectory_regardless_of_threads():
    a, b, c = rollout_obs(seed=7), rollout_obs(seed=7, nthread=1), rollout_obs(seed=8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_reset_of_a_subset_leaves_the_others_untouched():
    env = make("quadruped-flat", 6, seed=0)
    for _ in range(10):
        env.step(torch.rand(6, 12) * 2 - 1)
    before = env.sim.qpos.clone(), env.sim.qvel.clone(), env.commands.clone(), env.episode_length.clone()
    ids = torch.tensor([1, 4])
    env.reset_idx(ids)
    keep = torch.tensor([0, 2, 3, 5])
    after = env.sim.qpos, env.sim.qvel, env.commands, env.episode_length
    for x, y in zip(before, after):
        assert torch.equal(x[keep], y[keep])
    assert torch.all(env.episode_length[ids] == 0)
    assert torch.allclose(env.sim.qpos[ids, 2], torch.tensor(0.30, dtype=torch.float64))
    assert torch.all(env.sim.time[ids] == 0)


def test_pd_torque_follows_the_law_and_is_clipped(still_env):
    env = still_env
    actions = torch.zeros(4, 12)
    actions[0] = 0.2  # small: inside the torque limits
    actions[1] = 50.0  # huge: saturates every joint
    env.step(actions)
    sim = env.sim
    # the last substep's torque was computed from the state at the start of that substep
    q = torch.from_numpy(sim._traj[:, -2, 1:1 + sim.model.nq])[:, env.joint_qpos_index].float()
    qd = torch.from_numpy(sim._traj[:, -2, 1 + sim.model.nq:])[:, env.joint_dof_index].float()
    target = env.default_joint_pos + env.actions * env.cfg.robot.action_scale
    law = 20.0 * (target - q) - 0.5 * qd
    expected = torch.maximum(torch.minimum(law, env.torque_limits), -env.torque_limits)
    torques = env.state.torques
    assert torch.allclose(torques[:2], expected[:2], atol=1e-3)
    assert torch.all(law[1].abs() > env.torque_limits)  # saturated...
    assert torch.allclose(torques[1].abs(), env.torque_limits)  # ...to exactly the datasheet limit
    assert torch.all(torques[0].abs() < env.torque_limits)


def test_standing_with_zero_action_stays_up_for_10_seconds(still_env):
    env = still_env
    env.reset()
    for _ in range(int(10 / env.dt)):
        _, _, done, info = env.step(torch.zeros(4, 12))
        assert not done.any()
    s = env.state
    assert torch.all(s.base_pos[:, 2] > 0.25)
    assert torch.all(s.projected_gravity[:, 2] < -0.99)
    assert torch.all(s.foot_contact)
    assert torch.allclose(s.foot_pos[..., 2], torch.full((4, 4), 0.02), atol=0.005)  # sphere radius above ground
    assert s.foot_vel.abs().max() < 0.01
    assert torch.all(s.foot_pos[:, :2, 0] > s.base_pos[:, None, 0])  # front feet ahead of the base
    # the feet carry the robot's weight: 12.98 kg
    weight = s.foot_forces[..., 2].abs().sum(1)
    assert torch.allclose(weight, torch.full((4,), 12.984 * 9.81), rtol=0.03)
    assert torch.all(info["cat_delta"] == 0)
    assert env.sim.num_diverged == 0


def test_diverged_worlds_are_reset_and_counted(still_env):
    env = still_env
    env.step(torch.zeros(4, 12))
    env.sim.qvel[2, 6] = float("nan")
    env.sim.qvel[3, 0] = 1e5
    obs, reward, done, info = env.step(torch.zeros(4, 12))
    assert info["num_diverged"] == 2 and env.sim.num_diverged == 2
    assert done.tolist() == [False, False, True, True]
    assert torch.isfinite(obs["policy"]).all() and torch.isfinite(reward).all()
    assert torch.all(env.episode_length[2:] == 0)
    assert torch.isfinite(env.sim.qvel).all() and env.sim.qvel.abs().max() < 10
    obs, _, done, info = env.step(torch.zeros(4, 12))  # training goes on
    assert info["num_diverged"] == 0 and not done.any()


def test_domain_randomization_is_per_world():
    env = make("quadruped-flat", 8, seed=3)
    sim = env.sim
    floor, trunk = sim.model.geom("floor").id, sim.model.body("trunk").id
    friction = np.array([m.geom_friction[floor, 0] for m in sim.models])
    mass = np.array([m.body_mass[trunk] for m in sim.models])
    gain = np.array([m.actuator_gainprm[0, 0] for m in sim.models])
    assert len(set(friction)) == 8 and friction.min() >= 0.5 and friction.max() <= 1.25
    assert len(set(mass)) == 8 and np.all(np.abs(mass - 5.204) <= 1.0)
    assert len(set(gain)) == 8 and gain.min() >= 18.0 and gain.max() <= 22.0
    # kd scales with the same motor strength: tau = strength * (kp e - kd qdot)
    np.testing.assert_allclose([m.actuator_biasprm[0, 2] / m.actuator_gainprm[0, 0] for m in sim.models], -0.5 / 20)
    assert sim.model.geom_friction[floor, 0] == 1.0  # the base model is untouched


def test_pushes_change_the_base_velocity():
    fixed = {name: {"params": {"range": [1.0, 1.0]}} for name in ("friction", "motor_strength", "joint_pos_scale")}
    fixed.update(added_base_mass={"params": {"range": [0.0, 0.0]}}, base_velocity={"params": {"max": 0.0}},
                 base_yaw={"enabled": False})
    velocities = []
    for interval in (0.2, 0.0):  # pushes every 10 steps, or never
        env = make("quadruped-flat", 4, seed=0, overrides={
            **STILL, "randomization": {**fixed, "push": {"interval_s": interval, "params": {"max_vel": 1.0}}}})
        for _ in range(10):
            env.step(torch.zeros(4, 12))
        velocities.append(env.sim.qvel[:, :2].clone())
    pushed, calm = velocities
    assert (pushed - calm).abs().max() > 0.1
    assert calm.abs().max() < 0.5


def test_clean_start_resets_a_share_of_worlds_to_the_default_pose_at_rest():
    env = make("quadruped-flat", 400, seed=0, overrides={"randomization": {
        "clean_start": {"enabled": True, "params": {"fraction": 0.25}}}})
    env.reset()
    offset = (env.state.joint_pos - env.default_joint_pos).abs().max(dim=1).values
    speed = env.sim.qvel.abs().max(dim=1).values
    clean = (offset < 1e-5) & (speed < 1e-6)
    assert 0.18 < clean.float().mean() < 0.32  # 100 expected of 400
    assert (offset[~clean] > 0.01).all()  # the others keep the random pose (0.5-1.5 x the default)
    env.close()
    with pytest.raises(ConfigError, match=r"task.randomization.clean_start.params.fraction: must be in \[0, 1\]"):
        make("quadruped-flat", 2, overrides={"randomization": {"clean_start": {
            "enabled": True, "params": {"fraction": 1.5}}}}).reset()


def test_state_views_are_zero_copy():
    env = make("quadruped-flat", 2, overrides=STILL)
    sim = env.sim
    assert sim.qpos.data_ptr() == torch.from_numpy(sim._state).data_ptr() + 8  # after the time field
    sim.qvel[0, 2] = 0.5  # writing the view writes the state the next step starts from
    assert sim._state[0, 1 + sim.model.nq + 2] == 0.5
    assert sim.sensor("FR_foot_force").shape == (2, 3)
    assert sim.sensor_history("FR_foot_force").shape == (2, 4, 3)
    assert isinstance(sim.model, mujoco.MjModel)


def test_wrong_action_shape_is_refused(still_env):
    import pytest

    with pytest.raises(ValueError, match=r"actions: expected shape \(4, 12\), got \(4, 11\)"):
        still_env.step(torch.zeros(4, 11))


def test_the_world_bodys_geoms_are_skipped_and_the_motion_is_unchanged():
    """The backend enables MuJoCo's sleeping with no tree allowed to sleep (so the static geoms are left out of
    forward kinematics): on a terrain with hundreds of static geoms its worlds move to the last bit as they do
    with the flag cleared, falls and stair contacts included."""
    over = {"sim": {"nthread": 1}, "randomization": {"enabled": False},
            "ground": {"terrain": {"levels": 2, "types": ["stairs_up", "rough"]}}}
    fast, plain = make("quadruped-rough", 2, overrides=over), make("quadruped-rough", 2, overrides=over)
    assert fast.sim.model.opt.enableflags & mujoco.mjtEnableBit.mjENBL_SLEEP and fast.sim.model.body(0).geomnum > 30
    assert (fast.sim.model.tree_sleep_policy == mujoco.mjtSleepPolicy.mjSLEEP_NEVER).all()
    plain.sim.model.opt.enableflags &= ~int(mujoco.mjtEnableBit.mjENBL_SLEEP)
    for env in (fast, plain):
        env.reset()
    gen = torch.Generator().manual_seed(0)
    for _ in range(30):  # random targets: the robots stumble and fall on the stairs and the rough ground
        ctrl = fast.sim.qpos[:, 7:] + torch.rand(2, fast.num_actions, generator=gen, dtype=torch.float64) - 0.5
        for env in (fast, plain):
            env.sim.step(ctrl.numpy())
    assert torch.equal(fast.sim.qpos, plain.sim.qpos) and torch.equal(fast.sim.qvel, plain.sim.qvel)
    assert (fast.sim.qpos[:, 2] - fast.env_origins[:, 2].double()).min() < 0.2  # they fell: contacts everywhere
    for env in (fast, plain):
        env.close()
