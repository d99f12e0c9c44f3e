"""What the training loop shares between processes when it runs under DDP.

One quadlit iteration takes many optimizer steps (PPO epochs x minibatches, world-model
steps) on different parameter subsets inside a single ``training_step``. DDP's reducer
expects one backward over every parameter per forward, so quadlit turns it off and
averages gradients itself after each backward (``average_gradients``). Every decision
that changes parameters (skipping a non-finite update, the KL-adaptive learning rate) is
taken on values agreed by all ranks, so parameters stay bitwise identical across ranks.

Each function is the identity / a no-op in a single process.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist


def active() -> bool:
    """True when running in an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _comm_device() -> torch.device:
    """Where collective tensors must live: the current GPU for NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _reduce(values: torch.Tensor, op) -> torch.Tensor:
    out = values.detach().to(_comm_device(), copy=True)
    dist.all_reduce(out, op=op)
    return out.to(values.device)


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Replace each parameter's gradient by its mean over all ranks (one flat all-reduce).
    A parameter without a gradient on this rank contributes zeros."""
    if not active():
        return
    params = [p for p in params if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    offset = 0
    for p in params:  # views into the reduced buffer: no copy
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p)
        offset += n


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any rank."""
    if not active():
        return bool(flag)
    return bool(_reduce(torch.tensor([1.0 if flag else 0.0]), dist.ReduceOp.MAX).item() > 0)


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """Elementwise mean of ``values`` over ranks (a new tensor)."""
    if not active():
        return values.clone()
    return _reduce(values, dist.ReduceOp.SUM) / dist.get_world_size()


def mean_scalar(value: float) -> float:
    """The mean of a number over ranks (the number itself in a single process)."""
    if not active():
        return float(value)
    return float(_reduce(torch.tensor([float(value)], dtype=torch.float64), dist.ReduceOp.SUM)) / dist.get_world_size()


def sum_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """Elementwise sum of ``values`` over ranks (a new tensor)."""
    if not active():
        return values.clone()
    return _reduce(values, dist.ReduceOp.SUM)


def min_over_ranks(value: int) -> int:
    """The smallest of an integer over ranks."""
    if not active():
        return int(value)
    return int(_reduce(torch.tensor([int(value)], dtype=torch.int64), dist.ReduceOp.MIN).item())


def gather(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (a one-element list in a single process)."""
    if not active():
        return [obj]
    # serialised with torch.save: all_gather_object's own pickling cannot rebuild tensors
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, buffer.getvalue())
    return [torch.load(io.BytesIO(b), weights_only=False) for b in out]
