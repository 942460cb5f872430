"""Atari games (ale-py) with DeepMind's preprocessing (Mnih et al. 2015), as Stable-Baselines3's
AtariWrapper and RLlib's wrap_deepmind apply it:

- up to `noop_max` no-ops at reset, frames skipped `frame_skip` at a time with the max over the last two
  (Atari sprites flicker), grey frames resized to `screen_size` squared: gymnasium's AtariPreprocessing;
- episodic life: losing a life ends the episode for learning, and the next reset continues the game
  (a real reset only once the game is over, or when a seed is given);
- FIRE after each reset in games that wait for it (action 1 is FIRE);
- rewards clipped to their sign;
- the last `frame_stack` frames stacked, channels first: uint8 observations of shape (4, 84, 84).

The raw env is made with frameskip=1 (the wrappers skip frames); the id's sticky actions are kept
("ALE/...-v5": repeat_action_probability=0.25, as Machado et al. 2018 recommend; pass
repeat_action_probability=0.0 for the older NoFrameskip-v4 setting). The step that ends a game (not
a life) carries info["episode"] = {"r": the game's unclipped score over all its lives, "l": its length
in frames, "t": seconds}, from gymnasium's RecordEpisodeStatistics under the other wrappers: with
episodic life and clipping, the returns of the episodes learnt from are not the game's score.

`.environment("ALE/Breakout-v5")` builds make_atari_env: these wrappers by default,
env_config={"atari_wrappers": False} for the raw env, or {"atari_wrappers": {"frame_stack": 1}} to
change wrap_atari's options. ale-py is imported only when an ALE id is made. Never imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, RecordEpisodeStatistics

from rlarena.envs.external_ids import register_external
from rlarena.errors import ConfigError, EnvError, closest

ATARI_KEY = "atari_wrappers"  # the env_config key that turns the wrappers off or sets their options
WRAP_OPTIONS = ("frame_skip", "screen_size", "frame_stack", "clip_rewards", "episodic_life", "noop_max")


class EpisodicLife(gym.Wrapper):
    """A lost life ends the episode (terminated=True) while the game goes on: the next reset takes a
    no-op step instead of restarting the game (Mnih et al. 2015; SB3's EpisodicLifeEnv). A reset with a
    seed or options restarts the game."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()  # type: ignore[attr-defined]
        # lives > 0: some games (Qbert) sit at 0 lives for a few frames before the game ends
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if self.game_over or seed is not None or options is not None:
            obs, info = self.env.reset(seed=seed, options=options)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)  # the game goes on: a no-op
            if terminated or truncated:
                obs, info = self.env.reset()
        self.game_over = False
        self.lives = self.env.unwrapped.ale.lives()  # type: ignore[attr-defined]
        return obs, info


class FireReset(gym.Wrapper):
    """Press FIRE (action 1), then action 2, after each reset: games such as Breakout wait for FIRE to
    start, and an agent that has not learnt that yet would idle (SB3's FireResetEnv)."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self.env.reset(seed=seed, options=options)
        for action in (1, 2):
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                obs, info = self.env.reset()
        return obs, info


class ClipRewardSign(gym.RewardWrapper):
    """Rewards as their sign, -1, 0 or +1 (Mnih et al. 2015): one step size fits every game's scale."""

    def reward(self, reward: SupportsFloat) -> float:
        return float(np.sign(float(reward)))


def needs_fire(env: gym.Env) -> bool:
    meanings = env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]
    return len(meanings) >= 3 and meanings[1] == "FIRE"


def wrap_atari(
    env: gym.Env,
    *,
    frame_skip: int = 4,
    screen_size: int = 84,
    frame_stack: int = 4,
    clip_rewards: bool = True,
    episodic_life: bool = True,
    noop_max: int = 30,
) -> gym.Env:
    """`env`, an ale-py env made with frameskip=1, with DeepMind's preprocessing (the module's docstring):
    uint8 observations of shape (frame_stack, screen_size, screen_size)."""
    for name, value, least in (("frame_skip", frame_skip, 1), ("screen_size", screen_size, 1),
                               ("frame_stack", frame_stack, 1), ("noop_max", noop_max, 0)):  # fmt: skip
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ConfigError(f"wrap_atari: {name}={value!r}, expected a whole number >= {least}.")
    ale = env.unwrapped
    if not hasattr(ale, "ale"):
        raise EnvError(f"wrap_atari wraps ale-py's Atari envs, got {ale}; make it with gymnasium.make('ALE/...').")
    if frame_skip > 1 and getattr(ale, "_frameskip", None) != 1:
        raise ConfigError(
            f"wrap_atari: the env skips frames itself (frameskip={getattr(ale, '_frameskip', '?')}, the ALE v5 "
            f"default), and frame_skip={frame_skip} would skip again; make it with gymnasium.make(id, frameskip=1)."
        )
    env = RecordEpisodeStatistics(env)  # under the rest: the game's own score and length
    try:
        env = AtariPreprocessing(
            env, noop_max=noop_max, frame_skip=frame_skip, screen_size=screen_size, terminal_on_life_loss=False
        )
    except gym.error.DependencyNotInstalled as exc:  # opencv, for the resize
        raise EnvError(f'wrap_atari needs opencv to resize frames: pip install "rlarena[atari]" ({exc}).') from exc
    if episodic_life:
        env = EpisodicLife(env)
    if needs_fire(env):
        env = FireReset(env)
    if clip_rewards:
        env = ClipRewardSign(env)
    return FrameStackObservation(env, frame_stack)  # (frame_stack, H, W): channels first


def make_atari(env_id: str, *, render_mode: str | None = None, **kwargs: Any) -> gym.Env:
    """gymnasium.make(env_id, frameskip=1) wrapped by wrap_atari. kwargs: wrap_atari's options
    (frame_skip, screen_size, frame_stack, clip_rewards, episodic_life, noop_max); the others go to
    gymnasium.make (repeat_action_probability, full_action_space, mode, difficulty...)."""
    if "frameskip" in kwargs:
        raise ConfigError(
            f"make_atari({env_id!r}): frameskip={kwargs['frameskip']!r} is the raw env's; the wrappers skip "
            "frames (and max-pool the last two): pass frame_skip= instead."
        )
    options = {k: kwargs.pop(k) for k in WRAP_OPTIONS if k in kwargs}
    if env_id not in gym.registry:
        register_external(env_id)
    try:
        env = gym.make(env_id, frameskip=1, render_mode=render_mode, **kwargs)
    except gym.error.Error as exc:  # an unknown id, or an option the game does not have
        raise EnvError(f"Could not make Atari env {env_id!r}: {exc}.{closest(env_id, gym.registry)}") from exc
    return wrap_atari(env, **options)


def make_atari_env(env_id: str, env_config: Mapping[str, Any], render_mode: str | None = None) -> gym.Env:
    """What `.environment(env_id, env_config=...)` builds for an ALE id: make_atari with the options of
    env_config["atari_wrappers"] (True, the default: wrap_atari's defaults; a dict: some of them), or
    the raw env for False; env_config's other keys go to gymnasium.make."""
    wrappers = env_config.get(ATARI_KEY, True)
    make_kwargs = {k: v for k, v in env_config.items() if k != ATARI_KEY}
    misplaced = [k for k in make_kwargs if k in WRAP_OPTIONS]
    if misplaced:
        raise ConfigError(
            f"env_config[{misplaced[0]!r}] is a wrapper option: pass env_config={{{ATARI_KEY!r}: "
            f"{{{misplaced[0]!r}: ...}}}} (wrap_atari's options: {', '.join(WRAP_OPTIONS)})."
        )
    if wrappers is False:
        if env_id not in gym.registry:
            register_external(env_id)
        return gym.make(env_id, render_mode=render_mode, **make_kwargs)
    if wrappers is True:
        wrappers = {}
    if not isinstance(wrappers, dict):
        raise ConfigError(
            f"env_config[{ATARI_KEY!r}] is {wrappers!r}; expected True (DeepMind's wrappers, the default), "
            f"False (the raw env) or a dict of wrap_atari's options ({', '.join(WRAP_OPTIONS)})."
        )
    for key in wrappers:
        if key not in WRAP_OPTIONS:
            raise ConfigError(
                f"env_config[{ATARI_KEY!r}] has no option {key!r}.{closest(str(key), WRAP_OPTIONS)} "
                f"Options: {', '.join(WRAP_OPTIONS)}."
            )
    return make_atari(env_id, render_mode=render_mode, **wrappers, **make_kwargs)
