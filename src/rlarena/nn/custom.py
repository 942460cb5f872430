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
nn.Module with that __init__, forward and value_function will do.

A model with its own memory says so in `get_initial_state()`: a list of tensors, one episode's first
state without the batch axis (RLlib's convention, e.g. `[h0 [256], c0 [256]]`). It is then trained as
RLlib trains it: `forward` gets `obs_flat` as [B * T, n] rows, sequence-major (sequence b's steps at
b * T ... b * T + T - 1, zero-padded after its length), `state` as the tensors at each sequence's
start ([B, ...] each) and `seq_lens` [B] (int32); it returns outputs [B * T, num_outputs] and the
next state, and value_function() [B * T]. A sequence never crosses an episode's start; acting is
the same with T = 1. `RecurrentNetwork` (RLlib's TorchRNN) does the reshaping: write
`forward_rnn(inputs [B, T, n], state, seq_lens) -> (outputs [B, T, num_outputs], state)`.
PPO, A2C, IMPALA, APPO, BC and MARWIL train such a model, single-agent, as they train use_lstm.

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
ModelV2 = TorchModelV2  # what RLlib's @override(ModelV2) names


def override(parent: type) -> Any:
    """RLlib's annotations.override: marks a method as overriding `parent`'s (checked: the parent has it)."""

    def mark(method: Any) -> Any:
        if not hasattr(parent, method.__name__):
            raise NameError(f"{method.__name__} does not override a method of {parent.__name__}")
        return method

    return mark


def add_time_dimension(
    padded_inputs: torch.Tensor,
    max_seq_len: int | None = None,
    framework: str = "torch",
    time_major: bool = False,
    *,
    seq_lens: torch.Tensor | None = None,
) -> torch.Tensor:
    """RLlib's rnn_sequencing.add_time_dimension for torch: padded rows [B * T, ...], sequence-major,
    -> [B, T, ...] ([T, B, ...] with time_major). T is max_seq_len, or the rows per sequence in seq_lens."""
    if max_seq_len is None:
        if seq_lens is None:
            raise ValueError("add_time_dimension needs max_seq_len or seq_lens")
        max_seq_len = padded_inputs.shape[0] // seq_lens.shape[0]
    out = padded_inputs.reshape(-1, max_seq_len, *padded_inputs.shape[1:])
    return out.transpose(0, 1) if time_major else out


class RecurrentNetwork(TorchModelV2):
    """RLlib's TorchRNN helper: write forward_rnn(inputs [B, T, n], state, seq_lens) -> (outputs
    [B, T, num_outputs], next state) and get_initial_state(); forward adds the time axis to obs_flat
    and flattens the outputs back to [B * T, num_outputs]."""

    def forward(self, input_dict: dict, state: Any, seq_lens: Any) -> tuple[torch.Tensor, Any]:
        inputs = add_time_dimension(input_dict["obs_flat"].float(), seq_lens=seq_lens)
        output, new_state = self.forward_rnn(inputs, state, seq_lens)
        return output.reshape(-1, self.num_outputs), new_state

    def forward_rnn(self, inputs: torch.Tensor, state: Any, seq_lens: Any) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError(f"{type(self).__name__} must define forward_rnn(inputs, state, seq_lens).")


TorchRNN = RecurrentNetwork


def keeps_state(model_class: type) -> bool:
    """Whether a custom model class may keep its own state: it defines get_initial_state (beyond
    TorchModelV2's, which returns [])."""
    method = getattr(model_class, "get_initial_state", None)
    return callable(method) and method is not TorchModelV2.get_initial_state


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
        state = list(initial() or []) if callable(initial) else []
        try:
            tensors = [torch.as_tensor(s, dtype=torch.float32).detach() for s in state]
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ConfigError(
                f"custom_model {model_class.__name__}.get_initial_state() must return a list of tensors (one "
                f"episode's first state, without the batch axis): {exc}"
            ) from None
        # The state travels as one float32 row per env, zeros at an episode's start (what runners,
        # evaluation and ONNX callers reset it to): the row holds the state minus the initial one.
        self.state_shapes = [tuple(t.shape) for t in tensors]
        self.state_size = sum(math.prod(shape) for shape in self.state_shapes)
        self.register_buffer(
            "initial_row", torch.cat([t.reshape(-1) for t in tensors]) if tensors else torch.zeros(0), persistent=False
        )
        self.extra_dim = 0  # reads no previous action or reward beside the observation (RecurrentActorCritic's)
        self.log_std = nn.Parameter(torch.full((log_std_dim,), log_std_init)) if log_std_dim else None
        self.num_outputs = num_outputs

    @property
    def keeps_state(self) -> bool:
        return bool(self.state_shapes)

    def _call(self, x: torch.Tensor, state: list, seq_lens: Any) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """The user's forward on packed rows [K, D]: (outputs [K, I], values [K], its next state)."""
        obs = unpack(self.layout, x)
        out = self.net({"obs": obs, "obs_flat": flatten_tensors(obs)}, state, seq_lens)
        logits, next_state = (
            (out[0], out[1] if len(out) > 1 else None) if isinstance(out, tuple | list) else (out, None)
        )
        name = type(self.net).__name__
        if logits.shape[-1] != self.num_outputs:
            raise ConfigError(
                f"custom_model {name}.forward returned {logits.shape[-1]} outputs per observation; the action "
                f"space needs num_outputs={self.num_outputs}."
            )
        if logits.shape[0] != x.shape[0]:
            raise ConfigError(
                f"custom_model {name}.forward returned {logits.shape[0]} rows for {x.shape[0]} observations: "
                f"return one row per input row ([B * T, num_outputs], sequence-major)."
            )
        if self.keeps_state and (not isinstance(next_state, list | tuple) or len(next_state) != len(self.state_shapes)):
            got = len(next_state) if isinstance(next_state, list | tuple) else type(next_state).__name__
            raise ConfigError(
                f"custom_model {name}.forward returned a state of {got} tensors; get_initial_state() has "
                f"{len(self.state_shapes)}: return (outputs, [the next state's tensors, [B, ...] each])."
            )
        return logits, self.net.value_function().reshape(-1), next_state

    def _state_tensors(self, rows: torch.Tensor) -> list[torch.Tensor]:
        """Rows [B, S] -> the model's state tensors [B, ...] (each row plus the initial state)."""
        full = rows + self.initial_row
        sizes = [math.prod(shape) for shape in self.state_shapes]
        parts = full.split(sizes, -1)  # contiguous copies: an exported LSTM wants its state dense
        return [part.reshape(-1, *shape).contiguous() for part, shape in zip(parts, self.state_shapes, strict=True)]

    def _state_rows(self, tensors: list | tuple) -> torch.Tensor:
        """The model's state tensors [B, ...] -> rows [B, S] (minus the initial state)."""
        rows = torch.cat([torch.as_tensor(t).reshape(t.shape[0], -1).float() for t in tensors], -1)
        if rows.shape[-1] != self.state_size:
            raise ConfigError(
                f"custom_model {type(self.net).__name__}.forward returned a state of {rows.shape[-1]} numbers "
                f"per row; get_initial_state() has {self.state_size} ({self.state_shapes})."
            )
        return rows - self.initial_row

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(distribution inputs, values) of packed rows; a model with memory reads each row as an
        episode's first step."""
        if self.keeps_state:
            logits, values, _ = self.step(x, x.new_zeros((len(x), self.state_size), dtype=torch.float32))
            return logits, values
        logits, values, _ = self._call(x, [], None)
        return logits, values

    def pi(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)[0]

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)[1]

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step of B envs (sequences of length 1): (distribution inputs [B, I], values [B], next
        state rows [B, S]), as RecurrentActorCritic.step."""
        seq_lens = torch.ones(x.shape[0], dtype=torch.int32)
        logits, values, next_state = self._call(x, self._state_tensors(state), seq_lens)
        return logits, values, self._state_rows(next_state)

    def unroll(
        self, obs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor, extra: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """L steps of M columns (obs [L, M, D], state rows [M, S] before step 0, starts [L, M]: an episode
        starts there) as RLlib feeds a model: each column cut at its episode starts into sequences, padded
        to the longest, in one forward with their seq_lens -> (distribution inputs [L, M, I], values
        [L, M], each column's state rows after its last sequence: a model that ignores seq_lens runs on
        through that sequence's padding, as under RLlib)."""
        L, M = starts.shape
        first = starts.clone()
        first[0] = True  # each column's first sequence starts at step 0
        column, begin = torch.nonzero(first.T, as_tuple=True)  # sequences by column, then time
        same = torch.zeros_like(column, dtype=torch.bool)
        same[:-1] = column[1:] == column[:-1]  # the next sequence is in the same column
        end = torch.where(same, begin.roll(-1), torch.full_like(begin, L))
        lengths = end - begin
        T = int(lengths.max())
        offsets = torch.arange(T)
        inside = offsets < lengths[:, None]  # [K, T]: a real step, not padding
        rows = ((begin[:, None] + offsets).clamp(max=L - 1) * M + column[:, None]).reshape(-1)  # into [L * M]
        x = obs.reshape(L * M, -1)[rows]
        x = torch.where(inside.reshape(-1, 1), x, torch.zeros((), dtype=x.dtype))
        # a column's first sequence carries the state given (unless an episode starts at step 0); the rest start fresh
        carried = (begin == 0) & ~starts[0, column]
        state0 = torch.where(carried[:, None], state[column], torch.zeros((), dtype=state.dtype))
        logits, values, next_state = self._call(x, self._state_tensors(state0), lengths.to(torch.int32))
        keep = inside.reshape(-1)
        out_logits = logits.new_zeros((L * M, logits.shape[-1])).index_copy(0, rows[keep], logits[keep])
        out_values = values.new_zeros(L * M).index_copy(0, rows[keep], values[keep])
        last = ~same  # each column's last sequence, in column order
        return out_logits.reshape(L, M, -1), out_values.reshape(L, M), self._state_rows(next_state)[last]
