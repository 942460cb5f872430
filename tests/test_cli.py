"""The `rlarena` command end to end: train -> checkpoint -> rollout -> evaluate -> plot as real
subprocesses, resume after `kill -9`, YAML experiment files, and user mistakes (one line, exit 2,
no traceback). In-process `main([...])` where a subprocess would only add start-up time."""

from __future__ import annotations

import argparse
import csv
import json
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from rlarena.cli.main import COMMANDS, build_parser, main
from rlarena.cli.spec import load_spec, make_config
from rlarena.errors import RLArenaNotice

REPO = Path(__file__).resolve().parent.parent
TINY = json.dumps(
    {
        "train_batch_size": 128,
        "minibatch_size": 64,
        "num_epochs": 2,
        "num_envs_per_env_runner": 4,
        "model": {"fcnet_hiddens": [16]},
    }
)
QUIET = ["--verbose", "0", "--no-tensorboard", "--no-plot"]


def cli(*args: str, cwd: Path, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "rlarena.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def progress_iterations(trial_dir: Path) -> list[int]:
    with open(trial_dir / "progress.csv", newline="") as f:
        return [int(row["training_iteration"]) for row in csv.DictReader(f)]


def tiny_train(tmp_path: Path, *extra: str) -> int:
    return main(
        [
            "train",
            "--env",
            "CartPole-v1",
            "--config",
            TINY,
            "--seed",
            "0",
            "--storage-path",
            str(tmp_path / "runs"),
            *QUIET,
            *extra,
        ]
    )


# -- the whole path as a user types it -------------------------------------------------------------------
def test_train_rollout_evaluate_plot(tmp_path):
    pytest.importorskip("matplotlib")
    train = cli(
        "train",
        "--env",
        "CartPole-v1",
        "--config",
        TINY,
        "--stop",
        '{"training_iteration": 3}',
        "--checkpoint-freq",
        "2",
        "--name",
        "e2e",
        "--seed",
        "0",
        "--no-tensorboard",
        cwd=tmp_path,
    )
    assert "iter" in train.stdout and "return mean" in train.stdout
    trial = tmp_path / "runs" / "e2e" / "PPO_CartPole-v1_00000"
    assert progress_iterations(trial) == [1, 2, 3]
    assert sorted(p.name for p in (trial / "checkpoints").iterdir()) == ["checkpoint_000002", "checkpoint_000003"]
    assert (trial / "learning_curve.png").exists()
    checkpoint = str(trial / "checkpoints" / "checkpoint_000003")
    assert f"rlarena rollout {checkpoint}" in train.stdout

    rollout = cli("rollout", checkpoint, "--episodes", "2", "--seed", "0", cwd=tmp_path)
    lines = rollout.stdout.splitlines()
    assert lines[1].startswith("episode 1: return ") and lines[2].startswith("episode 2: return ")
    assert lines[3].startswith("mean return over 2 episodes: ")

    evaluate = cli("evaluate", checkpoint, "--episodes", "5", "--json", cwd=tmp_path)
    report = json.loads(evaluate.stdout)
    assert report["episodes"] == 5 and report["env"] == "CartPole-v1" and report["algorithm"] == "PPO"
    assert report["episode_return_min"] <= report["episode_return_mean"] <= report["episode_return_max"]

    (trial / "learning_curve.png").unlink()
    plot = cli("plot", str(tmp_path / "runs" / "e2e"), cwd=tmp_path)
    assert plot.stdout.strip() == str(trial / "learning_curve.png")
    assert (trial / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_after_kill_9(tmp_path):
    args = [
        "train",
        "--env",
        "CartPole-v1",
        "--config",
        TINY,
        "--checkpoint-freq",
        "1",
        "--name",
        "k",
        "--seed",
        "0",
        "--storage-path",
        str(tmp_path),
        *QUIET,
    ]
    trial = tmp_path / "k" / "PPO_CartPole-v1_00000"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rlarena.cli.main", *args, "--stop", '{"training_iteration": 1000000}'],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # a guard against hanging forever, not a speed check: a slow machine must never fail here
        deadline = time.monotonic() + 600
        while not (trial / "checkpoints" / "checkpoint_000003" / "rlarena_checkpoint.json").exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint within 600 s: is the training process stuck?"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = progress_iterations(trial)
    latest = max(
        int(p.name[-6:])
        for p in (trial / "checkpoints").glob("checkpoint_*")
        if (p / "rlarena_checkpoint.json").exists()
    )
    assert latest >= 3 and max(done) >= latest

    resumed = cli(
        *args[:-4],
        "--verbose",
        "1",
        "--no-tensorboard",
        "--no-plot",
        "--resume",
        "--stop",
        json.dumps({"training_iteration": latest + 3}),
        cwd=tmp_path,
    )
    assert f"resumed from checkpoint_{latest:06d} (iteration {latest}," in resumed.stdout
    first_row = next(line for line in resumed.stdout.splitlines() if line.strip().startswith(str(latest + 1)))
    assert first_row.split()[0] == str(latest + 1)  # the iteration counter continues
    assert progress_iterations(trial) == list(range(1, latest + 4))  # no duplicates, no gaps
    results = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
    assert [r["training_iteration"] for r in results] == list(range(1, latest + 4))
    state = json.loads((tmp_path / "k" / "experiment_state.json").read_text())
    assert state["trials"][0]["status"] == "TERMINATED"


# -- user mistakes: one line on stderr, exit 2, never a traceback ------------------------------------------
def test_mistake_in_a_subprocess_has_no_traceback(tmp_path):
    proc = cli("train", "--env", "CartPole-v1", "--config", '{"lrr": 0.1}', cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: PPOConfig has no option 'lrr'. Did you mean 'lr'?"
    assert "Traceback" not in proc.stderr


@pytest.fixture
def checkpoint(tmp_path_factory) -> Path:
    """A real checkpoint from a one-iteration run (module-independent, made once per test needing it)."""
    root = tmp_path_factory.mktemp("ckpt")
    assert tiny_train(root, "--stop", '{"training_iteration": 1}', "--name", "c") == 0
    return root / "runs" / "c" / "PPO_CartPole-v1_00000" / "checkpoints" / "checkpoint_000001"


BAD_YAML = "algo: PPO\nenv: CartPole-v1\nconfig: {lr: 0.001\n"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--env", "CartPole-v1", "--config", "{lr: 1}"], "--config is not valid JSON"),
        (["train", "--env", "CartPole-v1", "--config", "[1]"], "--config must be a JSON object"),
        (["train", "--env", "CartPole-v1", "--stop", "{'a': 1}"], "--stop is not valid JSON"),
        (["train", "--algo", "PPOO", "--env", "CartPole-v1"], "Unknown algorithm 'PPOO'. Did you mean 'PPO'?"),
        (["train", "--env", "CartPol-v1"], "Unknown env 'CartPol-v1'. Did you mean 'CartPole-v1'?"),
        (
            ["train", "--env", "CartPole-v1", "--stop", '{"episode_return_meen": 1}'],
            "Did you mean 'episode_return_mean'?",
        ),
        (["train", "--env", "CartPole-v1", "--stop", '{"evaluation/episode_return_mean": 1}'], "evaluation_interval"),
        (["train"], "No environment"),
        (["train", "-f", "missing.yaml"], "No experiment file at 'missing.yaml'"),
        (["train", "-f", "bad.yaml"], "bad.yaml is not valid YAML at line 4"),
        (["train", "-f", "typo.yaml"], "unknown key 'stp'. Did you mean 'stop'?"),
        (["rollout", "nowhere"], "No checkpoint at 'nowhere'"),
        (["evaluate", "."], "is not an rlarena checkpoint"),
        (["plot", "nowhere"], "No such directory"),
    ],
)
def test_mistakes_exit_2_with_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(BAD_YAML)
    (tmp_path / "typo.yaml").write_text("algo: PPO\nenv: CartPole-v1\nstp: {training_iteration: 1}\n")
    assert main(argv + QUIET if argv[0] == "train" else argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_corrupted_checkpoint_is_reported(checkpoint, capsys):
    weights = checkpoint / "policy.default_policy.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    assert main(["rollout", str(checkpoint)]) == 2
    assert "corrupted" in capsys.readouterr().err


def test_argparse_mistakes_exit_2(capsys):
    for argv in (["list", "games"], ["train", "--verbose", "3"], ["evaluate", "x", "--episodes", "0"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2


# -- each command --------------------------------------------------------------------------------------------
def test_help_lists_every_option_with_its_default(capsys):
    _, parsers = build_parser()
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        for action in parsers[name]._actions:
            if isinstance(action, argparse._HelpAction) or not action.option_strings:
                continue
            assert action.option_strings[-1] in text, (name, action.option_strings)
        options = [a for a in parsers[name]._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
        assert text.count("(default: ") >= len(options), name


def test_version_and_list(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("rlarena ")
    assert main(["list", "algos"]) == 0
    assert "PPO" in capsys.readouterr().out.split()
    assert main(["list", "envs"]) == 0
    assert "CartPole-v1" in capsys.readouterr().out.split()


def test_rollout_writes_a_video(checkpoint, tmp_path, capsys):
    pytest.importorskip("PIL")
    assert (
        main(
            [
                "rollout",
                str(checkpoint),
                "--episodes",
                "1",
                "--video",
                str(tmp_path / "v"),
                "--video-format",
                "gif",
                "--max-steps",
                "20",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    assert "video" in capsys.readouterr().out
    from PIL import Image

    with Image.open(tmp_path / "v" / "episode_000.gif") as gif:
        assert gif.n_frames > 1


def test_evaluate_text_and_trial_dir_as_checkpoint(checkpoint, capsys):
    trial_dir = checkpoint.parent.parent
    assert main(["evaluate", str(trial_dir), "--episodes", "3", "--seed", "0"]) == 0
    captured = capsys.readouterr()
    assert "using the latest checkpoint" in captured.err
    assert "PPO on CartPole-v1, 3 episodes (greedy): return " in captured.out and "±" in captured.out


# -- experiment files ----------------------------------------------------------------------------------------
def test_yaml_file_with_command_line_overrides(tmp_path):
    spec = {
        "algo": "PPO",
        "env": "CartPole-v1",
        "config": {**json.loads(TINY), "lr": 0.001},
        "stop": {"training_iteration": 50},
        "checkpoint_freq": 2,
        "name": "from_yaml",
    }
    path = tmp_path / "exp.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    # --stop merges into the file's stop (any criterion met stops); --config wins key by key
    assert (
        tiny_train(tmp_path, "-f", str(path), "--stop", '{"training_iteration": 2}', "--config", '{"lr": 0.002}') == 0
    )
    trial = tmp_path / "runs" / "from_yaml" / "PPO_CartPole-v1_00000"
    assert progress_iterations(trial) == [1, 2]
    params = json.loads((trial / "params.json").read_text())
    assert params["lr"] == 0.002 and params["train_batch_size"] == 128  # the file's value without the override
    assert (trial / "checkpoints" / "checkpoint_000002").exists()


def test_rllib_style_yaml_and_sweep_values(tmp_path):
    path = tmp_path / "rllib.yaml"
    path.write_text(
        "cartpole-ppo:\n  run: PPO\n  env: CartPole-v1\n  stop: {training_iteration: 1}\n"
        "  config: {lr: {grid_search: [0.001, 0.002]}, train_batch_size: 128, minibatch_size: 64}\n"
    )
    spec = load_spec(path)
    assert spec["name"] == "cartpole-ppo" and spec["algo"] == "PPO"
    config, space = make_config(spec["algo"], spec["env"], spec["config"])
    assert config.train_batch_size == 128 and list(space) == ["lr"]
    assert main(["train", "-f", str(path), "--storage-path", str(tmp_path / "runs"), *QUIET]) == 0
    assert len(list((tmp_path / "runs" / "cartpole-ppo").glob("PPO_CartPole-v1_*"))) == 2


def test_every_tuned_example_is_a_valid_config():
    files = sorted((REPO / "tuned_examples").glob("**/*.yaml"))
    assert files, "tuned_examples/ is empty"
    for path in files:
        spec = load_spec(path)
        with warnings.catch_warnings():  # RLlib's own files (tuned_examples/rllib) set options noticed as ignored
            warnings.simplefilter("ignore", RLArenaNotice)
            config, space = make_config(str(spec["algo"]), spec["env"], spec.get("config", {}))
        config.validate()
        assert not space and spec.get("stop"), path


def test_cartpole_tuned_example_file_runs(tmp_path):
    """The file as `rlarena train -f` reads it, with a two-iteration budget (learning is for benchmarks/)."""
    assert (
        main(
            [
                "train",
                "-f",
                str(REPO / "tuned_examples" / "ppo" / "cartpole.yaml"),
                "--stop",
                '{"training_iteration": 2}',
                "--storage-path",
                str(tmp_path),
                "--name",
                "t",
                *QUIET,
            ]
        )
        == 0
    )
    (trial,) = (tmp_path / "t").glob("PPO_CartPole-v1_*")
    assert progress_iterations(trial) == [1, 2] and (trial / "checkpoints" / "checkpoint_000002").exists()


def test_multi_agent_train_rollout_evaluate(tmp_path, capsys):
    from rlarena.cli.main import main

    assert (
        main(
            [
                "train",
                "--env",
                "multi_agent_arena",
                "--config",
                '{"train_batch_size": 400, "minibatch_size": 200, "num_epochs": 1, "env_config": {"ts": 20}}',
                "--stop",
                '{"training_iteration": 1}',
                "--storage-path",
                str(tmp_path),
                "--verbose",
                "0",
            ]
        )
        == 0
    )
    checkpoint = str(next(tmp_path.glob("*/*/checkpoints/checkpoint_*")))
    assert main(["rollout", checkpoint, "--episodes", "2"]) == 0
    assert "mean return over 2 episodes" in capsys.readouterr().out
    assert main(["evaluate", checkpoint, "--episodes", "2", "--json"]) == 0
    assert '"episodes": 2' in capsys.readouterr().out
