"""ONNX export of a trained policy, and `OnnxPolicy`, which plays one with onnxruntime alone.

The graph does the policy's preprocessing itself, so a consumer needs no rlarena and no torch:

    inputs   observation  the env's raw observation, for a policy over a flat vector: float32
                          [batch, *obs_shape] (int64 [batch] for Discrete observations, int64
                          [batch, *shape] for MultiDiscrete); the graph flattens, one-hots and applies
                          the MeanStdFilter's frozen statistics
          or obs          the packed row, for every other observation (uint8 images, Dict, Tuple,
                          MultiBinary; a custom model's whole observation): [batch, dim], uint8 when
                          every part fits a byte, else float32 (rlarena.envs.obs_layout.ObsLayout.pack:
                          each leaf in the space's order, flattened; a Discrete or MultiDiscrete as its
                          indices minus `start`; a MultiBinary as its bits). `rlarena.obs_packing` says
                          what is packed: "observation" (the observation without its action_mask) or
                          "whole" (a custom model's: the mask packed too, where its space puts it)
             action_mask  float32 [batch, n], only for masked policies (nonzero = legal; n the
                          categorical choices of every Discrete/MultiDiscrete part)
             state_in     float32 [batch, S], only for recurrent policies (use_lstm / use_gru): zeros at
                          an episode's start, then the previous step's state_out ([h, c] of an LSTM, h
                          of a GRU; S = rlarena.state_size)
    outputs  logits       float32 [batch, n], illegal actions set to MASKED_LOGIT (-1e9)
             (or mean     float32 [batch, d], the Gaussian mean, for Box actions)
             (compound actions, MultiDiscrete / MultiBinary / Tuple / Dict: logits [batch, k], the
              categorical logits of every Discrete and MultiDiscrete part first, then the MultiBinary
              logits, then the Box means, each in the space's order)
             value        float32 [batch]
             state_out    float32 [batch, S], only for recurrent policies
             (DQN's QPolicy: q_values float32 [batch, n], illegal actions at -1e9, and value = max Q;
              SAC's and TD3's ActorQPolicy: action float32 [batch, d], the greedy action within the
              bounds (discrete SAC: logits), and value = min_k Q_k of it)

The model's metadata_props (METADATA_KEYS) hold the spaces as JSON (rlarena.envs.spaces), whether
the policy is masked, the policy id, the env name, the rlarena version, for Box actions the log-std
of the Gaussian, what the observation input packs and a recurrent policy's state size. Files that
need none of the packed row, compound actions or a state are format 1, as rlarena wrote before
them, so older releases still read them. Importing this module imports neither torch nor onnx nor
onnxruntime.

An .onnx file may come from a stranger. OnnxPolicy checks its metadata against its graph's inputs
and outputs, and refuses a model whose tensors keep their data in other files ("external data",
which names a path: `../../etc/passwd`) before onnxruntime opens it: onnxruntime confines such paths
to the model's folder only in its recent releases (1.31 does; our floor, 1.17, does not), and
rlarena never writes external data.
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rlarena import limits
from rlarena._version import __version__
from rlarena.checkpoint.io import MAX_JSON_BYTES, atomic_write, save_path
from rlarena.envs.obs_layout import ObsLayout, needs_encoder
from rlarena.envs.spaces import space_from_json, space_to_json
from rlarena.errors import CheckpointError, ConfigError, closest
from rlarena.export._actions import OutputActions
from rlarena.policies.policy import Policy, has_action_mask, obs_without_mask, row, stack_obs, without_mask

FORMAT_VERSION = 2  # 2: the packed observation, compound actions, a recurrent state
PLAIN_FORMAT = 1  # a file with none of them (what rlarena < format 2 reads)
# metadata_props keys; FORMAT is what marks a file as ours
FORMAT, OBS_SPACE, ACT_SPACE, MASKED, POLICY_ID, ENV, VERSION, LOG_STD, PACKING, STATE_SIZE = (
    "rlarena.format",
    "rlarena.observation_space",
    "rlarena.action_space",
    "rlarena.masked",
    "rlarena.policy_id",
    "rlarena.env",
    "rlarena.version",
    "rlarena.log_std",
    "rlarena.obs_packing",
    "rlarena.state_size",
)
METADATA_KEYS = (FORMAT, OBS_SPACE, ACT_SPACE, MASKED, POLICY_ID, ENV, VERSION, LOG_STD, PACKING, STATE_SIZE)
PACKINGS = ("observation", "whole")  # PACKING's values: the observation without its mask, or all of it
# the graph's input and output names beside the policy's own outputs (TrainablePolicy.output_names)
RAW_INPUT, PACKED_INPUT, MASK_INPUT, STATE_IN, STATE_OUT = "observation", "obs", "action_mask", "state_in", "state_out"
INSTALL_HINT = "pip install 'rlarena[onnx]'"
# protobuf's limit on one message: a larger .onnx file is not one model (big ones keep weights outside)
MAX_ONNX_BYTES = 2**31


def max_state_size() -> int:
    """The largest recurrent state a file may ask for: an LSTM's [h, c] of the widest layer rlarena
    builds from a file (rlarena.limits.MAX_LAYER_UNITS, read now so that raising it takes effect)."""
    return 2 * limits.MAX_LAYER_UNITS


def _missing(what: str, exc: ImportError) -> ConfigError:
    return ConfigError(f"{what} needs the {exc.name or 'onnx'} package, which is not installed: {INSTALL_HINT}.")


# -- export -------------------------------------------------------------------------------------------
def export_onnx(
    policies: Mapping[str, Policy], path: str | os.PathLike, policy_id: str, *, env_name: str | None = None
) -> Path:
    """Write `policies[policy_id]` (a TrainablePolicy) to `path` as an ONNX model; return the path.

    The file appears complete or not at all (written under a temporary name next to `path`, then
    renamed into place: rlarena.checkpoint.io.atomic_write); a `path` that is a symbolic link is refused.
    Algorithm.export_onnx(path, policy_id) calls this with the algorithm's policies.
    """
    save_path(path, "the ONNX model", ConfigError)  # a link there is refused now, not after the export
    if policy_id not in policies:
        raise ConfigError(
            f"No policy {policy_id!r} to export.{closest(policy_id, policies)} Policies: {', '.join(policies)}."
        )
    try:
        import torch

        from rlarena.policies.torch_policy import TrainablePolicy
    except ImportError as exc:
        raise _missing("ONNX export", exc) from None
    policy = policies[policy_id]
    if not isinstance(policy, TrainablePolicy):
        trained = [pid for pid, p in policies.items() if isinstance(p, TrainablePolicy)]
        raise ConfigError(
            f"Policy {policy_id!r} is a {type(policy).__name__}, not a trained (torch) policy, so it "
            f"has no model to export. Exportable: {', '.join(trained) or 'none'}."
        )
    try:
        import onnx
        import onnxscript  # noqa: F401 - torch's exporter needs it; fail here with the install hint
    except ImportError as exc:
        raise _missing("ONNX export", exc) from None
    from rlarena.export._graph import PolicyGraph

    graph = PolicyGraph(policy).eval()
    inputs = graph.example_inputs(2)  # a batch of 2, not 1: the exporter would specialize a size-1 dimension
    packing = None if policy.obs_layout is None else "whole" if policy.packs_whole_observation else "observation"
    # forward's parameters -> the graph's input names
    names = {"obs": RAW_INPUT if packing is None else PACKED_INPUT, "action_mask": MASK_INPUT, "state_in": STATE_IN}
    dim = torch.export.Dim("batch")
    # torch.export-based exporter (the default since torch 2.9; the TorchScript one is deprecated).
    # Its progress lines, registration notices and deprecation warnings say nothing to our users.
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                graph,
                (inputs["obs"],),
                kwargs={k: v for k, v in inputs.items() if k != "obs"},
                dynamo=True,
                verbose=False,
                input_names=[names[k] for k in inputs],
                output_names=[*policy.output_names, *([STATE_OUT] if graph.recurrent else [])],
                dynamic_shapes={k: {0: dim} for k in inputs},
            )
    finally:
        quiet.setLevel(level)
    assert program is not None  # dynamo=True without a file name returns the program
    proto = program.model_proto
    if not all(value.type.tensor_type.shape.dim[0].dim_param for value in proto.graph.input):
        # the exporter falls back to a fixed shape rather than fail; such a file would play batches of 2 only
        raise ConfigError(
            f"Policy {policy_id!r} cannot be exported with a dynamic batch: its model reads the batch size as a "
            f"Python number while traced (len(x), int(x.shape[0]), a loop over the rows). Write reshape(-1, ...) "
            f"rather than reshape(len(x), ...) in its forward."
        )
    layout = policy.action_layout
    plain = packing is None and not graph.recurrent and layout is None
    meta = {
        FORMAT: str(PLAIN_FORMAT if plain else FORMAT_VERSION),
        OBS_SPACE: json.dumps(space_to_json(policy.observation_space)),
        ACT_SPACE: json.dumps(space_to_json(policy.action_space)),
        MASKED: json.dumps(policy.masked),
        POLICY_ID: policy_id,
        ENV: env_name or "",
        VERSION: __version__,
    }
    if packing is not None:
        meta[PACKING] = packing
    if graph.recurrent:
        meta[STATE_SIZE] = str(graph.state_size)
    log_std = getattr(policy.model, "log_std", None)
    # a Gaussian with a state-free std: Box actions, or the Box parts of a compound action
    if (policy.continuous or (layout is not None and layout.box)) and log_std is not None:
        meta[LOG_STD] = json.dumps(log_std.detach().cpu().numpy().astype(float).tolist())
    onnx.helper.set_model_props(proto, meta)
    # torch writes IR version 10, which onnxruntime reads from 1.18 on; nothing here needs more than
    # IR 9 (opset 20, onnx 1.15), which keeps the `onnxruntime>=1.17` floor of our extras true
    proto.ir_version = min(proto.ir_version, 9)
    with atomic_write(path, "the ONNX model", error=ConfigError) as out:
        onnx.save_model(proto, out.file)
    return Path(path)


# -- serving ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OnnxMetadata:
    """What an exported file's metadata_props say, checked against its graph (OnnxPolicy.metadata)."""

    observation_space: gym.Space
    action_space: gym.Space
    masked: bool
    actions: OutputActions  # the first output -> env actions (with the log-std of Box parts)
    mask_size: int  # the action_mask's entries (0: not masked)
    packing: str | None  # None: the raw observation; else PACKINGS
    layout: ObsLayout | None  # what the packed input holds
    state_size: int  # 0: no memory


def _read_metadata(meta: Mapping[str, str]) -> OnnxMetadata:
    """The checked metadata of an exported file; a ValueError or TypeError saying what is wrong."""

    def value(key: str) -> Any:
        if key not in meta:
            raise ValueError(f"no {key!r}")
        if len(meta[key]) > MAX_JSON_BYTES:
            raise ValueError(f"{key} is longer than {MAX_JSON_BYTES} characters")
        try:
            return json.loads(meta[key])
        except RecursionError:
            raise ValueError(f"{key} is nested too deeply") from None
        except ValueError as exc:
            raise ValueError(f"{key} is not JSON: {exc}") from None

    obs_space, act_space, masked = space_from_json(value(OBS_SPACE)), space_from_json(value(ACT_SPACE)), value(MASKED)
    if not isinstance(masked, bool):
        raise TypeError(f"{MASKED} is {masked!r}, not true or false")
    packing = meta.get(PACKING)
    if packing is not None and packing not in PACKINGS:
        raise ValueError(f"{PACKING} is {packing[:60]!r}, not one of {', '.join(PACKINGS)}")
    if masked != has_action_mask(obs_space):
        raise ValueError(f"observation space {obs_space} does not fit {MASKED}={json.dumps(masked)}")
    inner = without_mask(obs_space)
    if packing is None and needs_encoder(inner):  # the raw input is a flat vector's
        raise ValueError(f"observation space {inner} is not a flat vector, but {PACKING} is not set")
    layout = None
    if packing is not None:
        try:
            layout = ObsLayout(obs_space if packing == "whole" else inner)
        except ConfigError as exc:
            raise ValueError(str(exc).rstrip(".")) from None
    actions = OutputActions(act_space)  # a ValueError for spaces rlarena's policies do not play
    if actions.box and LOG_STD in meta:  # a Gaussian's log-std, one per Box value
        log_std = value(LOG_STD)
        if not (
            isinstance(log_std, list)
            and len(log_std) == actions.box
            and all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in log_std)
        ):
            raise ValueError(f"{LOG_STD} must be a list of {actions.box} finite numbers, got {str(log_std)[:60]}")
        actions = OutputActions(act_space, np.asarray(log_std, np.float32))
    mask_size = 0
    if masked:
        assert isinstance(obs_space, gym.spaces.Dict)  # has_action_mask
        mask_size = actions.logits
        given = int(np.prod(obs_space["action_mask"].shape or ()))
        if actions.box or not mask_size or given != mask_size:
            raise ValueError(f"action_mask space {obs_space['action_mask']} does not fit action space {act_space}")
    state_size = 0
    if STATE_SIZE in meta:
        text = meta[STATE_SIZE]
        if not (text.isascii() and text.isdigit() and 0 < len(text) < 10 and 0 < int(text) <= max_state_size()):
            raise ValueError(
                f"{STATE_SIZE} is {text[:60]!r}, not a state size from 1 to {max_state_size()} "
                f"(2 x rlarena.limits.MAX_LAYER_UNITS)"
            )
        state_size = int(text)
    return OnnxMetadata(obs_space, act_space, masked, actions, mask_size, packing, layout, state_size)


# Where a serialized ModelProto can hold a TensorProto (onnx.proto's field numbers): message -> {field
# number: message}. TensorProto fields 13 (external_data: location, offset, ...) and 14 (data_location:
# EXTERNAL = 1) mark data kept in another file.
_HOLDS_TENSORS = {
    "Model": {7: "Graph", 20: "TrainingInfo", 25: "Function"},
    "TrainingInfo": {1: "Graph", 2: "Graph"},
    "Graph": {1: "Node", 5: "Tensor", 15: "SparseTensor"},
    "Node": {5: "Attribute"},
    "Attribute": {5: "Tensor", 6: "Graph", 10: "Tensor", 11: "Graph", 22: "SparseTensor", 23: "SparseTensor"},
    "SparseTensor": {1: "Tensor", 2: "Tensor"},
    "Function": {7: "Node", 11: "Attribute"},
    "Tensor": {},
}
_EXTERNAL_DATA, _DATA_LOCATION = 13, 14
_MAX_NESTING = 100  # protobuf's default recursion limit


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while shift < 70:
        if pos >= len(buf):
            raise ValueError("a field is cut short")
        byte = buf[pos]
        value, pos, shift = value | (byte & 0x7F) << shift, pos + 1, shift + 7
        if byte < 0x80:
            return value, pos
    raise ValueError("a varint is longer than 10 bytes")


def _external_data(buf: memoryview, message: str = "Model", depth: int = 0) -> bool:
    """Whether the serialized `message` (a ModelProto at the top) holds a tensor whose data lives in
    another file. Walks the protobuf wire format itself, so serving needs no `onnx` package; a
    ValueError when `buf` is not protobuf."""
    if depth > _MAX_NESTING:
        raise ValueError(f"messages nested more than {_MAX_NESTING} deep")
    children = _HOLDS_TENSORS[message]
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        # data_location DEFAULT (0) is the only fine value of either field
        if message == "Tensor" and number in (_EXTERNAL_DATA, _DATA_LOCATION) and (wire != 0 or _varint(buf, pos)[0]):
            return True
        if wire == 0:
            _, pos = _varint(buf, pos)
        elif wire in (1, 5):  # fixed 64 / 32 bits
            pos += 8 if wire == 1 else 4
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("a field runs past the end of the file")
            if number in children and _external_data(buf[pos : pos + length], children[number], depth + 1):
                return True
            pos += length
        else:
            raise ValueError(f"wire type {wire}")
    if pos != len(buf):
        raise ValueError("a field runs past the end of the file")
    return False


@dataclass(frozen=True)
class _Opened:
    """A checked file: its onnxruntime session, its metadata_props, and what they say."""

    session: Any  # onnxruntime.InferenceSession
    props: Mapping[str, str]  # its metadata_props
    metadata: OnnxMetadata


def _open(path: Path, num_threads: int) -> _Opened:
    """Read and check the .onnx file at `path` (CheckpointError: what is wrong with it)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise _missing("OnnxPolicy", exc) from None
    if not path.is_file():
        raise CheckpointError(
            f"No ONNX model at {str(path)!r}: export one with `rlarena export CHECKPOINT --onnx {path.name}`."
        )
    if path.stat().st_size > MAX_ONNX_BYTES:
        raise CheckpointError(
            f"{str(path)!r} is larger than 2 GiB, more than one ONNX file holds: it is not an rlarena policy."
        )
    model = path.read_bytes()
    try:
        external = _external_data(memoryview(model))
    except ValueError as exc:
        raise CheckpointError(f"{str(path)!r} is not a readable ONNX model (malformed protobuf: {exc}).") from None
    if external:
        raise CheckpointError(
            f"{str(path)!r} is refused: its tensors keep their data in other files (ONNX "
            f"external data), which could name any file on this machine. rlarena exports "
            f"none; export the policy again with `rlarena export CHECKPOINT --onnx FILE`."
        )
    options = ort.SessionOptions()
    # a policy MLP on a small batch is fastest on one thread, and leaves the other cores to the envs
    options.intra_op_num_threads, options.inter_op_num_threads = num_threads, 1
    options.log_severity_level = 3  # errors only
    try:  # the bytes just checked, not the path again
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors for bad files
        raise CheckpointError(
            f"{str(path)!r} is not a readable ONNX model ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})."
        ) from None
    meta = session.get_modelmeta().custom_metadata_map
    if FORMAT not in meta:
        raise CheckpointError(
            f"{str(path)!r} is an ONNX model but not an rlarena policy (its metadata has no "
            f"{FORMAT!r}). Export one with `rlarena export CHECKPOINT --onnx FILE`."
        )
    if not (meta[FORMAT].isascii() and meta[FORMAT].isdigit() and len(meta[FORMAT]) < 10):
        raise CheckpointError(
            f"{str(path)!r} has corrupted rlarena metadata ({FORMAT} is {meta[FORMAT][:60]!r}, not a format number)."
        )
    if int(meta[FORMAT]) > FORMAT_VERSION:
        raise CheckpointError(
            f"{str(path)!r} was exported by a newer rlarena ({meta.get(VERSION)}, format "
            f"{meta[FORMAT]}); this rlarena {__version__} reads format {FORMAT_VERSION}. "
            f"Upgrade rlarena."
        )
    try:
        spec = _read_metadata(meta)
        _check_signature(session, spec)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{str(path)!r} has corrupted rlarena metadata ({str(exc).rstrip('.')}).") from None
    return _Opened(session, meta, spec)


def _check_signature(session: Any, spec: OnnxMetadata) -> None:
    """The graph's inputs and outputs are those its metadata describe (names, widths, dtypes); a
    ValueError otherwise. What a forged file would otherwise turn into an onnxruntime error at the
    first step, or an allocation as large as it names."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    want = [
        RAW_INPUT if spec.packing is None else PACKED_INPUT,
        *([MASK_INPUT] if spec.masked else []),
        *([STATE_IN] if spec.state_size else []),
    ]
    got = [i.name for i in inputs]
    if got != want or len(outputs) != 2 + bool(spec.state_size):
        raise ValueError(
            f"the graph has inputs ({', '.join(got)}) and {len(outputs)} outputs; an rlarena policy with this "
            f"metadata has inputs ({', '.join(want)}) and {2 + bool(spec.state_size)} outputs"
        )
    widths = {MASK_INPUT: spec.mask_size, STATE_IN: spec.state_size}
    if spec.layout is not None:
        widths[PACKED_INPUT] = spec.layout.dim
        dtype = "tensor(uint8)" if spec.layout.dtype == np.uint8 else "tensor(float)"
        if inputs[0].type != dtype:
            raise ValueError(f"the graph's {PACKED_INPUT} input is a {inputs[0].type}, its packed rows a {dtype}")
    for i in inputs:
        if i.name in widths and list(i.shape[1:]) != [widths[i.name]]:
            raise ValueError(f"the graph's {i.name} input is {i.shape[1:]} wide; the metadata say [{widths[i.name]}]")
    if spec.state_size and list(outputs[2].shape[1:]) != [spec.state_size]:
        raise ValueError(
            f"the graph's {outputs[2].name} output is {outputs[2].shape[1:]} wide, not [{spec.state_size}]"
        )


def _single(action: Any) -> Any:
    """One action as a user reads it: a Python number for a scalar (a structure's parts as arrays)."""
    return action.item() if isinstance(action, np.ndarray | np.generic) and np.ndim(action) == 0 else action


class OnnxPolicy(Policy):
    """A policy played from an exported .onnx file with onnxruntime alone (no torch).

    `compute_actions(obs_batch, explore)`: greedy (the argmax of each categorical's masked logits,
    the bits of positive logit, the Box mean) or sampled (softmax of the logits, Bernoulli bits, the
    mean plus Gaussian noise of the stored log-std), Box actions clipped to the action space's bounds.
    Observations come as the env gives them, batched: an array [B, ...], or for Dict and Tuple spaces
    a dict or tuple of batches (masked policies: with their "action_mask" [B, n]); the policy packs
    them as the trained one did (rlarena.envs.obs_layout.ObsLayout) where its graph takes packed rows.

    A file whose graph carries a recurrent state opens as a RecurrentOnnxPolicy (the Recurrent
    capability: `OnnxPolicy(path)` returns one), so whoever steps the env carries its state.
    """

    _opened: _Opened | None

    def __new__(  # noqa: PYI034 - OnnxPolicy(path) returns the subclass a file with a state needs
        cls, path: str | os.PathLike, seed: int | None = None, num_threads: int = 1
    ) -> OnnxPolicy:
        # the file says which class serves it (as pathlib.Path picks its flavour), so it is read
        # here, once; __init__ takes what was read
        opened = _open(Path(path), num_threads)
        served = RecurrentOnnxPolicy if opened.metadata.state_size else OnnxPolicy
        if not issubclass(served, cls):
            raise CheckpointError(
                f"{str(path)!r} has no recurrent state (no {STATE_IN} input): open it with OnnxPolicy."
            )
        policy = super().__new__(served)
        policy._opened = opened
        return policy

    def __init__(self, path: str | os.PathLike, seed: int | None = None, num_threads: int = 1):
        opened, self._opened = self._opened, None
        assert opened is not None  # read by __new__
        spec, meta = opened.metadata, opened.props
        super().__init__(spec.observation_space, spec.action_space)
        self.path, self.session, self.metadata = Path(path), opened.session, spec
        self.masked, self.mask_size, self.obs_layout = spec.masked, spec.mask_size, spec.layout
        self.policy_id, self.env_name, self.rlarena_version = (
            meta.get(POLICY_ID, ""),
            meta.get(ENV, ""),
            meta.get(VERSION, ""),
        )
        self.continuous = isinstance(spec.action_space, gym.spaces.Box)
        self.std = spec.actions.std  # the Gaussian's std of Box actions (None: greedy even when exploring)
        self._inner = without_mask(spec.observation_space)
        self._obs_dtype = (
            spec.layout.dtype
            if spec.layout is not None
            else np.int64
            if isinstance(self._inner, gym.spaces.Discrete | gym.spaces.MultiDiscrete)
            else np.float32
        )
        self._input_names = [i.name for i in self.session.get_inputs()]
        self.rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"OnnxPolicy({str(self.path)!r}, policy_id={self.policy_id!r}, env={self.env_name!r})"

    def _feed(self, obs_batch: Any) -> dict[str, np.ndarray]:
        """The graph's observation (and action_mask) inputs for a batch of env observations."""
        space = self.observation_space
        mask = None
        if self.masked:
            assert isinstance(space, gym.spaces.Dict)  # has_action_mask
            if not isinstance(obs_batch, Mapping) or not set(space.spaces) <= set(obs_batch):
                others = [repr(k) for k in space.spaces if k != "action_mask"]
                raise ConfigError(
                    f"{self} takes masked observations: a dict with {', '.join(others)} and 'action_mask' "
                    f"batches, got {type(obs_batch).__name__}."
                )
            mask = obs_batch["action_mask"]
        if mask is not None and self.metadata.packing != "whole":
            assert isinstance(space, gym.spaces.Dict)  # has_action_mask
            obs_batch = obs_without_mask(obs_batch, space)
        obs = obs_batch
        if self.obs_layout is None:
            obs = np.asarray(obs, self._obs_dtype)
            assert self._inner.shape is not None  # a flat vector's space (Box, Discrete, MultiDiscrete)
            if obs.shape[1:] != self._inner.shape:
                raise ConfigError(
                    f"{self} takes observations of shape [batch, {', '.join(map(str, self._inner.shape))}]"
                    f" ({self._inner}); got an array of shape {list(obs.shape)}."
                )
        else:
            packed = self.obs_layout.space
            try:
                obs = self.obs_layout.pack(obs)
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise ConfigError(
                    f"{self} takes batches of observations of {packed}; this one does not fit it "
                    f"({type(exc).__name__}: {exc})."
                ) from None
            if obs.ndim != 2 or obs.shape[1] != self.obs_layout.dim:
                raise ConfigError(
                    f"{self} takes batches of observations of {packed}, {self.obs_layout.dim} values each; "
                    f"got {obs.shape[1] if obs.ndim == 2 else 'another shape'} per observation."
                )
        feed = {self._input_names[0]: obs}
        if mask is not None:
            mask = np.asarray(mask, np.float32)
            if mask.shape != (len(obs), self.mask_size):
                raise ConfigError(
                    f"{self}: action_mask must have shape [batch, {self.mask_size}] matching "
                    f"the observations; got {list(mask.shape)}."
                )
            feed[self._input_names[1]] = mask
        return feed

    def compute_outputs(self, obs_batch: Any) -> tuple[np.ndarray, np.ndarray]:
        """The graph's outputs for a batch: (logits [B, n] masked, or the Box mean [B, d]; value [B])."""
        first, value = self.session.run(None, self._feed(obs_batch))
        return first, value

    def compute_values(self, obs_batch: Any) -> np.ndarray:
        return self.compute_outputs(obs_batch)[1]

    def compute_actions(self, obs_batch: Any, explore: bool = True) -> Any:
        """The env's actions for a batch: an array [B, ...], or a tuple or dict of batches for Tuple
        and Dict action spaces."""
        return self.metadata.actions.actions(self.compute_outputs(obs_batch)[0], explore, self.rng)

    def compute_single_action(self, obs: Any, explore: bool = True) -> Any:
        """The action for one (unbatched) observation: an int for Discrete actions, else an array
        (a tuple or dict of them for Tuple and Dict actions)."""
        return _single(row(self.compute_actions(stack_obs([obs]), explore), 0))


class RecurrentOnnxPolicy(OnnxPolicy):
    """An exported policy with memory (the Recurrent capability): its graph takes `state_in` and
    gives `state_out`, one float32 row of `state_size` per env, zeros at an episode's start.

    `compute_actions_with_state(obs_batch, state, explore) -> (actions, next state)`;
    `compute_actions` acts from the initial state (each observation as an episode's first), as
    RecurrentPolicy does."""

    def __init__(self, path: str | os.PathLike, seed: int | None = None, num_threads: int = 1):
        super().__init__(path, seed, num_threads)
        self.state_size = self.metadata.state_size

    def __repr__(self) -> str:
        return f"Recurrent{super().__repr__()}"

    def initial_state(self, batch_size: int) -> np.ndarray:
        return np.zeros((batch_size, self.state_size), np.float32)

    def get_initial_state(self) -> list[np.ndarray]:
        """RLlib's: one episode's first state."""
        return [self.initial_state(1)[0]]

    def _run(self, feed: dict[str, np.ndarray], state: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(next(iter(feed.values())))
        state = np.asarray(state, np.float32)
        if state.shape != (n, self.state_size):
            raise ConfigError(
                f"{self}: the state must have shape [batch, {self.state_size}] matching the observations "
                f"(initial_state(batch) at an episode's start, then the state returned); got {list(state.shape)}."
            )
        first, value, next_state = self.session.run(None, {**feed, STATE_IN: state})
        return first, value, next_state

    def compute_outputs_with_state(self, obs_batch: Any, state: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The graph's outputs for a batch and its states [B, S]: (logits or mean, value, next state)."""
        return self._run(self._feed(obs_batch), state)

    def compute_outputs(self, obs_batch: Any) -> tuple[np.ndarray, np.ndarray]:
        feed = self._feed(obs_batch)
        first, value, _ = self._run(feed, self.initial_state(len(feed[self._input_names[0]])))
        return first, value

    def compute_actions_with_state(self, obs_batch: Any, state: Any, explore: bool = True) -> tuple[Any, np.ndarray]:
        """Env observations and states [B, S] -> (the env's actions, next states)."""
        first, _, next_state = self.compute_outputs_with_state(obs_batch, state)
        return self.metadata.actions.actions(first, explore, self.rng), next_state

    def sample_recurrent(
        self, x: np.ndarray, state: np.ndarray, explore: bool = True, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The graph's observation input as it is (packed rows, or the raw flat observations) and
        states -> (the env's actions, next states); `mask` [B, n] the legal actions (all when None)."""
        feed = {self._input_names[0]: np.asarray(x, self._obs_dtype)}
        if self.masked:
            feed[MASK_INPUT] = (
                np.ones((len(x), self.mask_size), np.float32) if mask is None else np.asarray(mask, np.float32)
            )
        first, _, next_state = self._run(feed, state)
        return self.metadata.actions.actions(first, explore, self.rng), next_state

    def compute_single_action_with_state(self, obs: Any, state: Any, explore: bool = True) -> tuple[Any, np.ndarray]:
        """One (unbatched) observation and its state row [S] -> (the action, the next state row)."""
        actions, next_state = self.compute_actions_with_state(
            stack_obs([obs]), np.asarray(state, np.float32).reshape(1, -1), explore
        )
        return _single(row(actions, 0)), next_state[0]
