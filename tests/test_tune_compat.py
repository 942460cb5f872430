"""rlarena.tune / rlarena.air: Ray Tune's calls from RLlib tutorials, run by rlarena.run.

Each run is a few tiny PPO iterations on CartPole; the analysis objects are checked against the
files the run wrote (result.json rows, checkpoints/ directories)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rlarena import Algorithm, ConfigError, PPOConfig, TrainingError, air, tune
from rlarena.errors import RLArenaNotice
from rlarena.tune.logger import pretty_print

TINY = {"train_batch_size": 64, "minibatch_size": 64, "num_epochs": 1, "num_envs_per_env_runner": 4}


def tiny_config() -> PPOConfig:
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .training(train_batch_size=64, minibatch_size=64, num_epochs=1)
        .env_runners(num_envs_per_env_runner=4)
        .debugging(seed=0)
    )


def rows_on_disk(trial_dir: str) -> list[dict]:
    return [json.loads(line) for line in (Path(trial_dir) / "result.json").read_text().splitlines()]


def checkpoints_on_disk(trial_dir: str) -> list[str]:
    return sorted(str(p) for p in (Path(trial_dir) / "checkpoints").iterdir())


def test_run_with_an_rllib_dict_config(tmp_path: Path) -> None:
    config = {"env": "CartPole-v1", "framework": "torch", "num_workers": 0, "seed": 1, **TINY}
    analysis = tune.run(
        "PPO",
        config=config,
        stop={"timesteps_total": 192, "training_iteration": 10},
        local_dir=str(tmp_path),
        checkpoint_freq=2,
        checkpoint_at_end=True,
        verbose=0,
        metric="episode_reward_mean",
        mode="max",
    )
    [trial] = analysis.trials
    rows = rows_on_disk(trial.path)
    assert [r["training_iteration"] for r in rows] == [1, 2, 3]  # 64 steps an iteration: 192 at the third
    assert trial.status == "TERMINATED"
    assert trial.config["train_batch_size"] == 64 and trial.config["seed"] == 1

    # checkpoints: every 2 iterations and at the end, as on disk, with the metric of their iteration
    paths = analysis.get_trial_checkpoints_paths(trial, "episode_reward_mean")
    assert [p for p, _ in paths] == checkpoints_on_disk(trial.path)
    assert [Path(p).name for p, _ in paths] == ["checkpoint_000002", "checkpoint_000003"]
    assert [v for _, v in paths] == [rows[1]["episode_reward_mean"], rows[2]["episode_reward_mean"]]
    assert analysis.get_last_checkpoint() == paths[-1][0]
    best = max(paths, key=lambda p: p[1])[0]
    assert analysis.get_best_checkpoint(trial, "episode_reward_mean", "max") == best
    assert analysis.best_checkpoint == best and analysis.best_checkpoint.path == best
    worst = min(paths, key=lambda p: p[1])[0]
    assert analysis.get_best_checkpoint(trial, "episode_reward_mean", "min") == worst
    assert Algorithm.from_checkpoint(analysis.best_checkpoint).iteration == int(Path(best).name[-6:])

    # tables: one row per trial (Tune's), and the per-iteration frames
    df = analysis.results_df
    assert df.shape[0] == 1 and df.index.name == "trial_id" and df.index[0] == trial.trial_id
    assert df.iloc[0].episodes_this_iter == rows[-1]["episodes_this_iter"]
    assert df.iloc[0]["config/train_batch_size"] == 64 and df.iloc[0]["logdir"] == trial.path
    top = analysis.dataframe(metric="episode_reward_mean", mode="max")
    assert top.iloc[0]["episode_reward_mean"] == max(r["episode_reward_mean"] for r in rows)
    assert analysis.dataframe().iloc[0]["training_iteration"] == 3
    assert list(analysis.trial_dataframes[trial.path]["training_iteration"]) == [1, 2, 3]
    assert analysis.best_logdir == trial.path and analysis.best_config == trial.config
    assert analysis.best_result["training_iteration"] == 3
    stats = analysis.stats()
    assert 0 < stats["timestamp"] - stats["start_time"] < 300

    # the same experiment read back from its directory
    again = tune.ExperimentAnalysis(analysis.experiment_path, default_metric="episode_reward_mean", default_mode="max")
    assert again.best_checkpoint == best
    assert again.get_trial_checkpoints_paths(again.trials[0]) == [
        (p, float(i)) for p, i in zip(checkpoints_on_disk(trial.path), (2, 3))
    ]


def test_run_with_an_algorithm_config_and_old_stop_names(tmp_path: Path) -> None:
    analysis = tune.run(
        "PPO", config=tiny_config(), stop={"episode_reward_mean": 1}, storage_path=str(tmp_path), verbose=0
    )
    [trial] = analysis.trials
    assert trial.last_result["training_iteration"] == 1  # any return >= 1 stops after the first iteration
    # Tune's default: no checkpoint unless asked
    assert trial.checkpoints == [] and analysis.get_last_checkpoint() is None
    assert not (Path(trial.path) / "checkpoints").exists() or not any((Path(trial.path) / "checkpoints").iterdir())
    with pytest.raises(ConfigError, match="needs a metric and a mode"):
        _ = analysis.best_checkpoint


def test_stop_functions_and_stoppers_get_tunes_arguments(tmp_path: Path) -> None:
    calls = []

    def stop(trial_id: str, result: dict) -> bool:  # Tune's signature
        calls.append(trial_id)
        return result["training_iteration"] >= 2

    class Stopper:  # tune.Stopper's interface
        def __call__(self, trial_id: str, result: dict) -> bool:
            return False

        def stop_all(self) -> bool:
            return True

    analysis = tune.run("PPO", config=tiny_config(), stop=stop, storage_path=str(tmp_path), verbose=0)
    assert set(calls) == {"00000"} and analysis.trials[0].last_result["training_iteration"] == 2
    analysis = tune.run("PPO", config=tiny_config(), stop=Stopper(), storage_path=str(tmp_path), verbose=0)
    assert analysis.trials[0].last_result["training_iteration"] == 1


def test_run_takes_algorithm_classes_and_rllib_trainers(tmp_path: Path) -> None:
    from rlarena import PPO, PPOTrainer

    for i, trainable in enumerate((PPO, PPOTrainer)):
        analysis = tune.run(
            trainable,
            config={"env": "CartPole-v1", **TINY},
            stop={"training_iteration": 1},
            storage_path=str(tmp_path),
            name=f"t{i}",
            verbose=0,
        )
        assert analysis.trials[0].last_result["training_iteration"] == 1


def arena_mapping(agent_id, episode, **kwargs) -> str:
    return "learner" if agent_id == "agent1" else "random"


def test_a_multi_agent_config_dict_round_trips(tmp_path: Path) -> None:
    from rlarena import PolicySpec, RandomPolicy, register_trusted

    config = (
        PPOConfig()
        .environment("multi_agent_arena")
        .training(train_batch_size=128, minibatch_size=64)
        .multi_agent(
            policies={"learner": PolicySpec(), "random": PolicySpec(policy_class=RandomPolicy)},
            policy_mapping_fn=arena_mapping,
            policies_to_train=["learner"],
        )
    )
    saved = config.to_dict()  # the notebook's config=config_PPO.to_dict(): classes and functions by name
    with pytest.raises(ConfigError, match=r"config\['policy_mapping_fn'\] is .*Pass the config object itself"):
        tune.run("PPO", config=saved, stop={"training_iteration": 1}, storage_path=str(tmp_path), verbose=0)
    register_trusted(arena_mapping)  # now the name reads back, as a checkpoint's would
    analysis = tune.run("PPO", config=saved, stop={"training_iteration": 1}, storage_path=str(tmp_path), verbose=0)
    trial_config = analysis.trials[0].config
    assert trial_config["policies"]["random"]["policy_class"] == {
        "callable": "rlarena.policies.random_policy:RandomPolicy"
    }
    assert trial_config["policies_to_train"] == ["learner"]
    with pytest.raises(ConfigError, match="Pass the config object itself"):
        tune.run("PPO", config={**saved, "policy_mapping_fn": {"unnamed": "<lambda>"}}, storage_path=str(tmp_path))


def test_sweep_ranks_trials_by_the_metric(tmp_path: Path) -> None:
    config = {"env": "CartPole-v1", **TINY, "seed": 3, "lr": tune.grid_search([1e-3, 1e-4])}
    analysis = tune.run(
        "PPO",
        config=config,
        stop={"training_iteration": 3},
        storage_path=str(tmp_path),
        verbose=0,
        checkpoint_at_end=True,
    )
    assert len(analysis.trials) == 2
    assert sorted(t.config["lr"] for t in analysis.trials) == [1e-4, 1e-3]

    def returns(trial) -> list[float]:  # an iteration in which no episode ended has NaN: it never counts
        return [r["episode_return_mean"] for r in rows_on_disk(trial.path) if math.isfinite(r["episode_return_mean"])]

    finals = {t.trial_id: returns(t)[-1] for t in analysis.trials}
    best = analysis.get_best_trial("episode_return_mean", "max")
    assert finals[best.trial_id] == max(finals.values())
    worst = analysis.get_best_trial("episode_return_mean", "min")
    assert finals[worst.trial_id] == min(finals.values())
    # scope="all": the best value a trial ever reached, from every row on disk
    peaks = {t.trial_id: max(returns(t)) for t in analysis.trials}
    assert peaks[analysis.get_best_trial("episode_return_mean", "max", scope="all").trial_id] == max(peaks.values())
    assert analysis.get_best_config("episode_return_mean", "max")["lr"] == best.config["lr"]
    assert set(analysis.get_all_configs()) == {t.path for t in analysis.trials}
    assert analysis.results_df.shape[0] == 2


def test_builder_domains_become_the_sweep(tmp_path: Path) -> None:
    config = tiny_config().training(lr=tune.grid_search([1e-3, 3e-4]))
    grid = tune.Tuner(
        "PPO",
        param_space=config,
        run_config=air.RunConfig(stop={"training_iteration": 1}, storage_path=str(tmp_path), verbose=0),
    ).fit()
    assert len(grid) == 2 and sorted(r.config["lr"] for r in grid) == [3e-4, 1e-3]
    assert config.lr == tune.grid_search([1e-3, 3e-4])  # the caller's config is not changed


def test_tuner_fit_and_get_best_result(tmp_path: Path) -> None:
    grid = tune.Tuner(
        "PPO",
        param_space=tiny_config().to_dict(),
        checkpoint_config=air.CheckpointConfig(
            num_to_keep=1, checkpoint_at_end=True, checkpoint_frequency=1, checkpoint_score_order="max"
        ),  # the Connect Four blog's form
        run_config=air.RunConfig(stop={"training_iteration": 3}, storage_path=str(tmp_path), name="blog", verbose=0),
    ).fit()
    assert len(grid) == 1 and grid.num_errors == 0 and grid.num_terminated == 1
    result = grid.get_best_result(metric="episode_reward_mean", mode="max")
    assert result.path == grid[0].path and Path(result.path).parent == tmp_path / "blog"
    assert result.metrics["training_iteration"] == 3
    # num_to_keep=1 without a score attribute keeps the most recent checkpoint only
    assert checkpoints_on_disk(result.path) == [result.checkpoint.path]
    assert Path(result.checkpoint).name == "checkpoint_000003"
    assert [Path(c).name for c, _ in result.best_checkpoints] == ["checkpoint_000003"]
    assert result.best_checkpoints[0][1]["training_iteration"] == 3
    assert list(result.metrics_dataframe["training_iteration"]) == [1, 2, 3]
    assert Algorithm.from_checkpoint(result.checkpoint).iteration == 3
    with pytest.raises(ConfigError, match="no trial reports 'win_rate'"):
        grid.get_best_result(metric="win_rate", mode="max")

    # Tuner.restore: the finished experiment is read back; nothing trains again
    restored = tune.Tuner.restore(str(tmp_path / "blog"), "PPO").fit()
    assert restored[0].metrics["training_iteration"] == 3 and restored[0].checkpoint == result.checkpoint


def test_tuner_scores_checkpoints_by_the_given_attribute(tmp_path: Path) -> None:
    grid = tune.Tuner(
        "PPO",
        param_space=tiny_config(),
        run_config=tune.RunConfig(
            stop={"training_iteration": 4},
            storage_path=str(tmp_path),
            verbose=0,
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=1,
                checkpoint_frequency=1,
                checkpoint_score_attribute="episode_return_mean",
                checkpoint_score_order="min",
            ),
        ),
    ).fit()
    rows = [r for r in rows_on_disk(grid[0].path) if math.isfinite(r["episode_return_mean"])]
    worst = min(rows, key=lambda r: r["episode_return_mean"])["training_iteration"]
    kept = {Path(p).name for p in checkpoints_on_disk(grid[0].path)}
    assert kept == {f"checkpoint_{worst:06d}", "checkpoint_000004"}  # the best by "min", and the latest


def test_missing_metric_is_none_with_a_notice(tmp_path: Path) -> None:
    analysis = tune.run(
        "PPO",
        config=tiny_config().evaluation(evaluation_interval=2, evaluation_duration=1),
        stop={"training_iteration": 3},
        storage_path=str(tmp_path),
        verbose=0,
    )
    # the notebook's own call: Ray logs a warning and returns None; the notice names the key meant
    with pytest.warns(RLArenaNotice, match="Did you mean 'evaluation/episode_reward_mean'"):
        assert analysis.get_best_logdir(metric="evaluation_reward_mean", mode="max") is None
    # an evaluation key's "last" value is the last one reported (iteration 2), not the last row's
    trial = analysis.get_best_trial("evaluation/episode_return_mean", "max")
    assert trial is not None and "evaluation/episode_return_mean" not in trial.last_result


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scheduler": object()}, r"tune.run\(scheduler=...\) is not available in rlarena.tune"),
        ({"search_alg": object()}, r"tune.run\(search_alg=...\) is not available"),
        ({"callbacks": []}, r"tune.run\(callbacks=...\) is not available"),
        ({"verbose": 5}, "verbose=5; use 0, 1, 2 or 3"),
        ({"mode": "mean"}, "mode='mean'; use 'max' or 'min'"),
        ({"resume": "REMOTE"}, "resume='REMOTE'"),
        ({"local_dir": "a", "storage_path": "b"}, "not both"),
        ({"config": {"env": "CartPole-v1", "learning_rate_typo": 1}}, "has no option 'learning_rate_typo'"),
        (
            {"config": {"env": "CartPole-v1", "policy_mapping_fn": {"unnamed": "<lambda>"}}},
            "Pass the config object itself",
        ),
        ({"config": 3}, "config must be an AlgorithmConfig"),
    ],
)
def test_unsupported_arguments_are_one_clear_line(tmp_path: Path, kwargs: dict, message: str) -> None:
    kwargs.setdefault("config", {"env": "CartPole-v1"})
    with pytest.raises(ConfigError, match=message) as info:
        tune.run("PPO", stop={"training_iteration": 1}, **{"storage_path": str(tmp_path), **kwargs})
    assert "\n" not in str(info.value)
    assert not any(tmp_path.iterdir())  # refused before anything ran


def test_unsupported_trainables_and_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not have yet|Unknown algorithm"):
        tune.run("R2D2", config={"env": "Pendulum-v1"}, storage_path=str(tmp_path))
    with pytest.raises(ConfigError, match="function and class trainables of your own need Ray Tune"):
        tune.run(lambda config: None, config={}, storage_path=str(tmp_path))
    with pytest.raises(ConfigError, match=r"TuneConfig\(scheduler=...\)"):
        tune.TuneConfig(scheduler=object())
    with pytest.raises(ConfigError, match=r"RunConfig\(callbacks=...\)"):
        air.RunConfig(callbacks=[object()])
    with pytest.raises(ConfigError, match="checkpoint_config once"):
        tune.Tuner(
            "PPO",
            run_config=air.RunConfig(checkpoint_config=air.CheckpointConfig()),
            checkpoint_config=air.CheckpointConfig(),
        )


def test_resource_arguments_are_accepted_with_a_notice(tmp_path: Path) -> None:
    with pytest.warns(RLArenaNotice, match=r"resources_per_trial=...\) has no effect"):
        analysis = tune.run(
            "PPO",
            config=tiny_config(),
            stop={"training_iteration": 1},
            storage_path=str(tmp_path),
            verbose=0,
            resources_per_trial={"cpu": 1},
        )
    assert analysis.trials[0].status == "TERMINATED"


def test_a_failed_trial_raises_unless_asked_not_to(tmp_path: Path) -> None:
    def broken(env_config: dict):
        raise RuntimeError("no such robot")

    tune.register_env("broken_env", broken)
    config = {"env": "CartPole-v1", **TINY, "lr": tune.grid_search([1e-3, -1.0])}  # lr < 0 fails validate
    with pytest.raises(ConfigError, match="lr"):
        tune.run("PPO", config=config, stop={"training_iteration": 1}, storage_path=str(tmp_path), verbose=0)
    config = {"env": tune.grid_search(["CartPole-v1", "broken_env"]), **TINY}
    with pytest.raises(TrainingError, match="Trials did not complete: 00001"):
        tune.run("PPO", config=config, stop={"training_iteration": 1}, storage_path=str(tmp_path), name="a", verbose=0)
    analysis = tune.run(
        "PPO",
        config=config,
        stop={"training_iteration": 1},
        storage_path=str(tmp_path),
        name="b",
        verbose=0,
        raise_on_failed_trial=False,
    )
    assert [t.status for t in analysis.trials] == ["TERMINATED", "ERROR"]


def test_pretty_print() -> None:
    text = pretty_print(
        {
            "episode_reward_mean": np.float32(21.5),
            "hist": np.arange(3),
            "nan": float("nan"),
            "config": {"lr": 1},
            "none": None,
            "nested": {"a": (1, 2)},
            "obj": object,
        }
    )
    assert "episode_reward_mean: 21.5" in text and "- 0" in text and "nan: null" in text
    assert "config" not in text and "none" not in text and "nested:\n  a:\n  - 1" in text


def test_tune_and_air_load_lazily() -> None:
    code = (
        "import sys, rlarena; assert 'rlarena.tune' not in sys.modules; "
        "rlarena.tune.run; rlarena.air.RunConfig; from rlarena.tune import Tuner; "
        "print([m for m in ('torch', 'pandas', 'rlarena.train.experiment') if m in sys.modules])"
    )
    out = subprocess.check_output([sys.executable, "-c", code], text=True).strip().splitlines()[-1]
    assert out == "[]", f"imported eagerly: {out}"
