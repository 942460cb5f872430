"""Turning what a user passes to `.environment(...)` into an env factory, and building vector envs.

A user may give a Gymnasium id ("CartPole-v1"), a name registered with `register_env`, an env class,
or a creator `fn(env_config) -> gymnasium.Env`. This is the one table where env names become objects.
Ids of optional packages ("ALE/Breakout-v5", "MinAtar/Breakout-v1", "MiniGrid-Empty-5x5-v0") are
registered on first use (rlarena.envs.external_ids); an Atari id comes with DeepMind's wrappers unless
env_config={"atari_wrappers": False} (rlarena.envs.atari); a MiniGrid id's text mission is dropped or
read as word indices (rlarena.envs.minigrid).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable

import gymnasium as gym

from rlarena.envs.atari import ATARI_KEY, make_atari_env
from rlarena.envs.external_ids import is_ale_id, register_external
from rlarena.envs.legacy import adapt_old_api
from rlarena.envs.minigrid import is_minigrid_id, make_minigrid_env
from rlarena.errors import EnvError, closest
from rlarena.refs import Trust, Unnamed, ref_name, ref_to_json, register_trusted

EnvCreator = Callable[[dict], gym.Env]
EnvSpec = str | type | EnvCreator


class EnvContext(dict):
    """RLlib's EnvContext: the user's env_config (the dict itself) plus where this env copy runs, as
    attributes that are not keys, so `gym.make(id, **env_config)` and `env_cls(**env_config)` get only
    the user's options. worker_index: 0 for the algorithm's own process, 1..N for remote env runners;
    num_workers: the number of remote env runners (num_env_runners); vector_index: the copy's place
    in its runner's vector env; remote: whether it runs in a remote runner."""

    def __init__(
        self,
        env_config: dict | None = None,
        worker_index: int = 0,
        num_workers: int = 0,
        vector_index: int = 0,
        remote: bool = False,
    ):
        super().__init__(env_config or {})
        self.worker_index, self.num_workers = worker_index, num_workers
        self.vector_index, self.remote = vector_index, remote

    def copy_with_overrides(
        self, env_config: dict | None = None, worker_index: int | None = None, vector_index: int | None = None
    ) -> EnvContext:
        """A new context (RLlib's method): the given values replace this one's."""
        return EnvContext(
            dict(self) if env_config is None else env_config,
            self.worker_index if worker_index is None else worker_index,
            self.num_workers,
            self.vector_index if vector_index is None else vector_index,
            self.remote,
        )

    def __repr__(self) -> str:
        return (
            f"EnvContext({dict(self)!r}, worker_index={self.worker_index}, num_workers={self.num_workers}, "
            f"vector_index={self.vector_index})"
        )


def as_env_context(env_config: dict | None) -> EnvContext:
    """`env_config` as an EnvContext (a plain dict: this process, the first copy), always a new object,
    so an env may change its own config without touching another copy's."""
    if isinstance(env_config, EnvContext):
        return env_config.copy_with_overrides()
    return EnvContext(env_config)


_REGISTRY: dict[str, EnvCreator] = {}
# rlarena's built-in envs by name: "module:class", imported on first use
_BUILTIN = {
    "multi_agent_arena": "rlarena.envs.arena:MultiAgentArena",
    "connect_four": "rlarena.games.connect_four.rules:ConnectFourMultiAgent",
    # contextual bandits (LinUCB, LinTS), under rlarena's names and RLlib's class names
    "linear_bandit": "rlarena.envs.bandits:LinearDiscreteEnv",
    "LinearDiscreteEnv": "rlarena.envs.bandits:LinearDiscreteEnv",
    "wheel_bandit": "rlarena.envs.bandits:WheelBanditEnv",
    "WheelBanditEnv": "rlarena.envs.bandits:WheelBanditEnv",
    "recommender_bandit": "rlarena.envs.bandits:RecommenderEnv",
}


def register_env(name: str, creator: EnvCreator) -> None:
    """Make `name` usable in `.environment(name)`; `creator(env_config)` returns a gymnasium.Env."""
    if not callable(creator):
        raise EnvError(
            f"register_env({name!r}, ...) needs a callable creator fn(env_config) -> Env, got {type(creator).__name__}."
        )
    _REGISTRY[name] = creator
    if ref_name(creator) is not None:  # a config holding the creator itself loads it again in this process
        register_trusted(creator)


def resolve_registered(env: EnvSpec) -> EnvSpec:
    """A name registered with register_env() -> its creator, for a spawned process (which does not
    see this process's registrations); any other env spec as it is."""
    return _REGISTRY.get(env, env) if isinstance(env, str) else env


def registered_envs() -> list[str]:
    """Names from `register_env`, rlarena's built-in envs, then every Gymnasium id."""
    return sorted(_REGISTRY) + sorted(_BUILTIN) + sorted(gym.registry)


def env_name(env: EnvSpec) -> str:
    """A readable name for messages and metrics."""
    if isinstance(env, str):
        return env
    return getattr(env, "__qualname__", type(env).__name__)


def env_to_json(env: EnvSpec | None) -> str | dict | None:
    return ref_to_json(env)


def env_from_json(value: str | dict | None, trust: Trust | None = None) -> EnvSpec | None:
    """A saved env: ids and registered names as they are; a class or creator only as `trust` allows."""
    return (trust or Trust()).resolve(value, "env")


def make_env_creator(env: EnvSpec, render_mode: str | None = None) -> EnvCreator:
    """Return fn(env_config) -> a single gymnasium.Env for any accepted env spec. Envs of the old Gym
    or RLlib 1.x APIs come out adapted (rlarena.envs.legacy.adapt_old_api, with a notice). Creators and
    env classes receive an EnvContext (a plain dict passed in becomes one: worker 0, copy 0); a
    Gymnasium id gets only the user's options as keyword arguments."""
    creator = _make_env_creator(env, render_mode)
    return lambda cfg: creator(as_env_context(cfg))


def _make_env_creator(env: EnvSpec, render_mode: str | None) -> Callable[[EnvContext], gym.Env]:
    if isinstance(env, Unnamed):
        raise EnvError(
            f"This config's env was a lambda or local function ({env}), which cannot be "
            f"restored by name. Pass env=<your creator> to from_checkpoint(), or register it "
            f"with rlarena.register_env(name, creator) and use the name."
        )
    if isinstance(env, str):
        if env in _REGISTRY:
            creator = _REGISTRY[env]
            if render_mode is None:
                return lambda cfg: adapt_old_api(creator(cfg))
            return lambda cfg: adapt_old_api(creator(_with_render_mode(cfg, render_mode)))
        if env in _BUILTIN:
            module_name, cls_name = _BUILTIN[env].split(":")
            cls = getattr(importlib.import_module(module_name), cls_name)
            return lambda cfg: cls(_with_render_mode(cfg, render_mode) if render_mode else cfg)
        if env not in gym.registry:
            register_external(env)
        if is_ale_id(env) and env in gym.registry:
            return lambda cfg: make_atari_env(env, cfg, render_mode)
        if is_minigrid_id(env) and env in gym.registry:
            return lambda cfg: make_minigrid_env(env, cfg, render_mode)
        if env in gym.registry:
            # render_mode only when asked for: some envs' __init__ take no such argument (POPGym's)
            rendering = {} if render_mode is None else {"render_mode": render_mode}
            return lambda cfg: gym.make(env, **rendering, **cfg)
        raise EnvError(
            f"Unknown env {env!r}: it is neither a Gymnasium id nor registered with "
            f"rlarena.register_env().{closest(env, registered_envs())}"
        )
    if isinstance(env, type):
        if not issubclass(env, gym.Env) and not (
            callable(getattr(env, "reset", None)) and callable(getattr(env, "step", None))
        ):
            raise EnvError(
                f"Env class {env.__name__} is not a gymnasium.Env subclass and has no reset()/step(); "
                f"subclass gymnasium.Env (or rlarena.MultiAgentEnv for several agents)."
            )

        def from_class(cfg: EnvContext) -> gym.Env:
            try:
                made = env(cfg) if cfg or _takes_config(env) else env()
            except TypeError:
                made = env(**cfg)
            return adapt_old_api(made)

        return from_class
    if callable(env):
        return lambda cfg: adapt_old_api(env(cfg))
    raise EnvError(
        f"Cannot make an env from {env!r}: pass a Gymnasium id, a registered name, "
        f"a gymnasium.Env subclass, or a creator fn(env_config) -> Env."
    )


def registered_creators(names: list[EnvSpec | None] | None = None) -> dict[str, EnvCreator]:
    """register_env names (all, or those of `names` that are registered; other env specs in `names`
    are skipped) -> their creators: what a new process (a Ray actor) registers again with
    register_creators() to know them. A forked process needs none of this: it inherits the registry."""
    return {
        name: _REGISTRY[name]
        for name in (list(_REGISTRY) if names is None else names)
        if isinstance(name, str) and name in _REGISTRY
    }


def register_creators(creators: dict[str, EnvCreator]) -> None:
    """In a new process (a Ray actor): register the names another process's registered_creators() gave."""
    for name, creator in creators.items():
        register_env(name, creator)


def _takes_config(env_class: type) -> bool:
    """Whether the class's constructor asks for the env config (RLlib's `__init__(self, config)`):
    its first parameter is required or named config/env_config. Such a class gets its EnvContext
    even when the user's options are empty, so it can read its worker_index."""
    try:
        params = list(inspect.signature(env_class).parameters.values())
    except (TypeError, ValueError):
        return False
    first = next((p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)), None)
    return first is not None and (first.default is first.empty or first.name in ("config", "env_config"))


def _with_render_mode(cfg: EnvContext, render_mode: str | None) -> EnvContext:
    return cfg.copy_with_overrides(env_config={**cfg, "render_mode": render_mode})


def make_vector_env(
    env: EnvSpec,
    env_config: dict,
    num_envs: int,
    mode: str = "auto",
    render_mode: str | None = None,
    num_workers: int = 2,
) -> gym.vector.VectorEnv:
    """A Gymnasium vector env in next-step autoreset mode (the native vector envs' own mode).

    env_config: the user's dict, or an EnvContext saying which worker this is; copy i gets that
    context with vector_index=i (a native vector env gets the user's options only).

    mode "auto": the env's native vector entry point when it has one (CartPole: numpy-batched),
    else a SyncVectorEnv. "subproc" steps batches of envs in `num_workers` processes (worth it when
    the env step is the cost, e.g. LunarLander); "async" is Gymnasium's one-process-per-env version;
    "envpool" steps EnvPool's C++ pool (Atari, MuJoCo; rlarena.envs.envpool).
    """
    name = env_name(env)
    if mode == "envpool" and render_mode is None:  # rendering (videos) takes the Gymnasium envs
        if not isinstance(env, str) or env in _REGISTRY:
            raise EnvError(
                f"vectorization_mode='envpool' takes an id EnvPool knows ('ALE/Breakout-v5', 'HalfCheetah-v4'), "
                f"not {name!r}; use 'auto', 'sync', 'subproc' or 'async'."
            )
        from rlarena.envs.envpool import EnvPoolVectorEnv, envpool_options

        return EnvPoolVectorEnv(env, num_envs, envpool_options(env, dict(env_config)))
    try:
        if isinstance(env, str) and env not in _REGISTRY and env not in gym.registry:
            register_external(env)
        if isinstance(env, str) and env not in _REGISTRY and env in gym.registry:
            spec = gym.spec(env)
            native = spec.vector_entry_point is not None and render_mode is None
            # an Atari id's native vector env (ale-py's) preprocesses its own way: asked for by name only
            if (mode == "vector_entry_point" or mode == "auto" and not is_ale_id(env)) and native:
                options = {k: v for k, v in env_config.items() if not (is_ale_id(env) and k == ATARI_KEY)}
                return gym.make_vec(env, num_envs=num_envs, vectorization_mode="vector_entry_point", **options)
            if mode == "vector_entry_point":
                raise EnvError(
                    f"Env {env!r} has no native vector entry point; use vectorization_mode 'auto', 'sync' or 'async'."
                )
        creator = make_env_creator(env, render_mode)
        context = as_env_context(env_config)
        fns = [(lambda c=creator, i=i: c(context.copy_with_overrides(vector_index=i))) for i in range(num_envs)]
        if mode == "subproc":
            from rlarena.envs.subproc import BatchedSubprocVectorEnv

            return BatchedSubprocVectorEnv(fns, num_workers)
        if mode == "async":
            return gym.vector.AsyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
        return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
    except EnvError:
        raise
    except Exception as exc:  # the env's own error, surfaced with its name (it re-raises)
        raise EnvError(f"Creating env {name!r} failed: {type(exc).__name__}: {exc}") from exc
