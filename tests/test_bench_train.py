"""`pgr bench train`'s parts that run without rsl_rl: the anchor's config mirrors our recipe, and the report."""

import json
import re

import pytest

from pg_robotics.bench_train import anchor_config, bench_train, plot, train_anchor, write_table
from pg_robotics.cli import main
from pg_robotics.envs import make
from pg_robotics.recipe import make_recipe


def test_the_anchor_trains_with_our_recipe(tmp_path):
    recipe = make_recipe("quadruped-flat")
    env = make("quadruped-flat", 1)  # the recipe mirrors: rsl_rl's symmetry extension takes the env's mirror maps
    cfg, a = anchor_config(recipe, env), recipe.algorithm
    env.close()
    assert a.symmetry_augmentation and cfg["algorithm"]["symmetry_cfg"]["use_data_augmentation"] is True
    alg = cfg["algorithm"]
    assert (alg["num_learning_epochs"], alg["num_mini_batches"], alg["learning_rate"], alg["desired_kl"]) == \
        (a.num_epochs, a.num_mini_batches, a.learning_rate, a.desired_kl) == (3, 4, 1e-3, 0.01)
    assert cfg["num_steps_per_env"] == a.num_steps_per_env == 12
    assert cfg["actor"]["hidden_dims"] == a.actor_hidden and cfg["critic"]["hidden_dims"] == a.critic_hidden
    assert cfg["actor"]["obs_normalization"] is a.normalize_obs is True
    assert cfg["obs_groups"] == {"actor": ["policy"], "critic": ["critic"]}
    # float dones (CaT's delta < 1 kept, the same returns as ours) unless byte, rsl_rl's own dtype, is asked for
    assert train_anchor("python", 8, 3, tmp_path, 25)[-2:] == ["--dones", "float"]
    assert train_anchor("python", 8, 3, tmp_path, 25, dones="byte")[-2:] == ["--dones", "byte"]


def test_the_report_table_and_plot(tmp_path):
    def run(seed, first):
        return {"seed": seed, "env_steps_per_s": 12000 + seed, "first_meets_min": first,
                "first_meets_iteration": None if first is None else 300, "later_meeting": [3, 4],
                "curve": [(1.0, 0.3, 0.2, 0.1), (9.8, 0.08, 0.05, 0.0)],
                "final": {"lin_vel_error": 0.056, "ang_vel_error": 0.041, "fall_rate": 0.0}}

    report = {"task": "quadruped-flat", "minutes": 20, "seeds": [0, 1],
              "runs": {"pg_robotics": [run(0, 9.8), run(1, 12.0)], "rsl_rl 5.5.1": [run(0, None), run(1, 9.0)]}}
    report["runs"]["rsl_rl 5.5.1"][1]["later_meeting"] = [0, 0]  # met at its last checkpoint
    write_table(report, tmp_path / "compare.md")
    table = (tmp_path / "compare.md").read_text()
    assert "| pg_robotics | 0 | 12,000 | 9.8 min (iteration 300) | 3 of 4 | 0.056 / 0.041 (0.000) |" in table
    assert "| rsl_rl 5.5.1 | 0 | 12,000 | not met |  | 0.056" in table
    assert "| rsl_rl 5.5.1 | 1 | 12,001 | 9.0 min (iteration 300) | none later | 0.056" in table
    assert "| pg_robotics | 2 of 2 seeds | | 9.8-12.0 min, median 10.9 min | | |" in table
    # a seed that never met it counts as infinitely late: rsl_rl's median of (never, 9.0) is never
    assert "| rsl_rl 5.5.1 | 1 of 2 seeds | | 9.0-9.0 min, median inf min | | |" in table
    assert "Median first meeting over seeds [0, 1]: pg_robotics 10.9 min, rsl_rl 5.5.1 inf min: pg_robotics meets " \
           "the criterion earlier." in table
    for rows in report["runs"].values():  # no seed met it: no trainer is called earlier
        for r in rows:
            r["first_meets_min"] = None
    write_table(report, tmp_path / "none.md")
    assert (tmp_path / "none.md").read_text().endswith("pg_robotics inf min, rsl_rl 5.5.1 inf min: neither meets "
                                                       "the criterion in most seeds.\n")
    assert "symmetry extension" not in (tmp_path / "none.md").read_text()
    write_table({**report, "anchor_symmetry": True}, tmp_path / "sym.md")  # the anchor's form is said
    assert (tmp_path / "sym.md").read_text().startswith("rsl_rl with its symmetry extension (mirror images in every "
                                                         "mini-batch, for both losses).\n\n| trainer |")
    plot(report, tmp_path / "compare.png")
    assert (tmp_path / "compare.png").stat().st_size > 5000
    json.dumps(report)


def test_a_dones_dtype_other_than_float_or_byte_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["bench", "train", "--anchor-dones", "bool", "--out", str(tmp_path)])
    assert "--anchor-dones: invalid choice: 'bool' (choose from" in capsys.readouterr().err
    with pytest.raises(ValueError, match="anchor dones: expected one of float, byte, got 'int8'"):
        bench_train(1, [0], tmp_path / "out", None, anchor_dones="int8")
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_anchor_algorithm_fields_are_the_ones_rsl_rl_receives():
    """Changing a field of ANCHOR_ALGORITHM_FIELDS changes rsl_rl's config; changing any other changes ours only."""
    import dataclasses

    from pg_robotics.bench_train import ANCHOR_ALGORITHM_FIELDS

    def changed(value):
        if isinstance(value, bool):
            return not value
        if isinstance(value, (int, float)):
            return value * 2 + 1
        if isinstance(value, list):
            return [*value, 8]
        return f"{value}x"

    def config(recipe):  # the mirror function is made anew on each call: compare its presence only
        cfg = anchor_config(recipe, env)
        if cfg["algorithm"]["symmetry_cfg"]:
            cfg["algorithm"]["symmetry_cfg"]["data_augmentation_func"] = "mirror"
        return cfg

    env = make("quadruped-flat", 1)  # the mirror maps of rsl_rl's symmetry extension
    before = config(make_recipe("quadruped-flat"))
    for f in dataclasses.fields(make_recipe("quadruped-flat").algorithm):
        recipe = make_recipe("quadruped-flat")
        setattr(recipe.algorithm, f.name, changed(getattr(recipe.algorithm, f.name)))
        assert (config(recipe) != before) == (f.name in ANCHOR_ALGORITHM_FIELDS), f.name
    env.close()


def test_with_symmetry_augmentation_the_anchor_uses_rsl_rls_symmetry_extension_with_our_mirror_maps():
    import torch

    from pg_robotics.envs.locomotion.symmetry import apply

    class Batch(dict):  # the two parts of a TensorDict the augmentation uses: items() and batch_size
        def __init__(self, data, batch_size):
            super().__init__(data)
            self.batch_size = torch.Size(batch_size)

    recipe = make_recipe("quadruped-flat", overrides={"algorithm": {"symmetry_augmentation": True}})
    with pytest.raises(ValueError, match="symmetry_augmentation needs the env"):
        anchor_config(recipe)
    env = make("quadruped-flat", 4)
    cfg = anchor_config(recipe, env)["algorithm"]["symmetry_cfg"]
    assert (cfg["use_data_augmentation"], cfg["use_mirror_loss"]) == (True, False)
    augment, m = cfg["data_augmentation_func"], env.mirror()
    obs = env.reset()
    actions = torch.randn(4, env.num_actions)
    doubled, doubled_actions = augment(env=None, obs=Batch(obs, [4]), actions=actions)
    assert doubled.batch_size == (8,) and doubled_actions.shape == (8, env.num_actions)
    for key, what in (("policy", "policy"), ("critic", "critic"), ("actions", "actions")):
        x, out = (actions, doubled_actions) if key == "actions" else (obs[key], doubled[key])
        assert torch.equal(out[:4], x) and torch.equal(out[4:], apply(x, m[what]))
        assert not torch.equal(out[4:], x)
    assert augment(obs=None, actions=actions)[0] is None  # rsl_rl's mirror loss asks for actions only
    env.close()


def test_overrides_reach_both_trainers_and_the_table(tmp_path):
    from pg_robotics.bench_train import checked_sets, train_ours

    sets = ["algorithm.actor_output_scale=0.01", "task.rewards.tracking_lin_vel.params.sigma=0.15"]
    assert train_ours(8, 1, tmp_path, 25, sets)[-4:] == ["--set", sets[0], "--set", sets[1]]
    assert train_anchor("python", 8, 1, tmp_path, 25, "float", sets)[-4:] == ["--set", sets[0], "--set", sets[1]]
    assert checked_sets(sets) == ["algorithm.actor_output_scale"]  # rsl_rl has no such setting
    assert checked_sets(["algorithm.learning_rate=5e-4", "runner.num_envs=512"]) == []
    report = {"task": "quadruped-flat", "minutes": 8, "seeds": [0], "sets": sets,
              "ours_only": ["algorithm.actor_output_scale"], "runs": {"pg_robotics": [
                  {"seed": 0, "env_steps_per_s": 14000, "first_meets_min": 6.2, "first_meets_iteration": 225,
                   "later_meeting": [1, 1], "curve": [], "final": {"lin_vel_error": 0.08, "ang_vel_error": 0.05,
                                                                   "fall_rate": 0.0}}]}}
    write_table(report, tmp_path / "compare.md")
    assert (tmp_path / "compare.md").read_text().startswith(
        "Recipe overrides, both trainers: algorithm.actor_output_scale=0.01, "
        "task.rewards.tracking_lin_vel.params.sigma=0.15 (algorithm.actor_output_scale: ours only, rsl_rl has no "
        "such setting).\n\n| trainer |")
    report["sets"] = ["algorithm.shuffle=once", "algorithm.grad_clip=joint", "algorithm.actor_output_scale=0.01"]
    report["ours_only"] = checked_sets(report["sets"])
    write_table(report, tmp_path / "built_in.md")
    assert (tmp_path / "built_in.md").read_text().splitlines()[0] == (
        "Recipe overrides, both trainers: algorithm.shuffle=once, algorithm.grad_clip=joint, "
        "algorithm.actor_output_scale=0.01 (algorithm.grad_clip, algorithm.actor_output_scale: ours only, rsl_rl has "
        "no such setting; algorithm.shuffle: ours only, set to what rsl_rl always does).")


@pytest.mark.parametrize("item, message", [
    ("runner.seed=3", "--set runner.seed: set by the benchmark's --seeds"),
    ("runner.time_budget_min=3", "--set runner.time_budget_min: set by the benchmark's --minutes"),
    ("algo=sac", "--set algo: the benchmark compares PPO with rsl_rl's PPO"),
    ("algorithm.no_such_field=1", "no_such_field"),
    ("algorithm.actor_output_scale=0", "actor_output_scale: must be > 0"),
])
def test_bad_overrides_are_refused_before_anything_runs(tmp_path, item, message):
    from pg_robotics.envs import ConfigError

    with pytest.raises((ConfigError, ValueError), match=re.escape(message)):
        bench_train(1, [0], tmp_path / "out", None, sets=[item])
    assert not (tmp_path / "out").exists()


def test_a_finished_run_of_other_overrides_is_never_reused(tmp_path, capsys):
    from pg_robotics.envs import ConfigError

    run = tmp_path / "out" / "ours_seed0"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"total_env_steps": 1, "train_seconds": 1}))
    with pytest.raises(ConfigError, match=r"ours_seed0: trained with --set nothing, not \['algorithm.lam=0.9'\]; "
                                          "give the benchmark another --out"):
        bench_train(1, [0], tmp_path / "out", None, sets=["algorithm.lam=0.9"])
    # the CLI names the field of a bad override and exits with 2
    assert main(["bench", "train", "--set", "runner.save_interval=5", "--out", str(tmp_path / "cli")]) == 2
    assert "--set runner.save_interval: set by the benchmark's --save-interval" in capsys.readouterr().err


def test_an_anchor_run_without_rsl_rls_symmetry_extension_is_not_reused_when_the_recipe_asks_for_it(tmp_path):
    from pg_robotics.envs import ConfigError

    sets = ["algorithm.symmetry_augmentation=true", "algorithm.symmetry_value_loss=false"]
    for name, summary in (("ours_seed0", {}), ("rsl_rl_float_dones_seed0", {})):  # the anchor's: made before the key
        run = tmp_path / "out" / name
        run.mkdir(parents=True)
        (run / "bench_sets.json").write_text(json.dumps(sets))
        (run / "summary.json").write_text(json.dumps({"total_env_steps": 1, "train_seconds": 1, **summary}))
    with pytest.raises(ConfigError, match=r"rsl_rl_float_dones_seed0: rsl_rl trained without its symmetry extension, "
                                          r"the recipe's symmetry_augmentation is true; give the benchmark another"):
        bench_train(1, [0], tmp_path / "out", "python", sets=sets)  # refused before anything runs or is evaluated
    assert sorted(p.name for p in (tmp_path / "out" / "ours_seed0").iterdir()) == ["bench_sets.json", "summary.json"]
