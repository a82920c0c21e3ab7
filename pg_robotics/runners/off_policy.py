"""Off-policy iterations for goal tasks (DDPG + HER). One iteration (a "cycle", as in the HER paper) collects one
episode from every world with exploration, stores the episodes, updates the normalizers, takes
`updates_per_cycle` gradient steps on relabelled batches and moves the target networks. Every `eval_interval`
cycles the deterministic policy runs one episode in a separate set of worlds: that success rate is the curve.

The replay buffer (up to ~150 MB) is kept once, in checkpoints/replay_buffer.pt, rewritten atomically with every
checkpoint, so `--resume` from the latest checkpoint continues exactly. Checkpoints fall between episodes (the loop
stops only at a cycle's end), so a saved state never holds half an episode."""

from __future__ import annotations

from pathlib import Path

import torch

from pg_robotics.her import EpisodeBuffer
from pg_robotics.runners.base import Runner, to_device



def run_episode(env, policy, obs: dict) -> tuple[dict, dict]:
    """One whole episode of every world of `env` from `obs` (its first observation). Returns the stacked episode
    (obs (N, T+1, O), ag (N, T+1, G), goal (N, T, G), actions (N, T, A), success (N,), final_distance (N,)) and
    the next episode's first observation."""
    T, n = env.episode_steps, env.num_envs
    ep: dict[str, list] = {"obs": [], "ag": [], "goal": [], "actions": []}
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
        raise RuntimeError(f"off-policy goal training needs fixed-length episodes of {T} steps in every world; "
                           f"world {world} {'did not end' if t == T - 1 else 'ended'} at step {t + 1}")
    final = info["final_obs"]
    ep["obs"].append(final["observation"])
    ep["ag"].append(final["achieved_goal"])
    out = {k: torch.stack(v, dim=1) for k, v in ep.items()}
    out["success"] = info["is_success"].float()
    out["final_distance"] = info.get("distance", torch.zeros(n, device=out["success"].device))
    return out, obs


class OffPolicyRunner(Runner):
    UNIT = "cycle"
    PANELS = [("success_rate", "success rate (deterministic)"), ("train_success_rate", "success rate (exploring)"),
              ("q_mean", "mean Q"), ("fps", "env steps/s")]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        env, cfg = self.env, self.alg.cfg
        dims = env.observation_dims
        self.buffer = EpisodeBuffer(cfg.buffer_episodes, env.episode_steps, dims["observation"],
                                    dims["desired_goal"], env.num_actions, env.device)
        self.obs = env.reset()
        self.eval_obs = self.eval_env.reset() if self.eval_env is not None else None
        # exploration noise and batch sampling: a stream apart from the env's (seeded with the same number)
        self.gen = torch.Generator(device=env.device).manual_seed(self.cfg.seed + self.world.rank + 7_919_000)
        self.last_eval = next((r for r in reversed(self.history) if "success_rate" in r), {})

    def collect(self) -> dict:
        env, alg = self.env, self.alg
        ep, self.obs = run_episode(env, lambda o: alg.explore(o, self.gen), self.obs)
        self.buffer.store(ep["obs"], ep["ag"], ep["goal"], ep["actions"])
        alg.update_normalizers(ep["obs"], ep["ag"], ep["goal"])
        return {"steps": env.episode_steps * env.num_envs, "train_success_rate": ep["success"].mean()}

    def update(self) -> dict:
        alg, cfg = self.alg, self.alg.cfg
        sums: dict[str, torch.Tensor] = {}
        for _ in range(cfg.updates_per_cycle):
            batch = self.buffer.sample(cfg.batch_size, self.env.compute_reward, cfg.her_strategy, cfg.her_k, self.gen)
            for key, value in alg.update(batch).items():
                sums[key] = sums[key] + value if key in sums else value
        alg.update_targets()
        figures = {k: v / cfg.updates_per_cycle for k, v in sums.items()}
        if self.eval_env is not None and (self.iteration + 1) % self.cfg.eval_interval == 0:
            figures.update(self.evaluate())
        return figures

    def evaluate(self) -> dict:
        """One deterministic episode in every evaluation world."""
        torch.set_num_threads(1)
        ep, self.eval_obs = run_episode(self.eval_env, self.alg.act_inference, self.eval_obs)
        self.last_eval = {"success_rate": float(ep["success"].mean()),
                          "final_distance": float(ep["final_distance"].mean())}
        return self.last_eval

    def finish(self) -> None:
        if self.eval_env is not None and self.history and "success_rate" not in self.history[-1]:
            self.history[-1].update(self.evaluate())  # the run ends on a measured success rate

    def postfix(self, record: dict) -> str:
        return (f"fps {record['fps']} success {self.last_eval.get('success_rate', 0):.2f} "
                f"(explore {record['train_success_rate']:.2f})")

    # ---- state -----------------------------------------------------------------------------------------------
    def own_state(self) -> dict:
        own = {"env": self.env.state_dict(), "obs": self.obs, "gen": self.gen.get_state()}
        if self.eval_env is not None:
            own.update(eval_env=self.eval_env.state_dict(), eval_obs=self.eval_obs)
        return own

    def load_own_state(self, state: dict) -> None:
        self.env.load_state_dict(state["env"])
        self.obs = to_device(state["obs"], self.env.device)
        self.gen.set_state(state["gen"])
        if self.eval_env is not None and "eval_env" in state:
            self.eval_env.load_state_dict(state["eval_env"])
            self.eval_obs = to_device(state["eval_obs"], self.eval_env.device)

    def save(self) -> Path:
        path = super().save()
        self.save_replay(path, self.buffer)
        return path

    def load(self, path: Path) -> None:
        super().load(path)
        self.last_eval = next((r for r in reversed(self.history) if "success_rate" in r), {})
        self.load_replay(path, self.buffer)

RUNNER = OffPolicyRunner
