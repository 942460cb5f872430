"""Algorithm: decides *when* (sample, update, evaluate, checkpoint). Each algorithm file holds its math.

The public surface is RLlib's: train(), evaluate(), save(), from_checkpoint(), compute_single_action(),
compute_actions(), get_policy(), stop().
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from rlarena._version import __version__
from rlarena.algorithms.config import AlgorithmConfig
from rlarena.checkpoint import read_checkpoint, write_checkpoint
from rlarena.envs.registry import EnvSpec, env_name, make_vector_env
from rlarena.errors import CheckpointError, ConfigError, closest
from rlarena.nn.flat import Adam
from rlarena.policy import TorchPolicy
from rlarena.rollout.runner import EnvRunner, evaluate_episodes

DEFAULT_POLICY_ID = "default_policy"

# Old (RLlib API stack / seed tutorial) metric names answered alongside the new ones.
METRIC_ALIASES = {"episode_reward_mean": "episode_return_mean", "episode_reward_min": "episode_return_min",
                  "episode_reward_max": "episode_return_max", "timesteps_total": "num_env_steps_sampled_lifetime",
                  "episodes_total": "num_episodes_lifetime"}


class ResultDict(dict):
    """The flat metrics dict train() returns. Old nested RLlib access keeps working:
    result["evaluation"]["episode_reward_mean"] and result["env_runners"]["episode_return_mean"]
    return views of the flat "evaluation/..." and top-level keys; any other unknown key raises a
    KeyError that names the closest keys."""

    def __missing__(self, key: str) -> Any:
        if key == "evaluation" and any(k.startswith("evaluation/") for k in self):
            sub = {k.split("/", 1)[1]: v for k, v in self.items() if k.startswith("evaluation/")}
            return _with_aliases(sub)
        if key in ("env_runners", "sampler_results"):
            return _with_aliases({k: v for k, v in self.items() if "/" not in k})
        if key == "info":
            return {"learner": {DEFAULT_POLICY_ID: {"learner_stats": dict(self)}}}
        hint = closest(str(key), [k for k in self if isinstance(k, str)])
        if key == "evaluation":
            hint = " No evaluation ran this iteration: set .evaluation(evaluation_interval=N) or call evaluate()."
        raise KeyError(f"{key!r} is not in the results.{hint} Results are flat: see list(result).")


def _with_aliases(metrics: dict[str, Any]) -> dict[str, Any]:
    out = dict(metrics)
    for old, new in METRIC_ALIASES.items():
        if new in out:
            out[old] = out[new]
    return ResultDict(out)


def _seed_for(seed: int | None, *salt: int) -> int | None:
    """Independent, reproducible child seeds (None stays None: fresh entropy)."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([seed, *salt]).generate_state(1)[0])


class Algorithm:
    config_class: ClassVar[type[AlgorithmConfig]] = AlgorithmConfig

    def __init__(self, config: AlgorithmConfig):
        self.config = config
        torch.set_num_threads(config.num_torch_threads)
        if config.seed is not None:
            torch.manual_seed(_seed_for(config.seed, 0))
        self.env_name = env_name(config.env)
        self.env = make_vector_env(config.env, config.env_config, config.num_envs_per_env_runner,
                                   config.vectorization_mode, num_workers=config.num_env_workers)
        self.policy = TorchPolicy(self.env.single_observation_space, self.env.single_action_space,
                                  config.model_config, config.observation_filter, _seed_for(config.seed, 1))
        self.runner = EnvRunner(self.env, self.policy, config.fragment_length, _seed_for(config.seed, 2),
                                self.env_name)
        self.rng = np.random.default_rng(_seed_for(config.seed, 3))
        self.optimizers: dict[str, Adam] = {}
        self.iteration = 0
        self.num_env_steps_sampled_lifetime = 0
        self.time_total_s = 0.0
        self.num_evaluations = 0
        self._eval_env = None
        self.setup()

    # -- what subclasses write ----------------------------------------------------------------
    def setup(self) -> None:
        """Create optimizers (and target networks, replay buffers, ...)."""

    def training_step(self) -> dict[str, float]:
        """Sample and update once; return learner statistics."""
        raise NotImplementedError

    # -- the loop -----------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        """One iteration: sample + update (+ evaluation every `evaluation_interval` iterations).

        time_this_iter_s and time_total_s count training only; evaluation time is reported apart.
        """
        start = time.perf_counter()
        steps_before = self.num_env_steps_sampled_lifetime
        learner_stats = self.training_step()
        elapsed = time.perf_counter() - start
        self.iteration += 1
        self.time_total_s += elapsed
        steps = self.num_env_steps_sampled_lifetime - steps_before
        result = ResultDict({"training_iteration": self.iteration, **self.runner.stats.metrics(),
                                  "num_env_steps_sampled_this_iter": steps,
                                  "num_env_steps_sampled_lifetime": self.num_env_steps_sampled_lifetime,
                                  "time_this_iter_s": elapsed, "time_total_s": self.time_total_s,
                                  "env_steps_per_sec": steps / elapsed if elapsed > 0 else float("nan"),
                                  **learner_stats})
        result.update(_with_aliases(result))
        interval = self.config.evaluation_interval
        if interval and self.iteration % interval == 0:
            result.update({f"evaluation/{k}": v for k, v in self.evaluate().items()})
        return result

    def evaluate(self) -> dict[str, float]:
        """`evaluation_duration` greedy episodes (unless evaluation_explore) on separate envs."""
        cfg = self.config
        if self._eval_env is None:
            # evaluation is short and greedy: in-process envs (no worker processes to start)
            mode = "sync" if cfg.vectorization_mode in ("subproc", "async") else cfg.vectorization_mode
            self._eval_env = make_vector_env(cfg.env, cfg.env_config, cfg.num_eval_envs, mode)
        start = time.perf_counter()
        self.num_evaluations += 1
        out = evaluate_episodes(self._eval_env, self.policy, cfg.evaluation_duration, cfg.evaluation_explore,
                                _seed_for(cfg.seed, 4, self.num_evaluations), self.env_name)
        out["evaluation_time_s"] = time.perf_counter() - start
        return _with_aliases(out)

    # -- inference ----------------------------------------------------------------------------
    def get_policy(self, policy_id: str = DEFAULT_POLICY_ID) -> TorchPolicy:
        if policy_id != DEFAULT_POLICY_ID:
            raise ConfigError(f"No policy {policy_id!r}: this algorithm has one policy, {DEFAULT_POLICY_ID!r}.")
        return self.policy

    def compute_actions(self, obs_batch: Any, explore: bool | None = None,
                        policy_id: str = DEFAULT_POLICY_ID) -> np.ndarray:
        """Actions for a batch of observations. explore=None samples (RLlib's default); False is greedy."""
        return self.get_policy(policy_id).compute_actions(obs_batch, explore=explore is not False)

    def compute_single_action(self, obs: Any, explore: bool | None = None,
                              policy_id: str = DEFAULT_POLICY_ID) -> Any:
        action = self.compute_actions(np.asarray(obs)[None], explore, policy_id)[0]
        return action.item() if action.ndim == 0 else action

    # -- checkpoints --------------------------------------------------------------------------
    def _state_arrays(self) -> dict[str, dict[str, np.ndarray]]:
        """Every array a restored algorithm needs; subclasses with more state extend it."""
        arrays = {f"policy.{DEFAULT_POLICY_ID}": self.policy.get_state(),
                  "rng": {"torch": torch.get_rng_state().numpy()}}
        for name, opt in self.optimizers.items():
            arrays[f"optimizer.{name}"] = opt.get_state()
        return arrays

    def save(self, checkpoint_dir: str | Path | None = None) -> str:
        """Write a checkpoint directory (atomically) and return its path."""
        if checkpoint_dir is None:
            checkpoint_dir = Path("checkpoints") / f"{type(self).__name__}_{self.env_name}" / \
                f"checkpoint_{self.iteration:06d}"
        meta = {"algorithm": type(self).__name__, "rlarena_version": __version__,
                "config": self.config.to_dict(),
                "counters": {"iteration": self.iteration,
                             "num_env_steps_sampled_lifetime": self.num_env_steps_sampled_lifetime,
                             "time_total_s": self.time_total_s, "num_evaluations": self.num_evaluations,
                             "num_episodes_lifetime": self.runner.stats.lifetime},
                "episode_window": list(self.runner.stats.window),
                "rng": {"policy": self.policy.rng.bit_generator.state, "algorithm": self.rng.bit_generator.state}}
        return write_checkpoint(checkpoint_dir, meta, self._state_arrays())

    @classmethod
    def from_checkpoint(cls, path: str | Path, env: EnvSpec | None = None,
                        config_overrides: dict[str, Any] | None = None) -> Algorithm:
        """Rebuild the algorithm saved at `path` and continue where it stopped.

        `env` replaces the saved env (needed when the original was a lambda or local function);
        `config_overrides` sets options by name before building, e.g. {"num_envs_per_env_runner": 1}
        to load a policy for inference without the full set of training envs.
        """
        from rlarena.algorithms import get_algorithm_class
        meta, arrays = read_checkpoint(path)
        missing = [k for k in ("algorithm", "config", "counters", "episode_window", "rng") if k not in meta]
        if missing or not isinstance(meta["config"], dict):
            raise CheckpointError(f"Checkpoint {str(path)!r} is corrupted: its metadata lacks "
                                  f"{', '.join(missing) or 'a valid config'}.")
        try:
            algo_cls = get_algorithm_class(meta["algorithm"])
        except ConfigError as exc:
            raise CheckpointError(f"Checkpoint {str(path)!r}: {exc}") from None
        if cls is not Algorithm and not issubclass(algo_cls, cls):
            raise CheckpointError(f"{str(path)!r} holds a {algo_cls.__name__} checkpoint, not {cls.__name__}; "
                                  f"load it with Algorithm.from_checkpoint().")
        try:
            config = algo_cls.config_class.from_dict(meta["config"])
        except (ConfigError, TypeError) as exc:
            raise CheckpointError(f"Checkpoint {str(path)!r} has a config this rlarena cannot read: {exc}") from None
        if env is not None:
            config.env = env
        config.update_from_dict(config_overrides or {})
        config.validate()
        algo = algo_cls(config)
        algo._restore(meta, arrays)
        return algo

    def _restore(self, meta: dict[str, Any], arrays: dict[str, dict[str, np.ndarray]]) -> None:
        try:
            self.policy.set_state(arrays[f"policy.{DEFAULT_POLICY_ID}"])
            for name, opt in self.optimizers.items():
                opt.set_state(arrays[f"optimizer.{name}"])
            torch.set_rng_state(torch.from_numpy(arrays["rng"]["torch"].copy()))
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(f"Checkpoint does not match this {type(self).__name__} ({type(exc).__name__}: "
                                  f"{exc}). Was it saved with a different model or algorithm?") from exc
        try:
            counters = meta["counters"]
            self.iteration = int(counters["iteration"])
            self.num_env_steps_sampled_lifetime = int(counters["num_env_steps_sampled_lifetime"])
            self.time_total_s = float(counters["time_total_s"])
            self.num_evaluations = int(counters["num_evaluations"])
            self.runner.stats.lifetime = int(counters["num_episodes_lifetime"])
            self.runner.stats.window.extend(tuple(p) for p in meta["episode_window"])
            self.policy.rng.bit_generator.state = meta["rng"]["policy"]
            self.rng.bit_generator.state = meta["rng"]["algorithm"]
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"Checkpoint metadata is corrupted ({type(exc).__name__}: {exc}).") from exc
        # env state cannot be saved in general: start fresh episodes, reproducibly for this iteration
        self.runner.reset(_seed_for(self.config.seed, 2, self.iteration))

    # -- lifetime -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Close the envs."""
        self.env.close()
        if self._eval_env is not None:
            self._eval_env.close()
            self._eval_env = None

    def __enter__(self) -> Algorithm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(env={self.env_name!r}, iteration={self.iteration})"
