"""Off-policy iterations for vector tasks (SAC, SVG(0), TD3, DQN): every world takes `num_steps_per_env` steps with
the learner's exploration (uniform random actions for the first `learning_starts` env steps), the transitions go
into one circular buffer on the env's device, then `utd_ratio` x (env steps taken) gradient steps (at least one)
on uniformly sampled batches.

Each transition keeps (obs, critic obs, action, reward, next obs, next critic obs, mask) with
    reward = (1 - delta) r        mask = (1 - delta)(1 - terminated)
so a TD target  reward + gamma * mask * Q'(next)  treats CaT's termination probability delta as a soft termination,
as the on-policy family does. A time-out is not a termination: when the env reports the observation its episode
ended on (`info["final_obs"]`, the gymnasium adapter does) that is the next obs; otherwise the time-out transition
is left out (its next obs would be the reset one). The buffer is kept in checkpoints/replay_buffer.pt with every
checkpoint, so `--resume` goes on with it."""

from __future__ import annotations

from pathlib import Path

import torch

from pg_robotics.runners.base import Runner, to_device

KEYS = ("obs", "critic_obs", "actions", "rewards", "next_obs", "next_critic_obs", "mask")


class TransitionBuffer:
    def __init__(self, capacity: int, dims: dict[str, int], device: torch.device):
        self.capacity, self.size, self.next = capacity, 0, 0
        self.data = {k: torch.zeros(capacity, dims[k], device=device) if dims[k] else torch.zeros(capacity,
                     device=device) for k in KEYS}

    def add(self, rows: dict[str, torch.Tensor]) -> None:
        n = len(rows["rewards"])
        idx = (self.next + torch.arange(n, device=rows["rewards"].device)) % self.capacity
        for k in KEYS:
            self.data[k][idx] = rows[k]
        self.next = (self.next + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        idx = torch.randint(0, self.size, (batch_size,), generator=gen, device=gen.device)
        return {k: v[idx] for k, v in self.data.items()}

    def state_dict(self) -> dict:
        return {"size": self.size, "next": self.next, **{k: v[:self.size] for k, v in self.data.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.size, self.next = int(state["size"]), int(state["next"])
        for k in KEYS:
            self.data[k][:self.size] = state[k].to(self.data[k].device)


class ReplayRunner(Runner):
    PANELS = [("mean_return", "mean return (exploring)"), ("mean_episode_length_s", "episode length (s)"),
              ("q_mean", "mean Q"), ("fps", "env steps/s")]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        env, cfg = self.env, self.alg.cfg
        policy = env.num_obs["policy"]
        critic = env.num_obs.get("critic", policy)
        action = 1 if getattr(env, "discrete", False) else env.num_actions
        self.buffer = TransitionBuffer(cfg.buffer_size, {"obs": policy, "critic_obs": critic, "actions": action,
                                                         "rewards": 0, "next_obs": policy, "next_critic_obs": critic,
                                                         "mask": 0}, env.device)
        self.obs = env.reset()
        self.gen = torch.Generator(device=env.device).manual_seed(self.cfg.seed + self.world.rank + 7_919_000)
        self.ep_return = torch.zeros(env.num_envs, device=env.device)
        self.ep_length = torch.zeros(env.num_envs, device=env.device)
        self.returns: list[float] = []
        self.lengths: list[float] = []

    def collect(self) -> dict:
        env, alg = self.env, self.alg
        n = alg.cfg.num_steps_per_env
        with torch.no_grad():
            for i in range(n):
                warmup = self.total_steps + i * env.num_envs < alg.cfg.learning_starts
                actions = alg.explore(self.obs, self.gen, random=warmup)
                obs, rewards, dones, info = env.step(actions)
                zeros = torch.zeros_like(rewards)
                time_outs = info.get("time_outs", zeros).bool()
                delta = info.get("cat_delta", zeros)
                final = info.get("final_obs")
                keep = torch.ones_like(dones) if final is not None else ~time_outs
                nxt = final if final is not None else obs
                rows = {"obs": self.obs["policy"], "critic_obs": self.obs.get("critic", self.obs["policy"]),
                        "actions": actions, "rewards": (1 - delta) * rewards, "next_obs": nxt["policy"],
                        "next_critic_obs": nxt.get("critic", nxt["policy"]),
                        "mask": (1 - delta) * (1 - (dones & ~time_outs).float())}
                self.buffer.add({k: v[keep] for k, v in rows.items()})
                self.ep_return += rewards
                self.ep_length += 1
                ended = dones.nonzero().flatten()
                if len(ended):
                    self.returns = (self.returns + self.ep_return[ended].tolist())[-200:]
                    self.lengths = (self.lengths + (self.ep_length[ended] * env.dt).tolist())[-200:]
                    self.ep_return[ended] = 0.0
                    self.ep_length[ended] = 0.0
                self.obs = obs
        mean = lambda v: sum(v) / len(v) if v else 0.0  # noqa: E731
        return {"steps": n * env.num_envs, "mean_return": mean(self.returns),
                "mean_episode_length_s": mean(self.lengths), "buffer_size": self.buffer.size}

    def update(self) -> dict:
        alg, cfg = self.alg, self.alg.cfg
        steps = cfg.num_steps_per_env * self.env.num_envs  # this iteration's, not yet in total_steps
        if self.total_steps + steps < cfg.learning_starts or self.buffer.size < cfg.batch_size:
            return {}
        updates = max(1, round(cfg.utd_ratio * steps))
        sums: dict[str, torch.Tensor] = {}  # 0-d tensors: no host sync per gradient step
        for _ in range(updates):
            for key, value in alg.update(self.buffer.sample(cfg.batch_size, self.gen)).items():
                sums[key] = sums[key] + value if key in sums else torch.as_tensor(value)
        return {k: v / updates for k, v in sums.items()}

    def postfix(self, record: dict) -> str:
        return f"fps {record['fps']} return {record['mean_return']:.2f} buffer {int(record['buffer_size'])}"

    def own_state(self) -> dict:
        return {"env": self.env.state_dict(), "obs": self.obs, "gen": self.gen.get_state()}

    def load_own_state(self, state: dict) -> None:
        self.env.load_state_dict(state["env"])
        self.obs = to_device(state["obs"], self.env.device)
        self.gen.set_state(state["gen"])

    def save(self) -> Path:
        path = super().save()
        self.save_replay(path, self.buffer)
        return path

    def load(self, path: Path) -> None:
        super().load(path)
        self.load_replay(path, self.buffer)

RUNNER = ReplayRunner
