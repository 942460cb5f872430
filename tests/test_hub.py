"""Hub packaging (rlarena.hub, `rlarena package`), replay videos and the ship-an-agent examples.

There is no network here: pushes are checked up to the HfApi calls (replaced by fakes that record
their arguments or raise the connection error huggingface_hub raises offline); the no-token error
must come before any of them.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_config, trained_checkpoint

import rlarena
from rlarena import Algorithm
from rlarena.cli.main import main
from rlarena.errors import CheckpointError, ConfigError
from rlarena.hub import HubError, HubPackage, load_from_hub, package_to_hub, push_to_hub

ROOT = Path(__file__).resolve().parents[1]
HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_checkpoint(tiny_config(), tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def package(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> HubPackage:
    return package_to_hub(
        checkpoint, tmp_path_factory.mktemp("pkg") / "ppo-cartpole", repo_id="me/ppo-cartpole", episodes=3, seed=5
    )


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """HfApi's network methods raise what huggingface_hub raises offline; returns the calls made."""
    import huggingface_hub

    calls: list[str] = []

    def offline(name: str):
        def method(self, *args, **kwargs):
            calls.append(name)
            raise ConnectionError("[Errno -2] Name or service not known")

        return method

    for name in ("create_repo", "upload_folder", "whoami"):
        monkeypatch.setattr(huggingface_hub.HfApi, name, offline(name))
    return calls


def greedy_actions(algo: Algorithm, n: int = 64, policy_id: str = "default_policy") -> np.ndarray:
    policy = algo.get_policy(policy_id)
    obs = np.random.default_rng(0).uniform(-2, 2, size=(n, *policy.observation_space.shape)).astype(np.float32)
    return algo.compute_actions(obs, explore=False, policy_id=policy_id)


# -- the folder -----------------------------------------------------------------------------------
def test_package_folder_holds_card_config_weights_onnx_results_and_replay(package, checkpoint):
    folder = package.folder
    expected = {"README.md", "config.json", "model.safetensors", "results.json", "replay.mp4"}
    assert {p.name for p in folder.iterdir()} == expected | ({"model.onnx"} if HAS_ONNX else set())
    assert not list(folder.parent.glob(".ppo-cartpole.*")), "temporary folders left behind"

    results = json.loads((folder / "results.json").read_text())
    returns = results["episode_returns"]
    assert results["episodes"] == len(returns) == len(results["episode_lengths"]) == 3
    assert results["seeds"] == [5, 6, 7]
    assert results["mean_reward"] == pytest.approx(np.mean(returns))
    assert results["std_reward"] == pytest.approx(np.std(returns))
    assert results["explore"] is False and results["video"] == "replay.mp4"
    # CartPole pays 1 per step: each return is its episode's length
    assert returns == [float(n) for n in results["episode_lengths"]]

    config = json.loads((folder / "config.json").read_text())
    assert config["library_name"] == "rlarena" and config["algorithm"] == "PPO" and config["env"] == "CartPole-v1"
    # the training config, not the one-env inference overrides it was evaluated with
    assert config["config"]["num_envs_per_env_runner"] == 4
    assert set(config["files"]) == {"model.safetensors"}

    # the replay is a real video of episode 1: one frame per step plus the start and 1 s held at the end (50 fps)
    import imageio.v3 as iio

    frames = iio.imread(folder / "replay.mp4")
    assert frames.shape[1:] == (400, 600, 3)
    assert len(frames) == results["episode_lengths"][0] + 1 + 50


def test_model_card_has_hub_metadata_usage_and_evaluation(package):
    from huggingface_hub import ModelCard

    card = ModelCard.load(package.folder / "README.md")  # the Hub's own parser of the metadata
    data, results = card.data, package.results
    assert data.library_name == "rlarena"
    assert {"reinforcement-learning", "rlarena", "deep-reinforcement-learning", "CartPole-v1"} <= set(data.tags)
    (ev,) = data.eval_results
    assert (ev.task_type, ev.dataset_type, ev.dataset_name, ev.metric_type) == (
        "reinforcement-learning",
        "CartPole-v1",
        "CartPole-v1",
        "mean_reward",
    )
    assert ev.metric_value == f"{results['mean_reward']:.2f} +/- {results['std_reward']:.2f}"
    assert 'rlarena.load_from_hub("me/ppo-cartpole")' in card.text
    assert "3 episodes with greedy actions" in card.text and "replay.mp4" in card.text
    assert "train_batch_size: 128" in card.text  # the training config


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxscript and onnxruntime (rlarena[onnx])")
def test_packaged_onnx_plays_the_same_greedy_actions(package, checkpoint):
    import torch

    from rlarena.export import OnnxPolicy

    algo = Algorithm.from_checkpoint(checkpoint)
    try:
        obs = np.random.default_rng(1).uniform(-2, 2, size=(64, 4)).astype(np.float32)
        actions = OnnxPolicy(package.folder / "model.onnx").compute_actions(obs, explore=False)
        policy = algo.get_policy()
        with torch.no_grad():
            logits = policy.model(torch.from_numpy(policy.normalize(policy.flatten(obs))))[0].numpy()
        # each is torch's greedy action up to float32 rounding, which depends on the CPU's kernels: a
        # near-tie of this barely trained policy's two logits may go either way (tests/test_onnx.py)
        chosen, best = logits[np.arange(len(obs)), actions], logits.max(-1)
        assert (best - chosen <= 1e-5 + 1e-4 * np.abs(best)).all(), (actions, logits)
    finally:
        algo.stop()


# -- load -----------------------------------------------------------------------------------------
def test_load_from_folder_gives_the_same_greedy_agent(package, checkpoint):
    original = Algorithm.from_checkpoint(checkpoint)
    loaded = rlarena.load_from_hub(package.folder)
    try:
        np.testing.assert_array_equal(greedy_actions(loaded), greedy_actions(original))
        assert isinstance(loaded.compute_single_action(np.zeros(4, np.float32), explore=False), int)
        # the agent plays the packaged evaluation again: episode 1 (seed 5) has the same return
        import gymnasium as gym

        env = gym.make("CartPole-v1")
        obs, _ = env.reset(seed=5)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(loaded.compute_single_action(obs, explore=False))
            total, done = total + float(reward), terminated or truncated
        assert total == package.results["episode_returns"][0]
    finally:
        original.stop()
        loaded.stop()


def test_load_from_hub_downloads_only_config_and_weights(package, monkeypatch):
    import huggingface_hub

    asked = {}

    def fake_snapshot_download(repo_id, **kwargs):
        asked.update(kwargs, repo_id=repo_id)
        return str(package.folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    algo = load_from_hub("me/ppo-cartpole", revision="v1")
    algo.stop()
    assert asked["repo_id"] == "me/ppo-cartpole" and asked["revision"] == "v1"
    assert asked["allow_patterns"] == ["config.json", "*.safetensors"]  # no video, no ONNX graph


def test_load_errors_say_what_is_wrong(package, checkpoint, tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match="not an rlarena package.*Algorithm.from_checkpoint"):
        load_from_hub(checkpoint)  # a checkpoint directory is not a package
    with pytest.raises(ConfigError, match="neither a package folder nor a Hub repository id"):
        load_from_hub(tmp_path / "missing")
    with pytest.raises(ConfigError, match="not a Hub repository id"):
        load_from_hub("me/bad--name")
    bad = tmp_path / "tampered"
    shutil.copytree(package.folder, bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])
    with pytest.raises(CheckpointError, match="model.safetensors does not match its recorded sha256"):
        load_from_hub(bad)
    # offline: snapshot_download's "no local copy" error, caused by the connection error
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(repo_id, **kwargs):
        try:
            raise ConnectionError("[Errno -2] Name or service not known")
        except ConnectionError as exc:
            raise LocalEntryNotFoundError("cannot find the requested files in the local cache") from exc

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(HubError, match="cannot be reached.*ConnectionError"):
        load_from_hub("me/ppo-cartpole")


# -- writing safely -------------------------------------------------------------------------------
def test_existing_package_is_replaced_only_when_the_new_one_is_complete(checkpoint, tmp_path, monkeypatch):
    out = tmp_path / "pkg"
    package_to_hub(checkpoint, out, episodes=1, video=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert "replay.mp4" not in before

    def broken(self, path, policy_id="default_policy"):
        raise RuntimeError("export failed")

    monkeypatch.setattr(Algorithm, "export_onnx", broken)
    monkeypatch.setattr("rlarena.hub.importlib.util.find_spec", lambda name: True)  # reach the export
    with pytest.raises(RuntimeError, match="export failed"):
        package_to_hub(checkpoint, out, episodes=2)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["pkg"], "temporary folders left behind"
    monkeypatch.undo()
    package_to_hub(checkpoint, out, episodes=2, video_format="gif")  # a package is replaced by a new one
    assert json.loads((out / "results.json").read_text())["episodes"] == 2 and (out / "replay.gif").exists()

    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not an rlarena package"):
        package_to_hub(checkpoint, other, episodes=1)
    assert [p.name for p in other.iterdir()] == ["mine.txt"]


def test_env_without_rgb_array_is_packaged_without_a_video(tmp_path, recwarn):
    from probe_envs import DiscreteIdentityEnv

    algo = tiny_config(DiscreteIdentityEnv, num_envs=2).build()
    try:
        package = package_to_hub(algo, tmp_path / "pkg", episodes=2)
    finally:
        algo.stop()
    assert package.video is None and package.results["video"] is None
    assert not list((tmp_path / "pkg").glob("replay.*"))
    assert any("without a replay video" in str(w.message) for w in recwarn.list)
    assert "No replay" in (tmp_path / "pkg" / "README.md").read_text()
    loaded = load_from_hub(tmp_path / "pkg", trusted_modules=["probe_envs"])  # the env class from "module:qualname"
    loaded.stop()


@pytest.mark.parametrize(("algo_name", "env"), [("DQN", "CartPole-v1"), ("SAC", "Pendulum-v1"), ("TD3", "Pendulum-v1")])
def test_off_policy_algorithms_package_and_load(tmp_path, algo_name, env):
    from rlarena.algorithms import get_algorithm_class

    algo = (
        get_algorithm_class(algo_name)
        .config_class()
        .environment(env)
        .training(
            min_sample_timesteps_per_iteration=200,
            num_steps_sampled_before_learning_starts=100,
            train_batch_size=32,
            model={"fcnet_hiddens": [16]},
        )
        .debugging(seed=0)
        .build()
    )
    try:
        algo.train()
        package = package_to_hub(algo, tmp_path / "pkg", episodes=1, video=False)
        loaded = load_from_hub(package.folder)
        try:
            assert type(loaded).__name__ == algo_name
            np.testing.assert_array_equal(greedy_actions(loaded), greedy_actions(algo))
        finally:
            loaded.stop()
    finally:
        algo.stop()
    assert json.loads((tmp_path / "pkg" / "config.json").read_text())["algorithm"] == algo_name
    assert not list((tmp_path / "pkg").glob("replay*"))  # the weights only: no replay buffer, no targets


# -- multi-agent: a PPO league checkpoint (a network among heuristic opponents) ---------------------
def test_connect_four_package_evaluates_against_an_opponent_and_loads(league_checkpoint, tmp_path):
    package = package_to_hub(
        league_checkpoint, tmp_path / "c4", episodes=4, opponent="negamax_1", video_format="gif", fps=2
    )
    results = package.results
    assert results["policy_id"] == "learned" and results["opponent"] == "negamax_1"
    # the learned policy alternates seats against negamax_1; its return is a game score
    assert sorted({tuple(sorted(p.values())) for p in results["episode_policies"]}) == [("learned", "negamax_1")]
    assert len({p["player_0"] for p in results["episode_policies"]}) == 2
    assert set(results["episode_returns"]) <= {-1.0, 0.0, 1.0}
    assert package.video is not None and package.video.name == "replay.gif"
    from PIL import Image

    with Image.open(package.video) as gif:  # the rendered board, frames at 2 fps
        assert gif.size == (336, 288) and gif.n_frames >= 7 and gif.info["duration"] == 500  # a win takes 7 moves

    card = (package.folder / "README.md").read_text()
    assert "multi-agent-reinforcement-learning" in card and 'policy_id="learned"' in card
    original = Algorithm.from_checkpoint(
        league_checkpoint, config_overrides={"num_envs_per_env_runner": 1, "vectorization_mode": "sync"}
    )
    loaded = load_from_hub(package.folder)
    try:
        from rlarena.rollout.episodes import make_env, play_episode

        env = make_env(original)
        obs = []
        o, _ = env.reset(seed=0)
        for _ in range(6):  # positions of a real game, with their action masks
            ((agent, x),) = o.items()
            obs.append(x)
            o, *_ = env.step({agent: original.compute_single_action(x, explore=False, policy_id="learned")})
        assert [loaded.compute_single_action(x, explore=False, policy_id="learned") for x in obs] == [
            original.compute_single_action(x, explore=False, policy_id="learned") for x in obs
        ]
        replay = play_episode(
            loaded,
            env,
            policy_id="learned",
            seed=results["seeds"][1],
            mapping_fn=lambda agent, episode, worker=None: "learned" if agent == "player_1" else "negamax_1",
        )
        assert replay.policies == results["episode_policies"][1]
        env.close()
    finally:
        original.stop()
        loaded.stop()


def test_multi_agent_packaging_errors(league_checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="is a NegamaxDepth1, not a trained network"):
        package_to_hub(league_checkpoint, tmp_path / "a", policy_id="negamax_1", episodes=1)
    with pytest.raises(ConfigError, match="No policy 'negamax_9'"):
        package_to_hub(league_checkpoint, tmp_path / "b", opponent="negamax_9", episodes=1)
    assert not list(tmp_path.iterdir())


# -- push -----------------------------------------------------------------------------------------
def test_push_without_token_fails_before_evaluating_or_any_network_call(
    checkpoint, tmp_path, monkeypatch, no_network, capsys
):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no token saved by `hf auth login` either
    assert main(["package", str(checkpoint), "--out", str(tmp_path / "pkg"), "--repo-id", "me/x", "--push"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: Pushing to the Hub needs a token") and "HF_TOKEN" in err[0]
    assert no_network == [] and not (tmp_path / "pkg").exists()
    with pytest.raises(ConfigError, match="needs repo_id"):
        package_to_hub(checkpoint, tmp_path / "pkg", push=True)


def test_push_network_failure_keeps_the_package(checkpoint, tmp_path, monkeypatch, no_network, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    out = tmp_path / "pkg"
    assert (
        main(
            [
                "package",
                str(checkpoint),
                "--out",
                str(out),
                "--repo-id",
                "me/x",
                "--push",
                "--episodes",
                "1",
                "--no-video",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot be reached" in err[0] and "push_to_hub" in err[0]
    assert no_network == ["create_repo"] and (out / "model.safetensors").exists()


def test_push_creates_the_repo_and_uploads_the_folder(package, monkeypatch):
    import huggingface_hub

    calls = []
    monkeypatch.setattr(
        huggingface_hub.HfApi,
        "create_repo",
        lambda self, repo_id, **kw: (
            calls.append(("create_repo", repo_id, kw, self.token)) or f"https://huggingface.co/{repo_id}"
        ),
    )
    monkeypatch.setattr(
        huggingface_hub.HfApi,
        "upload_folder",
        lambda self, **kw: calls.append(("upload_folder", kw["repo_id"], kw, self.token)),
    )
    url = push_to_hub(package.folder, "me/ppo-cartpole", token="hf_test")
    assert url == "https://huggingface.co/me/ppo-cartpole"
    (_, repo, create, token), (_, repo2, upload, _) = calls
    assert repo == repo2 == "me/ppo-cartpole" and token == "hf_test"
    assert create["exist_ok"] is True and create["repo_type"] == "model"
    assert Path(upload["folder_path"]) == package.folder
    with pytest.raises(ConfigError, match="not an rlarena package"):
        push_to_hub(package.folder.parent.parent, "me/x", token="hf_test")


def test_hub_refusing_the_token_is_explained(package, monkeypatch):
    import huggingface_hub

    class Response:
        status_code = 401

    class Unauthorized(Exception):
        response = Response()

    def refuse(self, repo_id, **kw):
        raise Unauthorized("401 Client Error")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", refuse)
    with pytest.raises(HubError, match="refused the token"):
        push_to_hub(package.folder, "me/ppo-cartpole", token="hf_bad")


# -- CLI ------------------------------------------------------------------------------------------
def test_cli_package_prints_the_result_and_rejects_mistakes(checkpoint, tmp_path, capsys):
    out = tmp_path / "pkg"
    assert main(["package", str(checkpoint), "--out", str(out), "--episodes", "2", "--video-format", "gif"]) == 0
    stdout = capsys.readouterr().out
    assert "PPO on CartPole-v1, 2 greedy episodes" in stdout and "replay.gif" in stdout
    assert (out / "replay.gif").exists()
    for argv, message in (
        (["package", str(tmp_path), "--out", str(tmp_path / "x")], "not an rlarena checkpoint"),
        (["package", str(checkpoint), "--out", str(out), "--repo-id", "nobody"], "not a Hub repository id"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


# -- videos of `rlarena rollout --video` -----------------------------------------------------------
@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_record_video_writes_every_frame(checkpoint, tmp_path, fmt):
    from rlarena.rollout.episodes import record_video

    algo = Algorithm.from_checkpoint(checkpoint)
    try:
        path, episode = record_video(algo, tmp_path / "ep", fmt=fmt, fps=10, seed=3, max_steps=12)
    finally:
        algo.stop()
    assert path == tmp_path / f"ep.{fmt}" and episode.length == 12
    if fmt == "gif":
        from PIL import Image

        with Image.open(path) as gif:
            assert gif.width == 400  # downscaled from 600
            durations = []
            for i in range(gif.n_frames):  # Pillow merges equal frames (the held last one) into longer ones
                gif.seek(i)
                durations.append(gif.info["duration"])
        assert sum(durations) == (12 + 1 + 10) * 100
    else:
        import imageio.v3 as iio

        assert len(iio.imread(path)) == 12 + 1 + 10


# -- examples -------------------------------------------------------------------------------------
def test_lunarlander_hub_example_quick_mode(tmp_path):
    out = tmp_path / "pkg"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "lunarlander_hub.py"),
            "--env",
            "CartPole-v1",
            "--max-iters",
            "2",
            "--episodes",
            "2",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for expected in ("iter   2", "evaluate(): mean return", "packaged:", "loaded agent, one greedy episode"):
        assert expected in proc.stdout, proc.stdout
    assert {"README.md", "config.json", "model.safetensors", "results.json", "replay.mp4"} <= {
        p.name for p in out.iterdir()
    }
    # the loaded agent replays evaluation episode 1 exactly: greedy actions, same seed
    played, packaged = re.search(r"return (\S+) \(episode 1 of the evaluation: (\S+)\)", proc.stdout).groups()
    assert float(played) == float(packaged)


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxscript and onnxruntime (rlarena[onnx])")
def test_connect_four_export_play_example(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "connect_four_export_play.py"),
            "--games",
            "2",
            "--depth",
            "1",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "model.onnx").exists()
    assert proc.stdout.count("0 1 2 3 4 5 6") == 2  # the final board of each game
    assert "agent against negamax_1:" in proc.stdout and f"rlarena play connect4 --onnx {tmp_path}" in proc.stdout
