"""EnvPool (Weng et al. 2022) as a vector-env backend: `.env_runners(vectorization_mode="envpool")`.

EnvPool steps a batch of Atari or MuJoCo envs in C++ threads. It is optional (`pip install envpool`)
and imported only when this mode is asked for. Its gymnasium API already resets an env on the step
after its episode ended (the action of that step is ignored): Gymnasium's next-step autoreset, the
mode rlarena's runners read, so the pool is wrapped, not re-driven.

Ids: EnvPool's own ("Breakout-v5", "HalfCheetah-v4", "CartPole-v1"), and ale-py's "ALE/Breakout-v5",
which becomes EnvPool's "Breakout-v5" with the preprocessing `.environment("ALE/Breakout-v5")` gets
from rlarena.envs.atari (4 frames skipped with a max over the last two, up to 30 no-ops, episodic
life, FIRE at reset, rewards clipped to their sign, 84x84 grey, 4 stacked, channels first) and ALE
v5's sticky actions (repeat_action_probability 0.25). env_config["atari_wrappers"] sets those options
by the same names; env_config's other keys go to envpool.make.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from rlarena.envs.atari import ATARI_KEY, WRAP_OPTIONS
from rlarena.errors import ConfigError, EnvError, closest

# rlarena.envs.atari's wrapper options -> EnvPool's Atari options
ATARI_OPTIONS = {
    "frame_skip": "frame_skip",
    "frame_stack": "stack_num",
    "clip_rewards": "reward_clip",
    "episodic_life": "episodic_life",
    "noop_max": "noop_max",
}
ATARI_DEFAULTS = {"frame_skip": 4, "stack_num": 4, "reward_clip": True, "episodic_life": True, "noop_max": 30,
                  "img_height": 84, "img_width": 84, "use_fire_reset": True, "repeat_action_probability": 0.25}  # fmt: skip


def envpool_id(env_id: str) -> str:
    """EnvPool's name of `env_id` ("ALE/Breakout-v5" -> "Breakout-v5")."""
    return env_id.removeprefix("ALE/")


def envpool_options(env_id: str, env_config: dict[str, Any]) -> dict[str, Any]:
    """envpool.make's keyword options for `env_id` and the user's env_config (see the module)."""
    options = {k: v for k, v in env_config.items() if k != ATARI_KEY}
    if not env_id.startswith("ALE/"):
        if ATARI_KEY in env_config:
            raise ConfigError(f"env_config[{ATARI_KEY!r}] is for ale-py's 'ALE/...' ids; {env_id!r} is not one.")
        return options
    wrappers = env_config.get(ATARI_KEY, True)
    if wrappers is False or not isinstance(wrappers, (dict, bool)):
        raise ConfigError(
            f"vectorization_mode='envpool' preprocesses Atari frames itself: env_config[{ATARI_KEY!r}] may be "
            f"True or a dict of {', '.join(ATARI_OPTIONS)} and screen_size, not {wrappers!r} "
            "(for the raw env use another vectorization_mode)."
        )
    out = dict(ATARI_DEFAULTS)
    for key, value in (wrappers if isinstance(wrappers, dict) else {}).items():
        if key == "screen_size":
            out["img_height"] = out["img_width"] = value
        elif key in ATARI_OPTIONS:
            out[ATARI_OPTIONS[key]] = value
        else:
            raise ConfigError(
                f"env_config[{ATARI_KEY!r}] has no option {key!r}.{closest(str(key), WRAP_OPTIONS)} "
                f"Options: {', '.join(WRAP_OPTIONS)}."
            )
    return {**out, **options}


class EnvPoolVectorEnv(gym.vector.VectorEnv):
    """An EnvPool pool as a Gymnasium vector env in next-step autoreset mode. reset(seed=s) makes the
    pool anew with seed s (EnvPool seeds its envs s, s + 1, ... when it is made)."""

    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(self, env_id: str, num_envs: int, options: dict[str, Any]):
        try:
            import envpool
        except ImportError as exc:
            raise EnvError(
                "vectorization_mode='envpool' needs EnvPool, which is not installed: pip install envpool."
            ) from exc
        self._name, self._options, self._envpool = envpool_id(env_id), options, envpool
        known = envpool.list_all_envs()
        if self._name not in known:
            raise EnvError(
                f"EnvPool has no env {self._name!r} (from {env_id!r}).{closest(self._name, known)} "
                "Use another vectorization_mode for envs EnvPool does not have."
            )
        self.num_envs = num_envs
        self._pool = self._make(0)
        self.single_observation_space = self._pool.observation_space
        self.single_action_space = self._pool.action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)

    def _make(self, seed: int) -> Any:
        try:
            return self._envpool.make(
                self._name, env_type="gymnasium", num_envs=self.num_envs, seed=seed, **self._options
            )
        except (TypeError, ValueError, RuntimeError) as exc:  # an option EnvPool's env does not have
            raise EnvError(f"envpool.make({self._name!r}, {self._options}) failed: {exc}") from exc

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        if seed is not None:
            self._pool.close()
            # EnvPool takes an int32 seed (and seeds its envs seed, seed + 1, ...)
            self._pool = self._make(int(seed if isinstance(seed, int) else seed[0]) % (2**31 - self.num_envs))
        obs, info = self._pool.reset()
        return obs, info

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, rewards, terminated, truncated, info = self._pool.step(np.asarray(actions))
        return obs, rewards.astype(np.float32, copy=False), terminated, truncated, info

    def close_extras(self, **kwargs: Any) -> None:
        self._pool.close()
