"""Files from strangers (issue 10, point 4): a checkpoint, a Hub package, an experiment directory or
an ONNX model that someone else wrote is read without leaving its directory, without following links
out of it, without hanging or allocating gigabytes, and a bad one fails with one clear error.

Each test tampers with a copy of a real (tiny) checkpoint, package or run. A file planted outside
the directory, with its sha256 recorded, shows that only the new checks stop a load from reading it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import trained_checkpoint

import rlarena
from rlarena import Algorithm, PPOConfig
from rlarena.checkpoint import io as ckpt_io
from rlarena.checkpoint.io import METADATA_FILE
from rlarena.cli.main import main
from rlarena.envs.spaces import MAX_FLAT_SIZE, space_from_json
from rlarena.errors import CheckpointError, ConfigError
from rlarena.hub import load_from_hub, package_to_hub
from rlarena.train.loggers import MAX_RESULT_LINE, read_results
from rlarena.train.results import STATE_FILE, Results

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "src" / "rlarena" / "games" / "connect_four" / "agent"
WEIGHTS = "policy.default_policy.safetensors"
QUIET = {"verbose": 0, "tensorboard": False, "plot": False}


def tiny() -> PPOConfig:
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_envs_per_env_runner=2)
        .training(train_batch_size=64, minibatch_size=64, num_epochs=1, model={"fcnet_hiddens": [8]})
        .debugging(seed=0)
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_checkpoint(tiny(), tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def package(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    with pytest.MonkeyPatch.context() as mp:  # the ONNX graph is not read by load_from_hub: skip its export
        mp.setattr("rlarena.hub._write_onnx", lambda *args: False)
        made = package_to_hub(checkpoint, tmp_path_factory.mktemp("pkg") / "package", episodes=1, video=False)
    return made.folder


def copy(src: Path, tmp_path: Path, name: str = "copy") -> Path:
    dst = tmp_path / name
    shutil.copytree(src, dst, symlinks=True)
    return dst


def edit_json(path: Path, edit: Any) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one `error:` line the CLI prints (exit status 2, no traceback)."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every safetensors file a load hashes or reads (resolved)."""
    paths: list[Path] = []
    real_sha, real_load = ckpt_io.sha256, ckpt_io.load_file
    monkeypatch.setattr(ckpt_io, "sha256", lambda p: paths.append(Path(p).resolve()) or real_sha(p))
    monkeypatch.setattr(ckpt_io, "load_file", lambda p: paths.append(Path(p).resolve()) or real_load(p))
    return paths


# -- file names from JSON ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "../planted.safetensors",
        "../../planted.safetensors",
        "{abs}",
        "sub/rng.safetensors",
        "..",
        ".",
        "rng.bin",
        ".safetensors",
        "a\\b.safetensors",
        "rng\0.safetensors",
    ],
)
def test_checkpoint_file_names_must_be_plain(checkpoint, tmp_path, opened, capsys, name):
    ckpt = copy(checkpoint, tmp_path / "inner")
    planted = tmp_path / "planted.safetensors"
    shutil.copy(ckpt / "rng.safetensors", planted)
    (ckpt / "sub").mkdir()
    shutil.copy(ckpt / "rng.safetensors", ckpt / "sub" / "rng.safetensors")
    name = name.format(abs=planted)

    def swap(meta: dict[str, Any]) -> None:  # the planted file's real digest: only the name check stops it
        del meta["files"]["rng.safetensors"]
        meta["files"][name] = sha(planted)

    edit_json(ckpt / METADATA_FILE, swap)
    with pytest.raises(CheckpointError, match="is refused: its files table names .*not a plain file name"):
        Algorithm.from_checkpoint(ckpt)
    assert opened == []  # checked before any file is opened
    assert "not a plain file name" in cli_error(["rollout", str(ckpt)], capsys)
    assert "not a plain file name" in cli_error(["evaluate", str(ckpt), "--episodes", "1"], capsys)


def test_package_file_names_must_be_plain(package, tmp_path, opened):
    folder = copy(package, tmp_path / "inner")
    planted = tmp_path / "planted.safetensors"
    shutil.copy(folder / "model.safetensors", planted)
    edit_json(folder / "config.json", lambda m: m["files"].__setitem__("../planted.safetensors", sha(planted)))
    with pytest.raises(CheckpointError, match=r"Package .* is refused: its files table names '\.\./planted"):
        load_from_hub(folder)
    assert planted.resolve() not in opened


def test_a_policy_id_that_is_not_a_file_name_is_not_written(tmp_path):
    with pytest.raises(CheckpointError, match="'policy.../../x' cannot name a file"):
        ckpt_io.write_checkpoint(tmp_path / "ckpt", {}, {"policy.../../x": {"w": np.zeros(2)}})
    assert list(tmp_path.iterdir()) == []


def test_files_table_of_the_wrong_shape(checkpoint, tmp_path):
    ckpt = copy(checkpoint, tmp_path)
    edit_json(ckpt / METADATA_FILE, lambda m: m["files"].__setitem__("rng.safetensors", ["x"]))
    with pytest.raises(CheckpointError, match="files table must map file names to sha256 digests"):
        Algorithm.from_checkpoint(ckpt)


# -- symbolic links ---------------------------------------------------------------------------------
def test_weights_linked_outside_are_refused(checkpoint, tmp_path, opened, capsys):
    ckpt = copy(checkpoint, tmp_path / "inner")
    outside = tmp_path / "outside.safetensors"
    shutil.move(ckpt / WEIGHTS, outside)  # the same bytes: the digest matches
    (ckpt / WEIGHTS).symlink_to(outside)
    with pytest.raises(CheckpointError, match=f"{WEIGHTS}' is a symbolic link to .*outside its directory"):
        Algorithm.from_checkpoint(ckpt)
    assert outside.resolve() not in opened
    assert "symbolic link" in cli_error(["rollout", str(ckpt)], capsys)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_links_to_devices_and_fifos_do_not_hang(checkpoint, tmp_path):
    ckpt = copy(checkpoint, tmp_path)
    (ckpt / WEIGHTS).unlink()
    (ckpt / WEIGHTS).symlink_to("/dev/zero")
    with pytest.raises(CheckpointError, match="symbolic link to '/dev/zero'"):
        Algorithm.from_checkpoint(ckpt)
    (ckpt / WEIGHTS).unlink()
    os.mkfifo(ckpt / WEIGHTS)  # reading a FIFO would block forever
    with pytest.raises(CheckpointError, match=f"{WEIGHTS}' is not a regular file"):
        Algorithm.from_checkpoint(ckpt)


def test_metadata_linked_outside_is_refused(checkpoint, tmp_path):
    ckpt = copy(checkpoint, tmp_path / "inner")
    outside = tmp_path / "elsewhere.json"
    shutil.move(ckpt / METADATA_FILE, outside)
    (ckpt / METADATA_FILE).symlink_to(outside)
    with pytest.raises(CheckpointError, match="Checkpoint metadata .* is a symbolic link to .*outside"):
        Algorithm.from_checkpoint(ckpt)


def test_links_within_the_directory_and_a_linked_directory_load(checkpoint, tmp_path):
    ckpt = copy(checkpoint, tmp_path / "inner")
    (ckpt / "data").mkdir()
    shutil.move(ckpt / WEIGHTS, ckpt / "data" / WEIGHTS)
    (ckpt / WEIGHTS).symlink_to(Path("data") / WEIGHTS)  # stays inside: followed
    link = tmp_path / "linked"
    link.symlink_to(ckpt, target_is_directory=True)  # the user's own link to the checkpoint
    Algorithm.from_checkpoint(link, config_overrides={"num_envs_per_env_runner": 1}).stop()


def test_huggingface_cache_layout_loads(package, tmp_path):
    # snapshot_download gives snapshots/<revision>/<file> -> ../../blobs/<hash>: the Hub path must keep working
    repo = tmp_path / "models--me--package"
    snapshot, blobs = repo / "snapshots" / "abc123", repo / "blobs"
    snapshot.mkdir(parents=True)
    blobs.mkdir()
    for file in package.iterdir():
        blob = blobs / sha(file)
        shutil.copy(file, blob)
        (snapshot / file.name).symlink_to(Path("..") / ".." / "blobs" / blob.name)
    load_from_hub(snapshot).stop()
    # the same links into any other folder are refused
    (repo / "other").mkdir()
    shutil.move(blobs / sha(package / "config.json"), repo / "other" / "config")
    (snapshot / "config.json").unlink()
    (snapshot / "config.json").symlink_to(repo / "other" / "config")
    with pytest.raises(CheckpointError, match="Package config .* is a symbolic link"):
        load_from_hub(snapshot)


# -- JSON: size, nesting, encoding ------------------------------------------------------------------
@pytest.mark.parametrize(
    "content, message",
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested more deeply"),
        (b'{"format_version": 1, "files": {}, "x": ' + b"9" * 5000 + b"}", "not valid JSON .*digits"),
        (b'{"format_version": 1, "files": {}, "x": "\xff\xfe"}', "not UTF-8"),
        (b'{"format_version": 1, "files": ', "not valid JSON .*line 1"),
    ],
    ids=["nested", "long-number", "not-utf8", "truncated"],
)
def test_malformed_metadata_is_a_clear_error(checkpoint, tmp_path, capsys, content, message):
    ckpt = copy(checkpoint, tmp_path)
    (ckpt / METADATA_FILE).write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        Algorithm.from_checkpoint(ckpt)
    cli_error(["rollout", str(ckpt)], capsys)


def test_huge_json_is_refused_before_it_is_read(checkpoint, package, tmp_path, capsys):
    ckpt = copy(checkpoint, tmp_path)
    os.truncate(ckpt / METADATA_FILE, ckpt_io.MAX_JSON_BYTES + 1)  # sparse: no disk used
    with pytest.raises(CheckpointError, match="larger than the 16 MiB of JSON rlarena reads"):
        Algorithm.from_checkpoint(ckpt)
    assert "MAX_JSON_BYTES" in cli_error(["evaluate", str(ckpt), "--episodes", "1"], capsys)
    folder = copy(package, tmp_path, "pkg")
    os.truncate(folder / "config.json", ckpt_io.MAX_JSON_BYTES + 1)
    with pytest.raises(CheckpointError, match="Package config .* is larger than"):
        load_from_hub(folder)


def test_the_limit_fits_the_shipped_checkpoint():
    assert (SHIPPED / METADATA_FILE).stat().st_size * 100 < ckpt_io.MAX_JSON_BYTES


def test_sha256_reads_in_chunks_and_matches_hashlib(tmp_path):
    data = os.urandom(3 * 2**20 + 17)
    (tmp_path / "f").write_bytes(data)
    assert ckpt_io.sha256(tmp_path / "f") == hashlib.sha256(data).hexdigest()


# -- spaces -----------------------------------------------------------------------------------------
BAD_SPACES = [
    ({"type": "Box", "low": [0], "high": [1], "dtype": "object"}, "'dtype' is 'object'"),
    ({"type": "Box", "low": [0], "high": [1], "dtype": "(1000000000,)f8"}, "'dtype' is"),
    ({"type": "Box", "low": [0, 0], "high": [1], "dtype": "float32"}, "'low' has shape \\[2\\] but 'high'"),
    ({"type": "Box", "low": [1], "high": [0], "dtype": "float32"}, "low values must be less than or equal"),
    ({"type": "Box", "low": ["a"], "high": [1], "dtype": "float32"}, "'low' is not a float32 array"),
    ({"type": "Box", "low": [float("nan")], "high": [1], "dtype": "float32"}, "'low' holds NaN"),
    ({"type": "Discrete", "n": -3}, "'n' is -3"),
    ({"type": "Discrete", "n": 10**12}, "'n' is 1000000000000"),
    ({"type": "Discrete", "n": 2, "start": 10**40}, "'start'"),
    ({"type": "Discrete"}, "Discrete lacks 'n'"),
    ({"type": "MultiDiscrete", "nvec": [0, 2]}, "'nvec' must be"),
    ({"type": "MultiDiscrete", "nvec": [2**40]}, "'nvec' must be"),
    ({"type": "Dict", "spaces": {"a": {"type": "Foo"}}}, "at a: unknown space type 'Foo'"),
    (
        {"type": "Dict", "spaces": {str(i): {"type": "Discrete", "n": MAX_FLAT_SIZE} for i in range(2)}},
        "elements in all",
    ),
    ("Box", "expected an object with a 'type'"),
]


@pytest.mark.parametrize("data, message", BAD_SPACES)
def test_bad_spaces_are_value_errors(data, message):
    with pytest.raises(ValueError, match=message):
        space_from_json(data)


def test_deeply_nested_dict_spaces_are_refused():
    data: dict[str, Any] = {"type": "Discrete", "n": 2}
    for _ in range(50):
        data = {"type": "Dict", "spaces": {"x": data}}
    with pytest.raises(ValueError, match="nested more than"):
        space_from_json(data)


@pytest.mark.parametrize("data, message", [BAD_SPACES[0], BAD_SPACES[7]])
def test_bad_space_in_a_checkpoint_is_a_checkpoint_error(tmp_path, capsys, data, message, league_checkpoint):
    ckpt = copy(league_checkpoint, tmp_path)  # multi-agent: its policies' spaces are read back
    edit_json(ckpt / METADATA_FILE, lambda m: m["policies"]["learned"].__setitem__("action_space", data))
    with pytest.raises(CheckpointError, match=message):
        Algorithm.from_checkpoint(ckpt)
    assert "unreadable space" in cli_error(["rollout", str(ckpt)], capsys)


# -- safetensors headers ----------------------------------------------------------------------------
def crafted_safetensors(path: Path, header: dict[str, Any], data: bytes, header_size: int | None = None) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if header_size is None else header_size) + raw + data)


@pytest.mark.parametrize(
    "header, data, header_size",
    [
        ({"w": {"dtype": "F32", "shape": [100_000, 100_000], "data_offsets": [0, 40_000_000_000]}}, b"\0" * 16, None),
        ({"w": {"dtype": "F32", "shape": [2**62, 2**62], "data_offsets": [0, 16]}}, b"\0" * 16, None),
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 16, 2**63),
        ({"w": {"dtype": "F32", "shape": [0, 2**62, 2**62], "data_offsets": [0, 0]}}, b"", None),
        ({"w": {"dtype": "F32", "shape": [1] * 1000, "data_offsets": [0, 4]}}, b"\0" * 4, None),
        ({"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4, None),
    ],
)
def test_crafted_safetensors_header_is_a_checkpoint_error(checkpoint, tmp_path, capsys, header, data, header_size):
    # the attacker writes the file and its digest: only the reader's own checks stand
    ckpt = copy(checkpoint, tmp_path)
    crafted_safetensors(ckpt / WEIGHTS, header, data, header_size)
    edit_json(ckpt / METADATA_FILE, lambda m: m["files"].__setitem__(WEIGHTS, sha(ckpt / WEIGHTS)))
    # BF16 reads once ml_dtypes is imported (onnx and tensorboard import it, so it depends on which tests
    # ran before): the file is then well-formed and its array does not fit the model
    expected = f"{WEIGHTS} cannot be read" + ("|does not match" if header["w"]["dtype"] == "BF16" else "")
    with pytest.raises(CheckpointError, match=expected):
        Algorithm.from_checkpoint(ckpt)
    cli_error(["rollout", str(ckpt)], capsys)


# -- experiment directories (resume) ----------------------------------------------------------------
@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A finished one-iteration run at tmp_path/runs/exp whose only trial is marked interrupted."""
    rlarena.run(tiny(), stop={"training_iteration": 1}, storage_path=tmp_path / "runs", name="exp", **QUIET)
    exp = tmp_path / "runs" / "exp"
    edit_json(exp / STATE_FILE, lambda s: s["trials"][0].__setitem__("status", "INTERRUPTED"))
    return exp


def tree(root: Path, skip: Path) -> dict[str, bytes | None]:
    return {str(p): (p.read_bytes() if p.is_file() else None) for p in root.rglob("*") if skip not in p.parents}


def victim(tmp_path: Path) -> Path:
    """A directory outside the run that a resume would write into and prune, were it followed."""
    place = tmp_path / "victim"
    (place / "checkpoints" / ".looks-unfinished").mkdir(parents=True)  # scan(clean=True) removes such
    (place / "result.json").write_text("precious\n")
    return place


@pytest.mark.parametrize("dirname", ["../../victim", "/abs", "..", "a/b", ".hidden"])
def test_trial_dirname_outside_the_experiment_is_refused(run_dir, tmp_path, capsys, dirname):
    target = victim(tmp_path)
    dirname = dirname.replace("/abs", str(target))
    edit_json(run_dir / STATE_FILE, lambda s: s["trials"][0].__setitem__("dirname", dirname))
    before = tree(tmp_path, skip=run_dir)
    with pytest.raises(CheckpointError, match="a trial's directory is .* not a plain directory name"):
        rlarena.run(
            tiny(), stop={"training_iteration": 2}, storage_path=tmp_path / "runs", name="exp", resume=True, **QUIET
        )
    with pytest.raises(CheckpointError, match="not a plain directory name"):
        Results.from_path(run_dir)
    cli_error(
        [
            "train",
            "--env",
            "CartPole-v1",
            "--storage-path",
            str(tmp_path / "runs"),
            "--name",
            "exp",
            "--resume",
            "--verbose",
            "0",
            "--no-tensorboard",
            "--no-plot",
        ],
        capsys,
    )
    assert tree(tmp_path, skip=run_dir) == before  # nothing outside the run created, changed or deleted


@pytest.mark.parametrize("what", ["trial", "checkpoints", "file", "checkpoint"])
def test_links_in_a_trial_directory_stop_a_resume(run_dir, tmp_path, what):
    target = victim(tmp_path)
    trial = next(p for p in run_dir.iterdir() if p.is_dir())
    link = {
        "trial": trial,
        "checkpoints": trial / "checkpoints",
        "file": trial / "learning_curve.png",
        "checkpoint": trial / "checkpoints" / "checkpoint_000009",
    }[what]
    if link.exists():
        shutil.rmtree(link)
    link.symlink_to(target / "checkpoints" if what == "checkpoint" else target)
    before = tree(tmp_path, skip=run_dir)
    with pytest.raises(CheckpointError, match="is a symbolic link .* rlarena never follows links there"):
        rlarena.run(
            tiny(), stop={"training_iteration": 2}, storage_path=tmp_path / "runs", name="exp", resume=True, **QUIET
        )
    assert tree(tmp_path, skip=run_dir) == before


def test_a_planted_link_where_a_new_trial_would_go_is_refused(tmp_path):
    # resume=True on a directory without experiment_state.json starts a new run there
    target = victim(tmp_path)
    exp = tmp_path / "runs" / "exp"
    exp.mkdir(parents=True)
    (exp / "PPO_CartPole-v1_00000").symlink_to(target)
    before = tree(tmp_path, skip=exp)
    with pytest.raises(CheckpointError, match="PPO_CartPole-v1_00000' is a symbolic link"):
        rlarena.run(
            tiny(), stop={"training_iteration": 1}, storage_path=tmp_path / "runs", name="exp", resume=True, **QUIET
        )
    assert tree(tmp_path, skip=exp) == before


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.__setitem__("trials", {"a": 1}), "a list of trials"),
        (lambda s: s["trials"][0].__setitem__("params", [1]), "params is \\[1\\], of the wrong type"),
        (lambda s: s["trials"][0].__setitem__("status", "HACKED"), "status is 'HACKED'"),
        (lambda s: s["trials"][0].__setitem__("extra", 1), "unknown keys \\['extra'\\]"),
        (lambda s: s["trials"].append(dict(s["trials"][0])), "two trials have the directory"),
    ],
)
def test_malformed_experiment_state_is_a_clear_error(run_dir, tmp_path, edit, message):
    edit_json(run_dir / STATE_FILE, edit)
    with pytest.raises(CheckpointError, match=message):
        rlarena.run(
            tiny(), stop={"training_iteration": 2}, storage_path=tmp_path / "runs", name="exp", resume=True, **QUIET
        )


def test_nested_experiment_state_is_a_clear_error(run_dir, tmp_path):
    (run_dir / STATE_FILE).write_text("[" * 100_000)
    with pytest.raises(CheckpointError, match="Experiment state .*nested more deeply"):
        Results.from_path(run_dir)


def test_result_lines_that_are_not_results_are_skipped(tmp_path):
    good = json.dumps({"training_iteration": 1, "episode_return_mean": float("nan")})
    lines = [
        good,
        "[" * 100_000,
        "x" * (MAX_RESULT_LINE + 10),
        '{"training_iteration": "1"}',
        '{"training_iteration": ' + "9" * 5000 + "}",
        '{"training_iteration": 2.5}',
        json.dumps({"training_iteration": 2}),
    ]
    (tmp_path / "result.json").write_text("\n".join(lines) + "\n")
    assert [r["training_iteration"] for r in read_results(tmp_path)] == [1, 2]


def test_result_file_linked_to_a_device_is_refused(tmp_path):
    if not Path("/dev/zero").exists():
        pytest.skip("needs /dev/zero")
    (tmp_path / "result.json").symlink_to("/dev/zero")
    with pytest.raises(CheckpointError, match="symbolic link"):
        read_results(tmp_path)


def test_planted_temporary_file_link_is_not_written_through(run_dir, tmp_path):
    # the state is saved via .experiment_state.json.tmp: a link planted there must not be followed
    target = tmp_path / "precious.txt"
    target.write_text("precious\n")
    (run_dir / f".{STATE_FILE}.tmp").symlink_to(target)
    rlarena.run(
        tiny(), stop={"training_iteration": 2}, storage_path=tmp_path / "runs", name="exp", resume=True, **QUIET
    )
    assert target.read_text() == "precious\n"
    assert json.loads((run_dir / STATE_FILE).read_text())["trials"][0]["status"] == "TERMINATED"


# -- ONNX models ------------------------------------------------------------------------------------
def onnx_copy(tmp_path: Path, edit: Any) -> Path:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    model = onnx.load(str(SHIPPED / "model.onnx"))
    edit(model)
    (tmp_path / "models").mkdir(exist_ok=True)
    path = tmp_path / "models" / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "weights.bin"])
def test_onnx_external_data_is_refused_before_onnxruntime_opens_it(tmp_path, capsys, location):
    from rlarena.export.onnx import OnnxPolicy

    (tmp_path / "secret.bin").write_bytes(b"\0" * 4096)

    def externalize(model: Any) -> None:
        tensor = max(model.graph.initializer, key=lambda t: len(t.raw_data))
        tensor.ClearField("raw_data")
        tensor.data_location = 1  # TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", location

    path = onnx_copy(tmp_path, externalize)
    with pytest.raises(CheckpointError, match="is refused: its tensors keep their data in other files"):
        OnnxPolicy(path)
    err = cli_error(["rollout", "--onnx", str(path), "--env", "CartPole-v1"], capsys)
    assert "external data" in err


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("rlarena.format", "one", "rlarena.format is 'one', not a format number"),
        ("rlarena.observation_space", "[" * 100_000, "nested too deeply"),
        ("rlarena.observation_space", "{", "is not JSON"),
        ("rlarena.action_space", json.dumps({"type": "Discrete", "n": 10**12}), "'n' is 1000000000000"),
        ("rlarena.action_space", json.dumps({"type": "Discrete", "n": 5}), "action_mask space .* does not fit"),
        ("rlarena.masked", "1", "rlarena.masked is 1, not true or false"),
        ("rlarena.masked", "false", "does not fit rlarena.masked=false"),
    ],
    ids=["format", "nested", "not-json", "huge-n", "mask-mismatch", "masked-not-bool", "masked-mismatch"],
)
def test_onnx_metadata_is_checked(tmp_path, key, value, message):
    from rlarena.export.onnx import OnnxPolicy

    def set_prop(model: Any) -> None:
        next(p for p in model.metadata_props if p.key == key).value = value

    with pytest.raises(CheckpointError, match=message):
        OnnxPolicy(onnx_copy(tmp_path, set_prop))


def test_onnx_that_is_not_protobuf_is_a_clear_error(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from rlarena.export.onnx import OnnxPolicy

    path = tmp_path / "model.onnx"
    path.write_bytes(b"hello, not a model")
    with pytest.raises(CheckpointError, match="is not a readable ONNX model"):
        OnnxPolicy(path)


def test_the_shipped_onnx_model_still_loads():
    pytest.importorskip("onnxruntime")
    from rlarena.export.onnx import OnnxPolicy

    policy = OnnxPolicy(SHIPPED / "model.onnx")
    assert policy.masked and policy.action_space.n == 7


# -- where a mistake is not the file's: a clear ConfigError is kept ----------------------------------
def test_missing_experiment_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not an rlarena experiment directory"):
        Results.from_path(tmp_path)
