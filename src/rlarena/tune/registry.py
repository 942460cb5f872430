"""ray.tune.registry's register_env: rlarena's own (a name usable in .environment(name))."""

from rlarena.envs.registry import register_env

__all__ = ["register_env"]
