"""ONNX export of a trained policy, and `OnnxPolicy`, which plays one with onnxruntime alone.

The graph takes the env's raw observation and does the policy's preprocessing itself (flatten,
one-hot, the MeanStdFilter's frozen statistics), so a consumer needs no rlarena and no torch:

    inputs   observation  float32 [batch, *obs_shape]  (int64 [batch] for Discrete observations,
                                                         int64 [batch, *shape] for MultiDiscrete)
             action_mask  float32 [batch, n], only for masked policies (nonzero = legal)
    outputs  logits       float32 [batch, n], illegal actions set to MASKED_LOGIT (-1e9)
             (or mean     float32 [batch, d], the Gaussian mean, for Box actions)
             value        float32 [batch]
             (DQN's QPolicy: q_values float32 [batch, n], illegal actions at -1e9, and value = max Q;
              SAC's and TD3's ActorQPolicy: action float32 [batch, d], the greedy action within the
              bounds (discrete SAC: logits), and value = min_k Q_k of it)

The model's metadata_props (METADATA_KEYS) hold the spaces as JSON (rlarena.envs.spaces), whether
the policy is masked, the policy id, the env name, the rlarena version and, for Box actions, the
log-std of the Gaussian. Importing this module imports neither torch nor onnx nor onnxruntime.

An .onnx file may come from a stranger. OnnxPolicy checks its metadata, and refuses a model whose
tensors keep their data in other files ("external data", which names a path: `../../etc/passwd`)
before onnxruntime opens it: onnxruntime confines such paths to the model's folder only in its
recent releases (1.31 does; our floor, 1.17, does not), and rlarena never writes external data.
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rlarena._version import __version__
from rlarena.checkpoint.io import MAX_JSON_BYTES, atomic_write, save_path
from rlarena.envs.spaces import space_from_json, space_to_json
from rlarena.errors import CheckpointError, ConfigError, closest
from rlarena.policies.policy import Policy, is_masked_space

FORMAT_VERSION = 1
# metadata_props keys; FORMAT is what marks a file as ours
FORMAT, OBS_SPACE, ACT_SPACE, MASKED, POLICY_ID, ENV, VERSION, LOG_STD = (
    "rlarena.format",
    "rlarena.observation_space",
    "rlarena.action_space",
    "rlarena.masked",
    "rlarena.policy_id",
    "rlarena.env",
    "rlarena.version",
    "rlarena.log_std",
)
METADATA_KEYS = (FORMAT, OBS_SPACE, ACT_SPACE, MASKED, POLICY_ID, ENV, VERSION, LOG_STD)
INSTALL_HINT = "pip install 'rlarena[onnx]'"
# protobuf's limit on one message: a larger .onnx file is not one model (big ones keep weights outside)
MAX_ONNX_BYTES = 2**31


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
    batch = 2  # an example batch of 2, not 1: the exporter would specialize a size-1 dimension
    obs_space = policy.observation_space["observation"] if policy.masked else policy.observation_space
    if isinstance(obs_space, gym.spaces.Discrete):
        obs = torch.zeros(batch, dtype=torch.int64)
    elif isinstance(obs_space, gym.spaces.MultiDiscrete):
        obs = torch.zeros((batch, *obs_space.shape), dtype=torch.int64)
    else:
        obs = torch.zeros((batch, *obs_space.shape), dtype=torch.float32)
    args: tuple[torch.Tensor, ...] = (obs,)
    if policy.masked:
        args = (obs, torch.ones(batch, policy.action_space.n, dtype=torch.float32))
    dim = torch.export.Dim("batch")
    names = ["observation", "action_mask"][: len(args)]
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
                args,
                dynamo=True,
                verbose=False,
                input_names=names,
                output_names=list(policy.output_names),
                dynamic_shapes=tuple({0: dim} for _ in args),
            )
    finally:
        quiet.setLevel(level)
    assert program is not None  # dynamo=True without a file name returns the program
    proto = program.model_proto
    meta = {
        FORMAT: str(FORMAT_VERSION),
        OBS_SPACE: json.dumps(space_to_json(policy.observation_space)),
        ACT_SPACE: json.dumps(space_to_json(policy.action_space)),
        MASKED: json.dumps(policy.masked),
        POLICY_ID: policy_id,
        ENV: env_name or "",
        VERSION: __version__,
    }
    if policy.continuous and getattr(policy.model, "log_std", None) is not None:  # a Gaussian with a state-free std
        meta[LOG_STD] = json.dumps(policy.model.log_std.detach().cpu().numpy().astype(float).tolist())
    onnx.helper.set_model_props(proto, meta)
    # torch writes IR version 10, which onnxruntime reads from 1.18 on; nothing here needs more than
    # IR 9 (opset 20, onnx 1.15), which keeps the `onnxruntime>=1.17` floor of our extras true
    proto.ir_version = min(proto.ir_version, 9)
    with atomic_write(path, "the ONNX model", error=ConfigError) as out:
        onnx.save_model(proto, out.file)
    return Path(path)


# -- serving ------------------------------------------------------------------------------------------
def _read_metadata(meta: Mapping[str, str]) -> tuple[gym.Space, gym.Space, bool, np.ndarray | None]:
    """(observation space, action space, masked, log-std or None) from the model's metadata_props;
    a ValueError or TypeError saying what is wrong."""

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
    inner = obs_space["observation"] if masked and is_masked_space(obs_space) else obs_space
    if masked != is_masked_space(obs_space) or isinstance(inner, gym.spaces.Dict):
        raise ValueError(f"observation space {obs_space} does not fit {MASKED}={json.dumps(masked)}")
    if not isinstance(act_space, gym.spaces.Discrete | gym.spaces.Box):
        raise TypeError(f"action space {act_space} is neither Discrete nor Box")
    if masked and (not isinstance(act_space, gym.spaces.Discrete) or obs_space["action_mask"].shape != (act_space.n,)):
        raise ValueError(f"action_mask space {obs_space['action_mask']} does not fit action space {act_space}")
    if not isinstance(act_space, gym.spaces.Box) or LOG_STD not in meta:
        return obs_space, act_space, masked, None
    log_std = value(LOG_STD)
    size = int(np.prod(act_space.shape))
    if not (
        isinstance(log_std, list)
        and len(log_std) == size
        and all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in log_std)
    ):
        raise ValueError(f"{LOG_STD} must be a list of {size} finite numbers, got {str(log_std)[:60]}")
    return obs_space, act_space, masked, np.asarray(log_std, np.float32)


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


class OnnxPolicy(Policy):
    """A policy played from an exported .onnx file with onnxruntime alone (no torch).

    `compute_actions(obs_batch, explore)`: greedy (argmax of the masked logits; the Box mean) or
    sampled (softmax of the logits; the mean plus Gaussian noise of the stored log-std), Box actions
    clipped to the action space's bounds. Observations come as the env gives them, batched: an
    array [B, ...], or for masked policies {"observation": [B, ...], "action_mask": [B, n]}.
    """

    def __init__(self, path: str | os.PathLike, seed: int | None = None, num_threads: int = 1):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise _missing("OnnxPolicy", exc) from None
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(
                f"No ONNX model at {str(path)!r}: export one with `rlarena export CHECKPOINT --onnx {self.path.name}`."
            )
        if self.path.stat().st_size > MAX_ONNX_BYTES:
            raise CheckpointError(
                f"{str(path)!r} is larger than 2 GiB, more than one ONNX file holds: it is not an rlarena policy."
            )
        model = self.path.read_bytes()
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
            self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors for bad files
            raise CheckpointError(
                f"{str(path)!r} is not a readable ONNX model ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''})."
            ) from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if FORMAT not in meta:
            raise CheckpointError(
                f"{str(path)!r} is an ONNX model but not an rlarena policy (its metadata has no "
                f"{FORMAT!r}). Export one with `rlarena export CHECKPOINT --onnx FILE`."
            )
        if not (meta[FORMAT].isascii() and meta[FORMAT].isdigit() and len(meta[FORMAT]) < 10):
            raise CheckpointError(
                f"{str(path)!r} has corrupted rlarena metadata ({FORMAT} is {meta[FORMAT][:60]!r}, "
                f"not a format number)."
            )
        if int(meta[FORMAT]) > FORMAT_VERSION:
            raise CheckpointError(
                f"{str(path)!r} was exported by a newer rlarena ({meta.get(VERSION)}, format "
                f"{meta[FORMAT]}); this rlarena {__version__} reads format {FORMAT_VERSION}. "
                f"Upgrade rlarena."
            )
        try:
            obs_space, act_space, self.masked, log_std = _read_metadata(meta)
            inputs, outputs = len(self.session.get_inputs()), len(self.session.get_outputs())
            if (inputs, outputs) != (1 + self.masked, 2):
                raise ValueError(
                    f"the graph has {inputs} inputs and {outputs} outputs; an rlarena policy has "
                    f"{1 + self.masked} (observation{', action_mask' if self.masked else ''}) and 2"
                )
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{str(path)!r} has corrupted rlarena metadata ({str(exc).rstrip('.')}).") from None
        super().__init__(obs_space, act_space)
        self.policy_id, self.env_name, self.rlarena_version = (
            meta.get(POLICY_ID, ""),
            meta.get(ENV, ""),
            meta.get(VERSION, ""),
        )
        self.continuous = isinstance(act_space, gym.spaces.Box)
        self.std = np.exp(log_std) if log_std is not None else None
        self._inner = obs_space["observation"] if is_masked_space(obs_space) else obs_space
        self._obs_dtype = (
            np.int64 if isinstance(self._inner, gym.spaces.Discrete | gym.spaces.MultiDiscrete) else np.float32
        )
        self._input_names = [i.name for i in self.session.get_inputs()]
        self.rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"OnnxPolicy({str(self.path)!r}, policy_id={self.policy_id!r}, env={self.env_name!r})"

    def _feed(self, obs_batch: Any) -> dict[str, np.ndarray]:
        if self.masked:
            if not isinstance(obs_batch, Mapping) or not {"observation", "action_mask"} <= set(obs_batch):
                raise ConfigError(
                    f"{self} takes masked observations: a dict with 'observation' and "
                    f"'action_mask' batches, got {type(obs_batch).__name__}."
                )
            obs, mask = obs_batch["observation"], obs_batch["action_mask"]
        else:
            obs, mask = obs_batch, None
        obs = np.asarray(obs, self._obs_dtype)
        if obs.shape[1:] != self._inner.shape:
            raise ConfigError(
                f"{self} takes observations of shape [batch, {', '.join(map(str, self._inner.shape))}]"
                f" ({self._inner}); got an array of shape {list(obs.shape)}."
            )
        feed = {self._input_names[0]: obs}
        if mask is not None:
            mask = np.asarray(mask, np.float32)
            if mask.shape != (len(obs), self.action_space.n):
                raise ConfigError(
                    f"{self}: action_mask must have shape [batch, {self.action_space.n}] matching "
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

    def compute_actions(self, obs_batch: Any, explore: bool = True) -> np.ndarray:
        out, _ = self.compute_outputs(obs_batch)
        if self.continuous:
            if explore and self.std is not None:
                out = out + self.std * self.rng.standard_normal(out.shape).astype(np.float32)
            out = out.reshape(len(out), *self.action_space.shape)
            return np.clip(out, self.action_space.low, self.action_space.high).astype(np.float32)
        if not explore:
            return out.argmax(-1).astype(np.int64)
        # Gumbel-max sampling from softmax(logits), as TorchPolicy.sample does
        return (out - np.log(self.rng.standard_exponential(out.shape))).argmax(-1).astype(np.int64)

    def compute_single_action(self, obs: Any, explore: bool = True) -> Any:
        """The action for one (unbatched) observation: an int for Discrete actions, else an array."""
        batch = {k: np.asarray(v)[None] for k, v in obs.items()} if isinstance(obs, Mapping) else np.asarray(obs)[None]
        action = self.compute_actions(batch, explore)[0]
        return action.item() if np.ndim(action) == 0 else action
