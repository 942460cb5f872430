"""Connect Four opponents: tactics (wins and blocks) on hand-built and random positions against a
brute-force scan, alpha-beta against a plain full-width search, legality, the heuristics doing what
their names say, strength (negamax depth 3 against random), and use through .multi_agent()."""

from __future__ import annotations

import numpy as np
import pytest

from rlarena.games.connect_four import opponents as op
from rlarena.games.connect_four.opponents import (
    OPPONENTS,
    AlwaysSameHeuristic,
    BeatLastHeuristic,
    LinearHeuristic,
    NegamaxPolicy,
    SmartHeuristic,
    negamax_policy,
)
from rlarena.games.connect_four.rules import (
    BOARD_MASK,
    BOTTOM,
    COLUMN_MASKS,
    BatchedConnectFour,
    Game,
    has_four,
    observation_space,
)
from rlarena.multiagent import PolicySpec
from rlarena.policies import RandomPolicy

OBS_SPACE = observation_space()
ACT_SPACE = __import__("gymnasium").spaces.Discrete(7)
TACTICAL = [SmartHeuristic] + [negamax_policy(d) for d in range(1, 8)]


def make(cls, seed=0, **kwargs):
    return (
        cls(OBS_SPACE, ACT_SPACE, seed=seed, **kwargs) if cls is not RandomPolicy else cls(OBS_SPACE, ACT_SPACE, seed)
    )


def play(moves: str | list[int]) -> tuple[Game, int]:
    """The game after `moves` (columns), and the seat to move."""
    g = Game()
    for t, col in enumerate(moves):
        assert not g.play(int(col), t % 2), "the position must not be over"
    return g, len(moves) % 2


def batch(positions: list[tuple[Game, int]]) -> dict[str, np.ndarray]:
    return {
        "observation": np.stack([g.planes(seat) for g, seat in positions]),
        "action_mask": np.stack([g.legal_mask() for g, _ in positions]),
    }


def random_positions(n: int, seed: int, max_moves: int = 30) -> list[tuple[Game, int]]:
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        g, seat, alive = Game(), 0, True
        for _ in range(int(rng.integers(0, max_moves + 1))):
            if g.play(int(rng.choice(np.flatnonzero(g.legal_mask()))), seat) or g.full():
                alive = False
                break
            seat ^= 1
        if alive:
            out.append((g, seat))
    return out


def one_ply_scan(g: Game, seat: int) -> tuple[set[int], set[int]]:
    """Brute force: (columns where the mover wins now, columns where the opponent would win now)."""
    wins, threats = set(), set()
    for col in np.flatnonzero(g.legal_mask()):
        for who, found in ((seat, wins), (1 - seat, threats)):
            bits = g.bits[who] | (1 << (int(col) * 7 + g.heights[col]))
            if has_four(bits):
                found.add(int(col))
    return wins, threats


# --- tactics ------------------------------------------------------------------------------------------

HAND_BUILT = [  # (moves so far, the columns the mover must choose from, what it is)
    ("001122", {3}, "win in the bottom row"),
    ("06162", {3}, "block the bottom row"),
    ("01010", {0}, "block column 0"),
    ("0112322363", {3}, "win on the rising diagonal"),
    ("6554434303", {3}, "win on the falling diagonal"),
    ("061626", {3}, "win rather than block column 6"),
    ("162636", {0, 4}, "two ways to win"),
    ("16263", {0, 4}, "two threats: block one of them"),
]


def hand_built_cases() -> list[tuple[str, set[int]]]:
    """The annotations, checked by the brute-force scan first (a wrong annotation fails here)."""
    for moves, expected, what in HAND_BUILT:
        g, seat = play(moves)
        wins, threats = one_ply_scan(g, seat)
        assert (wins or threats) == expected, (moves, what, wins, threats)
    return [(moves, expected) for moves, expected, _ in HAND_BUILT]


@pytest.mark.parametrize("cls", TACTICAL, ids=lambda c: c.__name__)
def test_wins_and_blocks_on_hand_built_positions(cls):
    policy = make(cls)
    for moves, expected in hand_built_cases():
        g, seat = play(moves)
        for _ in range(5):  # random tie-breaks must not matter
            assert int(policy.compute_actions(batch([(g, seat)]))[0]) in expected, moves


def test_wins_and_blocks_on_random_positions_against_a_brute_force_scan():
    positions = random_positions(600, seed=1)
    cases = []
    for g, seat in positions:
        wins, threats = one_ply_scan(g, seat)
        if wins or threats:
            cases.append(((g, seat), wins or threats, bool(wins)))
    assert sum(w for *_, w in cases) > 30 and sum(not w for *_, w in cases) > 30  # both kinds, many
    obs = batch([p for p, *_ in cases])
    for cls in TACTICAL:
        actions = make(cls).compute_actions(obs)
        for action, (_, needed, win) in zip(actions, cases):
            assert int(action) in needed, (cls.__name__, "win" if win else "block", needed, action)


def test_winning_cells_matches_a_brute_force_scan():
    for g, seat in random_positions(200, seed=2, max_moves=40):
        mask = g.bits[0] | g.bits[1]
        for who in (0, 1):
            expected = 0
            for col in range(7):
                for h in range(g.heights[col], 6):
                    bit = 1 << (col * 7 + h)
                    if has_four(g.bits[who] | bit):
                        expected |= bit
            assert op.winning_cells(g.bits[who], mask) == expected


def full_width(cur: int, opp: int, depth: int, ply: int) -> int:
    """The same node rules as op.negamax, searched without pruning and without the forced-block
    restriction (every move is tried)."""
    mask = cur | opp
    playable = (mask + BOTTOM) & BOARD_MASK
    if not playable:
        return 0
    cur_threats, opp_threats = op.winning_cells(cur, mask), op.winning_cells(opp, mask)
    if cur_threats & playable:
        return op.WIN - ply - 1
    forced = opp_threats & playable
    if forced & (forced - 1):
        return -(op.WIN - ply - 2)
    if depth == 0:
        return op.evaluate(cur, opp, cur_threats, opp_threats)
    moves = [playable & column for column in COLUMN_MASKS if playable & column]
    return max(-full_width(opp, cur | m, depth - 1, ply + 1) for m in moves)


def test_alpha_beta_finds_the_same_values_and_ties_as_a_full_width_search():
    checked = 0
    for g, seat in random_positions(60, seed=3, max_moves=24):
        cur, opp = g.bits[seat], g.bits[1 - seat]
        for depth in (1, 2, 3):
            columns, value = op.best_columns(cur, opp, depth)
            if value is None:
                continue  # decided by the tactics rule (tested above)
            scores = {}
            for col in np.flatnonzero(g.legal_mask()):
                move = ((cur | opp) + BOTTOM) & BOARD_MASK & COLUMN_MASKS[col]
                scores[int(col)] = -full_width(opp, cur | move, depth - 1, 1)
            best = max(scores.values())
            tied = sorted(c for c, s in scores.items() if s == best)
            assert value == best
            if one_ply_scan(g, seat)[1]:  # two immediate threats: all moves lose, negamax blocks one
                assert set(columns) <= set(tied)
            else:
                assert sorted(columns) == tied
            checked += 1
    assert checked > 100


# --- legality and named behaviour --------------------------------------------------------------------


def test_every_opponent_plays_only_legal_columns():
    positions = random_positions(300, seed=4, max_moves=41)
    obs = batch(positions)
    assert (obs["action_mask"] == 0).any()  # some columns are full
    for name, cls in OPPONENTS.items():
        if name in ("negamax_6", "negamax_7"):
            continue  # same code as the other depths; played on fewer positions below
        actions = make(cls).compute_actions(obs)
        assert actions.shape == (300,) and actions.dtype == np.int64
        assert obs["action_mask"][np.arange(300), actions].all(), name
    few = batch(positions[:20])
    for cls in (op.NegamaxDepth6, op.NegamaxDepth7):
        assert few["action_mask"][np.arange(20), make(cls).compute_actions(few)].all()


def test_always_same_keeps_its_column_while_legal():
    policy = make(AlwaysSameHeuristic, seed=5)
    col = policy.column
    g, seat = play([])
    assert (policy.compute_actions(batch([(g, seat)] * 10)) == col).all()
    full, seat = play([col] * 6)  # column `col` is full (the players alternate in it)
    actions = policy.compute_actions(batch([(full, seat)] * 50))
    assert col not in actions and len(set(actions.tolist())) > 1  # a random legal column instead
    assert len({make(AlwaysSameHeuristic, seed=s).column for s in range(20)}) > 2  # chosen per object


def test_linear_plays_columns_left_to_right():
    # its k-th move (k own pieces on the board) goes into column k mod 7, or the next legal one right
    policy = make(LinearHeuristic)
    played = []
    for k in range(7):
        g, seat = play("555555444444"[: 2 * k])  # the players alternate in column 5, then column 4
        played.append(int(policy.compute_actions(batch([(g, seat)]))[0]))
    assert played == [0, 1, 2, 3, 4, 6, 6]  # k = 5 and 6: columns 5 and 4 are full, so column 6
    g, seat = play("5555554")  # player_1 to move with three pieces: column 3
    assert policy.compute_actions(batch([(g, seat)]))[0] == 3


def test_beat_last_answers_the_opponents_column_in_any_batch_order():
    rng = np.random.default_rng(6)
    policy = make(BeatLastHeuristic, seed=6)
    n = 16
    games = [Game() for _ in range(n)]
    seat = [i % 2 for i in range(n)]  # beat_last's seat in each game
    last_col: list[int | None] = [None] * n
    answered = 0
    for _ in range(21):
        for i, g in enumerate(games):  # the opponent (random) moves where it is its turn
            if g_ok(g) and g.moves % 2 != seat[i]:
                last_col[i] = int(rng.choice(np.flatnonzero(g.legal_mask())))
                g.play(last_col[i], 1 - seat[i])
        live = [int(i) for i in rng.permutation(n) if g_ok(games[int(i)])]  # a shuffled batch
        if not live:
            break
        actions = policy.compute_actions(batch([(games[i], seat[i]) for i in live]))
        for i, action in zip(live, actions):
            if last_col[i] is not None and games[i].legal(last_col[i]):
                assert action == last_col[i]
                answered += 1
            games[i].play(int(action), seat[i])
    assert answered > 60


def g_ok(g: Game) -> bool:
    """Not over: no four for either side and not full."""
    return not (has_four(g.bits[0]) or has_four(g.bits[1]) or g.full())


def test_smart_prefers_its_own_lines():
    g, seat = play("0606")  # player_0: two in column 0; player_1: two in column 6
    assert make(SmartHeuristic).compute_actions(batch([(g, seat)]))[0] == 0  # three in a column, nothing to block


def test_negamax_factory_and_classes():
    assert negamax_policy(5) is op.NegamaxDepth5 and op.NegamaxDepth5.depth == 5
    assert make(NegamaxPolicy, depth=4).depth == 4
    with pytest.raises(ValueError, match="1..7"):
        negamax_policy(8)
    with pytest.raises(ValueError, match="masked observation batches"):
        make(op.NegamaxDepth1).compute_actions(np.zeros((1, 6, 7, 2)))


# --- strength and use in training ---------------------------------------------------------------------


def test_negamax_depth_3_beats_random():
    n = 40
    games = BatchedConnectFour(n)
    obs = games.reset()
    negamax_seat = np.arange(n) % 2  # both seats
    negamax, rand = make(op.NegamaxDepth3, seed=7), make(RandomPolicy, seed=8)
    result = np.zeros(n)  # +1 negamax won, -1 lost, 0 draw; NaN until the game ends
    result[:] = np.nan
    while np.isnan(result).any():
        mine = games.to_play == negamax_seat
        actions = np.empty(n, np.int64)
        for who, policy in ((mine, negamax), (~mine, rand)):
            if who.any():
                actions[who] = policy.compute_actions({k: v[who] for k, v in obs.items()})
        obs, mover_reward, _, done, _ = games.step(actions)
        first = done & np.isnan(result)
        result[first] = np.where(mine, mover_reward, -mover_reward)[first]
    assert (result == 1).mean() >= 0.95, result


def mapping(agent_id, episode, **kwargs):
    """The learner takes both seats in turn; its opponent cycles through the ladder."""
    learner_seat = "player_0" if episode.episode_id % 2 == 0 else "player_1"
    return "learned" if agent_id == learner_seat else ["random", "smart", "negamax_2"][episode.episode_id // 2 % 3]


def test_opponents_fit_policy_spec_in_multi_agent_training():
    from rlarena import PPOConfig

    algo = (
        PPOConfig()
        .environment("connect_four")
        .env_runners(num_envs_per_env_runner=4)
        .training(train_batch_size=256, minibatch_size=128, num_epochs=1)
        .multi_agent(
            policies={
                "learned": PolicySpec(),
                "random": PolicySpec(policy_class=RandomPolicy),
                "smart": PolicySpec(policy_class=SmartHeuristic),
                "negamax_2": PolicySpec(policy_class=negamax_policy(2)),
            },
            policy_mapping_fn=mapping,
            policies_to_train=["learned"],
        )
        .debugging(seed=0)
        .build()
    )
    try:
        result = algo.train()
        assert isinstance(algo.get_policy("negamax_2"), op.NegamaxDepth2)
        assert "learner/learned/policy_loss" in result
    finally:
        algo.stop()
