"""`pgr bench train`: our PPO beside rsl_rl's PPO (the anchor legged_gym, Isaac Lab and mjlab train with) on
`quadruped-flat`, on the same recipe (hyperparameters, worlds, seed), the same thread settings (1 torch thread
while the worlds step, all cores for the update) and the same clock (`--minutes` of training each, one after the
other), every snapshot judged by `pgr eval`'s protocol.

rsl_rl is never a dependency of pg_robotics: it runs in an environment of its own (`make bench-train` builds
`.venv-anchor` with rsl-rl-lib 5.5.1 beside this package) and its snapshots are written as our checkpoints, so that
`pgr eval --all-checkpoints` judges both runs with the same code. CaT is applied to rsl_rl the usual way for a
library without it: reward x (1 - delta), done = max(done, delta), kept as a float in rsl_rl's storage, so both
PPOs optimize the same CaT returns (a soft violation discounts the bootstrap by (1 - delta)). rsl_rl's own storage
keeps dones as bytes, which turns a delta below 1 into 0: its soft constraints would scale the reward only and its
bootstrap go on, a weaker constraint than the one ours learns; `--anchor-dones byte` measures that form.

`--set KEY=VALUE` trains both with a change to the recipe (a trial side by side); an algorithm field rsl_rl has no
setting for changes ours only, and the table says so. The recipe's `symmetry_augmentation` gives rsl_rl its symmetry
extension with our env's mirror maps (mirror images in every mini-batch, for both losses: rsl_rl's only form).

Writes OUT/compare.md (table) and OUT/compare.png (errors over training time, env steps/s)."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

TASK = "quadruped-flat"
RSL_RL_VERSION = "5.5.1"
ANCHOR_DONES = ("float", "byte")  # the dtype of rsl_rl's stored dones
# the recipe's algorithm fields that anchor_config hands rsl_rl; an override of any other changes ours only
ANCHOR_ALGORITHM_FIELDS = ("activation", "normalize_obs", "num_steps_per_env", "actor_hidden", "critic_hidden",
                           "init_noise_std", "noise_std_type", "num_epochs", "num_mini_batches", "clip_param", "gamma",
                           "lam", "value_loss_coef", "entropy_coef", "learning_rate", "max_grad_norm",
                           "use_clipped_value_loss", "schedule", "desired_kl", "symmetry_augmentation")
# ours-only fields whose value is what rsl_rl's PPO always does (its code has no setting for them)
RSL_RL_BUILT_IN = {"grad_clip": "per_network", "normalizer_update": "iteration", "normalizer_form": "std_eps",
                   "shuffle": "once"}
BENCH_RUNNER_FIELDS = {"seed": "--seeds", "save_interval": "--save-interval", "time_budget_min": "--minutes",
                       "max_iterations": "--minutes"}  # set by the benchmark's own flags, never by --set
SETS_FILE = "bench_sets.json"  # the --set a run of the benchmark was trained with


# ---- the two trainings (each in its own process) -----------------------------------------------------------------------
def as_set_flags(sets: list[str]) -> list[str]:
    return [flag for item in sets for flag in ("--set", item)]


def train_ours(minutes: float, seed: int, run_dir: Path, save_interval: int, sets: list[str] = ()) -> list[str]:
    return [sys.executable, "-m", "pg_robotics.train", TASK, "--time-budget", str(minutes), "--seed", str(seed),
            "--run-dir", str(run_dir), "--no-progress", "--set", f"runner.save_interval={save_interval}",
            *as_set_flags(sets)]


def train_anchor(python: str, minutes: float, seed: int, run_dir: Path, save_interval: int,
                 dones: str = "float", sets: list[str] = ()) -> list[str]:
    return [python, "-m", "pg_robotics.bench_train", "anchor", "--minutes", str(minutes), "--seed", str(seed),
            "--run-dir", str(run_dir), "--save-interval", str(save_interval), "--dones", dones, *as_set_flags(sets)]


def checked_sets(sets: list[str]) -> list[str]:
    """The `--set` overrides of both trainings, refused (a ConfigError naming the key) before anything runs when a
    key is unknown to the recipe or belongs to the benchmark's own flags. Returns the keys that change ours only."""
    from pg_robotics.envs.config import ConfigError, parse_overrides
    from pg_robotics.recipe import make_recipe

    overrides = parse_overrides(list(sets))
    if "algo" in overrides:
        raise ConfigError("--set algo: the benchmark compares PPO with rsl_rl's PPO")
    for key in overrides.get("runner") or {}:
        if key in BENCH_RUNNER_FIELDS:
            raise ConfigError(f"--set runner.{key}: set by the benchmark's {BENCH_RUNNER_FIELDS[key]}")
    make_recipe(TASK, overrides=overrides)  # an unknown or invalid field fails here, with its dotted name
    return [f"algorithm.{k}" for k in overrides.get("algorithm") or {} if k not in ANCHOR_ALGORITHM_FIELDS]


class RslRlEnv:
    """Our batched env behind rsl_rl's VecEnv interface, CaT folded in as rsl_rl users do."""

    def __init__(self, env):
        import torch
        from tensordict import TensorDict

        self.env, self.TensorDict = env, TensorDict
        self.num_envs, self.num_actions, self.device = env.num_envs, env.num_actions, env.device
        self.max_episode_length = env.max_episode_length
        self.episode_length_buf = torch.zeros(env.num_envs, dtype=torch.long, device=env.device)
        self.cfg: dict = {}
        self.obs = env.reset()

    def _td(self, obs):
        return self.TensorDict(dict(obs), batch_size=[self.num_envs])

    def get_observations(self):
        return self._td(self.obs)

    def step(self, actions):
        import torch

        self.obs, reward, done, info = self.env.step(actions)
        delta = info.get("cat_delta", torch.zeros_like(reward))
        return (self._td(self.obs), reward * (1.0 - delta), torch.maximum(done.float(), delta),
                {"time_outs": info["time_outs"]})


def mirror_augmentation(mirror: dict):
    """rsl_rl's `data_augmentation_func` from our env's mirror maps (`env.mirror()`, one per observation group and
    one for the actions): the batch of observations (a TensorDict of "policy" and "critic") and of actions, each
    followed by its mirror image."""
    import torch

    from pg_robotics.envs.locomotion.symmetry import apply

    def augment(env=None, obs=None, actions=None):
        if obs is not None:
            doubled = {key: torch.cat([x, apply(x, mirror[key])]) for key, x in obs.items()}
            obs = type(obs)(doubled, batch_size=[2 * obs.batch_size[0]])
        if actions is not None:
            actions = torch.cat([actions, apply(actions, mirror["actions"])])
        return obs, actions

    return augment


def anchor_config(recipe, env=None) -> dict:
    """rsl_rl's train config with our recipe's hyperparameters; `symmetry_augmentation`: rsl_rl's symmetry extension
    with the mirror maps of `env`, mirror images in every mini-batch for both losses (rsl_rl has no actor-only form)."""
    a = recipe.algorithm
    model = {"hidden_dims": None, "activation": a.activation, "obs_normalization": a.normalize_obs}
    symmetry = None
    if a.symmetry_augmentation:
        if env is None:
            raise ValueError("anchor_config: symmetry_augmentation needs the env, for its mirror maps")
        symmetry = {"use_data_augmentation": True, "use_mirror_loss": False, "mirror_loss_coeff": 0.0,
                    "data_augmentation_func": mirror_augmentation(env.mirror())}
    return {
        "num_steps_per_env": a.num_steps_per_env, "save_interval": 10**9, "obs_groups": {"actor": ["policy"],
                                                                                       "critic": ["critic"]},
        "check_for_nan": False, "multi_gpu": None,
        "actor": {**model, "class_name": "rsl_rl.models.MLPModel", "hidden_dims": a.actor_hidden,
                  "distribution_cfg": {"class_name": "rsl_rl.modules.GaussianDistribution",
                                       "init_std": a.init_noise_std, "std_type": a.noise_std_type}},
        "critic": {**model, "class_name": "rsl_rl.models.MLPModel", "hidden_dims": a.critic_hidden},
        "algorithm": {"class_name": "rsl_rl.algorithms.PPO", "num_learning_epochs": a.num_epochs,
                      "num_mini_batches": a.num_mini_batches, "clip_param": a.clip_param, "gamma": a.gamma,
                      "lam": a.lam, "value_loss_coef": a.value_loss_coef, "entropy_coef": a.entropy_coef,
                      "learning_rate": a.learning_rate, "max_grad_norm": a.max_grad_norm,
                      "use_clipped_value_loss": a.use_clipped_value_loss, "schedule": a.schedule,
                      "desired_kl": a.desired_kl, "symmetry_cfg": symmetry},
    }


def as_our_checkpoint(runner, recipe, env, iteration: int, elapsed: float, steps: int) -> dict:
    """rsl_rl's actor, critic and normalizers in our PPO's checkpoint layout (for `pgr eval`). Our normalizer of the
    form "std_eps" is rsl_rl's (x - mean) / (std + eps); for "sqrt_var_eps", (x - mean) / sqrt(var + eps), var is
    chosen so that it equals it (up to the clip at +-10)."""
    import torch

    from pg_robotics.algorithms.ppo import PPO

    ppo = PPO.from_env(recipe.algorithm, env)
    alg = runner.alg
    with torch.no_grad():
        for ours, theirs in ((ppo.policy.actor, alg.actor.mlp), (ppo.policy.critic, alg.critic.mlp)):
            ours.load_state_dict(theirs.state_dict())
        std = alg.actor.distribution.std_param.clamp(min=1e-6)
        if ppo.policy.std_type == "log":
            ppo.policy.log_std.copy_(std.log())
        else:
            ppo.policy.std.copy_(std)
        for ours, theirs in ((ppo.obs_normalizer, alg.actor.obs_normalizer),
                             (ppo.critic_obs_normalizer, alg.critic.obs_normalizer)):
            if hasattr(theirs, "_mean"):
                ours.mean.copy_(theirs._mean[0])
                std = theirs._std[0]
                ours.var.copy_(std.square() if ours.form == "std_eps" else (std + theirs.eps).square() - ours.eps)
                ours.count.copy_(theirs.count)
    return {"iteration": iteration, "total_steps": steps, "elapsed": elapsed, "world_size": 1,
            "algorithm": ppo.state_dict(), "history": "[]", "anchor": f"rsl-rl-lib {RSL_RL_VERSION}"}


def anchor_main(argv: list[str]) -> int:
    """Inside the anchor environment: rsl_rl's OnPolicyRunner on our task for `--minutes` of training time,
    a snapshot (our checkpoint layout) every `--save-interval` iterations."""
    import os

    import torch
    from rsl_rl.runners import OnPolicyRunner

    from pg_robotics import runs
    from pg_robotics.envs import make
    from pg_robotics.envs.config import deep_update, parse_overrides
    from pg_robotics.recipe import make_recipe

    p = argparse.ArgumentParser(prog="python -m pg_robotics.bench_train anchor")
    p.add_argument("--minutes", type=float, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--save-interval", type=int, default=25)
    p.add_argument("--dones", choices=ANCHOR_DONES, default="float",
                   help="dtype of rsl_rl's stored dones: float keeps CaT's delta < 1, byte (rsl_rl's) makes it 0")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a recipe override")
    args = p.parse_args(argv)
    recipe = make_recipe(TASK, overrides=deep_update(parse_overrides(args.set), {"runner": {"seed": args.seed}}))
    torch.manual_seed(args.seed)
    env = make(TASK, recipe.runner.num_envs, seed=args.seed, cfg=recipe.task_cfg)
    runner = OnPolicyRunner(RslRlEnv(env), anchor_config(recipe, env), log_dir=None, device="cpu")
    if args.dones == "float":  # its returns read 1 - dones[t].float(): float dones keep delta's fraction
        runner.alg.storage.dones = runner.alg.storage.dones.float()
    update, threads = runner.alg.update, os.cpu_count() or 1

    def update_with_all_cores():  # our runner's thread settings: 1 thread stepping, all cores updating
        torch.set_num_threads(threads)
        try:
            return update()
        finally:
            torch.set_num_threads(1)

    runner.alg.update = update_with_all_cores
    torch.set_num_threads(1)
    runs.write_recipe(args.run_dir, recipe)
    (args.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    iteration, elapsed, steps = 0, 0.0, 0
    per_iteration = recipe.algorithm.num_steps_per_env * env.num_envs
    while elapsed < args.minutes * 60:
        start = time.perf_counter()
        runner.learn(args.save_interval)
        elapsed += time.perf_counter() - start
        iteration += args.save_interval
        steps += args.save_interval * per_iteration
        runs.atomic_save(as_our_checkpoint(runner, recipe, env, iteration, elapsed, steps),
                         args.run_dir / "checkpoints" / f"model_{iteration}.pt")
        print(f"rsl_rl iteration {iteration}: {elapsed / 60:.1f} min, {steps / elapsed:.0f} env steps/s",
              file=sys.stderr, flush=True)
    runs.atomic_write_text(args.run_dir / "summary.json", json.dumps(
        {"task": TASK, "anchor": f"rsl-rl-lib {RSL_RL_VERSION}", "iteration": iteration, "total_env_steps": steps,
         "train_seconds": round(elapsed, 1), "symmetry_extension": recipe.algorithm.symmetry_augmentation}, indent=2))
    env.close()
    return 0


# ---- orchestration, evaluation, report --------------------------------------------------------------------------------
def bench_train(minutes: float, seeds: list[int], out: Path, anchor_python: str | None, save_interval: int = 25,
                episodes: int = 32, anchor_dones: str = "float", sets: list[str] = ()) -> dict:
    """Train ours (and the anchor when `anchor_python` is given) for each seed, evaluate every snapshot, report.
    `sets`: recipe overrides (`KEY=VALUE`) both train with."""
    from pg_robotics.envs.config import ConfigError, parse_overrides
    from pg_robotics.evaluate import sweep
    from pg_robotics.recipe import make_recipe
    from pg_robotics.runs import atomic_write_json

    if anchor_dones not in ANCHOR_DONES:
        raise ValueError(f"anchor dones: expected one of {', '.join(ANCHOR_DONES)}, got {anchor_dones!r}")
    sets = list(sets)
    ours_only = checked_sets(sets)
    symmetry = make_recipe(TASK, overrides=parse_overrides(sets)).algorithm.symmetry_augmentation
    out.mkdir(parents=True, exist_ok=True)
    runs_by_name: dict[str, list[dict]] = {"pg_robotics": []}
    anchor_dir = f"rsl_rl_{anchor_dones}_dones"  # a finished run of the other form is never reused
    if anchor_python:
        runs_by_name[f"rsl_rl {RSL_RL_VERSION} ({anchor_dones} dones)"] = []
    planned = [(seed, name, out / f"{'ours' if name == 'pg_robotics' else anchor_dir}_seed{seed}")
               for seed in seeds for name in runs_by_name]
    for seed, name, run_dir in planned:  # a finished run of another form is refused before anything runs
        trained_with = json.loads((run_dir / SETS_FILE).read_text()) if (run_dir / SETS_FILE).is_file() else []
        if run_dir.is_dir() and any(run_dir.iterdir()) and trained_with != sets:
            raise ConfigError(f"{run_dir}: trained with --set {trained_with or 'nothing'}, not {sets or 'nothing'}; "
                              f"give the benchmark another --out")
        done = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else None
        if name != "pg_robotics" and done and done.get("symmetry_extension", False) != symmetry:  # absent: older
            raise ConfigError(f"{run_dir}: rsl_rl trained {'with' if not symmetry else 'without'} its symmetry "
                              f"extension, the recipe's symmetry_augmentation is {str(symmetry).lower()}; "
                              f"give the benchmark another --out")
    for seed, name, run_dir in planned:
        cmd = (train_ours(minutes, seed, run_dir, save_interval, sets) if name == "pg_robotics" else
               train_anchor(anchor_python, minutes, seed, run_dir, save_interval,  # type: ignore[arg-type]
                            anchor_dones, sets))
        if not (run_dir / "summary.json").is_file():  # a finished training is not run again
            print(f"training {name}, seed {seed}: {' '.join(cmd)}", file=sys.stderr, flush=True)
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(run_dir / SETS_FILE, sets)
            subprocess.run(cmd, check=True)
        summary = json.loads((run_dir / "summary.json").read_text())
        result = sweep(run_dir, episodes)
        first = result["first_meeting"]
        later = [] if first is None else [c["meets_criterion"] for c in result["checkpoints"]
                                          if c["iteration"] > first["iteration"]]
        runs_by_name[name].append({
            "seed": seed, "run_dir": str(run_dir), "env_steps_per_s": round(summary["total_env_steps"] /
                                                                            summary["train_seconds"]),
            "first_meets_min": None if first is None else round(first["train_seconds"] / 60, 1),
            "first_meets_iteration": None if first is None else first["iteration"],
            "later_meeting": [sum(later), len(later)],  # checkpoints after the first meeting that meet it too
            "curve": [(c["train_seconds"] / 60, c["lin_vel_error"], c["ang_vel_error"], c["fall_rate"])
                      for c in result["checkpoints"]],
            "final": {k: result["checkpoints"][-1][k] for k in ("lin_vel_error", "ang_vel_error", "fall_rate")}})
    report = {"task": TASK, "minutes": minutes, "seeds": seeds, "anchor_dones": anchor_dones, "sets": sets,
              "anchor_symmetry": symmetry, "ours_only": ours_only, "runs": runs_by_name}
    (out / "compare.json").write_text(json.dumps(report, indent=1))
    write_table(report, out / "compare.md")
    plot(report, out / "compare.png")
    return report


def median_first_meeting(rows: list[dict]) -> float:
    """Median minutes to the walking criterion over seeds; a seed that never met it counts as infinitely late."""
    return statistics.median(float("inf") if r["first_meets_min"] is None else r["first_meets_min"] for r in rows)


def write_table(report: dict, path: Path) -> None:
    lines = []
    if report.get("sets"):
        only = report.get("ours_only") or []
        from pg_robotics.envs.config import parse_overrides

        values = parse_overrides(list(report["sets"])).get("algorithm") or {}  # as checked_sets read them
        built_in = [f"algorithm.{k}" for k, v in values.items()
                    if f"algorithm.{k}" in only and RSL_RL_BUILT_IN.get(k) == v]
        notes = [f"{', '.join(keys)}: {what}" for keys, what in (
            ([k for k in only if k not in built_in], "ours only, rsl_rl has no such setting"),
            (built_in, "ours only, set to what rsl_rl always does")) if keys]
        lines += [f"Recipe overrides, both trainers: {', '.join(report['sets'])}"
                  + (f" ({'; '.join(notes)})" if notes else "") + ".", ""]
    if report.get("anchor_symmetry") and len(report["runs"]) == 2:
        lines += ["rsl_rl with its symmetry extension (mirror images in every mini-batch, for both losses).", ""]
    lines += ["| trainer | seed | env steps/s | first meets the walking criterion | later checkpoints meeting it | "
             "final lin / ang (falls) |", "| --- | --- | --- | --- | --- | --- |"]
    medians = {name: median_first_meeting(rows) for name, rows in report["runs"].items()}
    for name, rows in report["runs"].items():
        for r in rows:
            first = "not met" if r["first_meets_min"] is None else \
                f"{r['first_meets_min']} min (iteration {r['first_meets_iteration']})"
            k, n = r["later_meeting"]
            held = "" if r["first_meets_min"] is None else f"{k} of {n}" if n else "none later"
            f = r["final"]
            lines.append(f"| {name} | {r['seed']} | {r['env_steps_per_s']:,} | {first} | {held} | "
                         f"{f['lin_vel_error']:.3f} / {f['ang_vel_error']:.3f} ({f['fall_rate']:.3f}) |")
        met = [r["first_meets_min"] for r in rows if r["first_meets_min"] is not None]
        if len(rows) > 1:
            spread = f"{min(met)}-{max(met)} min, " if met else ""
            lines.append(f"| {name} | {len(met)} of {len(rows)} seeds | | {spread}median "
                         f"{medians[name]:g} min | | |")
    if len(medians) == 2:
        (ours, a), (anchor, b) = medians.items()
        verdict = (f"{ours} meets the criterion earlier" if a < b else f"{ours} meets the criterion later" if a > b
                   else "neither meets the criterion in most seeds" if a == float("inf") else "a tie")
        lines += ["", f"Median first meeting over seeds {report['seeds']}: {ours} {a:g} min, {anchor} {b:g} min: "
                      f"{verdict}."]
    path.write_text("\n".join(lines) + "\n")


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    for (name, rows), color in zip(report["runs"].items(), ("tab:blue", "tab:orange")):
        for r in rows:
            t, lin, ang, falls = zip(*r["curve"]) if r["curve"] else ([], [], [], [])
            label = f"{name} seed {r['seed']}"
            axes[0].plot(t, lin, color=color, label=label)
            axes[1].plot(t, ang, color=color, label=label)
            axes[2].plot(t, falls, color=color, label=label)
    for ax, title, limit in zip(axes, ("lin_vel_error (m/s)", "ang_vel_error (rad/s)", "fall_rate"),
                                (0.10, 0.15, 0.0)):
        ax.axhline(limit, color="gray", linestyle="--", linewidth=1)
        ax.set_title(title)
        ax.set_xlabel("training time (min)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":  # python -m pg_robotics.bench_train anchor ... (inside the anchor environment)
    if sys.argv[1:2] != ["anchor"]:
        sys.exit("usage: python -m pg_robotics.bench_train anchor --minutes M --run-dir DIR [--seed S]")
    sys.exit(anchor_main(sys.argv[2:]))
