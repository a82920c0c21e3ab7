"""On-policy runner: collect rollouts, update PPO, log, checkpoint. A run directory holds

    config.yaml        the resolved recipe (task, algorithm, runner) and the git commit
    checkpoints/       model_<iteration>.pt, written atomically (temp file + rename), loadable with weights_only=True;
                       under torch.distributed, rank_<N>/model_<iteration>.pt holds rank N's own worlds and RNG states
    events.*           TensorBoard: every reward term, CaT delta and violation rates, losses, KL, learning rate, fps
    summary.json       the last iteration's figures, rewritten after each checkpoint
    learning_curves.png

A checkpoint holds the model, optimizer, normalizers, env state and every RNG state, so `--resume` continues
exactly where the run stopped; Ctrl-C saves one before leaving.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from pg_robotics import distributed
from pg_robotics.distributed import SINGLE, World
from pg_robotics.envs.config import to_dict
from pg_robotics.ppo import PPO, PPOCfg


@dataclass
class RunnerCfg:
    num_envs: int = 1024
    max_iterations: int = 1500
    time_budget_min: float = 0.0  # 0: no limit
    save_interval: int = 50
    seed: int = 0
    device: str = "cpu"
    backend: str = "mujoco"
    threads: int = 0  # torch threads for the update; 0: all cores (stepping always uses 1)

    def __post_init__(self):
        for name in ("num_envs", "max_iterations", "save_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.time_budget_min < 0:
            raise ValueError(f"time_budget_min: must be >= 0, got {self.time_budget_min}")


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def to_device(x, device: torch.device):
    """A tensor, or a dict of them (goal tasks' observations), on `device`."""
    return {k: v.to(device) for k, v in x.items()} if isinstance(x, dict) else x.to(device)


def checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoints, oldest first."""
    return sorted((run_dir / "checkpoints").glob("model_*.pt"), key=lambda p: int(p.stem.split("_")[1]))


def latest_checkpoint(run_dir: Path) -> Path | None:
    ckpts = checkpoints(run_dir)
    return ckpts[-1] if ckpts else None


class Runner:
    """What every runner shares: the run directory (config.yaml, summary.json, atomic checkpoints; under
    torch.distributed, rank 0 writes the shared state and each other rank its own worlds beside it) and resume.
    A subclass fills `history`, and says what is shared and what each rank owns."""

    def __init__(self, env, task: str, task_cfg, algo_cfg, runner_cfg, run_dir: Path, world: World = SINGLE):
        self.env, self.task, self.cfg, self.run_dir = env, task, runner_cfg, Path(run_dir)
        self.task_cfg, self.algo_cfg, self.world = task_cfg, algo_cfg, world
        self.iteration = 0
        self.total_steps = 0
        self.elapsed = 0.0
        self.history: list[dict] = []
        self.digests: list[str] = []
        self.update_threads = runner_cfg.threads or os.cpu_count() or 1

    def shared_state(self) -> dict:  # saved by rank 0
        raise NotImplementedError

    def load_shared_state(self, state: dict) -> None:
        raise NotImplementedError

    def own_state(self) -> dict:  # each rank's worlds and random generators
        raise NotImplementedError

    def load_own_state(self, state: dict) -> None:
        raise NotImplementedError

    def digest_module(self) -> torch.nn.Module:  # whose parameters must agree on every rank
        raise NotImplementedError

    # ---- checkpoints ---------------------------------------------------------------------------------------
    def _rank_path(self, path: Path, rank: int) -> Path:
        """Where rank > 0 keeps its own worlds and RNG states for checkpoint `path`."""
        return path if rank == 0 else path.parent / f"rank_{rank}" / path.name

    def save(self, sync: bool = True) -> Path:
        """Rank 0 writes the checkpoint, every other rank its worlds' state beside it. `sync`: also compare the
        ranks' parameter digests (a collective: all ranks save at the same iteration)."""
        path = self.run_dir / "checkpoints" / f"model_{self.iteration}.pt"
        mine = self._rank_path(path, self.world.rank)
        mine.parent.mkdir(parents=True, exist_ok=True)
        own = {**self.own_state(), "torch_rng": torch.get_rng_state()}
        if self.env.device.type == "cuda":  # PPO's exploration noise comes from the GPU's default generator
            own["cuda_rng"] = torch.cuda.get_rng_state(self.env.device)
        if sync and self.world.active:
            self.digests = distributed.gather_objects(distributed.digest(self.digest_module()))
        if self.world.main:
            atomic_save({"iteration": self.iteration, "total_steps": self.total_steps, "elapsed": self.elapsed,
                         "world_size": self.world.size, **self.shared_state(), **own,
                         "history": json.dumps(self.history)}, path)
            self._write_summary()
        else:
            atomic_save(own, mine)
        return path

    def load(self, path: Path) -> None:
        state = torch.load(path, weights_only=True, map_location="cpu")  # each rank moves what it keeps to its device
        self.iteration, self.total_steps, self.elapsed = state["iteration"], state["total_steps"], state["elapsed"]
        self.load_shared_state(state)
        self.history = json.loads(state["history"])
        own_path = self._rank_path(path, self.world.rank)
        if not own_path.is_file():  # resumed with more ranks than saved: this rank's worlds start afresh
            print(f"rank {self.world.rank}: no {own_path}; its worlds start from a reset", file=sys.stderr)
            return
        own = state if own_path == path else torch.load(own_path, weights_only=True, map_location="cpu")
        self.load_own_state(own)
        torch.set_rng_state(own["torch_rng"])
        if "cuda_rng" in own and self.env.device.type == "cuda":
            torch.cuda.set_rng_state(own["cuda_rng"], self.env.device)

    def write_config(self, algo: str = "ppo") -> None:
        if not self.world.main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        recipe = {"task_name": self.task, "algo": algo, "git_commit": git_commit(), "task": to_dict(self.task_cfg),
                  "algorithm": to_dict(self.algo_cfg), "runner": to_dict(self.cfg), "world_size": self.world.size}
        (self.run_dir / "config.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))

    def _write_summary(self) -> None:
        last: dict = {}
        for record in self.history:  # the latest value of every figure (some are measured every few iterations)
            last.update(record)
        summary = {"task": self.task, "iteration": self.iteration, "total_env_steps": self.total_steps,
                   "train_seconds": round(self.elapsed, 1), "world_size": self.world.size, **last}
        if self.world.active:
            summary.update(dist_backend=self.world.backend, rank_param_digests=self.digests,
                           ranks_in_sync=len(set(self.digests)) == 1)
        tmp = self.run_dir / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2))
        os.replace(tmp, self.run_dir / "summary.json")

    def running(self) -> bool:
        """Iterations and time budget left."""
        budget = self.cfg.time_budget_min * 60
        return self.iteration < self.cfg.max_iterations and not (budget and self.elapsed >= budget)

    def slowest(self, seconds: float) -> float:
        """The slowest rank's `seconds` under torch.distributed, so that every rank sees the same clock and budget."""
        if not self.world.active:
            return seconds
        return float(distributed.all_reduce(torch.tensor([seconds], device=self.env.device),
                                            distributed.dist.ReduceOp.MAX))

    def end_iteration(self, record: dict, took: float, writer, bar) -> float | None:
        """Keep an iteration's figures: history, progress bar, the periodic checkpoint and plot, TensorBoard.
        Returns the minutes left (by iterations or time budget), or None on ranks other than 0."""
        self.history.append(record)
        bar.update(1)
        if self.iteration % self.cfg.save_interval == 0:
            self.save()
            self.plot()
        if not self.world.main:
            return None
        for key, value in record.items():
            if key != "iteration":
                writer.add_scalar(f"train/{key}", value, self.iteration)
        left = (self.cfg.max_iterations - self.iteration) * took
        budget = self.cfg.time_budget_min * 60
        return (min(left, budget - self.elapsed) if budget else left) / 60

    def plot_panels(self, panels: list[tuple[str, str]]) -> None:
        """learning_curves.png: one panel per (history key, title) against env steps."""
        if not self.history or not self.world.main:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        x = [r["env_steps"] / 1e6 for r in self.history]
        fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3))
        for ax, (key, title) in zip(axes, panels):
            points = [(xi, r[key]) for xi, r in zip(x, self.history) if key in r]
            ax.plot([p[0] for p in points], [p[1] for p in points])
            ax.set_title(title)
            ax.set_xlabel("env steps (M)")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(self.run_dir / "learning_curves.png", dpi=100)
        plt.close(fig)


class OnPolicyRunner(Runner):
    def __init__(self, env, task: str, task_cfg, algo_cfg: PPOCfg, runner_cfg: RunnerCfg, run_dir: Path,
                 world: World = SINGLE):
        super().__init__(env, task, task_cfg, algo_cfg, runner_cfg, run_dir, world)
        num_obs = env.num_obs["policy"]
        num_critic = env.num_obs.get("critic", num_obs)
        self.alg = PPO(algo_cfg, num_obs, num_critic, env.num_actions, env.num_envs, env.device, world)
        self.obs = env.reset()
        self.update_gen = torch.Generator().manual_seed(runner_cfg.seed + world.rank)

    def shared_state(self) -> dict:
        return {"algorithm": self.alg.state_dict()}

    def load_shared_state(self, state: dict) -> None:
        self.alg.load_state_dict(state["algorithm"])

    def own_state(self) -> dict:
        return {"env": self.env.state_dict(), "obs": self.obs, "update_rng": self.update_gen.get_state()}

    def load_own_state(self, state: dict) -> None:
        self.env.load_state_dict(state["env"])
        self.obs = to_device(state["obs"], self.env.device)
        self.update_gen.set_state(state["update_rng"])

    def digest_module(self) -> torch.nn.Module:
        return self.alg.policy

    # ---- training ------------------------------------------------------------------------------------------
    def learn(self, progress: bool = True) -> dict:
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        cfg, env, alg, main = self.cfg, self.env, self.alg, self.world.main
        writer = SummaryWriter(log_dir=str(self.run_dir)) if main else None
        returns, lengths = deque(maxlen=200), deque(maxlen=200)
        ep_return = torch.zeros(env.num_envs, device=env.device)
        ep_length = torch.zeros(env.num_envs, device=env.device)
        bar = tqdm(total=cfg.max_iterations, initial=self.iteration, disable=not (progress and main), unit="it",
                   dynamic_ncols=True)
        try:
            while self.running():
                start = time.perf_counter()
                torch.set_num_threads(1)
                # the figures stay tensors on the env's device until the iteration ends: no host sync per step
                episode_terms: dict[str, list[torch.Tensor]] = {}
                finished: list[torch.Tensor] = []
                delta_sum, violations = torch.zeros((), device=env.device), {}
                with torch.no_grad():
                    for _ in range(alg.cfg.num_steps_per_env):
                        actions = alg.act(self.obs)
                        self.obs, rewards, dones, info = env.step(actions)
                        alg.process_env_step(rewards, dones, info)
                        ep_return += rewards
                        ep_length += 1
                        finished.append(torch.stack([ep_return, ep_length * env.dt, dones.float()]))
                        ep_return.masked_fill_(dones, 0.0)
                        ep_length.masked_fill_(dones, 0.0)
                        for k, v in info.get("episode", {}).items():
                            episode_terms.setdefault(k, []).append(v)
                        delta_sum += info["cat_delta"].mean()
                        for k, v in info.get("constraint_violation", {}).items():
                            violations[k] = violations.get(k, 0.0) + v
                    alg.compute_returns(self.obs)
                    ret, length, done = torch.stack(finished).transpose(0, 1).flatten(1)
                    returns.extend(ret[done > 0].tolist())
                    lengths.extend(length[done > 0].tolist())
                collect = time.perf_counter() - start
                torch.set_num_threads(self.update_threads)
                stats = alg.update(self.update_gen)
                took = self.slowest(time.perf_counter() - start)
                steps = alg.cfg.num_steps_per_env * env.num_envs * self.world.size
                self.iteration += 1
                self.total_steps += steps
                self.elapsed += took
                n = alg.cfg.num_steps_per_env
                record = {"iteration": self.iteration, "env_steps": self.total_steps, "time_s": round(self.elapsed, 2),
                          "fps": round(steps / took), "collect_fps": round(steps / collect),
                          "mean_return": sum(returns) / len(returns) if returns else 0.0,
                          "mean_episode_length_s": sum(lengths) / len(lengths) if lengths else 0.0,
                          "cat_delta_mean": float(delta_sum) / n, **stats}
                left = self.end_iteration(record, took, writer, bar)
                if left is None:
                    continue
                for key, values in episode_terms.items():
                    writer.add_scalar(f"episode/{key}", float(torch.stack(values).mean()), self.iteration)
                for key, value in violations.items():
                    writer.add_scalar(f"constraints/{key}_violation_rate", float(value) / n, self.iteration)
                bar.set_postfix_str(f"fps {record['fps']} return {record['mean_return']:.2f} "
                                    f"ep_len {record['mean_episode_length_s']:.1f}s left {left:.1f}min")
        except KeyboardInterrupt:
            bar.write("interrupted: saving a checkpoint")
            self.save(sync=False)
            raise
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        self.save()
        self.plot()
        return self.history[-1] if self.history else {}

    def plot(self) -> None:
        self.plot_panels([("mean_return", "mean return"), ("mean_episode_length_s", "episode length (s)"),
                          ("cat_delta_mean", "CaT delta"), ("fps", "env steps/s")])
