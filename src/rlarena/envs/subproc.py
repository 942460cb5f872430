"""A vector env that steps batches of envs in several processes, the calling one included.

Gymnasium's AsyncVectorEnv runs one process per env: 16 LunarLanders become 16 processes fighting
over 2 cores, each step a round of 16 pipe messages. Here the envs are split into `num_workers`
shares: the calling process steps the first share itself while `num_workers - 1` worker processes
step the others, each as a SyncVectorEnv. Actions, observations, rewards and episode flags travel
through shared memory; the pipe carries one short command per worker per step. Stepping a share
in the caller hides the worker's wake-up latency (tens of µs per step in a VM, as much as stepping
several envs) behind useful work.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from rlarena.errors import EnvError


def _shared(ctx, shape: tuple[int, ...], dtype: np.dtype) -> tuple[Any, np.ndarray]:
    raw = ctx.RawArray("b", max(1, int(np.prod(shape)) * np.dtype(dtype).itemsize))
    return raw, np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape))).reshape(shape)


def _end_with_parent() -> None:
    """Linux: this process gets SIGTERM when the process that started it dies, even by SIGKILL (a
    killed Ray actor or sampling process would otherwise leave its env workers running)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _worker(pipe, parent_end, env_fns, lo: int, hi: int, buffers: dict[str, tuple[Any, tuple, np.dtype]]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (it closes us)
    _end_with_parent()
    parent_end.close()  # the parent's end, inherited by the fork: the pipe now ends with the parent
    arrays = {
        k: np.frombuffer(raw, dtype=dt, count=int(np.prod(shape))).reshape(shape)[lo:hi]
        for k, (raw, shape, dt) in buffers.items()
    }
    try:
        env = gym.vector.SyncVectorEnv(env_fns, autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
        while True:
            cmd, arg = pipe.recv()
            if cmd == "step":
                obs, rew, term, trunc, _ = env.step(arrays["actions"])
            elif cmd == "reset":
                obs, _ = env.reset(seed=arg)
                rew, term, trunc = 0.0, False, False
            else:  # close
                env.close()
                pipe.send(("ok", None))
                return
            arrays["obs"][:] = obs
            arrays["rewards"][:] = rew
            arrays["terminated"][:] = term
            arrays["truncated"][:] = trunc
            pipe.send(("ok", None))
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # noqa: BLE001 - sent to the parent, which raises it with the env's name
        pipe.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


class BatchedSubprocVectorEnv(gym.vector.VectorEnv):
    """`len(env_fns)` envs split over `num_workers` processes (next-step autoreset, infos not kept)."""

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], num_workers: int = 2):
        probe = env_fns[0]()
        self.single_observation_space, self.single_action_space = probe.observation_space, probe.action_space
        self.metadata = {**probe.metadata, "autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}
        probe.close()
        self.num_envs = n = len(env_fns)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, n)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, n)
        if not isinstance(self.single_observation_space, gym.spaces.Box):
            raise EnvError("vectorization_mode='subproc' needs a Box observation space; use 'async' or 'sync'.")
        ctx = mp.get_context("fork" if sys.platform != "win32" else "spawn")
        specs = {
            "obs": ((n, *self.single_observation_space.shape), self.single_observation_space.dtype),
            "actions": ((n, *self.single_action_space.shape), self.single_action_space.dtype),
            "rewards": ((n,), np.float64),
            "terminated": ((n,), np.bool_),
            "truncated": ((n,), np.bool_),
        }
        buffers, self._arrays = {}, {}
        for key, (shape, dtype) in specs.items():
            raw, self._arrays[key] = _shared(ctx, shape, dtype)
            buffers[key] = (raw, shape, np.dtype(dtype))
        num_workers = max(1, min(num_workers, n))
        self._bounds = bounds = np.linspace(0, n, num_workers + 1).astype(int)
        self._local_n = int(bounds[1])
        self._local = gym.vector.SyncVectorEnv(
            list(env_fns[: self._local_n]), autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP
        )
        self._pipes, self._procs = [], []
        for lo, hi in itertools.pairwise(bounds[1:]):  # the first share is this process's own
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, parent, list(env_fns[lo:hi]), lo, hi, buffers), daemon=True)
            proc.start()
            child.close()
            self._pipes.append(parent)
            self._procs.append(proc)
        self._closed = False

    def _send(self, cmd: str, args: Sequence[Any]) -> None:
        for pipe, arg in zip(self._pipes, args):
            pipe.send((cmd, arg))

    def _wait(self) -> None:
        errors = [msg for status, msg in (pipe.recv() for pipe in self._pipes) if status == "error"]
        if errors:
            raise RuntimeError(errors[0])

    def _write_local(self, obs, rew, term, trunc) -> None:
        k, a = self._local_n, self._arrays
        a["obs"][:k], a["rewards"][:k], a["terminated"][:k], a["truncated"][:k] = obs, rew, term, trunc

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        b = self._bounds
        self._send(
            "reset",
            [None if seed is None else [seed + i for i in range(lo, hi)] for lo, hi in itertools.pairwise(b[1:])],
        )
        obs, _ = self._local.reset(seed=None if seed is None else [seed + i for i in range(self._local_n)])
        self._write_local(obs, 0.0, False, False)
        self._wait()
        return self._arrays["obs"].copy(), {}

    def step(self, actions):
        a = self._arrays
        a["actions"][:] = actions
        self._send("step", [None] * len(self._pipes))
        self._write_local(*self._local.step(a["actions"][: self._local_n])[:4])
        self._wait()
        return (a["obs"].copy(), a["rewards"].copy(), a["terminated"].copy(), a["truncated"].copy(), {})

    def close_extras(self, **kwargs: Any) -> None:
        if self._closed:
            return
        self._closed = True
        self._local.close()
        for pipe, proc in zip(self._pipes, self._procs):
            try:
                pipe.send(("close", None))
                pipe.recv()
            except (BrokenPipeError, EOFError, OSError):
                pass
            proc.join(timeout=2)
            if proc.is_alive():
                proc.terminate()
