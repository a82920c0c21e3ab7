"""Replay raw robot states recorded in simulation (`pgr eval --record`) through the deploy runtime and compare
its actions with the simulator's: the check that observation order, scaling and the quaternion convention agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .observation import ObservationBuilder, RobotState
from .policy import Policy


def replay(policy: Policy, record: dict, shuffle_seed: int | None = None) -> dict:
    """Max abs differences of observations and actions over every recorded (step, world). With `shuffle_seed`,
    the joints are presented to the runtime in a random order (the runtime maps them by name)."""
    names = [str(n) for n in record["joint_names"]]
    order = np.arange(len(names))
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(len(names))
    shuffled = [names[i] for i in order]
    builder = ObservationBuilder(policy.spec, shuffled)
    steps, worlds = record["obs"].shape[:2]
    obs = np.zeros((steps * worlds, policy.spec.num_obs), dtype=np.float32)
    for t in range(steps):
        for w in range(worlds):
            heights = record["height_samples"][t, w] if "height_samples" in record else None
            state = RobotState(shuffled, record["joint_pos"][t, w, order], record["joint_vel"][t, w, order],
                               record["orientation_xyzw"][t, w], record["angular_velocity"][t, w],
                               height_samples=heights)
            builder.reset()
            obs[t * worlds + w] = builder.build(state, record["command"][t, w], record["last_action"][t, w])
    actions = policy(obs)
    return {"samples": steps * worlds,
            "obs_max_abs_diff": float(np.abs(obs - record["obs"].reshape(obs.shape)).max()),
            "action_max_abs_diff": float(np.abs(actions - record["actions"].reshape(actions.shape)).max())}


def load_record(path: str | Path) -> dict:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}
