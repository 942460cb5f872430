"""Envs of the old APIs (gym < 0.26, RLlib 1.x's MultiAgentEnv) train unchanged, adapted with one notice
per env class (rlarena.envs.legacy); what cannot be adapted is one clear EnvError."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from rlarena import MultiAgentEnv, PolicySpec, PPOConfig, check_env
from rlarena.algorithms.algorithm import Algorithm
from rlarena.envs import legacy
from rlarena.envs.legacy import LegacyGymEnv, LegacyMultiAgentEnv, adapt_old_api
from rlarena.envs.registry import make_env_creator, make_vector_env
from rlarena.errors import EnvError, RLArenaNotice
from rlarena.multiagent.builder import as_multi_agent

SMALL = {"train_batch_size": 128, "minibatch_size": 64, "num_epochs": 2}
# the notices are expected here; tests that count them use pytest.warns, which sees them regardless
pytestmark = pytest.mark.filterwarnings("ignore::rlarena.errors.RLArenaNotice")


@pytest.fixture(autouse=True)
def _fresh_notices(monkeypatch):
    """Each test sees every env class's notice anew (they are once per class and process)."""
    monkeypatch.setattr(legacy, "_NOTICED", set())


# --- envs in RLlib 1.x's style -------------------------------------------------------------------


class OldChase(MultiAgentEnv):
    """The MultiAgentArena tutorial's conventions: one shared space pair, no agent list, reset() without
    seed returning only obs, step returning (obs, rewards, dones, infos); it resets in __init__."""

    def __init__(self, config=None):
        config = config or {}
        self.ts = config.get("ts", 8)
        self.observation_space = spaces.MultiDiscrete([5, 5])
        self.action_space = spaces.Discrete(2)
        self.reset()

    def reset(self):
        self.pos, self.t = {"runner": 0, "chaser": 4}, 0
        return self._obs()

    def _obs(self):
        return {
            "runner": np.array([self.pos["runner"], self.pos["chaser"]]),
            "chaser": np.array([self.pos["chaser"], self.pos["runner"]]),
        }

    def step(self, action):
        self.t += 1
        for agent in self.pos:  # a joining agent's moves change nothing
            self.pos[agent] = int(np.clip(self.pos[agent] + (1 if action[agent] == 1 else -1), 0, 4))
        caught = self.pos["runner"] == self.pos["chaser"]
        done = self.t >= self.ts
        rewards = {"runner": -1.0 if caught else 0.1, "chaser": 1.0 if caught else -0.1}
        return self._obs(), rewards, {"runner": done, "chaser": done, "__all__": done}, {}


class Joiner(OldChase):
    """A third agent, "late", joins at step 2 (the old API's agents appear in obs when they exist)."""

    def _obs(self):
        obs = super()._obs()
        if self.t >= 2:
            obs["late"] = np.array([self.pos["runner"], self.pos["chaser"]])
        return obs


def by_agent(agent_id, episode, **kwargs):
    return {"runner": "p_runner", "chaser": "p_chaser"}.get(agent_id, "p_runner")


def two_policies(env=OldChase, env_config=None) -> PPOConfig:
    return (
        PPOConfig()
        .environment(env, env_config=env_config or {})
        .training(**SMALL)
        .multi_agent(policies={"p_runner": PolicySpec(), "p_chaser": PolicySpec()}, policy_mapping_fn=by_agent)
        .debugging(seed=0)
    )


def test_old_multi_agent_env_trains_with_two_policies_and_one_notice():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        algo = two_policies().build()
        try:
            for _ in range(2):
                result = algo.train()
            algo.evaluate()
        finally:
            algo.stop()
    assert result["training_iteration"] == 2
    assert set(result["policy_reward_mean"]) == {"p_runner", "p_chaser"}
    assert result["episode_len_mean"] == 8
    notices = [str(w.message) for w in caught if w.category is RLArenaNotice]
    assert len(notices) == 1, notices  # per env class, not per env copy or step
    assert notices[0].startswith(
        "Env OldChase uses RLlib's old MultiAgentEnv API (reset() without seed=, "
        "no possible_agents list, one observation/action space for all agents)"
    )
    assert "seeds are not passed on" in notices[0]


def test_agents_inferred_shared_spaces_and_dones_converted():
    env = adapt_old_api(OldChase(), report=False)
    assert isinstance(env, LegacyMultiAgentEnv)
    assert env.possible_agents == ["runner", "chaser"]  # from a reset, as the env had none
    assert env.get_observation_space("chaser") is env.get_observation_space("runner") is env.env.observation_space
    assert env.action_spaces == {"runner": env.env.action_space, "chaser": env.env.action_space}
    obs, infos = env.reset(seed=3)  # the env's reset takes no seed: called without one
    assert set(obs) == {"runner", "chaser"} and infos == {"runner": {}, "chaser": {}}
    for t in range(8):
        obs, _, terminateds, truncateds, infos = env.step({"runner": 1, "chaser": 0})
        assert truncateds == {"runner": False, "chaser": False, "__all__": False}
        assert terminateds["__all__"] is (t == 7) and terminateds["runner"] is (t == 7)
        assert env.agents == ([] if t == 7 else ["runner", "chaser"])


def test_new_agents_extend_the_agent_list_and_train():
    env = adapt_old_api(Joiner(), report=False)
    assert env.possible_agents == ["runner", "chaser"]
    env.reset()
    env.step({"runner": 0, "chaser": 0})
    env.step({"runner": 0, "chaser": 0})
    assert env.possible_agents == ["runner", "chaser", "late"] and "late" in env.agents
    with pytest.warns(RLArenaNotice):
        algo = two_policies(Joiner).build()
    try:
        result = algo.train()
    finally:
        algo.stop()
    assert result["policy_reward_mean"]["p_runner"] != 0  # "late" plays p_runner too


def test_old_dones_without_all_key_end_when_every_agent_is_done():
    class NoAll(OldChase):
        def step(self, action):
            obs, rewards, dones, infos = super().step(action)
            del dones["__all__"]
            return obs, rewards, dones, infos

    env = adapt_old_api(NoAll(), report=False)
    env.reset()
    flags = [env.step({"runner": 0, "chaser": 1})[2]["__all__"] for _ in range(8)]
    assert flags == [False] * 7 + [True]


def test_rllib2_dict_spaces_keyed_by_agent_are_per_agent():
    class Keyed(OldChase):
        def __init__(self, config=None):
            super().__init__(config)
            self._agent_ids = {"runner", "chaser"}
            self.observation_space = spaces.Dict(
                {"runner": spaces.MultiDiscrete([5, 5]), "chaser": spaces.MultiDiscrete([5, 5])}
            )
            self.action_space = spaces.Dict({"runner": spaces.Discrete(2), "chaser": spaces.Discrete(3)})

    env = adapt_old_api(Keyed(), report=False)
    assert sorted(env.possible_agents) == ["chaser", "runner"]
    assert env.get_action_space("chaser") == spaces.Discrete(3)
    with pytest.raises(EnvError, match="Env Keyed has no action space for agent 'ghost'"):
        env.get_action_space("ghost")


def test_current_api_env_with_one_shared_space():
    class SharedSpaces(MultiAgentEnv):  # today's reset/step, but RLlib 1.x's one space pair
        def __init__(self, config=None):
            self.possible_agents, self.agents = ["a", "b"], []
            self.observation_space, self.action_space = spaces.Discrete(3), spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.agents = ["a", "b"]
            return {"a": 0, "b": 1}, {}

        def step(self, action_dict):
            return {"a": 2, "b": 2}, {"a": 1.0, "b": 0.0}, {"__all__": True}, {"__all__": False}, {}

    env = adapt_old_api(SharedSpaces(), report=False)
    assert env.description.endswith("rlarena adapts it: the shared observation/action space used for every agent.")
    assert env.possible_agents == ["a", "b"] and env.get_action_space("b") == spaces.Discrete(2)
    assert env.reset(seed=1) == ({"a": 0, "b": 1}, {"a": {}, "b": {}})
    assert env.step({"a": 0, "b": 1})[2:4] == ({"__all__": True}, {"__all__": False})
    check_env(SharedSpaces(), warn=False)


def test_current_envs_are_not_adapted():
    from rlarena.envs.arena import MultiAgentArena

    arena = MultiAgentArena()
    assert adapt_old_api(arena) is arena and as_multi_agent(arena) is arena
    cartpole = gymnasium.make("CartPole-v1")
    assert adapt_old_api(cartpole) is cartpole


def test_check_env_reports_old_multi_agent_env_as_adapted():
    with pytest.warns(RLArenaNotice, match="^old API, adapted: Env OldChase uses RLlib's old MultiAgentEnv API"):
        check_env(OldChase())
    with pytest.warns(RLArenaNotice, match="old API, adapted"):
        check_env(OldChase)  # the class, built with no arguments
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(OldChase(), warn=False)


# --- single-agent envs of the old Gym API ---------------------------------------------------------


class OldCorridor:
    """gym < 0.26 and not even a gymnasium.Env: walk right 4 cells; a TimeLimit-style cut at 20 steps."""

    def __init__(self, config=None):
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.pos = self.t = 0

    def reset(self):
        self.pos = self.t = 0
        return np.array([0.0], np.float32)

    def step(self, action):
        self.pos, self.t = max(0, self.pos + (1 if action == 1 else -1)), self.t + 1
        at_goal, cut = self.pos >= 4, self.t >= 20
        info = {"TimeLimit.truncated": True} if cut and not at_goal else {}
        return np.array([self.pos / 4], np.float32), 1.0 if at_goal else -0.1, at_goal or cut, info


class OldGymnasiumCorridor(OldCorridor, gymnasium.Env):
    """The same, written as a gymnasium.Env subclass with the old signatures."""


def test_old_single_agent_env_is_a_gymnasium_env_with_terminated_and_truncated():
    env = adapt_old_api(OldCorridor(), report=False)
    assert isinstance(env, LegacyGymEnv) and isinstance(env, gymnasium.Env)
    obs, info = env.reset(seed=1)
    assert obs.shape == (1,) and info == {}
    for _ in range(19):
        _, _, terminated, truncated, _ = env.step(0)
        assert not (terminated or truncated)
    assert env.step(0)[2:4] == (False, True)  # info["TimeLimit.truncated"]: cut short, not ended
    env.reset()
    assert [env.step(1)[2:4] for _ in range(4)][-1] == (True, False)
    vec = make_vector_env(OldCorridor, {}, 3, "sync")
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (3, 1)
    vec.close()


@pytest.mark.parametrize("env_cls", [OldCorridor, OldGymnasiumCorridor])
def test_old_single_agent_env_trains_evaluates_and_restores(env_cls, tmp_path):
    config = PPOConfig().environment(env_cls).training(**SMALL).evaluation(evaluation_duration=2).debugging(seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        algo = config.build()
        try:
            result = algo.train()
            assert result["num_env_steps_sampled_this_iter"] >= 128
            assert np.isfinite(algo.evaluate()["episode_return_mean"])
            path = algo.save(tmp_path / "checkpoint")
        finally:
            algo.stop()
    notices = [str(w.message) for w in caught if w.category is RLArenaNotice]
    assert len(notices) == 1, notices
    assert notices[0].startswith(f"Env {env_cls.__name__} uses the old Gym API (")
    restored = Algorithm.from_checkpoint(path, env=env_cls)
    try:
        assert restored.iteration == 1
        assert restored.compute_single_action(np.array([0.5], np.float32), explore=False) in (0, 1)
        restored.train()
    finally:
        restored.stop()


def test_old_gym_seed_method_receives_the_seed():
    seeds = []

    class Seeded(OldCorridor):
        def seed(self, seed=None):
            seeds.append(seed)

    env = adapt_old_api(Seeded(), report=False)
    env.reset(seed=7)
    env.reset()
    assert seeds == [7] and "Seeds go to its seed() method" in env.description


def test_check_env_reports_old_single_agent_env_as_adapted():
    with pytest.warns(
        RLArenaNotice,
        match=r"^old API, adapted: Env OldCorridor uses the old Gym API \(reset\(\) "
        r"without seed=\)",
    ):
        check_env(OldCorridor())
    with pytest.warns(RLArenaNotice, match="old API, adapted"):
        check_env(OldGymnasiumCorridor)


# --- what stays an error: one line naming the env and what to add ----------------------------------


def test_old_multi_agent_env_without_spaces():
    class NoSpace(OldChase):
        def __init__(self, config=None):
            super().__init__(config)
            del self.observation_space

    with pytest.raises(EnvError) as info:
        two_policies(NoSpace).build()
    message = str(info.value)
    assert message == (
        "Env NoSpace has no observation space: set self.observation_space = <one gymnasium Space "
        "for every agent> or self.observation_spaces = {agent_id: Space} in its __init__."
    )


def test_old_multi_agent_env_whose_reset_returns_nothing():
    class Empty(OldChase):
        def reset(self):
            super().reset()
            return {}

    with pytest.raises(
        EnvError,
        match=r"^Env Empty.reset\(\) returned no observations; expected a dict "
        r"\{agent_id: observation\}",
    ):
        two_policies(Empty).build()


def test_old_single_agent_env_without_spaces_or_with_a_bad_step():
    class NoActions(OldCorridor):
        def __init__(self, config=None):
            super().__init__(config)
            del self.action_space

    with pytest.raises(
        EnvError,
        match=r"^Env NoActions has no action_space; set self.action_space = "
        r"gymnasium.spaces.Discrete\(2\)",
    ):
        make_env_creator(NoActions)({})

    class ThreeTuple(OldCorridor):
        def step(self, action):
            return super().step(action)[:3]

    env = adapt_old_api(ThreeTuple(), report=False)
    env.reset()
    with pytest.raises(EnvError, match=r"ThreeTuple.step\(\) returned a tuple of 3 values"):
        env.step(0)


def test_space_from_the_old_gym_package_is_named():
    class FakeGymSpace:  # what `gym.spaces.Discrete(2)` is to rlarena: not a gymnasium Space
        pass

    FakeGymSpace.__module__ = "gym.spaces.discrete"
    FakeGymSpace.__name__ = "Discrete"

    class GymSpaces(OldCorridor):
        def __init__(self, config=None):
            super().__init__(config)
            self.action_space = FakeGymSpace()

    with pytest.raises(
        EnvError,
        match=r"GymSpaces.action_space is Discrete \(a gym.spaces class: import the "
        r"spaces from gymnasium instead",
    ):
        make_env_creator(GymSpaces)({})


def test_a_class_that_is_no_env_at_all():
    class NotAnEnv:
        pass

    with pytest.raises(
        EnvError,
        match="^Env class NotAnEnv is not a gymnasium.Env subclass and has no "
        r"reset\(\)/step\(\)",
    ):
        make_env_creator(NotAnEnv)
