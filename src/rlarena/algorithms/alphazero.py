"""AlphaZero (Silver et al. 2018, "A general reinforcement learning algorithm that masters chess,
shogi and Go through self-play"): MCTS self-play over a policy/value network, for two-player
zero-sum games (rlarena.games.base.TwoPlayerGame: "connect_four", "tic_tac_toe" or your own).

Each iteration plays `train_batch_size` moves of self-play, `num_parallel_games` games at once: every
move runs `mcts_config["num_simulations"]` simulations in each game's tree, all trees batched through
the network (rlarena.games.mcts), with Dirichlet noise at the root; the move is sampled from the visit
counts for the first `temperature_moves` plies, then the most visited. The search tree below the
chosen move is kept for the next move. A finished game stores every position it passed with the
visit distribution (the policy target) and the final result from that position's mover's side (the
value target) in a replay window of `replay_buffer_config["capacity"]` positions; positions of the
game's held-out test sets are never stored. Then `num_epochs * train_batch_size / minibatch_size`
gradient steps on minibatches drawn from the window, each position under a random board symmetry:

    loss = cross_entropy(visits, softmax(masked logits)) + vf_loss_coeff * (tanh(value) - z)^2

plus decoupled weight decay `l2_coeff` (AdamW's: theta <- (1 - lr l2_coeff) theta after each Adam step,
lr the scheduled one). The network is rlarena's model (TorchPolicy), so export,
the Connect Four page and `rlarena arena` take it as they take PPO's; its value head's output goes
through tanh. Option names follow RLlib contrib's AlphaZero where it has them (`mcts_config`).

Games start from `random_opening_plies` random moves (not stored), so self-play sees diverse
positions. The network's learner (rlarena.learners, built as every algorithm's) holds Adam. A checkpoint
holds the network, the optimizer, the replay window and the counters; the games under way are not
saved (a restored run starts new ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from rlarena.algorithms import building
from rlarena.algorithms.algorithm import (
    DEFAULT_POLICY_ID,
    MAIN_OPTIMIZER,
    Algorithm,
    _seed_for,
)
from rlarena.algorithms.config import MODEL_DEFAULTS, AlgorithmConfig, NotProvided, NotProvidedType, option, provided
from rlarena.errors import CheckpointError, ConfigError
from rlarena.games.base import State, TwoPlayerGame, make_game, random_opening
from rlarena.games.mcts import MCTS, Node, SearchPolicy, check_mcts_config, masked_softmax, visit_policy
from rlarena.learners import Learner
from rlarena.multiagent.builder import default_mapping_fn
from rlarena.multiagent.policy_spec import PolicySpec
from rlarena.nn.flat import Adam
from rlarena.policies.policy import MASKED_LOGIT
from rlarena.rollout.groups import EnvRunnerGroup, EvaluationGroup, sampler_health
from rlarena.rollout.runner import Sample

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on

STAT_NAMES = ("policy_loss", "vf_loss", "entropy")


@dataclass
class AlphaZeroConfig(AlgorithmConfig):
    mcts_config: dict = option({}, "training")  # overrides of rlarena.games.mcts.MCTS_DEFAULTS
    num_parallel_games: int = option(128, "training", bound="MAX_ENVS")  # self-play games searched together (one batch)
    random_opening_plies: list = option([0, 2], "training")  # [min, max] random moves before self-play
    replay_buffer_config: dict = option({"capacity": 200_000}, "training")  # positions kept
    num_steps_sampled_before_learning_starts: int = option(2_000, "training")  # positions
    minibatch_size: int = option(256, "training", bound="MAX_BATCH")
    num_epochs: int = option(
        1, "training", bound="MAX_EPOCHS"
    )  # gradient steps = num_epochs * train_batch_size / minibatch_size
    vf_loss_coeff: float = option(1.0, "training")
    l2_coeff: float = option(1e-4, "training")  # decoupled weight decay
    # AlphaZero's own defaults for options every algorithm has
    train_batch_size: int = option(2048, "training")  # self-play moves per iteration
    lr: float = option(1e-3, "training")
    grad_clip: float | None = option(None, "training")
    # 0: self-play in this process, between updates; N: N forked processes play self-play while this
    # one learns (rlarena.rollout.async_sampling: each plays with the weights of the update before)
    num_self_play_workers: int = option(0, "training", role="how many")

    def training(
        self,
        *,
        mcts_config: dict | NotProvidedType = NotProvided,
        num_parallel_games: int | NotProvidedType = NotProvided,
        random_opening_plies: list | NotProvidedType = NotProvided,
        replay_buffer_config: dict | NotProvidedType = NotProvided,
        num_steps_sampled_before_learning_starts: int | NotProvidedType = NotProvided,
        minibatch_size: int | NotProvidedType = NotProvided,
        num_epochs: int | NotProvidedType = NotProvided,
        vf_loss_coeff: float | NotProvidedType = NotProvided,
        l2_coeff: float | NotProvidedType = NotProvided,
        train_batch_size: int | NotProvidedType = NotProvided,
        lr: float | NotProvidedType = NotProvided,
        grad_clip: float | None | NotProvidedType = NotProvided,
        num_self_play_workers: int | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to AlgorithmConfig.training()."""
        return super().training(**provided(locals()))

    @property
    def mcts(self) -> dict[str, Any]:
        """mcts_config over rlarena.games.mcts.MCTS_DEFAULTS, checked."""
        return check_mcts_config(self.mcts_config)

    def sizes(self) -> list[tuple[str, Any, str]]:
        return [
            *super().sizes(),
            ("replay_buffer_config.capacity", self.replay_buffer_config.get("capacity"), "MAX_REPLAY"),
            ("mcts_config.num_simulations", self.mcts_config.get("num_simulations"), "MAX_SIMULATIONS"),
        ]

    @property
    def model_config(self) -> dict[str, Any]:
        """The model options: rlarena's defaults, then the game's (TwoPlayerGame.default_model), then `model`."""
        return {**MODEL_DEFAULTS, **make_game(self.env).default_model, **self.model}

    def validate(self) -> None:
        super().validate()
        self.mcts  # noqa: B018  # checks mcts_config
        self._check("num_parallel_games", self.num_parallel_games >= 1, "must be >= 1")
        lo_hi = self.random_opening_plies
        self._check(
            "random_opening_plies",
            len(lo_hi) == 2 and all(isinstance(x, int) for x in lo_hi) and 0 <= lo_hi[0] <= lo_hi[1],
            "must be [min, max] with 0 <= min <= max",
        )
        capacity = self.replay_buffer_config.get("capacity")
        self._check(
            "replay_buffer_config",
            set(self.replay_buffer_config) <= {"capacity"}
            and isinstance(capacity, int)
            and capacity >= self.minibatch_size,
            "must be {'capacity': N} with N >= minibatch_size (positions kept)",
        )
        self._check("minibatch_size", self.minibatch_size >= 1, "must be >= 1")
        self._check("num_epochs", self.num_epochs >= 1, "must be >= 1")
        self._check(
            "num_steps_sampled_before_learning_starts",
            self.num_steps_sampled_before_learning_starts >= 0,
            "must be >= 0",
        )
        self._check("vf_loss_coeff", self.vf_loss_coeff >= 0, "must be >= 0")
        self._check("l2_coeff", self.l2_coeff >= 0, "must be >= 0")
        self._check("num_self_play_workers", self.num_self_play_workers >= 0, "must be >= 0 (0: in this process)")


class ReplayWindow:
    """The last `capacity` positions: encoded boards (uint8), legal moves, visit distributions and
    results, in preallocated numpy arrays (a ring)."""

    def __init__(self, capacity: int, obs_dim: int, num_actions: int):
        self.obs = np.zeros((capacity, obs_dim), np.uint8)
        self.legal = np.zeros((capacity, num_actions), np.uint8)
        self.pi = np.zeros((capacity, num_actions), np.float32)
        self.z = np.zeros(capacity, np.float32)
        self.size = self.next = 0

    def add(self, obs: np.ndarray, legal: np.ndarray, pi: np.ndarray, z: np.ndarray) -> None:
        rows = (self.next + np.arange(len(obs))) % len(self.z)  # the ring's next slots, wrapping
        self.obs[rows], self.legal[rows], self.pi[rows], self.z[rows] = obs, legal, pi, z
        self.next = int(rows[-1] + 1) % len(self.z) if len(rows) else self.next
        self.size = min(self.size + len(rows), len(self.z))

    def arrays(self) -> dict[str, np.ndarray]:
        n = self.size
        return {
            "obs": self.obs[:n].copy(),
            "legal": self.legal[:n].copy(),
            "pi": self.pi[:n].copy(),
            "z": self.z[:n].copy(),
            "next": np.array([self.next % max(n, 1)], np.int64),
        }

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        n = min(len(arrays["z"]), len(self.z))
        self.obs[:n], self.legal[:n], self.pi[:n], self.z[:n] = (
            arrays["obs"][:n],
            arrays["legal"][:n],
            arrays["pi"][:n],
            arrays["z"][:n],
        )
        self.size, self.next = n, int(arrays["next"][0]) % len(self.z)


@dataclass
class GameRecord:
    """A finished self-play game: its length, the first player's score (win 1, draw 0.5), how many of
    its positions were held out, and the positions kept (None when none was) with their targets."""

    plies: int
    first_player_score: float
    skipped: int
    obs: np.ndarray | None = None  # [n, obs_dim] uint8
    legal: np.ndarray | None = None  # [n, num_actions] uint8
    pi: np.ndarray | None = None  # [n, num_actions] visit distributions
    z: np.ndarray | None = None  # [n] results for each position's mover


class SelfPlayRunner:
    """The runner of a self-play process (the runner contract of rlarena.rollout.async_sampling):
    sample() plays `moves` moves of its games and hands over the games that ended."""

    def __init__(self, algorithm: AlphaZero, moves: int):
        self.algorithm, self.moves = algorithm, moves

    @property
    def policies(self) -> dict[str, Any]:
        return self.algorithm.policies

    def get_state(self) -> dict[str, Any]:
        return self.algorithm._network_state()

    def set_state(self, state: dict[str, Any]) -> None:
        self.algorithm.policy.set_state(state[DEFAULT_POLICY_ID])

    def reset(self, seed: int | None) -> None:
        """Games under way restart (from the algorithm's random stream)."""
        algo = self.algorithm
        algo.games = [algo._new_game() for _ in range(algo.config.num_parallel_games)]

    def close(self) -> None:
        """No env to close: the games are the algorithm's."""

    def sample(self) -> Sample:
        algo = self.algorithm
        steps = algo._self_play(self.moves)
        records, algo._records = algo._records, []
        assert records is not None  # the runner collects its finished games (_self_play_runner, SelfPlayGroup)
        return Sample({}, steps, records)


class SelfPlayGroup(EnvRunnerGroup):
    """AlphaZero's runner group (rlarena.rollout.groups): with num_self_play_workers, that many forked
    processes play games with the latest network (started at the first sample, sent the network after
    each update by broadcast()); without, this process plays them (its runner). Either way sample()
    hands over the games that ended, at least train_batch_size moves' worth of play."""

    def __init__(self, algorithm: AlphaZero):
        super().__init__(SelfPlayRunner(algorithm, algorithm.config.train_batch_size))
        self.algorithm = algorithm
        self.sampler: Any = None  # rlarena.rollout.async_sampling.AsyncSampler, made at the first sample
        self.last: dict[str, float] = {}  # what the last poll of the self-play processes saw

    def sample(self) -> Sample:
        from rlarena.rollout.async_sampling import AsyncSampler, fragments_sample, policy_lag

        algo, cfg = self.algorithm, self.algorithm.config
        if not cfg.num_self_play_workers:
            algo._records = []
            try:
                return self.runner.sample()
            finally:
                algo._records = None
        if self.sampler is None:
            self.sampler = AsyncSampler(
                cfg,
                algo.env_name,
                cfg.num_self_play_workers,
                algo._self_play_runner,
                lambda runner: {},
                algo._network_state(),
            )
        fragments = self.sampler.poll(cfg.train_batch_size)
        self.last = {"policy_lag": policy_lag(fragments, self.sampler.version), "num_fragments": len(fragments)}
        return fragments_sample(fragments)

    def broadcast(self) -> None:
        if self.sampler is not None:
            self.sampler.broadcast(self.algorithm._network_state())

    def reset(self, seed_for: Any) -> None:
        """Games under way restart; the self-play processes start again with this process's network."""
        algo = self.algorithm
        self.runner.reset(None)
        if self.sampler is not None:
            self.sampler.reset(algo._network_state())

    @property
    def health(self) -> dict[str, int]:
        return sampler_health(self.sampler)

    @property
    def stats(self) -> dict[str, float]:
        return self.last

    def stop(self) -> None:
        self.algorithm.games = []
        if self.sampler is not None:
            self.sampler.close()
            self.sampler = None

    def num_remote_env_runners(self) -> int:
        return self.algorithm.config.num_self_play_workers


class MatchEvaluation:
    """AlphaZero's evaluation group: the network alone (greedy) and the search agent against a uniformly
    random player, from random openings of 0-2 plies (fresh ones each time), both seats,
    `evaluation_duration` games each: mean scores (win 1, draw 0.5)."""

    def __init__(self, algorithm: AlphaZero):
        self.algorithm = algorithm

    def start(self, seed: int | None) -> int | None:
        return seed

    def finish(self, started: int | None) -> dict[str, float]:
        algo = self.algorithm
        game = algo.game
        rng = np.random.default_rng(started)
        search = algo.search_policy(seed=int(rng.integers(2**31)))

        def network(states: list[State]) -> np.ndarray:
            obs = game.encode(states)
            legal = np.stack([game.legal_moves(s) for s in states])
            return algo.network_evaluator(obs, legal)[0].argmax(-1)

        def searcher(states: list[State]) -> np.ndarray:
            return np.array([int(np.argmax(visit_policy(r, None))) for r in search.search(states)])

        def random_player(states: list[State]) -> np.ndarray:
            return np.array([int(rng.choice(np.flatnonzero(game.legal_moves(s)))) for s in states])

        n = algo.config.evaluation_duration
        return {
            "network_score_vs_random": play_match(game, network, random_player, n, rng),
            "search_score_vs_random": play_match(game, searcher, random_player, n, rng),
        }

    def stop(self) -> None:
        """Nothing runs elsewhere."""


class _Game:
    """One self-play game under way."""

    __slots__ = ("history", "root")

    def __init__(self, root: Node):
        self.root = root
        self.history: list[tuple[State, np.ndarray]] = []  # (state, visit distribution) per searched move


class AlphaZero(Algorithm):
    config_class: ClassVar[type[AlphaZeroConfig]] = AlphaZeroConfig
    config: AlphaZeroConfig
    data_mode = "none"  # its own loop: no logged data in or out
    # a network-only checkpoint (save(include_training_state=False)) holds no optimizer: a fresh Adam
    restore_missing_ok = True

    game: TwoPlayerGame

    def setup_data(self) -> None:
        """Self-play needs no env: the game, and one network for both seats (a multi-agent algorithm
        whose every agent maps to the one policy), built as every algorithm builds its policy."""
        config = self.config
        self.game = make_game(config.env)
        self.env_name = self.game.name
        n = self.game.num_actions
        obs_space = gym.spaces.Dict(
            {
                "observation": gym.spaces.Box(0, 1, self.game.observation_shape, np.int8),
                "action_mask": gym.spaces.Box(0, 1, (n,), np.int8),
            }
        )
        self.is_multi_agent = False  # the spaces are the game's, not read from an env's agents
        building.add_policy_object(self, DEFAULT_POLICY_ID, PolicySpec(None, obs_space, gym.spaces.Discrete(n)))
        self.is_multi_agent, self.mapping_fn = True, default_mapping_fn
        self.policies_to_train = [DEFAULT_POLICY_ID]
        self.num_episodes_lifetime = 0
        self.obs_dim = int(np.prod(self.game.observation_shape))
        self.replay = ReplayWindow(config.replay_buffer_config["capacity"], self.obs_dim, n)
        self.symmetries = [(np.arange(self.obs_dim), np.arange(n)), *self.game.symmetries()]
        self.held_out = self.game.held_out_keys()
        mc = config.mcts
        self.mcts = MCTS(
            self.game,
            self.network_evaluator,
            mc["puct_coefficient"],
            mc["dirichlet_epsilon"],
            mc["dirichlet_noise"],
            rng=self.rng,
            solver=mc["mcts_solver"],
        )
        self.num_held_out_skipped = 0
        self.games = [self._new_game() for _ in range(config.num_parallel_games)]
        self._finished: list[tuple[int, float]] = []  # (plies, first player's score) of games ended this iteration
        self._records: list[GameRecord] | None = None  # the finished games a runner collects, to hand over

    def make_runner_group(self) -> EnvRunnerGroup:
        return SelfPlayGroup(self)

    def make_evaluation_group(self) -> EvaluationGroup:
        return MatchEvaluation(self)

    def build_learner(self, learner: Learner) -> None:
        learner.add_optimizer(MAIN_OPTIMIZER, learner.policy.model, lambda flat, lr: Adam(flat, lr))

    # -- the network ------------------------------------------------------------------------------
    def network_evaluator(self, obs: np.ndarray, legal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """MCTS's evaluator: encoded positions -> (priors over legal moves, tanh(value))."""
        with torch.inference_mode():
            logits, value = self.policy.model(torch.from_numpy(obs.reshape(len(obs), -1)))
        return masked_softmax(logits.numpy().astype(np.float64), legal), np.tanh(value.numpy().astype(np.float64))

    def search_policy(
        self, num_simulations: int | None = None, seed: int | None = None, leaves_per_call: int = 1
    ) -> SearchPolicy:
        """The search agent: MCTS over this network (a Policy for the game's env, arena and page);
        `leaves_per_call` > 1 batches several leaves of one tree per network call (virtual loss)."""
        mc = self.config.mcts
        return SearchPolicy(
            self.game,
            self.network_evaluator,
            num_simulations or mc["num_simulations"],
            mc["puct_coefficient"],
            seed=seed,
            observation_space=self.policy.observation_space,
            action_space=self.policy.action_space,
            solver=mc["mcts_solver"],
            leaves_per_call=leaves_per_call,
        )

    # -- self-play --------------------------------------------------------------------------------
    def _new_game(self) -> _Game:
        return _Game(self.mcts.new_root(random_opening(self.game, self.rng, *self.config.random_opening_plies)))

    def _self_play(self, num_moves: int) -> int:
        """Play at least `num_moves` moves of the games under way (all games move together); returns the
        moves played."""
        mc = self.config.mcts
        played = 0
        while played < num_moves:
            self.mcts.search([g.root for g in self.games], mc["num_simulations"], noise=mc["add_dirichlet_noise"])
            for i, g in enumerate(self.games):
                root = g.root
                ply = len(g.history)
                explore = ply < mc["temperature_moves"] and not mc["argmax_tree_policy"]
                play = visit_policy(root, mc["temperature"] if explore else None)
                action = int(self.rng.choice(len(play), p=play))
                g.history.append((root.state, visit_policy(root, 1.0)))
                child = root.children.get(action)
                g.root = child if child is not None else self.mcts.new_root(self.game.step(root.state, action))
                played += 1
                if g.root.terminal is not None:
                    self._store(g)
                    self.games[i] = self._new_game()
        return played

    def _store(self, g: _Game) -> None:
        """A finished game into the replay window (or, in a self-play process, to hand over)."""
        record = self._record(g)
        if self._records is not None:
            self._records.append(record)
        else:
            self._add(record)

    def _record(self, g: _Game) -> GameRecord:
        """A finished game's positions, each with the result for its mover; held-out positions left out."""
        final = g.root.state
        assert g.root.terminal is not None  # a finished game ends in a terminal position
        result, last = float(g.root.terminal), self.game.to_play(final)
        keep = [(s, pi) for s, pi in g.history if self.game.key(s) not in self.held_out]
        first_player = result if last == 0 else -result
        record = GameRecord(len(g.history), (first_player + 1) / 2, len(g.history) - len(keep))
        if keep:
            states = [s for s, _ in keep]
            record.obs = self.game.encode(states).reshape(len(states), -1).astype(np.uint8)
            record.legal = np.stack([self.game.legal_moves(s) for s in states]).astype(np.uint8)
            record.pi = np.stack([pi for _, pi in keep])
            record.z = np.array([result if self.game.to_play(s) == last else -result for s in states], np.float32)
        return record

    def _add(self, record: GameRecord) -> None:
        self.num_held_out_skipped += record.skipped
        self.num_episodes_lifetime += 1
        self._finished.append((record.plies, record.first_player_score))
        if record.obs is not None:  # positions kept: _record sets their targets with them
            assert record.legal is not None and record.pi is not None and record.z is not None
            self.replay.add(record.obs, record.legal, record.pi, record.z)

    # -- self-play in other processes (num_self_play_workers: SelfPlayGroup) ------------------------
    def _network_state(self) -> dict[str, Any]:
        return {DEFAULT_POLICY_ID: self.policy.get_state()}

    def _self_play_runner(self, worker_index: int, restarts: int) -> SelfPlayRunner:
        """Called in a forked self-play process: this algorithm's copy there plays its own games."""
        cfg = self.config
        self.rng = np.random.default_rng(_seed_for(cfg.seed, 3, worker_index, restarts))
        self.mcts.rng = self.rng
        self.games = [self._new_game() for _ in range(cfg.num_parallel_games)]
        self._records = []
        return SelfPlayRunner(self, -(-cfg.train_batch_size // cfg.num_self_play_workers))

    # -- learning ---------------------------------------------------------------------------------
    def _learn(self, num_steps: int) -> dict[str, float]:
        cfg, model, learner = self.config, self.policy.model, self.learners[DEFAULT_POLICY_ID]
        flat, opt = learner.flats[MAIN_OPTIMIZER], learner.optimizers[MAIN_OPTIMIZER]
        sums = np.zeros(len(STAT_NAMES))
        for _ in range(num_steps):
            idx = self.rng.integers(self.replay.size, size=cfg.minibatch_size)
            obs, legal, pi = self.replay.obs[idx], self.replay.legal[idx], self.replay.pi[idx]
            sym = self.rng.integers(len(self.symmetries), size=len(idx))
            for k in range(1, len(self.symmetries)):  # each position under a random board symmetry
                rows = np.flatnonzero(sym == k)
                if len(rows):
                    obs_perm, act_perm = self.symmetries[k]
                    obs[rows] = obs[rows][:, obs_perm]
                    legal[rows], pi[rows] = legal[rows][:, act_perm], pi[rows][:, act_perm]
            x = torch.from_numpy(obs.astype(np.float32))
            logits, value = model(x)
            logits = logits.masked_fill(torch.from_numpy(legal == 0), MASKED_LOGIT)
            logp = F.log_softmax(logits, dim=-1)
            target = torch.from_numpy(pi)
            policy_loss = -(target * logp).sum(-1).mean()
            vf_loss = F.mse_loss(torch.tanh(value), torch.from_numpy(self.replay.z[idx]))
            loss = policy_loss + cfg.vf_loss_coeff * vf_loss
            learner.check_finite(loss)
            learner.step(loss, MAIN_OPTIMIZER)
            if cfg.l2_coeff:  # decoupled, at the learning rate of the step just taken (AdamW)
                flat.param.mul_(1.0 - opt.lr * cfg.l2_coeff)
            with torch.no_grad():
                entropy = -(logp.exp() * logp).sum(-1).mean()
            sums += [policy_loss.item(), vf_loss.item(), entropy.item()]
        return {name: float(v / max(num_steps, 1)) for name, v in zip(STAT_NAMES, sums)}

    def training_step(self) -> dict[str, float]:
        cfg = self.config
        sample = self.env_runner_group.sample()
        for record in sample.episodes:
            self._add(record)
        self.num_env_steps_sampled_lifetime += sample.steps
        if self.replay.size < max(cfg.num_steps_sampled_before_learning_starts, cfg.minibatch_size):
            return {}
        stats = self._learn(max(1, cfg.num_epochs * cfg.train_batch_size // cfg.minibatch_size))
        self.env_runner_group.broadcast()
        return stats

    def _episode_metrics(self) -> tuple[dict[str, Any], dict[str, list]]:
        games, self._finished = self._finished, []
        return {
            "num_episodes_lifetime": self.num_episodes_lifetime,
            "num_episodes": len(games),
            "episode_len_mean": float(np.mean([n for n, _ in games])) if games else math.nan,
            "self_play/first_player_score": float(np.mean([s for _, s in games])) if games else math.nan,
            "replay_size": self.replay.size,
            "num_held_out_positions_skipped": self.num_held_out_skipped,
        }, {}

    def _learner_stats_by_policy(self, stats: dict[str, float]) -> dict[str, dict[str, float]]:
        return {DEFAULT_POLICY_ID: dict(stats)}

    # -- evaluation and inference -----------------------------------------------------------------
    def compute_single_action(
        self,
        observation: Any = None,
        state: Any = None,
        explore: bool | None = None,
        policy_id: str = DEFAULT_POLICY_ID,
        *,
        obs: Any = None,
        prev_action: Any = None,
        prev_reward: Any = None,
        **kwargs: Any,
    ) -> Any:
        """The search agent's move for one observation of the game's env ({"observation", "action_mask"}
        or the planes alone); `explore=True` samples from the visit counts. A search agent has no
        recurrent state: a bool in `state`'s place is taken as `explore`."""
        if isinstance(state, bool):
            explore = state
        if observation is None:
            observation = obs
        planes = observation["observation"] if isinstance(observation, dict) else observation
        batch = {"observation": np.asarray(planes)[None]}
        return int(self.search_policy().compute_actions(batch, explore=bool(explore))[0])

    def compute_actions(self, obs_batch: Any, explore: bool | None = None, policy_id: str = DEFAULT_POLICY_ID) -> Any:
        return self.search_policy().compute_actions(obs_batch, explore=bool(explore))

    # -- checkpoints ------------------------------------------------------------------------------
    def save(self, checkpoint_dir: Any = None, include_training_state: bool = True) -> str:
        """Write a checkpoint; `include_training_state=False` writes the network alone (no optimizer
        state, no replay window): a small file to ship for inference. Loaded, such a checkpoint can
        still train, from a fresh optimizer and an empty window."""
        self._network_only = not include_training_state
        try:
            return super().save(checkpoint_dir)
        finally:
            self._network_only = False

    def _state_arrays(self) -> dict[str, dict[str, np.ndarray]]:
        arrays = super()._state_arrays()
        if getattr(self, "_network_only", False):
            return {key: arrays[key] for key in ("rng", f"policy.{DEFAULT_POLICY_ID}")}
        arrays["replay"] = self.replay.arrays()
        return arrays

    def get_state(self) -> dict[str, Any]:
        policy = self.policy
        return {
            "counters": {
                "iteration": self.iteration,
                "num_env_steps_sampled_lifetime": self.num_env_steps_sampled_lifetime,
                "time_total_s": self.time_total_s,
                "num_evaluations": self.num_evaluations,
                "num_episodes_lifetime": self.num_episodes_lifetime,
                "num_held_out_positions_skipped": self.num_held_out_skipped,
            },
            "episode_window": [],
            "policies": {
                DEFAULT_POLICY_ID: {
                    "policy_class": None,
                    "observation_space": policy.observation_space,
                    "action_space": policy.action_space,
                }
            },
            "policies_to_train": [DEFAULT_POLICY_ID],
            "rng": {
                "algorithm": self.rng.bit_generator.state,
                "policies": {DEFAULT_POLICY_ID: policy.rng.bit_generator.state},
            },
            "arrays": self._state_arrays(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or not {"counters", "arrays", "rng"} <= set(state):
            raise ConfigError("set_state() takes what AlphaZero.get_state() returned.")
        self._restore(state, state["arrays"])

    def _restore(self, meta: dict[str, Any], arrays: dict[str, dict[str, np.ndarray]]) -> None:
        try:
            self.policy.set_state(arrays[f"policy.{DEFAULT_POLICY_ID}"])
            self._restore_learners(arrays, self.restore_missing_ok)  # no optimizer in a network-only checkpoint
            torch.set_rng_state(torch.from_numpy(arrays["rng"]["torch"].copy()))
            if "replay" in arrays:
                self.replay.load(arrays["replay"])
            counters = meta["counters"]
            self.iteration = int(counters["iteration"])
            self.num_env_steps_sampled_lifetime = int(counters["num_env_steps_sampled_lifetime"])
            self.time_total_s = float(counters["time_total_s"])
            self.num_evaluations = int(counters["num_evaluations"])
            self.num_episodes_lifetime = int(counters["num_episodes_lifetime"])
            self.num_held_out_skipped = int(counters.get("num_held_out_positions_skipped", 0))
            self.rng.bit_generator.state = meta["rng"]["algorithm"]
            self.policy.rng.bit_generator.state = meta["rng"]["policies"][DEFAULT_POLICY_ID]
        except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as exc:
            detail = " ".join(str(exc).split())
            raise CheckpointError(
                f"Checkpoint does not match this AlphaZero ({type(exc).__name__}: {detail}). "
                f"Was it saved with a different game or model?"
            ) from exc
        self.env_runner_group.reset(lambda i: None)  # games under way restart, self-play processes too

    def __repr__(self) -> str:
        return f"AlphaZero(game={self.env_name!r}, iteration={self.iteration})"


def play_match(
    game: TwoPlayerGame,
    player,
    opponent,
    games_per_seat: int,
    rng: np.random.Generator,
    opening_plies: tuple[int, int] = (0, 2),
) -> float:
    """The mean score (win 1, draw 0.5, loss 0) of `player` against `opponent`, each a function
    (list of positions) -> moves, over `games_per_seat` games in each seat, all games played as
    one batch, each from a random opening of `opening_plies` random moves."""
    states, seats = [], []
    for seat in (0, 1):
        for _ in range(games_per_seat):
            states.append(random_opening(game, rng, *opening_plies))
            seats.append(seat)
    scores = np.zeros(len(states))
    live = list(range(len(states)))
    while live:
        for who, fn in ((True, player), (False, opponent)):
            idx = [
                i
                for i in live
                if game.terminal_value(states[i]) is None and (game.to_play(states[i]) == seats[i]) == who
            ]
            if idx:
                for i, a in zip(idx, fn([states[i] for i in idx])):
                    states[i] = game.step(states[i], int(a))
        still = []
        for i in live:
            result = game.terminal_value(states[i])
            if result is None:
                still.append(i)
            else:  # the result is the mover's; the player is the mover when it is its seat's turn
                mine = result if game.to_play(states[i]) == seats[i] else -result
                scores[i] = (mine + 1) / 2
        live = still
    return float(scores.mean())


AlphaZeroConfig.algo_class = AlphaZero
