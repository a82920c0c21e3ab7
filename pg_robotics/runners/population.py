"""Iterations of the parameter-space searches (CEM, ES): the learner draws its population, every world runs its
candidate's parameters from a reset for up to `horizon` steps (one batched forward pass for all candidates), each
world's return is summed until its episode ends, candidates average their worlds, the learner updates.

With CaT, a world's return is the expected one under its termination probabilities: step t's reward is weighted by
the probability prod_{k<t} (1 - delta_k) of having survived to it."""

from __future__ import annotations

import torch

from pg_robotics.runners.base import Runner


class PopulationRunner(Runner):
    PANELS = [("return_mean", "mean return of the population"), ("return_best", "best candidate's return"),
              ("mean_episode_length_s", "episode length (s)"), ("fps", "env steps/s")]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        env = self.env
        self.gen = torch.Generator(device=env.device).manual_seed(self.cfg.seed + 7_919_000)

    def collect(self) -> dict:
        env, alg = self.env, self.alg
        alg.population(self.gen)
        obs = env.reset()
        total = torch.zeros(env.num_envs, device=env.device)
        alive = torch.ones(env.num_envs, device=env.device)
        length = torch.zeros(env.num_envs, device=env.device)
        steps = 0
        with torch.no_grad():
            for _ in range(alg.cfg.horizon):
                obs, rewards, dones, info = env.step(alg.act_population(obs))
                steps += 1
                total += alive * rewards
                length += (alive > 0).float()
                alive = alive * (1 - info.get("cat_delta", torch.zeros_like(rewards))) * (~dones).float()
                if not alive.any():
                    break
        self.returns = total.view(-1, alg.cfg.worlds_per_candidate).mean(1)
        return {"steps": steps * env.num_envs, "mean_return": float(self.returns.mean()),
                "mean_episode_length_s": float(length.mean() * env.dt)}

    def update(self) -> dict:
        return self.alg.update(self.returns)

    def postfix(self, record: dict) -> str:
        return f"fps {record['fps']} return mean {record['return_mean']:.2f} best {record['return_best']:.2f}"

    def own_state(self) -> dict:
        return {"env": self.env.state_dict(), "gen": self.gen.get_state()}

    def load_own_state(self, state: dict) -> None:
        self.env.load_state_dict(state["env"])
        self.gen.set_state(state["gen"])


RUNNER = PopulationRunner
