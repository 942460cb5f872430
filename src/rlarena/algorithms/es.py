"""Evolution strategies on the policy's flat parameter vector: OpenAI ES (Salimans et al. 2017,
arXiv:1703.03864) and Augmented Random Search (ARS, Mania et al. 2018, arXiv:1803.07055).
Config, estimators, update; perturbed episodes run in worker processes.

Each iteration draws n directions eps_i from a shared noise table and plays one greedy episode at
theta + sigma eps_i and one at theta - sigma eps_i (mirrored sampling), both from the same env seed.

    ES:   g = 1/(2 n sigma) sum_i (F+_i - F-_i) eps_i     (F: centered ranks of the 2n returns)
          Adam on -sigma g + l2_coeff theta               (OpenAI's es.py scale: it divides by 2n, not by sigma)
    ARS:  theta += alpha / (b sigma_R) sum_{i in top b} (r+_i - r-_i) eps_i    (Mania et al., Alg. 1, V1-t)
          top b: the directions with the largest max(r+_i, r-_i); sigma_R: the std of their 2b returns

The noise table is a seeded float32 array (RLlib: 250M entries, seed 123; ours 2**22 by default,
16 MB, enough for policies of up to a few 100k parameters); each worker regenerates it from the seed,
so only theta and (noise index, env seed, sign) triples travel. Only the policy tower is perturbed: the value
tower and a Box policy's log_std never act greedily, so they are frozen out of the flat vector.

Differences from RLlib: a fixed number of perturbations per iteration (episodes_per_batch / 2 pairs
for ES, num_rollouts for ARS) instead of "until both episodes_per_batch and train_batch_size are
reached", so the update does not depend on how many workers ran; no MeanStdFilter (a running filter
would need merging across workers in a fixed order: not done yet, observation_filter must be NoFilter);
local processes only (`num_es_workers`; RLlib's num_env_runners stays reserved for Ray actors).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import pickle
import signal
import traceback
from abc import abstractmethod
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from rlarena.algorithms.algorithm import MAIN_OPTIMIZER, Algorithm
from rlarena.algorithms.config import AlgorithmConfig, option
from rlarena.envs.registry import make_env_creator, resolve_registered
from rlarena.errors import ConfigError, EnvError
from rlarena.multiagent.builder import DEFAULT_POLICY_ID
from rlarena.multiagent.runner import stack_obs
from rlarena.nn.flat import Adam, FlatParameters
from rlarena.torch_policy import TorchPolicy

NOISE_SEED = 123  # RLlib's create_shared_noise seed


@dataclass
class EvolutionConfig(AlgorithmConfig):
    """Options shared by ES and ARS."""

    num_envs_per_env_runner: int = option(1, "env_runners")  # the base class's vector env is unused for training
    num_es_workers: int = option(1, "env_runners")  # processes playing perturbations; 1: in this process
    noise_stdev: float = option(0.02, "training")  # sigma (RLlib's ES and ARS default)
    noise_size: int = option(2**22, "training")  # entries in the shared noise table (RLlib: 250_000_000)

    def validate(self) -> None:
        super().validate()
        self._check("num_es_workers", self.num_es_workers >= 1, "must be >= 1 (1: play the episodes in this process)")
        self._check("noise_stdev", math.isfinite(self.noise_stdev) and self.noise_stdev > 0, "must be > 0")
        self._check("noise_size", self.noise_size >= 1, "must be >= 1 (and at least the policy's parameter count)")
        self._check("observation_filter", self.observation_filter == "NoFilter",
                    "must be 'NoFilter' for ES and ARS (a running filter is not merged across workers yet)")
        self._check("policies", self.policies is None, "must be None: ES and ARS are single-agent here")


@dataclass
class ESConfig(EvolutionConfig):
    """OpenAI ES; defaults are RLlib's ES (model: RLlib's MODEL_DEFAULTS)."""

    episodes_per_batch: int = option(1000, "training")  # episodes per iteration: episodes_per_batch / 2 mirrored pairs
    stepsize: float = option(0.01, "training")  # Adam's step size
    l2_coeff: float = option(0.005, "training")  # weight decay added to the Adam gradient

    def validate(self) -> None:
        super().validate()
        self._check("episodes_per_batch", self.episodes_per_batch >= 2, "must be >= 2 (one mirrored pair)")
        self._check("stepsize", self.stepsize > 0, "must be > 0")
        self._check("l2_coeff", self.l2_coeff >= 0, "must be >= 0")


@dataclass
class ARSConfig(EvolutionConfig):
    """ARS; defaults are RLlib's ARS, the model Mania et al.'s linear policy (RLlib's default is an MLP)."""

    model_defaults: ClassVar[dict[str, Any]] = {"fcnet_hiddens": []}
    num_rollouts: int = option(32, "training")  # directions per iteration (2 episodes each)
    rollouts_used: int = option(32, "training")  # b: the best directions kept for the step
    sgd_stepsize: float = option(0.01, "training")  # alpha

    def validate(self) -> None:
        super().validate()
        self._check("num_rollouts", self.num_rollouts >= 1, "must be >= 1")
        self._check("rollouts_used", 1 <= self.rollouts_used <= self.num_rollouts, "must be in [1, num_rollouts]")
        self._check("sgd_stepsize", self.sgd_stepsize > 0, "must be > 0")


# -- estimators (pure functions) -------------------------------------------------------------------
def centered_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks of x scaled to [-0.5, 0.5] (OpenAI's compute_centered_ranks; ties keep their order)."""
    ranks = np.empty(x.size, np.float32)
    ranks[x.ravel().argsort(kind="stable")] = np.arange(x.size, dtype=np.float32)
    return (ranks / max(x.size - 1, 1) - 0.5).reshape(x.shape)


def es_gradient(f_pos: np.ndarray, f_neg: np.ndarray, noise: np.ndarray, sigma: float) -> np.ndarray:
    """The mirrored estimate of grad E[F(theta + sigma eps)]: sum_i (F+_i - F-_i) eps_i / (2 n sigma).
    f_pos, f_neg [n]; noise [n, dim]."""
    return ((f_pos - f_neg).astype(np.float32) @ noise) / (2 * len(f_pos) * sigma)


def ars_top_directions(r_pos: np.ndarray, r_neg: np.ndarray, b: int) -> np.ndarray:
    """Indices of the b directions with the largest max(r+, r-), best first (Mania et al., Alg. 1 line 6)."""
    return np.argsort(-np.maximum(r_pos, r_neg), kind="stable")[:b]


def ars_step(r_pos: np.ndarray, r_neg: np.ndarray, noise: np.ndarray, b: int, stepsize: float) -> np.ndarray:
    """alpha / (b sigma_R) sum_{top b} (r+ - r-) eps (sigma_R of the 2b returns used; 1 when they are all equal)."""
    top = ars_top_directions(r_pos, r_neg, b)
    sigma_r = float(np.concatenate([r_pos[top], r_neg[top]]).std())
    scale = stepsize / (b * (sigma_r if sigma_r > 1e-8 else 1.0))
    return scale * ((r_pos[top] - r_neg[top]).astype(np.float32) @ noise[top])


# -- playing perturbations ------------------------------------------------------------------------
def make_es_policy(observation_space: gym.Space, action_space: gym.Space, model_config: dict,
                   seed: int | None = None) -> tuple[TorchPolicy, FlatParameters]:
    """A TorchPolicy whose policy tower (only) lies in one flat vector."""
    policy = TorchPolicy(observation_space, action_space, model_config, "NoFilter", seed)
    model = policy.model
    for part in (model.vf_layers, model.vf_head):
        if part is not None:
            part.requires_grad_(False)
    if model.log_std is not None:
        model.log_std.requires_grad_(False)
    return policy, FlatParameters(model)


def noise_table(size: int) -> np.ndarray:
    return np.random.default_rng(NOISE_SEED).standard_normal(size, dtype=np.float32)


class PerturbationPlayer:
    """One env and one policy copy; plays mirrored pairs greedily. Lives in a worker or in the driver."""

    def __init__(self, env: Any, env_config: dict, observation_space: gym.Space, action_space: gym.Space,
                 model_config: dict, noise_size: int, noise_stdev: float):
        self.env = make_env_creator(env)(dict(env_config))
        self.policy, self.flat = make_es_policy(observation_space, action_space, model_config)
        self.noise, self.sigma = noise_table(noise_size), noise_stdev
        self.theta = self.flat.param.numpy().copy()

    def episode(self, seed: int) -> tuple[float, int]:
        obs, _ = self.env.reset(seed=seed)
        total, steps, done = 0.0, 0, False
        while not done:
            action = self.policy.compute_actions(stack_obs([obs]), explore=False)[0]
            obs, reward, terminated, truncated, _ = self.env.step(action)
            total, steps, done = total + float(reward), steps + 1, terminated or truncated
        return total, steps

    def play(self, episodes: list[tuple[int, int, int]]) -> np.ndarray:
        """[k, 2]: the return and length of each (noise index, env seed, sign +1/-1) episode."""
        out = np.empty((len(episodes), 2), np.float64)
        view, dim = self.flat.param.numpy(), self.theta.size
        for row, (index, seed, sign) in enumerate(episodes):
            np.add(self.theta, sign * self.sigma * self.noise[index:index + dim], out=view)  # in place: views stay live
            out[row] = self.episode(seed)
        view[:] = self.theta
        return out

    def close(self) -> None:
        self.env.close()


def _worker(pipe: Any, kwargs: dict[str, Any]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (it stops us)
    torch.set_num_threads(1)
    try:
        player = PerturbationPlayer(**kwargs)
        pipe.send(("ok", None))  # ready: start-up (imports, noise table) is not counted as training time
        while True:
            cmd, arg = pipe.recv()
            if cmd == "theta":  # no reply: the pipe keeps the order
                player.theta = arg
            elif cmd == "play":
                pipe.send(("ok", player.play(arg)))
            else:
                player.close()
                return
    except Exception as exc:  # noqa: BLE001 - sent to the parent, which raises it with the env's name
        pipe.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


class PerturbationPool:
    """`num_workers` spawned processes fed chunks of episodes as they free up (episodes differ in length)."""

    def __init__(self, num_workers: int, env_name: str, **kwargs: Any):
        self.env_name = env_name
        ctx = mp.get_context("spawn")  # fork after torch has started threads is unsafe
        self.pipes, self.procs = [], []
        for _ in range(num_workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, kwargs), daemon=True)
            try:
                proc.start()
            except (pickle.PicklingError, AttributeError, TypeError, RuntimeError) as exc:  # a lambda env, no main guard
                self.close()
                raise ConfigError(f"num_es_workers > 1 sends the env to worker processes, which failed "
                                  f"({type(exc).__name__}: {exc}); use a Gymnasium id or a module-level env "
                                  f"class or creator, or num_es_workers=1.") from None
            child.close()
            self.pipes.append(parent)
            self.procs.append(proc)
        for pipe in self.pipes:
            self._receive(pipe)

    def _receive(self, pipe: Any) -> Any:
        try:
            status, value = pipe.recv()
        except (EOFError, OSError):
            self.close()
            raise EnvError(f"An ES worker playing {self.env_name!r} died (a script that starts ES workers "
                           f"needs `if __name__ == '__main__':` around its main code).") from None
        if status == "error":
            self.close()
            raise EnvError(f"Env {self.env_name!r} failed in an ES worker: {value}")
        return value

    def play(self, theta: np.ndarray, episodes: list[tuple[int, int, int]]) -> np.ndarray:
        for pipe in self.pipes:
            pipe.send(("theta", theta))
        # small chunks: one long episode at the end of an iteration leaves the other workers idle; a
        # message round trip (~0.1 ms) is cheap beside a CartPole pair (~1-20 ms)
        size = max(1, len(episodes) // (16 * len(self.pipes)))
        chunks = [episodes[i:i + size] for i in range(0, len(episodes), size)]
        results: list[Any] = [None] * len(chunks)
        free, busy, sent = list(self.pipes), {}, 0
        while sent < len(chunks) or busy:
            while free and sent < len(chunks):
                pipe = free.pop()
                pipe.send(("play", chunks[sent]))
                busy[pipe], sent = sent, sent + 1
            for pipe in wait(list(busy)):
                results[busy.pop(pipe)] = self._receive(pipe)
                free.append(pipe)
        return np.concatenate(results)

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join()
        self.pipes, self.procs = [], []


# -- the algorithms -------------------------------------------------------------------------------
class EvolutionStrategy(Algorithm):
    """Shared: the flat vector, the players, one iteration's perturbations. Subclasses write `update`."""

    config: EvolutionConfig
    data_mode = "none"  # its own loop: no logged data in or out

    def make_policy(self, observation_space: Any, action_space: Any, config: AlgorithmConfig,
                    seed: int | None) -> TorchPolicy:
        policy, self.flat = make_es_policy(observation_space, action_space, config.model_config, seed)
        return policy

    def setup(self) -> None:
        cfg = self.config
        dim = self.flat.param.numel()
        if cfg.noise_size < dim:
            raise ConfigError(f"Invalid noise_size={cfg.noise_size}: the policy has {dim} parameters to perturb; "
                              f"set noise_size >= {dim} (a few times more keeps the directions independent).")
        self.noise = noise_table(cfg.noise_size)
        kwargs = {"env": resolve_registered(cfg.env), "env_config": cfg.env_config, "observation_space": self.policy.observation_space,
                  "action_space": self.policy.action_space, "model_config": cfg.model_config,
                  "noise_size": cfg.noise_size, "noise_stdev": cfg.noise_stdev}
        self.pool = PerturbationPool(cfg.num_es_workers, self.env_name, **kwargs) if cfg.num_es_workers > 1 else None
        self.player = None if self.pool is not None else PerturbationPlayer(**kwargs)

    @property
    @abstractmethod
    def num_pairs(self) -> int:
        """Mirrored pairs played per iteration."""

    @abstractmethod
    def update(self, theta: np.ndarray, r_pos: np.ndarray, r_neg: np.ndarray, noise: np.ndarray) -> dict[str, float]:
        """Step the flat parameters from the pairs' returns; the step's statistics."""

    def training_step(self) -> dict[str, float]:
        theta = self.flat.param.numpy().copy()
        n, dim = self.num_pairs, theta.size
        indices = self.rng.integers(0, self.config.noise_size - dim + 1, size=n)
        seeds = self.rng.integers(0, 2**31 - 1, size=n)  # one start state per mirrored pair
        # +eps and -eps as separate tasks (finer work units balance the workers better), in pair order
        episodes = [(i, s, sign) for i, s in zip(indices.tolist(), seeds.tolist()) for sign in (1, -1)]
        if self.pool is not None:
            out = self.pool.play(theta, episodes)
        else:
            assert self.player is not None
            self.player.theta = theta
            out = self.player.play(episodes)
        returns, lengths = out[:, 0].reshape(n, 2), out[:, 1].astype(np.int64)
        r_pos, r_neg = returns[:, 0], returns[:, 1]
        self.num_env_steps_sampled_lifetime += int(lengths.sum())
        self.runner.stats.add(out[:, 0], lengths)
        noise = np.stack([self.noise[i:i + dim] for i in indices])  # [n, dim]
        stats = self.update(theta, r_pos, r_neg, noise)
        new = self.flat.param.numpy()
        stats["update_ratio"] = float(np.linalg.norm(new - theta) / max(np.linalg.norm(theta), 1e-8))
        stats["weights_norm"] = float(np.linalg.norm(new))
        stats["perturbed_return_mean"] = float(returns.mean())
        return stats

    def stop(self) -> None:
        if getattr(self, "pool", None) is not None:
            self.pool.close()  # type: ignore[union-attr]
            self.pool = None
        if getattr(self, "player", None) is not None:
            self.player.close()  # type: ignore[union-attr]
            self.player = None
        super().stop()


class ES(EvolutionStrategy):
    config_class = ESConfig
    config: ESConfig

    def setup_policy(self, policy_id: str) -> None:
        # OpenAI's Adam: beta (0.9, 0.999), eps 1e-8
        self.optimizers[(policy_id, MAIN_OPTIMIZER)] = Adam(self.flat, lr=self.config.stepsize)

    @property
    def num_pairs(self) -> int:
        return self.config.episodes_per_batch // 2

    def update(self, theta: np.ndarray, r_pos: np.ndarray, r_neg: np.ndarray, noise: np.ndarray) -> dict[str, float]:
        cfg = self.config
        ranks = centered_ranks(np.stack([r_pos, r_neg], axis=1))
        g = es_gradient(ranks[:, 0], ranks[:, 1], noise, cfg.noise_stdev)
        # Adam minimizes: OpenAI's es.py steps on -g + l2coeff * theta with g = sum (F+ - F-) eps / 2n
        self.flat.grad.copy_(torch.from_numpy(-cfg.noise_stdev * g + cfg.l2_coeff * theta))
        self.optimizers[(DEFAULT_POLICY_ID, MAIN_OPTIMIZER)].step()
        return {"grad_norm": float(np.linalg.norm(g))}


class ARS(EvolutionStrategy):
    config_class = ARSConfig
    config: ARSConfig

    @property
    def num_pairs(self) -> int:
        return self.config.num_rollouts

    def update(self, theta: np.ndarray, r_pos: np.ndarray, r_neg: np.ndarray, noise: np.ndarray) -> dict[str, float]:
        cfg = self.config
        step = ars_step(r_pos, r_neg, noise, cfg.rollouts_used, cfg.sgd_stepsize)
        self.flat.param.add_(torch.from_numpy(step))
        return {"step_norm": float(np.linalg.norm(step))}


ESConfig.algo_class = ES
ARSConfig.algo_class = ARS
