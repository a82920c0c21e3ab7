"""A small batched continuous-control task for the learning checks: a 2-D point mass pushed by the action toward
the origin, with the batched env contract of the project (dict obs, auto-reset, time-outs)."""

import torch


class PointMass:
    def __init__(self, num_envs: int, seed: int = 0, episode_steps: int = 50):
        self.num_envs, self.num_actions, self.dt, self.device = num_envs, 2, 0.1, torch.device("cpu")
        self.num_obs = {"policy": 4, "critic": 4}
        self.episode_steps = episode_steps
        self.gen = torch.Generator().manual_seed(seed)
        self.pos, self.vel = torch.zeros(num_envs, 2), torch.zeros(num_envs, 2)
        self.t = torch.zeros(num_envs, dtype=torch.long)
        self._reset(torch.arange(num_envs))

    def _reset(self, ids):
        self.pos[ids] = torch.rand(len(ids), 2, generator=self.gen) * 2 - 1
        self.vel[ids] = 0.0
        self.t[ids] = 0

    def _obs(self):
        x = torch.cat([self.pos, self.vel], dim=1)
        return {"policy": x, "critic": x}

    def reset(self):
        self._reset(torch.arange(self.num_envs))
        return self._obs()

    def step(self, actions):
        a = actions.clamp(-1, 1)
        self.vel = 0.9 * self.vel + a * self.dt
        self.pos = self.pos + self.vel * self.dt
        reward = -self.pos.norm(dim=1) - 0.01 * a.square().sum(1)
        self.t += 1
        time_outs = self.t >= self.episode_steps
        ids = time_outs.nonzero().flatten()
        self._reset(ids)
        return self._obs(), reward, time_outs, {"time_outs": time_outs, "cat_delta": torch.zeros(self.num_envs)}


def evaluate(act, num_envs=64, seed=123):
    """Mean undiscounted return of a deterministic policy over one episode per world."""
    env = PointMass(num_envs, seed=seed)
    obs, total = env.reset(), torch.zeros(num_envs)
    for _ in range(env.episode_steps):
        obs, reward, _, _ = env.step(act(obs))
        total += reward
    return float(total.mean())
