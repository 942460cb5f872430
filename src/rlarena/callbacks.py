"""Callbacks: subclass and override the hooks you need. Every hook takes named arguments only.

Order within one train() call: on_episode_start / on_episode_step / on_episode_end while sampling
(per env copy; a single-agent env with these hooks runs as a one-agent multi-agent env), on_sample_end once the batches are packed, then the update,
then on_train_result (which may add keys to the result). evaluate() ends with on_evaluate_end;
save() ends with on_checkpoint. on_algorithm_init runs once, when the algorithm is built.

RLlib's callbacks work as written: a hook gets the named arguments its signature asks for, among
those listed in HOOK_ARGUMENTS (RLlib's names included, such as `worker`, `policies`, `samples` or
1.x's `trainer`), and all of them when it takes `**kwargs`. So both `on_train_result(self, *,
algorithm, result, **kwargs)` and `on_train_result(self, *, algorithm, result)` are called alike.
A hook that requires an argument rlarena does not have fails when the algorithm is built, naming it.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

from rlarena.errors import ConfigError


class Callbacks:
    def on_algorithm_init(self, *, algorithm: Any) -> None:
        """The algorithm is built (its policies and env runner exist)."""

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
        return any(
            getattr(type(self), name) is not getattr(Callbacks, name)
            for name in ("on_episode_start", "on_episode_step", "on_episode_end")
        )


_EPISODE_ARGS = (
    "episode",
    "env_index",
    "algorithm",
    "worker",
    "env_runner",  # RLlib's old and new names for the env runner: ours
    "env",
    "base_env",  # the env copy the episode runs in (not RLlib's vectorized BaseEnv)
    "policies",
)  # {policy id: Policy}

# hook -> the arguments rlarena passes it (by name). RLlib's names are here so its callbacks run.
HOOK_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "on_algorithm_init": ("algorithm",),
    "on_episode_start": _EPISODE_ARGS,
    "on_episode_step": _EPISODE_ARGS,
    "on_episode_end": _EPISODE_ARGS,
    "on_sample_end": (
        "algorithm",
        "batches",
        "samples",
        "worker",
        "env_runner",
    ),  # RLlib's: samples = batches; the env runner
    "on_train_result": ("algorithm", "result", "trainer"),  # trainer: RLlib 1.x's name for the algorithm
    "on_evaluate_end": ("algorithm", "evaluation_metrics"),
    "on_checkpoint": ("algorithm", "checkpoint_dir"),
}


@cache
def _accepted(cls: type, hook: str) -> frozenset[str] | None:
    """The argument names `cls.hook` takes by keyword; None when it takes **kwargs (everything)."""
    params = list(inspect.signature(getattr(cls, hook)).parameters.values())[1:]  # skip self
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))


def check_callbacks(cls: type[Callbacks]) -> None:
    """Fail at build time, in one line, for a hook that requires an argument rlarena cannot give."""
    for hook, offered in HOOK_ARGUMENTS.items():
        if getattr(cls, hook) is getattr(Callbacks, hook):
            continue
        params = list(inspect.signature(getattr(cls, hook)).parameters.values())[1:]
        for p in params:
            required = p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            if required and (p.kind is p.POSITIONAL_ONLY or p.name not in offered):
                raise ConfigError(
                    f"{cls.__name__}.{hook} requires an argument {p.name!r}, which rlarena does not "
                    f"pass; it passes {', '.join(offered)} (by name). Give {p.name!r} a default or "
                    f"take **kwargs."
                )


def call_hook(callbacks: Callbacks, hook: str, **arguments: Any) -> None:
    """callbacks.hook(...) with the arguments (of HOOK_ARGUMENTS[hook]) its signature takes."""
    accepted = _accepted(type(callbacks), hook)
    if accepted is not None:
        arguments = {k: v for k, v in arguments.items() if k in accepted}
    getattr(callbacks, hook)(**arguments)


def make_callbacks(cls: type[Callbacks] | None) -> Callbacks | None:
    """The algorithm's callbacks object (its hooks checked first), or None."""
    if cls is None:
        return None
    check_callbacks(cls)
    return cls()
