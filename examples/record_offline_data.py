"""Record the logged data the offline tuned examples learn from (tuned_examples/bc, marwil, cql).

    python examples/record_offline_data.py                 # all of it, into offline_data/ (about 4 minutes)
    python examples/record_offline_data.py --only cartpole

CartPole (PPO, then `rlarena rollout --output`, the same as on the command line):
  offline_data/cartpole/expert         50k steps sampled by a PPO agent whose greedy mean is >= 475
  offline_data/cartpole/mixed/expert   2.5k steps of the same agent (5 episodes)
  offline_data/cartpole/mixed/random   47.5k steps of an untrained (near-uniform) PPO policy
Pendulum (a SAC run that records what it samples while it learns, .offline_data(output=...)):
  offline_data/pendulum/sac            --sac-steps env steps, from random to good play (SAC reaches about -150)

Each directory is replaced only once its new data is complete.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import tempfile
import time
from pathlib import Path

from rlarena import PPOConfig, SACConfig
from rlarena.cli.main import main as cli

THRESHOLD = 475.0


def cartpole_checkpoints(root: Path, seed: int) -> tuple[str, str]:
    """(an expert PPO checkpoint, an untrained one). The expert's sampled actions are recorded, so it
    trains until both its greedy play (20 episodes) and its sampled episodes (the last 100) average
    >= 475: a lucky greedy score alone can come with a policy that samples poorly."""
    algo = (PPOConfig().environment("CartPole-v1").env_runners(num_envs_per_env_runner=8)
            .training(train_batch_size=256, minibatch_size=256, num_epochs=20, lr=1e-3, gamma=0.98, lambda_=0.8,
                      model={"fcnet_hiddens": [64, 64]},  # tuned_examples/ppo/cartpole.yaml
                      lr_schedule=[[0, 1e-3], [100_000, 0.0]])  # decayed (as RL-Zoo): a constant lr kept seed 0's
            # sampled episodes from settling at 475
            .evaluation(evaluation_duration=20).debugging(seed=seed)).build()
    score = float("nan")
    sampled = float("nan")
    for _ in range(400):  # 102k env steps; the lr reaches 0 at 100k
        sampled = algo.train()["episode_return_mean"]
        if sampled >= THRESHOLD:
            score = algo.evaluate()["episode_return_mean"]
            if score >= THRESHOLD:
                break
    else:
        raise RuntimeError(f"PPO (seed {seed}) did not become an expert in 400 iterations (sampled mean "
                           f"{sampled:.1f}, greedy {score:.1f}): try another seed.")
    print(f"PPO expert: greedy mean {score:.1f}, sampled mean {sampled:.1f} after "
          f"{algo.num_env_steps_sampled_lifetime} env steps")
    expert = algo.save(root / "ppo_expert")
    algo.stop()
    untrained = (PPOConfig().environment("CartPole-v1").training(model={"fcnet_hiddens": [64, 64]})
                 .debugging(seed=seed)).build()
    random_ckpt = untrained.save(root / "ppo_untrained")
    untrained.stop()
    return expert, random_ckpt


def rollout(checkpoint: str, output: Path, steps: int, seed: int) -> None:
    """`rlarena rollout CKPT --explore --steps N --output DIR`; its last line (the mean return) printed."""
    lines = io.StringIO()
    with contextlib.redirect_stdout(lines):
        cli(["rollout", checkpoint, "--explore", "--steps", str(steps), "--seed", str(seed), "--output", str(output)])
    print(f"{output.relative_to(output.parents[1])}: {lines.getvalue().strip().splitlines()[-2]}")


def replace(tmp: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(tmp), str(target))


def record_cartpole(out: Path, seed: int, steps: int, expert_share: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        expert, random_ckpt = cartpole_checkpoints(root, seed)
        rollout(expert, root / "data" / "expert", steps, seed)
        n_expert = int(steps * expert_share)
        rollout(expert, root / "data" / "mixed" / "expert", n_expert, seed + 1)
        rollout(random_ckpt, root / "data" / "mixed" / "random", steps - n_expert, seed + 2)
        replace(root / "data", out / "cartpole")


def record_pendulum(out: Path, seed: int, steps: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "sac"
        algo = (SACConfig().environment("Pendulum-v1").env_runners(num_envs_per_env_runner=1)
                .training(lr=1e-3, model={"fcnet_hiddens": [256, 256], "fcnet_activation": "relu"},
                          min_sample_timesteps_per_iteration=1000)  # tuned_examples/sac/pendulum.yaml
                .offline_data(output=str(data)).evaluation(evaluation_duration=10).debugging(seed=seed)).build()
        while algo.num_env_steps_sampled_lifetime < steps:
            result = algo.train()
        print(f"SAC on Pendulum: {algo.num_env_steps_sampled_lifetime} steps recorded, last episodes' mean "
              f"{result['episode_return_mean']:.1f}, greedy mean {algo.evaluate()['episode_return_mean']:.1f}")
        algo.stop()  # writes what the recorder still holds
        replace(data, out / "pendulum" / "sac")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="offline_data", help="directory to write into")
    parser.add_argument("--only", choices=("cartpole", "pendulum"), default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=50_000, help="CartPole steps per data set")
    parser.add_argument("--expert-share", type=float, default=0.05, help="expert share of the mixed data set")
    parser.add_argument("--sac-steps", type=int, default=15_000, help="Pendulum steps of the recorded SAC run")
    args = parser.parse_args()
    out = Path(args.out)
    start = time.perf_counter()
    if args.only in (None, "cartpole"):
        record_cartpole(out, args.seed, args.steps, args.expert_share)
    if args.only in (None, "pendulum"):
        record_pendulum(out, args.seed, args.sac_steps)
    print(f"done in {time.perf_counter() - start:.0f} s: {out}/")


if __name__ == "__main__":
    main()
