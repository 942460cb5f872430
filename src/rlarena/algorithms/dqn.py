"""Deep Q-Networks (Mnih et al. 2015, Nature 518) with the Rainbow parts that are cheap on a CPU: double Q
(van Hasselt et al. 2016), a dueling head (Wang et al. 2016), prioritized replay (Schaul et al. 2016)
and n-step returns (rlarena.rollout.replay). Config, loss, update; the sample-store-update loop and
SB3's option names (train_freq, gradient_steps, learning_starts, ...) are algorithms/off_policy.py's.

Options keep RLlib's names and defaults (its DQN on the new API stack); where a default differs, the
line says so. The loop keeps SB3's rhythm (tests/test_dqn_parity.py): epsilon follows its schedule env
step by env step; the target network is copied (tau 1) or Polyak-averaged each time the env steps reach
a multiple of target_network_update_freq, from the network as it was then (before the updates that
follow); learning starts once more than num_steps_sampled_before_learning_starts steps were sampled.
SB3's exploration_* and max_grad_norm are `epsilon=[[0, initial], [fraction * total, final]]` and grad_clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from rlarena.algorithms.algorithm import MAIN_OPTIMIZER
from rlarena.algorithms.config import AlgorithmConfig, NotProvided, NotProvidedType, option, provided
from rlarena.algorithms.off_policy import (
    OffPolicyAlgorithm,
    OffPolicyConfig,
    ReplayBatch,
    ReplayLearner,
    check_schedule,
)
from rlarena.errors import ConfigError
from rlarena.learners import Learner
from rlarena.nn.flat import Adam
from rlarena.policies.q_policy import QPolicy, masked_q
from rlarena.policies.recurrent_policy import RecurrentQPolicy, memory_cell
from rlarena.rollout.replay import ENDED, INVALID, TERMINATED

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on

STAT_NAMES = ("qf_loss", "q_mean", "td_error_abs_mean", "grad_norm")


@dataclass
class DQNConfig(OffPolicyConfig):
    """DQN's options, RLlib's names and defaults (SB3's equivalents in the module docstrings)."""

    # SB3's QNetwork ([64, 64] ReLU); RLlib's 256-wide layers cost ~4x the time per step on a CPU
    model_defaults: ClassVar[dict[str, Any]] = {"fcnet_hiddens": [64, 64], "fcnet_activation": "relu"}
    # RLlib's PrioritizedEpisodeReplayBuffer, capacity 50000, alpha 0.6, beta 0.4 (annealed to 1 here)
    replay_defaults: ClassVar[dict[str, Any]] = {
        **OffPolicyConfig.replay_defaults,
        "type": "PrioritizedReplayBuffer",
        "capacity": 50_000,
    }
    num_envs_per_env_runner: int = option(8, "env_runners")  # vectorized sampling (RLlib's and SB3's: 1)
    lr: float = option(5e-4, "training")  # RLlib's (SB3: 1e-4)
    train_batch_size: int = option(32, "training")  # RLlib's and SB3's batch_size
    grad_clip: float | None = option(40.0, "training")  # RLlib's (SB3's max_grad_norm: 10)
    adam_epsilon: float = option(1e-8, "training")  # RLlib's
    double_q: bool = option(True, "training")
    dueling: bool = option(True, "training")  # RLlib's default; SB3's DQN has no dueling head
    target_network_update_freq: int = option(500, "training")  # env steps between target updates (RLlib's)
    epsilon: list = option([[0, 1.0], [10000, 0.05]], "training")  # [[env_step, epsilon], ...], interpolated
    num_steps_sampled_before_learning_starts: int = option(1000, "training")  # RLlib's (SB3's learning_starts: 100)

    def training(
        self,
        *,
        lr: float | NotProvidedType = NotProvided,
        train_batch_size: int | NotProvidedType = NotProvided,
        grad_clip: float | None | NotProvidedType = NotProvided,
        adam_epsilon: float | NotProvidedType = NotProvided,
        double_q: bool | NotProvidedType = NotProvided,
        dueling: bool | NotProvidedType = NotProvided,
        target_network_update_freq: int | NotProvidedType = NotProvided,
        epsilon: list | NotProvidedType = NotProvided,
        num_steps_sampled_before_learning_starts: int | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to OffPolicyConfig.training()."""
        return super().training(**provided(locals()))

    def validate(self) -> None:
        super().validate()
        self._check("adam_epsilon", self.adam_epsilon > 0, "must be > 0")
        check_schedule(self, "epsilon")


# the replayed batch DQN's loss reads (the name its tests and users know)
QBatch = ReplayBatch


def dqn_loss(
    model: torch.nn.Module, target: torch.nn.Module, batch: QBatch, double_q: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, td_error [B], stats[3]: qf_loss, q_mean, td_error_abs_mean).

    y = R + discount * Q_target(s', a*),  a* = argmax_a Q(s', a) (double Q, van Hasselt et al. 2016,
                                               eq. 4) or argmax_a Q_target(s', a), over the legal a only
    loss = mean_i w_i * Huber(Q(s_i, a_i) - y_i)   (delta 1, as RLlib and SB3)
    """
    q = model(batch.obs).gather(1, batch.actions[:, None]).squeeze(1)
    with torch.no_grad():
        q_next_target = target(batch.next_obs)
        chooser = model(batch.next_obs) if double_q else q_next_target
        best = masked_q(chooser, batch.next_mask).argmax(-1)
        q_next = q_next_target.gather(1, best[:, None]).squeeze(1)
        if batch.next_mask is not None:  # a final observation with no legal action has nothing to bootstrap
            q_next = torch.where(batch.next_mask.any(-1), q_next, torch.zeros_like(q_next))
        y = batch.rewards + batch.discounts * q_next
    td_error = q - y
    loss = (batch.weights * F.huber_loss(q, y, reduction="none", delta=1.0)).mean()
    stats = torch.stack([loss.detach(), q.detach().mean(), td_error.detach().abs().mean()])
    return loss, td_error.detach(), stats


class DQN(OffPolicyAlgorithm):
    config_class = DQNConfig
    config: DQNConfig
    policy_class = QPolicy
    stat_names = STAT_NAMES

    supports_memory = True  # R2D2: model={"use_lstm": True}

    def make_policy(
        self, observation_space: Any, action_space: Any, config: AlgorithmConfig, seed: int | None
    ) -> QPolicy:
        assert isinstance(config, DQNConfig)
        make = RecurrentQPolicy if memory_cell(config.model_config) is not None else QPolicy
        return make(
            observation_space,
            action_space,
            config.model_config,
            config.observation_filter,
            seed,
            dueling=config.dueling,
            epsilon_schedule=config.epsilon,
        )

    def build_learner(self, learner: Learner) -> None:
        """Adam on the Q-network, its target network "q", the replay buffer."""
        assert isinstance(learner, ReplayLearner)
        policy, cfg = learner.policy, learner.config
        assert isinstance(cfg, DQNConfig)
        if not isinstance(policy, QPolicy):
            raise ConfigError(
                f"DQN trains Q-network policies; policy {learner.policy_id!r} is a "
                f"{type(policy).__name__}. Leave its PolicySpec's policy_class out (DQN builds a "
                f"QPolicy), or leave it out of policies_to_train."
            )
        flat = learner.add_optimizer(MAIN_OPTIMIZER, policy.model, lambda f, lr: Adam(f, lr=lr, eps=cfg.adam_epsilon))
        learner.add_target("q", policy.model, flat)
        self.add_buffer(learner)

    def update_policy(self, policy_id: str) -> torch.Tensor:
        """One gradient step of one policy on a replayed batch; its statistics (len(STAT_NAMES))."""
        learner = self.replay_learner(policy_id)
        cfg: DQNConfig = learner.config
        if isinstance(learner.policy, RecurrentQPolicy):
            return self.update_recurrent(learner, cfg)
        batch, indices = self.replay(policy_id)
        loss, td_error, stats = dqn_loss(learner.policy.model, learner.targets["q"].module, batch, cfg.double_q)
        learner.check_finite(loss)
        norms = learner.step(loss, MAIN_OPTIMIZER)  # the gradient's norm before clipping, when grad_clip is set
        grad_norm = norms[MAIN_OPTIMIZER] if norms else torch.linalg.vector_norm(learner.flats[MAIN_OPTIMIZER].grad)
        self.update_priorities(policy_id, indices, td_error)
        return torch.cat([stats, grad_norm.reshape(1)])

    def update_recurrent(self, learner: ReplayLearner, cfg: DQNConfig) -> torch.Tensor:
        """R2D2's step (Kapturowski et al. 2019): train_batch_size stored sequences of replay_burn_in +
        max_seq_len steps, each unrolled from the state stored with its first step; the burn-in steps
        only warm the state up (no gradient, no loss); n-step double-Q targets from the target network
        unrolled over the same sequence (a step whose n-step successor lies past the sequence's end is
        not trained on, unless its episode terminated first). Sequences are drawn uniformly."""
        policy = learner.policy
        assert isinstance(policy, RecurrentQPolicy)
        model = policy.model
        target: Any = learner.targets["q"].module  # a copy of the RecurrentQNetwork
        burn = int(cfg.replay_config.get("replay_burn_in", 0))
        L = burn + int(cfg.model_config["max_seq_len"])
        seq = learner.buffer.sample_sequences(cfg.train_batch_size, L)
        D, B = policy.obs_dim, cfg.train_batch_size
        x = torch.from_numpy(policy.normalize(seq.obs[..., :D].reshape(L * B, D)).reshape(L, B, D))
        mask = torch.from_numpy(seq.obs[..., D:] > 0.5) if policy.masked else None
        invalid = (seq.flags & INVALID) != 0
        ended = (seq.flags & ENDED) != 0
        terminal = (seq.flags & TERMINATED) != 0
        starts = np.zeros((L, B), bool)
        starts[1:] = invalid[:-1]  # the step before only reset the env: an episode starts here
        starts_t, state0 = torch.from_numpy(starts), torch.from_numpy(seq.state0)
        with torch.no_grad():
            q_burn, state = model.unroll(x[:burn], state0, starts_t[:burn]) if burn else (None, state0)
            q_target, _ = target.unroll(x, state0, starts_t)
        q_train, _ = model.unroll(x[burn:], state, starts_t[burn:])
        q_online = q_train.detach() if q_burn is None else torch.cat([q_burn, q_train.detach()])
        # n-step returns inside the sequence: k steps taken (fewer where the episode ends), its end's kind
        n, gamma = cfg.n_step, cfg.gamma
        pad = np.zeros((n, B), bool)
        rewards = np.concatenate([seq.rewards, np.zeros((n, B), np.float32)])
        ended_p, terminal_p = np.concatenate([ended, pad]), np.concatenate([terminal, pad])
        ret = np.zeros((L, B), np.float64)
        steps = np.zeros((L, B), np.int64)
        alive = np.ones((L, B), bool)
        term = np.zeros((L, B), bool)
        for j in range(n):
            ret += alive * gamma**j * rewards[j : j + L]
            steps += alive
            term |= alive & terminal_p[j : j + L]
            alive &= ~ended_p[j : j + L]
        position = np.arange(L)[:, None]
        reach = position + steps  # the step whose Q is bootstrapped from
        train = ~invalid & (position >= burn) & (term | (reach <= L - 1))
        where = np.nonzero(train)
        if len(where[0]) == 0:
            return torch.zeros(len(STAT_NAMES))
        t_idx, b_idx = torch.from_numpy(where[0]), torch.from_numpy(where[1])
        nxt = torch.from_numpy(np.minimum(reach, L - 1)[where])
        with torch.no_grad():
            chooser = q_online if cfg.double_q else q_target
            chooser_next = chooser[nxt, b_idx]
            if mask is not None:
                chooser_next = masked_q(chooser_next, mask[nxt, b_idx])
            best = chooser_next.argmax(-1)
            q_next = q_target[nxt, b_idx].gather(1, best[:, None]).squeeze(1)
            discount = torch.from_numpy((~term[where]) * gamma ** steps[where]).float()
            y = torch.from_numpy(ret[where]).float() + discount * q_next
        actions = torch.from_numpy(seq.actions[where].astype(np.int64))
        q = q_train[t_idx - burn, b_idx].gather(1, actions[:, None]).squeeze(1)
        loss = F.huber_loss(q, y, delta=1.0)
        learner.check_finite(loss)
        norms = learner.step(loss, MAIN_OPTIMIZER)
        grad_norm = norms[MAIN_OPTIMIZER] if norms else torch.linalg.vector_norm(learner.flats[MAIN_OPTIMIZER].grad)
        td = (q - y).detach()
        return torch.stack([loss.detach(), q.detach().mean(), td.abs().mean(), grad_norm.reshape(())])

    def policy_metrics(self, policy_id: str) -> dict[str, float]:
        policy = self.policies[policy_id]
        assert isinstance(policy, QPolicy)  # build_learner refused any other trained policy
        return {"epsilon": policy.epsilon, "cur_lr": self.learners[policy_id].current_lr(MAIN_OPTIMIZER)}


DQNConfig.algo_class = DQN
