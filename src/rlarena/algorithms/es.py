"""Evolution strategies on the policy's flat parameter vector: OpenAI ES (Salimans et al. 2017,
arXiv:1703.03864) and Augmented Random Search (ARS, Mania et al. 2018, arXiv:1803.07055).
Config, estimators, update; perturbed episodes run in this process and num_es_workers - 1 worker processes.

Each iteration draws n directions eps_i from a shared noise table and plays one greedy episode at
theta + sigma eps_i and one at theta - sigma eps_i (mirrored sampling), both from the same env seed.

    ES:   g = 1/(2 n sigma) sum_i (F+_i - F-_i) eps_i     (F: centered ranks of the 2n returns)
          Adam on -sigma g + l2_coeff theta               (OpenAI's es.py scale: it divides by 2n, not by sigma)
    ARS:  theta += alpha / (b sigma_R) sum_{i in top b} (r+_i - r-_i) eps_i    (Mania et al., Alg. 1, V1-t)
          top b: the directions with the largest max(r+_i, r-_i); sigma_R: the std of their 2b returns

Both steps are the policy's learner's (rlarena.learners): Adam with lr `stepsize`, or plain SGD with
lr alpha = `sgd_stepsize` on the "gradient" -(the ascent direction), so `lr_schedule` scales them as it
scales every algorithm's learning rate (by schedule / lr).

The noise table is a seeded float32 array (RLlib: 250M entries, seed 123; ours 2**22 by default,
16 MB, enough for policies of up to a few 100k parameters); each worker regenerates it from the seed,
so only theta and (noise index, env seed, sign) triples travel. Only the policy tower is perturbed: the value
tower and a Box policy's log_std never act greedily, so they are frozen out of the flat vector.

Differences from RLlib: a fixed number of perturbations per iteration (episodes_per_batch / 2 pairs
for ES, num_rollouts for ARS) instead of "until both episodes_per_batch and train_batch_size are
reached", so the update does not depend on how many workers ran; `observation_filter="MeanStdFilter"`
(ARS V2, and OpenAI ES's observation normalization): the perturbed episodes play with the filter frozen
at the iteration's start, each returns the mean and variance of the observations it saw, and the driver
merges them in episode order (so the filter, like the update, does not depend on how many workers ran);
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
from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from rlarena.algorithms.algorithm import MAIN_OPTIMIZER, Algorithm
from rlarena.algorithms.config import AlgorithmConfig, NotProvided, NotProvidedType, option, provided
from rlarena.envs.registry import make_env_creator, resolve_registered
from rlarena.errors import ConfigError, EnvError
from rlarena.learners import Learner
from rlarena.multiagent.builder import DEFAULT_POLICY_ID
from rlarena.nn.flat import Adam, FlatParameters
from rlarena.policies.torch_policy import TorchPolicy
from rlarena.rollout.multi_agent_runner import stack_obs

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on

NOISE_SEED = 123  # RLlib's create_shared_noise seed
QUEUED_CHUNKS = 3  # chunks each worker holds: it never waits for the driver to finish an episode


@dataclass
class EvolutionConfig(AlgorithmConfig):
    """Options shared by ES and ARS."""

    num_envs_per_env_runner: int = option(1, "env_runners")  # the base class's vector env is unused for training
    num_es_workers: int = option(
        1, "env_runners", role="how many"
    )  # processes playing perturbations, this one included (N - 1 spawned)
    noise_stdev: float = option(0.02, "training")  # sigma (RLlib's ES and ARS default)
    noise_size: int = option(
        2**22, "training", bound="MAX_NOISE_TABLE"
    )  # entries in the shared noise table (RLlib: 250_000_000)

    def env_runners(
        self,
        *,
        num_envs_per_env_runner: int | NotProvidedType = NotProvided,
        num_es_workers: int | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to AlgorithmConfig.env_runners()."""
        return super().env_runners(**provided(locals()))

    def training(
        self,
        *,
        noise_stdev: float | NotProvidedType = NotProvided,
        noise_size: int | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to AlgorithmConfig.training()."""
        return super().training(**provided(locals()))

    def validate(self) -> None:
        super().validate()
        self._check("num_es_workers", self.num_es_workers >= 1, "must be >= 1 (1: play the episodes in this process)")
        self._check("noise_stdev", math.isfinite(self.noise_stdev) and self.noise_stdev > 0, "must be > 0")
        self._check("noise_size", self.noise_size >= 1, "must be >= 1 (and at least the policy's parameter count)")
        self._check("policies", self.policies is None, "must be None: ES and ARS are single-agent here")


@dataclass
class ESConfig(EvolutionConfig):
    """OpenAI ES; defaults are RLlib's ES (model: RLlib's MODEL_DEFAULTS)."""

    episodes_per_batch: int = option(
        1000, "training", bound="MAX_EPISODES"
    )  # episodes per iteration: episodes_per_batch / 2 mirrored pairs
    stepsize: float = option(0.01, "training")  # Adam's step size
    l2_coeff: float = option(0.005, "training")  # weight decay added to the Adam gradient

    def training(
        self,
        *,
        episodes_per_batch: int | NotProvidedType = NotProvided,
        stepsize: float | NotProvidedType = NotProvided,
        l2_coeff: float | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to EvolutionConfig.training()."""
        return super().training(**provided(locals()))

    def validate(self) -> None:
        super().validate()
        self._check("episodes_per_batch", self.episodes_per_batch >= 2, "must be >= 2 (one mirrored pair)")
        self._check("stepsize", self.stepsize > 0, "must be > 0")
        self._check("l2_coeff", self.l2_coeff >= 0, "must be >= 0")


@dataclass
class ARSConfig(EvolutionConfig):
    """ARS; defaults are RLlib's ARS, the model Mania et al.'s linear policy (RLlib's default is an MLP)."""

    model_defaults: ClassVar[dict[str, Any]] = {"fcnet_hiddens": []}
    num_rollouts: int = option(32, "training", bound="MAX_EPISODES")  # directions per iteration (2 episodes each)
    rollouts_used: int = option(32, "training")  # b: the best directions kept for the step
    sgd_stepsize: float = option(0.01, "training")  # alpha

    def training(
        self,
        *,
        num_rollouts: int | NotProvidedType = NotProvided,
        rollouts_used: int | NotProvidedType = NotProvided,
        sgd_stepsize: float | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to EvolutionConfig.training()."""
        return super().training(**provided(locals()))

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
def make_es_policy(
    observation_space: gym.Space,
    action_space: gym.Space,
    model_config: dict,
    seed: int | None = None,
    observation_filter: str = "NoFilter",
) -> TorchPolicy:
    """A TorchPolicy whose policy tower alone is trainable: FlatParameters(policy.model) holds only it."""
    policy = TorchPolicy(observation_space, action_space, model_config, observation_filter, seed)
    model = policy.model
    for part in (model.vf_layers, model.vf_head):
        if part is not None:
            part.requires_grad_(False)
    if model.log_std is not None:
        model.log_std.requires_grad_(False)
    return policy


def noise_table(size: int) -> np.ndarray:
    return np.random.default_rng(NOISE_SEED).standard_normal(size, dtype=np.float32)


class PerturbationPlayer:
    """One env and one policy copy; plays mirrored pairs greedily. Lives in a worker or in the driver."""

    def __init__(
        self,
        env: Any,
        env_config: dict,
        observation_space: gym.Space,
        action_space: gym.Space,
        model_config: dict,
        noise_size: int,
        noise_stdev: float,
        observation_filter: str = "NoFilter",
    ):
        self.env = make_env_creator(env)(dict(env_config))
        self.policy = make_es_policy(
            observation_space, action_space, model_config, observation_filter=observation_filter
        )
        self.flat = FlatParameters(self.policy.model)
        self.noise, self.sigma = noise_table(noise_size), noise_stdev
        self.theta = self.flat.param.numpy().copy()

    def set_weights(self, theta: np.ndarray, filter_state: dict[str, np.ndarray] | None) -> None:
        """The iteration's parameters and (frozen while it plays) observation filter."""
        self.theta = theta
        if filter_state is not None:
            assert self.policy.obs_filter is not None  # the state of the same observation_filter as ours
            self.policy.obs_filter.set_state(filter_state)

    def episode(self, seed: int) -> tuple[float, int, np.ndarray | None]:
        """(return, length, the [count, mean, var] of its flat observations when the policy has a filter)."""
        policy = self.policy
        obs, _ = self.env.reset(seed=seed)
        total, steps, done, seen = 0.0, 0, False, []
        while not done:
            batch = stack_obs([obs])
            flat = policy.flatten(batch)
            if policy.obs_filter is not None:
                seen.append(flat[0])
            action = policy.to_env_actions(policy.sample(policy.normalize(flat), False, policy.action_mask(batch)))[0]
            obs, reward, terminated, truncated, _ = self.env.step(action)
            total, steps, done = total + float(reward), steps + 1, terminated or truncated
        if not seen:
            return total, steps, None
        x = np.asarray(seen, np.float64)
        return total, steps, np.concatenate([[len(x)], x.mean(0), x.var(0)])

    def play(self, episodes: list[tuple[int, int, int]]) -> np.ndarray:
        """[k, 2 (+ 1 + 2D with a filter)]: the return and length of each (noise index, env seed, sign
        +1/-1) episode, then the count, mean and variance of the observations it saw."""
        width = 2 + (1 + 2 * self.policy.obs_dim if self.policy.obs_filter is not None else 0)
        out = np.empty((len(episodes), width), np.float64)
        view, dim = self.flat.param.numpy(), self.theta.size
        for row, (index, seed, sign) in enumerate(episodes):
            np.add(
                self.theta, sign * self.sigma * self.noise[index : index + dim], out=view
            )  # in place: views stay live
            total, steps, moments = self.episode(seed)
            out[row, :2] = total, steps
            if moments is not None:
                out[row, 2:] = moments
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
                player.set_weights(*arg)
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
            except (
                pickle.PicklingError,
                AttributeError,
                TypeError,
                RuntimeError,
            ) as exc:  # a lambda env, no main guard
                self.close()
                raise ConfigError(
                    f"num_es_workers > 1 sends the env to worker processes, which failed "
                    f"({type(exc).__name__}: {exc}); use a Gymnasium id or a module-level env "
                    f"class or creator, or num_es_workers=1."
                ) from None
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
            raise EnvError(
                f"An ES worker playing {self.env_name!r} died (a script that starts ES workers "
                f"needs `if __name__ == '__main__':` around its main code)."
            ) from None
        if status == "error":
            self.close()
            raise EnvError(f"Env {self.env_name!r} failed in an ES worker: {value}")
        return value

    def play(
        self,
        theta: np.ndarray,
        filter_state: dict[str, np.ndarray] | None,
        episodes: list[tuple[int, int, int]],
        local: PerturbationPlayer | None = None,
    ) -> np.ndarray:
        """Every episode's row of PerturbationPlayer.play, in order. `local`: a player in this process
        that plays chunks too while the workers are busy (the driver is otherwise idle, and one process
        fewer competes for the cores). Each worker keeps QUEUED_CHUNKS chunks queued."""
        for pipe in self.pipes:
            pipe.send(("theta", (theta, filter_state)))
        if local is not None:
            local.set_weights(theta, filter_state)
        # one episode per chunk: the players finish an iteration at most one episode apart (a chunk
        # the driver plays cannot be interrupted); a message (~0.1 ms) is cheap beside an episode (1-20 ms)
        chunks = [[episode] for episode in episodes]
        results: list[Any] = [None] * len(chunks)
        queued: dict[Any, list[int]] = {pipe: [] for pipe in self.pipes}
        sent = 0

        def refill(pipe: Any) -> None:
            nonlocal sent
            # near the end a worker holds no more than are left to send: the driver takes its share
            while len(queued[pipe]) < min(QUEUED_CHUNKS, len(chunks) - sent) or (
                not queued[pipe] and sent < len(chunks)
            ):
                pipe.send(("play", chunks[sent]))
                queued[pipe].append(sent)
                sent += 1

        for pipe in self.pipes:
            refill(pipe)
        while sent < len(chunks) or any(queued.values()):
            busy = [pipe for pipe, q in queued.items() if q]
            play_here = local is not None and sent < len(chunks)
            for ready in wait(busy, timeout=0 if play_here else None):
                results[queued[ready].pop(0)] = self._receive(ready)
                refill(ready)
            if play_here and sent < len(chunks):  # (the refills may have sent the last chunks)
                assert local is not None  # play_here
                results[sent] = local.play(chunks[sent])
                sent += 1
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


class SGD:
    """Plain gradient descent on a FlatParameters buffer, p <- p - lr g (ARS's step: the buffer holds
    minus the ascent direction). Stateless but for the step count."""

    def __init__(self, flat: FlatParameters, lr: float):
        self.flat, self.lr = flat, lr
        self.steps = 0

    def step(self) -> None:
        self.steps += 1
        self.flat.param.add_(self.flat.grad, alpha=-self.lr)

    def get_state(self) -> dict[str, np.ndarray]:
        return {"steps": np.array([self.steps], np.int64), "lr": np.array([self.lr], np.float64)}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.steps = int(state["steps"][0])
        self.lr = float(state["lr"][0])


# -- the algorithms -------------------------------------------------------------------------------
class EvolutionStrategy(Algorithm):
    """Shared: the players, one iteration's perturbations. Subclasses build the learner (the flat
    vector and its optimizer) and write `update`."""

    config: EvolutionConfig
    data_mode = "none"  # its own loop: no logged data in or out

    def make_policy(
        self, observation_space: Any, action_space: Any, config: AlgorithmConfig, seed: int | None
    ) -> TorchPolicy:
        return make_es_policy(observation_space, action_space, config.model_config, seed, config.observation_filter)

    @property
    def flat(self) -> FlatParameters:
        """The policy tower's parameters, one flat vector (the learner's)."""
        return self.learners[DEFAULT_POLICY_ID].flats[MAIN_OPTIMIZER]

    def setup(self) -> None:
        cfg = self.config
        dim = sum(p.numel() for p in self.policy.model.parameters() if p.requires_grad)
        if cfg.noise_size < dim:
            raise ConfigError(
                f"Invalid noise_size={cfg.noise_size}: the policy has {dim} parameters to perturb; "
                f"set noise_size >= {dim} (a few times more keeps the directions independent)."
            )
        self.noise = noise_table(cfg.noise_size)
        assert cfg.env is not None  # validate(): an algorithm without offline data needs an env
        kwargs: dict[str, Any] = {
            "env": resolve_registered(cfg.env),
            "env_config": cfg.env_config,
            "observation_space": self.policy.observation_space,
            "action_space": self.policy.action_space,
            "model_config": cfg.model_config,
            "noise_size": cfg.noise_size,
            "noise_stdev": cfg.noise_stdev,
            "observation_filter": cfg.observation_filter,
        }
        # N workers: N - 1 processes, and this process plays too while it waits for them
        self.pool = (
            PerturbationPool(cfg.num_es_workers - 1, self.env_name, **kwargs) if cfg.num_es_workers > 1 else None
        )
        self.player: PerturbationPlayer | None = PerturbationPlayer(**kwargs)  # None once stopped

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
        obs_filter = self.policy.obs_filter
        filter_state = None if obs_filter is None else obs_filter.get_state()
        assert self.player is not None
        if self.pool is not None:
            out = self.pool.play(theta, filter_state, episodes, self.player)
        else:
            self.player.set_weights(theta, filter_state)
            out = self.player.play(episodes)
        if obs_filter is not None:  # each episode's observation statistics, in episode order
            D = self.policy.obs_dim
            for count, mean, var in zip(out[:, 2], out[:, 3 : 3 + D], out[:, 3 + D :]):
                obs_filter.update_moments(mean, var, count)
        returns, lengths = out[:, 0].reshape(n, 2), out[:, 1].astype(np.int64)
        r_pos, r_neg = returns[:, 0], returns[:, 1]
        self.num_env_steps_sampled_lifetime += int(lengths.sum())
        self.episode_stats.add(out[:, 0], lengths)
        noise = np.stack([self.noise[i : i + dim] for i in indices])  # [n, dim]
        stats = self.update(theta, r_pos, r_neg, noise)
        new = self.flat.param.numpy()
        stats["update_ratio"] = float(np.linalg.norm(new - theta) / max(float(np.linalg.norm(theta)), 1e-8))
        stats["weights_norm"] = float(np.linalg.norm(new))
        stats["perturbed_return_mean"] = float(returns.mean())
        return stats

    def stop(self) -> None:
        # getattr: setup() may not have run, or not to its end
        pool, player = getattr(self, "pool", None), getattr(self, "player", None)
        if pool is not None:
            pool.close()
            self.pool = None
        if player is not None:
            player.close()
            self.player = None
        super().stop()


class ES(EvolutionStrategy):
    config_class = ESConfig
    config: ESConfig

    def build_learner(self, learner: Learner) -> None:
        # OpenAI's Adam: beta (0.9, 0.999), eps 1e-8
        learner.add_optimizer(
            MAIN_OPTIMIZER, learner.policy.model, lambda flat, lr: Adam(flat, lr=lr), lr=learner.config.stepsize
        )

    @property
    def num_pairs(self) -> int:
        return self.config.episodes_per_batch // 2

    def update(self, theta: np.ndarray, r_pos: np.ndarray, r_neg: np.ndarray, noise: np.ndarray) -> dict[str, float]:
        cfg = self.config
        ranks = centered_ranks(np.stack([r_pos, r_neg], axis=1))
        g = es_gradient(ranks[:, 0], ranks[:, 1], noise, cfg.noise_stdev)
        # Adam minimizes: OpenAI's es.py steps on -g + l2coeff * theta with g = sum (F+ - F-) eps / 2n
        self.flat.grad.copy_(torch.from_numpy(-cfg.noise_stdev * g + cfg.l2_coeff * theta))
        # an estimate, not a backpropagated gradient: grad_clip does not apply (nor in OpenAI's or RLlib's ES)
        self.learners[DEFAULT_POLICY_ID].step(None, MAIN_OPTIMIZER, clip=False)
        return {"grad_norm": float(np.linalg.norm(g))}


class ARS(EvolutionStrategy):
    config_class = ARSConfig
    config: ARSConfig
    # a checkpoint written before learners (format 1) holds no optimizer for ARS (it stepped in place): a
    # fresh SGD is all it lacks (SGD keeps no state but its step count)
    restore_missing_ok = ("optimizer",)

    def build_learner(self, learner: Learner) -> None:
        learner.add_optimizer(MAIN_OPTIMIZER, learner.policy.model, SGD, lr=learner.config.sgd_stepsize)

    @property
    def num_pairs(self) -> int:
        return self.config.num_rollouts

    def update(self, theta: np.ndarray, r_pos: np.ndarray, r_neg: np.ndarray, noise: np.ndarray) -> dict[str, float]:
        cfg, learner = self.config, self.learners[DEFAULT_POLICY_ID]
        direction = ars_step(r_pos, r_neg, noise, cfg.rollouts_used, 1.0)  # the step at alpha = 1
        self.flat.grad.copy_(torch.from_numpy(-direction))
        learner.step(None, MAIN_OPTIMIZER, clip=False)  # theta += alpha direction, alpha the scheduled sgd_stepsize
        return {"step_norm": learner.optimizers[MAIN_OPTIMIZER].lr * float(np.linalg.norm(direction))}


ESConfig.algo_class = ES
ARSConfig.algo_class = ARS
