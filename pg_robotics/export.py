"""Export, one path for every algorithm and task kind: a run's deterministic policy (the learner's
`inference_module()`: normalizers inside the graph) as ONNX with the deploy contract of docs/architecture.md in its
metadata, checked before it is written:

1. the contract validates through the deploy runtime (`pg_robotics.deploy.Policy.load`), which ignores the keys
   written for other deploy stacks (`deploy_stack_keys`);
2. torch and onnxruntime agree on 1,000 random and 1,000 recorded inputs (max abs difference <= 1e-5);
3. what the policy saw in simulation, replayed through the deploy runtime, gives the simulator's actions (max abs
   difference <= 1e-4): raw robot states through the observation builder with the joints in shuffled order
   (joint_position policies), or the named input vectors through the VectorController (goal-conditioned policies).

A model that fails a check is not written.

    from pg_robotics.export import export
    export("runs/quadruped-flat/2026-11-21_11-18-00")["replay_action_max_abs_diff"]
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

from pg_robotics import runs
from pg_robotics.deploy import SCHEMA_VERSION
from pg_robotics.envs import ConfigError

ONNX_TOLERANCE = 1e-5
REPLAY_TOLERANCE = 1e-4


class ExportError(ConfigError):
    """The exported model failed its own checks; nothing was written."""


def contract(agent: runs.Agent, git_commit: str) -> dict:
    """The contract values, read from the task exactly as it ran in simulation."""
    return {"schema_version": SCHEMA_VERSION, "task": agent.recipe.task, **agent.env.deploy_contract(),
            "git_commit": git_commit}


def deploy_stack_keys(meta: dict) -> dict[str, str]:
    """For a joint_position policy, the keys ROS 2 / robot deploy stacks read that ours do not already carry, in
    their spelling (mjlab's export: comma-separated, in joint_names order; docs/architecture.md cites the readers).
    `joint_names`, `default_joint_pos`, `action_scale` and `command_names` are ours and written in that spelling."""
    if meta.get("kind") != "joint_position":
        return {}
    bad = [n for n in meta["joint_names"] if "," in n]
    if bad:
        raise ExportError(f"joint_names: {bad[0]!r} contains a comma, which the deploy stacks' comma-separated "
                          f"joint_names cannot carry (rename the joint in the MJCF)")

    def numbers(values) -> str:
        return ",".join(repr(float(v)) for v in values)

    return {"joint_stiffness": numbers(meta["kp"]), "joint_damping": numbers(meta["kd"]),
            "observation_names": ",".join(t["name"] for t in meta["observation_terms"])}


def write_onnx(model: nn.Module, num_obs: int, meta: dict, path: Path, doc: str) -> None:
    """`model` (obs [B, num_obs] -> actions) as ONNX opset 17 at `path`, with `meta` as its metadata_props, and
    beside it the keys other deploy stacks read (`deploy_stack_keys`)."""
    import onnx

    from pg_robotics.deploy.contract import encode

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, num_obs),), str(path), input_names=["obs"], output_names=["actions"],
                          dynamic_axes={"obs": {0: "batch"}, "actions": {0: "batch"}}, opset_version=17, dynamo=False)
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in {**encode(meta), **deploy_stack_keys(meta)}.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = doc
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def check_against_torch(model: nn.Module, run, inputs: dict[str, torch.Tensor], out: Path) -> dict:
    """Max abs difference between `model` and the exported graph `run` (numpy in, numpy out) on each named input
    set; an ExportError past ONNX_TOLERANCE."""
    report = {}
    with torch.no_grad():
        for name, obs in inputs.items():
            diff = float(np.abs(model(obs).numpy() - run(obs.numpy())).max())
            report[f"onnx_max_abs_diff_{name}"] = diff
            if not diff <= ONNX_TOLERANCE:
                raise ExportError(f"export: onnxruntime differs from torch by {diff:.2e} on {len(obs)} {name} "
                                  f"observations (tolerance {ONNX_TOLERANCE:g}); {out} not written")
    return report


def publish(tmp_onnx: Path, out: Path, meta: dict) -> Path:
    """Write the sidecar YAML beside `tmp_onnx`, then move both into place by rename; returns the sidecar's path."""
    sidecar = out.with_suffix(".yaml")
    tmp_yaml = tmp_onnx.parent / sidecar.name
    tmp_yaml.write_text(yaml.safe_dump(meta, sort_keys=False))
    os.replace(tmp_yaml, sidecar)
    os.replace(tmp_onnx, out)
    return sidecar


def export(run_dir: Path, out: Path | None = None, checkpoint: Path | None = None) -> dict:
    """The run's deterministic policy (any algorithm) as `out` (default RUN_DIR/policy.onnx) + sidecar YAML,
    written only after the checks of the module docstring pass. Returns the checks' figures."""
    from pg_robotics.deploy import Policy
    from pg_robotics.deploy.replay import replay
    from pg_robotics.deploy.vector import replay_vector
    from pg_robotics.evaluate import record

    run_dir = Path(run_dir)
    agent = runs.load_agent(run_dir, checkpoint)
    try:
        meta = contract(agent, runs.run_commit(run_dir))
        model = agent.learner.inference_module()
    finally:
        agent.close()
    ckpt, vector = agent.checkpoint, meta["kind"] == "vector"
    out = Path(out) if out else run_dir / "policy.onnx"
    rec = record(run_dir, ckpt, worlds=20) if vector else record(run_dir, ckpt, worlds=6, seconds=0.6)
    num_obs = rec["obs"].shape[-1]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        tmp_onnx = Path(tmp) / out.name
        write_onnx(model, num_obs, meta, tmp_onnx, f"pg_robotics policy for {agent.recipe.task} from {ckpt}")
        policy = Policy.load(tmp_onnx)  # validates the contract the way a robot will
        gen = torch.Generator().manual_seed(0)
        recorded = torch.from_numpy(rec["obs"].reshape(-1, num_obs)[:1000]).float()
        random = torch.randn(1000, num_obs, generator=gen) * 3.0
        report = {"onnx": str(out), "checkpoint": str(ckpt), "kind": meta["kind"], "num_obs": num_obs,
                  "num_actions": policy.spec.num_actions}
        report.update(check_against_torch(model, policy, {"random": random, "recorded": recorded}, out))
        check = replay_vector(policy, rec) if vector else replay(policy, rec, shuffle_seed=0)
        report.update({f"replay_{k}": v for k, v in check.items()})
        if not check["action_max_abs_diff"] <= REPLAY_TOLERANCE:
            raise ExportError(f"export: the deploy runtime's actions on recorded sim {'inputs' if vector else 'states'}"
                              f" differ by {check['action_max_abs_diff']:.2e} (tolerance {REPLAY_TOLERANCE:g}); "
                              f"{out} not written")
        sidecar = publish(tmp_onnx, out, meta)
    report["sidecar"] = str(sidecar)
    return report
