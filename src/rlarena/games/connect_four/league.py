"""The Connect Four league: the generic self-play league (rlarena.multiagent.league) with the
negamax ladder."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rlarena.games.connect_four.opponents import OPPONENTS
from rlarena.multiagent.league import LEARNED, SelfPlayLeague, league_mapping_fn

__all__ = ["LEARNED", "ConnectFourLeague", "league_mapping_fn"]


class ConnectFourLeague(SelfPlayLeague):
    """The PPO recipe's league (tuned_examples/ppo): negamax depths 1-5 join one by one, alternating with snapshots
    (depth 6+ is too slow to sample from while training on 2 cores)."""

    ladder: ClassVar[Mapping[str, type]] = {f"negamax_{depth}": OPPONENTS[f"negamax_{depth}"] for depth in range(1, 6)}
