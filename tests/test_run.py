"""rlarena.run: stop criteria, checkpoint policy, logs, sweeps, resume, TensorBoard, plots.

Tiny CartPole budgets (conftest.TINY_TRAINING): every run here takes well under a second of training.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import rlarena
from rlarena import ConfigError
from rlarena.train.checkpoints import CheckpointManager
from rlarena.train.search import choice, generate_variants, grid_search, loguniform, uniform

QUIET = {"verbose": 0, "tensorboard": False, "plot": False}


def only_trial(storage: Path) -> Path:
    (trial,) = [p for p in storage.glob("*/*") if p.is_dir()]
    return trial


def iterations(trial_dir: Path) -> list[int]:
    with open(trial_dir / "progress.csv", newline="") as f:
        return [int(row["training_iteration"]) for row in csv.DictReader(f)]


def checkpoint_iterations(trial_dir: Path) -> list[int]:
    return sorted(int(p.name.split("_")[1]) for p in (trial_dir / "checkpoints").glob("checkpoint_*"))


# -- stop criteria ------------------------------------------------------------------------------------
def test_any_criterion_stops_and_trial_dir_holds_the_logs(make_config, tmp_path):
    results = rlarena.run(
        make_config(),
        stop={"training_iteration": 3, "episode_return_mean": 1e9},
        storage_path=tmp_path,
        name="a",
        **QUIET,
    )
    trial = Path(results.trials[0].path)
    assert iterations(trial) == [1, 2, 3]
    assert {"params.json", "progress.csv", "result.json", "checkpoints"} <= {p.name for p in trial.iterdir()}
    assert json.loads((trial / "params.json").read_text())["train_batch_size"] == 128
    assert results.trials[0].status == "TERMINATED"
    assert results.last_checkpoint == results.best_checkpoint  # checkpoint_at_end only: one checkpoint
    assert Path(results.last_checkpoint).name == "checkpoint_000003"


@pytest.mark.parametrize(
    "stop, expected",
    [
        ({"timesteps_total": 3 * 128}, 3),  # old name of num_env_steps_sampled_lifetime
        ({"episode_reward_mean": 1.0}, 1),  # old name of episode_return_mean: the first episodes end in iteration 1
        (lambda iteration, result: iteration >= 2, 2),
    ],
)
def test_old_names_and_callables(make_config, tmp_path, stop, expected):
    results = rlarena.run(make_config(), stop=stop, storage_path=tmp_path, **QUIET)
    assert results.best_result["training_iteration"] == expected


def test_unknown_stop_key_names_the_closest_and_leaves_nothing(make_config, tmp_path):
    with pytest.raises(ConfigError, match="'episode_return_meen'.*Did you mean 'episode_return_mean'"):
        rlarena.run(make_config(), stop={"episode_return_meen": 100}, storage_path=tmp_path, name="x", **QUIET)
    assert not (tmp_path / "x").exists()


def test_unknown_score_attribute_is_an_error(make_config, tmp_path):
    with pytest.raises(ConfigError, match="checkpoint_score_attribute 'return_mean'"):
        rlarena.run(
            make_config(),
            stop={"training_iteration": 2},
            checkpoint_score_attribute="return_mean",
            storage_path=tmp_path,
            **QUIET,
        )


def test_evaluation_key_without_evaluation_fails_before_training(make_config, tmp_path):
    with pytest.raises(ConfigError, match="evaluation_interval"):
        rlarena.run(make_config(), stop={"evaluation/episode_return_mean": 10}, storage_path=tmp_path, **QUIET)
    assert not any(tmp_path.iterdir())


def test_evaluation_key_is_awaited_until_the_first_evaluation(make_config, tmp_path):
    config = make_config().evaluation(evaluation_interval=2, evaluation_duration=2)
    results = rlarena.run(config, stop={"evaluation/episode_return_mean": 1}, storage_path=tmp_path, **QUIET)
    trial = Path(results.trials[0].path)
    assert iterations(trial) == [1, 2]
    with open(trial / "progress.csv", newline="") as f:  # the column appeared at row 2: the table was rewritten
        rows = list(csv.DictReader(f))
    assert rows[0]["evaluation/episode_return_mean"] == "" and float(rows[1]["evaluation/episode_return_mean"]) >= 1


def test_malformed_arguments(make_config, tmp_path):
    with pytest.raises(ConfigError, match="threshold must be a number"):
        rlarena.run(make_config(), stop={"training_iteration": "3"}, storage_path=tmp_path, **QUIET)
    with pytest.raises(ConfigError, match="'max' or 'min'"):
        rlarena.run(make_config(), checkpoint_score_order="best", storage_path=tmp_path, **QUIET)
    with pytest.raises(ConfigError, match="AlgorithmConfig"):
        rlarena.run("PPO", storage_path=tmp_path)
    with pytest.raises(ConfigError, match="no option 'lrr'.*'lr'"):
        rlarena.run(make_config(), param_space={"lrr": grid_search([0.1])}, storage_path=tmp_path, **QUIET)


def test_existing_name_needs_resume(make_config, tmp_path):
    rlarena.run(make_config(), stop={"training_iteration": 1}, storage_path=tmp_path, name="same", **QUIET)
    with pytest.raises(ConfigError, match="already holds a run.*resume"):
        rlarena.run(make_config(), stop={"training_iteration": 1}, storage_path=tmp_path, name="same", **QUIET)


# -- checkpoints ----------------------------------------------------------------------------------------
class FakeAlgo:
    """Just enough of an Algorithm for CheckpointManager: save() makes a checkpoint-looking directory."""

    def __init__(self) -> None:
        self.iteration = 0

    def save(self, path: Path) -> str:
        Path(path).mkdir(parents=True)
        (Path(path) / "rlarena_checkpoint.json").write_text("{}")
        return str(path)


@pytest.mark.parametrize(
    "attribute, order, kept, best",
    [
        ("score", "max", [2, 4, 6], 4),  # best two (4: 9, 2: 7) + the latest (6)
        ("score", "min", [1, 5, 6], 5),  # lowest two (5: 0, 1: 1) + the latest
        (None, "max", [5, 6], 6),  # no attribute: the latest two; best ranks them by episode_return_mean
    ],
)
def test_num_to_keep_keeps_best_and_latest(tmp_path, attribute, order, kept, best):
    scores = {1: 1.0, 2: 7.0, 3: 3.0, 4: 9.0, 5: 0.0, 6: 2.0}
    manager = CheckpointManager(tmp_path, num_to_keep=2, score_attribute=attribute, score_order=order)
    algo = FakeAlgo()
    for iteration, score in scores.items():
        algo.iteration = iteration
        manager.save(algo, {"score": score, "episode_return_mean": score})
    assert [r.iteration for r in manager.records] == kept
    assert sorted(int(p.name[-6:]) for p in tmp_path.iterdir()) == kept
    assert manager.best.iteration == best
    assert manager.latest.iteration == 6


def test_nan_scores_rank_last(tmp_path):
    manager = CheckpointManager(tmp_path, num_to_keep=1, score_attribute="score")
    algo = FakeAlgo()
    for iteration, score in [(1, 5.0), (2, float("nan")), (3, float("nan"))]:
        algo.iteration = iteration
        manager.save(algo, {"score": score})
    assert [r.iteration for r in manager.records] == [1, 3] and manager.best.iteration == 1


def test_real_run_keeps_best_checkpoints_by_score(make_config, tmp_path):
    results = rlarena.run(
        make_config(),
        stop={"training_iteration": 6},
        checkpoint_freq=1,
        num_to_keep=2,
        checkpoint_score_attribute="episode_return_mean",
        storage_path=tmp_path,
        **QUIET,
    )
    trial = Path(results.trials[0].path)
    scores = {r["training_iteration"]: r["episode_return_mean"] for r in results.trials[0].results}
    top2 = sorted(scores, key=lambda i: (scores[i], i), reverse=True)[:2]
    assert checkpoint_iterations(trial) == sorted(set(top2) | {6})
    assert Path(results.best_checkpoint).name == f"checkpoint_{top2[0]:06d}"
    assert Path(results.last_checkpoint).name == "checkpoint_000006"
    restored = rlarena.Algorithm.from_checkpoint(results.best_checkpoint)
    assert restored.iteration == top2[0]
    restored.stop()


# -- resume -----------------------------------------------------------------------------------------------
def test_resume_after_a_crash_cuts_logs_back_to_the_checkpoint(make_config, tmp_path):
    def crash_at_5(iteration, result):
        if iteration == 5:
            raise KeyboardInterrupt  # like a crash: no final checkpoint
        return iteration >= 6

    with pytest.raises(KeyboardInterrupt):
        rlarena.run(make_config(), stop=crash_at_5, checkpoint_freq=2, storage_path=tmp_path, name="r", **QUIET)
    trial = only_trial(tmp_path)
    assert iterations(trial) == [1, 2, 3, 4, 5] and checkpoint_iterations(trial) == [2, 4]
    results = rlarena.run(
        make_config(),
        stop={"training_iteration": 6},
        checkpoint_freq=2,
        storage_path=tmp_path,
        name="r",
        resume=True,
        **QUIET,
    )
    assert iterations(trial) == [1, 2, 3, 4, 5, 6]  # 5 was redone from checkpoint 4, not duplicated
    assert [r["iterations_since_restore"] for r in results.trials[0].results][-2:] == [1, 2]
    assert results.trials[0].status == "TERMINATED"


def test_ctrl_c_writes_a_checkpoint_then_resume_continues(make_config, tmp_path):
    def press_ctrl_c_at_3(iteration, result):
        if iteration == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the handler asks the trial to stop after this iteration
        return False

    results = rlarena.run(make_config(), stop=press_ctrl_c_at_3, storage_path=tmp_path, name="c", **QUIET)
    assert results.interrupted and results.trials[0].status == "INTERRUPTED"
    assert Path(results.last_checkpoint).name == "checkpoint_000003"
    results = rlarena.run(
        make_config(), stop={"training_iteration": 5}, storage_path=tmp_path, name="c", resume=True, **QUIET
    )
    assert not results.interrupted
    assert iterations(Path(results.trials[0].path)) == [1, 2, 3, 4, 5]
    # a finished run resumes to nothing
    again = rlarena.run(
        make_config(), stop={"training_iteration": 9}, storage_path=tmp_path, name="c", resume=True, **QUIET
    )
    assert again.best_result["training_iteration"] == 5


def test_resume_without_name_finds_the_latest_run(make_config, tmp_path):
    def crash_at_2(iteration, result):
        if iteration == 2:
            raise KeyboardInterrupt
        return False

    with pytest.raises(KeyboardInterrupt):
        rlarena.run(make_config(), stop=crash_at_2, checkpoint_freq=1, storage_path=tmp_path, **QUIET)
    results = rlarena.run(make_config(), stop={"training_iteration": 3}, storage_path=tmp_path, resume=True, **QUIET)
    assert len(list(tmp_path.iterdir())) == 1
    assert iterations(Path(results.trials[0].path)) == [1, 2, 3]


# -- sweeps -------------------------------------------------------------------------------------------------
def test_grid_sweep_ranks_trials(make_config, tmp_path):
    pd = pytest.importorskip("pandas")
    results = rlarena.run(
        make_config(),
        param_space={"lr": rlarena.grid_search([1e-3, 3e-3]), "num_epochs": 1},
        stop={"training_iteration": 2},
        storage_path=tmp_path,
        name="g",
        **QUIET,
    )
    assert len(results.trials) == 2 and {t.params["lr"] for t in results.trials} == {1e-3, 3e-3}
    df = results.dataframe
    assert isinstance(df, pd.DataFrame) and len(df) == 2
    assert list(df["episode_return_mean"]) == sorted(df["episode_return_mean"], reverse=True)
    assert set(df["config/lr"]) == {1e-3, 3e-3}
    assert all(json.loads((Path(t.path) / "params.json").read_text())["num_epochs"] == 1 for t in results.trials)
    state = json.loads((tmp_path / "g" / "experiment_state.json").read_text())
    assert [t["status"] for t in state["trials"]] == ["TERMINATED", "TERMINATED"]
    loaded = rlarena.Results.from_path(tmp_path / "g")
    assert loaded.best_checkpoint == results.best_checkpoint


def test_sweep_resume_skips_finished_trials(make_config, tmp_path):
    def ctrl_c_in_second_trial(iteration, result):
        if result["trial_id"] == "00001" and iteration == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return iteration >= 2

    space = {"lr": grid_search([1e-3, 2e-3, 3e-3])}
    results = rlarena.run(
        make_config(), param_space=space, stop=ctrl_c_in_second_trial, storage_path=tmp_path, name="s", **QUIET
    )
    assert results.interrupted
    assert [t.status for t in results.trials] == ["TERMINATED", "INTERRUPTED", "PENDING"]
    first = Path(results.trials[0].path) / "result.json"
    before = first.read_text()
    results = rlarena.run(
        make_config(),
        param_space=space,
        stop={"training_iteration": 2},
        storage_path=tmp_path,
        name="s",
        resume=True,
        **QUIET,
    )
    assert [t.status for t in results.trials] == ["TERMINATED"] * 3
    assert first.read_text() == before  # the finished trial was not run again
    assert all(iterations(Path(t.path)) == [1, 2] for t in results.trials)


def test_random_search_spaces():
    space = {
        "lr": loguniform(1e-4, 1e-2),
        "gamma": uniform(0.9, 0.99),
        "num_epochs": choice([1, 2]),
        "model": {"fcnet_hiddens": grid_search([[8], [16]])},
    }
    variants = generate_variants(space, num_samples=3, seed=0)
    assert len(variants) == 6
    assert all(1e-4 <= v["lr"] <= 1e-2 and 0.9 <= v["gamma"] <= 0.99 and v["num_epochs"] in (1, 2) for v in variants)
    assert [v["model"]["fcnet_hiddens"] for v in variants] == [[8], [16]] * 3
    assert generate_variants(space, num_samples=3, seed=0) == variants  # reproducible
    assert generate_variants(None) == [{}]


def test_num_samples_get_different_seeds(make_config, tmp_path):
    results = rlarena.run(
        make_config(seed=7), num_samples=2, stop={"training_iteration": 1}, storage_path=tmp_path, **QUIET
    )
    assert [t.params for t in results.trials] == [{"seed": 7}, {"seed": 8}]


# -- logs: TensorBoard, dataframe, plot --------------------------------------------------------------------
def test_tensorboard_events_are_readable_by_tensorboard(make_config, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    results = rlarena.run(make_config(), stop={"training_iteration": 3}, storage_path=tmp_path, verbose=0, plot=False)
    events = EventAccumulator(results.trials[0].path)
    events.Reload()
    assert {"episode_return_mean", "policy_loss", "env_steps_per_sec"} <= set(events.Tags()["scalars"])
    assert "episode_reward_mean" not in events.Tags()["scalars"]  # aliases are not drawn twice
    assert [e.step for e in events.Scalars("episode_return_mean")] == [128, 256, 384]  # env steps


def test_dataframe_and_learning_curve(make_config, tmp_path):
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    results = rlarena.run(
        make_config(), stop={"training_iteration": 3}, storage_path=tmp_path, verbose=0, tensorboard=False
    )
    df = results.dataframe
    assert list(df["training_iteration"]) == [1, 2, 3] and "episode_return_mean" in df
    png = Path(results.trials[0].path) / "learning_curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_rows(make_config, tmp_path, capsys):
    rlarena.run(
        make_config(), stop={"training_iteration": 4}, storage_path=tmp_path, verbose=1, tensorboard=False, plot=False
    )
    out = capsys.readouterr().out
    assert "return mean" in out and "steps/s" in out
    assert "[##########----------]  50% training_iteration 2/4" in out
    assert "done at iteration 4: training_iteration 4 >= 4" in out


def test_import_rlarena_stays_light():
    code = (
        "import sys, rlarena; heavy = [m for m in ('pandas', 'matplotlib', 'tensorboard') if m in sys.modules]; "
        "assert not heavy, heavy; assert callable(rlarena.run) and callable(rlarena.grid_search)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_optional_packages_are_skipped_with_a_notice(make_config, tmp_path, monkeypatch, capsys):
    for module in ("torch.utils.tensorboard", "matplotlib", "matplotlib.figure", "pandas"):
        monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    results = rlarena.run(make_config(), stop={"training_iteration": 1}, storage_path=tmp_path, verbose=1)
    out = capsys.readouterr().out
    assert "TensorBoard logging skipped" in out and "pip install tensorboard" in out
    assert "Learning-curve plot skipped" in out and "pip install matplotlib" in out
    trial = Path(results.trials[0].path)
    assert not list(trial.glob("events.out.tfevents.*")) and not (trial / "learning_curve.png").exists()
    with pytest.raises(ConfigError, match="pip install pandas"):
        _ = results.dataframe
