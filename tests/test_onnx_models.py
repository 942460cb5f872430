"""ONNX export of every encoder and memory: uint8 frames through the CNN, Dict/Tuple/MultiBinary
observations packed, compound and masked actions, a user's own model, an LSTM and a GRU carrying
their state. Over a whole episode of a small env, onnxruntime's outputs (and next state) equal
torch's and OnnxPolicy's greedy actions are the torch policy's, each backend carrying its own
state; the metadata round trip; forged metadata is refused in one line; `rollout --onnx` carries a
recurrent state without torch."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import TINY_TRAINING, RLlibLSTM, tiny_config
from gymnasium import spaces
from torch import nn

from rlarena import CheckpointError, ConfigError
from rlarena.cli.main import main
from rlarena.export.onnx import (
    FORMAT,
    LOG_STD,
    OBS_SPACE,
    PACKING,
    STATE_SIZE,
    OnnxPolicy,
    RecurrentOnnxPolicy,
)
from rlarena.models import FLOAT_MIN, TorchFC, TorchModelV2
from rlarena.policies.policy import MASKED_LOGIT, Recurrent, row, stack_obs

pytest.importorskip("onnxscript")
RTOL, ATOL = 1e-4, 1e-5  # float32 rounding of two backends (tests/test_onnx.py says why relative)
EPISODE = 12  # steps of a SpacesEnv episode


def box(*shape: int) -> spaces.Box:
    return spaces.Box(-1.0, 1.0, shape, np.float32)


def case_spaces(case: str) -> tuple[gym.Space, gym.Space]:
    """(observation space, action space) of each case's env; fresh objects (a space holds its RNG)."""
    if case == "cnn":  # one HWC uint8 frame: the CNN alone; Dict actions
        return spaces.Box(0, 255, (12, 12, 3), np.uint8), spaces.Dict(
            {"fire": spaces.MultiBinary(1), "move": spaces.Discrete(3)}
        )
    if case == "dict_tuple":  # every leaf kind but images, nested; every action part
        obs = spaces.Dict(
            {
                "bits": spaces.MultiBinary(3),
                "grid": spaces.MultiDiscrete([3, 5]),
                "pos": spaces.Tuple((spaces.Discrete(4, start=1), box(2))),
            }
        )
        return obs, spaces.Tuple((spaces.Discrete(3), spaces.MultiDiscrete([2, 3]), spaces.MultiBinary(2), box(2)))
    if case == "masked_multidiscrete":  # a flat vector (the raw input) and a mask over two components
        return spaces.Dict({"action_mask": spaces.MultiBinary(7), "observation": box(3)}), spaces.MultiDiscrete([3, 4])
    if case == "custom_model":  # a user's model reads the whole observation, its mask included
        return spaces.Dict({"action_mask": spaces.MultiBinary(5), "observation": box(4)}), spaces.Discrete(5)
    if case == "gru":  # memory over a packed Dict, masked categoricals with Bernoulli bits after them
        obs = spaces.Dict({"action_mask": spaces.MultiBinary(7), "pos": spaces.Discrete(5), "vec": box(2)})
        return obs, spaces.Tuple((spaces.MultiDiscrete([3, 4]), spaces.MultiBinary(2)))
    raise KeyError(case)


MASKS = {"masked_multidiscrete": (3, 4), "custom_model": (5,), "gru": (3, 4)}  # categorical sizes a mask covers


class SpacesEnv(gym.Env):
    """Random observations of a case's spaces (config["case"]) for EPISODE steps; a mask with at least one
    legal choice per categorical component, and step() refuses an illegal action. Reward 1 per step."""

    def __init__(self, config: dict | None = None):
        self.case = (config or {})["case"]
        self.observation_space, self.action_space = case_spaces(self.case)
        self.mask: np.ndarray | None = None
        self.t = 0

    def _obs(self) -> Any:
        obs = self.observation_space.sample()
        if self.case in MASKS:
            parts = []
            for n in MASKS[self.case]:
                legal = self.np_random.random(n) < 0.5
                legal[self.np_random.integers(n)] = True
                parts.append(legal)
            self.mask = np.concatenate(parts)
            obs["action_mask"] = self.mask.astype(np.int8)
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.observation_space.seed(int(self.np_random.integers(2**31)))
        self.t = 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if self.mask is not None:
            categorical = action[0] if isinstance(action, tuple) else action
            chosen, offset = [], 0
            for a, n in zip(np.atleast_1d(categorical), MASKS[self.case], strict=True):
                chosen.append(offset + int(a))
                offset += n
            assert self.mask[chosen].all(), f"illegal action {action} under the mask {self.mask.astype(int)}"
        self.t += 1
        return self._obs(), 1.0, False, self.t >= EPISODE, {}


class MaskModel(TorchModelV2, nn.Module):
    """The Connect Four blog's Connect4MaskModel: RLlib's TorchFC over the observation, illegal logits
    pushed to FLOAT_MIN."""

    def __init__(self, obs_space, action_space, num_outputs, model_config, name, **kwargs):
        orig_space = getattr(obs_space, "original_space", obs_space)
        TorchModelV2.__init__(self, obs_space, action_space, num_outputs, model_config, name, **kwargs)
        nn.Module.__init__(self)
        self.internal_model = TorchFC(orig_space["observation"], action_space, num_outputs, model_config, name + "_in")

    def forward(self, input_dict, state, seq_lens):
        action_mask = input_dict["obs"]["action_mask"]
        logits, _ = self.internal_model({"obs": input_dict["obs"]["observation"]})
        inf_mask = torch.clamp(torch.log(action_mask), min=FLOAT_MIN)
        return logits + inf_mask, state

    def value_function(self):
        return self.internal_model.value_function()


MODELS: dict[str, dict] = {
    "cnn": {},
    "dict_tuple": {},
    "masked_multidiscrete": {},
    "custom_model": {"custom_model": MaskModel},
    "lstm": {"use_lstm": True, "lstm_cell_size": 8},
    "gru": {"use_gru": True, "lstm_cell_size": 8},
    # RLlib's recurrent custom model: an nn.LSTM with its own (non-zero) initial state
    "custom_rnn": {"custom_model": RLlibLSTM, "custom_model_config": {"lstm_state_size": 8, "initial": 0.5}},
}
PACKED = {
    "cnn": "observation",
    "dict_tuple": "observation",
    "custom_model": "whole",
    "gru": "observation",
    "custom_rnn": "whole",
}
MEMORY_ENV = {"lstm", "custom_rnn"}  # cases trained and played on RepeatPrevious-v0


class Exported(dict):
    """case -> (torch policy, path); a case whose export failed raises its error where a test asks for it."""

    def __getitem__(self, case: str) -> tuple[Any, Any]:
        value = super().__getitem__(case)
        if isinstance(value, Exception):
            raise value
        return value


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """case -> (torch policy, path of its .onnx), each built and exported once for the module (an
    export takes 2 to 4 s on 2 cores, and the exporter's start-up as much again)."""
    root, out, algos = tmp_path_factory.mktemp("onnx_models"), {}, []
    for case, model in MODELS.items():
        env = "RepeatPrevious-v0" if case in MEMORY_ENV else SpacesEnv
        config = tiny_config(env, num_envs=1, model={**TINY_TRAINING["model"], **model})
        if env is SpacesEnv:
            config = config.environment(SpacesEnv, env_config={"case": case})
        algo = config.build()
        algos.append(algo)
        try:
            out[case] = (algo.get_policy(), algo.export_onnx(root / f"{case}.onnx"))
        except ConfigError as exc:  # fails that case's tests only (Exported.__getitem__)
            out[case] = exc
    yield Exported(out)
    for algo in algos:
        algo.stop()


def torch_outputs(policy, batch: Any, state: np.ndarray | None) -> list[np.ndarray]:
    """What the torch policy computes: its preprocessing, the model (one step from `state`), illegal
    categorical logits at MASKED_LOGIT as in sampling."""
    x = torch.from_numpy(policy.normalize(policy.flatten(batch)))
    with torch.no_grad():
        out = policy.model(x) if state is None else policy.model.step(x, torch.from_numpy(state))
    out = [t.numpy().copy() for t in out]
    mask = policy.action_mask(batch)
    if mask is not None:
        n = mask.shape[1]
        out[0][:, :n] = np.where(mask, out[0][:, :n], MASKED_LOGIT)
    return out


def assert_same_actions(got: Any, want: Any) -> None:
    """Equal env actions: the same structure, indices and bits equal, Box values to float32 rounding."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys()
        for key in want:
            assert_same_actions(got[key], want[key])
    elif isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert_same_actions(g, w)
    else:
        got, want = np.asarray(got), np.asarray(want)
        assert got.shape == want.shape and got.dtype == want.dtype, (got, want)
        if np.issubdtype(want.dtype, np.floating):
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
        else:
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", list(MODELS))
def test_onnxruntime_plays_an_episode_as_torch_does(exported, case):
    policy, path = exported[case]
    served = OnnxPolicy(path)
    recurrent = isinstance(policy, Recurrent)
    # the metadata round trip: what the served policy reads is what the trained one is
    meta = served.session.get_modelmeta().custom_metadata_map
    assert meta[FORMAT] == "2"  # packed rows, compound actions or a state: files older rlarena refuses
    assert served.observation_space == policy.observation_space and served.action_space == policy.action_space
    assert served.masked == policy.masked and served.mask_size == (policy.mask_size or 0)
    assert meta.get(PACKING) == PACKED.get(case)
    if policy.obs_layout is not None:
        assert served.obs_layout is not None and served.obs_layout.dim == policy.obs_layout.dim
        assert served.obs_layout.dtype == policy.obs_layout.dtype
        dtype = "tensor(uint8)" if policy.obs_layout.dtype == np.uint8 else "tensor(float)"
        assert served.session.get_inputs()[0].type == dtype
    names = [i.name for i in served.session.get_inputs()]
    assert names == [
        "obs" if case in PACKED else "observation",
        *(["action_mask"] if policy.masked else []),
        *(["state_in"] if recurrent else []),
    ]
    assert [o.name for o in served.session.get_outputs()][2:] == (["state_out"] if recurrent else [])
    assert isinstance(served, Recurrent) == recurrent == isinstance(served, RecurrentOnnxPolicy)
    if recurrent:
        assert served.state_size == policy.state_size

    env = gym.make("RepeatPrevious-v0") if case in MEMORY_ENV else SpacesEnv({"case": case})
    obs, _ = env.reset(seed=0)
    state_torch = policy.initial_state(1) if recurrent else None
    state_onnx = served.initial_state(1) if recurrent else None
    for step in range(1000):
        batch = stack_obs([obs])
        want = torch_outputs(policy, batch, state_torch)
        got = served.compute_outputs_with_state(batch, state_onnx) if recurrent else served.compute_outputs(batch)
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL, err_msg=f"{case}, step {step}")
        if recurrent:
            action, state_torch = policy.compute_actions_with_state(batch, state_torch, explore=False)
            served_action, state_onnx = served.compute_actions_with_state(batch, state_onnx, explore=False)
        else:
            action = policy.compute_actions(batch, explore=False)
            served_action = served.compute_actions(batch, explore=False)
        assert_same_actions(served_action, action)
        obs, _, terminated, truncated, _ = env.step(row(action, 0))
        if terminated or truncated:
            break
    assert step >= EPISODE - 1  # a whole episode
    # one file serves any batch (each row from the initial state, for a recurrent policy)
    batch = stack_obs([env.reset(seed=seed)[0] for seed in range(5)])
    state = policy.initial_state(5) if recurrent else None
    got = served.compute_outputs_with_state(batch, state) if recurrent else served.compute_outputs(batch)
    for g, w in zip(got, torch_outputs(policy, batch, state), strict=True):
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)
    # sampled actions have the env's structure, legal and within bounds (SpacesEnv.step checks the mask)
    if not recurrent:
        obs, _ = env.reset(seed=1)
        for _ in range(EPISODE):
            action = served.compute_single_action(obs, explore=True)
            assert env.action_space.contains(action), action
            obs, *_ = env.step(action)
    env.close()


def test_sampled_compound_actions_follow_masks_and_bounds(exported):
    policy, path = exported["gru"]
    served = OnnxPolicy(path, seed=0)
    env = SpacesEnv({"case": "gru"})
    obs, _ = env.reset(seed=3)
    state = served.initial_state(1)
    for _ in range(EPISODE):  # step() refuses an illegal sample
        action, state = served.compute_actions_with_state(stack_obs([obs]), state, explore=True)
        assert env.action_space.contains(row(action, 0))
        obs, *_ = env.step(row(action, 0))
    # compute_actions acts from the initial state, as the torch policy's does
    batch = stack_obs([env.reset(seed=4)[0] for _ in range(5)])
    assert_same_actions(served.compute_actions(batch, explore=False), policy.compute_actions(batch, explore=False))
    with pytest.raises(CheckpointError, match="has no recurrent state"):
        RecurrentOnnxPolicy(exported["cnn"][1])


def forged(tmp_path, path, key: str, value: str | None):
    """A copy of the .onnx at `path` with metadata `key` set to `value` (None: removed)."""
    import onnx

    model = onnx.load(path)
    props = {p.key: p.value for p in model.metadata_props}
    if value is None:
        props.pop(key)
    else:
        props[key] = value
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    out = tmp_path / "forged.onnx"
    onnx.save(model, out)
    return out


def wider_obs_space() -> str:
    """dict_tuple's observation space with one more bit: its packed rows one column wider."""
    from rlarena.envs.spaces import space_to_json

    obs = case_spaces("dict_tuple")[0]
    obs.spaces["bits"] = spaces.MultiBinary(4)
    return json.dumps(space_to_json(obs))


@pytest.mark.parametrize(
    "case, key, value, message",
    [
        ("gru", STATE_SIZE, "1000000000000", "rlarena.state_size is '1000000000000', not a state size from 1 to 8192"),
        ("gru", STATE_SIZE, "9", r"state_in input is \[8\] wide; the metadata say \[9\]"),
        ("gru", STATE_SIZE, None, r"has inputs \(obs, action_mask, state_in\) .* has inputs \(obs, action_mask\)"),
        ("dict_tuple", OBS_SPACE, '{"type": "Dict", "spaces": {"a": {"type": "Banana"}}}', "at a: unknown space type"),
        ("dict_tuple", OBS_SPACE, "{", "rlarena.observation_space is not JSON"),
        ("dict_tuple", OBS_SPACE, "wider", r"obs input is \[8\] wide; the metadata say \[9\]"),
        ("dict_tuple", PACKING, "everything", "rlarena.obs_packing is 'everything', not one of observation, whole"),
        ("dict_tuple", PACKING, None, "is not a flat vector, but rlarena.obs_packing is not set"),
        ("dict_tuple", LOG_STD, "[0.0]", r"rlarena.log_std must be a list of 2 finite numbers, got \[0.0\]"),
        (
            "masked_multidiscrete",
            "rlarena.action_space",
            '{"type": "Discrete", "n": 3}',
            "action_mask space .* does not fit",
        ),
        ("masked_multidiscrete", LOG_STD, "[0.0]", None),  # no Box part: a log-std says nothing, and is ignored
    ],
    ids=[
        "huge-state",
        "state-mismatch",
        "no-state-size",
        "unknown-space",
        "not-json",
        "wider-space",
        "bad-packing",
        "no-packing",
        "bad-log-std",
        "mask-mismatch",
        "stray-log-std",
    ],
)
def test_forged_metadata_is_refused_in_one_line(exported, tmp_path, capsys, case, key, value, message):
    bad = forged(tmp_path, exported[case][1], key, wider_obs_space() if value == "wider" else value)
    if message is None:
        OnnxPolicy(bad)
        return
    with pytest.raises(CheckpointError, match=message) as info:
        OnnxPolicy(bad)
    assert len(str(info.value).splitlines()) == 1 and "corrupted rlarena metadata" in str(info.value)
    assert main(["rollout", "--onnx", str(bad), "--env", "CartPole-v1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and re.search(message, err)


def test_rollout_onnx_carries_the_state_without_torch(exported, tmp_path):
    """`rollout --onnx` of an LSTM: the state goes from step to step and back to zeros at each episode's
    start, so its returns are those of the torch policy played the same way."""
    policy, path = exported["lstm"]
    code = (
        "import sys; sys.modules['torch'] = None; from rlarena.cli.main import main; "
        f"rc = main(['rollout', '--onnx', {str(path)!r}, '--env', 'RepeatPrevious-v0', '--episodes', '3', "
        "'--seed', '5']); "
        "print('torch loaded' if any(m.startswith('torch.') for m in sys.modules) else 'no torch'); sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "no torch"
    returns = re.findall(r"^episode \d: return (\S+),", proc.stdout, re.MULTILINE)
    env = gym.make("RepeatPrevious-v0")
    want = []
    for episode in range(3):
        obs, _ = env.reset(seed=5 + episode)
        state, total, done = policy.initial_state(1), 0.0, False
        while not done:
            action, state = policy.compute_actions_with_state(obs[None], state, explore=False)
            obs, reward, terminated, truncated, _ = env.step(action[0])
            total, done = total + float(reward), terminated or truncated
        want.append(f"{total:.2f}")
    assert returns == want, proc.stdout
