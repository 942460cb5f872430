"""The Connect Four agent shipped in the package loads with Algorithm.from_checkpoint, its trained
policy is "learned", and it plays legal, winning Connect Four against the opponent ladder."""

from pathlib import Path

import gymnasium as gym

import rlarena
from rlarena import Algorithm
from rlarena.envs.connect_four import observation_space
from rlarena.multiagent.connect_four_opponents import OPPONENTS
from rlarena.multiagent.matches import play_matches

SHIPPED = Path(rlarena.__file__).parent / "agents" / "connect_four"


def test_shipped_agent_loads_and_beats_the_ladder():
    algo = Algorithm.from_checkpoint(SHIPPED, config_overrides={"num_envs_per_env_runner": 1})
    try:
        learned = algo.get_policy("learned")
        spaces = (observation_space(), gym.spaces.Discrete(7))
        assert play_matches(learned, OPPONENTS["linear"](*spaces), 20)["score"] >= 0.9
        assert play_matches(learned, OPPONENTS["negamax_1"](*spaces), 20)["score"] >= 0.9
        # the bars (measured on 200 games per seat: smart 0.94, negamax_3 1.00), with margin
        # for 20 games per seat
        assert play_matches(learned, OPPONENTS["smart"](*spaces), 20)["score"] >= 0.8
        assert play_matches(learned, OPPONENTS["negamax_3"](*spaces), 20)["score"] >= 0.75
    finally:
        algo.stop()
