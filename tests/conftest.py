"""Shared fixtures: tiny, fast PPO configs and algorithms that are always stopped.

Every training test here is sized for a 2-core CPU: small nets, small batches, few epochs, a fixed
seed. Learning curves and speed belong in benchmarks/, not here (STYLE.md, habit 11).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from rlarena import Algorithm, PPOConfig
from rlarena.envs import registry
from rlarena.models import ModelV2, TorchRNN, override

# Checkpoints name env classes as "module:qualname"; the probe envs' module must be importable by its
# plain name whatever pytest's import mode.
TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

# Small enough that one train() on CartPole takes a few milliseconds.
TINY_TRAINING: dict[str, Any] = {
    "train_batch_size": 128,
    "minibatch_size": 64,
    "num_epochs": 2,
    "model": {"fcnet_hiddens": [16]},
}


class RLlibLSTM(TorchRNN, nn.Module):
    """A recurrent custom model as RLlib's examples/models/rnn_model.py writes one (its imports changed):
    a linear layer, an nn.LSTM over [B, T, n], policy and value branches. Its initial state is `initial`
    and -`initial` (custom_model_config; RLlib's example uses zeros), so that the zero row rlarena
    stores at an episode's start has to mean it."""

    def __init__(
        self, obs_space, action_space, num_outputs, model_config, name, fc_size=32, lstm_state_size=32, initial=0.0
    ):
        nn.Module.__init__(self)
        super().__init__(obs_space, action_space, num_outputs, model_config, name)
        self.obs_size = int(np.prod(obs_space.shape))
        self.lstm_state_size, self.initial = lstm_state_size, initial
        self.fc1 = nn.Linear(self.obs_size, fc_size)
        self.lstm = nn.LSTM(fc_size, lstm_state_size, batch_first=True)
        self.action_branch = nn.Linear(lstm_state_size, num_outputs)
        self.value_branch = nn.Linear(lstm_state_size, 1)
        self._features = None

    @override(ModelV2)
    def get_initial_state(self):
        return [
            self.fc1.weight.new_full((self.lstm_state_size,), self.initial),
            self.fc1.weight.new_full((self.lstm_state_size,), -self.initial),
        ]

    @override(ModelV2)
    def value_function(self):
        return torch.reshape(self.value_branch(self._features), [-1])

    @override(TorchRNN)
    def forward_rnn(self, inputs, state, seq_lens):
        x = nn.functional.relu(self.fc1(inputs))
        self._features, [h, c] = self.lstm(x, [torch.unsqueeze(state[0], 0), torch.unsqueeze(state[1], 0)])
        return self.action_branch(self._features), [torch.squeeze(h, 0), torch.squeeze(c, 0)]


def record_memory_expert(model: dict[str, Any], output: Path, env_config: dict[str, Any]) -> None:
    """Train a PPO expert with memory `model` on RepeatPrevious-v0 (greedy > 0.8 asserted), then log
    four fragments of its play (its weights, then its updates) to `output` for BC and MARWIL."""

    def ppo(**offline: Any) -> PPOConfig:
        return (
            PPOConfig()
            .environment("RepeatPrevious-v0", env_config=env_config)
            .env_runners(num_envs_per_env_runner=8)
            .training(train_batch_size=512, minibatch_size=128, num_epochs=8, lr=3e-3, gamma=0.9, model=model)
            .offline_data(**offline)
            .debugging(seed=0)
        )

    expert, recorder = ppo().build(), ppo(output=str(output)).build()
    try:
        for _ in range(15):
            expert.train()
        assert expert.evaluate()["episode_return_mean"] > 0.8
        recorder.get_policy().set_state(expert.get_policy().get_state())
        for _ in range(4):
            recorder.train()  # recorded with the expert's weights (the first fragment's), then with its updates
    finally:
        recorder.stop()
        expert.stop()


# Keys whose values are wall-clock times: never compared, never asserted on.
TIMING_KEYS = {"time_this_iter_s", "time_total_s", "env_steps_per_sec", "evaluation/evaluation_time_s"}


def tiny_config(env: Any = "CartPole-v1", num_envs: int = 4, seed: int | None = 0, **training: Any) -> PPOConfig:
    """A seeded PPOConfig with TINY_TRAINING, overridable per keyword."""
    return (
        PPOConfig()
        .environment(env)
        .env_runners(num_envs_per_env_runner=num_envs)
        .training(**{**TINY_TRAINING, **training})
        .debugging(seed=seed)
    )


@pytest.fixture
def make_config() -> Callable[..., PPOConfig]:
    return tiny_config


@pytest.fixture
def build() -> Iterator[Callable[[PPOConfig], Algorithm]]:
    """build(config) -> algorithm; every algorithm built through it is stopped after the test."""
    built: list[Algorithm] = []

    def _build(config: PPOConfig) -> Algorithm:
        algo = config.build()
        built.append(algo)
        return algo

    yield _build
    for algo in built:
        algo.stop()


@pytest.fixture
def track() -> Iterator[Callable[[Algorithm], Algorithm]]:
    """track(algo) -> algo: stop an algorithm made some other way (from_checkpoint) after the test."""
    tracked: list[Algorithm] = []

    def _track(algo: Algorithm) -> Algorithm:
        tracked.append(algo)
        return algo

    yield _track
    for algo in tracked:
        algo.stop()


@pytest.fixture
def registered_env() -> Iterator[Callable[[str, Callable], str]]:
    """register_env for one test only: the name (and the trust register_env gives its creator) is
    removed afterwards."""
    from rlarena import refs

    names: list[str] = []
    trusted = dict(refs._REGISTERED)

    def _register(name: str, creator: Callable) -> str:
        from rlarena import register_env

        register_env(name, creator)
        names.append(name)
        return name

    yield _register
    for name in names:
        registry._REGISTRY.pop(name, None)
    refs._REGISTERED.clear()
    refs._REGISTERED.update(trusted)


def trained_checkpoint(config: PPOConfig, directory: Path) -> Path:
    """A real checkpoint: build `config`, train one iteration, save it in `directory`, stop."""
    algo = config.build()
    try:
        algo.train()
        return Path(algo.save(directory / "checkpoint"))
    finally:
        algo.stop()


def untrained_league_checkpoint(directory: Path) -> Path:
    """An untrained multi-agent PPO Connect Four checkpoint, as the PPO league saves one: a trained
    policy "learned" beside a RandomPolicy "random" and a heuristic "negamax_1"; saved in `directory`.

    For tests whose subject is a league checkpoint (an opponent inside it, policies that are not
    networks): the shipped agent is an AlphaZero network with one policy and no opponents."""
    from rlarena import PolicySpec
    from rlarena.games.connect_four.opponents import NegamaxDepth1
    from rlarena.multiagent.league import league_mapping_fn
    from rlarena.policies import RandomPolicy

    algo = (
        PPOConfig()
        .environment("connect_four")
        .env_runners(num_envs_per_env_runner=1)
        .multi_agent(
            policies={
                "learned": PolicySpec(),
                "random": PolicySpec(policy_class=RandomPolicy),
                "negamax_1": PolicySpec(policy_class=NegamaxDepth1),
            },
            policy_mapping_fn=league_mapping_fn,
            policies_to_train=["learned"],
        )
        .debugging(seed=0)
        .build()
    )
    try:
        return Path(algo.save(directory / "league"))
    finally:
        algo.stop()


@pytest.fixture(scope="module")
def league_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """untrained_league_checkpoint(), built once per test module; tests read it and never change it."""
    return untrained_league_checkpoint(tmp_path_factory.mktemp("league"))


def all_arrays(algo: Algorithm) -> dict:
    """Every array of algo.get_state(), keyed by (group, name): weights, optimizers, targets, counters."""
    return {(g, k): v for g, group in algo.get_state()["arrays"].items() for k, v in group.items()}


def assert_same_arrays(a: Algorithm, b: Algorithm) -> None:
    """The two algorithms hold the same arrays, bit for bit."""
    import numpy as np

    left, right = all_arrays(a), all_arrays(b)
    assert left.keys() == right.keys()
    for key, value in left.items():
        np.testing.assert_array_equal(value, right[key], err_msg=str(key))


def weights(algo: Algorithm) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in algo.get_policy().model.state_dict().items()}


def all_finite(algo: Algorithm) -> bool:
    return all(torch.isfinite(p).all().item() for p in algo.get_policy().model.parameters())


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    """A result without its wall-clock timings, NaN mapped to a marker so that NaN == NaN."""
    return {
        k: ("nan" if isinstance(v, float) and math.isnan(v) else v) for k, v in result.items() if k not in TIMING_KEYS
    }


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One loopback Ray (2 CPUs, no dashboard) per test module that asks for it; another module's Ray
    is shut down first, and this one when the module is done."""
    ray = pytest.importorskip("ray")
    from rlarena.rollout.ray_cluster import ray_init, ray_shutdown

    if ray.is_initialized():
        ray.shutdown()
    ray_init(num_cpus=2)
    yield
    ray_shutdown()  # and its private temp directory


# -- markers (registered in pyproject.toml) ------------------------------------------------------------------
# The fast loop while working: python -m pytest -q -m "not slow and not ray and not browser". Markers are set
# here, from the tests' names and fixtures, so that a test file need not say them.
RAY_TESTS = {  # start a local Ray without the local_ray fixture (in a subprocess: `--ray`, `--ray-address auto`)
    "test_files_from_others.py::test_an_experiment_file_does_not_pick_the_cluster_even_with_ray",
    "test_rllib_compat.py::test_train_takes_rllib_flags",
    "test_rllib_compat.py::test_the_tutorial_commands_run",
}
BROWSER_MODULES = {"test_play_browser"}  # a headless Chromium plays the Connect Four page
SLOW_TESTS = {  # 5 s or more on a 2-core machine (python -m pytest --durations=30), Ray's and the browser's aside
    "test_alphazero.py::test_checkpoint_round_trip_continues_training",  # these three share a ~12 s trained agent
    "test_alphazero.py::test_search_agent_never_loses_at_tic_tac_toe",
    "test_alphazero.py::test_the_network_learns_from_self_play",
    "test_alphazero.py::test_self_play_in_worker_processes_learns_and_hands_over_every_game",
    "test_async_sampling.py::test_a_sampling_process_memory_stays_flat_over_many_fragments",
    "test_cli.py::test_train_rollout_evaluate_plot",
    "test_connect_four.py::test_replays_1000_random_games_like_connect_four_v3",
    "test_connect_four_blog.py::test_connect_four_blog_script_grows_its_league_and_exports",
    "test_crossq.py::test_solves_continuous_identity",
    "test_droq_redq.py::test_droq_solves_continuous_identity",
    "test_fuzz_files.py::test_mutated_files_load_or_fail_with_one_clear_error",
    "test_hub.py::test_connect_four_export_play_example",
    "test_hub.py::test_lunarlander_hub_example_quick_mode",
    "test_notebook_port.py::test_notebook_01_port",
    "test_offline_io.py::test_a_data_set_larger_than_the_memory_allowed_streams_and_trains",
    "test_shipped_agent.py::test_the_served_search_agent_beats_negamax_and_keeps_the_outcome",
    "test_static_checks.py::test_mypy_finds_no_error_in_the_core",  # ~30 s with a cold mypy cache
    "test_tqc.py::test_solves_continuous_identity",
    "test_static_checks.py::test_ruff_passes_over_src_and_tests",
    "test_typed_builders.py::test_mypy_flags_a_wrongly_typed_option",  # ~22 s with a cold mypy cache
    "test_files_from_others.py::test_a_huge_network_is_refused_before_its_memory_is_touched",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """ray: every test of a test_ray_* module, every test using local_ray, and RAY_TESTS; browser:
    BROWSER_MODULES; slow: SLOW_TESTS (every parametrized case of a listed test)."""
    modules: dict[str, Any] = {}  # test file name -> its module
    for item in items:
        module, name = item.path.stem, f"{item.path.name}::{getattr(item, 'originalname', item.name)}"
        if module.startswith("test_ray_") or "local_ray" in getattr(item, "fixturenames", ()) or name in RAY_TESTS:
            item.add_marker(pytest.mark.ray)
        if module in BROWSER_MODULES:
            item.add_marker(pytest.mark.browser)
        if name in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
        modules[item.path.name] = getattr(item, "module", None)
    # a renamed test drops out of these lists silently: name it instead (whatever -k or node ids selected)
    for listed in sorted(RAY_TESTS | SLOW_TESTS):
        filename, _, function = listed.partition("::")
        if filename in modules and modules[filename] is not None and not hasattr(modules[filename], function):
            raise pytest.UsageError(
                f"tests/conftest.py lists {listed}, which {filename} does not define: update RAY_TESTS / SLOW_TESTS."
            )
