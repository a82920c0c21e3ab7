"""PPO numerics and a learning check."""

import pytest
import torch

from pg_robotics.algorithms.ppo import PPO, PPOCfg
from pg_robotics.networks import EmpiricalNormalizer
from pg_robotics.storage import RolloutStorage

from point_mass import PointMass, evaluate


def test_gae_with_time_outs_terminations_and_cat_by_hand():
    st = RolloutStorage(num_envs=2, num_steps=3, num_obs=1, num_critic_obs=1, num_actions=1)
    values = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    dones = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    time_outs = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])  # world 0 times out at t=1, world 1 falls
    cat_delta = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.5, 0.5]])
    for t in range(3):
        st.add(obs=torch.zeros(2, 1), critic_obs=torch.zeros(2, 1), actions=torch.zeros(2, 1),
               rewards=torch.ones(2), dones=dones[t], time_outs=time_outs[t], cat_delta=cat_delta[t],
               values=values[t], log_probs=torch.zeros(2), mu=torch.zeros(2, 1), sigma=torch.ones(2, 1))
    st.compute_returns(last_values=torch.tensor([4.0, 4.0]), gamma=0.9, lam=0.5)
    # world 0, by hand:
    #   t=2: r' = 0.5 * 1 = 0.5; carry = 0.9 * 0.5 = 0.45; d = 0.5 + 0.45 * 4 - 3 = -0.7; A = -0.7
    #   t=1: r' = 1 + 0.9 * V(s_1) = 2.8 (time-out bootstrap); carry = 0; A = 2.8 - 2 = 0.8
    #   t=0: d = 1 + 0.9 * 2 - 1 = 1.8; A = 1.8 + 0.9 * 0.5 * 0.8 = 2.16
    assert st.advantages[:, 0].tolist() == pytest.approx([2.16, 0.8, -0.7])
    assert st.returns[:, 0].tolist() == pytest.approx([3.16, 2.8, 2.3])
    # world 1 truly terminates at t=1: no bootstrap, A_1 = 1 - 2 = -1, A_0 = 1.8 + 0.45 * -1
    assert st.advantages[:, 1].tolist() == pytest.approx([1.35, -1.0, -0.7])


def test_normalizer_matches_the_batch_statistics():
    norm = EmpiricalNormalizer(3)
    data = torch.randn(1000, 3) * torch.tensor([1.0, 5.0, 0.1]) + torch.tensor([2.0, -1.0, 0.0])
    for chunk in data.split(137):
        norm.update(chunk)
    assert torch.allclose(norm.mean, data.mean(0), atol=1e-5)
    assert torch.allclose(norm.var, data.var(0, unbiased=False), rtol=1e-4)
    assert int(norm.count) == 1000
    assert norm(data).abs().max() <= 10.0


def test_normalizer_std_eps_form_scales_by_std_plus_eps_unclipped():
    """rsl_rl's form: (x - mean) / (std + eps), no clip; a feature with a small spread gets about twice the gain of
    the default (x - mean) / sqrt(var + eps)."""
    data = torch.randn(4000, 2) * torch.tensor([1.0, 0.05]) + torch.tensor([3.0, -1.0])
    forms = {form: EmpiricalNormalizer(2, form=form) for form in ("sqrt_var_eps", "std_eps")}
    for norm in forms.values():
        norm.update(data)
    std = forms["std_eps"].var.sqrt()
    x = data[:7]
    assert torch.allclose(forms["std_eps"](x), (x - data.mean(0)) / (std + 0.01), atol=1e-5)
    gain = forms["std_eps"](x)[:, 1] / forms["sqrt_var_eps"](x)[:, 1]
    assert gain.mean().item() == pytest.approx(float((0.05**2 + 0.01) ** 0.5 / 0.06), rel=0.03)  # ~1.86
    outlier = data.mean(0) + 50 * std
    assert forms["std_eps"](outlier[None])[0, 0].item() > 40  # not clipped
    assert forms["sqrt_var_eps"](outlier[None])[0, 0].item() == pytest.approx(10.0)  # clipped at 10
    ppo = PPO(PPOCfg(normalizer_form="std_eps"), 2, 3, 1, num_envs=4)
    assert ppo.obs_normalizer.form == ppo.critic_obs_normalizer.form == "std_eps"
    with pytest.raises(ValueError, match="normalizer form: expected one of sqrt_var_eps, std_eps, got 'minmax'"):
        EmpiricalNormalizer(2, form="minmax")


def test_bad_ppo_config_names_the_field():
    from pg_robotics.envs.config import ConfigError, merge

    with pytest.raises(ConfigError, match="algorithm: schedule: expected 'adaptive' or 'fixed'"):
        merge(PPOCfg(), {"schedule": "cosine"}, "algorithm")
    with pytest.raises(ConfigError, match="algorithm.num_epochs: expected an integer"):
        merge(PPOCfg(), {"num_epochs": 2.5}, "algorithm")
    with pytest.raises(ConfigError, match="algorithm: normalizer_form: expected one of sqrt_var_eps, std_eps"):
        merge(PPOCfg(), {"normalizer_form": "minmax"}, "algorithm")


def test_ppo_learns_to_drive_a_point_mass_home():
    torch.manual_seed(0)
    env = PointMass(num_envs=64, seed=0)
    cfg = PPOCfg(actor_hidden=[32, 32], critic_hidden=[32, 32], num_steps_per_env=50, num_mini_batches=4,
                 num_epochs=5, learning_rate=3e-3, entropy_coef=0.0, init_noise_std=0.5)
    ppo = PPO(cfg, 4, 4, 2, env.num_envs)
    before = evaluate(ppo.act_inference)
    obs = env.reset()
    for _ in range(40):
        for _ in range(cfg.num_steps_per_env):
            obs, reward, done, info = env.step(ppo.act(obs))
            ppo.process_env_step(reward, done, info)
        ppo.compute_returns(obs)
        stats = ppo.update()
    after = evaluate(ppo.act_inference)
    # measured: doing nothing scores -36.4, a hand-tuned PD controller -7.8; PPO here reaches about -8.3
    assert before < -25
    assert after > -11, (before, after, stats)


def test_the_runner_trains_an_env_without_constraints_or_episode_terms(tmp_path):
    """The runner logs what the env's info offers: a task without CaT (no cat_delta), per-term episode sums or
    divergence counts trains and writes its run directory all the same."""
    import json

    from pg_robotics.recipe import make_recipe
    from pg_robotics.runners.on_policy import OnPolicyRunner

    class Plain(PointMass):
        def step(self, actions):
            obs, reward, done, info = super().step(actions)
            return obs, reward, done, {"time_outs": info["time_outs"]}

        def state_dict(self):  # what a checkpoint keeps of the worlds
            return {"pos": self.pos, "vel": self.vel, "t": self.t}

    env = Plain(num_envs=16)
    recipe = make_recipe("quadruped-flat", overrides={
        "runner": {"max_iterations": 3, "save_interval": 2},
        "algorithm": {"num_steps_per_env": 50, "actor_hidden": [8], "critic_hidden": [8],
                      "symmetry_augmentation": False}})  # the point mass has no mirror (the recipe's mirrors)
    runner = OnPolicyRunner(env, recipe, PPO.from_env(recipe.algorithm, env), tmp_path)
    last = runner.learn(progress=False)
    assert last["iteration"] == 3 and last["cat_delta_mean"] == 0.0 and last["diverged_worlds"] == 0.0
    assert last["mean_episode_length_s"] == pytest.approx(5.0)  # 50 steps of 0.1 s, every episode a time-out
    assert json.loads((tmp_path / "summary.json").read_text())["iteration"] == 3
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("*.pt")) == ["model_2.pt", "model_3.pt"]


def test_per_network_clipping_bounds_actor_and_critic_apart():
    """grad_clip "per_network": each of actor (with its noise) and critic is clipped to max_grad_norm on its own,
    so a large critic gradient does not shrink the actor's; "joint" clips their norm together."""
    def norms(grad_clip: str) -> tuple[float, float]:
        torch.manual_seed(0)
        cfg = PPOCfg(actor_hidden=[8], critic_hidden=[8], max_grad_norm=1.0, grad_clip=grad_clip)
        ppo = PPO(cfg, 3, 3, 2, num_envs=4)
        obs = torch.randn(64, 3)
        dist = ppo.policy.distribution(obs)
        loss = 0.01 * ppo.policy.log_prob(dist, torch.zeros(64, 2)).mean() + 1e3 * ppo.policy.value(obs).mean()
        ppo.optimizer.step = lambda: None  # the clipped gradients are what is looked at
        ppo.gradient_step(loss)
        grad = lambda ps: float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in ps])))  # noqa: E731
        return grad(ppo.policy.actor_parameters()), grad(ppo.policy.critic_parameters())

    actor, critic = norms("per_network")
    assert critic == pytest.approx(1.0, rel=1e-4) and 1e-3 < actor <= 1.0 + 1e-5
    actor_joint, critic_joint = norms("joint")
    assert (actor_joint ** 2 + critic_joint ** 2) ** 0.5 == pytest.approx(1.0, rel=1e-4)
    assert actor_joint < actor / 100  # the critic's gradient took the actor's share of the joint norm
    from pg_robotics.envs.config import ConfigError, merge

    with pytest.raises(ConfigError, match="grad_clip: expected 'joint' or 'per_network'"):
        merge(PPOCfg(), {"grad_clip": "actor"}, "algorithm")


def test_actor_output_scale_shrinks_only_the_last_layer_at_start():
    """actor_output_scale: the actor's last layer starts at that multiple of the default initialization (every
    state's first mean action near zero), the rest of the networks as without it; a scale <= 0 names the field."""
    def build(scale: float) -> PPO:
        torch.manual_seed(0)
        cfg = PPOCfg(actor_hidden=[16, 8], critic_hidden=[16, 8], actor_output_scale=scale)
        return PPO(cfg, 3, 3, 2, num_envs=4)

    plain, small = build(1.0), build(0.01)
    last = len(plain.policy.actor) - 1
    for (name, p), q in zip(plain.policy.named_parameters(), small.policy.parameters()):
        expected = p * 0.01 if name.startswith(f"actor.{last}.") else p
        assert torch.allclose(q, expected), name
    obs = torch.randn(256, 3) * 3
    mean_plain = float(plain.policy.act_inference(obs).abs().mean())
    assert float(small.policy.act_inference(obs).abs().mean()) == pytest.approx(0.01 * mean_plain, rel=1e-4)
    assert float(small.policy.action_std().mean()) == 1.0  # the exploration noise is untouched
    from pg_robotics.envs.config import ConfigError, merge

    with pytest.raises(ConfigError, match="actor_output_scale: must be > 0, got 0"):
        merge(PPOCfg(), {"actor_output_scale": 0}, "algorithm")


def test_normalizers_learn_once_per_iteration_when_asked():
    """normalizer_update "iteration": the statistics stay frozen while the rollout is collected, then learn all
    its observations at once after the update; "step" learns before every action."""
    env = PointMass(num_envs=16, seed=0)
    for mode in ("iteration", "step"):
        cfg = PPOCfg(actor_hidden=[8], critic_hidden=[8], num_steps_per_env=5, normalizer_update=mode)
        ppo = PPO(cfg, 4, 4, 2, env.num_envs)
        obs, seen = env.reset(), []
        for _ in range(cfg.num_steps_per_env):
            seen.append(obs["policy"])
            obs, reward, done, info = env.step(ppo.act(obs))
            ppo.process_env_step(reward, done, info)
            assert int(ppo.obs_normalizer.count) == (0 if mode == "iteration" else 16 * len(seen))
        ppo.compute_returns(obs)
        ppo.update()
        ppo.end_iteration()
        assert int(ppo.obs_normalizer.count) == 80
        assert torch.allclose(ppo.obs_normalizer.mean, torch.cat(seen).mean(0), atol=1e-5)
    with pytest.raises(ValueError, match="normalizer_update: expected 'step' or 'iteration'"):
        PPOCfg(normalizer_update="epoch")


def test_recompute_advantages_uses_the_critic_of_the_previous_epochs():
    """recompute_advantages: before the second epoch, GAE is computed again from the critic as the first epoch left
    it (here shifted by hand), the value loss's clip reference stays the rollout's values; the shuffles are the same
    as without it, and off it leaves the first epoch's advantages in place."""
    seen = {}
    for recompute in (False, True):
        torch.manual_seed(0)
        env = PointMass(num_envs=16, seed=0)
        cfg = PPOCfg(actor_hidden=[8], critic_hidden=[8], num_steps_per_env=5, num_epochs=2, num_mini_batches=2,
                     recompute_advantages=recompute)
        ppo = PPO(cfg, 4, 4, 2, env.num_envs)
        obs = env.reset()
        for _ in range(cfg.num_steps_per_env):
            obs, reward, done, info = env.step(ppo.act(obs))
            ppo.process_env_step(reward, done, info)
        ppo.compute_returns(obs)
        st = ppo.storage
        st.advantages = ppo.normalized_advantages()
        first_adv, rollout_values = st.advantages.clone(), st.values.clone()
        batches = ppo._epochs(torch.Generator().manual_seed(1))
        epoch1 = [next(batches) for _ in range(cfg.num_mini_batches)]
        with torch.no_grad():
            ppo.policy.critic[-1].weight.mul_(3.0)  # the critic moved during epoch 1
            expected_values = ppo.policy.value(st.critic_obs.flatten(0, 1)).view_as(st.values)
        epoch2 = [next(batches) for _ in range(cfg.num_mini_batches)]
        seen[recompute] = [b["obs"] for b in epoch1 + epoch2]
        assert torch.equal(st.values, rollout_values)  # the clip reference
        if not recompute:
            assert torch.equal(st.advantages, first_adv)
            continue
        # by hand: GAE from the shifted critic, normalized
        check = RolloutStorage(env.num_envs, 5, 4, 4, 2)
        for name in ("rewards", "dones", "time_outs", "cat_delta"):
            getattr(check, name).copy_(getattr(st, name))
        check.values.copy_(expected_values)
        with torch.no_grad():
            check.compute_returns(ppo.policy.value(ppo._last_critic_obs), cfg.gamma, cfg.lam)
        adv = (check.advantages - check.advantages.mean()) / (check.advantages.std() + 1e-8)
        assert torch.allclose(st.advantages, adv, atol=1e-6) and not torch.allclose(st.advantages, first_adv)
    assert all(torch.equal(a, b) for a, b in zip(seen[False], seen[True]))  # the same mini-batches


def test_shuffle_once_gives_every_epoch_the_same_mini_batches():
    """shuffle "once" (rsl_rl's): one permutation for all epochs, so epoch 2 repeats epoch 1's mini-batches; "epoch":
    a new one each; together the mini-batches of an epoch hold every transition exactly once."""
    torch.manual_seed(0)
    env = PointMass(num_envs=16, seed=0)
    ppo = PPO(PPOCfg(actor_hidden=[8], critic_hidden=[8], num_steps_per_env=5), 4, 4, 2, env.num_envs)
    obs = env.reset()
    for _ in range(5):
        obs, reward, done, info = env.step(ppo.act(obs))
        ppo.process_env_step(reward, done, info)
    ppo.compute_returns(obs)
    rows = ppo.storage.obs.flatten(0, 1)
    for shuffle, same in (("once", True), ("epoch", False)):
        ppo.cfg = PPOCfg(actor_hidden=[8], critic_hidden=[8], num_steps_per_env=5, num_epochs=2, num_mini_batches=4,
                         shuffle=shuffle)
        batches = [b["obs"] for b in ppo._epochs(torch.Generator().manual_seed(3))]
        assert len(batches) == 8 and all(len(b) == 20 for b in batches)
        for epoch in (batches[:4], batches[4:]):  # each epoch: a permutation of the rollout
            assert torch.equal(torch.cat(epoch).sort(0).values, rows.sort(0).values)
        assert all(torch.equal(a, b) for a, b in zip(batches[:4], batches[4:])) == same
    with pytest.raises(ValueError, match="shuffle: expected 'epoch' or 'once', got 'never'"):
        PPOCfg(shuffle="never")


def test_cat_soft_terminations_off_scales_rewards_only():
    """cat_soft_terminations false (the anchor's CaT: rsl_rl keeps dones as bytes, so done = max(done, delta) is 0
    for 0 < delta < 1): delta scales the step's reward, the bootstrap goes on; delta = 1 still ends it."""
    st = RolloutStorage(num_envs=2, num_steps=2, num_obs=1, num_critic_obs=1, num_actions=1)
    cat_delta = torch.tensor([[0.5, 1.0], [0.0, 0.0]])
    for t in range(2):
        st.add(obs=torch.zeros(2, 1), critic_obs=torch.zeros(2, 1), actions=torch.zeros(2, 1),
               rewards=torch.ones(2), dones=torch.zeros(2), time_outs=torch.zeros(2), cat_delta=cat_delta[t],
               values=torch.tensor([1.0, 1.0]), log_probs=torch.zeros(2), mu=torch.zeros(2, 1), sigma=torch.ones(2, 1))
    st.compute_returns(last_values=torch.tensor([2.0, 2.0]), gamma=0.9, lam=0.5, soft_terminations=False)
    # t=1: d = 1 + 0.9 * 2 - 1 = 1.8 (both worlds)
    # world 0, t=0: r' = 0.5, the bootstrap goes on: d = 0.5 + 0.9 * 1 - 1 = 0.4, A = 0.4 + 0.45 * 1.8 = 1.21
    # world 1, t=0: r' = 0, delta = 1 ends it: A = 0 - 1 = -1
    assert st.advantages[0].tolist() == pytest.approx([1.21, -1.0])
    st.compute_returns(last_values=torch.tensor([2.0, 2.0]), gamma=0.9, lam=0.5)  # CaT's own: (1 - delta) on both
    # world 0, t=0: d = 0.5 + 0.45 * 1 - 1 = -0.05, A = -0.05 + 0.225 * 1.8 = 0.355
    assert st.advantages[0].tolist() == pytest.approx([0.355, -1.0])
