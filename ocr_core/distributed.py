"""Several processes, one run: the torchrun environment, process groups and the few collectives we need.

``torchrun`` starts one process per GPU (or per CPU slot) and sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; PlateLens reads them here and never launches processes itself. NCCL joins CUDA
processes, gloo joins CPU ones (that is how the tests run two processes on a laptop). Without torchrun
every function here is a no-op for a world of one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist

from ocr_core.device import pick_device
from ocr_core.errors import InputError


@dataclass(frozen=True)
class World:
    """This process's place among the processes of a run."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """More than one process takes part."""
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes the run folder or the merged output."""
        return self.rank == 0


def world_from_env() -> World:
    """The world torchrun describes in the environment (a world of one without it).

    Raises:
        InputError: the variables are present but not consistent.
    """
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise InputError("WORLD_SIZE, RANK and LOCAL_RANK must be whole numbers; start with torchrun") from None
    if size < 1 or not 0 <= rank < size or local < 0:
        raise InputError(f"RANK {rank} does not fit WORLD_SIZE {size}; start the processes with torchrun")
    return World(rank, size, local)


def join(world: World, device: str) -> torch.device:
    """This process's device, after joining the process group when there are several processes.

    ``device`` is what the user asked for (``auto``, ``cpu``, ``cuda``, ``mps``); under torchrun each
    CUDA process takes the GPU of its ``LOCAL_RANK``.
    """
    chosen = pick_device(device)
    if not world.enabled:
        return chosen
    if chosen.type == "cuda":
        if world.local_rank >= torch.cuda.device_count():
            raise InputError(f"LOCAL_RANK {world.local_rank} has no GPU ({torch.cuda.device_count()} visible); "
                             "start at most one process per GPU (--nproc-per-node)")
        chosen = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(chosen)
    elif chosen.type == "mps":
        chosen = torch.device("cpu")  # one MPS device cannot be shared by several processes
    if not torch_dist.is_initialized():
        torch_dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
    return chosen


def leave() -> None:
    """Leave the process group (if this process joined one)."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def any_rank(flag: bool, world: World, device: torch.device) -> bool:
    """Whether ``flag`` is set on any process (every process must call this at the same point)."""
    if not world.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    torch_dist.all_reduce(value, op=torch_dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def sum_over_ranks(values: list[float], world: World, device: torch.device) -> list[float]:
    """The element-wise sum of ``values`` over every process."""
    if not world.enabled:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.SUM)
    return tensor.tolist()


def barrier(world: World) -> None:
    """Wait until every process gets here."""
    if world.enabled:
        torch_dist.barrier()


def shard(n: int, world: World) -> range:
    """This process's contiguous share of ``n`` rows (sizes differ by at most one, in rank order)."""
    per, extra = divmod(n, world.size)
    start = world.rank * per + min(world.rank, extra)
    return range(start, start + per + (1 if world.rank < extra else 0))
