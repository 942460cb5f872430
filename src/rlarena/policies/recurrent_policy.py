"""`RecurrentPolicy`: the actor-critic policy with memory (`model={"use_lstm": True}` or
`{"use_gru": True}`), over rlarena.nn.memory.RecurrentActorCritic.

Whoever steps the env carries the state (the Recurrent capability): the env runner keeps one row per
env and stores it before each step (Rollout.state_in), so the loss can unroll sequences from it;
evaluation and compute_single_action carry theirs. The hot path is one torch step per vector step.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlarena.errors import ConfigError
from rlarena.nn.distributions import ActionLayout, Product, masked
from rlarena.nn.memory import RecurrentActorCritic, RecurrentQNetwork
from rlarena.policies.q_policy import QPolicy
from rlarena.policies.torch_policy import TorchPolicy, input_layer


def memory_cell(model_config: dict) -> str | None:
    """ "lstm", "gru", "attention" or None: the memory the model options ask for."""
    asked = [name for name in ("lstm", "gru", "attention") if model_config.get(f"use_{name}")]
    if len(asked) > 1:
        raise ConfigError(f"model: {' and '.join(f'use_{a}' for a in asked)} are all set; pick one memory.")
    return asked[0] if asked else None


def attention_options(model_config: dict) -> dict[str, int]:
    """RLlib's attention_* model options as rlarena.nn.memory.AttentionCell's arguments."""
    return {
        "dim": int(model_config["attention_dim"]),
        "memory": int(model_config["attention_memory_inference"]),
        "heads": int(model_config["attention_num_heads"]),
        "head_dim": int(model_config["attention_head_dim"]),
        "mlp_dim": int(model_config["attention_position_wise_mlp_dim"]),
        "units": int(model_config["attention_num_transformer_units"]),
    }


class CarriesState:
    """What every recurrent policy offers its callers around its sample_recurrent: the initial state,
    actions with the state carried, and actions from the initial state (the Recurrent capability)."""

    state_size: int
    reward_slot: int | None = None  # the state's column that holds the previous reward (lstm_use_prev_reward)

    @abstractmethod
    def sample_recurrent(
        self, x: np.ndarray, state: np.ndarray, explore: bool = True, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Preprocessed observations [B, D] and states [B, S] -> (actions, next states)."""

    def initial_state(self, batch_size: int) -> np.ndarray:
        return np.zeros((batch_size, self.state_size), np.float32)

    def get_initial_state(self) -> list[np.ndarray]:
        """RLlib's: one episode's first state (what compute_single_action(obs, state) takes first)."""
        return [self.initial_state(1)[0]]

    def compute_actions_with_state(
        self, obs_batch: Any, state: np.ndarray, explore: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Env observations and states -> (env actions, next states)."""
        policy: Any = self
        x = policy.normalize(policy.flatten(obs_batch))
        actions, state = self.sample_recurrent(x, state, explore, policy.action_mask(obs_batch))
        return policy.to_env_actions(actions), state

    def compute_actions(self, obs_batch: Any, explore: bool = True) -> np.ndarray:
        """Actions from the initial state (each observation as an episode's first): a recurrent
        policy's callers carry the state with compute_actions_with_state."""
        policy: Any = self  # a TrainablePolicy too
        n = len(policy.flatten(obs_batch))
        return self.compute_actions_with_state(obs_batch, self.initial_state(n), explore)[0]

    def sample(self, x: np.ndarray, explore: bool = True, mask: np.ndarray | None = None) -> np.ndarray:
        raise ConfigError(
            "A recurrent policy acts with its state: use compute_actions_with_state(obs, state) (or "
            "compute_single_action(obs, state=...)), which returns the next state too."
        )


class RecurrentPolicy(CarriesState, TorchPolicy):
    model: RecurrentActorCritic  # type: ignore[assignment]  # or a CustomModel that keeps its own state

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        model_config: dict,
        observation_filter: str = "NoFilter",
        seed: int | None = None,
    ):
        cell = memory_cell(model_config)
        custom = model_config.get("custom_model") is not None  # a custom model keeping its own state
        if cell is None and not custom:
            raise ConfigError(
                "RecurrentPolicy needs model={'use_lstm': True}, {'use_gru': True} or {'use_attention': True}, "
                "or a custom_model with its own state."
            )
        self.use_prev_action = bool(model_config.get("lstm_use_prev_action"))
        self.use_prev_reward = bool(model_config.get("lstm_use_prev_reward"))
        if custom and (self.use_prev_action or self.use_prev_reward):
            raise ConfigError(
                "model.lstm_use_prev_action / lstm_use_prev_reward feed rlarena's own memory; a custom model "
                "reads the observation only: leave them out, or put what it needs in the observation."
            )
        self._memory = (cell or "custom", int(model_config.get("lstm_cell_size", 256)))
        self._attention = attention_options(model_config)
        super().__init__(observation_space, action_space, model_config, observation_filter, seed)

    def build_model(self, model_config: dict, out_dim: int, log_std_dim: int) -> None:
        if self.packs_whole_observation:  # the user's own model, keeping its own state (rlarena.nn.custom)
            super().build_model(model_config, out_dim, log_std_dim)
            self._action_blocks = []
            self.state_size = self.cell_state_size = self.model.state_size
            self.reward_slot = None
            return
        cell, size = self._memory
        features, _ = input_layer(model_config, self.obs_layout, self.obs_dim)
        only_image = self.obs_layout is not None and [leaf.kind for leaf in self.obs_layout.leaves] == ["image"]
        # the previous action (one-hot per categorical part, the rest as it is) and reward, as inputs
        layout = self.action_layout or ActionLayout(self.action_space)
        self._action_blocks = [
            (kind, n) for kind, _, sizes, _ in layout.parts for n in (sizes if kind == "cat" else [int(np.prod(sizes))])
        ]
        action_width = sum(n for _, n in self._action_blocks) if self.use_prev_action else 0
        extra = action_width + int(self.use_prev_reward)
        self.model = RecurrentActorCritic(
            self.obs_dim,
            out_dim,
            () if only_image else tuple(model_config["fcnet_hiddens"]),
            tuple(model_config.get("post_fcnet_hiddens") or ()),
            model_config["fcnet_activation"],
            cell,
            size,
            log_std_dim=log_std_dim,
            log_std_init=model_config["log_std_init"],
            features=features,
            attention=self._attention if cell == "attention" else None,
            extra_dim=extra,
        )
        self._sampler = Product(layout, self.model.log_std)
        self.state_size = self.model.state_size
        self.cell_state_size = self.model.state_size - extra
        # the state row's column of the previous reward, for whoever steps the env to fill (None: not read)
        self.reward_slot = self.state_size - 1 if self.use_prev_reward else None

    def encode_actions(self, actions: np.ndarray) -> np.ndarray:
        """Stored actions [B, ...] -> the previous-action input [B, width] (one-hot per categorical part)."""
        rows = np.asarray(actions).reshape(len(actions), -1)
        parts, col = [], 0
        for kind, n in self._action_blocks:
            if kind == "cat":
                parts.append(np.eye(n, dtype=np.float32)[rows[:, col].astype(np.int64)])
                col += 1
            else:
                parts.append(rows[:, col : col + n].astype(np.float32))
                col += n
        return np.concatenate(parts, 1)

    def sample_recurrent(
        self, x: np.ndarray, state: np.ndarray, explore: bool = True, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Preprocessed observations [B, D] and states [B, S] -> (actions, next states)."""
        assert self._sampler is not None
        with torch.inference_mode():
            inputs, _, next_state = self.model.step(
                torch.from_numpy(x), torch.from_numpy(np.asarray(state, np.float32))
            )
            if mask is not None:
                inputs = masked(inputs, torch.from_numpy(np.asarray(mask, bool)))
            actions = self._sampler.sample(inputs, self.torch_rng) if explore else self._sampler.greedy(inputs)
            out = actions.numpy()
        next_rows = next_state.numpy().copy()
        if self.use_prev_action:  # this step's action is the next step's previous action
            width = sum(n for _, n in self._action_blocks)
            next_rows[:, self.cell_state_size : self.cell_state_size + width] = self.encode_actions(out)
        if self.action_layout is None:
            out = out[:, 0] if not self.continuous else out.reshape(len(out), *self.action_shape)
        return out, next_rows

    def compute_values(self, obs_batch: Any) -> np.ndarray:
        x = torch.from_numpy(self.normalize(self.flatten(obs_batch)))
        with torch.inference_mode():
            return self.model.step(x, torch.zeros(len(x), self.state_size))[1].numpy()

    def export_outputs(self, x: torch.Tensor, action_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        raise ConfigError(
            "A recurrent policy's exported graph carries its state: export_outputs_with_state(x, action_mask, state)."
        )

    def export_outputs_with_state(
        self, x: torch.Tensor, action_mask: torch.Tensor | None, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.model.extra_dim:
            raise ConfigError(
                "ONNX export of a memory that reads the previous action or reward (lstm_use_prev_action, "
                "lstm_use_prev_reward) is not available yet: the graph's caller would have to fill them."
            )
        """The exported graph's outputs with memory (rlarena.export.onnx: state_in -> state_out): (logits,
        illegal choices at MASKED_LOGIT, or the Box mean; value; next state) for preprocessed observations
        [B, D] and states [B, S]: one model.step, as in sample_recurrent()."""
        logits, value, next_state = self.model.step(x, state)
        if action_mask is not None:  # an illegal action gets MASKED_LOGIT, as in sample_recurrent()
            logits = masked(logits, action_mask != 0)
        return logits, value, next_state


class RecurrentQPolicy(CarriesState, QPolicy):
    """DQN's policy with memory (R2D2): epsilon-greedy over a RecurrentQNetwork's Q values."""

    model: RecurrentQNetwork  # type: ignore[assignment]
    reward_slot = None

    def build_model(self, model_config: dict, dueling: bool) -> None:
        for option in ("lstm_use_prev_action", "lstm_use_prev_reward"):
            if model_config.get(option):
                raise ConfigError(
                    f"model.{option}=True: DQN's recurrent Q-network reads the observations only so far; "
                    f"PPO, A2C, IMPALA and APPO read the previous action and reward."
                )
        cell = memory_cell(model_config)
        assert cell is not None
        features, _ = input_layer(model_config, self.obs_layout, self.obs_dim)
        only_image = self.obs_layout is not None and [leaf.kind for leaf in self.obs_layout.leaves] == ["image"]
        self.model = RecurrentQNetwork(
            self.obs_dim,
            self.num_actions,
            () if only_image else tuple(model_config["fcnet_hiddens"]),
            model_config["fcnet_activation"],
            cell,
            int(model_config["lstm_cell_size"]),
            dueling,
            features,
            attention_options(model_config) if cell == "attention" else None,
        )
        self._torch_q = True
        self.state_size = self.model.state_size

    def sample_recurrent(
        self, x: np.ndarray, state: np.ndarray, explore: bool = True, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            q, next_state = self.model.step(torch.from_numpy(x), torch.from_numpy(np.asarray(state, np.float32)))
        return self.epsilon_greedy(q.numpy(), explore, mask), next_state.numpy().copy()

    def q_values(self, x: np.ndarray) -> np.ndarray:
        """Q from the initial state (an episode's first step)."""
        with torch.inference_mode():
            return self.model.step(torch.from_numpy(x), torch.zeros(len(x), self.state_size))[0].numpy()

    def export_outputs(self, x: torch.Tensor, action_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        raise ConfigError("ONNX export of a recurrent Q-network is not available yet.")
