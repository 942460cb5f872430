"""Sweeps on Ray: rlarena algorithms as Ray Tune trainables (rlarena.tune.trainable), rlarena.run(ray=...)
running a sweep's trials as parallel Ray actors into the local runner's layout, and `rlarena train
--ray-address / --ray`. One local Ray for the module: loopback only, 2 CPUs, no dashboard."""

from __future__ import annotations

import json
import math
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

ray = pytest.importorskip("ray")
tune = pytest.importorskip("ray.tune")

import rlarena
from rlarena import PPO, Algorithm, PPOConfig
from rlarena.cli.main import main
from rlarena.errors import CheckpointError, ConfigError

# Ray's workers cannot import this test module: its classes and functions travel by value, as a script's do
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

TINY = {"train_batch_size": 64, "minibatch_size": 32, "num_epochs": 1, "model": {"fcnet_hiddens": [16]}}
QUIET = {"verbose": 0, "tensorboard": False, "plot": False}


def tiny() -> PPOConfig:
    return (
        PPOConfig().environment("CartPole-v1").env_runners(num_envs_per_env_runner=2).training(**TINY).debugging(seed=0)
    )


def tune_run_config(tmp_path: Path, name: str, stop: dict, **checkpointing) -> tune.RunConfig:
    return tune.RunConfig(
        name=name,
        storage_path=str(tmp_path),
        stop=stop,
        verbose=0,
        checkpoint_config=tune.CheckpointConfig(**checkpointing),
    )


def layout(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def iterations(trial_dir: str | Path) -> list[int]:
    lines = (Path(trial_dir) / "result.json").read_text().splitlines()
    return [json.loads(line)["training_iteration"] for line in lines]


# -- no ray unless asked ------------------------------------------------------------------------------------
def test_rlarena_tune_imports_no_ray():
    code = "import sys, rlarena, rlarena.tune; rlarena.tune.trainable; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_without_ray_both_entry_points_say_what_to_install(monkeypatch, tmp_path):
    for module in ("rlarena.tune.ray_trainable", "rlarena.train.ray_trials"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    with pytest.raises(ConfigError, match=r"pip install 'rlarena\[ray\]'"):
        rlarena.tune.trainable("PPO")
    with pytest.raises(ConfigError, match=r"pip install 'rlarena\[ray\]'"):
        rlarena.run(tiny(), stop={"training_iteration": 1}, storage_path=tmp_path, ray=True, **QUIET)
    assert not any(tmp_path.iterdir())


# -- Ray Tune trainables ------------------------------------------------------------------------------------
def test_tuner_runs_a_grid_into_rlarena_checkpoints(local_ray, tmp_path):
    space = tiny().to_dict()
    space["lr"] = tune.grid_search([1e-3, 3e-3])
    # a stop on one of rlarena's own result keys: 2 iterations of 64 steps
    grid = tune.Tuner(
        rlarena.tune.trainable("PPO"),
        param_space=space,
        run_config=tune_run_config(tmp_path, "t", {"num_env_steps_sampled_lifetime": 128}, checkpoint_at_end=True),
    ).fit()
    assert not grid.errors and len(grid) == 2
    assert sorted(result.config["lr"] for result in grid) == [1e-3, 3e-3]
    for result in grid:
        assert result.metrics["training_iteration"] == 2
        assert math.isfinite(result.metrics["episode_return_mean"])
        assert result.metrics["episode_reward_mean"] == result.metrics["episode_return_mean"]  # the old name too
        assert Path(result.path).parent == tmp_path / "t"
        algo = PPO.from_checkpoint(result.checkpoint.path)  # rlarena's own format in Tune's checkpoint
        assert (algo.iteration, algo.num_env_steps_sampled_lifetime, algo.config.lr) == (2, 128, result.config["lr"])
        algo.stop()
    assert grid.get_best_result("episode_return_mean", "max").metrics["training_iteration"] == 2


def test_tune_restore_continues_from_the_checkpoint(local_ray, tmp_path):
    marker = tmp_path / "crash-once"
    marker.touch()

    class CrashOnce(rlarena.tune.trainable("PPO")):
        """Fails in its third iteration while the marker file exists (it removes it)."""

        def step(self):
            if self.algo.iteration == 2 and marker.exists():
                marker.unlink()
                raise RuntimeError("crash in iteration 3")
            return super().step()

    first = tune.Tuner(
        CrashOnce,
        param_space=tiny().to_dict(),
        run_config=tune_run_config(tmp_path, "r", {"training_iteration": 4}, checkpoint_frequency=1),
    ).fit()
    assert len(first.errors) == 1
    grid = tune.Tuner.restore(str(tmp_path / "r"), trainable=CrashOnce, resume_errored=True).fit()
    (result,) = grid
    assert not grid.errors
    assert result.metrics["training_iteration"] == 4 and result.metrics["iterations_since_restore"] == 2
    with Algorithm.from_checkpoint(result.checkpoint.path) as algo:
        assert (algo.iteration, algo.num_env_steps_sampled_lifetime) == (4, 4 * 64)


def test_trainable_save_restore_and_a_pickled_checkpoint_refused_unopened(local_ray, tmp_path):
    trainable = rlarena.tune.trainable(PPO)
    first = trainable(config=tiny().to_dict())
    first.train()
    first.train()
    first.save(str(tmp_path / "ckpt"))
    first.stop()
    second = trainable(config=tiny().to_dict())
    second.restore(str(tmp_path / "ckpt"))
    assert second.train()["training_iteration"] == 3

    class Opens:  # unpickling it creates a file: the proof that it was unpickled
        def __reduce__(self):
            return open, (str(tmp_path / "unpickled"), "w")

    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "_dict_checkpoint.pkl").write_bytes(pickle.dumps(Opens()))
    with pytest.raises(CheckpointError, match="_dict_checkpoint.pkl"):
        second.restore(str(evil))
    assert not (tmp_path / "unpickled").exists()
    second.stop()


def test_trainable_resources_count_the_remote_env_runners(local_ray):
    space = tiny().env_runners(num_env_runners=2, num_cpus_per_env_runner=0.5).to_dict()
    request = rlarena.tune.trainable("PPO").default_resource_request(space)
    assert request.bundles == [{"CPU": 1.0}, {"CPU": 0.5}, {"CPU": 0.5}]  # the learner, then each env runner


# -- rlarena.run(ray=...) -----------------------------------------------------------------------------------
def test_run_on_ray_writes_the_local_layout(local_ray, tmp_path, capsys):
    kwargs = {
        "param_space": {"lr": rlarena.grid_search([1e-3, 3e-3])},
        "stop": {"training_iteration": 2},
        "checkpoint_freq": 1,
        "storage_path": tmp_path,
        "tensorboard": False,
        "plot": False,
    }
    here = rlarena.run(tiny(), name="here", verbose=0, **kwargs)
    capsys.readouterr()
    there = rlarena.run(tiny(), name="there", ray=True, verbose=1, **kwargs)
    out = capsys.readouterr().out.splitlines()
    assert layout(tmp_path / "here") == layout(tmp_path / "there")
    states = [
        json.loads((tmp_path / name / "experiment_state.json").read_text())["trials"] for name in ("here", "there")
    ]
    assert states[0] == states[1]  # the same trials, directories, params and statuses
    assert [t["status"] for t in states[1]] == ["TERMINATED", "TERMINATED"]
    assert [t.status for t in there.trials] == ["TERMINATED", "TERMINATED"]
    assert all(iterations(t.path) == [1, 2] for t in there.trials)
    for a, b in zip(here.trials, there.trials, strict=True):
        assert set(a.last_result) == set(b.last_result)
    assert Path(there.best_checkpoint).relative_to(tmp_path / "there").parts[-2:-1] == ("checkpoints",)
    assert rlarena.Results.from_path(tmp_path / "there").best_checkpoint == there.best_checkpoint
    with Algorithm.from_checkpoint(there.best_checkpoint) as algo:
        assert algo.iteration == 2
    # the driver prints each trial's rows as they come, prefixed by its id
    for trial_id in ("00000", "00001"):
        rows = [line for line in out if line.startswith(f"{trial_id} | ") and line.split("|")[1].split()[:1] == ["2"]]
        assert len(rows) == 1, out


def test_ctrl_c_stops_every_ray_trial_with_a_checkpoint_and_resume_continues(local_ray, tmp_path):
    driver = os.getpid()
    space = {"lr": rlarena.grid_search([1e-3, 3e-3])}

    def ctrl_c_in_iteration_1(iteration, result):
        if result["trial_id"] == "00000" and iteration == 1:
            os.kill(driver, signal.SIGINT)  # as if the user pressed Ctrl-C in the driver's terminal
        time.sleep(1.0)  # the driver's next poll asks every trial to stop after its iteration
        return iteration >= 20  # (a run that ignored Ctrl-C would end here, TERMINATED)

    first = rlarena.run(
        tiny(), param_space=space, stop=ctrl_c_in_iteration_1, storage_path=tmp_path, name="c", ray=True, **QUIET
    )
    assert first.interrupted
    assert [t.status for t in first.trials] == ["INTERRUPTED", "INTERRUPTED"]
    # trial 0 stops in the iteration it pressed Ctrl-C in; trial 1 in the one it was in (its first, or
    # its second if it started a second earlier), both with a checkpoint there
    stopped_at = [t.last_result["training_iteration"] for t in first.trials]
    assert stopped_at[0] == 1 and stopped_at[1] in (1, 2)
    assert [Path(t.last_checkpoint).name for t in first.trials] == [f"checkpoint_{i:06d}" for i in stopped_at]
    state_file = tmp_path / "c" / "experiment_state.json"
    state = json.loads(state_file.read_text())
    assert [t["status"] for t in state["trials"]] == ["INTERRUPTED", "INTERRUPTED"]
    state["trials"][1]["status"] = "RUNNING"  # as a driver killed while trial 1 ran leaves it
    state_file.write_text(json.dumps(state))
    resumed = rlarena.run(
        tiny(),
        param_space=space,
        stop={"training_iteration": 3},
        storage_path=tmp_path,
        name="c",
        resume=True,
        ray=True,
        **QUIET,
    )
    assert [t.status for t in resumed.trials] == ["TERMINATED", "TERMINATED"]
    assert all(iterations(t.path) == [1, 2, 3] for t in resumed.trials)
    assert [t.results[-1]["iterations_since_restore"] for t in resumed.trials] == [3 - i for i in stopped_at]


def test_a_failing_ray_trial_is_recorded_and_a_mistyped_stop_key_leaves_nothing(local_ray, tmp_path):
    state_file = tmp_path / "f" / "experiment_state.json"

    def fail_one(iteration, result):
        if result["trial_id"] == "00000" and iteration == 2:  # what a crash of the driver now would leave
            (tmp_path / "seen.json").write_text(state_file.read_text())
        if result["trial_id"] == "00001" and iteration == 2:
            raise RuntimeError("trial 1 broke")
        return iteration >= 2

    space = {"lr": rlarena.grid_search([1e-3, 3e-3])}
    results = rlarena.run(
        tiny(), param_space=space, stop=fail_one, checkpoint_freq=1, storage_path=tmp_path, name="f", ray=True, **QUIET
    )
    assert [t.status for t in results.trials] == ["TERMINATED", "ERROR"]
    assert results.trials[1].error == "RuntimeError: trial 1 broke"
    seen = json.loads((tmp_path / "seen.json").read_text())
    # trial 0 mid-run is RUNNING on disk; trial 1 (started beside it, 2 CPUs) RUNNING too, or already ERROR
    assert seen["trials"][0]["status"] == "RUNNING" and seen["trials"][1]["status"] in ("RUNNING", "ERROR")
    state = json.loads(state_file.read_text())
    assert [(t["status"], t["error"]) for t in state["trials"]] == [
        ("TERMINATED", None),
        ("ERROR", "RuntimeError: trial 1 broke"),
    ]
    with pytest.raises(ConfigError, match="episode_return_mean"):
        rlarena.run(
            tiny(),
            param_space=space,
            stop={"episode_retrun_mean": 100},
            storage_path=tmp_path,
            name="m",
            ray=True,
            **QUIET,
        )
    assert not (tmp_path / "m").exists()


def test_a_trial_larger_than_the_cluster_is_refused_before_it_waits_forever(local_ray, tmp_path):
    config = tiny().env_runners(num_env_runners=2, num_cpus_per_env_runner=1.0)
    with pytest.raises(ConfigError, match=r"needs 3 CPUs on Ray .* the Ray cluster has 2"):
        rlarena.run(config, stop={"training_iteration": 1}, storage_path=tmp_path, name="big", ray=True, **QUIET)
    assert not (tmp_path / "big").exists()


# -- where Ray comes from, and the CLI ------------------------------------------------------------------------
def test_connect_joins_the_address_or_starts_a_loopback_ray(monkeypatch):
    from rlarena.train import ray_trials

    calls = []

    def fake_ray_init(address=None, num_cpus=None):
        calls.append((address, num_cpus))
        if address == "auto":
            raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.setattr(ray_trials.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray_trials, "ray_init", fake_ray_init)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    cpus = os.cpu_count() or 1
    assert ray_trials.connect("10.0.0.5:6379", tiny(), 1.0) is True
    assert ray_trials.connect(True, tiny().resources(ray_address="10.0.0.6:6379"), 1.0) is True
    assert ray_trials.connect(True, tiny(), cpus + 2.5) is True  # a local Ray with room for the largest trial
    with pytest.warns(rlarena.errors.RLArenaNotice, match="no Ray cluster is running"):
        assert ray_trials.connect("auto", tiny(), 1.0) is True
    assert calls == [("10.0.0.5:6379", cpus), ("10.0.0.6:6379", cpus), (None, cpus + 3), ("auto", None), (None, cpus)]


def test_cli_ray_flags_reach_run(monkeypatch):
    seen = []

    def fake_run(config, **kwargs):
        seen.append(kwargs["ray"])
        return SimpleNamespace(interrupted=False, best_checkpoint=None, experiment_path="runs/x")

    monkeypatch.setattr("rlarena.cli.train.run", fake_run)
    base = ["train", "--env", "CartPole-v1", "--verbose", "0"]
    assert main(base) == 0
    assert main([*base, "--ray"]) == 0
    assert main([*base, "--ray-address", "auto"]) == 0
    assert main([*base, "--ray-address=10.0.0.5:6379"]) == 0
    assert seen == [None, True, "auto", "10.0.0.5:6379"]


def test_cli_train_with_ray_address_runs_the_trials_on_that_cluster(local_ray, tmp_path, capsys):
    address = ray.get_runtime_context().gcs_address  # the module's loopback Ray
    config = {**TINY, "num_envs_per_env_runner": 2, "lr": {"grid_search": [1e-3, 3e-3]}}
    code = main(
        [
            "train",
            "--env",
            "CartPole-v1",
            "--config",
            json.dumps(config),
            "--stop",
            '{"training_iteration": 2}',
            "--ray-address",
            address,
            "--storage-path",
            str(tmp_path),
            "--name",
            "cli",
            "--verbose",
            "1",
            "--no-tensorboard",
            "--no-plot",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "2 trial(s) on Ray" in out and "00000 | " in out and "00001 | " in out
    state = json.loads((tmp_path / "cli" / "experiment_state.json").read_text())
    assert [t["status"] for t in state["trials"]] == ["TERMINATED", "TERMINATED"]
    assert ray.is_initialized()  # the CLI joined the running Ray: it leaves it up
