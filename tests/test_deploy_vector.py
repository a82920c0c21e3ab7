"""Vector policies (named input vectors -> bounded action) in the torch-free deploy runtime: the contract names the
key that is wrong, the controller never returns a non-finite or out-of-bounds action, and the joint-space runtime
refuses a vector policy."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from pg_robotics.deploy import ContractError, Controller, Policy, VectorController
from pg_robotics.deploy.vector import replay_vector
from pg_robotics.export import write_onnx

META = {"schema_version": 2, "kind": "vector", "task": "toy", "robot": "none", "control_dt": 0.04,
        "git_commit": "abc", "observation_terms": [{"name": "observation", "dim": 3}, {"name": "desired_goal", "dim": 2}],
        "action_names": ["dx", "dy"], "action_low": [-1.0, -0.5], "action_high": [1.0, 0.5], "safe_action": [0.0, 0.0],
        "task_params": {"step": 0.05}}


class Toy(nn.Module):
    """action = W x with a NaN where the first input is exactly 7 (a broken model, on demand)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([[1.0, 0, 0, 2.0, 0], [0, 1.0, 0, 0, 3.0]]))

    def forward(self, obs):
        out = obs @ self.w.T
        return torch.where(obs[:, :1] == 7.0, torch.full_like(out, float("nan")), out)


def write(tmp_path, meta=META, name="toy.onnx"):
    path = tmp_path / name
    write_onnx(Toy(), 5, meta, path, "toy vector policy")
    return path


def test_vector_controller_runs_clips_and_falls_back_to_the_safe_action(tmp_path):
    ctl = VectorController.load(write(tmp_path))
    assert ctl.spec.num_obs == 5 and ctl.spec.num_actions == 2 and ctl.spec.task_params == {"step": 0.05}
    out = ctl.step({"observation": [0.1, 0.2, 0.3], "desired_goal": [0.05, 0.01]})
    assert np.allclose(out, [0.1 + 0.1, 0.2 + 0.03], atol=1e-6)
    assert ctl.step({"observation": [5.0, 5.0, 0.0], "desired_goal": [0.0, 0.0]}).tolist() == [1.0, 0.5]  # clipped
    for bad in ({"observation": [math.nan, 0, 0], "desired_goal": [0, 0]},   # non-finite input
                {"observation": [0, 0], "desired_goal": [0, 0]},              # wrong length
                {"desired_goal": [0, 0]},                                     # missing term
                {"observation": "abc", "desired_goal": [0, 0]},               # not numbers
                {"observation": [7.0, 0, 0], "desired_goal": [0, 0]}):        # the model outputs NaN
        assert ctl.step(bad).tolist() == [0.0, 0.0]
    assert ctl.counters == {"steps": 7, "bad_input": 4, "nonfinite_action": 1, "clipped": 1}
    assert ctl.stats()["step_p50_us"] > 0


def test_replay_vector_compares_recorded_actions(tmp_path):
    policy = Policy.load(write(tmp_path))
    rng = np.random.default_rng(0)
    rec = {"observation": rng.normal(0, 0.1, (4, 3, 3)), "desired_goal": rng.normal(0, 0.1, (4, 3, 2))}
    x = np.concatenate([rec["observation"], rec["desired_goal"]], axis=-1)
    rec["actions"] = np.clip(x @ Toy().w.detach().numpy().T.astype(np.float64), [-1, -0.5], [1, 0.5])
    check = replay_vector(policy, rec)
    assert check["samples"] == 12 and check["action_max_abs_diff"] < 1e-6 and check["bad_input"] == 0
    rec["actions"] = rec["actions"] + 0.01
    assert replay_vector(policy, rec)["action_max_abs_diff"] == pytest.approx(0.01, abs=1e-6)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("kind"), "kind: expected one of joint_position, vector, got None"),
    (lambda m: m.update(kind="torque"), "kind: expected one of joint_position, vector, got 'torque'"),
    (lambda m: m.pop("safe_action"), "safe_action: missing from the policy metadata"),
    (lambda m: m.update(action_low=[-1.0]), "action_low: expected 2 values"),
    (lambda m: m.update(action_high=[1.0, -0.6]), "action_low: dy has low -0.5 above high -0.6"),
    (lambda m: m.update(safe_action=[0.0, 0.9]), "safe_action: dy = 0.9 is outside [action_low, action_high]"),
    (lambda m: m.update(safe_action=[0.0, float("nan")]), "safe_action: non-finite value at index 1"),
    (lambda m: m.update(observation_terms=[{"name": "observation", "dim": 0}]), "observation_terms[0].dim"),
    (lambda m: m.update(observation_terms=[{"name": "a", "dim": 3}, {"name": "a", "dim": 2}]), "duplicate name 'a'"),
    (lambda m: m.update(observation_terms=[{"name": "observation", "dim": 4}]),
     "observation_terms: the terms add up to 4 values but the model's input 'obs' takes 5"),
    (lambda m: m.update(action_names=["dx", "dy", "dz"], action_low=[0] * 3, action_high=[0] * 3, safe_action=[0] * 3),
     "action_names: 3 actions named but the model's output 'actions' has 2 values"),
    (lambda m: m.update(task_params={"step": "far"}), "task_params.step: expected a finite number"),
    (lambda m: m.update(control_dt=0), "control_dt: 0 is outside [0.0001, 1]"),
    (lambda m: m.update(schema_version=4), "schema_version: this runtime reads versions 1 to 3"),
])
def test_bad_vector_metadata_names_the_key(tmp_path, change, message):
    meta = {k: (list(v) if isinstance(v, list) else v) for k, v in META.items()}
    change(meta)
    with pytest.raises(ContractError) as err:
        Policy.load(write(tmp_path, meta))
    assert message in str(err.value)


def test_the_joint_space_controller_refuses_a_vector_policy(tmp_path):
    with pytest.raises(ContractError, match="a 'vector' policy .* run it with VectorController"):
        Controller.load(write(tmp_path))
