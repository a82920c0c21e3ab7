"""Curriculum terms: ``fn(env, ids, **params)`` runs when worlds `ids` finish an episode, before their episode sums
are cleared (`env.episode_sums[term]`: the reward each term paid them over the episode). Whatever a term moves lives
in the env's state, so a resumed run continues from it."""

from __future__ import annotations

import torch


def command_lin_vel(env, ids, reward: str = "tracking_lin_vel", threshold: float = 0.8, step: float = 0.1,
                    limit: tuple[float, float] = (-2.0, 2.0)) -> None:
    """Widens the forward-speed command range by `step` m/s at both ends (up to `limit`) when the finished episodes
    earned more than `threshold` of the most the `reward` term pays over a full episode (legged_gym's curriculum)."""
    if len(ids) == 0 or reward not in env.episode_sums:
        return
    best = env.reward_weights[reward] * env.max_episode_length
    if float(env.episode_sums[reward][ids].mean()) > threshold * best:
        lo, hi = env.command_ranges["lin_vel_x"]
        env.command_ranges["lin_vel_x"] = (max(lo - step, limit[0]), min(hi + step, limit[1]))


def terrain_levels(env, ids, up: float = 0.5, down: float = 0.5) -> None:
    """The terrain curriculum (legged_gym's): a world that got farther than `up` tile sizes from its tile's origin
    in its episode moves one level up; one that got less than `down` of the distance its command asked for moves one
    down; one that passes the top level goes to a random level. Its next episode starts at its new tile."""
    if env.terrain is None or len(ids) == 0:
        return
    travelled = (env.state.base_pos[ids, :2] - env.env_origins[ids, :2]).norm(dim=1)
    asked = env.commands[ids, :2].norm(dim=1) * env.max_episode_length * env.dt
    raise_ = travelled > up * env.terrain.cfg.tile_size
    lower = (travelled < down * asked) & ~raise_
    levels = env.terrain_levels[ids] + raise_.long() - lower.long()
    top = env.terrain.cfg.levels
    spread = torch.randint(0, top, levels.shape, generator=env.gen, device=levels.device)
    levels = torch.where(levels >= top, spread, levels.clamp(min=0))
    env.terrain_levels[ids] = levels
    env.env_origins[ids] = env.tile_origins[levels, env.terrain_types[ids]]
