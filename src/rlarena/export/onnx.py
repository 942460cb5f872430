"""ONNX export of a trained policy, and `OnnxPolicy`, which plays one with onnxruntime alone.

The graph takes the env's raw observation and does the policy's preprocessing itself (flatten,
one-hot, the MeanStdFilter's frozen statistics), so a consumer needs no rlarena and no torch:

    inputs   observation  float32 [batch, *obs_shape]  (int64 [batch] for Discrete observations,
                                                         int64 [batch, *shape] for MultiDiscrete)
             action_mask  float32 [batch, n], only for masked policies (nonzero = legal)
    outputs  logits       float32 [batch, n], illegal actions set to MASKED_LOGIT (-1e9)
             (or mean     float32 [batch, d], the Gaussian mean, for Box actions)
             value        float32 [batch]

The model's metadata_props (METADATA_KEYS) hold the spaces as JSON (rlarena.envs.spaces), whether
the policy is masked, the policy id, the env name, the rlarena version and, for Box actions, the
log-std of the Gaussian. Importing this module imports neither torch nor onnx nor onnxruntime.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rlarena._version import __version__
from rlarena.envs.spaces import space_from_json, space_to_json
from rlarena.errors import CheckpointError, ConfigError, closest
from rlarena.policy import Policy, is_masked_space

FORMAT_VERSION = 1
# metadata_props keys; FORMAT is what marks a file as ours
FORMAT, OBS_SPACE, ACT_SPACE, MASKED, POLICY_ID, ENV, VERSION, LOG_STD = (
    "rlarena.format", "rlarena.observation_space", "rlarena.action_space", "rlarena.masked",
    "rlarena.policy_id", "rlarena.env", "rlarena.version", "rlarena.log_std")
METADATA_KEYS = (FORMAT, OBS_SPACE, ACT_SPACE, MASKED, POLICY_ID, ENV, VERSION, LOG_STD)
INSTALL_HINT = "pip install 'rlarena[onnx]'"


def _missing(what: str, exc: ImportError) -> ConfigError:
    return ConfigError(f"{what} needs the {exc.name or 'onnx'} package, which is not installed: {INSTALL_HINT}.")


# -- export -------------------------------------------------------------------------------------------
def export_onnx(policies: Mapping[str, Policy], path: str | os.PathLike, policy_id: str, *,
                env_name: str | None = None) -> Path:
    """Write `policies[policy_id]` (a TorchPolicy) to `path` as an ONNX model; return the path.

    The file appears complete or not at all (written next to `path`, then os.replace'd).
    Algorithm.export_onnx(path, policy_id) calls this with the algorithm's policies.
    """
    if policy_id not in policies:
        raise ConfigError(f"No policy {policy_id!r} to export.{closest(policy_id, policies)} "
                          f"Policies: {', '.join(policies)}.")
    try:
        import torch

        from rlarena.torch_policy import TorchPolicy
    except ImportError as exc:
        raise _missing("ONNX export", exc) from None
    policy = policies[policy_id]
    if not isinstance(policy, TorchPolicy):
        trained = [pid for pid, p in policies.items() if isinstance(p, TorchPolicy)]
        raise ConfigError(f"Policy {policy_id!r} is a {type(policy).__name__}, not a trained (torch) policy, so it "
                          f"has no model to export. Exportable: {', '.join(trained) or 'none'}.")
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
    names = ["observation", "action_mask"][:len(args)]
    # torch.export-based exporter (the default since torch 2.9; the TorchScript one is deprecated).
    # Its progress lines, registration notices and deprecation warnings say nothing to our users.
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(graph, args, dynamo=True, verbose=False, input_names=names,
                                        output_names=["mean" if policy.continuous else "logits", "value"],
                                        dynamic_shapes=tuple({0: dim} for _ in args))
    finally:
        quiet.setLevel(level)
    assert program is not None  # dynamo=True without a file name returns the program
    proto = program.model_proto
    meta = {FORMAT: str(FORMAT_VERSION), OBS_SPACE: json.dumps(space_to_json(policy.observation_space)),
            ACT_SPACE: json.dumps(space_to_json(policy.action_space)), MASKED: json.dumps(policy.masked),
            POLICY_ID: policy_id, ENV: env_name or "", VERSION: __version__}
    if policy.continuous:
        meta[LOG_STD] = json.dumps(policy.model.log_std.detach().cpu().numpy().astype(float).tolist())
    onnx.helper.set_model_props(proto, meta)
    # torch writes IR version 10, which onnxruntime reads from 1.18 on; nothing here needs more than
    # IR 9 (opset 20, onnx 1.15), which keeps the `onnxruntime>=1.17` floor of our extras true
    proto.ir_version = min(proto.ir_version, 9)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        onnx.save_model(proto, str(tmp))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


# -- serving ------------------------------------------------------------------------------------------
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
            raise CheckpointError(f"No ONNX model at {str(path)!r}: export one with "
                                  f"`rlarena export CHECKPOINT --onnx {self.path.name}`.")
        options = ort.SessionOptions()
        # a policy MLP on a small batch is fastest on one thread, and leaves the other cores to the envs
        options.intra_op_num_threads, options.inter_op_num_threads = num_threads, 1
        options.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors for bad files
            raise CheckpointError(f"{str(path)!r} is not a readable ONNX model ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''}).") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if FORMAT not in meta:
            raise CheckpointError(f"{str(path)!r} is an ONNX model but not an rlarena policy (its metadata has no "
                                  f"{FORMAT!r}). Export one with `rlarena export CHECKPOINT --onnx FILE`.")
        if int(meta[FORMAT]) > FORMAT_VERSION:
            raise CheckpointError(f"{str(path)!r} was exported by a newer rlarena ({meta.get(VERSION)}, format "
                                  f"{meta[FORMAT]}); this rlarena {__version__} reads format {FORMAT_VERSION}. "
                                  f"Upgrade rlarena.")
        try:
            obs_space = space_from_json(json.loads(meta[OBS_SPACE]))
            act_space = space_from_json(json.loads(meta[ACT_SPACE]))
            self.masked = bool(json.loads(meta[MASKED]))
            log_std = json.loads(meta[LOG_STD]) if LOG_STD in meta else None
        except (KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{str(path)!r} has corrupted rlarena metadata ({type(exc).__name__}: "
                                  f"{exc}).") from None
        super().__init__(obs_space, act_space)
        self.policy_id, self.env_name, self.rlarena_version = meta.get(POLICY_ID, ""), meta.get(ENV, ""), \
            meta.get(VERSION, "")
        self.continuous = isinstance(act_space, gym.spaces.Box)
        self.std = np.exp(np.asarray(log_std, np.float32)) if log_std is not None else None
        self._inner = obs_space["observation"] if is_masked_space(obs_space) else obs_space
        self._obs_dtype = np.int64 if isinstance(self._inner, gym.spaces.Discrete | gym.spaces.MultiDiscrete) \
            else np.float32
        self._input_names = [i.name for i in self.session.get_inputs()]
        self.rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"OnnxPolicy({str(self.path)!r}, policy_id={self.policy_id!r}, env={self.env_name!r})"

    def _feed(self, obs_batch: Any) -> dict[str, np.ndarray]:
        if self.masked:
            if not isinstance(obs_batch, Mapping) or not {"observation", "action_mask"} <= set(obs_batch):
                raise ConfigError(f"{self} takes masked observations: a dict with 'observation' and "
                                  f"'action_mask' batches, got {type(obs_batch).__name__}.")
            obs, mask = obs_batch["observation"], obs_batch["action_mask"]
        else:
            obs, mask = obs_batch, None
        obs = np.asarray(obs, self._obs_dtype)
        if obs.shape[1:] != self._inner.shape:
            raise ConfigError(f"{self} takes observations of shape [batch, {', '.join(map(str, self._inner.shape))}]"
                              f" ({self._inner}); got an array of shape {list(obs.shape)}.")
        feed = {self._input_names[0]: obs}
        if mask is not None:
            mask = np.asarray(mask, np.float32)
            if mask.shape != (len(obs), self.action_space.n):
                raise ConfigError(f"{self}: action_mask must have shape [batch, {self.action_space.n}] matching "
                                  f"the observations; got {list(mask.shape)}.")
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
