"""Matches between two-player Connect Four policies: an agent against each opponent for a number of
games in each seat, played in lockstep with the batched game; the win/draw/loss table."""

from __future__ import annotations

from typing import Any

import numpy as np

from rlarena.envs.connect_four import BatchedConnectFour
from rlarena.policy import Policy, policy_actions


def play_matches(agent: Policy, opponent: Policy, games_per_seat: int, explore: bool = False) -> dict[str, float]:
    """{"win", "draw", "loss", "score"} of `agent` over 2 * games_per_seat games, half as player_0.

    score = (wins + draws / 2) / games. Both policies see the mover's view with the action mask.
    """
    n = 2 * games_per_seat
    games = BatchedConnectFour(n)
    obs = games.reset()
    agent_seat = np.arange(n) % 2  # game i: the agent plays seat i % 2
    result = np.full(n, np.nan)  # the agent's reward in each slot's first game
    while np.isnan(result).any():
        actions = np.zeros(n, np.int64)
        agent_turn = games.to_play == agent_seat
        for policy, rows in ((agent, np.flatnonzero(agent_turn)), (opponent, np.flatnonzero(~agent_turn))):
            if len(rows):
                batch = {k: v[rows] for k, v in obs.items()}
                actions[rows] = policy_actions(policy, batch, explore, len(rows))
        obs, mover_reward, other_reward, done, info = games.step(actions)
        finished = done & np.isnan(result)
        agent_moved = info["mover"] == agent_seat
        result[finished] = np.where(agent_moved, mover_reward, other_reward)[finished]
    wins, draws = float((result > 0).sum()), float((result == 0).sum())
    return {"win": wins / n, "draw": draws / n, "loss": float((result < 0).sum()) / n, "score": (wins + draws / 2) / n}


def evaluation_table(agent: Policy, opponents: dict[str, Policy], games_per_seat: int) -> dict[str, dict[str, float]]:
    return {name: play_matches(agent, opponent, games_per_seat) for name, opponent in opponents.items()}


def format_table(table: dict[str, dict[str, Any]], targets: dict[str, float] | None = None) -> str:
    lines = [f"{'opponent':12s} {'win':>6s} {'draw':>6s} {'loss':>6s} {'score':>6s}" + ("  target" if targets else "")]
    for name, row in table.items():
        line = f"{name:12s} {row['win']:6.3f} {row['draw']:6.3f} {row['loss']:6.3f} {row['score']:6.3f}"
        if targets and name in targets:
            line += f"  >= {targets[name]:.2f} {'met' if row['score'] >= targets[name] else 'MISSED'}"
        lines.append(line)
    return "\n".join(lines)
