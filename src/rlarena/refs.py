"""Saved references to classes and functions, and the one place where such a name becomes an object.

A config stores the classes and functions it holds (an env class or creator, `callbacks_class`,
`policy_mapping_fn`, heuristic policy classes) as {"callable": "module:qualname"}. Reading one back
would mean importing `module` (which runs its top-level code) and later calling the object, so a
file from a stranger could run anything, as a pickle can. A reference therefore resolves only when
the user allowed it (Hugging Face's `trust_remote_code` idea: off by default):

1. it is one of rlarena's own classes or functions (BUILTIN_REFS), or
2. the object was registered in this process: `register_trusted(obj)`, `register_env` (its
   creator), or building a config that holds it (`config.build()`: the script that trains can
   restore its own checkpoints), or
3. the caller passes the object again (`from_checkpoint(path, env=MyEnv, config_overrides=...)`), or
4. the caller trusts its module (`trusted_modules=["my_project"]`, `--trust-module my_project`):
   that module and its submodules.

Anything else fails with UntrustedCodeError before anything is imported. Gymnasium ids and
register_env names are plain strings and never reach this module.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rlarena.errors import ConfigError, UntrustedCodeError

# rlarena's own classes and functions a config may name (exact "module:qualname"). Only these of
# rlarena's names resolve by default: a free walk of rlarena's modules would reach what they import
# (e.g. "rlarena.checkpoint.io:shutil.rmtree").
_C4 = "rlarena.games.connect_four"
_C4_OPPONENTS = (
    "AlwaysSameHeuristic",
    "LinearHeuristic",
    "BeatLastHeuristic",
    "SmartHeuristic",
    *(f"NegamaxDepth{d}" for d in range(1, 8)),
)
# the names of built-in classes before their modules moved -> their names now. Older checkpoints
# store the old ones, which resolve to the new place (the old modules are gone): Connect Four's
# before it became one package, the policies' before they became rlarena.policies.
MOVED_REFS = {
    "rlarena.envs.connect_four:ConnectFourMultiAgent": f"{_C4}.rules:ConnectFourMultiAgent",
    "rlarena.multiagent.league:ConnectFourLeague": f"{_C4}.league:ConnectFourLeague",
    **{f"rlarena.multiagent.connect_four_opponents:{name}": f"{_C4}.opponents:{name}" for name in _C4_OPPONENTS},
    "rlarena.multiagent.policies:RandomPolicy": "rlarena.policies.random_policy:RandomPolicy",
    "rlarena.torch_policy:TorchPolicy": "rlarena.policies.torch_policy:TorchPolicy",
    "rlarena.q_policy:QPolicy": "rlarena.policies.q_policy:QPolicy",
}
BUILTIN_REFS = frozenset(
    {
        "rlarena.callbacks:Callbacks",
        "rlarena.envs.arena:MultiAgentArena",
        "rlarena.multiagent.builder:default_mapping_fn",
        "rlarena.multiagent.league:SelfPlayLeague",
        "rlarena.multiagent.league:league_mapping_fn",
        *MOVED_REFS.values(),
        *MOVED_REFS,
    }
)

_REGISTERED: dict[str, Any] = {}  # "module:qualname" -> an object the user trusted in this process


class Unnamed(str):
    """A lambda's or local function's name read back from a config: it cannot be rebuilt by name, so
    whoever loads the config must pass the object again (validation asks for it)."""


def ref_name(obj: Any) -> str | None:
    """ "module:qualname" of a class or function; None for lambdas, local functions and objects
    without a name."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    return f"{module}:{qualname}"


def ref_to_json(obj: Any) -> str | dict | None:
    """How a config stores an object: {"callable": "module:qualname"}; strings (env ids, registered
    names) and None as they are; lambdas and local functions as {"unnamed": name}."""
    if obj is None or isinstance(obj, str):
        return obj
    name = ref_name(obj)
    if name is None:
        return {"unnamed": getattr(obj, "__qualname__", type(obj).__name__)}
    return {"callable": name}


def register_trusted(*objects: Any) -> None:
    """Trust these classes or functions: a config that names one of them (by "module:qualname")
    resolves to it in this process, without trusting the rest of its module."""
    for obj in objects:
        name = ref_name(obj)
        if name is None:
            raise ConfigError(
                f"register_trusted({obj!r}): only module-level classes and functions have a name a "
                f"config can store; a lambda or local function must be passed again instead."
            )
        _REGISTERED[name] = obj


def trust_built(objects: Iterable[Any]) -> None:
    """Trust the named classes and functions of a config the user built in this process (the same
    script that trains can restore its checkpoints with no flag); lambdas and strings are skipped."""
    for obj in objects:
        name = None if obj is None or isinstance(obj, str) else ref_name(obj)
        if name is not None:
            _REGISTERED[name] = obj


def _check_module_name(name: Any) -> str:
    if not isinstance(name, str) or not name or not all(part.isidentifier() for part in name.split(".")):
        raise ConfigError(
            f"trusted module {name!r} is not a module name: expected e.g. 'my_project' or 'my_project.envs'."
        )
    return name


@dataclass(frozen=True)
class Trust:
    """What a load may resolve beyond the built-ins and this process's registered objects.

    modules: module names trusted with their submodules; objects: "module:qualname" -> object the
    caller passed again; source: the file being read, for messages (e.g. "checkpoint 'ckpt/'")."""

    modules: tuple[str, ...] = ()
    objects: Mapping[str, Any] = field(default_factory=dict)
    source: str = "the config"

    @classmethod
    def create(
        cls, modules: Iterable[str] | str | None = None, passed: Iterable[Any] = (), source: str = "the config"
    ) -> Trust:
        if isinstance(modules, str):
            modules = [modules]
        named = {ref_name(obj): obj for obj in passed if obj is not None and not isinstance(obj, str)}
        named.pop(None, None)
        return cls(tuple(_check_module_name(m) for m in modules or ()), named, source)  # type: ignore[arg-type]

    def trusts_module(self, module: str) -> bool:
        return any(module == m or module.startswith(m + ".") for m in self.modules)

    def resolve(self, value: Any, key: str) -> Any:
        """The object a saved value names (see the module docstring for what is allowed); `key` names
        the option in messages (e.g. "callbacks_class", "policies['p1'].policy_class")."""
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, dict) and set(value) == {"unnamed"}:
            return Unnamed(str(value["unnamed"]))
        ref = value.get("callable") if isinstance(value, dict) and set(value) == {"callable"} else None
        module, _, qualname = ref.partition(":") if isinstance(ref, str) else ("", "", "")
        parts = qualname.split(".")
        if (
            not module
            or not all(p.isidentifier() for p in module.split("."))
            or not all(p.isidentifier() and not p.startswith("__") for p in parts)
        ):
            raise ConfigError(
                f"{self.source}: {key} = {value!r} is not a saved reference: expected "
                f"{{'callable': 'module:qualname'}}."
            )
        if ref in self.objects:
            return self.objects[ref]
        if ref in _REGISTERED:
            return _REGISTERED[ref]
        if ref in BUILTIN_REFS:
            if ref in MOVED_REFS:  # an old checkpoint's name of a class that moved
                module, _, qualname = MOVED_REFS[ref].partition(":")
                parts = qualname.split(".")
            return _import(module, parts, key, ref)
        if self.trusts_module(module):
            obj = _import(module, parts, key, ref)
            # a trusted module's own objects only: "my_project:os.system" walks out of it
            defined_in = getattr(obj, "__module__", None)
            if not isinstance(defined_in, str) or not self.trusts_module(defined_in):
                raise UntrustedCodeError(
                    f"{self.source}: {key} names {ref!r}, which is defined in module "
                    f"{defined_in!r}, not in a trusted module ({', '.join(self.modules)})."
                )
            return obj
        raise UntrustedCodeError(self.refusal(key, ref, module))

    def refusal(self, key: str, ref: str, module: str) -> str:
        """The one-line refusal of `key` naming `ref` from the untrusted `module`, with the ways on."""
        top = module.split(".")[0]
        again = (
            "env=... in Python, --env on the command line"
            if key == "env"
            else f"config_overrides={{{key!r}: ...}}"
            if key.isidentifier()
            else "config_overrides={'model': {'custom_model': ...}}"
            if key == "model.custom_model"
            else "config_overrides={'policies': ...}"
        )
        trust = f"trusted_modules=[{top!r}] (--trust-module {top})"
        head = (
            f"Refusing to load {self.source}: its {key} names {ref!r} from module {module!r}, which is not "
            f"trusted (importing it would run its code)."
        )
        if top in sys.modules and top not in sys.stdlib_module_names and top != "rlarena":
            return (
                f"{head} Module {top!r} is imported in this process: if this file is your own, pass {trust}; "
                f"or pass the object again ({again}), or register it (rlarena.register_trusted(obj))."
            )
        return (
            f"{head} To proceed: pass the object again ({again}), register it (rlarena.register_trusted(obj)), "
            f"or trust its module if you trust whoever made this file: {trust}."
        )


def _import(module: str, parts: list[str], key: str, ref: str) -> Any:
    try:
        obj: Any = importlib.import_module(module)
        for part in parts:
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"{key} names {ref!r}, which cannot be imported ({exc}). Install or import the module "
            f"that defines it, or pass the object again."
        ) from None
    return obj
