"""The torch module that `export_onnx` traces: a trainable policy's preprocessing and model in one graph.

Imported only by the export function (it imports torch); the exported file needs onnxruntime alone.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlarena.errors import ConfigError
from rlarena.nn.catalog import ObsEncoder
from rlarena.policies.policy import Recurrent, without_mask
from rlarena.policies.torch_policy import TrainablePolicy


class PolicyGraph(nn.Module):
    """Observation (+ action_mask) (+ state) -> the policy's export outputs: (logits masked | Box mean,
    value) for an actor-critic, (Q masked, max Q) for a Q-network, and the next state for a recurrent
    policy (export_outputs_with_state).

    The observation is what the policy's `flatten` reads: the env's raw observation for a flat vector
    (Box, Discrete, MultiDiscrete; one-hot here), or the packed row (`policy.obs_layout.pack`) for
    every other space. Mirrors TrainablePolicy.flatten and .normalize after that point, so a consumer
    feeds the env's observations as they come (packed, where the policy packs them).
    """

    # buffers (traced into the graph as constants)
    eye: torch.Tensor | None
    offsets: torch.Tensor
    mean: torch.Tensor | None
    scale: torch.Tensor | None

    def __init__(self, policy: TrainablePolicy):
        super().__init__()
        self.model, self.masked = policy.model, policy.masked  # the model registered here: its weights are traced
        self.recurrent = isinstance(policy, Recurrent)
        self.state_size = policy.state_size if isinstance(policy, Recurrent) else 0
        if self.recurrent:
            with_state = getattr(policy, "export_outputs_with_state", None)
            if with_state is None:
                raise ConfigError(
                    f"{type(policy).__name__} has memory but no export_outputs_with_state(x, action_mask, state): "
                    f"its graph cannot carry the state, so it cannot be exported."
                )
            self.outputs_with_state = with_state
        else:
            self.outputs = policy.export_outputs
        # a compound action's mask covers its categorical logits only, which come first; the Bernoulli
        # logits after them are always legal (rlarena.nn.distributions.masked)
        layout = policy.action_layout
        self.mask_pad = layout.input_dim - layout.logits if policy.masked and layout is not None else 0
        self.layout = policy.obs_layout
        inner = without_mask(policy.observation_space)
        if self.layout is not None:
            self.kind = "packed"
            # a policy whose model takes flat features (SAC's, TD3's) unpacks the row in `flatten`
            # (ObsLayout.numpy_features: indices one-hot, the rest as they are); the encoder without
            # images computes the same in torch
            self.features = ObsEncoder(self.layout) if policy.vector_features is not None else None
        else:
            self.kind = type(inner).__name__  # Box, Discrete or MultiDiscrete (flat_obs_dim allows no other)
            self.features = None
        # one-hot as a row lookup in an identity matrix: a Gather in ONNX
        self.register_buffer("eye", torch.eye(policy.obs_dim) if self.kind in ("Discrete", "MultiDiscrete") else None)
        offsets = (
            np.concatenate([[0], np.cumsum(inner.nvec)[:-1]])
            if self.kind == "MultiDiscrete" and isinstance(inner, gym.spaces.MultiDiscrete)
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
        self._inner = inner
        self._mask_size = policy.mask_size

    def example_inputs(self, batch: int) -> dict[str, torch.Tensor]:
        """forward's inputs for a batch of `batch` (zeros: a valid index of every one-hot part, no
        legal action masked), by forward's parameter names."""
        shape = tuple(self._inner.shape or ())
        if self.layout is not None:
            obs = torch.from_numpy(np.zeros((batch, self.layout.dim), self.layout.dtype))
        else:
            obs = torch.zeros((batch, *shape), dtype=torch.float32 if self.kind == "Box" else torch.int64)
        inputs = {"obs": obs}
        if self.masked:
            assert self._mask_size is not None  # a masked policy's
            inputs["action_mask"] = torch.ones(batch, self._mask_size, dtype=torch.float32)
        if self.recurrent:
            inputs["state_in"] = torch.zeros(batch, self.state_size, dtype=torch.float32)
        return inputs

    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        if self.eye is not None:
            if self.kind == "Discrete":  # int64 [B] -> one-hot [B, n]
                return self.eye[obs]
            # MultiDiscrete: int64 [B, ...] -> one one-hot block per component, concatenated
            return self.eye[obs.flatten(1) + self.offsets].sum(1)
        # the packed row goes to the model as it is (its first layer unpacks it), in its dtype
        x = obs if self.kind == "packed" else obs.flatten(1)
        if self.features is not None:
            x = self.features(x)
        if self.mean is not None and self.scale is not None and self.clip is not None:
            x = torch.clamp((x.float() - self.mean) * self.scale, -self.clip, self.clip)
        return x

    def forward(
        self, obs: torch.Tensor, action_mask: torch.Tensor | None = None, state_in: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        x = self.preprocess(obs)
        if action_mask is not None and self.mask_pad:
            action_mask = torch.cat([action_mask, torch.ones_like(action_mask[:, :1]).expand(-1, self.mask_pad)], -1)
        if state_in is not None:
            logits, value, state_out = self.outputs_with_state(x, action_mask, state_in)
            return logits, value, state_out
        logits, value = self.outputs(x, action_mask)
        return logits, value
