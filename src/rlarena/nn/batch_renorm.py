"""Batch Renormalization (Ioffe 2017, arXiv:1702.03275, Algorithm 1), the normalization CrossQ's actor
and critics use (Bhatt et al. 2024, sec. 3).

Over a batch x [..., B, F] (the batch on dim -2, so a stacked ensemble [K, B, F] keeps statistics per
member), with sigma = sqrt(var + eps):

    mu_B, var_B = mean and (biased) variance of x over B
    r = clip(sigma_B / sigma_run, 1/r_max, r_max),  d = clip((mu_B - mu_run) / sigma_run, -d_max, d_max)
                                                                   (both without gradient)
    x_hat = (x - mu_B) / sigma_B * r + d,       y = weight * x_hat + bias
    mu_run += momentum (mu_B - mu_run),         var_run += momentum (var_B - var_run)

For the first `warmup_steps` batches r = 1 and d = 0: plain batch normalization. Outside
`batch_statistics(...)` a layer normalizes with its running statistics and leaves them alone
(inference, acting, export). The running statistics are buffers: a policy's state and checkpoints keep
them, and load_state_dict copies into them in place, so the numpy twin's views stay live.

Defaults are SBX's and sb3-contrib's (BatchRenorm, used by their CrossQ): momentum 0.01 (SBX writes it
as 0.99, the weight of the old value), eps 1e-3, 100_000 warm-up batches, r_max 3 and d_max 5 from the
end of the warm-up on. Ioffe relaxes r_max from 1 and d_max from 0 gradually instead; both references
switch at once, and so do we.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class RenormSpec:
    """A network's batch renormalization settings (see the module docstring for their sources)."""

    momentum: float = 0.01
    eps: float = 1e-3
    warmup_steps: int = 100_000
    r_max: float = 3.0
    d_max: float = 5.0


class BatchRenorm(nn.Module):
    """Batch renormalization of F features over dim -2; `members`: a leading ensemble dimension K
    (statistics and affine parameters per member), 0 for none."""

    running_mean: torch.Tensor
    running_var: torch.Tensor
    steps: torch.Tensor

    def __init__(self, num_features: int, spec: RenormSpec, members: int = 0):
        super().__init__()
        self.spec = spec
        shape = (members, 1, num_features) if members else (1, num_features)
        self.weight = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))
        self.register_buffer("running_mean", torch.zeros(shape))
        self.register_buffer("running_var", torch.ones(shape))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))  # batches normalized in training
        self.train(False)  # running statistics, unless inside batch_statistics(...)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.spec
        if not self.training:
            x_hat = (x - self.running_mean) * torch.rsqrt(self.running_var + s.eps)
            return x_hat * self.weight + self.bias
        weight, bias = self.weight, self.bias
        if int(self.steps) >= s.warmup_steps:
            with torch.no_grad():
                var, mean = torch.var_mean(x, -2, keepdim=True, correction=0)  # biased, as Ioffe and SBX
                sigma_run = torch.sqrt(self.running_var + s.eps)
                r = (torch.sqrt(var + s.eps) / sigma_run).clamp(1 / s.r_max, s.r_max)
                d = ((mean - self.running_mean) / sigma_run).clamp(-s.d_max, s.d_max)
            # (x_hat r + d) w + b = x_hat (r w) + (d w + b): batch norm with those as its affine
            weight, bias = weight * r, torch.addcmul(bias, weight, d)
        y, mean, var = _batch_norm(x, weight, bias, s.eps)
        with torch.no_grad():
            self.running_mean.lerp_(mean, s.momentum)
            self.running_var.lerp_(var, s.momentum)
            self.steps += 1
        return y

    def numpy(self) -> Callable[[np.ndarray], np.ndarray]:
        """The inference form in numpy, over zero-copy views of the live statistics and parameters."""
        mean, var = self.running_mean.numpy(), self.running_var.numpy()
        weight, bias = self.weight.detach().numpy(), self.bias.detach().numpy()
        eps = self.spec.eps

        def forward(x: np.ndarray) -> np.ndarray:
            return (x - mean) * (weight / np.sqrt(var + eps)) + bias

        return forward


def _batch_norm(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x - mu_B) / sqrt(var_B + eps) * weight + bias over dim -2 of x [B, F] (weight [1, F]) or [K, B, F]
    (weight [K, 1, F]: statistics per member), and mu_B, var_B (biased) shaped as weight, without
    gradient. One fused kernel each way (torch's batch norm, with the gradient through the batch's
    statistics), where the same written out in ~10 tensor ops costs about 3x as much on a CPU."""
    members = x.dim() == 3
    flat = x.transpose(0, 1).reshape(x.shape[1], -1) if members else x  # members as channels: [B, K * F]
    y, mean, invstd = torch.native_batch_norm(flat, weight.reshape(-1), bias.reshape(-1), None, None, True, 0.0, eps)
    if members:
        y = y.view(x.shape[1], x.shape[0], x.shape[2]).transpose(0, 1)
    with torch.no_grad():
        var = invstd.pow(-2) - eps
    return y, mean.view(weight.shape), var.view(weight.shape)


@contextmanager
def batch_statistics(module: nn.Module) -> Iterator[None]:
    """Inside, `module`'s BatchRenorm layers normalize with the batch's statistics and update their
    running ones (a training forward pass); afterwards they use the running statistics again."""
    layers = [m for m in module.modules() if isinstance(m, BatchRenorm)]
    for layer in layers:
        layer.train(True)
    try:
        yield
    finally:
        for layer in layers:
            layer.train(False)
