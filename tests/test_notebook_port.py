"""The ports of Anyscale's RLlib notebook 01 and "Introduction to RLlib" run end to end (their smoke
run: RLARENA_EXAMPLE_QUICK=1), in a fresh directory, and leave what the notebooks leave behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_example(script: str, cwd: Path) -> str:
    env = {**os.environ, "RLARENA_EXAMPLE_QUICK": "1", "SDL_VIDEODRIVER": "dummy"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script)],
        cwd=cwd,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{script} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_notebook_01_port(tmp_path: Path) -> None:
    out = run_example("rllib_notebook_cartpole.py", tmp_path)
    # every part of the notebook ran, in its order
    expected = [
        "[EnvSpec(id='FrozenLake-v1'",
        "gym action space: Discrete(4)",
        "is_slippery: False",
        "obs: 5, reward: 0, done: True",
        "Environment parameters...",
        "max_episode_steps: 500",
        "All checks passed. No errors found.",
        "Baseline mean_reward:",
        "<class 'rlarena.algorithms.ppo.PPOConfig'>",
        "Training completed.",
        "df.shape: (1, ",
        "TensorBoard: tensorboard --logdir my_PPO_logs",
        "Episode done: reward =",
        "video: videos/rl-video-episode-0.",
        "Exercise (PPO -> DQN): DQN",
    ]
    positions = [out.find(text) for text in expected]
    missing = [text for text, pos in zip(expected, positions) if pos < 0]
    assert not missing, f"missing from the output: {missing}\n{out}"
    assert positions == sorted(positions), out

    # the Tune run: my_PPO_logs/<experiment>/<trial>/ with its results and checkpoints every 2 iterations
    [experiment] = (tmp_path / "my_PPO_logs").iterdir()
    [trial] = [p for p in experiment.iterdir() if p.is_dir()]
    rows = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
    assert [r["training_iteration"] for r in rows] == [1, 2, 3, 4]
    assert sorted(p.name for p in (trial / "checkpoints").iterdir()) == ["checkpoint_000002", "checkpoint_000004"]
    assert any(p.name.startswith("events.out.tfevents") for p in trial.iterdir())  # for TensorBoard
    # the checkpoint the notebook restores is the last one, printed by get_last_checkpoint()
    assert str(trial / "checkpoints" / "checkpoint_000004") in out
    assert f"{rows[-1]['episodes_this_iter']}\n" in out  # df.iloc[0,:].episodes_this_iter
    [video] = (tmp_path / "videos").iterdir()
    assert video.stem == "rl-video-episode-0" and video.stat().st_size > 0


def test_intro_to_rllib_port(tmp_path: Path) -> None:
    out = run_example("rllib_intro_tune.py", tmp_path)
    [experiment] = (tmp_path / "runs").iterdir()
    [trial] = [p for p in experiment.iterdir() if p.is_dir()]
    assert [p.name for p in (trial / "checkpoints").iterdir()] == ["checkpoint_000002"]  # checkpoint_at_end
    # the sample batch summary: 200 steps of one env
    assert "'actions': np.ndarray((200, 1), dtype=int64, min=0, max=1" in out
    assert "'obs': np.ndarray((201, 1, 4), dtype=float32" in out
