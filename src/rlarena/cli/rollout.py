"""`rlarena rollout` and `rlarena evaluate`: play a checkpoint. The algorithm, env and config all
come from the checkpoint; a run or trial directory stands for its latest checkpoint.

`rlarena rollout --onnx model.onnx --env ENV` plays an exported policy with onnxruntime alone: that
path imports no torch, so the torch-backed modules below are imported where a checkpoint is loaded."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from rlarena.checkpoint.io import INFERENCE_OVERRIDES, METADATA_FILE
from rlarena.envs.registry import EnvSpec, make_env_creator
from rlarena.errors import CheckpointError, ConfigError, EnvError, RLArenaError
from rlarena.policies.policy import DEFAULT_POLICY_ID
from rlarena.rollout.multi_agent_episode import Episode

if TYPE_CHECKING:
    from rlarena.algorithms import Algorithm

# act(obs, agent, episode) -> action; agent is None in a single-agent env
Act = Callable[[Any, Any, Episode], Any]


def resolve_checkpoint(path: str) -> str:
    """A checkpoint directory, or the latest checkpoint of a trial directory (or of a run's only trial).
    A trial's checkpoints are the real directories in its checkpoints/ (CheckpointManager.scan): one
    that is a symbolic link, or a run's trial directory that is one, is refused, never loaded."""
    from rlarena.train.checkpoints import CheckpointManager

    root = Path(path)
    if not root.exists() or (root / METADATA_FILE).exists() or not root.is_dir():
        return path  # read_checkpoint says what is wrong with it
    trials = (
        [root]
        if os.path.lexists(root / "checkpoints")
        else sorted(p for p in root.iterdir() if os.path.lexists(p / "checkpoints"))
    )
    latest: dict[Path, str] = {}
    for trial in trials:
        manager = CheckpointManager(trial / "checkpoints")
        manager.scan({})
        links = [trial] if trial != root and trial.is_symlink() else manager.ignored
        if links:
            raise CheckpointError(
                f"{str(links[0])!r} is a symbolic link (to {os.readlink(links[0])!r}): rlarena "
                f"loads a trial's checkpoints only from inside its directory. Pass the checkpoint "
                f"directory itself if you trust it."
            )
        if manager.latest is not None:
            latest[trial] = str(trial / "checkpoints" / Path(manager.latest.path).name)
    if len(latest) > 1:
        raise CheckpointError(
            f"{path!r} holds several trials ({', '.join(sorted(t.name for t in latest))}); "
            f"pass one trial directory or a checkpoint directory."
        )
    if not latest:
        return path
    found = next(iter(latest.values()))
    print(f"using the latest checkpoint: {found}", file=sys.stderr)
    return found


# Inference needs no batch of training envs (nor worker processes): one in-process env suffices.


def load(args: argparse.Namespace, **overrides: object) -> tuple[Algorithm, str]:
    from rlarena.algorithms import Algorithm
    from rlarena.cli.spec import resolve_env

    if args.checkpoint is None:
        raise ConfigError("Give a CHECKPOINT directory to play (or --onnx MODEL --env ENV for an exported policy).")
    env = resolve_env(args.env) if args.env else None
    path = resolve_checkpoint(args.checkpoint)
    return Algorithm.from_checkpoint(
        path, env=env, config_overrides={**INFERENCE_OVERRIDES, **overrides}, trusted_modules=args.trusted_modules
    ), path


def rollout(args: argparse.Namespace) -> int:
    if args.onnx:
        return rollout_onnx(args)
    algo, path = load(args)
    try:
        ran = type(algo).__name__
        _check_playable(algo, path)
        if args.run is not None and args.run.lower() != ran.lower():  # RLlib's `rollout --run PPO`
            raise ConfigError(
                f"--run {args.run} does not match the checkpoint: {path} was trained by {ran} "
                f"(pass --run {ran}, or leave --run out: the checkpoint names its algorithm)."
            )

        recorder = None
        if args.output:
            from rlarena.offline.record import EpisodeRecorder

            recorder = EpisodeRecorder(args.output, algo.policies)

        def act(obs: Any, agent: Any, episode: Episode) -> Any:
            pid = DEFAULT_POLICY_ID if agent is None else episode.policy_for(agent, algo.mapping_fn)
            action = algo.compute_single_action(obs, explore=args.explore, policy_id=pid)
            if recorder is not None:
                recorder.act(agent, pid, obs, action, episode.length)
            return action

        if algo.config.env is None:
            raise ConfigError(f"{path} was trained from logged data without an env: pass --env ENV to play it in.")
        try:
            _play(
                args,
                algo.config.env,
                dict(algo.config.env_config),
                algo.env_name,
                type(algo).__name__,
                act,
                algo.is_multi_agent,
                recorder,
            )
        finally:
            if recorder is not None:
                recorder.close()
                print(f"recorded {len(recorder.files)} Parquet file(s) in {args.output}")
    finally:
        algo.stop()
    return 0


def _check_playable(algo: Algorithm, path: str) -> None:
    """A search agent of a game without an env (AlphaZero on tic-tac-toe) has nothing to roll out in."""
    from rlarena.envs.registry import registered_envs
    from rlarena.policies.policy import SearchAgent

    if isinstance(algo, SearchAgent) and algo.env_name not in registered_envs():
        raise ConfigError(
            f"{path} is a {type(algo).__name__} agent for {algo.env_name!r}, a game with no env to "
            f"roll out in; `rlarena evaluate {path}` plays it against a random player."
        )


def rollout_onnx(args: argparse.Namespace) -> int:
    """Episodes played by an exported policy (rlarena.export.onnx.OnnxPolicy): onnxruntime, no torch.
    In a multi-agent env every agent plays that one policy (self-play). A policy with memory carries
    each agent's state from step to step, from zeros at each episode's start."""
    from rlarena.export.onnx import OnnxPolicy

    if args.checkpoint is not None:
        raise ConfigError(f"Give either a CHECKPOINT or --onnx, not both (got {args.checkpoint!r} and --onnx).")
    if args.run is not None:
        raise ConfigError("--run checks a checkpoint's algorithm; an --onnx model has none: leave --run out.")
    if getattr(args, "output", None):
        raise ConfigError(
            "--output records a checkpoint's episodes (with its action log-probs); play a checkpoint instead of --onnx."
        )
    if not args.env:
        raise ConfigError(
            "--onnx needs --env: the env to play (the model's file names it only as a hint), e.g. --env CartPole-v1."
        )
    policy = OnnxPolicy(args.onnx, seed=args.seed)
    from rlarena.cli.spec import resolve_env  # torch-free
    from rlarena.policies.policy import Recurrent, row, stack_obs  # torch-free

    env_spec = resolve_env(args.env)
    # a policy with memory (an exported LSTM or GRU): each agent's state, carried from step to step and
    # back to zeros when an episode starts (each episode is a new Episode)
    states: dict[Any, np.ndarray] = {}
    playing: list[Episode] = []

    def act(obs: Any, agent: Any, episode: Episode) -> Any:
        if not isinstance(policy, Recurrent):
            return policy.compute_single_action(obs, explore=args.explore)
        if not playing or playing[0] is not episode:
            states.clear()
            playing[:] = [episode]
        state = states[agent] if agent in states else policy.initial_state(1)
        actions, states[agent] = policy.compute_actions_with_state(stack_obs([obs]), state, args.explore)
        action = row(actions, 0)
        return action.item() if isinstance(action, np.ndarray | np.generic) and action.ndim == 0 else action

    _play(args, env_spec, {}, args.env, f"ONNX policy {policy.policy_id!r} ({Path(args.onnx).name})", act, None)
    return 0


def _play(
    args: argparse.Namespace,
    env_spec: EnvSpec,
    env_config: dict,
    env_label: str,
    who: str,
    act: Act,
    multi_agent: bool | None,
    recorder: Any = None,
) -> None:
    """Play args.episodes episodes (None: as many as args.steps allows) and print their returns; the
    episodes stop early once args.steps env steps are played in all. multi_agent=None: whatever the env is."""
    video_fmt = None
    if args.video:
        from rlarena.export.video import available_format

        video_fmt = available_format(args.video_format)
        try:  # the directory you name may be a link of yours; the files in it are written by rename (_episode)
            Path(args.video).mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ConfigError(f"--video {args.video!r} is a file: give a directory for the episode videos.") from None
    render_mode = "rgb_array" if args.video else ("human" if args.render else None)
    if render_mode == "rgb_array":  # frames off screen: pygame-drawn envs need no display (and say so)
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    try:
        env = make_env_creator(env_spec, render_mode)(env_config)
        if multi_agent is None:
            from rlarena.envs.multi_agent import is_multi_agent

            multi_agent = is_multi_agent(env) or not isinstance(env, gym.Env)
        if multi_agent:
            env = _as_multi_agent(env)
    except EnvError:
        raise
    except Exception as exc:  # e.g. pygame missing or no display for --render
        raise EnvError(
            f"Creating env {env_label!r} with render_mode={render_mode!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    mode = "sampled actions (--explore)" if args.explore else "greedy actions"
    limits = [_count(args.episodes, "episode")] if args.episodes is not None else []
    if args.steps is not None:
        limits.append(f"at most {_count(args.steps, 'step')}")
    print(f"{who} on {env_label}, {' and '.join(limits)}, {mode}")
    returns: list[float] = []
    steps = 0
    try:
        while (args.episodes is None or len(returns) < args.episodes) and (args.steps is None or steps < args.steps):
            episode = len(returns)
            seed = None if args.seed is None else args.seed + episode
            cap = [n for n in (args.max_steps, None if args.steps is None else args.steps - steps) if n is not None]
            ret, length, video, per_agent = _episode(
                act, multi_agent, env, env_label, seed, args, video_fmt, episode, min(cap, default=None), recorder
            )
            returns.append(ret)
            steps += length
            # multi-agent: the return is the agents' sum (RLlib's episode return), which a zero-sum
            # game always makes 0, so each agent's own return follows
            agents = ", ".join(f"{agent} {r:+.2f}" for agent, r in per_agent.items())
            print(
                f"episode {episode + 1}: return {ret:.2f}"
                + (f" ({agents})" if agents else "")
                + f", length {length}"
                + (f", video {video}" if video else "")
            )
    finally:
        env.close()
    played = _count(len(returns), "episode") + (f", {_count(steps, 'step')}" if args.steps is not None else "")
    print(f"mean return over {played}: {np.mean(returns):.2f} ± {np.std(returns):.2f}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _as_multi_agent(env: Any) -> Any:
    """multiagent.builder.as_multi_agent for envs that are multi-agent already (ours, PettingZoo's),
    without importing the builder (it imports torch)."""
    from rlarena.envs.multi_agent import is_multi_agent

    if is_multi_agent(env):
        return env
    if isinstance(env, gym.Env):  # a checkpoint's single-agent env played through the multi-agent runner
        from rlarena.multiagent.builder import as_multi_agent

        return as_multi_agent(env)
    from rlarena.envs.pettingzoo_adapters import wrap_multi_agent

    return wrap_multi_agent(env)


def _episode(
    act: Act,
    multi_agent: bool,
    env: Any,
    env_label: str,
    seed: int | None,
    args: argparse.Namespace,
    video_fmt: str | None,
    index: int,
    max_steps: int | None,
    recorder: Any = None,
) -> tuple[float, int, Path | None, dict[Any, float]]:
    """One episode, cut after max_steps steps (--max-steps, or what is left of --steps). `recorder`
    (rlarena.offline.record.EpisodeRecorder, for --output) sees the rewards and the episode's end;
    `act` reports the actions to it."""
    writer = None
    if video_fmt:  # a name rlarena picks in the --video directory: a link planted there is replaced
        from rlarena.export.video import VideoWriter, video_fps

        writer = VideoWriter(
            Path(args.video) / f"episode_{index:03d}.{video_fmt}",
            video_fmt,
            video_fps(env, args.fps),
            replace_link=True,
        )
    try:
        obs, _ = env.reset(seed=seed)
        if writer:
            writer.append(env.render())
        total, length, done = 0.0, 0, False
        episode = Episode(env_index=0)  # multi-agent: maps each agent to its policy, once per episode
        per_agent: dict[Any, float] = {}
        if recorder is not None:
            recorder.start_episode()
        while not done:
            if multi_agent:  # obs holds exactly the agents to act; the reward is the agents' sum
                actions = {agent: act(o, agent, episode) for agent, o in obs.items()}
                obs, rewards, terminateds, truncateds, _ = env.step(actions)
                reward, terminated, truncated = sum(rewards.values()), terminateds["__all__"], truncateds["__all__"]
                for agent, r in rewards.items():
                    per_agent[agent] = per_agent.get(agent, 0.0) + float(r)
            else:
                obs, reward, terminated, truncated, _ = env.step(act(obs, None, episode))
                rewards, terminateds, truncateds = {None: reward}, {None: terminated}, {None: truncated}
            total += float(reward)
            length += 1
            episode.length = length
            done = terminated or truncated or (max_steps is not None and length >= max_steps)
            if recorder is not None:
                _record_step(recorder, obs, rewards, terminateds, truncateds, done, multi_agent)
            if writer:
                writer.append(env.render())
    except BaseException as exc:
        if writer:  # no half video: a file already at its name is kept
            writer.discard()
        if isinstance(exc, RLArenaError) or not isinstance(exc, Exception):
            raise
        # the env's own error (or the renderer's), with its name
        raise EnvError(f"Env {env_label!r} failed during the rollout: {type(exc).__name__}: {exc}") from exc
    return total, length, writer.close() if writer else None, per_agent


def _record_step(
    recorder: Any, obs: Any, rewards: dict, terminateds: dict, truncateds: dict, done: bool, multi_agent: bool
) -> None:
    """Rewards to each agent's open row; rows of agents whose episode ended closed with their final
    observation (an episode cut by --max-steps or --steps: neither terminated nor truncated)."""
    for agent, r in rewards.items():
        recorder.reward(agent, r)
    agents_obs = obs if multi_agent else {None: obs}
    ended = {a for a in (*terminateds, *truncateds) if a != "__all__" and (terminateds.get(a) or truncateds.get(a))}
    for agent in ended | (set(recorder.open_agents) if done else set()):
        recorder.end(
            agent,
            agents_obs.get(agent),
            bool(terminateds.get(agent, terminateds.get("__all__", False))),
            bool(truncateds.get(agent, truncateds.get("__all__", False))),
        )
    if done:
        recorder.end_episode()


def evaluate(args: argparse.Namespace) -> int:
    seed = {} if args.seed is None else {"seed": args.seed}
    algo, path = load(args, evaluation_duration=args.episodes, evaluation_explore=args.explore, **seed)
    try:
        out = algo.evaluate()
    finally:
        algo.stop()
    mode = "explore" if args.explore else "greedy"
    if args.json:
        print(
            json.dumps(
                {
                    "checkpoint": str(Path(path).resolve()),
                    "algorithm": type(algo).__name__,
                    "env": algo.env_name,
                    "explore": args.explore,
                    **out,
                }
            )
        )
    elif "episodes" not in out:  # AlphaZero: scores against a random player, not env episodes
        print(
            f"{type(algo).__name__} on {algo.env_name}, {args.episodes} games per seat from random openings: "
            + ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in out.items())
        )
    else:
        print(
            f"{type(algo).__name__} on {algo.env_name}, {out['episodes']} episodes ({mode}): "
            f"return {out['episode_return_mean']:.2f} ± {out['episode_return_std']:.2f}  "
            f"min {out['episode_return_min']:.2f}  max {out['episode_return_max']:.2f}  "
            f"length {out['episode_len_mean']:.1f}"
        )
    return 0
