"""RLlib's API as the Connect Four blog uses it (issue 12, item 2): result["hist_stats"],
episode.episode_id, add_policy with RLlib's keywords, Algorithm.get_state()/set_state(),
workers/env_runner_group.sync_weights(), heuristics whose compute_actions returns RLlib's
(actions, state_outs, info), and callbacks written with RLlib's signatures."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlarena import Callbacks, ConfigError, PPOConfig
from rlarena.envs.multi_agent import MultiAgentEnv
from rlarena.games.connect_four.matches import play_matches
from rlarena.games.connect_four.opponents import LinearHeuristic
from rlarena.multiagent import PolicySpec
from rlarena.policies.policy import Policy
from rlarena.rollout.groups import EnvRunnerGroup

OBS = gym.spaces.Box(0, 10, (1,), np.float32)
ACT = gym.spaces.Discrete(2)


class ThreeSteps(MultiAgentEnv):
    """Both agents act every step; "a" earns 1 and "b" 2 per step; every episode lasts 3 steps. So
    each episode returns 3 to a, 6 to b and 9 in all, whatever the policies do."""

    def __init__(self, config=None):
        self.possible_agents = ["a", "b"]
        self.observation_spaces = {p: OBS for p in self.possible_agents}
        self.action_spaces = {p: ACT for p in self.possible_agents}

    def reset(self, *, seed=None, options=None):
        self.t, self.agents = 0, list(self.possible_agents)
        return {p: np.zeros(1, np.float32) for p in self.agents}, {}

    def step(self, action_dict):
        assert set(action_dict) == {"a", "b"} and all(a in (0, 1) for a in action_dict.values())
        self.t += 1
        done = self.t == 3
        obs = {p: np.full(1, self.t, np.float32) for p in self.agents}
        flags = {p: done for p in self.agents} | {"__all__": done}
        return obs, {"a": 1.0, "b": 2.0}, flags, {p: False for p in flags}, {}


class RLlibStyleHeuristic(Policy):
    """Written the RLlib way: RLlib's compute_actions signature, a list of actions in the 3-tuple."""

    def __init__(self, observation_space, action_space, config=None):
        super().__init__(observation_space, action_space, config)
        self.calls = 0

    def compute_actions(
        self,
        obs_batch,
        state_batches=None,
        prev_action_batch=None,
        prev_reward_batch=None,
        info_batch=None,
        episodes=None,
        **kwargs,
    ):
        self.calls += 1
        return [1 for _ in obs_batch], [], {}


class TupleLinear(LinearHeuristic):
    """A Connect Four heuristic returning RLlib's tuple (for the matches and evaluation paths)."""

    def compute_actions(self, obs_batch, explore=True):
        return list(super().compute_actions(obs_batch, explore)), [], {"note": "ignored"}


def by_letter(agent_id, episode, **kwargs):
    return "pa" if agent_id == "a" else "pb"


def three_steps_config(steps_per_iter=12, policies=None, **multi_agent):
    # one env copy: the fragment is exactly steps_per_iter env steps, i.e. steps_per_iter / 3 episodes
    return (
        PPOConfig()
        .environment(ThreeSteps)
        .framework("torch")
        .env_runners(num_envs_per_env_runner=1)
        .training(
            train_batch_size=steps_per_iter,
            minibatch_size=min(steps_per_iter, 64),
            num_epochs=1,
            model={"fcnet_hiddens": [8]},
        )
        .multi_agent(
            **{
                "policies": policies or {"pa": PolicySpec(), "pb": (RLlibStyleHeuristic, None, None, {})},
                "policy_mapping_fn": by_letter,
                "policies_to_train": ["pa"],
                **multi_agent,
            }
        )
        .debugging(seed=0)
    )


@pytest.fixture
def algo(build):
    return build(three_steps_config())


# -- result["hist_stats"] -------------------------------------------------------------------------
def test_hist_stats_hold_each_episode_and_each_policys_returns(algo):
    first = algo.train()  # 12 steps: 4 episodes
    assert first["hist_stats"] == {
        "episode_reward": [9.0] * 4,
        "episode_lengths": [3] * 4,
        "policy_pa_reward": [3.0] * 4,
        "policy_pb_reward": [6.0] * 4,
    }
    second = algo.train()  # 4 more: fewer than the smoothing window (100), so topped up as RLlib does
    assert second["hist_stats"]["episode_reward"] == [9.0] * 8
    assert len(second["hist_stats"]["policy_pb_reward"]) == 8
    # the blog pops lists out of it: the result's own dict, fresh each iteration
    second["hist_stats"].pop("policy_pa_reward")
    assert algo.train()["hist_stats"]["policy_pa_reward"] == [3.0] * 12


def test_hist_stats_list_every_episode_of_a_long_iteration(build):
    result = build(three_steps_config(steps_per_iter=360)).train()  # 120 episodes: more than the window
    assert len(result["hist_stats"]["episode_reward"]) == 120 == result["episodes_this_iter"]
    assert result["hist_stats"]["policy_pb_reward"] == [6.0] * 120


def test_single_agent_results_have_hist_stats(build, make_config):
    result = build(make_config(train_batch_size=256)).train()
    hist = result["hist_stats"]
    assert len(hist["episode_reward"]) == result["num_episodes_lifetime"] > 0
    assert np.mean(hist["episode_reward"]) == pytest.approx(result["episode_return_mean"])
    assert hist["policy_default_policy_reward"] == hist["episode_reward"]


# -- episode.episode_id -----------------------------------------------------------------------------
def test_episode_id_is_an_int_shared_by_the_agents_of_one_episode(build):
    seen = []

    def mapping(agent_id, episode, worker, **kwargs):  # the blog's signature (worker positional)
        seen.append((episode.episode_id, agent_id, worker is not None))
        return "pa" if episode.episode_id % 2 == (agent_id == "b") else "pb"

    build(three_steps_config(policy_mapping_fn=mapping)).train()
    ids = [i for i, _, in_runner in seen if in_runner]
    assert all(isinstance(i, int) for i in ids)
    per_episode = {i: sorted(a for j, a, in_runner in seen if j == i and in_runner) for i in ids}
    assert len(per_episode) >= 4 and all(agents == ["a", "b"] for agents in per_episode.values())


# -- add_policy / remove_policy with RLlib's keywords ----------------------------------------------
def test_add_policy_with_rllib_keywords_returns_the_policy(algo):
    algo.train()
    state = algo.get_policy("pa").get_state()

    def mapping(agent_id, episode, worker, **kwargs):
        return "pa" if agent_id == "a" else "snapshot"

    new_policy = algo.add_policy(
        policy_id="snapshot", policy_cls=type(algo.get_policy("pa")), policy_mapping_fn=mapping
    )
    assert new_policy is algo.get_policy("snapshot")
    new_policy.set_state(state)
    for k, v in new_policy.get_state().items():
        np.testing.assert_array_equal(v, state[k])
    result = algo.train()
    assert algo.policies_to_train == ["pa"]  # policies_to_train=["learned"] in the blog: the copy stays frozen
    # this iteration's 4 episodes against the snapshot, topped up with the first iteration's 4 against pb
    assert result["hist_stats"]["policy_snapshot_reward"] == [6.0] * 4
    assert result["hist_stats"]["policy_pb_reward"] == [6.0] * 4
    for k, v in algo.get_policy("snapshot").get_state().items():
        np.testing.assert_array_equal(v, state[k])

    heuristic = algo.add_policy(policy_id="h", policy_cls=RLlibStyleHeuristic, policy_mapping_fn=by_letter)
    assert isinstance(heuristic, RLlibStyleHeuristic) and heuristic.observation_space == OBS
    algo.remove_policy("snapshot", policy_mapping_fn=by_letter)
    assert "snapshot" not in algo.policies
    assert algo.train()["hist_stats"]["policy_pb_reward"] == [6.0] * 8  # pb plays b again


# -- get_state / set_state -----------------------------------------------------------------------------
def _weights(policy):
    return {k: v.detach().clone() for k, v in policy.model.state_dict().items()}


def test_get_state_set_state_round_trip_restores_weights_counters_and_league(algo):
    algo.train()
    state = algo.get_state()
    before = _weights(algo.get_policy("pa"))
    counters = dict(state["counters"])
    opt_before = algo.optimizers[("pa", "main")].get_state()

    algo.train()
    algo.train()
    algo.add_policy("extra", RLlibStyleHeuristic)
    algo.remove_policy("pb", policy_mapping_fn=lambda agent_id, episode, **kw: "pa" if agent_id == "a" else "extra")
    assert any(not torch.equal(before[k], v) for k, v in _weights(algo.get_policy("pa")).items())

    algo.set_policy_mapping_fn(by_letter)
    algo.set_state(state)
    assert set(algo.policies) == {"pa", "pb"} and isinstance(algo.get_policy("pb"), RLlibStyleHeuristic)
    for k, v in _weights(algo.get_policy("pa")).items():
        assert torch.equal(before[k], v), k
    for k, v in algo.optimizers[("pa", "main")].get_state().items():
        np.testing.assert_array_equal(v, opt_before[k])
    assert algo.iteration == counters["iteration"] == 1
    assert algo.num_env_steps_sampled_lifetime == counters["num_env_steps_sampled_lifetime"]
    assert algo.policies_to_train == ["pa"]
    assert algo.train()["training_iteration"] == 2


def test_set_state_of_something_else_is_one_clear_error(algo):
    with pytest.raises(ConfigError, match=r"set_state\(\) takes what PPO.get_state\(\) returned"):
        algo.set_state(algo.get_policy("pa").get_state())


# -- workers / env_runner_group ---------------------------------------------------------------------
def test_sync_weights_is_harmless_locally_and_checks_policy_ids(algo):
    assert isinstance(algo.workers, EnvRunnerGroup) and isinstance(algo.env_runner_group, EnvRunnerGroup)
    algo.workers.sync_weights()
    algo.env_runner_group.sync_weights(policies=["pa"])
    runner = algo.env_runner_group.local_env_runner()
    assert runner is algo.runner and runner.policies is algo.policies  # why there is nothing to copy locally
    assert algo.workers.local_worker() is runner and algo.workers.num_remote_workers() == 0
    with pytest.raises(ConfigError, match="No policy 'pz'"):
        algo.workers.sync_weights(policies=["pz"])


# -- heuristics returning (actions, state_outs, info) -------------------------------------------------
def test_three_tuple_heuristics_play_in_training_and_evaluation(build):
    algo = build(three_steps_config().evaluation(evaluation_interval=1, evaluation_duration=4))
    result = algo.train()
    assert algo.get_policy("pb").calls > 0
    assert result["evaluation"]["episode_return_mean"] == 9.0
    assert algo.compute_actions(np.zeros((3, 1), np.float32), policy_id="pb").tolist() == [1, 1, 1]
    assert algo.compute_single_action(np.zeros(1, np.float32), policy_id="pb") == 1


def test_three_tuple_heuristic_in_connect_four_matches_and_training(build):
    space = gym.spaces.Dict(
        {"observation": gym.spaces.Box(0, 1, (6, 7, 2), np.int8), "action_mask": gym.spaces.Box(0, 1, (7,), np.int8)}
    )
    table = play_matches(
        LinearHeuristic(space, gym.spaces.Discrete(7), seed=0),
        TupleLinear(space, gym.spaces.Discrete(7), seed=1),
        games_per_seat=4,
    )
    assert table["win"] + table["draw"] + table["loss"] == pytest.approx(1.0)
    config = (
        PPOConfig()
        .environment("connect_four")
        .framework("torch")
        .env_runners(num_envs_per_env_runner=2)
        .training(train_batch_size=64, minibatch_size=64, num_epochs=1, model={"fcnet_hiddens": [8]})
        .multi_agent(
            policies={"learned": PolicySpec(), "linear": PolicySpec(policy_class=TupleLinear)},
            policy_mapping_fn=lambda agent_id, episode, **kw: (
                "learned" if episode.episode_id % 2 == int(agent_id[-1:]) else "linear"
            ),
            policies_to_train=["learned"],
        )
        .evaluation(evaluation_interval=1, evaluation_duration=2)
        .debugging(seed=0)
    )
    result = build(config).train()
    assert result["evaluation"]["episodes"] == 2


class WrongLength(Policy):
    def compute_actions(self, obs_batch, explore=True):
        return [0], [], {}


def test_a_heuristic_returning_the_wrong_number_of_actions_is_one_clear_error(build):
    algo = build(
        three_steps_config(steps_per_iter=12, policies={"pa": PolicySpec(), "pb": PolicySpec(WrongLength)}).env_runners(
            num_envs_per_env_runner=2
        )
    )
    with pytest.raises(ConfigError, match=r"WrongLength.compute_actions returned shape \(1,\) for a batch of 2 "):
        algo.train()


# -- callbacks with RLlib's signatures -------------------------------------------------------------------
class RLlibKwargsCallbacks(Callbacks):
    """RLlib's documented signatures, **kwargs included (the blog's)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def on_algorithm_init(self, *, algorithm, **kwargs):
        self.calls.append(("init", algorithm.iteration))

    def on_episode_end(self, *, worker, base_env, policies, episode, env_index, **kwargs):
        self.calls.append(("episode_end", set(policies), worker is kwargs["env_runner"], episode.length))

    def on_sample_end(self, *, worker, samples, **kwargs):
        self.calls.append(("sample_end", sorted(samples)))

    def on_train_result(self, *, algorithm, result, **kwargs):
        result["custom"] = len(result["hist_stats"]["episode_reward"])
        self.calls.append(("train_result", sorted(kwargs)))

    def on_evaluate_end(self, *, algorithm, evaluation_metrics, **kwargs):
        evaluation_metrics["seen"] = True
        self.calls.append(("evaluate_end", evaluation_metrics["episode_return_mean"]))


class ExactCallbacks(Callbacks):
    """No **kwargs: each hook gets exactly what it names (RLlib 1.x's `trainer` too)."""

    def __init__(self):
        self.calls = []

    def on_episode_start(self, *, episode, env_index):
        self.calls.append(("episode_start", env_index))

    def on_train_result(self, *, trainer, result):
        self.calls.append(("train_result", trainer.iteration))

    def on_evaluate_end(self, *, evaluation_metrics, algorithm):
        self.calls.append(("evaluate_end", evaluation_metrics["episodes"]))


@pytest.mark.parametrize("callbacks_class", [RLlibKwargsCallbacks, ExactCallbacks])
def test_callbacks_with_and_without_kwargs_are_called(build, callbacks_class):
    algo = build(
        three_steps_config().callbacks(callbacks_class).evaluation(evaluation_interval=1, evaluation_duration=2)
    )
    result = algo.train()
    kinds = [c[0] for c in algo.callbacks.calls]
    if callbacks_class is RLlibKwargsCallbacks:
        assert kinds[0] == "init" and result["custom"] == 4 and result["evaluation"]["seen"] is True
        assert ("episode_end", {"pa", "pb"}, True, 3) in algo.callbacks.calls
        assert ("sample_end", ["pa"]) in algo.callbacks.calls
        assert ("train_result", ["trainer"]) in algo.callbacks.calls  # every extra argument reaches **kwargs
        assert ("evaluate_end", 9.0) in algo.callbacks.calls
    else:
        assert ("train_result", 1) in algo.callbacks.calls and ("evaluate_end", 2) in algo.callbacks.calls
        assert ("episode_start", 0) in algo.callbacks.calls
    assert kinds.index("evaluate_end") < kinds.index("train_result")  # evaluate() runs inside train()


class NeedsMetricsLogger(Callbacks):
    def on_episode_end(self, *, episode, metrics_logger, **kwargs):
        pass


def test_a_hook_requiring_an_argument_rlarena_lacks_fails_at_build_in_one_line():
    with pytest.raises(
        ConfigError,
        match="NeedsMetricsLogger.on_episode_end requires an argument 'metrics_logger', which rlarena does not pass",
    ) as info:
        three_steps_config().callbacks(NeedsMetricsLogger).build()
    assert "\n" not in str(info.value)


# -- policy_mapping_fn signatures ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "mapping",
    [
        lambda agent_id: "pa" if agent_id == "a" else "pb",  # RLlib 1.x's one-argument form (the arena tutorial)
        lambda agent_id, episode: "pa" if agent_id == "a" else "pb",
        lambda agent_id, episode, worker: "pa" if agent_id == "a" and episode.length >= 0 else "pb",
        lambda agent_id, *args, **kwargs: "pa" if agent_id == "a" and "worker" in kwargs else "pb",
    ],
)
def test_mapping_functions_of_each_rllib_signature(build, mapping):
    hist = build(three_steps_config(policy_mapping_fn=mapping)).train()["hist_stats"]
    assert hist["policy_pa_reward"] == [3.0] * 4 and hist["policy_pb_reward"] == [6.0] * 4


def test_restore_in_place_and_observation_keyword(tmp_path):
    """The notebook's `algo = config.build(); algo.restore(checkpoint)` and
    `compute_single_action(observation=obs)`."""
    from rlarena import CheckpointError, ConfigError, PPOConfig

    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_envs_per_env_runner=2)
        .training(train_batch_size=64, minibatch_size=64, num_epochs=1)
        .debugging(seed=3)
    )
    trained = config.build()
    fresh = config.build()
    try:
        trained.train()
        trained.train()
        path = trained.save(tmp_path / "c")
        fresh.restore(path)
        assert fresh.iteration == 2 and fresh.num_env_steps_sampled_lifetime == trained.num_env_steps_sampled_lifetime
        for key, value in trained.get_policy().get_state().items():
            np.testing.assert_array_equal(fresh.get_policy().get_state()[key], value)
        obs = np.zeros(4, np.float32)
        assert (
            fresh.compute_single_action(observation=obs, explore=False)
            == fresh.compute_single_action(obs, explore=False)
            == fresh.compute_single_action(obs=obs, explore=False)
        )
        with pytest.raises(ConfigError, match="one observation"):
            fresh.compute_single_action()
        assert fresh.train()["training_iteration"] == 3
    finally:
        trained.stop()
        fresh.stop()
    arena = PPOConfig().environment("multi_agent_arena").training(train_batch_size=64, minibatch_size=64).build()
    try:
        with pytest.raises(CheckpointError, match="does not match"):  # same policy id, other spaces
            arena.restore(path)
    finally:
        arena.stop()
