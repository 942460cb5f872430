"""A file from someone else chooses nothing outside it: no cluster, no path, no process count, and no
size past rlarena.limits (AlgorithmConfig.confine and check_sizes, limits.count_parameters).

Each test edits a real artifact (a checkpoint, a Hub package, an experiment file, a run's state file)
the way an attacker would and watches what the payload would do: a stand-in cluster that records any
connection, a marker directory that must not appear, a FIFO that would block whoever opens it, the
peak memory of the loading process. The legitimate path, the caller passing the same value, works."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import torch
from conftest import TINY_TRAINING, tiny_config, trained_checkpoint

from rlarena import Algorithm, PolicySpec, PPOConfig, RandomPolicy, limits
from rlarena.checkpoint import METADATA_FILE
from rlarena.cli.main import main
from rlarena.errors import CheckpointError, ConfigError, EnvError, RLArenaNotice

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_checkpoint(tiny_config(num_envs=2), tmp_path_factory.mktemp("ppo"))


def edited(checkpoint: Path, where: Path, name: str = "edited", **changes: object) -> Path:
    """A copy of `checkpoint` whose saved config has `changes` (what an attacker edits in)."""
    copy = where / name
    shutil.copytree(checkpoint, copy)
    meta = json.loads((copy / METADATA_FILE).read_text())
    meta["config"].update(changes)
    (copy / METADATA_FILE).write_text(json.dumps(meta))
    return copy


class StandInCluster:
    """A TCP listener on 127.0.0.1 that records every connection: what a planted cluster address
    would be contacted at (a Ray head, a Ray Client server)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.contacted = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        self.contacted.set()
        conn.close()

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def cluster():
    stand_in = StandInCluster()
    yield stand_in
    stand_in.close()


def python(code: str, *, timeout: float = 240, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter (no RAY_ADDRESS), as a user's script would."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    tests = str(Path(__file__).resolve().parent)
    env["PYTHONPATH"] = os.pathsep.join([tests, env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )


def cli(*args: str, timeout: float = 240, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.run(
        [sys.executable, "-m", "rlarena.cli.main", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )


# -- which cluster --------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_a_checkpoint_does_not_pick_the_cluster(checkpoint, cluster, tmp_path, scheme):
    planted = edited(
        checkpoint,
        tmp_path,
        ray_address=f"{scheme}127.0.0.1:{cluster.port}",
        num_env_runners=1,
        evaluation_num_env_runners=1,
        evaluation_parallel_to_training=True,
        evaluation_interval=1,
    )
    out = python(f"""
        import sys, warnings
        from rlarena import Algorithm
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            algo = Algorithm.from_checkpoint({str(planted)!r})
            algo.train()
        print("RAY_IMPORTED" if "ray" in sys.modules else "NO_RAY")
        print(algo.config.ray_address, algo.config.num_env_runners, algo.config.evaluation_num_env_runners)
        print(*[str(w.message) for w in caught], sep="\\n")
        algo.stop()
    """)
    assert out.returncode == 0, out.stderr
    assert not cluster.contacted.is_set()
    lines = out.stdout.splitlines()
    assert lines[:2] == ["NO_RAY", "None 0 0"]
    assert "ray_address=" in out.stdout and "a file does not choose" in out.stdout


def test_an_experiment_file_does_not_pick_the_cluster_even_with_ray(cluster, tmp_path):
    spec = tmp_path / "exp.yaml"
    spec.write_text(
        f"algo: PPO\nenv: CartPole-v1\nconfig: {{ray_address: '127.0.0.1:{cluster.port}', "
        f"num_env_runners: 1, train_batch_size: 64, minibatch_size: 64, num_epochs: 1}}\n"
        f"stop: {{training_iteration: 1}}\n"
    )
    out = cli(
        "train",
        "-f",
        str(spec),
        "--storage-path",
        str(tmp_path / "runs"),
        "--verbose",
        "0",
        "--ray",
        "--no-tensorboard",
        "--no-plot",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert not cluster.contacted.is_set()
    assert "ray_address='127.0.0.1:" in out.stderr and "notice:" in out.stderr and "Traceback" not in out.stderr


def test_the_caller_still_names_a_cluster(checkpoint, track):
    algo = track(Algorithm.from_checkpoint(checkpoint, config_overrides={"ray_address": "10.0.0.5:6379"}))
    assert algo.config.ray_address == "10.0.0.5:6379"  # kept (sampling stays here: num_env_runners=0)


# -- where things are written and read --------------------------------------------------------------
def test_a_checkpoint_does_not_choose_where_training_writes(checkpoint, tmp_path, track):
    marker = tmp_path / "outside" / "recordings"
    planted = edited(checkpoint, tmp_path, output=str(marker))
    with pytest.warns(RLArenaNotice, match="output="):
        algo = track(Algorithm.from_checkpoint(planted))
    algo.train()
    algo.stop()
    assert not marker.parent.exists()
    # the caller chooses it deliberately: recorded there
    wanted = tmp_path / "recordings"
    algo = track(Algorithm.from_checkpoint(planted, config_overrides={"output": str(wanted)}))
    algo.train()
    algo.stop()
    assert list(wanted.glob("*.parquet"))


@pytest.fixture(scope="module")
def bc_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BC checkpoint trained on data recorded from CartPole (its config names the data and the env)."""
    root = tmp_path_factory.mktemp("bc")
    recorder = tiny_config(num_envs=2).offline_data(output=str(root / "data")).build()
    recorder.train()
    recorder.stop()
    from rlarena.algorithms.marwil import BCConfig

    algo = (
        BCConfig()
        .environment("CartPole-v1")
        .offline_data(input_=str(root / "data"))
        .training(train_batch_size=64, model={"fcnet_hiddens": [8]})
        .debugging(seed=0)
        .build()
    )
    algo.train()
    path = Path(algo.save(root / "bc"))
    algo.stop()
    return path


def test_rlarena_evaluate_does_not_open_a_checkpoints_input(bc_checkpoint, tmp_path):
    """input_ planted to a FIFO: whoever opens it blocks (the test's timeout would fire); evaluating
    needs only the env, and says nothing of whether the path exists."""
    fifo = tmp_path / "pipe.parquet"
    os.mkfifo(fifo)
    planted = edited(bc_checkpoint, tmp_path, input_=str(fifo))
    out = cli("evaluate", str(planted), "--episodes", "2", timeout=120)
    assert out.returncode == 0, out.stderr
    assert "2 episodes (greedy): return" in out.stdout
    assert "exist" not in out.stderr and "Traceback" not in out.stderr
    missing = edited(bc_checkpoint, tmp_path, "missing", input_=str(tmp_path / "no_such_dir"))
    out = cli("evaluate", str(missing), "--episodes", "2", timeout=120)
    assert out.returncode == 0 and "exist" not in out.stderr, out.stderr


def test_a_bc_checkpoint_trains_again_only_on_data_the_caller_passes(bc_checkpoint, tmp_path, track):
    with pytest.warns(RLArenaNotice, match="input_="):
        algo = track(Algorithm.from_checkpoint(bc_checkpoint))
    assert algo.evaluate()["episodes"] == 10
    with pytest.raises(ConfigError, match="config_overrides=\\{'input_': DIR\\}"):
        algo.train()
    data = json.loads((bc_checkpoint / METADATA_FILE).read_text())["config"]["input_"]
    again = track(Algorithm.from_checkpoint(bc_checkpoint, config_overrides={"input_": data}))
    assert again.train()["training_iteration"] == 2


def test_an_experiment_file_does_not_choose_where_runs_go(tmp_path):
    outside = tmp_path / "outside"
    spec = tmp_path / "exp.yaml"
    spec.write_text(
        f"algo: PPO\nenv: CartPole-v1\nstorage_path: {outside / 'runs'}\n"
        f"config: {{output: {outside / 'rec'}, train_batch_size: 64, minibatch_size: 64, num_epochs: 1}}\n"
        f"stop: {{training_iteration: 1}}\n"
    )
    out = cli("train", "-f", str(spec), "--verbose", "0", "--no-tensorboard", "--no-plot", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert not outside.exists()
    assert list((tmp_path / "runs").iterdir())  # the default storage path, beside the caller
    assert "storage_path=" in out.stderr and "output=" in out.stderr


def test_a_resumed_run_takes_no_path_from_its_state_file(tmp_path, capsys):
    import rlarena

    config = tiny_config(num_envs=2)
    rlarena.run(
        config,
        stop={"training_iteration": 1},
        storage_path=str(tmp_path),
        name="run",
        verbose=0,
        tensorboard=False,
        plot=False,
        checkpoint_at_end=True,
    )
    state = tmp_path / "run" / "experiment_state.json"
    data = json.loads(state.read_text())
    marker = tmp_path / "outside"
    data["trials"][0]["params"] = {"output": str(marker), "num_sampling_processes": 64}
    data["trials"][0]["status"] = "INTERRUPTED"
    state.write_text(json.dumps(data))
    with pytest.warns(RLArenaNotice, match="output="):
        results = rlarena.run(
            config,
            stop={"training_iteration": 2},
            storage_path=str(tmp_path),
            name="run",
            resume=True,
            verbose=0,
            tensorboard=False,
            plot=False,
        )
    assert results.trials[0].status == "TERMINATED" and not marker.exists()


# -- how many processes and threads --------------------------------------------------------------------
def test_a_checkpoint_does_not_choose_threads_or_processes(checkpoint, tmp_path, track):
    planted = edited(
        checkpoint,
        tmp_path,
        num_torch_threads=10**9,
        vectorization_mode="async",
        num_env_workers=10**6,
        sample_async=True,
        num_sampling_processes=10**4,
    )
    threads = torch.get_num_threads()
    try:
        with pytest.warns(RLArenaNotice, match="num_sampling_processes=10000"):
            algo = track(Algorithm.from_checkpoint(planted))
        assert torch.get_num_threads() == 1
        result = algo.train()
        assert result["num_healthy_env_runners"] == 1  # sample_async is the algorithm's: one process
        # deliberately: the caller's own thread count
        algo.stop()
        track(Algorithm.from_checkpoint(planted, config_overrides={"num_torch_threads": 2, "sample_async": False}))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


# -- how big ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"num_envs_per_env_runner": 10**9}, "num_envs_per_env_runner=1e+09"),
        ({"evaluation_num_envs": 10**9, "evaluation_interval": 1}, "evaluation_num_envs"),
        ({"evaluation_duration": 10**12}, "evaluation_duration"),
        ({"train_batch_size": 10**15}, "train_batch_size"),
        ({"num_epochs": 10**9}, "num_epochs"),
        ({"rollout_fragment_length": 2**62}, "rollout_fragment_length"),
        ({"env_config": {"max_episode_steps": 10**12}}, "env_config.max_episode_steps"),
    ],
)
def test_sizes_past_their_bound_are_refused_before_anything_is_built(checkpoint, tmp_path, changes, named):
    planted = edited(checkpoint, tmp_path, **changes)
    with pytest.raises(ConfigError) as info:
        Algorithm.from_checkpoint(planted)
    message = str(info.value)
    assert named in message and "rlarena.limits.MAX_" in message and "\n" not in message


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lr": float("inf")}, "Invalid lr=inf: expected a number .*finite"),  # JSON's Infinity
        ({"lr": float("nan")}, "Invalid lr=nan: expected a number .*finite"),
        ({"train_batch_size": 1e300}, "Invalid train_batch_size=1e\\+300: expected an integer .*2\\*\\*63"),
    ],
)
def test_non_finite_and_impossible_numbers_are_one_clear_error(checkpoint, tmp_path, changes, message):
    planted = edited(checkpoint, tmp_path, **changes)
    with pytest.raises(CheckpointError, match=message):
        Algorithm.from_checkpoint(planted)


def test_a_bound_raised_deliberately_or_the_value_passed_again_loads(checkpoint, tmp_path, track, monkeypatch):
    planted = edited(checkpoint, tmp_path, num_envs_per_env_runner=2000)
    with pytest.raises(ConfigError, match="MAX_ENVS"):
        Algorithm.from_checkpoint(planted)
    algo = track(Algorithm.from_checkpoint(planted, config_overrides={"num_envs_per_env_runner": 3}))
    assert algo.config.num_envs_per_env_runner == 3
    monkeypatch.setattr(limits, "MAX_ENVS", 4096)
    monkeypatch.setattr(limits, "MAX_BATCH", 2000)  # not reached: 2000 envs x "auto" fragment
    assert Algorithm.from_checkpoint(planted, config_overrides={"vectorization_mode": "sync"}) is not None


HUGE_NETWORK = {"fcnet_hiddens": [4096] * 8}  # 117M parameters a tower, 1 GB with its value tower
WIDE_NETWORK = {"fcnet_hiddens": [65536, 65536]}  # 4.3e9 parameters a tower: 17 GB of float32


@pytest.mark.parametrize(("model", "bound"), [(HUGE_NETWORK, "MAX_PARAMETERS"), (WIDE_NETWORK, "MAX_LAYER_UNITS")])
def test_a_huge_network_is_refused_before_its_memory_is_touched(checkpoint, tmp_path, model, bound):
    """In a fresh process whose peak memory is read afterwards: the refusal comes before allocation."""
    planted = edited(checkpoint, tmp_path, model=model)
    out = python(f"""
        import resource
        from rlarena import Algorithm
        from rlarena.errors import ConfigError
        try:
            Algorithm.from_checkpoint({str(planted)!r})
        except ConfigError as exc:
            print("REFUSED", exc)
        print("PEAK_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    """)
    assert out.returncode == 0, out.stderr
    assert "REFUSED" in out.stdout and bound in out.stdout, out.stdout
    peak = int(out.stdout.split("PEAK_MB")[1].split()[0])
    assert peak < 1500, f"the loading process peaked at {peak} MB"


def test_a_policys_own_override_and_a_hub_package_are_bounded_too(tmp_path, track):
    config = (
        PPOConfig()
        .environment("multi_agent_arena", env_config={"ts": 10})
        .env_runners(num_envs_per_env_runner=1)
        .training(train_batch_size=40, minibatch_size=40, num_epochs=1, model={"fcnet_hiddens": [8]})
        .multi_agent(
            policies={"default_policy": PolicySpec(), "rand": PolicySpec(policy_class=RandomPolicy)},
            policies_to_train=["default_policy"],
        )
        .debugging(seed=0)
    )
    path = trained_checkpoint(config, tmp_path)
    meta = json.loads((path / METADATA_FILE).read_text())
    meta["config"]["policies"]["default_policy"]["config"] = {"model": HUGE_NETWORK}
    (path / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="MAX_PARAMETERS"):
        Algorithm.from_checkpoint(path)

    from rlarena.hub import load_from_hub, package_to_hub

    package = package_to_hub(
        trained_checkpoint(tiny_config(num_envs=2), tmp_path / "single"), tmp_path / "pkg", episodes=1, video=False
    ).folder
    link = tmp_path / "linked_pkg"  # a package path that is a link is refused: its target stays as it was
    link.symlink_to(package)
    before = sorted(p.name for p in package.iterdir())
    with pytest.raises(ConfigError, match="symbolic link"):
        package_to_hub(tmp_path / "single" / "checkpoint", link, episodes=1, video=False)
    assert sorted(p.name for p in package.iterdir()) == before
    config_file = package / "config.json"
    data = json.loads(config_file.read_text())
    data["config"]["model"] = HUGE_NETWORK
    config_file.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="MAX_PARAMETERS"):
        load_from_hub(package)
    data["config"].update(model=TINY_TRAINING["model"], num_env_runners=3, output=str(tmp_path / "x"))
    config_file.write_text(json.dumps(data))
    with pytest.warns(RLArenaNotice, match="output="):
        algo = track(load_from_hub(package))
    assert algo.config.num_env_runners == 0 and algo.config.output is None


@pytest.fixture(scope="module")
def dqn_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rlarena import DQNConfig

    algo = (
        DQNConfig()
        .environment("CartPole-v1")
        .training(num_steps_sampled_before_learning_starts=16, model={"fcnet_hiddens": [8]})
        .debugging(seed=0)
        .build()
    )
    algo.train()
    path = Path(algo.save(tmp_path_factory.mktemp("dqn") / "dqn"))
    algo.stop()
    return path


def test_a_replay_capacity_is_bounded(dqn_checkpoint, tmp_path):
    planted = edited(dqn_checkpoint, tmp_path, replay_buffer_config={"capacity": 10**13})
    with pytest.raises(ConfigError, match="replay_buffer_config.capacity=1e\\+13.*MAX_REPLAY"):
        Algorithm.from_checkpoint(planted)


def test_alphazero_games_and_simulations_are_bounded(tmp_path):
    from rlarena import AlphaZeroConfig

    algo = (
        AlphaZeroConfig()
        .environment("tic_tac_toe")
        .training(
            num_parallel_games=4,
            train_batch_size=16,
            minibatch_size=8,
            replay_buffer_config={"capacity": 64},
            num_steps_sampled_before_learning_starts=8,
            mcts_config={"num_simulations": 4},
            model={"fcnet_hiddens": [8]},
        )
        .debugging(seed=0)
        .build()
    )
    path = Path(algo.save(tmp_path / "az"))
    algo.stop()
    for changes, named in [
        ({"num_parallel_games": 10**8}, "num_parallel_games"),
        ({"mcts_config": {"num_simulations": 10**12}}, "mcts_config.num_simulations"),
        ({"num_self_play_workers": 10**5}, None),
    ]:
        planted = edited(path, tmp_path, f"az_{len(list(tmp_path.iterdir()))}", **changes)
        if named is None:
            with pytest.warns(RLArenaNotice, match="num_self_play_workers"):
                loaded = Algorithm.from_checkpoint(planted)
            assert loaded.config.num_self_play_workers == 0
            loaded.stop()
            continue
        with pytest.raises(ConfigError, match=f"{named}=.*rlarena.limits"):
            Algorithm.from_checkpoint(planted)


def test_an_arena_of_any_size_is_an_env_error():
    from rlarena.envs.arena import MultiAgentArena

    for config in ({"width": 10**9}, {"ts": 10**12}, {"height": float("inf")}, {"width": "10"}):
        with pytest.raises(EnvError):
            MultiAgentArena(config)


def test_an_experiment_file_is_bounded(tmp_path, monkeypatch, capsys):
    spec = tmp_path / "exp.yaml"
    spec.write_text("algo: PPO\nenv: CartPole-v1\nnum_samples: 1000000000\nstop: {training_iteration: 1}\n")
    assert main(["train", "-f", str(spec), "--verbose", "0", "--storage-path", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "num_samples=1e+09" in err and "MAX_SAMPLES" in err and "Traceback" not in err
    spec.write_text(
        "algo: PPO\nenv: CartPole-v1\nconfig: {lr: {grid_search: [0.1, 0.01]}, "
        "train_batch_size: {grid_search: [64, 100000000000]}}\nstop: {training_iteration: 1}\n"
    )
    assert main(["train", "-f", str(spec), "--verbose", "0", "--storage-path", str(tmp_path / "r")]) == 2
    assert "train_batch_size=1e+11" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    # and the networks its trials build
    spec.write_text(
        "algo: PPO\nenv: CartPole-v1\nconfig: {model: {fcnet_hiddens: [4096, 4096, 4096, 4096, 4096, 4096, "
        "4096, 4096]}}\nstop: {training_iteration: 1}\n"
    )
    assert main(["train", "-f", str(spec), "--verbose", "0", "--storage-path", str(tmp_path / "r2")]) == 2
    assert "MAX_PARAMETERS" in capsys.readouterr().err
    # the caller's --config is the caller's choice: not bounded
    monkeypatch.setattr(limits, "MAX_BATCH", 100)
    spec.write_text(
        "algo: PPO\nenv: CartPole-v1\nconfig: {train_batch_size: 128, minibatch_size: 64, num_epochs: 1}\n"
        "stop: {training_iteration: 1}\n"
    )
    assert main(["train", "-f", str(spec), "--verbose", "0", "--storage-path", str(tmp_path / "r")]) == 2
    assert (
        main(
            [
                "train",
                "-f",
                str(spec),
                "--verbose",
                "0",
                "--storage-path",
                str(tmp_path / "r"),
                "--config",
                '{"train_batch_size": 128, "minibatch_size": 64}',
                "--no-tensorboard",
                "--no-plot",
            ]
        )
        == 0
    )


# -- objects handed to the algorithm after build() are the caller's -----------------------------------
def swap_seats(agent_id, episode, worker=None, **kwargs):
    return "default_policy" if agent_id == "agent1" else "snapshot"


def test_a_mapping_function_handed_to_add_policy_restores_in_the_same_process(tmp_path, track, monkeypatch):
    from rlarena import refs

    monkeypatch.setattr(refs, "_REGISTERED", {})
    config = (
        PPOConfig()
        .environment("multi_agent_arena", env_config={"ts": 10})
        .env_runners(num_envs_per_env_runner=1)
        .training(train_batch_size=40, minibatch_size=40, num_epochs=1, model={"fcnet_hiddens": [8]})
        .debugging(seed=0)
    )
    algo = track(config.build())
    algo.add_policy(
        "snapshot",
        policy_state=algo.get_policy().get_state(),
        policy_mapping_fn=swap_seats,
        policies_to_train=["default_policy"],
    )
    algo.train()
    path = algo.save(tmp_path / "ck")
    restored = track(Algorithm.from_checkpoint(path))
    assert restored.mapping_fn is swap_seats and set(restored.policies) == {"default_policy", "snapshot"}
    algo.remove_policy("snapshot", policy_mapping_fn=_all_default)
    restored = track(Algorithm.from_checkpoint(algo.save(tmp_path / "ck2")))
    assert restored.mapping_fn is _all_default


def _all_default(agent_id, episode, worker=None, **kwargs):
    return "default_policy"


# -- the docs sort every option ---------------------------------------------------------------------
def test_the_docs_table_of_option_roles_is_current():
    """docs/files-from-others.md lists every option of every algorithm with its role and bound, written by
    scripts/write_option_roles.py from the config classes: a new option must be sorted there."""
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("write_option_roles", root / "scripts" / "write_option_roles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = (root / "docs" / "files-from-others.md").read_text()
    assert module.page_with_table(page) == page, "run: python scripts/write_option_roles.py"
    for option in ("ray_address", "output", "input_", "num_env_runners", "num_torch_threads", "train_batch_size"):
        assert f"| `{option}` |" in page
