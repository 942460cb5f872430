"""Checkpoint directories: one JSON file (config, counters, metadata, format version, file hashes)
and one safetensors file per group of arrays (policy weights, optimizer state, ...).

Loading never unpickles anything, so a checkpoint from a stranger is safe to open. Writing goes to a
temporary sibling directory that is renamed into place; the JSON is written last, as the sentinel
(Dopamine's habit), so a directory without it was never finished.
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


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"Checkpoint {str(root)!r} is corrupted: {METADATA_FILE} is not valid JSON "
                              f"({exc}).") from exc
    if (not isinstance(meta, dict) or not isinstance(meta.get("format_version"), int)
            or not isinstance(meta.get("files"), dict)):
        raise CheckpointError(f"Checkpoint {str(root)!r} is corrupted: {METADATA_FILE} lacks an integer "
                              f"format_version or the files table.")
    if meta["format_version"] > FORMAT_VERSION:
        raise CheckpointError(f"Checkpoint {str(root)!r} has format version {meta['format_version']}, newer than "
                              f"this rlarena reads ({FORMAT_VERSION}). Upgrade rlarena.")
    arrays = {name.removesuffix(".safetensors"): a for name, a in read_verified(root, meta["files"]).items()}
    return meta, arrays


def read_verified(root: Path, files: dict[str, str], what: str = "Checkpoint") -> dict[str, dict[str, np.ndarray]]:
    """file name -> its safetensors arrays, for every file of `files` (name -> sha256) under root,
    each checked against its digest first (a checkpoint, or a Hub package: `what` names it)."""
    arrays = {}
    for name, digest in files.items():
        file = root / name
        if not file.exists():
            raise CheckpointError(f"{what} {str(root)!r} is incomplete: {name} is missing.")
        if sha256(file) != digest:
            raise CheckpointError(f"{what} {str(root)!r} is corrupted: {name} does not match its recorded "
                                  f"sha256 (truncated or modified after saving).")
        try:
            arrays[name] = load_file(str(file))
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise CheckpointError(f"{what} {str(root)!r}: {name} cannot be read ({exc}).") from exc
    return arrays
