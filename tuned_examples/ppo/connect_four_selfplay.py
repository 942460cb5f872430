"""Connect Four by PPO self-play against a league (the agent rlarena shipped before issue 14; today's
shipped agent is AlphaZero's, tuned_examples/alphazero/connect_four.py).

The learner ("learned", a masked [256, 256] MLP actor-critic over the 6x7x2 planes and their
tactical features, model option board_features="connect_four") plays against the seed's heuristics
(random, always_same, linear, beat_last, smart); whenever its score against the current mix passes
0.85, the league grows: the next negamax depth (1-5) joins, alternating with a frozen snapshot of the
learner (at most 4 kept). Seats alternate every episode.
Budget: --minutes of training on 2 CPU cores (default 55). At the end the learner plays 200 games
per seat against every opponent and the checkpoint is written to --out.

    python tuned_examples/ppo/connect_four_selfplay.py --out checkpoints/connect_four \
        --ship DIR     # as the PPO agent was shipped: no snapshots, plus model.onnx
"""

import argparse
import time
from pathlib import Path

import gymnasium as gym

from rlarena import Algorithm, PolicySpec, PPOConfig
from rlarena.games.connect_four.league import ConnectFourLeague
from rlarena.games.connect_four.matches import evaluation_table, format_table
from rlarena.games.connect_four.opponents import OPPONENTS
from rlarena.games.connect_four.rules import observation_space
from rlarena.multiagent.league import league_mapping_fn

TARGETS = {"random": 0.99, "always_same": 0.98, "linear": 0.98, "beat_last": 0.98, "smart": 0.90,
           "negamax_1": 0.90, "negamax_3": 0.75, "negamax_5": 0.50}
HEURISTICS = ("random", "always_same", "linear", "beat_last", "smart")


def config(seed: int, opponents=HEURISTICS, lr: float = 3e-4, features: str | None = "connect_four"):
    return (PPOConfig().environment("connect_four")
            .env_runners(num_envs_per_env_runner=32)
            .training(train_batch_size=8192, minibatch_size=1024, num_epochs=4, lr=lr, gamma=0.99,
                      lambda_=0.95, entropy_coeff=0.01, model={"fcnet_hiddens": [256, 256], "board_features": features})
            .multi_agent(policies={"learned": PolicySpec(),
                                   **{name: PolicySpec(policy_class=OPPONENTS[name]) for name in opponents}},
                         policy_mapping_fn=league_mapping_fn, policies_to_train=["learned"])
            .callbacks(ConnectFourLeague)
            .debugging(seed=seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=55.0)
    parser.add_argument("--out", default="checkpoints/connect_four")
    parser.add_argument("--games-per-seat", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--opponents", nargs="+", default=list(HEURISTICS), help="the league's first members")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--features", default="connect_four", help="board_features of the model ('none': raw planes)")
    parser.add_argument("--resume", default=None, metavar="CHECKPOINT",
                        help="continue a run from its checkpoint until --minutes of training in all")
    parser.add_argument("--ship", default=None, metavar="DIR",
                        help="also write the agent as shipped: the checkpoint without its frozen snapshots, "
                             "and model.onnx (what `rlarena play connect4` serves)")
    args = parser.parse_args()
    algo = Algorithm.from_checkpoint(args.resume) if args.resume else config(args.seed, args.opponents, args.lr,
                                                                                   None if args.features == "none" else args.features).build()
    spaces = (observation_space(), gym.spaces.Discrete(7))
    probe = {name: OPPONENTS[name](*spaces) for name in ("negamax_1", "negamax_3")}
    start = time.perf_counter()
    while algo.time_total_s < args.minutes * 60:
        result = algo.train()
        line = (f"iter {result['training_iteration']:4d}  steps {result['num_env_steps_sampled_lifetime']:9d}  "
                f"train {algo.time_total_s / 60:5.1f} min  league score {result['league/score']:.2f}  "
                f"size {result['league/size']}  snapshots {result['league/snapshots']}")
        if result["training_iteration"] % 25 == 0:
            table = evaluation_table(algo.get_policy("learned"), probe, 20)
            line += "  " + "  ".join(f"vs {k} {v['score']:.2f}" for k, v in table.items())
            algo.save(args.out + "_latest")
        print(line, flush=True)
    train_minutes = algo.time_total_s / 60
    path = algo.save(args.out)
    opponents = {name: OPPONENTS[name](*spaces) for name in TARGETS}
    table = evaluation_table(algo.get_policy("learned"), opponents, args.games_per_seat)
    print(f"\ntrained {train_minutes:.1f} min ({(time.perf_counter() - start) / 60:.1f} min wall), "
          f"{algo.num_env_steps_sampled_lifetime} env steps; checkpoint {path}")
    print(format_table(table, TARGETS))
    if args.ship:
        ship(algo, args.ship)
    algo.stop()


def ship(algo: Algorithm, out: str) -> None:
    """The league's frozen snapshots are training material: the shipped checkpoint keeps the
    learner and the heuristic opponents (a few MB), and its ONNX export."""
    for pid in [p for p in algo.policies if p.startswith("snapshot_")]:
        algo.remove_policy(pid, policies_to_train=["learned"])
    path = algo.save(out)
    algo.export_onnx(Path(path) / "model.onnx", policy_id="learned")
    print(f"shipped: {path} (checkpoint + model.onnx)")


if __name__ == "__main__":
    main()
