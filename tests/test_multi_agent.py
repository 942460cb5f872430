"""Multi-agent training: policy mapping, per-policy batches (turn-based reward accounting across
fragment boundaries), add/remove policy with save/restore, callbacks, action masking."""

from __future__ import annotations

import inspect
from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest

from rlarena import Algorithm, Callbacks, CheckpointError, ConfigError, PPOConfig
from rlarena.envs.arena import MultiAgentArena
from rlarena.envs.multi_agent import MultiAgentEnv
from rlarena.multiagent import PolicySpec
from rlarena.policies import RandomPolicy
from rlarena.policies.policy import Policy


def by_agent(agent_id, episode, **kwargs):
    return "policy1" if agent_id == "agent1" else "policy2"


def arena_config(**training):
    return (
        PPOConfig()
        .environment(MultiAgentArena, env_config={"width": 5, "height": 5, "ts": 25})
        .env_runners(num_envs_per_env_runner=4)
        .training(**{"train_batch_size": 1000, "minibatch_size": 250, "num_epochs": 5, "lr": 1e-3, **training})
        .multi_agent(policies={"policy1": PolicySpec(), "policy2": PolicySpec()}, policy_mapping_fn=by_agent)
        .debugging(seed=0)
    )


def test_both_policies_improve_on_a_small_arena():
    algo = arena_config().build()
    try:
        first = algo.train()
        for _ in range(14):
            last = algo.train()
    finally:
        algo.stop()
    for pid in ("policy1", "policy2"):
        assert last["policy_reward_mean"][pid] > first["policy_reward_mean"][pid] + 1.0, (pid, first, last)
    assert {"learner/policy1/policy_loss", "learner/policy2/vf_loss"} <= set(last)
    assert last["info"]["learner"]["policy1"]["learner_stats"]["entropy"] > 0


class TakeTurns(MultiAgentEnv):
    """Two players alternate; each move gives the mover +1 and the waiting player +10 (so rewards
    reach an agent between its turns). 5 moves per player, then the game ends (terminated)."""

    def __init__(self, config=None):
        self.possible_agents = ["a", "b"]
        self.observation_spaces = {p: gym.spaces.Box(0, 20, (1,), np.float32) for p in self.possible_agents}
        self.action_spaces = {p: gym.spaces.Discrete(2) for p in self.possible_agents}

    def reset(self, *, seed=None, options=None):
        self.t, self.agents = 0, list(self.possible_agents)
        return {"a": np.zeros(1, np.float32)}, {}

    def step(self, action_dict):
        mover = "a" if self.t % 2 == 0 else "b"
        other = "b" if mover == "a" else "a"
        assert list(action_dict) == [mover]
        self.t += 1
        done = self.t == 10
        obs = {p: np.full(1, self.t, np.float32) for p in ((mover, other) if done else (other,))}
        flags = {p: done for p in self.possible_agents} | {"__all__": done}
        return obs, {mover: 1.0, other: 10.0}, flags, {p: False for p in flags}, {}


def test_turn_based_rewards_and_carry_over_at_fragment_boundaries():
    # fragment of 3 env steps: the waiting player's open transition is carried to the next fragment
    cfg = (
        PPOConfig()
        .environment(TakeTurns)
        .env_runners(num_envs_per_env_runner=1, rollout_fragment_length=3)
        .training(train_batch_size=3, minibatch_size=2)
        .debugging(seed=0)
    )
    algo = cfg.build()
    rewards, flags = [], []
    try:
        for _ in range(10):  # 30 env steps = 3 games
            batch = algo.sample()["default_policy"]
            for col in range(batch.rewards.shape[1]):
                n = int(batch.valid[:, col].sum())
                rewards += batch.rewards[:n, col].tolist()
                flags.append((bool(batch.terminated[n - 1, col]), bool(batch.truncated[n - 1, col])))
    finally:
        algo.stop()
    # every transition: +1 for the move, +10 while the other moves; the last move of the game
    # ends it before the opponent answers, except for the second player whose last move ends it
    assert sorted(set(rewards)) == [1.0, 11.0]
    assert rewards.count(11.0) == 9 * 3 and rewards.count(1.0) == 1 * 3, rewards
    assert sum(t for t, _ in flags) == 2 * 3  # each game terminates once per player


def test_mapping_to_an_unknown_policy_names_the_closest():
    cfg = arena_config().multi_agent(policy_mapping_fn=lambda agent_id, episode, **kw: "policy_1")
    with pytest.raises(ConfigError, match="Did you mean 'policy1'"):
        cfg.build().train()


def test_single_agent_env_with_multi_agent_config_is_refused():
    with pytest.raises(ConfigError, match="needs a multi-agent env"):
        PPOConfig().environment("CartPole-v1").multi_agent(policies=["a"]).build()


def test_default_policy_is_shared_without_multi_agent_config():
    algo = (
        PPOConfig()
        .environment("multi_agent_arena", env_config={"ts": 25})
        .training(train_batch_size=400, minibatch_size=100, num_epochs=1)
        .build()
    )
    try:
        result = algo.train()
        assert set(algo.policies) == {"default_policy"}
        assert "policy_reward_mean/default_policy" in result
    finally:
        algo.stop()


class AlwaysRight(Policy):
    def compute_actions(self, obs_batch, explore=True):
        return np.ones(len(obs_batch), np.int64)


def test_add_and_remove_policy_during_training_survive_save_restore(tmp_path):
    algo = arena_config().build()
    try:
        algo.train()
        snapshot = algo.get_policy("policy1").get_state()
        frozen = lambda agent_id, episode, **kw: "policy1" if agent_id == "agent1" else "frozen"
        algo.add_policy("frozen", policy_state=snapshot, policy_mapping_fn=frozen, policies_to_train=["policy1"])
        algo.add_policy("heuristic", AlwaysRight)
        result = algo.train()
        assert "policy_reward_mean/frozen" in result and "learner/policy2/policy_loss" not in result
        for key, value in snapshot.items():  # not trained
            np.testing.assert_array_equal(algo.get_policy("frozen").get_state()[key], value)
        algo.remove_policy("policy2")
        path = algo.save(tmp_path / "ckpt")
        with pytest.raises(
            CheckpointError, match="policy_mapping_fn"
        ):  # AlwaysRight's module is trusted, the lambda lost
            Algorithm.from_checkpoint(path, trusted_modules=["test_multi_agent"])
        restored = Algorithm.from_checkpoint(
            path, config_overrides={"policy_mapping_fn": frozen}, trusted_modules=["test_multi_agent"]
        )
        try:
            assert set(restored.policies) == {"policy1", "frozen", "heuristic"}
            assert isinstance(restored.get_policy("heuristic"), AlwaysRight)
            assert restored.policies_to_train == ["policy1"]
            for pid in ("policy1", "frozen"):
                for key, value in algo.get_policy(pid).get_state().items():
                    np.testing.assert_array_equal(restored.get_policy(pid).get_state()[key], value)
            assert restored.train()["training_iteration"] == algo.iteration + 1
        finally:
            restored.stop()
    finally:
        algo.stop()


class Recorder(Callbacks):
    events: ClassVar[list] = []

    def on_episode_start(self, *, episode, env_index, algorithm):
        self.events.append(("episode_start", episode.episode_id))

    def on_episode_step(self, *, episode, env_index, algorithm):
        self.events.append(("episode_step", episode.episode_id))

    def on_episode_end(self, *, episode, env_index, algorithm):
        assert episode.length == 25 and set(episode.agent_rewards) == {"agent1", "agent2"}
        self.events.append(("episode_end", episode.episode_id))

    def on_sample_end(self, *, algorithm, batches):
        self.events.append(("sample_end", sorted(batches)))

    def on_train_result(self, *, algorithm, result):
        result["league_size"] = 2
        self.events.append(("train_result", result["training_iteration"]))

    def on_evaluate_end(self, *, algorithm, evaluation_metrics):
        self.events.append(("evaluate_end", evaluation_metrics["episodes"]))

    def on_checkpoint(self, *, algorithm, checkpoint_dir):
        self.events.append(("checkpoint", checkpoint_dir))


def test_callbacks_fire_in_the_documented_order_with_named_arguments(tmp_path):
    for name, member in inspect.getmembers(Callbacks, inspect.isfunction):
        params = list(inspect.signature(member).parameters.values())[1:]
        assert all(p.kind is p.KEYWORD_ONLY for p in params), name
    Recorder.events = []
    algo = arena_config().callbacks(Recorder).evaluation(evaluation_interval=1, evaluation_duration=2).build()
    try:
        result = algo.train()
        algo.save(tmp_path / "c")
    finally:
        algo.stop()
    kinds = [k for k, _ in Recorder.events]
    assert result["league_size"] == 2
    assert kinds[-4:] == ["sample_end", "evaluate_end", "train_result", "checkpoint"]
    assert Recorder.events[-4][1] == ["policy1", "policy2"]
    started, ended = set(), set()
    for kind, ep in Recorder.events:
        if kind == "episode_start":
            started.add(ep)
        elif kind in ("episode_step", "episode_end"):
            assert ep in started and ep not in ended
            if kind == "episode_end":
                ended.add(ep)
    assert len(ended) == 1000 // 25


class RandomMask(gym.Env):
    """Discrete(6) actions; a random non-empty subset is legal each step; an illegal action raises."""

    def __init__(self, config=None):
        self.observation_space = gym.spaces.Dict(
            {"observation": gym.spaces.Box(-1, 1, (3,), np.float32), "action_mask": gym.spaces.Box(0, 1, (6,), np.int8)}
        )
        self.action_space = gym.spaces.Discrete(6)

    def _obs(self):
        mask = (self.np_random.random(6) < 0.3).astype(np.int8)
        mask[self.np_random.integers(6)] = 1
        self.mask = mask
        return {"observation": self.np_random.uniform(-1, 1, 3).astype(np.float32), "action_mask": mask}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        if not self.mask[action]:
            raise AssertionError(f"illegal action {action} under mask {self.mask}")
        self.t += 1
        reward = float(action == int(np.flatnonzero(self.mask)[-1]))  # learnable: pick the last legal
        return self._obs(), reward, False, self.t >= 20, {}


def test_masked_actions_are_never_illegal_when_sampling_greedy_or_training():
    algo = (
        PPOConfig()
        .environment(RandomMask)
        .env_runners(num_envs_per_env_runner=4)
        .training(train_batch_size=400, minibatch_size=100, num_epochs=2)
        .debugging(seed=1)
        .build()
    )
    try:
        for _ in range(3):
            algo.train()  # raises inside the env on any illegal action
        policy = algo.get_policy()
        rng = np.random.default_rng(0)
        masks = rng.random((2000, 6)) < 0.3
        masks[np.arange(2000), rng.integers(0, 6, 2000)] = True
        obs = {"observation": rng.uniform(-1, 1, (2000, 3)).astype(np.float32), "action_mask": masks}
        for explore in (True, False):
            actions = policy.compute_actions(obs, explore=explore)
            assert masks[np.arange(2000), actions].all()
        assert algo.evaluate()["episodes"] == 10
    finally:
        algo.stop()


def test_random_policy_respects_masks():
    space = gym.spaces.Dict({"observation": gym.spaces.Box(0, 1, (2,)), "action_mask": gym.spaces.MultiBinary(4)})
    policy = RandomPolicy(space, gym.spaces.Discrete(4), seed=0)
    masks = np.eye(4, dtype=np.int8)[np.random.default_rng(0).integers(0, 4, 200)]
    actions = policy.compute_actions({"observation": np.zeros((200, 2)), "action_mask": masks})
    assert (masks[np.arange(200), actions] == 1).all()


class LegalityCheck(Callbacks):
    checked = 0

    def on_sample_end(self, *, algorithm, batches):
        for batch in batches.values():
            t, n = np.nonzero(batch.valid)
            assert batch.action_mask[t, n, batch.actions[t, n]].all(), "an illegal action was sampled"
            LegalityCheck.checked += len(t)


def test_trains_on_a_pettingzoo_classic_game_with_masks():
    import pettingzoo

    LegalityCheck.checked = 0
    algo = (
        PPOConfig()
        .environment(lambda cfg: pettingzoo.make("aec", "classic/tictactoe-v3"))
        .env_runners(num_envs_per_env_runner=4)
        .training(train_batch_size=400, minibatch_size=100, num_epochs=2)
        .callbacks(LegalityCheck)
        .debugging(seed=0)
        .build()
    )
    try:
        for _ in range(2):
            result = algo.train()
        assert result["episodes_this_iter"] > 0 and LegalityCheck.checked > 300
        # self-play with one shared policy: every game's rewards sum to 0 (win/loss) or 0 (draw)
        assert abs(result["episode_return_mean"]) < 1e-6
        assert algo.evaluate()["episodes"] == 10
    finally:
        algo.stop()


def test_per_policy_config_overrides():
    cfg = arena_config().multi_agent(policies={"policy1": PolicySpec(), "policy2": PolicySpec(config={"lr": 1e-10})})
    algo = cfg.build()
    try:
        before = {pid: algo.get_policy(pid).get_state() for pid in ("policy1", "policy2")}
        result = algo.train()
        after = {pid: algo.get_policy(pid).get_state() for pid in ("policy1", "policy2")}
        assert result["learner/policy2/cur_lr"] == 1e-10 and result["learner/policy1/cur_lr"] == 1e-3
        moved = {pid: max(np.abs(after[pid][k] - before[pid][k]).max() for k in after[pid]) for pid in after}
        assert moved["policy2"] < 1e-7 and moved["policy1"] > 1e-4, moved
    finally:
        algo.stop()


class EpisodeCounter(Callbacks):
    lengths: ClassVar[list] = []

    def on_episode_end(self, *, episode, env_index, algorithm):
        EpisodeCounter.lengths.append(episode.length)


def test_episode_hooks_fire_for_a_single_agent_env():
    EpisodeCounter.lengths = []
    algo = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_envs_per_env_runner=4)
        .training(train_batch_size=800, minibatch_size=200, num_epochs=1)
        .callbacks(EpisodeCounter)
        .debugging(seed=0)
        .build()
    )
    try:
        result = algo.train()
        assert EpisodeCounter.lengths and result["episodes_this_iter"] == len(EpisodeCounter.lengths)
        assert result["episode_len_mean"] == pytest.approx(np.mean(EpisodeCounter.lengths))
        assert algo.compute_single_action(np.zeros(4, np.float32), explore=False) in (0, 1)
        assert algo.evaluate()["episodes"] == 10
    finally:
        algo.stop()
