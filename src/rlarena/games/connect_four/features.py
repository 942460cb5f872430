"""Connect Four tactical features, an input layer of the board model (`model={"board_features":
"connect_four"}`).

An MLP over the raw 6x7x2 planes must learn from games alone which empty cells complete a line of
four; until it does it leaves wins on the board and misses blocks, and loses games to random play
(measured: benchmarks/README.md, Connect Four). These features hand it that geometry, computed from
the planes with fixed matrices (so they run the same in torch, in numpy on the sampler's hot path,
and inside the exported ONNX graph as MatMul / Equal / Mul):

    own, opp   [B, 42]  the planes, cell = row * 7 + col (row 0 is the top, as connect_four_v3)
    n_own      = own @ L, n_opp = opp @ L          [B, 69] pieces of each side in each line of four
    own_three  = (n_own == 3) * (n_opp == 0)       a line one own piece short of four
    own_win    = ((own_three @ L.T) > 0) * empty   [B, 42] the empty cells that complete an own four
    playable   = empty * (filled below or bottom)  [B, 42] the cell each column's next piece fills
    per column [B, 7]: a win now (own_win * playable), a needed block (opp_win * playable), and an
               unsafe move (the cell above the playable one completes an opponent's four)

The output is [planes (84), own_win, opp_win, playable (3 x 42), win now, block, unsafe (3 x 7)]:
231 features, all 0/1. The learner still decides everything; the features only spare it from
rediscovering the lines of four.

This module needs torch; nothing imports it at package import time: the policy imports it when a model
asks for board_features (rlarena.policies.torch_policy), so the rules, opponents and page run without torch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rlarena.games.connect_four.rules import COLS, LINES_OF_FOUR, ROWS

CELLS = ROWS * COLS


def _lines() -> np.ndarray:
    """float32 [42, 69]: L[cell, line] = 1 when the line of four passes through the cell."""
    out = np.zeros((CELLS, len(LINES_OF_FOUR)), np.float32)
    out[LINES_OF_FOUR.T, np.arange(len(LINES_OF_FOUR))] = 1.0
    return out


def _shift(up: bool) -> np.ndarray:
    """float32 [42, 42] moving a cell map one row: x @ S gives, at each cell, the value of the cell
    below it (up=False) or above it (up=True); cells off the board read 0."""
    out = np.zeros((CELLS, CELLS), np.float32)
    for r in range(ROWS):
        for c in range(COLS):
            src = r - 1 if up else r + 1
            if 0 <= src < ROWS:
                out[src * COLS + c, r * COLS + c] = 1.0
    return out


LINES = _lines()
BELOW, ABOVE = _shift(up=False), _shift(up=True)
BOTTOM_ROW = np.zeros(CELLS, np.float32)
BOTTOM_ROW[(ROWS - 1) * COLS :] = 1.0
COLUMN_SUM = np.tile(np.eye(COLS, dtype=np.float32), (ROWS, 1))  # [42, 7]: x @ C sums each column
FEATURES = 2 * CELLS + 3 * CELLS + 3 * COLS


def numpy_features(x: np.ndarray) -> np.ndarray:
    """The features of float32 [B, 84] flattened planes (row, col, plane order) -> float32 [B, 231]."""
    planes = x.reshape(len(x), CELLS, 2)
    own, opp = planes[..., 0], planes[..., 1]
    empty = 1.0 - own - opp
    n_own, n_opp = own @ LINES, opp @ LINES
    own_win = ((((n_own == 3) & (n_opp == 0)).astype(np.float32) @ LINES.T) > 0) * empty
    opp_win = ((((n_opp == 3) & (n_own == 0)).astype(np.float32) @ LINES.T) > 0) * empty
    playable = empty * np.maximum(1.0 - empty @ BELOW, BOTTOM_ROW)
    unsafe = ((opp_win @ ABOVE) * playable) @ COLUMN_SUM  # the cell above the move completes their four
    return np.concatenate(
        [x, own_win, opp_win, playable, (own_win * playable) @ COLUMN_SUM, (opp_win * playable) @ COLUMN_SUM, unsafe],
        axis=1,
        dtype=np.float32,
    )


class ConnectFourFeatures(nn.Module):
    """`numpy_features` in torch (the learner's forward pass and the ONNX export)."""

    out_dim = FEATURES

    def __init__(self) -> None:
        super().__init__()
        for name, value in (
            ("lines", LINES),
            ("below", BELOW),
            ("above", ABOVE),
            ("bottom_row", BOTTOM_ROW),
            ("column_sum", COLUMN_SUM),
        ):
            self.register_buffer(name, torch.from_numpy(value), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        planes = x.reshape(x.shape[0], CELLS, 2)
        own, opp = planes[..., 0], planes[..., 1]
        empty = 1.0 - own - opp
        n_own, n_opp = own @ self.lines, opp @ self.lines
        own_three = ((n_own == 3) & (n_opp == 0)).to(x.dtype)
        opp_three = ((n_opp == 3) & (n_own == 0)).to(x.dtype)
        own_win = (own_three @ self.lines.T > 0).to(x.dtype) * empty
        opp_win = (opp_three @ self.lines.T > 0).to(x.dtype) * empty
        playable = empty * torch.maximum(1.0 - empty @ self.below, self.bottom_row)
        unsafe = ((opp_win @ self.above) * playable) @ self.column_sum
        return torch.cat(
            [
                x,
                own_win,
                opp_win,
                playable,
                (own_win * playable) @ self.column_sum,
                (opp_win * playable) @ self.column_sum,
                unsafe,
            ],
            dim=1,
        )

    @staticmethod
    def numpy(x: np.ndarray) -> np.ndarray:
        return numpy_features(x)


class BoardConv(nn.Module):
    """A small learned alternative to the fixed features, for the measurement that chose them
    (benchmarks/README.md): two 3x3 "same" convolutions with ReLU over the 6x7 board's two planes,
    flattened ([B, 32 * 42]); the towers' MLP follows. `numpy` is the same computation over views of
    the live weights (im2col), for the sampler."""

    channels = 32
    out_dim = channels * CELLS

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, self.channels, 3, padding=1)
        self.conv2 = nn.Conv2d(self.channels, self.channels, 3, padding=1)
        for conv in (self.conv1, self.conv2):  # orthogonal, sqrt(2) gain, like the MLP layers
            nn.init.orthogonal_(conv.weight, np.sqrt(2))
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(x.shape[0], ROWS, COLS, 2).permute(0, 3, 1, 2)  # planes last -> channels first
        h = torch.relu(self.conv2(torch.relu(self.conv1(h))))
        return h.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # [B, cell-major, channel]

    def numpy(self, x: np.ndarray) -> np.ndarray:
        h = x.reshape(len(x), ROWS, COLS, 2)
        for conv in (self.conv1, self.conv2):
            w = conv.weight.detach().numpy()  # [out, in, 3, 3]
            padded = np.pad(h, ((0, 0), (1, 1), (1, 1), (0, 0)))
            patches = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))  # [B, 6, 7, in, 3, 3]
            cols = patches.reshape(len(x) * CELLS, -1)  # im2col: one row of in x 3 x 3 per cell
            h = np.maximum(cols @ w.reshape(len(w), -1).T + conv.bias.detach().numpy(), 0.0).reshape(
                len(x), ROWS, COLS, -1
            )
        return h.reshape(len(x), -1).astype(np.float32, copy=False)
