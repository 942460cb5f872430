"""Environment adapters, the env checker and vector-env construction. Never imports torch."""

from rlarena.envs.registry import (
    make_env_creator,
    make_vector_env,
    register_env,
    registered_envs,
)

__all__ = ["check_env", "make_env_creator", "make_vector_env", "register_env", "registered_envs"]


def __getattr__(name: str):
    if name == "check_env":
        from rlarena.envs.checker import check_env

        return check_env
    raise AttributeError(name)
