"""Policies: what turns a batch of observations into actions.

`Policy` is the small seam every runner talks to. This module stays free of torch, so heuristics,
ONNX-served agents and the Connect Four app run without it; the trainable `TorchPolicy` lives in
rlarena.policies.torch_policy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol, TypeGuard, runtime_checkable

import gymnasium as gym
import numpy as np

from rlarena.errors import ConfigError

DEFAULT_POLICY_ID = "default_policy"  # the policy of a single-agent run (RLlib's name)

MASKED_LOGIT = -1e9  # not -inf: softmax gives exactly 0 either way, and 0 * -1e9 keeps the entropy finite


# Fixed input layers a model may name (`model={"board_features": NAME}`): NAME -> ("module:qualname" of
# its torch module class, the number of observation values it reads). A game package registers its own
# (rlarena.games.connect_four: "connect_four", "conv"), so the core names no game; registering imports
# nothing (no torch), and the class is imported when a policy asks for it.
FEATURE_LAYERS: dict[str, tuple[str, int]] = {}


def register_feature_layer(name: str, path: str, obs_size: int) -> None:
    """Let `model={"board_features": name}` build the module class at `path` ("module:qualname"), an input
    layer over `obs_size` observation values."""
    FEATURE_LAYERS[name] = (path, obs_size)


def is_masked_space(space: gym.Space) -> TypeGuard[gym.spaces.Dict]:
    """The action-masking convention (PettingZoo's): Dict(observation=..., action_mask=...)."""
    return isinstance(space, gym.spaces.Dict) and set(space.spaces) == {"observation", "action_mask"}


def has_action_mask(space: gym.Space) -> TypeGuard[gym.spaces.Dict]:
    """A Dict observation with an "action_mask" key: the mask is the legal actions, the rest the
    observation (PettingZoo's "observation", RLlib's "observations", or any other keys)."""
    return isinstance(space, gym.spaces.Dict) and "action_mask" in space.spaces and len(space.spaces) > 1


def _mask_rest(keys: list[str]) -> str | None:
    """The one key beside "action_mask" that is the whole observation, or None (several keys: a Dict)."""
    rest = [k for k in keys if k != "action_mask"]
    return rest[0] if len(rest) == 1 and rest[0] in ("observation", "observations", "obs") else None


def without_mask(space: gym.Space) -> gym.Space:
    """The observation part of a masked space (the space itself when it has no mask)."""
    if not has_action_mask(space):
        return space
    key = _mask_rest(list(space.spaces))
    if key is not None:
        return space[key]
    return gym.spaces.Dict({k: v for k, v in space.spaces.items() if k != "action_mask"})


def obs_without_mask(obs: Any, space: gym.spaces.Dict) -> Any:
    """A batch of masked observations without the mask, matching without_mask(space)."""
    key = _mask_rest(list(space.spaces))
    if key is not None:
        return obs[key]
    return {k: obs[k] for k in space.spaces if k != "action_mask"}


def flat_obs_dim(space: gym.Space) -> int:
    if is_masked_space(space):
        return flat_obs_dim(space["observation"])
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    if isinstance(space, gym.spaces.Box):
        return int(np.prod(space.shape))
    raise ConfigError(
        f"Observation space {space} is not supported yet: rlarena's default model takes Box, "
        f"Discrete or MultiDiscrete observations, optionally as Dict(observation=..., "
        f"action_mask=...). Flatten it with gymnasium.wrappers.FlattenObservation."
    )


class Policy(ABC):
    """Maps a batch of observations to a batch of actions. Subclass it for heuristics.

    RLlib-style subclasses work too: `super().__init__(observation_space, action_space, config)`, and
    compute_actions may return RLlib's `(actions, state_outs, info)` tuple (see policy_actions)."""

    # attributes an algorithm sets before sampling to steer exploration (DQN's epsilon, ...): a remote
    # copy of the policy gets them with its weights (sampling_state), checkpoints do not keep them
    exploration_attributes: tuple[str, ...] = ()

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, config: dict[str, Any] | None = None):
        self.observation_space, self.action_space = observation_space, action_space
        self.config: dict[str, Any] = dict(config or {})  # RLlib's Policy.config; rlarena reads nothing from it

    @abstractmethod
    def compute_actions(self, obs_batch: Any, explore: bool = True) -> Any:
        """Actions [B] for a batch of observations (a dict of batches for masked observations), or
        RLlib's (actions, state_outs, info)."""

    def get_state(self) -> dict[str, np.ndarray]:
        return {}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        del state


def sampling_state(policy: Policy) -> dict[str, np.ndarray]:
    """What a copy of `policy` needs to sample as it does: its state (weights, filter) and its
    exploration attributes (as "explore.<name>" arrays)."""
    state = policy.get_state()
    return {**state, **{f"explore.{name}": np.asarray(getattr(policy, name)) for name in policy.exploration_attributes}}


def set_sampling_state(policy: Policy, state: dict[str, np.ndarray]) -> None:
    """Take what sampling_state() of another copy returned."""
    policy.set_state({k: v for k, v in state.items() if not k.startswith("explore.")})
    for name in policy.exploration_attributes:
        setattr(policy, name, state[f"explore.{name}"].item())


def batch_len(batch: Any) -> int:
    """Rows of a batch: of its first array, however deep in dicts and tuples (a list is a list of rows)."""
    while isinstance(batch, dict | tuple):  # a list is rows already
        batch = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    return len(batch)


def row(batch: Any, i: int) -> Any:
    """Row i of a batch (a structure of batches: the same structure of rows)."""
    if isinstance(batch, dict):
        return {k: row(v, i) for k, v in batch.items()}
    if isinstance(batch, tuple):
        return tuple(row(v, i) for v in batch)
    return batch[i]


def stack_obs(observations: list[Any]) -> Any:
    """A list of observations -> one batch (dicts and tuples stacked per part, nested)."""
    first = observations[0]
    if isinstance(first, dict):
        return {k: stack_obs([o[k] for o in observations]) for k in first}
    if isinstance(first, tuple):
        return tuple(stack_obs([o[i] for o in observations]) for i in range(len(first)))
    return np.stack([np.asarray(o) for o in observations])


def policy_actions(policy: Policy, obs_batch: Any, explore: bool, batch_size: int) -> np.ndarray:
    """policy.compute_actions as an array of `batch_size` actions. Every caller of a policy goes
    through here, so a heuristic written the RLlib way (returning `(actions, state_outs, info)`, the
    actions a list) plays the same as one returning an array."""
    out = policy.compute_actions(obs_batch, explore=explore)
    structured = isinstance(policy.action_space, gym.spaces.Tuple | gym.spaces.Dict)
    rllib_triple = isinstance(out, tuple) and len(out) == 3 and isinstance(out[2], dict)
    if isinstance(out, tuple) and (rllib_triple or not structured):  # RLlib's (actions, state_outs, info)
        out = out[0] if out else None
    if structured and isinstance(out, tuple | dict):  # Tuple/Dict actions: a structure of batches
        if batch_len(out) != batch_size:
            raise ConfigError(
                f"{type(policy).__name__}.compute_actions returned {batch_len(out)} actions for a batch of "
                f"{batch_size} observations."
            )
        return out  # type: ignore[return-value]
    actions = np.asarray(out) if out is not None else None
    if actions is None or actions.ndim == 0 or len(actions) != batch_size:
        got = "nothing" if actions is None else f"shape {actions.shape}"
        raise ConfigError(
            f"{type(policy).__name__}.compute_actions returned {got} for a batch of {batch_size} "
            f"observations; it must return one action per observation (an array or list, or "
            f"RLlib's (actions, state_outs, info))."
        )
    return actions


# -- capabilities: what a caller may ask of a policy (isinstance(policy, ActionLogProbs)), never its class --
@runtime_checkable
class ActionLogProbs(Protocol):
    """A stochastic policy's log-probabilities of given env actions: what off-policy estimation and
    recorded behaviour log-probs read. `x`: preprocessed observations [B, D] (after `normalize`),
    `mask` [B, n] the legal actions of masked Discrete policies. A policy whose actions have no density
    (a deterministic actor, epsilon-greedy Q-values) does not have this capability, or raises
    ConfigError saying why."""

    def action_log_probs(self, x: np.ndarray, actions: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray: ...


@runtime_checkable
class ExportOutputs(Protocol):
    """A policy that computes its network's raw outputs for a batch of observations, as its exported
    graph does (an ONNX-served policy): (the masked logits, or the Box mean; the value). What a search
    over its network reads."""

    def compute_outputs(self, obs_batch: Any) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class SearchAgent(Protocol):
    """An algorithm whose network can play through a search (AlphaZero: MCTS over its policy and value):
    `search_policy(num_simulations, seed=..., leaves_per_call=...)` is that player, an rlarena Policy."""

    def search_policy(
        self, num_simulations: int | None = None, seed: int | None = None, leaves_per_call: int = 1
    ) -> Policy: ...


@runtime_checkable
class Exploration(Protocol):
    """A policy that owns its exploration schedule (DQN's epsilon, SAC's and TD3's uniform warm-up, TD3's
    noise): the algorithm tells it the env steps sampled so far before each fragment, and it sets its
    own exploration from its schedule (the attributes runners elsewhere receive: exploration_attributes)."""

    def set_exploration(self, env_step: int) -> None: ...


@runtime_checkable
class Recurrent(Protocol):
    """A policy with memory: one float32 state row per env, zeros at an episode's start, carried from
    step to step by whoever steps the env (runners, evaluation, compute_single_action)."""

    state_size: int

    def initial_state(self, batch_size: int) -> np.ndarray: ...

    def sample_recurrent(
        self, x: np.ndarray, state: np.ndarray, explore: bool = True, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def compute_actions_with_state(
        self, obs_batch: Any, state: np.ndarray, explore: bool = True
    ) -> tuple[np.ndarray, np.ndarray]: ...
