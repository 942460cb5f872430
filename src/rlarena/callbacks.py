"""Callbacks: subclass and override the hooks you need. Every hook takes named arguments only.

Order within one train() call: on_episode_start / on_episode_step / on_episode_end while sampling
(per env copy; a single-agent env with these hooks runs as a one-agent multi-agent env), on_sample_end once the batches are packed, then the update,
then on_train_result (which may add keys to the result). evaluate() ends with on_evaluate_end;
save() ends with on_checkpoint.
"""

from __future__ import annotations

from typing import Any


class Callbacks:
    def on_episode_start(self, *, episode: Any, env_index: int, algorithm: Any) -> None:
        """A new episode began in env copy `env_index`."""

    def on_episode_step(self, *, episode: Any, env_index: int, algorithm: Any) -> None:
        """After every env step of an episode (only called when overridden: it is on the hot path)."""

    def on_episode_end(self, *, episode: Any, env_index: int, algorithm: Any) -> None:
        """An episode ended; episode.agent_rewards and episode.length are final."""

    def on_sample_end(self, *, algorithm: Any, batches: dict[str, Any]) -> None:
        """A fragment was collected: batches maps each trainable policy id to its Rollout."""

    def on_train_result(self, *, algorithm: Any, result: dict[str, Any]) -> None:
        """After each train() iteration; add keys to `result` to log them. Self-play leagues
        call algorithm.add_policy / remove_policy from here."""

    def on_evaluate_end(self, *, algorithm: Any, evaluation_metrics: dict[str, Any]) -> None:
        """After evaluate(); may add keys to evaluation_metrics."""

    def on_checkpoint(self, *, algorithm: Any, checkpoint_dir: str) -> None:
        """After save() wrote `checkpoint_dir`."""

    @property
    def wants_episode_step(self) -> bool:
        return type(self).on_episode_step is not Callbacks.on_episode_step

    @property
    def wants_episode_hooks(self) -> bool:
        """Any of on_episode_start/step/end overridden. For a single-agent env that runs it through
        the multi-agent runner (one agent, "default_agent"): the vectorized runner has no per-episode
        view. Without such hooks, single-agent training keeps the vectorized fast path."""
        return any(getattr(type(self), name) is not getattr(Callbacks, name)
                   for name in ("on_episode_start", "on_episode_step", "on_episode_end"))
