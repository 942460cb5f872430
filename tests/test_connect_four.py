"""rlarena's Connect Four against PettingZoo's connect_four_v3, move by move; the batched and the
MultiAgentEnv forms against the AEC forms; the checkers (rlarena's check_env, PettingZoo's api_test)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rlarena.errors import EnvError
from rlarena.games.connect_four import rules as cf
from rlarena.games.connect_four.rules import AGENTS, BatchedConnectFour, ConnectFourMultiAgent

# pettingzoo.test imports env modules the old way, which PettingZoo 1.27 deprecates
pytestmark = pytest.mark.filterwarnings("ignore:The old environment creation API:DeprecationWarning")

DRAW = "555054466351352123041430222100021613443666"  # a full board without four in a row (found by search)
ILLEGAL_RATE = 0.02  # share of moves played into a full column when one exists


@pytest.fixture(scope="module")
def pz() -> Any:
    pettingzoo = pytest.importorskip("pettingzoo")
    pytest.importorskip("pygame")  # connect_four_v3 imports it
    from pettingzoo.utils.env_logger import EnvLogger

    EnvLogger.suppress_output()  # TerminateIllegalWrapper logs every illegal move
    yield pettingzoo
    EnvLogger.unsuppress_output()


def reference(pz: Any) -> Any:
    return pz.make("aec", "classic/connect_four-v3")


def random_column(rng: np.random.Generator, mask: np.ndarray) -> int:
    """A random legal column; with probability ILLEGAL_RATE a full column, when there is one."""
    full = np.flatnonzero(mask == 0)
    if full.size and rng.random() < ILLEGAL_RATE:
        return int(rng.choice(full))
    return int(rng.choice(np.flatnonzero(mask)))


def snapshot(env: Any) -> tuple:
    """Everything an AEC user can see, read in the same order from both envs (observe() of the
    selected agent matters to TerminateIllegalWrapper, so the call order must be the same)."""
    observations = []
    for agent in AGENTS:
        obs = env.observe(agent)
        observations.append(
            (
                agent,
                sorted(obs),
                obs["observation"].dtype,
                obs["observation"].tolist(),
                obs["action_mask"].dtype,
                obs["action_mask"].tolist(),
            )
        )
    last = env.last() if env.agents else None
    last = last and (last[0]["observation"].tolist(), last[0]["action_mask"].tolist(), repr(last[1:]))
    # repr: the same keys in the same order with the same types (1 is not 1.0)
    return (
        list(env.agents),
        env.agent_selection,
        repr(env.rewards),
        repr(env._cumulative_rewards),
        repr(env.terminations),
        repr(env.truncations),
        repr(env.infos),
        observations,
        last,
    )


def test_replays_1000_random_games_like_connect_four_v3(pz):
    ours, ref = cf.env(), reference(pz)
    for agent in AGENTS:
        assert ours.observation_space(agent) == ref.observation_space(agent)
        assert ours.action_space(agent) == ref.action_space(agent)
    rng = np.random.default_rng(0)
    outcomes: dict[str, int] = {}
    games = [[int(c) for c in DRAW]] + [None] * 1000  # None: random moves
    for i, script in enumerate(games):
        ours.reset(seed=i)
        ref.reset(seed=i)
        assert snapshot(ours) == snapshot(ref)
        t, outcome = 0, "reset mid-game"
        while ref.agents:
            if ref.terminations[ref.agent_selection] or ref.truncations[ref.agent_selection]:
                action = None
            elif script is not None:
                action = script[t]
            else:
                action = random_column(rng, ref.observe(ref.agent_selection)["action_mask"])
            ours.step(action)
            ref.step(action)
            t += 1
            assert snapshot(ours) == snapshot(ref), (i, t)
            if action is not None and all(ref.terminations.values()):  # the move that ended the game
                outcome = (
                    "illegal"
                    if all(ref.truncations.values())
                    else {(1, -1): "player_0 won", (-1, 1): "player_1 won", (0, 0): "draw"}[
                        tuple(ref.rewards[a] for a in AGENTS)
                    ]
                )
            if ref.agents and rng.random() < (0.05 if any(ref.terminations.values()) else 0.002):
                break  # now and then a reset in the middle of a game or of its dead steps
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    # the replay covered every way a game ends
    assert {"player_0 won", "player_1 won", "draw", "illegal"} <= set(outcomes), outcomes


def test_same_errors_and_out_of_bounds_as_connect_four_v3(pz):
    for make in (cf.env, lambda: reference(pz)):
        env = make()
        with pytest.raises(AttributeError):
            env.agent_selection  # noqa: B018 - OrderEnforcingWrapper: not before reset
        env.reset()
        with pytest.raises(AssertionError, match="action space"):
            env.step(7)
        with pytest.raises(AssertionError, match="action space"):
            env.step(None)
        env.step(np.int32(3))  # numpy integers are columns too (api_test's action flexibility)
        assert env.agent_selection == "player_1"


def test_wins_in_every_direction():
    # (moves, winner): vertical, horizontal, both diagonals, and a win on the last cell of the board
    games = [("0101010", 0), ("0011223", 0), ("01123223633", 0), ("65543443033", 0), ("60615253", 1), ("010101", None)]
    for moves, winner in games:
        g, won = cf.Game(), None
        for t, col in enumerate(map(int, moves)):
            if g.play(col, t % 2):
                won = t % 2
                assert t == len(moves) - 1, moves  # the last move, not before
                break
        assert won == winner, moves
    g = cf.Game()
    for i, col in enumerate(map(int, DRAW)):
        assert not g.play(col, i % 2)
    assert g.full() and not g.legal_mask().any()


@pytest.mark.filterwarnings("ignore::UserWarning")  # api_test's notes on Dict observations, as for connect_four_v3
def test_api_test_passes_on_the_aec_env(pz):
    from pettingzoo.test import api_test

    api_test(cf.env(), num_cycles=200)
    api_test(cf.env(render_mode="ansi"), num_cycles=50)


def test_render_modes():
    env = ConnectFourMultiAgent({"render_mode": "ansi"})
    env.reset()
    env.step({"player_0": 3})
    env.step({"player_1": 3})
    lines = env.render().splitlines()
    assert lines[-3:] == [". . . O . . .", ". . . X . . .", "0 1 2 3 4 5 6"] and len(lines) == 7
    env = ConnectFourMultiAgent({"render_mode": "rgb_array"})
    env.reset()
    env.step({"player_0": 0})
    frame = env.render()
    px = cf.CELL_PX
    assert frame.shape == (6 * px, 7 * px, 3) and frame.dtype == np.uint8
    centre = px // 2
    assert frame[5 * px + centre, centre].tolist() == [220, 40, 40]  # player_0's disc, bottom left
    assert frame[5 * px + centre, px + centre].tolist() == [245, 245, 245]  # empty
    assert frame[0, 0].tolist() == [30, 80, 200]  # the board
    with pytest.raises(EnvError, match="render_mode 'human'"):
        ConnectFourMultiAgent({"render_mode": "human"})
    with pytest.raises(EnvError, match="Did you mean 'render_mode'"):
        ConnectFourMultiAgent({"rendermode": "ansi"})


def test_importing_the_module_does_not_import_pettingzoo():
    import subprocess
    import sys

    code = (
        "import sys; import rlarena.games.connect_four.rules as cf; g = cf.BatchedConnectFour(2); g.reset(); "
        "cf.ConnectFourMultiAgent().reset(); print('pettingzoo' in sys.modules)"
    )
    assert subprocess.check_output([sys.executable, "-c", code], text=True).strip() == "False"


def test_the_game_package_imports_no_torch_gradio_or_pettingzoo():
    import subprocess
    import sys

    code = (
        "import sys; import rlarena.games.connect_four; "
        "print([m for m in ('torch', 'gradio', 'pettingzoo') if m in sys.modules])"
    )
    assert subprocess.check_output([sys.executable, "-c", code], text=True).strip() == "[]"


def test_checkpoints_naming_the_old_places_still_load():
    """Connect Four moved into rlarena.games.connect_four; checkpoints that name the old places resolve to
    the new ones (rlarena.refs.MOVED_REFS), with no module left at the old place to import."""
    import importlib.util

    from rlarena.games.connect_four import league, opponents
    from rlarena.refs import Trust, ref_to_json

    for gone in (
        "rlarena.envs.connect_four",
        "rlarena.multiagent.connect_four_opponents",
        "rlarena.nn.board",
        "rlarena.apps",
    ):
        assert importlib.util.find_spec(gone) is None
    for old, new in (
        ("rlarena.envs.connect_four:ConnectFourMultiAgent", ConnectFourMultiAgent),
        ("rlarena.multiagent.league:ConnectFourLeague", league.ConnectFourLeague),
        ("rlarena.multiagent.connect_four_opponents:NegamaxDepth3", opponents.NegamaxDepth3),
    ):
        assert Trust().resolve({"callable": old}, "x") is new
        new_name = f"{new.__module__}:{new.__qualname__}"
        assert new_name.startswith("rlarena.games.connect_four.") and ref_to_json(new) == {"callable": new_name}


# --- the batched form --------------------------------------------------------------------------------------


def test_batched_games_agree_with_the_aec_env(pz):
    n = 32
    games = BatchedConnectFour(n)
    envs = [cf.env() for _ in range(n)]
    for env in envs:
        env.reset()
    obs = games.reset(seed=0)
    rng = np.random.default_rng(1)
    ended = {"win": 0, "illegal": 0}
    for _ in range(800):
        mask = obs["action_mask"]
        for i, env in enumerate(envs):
            mover = env.agent_selection
            np.testing.assert_array_equal(obs["observation"][i], env.observe(mover)["observation"])
            np.testing.assert_array_equal(mask[i], env.observe(mover)["action_mask"])
            assert games.to_play[i] == AGENTS.index(mover)
            np.testing.assert_array_equal(games.board[i], env.unwrapped.game.board)
        actions = np.array([random_column(rng, m) for m in mask])
        obs, mover_reward, other_reward, done, info = games.step(actions)
        assert obs["observation"].dtype == np.int8 and obs["action_mask"].dtype == np.int8
        assert mover_reward.dtype == np.float32 and done.dtype == bool
        for i, env in enumerate(envs):
            mover = env.agent_selection
            other = AGENTS[1 - AGENTS.index(mover)]
            env.step(int(actions[i]))
            assert info["mover"][i] == AGENTS.index(mover)
            assert done[i] == all(env.terminations.values())
            assert info["illegal"][i] == all(env.truncations.values())  # only an illegal move truncates
            assert (mover_reward[i], other_reward[i]) == (
                env._cumulative_rewards[mover],
                env._cumulative_rewards[other],
            )
            if done[i]:
                ended["illegal" if info["illegal"][i] else "win"] += mover_reward[i] != 0
                env.reset()
    assert ended["win"] > 100 and ended["illegal"] > 10, ended


def test_batched_draw_and_bad_actions():
    games = BatchedConnectFour(2)
    games.reset()
    for i, col in enumerate(map(int, DRAW)):
        _, mover_reward, other_reward, done, _ = games.step(np.array([col, 0 if i < 6 else 1]))
        if i < len(DRAW) - 1:
            assert not done[0]
    assert done[0] and mover_reward[0] == other_reward[0] == 0
    assert not games.board[0].any() and games.to_play[0] == 0  # restarted
    with pytest.raises(ValueError, match="0..6"):
        games.step(np.array([7, 0]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        games.step(np.array([0]))


# --- the MultiAgentEnv form ------------------------------------------------------------------------------


def test_multi_agent_env_returns_what_the_aec_adapter_returns(pz):
    from rlarena.envs.pettingzoo_adapters import PettingZooAECAdapter

    ours, ref = ConnectFourMultiAgent(), PettingZooAECAdapter(reference(pz))
    rng = np.random.default_rng(2)

    def same(a: Any, b: Any) -> None:
        if isinstance(a, dict):
            assert list(a) == list(b)
            for key in a:
                same(a[key], b[key])
        elif isinstance(a, tuple):
            assert type(b) is tuple and len(a) == len(b)
            for x, y in zip(a, b):
                same(x, y)
        elif isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and a.tolist() == b.tolist()
        else:
            assert type(a) is type(b) and a == b, (a, b)

    for game in range(150):
        obs, infos = ours.reset(seed=game)
        ref_obs, ref_infos = ref.reset(seed=game)
        same((obs, infos), (ref_obs, ref_infos))
        script = [int(c) for c in DRAW] if game == 0 else None
        t = 0
        while True:
            (mover,) = obs
            action = script[t] if script else random_column(rng, obs[mover]["action_mask"])
            result = ours.step({mover: action})
            same(result, ref.step({mover: action}))
            obs, t = result[0], t + 1
            if result[2]["__all__"]:
                break
    with pytest.raises(EnvError, match="reset"):
        ours.step({"player_0": 0})


def test_multi_agent_env_passes_check_env_and_is_registered():
    import rlarena
    from rlarena.envs.registry import make_env_creator

    rlarena.check_env(ConnectFourMultiAgent())
    env = make_env_creator(cf.ENV_NAME)({})
    assert isinstance(env, ConnectFourMultiAgent)
    env.reset()
    with pytest.raises(EnvError, match="exactly one action, for 'player_0'"):
        env.step({"player_1": 0})
    with pytest.raises(EnvError, match="not a column"):
        env.step({"player_0": 7})
