"""Data-parallel PPO over torch.distributed (gloo on this CPU machine): ranks stay bit-identical, env steps add
up over ranks, every rank keeps its own worlds, resume works, and the normalizer merges the ranks' batches."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pg_robotics.networks import EmpiricalNormalizer
from pgr_cli import pgr
from policies import SMALL

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="no gloo")

ENVS, STEPS = 8, 8  # per rank, from SMALL


def test_two_ranks_train_in_lockstep_and_resume(tmp_path):
    run = tmp_path / "run"
    result = pgr("train", "quadruped-flat", "--nproc", "2", "--max-iterations", "3", "--run-dir", str(run), *SMALL,
                 "--set", "runner.save_interval=1")
    assert result.returncode == 0, result.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and "world_size: 2" in (run / "config.yaml").read_text()
    assert summary["total_env_steps"] == 3 * ENVS * STEPS * 2  # the sum over ranks
    digests = summary["rank_param_digests"]
    assert len(digests) == 2 and digests[0] == digests[1] and summary["ranks_in_sync"]
    # one checkpoint (rank 0), and each other rank's own worlds beside it: different seeds, different worlds
    main = torch.load(run / "checkpoints/model_3.pt", weights_only=True)
    other = torch.load(run / "checkpoints/rank_1/model_3.pt", weights_only=True)
    assert "algorithm" in main and "algorithm" not in other
    assert not torch.equal(main["env"]["sim"]["state"], other["env"]["sim"]["state"])

    result = pgr("train", "quadruped-flat", "--nproc", "2", "--resume", str(run), "--max-iterations", "5",
                 "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stderr and "iteration 3" in result.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["iteration"] == 5 and summary["total_env_steps"] == 5 * ENVS * STEPS * 2
    assert summary["ranks_in_sync"]


def test_torchrun_with_one_rank_takes_the_collective_path(tmp_path):
    """`torchrun --nproc_per_node=1` joins a process group of one (gloo here; NCCL with --device cuda, the GPU smoke
    test) and runs the same collectives as many ranks; a plain process runs none."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m",
           "pg_robotics.train", "quadruped-flat", "--max-iterations", "2", "--run-dir", str(run), *SMALL]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 1 and summary["dist_backend"] == "gloo"
    assert summary["total_env_steps"] == 2 * ENVS * STEPS and len(summary["rank_param_digests"]) == 1
    assert summary["ranks_in_sync"] and not (run / "checkpoints" / "rank_1").exists()

    plain = tmp_path / "plain"
    result = pgr("train", "quadruped-flat", "--max-iterations", "1", "--run-dir", str(plain), *SMALL)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((plain / "summary.json").read_text())
    assert summary["world_size"] == 1 and "dist_backend" not in summary


def _normalizer_rank(rank: int, port: int, batches, out) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    norm = EmpiricalNormalizer(3, distributed=True)
    for batch in batches[rank]:
        norm.update(batch)
    out[rank] = torch.stack([norm.mean, norm.var])
    dist.destroy_process_group()


def test_the_normalizer_merges_the_batches_of_all_ranks():
    gen = torch.Generator().manual_seed(0)
    # two ranks, three updates each, different batch sizes and distributions
    batches = [[torch.randn(n, 3, generator=gen) * s + s for n, s in ((5, 1.0), (7, 2.0), (3, 0.5))],
               [torch.randn(n, 3, generator=gen) * s - s for n, s in ((9, 3.0), (4, 1.0), (6, 2.0))]]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = mp.Manager().dict()
    mp.spawn(_normalizer_rank, args=(port, batches, out), nprocs=2, join=True)
    single = EmpiricalNormalizer(3)
    for a, b in zip(*batches):
        single.update(torch.cat([a, b]))  # what one process would see
    for rank in (0, 1):
        assert torch.allclose(out[rank][0], single.mean, atol=1e-5)
        assert torch.allclose(out[rank][1], single.var, atol=1e-5)
    assert torch.equal(out[0], out[1])


def test_nproc_must_be_positive():
    result = pgr("train", "quadruped-flat", "--nproc", "0")
    assert result.returncode == 2 and "--nproc" in result.stderr
    assert os.environ.get("WORLD_SIZE") is None


def test_an_explicit_gpu_for_several_local_ranks_is_refused(monkeypatch):
    """`--device cuda:0` under torchrun with 2 ranks per node would stack every rank on GPU 0."""
    from pg_robotics import distributed
    from pg_robotics.envs import ConfigError

    for key, value in {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29511"}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match="runner.device: 'cuda:0' would put every rank on one GPU"):
        distributed.init("cuda:0")
    assert not dist.is_initialized()
