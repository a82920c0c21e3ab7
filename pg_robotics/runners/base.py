"""The training loop every algorithm runs in. One iteration:

    collect()   with 1 torch thread (the simulator's thread pool owns the cores): step the worlds, fill a buffer
    update()    with all torch threads: gradient steps; returns the iteration's figures

around which the loop keeps the time budget, the progress bar, TensorBoard, the periodic atomic checkpoint and
plot, summary.json and, under torch.distributed, one clock and one stop decision for all ranks. Ctrl-C or SIGTERM
finishes the iteration in progress, saves a checkpoint at that clean boundary and leaves (KeyboardInterrupt); a
second Ctrl-C leaves at once without saving, so the last checkpoint is never a half-collected state.

A runner subclass (on_policy.py, off_policy.py) fills in collect/update, says what of its state is shared (saved
by rank 0) and what each rank owns (its worlds, its random generators), and names its plot panels. The run
directory's layout is pg_robotics/runs.py's."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from pg_robotics import distributed, runs
from pg_robotics.distributed import SINGLE, World
from pg_robotics.recipe import Recipe
from pg_robotics.runners import Stopped


def to_device(x, device: torch.device):
    """A tensor, or a dict of them (goal tasks' observations), on `device`."""
    return {k: v.to(device) for k, v in x.items()} if isinstance(x, dict) else x.to(device)


class Runner:
    UNIT = "iteration"  # what one loop turn is called in messages
    PANELS: list[tuple[str, str]] = []  # learning_curves.png: (history key, title)

    def __init__(self, env, recipe: Recipe, learner, run_dir: Path, world: World = SINGLE, eval_env=None):
        """`eval_env`: separate worlds for the deterministic evaluation some runners make while training."""
        self.env, self.recipe, self.alg, self.run_dir, self.world = env, recipe, learner, Path(run_dir), world
        self.eval_env = eval_env
        self.cfg = recipe.runner
        self.iteration = 0
        self.total_steps = 0
        self.elapsed = 0.0
        self.history: list[dict] = []
        self.digests: list[str] = []
        self.update_threads = self.cfg.threads or os.cpu_count() or 1
        self._stop = False  # set by the first Ctrl-C / SIGTERM
        self._signal = signal.SIGINT

    # ---- what a runner provides ------------------------------------------------------------------------------
    def collect(self) -> dict:
        """Step the worlds for one iteration (no gradients). Returns figures for the record (numbers or 0-d tensors)
        and `steps`, the env steps taken on this rank."""
        raise NotImplementedError

    def update(self) -> dict:
        """The learning step of one iteration; returns its figures."""
        raise NotImplementedError

    def log_extra(self, writer) -> None:
        """TensorBoard figures beyond the record (per-term episode sums, ...), on rank 0."""

    def postfix(self, record: dict) -> str:
        return f"fps {record['fps']}"

    def own_state(self) -> dict:  # each rank's worlds and random generators
        raise NotImplementedError

    def load_own_state(self, state: dict) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """After the last iteration, before the final checkpoint."""

    # ---- the loop --------------------------------------------------------------------------------------------
    def running(self) -> bool:
        """Iterations, time and env-step budgets left, and no stop asked for."""
        budget, steps = self.cfg.time_budget_min * 60, self.cfg.max_env_steps
        return (self.iteration < self.cfg.max_iterations and not (budget and self.elapsed >= budget)
                and not (steps and self.total_steps >= steps) and not self._stop)

    def learn(self, progress: bool = True) -> dict:
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        main = self.world.main
        writer = SummaryWriter(log_dir=str(self.run_dir)) if main else None
        bar = tqdm(total=self.cfg.max_iterations, initial=self.iteration, disable=not (progress and main),
                   unit=self.UNIT, dynamic_ncols=True)
        try:
            with self._stop_on_signals(bar):
                while self.running():
                    start = time.perf_counter()
                    torch.set_num_threads(1)
                    figures = self.collect()
                    collect = time.perf_counter() - start
                    torch.set_num_threads(self.update_threads)
                    figures.update(self.update())
                    took, self._stop = self._agree(time.perf_counter() - start, self._stop)
                    steps = figures.pop("steps") * self.world.size
                    self.iteration += 1
                    self.total_steps += steps
                    self.elapsed += took
                    record = {"iteration": self.iteration, "env_steps": self.total_steps,
                              "time_s": round(self.elapsed, 2), "fps": round(steps / took),
                              "collect_fps": round(steps / collect),
                              **{k: float(v) for k, v in figures.items()}}
                    self._end_iteration(record, took, writer, bar)
                self.finish()
                self.save()
                self.plot()
            if self._stop:
                raise Stopped(self._signal)
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        return self.history[-1] if self.history else {}

    @contextmanager
    def _stop_on_signals(self, bar):
        """SIGINT and SIGTERM ask the loop to stop after this iteration; a second SIGINT leaves at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_signal(signum, frame):
            if self._stop and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self._stop, self._signal = True, signum
            bar.write(f"{signal.Signals(signum).name}: finishing this {self.UNIT}, then saving a checkpoint "
                      f"(Ctrl-C again to leave now without saving)", file=sys.stderr)

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _agree(self, seconds: float, stop: bool) -> tuple[float, bool]:
        """The slowest rank's time and whether any rank was asked to stop, so every rank sees the same clock,
        budget and last iteration (one all-reduce per iteration)."""
        if not self.world.active:
            return seconds, stop
        both = torch.tensor([seconds, float(stop)], dtype=torch.float64, device=self.env.device)
        distributed.all_reduce(both, distributed.dist.ReduceOp.MAX)
        return float(both[0]), bool(both[1])

    def _end_iteration(self, record: dict, took: float, writer, bar) -> None:
        self.history.append(record)
        bar.update(1)
        if self.iteration % self.cfg.save_interval == 0:
            self.save()
            self.plot()
        if not self.world.main:
            return
        for key, value in record.items():
            if key != "iteration":
                writer.add_scalar(f"train/{key}", value, self.iteration)
        self.log_extra(writer)
        left = (self.cfg.max_iterations - self.iteration) * took
        budget = self.cfg.time_budget_min * 60
        left = (min(left, budget - self.elapsed) if budget else left) / 60
        bar.set_postfix_str(f"{self.postfix(record)} left {left:.1f}min")

    # ---- checkpoints -----------------------------------------------------------------------------------------
    def save(self) -> Path:
        """Rank 0 writes the checkpoint, every other rank its worlds' state beside it (all ranks save at the same
        iteration), after comparing the ranks' parameter digests."""
        path = self.run_dir / "checkpoints" / f"model_{self.iteration}.pt"
        mine = runs.rank_path(path, self.world.rank)
        mine.parent.mkdir(parents=True, exist_ok=True)
        own = {**self.own_state(), "torch_rng": torch.get_rng_state()}
        if self.env.device.type == "cuda":  # exploration noise comes from the GPU's default generator
            own["cuda_rng"] = torch.cuda.get_rng_state(self.env.device)
        if self.world.active:
            self.digests = distributed.gather_objects(distributed.digest(self.alg.digest_module()))
        if self.world.main:
            runs.atomic_save({"iteration": self.iteration, "total_steps": self.total_steps, "elapsed": self.elapsed,
                              "world_size": self.world.size, "algorithm": self.alg.state_dict(), **own,
                              "history": json.dumps(self.history)}, path)
            self._write_summary()
        else:
            runs.atomic_save(own, mine)
        return path

    def load(self, path: Path) -> None:
        state = torch.load(path, weights_only=True, map_location="cpu")  # each rank moves what it keeps to its device
        self.iteration, self.total_steps, self.elapsed = state["iteration"], state["total_steps"], state["elapsed"]
        self.alg.load_state_dict(state["algorithm"])
        self.history = json.loads(state["history"])
        own_path = runs.rank_path(Path(path), self.world.rank)
        if not own_path.is_file():  # resumed with more ranks than saved: this rank's worlds start afresh
            print(f"rank {self.world.rank}: no {own_path}; its worlds start from a reset", file=sys.stderr)
            return
        own = state if own_path == Path(path) else torch.load(own_path, weights_only=True, map_location="cpu")
        self.load_own_state(own)
        torch.set_rng_state(own["torch_rng"])
        if "cuda_rng" in own and self.env.device.type == "cuda":
            torch.cuda.set_rng_state(own["cuda_rng"], self.env.device)

    # ---- replay buffers (off-policy runners): one file beside the checkpoints, rewritten with each -------------
    REPLAY_FILE = "replay_buffer.pt"

    def save_replay(self, checkpoint: Path, buffer) -> None:
        path = runs.rank_path(checkpoint, self.world.rank).parent / self.REPLAY_FILE
        runs.atomic_save({"iteration": self.iteration, "buffer": buffer.state_dict()}, path)

    def load_replay(self, checkpoint: Path, buffer) -> None:
        """The buffer saved with `checkpoint`; an empty one (and a message) when it is missing or from another
        iteration."""
        path = runs.rank_path(Path(checkpoint), self.world.rank).parent / self.REPLAY_FILE
        saved = torch.load(path, weights_only=True, map_location="cpu") if path.is_file() else None
        if saved is None or saved["iteration"] != self.iteration:
            print(f"{path}: no replay buffer of iteration {self.iteration}; training goes on from an empty buffer",
                  file=sys.stderr)
            return
        buffer.load_state_dict(saved["buffer"])

    def _write_summary(self) -> None:
        last: dict = {}
        for record in self.history:  # the latest value of every figure (some are measured every few iterations)
            last.update(record)
        summary = {"task": self.recipe.task, "algo": self.recipe.algo, "iteration": self.iteration,
                   "total_env_steps": self.total_steps, "train_seconds": round(self.elapsed, 1),
                   "world_size": self.world.size, **last}
        if self.world.active:
            summary.update(dist_backend=self.world.backend, rank_param_digests=self.digests,
                           ranks_in_sync=len(set(self.digests)) == 1)
        runs.atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2))

    def plot(self) -> None:
        """learning_curves.png: one panel per (history key, title) against env steps."""
        if not self.history or not self.world.main:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        x = [r["env_steps"] / 1e6 for r in self.history]
        fig, axes = plt.subplots(1, len(self.PANELS), figsize=(4 * len(self.PANELS), 3))
        for ax, (key, title) in zip(axes, self.PANELS):
            points = [(xi, r[key]) for xi, r in zip(x, self.history) if key in r]
            ax.plot([p[0] for p in points], [p[1] for p in points])
            ax.set_title(title)
            ax.set_xlabel("env steps (M)")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        runs.atomic_write(self.run_dir / "learning_curves.png", lambda f: fig.savefig(f, format="png", dpi=100))
        plt.close(fig)
