"""`rlarena arena`: a Connect Four agent against each opponent, N games per seat, as a table."""

from __future__ import annotations

import argparse
import json

import gymnasium as gym

from rlarena.algorithms import Algorithm
from rlarena.envs.connect_four import observation_space
from rlarena.errors import ConfigError, closest
from rlarena.multiagent.connect_four_opponents import OPPONENTS
from rlarena.multiagent.matches import evaluation_table, format_table


def arena(args: argparse.Namespace) -> int:
    names = args.opponents
    for name in names:
        if name not in OPPONENTS:
            raise ConfigError(f"Unknown opponent {name!r}.{closest(name, OPPONENTS)} Opponents: {', '.join(OPPONENTS)}.")
    path = args.checkpoint
    algo = Algorithm.from_checkpoint(path, config_overrides={"num_envs_per_env_runner": 1},
                                     trusted_modules=args.trusted_modules)
    try:
        agent = algo.get_policy(args.policy_id)
        spaces = (observation_space(), gym.spaces.Discrete(7))
        table = evaluation_table(agent, {name: OPPONENTS[name](*spaces) for name in names}, args.games)
    finally:
        algo.stop()
    if args.json:
        print(json.dumps(table))
    else:
        print(f"{args.policy_id} from {path}: {args.games} games per seat against each opponent (greedy)")
        print(format_table(table))
    return 0
