"""Curriculum terms: ``fn(env, ids, **params)`` runs when worlds `ids` finish an episode, before their episode sums
are cleared (`env.episode_sums[term]`: the reward each term paid them over the episode). Whatever a term moves lives
in the env's state, so a resumed run continues from it."""

from __future__ import annotations


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
