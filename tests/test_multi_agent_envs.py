"""The multi-agent env layer: MultiAgentArena's rules, the PettingZoo adapters (against PettingZoo's own
loop and its parallel_api_test), and check_multi_agent_env on good and broken envs."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path
from typing import Any, ClassVar

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from rlarena.envs import arena as arena_module
from rlarena.envs import multi_agent, multi_agent_checker, pettingzoo_adapters
from rlarena.envs.arena import ENV_NAME, MultiAgentArena
from rlarena.envs.multi_agent import MultiAgentEnv, episode_done, is_multi_agent, pettingzoo_kind
from rlarena.envs.multi_agent_checker import check_multi_agent_env
from rlarena.envs.pettingzoo_adapters import (
    PettingZooAECAdapter,
    PettingZooParallelAdapter,
    to_pettingzoo_parallel,
    wrap_multi_agent,
)
from rlarena.errors import EnvError

ENV_LAYER = [multi_agent, arena_module, pettingzoo_adapters, multi_agent_checker]

# pettingzoo.test itself imports env modules the old way, which PettingZoo 1.27 deprecates
pytestmark = pytest.mark.filterwarnings("ignore:The old environment creation API:DeprecationWarning")


@pytest.fixture
def pz() -> Any:
    return pytest.importorskip("pettingzoo")


def classic(name: str, kind: str = "aec") -> Any:
    """A PettingZoo classic game such as "connect_four_v3": pettingzoo.make where it exists (1.27+, where
    importing the env module is deprecated), else the module's env() / parallel_env()."""
    pytest.importorskip("pygame")  # the classic games import it (for rendering)
    import pettingzoo

    if hasattr(pettingzoo, "make"):
        game, version = name.rsplit("_v", 1)
        return pettingzoo.make(kind, f"classic/{game}-v{version}")
    import importlib

    module = importlib.import_module(f"pettingzoo.classic.{name}")
    return module.env() if kind == "aec" else module.parallel_env()


# --- MultiAgentArena -----------------------------------------------------------------------------------


def arena_at(agent1: tuple[int, int], agent2: tuple[int, int], **config: Any) -> MultiAgentArena:
    """A reset arena with the agents placed by hand (agent1's start cell stays the only visited one)."""
    env = MultiAgentArena(config)
    env.reset()
    env.agent1_pos, env.agent2_pos = agent1, agent2
    return env


def step(env: MultiAgentArena, a1: int, a2: int) -> tuple[dict, dict, dict, dict, dict]:
    return env.step({"agent1": a1, "agent2": a2})


UP, RIGHT, DOWN, LEFT = range(4)


def test_arena_reset_spaces_and_obs_encoding():
    env = MultiAgentArena()
    obs, infos = env.reset(seed=0)
    assert env.possible_agents == env.agents == ["agent1", "agent2"]
    assert env.get_observation_space("agent1") == spaces.MultiDiscrete([100, 100])
    assert env.get_action_space("agent2") == spaces.Discrete(4)
    np.testing.assert_array_equal(obs["agent1"], [0, 99])  # (own cell, other's cell)
    np.testing.assert_array_equal(obs["agent2"], [99, 0])
    assert infos == {"agent1": {}, "agent2": {}}
    # cell = row * width + col, on a non-square grid: agent2 starts at (2, 4) of 3 rows x 5 columns
    env = MultiAgentArena({"width": 5, "height": 3})
    obs, _ = env.reset()
    np.testing.assert_array_equal(obs["agent2"], [14, 0])
    obs, *_ = step(arena_at((1, 2), (2, 0), width=5, height=3), UP, LEFT)  # agent2 against the wall
    np.testing.assert_array_equal(obs["agent1"], [2, 10])
    np.testing.assert_array_equal(obs["agent2"], [10, 2])
    assert all(env.get_observation_space(a).contains(o) for a, o in obs.items())


def test_arena_new_cell_revisit_and_walls():
    env = MultiAgentArena()
    env.reset()
    _, rewards, *_ = step(env, RIGHT, RIGHT)  # agent2 stays in its corner throughout
    assert env.agent1_pos == (0, 1) and rewards == {"agent1": 1.0, "agent2": -0.1}  # a new cell
    _, rewards, *_ = step(env, LEFT, DOWN)
    assert env.agent1_pos == (0, 0) and rewards["agent1"] == -0.5  # the start cell counts as visited
    _, rewards, *_ = step(env, UP, DOWN)  # agent1 into the top wall, agent2 into the bottom wall
    assert env.agent1_pos == (0, 0) and env.agent2_pos == (9, 9)
    assert rewards == {"agent1": -0.5, "agent2": -0.1}
    step(env, LEFT, RIGHT)
    assert env.agent1_pos == (0, 0) and env.agent2_pos == (9, 9)


def test_arena_collision_blocks_and_rewards_both_ways():
    # agent1 runs into agent2 (which stays put against the top wall): blocked, -1 / +1
    env = arena_at((0, 0), (0, 1))
    _, rewards, *_ = step(env, RIGHT, UP)
    assert (env.agent1_pos, env.agent2_pos) == ((0, 0), (0, 1))
    assert rewards == {"agent1": -1.0, "agent2": 1.0} and env.collision and env.num_collisions == 1
    # agent2 bumps into agent1, which then enters a new cell: the collision wins (-1), the cell is covered
    env = arena_at((5, 5), (5, 6))
    _, rewards, *_ = step(env, UP, LEFT)
    assert (env.agent1_pos, env.agent2_pos) == ((4, 5), (5, 6))
    assert rewards == {"agent1": -1.0, "agent2": 1.0} and (4, 5) in env.visited
    _, rewards, *_ = step(env, RIGHT, DOWN)
    assert rewards == {"agent1": 1.0, "agent2": -0.1} and not env.collision


def test_arena_agent2_moves_first():
    # both head for (5, 6): agent2 gets there first and agent1 is blocked
    env = arena_at((5, 5), (5, 7))
    _, rewards, *_ = step(env, RIGHT, LEFT)
    assert (env.agent1_pos, env.agent2_pos) == ((5, 5), (5, 6)) and rewards["agent2"] == 1.0
    # agent2 cannot step into the cell agent1 is about to leave
    env = arena_at((5, 5), (5, 4))
    _, rewards, *_ = step(env, RIGHT, RIGHT)
    assert (env.agent1_pos, env.agent2_pos) == ((5, 6), (5, 4)) and rewards["agent1"] == -1.0


def test_arena_truncates_after_ts_steps():
    env = MultiAgentArena()
    env.reset()
    for t in range(1, 101):
        obs, _, terminateds, truncateds, _ = step(env, t % 4, (t + 1) % 4)
        assert terminateds == {"agent1": False, "agent2": False, "__all__": False}
        assert truncateds == dict.fromkeys(["agent1", "agent2", "__all__"], t == 100)
        assert set(obs) == {"agent1", "agent2"}  # final observations come with the truncation
    assert episode_done(terminateds, truncateds) and env.agents == []
    with pytest.raises(EnvError, match="reset"):
        step(env, 0, 0)
    env = MultiAgentArena({"ts": 3})
    env.reset()
    assert [episode_done(*step(env, 1, 3)[2:4]) for _ in range(3)] == [False, False, True]


def test_arena_rejects_bad_config_and_actions():
    with pytest.raises(EnvError, match="Did you mean 'width'"):
        MultiAgentArena({"widht": 5})
    with pytest.raises(EnvError, match="room for two agents"):
        MultiAgentArena({"width": 1, "height": 1})
    env = MultiAgentArena()
    env.reset()
    with pytest.raises(EnvError, match="missing 'agent2'"):
        env.step({"agent1": 0})
    with pytest.raises(EnvError, match="not in Discrete"):
        env.step({"agent1": 4, "agent2": 0})
    env.step({"agent1": np.int64(1), "agent2": np.array(3)})  # numpy integers are fine


def test_arena_render_ansi():
    assert MultiAgentArena().render() is None  # no render_mode
    env = arena_at((0, 0), (0, 1), width=4, height=3, render_mode="ansi")
    step(env, DOWN, DOWN)  # agent2 to (1, 1), agent1 to (1, 0): both fine
    step(env, RIGHT, LEFT)  # each runs into the other: both blocked
    text = env.render()
    assert text.splitlines() == ["+----+", "|.   |", "|12  |", "|    |", "+----+", "t=2 R1=0.0 R2=0.9 collision!"]
    assert ENV_NAME == "multi_agent_arena" == env.metadata["name"]


def test_arena_passes_checkers(pz):
    from pettingzoo.test import parallel_api_test

    check_multi_agent_env(MultiAgentArena(), warn=False)
    check_multi_agent_env(MultiAgentArena)  # a class is built with no arguments
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # parallel_api_test only warns about missing/extra keys
        parallel_api_test(to_pettingzoo_parallel(MultiAgentArena({"ts": 20})), num_cycles=50)


# --- PettingZoo AEC adapter ----------------------------------------------------------------------------


def play_random_game(
    env: PettingZooAECAdapter, rng: np.random.Generator, seed: int
) -> tuple[list[int], dict[str, float], dict[str, bool]]:
    """One game of random legal moves through the adapter, checking the turn-based contract at every
    step; returns the moves played, each agent's reward sum and the final terminateds."""
    obs, _ = env.reset(seed=seed)
    moves, totals = [], dict.fromkeys(env.possible_agents, 0.0)
    while True:
        mover = env.env.agent_selection
        assert list(obs) == [mover] and mover in env.agents  # only the mover observes
        assert env.get_observation_space(mover).contains(obs[mover])
        if isinstance(obs[mover], dict):  # a masked game: the mask is passed through unchanged
            mask = obs[mover]["action_mask"]
            np.testing.assert_array_equal(mask, env.env.observe(mover)["action_mask"])
            move = int(rng.choice(np.flatnonzero(mask)))
        else:
            move = int(rng.integers(env.get_action_space(mover).n))
        moves.append(move)
        obs, rewards, terminateds, truncateds, _ = env.step({mover: move})
        assert set(rewards) <= set(obs) and "__all__" in terminateds and "__all__" in truncateds
        for agent, reward in rewards.items():
            totals[agent] += reward
        if episode_done(terminateds, truncateds):
            # every player gets its final observation, reward and one flag in the step the game ends
            assert set(obs) == set(rewards) == set(env.possible_agents) and env.agents == []
            assert all(terminateds[a] != truncateds[a] for a in env.possible_agents)
            assert terminateds["__all__"] != truncateds["__all__"]
            return moves, totals, terminateds
        assert not any(terminateds.values()) and not any(truncateds.values())


def pettingzoo_loop(env: Any, moves: list[int], seed: int) -> dict[str, float]:
    """Reward sums as PettingZoo's own loop collects them (env.last() per agent_iter turn)."""
    env.reset(seed=seed)
    totals = dict.fromkeys(env.possible_agents, 0.0)
    queue = iter(moves)
    for agent in env.agent_iter():
        _, reward, terminated, truncated, _ = env.last()
        totals[agent] += reward
        env.step(None if terminated or truncated else next(queue))
    assert next(queue, None) is None
    return totals


@pytest.mark.parametrize("game", ["connect_four_v3", "tictactoe_v3", "rps_v2"])
def test_aec_adapter_matches_pettingzoos_own_loop(pz, game):
    # rock-paper-scissors (AEC) pays both players after every round and is truncated after 15
    env, reference = PettingZooAECAdapter(classic(game)), classic(game)
    rng = np.random.default_rng(0)
    outcomes = set()
    for seed in range(25):
        moves, totals, terminateds = play_random_game(env, rng, seed)
        assert totals == pettingzoo_loop(reference, moves, seed)
        assert terminateds["__all__"] == (game != "rps_v2")
        outcomes.add(tuple(totals.values()))
    if game != "rps_v2":
        assert {(1.0, -1.0), (-1.0, 1.0)} <= outcomes  # both players won some games


def test_aec_final_rewards_reach_both_players_when_the_game_ends(pz):
    env = PettingZooAECAdapter(classic("connect_four_v3"))
    obs, _ = env.reset(seed=0)
    for move in [0, 1, 0, 1, 0, 1]:
        (mover,) = obs
        obs, rewards, *_ = env.step({mover: move})
        (other,) = obs
        assert other != mover and rewards == {other: 0.0}
    obs, rewards, terminateds, truncateds, _ = env.step({"player_0": 0})  # four in column 0
    assert rewards == {"player_0": 1.0, "player_1": -1.0}
    assert terminateds == {"player_0": True, "player_1": True, "__all__": True}
    assert truncateds == {"player_0": False, "player_1": False, "__all__": False}
    assert obs["player_0"]["observation"][:, 0, 0].tolist() == [0, 0, 1, 1, 1, 1]  # final observations
    assert obs["player_1"]["observation"][:, 0, 1].tolist() == [0, 0, 1, 1, 1, 1]
    with pytest.raises(EnvError, match="reset"):
        env.step({"player_1": 2})


def test_aec_illegal_move_ends_the_game_as_pettingzoo_defines_it(pz):
    env = PettingZooAECAdapter(classic("tictactoe_v3"))
    env.reset(seed=0)
    env.step({"player_1": 4})
    with pytest.raises(EnvError, match="exactly one action, for 'player_2'"):
        env.step({"player_1": 0})
    # cell 4 is taken: TerminateIllegalWrapper ends the game, the mover gets -1 and the other 0
    obs, rewards, terminateds, truncateds, _ = env.step({"player_2": 4})
    assert rewards == {"player_1": 0.0, "player_2": -1.0} and set(obs) == {"player_1", "player_2"}
    # PettingZoo flags both terminated and truncated; the adapter reports terminated only
    assert terminateds == {"player_1": True, "player_2": True, "__all__": True}
    assert truncateds == {"player_1": False, "player_2": False, "__all__": False}
    assert pettingzoo_loop(classic("tictactoe_v3"), [4, 4], 0) == {"player_1": 0.0, "player_2": -1.0}


def test_aec_adapter_passes_the_checker(pz):
    check_multi_agent_env(classic("connect_four_v3"))  # wrapped by wrap_multi_agent
    check_multi_agent_env(PettingZooAECAdapter(classic("tictactoe_v3")))


# --- PettingZoo Parallel adapter and the PettingZoo view -----------------------------------------------


def tiny_parallel_env() -> Any:
    """A ParallelEnv where "fast" terminates after 3 steps, "late" joins after step 2 and terminates
    after step 4, and "slow" is truncated after step 5. Observation: the step count; reward: the action."""
    from pettingzoo.utils.env import ParallelEnv

    class TinyParallel(ParallelEnv):
        metadata: ClassVar[dict[str, Any]] = {"name": "tiny_parallel"}

        def __init__(self) -> None:
            self.possible_agents = ["fast", "slow", "late"]
            self.agents = []
            self._obs_space = spaces.Box(0.0, 10.0, shape=(1,), dtype=np.float32)
            self._act_space = spaces.Discrete(2)
            self.t = 0

        def observation_space(self, agent):
            return self._obs_space

        def action_space(self, agent):
            return self._act_space

        def _obs(self) -> np.ndarray:
            return np.array([self.t], dtype=np.float32)

        def reset(self, seed=None, options=None):
            self.t, self.agents = 0, ["fast", "slow"]
            return {a: self._obs() for a in self.agents}, {a: {} for a in self.agents}

        def step(self, actions):
            assert set(actions) == set(self.agents), (actions, self.agents)
            self.t += 1
            ends = {"fast": 3, "late": 4, "slow": 5}
            obs = {a: self._obs() for a in self.agents}
            rewards = {a: int(actions[a]) for a in self.agents}
            terminations = {a: a != "slow" and self.t >= ends[a] for a in self.agents}
            truncations = {a: a == "slow" and self.t >= ends[a] for a in self.agents}
            self.agents = [a for a in self.agents if not (terminations[a] or truncations[a])]
            if self.t == 2:
                self.agents.append("late")
                obs["late"], rewards["late"] = self._obs(), 0
                terminations["late"] = truncations["late"] = False
            return obs, rewards, terminations, truncations, {a: {} for a in obs}

    return TinyParallel()


def test_parallel_adapter_passes_everything_through(pz):
    env = PettingZooParallelAdapter(tiny_parallel_env())
    obs, _ = env.reset(seed=0)
    assert set(obs) == set(env.agents) == {"fast", "slow"} and env.possible_agents == ["fast", "slow", "late"]
    seen = []
    for t in range(1, 6):
        obs, rewards, terminateds, truncateds, _ = env.step({a: 1 for a in env.agents})
        seen.append((sorted(obs), sorted(a for a in obs if terminateds.get(a) or truncateds.get(a))))
        assert all(isinstance(r, float) for r in rewards.values())
        assert episode_done(terminateds, truncateds) == (t == 5)
    assert seen == [
        (["fast", "slow"], []),
        (["fast", "late", "slow"], []),
        (["fast", "late", "slow"], ["fast"]),
        (["late", "slow"], ["late"]),
        (["slow"], ["slow"]),
    ]
    assert truncateds == {"slow": True, "__all__": True} and terminateds == {"slow": False, "__all__": False}
    assert env.agents == []
    check_multi_agent_env(env)


def test_parallel_adapter_with_agents_joining_mid_episode(pz):
    from pettingzoo.test.example_envs import generated_agents_parallel_v0

    env = wrap_multi_agent(generated_agents_parallel_v0.parallel_env())
    assert isinstance(env, PettingZooParallelAdapter)
    obs, _ = env.reset(seed=3)
    first = set(obs)
    joined = set()
    for _ in range(60):
        obs, *_ = env.step({a: env.get_action_space(a).sample() for a in env.agents})
        joined |= set(obs) - first
        assert all(env.get_observation_space(a).contains(o) for a, o in obs.items())
    assert joined and joined <= set(env.possible_agents)


def test_parallel_api_test_on_a_pettingzoo_env_wrapped_and_back(pz):
    from pettingzoo.test import parallel_api_test

    view = to_pettingzoo_parallel(PettingZooParallelAdapter(tiny_parallel_env()))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # parallel_api_test only warns about missing/extra keys
        parallel_api_test(view, num_cycles=20)


def test_parallel_adapter_on_rock_paper_scissors(pz):
    from pettingzoo.test import parallel_api_test

    env = PettingZooParallelAdapter(classic("rps_v2", "parallel"))
    obs, _ = env.reset(seed=0)
    returns = dict.fromkeys(env.possible_agents, 0.0)
    steps = 0
    while True:
        obs, rewards, terminateds, truncateds, _ = env.step({a: env.get_action_space(a).sample() for a in env.agents})
        steps += 1
        assert set(obs) == set(rewards) == set(env.possible_agents)  # simultaneous: every agent observes
        for agent, reward in rewards.items():
            returns[agent] += reward
        if episode_done(terminateds, truncateds):
            break
    assert truncateds["__all__"] and not terminateds["__all__"] and steps == env.env.unwrapped.max_cycles
    assert sum(returns.values()) == 0  # zero-sum
    check_multi_agent_env(env)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        parallel_api_test(to_pettingzoo_parallel(env), num_cycles=50)


def test_the_pettingzoo_view_refuses_turn_based_envs(pz):
    view = to_pettingzoo_parallel(PettingZooAECAdapter(classic("tictactoe_v3")))
    view.reset(seed=0)
    with pytest.raises(EnvError, match="simultaneous-move"):
        view.step({"player_1": 0})


# --- wrap_multi_agent, is_multi_agent ------------------------------------------------------------------


def test_wrap_and_recognise_multi_agent_envs(pz):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # importing env modules is deprecated in 1.27
        from pettingzoo.classic import connect_four_v3
    arena = MultiAgentArena()
    assert wrap_multi_agent(arena) is arena
    assert isinstance(wrap_multi_agent(classic("connect_four_v3")), PettingZooAECAdapter)
    assert isinstance(wrap_multi_agent(tiny_parallel_env()), PettingZooParallelAdapter)
    assert is_multi_agent(arena) and is_multi_agent(MultiAgentArena) and is_multi_agent(MultiAgentEnv)
    assert not is_multi_agent(classic("tictactoe_v3"))  # PettingZoo envs need wrapping first
    assert not is_multi_agent(gymnasium.make("CartPole-v1")) and not is_multi_agent(connect_four_v3)
    assert pettingzoo_kind(classic("tictactoe_v3")) == "aec" and pettingzoo_kind(tiny_parallel_env()) == "parallel"
    assert pettingzoo_kind(arena) is None and pettingzoo_kind(connect_four_v3) is None
    with pytest.raises(EnvError, match="single-agent gymnasium.Env"):
        wrap_multi_agent(gymnasium.make("CartPole-v1"))
    with pytest.raises(EnvError, match=r"connect_four_v3.env\(\)"):
        wrap_multi_agent(connect_four_v3)
    with pytest.raises(EnvError, match="PettingZooParallelAdapter"):
        PettingZooAECAdapter(tiny_parallel_env())


def test_env_layer_imports_neither_torch_nor_pettingzoo_at_import_time():
    # statically: importing these modules at run time also runs rlarena/__init__, which imports torch
    for module in ENV_LAYER:
        tree = ast.parse(Path(module.__file__).read_text())
        everywhere = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert not [n for n in everywhere if _roots(n) & {"torch"}], module.__name__
        assert not [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)) and _roots(n) & {"pettingzoo"}]


def _roots(node: ast.Import | ast.ImportFrom) -> set[str]:
    names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
    return {name.split(".")[0] for name in names}


# --- check_multi_agent_env on broken envs --------------------------------------------------------------


class GoodEnv(MultiAgentEnv):
    """Two agents, Box(2,) float32 observations, Discrete(2) actions; "b" is done after 3 steps, the
    episode is truncated after 6. Observations are seeded noise."""

    def __init__(self) -> None:
        self.possible_agents = ["a", "b"]
        self.agents = []
        self.observation_spaces = {a: spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32) for a in "ab"}
        self.action_spaces = {a: spaces.Discrete(2) for a in "ab"}
        self.t = 0

    def _obs(self, agents) -> dict:
        return {a: self.np_random.uniform(-1, 1, size=2).astype(np.float32) for a in agents}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.agents = 0, ["a", "b"]
        return self._obs(self.agents), {a: {} for a in self.agents}

    def step(self, action_dict):
        assert set(action_dict) == set(self.agents), (action_dict, self.agents)
        self.t += 1
        obs = self._obs(self.agents)
        terminateds = {"b": True} if self.t == 3 else {}
        over = self.t >= 6
        truncateds = dict.fromkeys(self.agents, True) if over else {}
        self.agents = [a for a in self.agents if not (a == "b" and self.t >= 3) and not over]
        rewards = {a: 1.0 for a in obs}
        return obs, rewards, {**terminateds, "__all__": False}, {**truncateds, "__all__": over}, {a: {} for a in obs}


class NoAllKey(GoodEnv):
    def step(self, action_dict):
        obs, rewards, terminateds, truncateds, infos = super().step(action_dict)
        del terminateds["__all__"]
        return obs, rewards, terminateds, truncateds, infos


class OutOfSpace(GoodEnv):
    def _obs(self, agents):
        return {a: np.full(2, 3.0, dtype=np.float32) for a in agents}


class UnknownAgent(GoodEnv):
    def reset(self, *, seed=None, options=None):
        obs, infos = super().reset(seed=seed)
        return {**obs, "ghost": np.zeros(2, np.float32)}, infos


class NanReward(GoodEnv):
    def step(self, action_dict):
        obs, rewards, *rest = super().step(action_dict)
        return (obs, {**rewards, "a": float("nan")}, *rest)


class OldApi(GoodEnv):
    def step(self, action_dict):
        obs, rewards, terminateds, _, infos = super().step(action_dict)
        return obs, rewards, terminateds, infos


class ObsOnly(GoodEnv):
    def reset(self, *, seed=None, options=None):
        return super().reset(seed=seed)[0]


class Revives(GoodEnv):
    """Keeps observing "b" after it terminated (asks a done agent to act again)."""

    def step(self, action_dict):
        self.agents = ["a", "b"] if self.t < 5 else self.agents
        return super().step({a: action_dict.get(a, 0) for a in self.agents})


class Unseeded(GoodEnv):
    def _obs(self, agents):
        return {a: np.random.default_rng().uniform(-1, 1, size=2).astype(np.float32) for a in agents}


class Stuck(GoodEnv):
    """No observation for anyone, but the episode is not over."""

    def step(self, action_dict):
        super().step(action_dict)
        return {}, {}, {"__all__": False}, {"__all__": False}, {}


class Crashes(GoodEnv):
    def step(self, action_dict):
        raise RuntimeError("boom")


def test_checker_passes_a_good_env_quietly():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_multi_agent_env(GoodEnv())


@pytest.mark.parametrize(
    "env_cls, expected",
    [
        (NoAllKey, "terminateds has no '__all__' key"),
        (OutOfSpace, r"reset's obs\['a'\]\[0\] = 3.0 is outside observation_space bounds"),
        (UnknownAgent, "names agent 'ghost', which has no observation space"),
        (NanReward, r"rewards\['a'\] is nan, expected a finite number"),
        (OldApi, "step returned 4 values .* RLlib's old API"),
        (ObsOnly, r"reset returned dict .*expected \(obs, infos\)"),
        (Revives, "'b', which was done .* must not be asked to act again"),
        (Unseeded, "does not make the env deterministic"),
        (Stuck, "no agent left to act"),
        (Crashes, "step.* raised RuntimeError: boom"),
    ],
)
def test_checker_names_what_is_wrong(env_cls, expected):
    with pytest.raises(EnvError, match=expected) as info:
        check_multi_agent_env(env_cls(), warn=False)
    assert str(info.value).startswith("check_env found")


def test_checker_rejects_what_is_not_a_multi_agent_env():
    with pytest.raises(EnvError, match="single-agent gymnasium.Env"):
        check_multi_agent_env(gymnasium.make("CartPole-v1"))

    class NoSpaces(GoodEnv):
        def __init__(self) -> None:
            super().__init__()
            del self.action_spaces

    with pytest.raises(EnvError, match=r"get_action_space\('a'\) raised EnvError: NoSpaces.action_spaces is missing"):
        check_multi_agent_env(NoSpaces())
