"""Environment adapters, the env checker and vector-env construction. Never imports torch.

Importing this package registers rlarena's own Gymnasium ids (register_ids): the memory envs of
rlarena.envs.memory_envs.
"""

import gymnasium as gym

from rlarena.envs.registry import (
    make_env_creator,
    make_vector_env,
    register_env,
    registered_envs,
)

__all__ = ["check_env", "make_env_creator", "make_vector_env", "register_env", "register_ids", "registered_envs"]

# id -> (entry point, keyword arguments, max_episode_steps, reward_threshold); entry points are strings,
# so registering imports nothing
_IDS = {
    "StatelessCartPole-v1": ("rlarena.envs.memory_envs:StatelessCartPoleEnv", {}, 500, 475.0),
    "CartPoleNoVel-v1": ("rlarena.envs.memory_envs:StatelessCartPoleEnv", {"keep_shape": True}, 500, 475.0),
    "RepeatPrevious-v0": ("rlarena.envs.memory_envs:RepeatPreviousEnv", {}, None, None),
    "TMaze-v0": ("rlarena.envs.memory_envs:TMazeEnv", {}, None, None),
}


def register_ids() -> None:
    """Register rlarena's own Gymnasium ids (each once: ids a user registered first are left alone)."""
    for env_id, (entry_point, kwargs, max_steps, threshold) in _IDS.items():
        if env_id not in gym.registry:
            gym.register(
                env_id,
                entry_point=entry_point,
                kwargs=kwargs,
                max_episode_steps=max_steps,
                reward_threshold=threshold,
            )


register_ids()


def __getattr__(name: str):
    if name == "check_env":
        from rlarena.envs.checker import check_env

        return check_env
    raise AttributeError(name)
