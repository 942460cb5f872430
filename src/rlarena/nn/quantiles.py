"""The quantile regression loss of distributional critics (QR-DQN's and TQC's)."""

from __future__ import annotations

import torch


def quantile_huber_loss(quantiles: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[B]: mean over n, m, i of rho^1_{tau_m}(targets_i - quantiles_nm), quantiles [N, B, M] at
    tau_m = (m + 1/2) / M, targets [B, T]: the quantile Huber loss, kappa 1 (Dabney et al. 2018)."""
    m = quantiles.shape[-1]
    tau = (torch.arange(m, dtype=quantiles.dtype) + 0.5) / m
    u = targets[None, :, None, :] - quantiles[..., None]  # [N, B, M, T]
    huber = torch.where(u.abs() <= 1.0, 0.5 * u.pow(2), u.abs() - 0.5)  # kappa = 1
    rho = (tau[:, None] - (u < 0).to(u.dtype)).abs() * huber
    return rho.mean((0, 2, 3))
