"""The on-policy family beside PPO (ppo_kl, a2c, reinforce, npg, trpo): numerics of the pieces the lectures define
(conjugate gradient, Fisher-vector products, the TRPO line search, the KL-penalty coefficient), a learning check
of each on the point mass, the softmax policy on discrete actions, and any gymnasium env from the CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from pg_robotics import algorithms
from pg_robotics.algorithms.npg import NPG, NPGCfg, conjugate_gradient
from pg_robotics.algorithms.ppo import PPO, PPOCfg
from pg_robotics.algorithms.trpo import TRPO, TRPOCfg, line_search
from pg_robotics.cli import main
from pg_robotics.envs import ConfigError, make
from pg_robotics.networks import ActorCritic

from pgr_cli import pgr
from point_mass import PointMass, evaluate

SMALL = dict(actor_hidden=[32, 32], critic_hidden=[32, 32], num_steps_per_env=50, init_noise_std=0.5)


def test_conjugate_gradient_solves_a_known_spd_system():
    gen = torch.Generator().manual_seed(0)
    m = torch.randn(12, 12, generator=gen, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(12, dtype=torch.float64)
    b = torch.randn(12, generator=gen, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iterations=12)
    assert torch.allclose(x, torch.linalg.solve(a, b), atol=1e-8)
    # fewer iterations than dimensions: an approximation that still reduces the residual
    x3 = conjugate_gradient(lambda v: a @ v, b, iterations=3)
    assert (a @ x3 - b).norm() < b.norm()


@pytest.mark.parametrize("discrete", [False, True])
def test_fisher_vector_product_equals_the_explicit_fisher_on_a_tiny_policy(discrete):
    """The Hessian of the mean KL(pi_old || pi) at theta_old, formed explicitly by autograd over the flat actor
    parameters, times v, is what NPG's Fisher-vector product gives (damping 0)."""
    from torch.func import functional_call

    torch.manual_seed(0)
    npg = NPG(NPGCfg(actor_hidden=[3], critic_hidden=[3], cg_damping=0.0, normalize_obs=False), 2, 2,
              3 if discrete else 2, 4, discrete=discrete)
    policy = npg.policy.double()
    obs = torch.randn(64, 2, dtype=torch.float64)

    class Params(torch.nn.Module):  # obs -> the distribution's parameters, as a module functional_call can run
        def __init__(self):
            super().__init__()
            self.p = policy

        def forward(self, x):
            return policy.params(policy.distribution(x))

    wrapper = Params()
    names = [n for n, _ in wrapper.named_parameters() if not n.startswith("p.critic.")]
    current = dict(wrapper.named_parameters())
    theta = torch.cat([current[n].detach().reshape(-1) for n in names])
    old_mu, old_sigma = (t.detach() for t in wrapper(obs))

    def mean_kl(flat):
        params, i = {}, 0
        for n in names:
            size = current[n].numel()
            params[n] = flat[i:i + size].reshape(current[n].shape)
            i += size
        return policy.kl(old_mu, old_sigma, *functional_call(wrapper, params, (obs,))).mean()

    fisher = torch.autograd.functional.hessian(mean_kl, theta)
    fvp = npg.fisher_vector_product(obs)
    for seed in range(3):
        v = torch.randn(len(theta), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        assert torch.allclose(fvp(v), fisher @ v, atol=1e-10), seed
    assert torch.linalg.eigvalsh(fisher).min() > -1e-10  # positive semi-definite, as a Fisher matrix is


def test_line_search_takes_the_first_step_that_improves_and_keeps_the_kl_bound():
    theta = torch.zeros(4, dtype=torch.float64)
    step = torch.full((4,), 0.1, dtype=torch.float64)  # |step|^2 = 0.04: KL ~4x the bound of 0.012 at j = 0

    def evaluate(candidate):  # the surrogate gains along the step; the KL is quadratic in the distance
        return float(candidate.sum()), float(candidate.square().sum())

    new, j = line_search(theta, step, evaluate, max_kl=0.012, backtracks=10, ratio=0.5)
    assert j == 1 and torch.allclose(new, theta + 0.5 * step)  # j = 0 breaks the KL bound: rejected
    # a step along which the surrogate only gets worse is never taken, whatever its KL
    new, j = line_search(theta, -step, evaluate, max_kl=0.01)
    assert j is None and torch.equal(new, theta)
    # a step that breaks the bound even after every backtrack: the policy stays
    new, j = line_search(theta, step * 100, evaluate, max_kl=0.01, backtracks=3)
    assert j is None and torch.equal(new, theta)


def _train(learner, env, iterations):
    gen = torch.Generator().manual_seed(0)
    obs = env.reset()
    history = []
    for _ in range(iterations):
        for _ in range(learner.cfg.num_steps_per_env):
            obs, reward, done, info = env.step(learner.act(obs))
            learner.process_env_step(reward, done, info)
        learner.compute_returns(obs)
        history.append(learner.update(gen))
    return history


def test_trpo_steps_stay_inside_the_trust_region():
    torch.manual_seed(0)
    env = PointMass(num_envs=64, seed=0)
    trpo = TRPO(TRPOCfg(**SMALL, max_kl=0.01), 4, 4, 2, env.num_envs)
    history = _train(trpo, env, 6)
    assert all(h["kl"] <= 0.01 + 1e-7 for h in history), [h["kl"] for h in history]
    assert any(h["line_search_backtracks"] >= 0 for h in history)  # some step was taken


@pytest.mark.parametrize("cls, cfg_cls, every", [(NPG, NPGCfg, 4), (TRPO, TRPOCfg, 1)])
def test_the_fisher_products_use_the_default_fraction_of_the_rollout(cls, cfg_cls, every):
    """NPG's Fisher-vector products run on every 4th sample of the rollout by default, TRPO's on all of it."""
    torch.manual_seed(0)
    env = PointMass(num_envs=16, seed=0)
    learner = cls(cfg_cls(**SMALL), 4, 4, 2, env.num_envs)
    seen, fvp = [], learner.fisher_vector_product
    learner.fisher_vector_product = lambda obs: seen.append(len(obs)) or fvp(obs)
    _train(learner, env, 1)
    assert seen == [SMALL["num_steps_per_env"] * env.num_envs // every]


def test_kl_penalty_coefficient_follows_the_measured_kl():
    torch.manual_seed(0)
    env = PointMass(num_envs=16, seed=0)
    high = PPO(PPOCfg(**SMALL, surrogate="kl_penalty", kl_coef=1.0, desired_kl=1e-7, schedule="fixed"), 4, 4, 2, 16)
    low = PPO(PPOCfg(**SMALL, surrogate="kl_penalty", kl_coef=1.0, desired_kl=10.0, schedule="fixed"), 4, 4, 2, 16)
    assert _train(high, env, 1)[-1]["kl_coef"] == 2.0  # KL above 1.5x its target: the penalty doubles
    assert _train(low, env, 1)[-1]["kl_coef"] == 0.5  # below target / 1.5: it halves
    assert high.state_dict()["kl_coef"] == 2.0  # and travels with the checkpoint


# on the point mass (seed 0; doing nothing scores -36.4, a hand-tuned PD controller -7.8, PPO -8.3 after 40
# iterations): the iterations each gets and its bound; measured: ppo_kl -6.8, a2c -7.5, reinforce -7.0, npg -7.6
# (a quarter of the rollout in its Fisher products; -7.4 with all of it), trpo -7.4
LEARNS = {
    "ppo_kl": (40, {"learning_rate": 3e-3}, -12.0),
    "a2c": (100, {"learning_rate": 3e-3}, -12.0),
    "reinforce": (60, {"learning_rate": 3e-3}, -14.0),
    "npg": (40, {"max_kl": 0.02}, -12.0),
    "trpo": (40, {"max_kl": 0.02}, -12.0),
}


@pytest.mark.parametrize("name", sorted(LEARNS))
def test_each_algorithm_learns_to_drive_the_point_mass_home(name):
    iterations, extra, bound = LEARNS[name]
    torch.manual_seed(0)
    env = PointMass(num_envs=64, seed=0)
    spec = algorithms.get(name)
    cfg = spec.config_class()(**{**SMALL, **extra})
    learner = spec.learner_class()(cfg, 4, 4, 2, env.num_envs)
    before = evaluate(learner.act_inference)
    history = _train(learner, env, iterations)
    after = evaluate(learner.act_inference)
    assert before < -25 and after > bound, (name, before, after, history[-1])


def test_gym_adapter_for_discrete_and_continuous_envs():
    env = make("gym:CartPole-v1", 3, seed=0)
    assert env.kind == "gym" and env.discrete and env.num_actions == 2 and env.num_obs == {"policy": 4}
    ends = 0
    for _ in range(60):  # always pushing right: every pole falls within 60 steps, a true end, not a time-out
        obs, reward, done, info = env.step(torch.ones(3, 1))
        ends += int(done.sum())
        assert not info["time_outs"].any() and reward.tolist() == [1.0] * 3
    assert ends >= 3 and obs["policy"].shape == (3, 4)
    env.close()
    env = make("gym:Pendulum-v1", 2, seed=0)
    assert not env.discrete and env.num_actions == 1
    contract = env.deploy_contract()
    assert contract["action_low"] == [-2.0] and contract["action_high"] == [2.0] and contract["safe_action"] == [0.0]
    for t in range(200):  # Pendulum never terminates: its 200-step limit is a time-out
        _, _, done, info = env.step(torch.full((2, 1), 50.0))  # clipped to the Box's 2.0
        assert bool(done.all()) == (t == 199) and torch.equal(done, info["time_outs"])
    env.close()


def test_mujoco_compile_warnings_of_gym_models_show_once():
    """HalfCheetah's model carries a deprecated compiler attribute: MuJoCo printed a warning at every compile (410
    lines in one 300k-step run); the adapter shows each once, then puts MuJoCo's own handler back."""
    code = ("import mujoco\nfrom pg_robotics.envs.gym_vector import gym_kind, make_gym\nfor _ in range(3):\n"
            "    [e.close() for e in make_gym('HalfCheetah-v5', count=2)]\n"
            "assert gym_kind('HalfCheetah-v5') == 'gym'\n"  # another call site: still not shown again
            "import warnings\nwarnings.filterwarnings('ignore', message='unrelated')\n"  # resets Python's registry
            "[e.close() for e in make_gym('HalfCheetah-v5')]\n"
            "print('handler', mujoco.get_mju_user_warning())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert out.count("settotalmass") == 1 and "RuntimeWarning: MuJoCo: compiler attribute" in out, out
    assert "handler None" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["train", "gym:FrozenLake-v1"], "task: FrozenLake-v1 has Discrete observations; this adapter takes a Box"),
    (["train", "gym:CartPole-v1", "--algo", "trpo", "--set", "algorithm.max_kl=-1"],
     "algorithm: max_kl > 0, cg_damping >= 0, fisher_fraction in (0, 1]: got -1"),
    (["train", "gym:CartPole-v1", "--algo", "a2c", "--set", "algorithm.num_steps_per_env=0"],
     "algorithm: num_steps_per_env: must be >= 1, got 0"),
    (["train", "gym:Pendulum-v1", "--algo", "dqn"], "algo: DQN needs Discrete actions; gym:Pendulum-v1 has "
                                                    "continuous ones"),
    (["train", "gym:CartPole-v1", "--algo", "sac"], "algo: SAC needs Box (continuous) actions; gym:CartPole-v1"),
    (["train", "gym:Pendulum-v1", "--algo", "td3", "--set", "algorithm.tau=0"], "algorithm: gamma, tau: must be"),
    (["train", "gym:CartPole-v1", "--algo", "es", "--num-envs", "7"], "runner.num_envs: ES needs an even number of "
                                                                       "candidates (pairs), got 7"),
    (["train", "gym:CartPole-v1", "--algo", "cem", "--num-envs", "10", "--set", "algorithm.worlds_per_candidate=3"],
     "runner.num_envs: 10 is not a multiple of algorithm.worlds_per_candidate (3)"),
    (["train", "gym:CartPole-v1", "--set", "algorithm.surrogate=trust"],
     "algorithm: surrogate: expected 'clip' or 'kl_penalty', got 'trust'"),
    (["train", "gym:CartPole-v1", "--set", "runner.max_env_steps=-5"],
     "runner: time_budget_min, max_env_steps: must be >= 0, got 0.0, -5"),
])
def test_bad_gym_and_algorithm_input_exits_2(args, message, tmp_path, capsys):
    assert main([*args, "--run-dir", str(tmp_path / "run"), "--max-iterations", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


def test_a_discrete_gym_env_trains_evaluates_and_exports_from_the_cli(tmp_path):
    """`pgr train gym:CartPole-v1` (PPO, softmax policy), `pgr eval`, `pgr export`: the deploy runtime's
    choices equal the policy's on the recorded observations."""
    run = tmp_path / "run"
    result = pgr("train", "gym:CartPole-v1", "--max-iterations", "25", "--num-envs", "8", "--run-dir", str(run),
                 "--no-progress", "--set", "algorithm.num_steps_per_env=64", "--set", "algorithm.actor_hidden=[32]",
                 "--set", "algorithm.critic_hidden=[32]", "--set", "runner.threads=1")
    assert result.returncode == 0, result.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["algo"] == "ppo" and summary["total_env_steps"] == 25 * 64 * 8
    result = pgr("eval", str(run), "--json")
    assert result.returncode == 0, result.stderr
    ev = json.loads(result.stdout)
    # measured: a random policy scores about 22; this run 487.6 (12,800 env steps; 500 is the most there is)
    assert ev["episodes"] == 20 and ev["mean_return"] > 200, ev
    result = pgr("export", str(run), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["kind"] == "vector" and report["replay_action_max_abs_diff"] == 0.0, report


def test_compare_trains_each_algorithm_per_seed_and_writes_the_table_and_plot(tmp_path):
    out = tmp_path / "cmp"
    args = ["compare", "--task", "gym:CartPole-v1", "--algos", "ppo,a2c", "--env-steps", "1500", "--seeds", "2",
            "--out", str(out), "--threshold", "30", "--episodes", "4", "--no-progress",
            "--set", "runner.num_envs=4", "--set", "runner.save_interval=4", "--set", "runner.threads=1"]
    result = pgr(*args)
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "compare.json").read_text())
    assert [e["algo"] for e in data["table"]] == ["ppo", "a2c"] and all(e["seeds"] == 2 for e in data["table"])
    for name, steps in (("ppo", 24), ("a2c", 20)):  # ceil(1500 / (4 worlds x steps per iteration)) iterations
        for seed in data["rows"][name]:
            iterations = -(-1500 // (4 * steps))
            assert seed["points"][-1]["iteration"] == iterations and seed["points"][-1]["env_steps"] >= 1500
    table = (out / "compare.md").read_text()
    assert "| ppo |" in table and "| a2c |" in table and "time to 30" in table and table in result.stdout
    assert (out / "compare.png").stat().st_size > 10_000
    # every run finished and judged is kept: a second compare neither trains nor judges again, only re-draws
    stamps = [(out / run / name).stat().st_mtime for run in ("ppo_s0", "a2c_s1")
              for name in ("summary.json", "compare_points.json")]
    assert pgr(*args).returncode == 0
    assert [(out / run / name).stat().st_mtime for run in ("ppo_s0", "a2c_s1")
            for name in ("summary.json", "compare_points.json")] == stamps
    assert json.loads((out / "compare.json").read_text())["rows"] == data["rows"]
    # a run that cannot start (its run directory is a file) stops the compare; the table of the runs before it stays
    other = tmp_path / "cmp2"
    other.mkdir()
    (other / "a2c_s0").write_text("not a run directory")
    result = pgr(*[other if a == str(out) else a for a in args])
    assert result.returncode == 2 and f"--run-dir {other / 'a2c_s0'}: exists and is not a directory" in result.stderr
    partial = (other / "compare.md").read_text()
    assert partial.startswith("partial: 2 of 4 runs done") and "| ppo |" in partial and "| a2c |" not in partial


def test_compare_by_time_ends_runs_by_the_clock_not_the_recipes_iteration_count(tmp_path):
    import yaml

    common = ["--task", "gym:CartPole-v1", "--algos", "a2c", "--time-budget", "0.02", "--episodes", "2",
              "--no-progress", "--set", "runner.num_envs=4", "--set", "runner.threads=1"]
    result = pgr("compare", *common, "--out", str(tmp_path / "clock"))
    assert result.returncode == 0, result.stderr
    saved = yaml.safe_load((tmp_path / "clock" / "a2c_s0" / "config.yaml").read_text())["runner"]
    summary = json.loads((tmp_path / "clock" / "a2c_s0" / "summary.json").read_text())
    assert saved["max_iterations"] == 1_000_000 and summary["train_seconds"] >= 0.02 * 60
    # a cap the user sets is kept
    result = pgr("compare", *common, "--out", str(tmp_path / "capped"), "--set", "runner.max_iterations=2")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "capped" / "a2c_s0" / "summary.json").read_text())["iteration"] == 2


def test_compare_by_env_steps_ends_a_whole_episode_method_at_the_first_iteration_that_reaches_them(tmp_path):
    from pg_robotics import runs

    out = tmp_path / "cmp"
    result = pgr("compare", "--task", "gym:CartPole-v1", "--algos", "cem,es", "--env-steps", "3000", "--out",
                 str(out), "--episodes", "2", "--no-progress", "--set", "runner.num_envs=8", "--set",
                 "runner.save_interval=2", "--set", "algorithm.horizon=100", "--set", "algorithm.hidden=[8]")
    assert result.returncode == 0, result.stderr
    for name in ("cem", "es"):
        state, _ = runs.load_checkpoint(out / f"{name}_s0")
        steps = [r["env_steps"] for r in json.loads(state["history"])]
        # every iteration runs 8 worlds to the end of the longest episode (<= 100 steps): it varies
        assert steps[-2] < 3000 <= steps[-1] <= steps[-2] + 8 * 100, (name, steps)
        assert len(set(b - a for a, b in zip([0, *steps], steps))) > 1, steps


@pytest.mark.parametrize("args, message", [
    (["--algos", "ppo,bogus", "--env-steps", "10"], "argument --algos: unknown algorithm 'bogus'"),
    (["--algos", "ppo", "--env-steps", "10", "--time-budget", "1"], "not allowed with argument"),
    (["--algos", "ppo"], "one of the arguments --time-budget --env-steps is required"),
])
def test_bad_compare_input_exits_2(args, message, tmp_path):
    result = pgr("compare", "--task", "gym:CartPole-v1", "--out", str(tmp_path / "cmp"), *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


# ---- off-policy methods for vector tasks (runner: replay) --------------------------------------------------------
class _PointMass(PointMass):
    def state_dict(self):
        return {}


OFF_POLICY = {"hidden": [64, 64], "learning_starts": 800, "batch_size": 128, "utd_ratio": 0.25, "num_steps_per_env": 4,
              "normalize_obs": False}
# through each method's runner: (worlds, iterations, algorithm overrides, env steps, buffer size); measured: sac -7.2,
# svg0 -7.4, td3 -9.3 (9,600 env steps), cem -7.8, es -8.7 (120 populations of 64 over 50-step episodes)
RUNNER_LEARNS = {
    "sac": (16, 150, OFF_POLICY, 9600, 9600 - 9600 // 50),  # time-outs are left out: the point mass has no final obs
    "svg0": (16, 150, OFF_POLICY, 9600, 9600 - 9600 // 50),
    "td3": (16, 150, {**OFF_POLICY, "actor_lr": 1e-3, "critic_lr": 1e-3}, 9600, 9600 - 9600 // 50),
    "cem": (64, 120, {"hidden": [16], "horizon": 50}, 120 * 50 * 64, None),
    "es": (64, 120, {"hidden": [16], "horizon": 50, "learning_rate": 0.05, "init_std": 0.05}, 120 * 50 * 64, None),
}


@pytest.mark.parametrize("name", sorted(RUNNER_LEARNS))
def test_each_off_policy_and_search_method_drives_the_point_mass_home(name, tmp_path):
    from pg_robotics.recipe import make_recipe
    from pg_robotics.runners import runner_class

    worlds, iterations, overrides, env_steps, buffer_size = RUNNER_LEARNS[name]
    torch.manual_seed(0)
    env = _PointMass(num_envs=worlds, seed=0)
    recipe = make_recipe("quadruped-flat", name, overrides={
        "runner": {"max_iterations": iterations, "save_interval": 1000, "threads": 1}, "algorithm": overrides})
    spec = algorithms.get(name)
    learner = spec.learner_class().from_env(recipe.algorithm, env)
    before = evaluate(learner.act_inference)
    last = runner_class(spec.runner)(env, recipe, learner, tmp_path).learn(progress=False)
    after = evaluate(learner.act_inference)
    assert last["env_steps"] == env_steps and last.get("buffer_size") == buffer_size, last
    assert before < -25 and after > -12, (name, before, after, last)


def test_sac_temperature_follows_its_target_entropy():
    """Above the target entropy the temperature falls, below it rises; without autotune (SVG(0)) it stays 0."""
    from pg_robotics.algorithms.sac import SAC, SACCfg, SVG0Cfg

    gen = torch.Generator().manual_seed(0)
    batch = {"obs": torch.randn(64, 4, generator=gen), "critic_obs": torch.randn(64, 4, generator=gen),
             "actions": torch.rand(64, 2, generator=gen) * 2 - 1, "rewards": torch.randn(64, generator=gen),
             "next_obs": torch.randn(64, 4, generator=gen), "next_critic_obs": torch.randn(64, 4, generator=gen),
             "mask": torch.ones(64)}
    alphas = {}
    for target in (-50.0, 50.0):  # far below / above any entropy a 2-D tanh-Gaussian has
        torch.manual_seed(0)
        sac = SAC(SACCfg(hidden=[16], target_entropy=target, alpha=0.2, normalize_obs=False), 4, 4, 2)
        for _ in range(20):
            out = sac.update(batch)
        alphas[target] = float(out["alpha"])
    assert alphas[-50.0] < 0.2 < alphas[50.0], alphas
    svg0 = SAC(SVG0Cfg(hidden=[16], normalize_obs=False), 4, 4, 2)
    assert len(svg0.critics) == 1 and float(svg0.update(batch)["alpha"]) == 0.0


def test_svg0_noise_is_fixed_and_keeps_exploring():
    """SVG(0)'s noise comes from a fixed distribution: however far the critic's gradient pushes the policy, sampled
    actions spread by noise_std around the deterministic action (the learned std collapsed on Hopper)."""
    from pg_robotics.algorithms.sac import SAC, SACCfg, SVG0Cfg

    torch.manual_seed(0)
    svg0 = SAC(SVG0Cfg(hidden=[16], normalize_obs=False, actor_lr=1e-2), 4, 4, 2)
    gen = torch.Generator().manual_seed(1)
    obs = torch.randn(256, 4, generator=gen)
    batch = {"obs": obs, "critic_obs": obs, "actions": torch.rand(256, 2, generator=gen) * 2 - 1,
             "rewards": torch.randn(256, generator=gen), "next_obs": obs, "next_critic_obs": obs,
             "mask": torch.ones(256)}
    s = obs[svg0.actor(obs).abs().max(-1).values.argmin()][None]  # a state where the fresh policy acts near 0
    one = s.expand(20000, 4)
    actions = svg0.sample(one, torch.Generator().manual_seed(2))
    assert svg0.actor(s).abs().max() < 0.3  # (almost) no sample clipped
    assert (actions - svg0.actor(s)).std(0).sub(0.2).abs().max() < 0.01
    for _ in range(200):  # random rewards at a high learning rate: the deterministic action runs into the bounds
        svg0.update(batch)
    actions = svg0.sample(one, torch.Generator().manual_seed(2))
    assert svg0.actor(s).abs().max() > 0.99 and actions.min() >= -1 and actions.max() <= 1
    # clipped at the bound half the time, the other half still spread inwards: a std of 0.58 noise_std
    assert actions.std(0).min() > 0.1, actions.std(0)
    with pytest.raises(ValueError, match="noise_std"):
        SACCfg(noise_std=0.2)  # an entropy term and a fixed noise do not go together
    with pytest.raises(ValueError, match="noise_std"):
        SVG0Cfg(noise_std=-0.1)


def test_dqn_learns_cartpole_from_the_cli(tmp_path):
    run = tmp_path / "run"
    result = pgr("train", "gym:CartPole-v1", "--algo", "dqn", "--num-envs", "4", "--max-iterations", "3000",
                 "--run-dir", str(run), "--no-progress", "--set", "algorithm.learning_starts=1000",
                 "--set", "algorithm.exploration_steps=10000", "--set", "algorithm.target_update_interval=100",
                 "--set", "algorithm.utd_ratio=0.25", "--set", "runner.threads=1", "--set", "runner.save_interval=1000")
    assert result.returncode == 0, result.stderr
    result = pgr("eval", str(run), "--all-checkpoints", "--json")
    scores = [c["mean_return"] for c in json.loads(result.stdout)["checkpoints"]]
    # measured: 9.8 (iteration 1000, still exploring), 163.8 (2000), 109.9 (3000); a random policy scores ~22
    assert max(scores) > 100, scores
    result = pgr("export", str(run), "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["replay_action_max_abs_diff"] == 0.0, result.stderr


def test_an_off_policy_run_resumes_with_its_replay_buffer(tmp_path):
    run = tmp_path / "run"
    tiny = ["--no-progress", "--set", "runner.save_interval=1", "--set", "runner.threads=1", "--set",
            "algorithm.learning_starts=32", "--set", "algorithm.batch_size=16", "--set", "algorithm.hidden=[16]"]
    assert main(["train", "gym:Pendulum-v1", "--algo", "sac", "--max-iterations", "3", "--run-dir", str(run),
                 *tiny]) == 0
    assert (run / "checkpoints" / "replay_buffer.pt").is_file()
    assert main(["train", "gym:Pendulum-v1", "--resume", str(run), "--max-iterations", "5", *tiny]) == 0
    summary = json.loads((run / "summary.json").read_text())
    # 16 worlds x 1 step per iteration, none lost at the resume (Pendulum's episodes are 200 steps)
    assert summary["iteration"] == 5 and summary["buffer_size"] == 5 * 16 and summary["algo"] == "sac"


# ---- searches in parameter space (runner: population) ------------------------------------------------------------
def test_es_antithetic_estimate_matches_the_gradient_on_a_quadratic():
    """F(theta) = -|theta - c|^2: the antithetic estimate of grad E[F(theta + sigma eps)] = -2 (theta - c) (exact
    for a quadratic, whatever sigma), from 20,000 pairs, matches central finite differences."""
    from pg_robotics.algorithms.es import es_gradient

    gen = torch.Generator().manual_seed(0)
    c, theta, sigma = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.3, 0.1, -0.4]), 0.1
    f = lambda x: -(x - c).square().sum(-1)  # noqa: E731
    eps = torch.randn(20_000, 3, generator=gen, dtype=torch.float64).float()
    g = es_gradient(f(theta + sigma * eps), f(theta - sigma * eps), eps, sigma)
    h = 1e-3
    fd = torch.stack([(f(theta + h * e) - f(theta - h * e)) / (2 * h) for e in torch.eye(3)])
    # sampling error of the estimate: |grad| / sqrt(pairs) ~ 0.035 per element; 0.12 is over 3 standard errors
    assert torch.allclose(g, fd, atol=0.12), (g, fd)
    # antithetic pairs cancel the quadratic term exactly: one pair gives the directional derivative along eps
    one = eps[:1]
    assert torch.allclose((f(theta + sigma * one) - f(theta - sigma * one)) / (2 * sigma), one @ fd, atol=1e-3)


def test_cem_converges_on_a_known_optimum():
    from pg_robotics.algorithms.cem import cem_refit

    gen = torch.Generator().manual_seed(0)
    c = torch.tensor([3.0, -1.0, 0.5, 2.0])
    mean, std = torch.zeros(4), torch.ones(4)
    for _ in range(40):
        samples = mean + std * torch.randn(200, 4, generator=gen)
        mean, std = cem_refit(samples, -(samples - c).square().sum(-1), elite_fraction=0.2, extra_std=0.0)
    assert torch.allclose(mean, c, atol=1e-2) and std.max() < 1e-2, (mean, std)


def test_cem_solves_cartpole_from_the_cli_and_exports(tmp_path):
    run = tmp_path / "run"
    result = pgr("train", "gym:CartPole-v1", "--algo", "cem", "--num-envs", "64", "--max-iterations", "20",
                 "--run-dir", str(run), "--no-progress", "--set", "algorithm.horizon=500", "--set", "runner.threads=1",
                 "--set", "runner.save_interval=10")
    assert result.returncode == 0, result.stderr
    ev = json.loads(pgr("eval", str(run), "--json").stdout)
    assert ev["mean_return"] > 300, ev  # measured: 500.0 after 30 iterations of 64 candidates
    result = pgr("export", str(run), "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["replay_action_max_abs_diff"] == 0.0, result.stderr


def test_compare_table_without_a_threshold_gives_the_time_to_walking():
    from pg_robotics.compare import markdown, summarize

    point = lambda i, t, score, walks: {"iteration": i, "time_s": t, "env_steps": i * 100, "score": score,  # noqa: E731
                                        "meets_criterion": walks}
    rows = {"ppo": [{"seed": 0, "points": [point(25, 30.0, 1.0, False), point(50, 60.0, 2.0, True)]}],
            "a2c": [{"seed": 0, "points": [point(25, 30.0, 0.5, False), point(50, 60.0, 0.7, False)]}]}
    table = summarize(rows, None)
    assert table[0]["time_to_walking_s"] == [60.0] and table[1]["time_to_walking_s"] == [None]
    text = markdown("quadruped-flat", table, None, 5.0, None, 1)
    assert "time to walking (s, per seed)" in text and "| ppo | 2.00 [2.00, 2.00] | 2.00 | 5000 | 60 |" in text
    assert "| a2c |" in text and "not reached" in text
