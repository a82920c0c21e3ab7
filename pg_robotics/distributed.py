"""Data-parallel training over torch.distributed, as rsl_rl does it: one process per GPU (or per CPU share), each
stepping its own worlds with its own seed. Parameters are broadcast from rank 0 at start; gradients, the KL of the
adaptive learning rate and the observation normalizer's batch moments are all-reduced, so every rank holds the
same parameters after every update (bit-identical: an all-reduce gives every rank the same sum). Rank 0 alone logs
and writes checkpoints; every rank keeps its own worlds' state for an exact resume.

Started by `torchrun` (it sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT): NCCL on GPUs, gloo on CPUs.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from pg_robotics.envs.config import ConfigError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    backend: str | None = None  # the process group's ("nccl", "gloo"); None: a plain process, no collectives

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Collectives run: the process was started by torchrun, whatever the world size (a world of one under
        torchrun takes the same path as many, which is what a one-GPU NCCL smoke test is for)."""
        return self.backend is not None


SINGLE = World()
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def init(device: str) -> World:
    """Join the process group torchrun describes in the environment; a plain process is a world of one."""
    if not all(key in os.environ for key in TORCHRUN_ENV):
        return SINGLE
    local_rank, local_size = int(os.environ.get("LOCAL_RANK", "0")), int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    cuda = device.startswith("cuda")
    if cuda:
        if device != "cuda" and local_size > 1:
            raise ConfigError(f"runner.device: {device!r} would put every rank on one GPU; give 'cuda' and each "
                              "rank takes the GPU of its LOCAL_RANK")
        torch.cuda.set_device(local_rank)  # before the process group, so NCCL binds each rank to its own GPU
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), local_rank, local_size, dist.get_backend())


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast_module(module: torch.nn.Module) -> None:
    """Every parameter and buffer of `module` from rank 0."""
    if dist.is_initialized():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def broadcast_object(obj):
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_mean_gradients(parameters) -> None:
    """Average the gradients over ranks in one flat all-reduce."""
    if not dist.is_initialized():
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def all_reduce(tensor: torch.Tensor, op=None) -> torch.Tensor:
    """In place over ranks (sum by default); unchanged in a world of one."""
    if dist.is_initialized():
        dist.all_reduce(tensor, op=op or dist.ReduceOp.SUM)
    return tensor


def digest(module: torch.nn.Module) -> str:
    """SHA-256 of every parameter's bytes: equal digests on every rank mean bit-identical parameters."""
    h = hashlib.sha256()
    for tensor in module.state_dict().values():
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def gather_objects(obj) -> list:
    if not dist.is_initialized():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
