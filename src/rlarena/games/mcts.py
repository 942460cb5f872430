"""Monte Carlo tree search with PUCT over a policy/value network (AlphaZero: Silver et al. 2018),
batched across many trees, in numpy (no torch: the served agent runs it on onnxruntime).

One simulation walks each tree from its root to a leaf, choosing at every node the move that
maximizes

    Q(s, a) + c_puct * P(s, a) * sqrt(N(s) + 1) / (1 + N(s, a))

(Q: the mean value of the move for the player choosing it, 0 for a move not yet tried; P: the
network's prior; N: visit counts). The leaves of all trees go through the network in one batch; each
is expanded with its priors, and its value is backed up along its path, negated at every ply (the
players alternate). A finished game's leaf is valued exactly by the rules. The root's visit counts
are the search's policy.

    mcts = MCTS(game, evaluator, puct_coefficient=1.5)
    roots = [Node(game.initial_state())]
    mcts.search(roots, num_simulations=200)
    visits = roots[0].visits                 # [num_actions]

`evaluator(obs [B, *observation_shape], legal bool [B, A]) -> (priors [B, A], values [B])`, values
in [-1, 1] for the player to move at each position.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rlarena.errors import ConfigError
from rlarena.games.base import State, TwoPlayerGame
from rlarena.policies.policy import Policy

Evaluator = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
# leaves of one tree per network call when one game is searched for play (the page, the arena):
# 8,000 simulations take 0.66 s a move on 2 cores with 8, 2,400 take ~0.5 s with 1 (benchmarks/README.md)
SERVE_LEAVES_PER_CALL = 8

# RLlib contrib AlphaZero's mcts_config names; `temperature_moves` is ours (AlphaZero's "the first
# 30 moves are sampled at temperature 1, later ones are greedy", counted in plies of the game)
MCTS_DEFAULTS: dict[str, Any] = {
    "puct_coefficient": 1.5,
    "num_simulations": 100,
    "temperature": 1.0,
    "temperature_moves": 12,
    "dirichlet_epsilon": 0.25,
    "dirichlet_noise": 1.0,  # Dirichlet alpha; AlphaZero used ~10 / (typical number of legal moves)
    "argmax_tree_policy": False,
    "add_dirichlet_noise": True,
    "mcts_solver": True,  # ours: exact values of finished games climb the tree (MCTS-Solver, Winands et al. 2008)
}


def check_mcts_config(options: Mapping[str, Any]) -> dict[str, Any]:
    """MCTS_DEFAULTS updated by `options`, each checked; raises ConfigError naming a bad key."""
    unknown = sorted(set(options) - set(MCTS_DEFAULTS))
    if unknown:
        raise ConfigError(f"Unknown mcts_config key(s) {unknown}: valid keys are {sorted(MCTS_DEFAULTS)}.")
    out = {**MCTS_DEFAULTS, **options}
    rules = {
        "puct_coefficient": out["puct_coefficient"] > 0,
        "num_simulations": out["num_simulations"] >= 1,
        "temperature": out["temperature"] > 0,
        "temperature_moves": out["temperature_moves"] >= 0,
        "dirichlet_epsilon": 0 <= out["dirichlet_epsilon"] <= 1,
        "dirichlet_noise": out["dirichlet_noise"] > 0,
    }
    for key, ok in rules.items():
        if isinstance(out[key], bool) or not isinstance(out[key], int | float) or not ok:
            raise ConfigError(
                f"Invalid mcts_config {key}={out[key]!r}: see rlarena.games.mcts.MCTS_DEFAULTS "
                f"(num_simulations and temperature_moves >= 1 and >= 0, coefficients > 0, "
                f"dirichlet_epsilon in [0, 1])."
            )
    for key in ("argmax_tree_policy", "add_dirichlet_noise", "mcts_solver"):
        if not isinstance(out[key], bool):
            raise ConfigError(f"Invalid mcts_config {key}={out[key]!r}: must be True or False.")
    out["num_simulations"], out["temperature_moves"] = int(out["num_simulations"]), int(out["temperature_moves"])
    return out


_UNSET: list[float] = []  # a node's statistics before it is expanded (never written to)


class Node:
    """A position in a search tree. The statistics of its moves are Python lists indexed by move (a
    simulation reads a few numbers per node, where numpy's per-call cost is several times the
    arithmetic: benchmarks/README.md, AlphaZero); `visits`, `value_sum`, `prior` and `exact` give
    them as arrays."""

    __slots__ = ("children", "ex", "legal", "moves", "n", "p", "proven", "state", "terminal", "total", "w")

    def __init__(self, state: State, terminal: float | None = None):
        self.state = state
        self.terminal = terminal  # the result for the player to move, once the game is over
        self.proven = terminal  # the exact value for the player to move, once known (the solver)
        self.ex: list[float] | None = None  # each move's exact value when proven, else nan
        self.p: list[float] | None = None  # the priors P(s, a), set when expanded
        self.legal: np.ndarray | None = None  # bool [A]
        self.moves: tuple[int, ...] = ()  # the legal moves
        self.n: list[float] = _UNSET  # N(s, a), set when expanded
        self.w: list[float] = _UNSET  # W(s, a), from this node's mover's side
        self.total = 0.0  # N(s): the sum of n
        self.children: dict[int, Node] = {}

    @property
    def expanded(self) -> bool:
        return self.p is not None

    @property
    def visits(self) -> np.ndarray:
        return np.array(self.n, np.float64)

    @property
    def value_sum(self) -> np.ndarray:
        return np.array(self.w, np.float64)

    @property
    def prior(self) -> np.ndarray | None:
        return None if self.p is None else np.array(self.p, np.float64)

    @property
    def exact(self) -> np.ndarray | None:
        return None if self.ex is None else np.array(self.ex, np.float64)

    def q_values(self) -> np.ndarray:
        """Q(s, a): the mean value of each move for the player to move here (0 when unvisited)."""
        return self.value_sum / np.maximum(self.visits, 1)


def masked_softmax(logits: np.ndarray, legal: np.ndarray) -> np.ndarray:
    z = np.where(legal, logits, -np.inf)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


class MCTS:
    def __init__(
        self,
        game: TwoPlayerGame,
        evaluator: Evaluator,
        puct_coefficient: float = 1.5,
        dirichlet_epsilon: float = 0.25,
        dirichlet_noise: float = 1.0,
        rng: np.random.Generator | None = None,
        solver: bool = True,
    ):
        self.game, self.evaluator, self.c_puct, self.solver = game, evaluator, float(puct_coefficient), solver
        self.eps, self.alpha = float(dirichlet_epsilon), float(dirichlet_noise)
        self.rng = rng if rng is not None else np.random.default_rng()

    def new_root(self, state: State) -> Node:
        return Node(state, self.game.terminal_value(state))

    def _select(self, root: Node) -> tuple[Node, list[tuple[Node, int]]]:
        node, path, c_puct = root, [], self.c_puct
        while node.p is not None and node.proven is None:
            n, w, p, exact = node.n, node.w, node.p, node.ex
            k = c_puct * math.sqrt(node.total + 1.0)
            best, a = -math.inf, node.moves[0]
            for m in node.moves:
                if exact is not None and exact[m] == -1.0:
                    continue  # the solver proved this move loses: never tried
                nm = n[m]
                score = (w[m] / nm if nm else 0.0) + k * p[m] / (1.0 + nm)
                if score > best:
                    best, a = score, m
            path.append((node, a))
            child = node.children.get(a)
            if child is None:
                state = self.game.step(node.state, a)
                child = node.children[a] = Node(state, self.game.terminal_value(state))
            node = child
        return node, path

    def _backup(self, path: list[tuple[Node, int]], value: float, proven: float | None) -> None:
        """`value` is the leaf's, for the player to move there; each parent sees its negation. With
        the solver on, a `proven` leaf value climbs as far as it stays exact: a parent with a move to
        a position lost for the opponent is won; a parent all of whose moves are proven is worth the
        best of them."""
        for node, a in reversed(path):
            value = -value
            node.n[a] += 1.0
            node.w[a] += value
            node.total += 1.0
            if proven is None or not self.solver:
                continue
            if node.ex is None:
                node.ex = [math.nan] * len(node.n)
            node.ex[a] = -proven
            if -proven == 1.0:
                node.proven = 1.0
            else:
                known = [node.ex[m] for m in node.moves]
                node.proven = None if any(math.isnan(v) for v in known) else max(known)
            proven = node.proven

    def _expand(self, leaves: list[Node]) -> np.ndarray:
        """Run the network on `leaves` (unexpanded, not terminal), set their priors; their values."""
        legal = np.stack([self.game.legal_moves(n.state) for n in leaves])
        priors, values = self.evaluator(self.game.encode([n.state for n in leaves]), legal)
        zeros = [0.0] * self.game.num_actions
        masked = np.where(legal, np.asarray(priors, np.float64), 0.0).tolist()
        for node, p, ok, flags in zip(leaves, masked, legal, legal.tolist()):
            node.p, node.legal, node.moves = p, ok, tuple(m for m, flag in enumerate(flags) if flag)
            node.n, node.w, node.total = zeros.copy(), zeros.copy(), 0.0
        return np.asarray(values, np.float64)

    def add_noise(self, root: Node) -> None:
        """Mix Dirichlet noise into an expanded root's priors (exploration in self-play)."""
        if self.eps > 0 and root.expanded and root.terminal is None:
            legal = list(root.moves)
            noise = np.zeros(len(root.p))
            noise[legal] = self.rng.dirichlet(np.full(len(legal), self.alpha))
            root.p = ((1 - self.eps) * root.prior + self.eps * noise).tolist()

    def search(
        self, roots: Sequence[Node], num_simulations: int, noise: bool = False, leaves_per_call: int = 1
    ) -> None:
        """Run `num_simulations` simulations in every (not finished) root, batching the leaves of all
        trees into one network call. Roots are expanded first (and get Dirichlet noise when `noise`);
        a root that is already expanded keeps its statistics (a reused subtree).

        `leaves_per_call` > 1 also batches several leaves of one tree per call (AlphaGo's virtual
        loss: a path waiting for its value counts as a lost visit, so the next selection looks
        elsewhere): fewer, larger network calls, which is what a single game searched on CPU needs."""
        live = [r for r in roots if r.terminal is None]
        fresh = [r for r in live if not r.expanded]
        if fresh:
            self._expand(fresh)
        if noise:
            for root in live:
                self.add_noise(root)
        done = 0
        while done < num_simulations:
            per_tree = min(leaves_per_call, num_simulations - done)
            leaves, paths, pending = [], [], set()
            for root in live:
                for _ in range(per_tree):
                    if root.proven is not None and self.solver:
                        break  # solved: more simulations change nothing
                    leaf, path = self._select(root)
                    if leaf.proven is not None:  # a finished game, or a position the solver proved
                        self._backup(path, leaf.proven, leaf.proven)
                        continue
                    if per_tree > 1:
                        if id(leaf) in pending:
                            break  # the tree leads back to a waiting leaf: evaluate what there is
                        pending.add(id(leaf))
                        _virtual_loss(path, 1)
                    leaves.append(leaf)
                    paths.append(path)
            if leaves:
                for path, value in zip(paths, self._expand(leaves)):
                    if per_tree > 1:
                        _virtual_loss(path, -1)
                    self._backup(path, float(value), None)
            done += per_tree


def _virtual_loss(path: list[tuple[Node, int]], sign: int) -> None:
    """Add (sign 1) or take back (-1) a lost visit on every edge of `path`."""
    for node, a in path:
        node.n[a] += sign
        node.w[a] -= sign
        node.total += sign


def visit_policy(root: Node, temperature: float | None) -> np.ndarray:
    """The search's policy at `root`: visits^(1/T) normalized; None or 0 puts all mass on the most
    visited moves (ties shared). Where the solver proved moves: all mass on the proven wins if any,
    never any on a proven loss unless every move loses."""
    legal, exact = root.legal, root.exact
    if exact is not None:
        if (exact == 1.0).any():
            return (exact == 1.0) / (exact == 1.0).sum()
        if (legal & ~(exact == -1.0)).any():
            legal = legal & ~(exact == -1.0)
    n = np.where(legal, root.visits, 0.0)
    if not temperature:
        best = (n == n.max()) & legal
        return best / best.sum()
    w = n ** (1.0 / temperature)
    total = w.sum()
    return w / total if total > 0 else legal / legal.sum()


def outputs_evaluator(outputs: Callable[[Any], tuple[np.ndarray, np.ndarray]], flat: bool = False) -> Evaluator:
    """An evaluator over a network that maps a masked observation batch {"observation", "action_mask"}
    to (logits, value), e.g. an exported model's `OnnxPolicy.compute_outputs`: priors = softmax of the
    legal logits, values = tanh(value) (AlphaZero's value head; the exported graph leaves it raw)."""

    def evaluate(obs: np.ndarray, legal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = obs.reshape(len(obs), -1) if flat else obs
        logits, value = outputs({"observation": x, "action_mask": legal.astype(np.float32)})
        return masked_softmax(np.asarray(logits, np.float64), legal), np.tanh(np.asarray(value, np.float64))

    return evaluate


class SearchPolicy(Policy):
    """A Policy that plays by MCTS: each observation of a batch is searched in its own tree, all trees
    batched through the evaluator. `explore=True` samples a move from the visit counts (temperature 1)
    and adds root noise; otherwise the most visited move (ties broken at random).

    For the env of `game` (its observations are `game.encode`'s planes, with an action mask)."""

    def __init__(
        self,
        game: TwoPlayerGame,
        evaluator: Evaluator,
        num_simulations: int = 200,
        puct_coefficient: float = 1.5,
        seed: int | None = None,
        observation_space: Any = None,
        action_space: Any = None,
        solver: bool = True,
        leaves_per_call: int = 1,
    ):
        super().__init__(observation_space, action_space)
        self.game, self.num_simulations, self.leaves_per_call = game, int(num_simulations), int(leaves_per_call)
        self.rng = np.random.default_rng(seed)
        self.mcts = MCTS(game, evaluator, puct_coefficient, rng=self.rng, solver=solver)

    def search(self, states: Sequence[State], explore: bool = False) -> list[Node]:
        roots = [self.mcts.new_root(s) for s in states]
        self.mcts.search(roots, self.num_simulations, noise=explore, leaves_per_call=self.leaves_per_call)
        return roots

    def compute_actions(self, obs_batch: Any, explore: bool = True) -> np.ndarray:
        observations = obs_batch["observation"] if isinstance(obs_batch, Mapping) else obs_batch
        states = [self.game.from_observation(o) for o in np.asarray(observations)]
        actions = np.zeros(len(states), np.int64)
        for i, root in enumerate(self.search(states, explore)):
            if root.terminal is not None:  # nothing to choose: any legal column
                legal = np.flatnonzero(self.game.legal_moves(root.state))
                actions[i] = int(legal[0]) if len(legal) else 0
                continue
            pi = visit_policy(root, 1.0 if explore else None)
            actions[i] = int(self.rng.choice(len(pi), p=pi))
        return actions
