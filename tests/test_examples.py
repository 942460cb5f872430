"""The examples/ scripts run end to end (with a tiny training budget) and exit cleanly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["quickstart_cartpole.py", "quickstart_frozenlake.py"]


@pytest.mark.parametrize("script", EXAMPLES)
def test_example_runs(script: str, tmp_path: Path) -> None:
    checkpoint_dir = tmp_path / "checkpoint"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / script),
            "--max-iters",
            "3",
            "--quiet",
            "--checkpoint-dir",
            str(checkpoint_dir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"{script} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    # every step of the tutorial ran: check_env, training, a checkpoint, the restored policy's episode
    for expected in ("check_env: OK", "evaluate(): mean return", "saved checkpoint", "restored policy"):
        assert expected in proc.stdout, f"{script}: {expected!r} missing from its output:\n{proc.stdout}"
    assert (checkpoint_dir / "rlarena_checkpoint.json").exists()


@pytest.mark.parametrize(
    "script, args", [("multi_agent_arena.py", ["--max-iters", "1"]), ("connect_four_selfplay.py", ["--iters", "1"])]
)
def test_multi_agent_examples_run(script: str, args: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "iter   1" in out.stdout


# -- tuned_examples/**/*.yaml: each file parses and builds its algorithm (reaching its threshold is
# benchmarks/tuned_examples.py's job, not the test suite's) ------------------------------------------
TUNED = sorted((ROOT / "tuned_examples").glob("**/*.yaml"))
BUDGET_KEYS = {"num_env_steps_sampled_lifetime", "timesteps_total", "training_iteration", "time_total_s"}


def stand_in_data(config, directory: Path) -> None:
    """An offline example's data (recorded by examples/record_offline_data.py, not in git) replaced by a
    few random rows of its env's spaces: the file is checked, not what it learns."""
    import gymnasium as gym

    from rlarena.offline import OfflineWriter

    env = gym.make(config.env)
    rng = np.random.default_rng(0)
    n = 4096  # a batch of every example fits
    obs = rng.standard_normal((n, *env.observation_space.shape)).astype(np.float32)
    actions = np.stack([env.action_space.sample() for _ in range(n)])
    with OfflineWriter(directory, env.observation_space, env.action_space) as writer:
        writer.add(
            {
                "eps_id": np.arange(n) // 8,
                "obs": obs,
                "new_obs": obs,
                "actions": actions,
                "rewards": np.zeros(n, np.float32),
                "terminateds": np.arange(n) % 8 == 7,
                "truncateds": np.zeros(n, bool),
            }
        )
    config.input_ = str(directory)


@pytest.mark.parametrize("path", TUNED, ids=lambda p: str(p.relative_to(ROOT / "tuned_examples")))
def test_tuned_example_parses_and_builds(path: Path, tmp_path: Path) -> None:
    import importlib.util
    import warnings

    from rlarena.cli.spec import algorithm_class, load_spec, make_config
    from rlarena.errors import RLArenaNotice
    from rlarena.train.stop import result_key

    spec = load_spec(path)
    if "LunarLander" in str(spec.get("env")) and importlib.util.find_spec("Box2D") is None:
        pytest.skip("LunarLander needs Box2D: pip install -c constraints.txt -e '.[box2d]'")
    with warnings.catch_warnings():  # RLlib's own files (tuned_examples/rllib) set options noticed as ignored
        warnings.simplefilter("ignore", RLArenaNotice)
        config, space = make_config(str(spec["algo"]), spec.get("env"), {**spec.get("config", {}), "seed": 0})
    assert not space, f"{path}: a tuned example is one config, not a sweep"
    stop = {result_key(k) for k in spec.get("stop", {})}
    assert stop & BUDGET_KEYS and stop - BUDGET_KEYS, f"{path}: stop needs a threshold key and a budget key"
    if config.input_ is not None:
        assert all(str(p).startswith("offline_data/") for p in np.atleast_1d(config.input_)), (
            f"{path}: offline data comes from examples/record_offline_data.py, under offline_data/"
        )
        stand_in_data(config, tmp_path)
    algo = config.build()
    try:
        assert type(algo) is algorithm_class(str(spec["algo"]))
    finally:
        algo.stop()
