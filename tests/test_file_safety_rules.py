"""Where rlarena writes and reads (the rules of rlarena.checkpoint.io, applied everywhere):

- every file is written under a temporary name in its directory and renamed into place, so a link
  planted at its name is replaced, never written through; a path the caller names that is itself a
  link is refused with one line;
- a folder's files are read only when they resolve inside it (the Hugging Face cache's blob links
  included, and only when its `blobs` is a real directory), are regular files and are not too large;
- a recorded data set is checked against rlarena.limits.MAX_DATA_ROWS / MAX_DATA_BYTES from its
  Parquet footers before any of its data is read.

Each test plants a link or a payload in a real artifact (a trained checkpoint, a run of rlarena.run,
a recorded data set, a Hub package) that would change or expose a marker file outside it, and checks
that the marker is untouched and the error is one clear line; the legitimate use is checked beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from conftest import tiny_config, trained_checkpoint

import rlarena
from rlarena import Algorithm, limits
from rlarena.checkpoint.io import METADATA_FILE, write_file_atomic
from rlarena.cli.main import main
from rlarena.errors import CheckpointError, ConfigError, OfflineDataError, RLArenaNotice
from rlarena.train.loggers import PROGRESS_FILE, TrialLogger, read_results
from rlarena.train.results import STATE_FILE, Results

pytestmark = pytest.mark.timeout(180)
QUIET = {"verbose": 0, "tensorboard": False, "plot": False}
PRECIOUS = b"precious: must stay as it is\n"


def tiny() -> Any:
    return tiny_config(num_envs=2, train_batch_size=64, minibatch_size=64, num_epochs=1, model={"fcnet_hiddens": [8]})


def marker(tmp_path: Path, name: str = "marker.txt") -> Path:
    """A file outside every folder under test: a write through a link would change it."""
    path = tmp_path / "outside" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PRECIOUS)
    return path


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under root with its bytes (None for directories and links): to see that nothing changed."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
        for p in sorted(root.rglob("*"))
    }


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one `error:` line the CLI prints (exit status 2, no traceback)."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def no_temporary_files(folder: Path) -> bool:
    return not [p for p in folder.rglob(".*") if ".tmp-" in p.name]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_checkpoint(tiny(), tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run of rlarena.run: 2 iterations, a checkpoint after each (read only: tests copy it)."""
    storage = tmp_path_factory.mktemp("runs")
    rlarena.run(tiny(), stop={"training_iteration": 2}, checkpoint_freq=1, storage_path=storage, name="exp", **QUIET)
    return storage / "exp"


@pytest.fixture
def run_dir(finished_run: Path, tmp_path: Path) -> Path:
    exp = tmp_path / "runs" / "exp"
    shutil.copytree(finished_run, exp, symlinks=True)
    return exp


def trial_of(exp: Path) -> Path:
    return next(p for p in exp.iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real data set recorded by `.offline_data(output=...)` (read only: tests copy it)."""
    pytest.importorskip("pyarrow")
    out = tmp_path_factory.mktemp("rec") / "data"
    algo = tiny().offline_data(output=str(out)).build()
    try:
        algo.train()
    finally:
        algo.stop()
    assert list(out.glob("*.parquet"))
    return out


@pytest.fixture
def data_dir(recorded: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(recorded, tmp_path / "data"))


# == writes ==========================================================================================
def test_the_write_helper_replaces_a_planted_link_and_refuses_a_named_one(tmp_path):
    target = marker(tmp_path)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "file.json").symlink_to(target)
    write_file_atomic(folder / "file.json", "{}", replace_link=True)  # a name rlarena picks in a folder
    assert target.read_bytes() == PRECIOUS
    assert not (folder / "file.json").is_symlink() and (folder / "file.json").read_text() == "{}"
    (folder / "named.json").symlink_to(target)
    with pytest.raises(CheckpointError, match="it is a symbolic link .* never writes through one"):
        write_file_atomic(folder / "named.json", "{}")  # a path the caller named
    assert target.read_bytes() == PRECIOUS and (folder / "named.json").is_symlink()
    with pytest.raises(ValueError, match="boom"):  # a writer that fails leaves the previous file
        write_file_atomic(folder / "file.json", lambda f: (f.write(b"half"), (_ for _ in ()).throw(ValueError("boom"))))
    assert (folder / "file.json").read_text() == "{}" and no_temporary_files(folder)


def test_plot_replaces_a_planted_link_instead_of_writing_through_it(run_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    target = marker(tmp_path)
    trial = trial_of(run_dir)
    (trial / "learning_curve.png").symlink_to(target)
    assert main(["plot", str(run_dir)]) == 0
    assert target.read_bytes() == PRECIOUS
    png = trial / "learning_curve.png"
    assert not png.is_symlink() and png.read_bytes().startswith(b"\x89PNG")
    assert capsys.readouterr().out.strip() == str(png)
    assert no_temporary_files(run_dir)
    # an --output path of the caller's that is a link is refused (the caller's link is kept)
    from rlarena.train.plot import plot_trial

    (tmp_path / "mine.png").symlink_to(target)
    with pytest.raises(ConfigError, match="mine.png'.*symbolic link"):
        plot_trial(trial, output=tmp_path / "mine.png")
    assert target.read_bytes() == PRECIOUS


def test_plot_of_a_run_with_a_linked_trial_directory_is_refused(run_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    outside = tmp_path / "outside" / "trial"
    shutil.copytree(trial_of(run_dir), outside)
    before = tree(outside)
    (run_dir / "PPO_elsewhere_00001").symlink_to(outside)
    assert "is a symbolic link" in one_line_error(["plot", str(run_dir)], capsys)
    assert tree(outside) == before  # no learning_curve.png written outside the run


@pytest.mark.parametrize("fmt", ["gif", "mp4"])
def test_rollout_video_replaces_planted_links(checkpoint, tmp_path, capsys, fmt):
    pytest.importorskip("PIL" if fmt == "gif" else "imageio_ffmpeg")
    target = marker(tmp_path)
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / f"episode_000.{fmt}").symlink_to(target)
    (videos / f"episode_001.{fmt}").symlink_to(tmp_path / "outside" / "created-by-following.bin")  # dangling
    assert (
        main(
            [
                "rollout",
                str(checkpoint),
                "--episodes",
                "2",
                "--video",
                str(videos),
                "--video-format",
                fmt,
                "--max-steps",
                "5",
                "--seed",
                "0",
            ]
        )
        == 0
    )
    assert "video" in capsys.readouterr().out
    assert target.read_bytes() == PRECIOUS and sorted(os.listdir(tmp_path / "outside")) == ["marker.txt"]
    for i in range(2):
        video = videos / f"episode_{i:03d}.{fmt}"
        assert not video.is_symlink() and video.stat().st_size > 100
    assert no_temporary_files(videos)


def test_record_video_refuses_a_linked_path_and_keeps_the_file_it_did_not_replace(checkpoint, tmp_path, track):
    pytest.importorskip("PIL")
    from rlarena.rollout.episodes import record_video

    algo = track(Algorithm.from_checkpoint(checkpoint, config_overrides={"num_envs_per_env_runner": 1}))
    target = marker(tmp_path)
    (tmp_path / "replay.gif").symlink_to(target)
    with pytest.raises(ConfigError, match="replay.gif'.*symbolic link"):
        record_video(algo, tmp_path / "replay", fmt="gif", max_steps=3)
    assert target.read_bytes() == PRECIOUS
    written, _ = record_video(algo, tmp_path / "mine", fmt="gif", max_steps=3)
    assert written == (tmp_path / "mine.gif").resolve() or written == tmp_path / "mine.gif"
    assert (tmp_path / "mine.gif").read_bytes().startswith(b"GIF")


def test_save_to_a_linked_path_is_refused_and_a_normal_save_replaces(checkpoint, tmp_path, track):
    algo = track(Algorithm.from_checkpoint(checkpoint, config_overrides={"num_envs_per_env_runner": 1}))
    victim = tmp_path / "outside" / "their_checkpoint"
    shutil.copytree(checkpoint, victim)
    (victim.parent / "beside.txt").write_bytes(PRECIOUS)
    (victim / "notes.txt").write_bytes(PRECIOUS)
    before = tree(victim.parent)
    link = tmp_path / "mine"
    link.symlink_to(victim, target_is_directory=True)
    with pytest.raises(CheckpointError, match="mine'.*symbolic link .*never writes through one"):
        algo.save(link)
    assert tree(victim.parent) == before and link.is_symlink()
    # a normal save over an existing checkpoint replaces it, and it loads
    path = algo.save(tmp_path / "real")
    algo.train()
    assert algo.save(tmp_path / "real") == path
    track(Algorithm.from_checkpoint(path, config_overrides={"num_envs_per_env_runner": 1}))
    assert no_temporary_files(tmp_path) and not list(tmp_path.glob(".real.old-*"))


def test_a_planted_old_checkpoint_link_is_not_recovered(checkpoint, tmp_path):
    # a crash between the two renames leaves .NAME.old-*: a link of that name is no checkpoint of ours
    victim = tmp_path / "outside" / "ckpt"
    shutil.copytree(checkpoint, victim)
    before = tree(victim)
    (tmp_path / ".restored.old-12345678").symlink_to(victim, target_is_directory=True)
    with pytest.raises(CheckpointError, match="No checkpoint at"):
        Algorithm.from_checkpoint(tmp_path / "restored")
    assert not (tmp_path / "restored").exists() and tree(victim) == before


def test_logs_appended_every_iteration_refuse_links_and_fifos(tmp_path):
    target = marker(tmp_path)
    trial = tmp_path / "trial"
    trial.mkdir()
    (trial / PROGRESS_FILE).symlink_to(target)
    logger = TrialLogger(trial, tensorboard=False)
    with pytest.raises(CheckpointError, match="progress.csv': it is a symbolic link .*never writes through one"):
        logger.log({"training_iteration": 1, "episode_return_mean": 1.0})
    logger.close()
    assert target.read_bytes() == PRECIOUS
    (trial / PROGRESS_FILE).unlink()
    os.mkfifo(trial / PROGRESS_FILE)  # opening a FIFO for writing would block until someone reads it
    logger = TrialLogger(trial, tensorboard=False)
    with pytest.raises(CheckpointError, match="not a regular file"):
        logger.log({"training_iteration": 1, "episode_return_mean": 1.0})
    logger.close()


def test_a_resume_refuses_a_fifo_among_the_logs_before_training(run_dir, tmp_path):
    state = json.loads((run_dir / STATE_FILE).read_text())
    state["trials"][0]["status"] = "INTERRUPTED"
    (run_dir / STATE_FILE).write_text(json.dumps(state))
    trial = trial_of(run_dir)
    (trial / PROGRESS_FILE).unlink()
    os.mkfifo(trial / PROGRESS_FILE)
    with pytest.raises(CheckpointError, match="progress.csv' is not a regular file or directory"):
        rlarena.run(
            tiny(), stop={"training_iteration": 3}, storage_path=run_dir.parent, name="exp", resume=True, **QUIET
        )
    assert [r["training_iteration"] for r in read_results(trial)] == [1, 2]  # nothing trained or written


def test_resume_rewrites_logs_by_rename(run_dir, tmp_path):
    # resume cuts result.json back and rewrites progress.csv: both renamed into place
    target = marker(tmp_path)
    trial = trial_of(run_dir)
    for name in (f".{PROGRESS_FILE}.tmp", ".result.json.tmp", ".params.tmp"):  # the old fixed temporary names
        (trial / name).symlink_to(target)
    logger = TrialLogger(trial, tensorboard=False)
    rows = logger.resume_at(1, 64)
    logger.close()
    assert [r["training_iteration"] for r in rows] == [1] and target.read_bytes() == PRECIOUS
    assert [r["training_iteration"] for r in read_results(trial)] == [1]
    assert (trial / PROGRESS_FILE).read_text().count("\n") == 2  # header and one row


def test_checkpoint_to_directory_copies_without_following_links(checkpoint, tmp_path):
    from rlarena.tune.analysis import Checkpoint

    target = marker(tmp_path)
    dst = tmp_path / "copy"
    dst.mkdir()
    (dst / METADATA_FILE).symlink_to(target)
    Checkpoint(str(checkpoint)).to_directory(dst)
    assert target.read_bytes() == PRECIOUS and not (dst / METADATA_FILE).is_symlink()
    assert (dst / METADATA_FILE).read_bytes() == (checkpoint / METADATA_FILE).read_bytes()
    Algorithm.from_checkpoint(dst, config_overrides={"num_envs_per_env_runner": 1}).stop()
    src = tmp_path / "src"
    shutil.copytree(checkpoint, src)
    (src / "secret").symlink_to(target)
    with pytest.raises(CheckpointError, match="secret' is a symbolic link .*outside its directory"):
        Checkpoint(str(src)).to_directory(tmp_path / "copy2")


def test_export_onnx_refuses_a_linked_path(checkpoint, tmp_path, track):
    algo = track(Algorithm.from_checkpoint(checkpoint, config_overrides={"num_envs_per_env_runner": 1}))
    target = marker(tmp_path)
    (tmp_path / "model.onnx").symlink_to(target)
    with pytest.raises(ConfigError, match="model.onnx'.*symbolic link"):
        algo.export_onnx(tmp_path / "model.onnx")
    assert target.read_bytes() == PRECIOUS


def test_saved_test_positions_are_renamed_into_place(tmp_path):
    from rlarena.games.connect_four.grading import Position, load_positions, save_positions

    target = marker(tmp_path)
    stages = {"end": [Position("4453", (0, 1, 2, 3, 4, 5, None))]}
    (tmp_path / "positions.json.gz").symlink_to(target)
    with pytest.raises(ConfigError, match="symbolic link"):
        save_positions(tmp_path / "positions.json.gz", stages, {"made": "here"})
    assert target.read_bytes() == PRECIOUS
    save_positions(tmp_path / "mine.json.gz", stages, {"made": "here"})
    assert load_positions(tmp_path / "mine.json.gz") == stages


def test_recording_refuses_a_linked_policy_directory_and_renames_files(tmp_path):
    pytest.importorskip("pyarrow")
    from rlarena.offline.io import OfflineData
    from rlarena.offline.record import Recorder

    victim = tmp_path / "outside" / "data"
    victim.mkdir(parents=True)
    out = tmp_path / "rec"
    out.mkdir()
    (out / "b").symlink_to(victim, target_is_directory=True)
    space = SimpleNamespace(observation_space=gym.spaces.Box(-1, 1, (2,)), action_space=gym.spaces.Discrete(2))
    recorder = Recorder(out, {"a": space, "b": space}, 2**20, multi_agent=True)
    rows = {
        "eps_id": np.array([1, 1]),
        "obs": np.zeros((2, 2)),
        "new_obs": np.zeros((2, 2)),
        "actions": np.array([0, 1]),
        "rewards": np.ones(2),
        "terminateds": np.array([False, True]),
        "truncateds": np.zeros(2, bool),
    }
    recorder._writer("a").add(rows)
    with pytest.raises(OfflineDataError, match="policy 'b'.* symbolic link"):
        recorder._writer("b")
    recorder.close()
    assert list(victim.iterdir()) == []
    assert OfflineData(out / "a").num_rows == 2 and no_temporary_files(out)


# == reads ===========================================================================================
@pytest.fixture(scope="module")
def package(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rlarena.hub import package_to_hub

    with pytest.MonkeyPatch.context() as mp:  # load_from_hub reads no ONNX graph: skip its export
        mp.setattr("rlarena.hub._write_onnx", lambda *args: False)
        return package_to_hub(checkpoint, tmp_path_factory.mktemp("pkg") / "package", episodes=1, video=False).folder


def hub_cache(package: Path, repo: Path, blobs: Path) -> Path:
    """huggingface_hub's layout: repo/snapshots/<rev>/<file> -> ../../blobs/<sha256>; the blobs in `blobs`."""
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    blobs.mkdir(parents=True, exist_ok=True)
    for file in package.iterdir():
        blob = blobs / hashlib.sha256(file.read_bytes()).hexdigest()
        shutil.copy(file, blob)
        (snapshot / file.name).symlink_to(Path("..") / ".." / "blobs" / blob.name)
    return snapshot


def test_hub_cache_whose_blobs_is_a_link_is_refused(package, tmp_path, monkeypatch):
    from rlarena.checkpoint import io as ckpt_io
    from rlarena.hub import load_from_hub

    legit = hub_cache(package, tmp_path / "models--me--real", tmp_path / "models--me--real" / "blobs")
    load_from_hub(legit).stop()  # the real layout, relative blob links: loads
    repo = tmp_path / "models--me--evil"
    outside = tmp_path / "outside" / "anywhere"
    snapshot = hub_cache(package, repo, outside)
    (repo / "blobs").symlink_to(outside, target_is_directory=True)  # the links now lead anywhere
    opened: list[Path] = []
    real_sha = ckpt_io.sha256
    monkeypatch.setattr(ckpt_io, "sha256", lambda p: opened.append(Path(p)) or real_sha(p))
    with pytest.raises(CheckpointError, match="Package config .* is a symbolic link to .*outside its directory"):
        load_from_hub(snapshot)
    assert not [p for p in opened if outside in p.resolve().parents]


def plant_linked_checkpoint(run_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Move the trial's latest checkpoint outside and link a newer-looking name to it."""
    trial = trial_of(run_dir)
    outside = tmp_path / "outside" / "ckpt"
    shutil.copytree(trial / "checkpoints" / "checkpoint_000002", outside)
    (trial / "checkpoints" / "checkpoint_000099").symlink_to(outside, target_is_directory=True)
    return trial, outside


def test_a_linked_checkpoint_is_never_a_trials_latest_or_best(run_dir, tmp_path, capsys):
    trial, outside = plant_linked_checkpoint(run_dir, tmp_path)
    with pytest.warns(RLArenaNotice, match="checkpoint_000099 left out: a symbolic link"):
        results = Results.from_path(run_dir)
    chosen = [results.best_checkpoint, results.last_checkpoint, *(r.path for r in results.trials[0].checkpoints)]
    assert all(Path(p).name in ("checkpoint_000001", "checkpoint_000002") for p in chosen)
    assert not any(outside == Path(p) or outside in Path(p).parents for p in chosen)
    from rlarena.tune import ExperimentAnalysis

    with pytest.warns(RLArenaNotice):
        analysis = ExperimentAnalysis(str(run_dir))
    assert Path(analysis.get_last_checkpoint(analysis.trials[0])).name == "checkpoint_000002"
    err = one_line_error(["rollout", str(trial), "--episodes", "1"], capsys)
    assert "checkpoint_000099' is a symbolic link" in err


def test_a_linked_checkpoints_directory_or_trial_directory_is_not_read(run_dir, tmp_path, capsys):
    trial = trial_of(run_dir)
    outside = tmp_path / "outside" / "checkpoints"
    shutil.move(trial / "checkpoints", outside)
    (trial / "checkpoints").symlink_to(outside, target_is_directory=True)
    with pytest.warns(RLArenaNotice, match="left out"):
        results = Results.from_path(run_dir)
    assert results.best_checkpoint is None and results.trials[0].checkpoints == []
    assert "symbolic link" in one_line_error(["evaluate", str(run_dir), "--episodes", "1"], capsys)
    # the whole trial directory as a link: refused
    (trial / "checkpoints").unlink()
    shutil.move(outside, trial / "checkpoints")
    moved = tmp_path / "outside" / "trial"
    shutil.move(trial, moved)
    trial.symlink_to(moved, target_is_directory=True)
    with pytest.raises(CheckpointError, match="directory, is a symbolic link"):
        Results.from_path(run_dir)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_progress_linked_to_a_device_is_one_error_not_a_hang(run_dir, capsys):
    pytest.importorskip("matplotlib")
    trial = trial_of(run_dir)
    (trial / PROGRESS_FILE).unlink()
    (trial / PROGRESS_FILE).symlink_to("/dev/zero")
    assert "symbolic link to '/dev/zero'" in one_line_error(["plot", str(run_dir)], capsys)
    (trial / PROGRESS_FILE).unlink()
    os.mkfifo(trial / PROGRESS_FILE)
    assert "not a regular file" in one_line_error(["plot", str(trial)], capsys)


def test_logs_past_the_size_bound_are_refused_before_reading(run_dir, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    trial = trial_of(run_dir)
    monkeypatch.setattr(limits, "MAX_LOG_BYTES", 100)  # read at call time
    with pytest.raises(
        CheckpointError, match="result.json' is .* bytes, more than the 100 .*rlarena.limits.MAX_LOG_BYTES"
    ):
        read_results(trial)
    assert "MAX_LOG_BYTES" in one_line_error(["plot", str(run_dir)], capsys)
    monkeypatch.setattr(limits, "MAX_LOG_BYTES", 2**20)
    assert [r["training_iteration"] for r in read_results(trial)] == [1, 2]


def test_offline_data_does_not_follow_links_out_of_its_folder(data_dir, tmp_path):
    from rlarena.offline import OfflineData

    assert OfflineData(data_dir).num_rows > 0  # the real data set reads
    outside = tmp_path / "outside" / "secret.parquet"
    outside.parent.mkdir()
    shutil.copy(next(data_dir.glob("*.parquet")), outside)
    (data_dir / "zz-linked.parquet").symlink_to(outside)
    with pytest.raises(OfflineDataError, match="zz-linked.parquet' is a symbolic link to .*outside its directory"):
        OfflineData(data_dir)
    with pytest.raises(OfflineDataError, match="symbolic link"):
        OfflineData(str(data_dir / "*.parquet"))
    (data_dir / "zz-linked.parquet").unlink()
    os.mkfifo(data_dir / "zz-fifo.parquet")  # reading it would block forever
    with pytest.raises(OfflineDataError, match="not a regular file"):
        OfflineData(data_dir)


# == sizes ===========================================================================================
@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every Parquet data read (not footer reads) that happens."""
    pq = pytest.importorskip("pyarrow.parquet")
    calls: list[str] = []
    real_read, real_table = pq.ParquetFile.read, pq.read_table
    monkeypatch.setattr(pq.ParquetFile, "read", lambda self, *a, **k: calls.append("read") or real_read(self, *a, **k))
    monkeypatch.setattr(pq, "read_table", lambda *a, **k: calls.append("read_table") or real_table(*a, **k))
    return calls


@pytest.mark.parametrize("bound", ["MAX_DATA_ROWS", "MAX_DATA_BYTES"])
def test_a_data_set_past_the_bounds_is_refused_before_reading(data_dir, monkeypatch, reads, bound):
    from rlarena import BCConfig
    from rlarena.offline import OfflineData

    default = getattr(limits, bound)
    monkeypatch.setattr(limits, bound, 10)  # read at call time
    with pytest.raises(OfflineDataError, match=f"is more than the 10 rlarena reads .*rlarena.limits.{bound} = "):
        OfflineData(data_dir)
    with pytest.raises(OfflineDataError, match=bound):
        BCConfig().environment("CartPole-v1").offline_data(input_=str(data_dir)).build()
    assert reads == []
    monkeypatch.setattr(limits, bound, default)
    data = OfflineData(data_dir)
    data.read_file(data.files[0])
    assert "read" in reads


def test_the_byte_bound_counts_decoded_values_not_the_compressed_file(tmp_path, monkeypatch, reads):
    # 50,000 rows of zeros: a few KB on disk (dictionary and run-length encoding), 12.8 MB once read
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from rlarena.offline import OfflineData

    n, width = 50_000, 32
    obs = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(n * width, np.float32)), width)
    table = pa.table(
        {
            "eps_id": pa.array(np.zeros(n, np.int64)),
            "obs": obs,
            "actions": pa.array(np.zeros(n, np.int64)),
            "rewards": pa.array(np.zeros(n, np.float32)),
            "new_obs": obs,
            "terminateds": pa.array(np.zeros(n, bool)),
            "truncateds": pa.array(np.zeros(n, bool)),
        }
    )
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "zeros.parquet"
    pq.write_table(table, path, compression="zstd")
    on_disk = path.stat().st_size
    decoded = 2 * n * width * 4
    assert on_disk * 20 < decoded
    monkeypatch.setattr(limits, "MAX_DATA_BYTES", decoded // 2)
    with pytest.raises(OfflineDataError, match="bytes of columns once read"):
        OfflineData(path.parent, gym.spaces.Box(-1, 1, (width,)), gym.spaces.Discrete(2))
    assert reads == []
