"""Any observation and action space for the trainable policies: the catalog's encoder (rlarena.nn.catalog:
uint8 images through a CNN, Dict/Tuple/MultiBinary packed per leaf, indices one-hot), compound actions
(rlarena.nn.distributions: ActionLayout and the Product distribution), action masks over MultiDiscrete
choices, frames kept as bytes in rollouts and replay, checkpoints, and the probe envs PPO and DQN solve
with them in seconds.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlarena import Algorithm, DQNConfig, MultiAgentEnv, PPOConfig, SACConfig
from rlarena.errors import ConfigError
from rlarena.nn.catalog import NATURE_UNITS, ObsEncoder, ObsLayout
from rlarena.nn.distributions import ActionLayout, Product, masked
from rlarena.policies.policy import MASKED_LOGIT


# -- probe envs (module level: a checkpoint names them "test_spaces_models:ClassName") ---------------------
class FlagEnv(gym.Env):
    """Dict obs {"bits": MultiBinary(2) noise, "flag": Discrete(3, start=1), "noise": Box(2)}; MultiDiscrete([3, 2])
    actions; reward 0.5 for action[0] == flag - 1 and 0.5 for action[1] == flag % 2; one step.

    Only the Discrete key tells the answer: greedy optimum 1.0; a uniform policy gets 0.5/3 + 0.5/2 = 0.42."""

    def __init__(self, config=None):
        self.observation_space = spaces.Dict(
            {
                "bits": spaces.MultiBinary(2),
                "flag": spaces.Discrete(3, start=1),
                "noise": spaces.Box(-1.0, 1.0, (2,), np.float32),
            }
        )
        self.action_space = spaces.MultiDiscrete([3, 2])
        self.flag = 1

    def _obs(self):
        self.flag = int(self.np_random.integers(1, 4))
        return {
            "bits": self.np_random.integers(0, 2, 2).astype(np.int8),
            "flag": self.flag,
            "noise": self.np_random.uniform(-1.0, 1.0, 2).astype(np.float32),
        }

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        reward = 0.5 * (int(action[0]) == self.flag - 1) + 0.5 * (int(action[1]) == self.flag % 2)
        return self._obs(), reward, True, False, {}


IMAGE_SHAPES = {"hwc": (10, 10, 3), "chw": (3, 10, 10), "grey": (10, 10)}


class BrightHalfEnv(gym.Env):
    """A 10x10 uint8 frame (config["layout"]: "hwc", "chw" or "grey") black but for one bright pixel;
    Discrete(2): which half (left 0, right 1) the pixel is in; reward 1 if right; one step.

    Greedy optimum 1.0; chance 0.5."""

    def __init__(self, config=None):
        self.layout = (config or {}).get("layout", "hwc")
        self.observation_space = spaces.Box(0, 255, IMAGE_SHAPES[self.layout], np.uint8)
        self.action_space = spaces.Discrete(2)
        self.side = 0

    def _obs(self):
        self.side = int(self.np_random.integers(2))
        row, col = int(self.np_random.integers(10)), int(self.np_random.integers(5)) + 5 * self.side
        frame = np.zeros((10, 10, 3), np.uint8)
        frame[row, col, int(self.np_random.integers(3))] = 255  # one channel of it, at random
        if self.layout == "chw":
            return np.ascontiguousarray(frame.transpose(2, 0, 1))
        return frame.max(-1) if self.layout == "grey" else frame

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        reward = float(int(action) == self.side)  # before _obs() draws the next side
        return self._obs(), reward, True, False, {}


class MaskedChoicesEnv(gym.Env):
    """{"observation": Box(2), "action_mask": sum(nvec) entries} with MultiDiscrete([3, 4]) actions; each step
    a random mask with at least one legal choice per component; step() raises on an illegal one.
    config: "mask" ("binary": MultiBinary, "box": a float Box), "mask_size" (default sum(nvec))."""

    NVEC = (3, 4)

    def __init__(self, config=None):
        config = config or {}
        size = config.get("mask_size", sum(self.NVEC))
        mask = spaces.MultiBinary(size) if config.get("mask", "binary") == "binary" else spaces.Box(0, 1, (size,))
        self.observation_space = spaces.Dict({"action_mask": mask, "observation": spaces.Box(-1, 1, (2,), np.float32)})
        self.action_space = spaces.MultiDiscrete(self.NVEC)
        self.mask = np.ones(sum(self.NVEC), bool)
        self.chosen = np.zeros(sum(self.NVEC), np.int64)  # how often each choice was taken, over the env's life
        self.t = 0

    def _obs(self):
        mask, offset = np.zeros(sum(self.NVEC), bool), 0
        for n in self.NVEC:
            legal = self.np_random.random(n) < 0.5
            legal[self.np_random.integers(n)] = True
            mask[offset : offset + n], offset = legal, offset + n
        self.mask = mask
        dtype = self.observation_space["action_mask"].dtype
        return {"action_mask": mask.astype(dtype), "observation": self.np_random.uniform(-1, 1, 2).astype(np.float32)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        offset = 0
        for a, n in zip(np.asarray(action), self.NVEC, strict=True):
            if not self.mask[offset + int(a)]:
                raise AssertionError(f"illegal action {action} under the mask {self.mask.astype(int)}")
            self.chosen[offset + int(a)] += 1
            offset += n
        self.t += 1
        return self._obs(), float(action[0] == 0), False, self.t >= 8, {}


class TupleActionEnv(gym.Env):
    """Dict obs {"bits": MultiBinary(2), "pos": Tuple(Discrete(3), Box(1))}; Tuple(Discrete(3), Box(1)) actions
    (checked by step()); reward 0.5 [k == pos[0]] - 0.5 |a - pos[1]|; one step."""

    def __init__(self, config=None):
        box = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.observation_space = spaces.Dict(
            {"bits": spaces.MultiBinary(2), "pos": spaces.Tuple((spaces.Discrete(3), box))}
        )
        self.action_space = spaces.Tuple((spaces.Discrete(3), box))
        self.k, self.x = 0, np.zeros(1, np.float32)

    def _obs(self):
        self.k, self.x = int(self.np_random.integers(3)), self.np_random.uniform(-1, 1, 1).astype(np.float32)
        return {"bits": self.np_random.integers(0, 2, 2).astype(np.int8), "pos": (self.k, self.x.copy())}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        if not self.action_space.contains(action):
            raise AssertionError(f"{action!r} is not in {self.action_space}")
        k, a = action
        reward = 0.5 * (int(k) == self.k) - 0.5 * float(abs(a[0] - self.x[0]))
        return self._obs(), reward, True, False, {}


class SpacesEnv(gym.Env):
    """Random observations of config["obs"] and a constant reward; step() checks the action is in
    config["act"]. For tests about what builds and what an action looks like, not about learning."""

    def __init__(self, config):
        self.observation_space, self.action_space = config["obs"], config["act"]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.observation_space.seed(int(self.np_random.integers(2**31)))
        return self.observation_space.sample(), {}

    def step(self, action):
        if not self.action_space.contains(action):
            raise AssertionError(f"{action!r} is not in {self.action_space}")
        return self.observation_space.sample(), 0.0, True, False, {}


SMALL = {"train_batch_size": 128, "minibatch_size": 64, "num_epochs": 2, "model": {"fcnet_hiddens": [16]}}
IMAGE_MODEL = {"post_fcnet_hiddens": [32]}  # the heads on 32 units after the CNN


def ppo(env, seed: int = 0, env_config: dict | None = None, **training) -> PPOConfig:
    return (
        PPOConfig()
        .environment(env, env_config=env_config or {})
        .env_runners(num_envs_per_env_runner=4)
        .training(**{**SMALL, **training})
        .evaluation(evaluation_duration=100)
        .debugging(seed=seed)
    )


def dqn(env, seed: int = 0, env_config: dict | None = None, **training) -> DQNConfig:
    fast = {
        "lr": 1e-3,
        "train_batch_size": 32,
        "num_steps_sampled_before_learning_starts": 64,
        "target_network_update_freq": 32,
        "min_sample_timesteps_per_iteration": 256,
        "epsilon": [[0, 1.0], [1000, 0.05]],
        "replay_buffer_config": {"capacity": 4096},
        "model": IMAGE_MODEL,
    }
    return (
        DQNConfig()
        .environment(env, env_config=env_config or {})
        .env_runners(num_envs_per_env_runner=4)
        .training(**{**fast, **training})
        .evaluation(evaluation_duration=100)
        .debugging(seed=seed)
    )


def batch_of(space: gym.Space, samples: list) -> object:
    """Samples of `space` as one batch: arrays stacked per leaf, Dict and Tuple kept (a vector env's form)."""
    if isinstance(space, spaces.Dict):
        return {k: batch_of(sub, [s[k] for s in samples]) for k, sub in space.spaces.items()}
    if isinstance(space, spaces.Tuple):
        return tuple(batch_of(sub, [s[i] for s in samples]) for i, sub in enumerate(space.spaces))
    return np.stack([np.asarray(s) for s in samples])


def sample_batch(space: gym.Space, n: int, seed: int = 0) -> object:
    space.seed(seed)
    return batch_of(space, [space.sample() for _ in range(n)])


def assert_same_batch(a, b) -> None:
    """Equal nested batches (Dict, Tuple, arrays), dtypes and shapes included."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for k in a:
            assert_same_batch(a[k], b[k])
    elif isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_batch(x, y)
    else:
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), (type(a), type(b))
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
        np.testing.assert_array_equal(a, b)


def image(shape) -> spaces.Box:
    return spaces.Box(0, 255, shape, np.uint8)


VEC = spaces.Box(-1.0, 1.0, (2,), np.float32)


# -- ObsLayout and the encoder -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "space, dtype",
    [
        (image((84, 84, 3)), np.uint8),  # a colour frame
        (image((4, 84, 84)), np.uint8),  # a frame stack
        (spaces.MultiBinary(5), np.uint8),
        (spaces.Dict({"frame": image((10, 10)), "idx": spaces.Discrete(256), "bits": spaces.MultiBinary(3)}), np.uint8),
        (spaces.Tuple((spaces.Box(0, 9, (3,), np.uint8), spaces.MultiDiscrete([4, 5]))), np.uint8),
        (spaces.Dict({"frame": image((10, 10, 3)), "v": VEC}), np.float32),  # a float leaf: floats
        (spaces.Dict({"idx": spaces.Discrete(257)}), np.float32),  # an index past a byte
        (spaces.Dict({"idx": spaces.Discrete(3), "n": spaces.Box(-5, 5, (2,), np.int8)}), np.float32),  # negative ints
    ],
)
def test_the_packed_row_is_bytes_only_when_every_leaf_fits_one(space, dtype):
    layout = ObsLayout(space)
    assert layout.dtype == dtype
    packed = layout.pack(sample_batch(space, 3))
    assert packed.dtype == dtype and packed.shape == (3, layout.dim)


def test_pack_lays_nested_dict_and_tuple_leaves_side_by_side_in_the_spaces_order():
    space = spaces.Dict(
        {
            "a": spaces.Tuple((spaces.Discrete(3, start=1), spaces.Box(-9.0, 9.0, (2,), np.float32))),
            "b": spaces.MultiBinary((2, 2)),
            "c": spaces.MultiDiscrete([2, 3], start=[0, -1]),
        }
    )
    layout = ObsLayout(space)
    batch = {
        "a": (np.array([1, 3]), np.array([[0.5, -1.5], [2.0, 3.0]], np.float32)),
        "b": np.array([[[1, 0], [0, 1]], [[0, 0], [1, 1]]], np.int8),
        "c": np.array([[1, -1], [0, 1]]),
    }
    # Discrete: its index from start (3 -> 2); Box: its values; MultiBinary: its bits; MultiDiscrete: from start
    expected = np.array(
        [
            [0, 0.5, -1.5, 1, 0, 0, 1, 1, 0],
            [2, 2.0, 3.0, 0, 0, 1, 1, 0, 2],
        ],
        np.float32,
    )
    assert [leaf.name for leaf in layout.leaves] == ["['a'][0]", "['a'][1]", "['b']", "['c']"]
    assert layout.dtype == np.float32 and layout.dim == 9
    np.testing.assert_array_equal(layout.pack(batch), expected)
    # flat features (SAC's, TD3's): indices one-hot, the rest as they are
    features = layout.numpy_features(layout.pack(batch))
    assert features.shape == (2, layout.feature_dim) == (2, 3 + 2 + 4 + 2 + 3)
    np.testing.assert_array_equal(features[0], [1, 0, 0, 0.5, -1.5, 1, 0, 0, 1, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(features[1], [0, 0, 1, 2.0, 3.0, 0, 0, 1, 1, 1, 0, 0, 0, 1])


def test_the_encoder_one_hots_indices_and_passes_vectors_and_bits_through():
    space = spaces.Dict({"bits": spaces.MultiBinary(2), "idx": spaces.Discrete(3, start=1), "v": VEC})
    layout = ObsLayout(space)
    encoder = ObsEncoder(layout)
    batch = {"bits": np.array([[1, 0], [0, 1]], np.int8), "idx": np.array([3, 1]), "v": np.array([[0.5, -0.5], [1, 0]])}
    out = encoder(torch.from_numpy(layout.pack(batch)))
    assert encoder.out_dim == 2 + 3 + 2
    torch.testing.assert_close(out, torch.tensor([[1, 0, 0, 0, 1, 0.5, -0.5], [0, 1, 1, 0, 0, 1, 0]]))


@pytest.mark.parametrize("shape, channels_first", [((4, 84, 84), True), ((84, 84, 3), False)])
def test_frames_of_84x84_go_through_the_nature_cnn_to_512_features(shape, channels_first):
    layout = ObsLayout(image(shape))
    (leaf,) = layout.images
    assert leaf.channels_first == channels_first
    encoder = ObsEncoder(layout)
    assert [(c.out_channels, c.kernel_size, c.stride) for c in encoder.images[0].convs] == [
        (32, (8, 8), (4, 4)),
        (64, (4, 4), (2, 2)),
        (64, (3, 3), (1, 1)),
    ]
    out = encoder(torch.from_numpy(layout.pack(sample_batch(image(shape), 2))))
    assert out.shape == (2, NATURE_UNITS) == (2, 512) and encoder.out_dim == 512
    assert out.dtype == torch.float32


def test_an_hwc_frame_is_convolved_as_its_chw_transpose_and_scaled_by_1_over_255():
    hwc, chw = ObsLayout(image((40, 36, 3))), ObsLayout(image((3, 40, 36)))
    torch.manual_seed(0)
    enc_hwc, enc_chw = ObsEncoder(hwc), ObsEncoder(chw)
    enc_chw.load_state_dict(enc_hwc.state_dict())
    frames = sample_batch(image((40, 36, 3)), 3)
    with torch.no_grad():
        out = enc_hwc(torch.from_numpy(hwc.pack(frames)))
        torch.testing.assert_close(out, enc_chw(torch.from_numpy(chw.pack(frames.transpose(0, 3, 1, 2).copy()))))
        # by hand: CHW floats in [0, 1], three ReLU convolutions, flattened, the 512-unit ReLU layer
        cnn = enc_hwc.images[0]
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
        for conv in cnn.convs:
            x = torch.relu(conv(x))
        torch.testing.assert_close(out, torch.relu(cnn.fc(x.flatten(1))))


@pytest.mark.parametrize("shape", [(10, 10), (35, 35), (1, 12, 12)])
def test_frames_under_36x36_and_grey_frames_get_two_3x3_layers(shape):
    layout = ObsLayout(image(shape))
    (leaf,) = layout.images
    assert leaf.kind == "image" and leaf.chw[0] == 1  # a 2-D frame is one grey channel
    encoder = ObsEncoder(layout)
    h, w = leaf.chw[1:]
    assert encoder.images[0].fc is None
    assert encoder.out_dim == 32 * (h - 4) * (w - 4)
    assert encoder(torch.from_numpy(layout.pack(sample_batch(image(shape), 2)))).shape == (2, encoder.out_dim)


def test_conv_filters_choose_the_cnn_and_ones_that_do_not_fit_are_a_config_error(build):
    env_config = {"layout": "hwc"}
    model = {"conv_filters": [[8, 3, 2], [4, 2, 1]], "conv_activation": "elu", "post_fcnet_hiddens": [16]}
    algo = build(ppo(BrightHalfEnv, env_config=env_config, model=model))
    cnn = algo.get_policy().model.features.images[0]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in cnn.convs] == [(8, 3, 2), (4, 2, 1)]
    assert cnn.out_dim == 4 * 3 * 3  # 10 -> 4 -> 3
    assert algo.get_policy().model.pi_layers[0].in_features == 36
    algo.train()

    too_big = {"conv_filters": [[16, 3, 1], [16, 9, 1]]}  # 10x10 -> 8x8: a 9x9 kernel does not fit
    with pytest.raises(ConfigError, match=r"conv_filters\[1\]") as info:
        ppo(BrightHalfEnv, env_config=env_config, model=too_big).build()
    assert "does not fit" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=r"conv_filters\[0\]"):
        ppo(BrightHalfEnv, env_config=env_config, model={"conv_filters": [[16, 3]]}).build()


# -- ActionLayout -------------------------------------------------------------------------------------------
ACTION_SPACES = {
    "MultiDiscrete": spaces.MultiDiscrete([3, 4]),
    "MultiDiscrete(start)": spaces.MultiDiscrete([3, 4], start=[1, -2]),
    "MultiBinary": spaces.MultiBinary((2, 3)),
    "Tuple(Discrete, Box)": spaces.Tuple((spaces.Discrete(3, start=2), spaces.Box(-1.0, 2.0, (2,), np.float32))),
    "Dict(Discrete, MultiDiscrete)": spaces.Dict({"d": spaces.Discrete(2), "m": spaces.MultiDiscrete([2, 3])}),
}


@pytest.mark.parametrize("name", ACTION_SPACES)
def test_action_layout_round_trips_env_actions(name):
    space = ACTION_SPACES[name]
    layout = ActionLayout(space)
    actions = sample_batch(space, 16)
    stored = layout.from_env(actions, 16)
    assert stored.shape == (16, layout.dim) and stored.dtype == layout.dtype
    assert_same_batch(layout.to_env(stored), actions)


def test_action_layout_columns_offsets_and_clipping():
    space = ACTION_SPACES["Tuple(Discrete, Box)"]
    layout = ActionLayout(space)
    assert (layout.dim, layout.logits, layout.box, layout.dtype) == (3, 3, 2, np.float32)
    discrete, box = layout.to_env(np.array([[0, -5.0, 0.5], [2, 1.5, 9.0]], np.float32))
    np.testing.assert_array_equal(discrete, [2, 4])  # Discrete(3, start=2): stored 0..2, env 2..4
    np.testing.assert_array_equal(box, [[-1.0, 0.5], [1.5, 2.0]])  # clipped to [-1, 2]
    assert discrete.dtype == np.int64 and box.dtype == np.float32
    np.testing.assert_array_equal(layout.from_env((np.array([4]), np.array([[0.25, 0.5]])), 1), [[2, 0.25, 0.5]])

    md = ActionLayout(ACTION_SPACES["MultiDiscrete(start)"])
    assert md.dtype == np.int64 and md.logits == 7
    np.testing.assert_array_equal(md.to_env(np.array([[0, 0], [2, 3]])), [[1, -2], [3, 1]])


def test_action_layout_refuses_what_it_cannot_hold():
    with pytest.raises(ConfigError, match="1-D nvec"):
        ActionLayout(spaces.MultiDiscrete([[2, 2], [3, 3]]))
    with pytest.raises(ConfigError, match="dtype int64"):
        ActionLayout(spaces.Tuple((spaces.Box(0, 3, (2,), np.int64),)))


# -- the Product distribution -------------------------------------------------------------------------------
# parts in a mixed order, so that the inputs (logits, then bits, then means) and the stored action columns (the
# space's order) are laid out differently
MIXED = spaces.Tuple(
    (
        spaces.Box(-1.0, 1.0, (2,), np.float32),
        spaces.Discrete(3),
        spaces.MultiBinary(3),
        spaces.MultiDiscrete([2, 4]),
    )
)


def reference_parts(inputs: torch.Tensor, log_std: torch.Tensor, actions: torch.Tensor):
    """(torch.distributions objects, their action columns) for MIXED: inputs are 3 + 2 + 4 logits, 3 bit
    logits, 2 means; actions are 2 Box values, a Discrete index, 3 bits, 2 indices."""
    dists = [
        (torch.distributions.Normal(inputs[:, 12:14], log_std.exp()), actions[:, 0:2]),
        (torch.distributions.Categorical(logits=inputs[:, 0:3]), actions[:, 2].long()),
        (torch.distributions.Bernoulli(logits=inputs[:, 9:12]), actions[:, 3:6]),
        (torch.distributions.Categorical(logits=inputs[:, 3:5]), actions[:, 6].long()),
        (torch.distributions.Categorical(logits=inputs[:, 5:9]), actions[:, 7].long()),
    ]
    return dists


def per_row(t: torch.Tensor) -> torch.Tensor:
    return t if t.ndim == 1 else t.sum(-1)


def test_product_log_prob_and_entropy_match_torch_distributions():
    layout = ActionLayout(MIXED)
    assert (layout.input_dim, layout.dim, layout.logits, layout.binary, layout.box) == (14, 8, 9, 3, 2)
    torch.manual_seed(0)
    log_std = torch.tensor([-0.5, 0.3])
    dist = Product(layout, log_std)
    inputs = torch.randn(64, 14) * 2
    actions = dist.sample(inputs, torch.Generator().manual_seed(1))
    assert actions.shape == (64, 8) and actions.dtype == torch.float32
    assert all(MIXED.contains(a) for a in zip(*layout.to_env(actions.numpy()), strict=True))
    logp, entropy = dist.log_prob_entropy(inputs, actions, True)
    parts = reference_parts(inputs, log_std, actions)
    torch.testing.assert_close(logp, sum(per_row(d.log_prob(a)) for d, a in parts), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(entropy, sum(per_row(d.entropy()) for d, _ in parts), rtol=1e-5, atol=1e-5)
    no_entropy, none = dist.log_prob_entropy(inputs, actions, False)
    assert none is None
    torch.testing.assert_close(no_entropy, logp)


def test_product_greedy_takes_argmaxes_bits_above_one_half_and_means():
    layout = ActionLayout(MIXED)
    dist = Product(layout, torch.zeros(2))
    inputs = torch.randn(32, 14, generator=torch.Generator().manual_seed(2))
    greedy = dist.greedy(inputs)
    torch.testing.assert_close(greedy[:, 0:2], inputs[:, 12:14])
    torch.testing.assert_close(greedy[:, 2], inputs[:, 0:3].argmax(-1).float())
    torch.testing.assert_close(greedy[:, 3:6], (inputs[:, 9:12] > 0).float())
    torch.testing.assert_close(greedy[:, 6], inputs[:, 3:5].argmax(-1).float())
    torch.testing.assert_close(greedy[:, 7], inputs[:, 5:9].argmax(-1).float())
    # no Box part: int64 actions
    ints = Product(ActionLayout(spaces.MultiDiscrete([3, 2])), None)
    assert ints.greedy(torch.tensor([[0.0, 2.0, 1.0, 5.0, -5.0]])).tolist() == [[1, 0]]


def test_product_samples_follow_the_distribution():
    layout = ActionLayout(MIXED)
    log_std = torch.tensor([-1.0, 0.0])
    dist = Product(layout, log_std)
    one = torch.tensor([[0.2, -0.4, 1.0, 0.5, -0.5, 0.0, 1.0, -1.0, 2.0, 1.5, -1.5, 0.0, 0.3, -0.7]])
    samples = dist.sample(one.expand(20000, 14), torch.Generator().manual_seed(3))
    for column, logits in [(2, one[0, 0:3]), (6, one[0, 3:5]), (7, one[0, 5:9])]:
        freq = torch.bincount(samples[:, column].long(), minlength=len(logits)).float() / len(samples)
        torch.testing.assert_close(freq, torch.softmax(logits, -1), atol=0.015, rtol=0)
    torch.testing.assert_close(samples[:, 3:6].mean(0), torch.sigmoid(one[0, 9:12]), atol=0.015, rtol=0)
    torch.testing.assert_close(samples[:, 0:2].mean(0), one[0, 12:14], atol=0.03, rtol=0)
    torch.testing.assert_close(samples[:, 0:2].std(0), log_std.exp(), atol=0.03, rtol=0)


def test_a_mask_of_the_categorical_logits_leaves_the_rest_alone():
    inputs = torch.arange(14.0).reshape(1, 14)
    mask = torch.ones(1, 9, dtype=torch.bool)
    mask[0, [1, 4]] = False
    out = masked(inputs, mask)
    assert out[0, 1] == MASKED_LOGIT and out[0, 4] == MASKED_LOGIT
    keep = [i for i in range(14) if i not in (1, 4)]
    torch.testing.assert_close(out[0, keep], inputs[0, keep])


# -- learning probes ----------------------------------------------------------------------------------------
def test_ppo_reads_the_discrete_key_of_a_dict_observation_with_multidiscrete_actions(build):
    # uniform: 0.42; greedy optimum 1.0 (measured: greedy 1.0 after 3 iterations on seeds 0-5; the sampling
    # policy's mean over the last 100 episodes >= 0.74 after 8)
    algo = build(
        ppo(FlagEnv, train_batch_size=512, minibatch_size=128, num_epochs=4, lr=3e-3, model={"fcnet_hiddens": [32]})
    )
    assert algo.get_policy().obs_dtype == np.float32  # a float key: the packed row is float
    for _ in range(8):
        result = algo.train()
    evaluation = algo.evaluate()
    assert evaluation["episodes"] == 100
    assert evaluation["episode_return_mean"] >= 0.95
    assert result["episode_return_mean"] >= 0.7  # the sampling policy has learned too


@pytest.mark.parametrize("layout, seed", [("hwc", 0), ("hwc", 1), ("hwc", 2), ("chw", 0), ("grey", 0)])
def test_ppo_finds_the_bright_pixel_in_a_uint8_frame(build, layout, seed):
    # chance 0.5; greedy optimum 1.0 (measured on seeds 0-4 and each layout: >= 0.92 after 3 iterations, >= 0.98
    # after 6)
    config = ppo(
        BrightHalfEnv, seed, {"layout": layout}, train_batch_size=512, minibatch_size=128, num_epochs=4, lr=1e-3
    )
    algo = build(config.training(model=IMAGE_MODEL))
    for _ in range(6):
        algo.train()
    assert algo.evaluate()["episode_return_mean"] >= 0.9


def test_dqn_finds_the_bright_pixel_in_a_uint8_frame(build):
    # chance 0.5; greedy optimum 1.0 (measured: 1.0 after 4 iterations on seeds 0-4 and each layout)
    algo = build(dqn(BrightHalfEnv))
    for _ in range(5):
        algo.train()
    assert algo.evaluate()["episode_return_mean"] >= 0.9


# -- frames stay bytes ---------------------------------------------------------------------------------------
def test_ppo_rollouts_keep_frames_as_bytes(build):
    algo = build(ppo(BrightHalfEnv, model=IMAGE_MODEL))
    algo.train()
    storage = algo.runner.storage
    assert algo.get_policy().obs_dtype == np.uint8
    assert storage.obs.dtype == np.uint8 and storage.obs.shape[-1] == 10 * 10 * 3
    assert (storage.obs == 255).sum(-1).max() == 1  # the frames as the env gave them (one bright pixel)


def test_dqn_replay_keeps_frames_as_bytes(build):
    algo = build(dqn(BrightHalfEnv, min_sample_timesteps_per_iteration=128))
    algo.train()
    replayed = algo.learners["default_policy"].buffer.sample(16)
    assert replayed.obs.dtype == np.uint8 and replayed.next_obs.dtype == np.uint8
    assert replayed.obs.shape == (16, 10 * 10 * 3)
    assert ((replayed.obs == 255).sum(-1) == 1).all()


# -- action masks over MultiDiscrete choices ------------------------------------------------------------------
@pytest.mark.parametrize("mask", ["binary", "box"])
def test_masked_multidiscrete_choices_are_never_illegal(build, mask):
    algo = build(ppo(MaskedChoicesEnv, env_config={"mask": mask}, train_batch_size=256))
    assert algo.get_policy().mask_size == 3 + 4
    for _ in range(3):  # 768 sampled steps, each checked by the env
        algo.train()
    assert algo.runner.storage.action_mask.shape[-1] == 7
    algo.evaluate()  # greedy steps, checked too
    env = MaskedChoicesEnv({"mask": mask})
    obs, _ = env.reset(seed=1)
    for _ in range(300):  # one observation at a time, exploring
        obs, *_ = env.step(algo.compute_single_action(obs, explore=True))
    # exploring: legal choices other than the best one are taken too
    assert (env.chosen > 0).sum() >= 6


def test_an_action_mask_of_the_wrong_size_is_a_config_error():
    with pytest.raises(ConfigError, match=r"action_mask has 6 entries.*7 choices"):
        ppo(MaskedChoicesEnv, env_config={"mask_size": 6}).build()
    box_actions = {"obs": spaces.Dict({"action_mask": spaces.MultiBinary(2), "obs": VEC}), "act": VEC}
    with pytest.raises(ConfigError, match="Discrete or MultiDiscrete"):
        ppo(SpacesEnv, env_config=box_actions).build()


# -- checkpoints -------------------------------------------------------------------------------------------
def test_checkpoint_round_trip_of_a_ppo_on_frames(build, track, tmp_path):
    algo = build(ppo(BrightHalfEnv, env_config={"layout": "chw"}, model={**IMAGE_MODEL, "conv_filters": [[8, 3, 1]]}))
    algo.train()
    restored = track(Algorithm.from_checkpoint(algo.save(tmp_path / "frames")))
    assert restored.get_policy().observation_space == algo.get_policy().observation_space
    frames = sample_batch(image((3, 10, 10)), 32)
    np.testing.assert_array_equal(
        restored.compute_actions(frames, explore=False), algo.compute_actions(frames, explore=False)
    )
    np.testing.assert_allclose(restored.get_policy().compute_values(frames), algo.get_policy().compute_values(frames))
    restored.train()  # and trains on


def test_checkpoint_round_trip_of_dict_observations_and_tuple_actions(build, track, tmp_path):
    algo = build(ppo(TupleActionEnv))
    algo.train()
    restored = track(Algorithm.from_checkpoint(algo.save(tmp_path / "tuple")))
    policy, again = algo.get_policy(), restored.get_policy()
    assert again.observation_space == policy.observation_space and again.action_space == policy.action_space
    obs = sample_batch(policy.observation_space, 32)
    assert_same_batch(again.compute_actions(obs, explore=False), policy.compute_actions(obs, explore=False))
    restored.train()


# -- SAC on dicts, not on frames ------------------------------------------------------------------------------
SENSORS = spaces.Dict(
    {
        "bits": spaces.MultiBinary(2),
        "gear": spaces.Discrete(4),
        "pos": spaces.Box(-1.0, 1.0, (3,), np.float32),
        "switches": spaces.MultiDiscrete([2, 3]),
    }
)
SAC_FAST = {
    "train_batch_size": 64,
    "num_steps_sampled_before_learning_starts": 64,
    "min_sample_timesteps_per_iteration": 200,
    "model": {"fcnet_hiddens": [32, 32]},
}


def test_sac_trains_on_a_dict_of_vectors_and_indices(build):
    box = spaces.Box(-1.0, 1.0, (2,), np.float32)
    config = SACConfig().environment(SpacesEnv, env_config={"obs": SENSORS, "act": box})
    algo = build(config.training(**SAC_FAST).debugging(seed=0))
    policy = algo.get_policy()
    assert policy.obs_dim == 2 + 4 + 3 + 5  # the flat features: indices one-hot
    result = algo.train()
    assert result["num_env_steps_sampled_lifetime"] >= 200
    replayed = algo.learners["default_policy"].buffer.sample(8)
    assert replayed.obs.shape == (8, 14) and replayed.obs.dtype == np.float32
    actions = algo.compute_actions(sample_batch(SENSORS, 8), explore=False)
    assert actions.shape == (8, 2) and np.all(np.abs(actions) <= 1.0)


@pytest.mark.parametrize(
    "obs, where",
    [
        (image((10, 10, 3)), "the observation"),
        (spaces.Dict({"frame": image((3, 10, 10)), "v": VEC}), "['frame']"),
    ],
)
def test_sac_refuses_frames_in_one_line_naming_the_image(obs, where):
    config = SACConfig().environment(SpacesEnv, env_config={"obs": obs, "act": VEC}).training(**SAC_FAST)
    with pytest.raises(ConfigError, match="image") as info:
        config.build()
    message = str(info.value)
    assert where in message and "\n" not in message


# -- compute_single_action ------------------------------------------------------------------------------------
def test_compute_single_action_takes_one_dict_observation_and_gives_a_multidiscrete_action(build):
    algo = build(ppo(FlagEnv))
    env = FlagEnv()
    obs, _ = env.reset(seed=0)
    for explore in (False, True):
        action = algo.compute_single_action(obs, explore=explore)
        assert isinstance(action, np.ndarray) and action.shape == (2,)
        assert env.action_space.contains(action)
    batch = sample_batch(env.observation_space, 5)
    greedy = algo.compute_actions(batch, explore=False)
    assert greedy.shape == (5, 2)
    single = [algo.compute_single_action({k: v[i] for k, v in batch.items()}, explore=False) for i in range(5)]
    np.testing.assert_array_equal(np.stack(single), greedy)


# -- known gaps (src to fix): Algorithm.compute_actions / compute_single_action over compound spaces ----------
TUPLE_ACTIONS = spaces.Tuple((spaces.Discrete(3), spaces.Box(-1.0, 1.0, (1,), np.float32)))
DICT_ACTIONS = spaces.Dict({"d": spaces.Discrete(2), "m": spaces.MultiDiscrete([2, 3])})
FLAT_OBS = spaces.Dict({"idx": spaces.Discrete(3), "v": VEC})


@pytest.mark.parametrize(
    "obs, act",
    [
        pytest.param(
            FLAT_OBS,
            TUPLE_ACTIONS,
            id="tuple-actions",
        ),
        pytest.param(
            FLAT_OBS,
            DICT_ACTIONS,
            id="dict-actions",
        ),
        pytest.param(
            spaces.Tuple((spaces.Discrete(3), VEC)),
            spaces.Discrete(2),
            id="tuple-obs",
        ),
        pytest.param(
            spaces.Dict({"inner": FLAT_OBS}),
            spaces.Discrete(2),
            id="nested-dict-obs",
        ),
    ],
)
def test_algorithm_compute_actions_over_compound_spaces(build, obs, act):
    algo = build(ppo(SpacesEnv, env_config={"obs": obs, "act": act}))
    policy = algo.get_policy()
    batch = sample_batch(obs, 4)
    assert_same_batch(algo.compute_actions(batch, explore=False), policy.compute_actions(batch, explore=False))
    obs.seed(1)
    assert act.contains(algo.compute_single_action(obs.sample(), explore=False))


ONE_LEAF = {
    "dict-of-a-frame": spaces.Dict({"frame": image((10, 10, 3))}),
    "dict-of-bits": spaces.Dict({"bits": spaces.MultiBinary(3)}),
    "tuple-of-a-vector": spaces.Tuple((VEC,)),
}


@pytest.mark.parametrize("name", ONE_LEAF)
def test_a_dict_or_tuple_of_one_leaf_packs_like_its_leaf(name):
    space = ONE_LEAF[name]
    layout = ObsLayout(space)
    batch = sample_batch(space, 3)
    leaf = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    np.testing.assert_array_equal(layout.pack(batch), leaf.reshape(3, -1))


def test_the_mean_std_filter_leaves_the_index_of_a_discrete_key_alone_or_is_refused(build):
    config = ppo(FlagEnv).env_runners(observation_filter="MeanStdFilter")
    try:
        algo = build(config)
    except ConfigError:
        return  # refusing it, as for byte rows, is fine too
    algo.train()  # the filter learns the observations' statistics
    policy = algo.get_policy()
    batch = sample_batch(policy.observation_space, 16)
    with torch.no_grad():
        features = policy.model.features(torch.from_numpy(policy.normalize(policy.flatten(batch))))
    # the encoder's output: bits (2 columns), the flag one-hot (3), noise (2)
    np.testing.assert_array_equal(features[:, 2:5].numpy(), np.eye(3, dtype=np.float32)[batch["flag"] - 1])


class TwoAgentsCompound(MultiAgentEnv):
    """Two agents, each a Dict of a small frame and a flag; "a" acts with MultiDiscrete, "b" with a Tuple of
    a Discrete and a Box; each is rewarded when its first part names its flag."""

    def __init__(self, config=None):
        super().__init__()
        self.agents = self.possible_agents = ["a", "b"]
        obs = spaces.Dict({"img": spaces.Box(0, 255, (8, 8, 1), np.uint8), "flag": spaces.Discrete(3)})
        self.observation_spaces = {agent: obs for agent in self.agents}
        self.action_spaces = {
            "a": spaces.MultiDiscrete([3, 2]),
            "b": spaces.Tuple((spaces.Discrete(3), spaces.Box(-1, 1, (1,), np.float32))),
        }

    def _obs(self):
        self.flags = {agent: int(self.rng.integers(3)) for agent in self.agents}
        return {
            agent: {"img": self.rng.integers(0, 255, (8, 8, 1), dtype=np.uint8), "flag": self.flags[agent]}
            for agent in self.agents
        }

    def reset(self, *, seed=None, options=None):
        self.rng, self.t = np.random.default_rng(seed), 0
        return self._obs(), {}

    def step(self, actions):
        for agent, action in actions.items():
            assert self.action_spaces[agent].contains(
                tuple(action) if isinstance(action, tuple) else np.asarray(action, np.int64)
            ), (agent, action)
        rewards = {agent: float(np.asarray(actions[agent][0]).item() == self.flags[agent]) for agent in self.agents}
        self.t += 1
        return self._obs(), rewards, {"__all__": self.t >= 10}, {"__all__": False}, {}


def agent_is_policy(agent_id, episode=None, **kwargs):
    return agent_id


def test_multi_agent_policies_with_dict_observations_and_compound_actions_train_and_restore(tmp_path):
    algo = (
        PPOConfig()
        .environment(TwoAgentsCompound)
        .multi_agent(policies={"a", "b"}, policy_mapping_fn=agent_is_policy)
        .training(train_batch_size=400, minibatch_size=100, num_epochs=4)
        .debugging(seed=0)
        .build()
    )
    try:
        for _ in range(3):
            result = algo.train()
        assert result["num_env_steps_sampled_lifetime"] >= 1200
        restored = Algorithm.from_checkpoint(algo.save(str(tmp_path / "ckpt")))
        obs, _ = TwoAgentsCompound().reset(seed=3)
        for pid in ("a", "b"):
            before = algo.compute_single_action(obs[pid], explore=False, policy_id=pid)
            after = restored.compute_single_action(obs[pid], explore=False, policy_id=pid)
            parts = zip(before, after, strict=True) if isinstance(before, tuple) else [(before, after)]
            for x, y in parts:
                np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=1e-6)
        restored.stop()
    finally:
        algo.stop()


def test_bool_planes_are_an_image_and_conv_filters_without_an_image_is_refused():
    planes = ObsLayout(spaces.Box(0, 1, (10, 10, 4), bool))  # MinAtar's observation
    assert [leaf.kind for leaf in planes.leaves] == ["image"] and planes.dtype == np.uint8
    assert not planes.leaves[0].scale  # 0/1 as they are
    with pytest.raises(ConfigError, match="conv_filters is set but this observation has no image"):
        PPOConfig().environment("CartPole-v1").training(model={"conv_filters": [[16, 3, 1]]}).build()
