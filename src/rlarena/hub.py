"""Ship an agent: package a checkpoint for the Hugging Face Hub, and load one back.

    rlarena.package_to_hub("runs/.../checkpoint_000040", "ppo-lunarlander", repo_id="me/ppo-lunarlander")
    algo = rlarena.load_from_hub("me/ppo-lunarlander")   # or the local folder
    algo.compute_single_action(obs, explore=False)

The package folder (the layout RL-Zoo and the Deep RL course use: a card, weights, a replay, results):

    README.md          model card: Hub metadata (library_name, tags, model-index with mean_reward) + usage
    config.json        what load_from_hub rebuilds from: algorithm, config, policy spaces, file hashes
    model.safetensors  the packaged policy's weights (its get_state(): actor-critic, Q-network, or actor and critics)
    policy.<id>.safetensors  multi-agent only: the weights of the checkpoint's other trained policies
    model.onnx         the packaged policy as an ONNX graph (Algorithm.export_onnx)
    results.json       the evaluation: per-episode returns, lengths and seeds, mean, std
    replay.mp4         evaluation episode 1 (replay.gif when imageio-ffmpeg is missing)

Loading reads JSON and safetensors only (never pickle), and imports nothing the config names unless
the user allowed it, as Algorithm.from_checkpoint (rlarena.refs: rlarena's built-ins, registered
objects, an `env` passed again, `trusted_modules`). The optimizer state is not shipped: a Hub agent is
for inference (the checkpoint directory is for resuming training).
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import re
import shutil
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlarena import limits
from rlarena._version import __version__
from rlarena.checkpoint.io import (
    INFERENCE_OVERRIDES,
    json_default,
    read_json,
    read_verified,
    replace_dir,
    save_path,
    sha256,
)
from rlarena.errors import CheckpointError, ConfigError, EnvError, RLArenaError
from rlarena.refs import Trust
from rlarena.rollout.episodes import make_env, play_episode, record_video

PACKAGE_FORMAT = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
ONNX_FILE = "model.onnx"
RESULTS_FILE = "results.json"
CARD_FILE = "README.md"
VIDEO_STEM = "replay"
# what load_from_hub downloads: a Hub agent loads without its video and ONNX graph
LOAD_PATTERNS = [CONFIG_FILE, "*.safetensors"]
# inference needs no batch of training envs (nor worker processes): one in-process env suffices
HUB_INSTALL = "pip install 'rlarena[hub]'"
# the Hub's rule for repo ids (huggingface_hub.utils.validate_repo_id): [namespace/]name of letters,
# digits, '-', '_', '.', at most 96 characters; a model repo to push needs the namespace
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


class HubError(RLArenaError):
    """The Hub cannot be reached, refuses the token, or has no such repository."""


@dataclass
class HubPackage:
    """What package_to_hub made."""

    folder: Path
    results: dict[str, Any]  # the contents of results.json
    video: Path | None  # None: packaged without a replay
    url: str | None = None  # the Hub repository, when pushed


# -- package --------------------------------------------------------------------------------------
def package_to_hub(
    checkpoint: Any,
    out: str | os.PathLike,
    *,
    repo_id: str | None = None,
    push: bool = False,
    episodes: int = 10,
    seed: int = 0,
    policy_id: str | None = None,
    opponent: str | None = None,
    video: bool = True,
    video_format: str = "auto",
    fps: int | None = None,
    max_video_steps: int | None = None,
    env: Any = None,
    token: str | None = None,
    private: bool | None = None,
    commit_message: str | None = None,
    trusted_modules: list[str] | None = None,
) -> HubPackage:
    """Evaluate an agent, record a replay and write a Hub-ready folder at `out`; push it if asked.

    `checkpoint`: a checkpoint directory or an Algorithm. `episodes` greedy episodes with seeds
    seed, seed+1, ... give mean_reward ± std; the replay is episode 1, recorded with
    render_mode="rgb_array" (an env that cannot render is packaged without one, with a warning).
    Multi-agent: `policy_id` (default: the one trained policy) is packaged and evaluated, its
    agents' rewards are its return; the other agents are played by `opponent` (a policy id of the
    checkpoint, seats alternating) or, when None, by the checkpoint's own policy mapping.
    `push` uploads to `repo_id` with `token` (default: HF_TOKEN or the huggingface-cli login).
    `trusted_modules`: as in Algorithm.from_checkpoint, modules whose objects the checkpoint may name.
    The folder is written atomically; an existing package at `out` is replaced only once the new one
    is complete, and a folder holding anything else is refused.
    """
    if episodes < 1:
        raise ConfigError(f"episodes={episodes}: evaluate at least 1 episode.")
    if repo_id is not None:
        check_repo_id(repo_id)
    if push:  # fail before minutes of evaluation, and before any network call
        if repo_id is None:
            raise ConfigError("push=True needs repo_id='user/name' (the Hub repository to create or update).")
        _import_hub()
        token = _token(token)
    target = _check_out(Path(out))
    algo, owned, training_config = _load_algorithm(checkpoint, env, trusted_modules)
    try:
        pid = _packaged_policy(algo, policy_id)
        mapping_fn = _opponent_mapping(algo, pid, opponent)
        tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            results, video_path = _evaluate(
                algo, tmp, pid, mapping_fn, opponent, episodes, seed, video, video_format, fps, max_video_steps
            )
            files = _write_weights(algo, tmp, pid)
            onnx_written = _write_onnx(algo, tmp, pid)
            _write_json(tmp / RESULTS_FILE, results)
            _write_json(tmp / CONFIG_FILE, _package_config(algo, training_config, pid, files))
            (tmp / CARD_FILE).write_text(
                model_card(algo, training_config, pid, results, repo_id, video_path, onnx_written)
            )
            replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        if owned:
            algo.stop()
    package = HubPackage(target, results, target / video_path.name if video_path else None)
    if push:
        assert repo_id is not None and token is not None  # checked above
        message = commit_message or (
            f"rlarena {__version__}: {results['algorithm']} on {results['env']}, mean_reward {_mean_reward(results)}"
        )
        try:
            package.url = push_to_hub(target, repo_id, token=token, private=private, commit_message=message)
        except HubError as exc:  # the evaluation is not lost: say where the folder is and how to retry
            raise HubError(
                f"{exc} The package is complete at {str(target)!r}: push it again with "
                f"rlarena.hub.push_to_hub({str(target)!r}, {repo_id!r})."
            ) from exc
    return package


def check_repo_id(repo_id: str) -> None:
    if (
        not isinstance(repo_id, str)
        or not REPO_ID.match(repo_id)
        or len(repo_id) > 96
        or "--" in repo_id
        or ".." in repo_id
        or repo_id.endswith((".git", "."))
    ):
        raise ConfigError(
            f"{repo_id!r} is not a Hub repository id: expected 'user/name' (letters, digits, "
            f"'-', '_', '.'; at most 96 characters; no '--' or '..'), e.g. 'me/ppo-LunarLander-v3'."
        )


def _check_out(target: Path) -> Path:
    target = save_path(target, "the package", ConfigError)  # a link is refused, not followed
    if target.exists() and not target.is_dir():
        raise ConfigError(f"--out {str(target)!r} is a file; the package is a directory. Choose a new path.")
    if target.exists() and any(target.iterdir()) and not _is_package(target):
        raise ConfigError(
            f"Refusing to write the package into {str(target)!r}: it is a non-empty directory that "
            f"is not an rlarena package. Choose a new or empty directory."
        )
    return target


def _is_package(folder: Path) -> bool:
    try:
        meta = read_json(folder / CONFIG_FILE, "Package config")
    except (OSError, CheckpointError):
        return False
    return isinstance(meta, dict) and meta.get("library_name") == "rlarena"


def _load_algorithm(checkpoint: Any, env: Any, trusted_modules: list[str] | None) -> tuple[Any, bool, dict[str, Any]]:
    """(algorithm, whether we built it and must stop it, its training config as JSON).

    A checkpoint is loaded with one in-process env (INFERENCE_OVERRIDES); the package records the
    config it was trained with, read from the checkpoint."""
    from rlarena.algorithms import Algorithm
    from rlarena.checkpoint.io import METADATA_FILE
    from rlarena.envs.registry import env_to_json

    if isinstance(checkpoint, Algorithm):
        return checkpoint, False, checkpoint.config.to_dict()
    if not isinstance(checkpoint, str | os.PathLike):
        raise ConfigError(
            f"package_to_hub needs a checkpoint directory or an Algorithm, got {type(checkpoint).__name__}."
        )
    algo = Algorithm.from_checkpoint(
        checkpoint, env=env, config_overrides=dict(INFERENCE_OVERRIDES), trusted_modules=trusted_modules
    )
    config = read_json(Path(checkpoint) / METADATA_FILE, "Checkpoint metadata")["config"]  # from_checkpoint checked it
    config["env"] = env_to_json(algo.config.env)  # an `env` given here replaces the saved one
    return algo, True, config


def _packaged_policy(algo: Any, policy_id: str | None) -> str:
    from rlarena.policies.torch_policy import TrainablePolicy

    if policy_id is None:
        trained = list(algo.policies_to_train)
        if len(trained) != 1:
            raise ConfigError(
                f"{algo.env_name!r} has {len(trained)} trained policies "
                f"({', '.join(trained) or 'none'}): pick one with policy_id (--policy-id)."
            )
        policy_id = trained[0]
    if not isinstance(algo.get_policy(policy_id), TrainablePolicy):
        raise ConfigError(
            f"Policy {policy_id!r} is a {type(algo.policies[policy_id]).__name__}, not a trained "
            f"network: package one of {', '.join(algo.policies_to_train)}."
        )
    return policy_id


def _opponent_mapping(algo: Any, pid: str, opponent: str | None) -> Any:
    """fn(episode index) -> the policy mapping of that evaluation episode (None: the algorithm's own)."""
    if opponent is None:
        return lambda index: None
    if not algo.is_multi_agent:
        raise ConfigError(f"opponent={opponent!r} needs a multi-agent env; {algo.env_name!r} is single-agent.")
    algo.get_policy(opponent)  # a ConfigError naming the policies when it is unknown
    agents = list(algo._probe_env.possible_agents)  # the env the algorithm read its agents' spaces from

    def for_episode(index: int) -> Any:
        # episode i seats the packaged policy at agents[i % n]: over the episodes it plays every seat
        seat = agents[index % len(agents)]
        return lambda agent_id, episode, worker=None, **_: pid if agent_id == seat else opponent

    return for_episode


def _evaluate(
    algo: Any,
    tmp: Path,
    pid: str,
    mapping_fn: Any,
    opponent: str | None,
    episodes: int,
    seed: int,
    video: bool,
    video_format: str,
    fps: int | None,
    max_video_steps: int | None,
) -> tuple[dict[str, Any], Path | None]:
    """Greedy episodes; with `video`, episode 1 is played on an rgb_array env and recorded."""
    worker = algo.runner if algo.is_multi_agent else None  # league mappings pick opponents from worker.policies
    played, video_path = [], None
    if video:
        try:
            video_path, first = record_video(
                algo,
                tmp / VIDEO_STEM,
                fmt=video_format,
                fps=fps,
                policy_id=pid,
                seed=seed,
                explore=False,
                max_steps=max_video_steps,
                mapping_fn=mapping_fn(0),
                worker=worker,
            )
        except EnvError as exc:
            warnings.warn(
                f"Packaging without a replay video: {exc} (pass video=False / --no-video to skip it).", stacklevel=3
            )
        else:
            if max_video_steps is None:  # a complete episode: it counts as evaluation episode 1
                played.append(first)
    env = make_env(algo)
    try:
        for episode in range(len(played), episodes):
            played.append(
                play_episode(
                    algo,
                    env,
                    policy_id=pid,
                    seed=seed + episode,
                    explore=False,
                    mapping_fn=mapping_fn(episode),
                    worker=worker,
                )
            )
    finally:
        env.close()
    returns = np.array([p.episode_return for p in played])
    if algo.is_multi_agent and not any(pid in p.policies.values() for p in played):
        raise ConfigError(
            f"Policy {pid!r} played no evaluation episode: the checkpoint's policy mapping never "
            f"chose it. Pass opponent=<policy id> (--opponent) to seat it against that policy."
        )
    results: dict[str, Any] = {
        "algorithm": type(algo).__name__,
        "env": algo.env_name,
        "policy_id": pid,
        "explore": False,
        "episodes": episodes,
        "mean_reward": float(returns.mean()),
        "std_reward": float(returns.std()),
        "min_reward": float(returns.min()),
        "max_reward": float(returns.max()),
        "mean_length": float(np.mean([p.length for p in played])),
        "episode_returns": returns.tolist(),
        "episode_lengths": [p.length for p in played],
        "seeds": [p.seed for p in played],
        "video": video_path.name if video_path else None,
        "rlarena_version": __version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if algo.is_multi_agent:
        results["opponent"] = opponent or "the checkpoint's policy_mapping_fn"
        results["episode_policies"] = [p.policies for p in played]
    return results, video_path


def _write_weights(algo: Any, tmp: Path, pid: str) -> dict[str, str]:
    """model.safetensors (the packaged policy) and policy.<id>.safetensors (other stateful policies)."""
    from safetensors.numpy import save_file

    files = {}
    for other, policy in algo.policies.items():
        state = policy.get_state()
        if not state and other != pid:
            continue  # heuristics: rebuilt from their class name
        name = WEIGHTS_FILE if other == pid else f"policy.{other}.safetensors"
        save_file(
            {k: np.ascontiguousarray(v) for k, v in state.items()},
            str(tmp / name),
            metadata={"format": "rlarena", "policy_id": other},
        )
        files[name] = sha256(tmp / name)
    return files


def _write_onnx(algo: Any, tmp: Path, pid: str) -> bool:
    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:  # the graph is one artifact of several: the rest of the package stands without it
        warnings.warn(
            f"Packaging without {ONNX_FILE}: ONNX export needs {' and '.join(missing)} (pip install 'rlarena[onnx]').",
            stacklevel=3,
        )
        return False
    algo.export_onnx(tmp / ONNX_FILE, policy_id=pid)
    return True


def _package_config(algo: Any, config: dict[str, Any], pid: str, files: dict[str, str]) -> dict[str, Any]:
    from rlarena.envs.spaces import space_to_json

    if isinstance(config.get("env"), dict) and "unnamed" in config["env"]:
        raise ConfigError(
            f"The env {algo.env_name!r} is a lambda or local function, which a Hub user cannot "
            f"rebuild: register it with rlarena.register_env(name, creator) or pass a Gymnasium id "
            f"or an importable 'module:Class'."
        )
    policy = algo.get_policy(pid)
    return {
        "library_name": "rlarena",
        "package_format": PACKAGE_FORMAT,
        "rlarena_version": __version__,
        "algorithm": type(algo).__name__,
        "env": algo.env_name,
        "policy_id": pid,
        "multi_agent": algo.is_multi_agent,
        "observation_space": space_to_json(policy.observation_space),
        "action_space": space_to_json(policy.action_space),
        "policies": {
            p: {"observation_space": space_to_json(x.observation_space), "action_space": space_to_json(x.action_space)}
            for p, x in algo.policies.items()
        },
        "counters": {
            "iteration": algo.iteration,
            "num_env_steps_sampled_lifetime": algo.num_env_steps_sampled_lifetime,
            "time_total_s": algo.time_total_s,
        },
        "config": config,
        "files": files,
    }


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=json_default) + "\n")


def _mean_reward(results: dict[str, Any]) -> str:
    # the Hub's leaderboards parse "mean +/- std" (the format of RL-Zoo and the Deep RL course)
    return f"{results['mean_reward']:.2f} +/- {results['std_reward']:.2f}"


# -- model card -----------------------------------------------------------------------------------
def model_card(
    algo: Any,
    config: dict[str, Any],
    pid: str,
    results: dict[str, Any],
    repo_id: str | None,
    video: Path | None,
    onnx: bool,
) -> str:
    """README.md: YAML metadata the Hub indexes (library, tags, model-index), then the card."""
    import yaml

    env, name = algo.env_name, type(algo).__name__
    tags = ["reinforcement-learning", "rlarena", "deep-reinforcement-learning", env, name.lower()]
    if algo.is_multi_agent:
        tags.append("multi-agent-reinforcement-learning")
    metadata = {
        "library_name": "rlarena",
        "tags": tags,
        "model-index": [
            {
                "name": name,
                "results": [
                    {
                        "task": {"type": "reinforcement-learning", "name": "reinforcement-learning"},
                        "dataset": {"type": env, "name": env},
                        "metrics": [
                            {
                                "type": "mean_reward",
                                "value": _mean_reward(results),
                                "name": "mean_reward",
                                "verified": False,
                            }
                        ],
                    }
                ],
            }
        ],
    }
    repo = repo_id or f"<user>/{name.lower()}-{env}"
    ma = algo.is_multi_agent
    policy_arg = f', policy_id="{pid}"' if ma else ""
    if ma:
        usage_env = (
            f"from rlarena.hub import make_env\n"
            f"env = make_env(algo)  # a {env} env as the agent was trained on\n"
            f"obs, _ = env.reset()\n"
            f"actions = {{agent: algo.compute_single_action(o, explore=False{policy_arg})\n"
            f"           for agent, o in obs.items()}}  # every agent to act, played by this policy"
        )
    else:
        usage_env = (
            f"import gymnasium as gym\n"
            f'env = gym.make("{env}")\n'
            f"obs, _ = env.reset()\n"
            f"action = algo.compute_single_action(obs, explore=False)  # greedy"
        )
    if video is None:
        replay = (
            "No replay video in this package: the env cannot render `rgb_array` frames, or it was packaged "
            "with video=False."
        )
    elif video.suffix == ".mp4":
        replay = f'<video src="{video.name}" controls autoplay loop muted width="480"></video>'
    else:
        replay = f"![replay]({video.name})"
    seeds = results["seeds"]
    replay_note = "no replay" if video is None else f"the replay ({video.name}) is episode 1"
    who = ""
    if ma:
        opponent = results["opponent"]
        others = f"`{opponent}`, seats alternating" if opponent in algo.policies else opponent
        who = (
            f"the packaged policy `{pid}` plays its agents, the others are played by {others} (seating per "
            f"episode in `results.json`); the return is the sum of the rewards of `{pid}`'s agents\n"
        )
    files = [
        (CARD_FILE, "this model card"),
        (CONFIG_FILE, "algorithm, training config, policy spaces, file hashes: what `load_from_hub` reads"),
        (WEIGHTS_FILE, f"the weights of policy `{pid}` (safetensors)"),
    ]
    if ma and any(p != pid and x.get_state() for p, x in algo.policies.items()):
        files.append(("policy.<id>.safetensors", "the weights of the checkpoint's other trained policies"))
    if onnx:
        files.append((ONNX_FILE, "the policy as an ONNX graph (observation -> logits, value), for onnxruntime"))
    files.append((RESULTS_FILE, "the evaluation: per-episode returns, lengths, seeds; mean and std"))
    if video is not None:
        files.append((video.name, "evaluation episode 1"))
    config_yaml = yaml.safe_dump(config, sort_keys=True, default_flow_style=None, width=100)
    body = f"""
# {name} agent playing {env}

A **{name}** agent for **{env}**, trained with [rlarena](https://github.com/rlarena/rlarena).
Mean return over {results["episodes"]} greedy episodes: **{_mean_reward(results)}**.

{replay}

## Usage

```python
# pip install rlarena
import rlarena

algo = rlarena.load_from_hub("{repo}")  # JSON + safetensors: nothing is unpickled
{usage_env}
```

## Evaluation

- {results["episodes"]} episodes with greedy actions (`explore=False`), env seeds {seeds[0]} to {seeds[-1]}
- return {results["mean_reward"]:.2f} ± {results["std_reward"]:.2f} (min {results["min_reward"]:.2f}, \
max {results["max_reward"]:.2f}), mean length {results["mean_length"]:.1f} steps
{("- " + who) if who else ""}- {replay_note}; rlarena {__version__}

## Training

{algo.iteration} iterations, {algo.num_env_steps_sampled_lifetime:,} env steps, \
{algo.time_total_s / 60:.1f} minutes. The configuration (`config.json` holds it too):

```yaml
{config_yaml.rstrip()}
```

## Files

| file | contents |
|---|---|
""" + "".join(f"| `{f}` | {what} |\n" for f, what in files)
    return "---\n" + yaml.safe_dump(metadata, sort_keys=False) + "---\n" + body


# -- push -----------------------------------------------------------------------------------------
def _import_hub() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        raise RLArenaError(
            f"Pushing to and loading from the Hugging Face Hub need huggingface_hub: {HUB_INSTALL}."
        ) from None
    return huggingface_hub


def _token(token: str | None) -> str:
    """The explicit token, else HF_TOKEN, else the token of `huggingface-cli login` (read from disk)."""
    token = token or os.environ.get("HF_TOKEN") or _import_hub().get_token()
    if not token:
        raise HubError(
            "Pushing to the Hub needs a token with write access: create one at "
            "https://huggingface.co/settings/tokens and set HF_TOKEN=hf_... (or run `hf auth login`)."
        )
    return token


def push_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload an rlarena agent",
) -> str:
    """Create the model repository `repo_id` (if needed) and upload the package folder; return its URL."""
    check_repo_id(repo_id)
    if not _is_package(Path(folder)):
        raise ConfigError(f"{str(folder)!r} is not an rlarena package (no {CONFIG_FILE} from package_to_hub).")
    hub = _import_hub()
    token = _token(token)
    api = hub.HfApi(token=token)
    try:
        url = api.create_repo(repo_id, private=private, repo_type="model", exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model", commit_message=commit_message)
    except Exception as exc:  # network and Hub errors come in many library types (it re-raises)
        raise _hub_error(exc, f"Uploading {str(folder)!r} to {repo_id!r}") from exc
    return str(url)


def _hub_error(exc: Exception, what: str) -> HubError:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status in (401, 403):
        return HubError(
            f"{what} failed: the Hub refused the token (HTTP {status}). Check that HF_TOKEN is valid "
            f"and has write access to the repository's namespace."
        )
    if status == 404 or type(exc).__name__ in ("RepositoryNotFoundError", "RevisionNotFoundError"):
        return HubError(
            f"{what} failed: no such repository on the Hub, or it is private (HTTP 404). Check the id "
            f"and, for a private repository, HF_TOKEN."
        )
    if status is not None:
        return HubError(f"{what} failed: the Hub answered HTTP {status} ({exc}).")
    return HubError(
        f"{what} failed: the Hub cannot be reached ({type(exc).__name__}: {exc}). Check the network "
        f"connection (and HF_ENDPOINT / proxy settings)."
    )


# -- load -----------------------------------------------------------------------------------------
def load_from_hub(
    repo_id_or_folder: str | os.PathLike,
    *,
    revision: str | None = None,
    token: str | None = None,
    env: Any = None,
    trusted_modules: list[str] | None = None,
) -> Any:
    """A ready Algorithm from a package folder or a Hub repository id ('user/name').

    Only config.json and safetensors files are read (downloaded from the Hub into its cache); the
    optimizer state is not part of a package. `env` replaces the packaged env (as in
    Algorithm.from_checkpoint). compute_single_action(obs, explore=False) gives the greedy action.
    Nothing the package names is imported unless allowed: rlarena's built-ins, objects registered in
    this process, `env`, or the modules in `trusted_modules` (trust only packages from people you trust).
    """
    folder = Path(repo_id_or_folder)
    if not folder.is_dir():
        repo_id = str(repo_id_or_folder)
        if folder.exists() or repo_id.startswith((".", "/", "~")) or repo_id.count("/") != 1:
            raise ConfigError(f"{repo_id!r} is neither a package folder nor a Hub repository id 'user/name'.")
        check_repo_id(repo_id)
        folder = _download(repo_id, revision, token)
    trust = Trust.create(trusted_modules, [env], source=f"package {str(repo_id_or_folder)!r}")
    return _load_folder(folder, env, trust)


def _download(repo_id: str, revision: str | None, token: str | None) -> Path:
    hub = _import_hub()
    try:
        return Path(
            hub.snapshot_download(
                repo_id,
                repo_type="model",
                revision=revision,
                allow_patterns=LOAD_PATTERNS,
                token=token,
                library_name="rlarena",
                library_version=__version__,
            )
        )
    except Exception as exc:  # network and Hub errors come in many library types (it re-raises)
        cause = exc.__cause__ or exc.__context__
        # offline, snapshot_download reports a missing local copy; the connection error is its cause
        raise _hub_error(
            cause if isinstance(cause, Exception) and type(exc).__name__ == "LocalEntryNotFoundError" else exc,
            f"Downloading {repo_id!r}",
        ) from exc


def _load_folder(folder: Path, env: Any, trust: Trust) -> Any:
    from rlarena.algorithms import get_algorithm_class
    from rlarena.algorithms.checkpointing import saved_config

    meta_path = folder / CONFIG_FILE
    try:
        meta = read_json(meta_path, "Package config")  # size-checked; a link out of the folder is refused
    except FileNotFoundError:
        raise CheckpointError(
            f"{str(folder)!r} is not an rlarena package: it has no {CONFIG_FILE}. Make one with "
            f"`rlarena package CHECKPOINT --out DIR` (a checkpoint directory loads with "
            f"Algorithm.from_checkpoint)."
        ) from None
    if not isinstance(meta, dict) or meta.get("library_name") != "rlarena":
        raise CheckpointError(
            f"{str(meta_path)!r} is not an rlarena package's config (library_name is not "
            f"'rlarena'): this model was made with another library."
        )
    if not isinstance(meta.get("package_format", 0), int):
        raise CheckpointError(f"{str(meta_path)!r} is corrupted: its package_format is not a whole number.")
    if meta.get("package_format", 0) > PACKAGE_FORMAT:
        raise CheckpointError(
            f"{str(folder)!r} has package format {meta['package_format']}, newer than this "
            f"rlarena reads ({PACKAGE_FORMAT}). Upgrade rlarena."
        )
    try:
        arrays = {}
        for name, state in read_verified(folder, meta["files"], "Package").items():
            owner = meta["policy_id"] if name == WEIGHTS_FILE else name[len("policy.") : -len(".safetensors")]
            arrays[owner] = state
        algo_cls = get_algorithm_class(meta["algorithm"])
        caller = {*INFERENCE_OVERRIDES, *({"env"} if env is not None else ())}
        config = saved_config(algo_cls.config_class, meta, trust, caller)
    except RLArenaError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(
            f"Package {str(folder)!r} has a {CONFIG_FILE} this rlarena cannot read ({type(exc).__name__}: {exc})."
        ) from None
    source = f"Package {str(folder)!r}"
    config.confine(source, caller)  # no path, cluster or process count from the file
    if env is not None:
        config.env = env
    config.update_from_dict(dict(INFERENCE_OVERRIDES))
    try:
        config.validate()
    except ConfigError as exc:  # a value edited into the file: say where it came from
        raise CheckpointError(f"{source}: {exc}") from None
    config.check_sizes(source, caller)
    with limits.loading(source):
        algo = algo_cls(config)
    try:
        for pid, state in arrays.items():
            algo.get_policy(pid).set_state(state)
    except (RuntimeError, ValueError, KeyError) as exc:
        algo.stop()
        raise CheckpointError(
            f"Package {str(folder)!r}: the weights do not fit the model its config builds "
            f"({type(exc).__name__}: {exc})."
        ) from None
    return algo
