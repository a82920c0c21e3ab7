"""quadruped-flat: observations, reward signs, CaT, terminations, commands."""

import dataclasses

import pytest
import torch

from pg_robotics.envs import ConfigError, make
from pg_robotics.envs.cat import ConstraintsAsTerminations
from pg_robotics.envs.locomotion import rewards
from pg_robotics.envs.locomotion.config import RewardsCfg
from pg_robotics.envs.locomotion.state import LocoState

from conftest import STILL


def test_observation_layout(still_env):
    env = still_env
    assert env.num_obs == {"policy": 45, "critic": 48}
    assert [n for n, _ in env.observation_layout["policy"]] == [
        "base_ang_vel", "projected_gravity", "command", "joint_pos", "joint_vel", "last_action"]
    assert env.observation_layout["critic"][0] == ("base_lin_vel", 3)
    obs = env.reset()
    assert obs["policy"].shape == (4, 45) and obs["policy"].dtype == torch.float32
    # standing still at the default pose: gravity straight down, joint offsets 0, command 0
    assert torch.allclose(obs["policy"][:, 3:6], torch.tensor([0.0, 0.0, -1.0]).expand(4, 3), atol=1e-6)
    assert torch.allclose(obs["policy"][:, 9:21], torch.zeros(4, 12), atol=1e-6)


def test_noise_only_in_the_policy_observation():
    env = make("quadruped-flat", 4, overrides={**STILL, "observations": {"add_noise": True}})
    a, b = env.observations(), env.observations()
    assert not torch.equal(a["policy"], b["policy"])
    assert torch.equal(a["critic"], b["critic"])


def hand_state(**changes) -> LocoState:
    """One robot standing still at the default pose, commanded to stand."""
    z3, z12, z4 = torch.zeros(1, 3), torch.zeros(1, 12), torch.zeros(1, 4)
    default = torch.tensor([-0.1, 0.8, -1.5, 0.1, 0.8, -1.5, -0.1, 1.0, -1.5, 0.1, 1.0, -1.5])
    s = LocoState(
        dt=0.02, action_scale=0.25, base_pos=torch.tensor([[0.0, 0.0, 0.3]]), base_quat=torch.tensor([[1.0, 0, 0, 0]]),
        base_lin_vel=z3.clone(), base_ang_vel=z3.clone(), projected_gravity=torch.tensor([[0.0, 0.0, -1.0]]),
        joint_pos=default[None].clone(), joint_vel=z12.clone(), joint_acc=z12.clone(), torques=z12.clone(),
        actions=z12.clone(), last_actions=z12.clone(), command=z3.clone(),
        foot_forces=torch.tensor([[[0.0, 0.0, 32.0]] * 4]),
        foot_pos=torch.tensor([[[0.19, -0.13, 0.02], [0.19, 0.13, 0.02], [-0.19, -0.13, 0.02], [-0.19, 0.13, 0.02]]]),
        foot_vel=torch.zeros(1, 4, 3), undesired_contact_forces=torch.zeros(1, 8, 3),
        constrained_contact_forces=torch.zeros(1, 5, 3), termination_contact_forces=torch.zeros(1, 1, 3),
        feet_air_time=z4.clone(), first_contact=torch.zeros(1, 4, dtype=torch.bool),
        default_joint_pos=default,
        joint_pos_limits=torch.tensor([[-0.863, 0.863], [-0.686, 4.501], [-2.818, -0.888]] * 4),
        torque_limits=torch.tensor([23.7, 23.7, 35.55] * 4), velocity_limits=torch.tensor([30.1, 30.1, 20.06] * 4))
    for key, value in changes.items():
        setattr(s, key, value)
    return s


def weighted(term: str, s: LocoState) -> float:
    """The term's value times its default weight, with its default parameters."""
    cfg = RewardsCfg().terms[term]
    return float(getattr(rewards, term)(s, **cfg.params) * cfg.weight)


@pytest.mark.parametrize("term, bad", [
    ("lin_vel_z", {"base_lin_vel": torch.tensor([[0.0, 0.0, 0.5]])}),
    ("ang_vel_xy", {"base_ang_vel": torch.tensor([[1.0, -1.0, 0.0]])}),
    ("orientation", {"projected_gravity": torch.tensor([[0.3, 0.0, -0.95]])}),
    ("torques", {"torques": torch.full((1, 12), 5.0)}),
    ("joint_acc", {"joint_acc": torch.full((1, 12), 100.0)}),
    ("action_rate", {"actions": torch.full((1, 12), 0.5)}),
    ("undesired_contacts", {"undesired_contact_forces": torch.tensor([[[0.0, 0.0, 20.0]] + [[0.0, 0.0, 0.0]] * 7])}),
    ("joint_limits", {"joint_pos": torch.tensor([[0.85, 0.8, -1.5] + [0.1, 0.8, -1.5] * 3])}),
])
def test_penalties_are_zero_at_rest_and_negative_when_provoked(term, bad):
    assert weighted(term, hand_state()) == 0.0
    assert weighted(term, hand_state(**bad)) < 0.0


def test_tracking_rewards_prefer_following_the_command():
    cmd = torch.tensor([[0.5, 0.0, 0.6]])
    good = hand_state(command=cmd, base_lin_vel=torch.tensor([[0.5, 0.0, 0.0]]),
                      base_ang_vel=torch.tensor([[0.0, 0.0, 0.6]]))
    bad = hand_state(command=cmd)
    for term in ("tracking_lin_vel", "tracking_ang_vel"):
        assert weighted(term, good) == pytest.approx(RewardsCfg().terms[term].weight)  # exp(0) * weight
        assert 0.0 < weighted(term, bad) < weighted(term, good)


def test_feet_air_time_pays_long_swings_at_touchdown_while_walking():
    touchdown = torch.tensor([[True, False, False, False]])
    walk = torch.tensor([[0.5, 0.0, 0.0]])
    long_swing = hand_state(command=walk, first_contact=touchdown, feet_air_time=torch.tensor([[0.8, 0, 0, 0]]))
    short_swing = hand_state(command=walk, first_contact=touchdown, feet_air_time=torch.tensor([[0.2, 0, 0, 0]]))
    standing = hand_state(first_contact=touchdown, feet_air_time=torch.tensor([[0.8, 0, 0, 0]]))
    assert weighted("feet_air_time", long_swing) > 0 > weighted("feet_air_time", short_swing)
    assert weighted("feet_air_time", standing) == 0.0
    free = dict(target=0.5, short_swing_cost=False)  # short swings cost nothing, long ones pay as before
    assert float(rewards.feet_air_time(short_swing, **free)) == 0.0
    assert float(rewards.feet_air_time(long_swing, **free)) == pytest.approx(0.3)


def test_stand_still_counts_joint_offsets_only_while_told_to_stand():
    lifted = torch.tensor([[-0.1, 0.8, -1.5, 0.1, 0.8, -1.5, -0.1, 1.0, -1.5, 0.1, 1.6, -2.1]])  # a hind foot up
    assert float(rewards.stand_still(hand_state())) == 0.0
    assert float(rewards.stand_still(hand_state(joint_pos=lifted))) == pytest.approx(1.2)  # 0.6 + 0.6 rad
    for moving in ([[0.5, 0.0, 0.0]], [[0.0, 0.0, 0.6]]):  # walking, and turning on the spot (that needs steps)
        assert float(rewards.stand_still(hand_state(joint_pos=lifted, command=torch.tensor(moving)))) == 0.0


def test_cat_delta_is_zero_when_satisfied_and_p_max_at_the_limit():
    cat = ConstraintsAsTerminations({"torque": 1.0, "contact": 0.0}, {"torque": 0.25, "contact": 1.0}, tau=0.95)
    fine = {"torque": torch.tensor([[0.5, 0.9], [0.2, 1.0]]), "contact": torch.zeros(2, 1)}
    delta, rates = cat(fine)
    assert torch.equal(delta, torch.zeros(2)) and float(rates["torque"]) == 0.0
    # env 0 violates torque by 1.0 (the batch max, so c_max moves toward it); env 1 by half that
    for _ in range(200):
        delta, rates = cat({"torque": torch.tensor([[2.0, 0.0], [1.5, 0.0]]), "contact": torch.zeros(2, 1)})
    assert float(cat.c_max["torque"][0]) == pytest.approx(1.0, rel=1e-3)
    assert delta[0] == pytest.approx(0.25, rel=1e-3)  # at the running max: p_max
    assert delta[1] == pytest.approx(0.125, rel=1e-3)  # halfway: half of p_max
    assert float(rates["torque"]) == 1.0
    delta, _ = cat({"torque": torch.tensor([[2.0, 0.0], [0.0, 0.0]]), "contact": torch.tensor([[0.0], [1.0]])})
    assert delta[1] == pytest.approx(1.0)  # a hard constraint (p_max 1) dominates the max over constraints
    cat2 = ConstraintsAsTerminations({"torque": 1.0}, {"torque": 0.25})
    cat2.load_state_dict(cat.state_dict())
    assert torch.equal(cat2.c_max["torque"], cat.c_max["torque"])


def test_the_p_max_ramp_makes_soft_constraints_lenient_first_and_leaves_hard_ones():
    cat = ConstraintsAsTerminations({"torque": 0.0, "contact": 0.0, "mild": 0.0},
                                    {"torque": 0.25, "contact": 1.0, "mild": 0.02}, ramp_start=0.05, ramp_steps=100)
    # 1 / p_max moves linearly from 20 steps to 4: 20, 12, 4 at steps 0, 50, 100 and after
    for step, expected in ((0, 0.05), (50, 1 / 12), (100, 0.25), (500, 0.25)):
        p = cat.p_max_at(step)
        assert p["torque"] == pytest.approx(expected) and p["contact"] == 1.0 and p["mild"] == 0.02, step
    violated = {"torque": torch.ones(2, 1), "contact": torch.zeros(2, 1), "mild": torch.zeros(2, 1)}
    assert torch.allclose(cat(violated, step=0)[0], torch.full((2,), 0.05))
    assert torch.allclose(cat(violated, step=100)[0], torch.full((2,), 0.25))
    assert ConstraintsAsTerminations({"t": 0.0}, {"t": 0.25}).p_max_at(0) == {"t": 0.25}  # no ramp by default


def test_the_env_ramps_p_max_with_its_policy_steps():
    env = make("quadruped-flat", 2, seed=0, overrides={**STILL, "constraints": {"p_max_ramp_steps": 40}})
    actions = torch.zeros(2, 12)
    actions[0] = 40.0  # a violent jump from rest: the action-rate constraint at its running maximum (p = p_max)
    _, _, _, info = env.step(actions)
    assert info["cat_delta"][0] == pytest.approx(1 / (20 + (1 / 40) * (4 - 20)), rel=1e-4)  # step 1 of 40
    with pytest.raises(ConfigError, match="p_max_ramp_steps >= 0, p_max_ramp_start in"):
        make("quadruped-flat", 2, overrides={**STILL, "constraints": {"p_max_ramp_start": 0}})
    env.close()


def test_action_rate_constraint_is_on_joint_target_speed():
    from pg_robotics.envs.locomotion import constraints

    # a 2.0 jump of the raw action is 0.5 rad of target in 0.02 s: 25 rad/s, inside the 80 rad/s limit
    s = hand_state(actions=torch.full((1, 12), 2.0))
    assert torch.allclose(constraints.action_rate(s), torch.full((1, 12), 25.0))


def test_env_reports_cat_delta_for_violations(still_env):
    env = still_env
    env.step(torch.zeros(4, 12))
    actions = torch.zeros(4, 12)
    actions[0] = 40.0  # a violent jump from rest violates torque and action-rate limits
    _, _, _, info = env.step(actions)
    assert info["cat_delta"][0] > 0
    assert torch.all(info["cat_delta"][1:] == 0)
    assert info["constraint_violation"]["action_rate"] == pytest.approx(0.25)


def test_upside_down_is_a_hard_termination_and_time_outs_are_flagged_apart():
    env = make("quadruped-flat", 3, overrides={**STILL, "sim": {"episode_length_s": 0.2}})
    env.sim.qpos[0, 3:7] = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)  # rolled over
    env.sim.qpos[0, 2] = 0.6
    _, _, done, info = env.step(torch.zeros(3, 12))
    assert done.tolist() == [True, False, False]
    assert info["terminated"].tolist() == [True, False, False] and not info["time_outs"].any()
    assert info["cat_delta"][0] == 1.0
    assert "episode" in info and set(env.reward_weights) <= set(info["episode"])
    for _ in range(8):
        _, _, done, info = env.step(torch.zeros(3, 12))
    assert not done.any()
    _, _, done, info = env.step(torch.zeros(3, 12))  # step 10 = 0.2 s for worlds 1 and 2
    assert done.tolist() == [False, True, True]
    assert info["time_outs"].tolist() == [False, True, True] and not info["terminated"].any()
    assert info["episode"]["length"] == pytest.approx(0.2)


def test_only_positive_clips_the_summed_reward_at_zero():
    actions = torch.full((4, 12), 10.0)  # action-rate penalty 12 * 10^2 * 0.01 * 0.02 = 0.24 > 0.03 of tracking
    rewards = []
    for only_positive in (False, True):
        env = make("quadruped-flat", 4, seed=0, overrides={**STILL, "rewards": {"only_positive": only_positive}})
        env.step(torch.zeros(4, 12))
        rewards.append(env.step(actions)[1])
    assert torch.all(rewards[0] < 0)
    assert torch.all(rewards[1] == 0)


def test_commands_respect_ranges_and_standing_share():
    env = make("quadruped-flat", 2000, overrides={"commands": {"lin_vel_x": [0.2, 1.0], "standing_fraction": 0.25},
                                                  "randomization": {"enabled": False}})
    cmd = env.commands
    still = (cmd == 0).all(dim=1)
    assert 0.2 < float(still.float().mean()) < 0.3
    moving = cmd[~still]
    assert moving[:, 0].min() >= 0.2 and moving[:, 0].max() <= 1.0
    assert moving[:, 1].abs().max() <= 0.6 and moving[:, 2].abs().max() <= 1.0
    env.close()


def test_config_is_a_plain_dataclass():
    env = make("quadruped-flat", 1, overrides=STILL)
    assert dataclasses.asdict(env.cfg)["sim"]["decimation"] == 4
    assert env.dt == pytest.approx(0.02) and env.max_episode_length == 1000
