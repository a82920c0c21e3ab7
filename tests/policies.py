"""A tiny trained-and-exported policy for the deploy and ROS tests, and a way to break its contract."""

import json
from pathlib import Path

import onnx

from pg_robotics.cli import main
from pg_robotics.deploy.contract import decode, encode
from pgr_cli import pgr

# a few seconds of training: small networks, few worlds
SMALL = ["--num-envs", "8", "--no-progress", "--set", "algorithm.num_steps_per_env=8",
         "--set", "algorithm.actor_hidden=[32,32]", "--set", "algorithm.critic_hidden=[16]"]


def train_and_export(run: Path) -> dict:
    assert main(["train", "quadruped-flat", "--max-iterations", "2", "--run-dir", str(run), *SMALL]) == 0
    result = pgr("export", str(run), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def rewrite_metadata(src: Path, dst: Path, change) -> Path:
    proto = onnx.load(str(src))
    meta = decode({p.key: p.value for p in proto.metadata_props})
    change(meta)
    del proto.metadata_props[:]
    for key, value in encode(meta).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(dst))
    return dst
