"""One SBX (Stable Baselines Jax) training run to a threshold, for benchmarks that compare with SBX.

SBX pins JAX, flax and optax versions that need not agree with rlarena's environment, so it lives in
its own virtual environment and the benchmark runs this file there, one process per seed, in the same
job as the other libraries (never at the same time as them):

    python -m venv /tmp/sbxvenv && /tmp/sbxvenv/bin/pip install sbx-rl==0.28.0 stable-baselines3==2.9.2
    /tmp/sbxvenv/bin/python benchmarks/sbx_worker.py '{"algo": "sac", "env": "Pendulum-v1", ...}'

The one argument is a JSON object: algo (sac | crossq), env, seed, threshold, max_steps, eval_every,
n_eval_episodes and hp (SB3 names: learning_rate, batch_size, buffer_size, learning_starts, tau, gamma,
train_freq, gradient_steps, ent_coef, net_arch, and for CrossQ policy_delay and qf_net_arch). It
trains with one model.learn() call for the whole budget, evaluated by _common's SB3 callback (SBX
models are SB3 algorithms), and prints one JSON row as its last line, as _common.run_sb3 returns it,
plus jit_s: the first gradient step's time minus the median of the later ones (JAX compiles the update
on its first call; the training time includes it, as a user pays it).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import every_steps, run_sb3  # imports nothing of rlarena's at module level


def make_model(spec: dict[str, Any]):
    import sbx
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    hp = spec["hp"]
    env = make_vec_env(spec["env"], n_envs=1, seed=spec["seed"], vec_env_cls=DummyVecEnv)
    common: dict[str, Any] = {
        "learning_rate": hp["learning_rate"], "buffer_size": hp["buffer_size"], "learning_starts": hp["learning_starts"],
        "batch_size": hp["batch_size"], "gamma": hp["gamma"], "train_freq": hp["train_freq"],
        "gradient_steps": hp["gradient_steps"], "ent_coef": hp["ent_coef"], "seed": spec["seed"], "verbose": 0}
    if spec["algo"] == "sac":
        return sbx.SAC("MlpPolicy", env, tau=hp["tau"], policy_kwargs={"net_arch": hp["net_arch"]}, **common)
    if spec["algo"] == "crossq":
        kwargs = {"net_arch": {"pi": hp["net_arch"], "qf": hp.get("qf_net_arch", hp["net_arch"])}}
        return sbx.CrossQ("MlpPolicy", env, policy_delay=hp.get("policy_delay", 3), policy_kwargs=kwargs, **common)
    raise SystemExit(f"algo {spec['algo']!r}: sac or crossq")


def main() -> int:
    spec = json.loads(sys.argv[1])
    model = make_model(spec)
    train_times: list[float] = []
    train = model.train

    def timed_train(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = train(*args, **kwargs)
        train_times.append(time.perf_counter() - t0)
        return out

    model.train = timed_train  # type: ignore[method-assign]
    from stable_baselines3.common.env_util import make_vec_env

    eval_env = make_vec_env(spec["env"], n_envs=10, seed=spec["seed"] + 10_000)
    row = run_sb3(model, eval_env, spec["seed"], every_steps(spec["eval_every"]), spec["max_steps"],
                  spec["threshold"], n_episodes=spec["n_eval_episodes"])
    row["lib"] = f"sbx-{spec['algo']}"
    row["grad_steps"] = int(model._n_updates)
    later = train_times[1:] or [0.0]
    row["jit_s"] = train_times[0] - statistics.median(later) if train_times else float("nan")
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
