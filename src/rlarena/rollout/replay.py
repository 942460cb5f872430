"""Replay buffers for off-policy learning: uniform and prioritized, with n-step returns (numpy only).

Layout: a ring of `rows` time steps over N vector envs, `[rows, N, ...]` arrays, one row per `add()`.
Each observation is stored once: the next observation of slot (t, i) is the observation of slot
(t+1, i), the following step of the same env. Only where an episode ended (terminated or truncated)
is the true final observation kept, in a small side store, because the vector env's autoreset
puts the next episode's first observation in slot (t+1, i). So memory is about half of a buffer that
stores obs and next_obs (SB3's ReplayBuffer), see benchmarks/replay_memory.py. A frame stack (Atari's
4 x 84 x 84) is stored a frame per slot: the older frames of a stack are the newer frames of the rows
before it (`frames=(k, F)`), so a stacked observation costs one frame.

A slot is sampled only once its n-step window is complete: either an episode ends inside the window
or the observation n steps later has been written. The newest rows' slots wait for their successors,
and so a sample never pairs an observation with a successor from another time (after the ring wraps,
the row after the newest is the oldest).

n-step targets (Sutton & Barto 2018, sec. 7.1), k = the steps actually taken (n, or fewer when the
episode ends inside the window):
    rewards   = sum_{j<k} gamma^j r_{t+j}
    next_obs  = o_{t+k}, or the episode's final observation when it ended at step t+k-1
    discounts = 0 if the episode terminated inside the window, else gamma^k
so `y = rewards + discounts * max_a Q_target(next_obs, a)`: a truncation (time limit) bootstraps
from the true final observation, a termination does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

# bits of the per-slot flags byte (one byte instead of three bool arrays)
_TERMINATED = TERMINATED = np.uint8(1)
_TRUNCATED = TRUNCATED = np.uint8(2)
_INVALID = INVALID = np.uint8(4)  # gymnasium's next-step autoreset: this step only reset the env, never sampled
_ENDED = ENDED = _TERMINATED | _TRUNCATED


@dataclass
class SequenceSample:
    """B runs of L consecutive steps (time-major), for recurrent Q-learning."""

    obs: np.ndarray  # [L, B, *obs_shape]
    actions: np.ndarray  # [L, B, *action_shape]
    rewards: np.ndarray  # [L, B] one-step rewards
    flags: np.ndarray  # [L, B] uint8: TERMINATED, TRUNCATED (the step ended its episode), INVALID (only reset)
    state0: np.ndarray  # [B, S] the recurrent state stored before each run's first step


@dataclass
class ReplaySample:
    """A batch of B n-step transitions."""

    obs: np.ndarray  # [B, *obs_shape] the env's observation dtype
    actions: np.ndarray  # [B, *action_shape] the action dtype
    rewards: np.ndarray  # [B] float32, the discounted n-step reward sum
    next_obs: np.ndarray  # [B, *obs_shape] observation k steps later, or the episode's final one
    discounts: np.ndarray  # [B] float32, gamma^k; 0 where the episode terminated in the window
    weights: np.ndarray  # [B] float32 importance weights (all 1 for uniform replay)
    indices: np.ndarray  # [B] int64 slot indices (row * num_envs + env), for update_priorities


class ReplayBuffer:
    """Uniform replay over N vector envs; `capacity` counts transitions (rows = capacity // num_envs, as SB3)."""

    def __init__(
        self,
        capacity: int,
        num_envs: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | type,
        action_shape: tuple[int, ...] = (),
        action_dtype: np.dtype | type = np.int64,
        n_step: int = 1,
        gamma: float = 0.99,
        seed: int | None = None,
        frames: tuple[int, int] | None = None,
        state_size: int = 0,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        rows = capacity // num_envs
        if rows < n_step + 1:
            raise ValueError(
                f"capacity {capacity} holds {rows} steps of {num_envs} envs; an n_step={n_step} "
                f"buffer needs at least {n_step + 1} steps: raise capacity to >= {(n_step + 1) * num_envs}"
            )
        self.rows, self.num_envs, self.n_step, self.gamma = rows, num_envs, n_step, float(gamma)
        self.obs_shape, self.action_shape = tuple(obs_shape), tuple(action_shape)
        # frames=(k, F): the first k * F values of an observation are a stack of k frames of F values, oldest
        # first (a channels-first frame stack). Each slot keeps only its newest frame (and the values after
        # the stack); the older ones are read from the rows before it (see _read_obs). Only where the rows
        # before cannot give them (rows fewer than the stack: off)
        k_frames = frames if frames is not None and len(self.obs_shape) == 1 and rows > frames[0] > 1 else None
        self.frames = k_frames
        width = self.obs_shape if k_frames is None else (self.obs_shape[0] - (k_frames[0] - 1) * k_frames[1],)
        self._obs = np.zeros((rows, num_envs, *width), obs_dtype)  # o_t (its newest frame with frames)
        # frames only: per slot, how many rows back its stack continues (capped at k - 1); a slot where it
        # does not continue (an episode's first observation) keeps its older frames in _keys, by absolute slot
        self._depth = np.zeros((rows, num_envs) if k_frames else (0, num_envs), np.uint8)
        self._keys: dict[int, np.ndarray] = {}
        self._last: np.ndarray | None = None  # the previous add()'s observations, to see continuity
        # a recurrent policy's state before each step (what sequences are unrolled from: R2D2's stored state)
        self.state_size = state_size
        self._state = np.zeros((rows if state_size else 0, num_envs, state_size), np.float32)
        self._actions = np.zeros((rows, num_envs, *self.action_shape), action_dtype)  # a_t
        self._rewards = np.zeros((rows, num_envs), np.float32)  # r_t
        self._flags = np.zeros((rows, num_envs), np.uint8)  # _TERMINATED | _TRUNCATED | _INVALID
        # Side store of final observations, a FIFO in slot order (slots are overwritten in the order written):
        # live entries are [_head, _tail), keyed by the absolute slot number t_abs * N + env, so sorted.
        size = max(8, num_envs)
        self._final_obs = np.zeros((size, *self.obs_shape), obs_dtype)
        self._final_keys = np.zeros(size, np.int64)
        self._head = self._tail = 0
        self._steps = 0  # rows ever written; the newest is absolute step _steps - 1, in row (_steps - 1) % rows
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        """Transitions held (the newest n steps' are not sampleable until their windows complete)."""
        return min(self._steps, self.rows) * self.num_envs

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays held (the side store counted at its allocated size)."""
        arrays = (
            self._obs,
            self._actions,
            self._rewards,
            self._flags,
            self._final_obs,
            self._final_keys,
            self._depth,
            self._state,
        )
        return sum(a.nbytes for a in arrays) + sum(v.nbytes for v in self._keys.values())

    # ------------------------------------------------------------------ writing

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminateds: np.ndarray,
        truncateds: np.ndarray,
        next_obs: np.ndarray,
        valid: np.ndarray | None = None,
        state: np.ndarray | None = None,
    ) -> None:
        """One step of N envs: obs [N, ...], actions [N, ...], rewards/terminateds/truncateds [N], next_obs [N, ...].

        next_obs is read only where an episode ended (the true final observation: gymnasium 1.x vector envs
        autoreset, pass `infos["final_obs"]` there); elsewhere the next call's obs is the next observation.
        valid [N] bool (optional): False for the step right after an episode end under gymnasium's default
        next-step autoreset, which only reset that env; such slots are stored but never sampled.
        """
        N = self.num_envs
        obs, next_obs = np.asarray(obs), np.asarray(next_obs)
        actions = np.asarray(actions)
        for name, arr, shape in (
            ("obs", obs, self.obs_shape),
            ("next_obs", next_obs, self.obs_shape),
            ("actions", actions, self.action_shape),
        ):
            if arr.shape != (N, *shape):
                raise ValueError(
                    f"add(): {name} has shape {arr.shape}, expected {(N, *shape)} "
                    f"(one row per env of the {N}-env vector env)"
                )
        for name, arr in (("rewards", rewards), ("terminateds", terminateds), ("truncateds", truncateds)):
            if np.shape(arr) != (N,):
                raise ValueError(f"add(): {name} has shape {np.shape(arr)}, expected ({N},)")
        ended = np.asarray(terminateds, bool) | np.asarray(truncateds, bool)
        flags = np.where(np.asarray(terminateds, bool), _TERMINATED, np.where(ended, _TRUNCATED, 0)).astype(np.uint8)
        if valid is not None:
            invalid = ~np.asarray(valid, bool)
            if invalid.any() and self._steps > 0:
                prev = self._flags[(self._steps - 1) % self.rows]
                bad = invalid & ((prev & _ENDED) == 0)
                if bad.any():
                    raise ValueError(
                        f"add(): valid=False for env(s) {np.flatnonzero(bad).tolist()} whose previous "
                        "step did not end an episode; valid=False marks only the autoreset step that "
                        "follows an episode end (gymnasium's next-step autoreset)"
                    )
            ended &= ~invalid
            flags = np.where(invalid, _INVALID, flags).astype(np.uint8)

        row = self._steps % self.rows
        if self._steps >= self.rows:  # overwrite the oldest row: drop its final observations
            oldest_key = (self._steps - self.rows + 1) * N  # first slot key still alive after this write
            live = self._final_keys[self._head : self._tail]
            self._head += int(np.searchsorted(live, oldest_key))
        self._write_obs(row, obs)
        if self.state_size:
            if state is None or np.shape(state) != (N, self.state_size):
                raise ValueError(f"add(): a buffer of recurrent states needs state [{N}, {self.state_size}]")
            self._state[row] = state
        self._actions[row] = actions
        self._rewards[row] = rewards
        self._flags[row] = flags
        envs = np.flatnonzero(ended)
        if envs.size:
            self._append_finals(self._steps * N + envs, next_obs[envs])
        self._steps += 1
        self._on_added()

    def _abs_step(self, rows: np.ndarray | int) -> np.ndarray:
        """The absolute step (add() number) of the newest write of each row."""
        newest = self._steps - 1
        return newest - (newest - np.asarray(rows, np.int64)) % self.rows

    def _write_obs(self, row: int, obs: np.ndarray) -> None:
        if self.frames is None:
            self._obs[row] = obs
            return
        k, F = self.frames
        N, rows = self.num_envs, self.rows
        prev = self._depth[(row - 1) % rows].astype(np.int64) if self._steps > 0 else np.zeros(N, np.int64)
        if self._steps >= rows:  # `row` is the oldest: first cut the chains that reach back into it
            oldest = self._steps - rows  # its absolute step
            base = (row + 1) % rows
            for e in np.flatnonzero(self._depth[base] > 0):  # the next row becomes a key where it is not one
                stack = self._read_obs(np.array([base]), np.array([e]))[0]
                self._keys[(oldest + 1) * N + int(e)] = stack[: (k - 1) * F].copy()
            for i in range(1, min(k, rows)):  # rows whose chain passed the old row now start at `base`
                later = (row + i) % rows
                self._depth[later] = np.minimum(self._depth[later], i - 1)
            for env in range(N):
                self._keys.pop(oldest * N + env, None)
            if self._steps - 1 - oldest < k:  # the previous row's chain was cut too (a tiny buffer)
                prev = self._depth[(row - 1) % rows].astype(np.int64)
        if self._last is None:
            same = np.zeros(N, bool)
        else:
            same = (obs[:, : (k - 1) * F] == self._last[:, F : k * F]).all(1)
        depth = np.where(same, np.minimum(prev + 1, k - 1), 0)
        for e in np.flatnonzero(~same):
            self._keys[self._steps * N + int(e)] = obs[e, : (k - 1) * F].copy()
        self._depth[row] = depth
        self._obs[row] = obs[:, (k - 1) * F :]
        self._last = obs.copy()

    def _read_obs(self, rows: np.ndarray, envs: np.ndarray) -> np.ndarray:
        """Observations [B, *obs_shape] of slots (rows, envs), stacks rebuilt from their rows and keys."""
        if self.frames is None:
            return self._obs[rows, envs]
        k, F = self.frames
        out = np.empty((len(rows), *self.obs_shape), self._obs.dtype)
        out[:, (k - 1) * F :] = self._obs[rows, envs]
        depth = self._depth[rows, envs].astype(np.int64)
        for j in range(1, k):  # the frame j rows back sits at stack position k - 1 - j
            p = k - 1 - j
            back = depth >= j
            if back.any():
                at = np.flatnonzero(back)
                out[at, p * F : (p + 1) * F] = self._obs[(rows[at] - j) % self.rows, envs[at], :F]
            if not back.all():
                for i in np.flatnonzero(~back).tolist():  # from the key where the stack's chain starts
                    d = int(depth[i])
                    key = self._keys[int(self._abs_step(int(rows[i]) - d)) * self.num_envs + int(envs[i])]
                    out[i, p * F : (p + 1) * F] = key[(p + d) * F : (p + d + 1) * F]
        return out

    def _append_finals(self, keys: np.ndarray, finals: np.ndarray) -> None:
        k, live = len(keys), self._tail - self._head
        if self._tail + k > len(self._final_keys):
            # compact in place when at most 3/4 full, else grow 1.5x: amortized O(1) copies per entry
            size = len(self._final_keys)
            if live + k > size * 3 // 4:
                size = max(size + size // 2, live + k)
            new_obs = (
                self._final_obs
                if size == len(self._final_obs)
                else np.zeros((size, *self.obs_shape), self._final_obs.dtype)
            )
            new_keys = self._final_keys if size == len(self._final_keys) else np.zeros(size, np.int64)
            new_obs[:live] = self._final_obs[self._head : self._tail]
            new_keys[:live] = self._final_keys[self._head : self._tail]
            self._final_obs, self._final_keys, self._head, self._tail = new_obs, new_keys, 0, live
        self._final_obs[self._tail : self._tail + k] = finals
        self._final_keys[self._tail : self._tail + k] = keys
        self._tail += k

    def _on_added(self) -> None:
        """Hook: a row was written (in row (self._steps - 1) % self.rows)."""

    def cut(self) -> None:
        """The envs were reset out of turn (a restored algorithm starts fresh episodes): the windows of the
        newest n rows would run into the next episodes' observations, so their slots are never sampled
        (flagged like autoreset steps; their rewards and episode ends still count in older slots' windows)."""
        rows = (self._steps - 1 - np.arange(min(self.n_step, self._steps, self.rows))) % self.rows
        self._flags[rows] |= _INVALID
        self._on_cut(rows)

    def _on_cut(self, rows: np.ndarray) -> None:
        """Hook: the slots of `rows` were made unsampleable by cut()."""

    # ------------------------------------------------------------------ reading

    def _sampleable(self, rows: np.ndarray, envs: np.ndarray) -> np.ndarray:
        """[B] bool: written, not an autoreset step, and the n-step window is complete."""
        n, newest = self.n_step, (self._steps - 1) % self.rows
        written_after = (newest - rows) % self.rows  # rows written after this one (its successors)
        window = (rows[:, None] + np.arange(n)) % self.rows  # [B, n]
        ended = (self._flags[window, envs[:, None]] & _ENDED) != 0
        ended &= np.arange(n) <= written_after[:, None]  # an end must be in a written row
        complete = ended.any(1) | (written_after >= n)
        return complete & ((self._flags[rows, envs] & _INVALID) == 0)

    def _draw(self, batch_size: int) -> np.ndarray:
        """Uniform slot indices over the sampleable slots: rejection sampling (only the newest n rows and
        autoreset steps are rejected), then, for what is left after a few rounds, an exact draw."""
        N, held = self.num_envs, len(self)
        out = np.empty(0, np.int64)
        for _ in range(4):
            cand = self._rng.integers(0, held, batch_size - len(out))
            out = np.concatenate([out, cand[self._sampleable(cand // N, cand % N)]])
            if len(out) == batch_size:
                return out
        every = np.arange(held)
        ok = every[self._sampleable(every // N, every % N)]
        if not len(ok):
            raise ValueError(
                f"sample(): no transition is sampleable yet ({held} held; a slot becomes sampleable "
                f"once the {self.n_step} step(s) after it are added or its episode ends)"
            )
        return np.concatenate([out, ok[self._rng.integers(0, len(ok), batch_size - len(out))]])

    def sample(self, batch_size: int) -> ReplaySample:
        """batch_size transitions drawn uniformly (with replacement) from the sampleable slots."""
        if len(self) == 0:
            raise ValueError("sample(): the buffer is empty; add() steps first")
        indices = self._draw(batch_size)
        return self._gather(indices, np.ones(batch_size, np.float32))

    def sample_sequences(self, batch_size: int, length: int) -> SequenceSample:
        """batch_size runs of `length` consecutive steps of one env each, drawn uniformly among the runs
        written in order (R2D2's stored sequences): they may cross episode ends (the flags say where),
        and start from the recurrent state stored with their first step."""
        N, rows = self.num_envs, self.rows
        held = min(self._steps, rows)
        if held < length:
            raise ValueError(f"sample_sequences(): {held} steps held, fewer than a sequence of {length}")
        newest = (self._steps - 1) % rows
        ages = self._rng.integers(length - 1, held, batch_size)  # rows written after the sequence's first
        first = (newest - ages) % rows
        envs = self._rng.integers(0, N, batch_size)
        at = (first[None, :] + np.arange(length)[:, None]) % rows  # [L, B]
        env_at = np.broadcast_to(envs, at.shape)
        obs = self._read_obs(at.ravel(), env_at.ravel()).reshape(length, batch_size, *self.obs_shape)
        return SequenceSample(
            obs=obs,
            actions=self._actions[at, env_at],
            rewards=self._rewards[at, env_at],
            flags=self._flags[at, env_at],
            state0=self._state[first, envs] if self.state_size else np.zeros((batch_size, 0), np.float32),
        )

    def _gather(self, indices: np.ndarray, weights: np.ndarray) -> ReplaySample:
        N, n, rows = self.num_envs, self.n_step, self.rows
        r, e = indices // N, indices % N
        k = np.arange(n)
        window = (r[:, None] + k) % rows  # [B, n]
        flags = self._flags[window, e[:, None]]
        ended = (flags & _ENDED) != 0
        alive = (np.cumsum(ended, axis=1) - ended) == 0  # no episode end before step j of the window
        any_end = ended.any(1)
        steps = np.where(any_end, ended.argmax(1) + 1, n)  # k, the steps actually taken
        returns = (self._rewards[window, e[:, None]] * alive * self.gamma**k).sum(1)
        last = (r + steps - 1) % rows  # row of the window's last step
        terminated = any_end & ((self._flags[last, e] & _TERMINATED) != 0)
        discounts = np.where(terminated, 0.0, self.gamma**steps)
        next_obs = np.empty((len(r), *self.obs_shape), self._obs.dtype)
        going = np.flatnonzero(~any_end)  # o_{t+k}, written; where the episode ended, its final observation
        next_obs[going] = self._read_obs((r[going] + steps[going]) % rows, e[going])
        if any_end.any():
            j = np.flatnonzero(any_end)
            newest = (self._steps - 1) % rows
            abs_step = self._steps - 1 - (newest - last[j]) % rows
            live = self._final_keys[self._head : self._tail]
            next_obs[j] = self._final_obs[self._head + np.searchsorted(live, abs_step * N + e[j])]
        return ReplaySample(
            obs=self._read_obs(r, e),
            actions=self._actions[r, e],
            rewards=returns.astype(np.float32),
            next_obs=next_obs,
            discounts=discounts.astype(np.float32),
            weights=weights,
            indices=indices.astype(np.int64),
        )

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, np.ndarray]:
        """Plain numpy arrays (safetensors-ready): the rows written, live final observations, counters, RNG."""
        held = min(self._steps, self.rows)
        return {
            "obs": self._obs[:held],
            "actions": self._actions[:held],
            "rewards": self._rewards[:held],
            "flags": self._flags[:held],
            "final_obs": self._final_obs[self._head : self._tail],
            "final_keys": self._final_keys[self._head : self._tail],
            "counters": np.array([self._steps, self.rows, self.num_envs, self.n_step], np.int64),
            "rng": _rng_to_array(self._rng),
            **self._frame_state(held),
            **({"state_in": self._state[:held]} if self.state_size else {}),
        }

    def _frame_state(self, held: int) -> dict[str, np.ndarray]:
        if self.frames is None:
            return {}
        slots = np.array(sorted(self._keys), np.int64)
        k, F = self.frames
        stacked = np.stack([self._keys[int(x)] for x in slots]) if len(slots) else np.zeros((0, (k - 1) * F))
        return {
            "frame_depth": self._depth[:held],
            "frame_key_slots": slots,
            "frame_keys": stacked.astype(self._obs.dtype),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        steps, rows, num_envs, n_step = (int(x) for x in state["counters"])
        if (rows, num_envs, n_step) != (self.rows, self.num_envs, self.n_step):
            raise ValueError(
                f"load_state_dict(): the state is of a buffer with {rows} steps x {num_envs} envs, "
                f"n_step={n_step}; this one has {self.rows} x {self.num_envs}, n_step={self.n_step}: "
                "build the buffer with the checkpoint's capacity, num_envs and n_step"
            )
        held = min(steps, rows)
        for name, arr in (("obs", self._obs), ("actions", self._actions)):
            if state[name].shape != (held, *arr.shape[1:]):
                raise ValueError(
                    f"load_state_dict(): {name} has shape {state[name].shape}, expected {(held, *arr.shape[1:])}"
                )
        self._obs[:held], self._actions[:held] = state["obs"], state["actions"]
        if self.state_size:
            if "state_in" not in state or state["state_in"].shape != (held, self.num_envs, self.state_size):
                raise ValueError("load_state_dict(): the state lacks the recurrent states this buffer keeps")
            self._state[:held] = state["state_in"]
        if self.frames is not None:
            k, F = self.frames
            if "frame_depth" not in state or state["frame_keys"].shape[1:] != ((k - 1) * F,):
                raise ValueError("load_state_dict(): the state is not of a frame-stack buffer of this shape")
            self._depth[:held] = state["frame_depth"]
            self._keys = {
                int(x): np.array(v) for x, v in zip(state["frame_key_slots"], state["frame_keys"], strict=True)
            }
            self._last = None  # the next observation starts a chain (the envs start fresh episodes)
        self._rewards[:held], self._flags[:held] = state["rewards"], state["flags"]
        live = len(state["final_keys"])
        size = max(8, self.num_envs, live + live // 2)
        self._final_obs = np.zeros((size, *self.obs_shape), self._obs.dtype)
        self._final_keys = np.zeros(size, np.int64)
        self._final_obs[:live], self._final_keys[:live] = state["final_obs"], state["final_keys"]
        self._head, self._tail, self._steps = 0, live, steps
        self._rng = _rng_from_array(state["rng"])


class SumTree:
    """A binary segment tree over `capacity` leaves (Schaul et al. 2016, appendix B.2.1): O(log n) updates,
    reduction and prefix-sum search, each vectorized over a batch of indices. Leaves are tree[P:P+capacity],
    P a power of two; node i holds op(tree[2i], tree[2i+1]); the root is tree[1]."""

    # the reduction a node applies to its two children, and the value of an empty leaf (MinTree: min, inf)
    _op: ClassVar[np.ufunc] = np.add
    _neutral: ClassVar[float] = 0.0

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._depth = max(0, int(capacity - 1).bit_length())
        self._leaf0 = 1 << self._depth  # P >= capacity leaves
        self.tree = np.full(2 * self._leaf0, self._neutral, np.float64)

    def __getitem__(self, indices: np.ndarray) -> np.ndarray:
        return self.tree[self._leaf0 + np.asarray(indices)]

    def reduce(self) -> float:
        """The op over all leaves (the total for a sum tree)."""
        return float(self.tree[1])

    def update(self, indices: np.ndarray, values: np.ndarray | float) -> None:
        """Set leaves (to one value each, or all to one value); for a repeated index the last value wins."""
        indices = np.asarray(indices, np.int64).ravel()
        if not len(indices):
            return
        values = np.broadcast_to(np.asarray(values, np.float64), indices.shape)
        uniq, last = np.unique(indices[::-1], return_index=True)
        node = uniq + self._leaf0
        self.tree[node] = values[::-1][last]
        for _ in range(self._depth):  # all leaves sit at one depth; a parent met twice gets the same value twice
            node = node // 2
            self.tree[node] = self._op(self.tree[2 * node], self.tree[2 * node + 1])

    def rebuild(self, leaves: np.ndarray) -> None:
        """Set every leaf at once (capacity values) and recompute all nodes, level by level."""
        self.tree[:] = self._neutral
        self.tree[self._leaf0 : self._leaf0 + self.capacity] = leaves
        lo = self._leaf0 // 2
        while lo >= 1:
            node = np.arange(lo, 2 * lo)
            self.tree[node] = self._op(self.tree[2 * node], self.tree[2 * node + 1])
            lo //= 2

    def find_prefixsum(self, values: np.ndarray) -> np.ndarray:
        """For each v in [0, total): the leaf i with sum(leaves[:i]) <= v < sum(leaves[:i+1]). Zero leaves are
        never returned (a descent into a child whose sum is 0 is refused, which also absorbs rounding)."""
        v = np.asarray(values, np.float64).copy()
        node = np.ones(v.shape, np.int64)
        while node[0] < self._leaf0:
            left = self.tree[2 * node]
            right = (v >= left) & (self.tree[2 * node + 1] > 0)
            v = np.where(right, v - left, v)
            node = 2 * node + right
        return node - self._leaf0


class MinTree(SumTree):
    """The same tree with min: the smallest priority, for the largest importance weight."""

    _op = np.minimum
    _neutral = np.inf


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al. 2016): P(i) = p_i^alpha / sum_k p_k^alpha, importance
    weights w_i = (S * P(i))^-beta / max_j w_j = (p_i^alpha / min_k p_k^alpha)^-beta (S, the number of
    sampleable transitions, cancels). New transitions get the largest priority seen so far (1 at first).
    alpha 0.6 and beta annealed from 0.4 to 1 are the paper's (and RLlib's) defaults; beta is the caller's."""

    def __init__(
        self,
        capacity: int,
        num_envs: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | type,
        action_shape: tuple[int, ...] = (),
        action_dtype: np.dtype | type = np.int64,
        n_step: int = 1,
        gamma: float = 0.99,
        alpha: float = 0.6,
        seed: int | None = None,
        frames: tuple[int, int] | None = None,
        state_size: int = 0,
    ) -> None:
        super().__init__(
            capacity,
            num_envs,
            obs_shape,
            obs_dtype,
            action_shape,
            action_dtype,
            n_step,
            gamma,
            seed,
            frames,
            state_size,
        )
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0 (0 is uniform), got {alpha}")
        self.alpha = float(alpha)
        self.max_priority = 1.0
        # leaf = p^alpha for sampleable slots, 0 (sum) / inf (min) for the rest
        self._sum = SumTree(self.rows * num_envs)
        self._min = MinTree(self.rows * num_envs)

    @property
    def nbytes(self) -> int:
        return super().nbytes + self._sum.tree.nbytes + self._min.tree.nbytes

    def _on_added(self) -> None:
        # The row written is fresh (its old leaves go); it also completes the windows of the n rows before it,
        # as their n-th successor or as an episode end inside their window. One tree update for all.
        N, depth = self.num_envs, min(self.n_step + 1, self._steps)
        rows = np.repeat((self._steps - 1 - np.arange(depth)) % self.rows, N)
        envs = np.tile(np.arange(N), depth)
        slots = rows * N + envs
        ok = self._sampleable(rows, envs)
        fresh = np.arange(depth * N) < N
        change = fresh | (ok & (self._sum[slots] == 0))
        p = self.max_priority**self.alpha
        self._sum.update(slots[change], np.where(ok[change], p, 0.0))
        self._min.update(slots[change], np.where(ok[change], p, np.inf))

    def _on_cut(self, rows: np.ndarray) -> None:
        slots = (rows[:, None] * self.num_envs + np.arange(self.num_envs)).ravel()
        self._sum.update(slots, 0.0)
        self._min.update(slots, np.inf)

    def sample(self, batch_size: int, beta: float = 0.4) -> ReplaySample:
        """Stratified proportional sampling: one draw in each of batch_size equal slices of the total priority."""
        total = self._sum.reduce()
        if total <= 0:
            raise ValueError(
                f"sample(): no transition is sampleable yet ({len(self)} held; a slot becomes "
                f"sampleable once the {self.n_step} step(s) after it are added or its episode ends)"
            )
        if beta < 0:
            raise ValueError(f"beta must be >= 0 (anneal it towards 1), got {beta}")
        u = (np.arange(batch_size) + self._rng.random(batch_size)) * (total / batch_size)
        indices = self._sum.find_prefixsum(np.minimum(u, np.nextafter(total, 0)))
        weights = (self._sum[indices] / self._min.reduce()) ** -beta
        return self._gather(indices, weights.astype(np.float32))

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """priorities [B], e.g. |TD error| + 1e-6: positive and finite. Slots overwritten or no longer
        sampleable since they were drawn are skipped."""
        priorities = np.asarray(priorities, np.float64).ravel()
        if not np.all(np.isfinite(priorities) & (priorities > 0)):
            raise ValueError(
                "update_priorities(): priorities must be positive and finite (use |TD error| + a "
                f"small epsilon such as 1e-6); got min {priorities.min()}, max {priorities.max()}"
            )
        indices = np.asarray(indices, np.int64).ravel()
        keep = self._sum[indices] > 0
        self._sum.update(indices[keep], priorities[keep] ** self.alpha)
        self._min.update(indices[keep], priorities[keep] ** self.alpha)
        self.max_priority = max(self.max_priority, float(priorities.max()))

    def state_dict(self) -> dict[str, np.ndarray]:
        state = super().state_dict()
        state["priorities"] = self._sum.tree[self._sum._leaf0 : self._sum._leaf0 + self._sum.capacity].copy()
        state["max_priority"] = np.array(self.max_priority)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        super().load_state_dict(state)
        leaves = np.asarray(state["priorities"], np.float64)
        self._sum.rebuild(leaves)
        self._min.rebuild(np.where(leaves > 0, leaves, np.inf))
        self.max_priority = float(np.asarray(state["max_priority"]).reshape(-1)[0])  # checkpoints may store it 1-d


def _rng_to_array(rng: np.random.Generator) -> np.ndarray:
    """PCG64's state as uint64 words (safetensors holds arrays, not 128-bit ints)."""
    s = rng.bit_generator.state
    if s["bit_generator"] != "PCG64":
        raise ValueError(f"only PCG64 generators are saved, got {s['bit_generator']}")
    mask = (1 << 64) - 1
    state, inc = s["state"]["state"], s["state"]["inc"]
    return np.array([state >> 64, state & mask, inc >> 64, inc & mask, s["has_uint32"], s["uinteger"]], np.uint64)


def _rng_from_array(words: np.ndarray) -> np.random.Generator:
    w = [int(x) for x in words]
    rng = np.random.Generator(np.random.PCG64())
    rng.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": (w[0] << 64) | w[1], "inc": (w[2] << 64) | w[3]},
        "has_uint32": w[4],
        "uinteger": w[5],
    }
    return rng
