"""Train the Connect Four AlphaZero agent that rlarena ships (issue 14): MCTS self-play, in this process
between updates, or with --workers N in N processes while this one learns (both cores).

    python tuned_examples/alphazero/connect_four.py --minutes 80 --out runs/alphazero_c4
    python tuned_examples/alphazero/connect_four.py --minutes 60 --workers 2 --out runs/alphazero_c4_2w
    python tuned_examples/alphazero/connect_four.py --minutes 30 --workers 2 --out runs/c4_sims && \
        python tuned_examples/alphazero/connect_four.py --minutes 30 --workers 2 --simulations 160 --out runs/c4_sims
    python tuned_examples/alphazero/connect_four.py --minutes 0 --out runs/alphazero_c4 \
        --ship src/rlarena/games/connect_four/agent     # the newest checkpoint as shipped

Saves a checkpoint every `--save-every` iterations into OUT/checkpoint_NNNNNN (keeping the last few)
and resumes from the newest one when run again with the same OUT (the games under way restart).
`--ship DIR` writes what rlarena ships: the network alone (no optimizer state, no replay window) and
its ONNX export model.onnx, which `rlarena play connect4` serves (with the search levels).
The figures of the shipped agent (how long it trained, its tables) are in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from rlarena import Algorithm, AlphaZeroConfig

CONFIG = (AlphaZeroConfig()
          .environment("connect_four")
          .training(num_parallel_games=128, train_batch_size=2048, minibatch_size=256, num_epochs=6, lr=1e-3,
                    l2_coeff=1e-4, random_opening_plies=[0, 4], replay_buffer_config={"capacity": 250_000},
                    num_steps_sampled_before_learning_starts=4096,
                    model={"board_features": "connect_four", "fcnet_hiddens": [512, 512],
                           "fcnet_activation": "relu", "vf_share_layers": True},
                    mcts_config={"num_simulations": 64, "puct_coefficient": 1.5, "temperature_moves": 10,
                                 "dirichlet_noise": 1.0, "dirichlet_epsilon": 0.25})
          .debugging(seed=14))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=80.0, help="training time budget (this run)")
    parser.add_argument("--out", default="runs/alphazero_c4")
    parser.add_argument("--save-every", type=int, default=25, help="iterations between checkpoints")
    parser.add_argument("--keep", type=int, default=4, help="checkpoints kept")
    parser.add_argument("--workers", type=int, default=0,
                        help="self-play processes playing while this one learns (0: self-play here, in turn)")
    parser.add_argument("--simulations", type=int, default=None,
                        help="simulations per self-play move from now on (default: the recipe's 64, or the resumed run's)")
    parser.add_argument("--ship", default=None, metavar="DIR",
                        help="also write the agent as shipped: the network-only checkpoint and model.onnx")
    args = parser.parse_args()
    out = Path(args.out)
    saved = sorted(out.glob("checkpoint_*"))
    overrides: dict = {"num_self_play_workers": args.workers}
    if args.simulations is not None:
        overrides["mcts_config"] = {**CONFIG.mcts_config, "num_simulations": args.simulations}
    algo = (Algorithm.from_checkpoint(saved[-1], config_overrides=overrides) if saved
            else CONFIG.training(**overrides).build())
    print(f"{'resumed from ' + str(saved[-1]) if saved else 'new run'}: iteration {algo.iteration}, "
          f"{algo.time_total_s / 60:.1f} min trained, {algo.config.mcts['num_simulations']} simulations per move",
          flush=True)
    deadline = time.monotonic() + 60 * args.minutes
    while time.monotonic() < deadline:
        r = algo.train()
        if algo.iteration % 5 == 0:
            print(f"it {r['training_iteration']:4d}  {r['time_total_s'] / 60:6.1f} min  games {r['num_episodes_lifetime']:6d}"
                  f"  len {r['episode_len_mean']:5.1f}  first {r['self_play/first_player_score']:.2f}"
                  f"  pi {r.get('policy_loss', float('nan')):.3f}  v {r.get('vf_loss', float('nan')):.3f}"
                  f"  H {r.get('entropy', float('nan')):.2f}  moves/s {r['env_steps_per_sec']:.0f}", flush=True)
        if algo.iteration % args.save_every == 0:
            algo.save(out / f"checkpoint_{algo.iteration:06d}")
            for old in sorted(out.glob("checkpoint_*"))[:-args.keep]:
                shutil.rmtree(old)
    if not saved or algo.iteration != int(saved[-1].name.split("_")[1]):
        path = algo.save(out / f"checkpoint_{algo.iteration:06d}")
        print(f"saved {path} after {algo.time_total_s / 60:.1f} min of training", flush=True)
    if args.ship:
        path = algo.save(args.ship, include_training_state=False)
        algo.export_onnx(Path(path) / "model.onnx")
        print(f"shipped: {path} (network-only checkpoint + model.onnx, {algo.time_total_s / 60:.1f} min of training)")


if __name__ == "__main__":
    main()
