"""All of a model's parameters (and their gradients) as views into one flat buffer.

Zeroing, clipping and the Adam step then act on one tensor each instead of one per layer: on CPU,
where each torch call costs microseconds of dispatch, that takes ~150 µs off every PPO gradient step
of a 64x64 MLP (benchmarks/). The model stays an ordinary nn.Module: its parameters are still
nn.Parameters (load_state_dict copies into the views), only their storage is shared.
"""

from __future__ import annotations

import torch
from torch import nn


class FlatParameters:
    def __init__(self, module: nn.Module):
        params = [p for p in module.parameters() if p.requires_grad]
        total = sum(p.numel() for p in params)
        self.param = nn.Parameter(torch.zeros(total))  # what the optimizer sees
        self.param.grad = torch.zeros(total)
        offset = 0
        with torch.no_grad():
            for p in params:
                n = p.numel()
                self.param[offset:offset + n].copy_(p.reshape(-1))
                p.data = self.param.data[offset:offset + n].view_as(p)
                # autograd accumulates into an existing .grad in place, so the views stay live
                p.grad = self.param.grad[offset:offset + n].view_as(p)
                offset += n

    @property
    def grad(self) -> torch.Tensor:
        assert self.param.grad is not None
        return self.param.grad

    def zero_grad(self) -> None:
        self.grad.zero_()

    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """Scale the gradient to at most `max_norm` (global L2 norm, as torch's clip_grad_norm_)."""
        norm = torch.linalg.vector_norm(self.grad)
        self.grad.mul_((max_norm / (norm + 1e-6)).clamp_(max=1.0))
        return norm
