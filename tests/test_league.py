"""Connect Four league: seat alternation, growth (ladder rung, then snapshot), bounded snapshots,
matches and the arena command."""

import json

import gymnasium as gym
import numpy as np
import pytest

from rlarena import PolicySpec, PPOConfig
from rlarena.games.connect_four.league import ConnectFourLeague
from rlarena.games.connect_four.matches import play_matches
from rlarena.games.connect_four.opponents import OPPONENTS
from rlarena.games.connect_four.rules import ConnectFourMultiAgent, observation_space
from rlarena.multiagent.league import league_mapping_fn
from rlarena.rollout.multi_agent_episode import Episode

SPACES = (observation_space(), gym.spaces.Discrete(7))


class _Worker:
    def __init__(self) -> None:
        self.policies = {"learned": None, "random": None, "smart": None}
        self.envs = [ConnectFourMultiAgent()]  # the seats come from the env's possible_agents


def test_learner_alternates_seats_and_meets_every_member():
    seats, opponents = [], set()
    for _ in range(60):
        episode = Episode(env_index=0)
        p0 = league_mapping_fn("player_0", episode, worker=_Worker())
        p1 = league_mapping_fn("player_1", episode, worker=_Worker())
        assert sorted([p0, p1]).count("learned") == 1
        seats.append(p0 == "learned")
        opponents.add(p1 if p0 == "learned" else p0)
    assert 20 < sum(seats) < 40 and opponents == {"random", "smart"}
    assert league_mapping_fn("player_1", Episode(env_index=0), worker=None) == "learned"  # space probing


def league_config():
    return (
        PPOConfig()
        .environment("connect_four")
        .env_runners(num_envs_per_env_runner=4)
        .training(train_batch_size=256, minibatch_size=128, num_epochs=1)
        .multi_agent(
            policies={"learned": PolicySpec(), "random": PolicySpec(policy_class=OPPONENTS["random"])},
            policy_mapping_fn=league_mapping_fn,
            policies_to_train=["learned"],
        )
        .callbacks(ConnectFourLeague)
        .debugging(seed=0)
    )


def test_league_grows_by_rung_then_snapshot_and_keeps_snapshots_bounded(tmp_path):
    algo = league_config().build()
    try:
        league = algo.callbacks
        league.max_snapshots = 1
        for expected in (["negamax_1"], ["negamax_1", "snapshot_0"], ["negamax_1", "snapshot_0", "negamax_2"]):
            league._grow(algo)
            assert [p for p in algo.policies if p not in ("learned", "random")] == expected
        algo.iteration = 7
        league._grow(algo)  # a second snapshot pushes the first out
        assert [p for p in algo.policies if p.startswith("snapshot_")] == ["snapshot_7"]
        result = algo.train()
        assert {"league/score", "league/size", "league/snapshots"} <= set(result)
        assert result["league/size"] == 4 and algo.policies_to_train == ["learned"]
        path = algo.save(tmp_path / "ckpt")  # the mapping and the league restore by name
    finally:
        algo.stop()
    from rlarena import Algorithm

    restored = Algorithm.from_checkpoint(path)
    try:
        assert set(restored.policies) == {"learned", "random", "negamax_1", "negamax_2", "snapshot_7"}
        assert restored.train()["league/snapshots"] == 1
    finally:
        restored.stop()


def test_matches_score_the_agent_from_both_seats():
    assert play_matches(OPPONENTS["smart"](*SPACES), OPPONENTS["random"](*SPACES), 50)["score"] >= 0.95
    assert play_matches(OPPONENTS["random"](*SPACES), OPPONENTS["negamax_1"](*SPACES), 50)["score"] <= 0.05
    even = play_matches(OPPONENTS["random"](*SPACES), OPPONENTS["random"](*SPACES), 300)
    assert 0.4 < even["score"] < 0.6 and even["win"] + even["draw"] + even["loss"] == pytest.approx(1)


def test_arena_command_prints_the_table(tmp_path, capsys):
    from rlarena.cli.main import main

    algo = league_config().build()
    path = algo.save(tmp_path / "ckpt")
    algo.stop()
    assert main(["arena", path, "--games", "5", "--opponents", "random", "linear", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert set(table) == {"random", "linear"} and all(
        np.isclose(sum(r[k] for k in ("win", "draw", "loss")), 1) for r in table.values()
    )
    assert main(["arena", path, "--opponents", "negamx_3"]) == 2
    assert "Did you mean 'negamax_3'" in capsys.readouterr().err
