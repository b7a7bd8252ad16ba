"""Training in several processes: the process group ``torchrun`` asks for, and the messages that
keep the processes in step.

``torchrun --nproc_per_node N -m seq2seq.train ...`` (or ``python -m torch.distributed.run``)
starts N copies of a ``train`` command with ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT`` in their environment, on one machine or several
(``--nnodes``). :func:`start_world` reads them, joins the process group (NCCL on GPUs, one GPU per
local rank; gloo on CPUs) and returns the :class:`World` the trainer works in. Without torchrun
it returns the world of one process: no process group and no message, a plain run.

What the processes must agree on goes through the world: the sums of an update's statistics
(the count the loss is normalised by, a non-finite loss, a signal, rank 0's clock), rank 0's
validation results, each process's state gathered into rank 0's checkpoint. These messages
travel on a gloo group even when the gradients go through NCCL, so the code that decides runs,
and is tested, the same way on CPUs as on GPUs.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from seq2seq.core.hardware import resolve_device

TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")

# Rank 0 validates (decoding a validation set can take minutes) while the others wait for its
# results: a generous limit, so that only a real hang ends in a timeout.
WAIT_LIMIT = timedelta(minutes=60)


@dataclass
class World:
    """The processes of a run and this one's place among them. The default is one process."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None  # "gloo" or "nccl"; None: one process, no process group
    control: object = None  # the gloo group of the messages (None: the default group)

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes the run directory and validates."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None

    def sum(self, values: Sequence[float]) -> list[float]:
        """``values`` summed element-wise over the processes (float64, so counts stay exact)."""
        if not self.distributed:
            return [float(v) for v in values]
        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64)
        dist.all_reduce(tensor, group=self.control)
        return tensor.tolist()

    def extremes(self, value: float) -> tuple[float, float]:
        """The smallest and the largest ``value`` over the processes."""
        if not self.distributed:
            return value, value
        tensor = torch.tensor([-value, value], dtype=torch.float64)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=self.control)
        return -tensor[0].item(), tensor[1].item()

    def broadcast(self, value):
        """Rank 0's ``value`` (plain data), on every process."""
        if not self.distributed:
            return value
        holder = [value if self.is_main else None]
        dist.broadcast_object_list(holder, src=0, group=self.control)
        return holder[0]

    def gather(self, value) -> list | None:
        """Every process's ``value`` (plain data and CPU tensors) in rank order, on rank 0;
        None on the others."""
        if not self.distributed:
            return [value]
        gathered = [None] * self.size if self.is_main else None
        dist.gather_object(value, gathered, dst=0, group=self.control)
        return gathered

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier(group=self.control)

    def in_turn(self, make: Callable):
        """``make()`` on rank 0 first, then on the others: rank 0 writes what the run
        directory is to hold (a tokenizer model, ...) and the others read it back."""
        if self.is_main:
            made = make()
            self.barrier()
            return made
        self.barrier()
        return make()

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def launched_by_torchrun(environment=None) -> bool:
    """Whether this process was started by torchrun (its variables are all set)."""
    environment = os.environ if environment is None else environment
    return all(name in environment for name in TORCHRUN_VARIABLES)


def start_world(device_name: str) -> World:
    """The world of this process: joins torchrun's process group when torchrun started it
    (NCCL on the GPU of its local rank, or gloo on CPUs), else one process on ``device_name``
    (``auto``, ``cpu``, ``cuda``)."""
    if not launched_by_torchrun():
        return World(device=resolve_device(device_name))
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    device = resolve_device(device_name)
    if device.type == "cuda":
        if device.index is not None:
            raise ValueError(
                f"device {device_name}: under torchrun each process takes the GPU of its local "
                "rank; use --device cuda (or auto)"
            )
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise ValueError(
                f"local rank {local_rank} has no GPU of its own: torch sees {count} on this "
                f"machine; start at most {count} processes per machine (--nproc_per_node)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=WAIT_LIMIT)
    control = dist.new_group(backend="gloo", timeout=WAIT_LIMIT) if backend == "nccl" else None
    return World(rank, size, local_rank, device, backend, control)


def seed_process(seed: int, rank: int, step: int = 0) -> None:
    """Seed python's, numpy's and torch's generators from (``seed``, ``rank``, ``step``): each
    process of a run draws its own dropout noise, and a run resumed on another number of
    processes (whose saved generator states do not fit) restarts its noise by this rule."""
    derived = int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])
    random.seed(derived)
    np.random.seed(derived)
    torch.manual_seed(derived)
