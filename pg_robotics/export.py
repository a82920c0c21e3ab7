"""`pgr export`: a run's deterministic policy as ONNX (normalizer inside the graph) with the metadata contract of
ARCHITECTURE.md, checked before it is written:

1. the contract validates through the deploy runtime (`pg_robotics.deploy.Policy.load`);
2. torch and onnxruntime agree on 1,000 random and 1,000 recorded observations (max abs difference <= 1e-5);
3. raw robot states recorded in simulation, replayed through the deploy runtime's observation builder with the
   joints in shuffled order, give the simulator's actions (max abs difference <= 1e-4).

A model that fails a check is not written."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

from pg_robotics.deploy import SCHEMA_VERSION
from pg_robotics.envs import ConfigError, make

ONNX_TOLERANCE = 1e-5
REPLAY_TOLERANCE = 1e-4


class ExportError(ConfigError):
    """The exported model failed its own checks; nothing was written."""


class DeterministicPolicy(nn.Module):
    """obs -> actions: the observation normalizer followed by the actor's mean."""

    def __init__(self, normalizer: nn.Module, actor: nn.Module):
        super().__init__()
        self.normalizer, self.actor = normalizer, actor

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(self.normalizer(obs))


def metadata(task: str, task_cfg, git_commit: str) -> dict:
    """The contract values, read from the task exactly as it ran in simulation."""
    env = make(task, 1, cfg=task_cfg)
    try:
        return {"schema_version": SCHEMA_VERSION, "task": task, **env.deploy_contract(), "git_commit": git_commit}
    finally:
        env.close()


def write_onnx(model: nn.Module, num_obs: int, meta: dict, path: Path, doc: str) -> None:
    """`model` (obs [B, num_obs] -> actions) as ONNX opset 17 at `path`, with `meta` as its metadata_props."""
    import onnx

    from pg_robotics.deploy.contract import encode

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, num_obs),), str(path), input_names=["obs"], output_names=["actions"],
                          dynamic_axes={"obs": {0: "batch"}, "actions": {0: "batch"}}, opset_version=17, dynamo=False)
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in encode(meta).items():
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


def run_commit(run_dir: Path) -> str:
    """The git commit a run was trained at (from its config.yaml)."""
    return str(yaml.safe_load((Path(run_dir) / "config.yaml").read_text()).get("git_commit", "unknown"))


def publish(tmp_onnx: Path, out: Path, meta: dict) -> Path:
    """Write the sidecar YAML beside `tmp_onnx`, then move both into place by rename; returns the sidecar's path."""
    sidecar = out.with_suffix(".yaml")
    tmp_yaml = tmp_onnx.parent / sidecar.name
    tmp_yaml.write_text(yaml.safe_dump(meta, sort_keys=False))
    os.replace(tmp_yaml, sidecar)
    os.replace(tmp_onnx, out)
    return sidecar


def export(run_dir: Path, out: Path | None = None, checkpoint: Path | None = None) -> dict:
    from pg_robotics.deploy import Policy
    from pg_robotics.deploy.replay import replay
    from pg_robotics.evaluate import load_policy, record
    from pg_robotics.ppo import PPO

    run_dir = Path(run_dir)
    task, task_cfg, algo_cfg, _, state, ckpt = load_policy(run_dir, checkpoint)
    out = Path(out) if out else run_dir / "policy.onnx"
    git_commit = run_commit(run_dir)
    meta = metadata(task, task_cfg, git_commit)
    num_obs = sum(t["dim"] * t["history"] for t in meta["observation_terms"])
    num_critic_obs = state["algorithm"]["policy"]["critic.0.weight"].shape[1]
    ppo = PPO(algo_cfg, num_obs, num_critic_obs, len(meta["joint_names"]), 1)
    ppo.load_state_dict(state["algorithm"])
    model = DeterministicPolicy(ppo.obs_normalizer, ppo.policy.actor).eval()

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        tmp_onnx = Path(tmp) / out.name
        write_onnx(model, num_obs, meta, tmp_onnx, f"pg_robotics policy for {task} from {ckpt}")

        policy = Policy.load(tmp_onnx)  # validates the contract the way a robot will
        gen = torch.Generator().manual_seed(0)
        rec = record(run_dir, worlds_per_command=6, seconds=0.6, checkpoint=ckpt)  # 6 x 6 worlds x 30 steps
        recorded = torch.from_numpy(rec["obs"].reshape(-1, num_obs)[:1000]).float()
        random = torch.randn(1000, num_obs, generator=gen) * 3.0
        report = {"onnx": str(out), "checkpoint": str(ckpt), "num_obs": num_obs,
                  "num_actions": len(meta["joint_names"])}
        report.update(check_against_torch(model, policy, {"random": random, "recorded": recorded}, out))
        check = replay(policy, rec, shuffle_seed=0)
        report["replay_samples"] = check["samples"]
        report["replay_obs_max_abs_diff"] = check["obs_max_abs_diff"]
        report["replay_action_max_abs_diff"] = check["action_max_abs_diff"]
        if not check["action_max_abs_diff"] <= REPLAY_TOLERANCE:
            raise ExportError(f"export: the deploy runtime's actions on recorded sim states differ by "
                              f"{check['action_max_abs_diff']:.2e} (tolerance {REPLAY_TOLERANCE:g}); observation "
                              f"difference {check['obs_max_abs_diff']:.2e}; {out} not written")
        sidecar = publish(tmp_onnx, out, meta)
    report["sidecar"] = str(sidecar)
    return report
