"""Trainable policies: `TrainablePolicy`, the public contract that env runners, evaluation, checkpoints
and ONNX export use (observation preprocessing, the hot-path sampler, state), and `TorchPolicy`, the
actor-critic policy holding an `ActorCritic` model. Other algorithms bring their own subclass
(rlarena.policies.q_policy.QPolicy for DQN); each algorithm names its class in `Algorithm.policy_class`."""

from __future__ import annotations

import importlib
import math
from abc import abstractmethod
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlarena.errors import ConfigError
from rlarena.nn import ActorCritic, make_distribution
from rlarena.nn.catalog import ObsEncoder, ObsLayout, needs_encoder
from rlarena.nn.custom import CustomModel, custom_model_class
from rlarena.nn.distributions import ActionLayout, Product, masked
from rlarena.nn.normalize import RunningMeanStd
from rlarena.policies.policy import (
    FEATURE_LAYERS,
    MASKED_LOGIT,
    Policy,
    flat_obs_dim,
    has_action_mask,
    obs_without_mask,
    without_mask,
)


class TrainablePolicy(Policy):
    """A policy whose `model` (a plain nn.Module) an algorithm trains.

    What runners and export use: `flatten` / `action_mask` / `normalize` (env observations -> the
    model's float32 [B, D] input), `sample(x, explore, mask)` (the hot path, numpy in and out),
    `to_env_actions`, `export_outputs` (the ONNX graph's two outputs) and `get_state` / `set_state`.
    Subclasses build `self.model` and write `sample` and `export_outputs`.
    """

    model: torch.nn.Module
    output_names: tuple[str, str] = ("logits", "value")  # the ONNX outputs (rlarena.export.onnx)
    # packed rows -> flat float32 features, for models that take a flat vector (ObsLayout.numpy_features)
    vector_features: Any = None
    packs_whole_observation = False  # a user's own model reads the whole observation (rlarena.nn.custom)

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        observation_filter: str = "NoFilter",
        seed: int | None = None,
    ):
        super().__init__(observation_space, action_space)
        self.masked = has_action_mask(observation_space)
        inner = without_mask(observation_space)
        # spaces the flat path cannot read (an image, a MultiBinary, a Dict or Tuple) travel packed
        # (rlarena.nn.catalog.ObsLayout) and the model's first layer is the catalog's encoder; a user's
        # own model gets the whole observation, its action mask included
        self.obs_layout = (
            ObsLayout(observation_space)
            if self.packs_whole_observation
            else ObsLayout(inner)
            if needs_encoder(inner)
            else None
        )
        self.action_layout = (
            None if isinstance(action_space, gym.spaces.Discrete | gym.spaces.Box) else ActionLayout(action_space)
        )
        if self.masked:
            mask_size = (
                self.action_layout.logits if self.action_layout is not None else getattr(action_space, "n", None)
            )
            if mask_size is None or mask_size == 0 or (self.action_layout is not None and self.action_layout.box):
                raise ConfigError(
                    "Action masks need Discrete or MultiDiscrete actions (a mask entry per choice of each part)."
                )
            assert isinstance(observation_space, gym.spaces.Dict)  # has_action_mask
            given = int(np.prod(observation_space["action_mask"].shape or ()))
            if given != mask_size:
                raise ConfigError(
                    f"The observation's action_mask has {given} entries, the action space {action_space} has "
                    f"{mask_size} choices: one mask entry per choice."
                )
        self.obs_dim = self.obs_layout.dim if self.obs_layout is not None else flat_obs_dim(inner)
        self.obs_dtype = self.obs_layout.dtype if self.obs_layout is not None else np.dtype(np.float32)
        self.continuous = isinstance(action_space, gym.spaces.Box)
        if (
            observation_filter == "MeanStdFilter"
            and self.obs_layout is not None
            and any(leaf.kind in ("image", "discrete") for leaf in self.obs_layout.leaves)
        ):
            raise ConfigError(
                "observation_filter='MeanStdFilter' standardizes vector observations; this observation has "
                "images or indices (scaled or one-hot by the model). Leave observation_filter at 'NoFilter'."
            )
        self.obs_filter = RunningMeanStd((self.obs_dim,)) if observation_filter == "MeanStdFilter" else None
        self.rng = np.random.default_rng(seed)
        # the torch path's draws (rlarena.nn.distributions.Product.sample), a stream apart from self.rng's
        self.torch_rng = torch.Generator()
        if seed is None:
            self.torch_rng.seed()
        else:
            self.torch_rng.manual_seed(int(np.random.SeedSequence([seed, 1]).generate_state(1, np.uint64)[0] >> 1))
        plain = self.obs_layout is None
        self._one_hot = (
            np.eye(self.obs_dim, dtype=np.float32) if plain and isinstance(inner, gym.spaces.Discrete) else None
        )
        # MultiDiscrete: one one-hot block per component, concatenated
        self._offsets = (
            np.concatenate([[0], np.cumsum(inner.nvec)[:-1]]).astype(np.int64)
            if plain and isinstance(inner, gym.spaces.MultiDiscrete)
            else None
        )
        self.action_shape: tuple[int, ...]
        self.action_dtype: np.dtype
        if self.action_layout is not None:
            self.action_shape, self.action_dtype = (self.action_layout.dim,), self.action_layout.dtype
        elif isinstance(action_space, gym.spaces.Box):  # self.continuous
            self.action_shape = tuple(action_space.shape)
            self.action_dtype = np.dtype(np.float32)
            self._low, self._high = action_space.low, action_space.high
        else:
            self.action_shape, self.action_dtype = (), np.dtype(np.int64)

    # -- observations -------------------------------------------------------------------------
    def flatten(self, obs: Any) -> np.ndarray:
        """Env observations [B, ...] -> float32 [B, D] (one-hot for Discrete and MultiDiscrete; the
        "observation" part of a masked Dict), before the filter."""
        if self.masked and not self.packs_whole_observation:
            assert isinstance(self.observation_space, gym.spaces.Dict)  # has_action_mask
            obs = obs_without_mask(obs, self.observation_space)
        if self.obs_layout is not None:
            packed = self.obs_layout.pack(obs)
            return packed if self.vector_features is None else self.vector_features(packed)
        if self._offsets is not None:
            idx = np.asarray(obs, np.int64).reshape(len(obs), -1) + self._offsets
            out = np.zeros((len(idx), self.obs_dim), np.float32)
            np.put_along_axis(out, idx, 1.0, axis=1)
            return out
        if self._one_hot is not None:
            return self._one_hot[np.asarray(obs, np.int64).reshape(-1)]
        obs = np.asarray(obs)
        if obs.dtype != np.float32 or obs.ndim != 2:
            obs = obs.reshape(len(obs), -1).astype(np.float32)
        return obs

    def action_mask(self, obs: Any) -> np.ndarray | None:
        """bool [B, n] of the legal actions for a masked Dict observation, else None."""
        return np.asarray(obs["action_mask"]).astype(bool, copy=False) if self.masked else None

    @property
    def mask_size(self) -> int | None:
        """n, the actions an action mask covers (a masked policy's action space is Discrete), else None."""
        if not self.masked:
            return None
        if self.action_layout is not None:
            return self.action_layout.logits
        assert isinstance(self.action_space, gym.spaces.Discrete)  # masks need categorical actions
        return int(self.action_space.n)

    def normalize(self, flat: np.ndarray) -> np.ndarray:
        return flat if self.obs_filter is None else self.obs_filter(flat)

    # -- actions ----------------------------------------------------------------------------
    @abstractmethod
    def sample(self, x: np.ndarray, explore: bool = True, mask: np.ndarray | None = None) -> np.ndarray:
        """The hot path: preprocessed observations [B, D] (+ legal actions [B, n]) -> actions [B, ...]."""

    @abstractmethod
    def export_outputs(self, x: torch.Tensor, action_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The exported graph's two outputs (named by `output_names`) for preprocessed observations."""

    def to_env_actions(self, actions: np.ndarray) -> np.ndarray:
        # Gaussian samples are clipped to the bounds only for the env; the stored action stays as
        # sampled so its log-prob is exact (SB3 does the same).
        if self.action_layout is not None:
            return self.action_layout.to_env(actions)
        return np.clip(actions, self._low, self._high) if self.continuous else actions

    def compute_actions(self, obs_batch: Any, explore: bool = True) -> np.ndarray:
        x = self.normalize(self.flatten(obs_batch))
        return self.to_env_actions(self.sample(x, explore, self.action_mask(obs_batch)))

    # -- state --------------------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        # copies: the live weights are views into the optimizer's flat buffer and keep changing
        state = {f"model.{k}": v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}
        if self.obs_filter is not None:
            state.update({f"obs_filter.{k}": v for k, v in self.obs_filter.get_state().items()})
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        model_state = {k[6:]: torch.as_tensor(np.array(v)) for k, v in state.items() if k.startswith("model.")}
        self.model.load_state_dict(model_state)
        if self.obs_filter is not None:
            self.obs_filter.set_state({k[11:]: v for k, v in state.items() if k.startswith("obs_filter.")})


class TorchPolicy(TrainablePolicy):
    """An actor-critic policy. `model` is a plain nn.Module: train it, export it, inspect it."""

    model: ActorCritic

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        model_config: dict,
        observation_filter: str = "NoFilter",
        seed: int | None = None,
    ):
        self.packs_whole_observation = model_config.get("custom_model") is not None
        super().__init__(observation_space, action_space, observation_filter, seed)
        layout = self.action_layout
        if layout is not None:
            out_dim, log_std_dim = layout.input_dim, layout.box
        elif isinstance(action_space, gym.spaces.Box):  # self.continuous
            out_dim = log_std_dim = int(np.prod(action_space.shape))
        else:
            assert isinstance(action_space, gym.spaces.Discrete)  # no layout: Discrete or Box
            out_dim, log_std_dim = int(action_space.n), 0
        self._sampler: Product | None = None
        self.build_model(model_config, out_dim, log_std_dim)
        self.dist = (
            Product(layout, self.model.log_std)
            if layout is not None
            else make_distribution(action_space, self.model.log_std)
        )
        self.output_names = ("mean" if self.continuous else "logits", "value")
        self._numpy_pi_key = -1

    def build_model(self, model_config: dict, out_dim: int, log_std_dim: int) -> None:
        """self.model (and the torch sampler when the numpy one cannot serve)."""
        if self.packs_whole_observation:  # the user's own network (rlarena.nn.custom)
            assert self.obs_layout is not None
            self.model = CustomModel(  # type: ignore[assignment]
                custom_model_class(model_config["custom_model"]),
                self.obs_layout,
                self.action_space,
                out_dim,
                model_config,
                log_std_dim,
                model_config["log_std_init"],
            )
            self._sampler = Product(self.action_layout or ActionLayout(self.action_space), self.model.log_std)
            return
        features, hiddens = input_layer(model_config, self.obs_layout, self.obs_dim)
        self.model = ActorCritic(
            self.obs_dim,
            out_dim,
            hiddens=hiddens,
            activation=model_config["fcnet_activation"],
            vf_share_layers=model_config["vf_share_layers"],
            continuous=log_std_dim > 0,
            log_std_init=model_config["log_std_init"],
            features=features,
            log_std_dim=log_std_dim,
        )
        # the torch path samples where the numpy twin cannot: an encoder with no numpy form, compound actions
        if self.action_layout is not None or (features is not None and not hasattr(features, "numpy")):
            self._sampler = Product(self.action_layout or ActionLayout(self.action_space), self.model.log_std)

    # -- actions ------------------------------------------------------------------------------
    def sample(self, x: np.ndarray, explore: bool = True, mask: np.ndarray | None = None) -> np.ndarray:
        """The hot path: preprocessed obs [B, D] -> actions [B, ...] (numpy). Only the policy head
        runs here, in numpy over views of the live weights (ActorCritic.numpy_pi); values and
        log-probs are computed after the rollout in one batched torch forward."""
        if self._sampler is not None:
            return self._torch_sample(x, explore, mask)
        key = self.model.pi_head.weight.data_ptr()
        if key != self._numpy_pi_key:  # first call, or the parameters moved (e.g. to a flat buffer)
            self._numpy_pi, self._numpy_pi_key = self.model.numpy_pi(), key
        out = self._numpy_pi(x)
        if mask is not None:  # an illegal action is never sampled nor chosen greedily
            out = np.where(mask, out, MASKED_LOGIT)
        if self.continuous:
            if not explore:
                return out
            assert self.model.log_std is not None  # a Box policy's model has one
            std = np.exp(self.model.log_std.detach().numpy())
            return (out + std * self.rng.standard_normal(out.shape, np.float32)).astype(np.float32)
        if not explore:
            return out.argmax(-1)
        # Gumbel-max trick: argmax(logits + Gumbel noise) is a sample from softmax(logits);
        # -log(E) with E ~ Exp(1) is Gumbel noise (E = 0 has probability ~2^-53 in float64)
        return (out - np.log(self.rng.standard_exponential(out.shape))).argmax(-1)

    def _torch_sample(self, x: np.ndarray, explore: bool, mask: np.ndarray | None) -> np.ndarray:
        """sample() through the model in torch: the encoder's convolutions, compound actions."""
        assert self._sampler is not None
        with torch.inference_mode():
            inputs = self.model.pi(torch.from_numpy(x))
            if mask is not None:
                inputs = masked(inputs, torch.from_numpy(np.asarray(mask, bool)))
            actions = self._sampler.sample(inputs, self.torch_rng) if explore else self._sampler.greedy(inputs)
            out = actions.numpy()
        if self.action_layout is not None:
            return out
        return out[:, 0] if not self.continuous else out.reshape(len(out), *self.action_shape)

    def compute_values(self, obs_batch: Any) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(self.normalize(self.flatten(obs_batch)))
            return self.model.value(x).numpy()

    def action_log_probs(self, x: np.ndarray, actions: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """float32 [B]: log pi(actions | x) (the ActionLogProbs capability). A Box action's density is
        the Gaussian's at the env action (the sample clipped to the bounds is taken as it is)."""
        with torch.inference_mode():
            xt = torch.as_tensor(np.asarray(x, np.float32))
            inputs = self.model.pi(xt)
            if self.action_layout is not None:
                if mask is not None:
                    inputs = masked(inputs, torch.as_tensor(np.asarray(mask, bool)))
                stored = actions if np.ndim(actions) == 2 else self.action_layout.from_env(actions, len(x))
                logp, _ = self.dist.log_prob_entropy(inputs, torch.as_tensor(np.asarray(stored)), False)
            elif self.continuous:
                a = torch.as_tensor(np.asarray(actions, np.float32).reshape(len(x), -1))
                logp, _ = self.dist.log_prob_entropy(inputs, a, False)
            else:
                if mask is not None:
                    inputs = inputs.masked_fill(~torch.as_tensor(mask, dtype=torch.bool), -math.inf)
                a = torch.as_tensor(np.asarray(actions, np.int64).reshape(-1))
                logp = torch.log_softmax(inputs, -1).gather(-1, a[:, None]).squeeze(-1)
            return logp.numpy().astype(np.float32)

    def export_outputs(self, x: torch.Tensor, action_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits masked | Box mean, value)."""
        logits, value = self.model(x)
        if action_mask is not None:  # an illegal action gets MASKED_LOGIT, as in sample()
            logits = torch.where(action_mask != 0, logits, torch.full_like(logits, MASKED_LOGIT))
        return logits, value


def input_layer(
    model_config: dict, layout: ObsLayout | None, obs_dim: int
) -> tuple[torch.nn.Module | None, tuple[int, ...]]:
    """(the model's input layer, the hidden sizes after it) for these observations and model options:
    a board's feature layer, the catalog's encoder (images, dicts, ...) or none (a flat vector).
    One image and nothing else: the CNN's features go to post_fcnet_hiddens only (RLlib's vision
    network, SB3's CnnPolicy: the heads sit on the CNN's 512 units); otherwise fcnet_hiddens, then
    post_fcnet_hiddens."""
    post = tuple(model_config.get("post_fcnet_hiddens") or ())
    hiddens = tuple(model_config["fcnet_hiddens"]) + post
    board = board_features(model_config.get("board_features"), obs_dim)
    if model_config.get("conv_filters") is not None and (layout is None or not layout.images):
        raise ConfigError(
            "model.conv_filters is set but this observation has no image: a CNN reads Box observations of uint8 "
            "or bool with 2 or 3 dims (HWC or CHW, each side >= 5). Cast float frames to uint8 (0-255), or leave "
            "conv_filters out."
        )
    if board is not None or layout is None:
        return board, hiddens
    encoder = ObsEncoder(layout, model_config.get("conv_filters"), model_config.get("conv_activation", "relu"))
    only_image = len(layout.leaves) == 1 and layout.leaves[0].kind == "image"
    return encoder, post if only_image else hiddens


def board_features(name: str | None, obs_dim: int) -> torch.nn.Module | None:
    """The input layer `model={"board_features": name}` names (registered by a game package:
    rlarena.policies.policy.register_feature_layer), or None."""
    if name is None:
        return None
    if name not in FEATURE_LAYERS:
        raise ConfigError(
            f"Unknown model option board_features={name!r}: use one of {sorted(FEATURE_LAYERS)} or "
            f"None (a game package registers its own when it is imported)."
        )
    path, size = FEATURE_LAYERS[name]
    if obs_dim != size:
        raise ConfigError(
            f"board_features={name!r} reads {size} observation values, but this policy's observations have {obs_dim}."
        )
    module, _, qualname = path.partition(":")
    return getattr(importlib.import_module(module), qualname)()  # type: ignore[no-any-return]
