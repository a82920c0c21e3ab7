"""On-policy iterations (PPO and its family): collect a rollout of `num_steps_per_env` steps in every world, then
update. The figures stay tensors on the env's device until the iteration ends: no host sync per env step.

What is logged comes from the env's `info`: `episode` (per-term reward sums of the worlds that finished),
`cat_delta` and `constraint_violation` (tasks with constraints), `num_diverged` (worlds reset after diverging);
each is optional."""

from __future__ import annotations

from collections import deque

import torch

from pg_robotics.runners.base import Runner, to_device


class OnPolicyRunner(Runner):
    PANELS = [("mean_return", "mean return"), ("mean_episode_length_s", "episode length (s)"),
              ("cat_delta_mean", "CaT delta"), ("fps", "env steps/s")]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        env = self.env
        self.obs = env.reset()
        self.update_gen = torch.Generator().manual_seed(self.cfg.seed + self.world.rank)
        self.returns, self.lengths = deque(maxlen=200), deque(maxlen=200)
        self.ep_return = torch.zeros(env.num_envs, device=env.device)
        self.ep_length = torch.zeros(env.num_envs, device=env.device)
        self._episode_terms: dict[str, list[torch.Tensor]] = {}
        self._violations: dict[str, torch.Tensor] = {}

    def collect(self) -> dict:
        env, alg = self.env, self.alg
        n = alg.cfg.num_steps_per_env
        self._episode_terms, self._violations = {}, {}
        finished: list[torch.Tensor] = []
        zero = torch.zeros((), device=env.device)
        delta_sum, diverged = zero.clone(), zero.clone()
        with torch.no_grad():
            for _ in range(n):
                actions = alg.act(self.obs)
                self.obs, rewards, dones, info = env.step(actions)
                alg.process_env_step(rewards, dones, info)
                self.ep_return += rewards
                self.ep_length += 1
                finished.append(torch.stack([self.ep_return, self.ep_length * env.dt, dones.float()]))
                self.ep_return.masked_fill_(dones, 0.0)
                self.ep_length.masked_fill_(dones, 0.0)
                for k, v in info.get("episode", {}).items():
                    self._episode_terms.setdefault(k, []).append(v)
                if "cat_delta" in info:
                    delta_sum += info["cat_delta"].mean()
                for k, v in info.get("constraint_violation", {}).items():
                    self._violations[k] = self._violations.get(k, zero) + v
                if "num_diverged" in info:
                    diverged += info["num_diverged"]
            ret, length, done = torch.stack(finished).transpose(0, 1).flatten(1)
            self.returns.extend(ret[done > 0].tolist())
            self.lengths.extend(length[done > 0].tolist())
        mean = lambda values: sum(values) / len(values) if values else 0.0  # noqa: E731
        return {"steps": n * env.num_envs, "mean_return": mean(self.returns),
                "mean_episode_length_s": mean(self.lengths), "cat_delta_mean": delta_sum / n,
                "diverged_worlds": diverged}

    def update(self) -> dict:
        self.alg.compute_returns(self.obs)  # with the update's threads: the critic runs over the whole rollout
        figures = self.alg.update(self.update_gen)
        self.alg.end_iteration()
        return figures

    def log_extra(self, writer) -> None:
        n = self.alg.cfg.num_steps_per_env
        for key, values in self._episode_terms.items():
            writer.add_scalar(f"episode/{key}", float(torch.stack(values).mean()), self.iteration)
        for key, value in self._violations.items():
            writer.add_scalar(f"constraints/{key}_violation_rate", float(value) / n, self.iteration)

    def postfix(self, record: dict) -> str:
        return (f"fps {record['fps']} return {record['mean_return']:.2f} "
                f"ep_len {record['mean_episode_length_s']:.1f}s")

    def own_state(self) -> dict:
        return {"env": self.env.state_dict(), "obs": self.obs, "update_rng": self.update_gen.get_state()}

    def load_own_state(self, state: dict) -> None:
        self.env.load_state_dict(state["env"])
        self.obs = to_device(state["obs"], self.env.device)
        self.update_gen.set_state(state["update_rng"])


RUNNER = OnPolicyRunner
