"""The torch module that `export_onnx` traces: a trainable policy's preprocessing and model in one graph.

Imported only by the export function (it imports torch); the exported file needs onnxruntime alone.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlarena.policies.torch_policy import TrainablePolicy


class PolicyGraph(nn.Module):
    """Raw env observation (+ action_mask) -> the policy's export_outputs: (logits masked | Box mean,
    value) for an actor-critic, (Q masked, max Q) for a Q-network.

    Mirrors TrainablePolicy.flatten and .normalize, so a consumer feeds the env's observations as they come.
    """

    def __init__(self, policy: TrainablePolicy):
        super().__init__()
        self.model, self.masked = policy.model, policy.masked  # the model registered here: its weights are traced
        self.outputs = policy.export_outputs
        inner = policy.observation_space["observation"] if policy.masked else policy.observation_space
        self.kind = type(inner).__name__  # Box, Discrete or MultiDiscrete (flat_obs_dim allows no other)
        # one-hot as a row lookup in an identity matrix: a Gather in ONNX
        self.register_buffer("eye", torch.eye(policy.obs_dim) if self.kind != "Box" else None)
        offsets = (
            np.concatenate([[0], np.cumsum(inner.nvec)[:-1]])
            if isinstance(inner, gym.spaces.MultiDiscrete)
            else np.zeros(0)
        )
        self.register_buffer("offsets", torch.as_tensor(offsets, dtype=torch.int64))
        filt = policy.obs_filter
        # the MeanStdFilter's statistics are frozen into the graph as constants (float32; the numpy
        # filter computes in float64, a difference of ~1e-7 relative)
        self.clip = float(filt.clip) if filt is not None else None
        self.register_buffer("mean", torch.as_tensor(filt.mean, dtype=torch.float32) if filt is not None else None)
        self.register_buffer(
            "scale",
            torch.as_tensor(1.0 / np.sqrt(filt.var + filt.epsilon), dtype=torch.float32) if filt is not None else None,
        )

    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        if self.kind == "Discrete":  # int64 [B] -> one-hot [B, n]
            return self.eye[obs]
        if self.kind == "MultiDiscrete":  # int64 [B, ...] -> one one-hot block per component, concatenated
            return self.eye[obs.flatten(1) + self.offsets].sum(1)
        x = obs.flatten(1)
        if self.mean is not None:
            x = torch.clamp((x - self.mean) * self.scale, -self.clip, self.clip)
        return x

    def forward(self, obs: torch.Tensor, action_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.outputs(self.preprocess(obs), action_mask)
