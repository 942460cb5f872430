"""Checkpoint directories: one JSON file (config, counters, metadata, format version, file hashes)
and one safetensors file per group of arrays (policy weights, optimizer state, ...).

Loading never unpickles anything, so a checkpoint from a stranger is safe to open. Writing goes to a
temporary sibling directory that is renamed into place; the JSON is written last, as the sentinel
(Dopamine's habit), so a directory without it was never finished.

Reading treats every file as a stranger's: file names from JSON must be plain names (no `../`), a
file must be a regular file that resolves inside its directory (a symlink out of it is refused), and
JSON is size-checked before it is read (read_json). Each problem is a CheckpointError naming the file.

The same two rules serve every file rlarena writes or reads elsewhere (plots, videos, logs, recorded
data, ONNX models, results), so they live here once:
- writing: atomic_write / write_file_atomic create a new file under a temporary name in the target
  directory and rename it into place (a crash leaves the previous file; a link planted at the name is
  replaced, never written through); a path the caller names that is itself a link is refused;
- reading: confined(path, root) checks that a file of the folder `root` resolves inside it (every link
  on the way included), is a regular file (no FIFO or device) and is not larger than a bound.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Self

import numpy as np
from safetensors.numpy import load_file, save_file

from rlarena.errors import CheckpointError, RLArenaError

# 2: each trained policy's learner state in its own groups ("learner.<policy id>": TD3's critic steps, APPO's KL
# coefficient, MARWIL's advantage norm; ARS's optimizer); format 1 kept those in the algorithm's group, and
# still loads (each algorithm reads the old place when the new group is missing)
FORMAT_VERSION = 2
METADATA_FILE = "rlarena_checkpoint.json"
# what playing, evaluating or exporting a checkpoint changes in its config: one env, in this process
# (a checkpoint trained on Ray runners starts no Ray to be played)
INFERENCE_OVERRIDES = {
    "num_envs_per_env_runner": 1,
    "vectorization_mode": "sync",
    "num_env_runners": 0,
    "evaluation_num_env_runners": 0,
    "evaluation_parallel_to_training": False,
}
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
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
        and len(name) <= 255
    )


def _allowed(real: Path, root: Path) -> bool:
    """Whether `real` (a resolved path) lies inside the directory `root` (resolved) or, in the layout of
    huggingface_hub's cache (what load_from_hub downloads), is a blob of the same repository:
    <repo>/snapshots/<revision>/config.json -> ../../blobs/<hash>, where <repo>/blobs is a real
    directory of that repository folder (a `blobs` that is itself a link could point anywhere)."""
    if real.is_relative_to(root):
        return True
    if root.parent.name != "snapshots":
        return False
    blobs = root.parent.parent / "blobs"  # root is resolved: blobs is canonical unless it is a link
    try:
        is_real_dir = stat.S_ISDIR(os.lstat(blobs).st_mode)
    except OSError:
        return False
    return is_real_dir and real.parent == blobs


def confined(
    path: str | os.PathLike,
    root: str | os.PathLike,
    what: str = "File",
    *,
    max_bytes: int | None = None,
    bound: str = "",
    error: type[RLArenaError] = CheckpointError,
) -> Path:
    """`path`, a file of the folder `root`, resolved, after checking that it stays inside `root`: once
    every symbolic link on the way is followed (the file's own, a linked subdirectory's), it lies inside
    `root` or, in the layout of huggingface_hub's cache, is a blob of the same repository (see
    _allowed); that it is a regular file
    (a FIFO would block the read, a device never ends); and, with `max_bytes`, that it is no larger
    (`bound` names the setting that raises it). Each problem is an `error` naming the file; a missing
    file raises FileNotFoundError for the caller to explain."""
    path = Path(path)
    try:
        real = path.resolve(strict=True)
        top = Path(root).resolve()
        info = real.stat()
    except FileNotFoundError:
        raise
    except (OSError, RuntimeError) as exc:  # a symlink loop raises RuntimeError before Python 3.13
        raise error(f"{what} {str(path)!r} cannot be read ({exc}).") from None
    if not _allowed(real, top):
        how = "is a symbolic link to" if path.is_symlink() else "is reached through a symbolic link: it is"
        raise error(
            f"{what} {str(path)!r} {how} {str(real)!r}, outside its directory {str(top)!r}: rlarena "
            f"reads only files inside the directory it is given. If you trust it, replace the link with "
            f"a copy of what it points to."
        )
    if not stat.S_ISREG(info.st_mode):
        raise error(
            f"{what} {str(path)!r} is not a regular file (a directory, device or FIFO): rlarena reads "
            f"only regular files."
        )
    if max_bytes is not None and info.st_size > max_bytes:
        raise error(
            f"{what} {str(path)!r} is {info.st_size:,} bytes, more than the {max_bytes:,} rlarena reads "
            f"from such a file: it was not written by rlarena or was tampered with. For a file you trust, "
            f"raise {bound or 'the bound'}."
        )
    return real


def checked_file(path: Path, what: str) -> Path:
    """`path` resolved, after checking that it is a regular file inside its directory (symlinks
    are followed only within it: a link to /etc/passwd or /dev/zero is refused, as is a FIFO that
    would block the read). A missing file raises FileNotFoundError for the caller to explain."""
    return confined(path, Path(path).parent, what)


# -- writing: a new file under a temporary name, renamed into place --------------------------------------
def save_path(path: str | os.PathLike, what: str, error: type[RLArenaError] = CheckpointError) -> Path:
    """`path`, a file or directory the caller names to (re)place, made absolute with the directories
    above it resolved (links there are the caller's own) and its own name kept. A path that is itself
    a symbolic link is refused: rlarena never writes through one, and replacing it would drop the link
    the caller made."""
    path = Path(path)
    if path.name in ("", ".", ".."):
        path = path.resolve()
    target = path.parent.resolve() / path.name
    if target.is_symlink():
        raise error(
            f"Refusing to write {what} to {str(target)!r}: it is a symbolic link (to "
            f"{os.readlink(target)!r}), and rlarena never writes through one. Remove the link, or give "
            f"the path it points to."
        )
    return target


class AtomicFile:
    """A new file under a temporary name in the directory of `path` (.STEM.tmp-XXXXXXXX.SUFFIX, created
    exclusively: never a link or a file already there), renamed onto `path` by commit(); `file` is it,
    open for binary writing, and `tmp` its name (for writers that open a file by name). As a context
    manager it commits when the block ends normally and removes the temporary file when it raises, so
    `path` holds the previous file or the complete new one, never half of one.

    `replace_link`: a symbolic link at `path` is replaced (a name rlarena picks inside a folder, where
    someone may have planted one: rename(2) replaces the link itself); otherwise (a path the caller
    names) it is refused (save_path). `error`: the error class of the refusals."""

    def __init__(
        self,
        path: str | os.PathLike,
        what: str = "a file",
        *,
        replace_link: bool = False,
        error: type[RLArenaError] = CheckpointError,
    ):
        self.what = what
        if replace_link:
            given = Path(path)
            self.path = given.parent.resolve() / given.name
        else:
            self.path = save_path(path, what, error)
        if self.path.is_dir() and not self.path.is_symlink():
            raise error(f"Cannot write {what} to {str(self.path)!r}: it is a directory. Give a file path.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.parent / f".{self.path.stem}.tmp-{uuid.uuid4().hex[:8]}{self.path.suffix}"
        # O_CREAT | O_EXCL: fails on anything already there, a link too; closed by commit() or discard()
        self.file: IO[bytes] = open(self.tmp, "xb")  # noqa: SIM115
        self._finished = False

    def commit(self) -> Path:
        """Flush the file to disk and rename it onto `path`."""
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise
        self._finished = True
        return self.path

    def discard(self) -> None:
        """Remove the temporary file; `path` is left as it was."""
        if not self.file.closed:
            self.file.close()
        if not self._finished:
            self.tmp.unlink(missing_ok=True)
        self._finished = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def atomic_write(
    path: str | os.PathLike,
    what: str = "a file",
    *,
    replace_link: bool = False,
    error: type[RLArenaError] = CheckpointError,
) -> AtomicFile:
    """`with atomic_write(path, "the plot") as out: fig.savefig(out.file, format="png")`: see AtomicFile."""
    return AtomicFile(path, what, replace_link=replace_link, error=error)


def write_file_atomic(
    path: str | os.PathLike,
    data: bytes | str | Callable[[IO[bytes]], object],
    what: str = "a file",
    *,
    replace_link: bool = False,
    error: type[RLArenaError] = CheckpointError,
) -> Path:
    """Write `data` (bytes, text as UTF-8, or a function that writes into the binary file it is given)
    to `path` through atomic_write; return the path written."""
    with atomic_write(path, what, replace_link=replace_link, error=error) as out:
        if callable(data):
            data(out.file)
        else:
            out.file.write(data.encode("utf-8") if isinstance(data, str) else data)
    return out.path


def make_dir(path: str | os.PathLike, what: str, error: type[RLArenaError] = CheckpointError) -> Path:
    """`path`, a directory rlarena names inside a folder (a trial's checkpoints/, one policy's directory
    of recorded data), created when missing; refused when it is a symbolic link (what is written there
    would land wherever the link points) or not a directory."""
    path = Path(path)
    if not path.is_symlink() and not path.exists():
        path.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or not path.is_dir():
        kind = f"a symbolic link (to {os.readlink(path)!r})" if path.is_symlink() else "not a directory"
        raise error(
            f"Cannot write {what} into {str(path)!r}: it is {kind}, and rlarena writes only into real "
            f"directories there. Remove it, or replace the link with what it points to."
        )
    return path


def copy_dir(src: str | os.PathLike, dst: str | os.PathLike, what: str = "Checkpoint") -> Path:
    """Copy the regular files of the folder `src` and its subfolders into `dst` (created; files already
    there of the same names are replaced). Each is read with confined(file, src) (a link out of `src`
    is refused) and written with atomic_write (a link in `dst` is replaced, never followed)."""
    src, dst = Path(src), Path(dst)
    top = make_dir(save_path(dst, f"a copy of {str(src)!r}"), f"a copy of {str(src)!r}")
    for folder, dirs, files in os.walk(src):  # links to directories are not descended into
        rel = Path(folder).relative_to(src)
        for name in dirs:
            if (Path(folder) / name).is_symlink():
                raise CheckpointError(
                    f"{what} {str(src)!r} holds {str(Path(folder) / name)!r}, a symbolic link to a "
                    f"directory: rlarena copies only files inside the folder. Replace the link "
                    f"with what it points to."
                )
            make_dir(top / rel / name, f"a copy of {str(src)!r}")
        for name in files:
            real = confined(Path(folder) / name, src, f"{what} file")
            with open(real, "rb") as f, atomic_write(top / rel / name, replace_link=True) as out:
                shutil.copyfileobj(f, out.file, _CHUNK)
    return top


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
        raise CheckpointError(
            f"{what} {str(path)!r} is larger than the {limit / 2**20:g} MiB of JSON rlarena reads "
            f"(its own files are far smaller): it was not written by rlarena or was tampered "
            f"with. For a file you trust, raise rlarena.checkpoint.io.MAX_JSON_BYTES."
        )
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
    raise CheckpointError(
        f"{what} {str(path)!r} is not valid JSON ({problem}): it is corrupted, truncated or not an rlarena file."
    )


def _recover_interrupted_replace(target: Path) -> None:
    """A process killed between the two renames of a replace leaves the previous checkpoint at
    `.NAME.old-XXXX` and nothing at NAME: put it back (it was complete: it had been in place)."""
    if target.exists() or target.is_symlink():
        return
    for old in sorted(target.parent.glob(f".{target.name}.old-*")):
        if not old.is_symlink() and (old / METADATA_FILE).exists():  # a link there is no checkpoint we moved
            os.rename(old, target)
            return


def write_checkpoint(
    path: str | os.PathLike, metadata: dict[str, Any], arrays: dict[str, dict[str, np.ndarray]]
) -> str:
    """Write `arrays` (group name -> {key: array}) and `metadata` as a checkpoint at `path`.

    An existing checkpoint at `path` is replaced only once the new one is complete; a directory
    that holds anything else is never overwritten, and a `path` that is a symbolic link is refused
    (replacing it would replace the checkpoint it points to and delete the files beside it).
    """
    for group in arrays:  # a group is named after a policy id, which a config sets freely
        if not is_plain_name(f"{group}.safetensors"):
            raise CheckpointError(
                f"Cannot write a checkpoint: {group!r} cannot name a file in it. Name policies "
                f"without '/', '\\' or NUL characters, in at most 200 characters."
            )
    target = save_path(path, "a checkpoint")
    _recover_interrupted_replace(target)
    if target.exists() and not target.is_dir():
        raise CheckpointError(
            f"Refusing to write a checkpoint to {str(target)!r}: it is a file. A checkpoint is "
            f"a directory; choose a new or empty directory path."
        )
    if target.exists() and any(target.iterdir()) and not (target / METADATA_FILE).exists():
        raise CheckpointError(
            f"Refusing to write a checkpoint into {str(target)!r}: it is a non-empty "
            f"directory that is not an rlarena checkpoint. Choose a new or empty directory."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()  # new and ours: the files written into it need no temporary names of their own
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
    renames leaves it as .<name>.old-*, which read_checkpoint recovers.) A `target` that is a symbolic
    link is refused: what it points to is not replaced."""
    if target.is_symlink():
        raise CheckpointError(
            f"Refusing to replace {str(target)!r}: it is a symbolic link (to "
            f"{os.readlink(target)!r}), and rlarena never writes through one. Remove the link, "
            f"or give the path it points to."
        )
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
        raise CheckpointError(
            f"{str(root)!r} is a file; an rlarena checkpoint is a directory containing {METADATA_FILE}."
        )
    meta_path = root / METADATA_FILE
    if not meta_path.exists():
        raise CheckpointError(
            f"{str(root)!r} is not an rlarena checkpoint (no {METADATA_FILE}). It may be "
            f"unfinished, or another library's format."
        )
    meta = read_json(meta_path, "Checkpoint metadata")
    if (
        not isinstance(meta, dict)
        or not isinstance(meta.get("format_version"), int)
        or not isinstance(meta.get("files"), dict)
    ):
        raise CheckpointError(
            f"Checkpoint {str(root)!r} is corrupted: {METADATA_FILE} lacks an integer "
            f"format_version or the files table."
        )
    if meta["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"Checkpoint {str(root)!r} has format version {meta['format_version']}, newer than "
            f"this rlarena reads ({FORMAT_VERSION}). Upgrade rlarena."
        )
    arrays = {name.removesuffix(".safetensors"): a for name, a in read_verified(root, meta["files"]).items()}
    return meta, arrays


def read_verified(root: Path, files: Any, what: str = "Checkpoint") -> dict[str, dict[str, np.ndarray]]:
    """file name -> its safetensors arrays, for every file of `files` (name -> sha256) under root,
    each checked against its digest first (a checkpoint, or a Hub package: `what` names it).

    The names come from a file a stranger may have written: only plain names ending in .safetensors
    are read, so `../../x.safetensors` or `/etc/x` never leaves the directory (checked for every
    entry before any file is opened)."""
    if not isinstance(files, dict) or not all(isinstance(d, str) for d in files.values()):
        raise CheckpointError(
            f"{what} {str(root)!r} is corrupted: its files table must map file names to sha256 digests."
        )
    for name in files:
        if not is_plain_name(name) or not name.endswith(".safetensors") or name == ".safetensors":
            raise CheckpointError(
                f"{what} {str(root)!r} is refused: its files table names {name!r}, which is not "
                f"a plain file name ending in .safetensors (rlarena reads no file outside the "
                f"directory). It was not written by rlarena, or was tampered with."
            )
    arrays = {}
    for name, digest in files.items():
        file = root / name
        try:
            real = checked_file(file, f"{what} file")
        except FileNotFoundError:
            raise CheckpointError(f"{what} {str(root)!r} is incomplete: {name} is missing.") from None
        if sha256(real) != digest:
            raise CheckpointError(
                f"{what} {str(root)!r} is corrupted: {name} does not match its recorded "
                f"sha256 (truncated or modified after saving)."
            )
        try:
            # safetensors checks the header against the file (offsets, sizes, dtypes, a 100 MB header
            # cap) before it copies anything, so a crafted header fails here without allocating
            arrays[name] = load_file(str(real))
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types (and numpy's)
            raise CheckpointError(
                f"{what} {str(root)!r}: {name} cannot be read ({type(exc).__name__}: {exc})."
            ) from None
    return arrays
