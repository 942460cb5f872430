"""Connect Four game speed: random games per second with PettingZoo's connect_four_v3 and with
rlarena's forms, side by side in this process, and the ratio (target: the batched form >= 100x
connect_four_v3).

Every form plays complete games of uniformly random legal moves, read from the action mask:
- connect_four_v3: `pettingzoo.make("aec", "classic/connect_four-v3")` in PettingZoo's own loop
  (`for agent in env.agent_iter(): obs, ... = env.last(); env.step(action)`), dead steps included;
- rlarena AEC: `rlarena.games.connect_four.rules.env()` in the same loop;
- rlarena MultiAgentEnv: `ConnectFourMultiAgent`, reset/step dicts as the multi-agent runner uses it;
- rlarena batched: `BatchedConnectFour(--games)` (default 1024 games at once, autoreset), one numpy
  random legal column per game per step; games/s counts finished games.
Each round runs each form for --seconds; the headline is the median over rounds of the per-round
ratios. --negamax also times the negamax opponents (ms per move on random mid-game positions).

    python benchmarks/connect_four_speed.py                 # 3 rounds x 2 s per form, ~30 s
    python benchmarks/connect_four_speed.py --rounds 1 --seconds 0.5   # quick check
    python benchmarks/connect_four_speed.py --negamax       # also negamax depth 1-7 move times
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header


def aec_rate(make, seconds: float, rng: np.random.Generator) -> tuple[float, float]:
    """(games/s, moves/s) of an AEC env in PettingZoo's standard loop."""
    env = make()
    games = moves = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.reset()
        for _ in env.agent_iter():
            obs, _, terminated, truncated, _ = env.last()
            if terminated or truncated:
                action = None
            else:
                action = int(rng.choice(np.flatnonzero(obs["action_mask"])))
                moves += 1
            env.step(action)
        games += 1
    elapsed = time.perf_counter() - start
    return games / elapsed, moves / elapsed


def multi_agent_rate(seconds: float, rng: np.random.Generator) -> tuple[float, float]:
    from rlarena.games.connect_four.rules import ConnectFourMultiAgent
    env = ConnectFourMultiAgent()
    games = moves = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        obs, _ = env.reset()
        while True:
            (mover,) = obs
            action = int(rng.choice(np.flatnonzero(obs[mover]["action_mask"])))
            obs, _, terminateds, _, _ = env.step({mover: action})
            moves += 1
            if terminateds["__all__"]:
                break
        games += 1
    elapsed = time.perf_counter() - start
    return games / elapsed, moves / elapsed


def batched_rate(num_games: int, seconds: float, rng: np.random.Generator) -> tuple[float, float]:
    from rlarena.games.connect_four.rules import BatchedConnectFour
    env = BatchedConnectFour(num_games)
    obs = env.reset()
    games = steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        actions = np.where(obs["action_mask"], rng.random((num_games, 7)), -1.0).argmax(1)
        obs, _, _, done, _ = env.step(actions)
        games += int(done.sum())
        steps += 1
    elapsed = time.perf_counter() - start
    return games / elapsed, steps * num_games / elapsed


def negamax_times(positions: int, seed: int) -> None:
    from rlarena.games.connect_four.opponents import best_columns
    from rlarena.games.connect_four.rules import Game
    rng = np.random.default_rng(seed)
    boards = []
    while len(boards) < positions:
        g, seat, alive = Game(), 0, True
        for _ in range(int(rng.integers(4, 17))):
            if g.play(int(rng.choice(np.flatnonzero(g.legal_mask()))), seat):
                alive = False
                break
            seat ^= 1
        if alive:
            boards.append((g.bits[seat], g.bits[1 - seat]))
    print(f"\nnegamax: ms per move over {positions} random positions after 4-16 random moves")
    print("depth    mean     max")
    for depth in range(1, 8):
        times = []
        for cur, opp in boards:
            t0 = time.perf_counter()
            best_columns(cur, opp, depth)
            times.append((time.perf_counter() - t0) * 1000)
        print(f"{depth:5d}  {statistics.mean(times):6.1f}  {max(times):6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="per form and round")
    parser.add_argument("--games", type=int, default=1024, help="games at once in the batched form")
    parser.add_argument("--negamax", action="store_true", help="also time the negamax opponents")
    parser.add_argument("--positions", type=int, default=20, help="positions for --negamax")
    args = parser.parse_args()

    import pettingzoo
    from pettingzoo.utils.env_logger import EnvLogger

    from rlarena.games.connect_four import rules as connect_four
    header(f"Connect Four random games/s: rlarena vs PettingZoo {pettingzoo.__version__} connect_four_v3")
    EnvLogger.suppress_output()

    def reference():
        return pettingzoo.make("aec", "classic/connect_four-v3")

    rng = np.random.default_rng(0)
    forms = {"connect_four_v3": lambda s: aec_rate(reference, s, rng),
             "rlarena AEC": lambda s: aec_rate(connect_four.env, s, rng),
             "rlarena MultiAgentEnv": lambda s: multi_agent_rate(s, rng),
             f"rlarena batched x{args.games}": lambda s: batched_rate(args.games, s, rng)}
    for run in forms.values():  # warm up
        run(0.05)
    rounds: list[dict[str, tuple[float, float]]] = []
    for r in range(args.rounds):
        rounds.append({name: run(args.seconds) for name, run in forms.items()})
        base = rounds[-1]["connect_four_v3"][0]
        print(f"round {r + 1}: " + "  ".join(f"{name} {g:,.0f} games/s ({g / base:.1f}x)"
                                             for name, (g, _) in rounds[-1].items()))
    print(f"\n{'form':<26}{'games/s (best)':>16}{'moves/s (best)':>16}{'x connect_four_v3 (median)':>28}")
    for name in forms:
        best = max(rounds, key=lambda rd: rd[name][0])[name]
        ratio = statistics.median(rd[name][0] / rd["connect_four_v3"][0] for rd in rounds)
        print(f"{name:<26}{best[0]:>16,.0f}{best[1]:>16,.0f}{ratio:>27.1f}x")
    batched = statistics.median(rd[f"rlarena batched x{args.games}"][0] / rd["connect_four_v3"][0] for rd in rounds)
    print(f"\nheadline: batched / connect_four_v3 = {batched:.0f}x (target >= 100x)")
    if args.negamax:
        negamax_times(args.positions, seed=0)


if __name__ == "__main__":
    main()
