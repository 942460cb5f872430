"""Your own network: model={"custom_model": cls or a registered name} through RLlib's ModelV2 protocol
(rlarena.nn.custom; the names from rlarena.models).

RLlib's Connect Four action-mask model from the blog runs with its imports changed and trains on
PettingZoo's connect_four_v3 without an illegal move; registered names, plain nn.Modules, the
options a model gets and the structure of input_dict["obs"]; checkpoints keep the class by name and
load it only when trusted (a fresh process imports nothing the checkpoint names until told to). A model
with its own state (get_initial_state(), RLlib's TorchRNN) gets RLlib's padded [B * T] sequences with
seq_lens, its state carried and stored by the runners, and learns what needs memory with PPO, A2C,
IMPALA, APPO, BC and MARWIL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import RLlibLSTM, record_memory_expert
from torch import nn

from rlarena import A2CConfig, Algorithm, APPOConfig, IMPALAConfig, Policy, PolicySpec, PPOConfig, refs
from rlarena.envs.arena import MultiAgentArena
from rlarena.errors import ConfigError
from rlarena.models import FLOAT_MIN, ModelCatalog, TorchFC, TorchModelV2
from rlarena.nn import custom
from rlarena.policies.recurrent_policy import RecurrentPolicy

TINY = {"train_batch_size": 64, "minibatch_size": 32, "num_epochs": 1}


@pytest.fixture(autouse=True)
def _forget_registrations() -> Iterator[None]:
    """Names registered with ModelCatalog and the trust that building gives classes: this test's only."""
    models, trusted = dict(custom.CUSTOM_MODELS), dict(refs._REGISTERED)
    yield
    custom.CUSTOM_MODELS.clear()
    custom.CUSTOM_MODELS.update(models)
    refs._REGISTERED.clear()
    refs._REGISTERED.update(trusted)


# -- RLlib's Connect Four action-mask model, as the blog writes it (imports changed) ------------------------------
class Connect4MaskModel(TorchModelV2, nn.Module):
    def __init__(
        self,
        obs_space,
        action_space,
        num_outputs,
        model_config,
        name,
        **kwargs,
    ):
        orig_space = getattr(obs_space, "original_space", obs_space)

        TorchModelV2.__init__(self, obs_space, action_space, num_outputs, model_config, name, **kwargs)
        nn.Module.__init__(self)

        self.internal_model = TorchFC(
            orig_space["observation"],
            action_space,
            num_outputs,
            model_config,
            name + "_internal",
        )

    def forward(self, input_dict, state, seq_lens):
        # Extract the available actions tensor from the observation.
        action_mask = input_dict["obs"]["action_mask"]

        # Compute the unmasked logits.
        logits, _ = self.internal_model({"obs": input_dict["obs"]["observation"]})

        # Convert action_mask into a [0.0 || -inf]-type mask.
        inf_mask = torch.clamp(torch.log(action_mask), min=FLOAT_MIN)
        masked_logits = logits + inf_mask

        # Return masked logits.
        return masked_logits, state

    def value_function(self):
        return self.internal_model.value_function()


class RandomHeuristic(Policy):
    """A legal column at random (the blog's RandomHeuristic), RLlib's (actions, state_outs, info)."""

    def compute_actions(self, obs_batch, explore=True):
        return [np.random.choice(np.flatnonzero(mask)) for mask in obs_batch["action_mask"]], [], {}


def select_policy(agent_id, episode, **kwargs):
    """The blog's mapping: "learned" plays first in even episodes, second in odd ones."""
    return "learned" if episode.episode_id % 2 == int(agent_id[-1:]) else "random"


ILLEGAL: list[tuple[str, int]] = []  # (agent, action) of every illegal move any Connect Four env here saw


def connect4_env(config: dict | None = None) -> Any:
    """connect_four_v3.env(), every move checked against the mover's mask before the env sees it
    (the env itself would end the game with -1 to the mover)."""
    from pettingzoo.classic import connect_four_v3
    from pettingzoo.utils import BaseWrapper

    class IllegalMoveRecorder(BaseWrapper):
        def step(self, action):
            agent = self.agent_selection
            live = action is not None and not (self.terminations[agent] or self.truncations[agent])
            if live and not self.observe(agent)["action_mask"][int(action)]:
                ILLEGAL.append((agent, int(action)))
            super().step(action)

    return IllegalMoveRecorder(connect_four_v3.env())


def connect4_config(seed: int = 0, **training: Any) -> PPOConfig:
    return (
        PPOConfig()
        .environment("connect4")
        .training(model={"custom_model": Connect4MaskModel}, **training)
        .multi_agent(
            policies={"learned": PolicySpec(), "random": PolicySpec(policy_class=RandomHeuristic)},
            policy_mapping_fn=select_policy,
            policies_to_train=["learned"],
        )
        .debugging(seed=seed)
    )


def win_rate(algo: Algorithm, games: int, seed: int) -> float:
    """The share of `games` that "learned" (sampling) wins against a random legal mover, first in half."""
    from pettingzoo.classic import connect_four_v3

    rng = np.random.default_rng(seed)
    wins = 0
    for game in range(games):
        env = connect_four_v3.env()
        env.reset(seed=seed * 10_000 + game)
        learned = f"player_{game % 2}"
        for agent in env.agent_iter():
            obs, reward, terminated, truncated, _ = env.last()
            if terminated or truncated:
                wins += agent == learned and reward > 0
                env.step(None)
            elif agent == learned:
                env.step(algo.compute_single_action(obs, policy_id="learned"))
            else:
                env.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
    return wins / games


@pytest.fixture
def connect4(registered_env) -> str:
    pytest.importorskip("pettingzoo")
    ILLEGAL.clear()
    return registered_env("connect4", connect4_env)


def test_the_blogs_action_mask_model_trains_on_connect_four_without_an_illegal_move(build, connect4):
    algo = build(connect4_config(**{**TINY, "train_batch_size": 256}).evaluation(evaluation_duration=4))
    net = algo.get_policy("learned").model.net
    assert isinstance(net, Connect4MaskModel) and isinstance(net.internal_model, TorchFC)
    for _ in range(2):
        result = algo.train()
        assert result["episodes_this_iter"] > 0
    algo.evaluate()
    assert ILLEGAL == []
    # the model's own mask: illegal columns get FLOAT_MIN, whatever the policy does after it
    obs = {"observation": np.zeros((1, 6, 7, 2), np.float32), "action_mask": np.array([[1, 0, 1, 1, 1, 1, 0]])}
    logits, _ = net({"obs": {k: torch.as_tensor(v, dtype=torch.float32) for k, v in obs.items()}})
    assert (logits[0, [1, 6]] < -1e30).all() and (logits[0, [0, 2, 3, 4, 5]] > -1e3).all()


@pytest.mark.slow
def test_the_old_style_custom_model_from_the_blog_learns_to_beat_a_random_mover(build, connect4):
    # measured (200 games, sampling): 0.52 untrained; after 20 iterations 0.735, 0.785, 0.75 (seeds 0-2)
    algo = build(connect4_config(train_batch_size=512, minibatch_size=128, num_epochs=4, lr=3e-3))
    for _ in range(20):
        algo.train()
    assert win_rate(algo, 200, seed=0) > 0.62
    assert ILLEGAL == []


# -- registering, the protocol, options ---------------------------------------------------------------------
class PlainModel(nn.Module):
    """Not a TorchModelV2: any nn.Module with RLlib's __init__, forward and value_function will do."""

    def __init__(self, obs_space, action_space, num_outputs, model_config, name, hidden=16, tag=None, extra=0):
        super().__init__()
        self.options = {"hidden": hidden, "tag": tag, "extra": extra, "num_outputs": num_outputs, "name": name}
        size = int(gym.spaces.flatdim(obs_space))
        self.pi = nn.Sequential(nn.Linear(size, hidden), nn.Tanh(), nn.Linear(hidden, num_outputs + extra))
        self.vf = nn.Linear(size, 1)
        self._value: torch.Tensor | None = None

    def forward(self, input_dict, state, seq_lens):
        x = input_dict["obs_flat"]
        self._value = self.vf(x).squeeze(-1)
        return self.pi(x), state

    def value_function(self):
        return self._value


def test_a_registered_name_builds_and_trains(build):
    ModelCatalog.register_custom_model("my_plain_model", PlainModel)
    algo = build(PPOConfig().environment("CartPole-v1").training(model={"custom_model": "my_plain_model"}, **TINY))
    assert isinstance(algo.get_policy().model.net, PlainModel)
    before = [p.detach().clone() for p in algo.get_policy().model.parameters()]
    assert np.isfinite(algo.train()["approx_kl"])
    assert any(not torch.equal(a, b) for a, b in zip(before, algo.get_policy().model.parameters()))
    assert algo.compute_single_action(np.zeros(4, np.float32), explore=False) in (0, 1)


def test_an_unregistered_name_is_a_config_error_naming_register_custom_model():
    ModelCatalog.register_custom_model("my_plain_model", PlainModel)
    with pytest.raises(ConfigError, match="register_custom_model") as info:
        PPOConfig().environment("CartPole-v1").training(model={"custom_model": "my_plain_modle"}).build()
    assert "my_plain_modle" in str(info.value) and "\n" not in str(info.value)


def test_custom_model_config_reaches_the_models_init(build):
    options = {"hidden": 5, "tag": "from the config"}
    algo = build(
        PPOConfig()
        .environment("CartPole-v1")
        .training(model={"custom_model": PlainModel, "custom_model_config": options}, **TINY)
    )
    net = algo.get_policy().model.net
    assert net.options == {**options, "extra": 0, "num_outputs": 2, "name": "model"}
    assert net.pi[0].out_features == 5


def test_a_model_with_the_wrong_number_of_outputs_is_a_config_error(build):
    algo = build(
        PPOConfig()
        .environment("CartPole-v1")
        .training(model={"custom_model": PlainModel, "custom_model_config": {"extra": 1}}, **TINY)
    )
    with pytest.raises(ConfigError, match="num_outputs=2") as info:
        algo.train()
    assert "\n" not in str(info.value)


class WrongSignature(PlainModel):
    def __init__(self, obs_space, action_space):
        super().__init__(obs_space, action_space, 2, {}, "wrong")


class NotAModule:
    def __init__(self, obs_space, action_space, num_outputs, model_config, name):
        pass


@pytest.mark.parametrize(
    "cls, words",
    [(WrongSignature, "num_outputs, model_config, name"), (NotAModule, "torch.nn.Module")],
    ids=["wrong __init__", "not an nn.Module"],
)
def test_a_model_class_that_does_not_fit_the_protocol_is_refused_in_one_line(cls, words):
    with pytest.raises(ConfigError, match=words) as info:
        PPOConfig().environment("CartPole-v1").training(model={"custom_model": cls}).build()
    assert cls.__name__ in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("algo", ["DQN", "SAC", "TD3"])
def test_algorithms_with_their_own_network_refuse_a_custom_model(algo):
    from rlarena import DQNConfig, SACConfig, TD3Config

    config = {"DQN": DQNConfig, "SAC": SACConfig, "TD3": TD3Config}[algo]()
    config = config.environment("CartPole-v1" if algo == "DQN" else "Pendulum-v1")
    with pytest.raises(ConfigError, match="custom_model"):
        config.training(model={"custom_model": PlainModel}).build().stop()


class DictObsEnv(gym.Env):
    """A Dict observation: an index, an image of bytes and a vector; a Discrete action."""

    observation_space = gym.spaces.Dict(
        {
            "index": gym.spaces.Discrete(3),
            "frame": gym.spaces.Box(0, 255, (5, 6, 3), np.uint8),
            "vec": gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
        }
    )
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.t += 1
        return self.observation_space.sample(), float(action), self.t >= 8, False, {}


class RecordingModel(PlainModel):
    """Keeps the last input_dict it was given."""

    def forward(self, input_dict, state, seq_lens):
        self.last_input = input_dict
        return super().forward(input_dict, state, seq_lens)


def test_a_dict_observation_arrives_as_a_dict_of_float_tensors_and_obs_flat_flattens_it(build):
    algo = build(PPOConfig().environment(DictObsEnv).training(model={"custom_model": RecordingModel}, **TINY))
    net = algo.get_policy().model.net
    algo.train()
    space = DictObsEnv.observation_space
    raw = [space.sample() for _ in range(3)]
    raw[0]["frame"][0, 0, 0], raw[0]["index"] = 200, 2
    batch = {k: np.stack([np.asarray(o[k]) for o in raw]) for k in raw[0]}
    algo.get_policy().compute_actions(batch, explore=False)

    obs = net.last_input["obs"]
    assert isinstance(obs, dict) and set(obs) == {"index", "frame", "vec"}
    assert all(v.dtype == torch.float32 for v in obs.values())
    assert obs["index"].shape == (3, 3)  # one-hot
    np.testing.assert_array_equal(obs["index"].numpy(), np.eye(3)[batch["index"]])
    assert obs["frame"].shape == (3, 5, 6, 3)  # in its shape, unscaled
    np.testing.assert_array_equal(obs["frame"].numpy(), batch["frame"].astype(np.float32))
    assert obs["frame"][0, 0, 0, 0] == 200.0
    np.testing.assert_allclose(obs["vec"].numpy(), batch["vec"])
    flat = net.last_input["obs_flat"]
    expected = torch.cat([obs[k].reshape(3, -1) for k in obs], -1)
    assert flat.shape == (3, 3 + 5 * 6 * 3 + 2)
    torch.testing.assert_close(flat, expected)


def test_a_masked_observation_reaches_the_model_with_its_action_mask(build, connect4):
    algo = build(connect4_config(**TINY).training(model={"custom_model": RecordingModel}))
    env = connect4_env()
    env.reset(seed=0)
    first = env.observe("player_0")
    batch = {k: np.stack([np.asarray(first[k])] * 2) for k in first}
    batch["action_mask"][1] = [0, 0, 0, 1, 0, 0, 0]
    policy = algo.get_policy("learned")
    actions = policy.compute_actions(batch, explore=True)
    assert actions[1] == 3  # the only legal column, whatever the model's logits
    obs = policy.model.net.last_input["obs"]
    assert set(obs) == {"observation", "action_mask"}
    assert obs["observation"].shape == (2, 6, 7, 2) and obs["action_mask"].dtype == torch.float32
    np.testing.assert_array_equal(obs["action_mask"].numpy(), batch["action_mask"])


# -- checkpoints and trust -----------------------------------------------------------------------------------
def test_a_checkpoint_of_a_custom_model_built_here_loads_here(build, track, tmp_path):
    algo = build(
        PPOConfig()
        .environment("CartPole-v1")
        .training(model={"custom_model": PlainModel, "custom_model_config": {"hidden": 7}}, **TINY)
        .debugging(seed=0)
    )
    algo.train()
    restored = track(Algorithm.from_checkpoint(algo.save(tmp_path / "plain")))
    net = restored.get_policy().model.net
    assert type(net) is PlainModel and net.options["hidden"] == 7
    obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    np.testing.assert_array_equal(
        algo.compute_actions(obs, explore=False), restored.compute_actions(obs, explore=False)
    )
    assert np.isfinite(restored.train()["approx_kl"])


MODEL_MODULE = '''
"""A custom model in its own module; importing it writes a marker file."""
from pathlib import Path

import gymnasium as gym
from torch import nn

from rlarena.models import TorchModelV2

Path({marker!r}).write_text("imported")


class TinyModel(TorchModelV2, nn.Module):
    def __init__(self, obs_space, action_space, num_outputs, model_config, name, hidden=4):
        TorchModelV2.__init__(self, obs_space, action_space, num_outputs, model_config, name)
        nn.Module.__init__(self)
        size = int(gym.spaces.flatdim(obs_space))
        self.pi, self.vf = nn.Sequential(nn.Linear(size, hidden), nn.Tanh(), nn.Linear(hidden, num_outputs)), nn.Linear(size, 1)

    def forward(self, input_dict, state, seq_lens):
        self._value = self.vf(input_dict["obs_flat"]).squeeze(-1)
        return self.pi(input_dict["obs_flat"]), state

    def value_function(self):
        return self._value
'''

LOAD_SCRIPT = """
import importlib, os, sys
from rlarena import Algorithm
from rlarena.errors import RLArenaError
from rlarena.models import ModelCatalog

path, module, marker, mode = sys.argv[1:5]
kwargs = {}
if mode == "trusted_modules":
    kwargs["trusted_modules"] = [module]
elif mode == "config_overrides":
    kwargs["config_overrides"] = {"model": {"custom_model": importlib.import_module(module).TinyModel,
                                            "custom_model_config": {"hidden": 6}}}
elif mode == "register":
    ModelCatalog.register_custom_model("tiny_registered", importlib.import_module(module).TinyModel)
try:
    algo = Algorithm.from_checkpoint(path, **kwargs)
except RLArenaError as exc:
    print("REFUSED", type(exc).__name__, str(exc).replace("\\n", " | "))
else:
    net = algo.get_policy().model.net
    print("LOADED", type(net).__module__, type(net).__name__, net.pi[0].out_features, algo.compute_single_action([0.0] * 4, explore=False))
    algo.train()
    print("TRAINED", algo.iteration)
    algo.stop()
print("MODULE IMPORTED" if module in sys.modules else "MODULE NOT IMPORTED")
print("MARKER" if os.path.exists(marker) else "NO MARKER")
"""


@pytest.fixture
def model_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Path]]:
    """(the module, its marker file): a fresh module of TinyModel on sys.path, imported here (the
    marker it wrote removed again), forgotten by sys.modules afterwards."""
    import importlib

    name = f"rlarena_test_tiny_model_{uuid.uuid4().hex[:8]}"
    directory = tmp_path / "modules"
    directory.mkdir()
    marker = tmp_path / "imported.marker"
    (directory / f"{name}.py").write_text(MODEL_MODULE.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(directory))
    module = importlib.import_module(name)
    assert marker.exists()
    marker.unlink()
    yield module, marker
    sys.modules.pop(name, None)


def load_in_a_fresh_process(path: Path, module: Any, marker: Path, mode: str) -> str:
    """What LOAD_SCRIPT prints: Algorithm.from_checkpoint(path) in a new Python, `module`'s directory
    on its PYTHONPATH (importable, never imported unless the load does it)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(module.__file__).parent), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(path), module.__name__, str(marker), mode],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def saved_checkpoint(custom_model: Any, directory: Path) -> Path:
    algo = (
        PPOConfig()
        .environment("CartPole-v1")
        .training(model={"custom_model": custom_model, "custom_model_config": {"hidden": 6}}, **TINY)
        .debugging(seed=0)
        .build()
    )
    try:
        algo.train()
        return Path(algo.save(directory / "checkpoint"))
    finally:
        algo.stop()


@pytest.mark.slow
def test_a_fresh_process_refuses_an_untrusted_model_class_without_importing_it(model_module, tmp_path):
    module, marker = model_module
    path = saved_checkpoint(module.TinyModel, tmp_path)
    out = load_in_a_fresh_process(path, module, marker, "plain")
    assert out.startswith("REFUSED"), out
    refused = out.splitlines()[0]
    assert refused.split()[1] in ("UntrustedCodeError", "CheckpointError", "ConfigError")
    assert "trust" in refused and module.__name__ in refused
    assert "MODULE NOT IMPORTED" in out and "NO MARKER" in out
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["trusted_modules", "config_overrides"])
def test_a_fresh_process_loads_the_model_class_when_trusted_or_passed_again(model_module, tmp_path, mode):
    module, marker = model_module
    path = saved_checkpoint(module.TinyModel, tmp_path)
    out = load_in_a_fresh_process(path, module, marker, mode)
    assert f"LOADED {module.__name__} TinyModel 6" in out, out
    assert "TRAINED 2" in out


@pytest.mark.slow
def test_a_registered_name_loads_in_a_fresh_process_only_once_registered_there(model_module, tmp_path):
    module, marker = model_module
    ModelCatalog.register_custom_model("tiny_registered", module.TinyModel)
    path = saved_checkpoint("tiny_registered", tmp_path)
    out = load_in_a_fresh_process(path, module, marker, "plain")
    assert out.startswith("REFUSED ConfigError"), out
    assert "register_custom_model('tiny_registered'" in out and "NO MARKER" in out
    out = load_in_a_fresh_process(path, module, marker, "register")
    assert f"LOADED {module.__name__} TinyModel 6" in out, out


def forget_trust(obj: Any) -> None:
    """As if `obj` had not been built or registered in this process (the autouse fixture restores it)."""
    for name in [name for name, value in refs._REGISTERED.items() if value is obj]:
        del refs._REGISTERED[name]


def test_the_refusal_of_an_untrusted_model_class_names_the_model_option(model_module, tmp_path):
    from rlarena.errors import UntrustedCodeError

    module, _ = model_module
    path = saved_checkpoint(module.TinyModel, tmp_path)
    forget_trust(module.TinyModel)
    with pytest.raises(UntrustedCodeError, match="model.custom_model") as info:
        Algorithm.from_checkpoint(path)
    assert "config_overrides={'model'" in str(info.value)


def test_passing_only_the_model_class_again_keeps_the_saved_model_options(model_module, tmp_path, track):
    module, _ = model_module
    path = saved_checkpoint(module.TinyModel, tmp_path)  # custom_model_config={"hidden": 6}
    forget_trust(module.TinyModel)
    algo = track(Algorithm.from_checkpoint(path, config_overrides={"model": {"custom_model": module.TinyModel}}))
    assert algo.get_policy().model.net.pi[0].out_features == 6


# -- a custom model with its own state (RLlib's recurrent ModelV2) -------------------------------------------------
SHORT = {"length": 7, "delay": 1}  # RepeatPrevious-v0: episodes of 7 steps + the autoreset step
REPEAT = {"length": 16, "delay": 1}  # what the learning test trains on (chance -0.5, maximum 1.0)


def recurrent_config(
    model: Any = RLlibLSTM, env_config: dict | None = None, num_envs: int = 2, T: int = 12, **training: Any
) -> PPOConfig:
    options = {"train_batch_size": num_envs * T, "minibatch_size": num_envs * T, "num_epochs": 1, **training}
    options_of = {RLlibLSTM: {"lstm_state_size": 8, "initial": 0.5}}  # the others take none
    model_config = {"custom_model": model, "custom_model_config": options_of.get(model, {})}
    return (
        PPOConfig()
        .environment("RepeatPrevious-v0", env_config=SHORT if env_config is None else env_config)
        .env_runners(num_envs_per_env_runner=num_envs)
        .training(model={**model_config, "max_seq_len": 8}, **options)
        .debugging(seed=0)
    )


class SequenceRecorder(TorchModelV2, nn.Module):
    """A GRU written against the protocol's shapes ([B * T] rows, state [B, 8], seq_lens [B]); it records
    what each forward got."""

    calls: ClassVar[list[tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]]] = []

    def __init__(self, obs_space, action_space, num_outputs, model_config, name):
        TorchModelV2.__init__(self, obs_space, action_space, num_outputs, model_config, name)
        nn.Module.__init__(self)
        self.gru = nn.GRU(int(np.prod(obs_space.shape)), 8, batch_first=True)
        self.pi, self.v = nn.Linear(8, num_outputs), nn.Linear(8, 1)

    def get_initial_state(self):
        return [torch.zeros(8)]

    def forward(self, input_dict, state, seq_lens):
        x = input_dict["obs_flat"]
        SequenceRecorder.calls.append((x.detach().clone(), seq_lens.clone(), [s.detach().clone() for s in state]))
        out, h = self.gru(x.reshape(len(seq_lens), -1, x.shape[-1]), state[0].unsqueeze(0))
        self._v = self.v(out).reshape(-1)
        return self.pi(out).reshape(-1, self.num_outputs), [h.squeeze(0)]

    def value_function(self):
        return self._v


def test_a_custom_model_with_its_own_state_gets_rllibs_padded_sequences(build):
    SequenceRecorder.calls = []
    algo = build(recurrent_config(SequenceRecorder))
    assert isinstance(algo.get_policy(), RecurrentPolicy) and algo.get_policy().state_size == 8
    steps = list(SequenceRecorder.calls)  # sampling so far: one step of 2 envs per call
    assert all(list(lens) == [1, 1] and len(x) == 2 and state[0].shape == (2, 8) for x, lens, state in steps)
    SequenceRecorder.calls = []
    algo.train()
    training = [call for call in SequenceRecorder.calls if call[1].max() > 1 or len(call[1]) != 2]
    assert training, "the loss unrolled no sequence"
    seen_padding = False
    for x, lens, state in training:
        B = len(lens)
        assert lens.dtype == torch.int32 and state[0].shape == (B, 8)
        T = len(x) // B
        assert len(x) == B * T and T == int(lens.max()) <= 8  # padded to the longest, never past max_seq_len
        rows = x.reshape(B, T, -1)
        for b in range(B):  # zeros after each sequence's length (RepeatPrevious's observations are one-hot)
            n = int(lens[b])
            assert not rows[b, n:].any()
            # inside it, one-hot steps; then, at most, the zero steps that pad a fragment to whole sequences
            real = rows[b, :n].sum(-1)
            assert real[: int(real.eq(1).sum())].eq(1).all() and real.le(1).all()
            seen_padding |= n < T
    assert seen_padding  # episodes of 7 steps end inside sequences of 8: a sequence stops at an episode's start


def copy_rollout(batch: Any) -> Any:
    from rlarena.rollout.storage import Rollout

    return Rollout(**{k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in vars(batch).items()})


def test_the_stored_state_chains_and_the_loss_unrolls_what_sampling_computed(build):
    algo = build(recurrent_config())
    model = algo.get_policy().model
    first = copy_rollout(algo.runner.sample().batches["default_policy"])
    second = copy_rollout(algo.runner.sample().batches["default_policy"])
    T = len(first.rewards)
    assert not first.state_in[0].any()  # the model's initial state (0.5, -0.5) is stored as zeros
    np.testing.assert_array_equal(second.state_in[0], first.state_in[T])  # carried across fragments
    for batch in (first, second):
        state, step_logits = torch.from_numpy(batch.state_in[0]), []
        with torch.no_grad():
            for t in range(T):
                np.testing.assert_allclose(batch.state_in[t], state.numpy(), atol=1e-6, err_msg=f"step {t}")
                logits, _, state = model.step(torch.from_numpy(batch.obs[t]), state)
                step_logits.append(logits)
                state[torch.from_numpy(~batch.valid[t])] = 0  # observation t + 1 starts an episode
            starts = np.zeros((T, batch.valid.shape[1]), bool)
            starts[1:] = ~batch.valid[:-1]
            assert starts[1:].any()
            unrolled, _, _ = model.unroll(
                torch.from_numpy(batch.obs[:T]), torch.from_numpy(batch.state_in[0]), torch.from_numpy(starts)
            )
        torch.testing.assert_close(unrolled, torch.stack(step_logits), atol=1e-6, rtol=1e-5)
    # the model itself saw its own initial state at an episode's start, not zeros
    h0, c0 = model._state_tensors(torch.zeros(1, 16))
    assert torch.equal(h0, torch.full((1, 8), 0.5)) and torch.equal(c0, torch.full((1, 8), -0.5))


@pytest.mark.parametrize("T", [16, 12, 5], ids=["T=2L", "T=1.5L-padded", "T<L"])
def test_a_tiny_step_has_zero_kl_the_loss_recomputes_sampling(build, T):
    algo = build(recurrent_config(T=T, lr=1e-12))
    for _ in range(3):  # later fragments start mid-episode, from a carried state
        result = algo.train()
        assert result["approx_kl"] == pytest.approx(0.0, abs=1e-7)
        assert result["clip_fraction"] == 0.0


def test_an_rllib_style_recurrent_model_learns_what_needs_memory(build):
    """RepeatPrevious: answer the symbol shown one step before (an MLP stays at chance, -0.5; see
    tests/test_memory_models.py). Seeds 0-2 measured: 0.97-1.0 greedy after 20 iterations."""
    algo = build(
        PPOConfig()
        .environment("RepeatPrevious-v0", env_config=REPEAT)
        .env_runners(num_envs_per_env_runner=8)
        .training(
            model={"custom_model": RLlibLSTM, "max_seq_len": 8},
            lr=3e-3,
            train_batch_size=512,
            minibatch_size=128,
            num_epochs=4,
            gamma=0.9,
        )
        .evaluation(evaluation_duration=40)
        .debugging(seed=0)
    )
    for _ in range(20):
        algo.train()
    assert algo.evaluate()["episode_return_mean"] > 0.6  # greedy, the state carried


@pytest.mark.parametrize("config_class", [A2CConfig, APPOConfig, IMPALAConfig], ids=lambda c: c.__name__[:-6])
def test_a2c_appo_and_impala_train_a_custom_recurrent_model(build, config_class):
    algo = build(
        config_class()
        .environment("RepeatPrevious-v0", env_config=SHORT)
        .env_runners(num_envs_per_env_runner=2)
        .training(model={"custom_model": RLlibLSTM, "max_seq_len": 8}, train_batch_size=24)
        .debugging(seed=0)
    )
    before = [p.detach().clone() for p in algo.get_policy().model.parameters()]
    for _ in range(2):
        result = algo.train()
    assert np.isfinite(result["policy_loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, algo.get_policy().model.parameters(), strict=True))


def test_bc_and_marwil_imitate_a_memory_expert_through_a_custom_recurrent_model(tmp_path):
    from rlarena.algorithms.marwil import BCConfig, MARWILConfig

    env_config = {"length": 8, "delay": 1}
    model = {"custom_model": RLlibLSTM, "max_seq_len": 8}

    record_memory_expert(model, tmp_path / "rec", env_config)
    for config_class in (BCConfig, MARWILConfig):
        algo = (
            config_class()
            .environment("RepeatPrevious-v0", env_config=env_config)
            .offline_data(input_=str(tmp_path / "rec"))
            .training(train_batch_size=256, lr=3e-3, model=model)
            .debugging(seed=0)
            .build()
        )
        try:
            for _ in range(150):
                algo.train()
            # an MLP imitating the same data stays below 0.2 (tests/test_memory_models.py); chance is -0.5
            assert algo.evaluate()["episode_return_mean"] > 0.7, config_class.__name__
        finally:
            algo.stop()


def test_a_checkpoint_of_a_custom_recurrent_model_plays_the_same_episode(build, track, tmp_path):
    algo = build(recurrent_config())
    algo.train()
    restored = track(Algorithm.from_checkpoint(algo.save(tmp_path / "rnn")))
    assert isinstance(restored.get_policy(), RecurrentPolicy)
    env = gym.make("RepeatPrevious-v0", **SHORT)
    obs, _ = env.reset(seed=3)
    states = [algo.get_policy().get_initial_state(), restored.get_policy().get_initial_state()]
    for _ in range(7):
        (a, s0, _), (b, s1, _) = (
            algo.compute_single_action(obs, state=states[0], explore=False),
            restored.compute_single_action(obs, state=states[1], explore=False),
        )
        assert a == b
        np.testing.assert_allclose(s0[0], s1[0], rtol=1e-5, atol=1e-6)
        states = [s0, s1]
        obs, *_ = env.step(a)


class WrongStateModel(SequenceRecorder):
    def forward(self, input_dict, state, seq_lens):
        logits, _ = super().forward(input_dict, state, seq_lens)
        return logits, []


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (
            lambda: (
                PPOConfig().environment("CartPole-v1").training(model={"custom_model": RLlibLSTM, "use_lstm": True})
            ),
            r"use_lstm=True with a custom_model: .*get_initial_state",
        ),
        (
            lambda: (
                PPOConfig()
                .environment(DictObsEnv)
                .training(model={"custom_model": RLlibLSTM, "lstm_use_prev_action": True})
            ),
            r"lstm_use_prev_action",
        ),
        (
            lambda: (
                PPOConfig()
                .environment(MultiAgentArena, env_config={"ts": 25})
                .training(model={"custom_model": RLlibLSTM})
            ),
            r"RLlibLSTM keeps its own state .* multi-agent",
        ),
        (lambda: recurrent_config(WrongStateModel), r"WrongStateModel.forward returned a state of 0 tensors"),
    ],
    ids=["use_lstm", "prev_action", "multi-agent", "wrong state"],
)
def test_what_a_custom_recurrent_model_cannot_do_is_refused_in_one_line(make, error):
    algo = None
    with pytest.raises(ConfigError, match=error) as info:
        algo = make().build()
        algo.train()  # what forward returns is known at its first call
    if algo is not None:
        algo.stop()
    assert "\n" not in str(info.value)
