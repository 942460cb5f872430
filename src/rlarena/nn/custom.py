"""Your own network: `model={"custom_model": MyModel}` (a class, or a name registered with
`ModelCatalog.register_custom_model(name, MyModel)`), with `custom_model_config` as its keyword options.

The protocol is RLlib's ModelV2, so RLlib's custom models run as written:

    class MyModel(TorchModelV2, nn.Module):
        def __init__(self, obs_space, action_space, num_outputs, model_config, name, **custom_model_config): ...
        def forward(self, input_dict, state, seq_lens):   # -> (outputs [B, num_outputs], state)
        def value_function(self):                          # -> values [B] of the last forward

`input_dict["obs"]` is the observation in the env's structure, as float32 tensors with a batch
axis: a Dict as a dict (its "action_mask" included), a Tuple as a tuple, a Box in its shape (a uint8
frame unscaled), a Discrete or MultiDiscrete one-hot, a MultiBinary as 0/1; `input_dict["obs_flat"]`
is all of it flattened into [B, n]. `num_outputs` is what the action distribution reads: the logits
of a Discrete (n) or of each MultiDiscrete part (sum of nvec), the means of a Box (its size: the
log-stds are a parameter of the policy, not outputs of the network). Whatever the model returns for
illegal actions, the policy masks them again. The subclass need not be a TorchModelV2: any
nn.Module with that __init__, forward and value_function will do. A model that keeps its own state
(get_initial_state() not empty) is refused for now: memory comes from rlarena's own networks
(use_lstm, use_gru, use_attention).

Loading a checkpoint never imports the class it names unless the user trusted it: a registered name
resolves only to what this process registered; a class only as rlarena.refs allows.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from rlarena.envs.action_layout import nest
from rlarena.envs.obs_layout import ObsLayout, _path
from rlarena.errors import ConfigError
from rlarena.nn.models import ACTIVATIONS

FLOAT_MIN = float(torch.finfo(torch.float32).min)  # RLlib's torch_utils.FLOAT_MIN
FLOAT_MAX = float(torch.finfo(torch.float32).max)

CUSTOM_MODELS: dict[str, type] = {}  # name -> class, registered in this process only


class ModelCatalog:
    """RLlib's ModelCatalog: the names `model={"custom_model": NAME}` may use."""

    @staticmethod
    def register_custom_model(model_name: str, model_class: type) -> None:
        if not isinstance(model_name, str) or not model_name:
            raise ConfigError(f"register_custom_model: the name must be a non-empty string, got {model_name!r}.")
        if not isinstance(model_class, type):
            raise ConfigError(f"register_custom_model({model_name!r}, ...): expected a class, got {model_class!r}.")
        CUSTOM_MODELS[model_name] = model_class


def custom_model_class(value: Any) -> type:
    """The class `model["custom_model"]` names (a class, or a registered name)."""
    if isinstance(value, type):
        return value
    if isinstance(value, str):
        if value not in CUSTOM_MODELS:
            known = f" Registered: {', '.join(sorted(CUSTOM_MODELS))}." if CUSTOM_MODELS else ""
            raise ConfigError(
                f"model.custom_model={value!r} is not a registered model: call "
                f"ModelCatalog.register_custom_model({value!r}, YourModelClass) first, or pass the class.{known}"
            )
        return CUSTOM_MODELS[value]
    raise ConfigError(f"model.custom_model={value!r}: expected a model class or a registered name.")


class TorchModelV2:
    """RLlib's TorchModelV2 base: keeps the spaces and options; `model(input_dict, state, seq_lens)`
    calls forward (an input_dict may also be the observation tensor alone)."""

    def __init__(
        self,
        obs_space: gym.Space,
        action_space: gym.Space,
        num_outputs: int,
        model_config: dict,
        name: str,
        **kwargs: Any,
    ):
        self.obs_space, self.action_space = obs_space, action_space
        self.num_outputs, self.model_config, self.name = num_outputs, model_config, name

    def __call__(self, input_dict: Any, state: Any = None, seq_lens: Any = None) -> Any:
        if not isinstance(input_dict, dict):
            input_dict = {"obs": input_dict}
        if "obs_flat" not in input_dict:
            input_dict = {**input_dict, "obs_flat": flatten_tensors(input_dict["obs"])}
        return self.forward(input_dict, state if state is not None else [], seq_lens)  # type: ignore[attr-defined]

    def get_initial_state(self) -> list:
        return []

    def value_function(self) -> torch.Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} must define value_function() (values [B] of the last forward)."
        )


def flatten_tensors(obs: Any) -> torch.Tensor:
    """A structure of [B, ...] tensors as one [B, n] float tensor (dict values in order)."""
    if isinstance(obs, dict):
        return torch.cat([flatten_tensors(v) for v in obs.values()], -1)
    if isinstance(obs, tuple | list):
        return torch.cat([flatten_tensors(v) for v in obs], -1)
    t = torch.as_tensor(obs)
    return t.reshape(t.shape[0], -1).float()


class FullyConnectedNetwork(TorchModelV2, nn.Module):
    """RLlib's TorchFC: an MLP over the flattened observation (fcnet_hiddens, fcnet_activation), a
    logits layer of num_outputs, and a value branch (its own MLP unless vf_share_layers)."""

    def __init__(
        self, obs_space: gym.Space, action_space: gym.Space, num_outputs: int, model_config: dict, name: str, **kwargs
    ):
        TorchModelV2.__init__(self, obs_space, action_space, num_outputs, model_config, name)
        nn.Module.__init__(self)
        space = getattr(obs_space, "original_space", obs_space)
        hiddens = list(model_config.get("fcnet_hiddens", [256, 256]))
        self.act = ACTIVATIONS[model_config.get("fcnet_activation", "tanh")]
        in_dim = int(gym.spaces.flatdim(space))

        def mlp(out: int, gain: float) -> nn.ModuleList:
            dims = [in_dim, *hiddens]
            layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
            head = nn.Linear(dims[-1], out)
            for layer in [*layers, head]:
                nn.init.orthogonal_(layer.weight, gain if layer is head else math.sqrt(2))
                nn.init.zeros_(layer.bias)
            layers.append(head)
            return layers

        self.share = bool(model_config.get("vf_share_layers", False))
        self.pi_net = mlp(num_outputs, 0.01)
        self.vf_net = None if self.share else mlp(1, 1.0)
        self.vf_head = nn.Linear(hiddens[-1] if hiddens else in_dim, 1) if self.share else None
        self._value: torch.Tensor | None = None

    def _run(self, layers: nn.ModuleList, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        *hidden, head = layers
        for layer in hidden:
            x = self.act(layer(x))
        return head(x), x

    def forward(self, input_dict: dict, state: Any, seq_lens: Any) -> tuple[torch.Tensor, Any]:
        x = input_dict.get("obs_flat")
        x = flatten_tensors(input_dict["obs"]) if x is None else x.float()
        logits, features = self._run(self.pi_net, x)
        if self.vf_net is not None:
            self._value = self._run(self.vf_net, x)[0].squeeze(-1)
        else:
            assert self.vf_head is not None
            self._value = self.vf_head(features).squeeze(-1)
        return logits, state

    def value_function(self) -> torch.Tensor:
        if self._value is None:
            raise RuntimeError("value_function() before forward()")
        return self._value


TorchFC = FullyConnectedNetwork


def unpack(layout: ObsLayout, x: torch.Tensor) -> Any:
    """Packed rows [B, dim] -> the observation's structure of float32 tensors (one-hot indices)."""
    leaves: dict[tuple, torch.Tensor] = {}
    for leaf in layout.leaves:
        part = x[:, leaf.offset : leaf.offset + leaf.size]
        if leaf.kind == "discrete":
            value = torch.cat(
                [(part[:, i : i + 1].long() == torch.arange(n)).float() for i, n in enumerate(leaf.nvec)], -1
            )
        else:
            value = part.float().reshape(-1, *leaf.shape)  # -1: an exported graph keeps its batch open
        leaves[tuple(_path(leaf.name))] = value
    return nest(layout.space, leaves)


class CustomModel(nn.Module):
    """A user's ModelV2-style network as the actor-critic model a policy trains: packed observations
    in, (distribution inputs, values) out, as rlarena.nn.models.ActorCritic."""

    def __init__(
        self,
        model_class: type,
        layout: ObsLayout,
        action_space: gym.Space,
        num_outputs: int,
        model_config: dict,
        log_std_dim: int = 0,
        log_std_init: float = 0.0,
    ):
        super().__init__()
        self.layout = layout
        options = dict(model_config.get("custom_model_config") or {})
        try:
            self.net = model_class(layout.space, action_space, num_outputs, model_config, "model", **options)
        except TypeError as exc:
            raise ConfigError(
                f"custom_model {model_class.__name__} could not be built as "
                f"{model_class.__name__}(obs_space, action_space, num_outputs, model_config, name, "
                f"**custom_model_config): {exc}"
            ) from None
        if not isinstance(self.net, nn.Module) or not callable(getattr(self.net, "value_function", None)):
            raise ConfigError(
                f"custom_model {model_class.__name__} must be a torch.nn.Module with forward(input_dict, state, "
                f"seq_lens) and value_function() (RLlib's TorchModelV2 protocol)."
            )
        initial = getattr(self.net, "get_initial_state", None)
        state = initial() if callable(initial) else []
        if state is not None and len(state):
            raise ConfigError(
                f"custom_model {model_class.__name__} keeps a recurrent state (get_initial_state() returns "
                f"{len(state)} tensors): custom models with their own state are not supported yet. Use a "
                f"stateless custom model, or rlarena's network with model={{'use_lstm': True}} (or use_gru, "
                f"use_attention)."
            )
        self.log_std = nn.Parameter(torch.full((log_std_dim,), log_std_init)) if log_std_dim else None
        self.num_outputs = num_outputs

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        obs = unpack(self.layout, x)
        input_dict = {"obs": obs, "obs_flat": flatten_tensors(obs)}
        out = self.net(input_dict, [], None)
        logits = out[0] if isinstance(out, tuple | list) else out
        if logits.shape[-1] != self.num_outputs:
            raise ConfigError(
                f"custom_model {type(self.net).__name__}.forward returned {logits.shape[-1]} outputs per "
                f"observation; the action space needs num_outputs={self.num_outputs}."
            )
        return logits, self.net.value_function().reshape(-1)

    def pi(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)[0]

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)[1]
