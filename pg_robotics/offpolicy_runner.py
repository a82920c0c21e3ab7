"""Off-policy runner for goal tasks: DDPG + HER. One iteration (a "cycle", as in the HER paper) collects one
episode from every parallel world with exploration, stores the episodes, updates the normalizers, takes
`updates_per_cycle` gradient steps on relabelled batches and moves the target networks. Every `eval_interval`
cycles the deterministic policy runs one episode in a separate set of worlds: that success rate is the curve.

The run directory is the on-policy runner's (config.yaml, atomic checkpoints, summary.json, TensorBoard events,
learning_curves.png). The replay buffer (up to ~150 MB) is kept once, in checkpoints/replay_buffer.pt, rewritten
atomically with every checkpoint, so `--resume` from the latest checkpoint continues exactly. Ctrl-C finishes the
cycle in progress (episodes are whole) and then saves; a second Ctrl-C leaves at once."""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from pg_robotics.ddpg import DDPG, DDPGCfg
from pg_robotics.distributed import SINGLE, World
from pg_robotics.her import EpisodeBuffer
from pg_robotics.runner import Runner, RunnerCfg, atomic_save, to_device

BUFFER_FILE = "replay_buffer.pt"


@dataclass
class OffPolicyRunnerCfg(RunnerCfg):
    num_envs: int = 16  # worlds stepped together; one episode of each per cycle
    max_iterations: int = 100000  # cycles
    save_interval: int = 200
    eval_envs: int = 100  # worlds of the deterministic evaluation episode
    eval_interval: int = 10  # cycles between evaluations

    def __post_init__(self):
        super().__post_init__()
        for name in ("eval_envs", "eval_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")


def run_episode(env, policy, obs: dict) -> tuple[dict, dict]:
    """One whole episode of every world of `env` from `obs` (its first observation). Returns the stacked episode
    (obs (N, T+1, O), ag (N, T+1, G), goal (N, T, G), actions (N, T, A), success (N,), final_distance (N,)) and
    the next episode's first observation."""
    T, n = env.episode_steps, env.num_envs
    ep = {"obs": [], "ag": [], "goal": [], "actions": []}
    info: dict = {}
    dones = []
    for t in range(T):
        ep["obs"].append(obs["observation"])
        ep["ag"].append(obs["achieved_goal"])
        ep["goal"].append(obs["desired_goal"])
        action = policy(obs)
        obs, _, done, info = env.step(action)
        ep["actions"].append(action)
        dones.append(done)
    ended = torch.stack(dones, dim=1)  # (N, T), checked once per episode rather than synced every step
    wrong = ended != (torch.arange(T, device=ended.device) == T - 1)  # every world ends at step T, none before
    if wrong.any():
        world, t = (int(i) for i in wrong.nonzero()[0])
        raise RuntimeError(f"DDPG+HER needs fixed-length episodes of {T} steps in every world; world {world} "
                           f"{'did not end' if t == T - 1 else 'ended'} at step {t + 1}")
    final = info["final_obs"]
    ep["obs"].append(final["observation"])
    ep["ag"].append(final["achieved_goal"])
    out = {k: torch.stack(v, dim=1) for k, v in ep.items()}
    out["success"] = info["is_success"].float()
    out["final_distance"] = info.get("distance", torch.zeros(n, device=out["success"].device))
    return out, obs


class OffPolicyRunner(Runner):
    def __init__(self, env, task: str, task_cfg, algo_cfg: DDPGCfg, runner_cfg: OffPolicyRunnerCfg, run_dir: Path,
                 world: World = SINGLE, eval_env=None):
        super().__init__(env, task, task_cfg, algo_cfg, runner_cfg, run_dir, world)
        dims = env.observation_dims
        self.alg = DDPG(algo_cfg, dims["observation"], dims["desired_goal"], env.num_actions, env.device, world)
        self.buffer = EpisodeBuffer(algo_cfg.buffer_episodes, env.episode_steps, dims["observation"],
                                    dims["desired_goal"], env.num_actions, env.device)
        self.eval_env = eval_env
        self.obs = env.reset()
        self.eval_obs = eval_env.reset() if eval_env is not None else None
        # exploration noise and batch sampling: a stream apart from the env's (seeded with the same number)
        self.gen = torch.Generator(device=env.device).manual_seed(runner_cfg.seed + world.rank + 7_919_000)

    def shared_state(self) -> dict:
        return {"algorithm": self.alg.state_dict()}

    def load_shared_state(self, state: dict) -> None:
        self.alg.load_state_dict(state["algorithm"])

    def own_state(self) -> dict:
        own = {"env": self.env.state_dict(), "obs": self.obs, "gen": self.gen.get_state()}
        if self.eval_env is not None:
            own.update(eval_env=self.eval_env.state_dict(), eval_obs=self.eval_obs)
        return own

    def save(self, sync: bool = True) -> Path:
        path = super().save(sync)
        buffer_path = self._rank_path(path, self.world.rank).parent / BUFFER_FILE
        atomic_save({"iteration": self.iteration, "buffer": self.buffer.state_dict()}, buffer_path)
        return path

    def load(self, path: Path) -> None:
        super().load(path)
        buffer_path = self._rank_path(Path(path), self.world.rank).parent / BUFFER_FILE
        saved = torch.load(buffer_path, weights_only=True, map_location="cpu") if buffer_path.is_file() else None
        if saved is None or saved["iteration"] != self.iteration:
            print(f"{buffer_path}: no replay buffer of iteration {self.iteration}; training goes on from an empty "
                  f"buffer", file=sys.stderr)
            return
        self.buffer.load_state_dict(saved["buffer"])

    def load_own_state(self, state: dict) -> None:
        self.env.load_state_dict(state["env"])
        self.obs = to_device(state["obs"], self.env.device)
        self.gen.set_state(state["gen"])
        if self.eval_env is not None and "eval_env" in state:
            self.eval_env.load_state_dict(state["eval_env"])
            self.eval_obs = to_device(state["eval_obs"], self.eval_env.device)

    def digest_module(self) -> torch.nn.Module:
        return self.alg.actor

    def evaluate(self) -> dict:
        """One deterministic episode in every evaluation world."""
        ep, self.eval_obs = run_episode(self.eval_env, self.alg.act_inference, self.eval_obs)
        return {"success_rate": float(ep["success"].mean()), "final_distance": float(ep["final_distance"].mean())}

    def learn(self, progress: bool = True) -> dict:
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        cfg, env, alg, main = self.cfg, self.env, self.alg, self.world.main
        writer = SummaryWriter(log_dir=str(self.run_dir)) if main else None
        bar = tqdm(total=cfg.max_iterations, initial=self.iteration, disable=not (progress and main), unit="cycle",
                   dynamic_ncols=True)
        last_eval = next((r for r in reversed(self.history) if "success_rate" in r), {})
        interrupted = []

        def on_sigint(signum, frame):  # an episode cut short could not be resumed: finish the cycle first
            if interrupted:
                raise KeyboardInterrupt
            interrupted.append(True)
            print("\ninterrupt: finishing this cycle, then saving a checkpoint (Ctrl-C again to leave now)",
                  file=sys.stderr, flush=True)

        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
        try:
            while self.running():
                start = time.perf_counter()
                torch.set_num_threads(1)
                ep, self.obs = run_episode(env, lambda o: alg.explore(o, self.gen), self.obs)
                self.buffer.store(ep["obs"], ep["ag"], ep["goal"], ep["actions"])
                alg.update_normalizers(ep["obs"], ep["ag"], ep["goal"])
                collect = time.perf_counter() - start
                torch.set_num_threads(self.update_threads)
                sums: dict[str, torch.Tensor] = {}
                for _ in range(alg.cfg.updates_per_cycle):
                    batch = self.buffer.sample(alg.cfg.batch_size, env.compute_reward, alg.cfg.her_strategy,
                                               alg.cfg.her_k, self.gen)
                    for key, value in alg.update(batch).items():
                        sums[key] = sums[key] + value if key in sums else value
                alg.update_targets()
                self.iteration += 1
                record = {"iteration": self.iteration}
                if self.eval_env is not None and self.iteration % cfg.eval_interval == 0:
                    torch.set_num_threads(1)
                    last_eval = self.evaluate()
                    record.update(last_eval)
                took = self.slowest(time.perf_counter() - start)
                steps = env.episode_steps * env.num_envs * self.world.size
                self.total_steps += steps
                self.elapsed += took
                record.update({"env_steps": self.total_steps, "time_s": round(self.elapsed, 2),
                               "fps": round(steps / took), "collect_fps": round(steps / collect),
                               "train_success_rate": float(ep["success"].mean()),
                               **{k: float(v) / alg.cfg.updates_per_cycle for k, v in sums.items()}})
                left = self.end_iteration(record, took, writer, bar)
                if interrupted:
                    self.save(sync=False)
                    raise KeyboardInterrupt
                if left is not None:
                    bar.set_postfix_str(f"fps {record['fps']} success {last_eval.get('success_rate', 0):.2f} "
                                        f"(explore {record['train_success_rate']:.2f}) left {left:.1f}min")
        finally:
            if main_thread:
                signal.signal(signal.SIGINT, previous)
            bar.close()
            if writer is not None:
                writer.close()
        if self.eval_env is not None and self.history and "success_rate" not in self.history[-1]:
            torch.set_num_threads(1)
            self.history[-1].update(self.evaluate())  # the run ends on a measured success rate
        self.save()
        self.plot()
        return self.history[-1] if self.history else {}

    def plot(self) -> None:
        self.plot_panels([("success_rate", "success rate (deterministic)"),
                          ("train_success_rate", "success rate (exploring)"), ("q_mean", "mean Q"),
                          ("fps", "env steps/s")])
