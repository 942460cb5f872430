"""The env side of "any observation": the memory envs (their scores without and with memory), the
Atari wrappers and the registry's handling of ALE ids, and the optional packages' envs (MinAtar,
MiniGrid) built from their ids. No learning: scripted policies show what each env rewards."""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env

from rlarena import PPOConfig
from rlarena.envs import external_ids
from rlarena.envs.checker import check_env
from rlarena.envs.memory_envs import RepeatPreviousEnv, TMazeEnv
from rlarena.envs.registry import make_env_creator, make_vector_env
from rlarena.errors import ConfigError, EnvError

MEMORY_IDS = ["StatelessCartPole-v1", "CartPoleNoVel-v1", "RepeatPrevious-v0", "TMaze-v0"]


def returns(env: gym.Env, policy: Callable[[list[np.ndarray]], int], episodes: int) -> np.ndarray:
    """The return of each of `episodes` seeded episodes; the policy sees every observation so far."""
    out = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        seen, total, done = [obs], 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(seen))
            seen.append(obs)
            total += float(reward)
            done = terminated or truncated
        out.append(total)
    return np.array(out)


# -- memory envs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", MEMORY_IDS)
def test_memory_envs_pass_both_checkers(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CartPoleNoVel keeps CartPole's infinite velocity bounds
        gymnasium_check_env(gym.make(env_id).unwrapped, skip_render_check=True)
    check_env(env_id)


@pytest.mark.parametrize("env_id", MEMORY_IDS)
def test_memory_envs_build_as_rlarena_builds_them(env_id):
    env = make_env_creator(env_id)({})  # gymnasium.make with render_mode=None
    env.reset(seed=0)
    assert env.observation_space.contains(env.step(env.action_space.sample())[0])
    vec = make_vector_env(env_id, {}, 2)
    assert vec.reset(seed=0)[0].shape == (2, *env.observation_space.shape)
    vec.close()


def test_stateless_cartpole_hides_the_velocities():
    full, _ = gym.make("CartPole-v1").reset(seed=3)
    env = gym.make("StatelessCartPole-v1")
    obs, _ = env.reset(seed=3)
    assert env.observation_space.shape == (2,) and env.spec.max_episode_steps == 500
    np.testing.assert_array_equal(obs, full[[0, 2]])
    np.testing.assert_allclose(env.observation_space.high, [4.8, 0.41887903])
    novel = gym.make("CartPoleNoVel-v1")  # RL-Zoo's: CartPole's shape and space, velocities zero
    obs, _ = novel.reset(seed=3)
    assert novel.observation_space == gym.make("CartPole-v1").observation_space
    np.testing.assert_array_equal(obs, full * np.array([1, 0, 1, 0], dtype=np.float32))
    obs, *_ = novel.step(1)
    assert obs[1] == 0.0 and obs[3] == 0.0


def test_stateless_cartpole_needs_one_step_of_memory():
    env = gym.make("StatelessCartPole-v1")  # with CartPole-v1's 500-step limit
    lean = returns(env, lambda seen: int(seen[-1][1] > 0), 5)  # memoryless: push toward the lean
    speed = returns(env, lambda seen: int(seen[-1][1] + 5 * (seen[-1][1] - seen[max(len(seen) - 2, 0)][1]) > 0), 5)
    assert lean.mean() < 100 and (speed == 500).all()


def test_repeat_previous_chance_and_maximum():
    env = RepeatPreviousEnv()  # 4 symbols, delay 2, 32 steps
    assert env.observation_space == gym.spaces.Box(0, 1, (4,), np.float32)
    remember = returns(env, lambda seen: int(np.argmax(seen[-3])) if len(seen) >= 3 else 0, 3)
    np.testing.assert_allclose(remember, 1.0)
    memoryless = returns(env, lambda seen: int(np.argmax(seen[-1])), 300)  # the best it can do is chance
    assert abs(memoryless.mean() - (2 / 4 - 1)) < 0.03  # -(1 - 2/k)
    first = returns(RepeatPreviousEnv(symbols=2, delay=0, length=10), lambda seen: int(np.argmax(seen[-1])), 2)
    np.testing.assert_allclose(first, 1.0)  # delay 0 needs no memory


def test_repeat_previous_scores_nothing_before_delay_steps():
    env = RepeatPreviousEnv(symbols=3, delay=2, length=6)
    env.reset(seed=0)
    rewards = [env.step(0)[1] for _ in range(6)]
    assert rewards[:2] == [0.0, 0.0] and all(abs(r) == 0.25 for r in rewards[2:])


def test_tmaze_chance_and_maximum():
    env = TMazeEnv(length=5)
    first_obs = env.reset(seed=0)[0]
    assert first_obs[:2].sum() == 1 and first_obs[2:].sum() == 0

    def remember(seen):
        return TMazeEnv.FORWARD if seen[-1][3] == 0 else (TMazeEnv.LEFT if seen[0][0] else TMazeEnv.RIGHT)

    np.testing.assert_allclose(returns(env, remember, 10), 1.0)
    always_left = returns(env, lambda seen: TMazeEnv.FORWARD if seen[-1][3] == 0 else TMazeEnv.LEFT, 400)
    assert set(always_left) == {-1.0, 1.0} and abs(always_left.mean()) < 0.12  # half the goals


def test_tmaze_truncates_an_agent_that_never_chooses():
    env = TMazeEnv(length=3, step_penalty=0.1)
    env.reset(seed=0)
    steps = [env.step(TMazeEnv.FORWARD) for _ in range(8)]
    assert [s[3] for s in steps] == [False] * 7 + [True] and not any(s[2] for s in steps)
    assert steps[2][0][3] == 1.0 and steps[-1][1] == pytest.approx(-0.1)


def test_memory_envs_are_seeded_by_reset():
    for env_id in MEMORY_IDS:
        env = gym.make(env_id)
        runs = []
        for _ in range(2):
            obs, _ = env.reset(seed=7)
            runs.append([obs] + [env.step(0)[0] for _ in range(3)])
        np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: RepeatPreviousEnv(symbols=1), "RepeatPrevious-v0: symbols=1, expected a whole number >= 2"),
        (lambda: RepeatPreviousEnv(delay=4, length=4), "length=4 leaves nothing to score with delay=4"),
        (lambda: TMazeEnv(length=0), "TMaze-v0: length=0"),
        (lambda: gym.make("TMaze-v0", step_penalty=2), "TMaze-v0: step_penalty=2"),
        (lambda: RepeatPreviousEnv(render_mode="human"), "render_mode='human', but it draws nothing"),
    ],
)
def test_memory_env_options_are_checked(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_registration_imports_nothing_heavy():
    code = (
        "import sys, rlarena.envs; from rlarena.envs.registry import make_env_creator; "
        "make_env_creator('CartPole-v1')({}); "
        "print([m for m in ('torch', 'ale_py', 'cv2', 'minatar', 'minigrid', 'rlarena.envs.memory_envs') "
        "if m in sys.modules])"
    )
    out = subprocess.check_output([sys.executable, "-c", code], text=True).strip().splitlines()[-1]
    assert out == "[]", f"imported eagerly: {out}"


# -- optional packages ---------------------------------------------------------------------------
def test_a_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(external_ids.PACKAGES, "Nowhere/", ("rlarena_no_such_package", "", "nowhere"))
    with pytest.raises(EnvError, match=r'needs the rlarena_no_such_package package.*pip install "rlarena\[nowhere\]"'):
        make_env_creator("Nowhere/Game-v0")


def test_minatar_builds_and_steps():
    pytest.importorskip("minatar")
    env = make_env_creator("MinAtar/Breakout-v1")({})  # registered on first use
    obs, _ = env.reset(seed=0)
    assert obs.shape == (10, 10, 4) and obs.dtype == np.bool_ and env.action_space == gym.spaces.Discrete(3)
    for _ in range(5):
        obs, *_ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)


def test_minigrid_builds_and_steps():
    pytest.importorskip("minigrid")
    env = make_env_creator("MiniGrid-Empty-5x5-v0")({})
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (7, 7, 3)
    obs, *_ = env.step(2)  # forward
    assert env.observation_space["image"].contains(obs["image"])
    # its mission is one fixed sentence: dropped, so the default models read the observation
    assert set(env.observation_space.spaces) == {"image", "direction"} and set(obs) == {"image", "direction"}


def test_minigrid_mission_modes():
    pytest.importorskip("minigrid")
    # Fetch draws its mission per episode: read as word indices by default
    env = make_env_creator("MiniGrid-Fetch-5x5-N2-v0")({})
    obs, _ = env.reset(seed=0)
    assert isinstance(env.observation_space["mission"], gym.spaces.MultiDiscrete)
    assert env.observation_space.contains(obs) and obs["mission"].any()
    raw = make_env_creator("MiniGrid-Empty-5x5-v0")({"minigrid_mission": "keep"})
    assert "mission" in raw.observation_space.spaces
    with pytest.raises(ConfigError, match="minigrid_mission.*'drop', 'words', 'keep'"):
        make_env_creator("MiniGrid-Empty-5x5-v0")({"minigrid_mission": "text"})


def test_ppo_builds_on_a_minigrid_id():
    pytest.importorskip("minigrid")
    algo = (
        PPOConfig()
        .environment("MiniGrid-Empty-5x5-v0")
        .env_runners(num_envs_per_env_runner=2)
        .training(train_batch_size=64, minibatch_size=32, num_epochs=1)
        .build()
    )
    try:
        result = algo.train()
        assert result["num_env_steps_sampled_lifetime"] == 64
    finally:
        algo.stop()


# -- Atari -----------------------------------------------------------------------------------------
@pytest.fixture
def breakout() -> gym.Env:
    pytest.importorskip("ale_py")
    pytest.importorskip("cv2")
    from rlarena.envs.atari import make_atari

    return make_atari("ALE/Breakout-v5")


def test_atari_observations_are_stacked_uint8_frames_channels_first(breakout):
    assert breakout.observation_space == gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    assert breakout.unwrapped._frameskip == 1  # the wrappers skip frames
    assert breakout.unwrapped.spec.kwargs["repeat_action_probability"] == 0.25  # v5's sticky actions kept
    obs, info = breakout.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8 and info["lives"] == 5
    obs, reward, *_ = breakout.step(1)
    assert breakout.observation_space.contains(obs) and reward in (-1.0, 0.0, 1.0)


def test_atari_episodic_life_ends_the_episode_not_the_game(breakout):
    breakout.reset(seed=0)
    breakout.action_space.seed(0)
    for _ in range(500):
        _, _, terminated, _, info = breakout.step(breakout.action_space.sample())
        if terminated:
            break
    assert terminated and info["lives"] == 4 and "episode" not in info  # a life lost, the game goes on
    _, info = breakout.reset()
    assert info["lives"] == 4  # continued, not restarted
    _, info = breakout.reset(seed=1)
    assert info["lives"] == 5  # a seeded reset restarts the game


def test_ale_ids_are_wrapped_by_default_and_can_opt_out():
    pytest.importorskip("ale_py")
    pytest.importorskip("cv2")
    assert make_env_creator("ALE/Pong-v5")({}).observation_space.shape == (4, 84, 84)
    raw = make_env_creator("ALE/Pong-v5")({"atari_wrappers": False})  # the key is not passed on to gym.make
    assert raw.observation_space.shape == (210, 160, 3) and raw.unwrapped._frameskip == 4
    one = make_env_creator("ALE/Pong-v5")({"atari_wrappers": {"frame_stack": 1}, "repeat_action_probability": 0.0})
    assert one.observation_space.shape == (1, 84, 84)
    assert one.unwrapped.spec.kwargs["repeat_action_probability"] == 0.0
    vec = make_vector_env("ALE/Pong-v5", {}, 2)  # ours, not ale-py's own vector env
    assert isinstance(vec, gym.vector.SyncVectorEnv) and vec.observation_space.shape == (2, 4, 84, 84)
    vec.close()


@pytest.mark.parametrize(
    ("env_config", "message"),
    [
        ({"atari_wrappers": {"frame_stak": 2}}, "has no option 'frame_stak'. Did you mean 'frame_stack'?"),
        ({"atari_wrappers": "yes"}, "expected True .* False .* or a dict"),
        ({"frame_stack": 2}, "env_config\\['frame_stack'\\] is a wrapper option: pass env_config=\\{'atari_wrappers'"),
        ({"frameskip": 4}, "pass frame_skip= instead"),
        ({"atari_wrappers": {"frame_stack": 0}}, "frame_stack=0, expected a whole number >= 1"),
    ],
)
def test_bad_atari_options_are_one_line_config_errors(env_config, message):
    pytest.importorskip("ale_py")
    with pytest.raises(ConfigError, match=message) as info:
        make_env_creator("ALE/Pong-v5")(env_config)
    assert "\n" not in str(info.value)


def test_wrap_atari_refuses_an_env_that_skips_frames_itself():
    pytest.importorskip("ale_py")
    from rlarena.envs.atari import wrap_atari

    with pytest.raises(ConfigError, match="skips frames itself \\(frameskip=4"):
        wrap_atari(gym.make("ALE/Pong-v5"))


def test_check_env_reaches_ale_ids_and_the_wrapped_env():
    pytest.importorskip("ale_py")
    pytest.importorskip("cv2")
    from rlarena.envs.atari import make_atari

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env("ALE/Pong-v5")  # registered on first use: the raw env
        check_env(make_atari("ALE/Pong-v5"))


# -- EnvPool backend -------------------------------------------------------------------------------
def test_envpool_gives_the_observations_and_autoreset_of_the_gymnasium_atari_envs():
    pytest.importorskip("envpool")
    pool = make_vector_env("ALE/Pong-v5", {"max_episode_steps": 5}, 2, "envpool")
    ref = make_vector_env("ALE/Pong-v5", {}, 2, "sync")
    assert pool.single_observation_space == ref.single_observation_space  # (4, 84, 84) uint8
    assert pool.single_action_space == ref.single_action_space
    obs, _ = pool.reset(seed=3)
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    ends = []
    for _ in range(7):
        obs, rewards, _, truncated, _ = pool.step(np.zeros(2, np.int64))
        assert rewards.dtype == np.float32 and pool.observation_space.contains(obs)
        ends.append(bool(truncated[0]))
    # 5 agent steps, then the step after the end only resets (next-step autoreset, as the runners read)
    assert ends == [False, False, False, False, True, False, False]
    again, _ = pool.reset(seed=3)
    first, _ = make_vector_env("ALE/Pong-v5", {}, 2, "envpool").reset(seed=3)
    np.testing.assert_array_equal(again, first)  # reset(seed) makes the pool anew with that seed
    pool.reset(seed=2**32 - 1)  # the runners' seeds span uint32; EnvPool takes int32


def test_ppo_trains_on_envpool_frames_stored_a_frame_per_step():
    pytest.importorskip("envpool")
    from rlarena.rollout.frames import FrameStacks

    algo = (
        PPOConfig()
        .environment("ALE/Pong-v5", env_config={"atari_wrappers": {"screen_size": 42}})
        .env_runners(num_envs_per_env_runner=2, vectorization_mode="envpool")
        .training(train_batch_size=64, minibatch_size=32, num_epochs=1)
        .build()
    )
    try:
        assert type(algo.runner.env).__name__ == "EnvPoolVectorEnv"
        assert algo.policies["default_policy"].observation_space.shape == (4, 42, 42)
        assert algo.train()["num_env_steps_sampled_lifetime"] == 64
        assert isinstance(algo.runner.storage.obs, FrameStacks)
    finally:
        algo.stop()


@pytest.mark.parametrize(
    ("env", "env_config", "error"),
    [
        ("CartPole-v1", {"atari_wrappers": {}}, "is for ale-py's 'ALE/...' ids"),
        ("ALE/Pong-v5", {"atari_wrappers": False}, "preprocesses Atari frames itself"),
        ("ALE/Pong-v5", {"atari_wrappers": {"frame_stak": 2}}, "no option 'frame_stak'. Did you mean 'frame_stack'"),
        ("ALE/Pongg-v5", {}, "EnvPool has no env 'Pongg-v5'"),
        (RepeatPreviousEnv, {}, "takes an id EnvPool knows"),
    ],
)
def test_envpool_refuses_what_it_cannot_build_in_one_line(env, env_config, error):
    pytest.importorskip("envpool")
    with pytest.raises((ConfigError, EnvError), match=error):
        make_vector_env(env, env_config, 2, "envpool")


# -- POPGym ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", ["popgym-RepeatPreviousHard-v0", "popgym-MineSweeperEasy-v0"])
def test_popgym_ids_build_and_pass_the_checker(env_id):
    pytest.importorskip("popgym")
    check_env(env_id)  # its __init__ takes no render_mode: none is passed unless rendering
    env = make_env_creator(env_id)({})
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


def test_ppo_with_an_lstm_trains_on_a_popgym_id():
    pytest.importorskip("popgym")
    algo = (
        PPOConfig()
        .environment("popgym-RepeatPreviousEasy-v0")
        .env_runners(num_envs_per_env_runner=2)
        .training(train_batch_size=64, minibatch_size=32, num_epochs=1, model={"use_lstm": True, "max_seq_len": 8})
        .build()
    )
    try:
        assert algo.train()["num_env_steps_sampled_lifetime"] == 64
    finally:
        algo.stop()
