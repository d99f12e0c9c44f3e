"""Running observation normalisation, kept as module buffers so it lands in every checkpoint."""

from __future__ import annotations

import torch
from torch import nn

from quadlit.training import distributed


class RunningNorm(nn.Module):
    """Normalise observations by a running mean and variance (parallel Welford update).

    Args:
        dim: observation length.
        clip: normalised values are clipped to [-clip, clip].
        eps: variance floor.
        enabled: when False, ``forward`` is the identity (and ``update`` does nothing).
    """

    def __init__(self, dim: int, clip: float = 10.0, eps: float = 1e-8, enabled: bool = True) -> None:
        super().__init__()
        self.clip = float(clip)
        self.eps = float(eps)
        self.enabled = bool(enabled)
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(0.0, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor, across_ranks: bool = False) -> None:
        """Fold a batch into the statistics. Shape: (..., dim). With ``across_ranks`` under DDP
        the batch is the union of every rank's ``x``, so all ranks keep the same statistics."""
        if not self.enabled:
            return
        x = x.reshape(-1, x.shape[-1]).to(torch.float64)
        if across_ranks and distributed.active():
            sums = distributed.sum_over_ranks(torch.cat([x.sum(0), x.new_tensor([x.shape[0]])]))
            n = int(sums[-1].item())
            if n == 0:
                return
            batch_mean = sums[:-1] / n
            batch_var = distributed.sum_over_ranks((x - batch_mean).square().sum(0)) / n
        else:
            n = x.shape[0]
            if n == 0:
                return
            batch_mean = x.mean(0)
            batch_var = x.var(0, unbiased=False)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * (n / total)
        self.var.copy_((self.var * self.count + batch_var * n + delta.square() * self.count * n / total) / total)
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: (..., dim) -> (..., dim), float32."""
        if not self.enabled or self.count.item() == 0:
            return x.float()
        mean = self.mean.to(torch.float32)
        std = (self.var + self.eps).sqrt().to(torch.float32)
        return ((x.float() - mean) / std).clamp(-self.clip, self.clip)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of ``forward`` (up to its clipping): normalised (..., dim) -> raw units, float64."""
        if not self.enabled or self.count.item() == 0:
            return x.double()
        return x.double() * (self.var + self.eps).sqrt() + self.mean
