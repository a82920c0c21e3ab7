"""Policies of kind "vector": the caller hands the policy its named inputs as vectors (e.g. a goal-conditioned arm
policy's `observation` and `desired_goal`) and gets an action vector back, bounded by the contract. Joint-space
locomotion policies (kind "joint_position") build their observation from a robot's state instead (controller.py).

Metadata of a vector policy (JSON values in the ONNX `metadata_props`, mirrored in the sidecar YAML):
    schema_version 2 or 3, kind "vector", task, robot, control_dt, git_commit,
    observation_terms  [{name, dim}, ...]       the model's input `obs` is their concatenation, in this order
    action_names       one name per action element
    action_low / action_high                    bounds every action is clipped into
    safe_action        what the runtime returns when an input or the output is bad (e.g. "do not move")
    task_params        {name: number}, optional: task figures a robot-side driver needs (step size, thresholds)

    from pg_robotics.deploy import VectorController
    ctl = VectorController.load("policy.onnx")
    action = ctl.step({"observation": obs, "desired_goal": goal})
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .contract import ContractError, check_name, check_strings, finite_number, number_list, require, short
from .policy import Policy

VECTOR_KEYS = ("task", "robot", "control_dt", "git_commit", "observation_terms", "action_names", "action_low",
               "action_high", "safe_action")
MAX_DIM = 100_000  # elements of one input term


@dataclass(frozen=True)
class InputTerm:
    name: str
    dim: int


@dataclass(frozen=True)
class VectorSpec:
    task: str
    robot: str
    control_dt: float
    git_commit: str
    observation_terms: tuple[InputTerm, ...]
    action_names: tuple[str, ...]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    safe_action: tuple[float, ...]
    task_params: dict = field(default_factory=dict)
    kind: str = "vector"

    @property
    def num_obs(self) -> int:
        return sum(t.dim for t in self.observation_terms)

    @property
    def num_actions(self) -> int:
        return len(self.action_names)


def parse_vector(meta: dict) -> VectorSpec:
    """Validate a vector policy's decoded metadata; errors name the key."""
    require(meta, VECTOR_KEYS)
    check_strings(meta)
    terms = meta["observation_terms"]
    if not isinstance(terms, list) or not terms:
        raise ContractError(f"observation_terms: expected a non-empty list of {{name, dim}}, got {short(terms)}")
    parsed = []
    for i, t in enumerate(terms):
        where = f"observation_terms[{i}]"
        if not isinstance(t, dict) or "name" not in t or "dim" not in t:
            raise ContractError(f"{where}: expected a mapping with name and dim, got {short(t)}")
        check_name(t["name"], f"{where}.name")
        dim = t["dim"]
        if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= MAX_DIM:
            raise ContractError(f"{where}.dim: expected an integer in [1, {MAX_DIM}], got {short(dim)}")
        parsed.append(InputTerm(t["name"], dim))
    names = [t.name for t in parsed]
    if len(set(names)) != len(names):
        raise ContractError(f"observation_terms: duplicate name {short(next(n for n in names if names.count(n) > 1))}")
    actions = meta["action_names"]
    if not isinstance(actions, list) or not actions:
        raise ContractError(f"action_names: expected a non-empty list of names, got {short(actions)}")
    for i, name in enumerate(actions):
        check_name(name, f"action_names[{i}]")
    n = len(actions)
    low, high = number_list(meta, "action_low", n, "action"), number_list(meta, "action_high", n, "action")
    bad = [i for i in range(n) if low[i] > high[i]]
    if bad:
        raise ContractError(f"action_low: {actions[bad[0]]} has low {low[bad[0]]} above high {high[bad[0]]}")
    safe = number_list(meta, "safe_action", n, "action")
    outside = [i for i in range(n) if not low[i] <= safe[i] <= high[i]]
    if outside:
        raise ContractError(f"safe_action: {actions[outside[0]]} = {safe[outside[0]]} is outside "
                            f"[action_low, action_high]")
    params = meta.get("task_params", {})
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise ContractError(f"task_params: expected a mapping of names to numbers, got {short(params)}")
    params = {k: finite_number(v, f"task_params.{k}", "task_param") for k, v in params.items()}
    control_dt = finite_number(meta["control_dt"], "control_dt", "control_dt")
    return VectorSpec(meta["task"], meta["robot"], control_dt, meta["git_commit"], tuple(parsed),
                      tuple(actions), low, high, safe, params)


class VectorController:
    """One action per `step`: each named input checked (present, right length, finite), the policy run, its output
    checked finite and clipped into [action_low, action_high]. A bad input or output gives `safe_action` and is
    counted; nothing non-finite or out of bounds is ever returned."""

    def __init__(self, policy: Policy, latency_window: int = 100_000):
        if not isinstance(policy.spec, VectorSpec):
            raise ContractError(f"kind: {policy.path} is a {policy.spec.kind!r} policy; run it with Controller")
        self.policy, self.spec = policy, policy.spec
        self.low, self.high = np.asarray(self.spec.action_low), np.asarray(self.spec.action_high)
        self.safe = np.asarray(self.spec.safe_action)
        self._slices = []
        offset = 0
        for term in self.spec.observation_terms:
            self._slices.append((term.name, term.dim, slice(offset, offset + term.dim)))
            offset += term.dim
        self.counters = {"steps": 0, "bad_input": 0, "nonfinite_action": 0, "clipped": 0}
        self._latency = np.zeros(latency_window, dtype=np.int64)

    @classmethod
    def load(cls, path: str | Path, threads: int = 1) -> "VectorController":
        return cls(Policy.load(path, threads))

    def step(self, inputs: Mapping[str, Sequence[float]]) -> np.ndarray:
        t0 = time.perf_counter_ns()
        out = self._step(inputs)
        steps = self.counters["steps"]
        self._latency[steps % len(self._latency)] = time.perf_counter_ns() - t0
        self.counters["steps"] = steps + 1
        return out

    def _step(self, inputs: Mapping[str, Sequence[float]]) -> np.ndarray:
        obs, c = self.policy.obs[0], self.counters
        for name, dim, where in self._slices:
            try:
                value = np.asarray(inputs[name], dtype=np.float64).reshape(-1)
            except (KeyError, TypeError, ValueError):
                c["bad_input"] += 1
                return self.safe.copy()
            if value.shape != (dim,) or not np.isfinite(value).all():
                c["bad_input"] += 1
                return self.safe.copy()
            obs[where] = value
        self.policy.run_bound()
        action = self.policy.action[0].astype(np.float64)
        if not np.isfinite(action).all():
            c["nonfinite_action"] += 1
            return self.safe.copy()
        clipped = np.clip(action, self.low, self.high)
        c["clipped"] += int(not np.array_equal(clipped, action))
        return clipped

    def stats(self) -> dict:
        lat = self._latency[:min(self.counters["steps"], len(self._latency))] / 1000.0
        pct = (lambda p: round(float(np.percentile(lat, p)), 2)) if len(lat) else (lambda p: 0.0)
        return {**self.counters, "step_p50_us": pct(50), "step_p99_us": pct(99)}


def replay_vector(policy: Policy, record: dict) -> dict:
    """Recorded named inputs (arrays (steps, worlds, dim) per term) through a VectorController; the max abs
    difference of its actions from the recorded ones (`actions`)."""
    ctl = VectorController(policy)
    steps, worlds = record["actions"].shape[:2]
    diff = 0.0
    for t in range(steps):
        for w in range(worlds):
            action = ctl.step({term.name: record[term.name][t, w] for term in policy.spec.observation_terms})
            diff = max(diff, float(np.abs(action - record["actions"][t, w]).max()))
    return {"samples": steps * worlds, "action_max_abs_diff": diff, "bad_input": ctl.counters["bad_input"]}
