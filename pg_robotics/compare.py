"""`pgr compare`: several algorithms on one task, the same clock (or the same env steps) and seeds, side by side
(seed 000's "Policy Gradient Methods: Comparison" slide, measured).

    pgr compare --task gym:CartPole-v1 --algos ppo,a2c,trpo --time-budget 2 --seeds 2 --out runs/compare

Each algorithm x seed trains in turn into OUT/<algo>_s<seed> (its own full run directory), every checkpoint is
judged by `pgr eval`'s protocol for the task kind, and OUT gets `compare.png` (mean and min-max band over seeds of
the eval score against wall-clock and against env steps) and `compare.md` (final figures and the time to a
threshold). The score is the mean return of the deterministic policy (goal tasks: the success rate); locomotion
tasks also give the time to the walking criterion. The three are rewritten after every run (marked partial until the
last), and each run keeps its judged checkpoints (`compare_points.json`): a compare stopped or crashed and started
again resumes the unfinished run and judges nothing twice."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from pg_robotics import algorithms, runs
from pg_robotics.envs import ConfigError


# the iterations of a --time-budget run (a recipe's max_iterations, 1,500 for quadruped-flat, would end a fast
# method early: SAC at 8 small gradient steps an iteration reached it in under 5 of its 20 minutes)
UNCAPPED = 1_000_000


def score_of(result: dict) -> float:
    return result["success_rate"] if "success_rate" in result else result["mean_return"]


def budget_env_steps(recipe, env_steps: int) -> None:
    """Set `recipe`'s runner to take `env_steps` env steps: the iterations of that many steps for a fixed
    `num_steps_per_env` per world and iteration; for whole-episode iterations (cem, es: their length varies) the
    run ends with the first iteration that reaches the steps."""
    if hasattr(recipe.algorithm, "num_steps_per_env"):
        recipe.runner.max_iterations = math.ceil(env_steps / (recipe.runner.num_envs
                                                              * recipe.algorithm.num_steps_per_env))
    else:
        recipe.runner.max_env_steps = env_steps
        recipe.runner.max_iterations = math.ceil(env_steps / recipe.runner.num_envs)  # a bound: >= 1 step a world


def compare(task: str, algos: list[str], out: Path, seeds: int = 1, time_budget_min: float | None = None,
            env_steps: int | None = None, threshold: float | None = None, overrides: dict | None = None,
            episodes: int | None = None, progress: bool = True) -> dict:
    from pg_robotics.recipe import make_recipe
    from pg_robotics.train import train

    if (time_budget_min is None) == (env_steps is None):
        raise ConfigError("compare: give one of --time-budget or --env-steps")
    for name in algos:
        algorithms.get(name)
    out = Path(out)
    rows: dict[str, list[dict]] = {}
    table: list[dict] = []
    for name in algos:
        for seed in range(seeds):
            run_dir = out / f"{name}_s{seed}"
            runner = {"seed": seed, **({"time_budget_min": time_budget_min} if time_budget_min else {})}
            if time_budget_min and "max_iterations" not in (overrides or {}).get("runner", {}):
                runner["max_iterations"] = UNCAPPED  # the clock ends each run, not the recipe's iteration count
            recipe = make_recipe(task, name, overrides={**(overrides or {}), "runner": {
                **(overrides or {}).get("runner", {}), **runner}})
            if env_steps:
                budget_env_steps(recipe, env_steps)
            if not (run_dir / "compare_done").exists():  # a crashed or stopped compare resumes run by run
                if runs.latest_checkpoint(run_dir) is not None:
                    train(resume=run_dir, progress=progress)
                else:
                    train(recipe, run_dir=run_dir, progress=progress)
                (run_dir / "compare_done").touch()
            rows.setdefault(name, []).append({"seed": seed, "run_dir": str(run_dir),
                                              "points": judged_points(run_dir, episodes)})
            # after every run, the table of the runs done so far: a long compare shows (and keeps) its progress
            table = summarize(rows, threshold)
            done = sum(len(v) for v in rows.values())
            partial = "" if done == len(algos) * seeds else f"partial: {done} of {len(algos) * seeds} runs done\n\n"
            out.mkdir(parents=True, exist_ok=True)
            runs.atomic_write_json(out / "compare.json", {"task": task, "rows": rows, "table": table})
            runs.atomic_write_text(out / "compare.md", partial + markdown(task, table, threshold, time_budget_min,
                                                                         env_steps, seeds))
            plot(rows, task, out / "compare.png")
    return {"task": task, "table": table, "out": str(out)}


def judged_points(run_dir: Path, episodes: int | None) -> list[dict]:
    """Every checkpoint of a finished run judged by `pgr eval`'s protocol, kept in the run (`compare_points.json`):
    a compare run again (or resumed after a crash) judges only what it has not judged yet."""
    from pg_robotics.evaluate import sweep

    cache = run_dir / "compare_points.json"
    last = runs.latest_checkpoint(run_dir)
    if cache.exists():
        kept = json.loads(cache.read_text())
        if kept.get("episodes") == episodes and kept.get("last_checkpoint") == last.name:
            return kept["points"]
    state, _ = runs.load_checkpoint(run_dir)
    history = {r["iteration"]: r for r in json.loads(state["history"])}
    result = sweep(run_dir, episodes)
    points = [{"iteration": r["iteration"], "time_s": r["train_seconds"],
               "env_steps": history.get(r["iteration"], {}).get("env_steps", 0), "score": score_of(r),
               "meets_criterion": r.get("meets_criterion")} for r in result["checkpoints"]]
    runs.atomic_write_json(cache, {"episodes": episodes, "last_checkpoint": last.name, "points": points})
    return points


def summarize(rows: dict[str, list[dict]], threshold: float | None) -> list[dict]:
    table = []
    for name, seeds in rows.items():
        finals = [s["points"][-1]["score"] for s in seeds if s["points"]]
        best = [max(p["score"] for p in s["points"]) for s in seeds if s["points"]]

        def first(seed: dict, test) -> float | None:
            return next((p["time_s"] for p in seed["points"] if test(p)), None)

        entry = {"algo": name, "seeds": len(seeds), "final_mean": float(np.mean(finals)),
                 "final_min": float(np.min(finals)), "final_max": float(np.max(finals)),
                 "best_mean": float(np.mean(best)),
                 "env_steps": int(np.mean([s["points"][-1]["env_steps"] for s in seeds]))}
        if threshold is not None:
            entry["time_to_threshold_s"] = [first(s, lambda p: p["score"] >= threshold) for s in seeds]
        if any(p["meets_criterion"] is not None for s in seeds for p in s["points"]):
            entry["time_to_walking_s"] = [first(s, lambda p: bool(p["meets_criterion"])) for s in seeds]
        table.append(entry)
    return table


def markdown(task: str, table: list[dict], threshold, minutes, env_steps, seeds: int) -> str:
    budget = f"{minutes:g} min of training each" if minutes else f"{env_steps} env steps each"
    lines = [f"# pgr compare: {task}", "", f"{budget}, {seeds} seed(s); score = the eval protocol's "
             f"(mean return of the deterministic policy, or success rate)", ""]
    cols = ["algo", "final score (mean [min, max])", "best", "env steps"]
    extra = [k for k in ("time_to_threshold_s", "time_to_walking_s") if any(k in e for e in table)]
    labels = {"time_to_threshold_s": f"time to {threshold} (s, per seed)",
              "time_to_walking_s": "time to walking (s, per seed)"}
    cols += [labels[k] for k in extra]
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for e in table:
        cells = [e["algo"], f"{e['final_mean']:.2f} [{e['final_min']:.2f}, {e['final_max']:.2f}]",
                 f"{e['best_mean']:.2f}", str(e["env_steps"])]
        cells += [", ".join("not reached" if t is None else f"{t:.0f}" for t in e[k]) for k in extra]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: dict[str, list[dict]], task: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, seeds in rows.items():
        for ax, key, scale in ((axes[0], "time_s", 1 / 60), (axes[1], "env_steps", 1e-6)):
            # from the latest first checkpoint to the earliest last one: no seed's curve is extrapolated
            grid = np.linspace(max(s["points"][0][key] for s in seeds), min(s["points"][-1][key] for s in seeds), 50)
            curves = np.stack([np.interp(grid, [p[key] for p in s["points"]], [p["score"] for p in s["points"]])
                               for s in seeds])
            line, = ax.plot(grid * scale, curves.mean(0), label=name)
            ax.fill_between(grid * scale, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.2)
    axes[0].set_xlabel("training time (min)")
    axes[1].set_xlabel("env steps (M)")
    for ax in axes:
        ax.set_ylabel("eval score")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"pgr compare: {task}")
    fig.tight_layout()
    runs.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
