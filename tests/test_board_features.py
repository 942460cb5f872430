"""The Connect Four board features (model option board_features="connect_four"): the numpy twin equals
the torch module, and the per-column win / block / unsafe features agree with brute force on positions
from random games."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlarena import ConfigError
from rlarena.games.connect_four.features import CELLS, COLS, FEATURES, BoardConv, ConnectFourFeatures, numpy_features
from rlarena.games.connect_four.rules import env, observation_space
from rlarena.policies.torch_policy import TorchPolicy

MODEL = {"fcnet_hiddens": [32], "fcnet_activation": "tanh", "vf_share_layers": False, "log_std_init": 0.0}


def random_positions(games: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng, game, planes, masks = np.random.default_rng(seed), env(), [], []
    for g in range(games):
        game.reset(seed=g)
        for _ in game.agent_iter():
            obs, _, terminated, truncated, _ = game.last()
            if terminated or truncated:
                game.step(None)
                continue
            planes.append(obs["observation"])
            masks.append(obs["action_mask"])
            game.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
    return np.stack(planes), np.stack(masks)


def four(board: np.ndarray) -> bool:
    for r in range(6):
        for c in range(7):
            for dr, dc in ((0, 1), (1, 0), (1, 1), (-1, 1)):
                if all(0 <= r + k * dr < 6 and 0 <= c + k * dc < 7 and board[r + k * dr, c + k * dc] for k in range(4)):
                    return True
    return False


def test_numpy_equals_torch():
    planes, _ = random_positions(60)
    x = planes.reshape(len(planes), -1).astype(np.float32)
    got = numpy_features(x)
    assert got.shape == (len(x), FEATURES)
    # exact across backends: every value is 0/1 or a small integer sum, exact in float32 on any CPU
    np.testing.assert_array_equal(got, ConnectFourFeatures()(torch.from_numpy(x)).numpy())
    np.testing.assert_array_equal(got[:, :84], x)  # the planes pass through unchanged


def test_column_features_match_brute_force():
    planes, masks = random_positions(40, seed=1)
    features = numpy_features(planes.reshape(len(planes), -1).astype(np.float32))
    columns = features[:, 2 * CELLS + 3 * CELLS :].reshape(-1, 3, COLS)  # win now, block, unsafe
    seen = np.zeros(3, int)
    for i in range(len(planes)):
        own, opp = planes[i, ..., 0].astype(bool), planes[i, ..., 1].astype(bool)
        for c in np.flatnonzero(masks[i]):
            r = max(row for row in range(6) if not (own[row, c] or opp[row, c]))  # where the piece lands
            mine, theirs, above = own.copy(), opp.copy(), opp.copy()
            mine[r, c] = theirs[r, c] = True
            if r > 0:
                above[r - 1, c] = True
            want = (four(mine), four(theirs), r > 0 and four(above))
            assert tuple(columns[i, :, c].astype(bool)) == want, (i, c)
            seen += want
    assert (seen > 0).all()  # each feature fired somewhere: the check above was not vacuous


def test_policy_uses_the_features_and_checks_the_observation():
    policy = TorchPolicy(observation_space(), gym.spaces.Discrete(7), {**MODEL, "board_features": "connect_four"})
    assert policy.model.pi_layers[0].in_features == FEATURES
    planes, masks = random_positions(5)
    obs = {"observation": planes, "action_mask": masks}
    actions = policy.compute_actions(obs, explore=False)
    assert masks[np.arange(len(actions)), actions].all()
    with pytest.raises(ConfigError, match="reads 84 observation values"):
        TorchPolicy(gym.spaces.Box(0, 1, (4,)), gym.spaces.Discrete(2), {**MODEL, "board_features": "connect_four"})
    with pytest.raises(ConfigError, match="Unknown model option board_features"):
        TorchPolicy(observation_space(), gym.spaces.Discrete(7), {**MODEL, "board_features": "chess"})


def test_conv_numpy_twin_equals_torch():
    planes, masks = random_positions(8)
    x = planes.reshape(len(planes), -1).astype(np.float32)
    conv = BoardConv()
    with torch.no_grad():
        want = conv(torch.from_numpy(x)).numpy()
    assert want.shape == (len(x), BoardConv.out_dim)
    np.testing.assert_allclose(conv.numpy(x), want, rtol=1e-4, atol=1e-5)  # two backends: equal to rounding
    policy = TorchPolicy(observation_space(), gym.spaces.Discrete(7), {**MODEL, "board_features": "conv"})
    actions = policy.compute_actions({"observation": planes, "action_mask": masks}, explore=True)
    assert masks[np.arange(len(actions)), actions].all()
    assert sum(p.numel() for p in policy.model.features.parameters()) > 0  # learned, unlike the fixed features
