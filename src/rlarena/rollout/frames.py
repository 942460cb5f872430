"""Frame stacks stored a frame per step in rollouts.

An Atari observation is a stack of the last k frames (4 x 84 x 84): the observation at t shares k - 1
frames with the one at t - 1. `FrameStacks` stands where a rollout's `obs` array would, [T+1, N, k*F],
but keeps each step's newest frame only, plus, per observation and stack position, which stored frame
is there (`src`, a row of the frame table). Reading rows (`stacks[rows]`, `np.asarray(stacks)`) gathers
the frames back. So a fragment costs a frame per step (and k - 1 per env for its first observation),
not k: a quarter of the bytes for Atari's 4 frames.

Sharing is by content: observation t's older frames are taken from observation t - 1 only where they
are equal (the stack continued); otherwise (an episode's first stack) each older frame that equals the
newest one (gymnasium's FrameStackObservation pads a reset with it) points at that, and any other
frame is kept in a side table. So what is read back is always exactly what was written.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def frame_stack(policy: Any) -> tuple[int, int] | None:
    """(k, F) when the policy's observation is one channels-first stack of k frames of F values (Atari's
    4 x 84 x 84): rollouts and replay then keep a frame per step."""
    layout = getattr(policy, "obs_layout", None)
    if layout is None or len(layout.leaves) != 1 or getattr(policy, "vector_features", None) is not None:
        return None
    leaf = layout.leaves[0]
    if leaf.kind != "image" or not leaf.channels_first or len(leaf.shape) != 3 or leaf.shape[0] < 2:
        return None
    return int(leaf.shape[0]), int(leaf.shape[1] * leaf.shape[2])


class FrameStacks:
    """Observations [T+1, N, k*F] (stacks of k frames of F values, oldest first), written one row at a
    time in order (`stacks[t] = x`, t = 0, 1, ..., T), read back by rows."""

    def __init__(self, T: int, N: int, k: int, F: int, dtype: np.dtype | type):
        self.k, self.F = k, F
        # the frame table: row j < k - 1 holds observation 0's frame at stack position j, row t + k - 1
        # observation t's newest frame; then the side table (frames no other row holds)
        self.frames = np.zeros((T + k, N, F), dtype)
        self._side = np.zeros((0, F), dtype)  # its first `_sides` rows are in use (grown 1.5x when full)
        self._sides = 0
        self.src = np.zeros((T + 1, N, k), np.int32)  # per observation and position: its row of the table
        self._prev: np.ndarray | None = None  # the observation row written last, to see a stack continue
        self._next = 0  # the row to write next
        self._table: np.ndarray | None = None  # table() until the next write

    @property
    def side(self) -> np.ndarray:
        """[S, F] the frames no row of `frames` holds, in `src`'s numbering after them."""
        return self._side[: self._sides]

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.src.shape[0], self.src.shape[1], self.k * self.F)

    @property
    def dtype(self) -> np.dtype:
        return self.frames.dtype

    @property
    def nbytes(self) -> int:
        return self.frames.nbytes + self._side.nbytes + self.src.nbytes

    def __len__(self) -> int:
        return self.src.shape[0]

    def __setitem__(self, t: int, x: np.ndarray) -> None:
        """Write observation row t ([N, k*F]); rows are written in order, 0 first (a new fragment)."""
        T1, N, k = *self.src.shape[:2], self.k
        t = t + T1 if t < 0 else t
        if t != self._next and t != 0:
            raise IndexError(f"FrameStacks rows are written in order: row {t} after row {self._next - 1}")
        F, old = self.F, (self.k - 1) * self.F
        x = np.asarray(x).reshape(N, k * F)
        self._table = None
        newest = (t + k - 1) * N + np.arange(N)
        self.frames[t + k - 1] = x[:, old:]
        if t == 0:
            self._sides = 0
            self.frames[: k - 1] = x[:, :old].reshape(N, k - 1, F).transpose(1, 0, 2)
            self.src[0] = np.arange(k)[None, :] * N + np.arange(N)[:, None]
        else:
            assert self._prev is not None
            self.src[t, :, : k - 1] = self.src[t - 1, :, 1:]
            self.src[t, :, k - 1] = newest
            for n in np.flatnonzero((x[:, :old] != self._prev[:, F:]).any(1)).tolist():
                self._restart(t, n, x[n])
        self._prev = x.copy()
        self._next = t + 1

    def _restart(self, t: int, n: int, stack: np.ndarray) -> None:
        """Observation (t, n) does not continue (t - 1, n): its older frames from itself or the side table."""
        F, k = self.F, self.k
        last = stack[(k - 1) * F :]
        for p in range(k - 1):
            frame = stack[p * F : (p + 1) * F]
            if np.array_equal(frame, last):
                self.src[t, n, p] = self.src[t, n, k - 1]
            else:
                if self._sides == len(self._side):
                    grown = np.zeros((max(8, len(self._side) * 3 // 2), F), self._side.dtype)
                    grown[: self._sides] = self._side[: self._sides]
                    self._side = grown
                self._side[self._sides] = frame
                self.src[t, n, p] = self.frames.shape[0] * self.frames.shape[1] + self._sides
                self._sides += 1

    def table(self) -> np.ndarray:
        """[rows, F] every stored frame, in `src`'s numbering."""
        if self._table is None:
            flat = self.frames.reshape(-1, self.F)
            self._table = flat if not self._sides else np.concatenate([flat, self.side])
        return self._table

    def __getitem__(self, index: Any) -> np.ndarray:
        """The observations at `index` (of the [T+1, N] rows), gathered: [..., k*F]."""
        src = self.src[index]
        return self.table()[src].reshape(*src.shape[:-1], self.k * self.F)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def __getstate__(self) -> dict[str, Any]:
        """What travels to another process (a Ray runner's fragment): the frames and rows, not the read
        cache or the last row written (only the writer needs it; a copy received is read, not written)."""
        return {**self.__dict__, "_table": None, "_prev": None, "_next": 0}

    @staticmethod
    def concat(parts: list[FrameStacks]) -> FrameStacks:
        """Fragments of the same length side by side along the env axis (concat_rollouts)."""
        rows, k, F = parts[0].frames.shape[0], parts[0].k, parts[0].F
        N = sum(p.frames.shape[1] for p in parts)
        out = FrameStacks(len(parts[0]) - 1, N, k, F, parts[0].dtype)
        out.frames = np.concatenate([p.frames for p in parts], axis=1)
        out._side = np.concatenate([p.side for p in parts])
        out._sides = len(out._side)
        src, env0, side0 = [], 0, rows * N
        for p in parts:
            n = p.frames.shape[1]
            in_table = p.src < rows * n
            row, env = np.divmod(p.src, n)
            src.append(np.where(in_table, row * N + env0 + env, side0 + p.src - rows * n).astype(np.int32))
            env0, side0 = env0 + n, side0 + len(p.side)
        out.src = np.concatenate(src, axis=1)
        out._next = len(out)
        return out
