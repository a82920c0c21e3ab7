"""DDPG + HER: relabelling, normalizers, target clipping, config validation and a learning check."""

import pytest
import torch

from pg_robotics.algorithms.ddpg_her import DDPG, DDPGCfg
from pg_robotics.envs.config import ConfigError, merge
from pg_robotics.her import EpisodeBuffer
from pg_robotics.networks import EmpiricalNormalizer
from pg_robotics.runners.off_policy import run_episode

from goal_envs import PointGoal

T = 5  # steps per episode of the hand-built buffer
THRESHOLD = 0.05


def sparse_reward(achieved_goal, desired_goal, info=None):
    return -((achieved_goal - desired_goal).norm(dim=-1) > THRESHOLD).float()


def coded_episodes(ids: list[int]):
    """Episodes whose every entry names its (episode, step): obs [e, s], achieved goal [e, s, 0], desired goal
    [e, s, 1] (never within the threshold of an achieved goal), action [e, s]."""
    e = torch.tensor(ids, dtype=torch.float32)[:, None].expand(-1, T + 1)
    s = torch.arange(T + 1, dtype=torch.float32)[None].expand(len(ids), -1)
    obs = torch.stack([e, s], dim=-1)
    ag = torch.stack([e, s, torch.zeros_like(e)], dim=-1)
    goal = torch.stack([e[:, :T], s[:, :T], torch.ones_like(e[:, :T])], dim=-1)
    return obs, ag, goal, obs[:, :T].clone()


@pytest.fixture
def buffer():
    """Two stores of two worlds each: four episodes, coded 10, 11, 20, 21."""
    buf = EpisodeBuffer(capacity=8, episode_steps=T, obs_dim=2, goal_dim=3, action_dim=2)
    buf.store(*coded_episodes([10, 11]))
    buf.store(*coded_episodes([20, 21]))
    assert buf.size == 4
    return buf


def sample(buf, strategy, k=4, n=20000, seed=0):
    return buf.sample(n, sparse_reward, strategy, k, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("strategy", ["future", "final", "episode"])
def test_relabelled_goals_come_from_the_same_episode_at_the_strategy_steps(buffer, strategy):
    b = sample(buffer, strategy)
    code = buffer.ag[b["episode"], 0, 0]  # the episode's code, from the buffer slot it was drawn from
    t, src = b["t"], b["goal_step"]
    # the transition is the one stored at (episode, t)
    assert torch.equal(b["obs"][:, 0], code) and torch.equal(b["obs"][:, 1], t.float())
    assert torch.equal(b["next_obs"][:, 1], t.float() + 1) and torch.equal(b["action"], b["obs"])
    assert set(code.long().tolist()) == {10, 11, 20, 21} and set(t.tolist()) == set(range(T))
    her = src >= 0
    assert her.float().mean().item() == pytest.approx(0.8, abs=0.02)  # 1 - 1 / (1 + k), k = 4
    # relabelled: the achieved goal of step `goal_step` of the same episode
    assert torch.equal(b["goal"][her], torch.stack([code[her], src[her].float(), torch.zeros(int(her.sum()))], 1))
    # not relabelled: the stored desired goal of that step
    assert torch.equal(b["goal"][~her], torch.stack([code[~her], t[~her].float(), torch.ones(int((~her).sum()))], 1))
    steps = src[her]
    if strategy == "future":
        assert bool((steps >= t[her] + 1).all() and (steps <= T).all())
        assert set(steps[t[her] == 0].tolist()) == set(range(1, T + 1))  # the final step included
        assert set(steps[t[her] == T - 1].tolist()) == {T}
        # uniform over t+1..T: from t = 0 each later step takes about 1/T of the draws
        counts = torch.bincount(steps[t[her] == 0], minlength=T + 1)[1:].float()
        assert (counts / counts.sum() - 1 / T).abs().max().item() < 0.03
    elif strategy == "final":
        assert set(steps.tolist()) == {T}
    else:
        assert set(steps.tolist()) == set(range(1, T + 1))
        assert bool((steps <= t[her]).any())  # episode goals may lie in the past
    # rewards are recomputed on the relabelled goals: 0 exactly where the goal is the next achieved goal
    assert torch.equal(b["reward"], sparse_reward(buffer.ag[b["episode"], t + 1], b["goal"]))
    assert torch.equal(b["reward"] == 0, src == t + 1)
    zero_share = (b["reward"] == 0).float().mean().item()
    expected = {"future": 0.8 * sum(1 / (T - t) for t in range(T)) / T, "final": 0.8 / T, "episode": 0.8 / T}
    assert zero_share == pytest.approx(expected[strategy], abs=0.02)


def test_relabelled_share_follows_k_and_none_or_k0_relabel_nothing(buffer):
    assert (sample(buffer, "future", k=1)["goal_step"] >= 0).float().mean().item() == pytest.approx(0.5, abs=0.02)
    for strategy, k in (("none", 4), ("future", 0)):
        b = sample(buffer, strategy, k=k)
        assert bool((b["goal_step"] == -1).all())
        assert torch.equal(b["goal"], buffer.goal[b["episode"], b["t"]])
        assert bool((b["reward"] == -1).all())  # no stored desired goal is ever reached


def test_same_generator_seed_gives_the_same_batch(buffer):
    a, b = sample(buffer, "future", n=500, seed=3), sample(buffer, "future", n=500, seed=3)
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert not torch.equal(a["t"], sample(buffer, "future", n=500, seed=4)["t"])


def test_ring_buffer_overwrites_the_oldest_episodes():
    buf = EpisodeBuffer(capacity=3, episode_steps=T, obs_dim=2, goal_dim=3, action_dim=2)
    buf.store(*coded_episodes([1, 2]))
    buf.store(*coded_episodes([3, 4]))  # episode 1 goes; episode 4 takes its slot
    assert (buf.size, buf.next) == (3, 1)
    assert buf.ag[:, 0, 0].tolist() == [4.0, 2.0, 3.0]
    buf.store(*coded_episodes([5]))
    assert buf.ag[:, 0, 0].tolist() == [4.0, 5.0, 3.0] and buf.next == 2
    b = sample(buf, "future", n=3000)
    assert set(buf.ag[b["episode"], 0, 0].long().tolist()) == {3, 4, 5}
    assert set(b["goal"][b["goal_step"] >= 0, 0].long().tolist()) == {3, 4, 5}


def test_buffer_state_dict_round_trip(buffer):
    other = EpisodeBuffer(capacity=8, episode_steps=T, obs_dim=2, goal_dim=3, action_dim=2)
    other.load_state_dict(buffer.state_dict())
    assert (other.size, other.next) == (4, 4)
    a, b = sample(buffer, "future", n=300), sample(other, "future", n=300)
    assert all(torch.equal(a[key], b[key]) for key in a)
    small = EpisodeBuffer(capacity=2, episode_steps=T, obs_dim=2, goal_dim=3, action_dim=2)
    with pytest.raises(ValueError, match="4 episodes, more than buffer_episodes 2"):
        small.load_state_dict(buffer.state_dict())


def test_bad_strategy_and_empty_buffer(buffer):
    with pytest.raises(ValueError, match="her_strategy: unknown 'futur'"):
        buffer.sample(8, sparse_reward, "futur")
    empty = EpisodeBuffer(capacity=2, episode_steps=T, obs_dim=2, goal_dim=3, action_dim=2)
    with pytest.raises(RuntimeError, match="replay buffer is empty"):
        empty.sample(8, sparse_reward)
    with pytest.raises(ValueError, match="buffer_episodes: must be >= 1"):
        EpisodeBuffer(capacity=0, episode_steps=T, obs_dim=2, goal_dim=3, action_dim=2)


# ---- normalizers ---------------------------------------------------------------------------------------------------
def test_normalizer_equals_the_moments_of_all_data_seen_and_clips():
    gen = torch.Generator().manual_seed(0)
    chunks = [torch.randn(n, 3, generator=gen) * scale + shift for n, scale, shift in
              ((7, 1.0, 0.0), (300, 4.0, 2.0), (1, 1.0, -5.0), (50, 0.1, 10.0))]
    norm = EmpiricalNormalizer(3, eps=1e-4, clip=5.0)
    for chunk in chunks:
        norm.update(chunk)
    data = torch.cat(chunks)
    assert int(norm.count) == len(data) == 358
    assert torch.allclose(norm.mean, data.mean(0), atol=1e-5)
    assert torch.allclose(norm.var, data.var(0, unbiased=False), rtol=1e-5)
    x = torch.tensor([[1.0, 2.0, 3.0]])
    assert torch.allclose(norm(x), (x - data.mean(0)) / (data.var(0, unbiased=False) + 1e-4).sqrt(), atol=1e-5)
    far = norm(torch.tensor([[1e6, -1e6, 0.0]]))
    assert far[0, :2].tolist() == [5.0, -5.0]


def test_ddpg_goal_normalizer_sees_achieved_and_desired_goals():
    alg = DDPG(DDPGCfg(hidden=[8]), obs_dim=2, goal_dim=3, action_dim=2)
    obs, ag, goal = torch.randn(4, 6, 2), torch.randn(4, 6, 3) + 1.0, torch.randn(4, 5, 3) - 1.0
    alg.update_normalizers(obs, ag, goal)
    assert int(alg.obs_normalizer.count) == 24 and int(alg.goal_normalizer.count) == 24 + 20
    goals = torch.cat([ag.reshape(-1, 3), goal.reshape(-1, 3)])
    assert torch.allclose(alg.goal_normalizer.mean, goals.mean(0), atol=1e-5)
    assert torch.allclose(alg.obs_normalizer.mean, obs.reshape(-1, 2).mean(0), atol=1e-5)


# ---- critic target clipping ----------------------------------------------------------------------------------------
def random_batch(n=64, gen=None):
    gen = gen or torch.Generator().manual_seed(0)
    return {"obs": torch.randn(n, 2, generator=gen), "next_obs": torch.randn(n, 2, generator=gen),
            "goal": torch.randn(n, 2, generator=gen), "action": torch.rand(n, 2, generator=gen) * 2 - 1,
            "reward": -(torch.rand(n, generator=gen) < 0.5).float()}


def agent_with_target_bias(bias: float, clip: bool) -> DDPG:
    torch.manual_seed(0)
    alg = DDPG(DDPGCfg(hidden=[16, 16], gamma=0.98, critic_lr=1e-2, clip_target=clip), obs_dim=2, goal_dim=2, action_dim=2)
    with torch.no_grad():
        alg.critic_target.net[-1].bias.fill_(bias)
    return alg


def test_critic_target_is_clipped_to_the_return_range_of_the_sparse_reward():
    low = -1 / (1 - 0.98)  # -50
    gen = torch.Generator().manual_seed(0)
    high_bias, low_bias = agent_with_target_bias(1000.0, clip=True), agent_with_target_bias(-1000.0, clip=True)
    assert high_bias.update(random_batch(gen=gen))["q_target_mean"] == 0.0
    assert low_bias.update(random_batch(gen=gen))["q_target_mean"] == pytest.approx(low, abs=1e-4)
    # the critic regresses toward the clipped target: it stays near 0, never near the 980 the target net says
    for _ in range(100):
        stats = high_bias.update(random_batch(gen=gen))
    assert stats["q_target_mean"] == 0.0 and abs(stats["q_mean"]) < 0.1
    # unclipped, the targets are r + 0.98 * (+-1000 + small)
    assert agent_with_target_bias(1000.0, clip=False).update(random_batch())["q_target_mean"] > 900
    assert agent_with_target_bias(-1000.0, clip=False).update(random_batch())["q_target_mean"] < -900
    unclipped = agent_with_target_bias(1000.0, clip=False)
    for _ in range(100):
        stats = unclipped.update(random_batch(gen=gen))
    assert stats["q_mean"] > 100.0  # climbing toward the unbounded target


# ---- config validation ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, field, message", [
    ({"gamma": 1.5}, "gamma", "must be in (0, 1)"),
    ({"gamma": 0}, "gamma", "must be in (0, 1)"),
    ({"polyak": 1.0}, "polyak", "must be in [0, 1)"),
    ({"her_strategy": "bogus"}, "her_strategy", "unknown 'bogus'"),
    ({"her_k": -1}, "her_k", "must be >= 0"),
    ({"batch_size": 0}, "batch_size", "must be > 0"),
    ({"buffer_episodes": -5}, "buffer_episodes", "must be > 0"),
    ({"random_eps": 1.5}, "random_eps", "must be in [0, 1]"),
    ({"activation": "swish"}, "activation", "unknown 'swish'"),
    ({"gamma": "high"}, "gamma", "expected a number"),
    ({"hidden": 64}, "hidden", "expected a list"),
    ({"clip_target": "yes"}, "clip_target", "expected true/false"),
    ({"gama": 0.9}, "gama", "unknown key"),
])
def test_bad_ddpg_config_names_the_field(overrides, field, message):
    with pytest.raises(ConfigError) as err:
        merge(DDPGCfg(), overrides, "algorithm")
    text = str(err.value)
    # the project's convention: "algorithm.<field>: ..." for type errors, "algorithm: <field>: ..." for values
    assert text.startswith((f"algorithm.{field}: ", f"algorithm: {field}")), text
    assert message in text


# ---- learning check ------------------------------------------------------------------------------------------------
def train_point_goal(strategy: str, seed: int, cycles: int = 120, algo: str = "ddpg_her") -> float:
    """DDPG (or another off-policy goal learner of the registry) + HER with `strategy` on the 2-D PointGoal, the
    off-policy runner's loop; returns the success rate of the deterministic policy on 200 fresh episodes."""
    from pg_robotics import algorithms

    torch.manual_seed(seed)
    env = PointGoal(8, seed=seed)
    spec = algorithms.get(algo)
    # polyak 0.5: the targets follow the online nets within a few cycles, so values propagate in a short run
    cfg = spec.config_class()(hidden=[64, 64], batch_size=128, updates_per_cycle=20, buffer_episodes=2000,
                              polyak=0.5, her_strategy=strategy)
    alg = spec.learner_class()(cfg, 2, 2, 2)
    buf = EpisodeBuffer(cfg.buffer_episodes, env.episode_steps, 2, 2, 2)
    gen = torch.Generator().manual_seed(seed)
    obs = env.reset()
    for _ in range(cycles):
        ep, obs = run_episode(env, lambda o: alg.explore(o, gen), obs)
        buf.store(ep["obs"], ep["ag"], ep["goal"], ep["actions"])
        alg.update_normalizers(ep["obs"], ep["ag"], ep["goal"])
        for _ in range(cfg.updates_per_cycle):
            alg.update(buf.sample(cfg.batch_size, env.compute_reward, cfg.her_strategy, cfg.her_k, gen))
        alg.update_targets()
    test_env = PointGoal(200, seed=10_000 + seed)
    ep, _ = run_episode(test_env, alg.act_inference, test_env.reset())
    return float(ep["success"].mean())


def test_point_goal_contract():
    env = PointGoal(4, seed=0, episode_steps=3)
    obs = env.reset()
    assert {k: tuple(v.shape) for k, v in obs.items()} == {k: (4, 2) for k in env.observation_dims}
    goal = obs["desired_goal"].clone()
    for t in range(3):
        start = obs["achieved_goal"]
        obs, reward, done, info = env.step(torch.full((4, 2), 5.0))  # clamped to 1: +0.1 per axis per step
        moved = (info["final_obs"] if t == 2 else obs)["achieved_goal"]
        assert torch.allclose(moved, (start + 0.1).clamp(max=1.0))
        assert torch.equal(reward, env.compute_reward(moved, goal)) and bool(done.all()) == (t == 2)
    assert not torch.equal(obs["desired_goal"], goal)  # a new episode began
    assert env.compute_reward(torch.zeros(5, 6, 2), torch.full((5, 6, 2), 0.03)).shape == (5, 6)


def test_an_episode_that_ends_early_in_one_world_is_refused():
    """HER relabels within whole episodes of equal length: a world whose episode ends before the others is named."""
    class EndsEarly(PointGoal):
        def step(self, actions):
            obs, reward, done, info = super().step(actions)
            if self.t == 2:
                done = done.clone()
                done[3] = True
            return obs, reward, done, info

    env = EndsEarly(4, seed=0, episode_steps=5)
    with pytest.raises(RuntimeError, match="episodes of 5 steps in every world; world 3 ended at step 2"):
        run_episode(env, lambda o: torch.zeros(4, 2), env.reset())
    env = PointGoal(4, seed=0, episode_steps=5)
    ep, _ = run_episode(env, lambda o: torch.zeros(4, 2), env.reset())
    assert ep["actions"].shape == (4, 5, 2) and ep["obs"].shape == (4, 6, 2)


def test_ddpg_her_solves_point_goal_and_plain_ddpg_does_not():
    with_her = [train_point_goal("future", seed) for seed in (0, 1)]
    without = train_point_goal("none", 0)
    assert min(with_her) >= 0.9, with_her
    assert without < 0.3, without


@pytest.mark.parametrize("algo", ["sac_her", "td3_her"])
def test_her_works_with_sac_and_td3_too(algo):
    """The same goal runner and HER batches with SAC's or TD3's learner (algorithms/her_variants.py)."""
    assert train_point_goal("future", 0, algo=algo) >= 0.9


def test_sac_her_keeps_no_actor_target_and_loads_the_older_layout():
    from pg_robotics import algorithms

    spec = algorithms.get("sac_her")
    alg = spec.learner_class()(spec.config_class()(hidden=[16]), 2, 2, 2)
    state = alg.state_dict()
    assert "actor_target" not in state and {"critic2_target", "log_alpha"} <= set(state)
    older = {**state, "actor_target": alg.actor.state_dict()}  # what sac_her checkpoints of 2026-12-02 held
    other = spec.learner_class()(spec.config_class()(hidden=[16]), 2, 2, 2)
    other.load_state_dict(older)
    x = {"observation": torch.randn(5, 2), "desired_goal": torch.randn(5, 2)}
    assert torch.equal(other.act_inference(x), alg.act_inference(x))
