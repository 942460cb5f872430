"""Checkpoint directories: one JSON file (config, counters, metadata, format version, file hashes)
and one safetensors file per group of arrays (policy weights, optimizer state, ...).

Loading never unpickles anything, so a checkpoint from a stranger is safe to open. Writing goes to a
temporary sibling directory that is renamed into place; the JSON is written last, as the sentinel
(Dopamine's habit), so a directory without it was never finished.

Reading treats every file as a stranger's: file names from JSON must be plain names (no `../`), a
file must be a regular file that resolves inside its directory (a symlink out of it is refused), and
JSON is size-checked before it is read (read_json). Each problem is a CheckpointError naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from rlarena.errors import CheckpointError

FORMAT_VERSION = 1
METADATA_FILE = "rlarena_checkpoint.json"
# what playing, evaluating or exporting a checkpoint changes in its config: one env, in this process
# (a checkpoint trained on Ray runners starts no Ray to be played)
INFERENCE_OVERRIDES = {"num_envs_per_env_runner": 1, "vectorization_mode": "sync", "num_env_runners": 0,
                       "evaluation_num_env_runners": 0, "evaluation_parallel_to_training": False}
# The most JSON read from one file. The biggest that rlarena ships, the Connect Four agent's
# rlarena_checkpoint.json, is 93 KB; a policy on raw 210x160x3 Atari frames writes 5.3 MiB of space
# bounds. 16 MiB leaves that room, and a hostile file of this size (`[[],[],...]`) parses in about
# 380 MB and 2 s (measured). Read at call time, so a user can raise it for a file of their own.
MAX_JSON_BYTES = 16 * 2**20
_CHUNK = 2**20


def sha256(path: Path) -> str:
    """The file's sha256, read in 1 MiB chunks (a weights file may be larger than memory allows)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_plain_name(name: object) -> bool:
    """A file or directory name on its own: no path separator, not '.' or '..', no NUL."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name
            and "\0" not in name and len(name) <= 255)


def _allowed(real: Path, root: Path) -> bool:
    """Whether `real` (a resolved path) lies inside the directory `root` (resolved) or, in the layout of
    huggingface_hub's cache (what load_from_hub downloads), is a blob of the same repository:
    <repo>/snapshots/<revision>/config.json -> ../../blobs/<hash>."""
    if real.is_relative_to(root):
        return True
    return root.parent.name == "snapshots" and real.parent == (root.parent.parent / "blobs").resolve()


def checked_file(path: Path, what: str) -> Path:
    """`path` resolved, after checking that it is a regular file inside its directory (symlinks
    are followed only within it: a link to /etc/passwd or /dev/zero is refused, as is a FIFO that
    would block the read). A missing file raises FileNotFoundError for the caller to explain."""
    try:
        real = path.resolve(strict=True)
        root = path.parent.resolve()
        regular = real.is_file()
    except FileNotFoundError:
        raise
    except (OSError, RuntimeError) as exc:  # a symlink loop raises RuntimeError before Python 3.13
        raise CheckpointError(f"{what} {str(path)!r} cannot be read ({exc}).") from None
    if not _allowed(real, root):
        raise CheckpointError(f"{what} {str(path)!r} is a symbolic link to {str(real)!r}, outside its directory: "
                              f"rlarena reads only files inside the directory it is given. If you trust it, "
                              f"replace the link with a copy of the file.")
    if not regular:
        raise CheckpointError(f"{what} {str(path)!r} is not a regular file (a directory, device or FIFO): "
                              f"rlarena reads only regular files.")
    return real


def read_json(path: Path, what: str, max_bytes: int | None = None) -> Any:
    """The JSON value in `path`, a file a stranger may have written; a CheckpointError naming the file
    when it is a link out of its directory, not a regular file, larger than `max_bytes`
    (MAX_JSON_BYTES), or not JSON that Python reads (not UTF-8, malformed, nested too deep, a number
    of thousands of digits). A missing file raises FileNotFoundError for the caller to explain.
    NaN and Infinity are read as floats (results hold them); callers check the values they use."""
    limit = MAX_JSON_BYTES if max_bytes is None else max_bytes
    real = checked_file(path, what)
    data = b""
    if real.stat().st_size <= limit:  # checked before reading, and the read is bounded should it grow
        with open(real, "rb") as f:
            data = f.read(limit + 1)
    if real.stat().st_size > limit or len(data) > limit:
        raise CheckpointError(f"{what} {str(path)!r} is larger than the {limit / 2**20:g} MiB of JSON rlarena reads "
                              f"(its own files are far smaller): it was not written by rlarena or was tampered "
                              f"with. For a file you trust, raise rlarena.checkpoint.io.MAX_JSON_BYTES.")
    try:
        return json.loads(data.decode("utf-8"))
    except json.JSONDecodeError as exc:
        problem = f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text: byte {exc.start}"
    except RecursionError:
        problem = "nested more deeply than Python's JSON reader allows"
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        problem = str(exc).split(";")[0]
    raise CheckpointError(f"{what} {str(path)!r} is not valid JSON ({problem}): it is corrupted, truncated or "
                          f"not an rlarena file.")


def _recover_interrupted_replace(target: Path) -> None:
    """A process killed between the two renames of a replace leaves the previous checkpoint at
    `.NAME.old-XXXX` and nothing at NAME: put it back (it was complete: it had been in place)."""
    if target.exists():
        return
    for old in sorted(target.parent.glob(f".{target.name}.old-*")):
        if (old / METADATA_FILE).exists():
            os.rename(old, target)
            return


def write_checkpoint(path: str | os.PathLike, metadata: dict[str, Any],
                     arrays: dict[str, dict[str, np.ndarray]]) -> str:
    """Write `arrays` (group name -> {key: array}) and `metadata` as a checkpoint at `path`.

    An existing checkpoint at `path` is replaced only once the new one is complete; a directory
    that holds anything else is never overwritten.
    """
    for group in arrays:  # a group is named after a policy id, which a config sets freely
        if not is_plain_name(f"{group}.safetensors"):
            raise CheckpointError(f"Cannot write a checkpoint: {group!r} cannot name a file in it. Name policies "
                                  f"without '/', '\\' or NUL characters, in at most 200 characters.")
    target = Path(path).resolve()
    _recover_interrupted_replace(target)
    if target.exists() and not target.is_dir():
        raise CheckpointError(f"Refusing to write a checkpoint to {str(target)!r}: it is a file. A checkpoint is "
                              f"a directory; choose a new or empty directory path.")
    if target.exists() and any(target.iterdir()) and not (target / METADATA_FILE).exists():
        raise CheckpointError(f"Refusing to write a checkpoint into {str(target)!r}: it is a non-empty "
                              f"directory that is not an rlarena checkpoint. Choose a new or empty directory.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        files = {}
        for group, tensors in arrays.items():
            name = f"{group}.safetensors"
            save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp / name))
            files[name] = sha256(tmp / name)
        meta = {"format_version": FORMAT_VERSION, **metadata, "files": files}
        with open(tmp / METADATA_FILE, "w") as f:
            json.dump(meta, f, indent=2, default=json_default)
            f.flush()
            os.fsync(f.fileno())
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return str(target)


def replace_dir(tmp: Path, target: Path) -> None:
    """Rename the finished directory `tmp` to `target`. A previous `target` is moved aside first and
    removed only after the rename; if the rename fails it is put back. (A crash between the two
    renames leaves it as .<name>.old-*, which read_checkpoint recovers.)"""
    if target.exists():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(target, old)
        try:
            os.rename(tmp, target)
        except BaseException:
            os.rename(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, target)


def json_default(obj: Any) -> Any:
    """json.dump's `default`: numpy scalars and arrays as Python numbers and lists."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """Return (metadata, arrays) or raise CheckpointError saying what is wrong with the directory."""
    root = Path(path)
    _recover_interrupted_replace(root.resolve())
    if not root.exists():
        raise CheckpointError(f"No checkpoint at {str(root)!r}: the path does not exist.")
    if not root.is_dir():
        raise CheckpointError(f"{str(root)!r} is a file; an rlarena checkpoint is a directory "
                              f"containing {METADATA_FILE}.")
    meta_path = root / METADATA_FILE
    if not meta_path.exists():
        raise CheckpointError(f"{str(root)!r} is not an rlarena checkpoint (no {METADATA_FILE}). It may be "
                              f"unfinished, or another library's format.")
    meta = read_json(meta_path, "Checkpoint metadata")
    if (not isinstance(meta, dict) or not isinstance(meta.get("format_version"), int)
            or not isinstance(meta.get("files"), dict)):
        raise CheckpointError(f"Checkpoint {str(root)!r} is corrupted: {METADATA_FILE} lacks an integer "
                              f"format_version or the files table.")
    if meta["format_version"] > FORMAT_VERSION:
        raise CheckpointError(f"Checkpoint {str(root)!r} has format version {meta['format_version']}, newer than "
                              f"this rlarena reads ({FORMAT_VERSION}). Upgrade rlarena.")
    arrays = {name.removesuffix(".safetensors"): a for name, a in read_verified(root, meta["files"]).items()}
    return meta, arrays


def read_verified(root: Path, files: Any, what: str = "Checkpoint") -> dict[str, dict[str, np.ndarray]]:
    """file name -> its safetensors arrays, for every file of `files` (name -> sha256) under root,
    each checked against its digest first (a checkpoint, or a Hub package: `what` names it).

    The names come from a file a stranger may have written: only plain names ending in .safetensors
    are read, so `../../x.safetensors` or `/etc/x` never leaves the directory (checked for every
    entry before any file is opened)."""
    if not isinstance(files, dict) or not all(isinstance(d, str) for d in files.values()):
        raise CheckpointError(f"{what} {str(root)!r} is corrupted: its files table must map file names to "
                              f"sha256 digests.")
    for name in files:
        if not is_plain_name(name) or not name.endswith(".safetensors") or name == ".safetensors":
            raise CheckpointError(f"{what} {str(root)!r} is refused: its files table names {name!r}, which is not "
                                  f"a plain file name ending in .safetensors (rlarena reads no file outside the "
                                  f"directory). It was not written by rlarena, or was tampered with.")
    arrays = {}
    for name, digest in files.items():
        file = root / name
        try:
            real = checked_file(file, f"{what} file")
        except FileNotFoundError:
            raise CheckpointError(f"{what} {str(root)!r} is incomplete: {name} is missing.") from None
        if sha256(real) != digest:
            raise CheckpointError(f"{what} {str(root)!r} is corrupted: {name} does not match its recorded "
                                  f"sha256 (truncated or modified after saving).")
        try:
            # safetensors checks the header against the file (offsets, sizes, dtypes, a 100 MB header
            # cap) before it copies anything, so a crafted header fails here without allocating
            arrays[name] = load_file(str(real))
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types (and numpy's)
            raise CheckpointError(f"{what} {str(root)!r}: {name} cannot be read ({type(exc).__name__}: "
                                  f"{exc}).") from None
    return arrays
