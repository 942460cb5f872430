"""Logged experience as Parquet files with RLlib's column names: OfflineWriter writes them, OfflineData
reads them back as minibatches without holding the data set in memory.

One row per (agent) step: eps_id, agent_id (null for single-agent), obs, actions, rewards, new_obs,
terminateds, truncateds, t and, optionally, action_logp. A file holds whole episodes; an episode
still open when the writer flushes is written cut (its last row has terminateds = truncateds =
False: no bootstrap). Each file is written under a hidden temporary name and renamed into place, so a
reader never sees half a file (and a link planted at its name is replaced, never written through).
The spaces travel in the Parquet schema metadata as JSON (rlarena.envs.spaces), never pickled.

A data set may come from someone else: the files of a directory are read only when they are regular
files inside it (no link out, no FIFO), and the data set's rows and decoded bytes, read from the files'
footers, are checked against rlarena.limits.MAX_DATA_ROWS and MAX_DATA_BYTES before any data is read.

pyarrow is an optional extra: it is imported inside the functions that use it, so `import rlarena`
(and this module) stays light.
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from rlarena import limits
from rlarena.checkpoint.io import atomic_write, confined
from rlarena.envs.spaces import space_from_json, space_to_json
from rlarena.errors import ConfigError, OfflineDataError
from rlarena.policies.policy import flat_obs_dim

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on

FORMAT_VERSION = 1
METADATA_KEY = b"rlarena"
REQUIRED = ("eps_id", "obs", "actions", "rewards", "new_obs", "terminateds", "truncateds")
OPTIONAL = ("agent_id", "t", "action_logp")
NEEDS = "Offline data needs eps_id, obs, actions, rewards, new_obs, terminateds, truncateds (RLlib's names)."
# Bytes of one value of a Parquet physical type once decoded into Arrow (byte arrays: their uncompressed size).
_VALUE_BYTES = {"BOOLEAN": 1, "INT32": 4, "INT64": 8, "INT96": 12, "FLOAT": 4, "DOUBLE": 8}


def _pyarrow() -> tuple[Any, Any]:
    """(pyarrow, pyarrow.parquet), or a ConfigError saying how to install them."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("Offline data needs pyarrow: pip install 'rlarena[offline]'") from None
    return pa, pq


def _check_action_space(space: gym.Space) -> None:
    if not isinstance(space, gym.spaces.Discrete | gym.spaces.Box):
        raise ConfigError(f"Offline data stores Discrete or Box actions; the action space is {space}.")


class OfflineWriter:
    """Writes rows of many interleaved episodes to DIR/output-<time>-<token>-<index>.parquet.

    Rows are held per (eps_id, agent_id) until that episode ends, so a file holds whole episodes; a
    file is written once its finished episodes reach max_file_size bytes (numpy's nbytes), so it may
    exceed that by one episode. eps_id is stored as given: the caller makes it unique, across writers
    too (rlarena.offline.record draws ids as (random 31-bit prefix << 32) + counter), which keeps one
    multi-agent episode's id the same in the per-policy directories."""

    def __init__(
        self,
        directory: str | os.PathLike,
        observation_space: gym.Space,
        action_space: gym.Space,
        max_file_size: int = 64 * 2**20,
    ):
        _pyarrow()  # fail now, not at the first file
        _check_action_space(action_space)
        if max_file_size < 1:
            raise ConfigError(f"OfflineWriter: max_file_size must be a positive number of bytes, got {max_file_size}.")
        self.directory = Path(directory)
        try:  # the directory you name may be a link of yours; the files in it are written by rename (_write)
            self.directory.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise OfflineDataError(
                f"Cannot record into {str(self.directory)!r}: it is a file. Give a directory (output)."
            ) from None
        self.observation_space, self.action_space, self.max_file_size = observation_space, action_space, max_file_size
        self.obs_dim = flat_obs_dim(observation_space)
        self.files: list[Path] = []
        self._metadata = json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "observation_space": space_to_json(observation_space),
                "action_space": space_to_json(action_space),
            }
        )
        self._name = f"output-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"
        self._optional: tuple[str, ...] | None = None  # agent_id/action_logp: fixed by the first add()
        self._open: dict[tuple[int, str | None], list[dict[str, np.ndarray]]] = {}  # episode -> its row chunks
        self._next_t: dict[tuple[int, str | None], int] = {}
        self._buffer: list[dict[str, np.ndarray]] = []  # chunks of finished episodes, for the next file
        self._bytes = 0
        self._closed = False

    def add(self, rows: dict[str, Any]) -> None:
        """A batch of rows, columns as in the module docstring (agent_id may be absent: single-agent; t
        absent: counted per episode); rows of several episodes may interleave, each in time order."""
        if self._closed:
            raise OfflineDataError(f"OfflineWriter for {str(self.directory)!r} is closed; create a new one.")
        cols = self._columns(rows)
        eps, agent = cols["eps_id"], cols.get("agent_id")
        if len(eps) == 0:
            return
        done = cols["terminateds"] | cols["truncateds"]
        codes = np.zeros(len(eps), np.int64) if agent is None else np.unique(agent, return_inverse=True)[1].reshape(-1)
        order = np.lexsort((codes, eps))  # stable: each episode's rows keep their time order
        new_key = (np.diff(eps[order]) != 0) | (np.diff(codes[order]) != 0)
        for idx in np.split(order, np.flatnonzero(new_key | done[order][:-1]) + 1):  # a loop over episodes
            key = (int(eps[idx[0]]), None if agent is None else str(agent[idx[0]]))
            chunk = {k: v[idx] for k, v in cols.items()}
            if "t" not in chunk:
                chunk["t"] = self._next_t.get(key, 0) + np.arange(len(idx), dtype=np.int64)
            self._next_t[key] = int(chunk["t"][-1]) + 1
            self._open.setdefault(key, []).append(chunk)
            if done[idx[-1]]:
                self._next_t.pop(key)
                self._to_file(self._open.pop(key))

    def flush(self) -> None:
        """Write everything buffered now, still open episodes included (cut: their rows so far)."""
        for key, chunks in self._open.items():
            self._to_file(chunks)
            self._open[key] = []  # the episode goes on: its next rows continue its t
        if self._buffer:
            self._write()

    def close(self) -> None:
        if not self._closed:
            self.flush()
            self._open.clear()
            self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _columns(self, rows: dict[str, Any]) -> dict[str, np.ndarray]:
        """The batch's columns as the file stores them, checked against the spaces."""

        def bad(problem: str) -> OfflineDataError:
            return OfflineDataError(f"OfflineWriter.add: {problem}")

        missing = [c for c in REQUIRED if c not in rows]
        if missing:
            raise bad(f"no column {missing[0]!r} (got {', '.join(map(str, rows))}). {NEEDS}")
        optional = tuple(c for c in ("agent_id", "action_logp") if c in rows)
        self._optional = optional if self._optional is None else self._optional
        if optional != self._optional:
            raise bad(
                f"this batch has optional columns {list(optional)}, the first had {list(self._optional)}; "
                f"give agent_id and action_logp with every batch or with none."
            )
        n = len(np.asarray(rows["eps_id"]).reshape(-1))
        cols = {}
        for name in (*REQUIRED, *optional, *(("t",) if "t" in rows else ())):
            value = np.asarray(rows[name])
            if value.ndim == 0 or len(value) != n:
                raise bad(f"column {name!r} has {len(value) if value.ndim else 'no'} rows, 'eps_id' has {n}.")
            cols[name] = value
        widths = {"obs": self.obs_dim, "new_obs": self.obs_dim}
        if isinstance(self.action_space, gym.spaces.Box):
            widths["actions"] = int(np.prod(self.action_space.shape))
        for name, width in widths.items():
            cols[name] = cols[name].reshape(n, -1 if n else width).astype(np.float32, copy=False)
            if cols[name].shape[1] != width:
                space = self.action_space if name == "actions" else self.observation_space
                raise bad(
                    f"column {name!r} has {cols[name].shape[1]} numbers per row, expected {width} (the flat "
                    f"size of {space})."
                )
        dtypes = {
            "eps_id": np.int64,
            "t": np.int64,
            "rewards": np.float32,
            "action_logp": np.float32,
            "terminateds": np.bool_,
            "truncateds": np.bool_,
            "actions": np.int64,
            "agent_id": str,
        }
        for name, dtype in dtypes.items():
            if name in cols and name not in widths:
                if cols[name].size != n:
                    raise bad(f"column {name!r} has shape {cols[name].shape}, expected one value per row ({n},).")
                cols[name] = cols[name].reshape(n).astype(dtype, copy=False)
        return cols

    def _to_file(self, chunks: list[dict[str, np.ndarray]]) -> None:
        """One episode's chunks go to the next file, which is written once it is large enough."""
        self._buffer += chunks
        self._bytes += sum(v.nbytes for chunk in chunks for v in chunk.values())
        if self._bytes >= self.max_file_size:
            self._write()

    def _write(self) -> None:
        pa, pq = _pyarrow()
        cols = {k: np.concatenate([c[k] for c in self._buffer]) for k in self._buffer[0]}
        self._buffer, self._bytes = [], 0
        n = len(cols["eps_id"])

        def vectors(x: np.ndarray) -> Any:
            return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])

        arrays = {
            "eps_id": pa.array(cols["eps_id"]),
            "agent_id": pa.array(cols["agent_id"], pa.string()) if "agent_id" in cols else pa.nulls(n, pa.string()),
            "obs": vectors(cols["obs"]),
            "actions": vectors(cols["actions"]) if cols["actions"].ndim == 2 else pa.array(cols["actions"]),
            "rewards": pa.array(cols["rewards"]),
            "new_obs": vectors(cols["new_obs"]),
            "terminateds": pa.array(cols["terminateds"]),
            "truncateds": pa.array(cols["truncateds"]),
            "t": pa.array(cols["t"]),
        }
        if "action_logp" in cols:
            arrays["action_logp"] = pa.array(cols["action_logp"])
        table = pa.table(arrays, metadata={METADATA_KEY: self._metadata.encode()})
        path = self.directory / f"{self._name}-{len(self.files):05d}.parquet"
        with atomic_write(path, "recorded data", replace_link=True, error=OfflineDataError) as out:
            pq.write_table(table, out.file)
        self.files.append(path)


def _find_files(input_: Any) -> dict[Path, Path | None]:
    """The .parquet files `input_` names -> the folder each must stay inside (None: a file named
    itself): a directory (its visible *.parquet, each a regular file inside it: a link out of it is
    refused), a file, a glob pattern (each match inside its own directory) or a list of those; an
    OfflineDataError for an entry that names none."""
    files: dict[Path, Path | None] = {}
    for item in input_ if isinstance(input_, list | tuple) else [input_]:
        path = Path(item)
        found: dict[Path, Path | None]
        if path.is_dir():
            found = {
                p: path
                for p in sorted(path.glob("*.parquet"))
                if not p.name.startswith(".") and not (p.is_dir() and not p.is_symlink())
            }
        elif path.is_file():
            found = {path: None}
        else:
            found = {
                p: p.parent
                for p in sorted(map(Path, glob.glob(str(item))))
                if not p.name.startswith(".") and not (p.is_dir() and not p.is_symlink())
            }
        if not found:
            raise OfflineDataError(
                f"No offline data at {str(item)!r}: expected a directory of .parquet files, a "
                f".parquet file or a glob pattern. Check the path (input_)."
            )
        for file, root in found.items():
            _check_file(file, root)
            if files.get(file) is None:  # a file named twice is read once, inside the stricter folder
                files[file] = root
    return files


def _check_file(path: Path, root: Path | None) -> Path:
    """`path` resolved, after checking that it is a regular file (a FIFO would block the read) and, when it
    was found in the folder `root`, that it stays inside it (confined)."""
    try:
        if root is not None:
            return confined(path, root, "Offline data file", error=OfflineDataError)
        real = path.resolve(strict=True)
        regular = stat.S_ISREG(real.stat().st_mode)
    except FileNotFoundError:
        raise OfflineDataError(f"Offline data file {str(path)!r} is missing (removed while it was read?).") from None
    except (OSError, RuntimeError) as exc:
        raise OfflineDataError(f"Offline data file {str(path)!r} cannot be read ({exc}).") from None
    if not regular:
        raise OfflineDataError(
            f"Offline data file {str(path)!r} is not a regular file (a device or FIFO): rlarena "
            f"reads only regular files."
        )
    return real


def _decoded_bytes(meta: Any) -> int:
    """The memory that reading a file's columns takes, from its footer (`meta`: pyarrow's FileMetaData):
    per column chunk the larger of its uncompressed size and its values times their width (run-length or
    dictionary encoding keeps a column of a billion zeros a few KB on disk, and 8 GB in memory), plus 8
    bytes a row for list offsets and validity."""
    wanted = set(REQUIRED) | set(OPTIONAL)
    total = 0
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        for j in range(group.num_columns):
            chunk = group.column(j)
            if chunk.path_in_schema.split(".")[0] not in wanted:
                continue
            values = max(chunk.num_values, group.num_rows) * _VALUE_BYTES.get(chunk.physical_type, 0)
            total += max(chunk.total_uncompressed_size, values) + 8 * group.num_rows
    return total


def _check_size(source: str, rows: int, nbytes: int) -> None:
    """Refuse data past rlarena.limits.MAX_DATA_ROWS or MAX_DATA_BYTES (read now, at call time)."""
    if rows > limits.limit("MAX_DATA_ROWS"):
        raise limits.too_large(source, "rows", rows, "MAX_DATA_ROWS", OfflineDataError)
    if nbytes > limits.limit("MAX_DATA_BYTES"):
        raise limits.too_large(
            source, "bytes of columns once read (from the Parquet footers)", nbytes, "MAX_DATA_BYTES", OfflineDataError
        )


def _unreadable(path: Path, exc: Exception) -> OfflineDataError:
    return OfflineDataError(
        f"{path}: not a readable Parquet file ({exc}). It is truncated, corrupted or of another "
        f"format; remove it or write it again."
    )


def _bad(path: Path, column: str, row: int, problem: str) -> OfflineDataError:
    return OfflineDataError(
        f"{path}: column {column!r}, row {row}: {problem}. Fix or remove the file (OfflineWriter writes valid rows)."
    )


class OfflineData:
    """Logged episodes in Parquet files, read file by file (see the module docstring for the columns).

    Construction reads only the files' footers: columns, row counts, sizes and the spaces (the
    arguments win over the files' metadata); a data set past rlarena.limits.MAX_DATA_ROWS or
    MAX_DATA_BYTES is refused there, before any of its data is read."""

    def __init__(
        self,
        input_: str | os.PathLike | list,
        observation_space: gym.Space | None = None,
        action_space: gym.Space | None = None,
    ):
        _pyarrow()
        self._roots = _find_files(input_)
        self.files = list(self._roots)
        footers = {path: self._footer(path) for path in self.files}
        self.num_rows = sum(rows for rows, _, _ in footers.values())
        where = str(input_) if isinstance(input_, str | os.PathLike) else f"{len(input_)} paths"
        _check_size(
            f"Offline data {where!r} ({len(self.files)} files)",
            self.num_rows,
            sum(nbytes for _, _, nbytes in footers.values()),
        )
        self.has_logp = all("action_logp" in schema.names for _, schema, _ in footers.values())
        if observation_space is None or action_space is None:
            stored = {path: self._stored_spaces(path, schema) for path, (_, schema, _) in footers.items()}
            if observation_space is None:  # not `or`: an empty Dict space is falsy
                observation_space = self._agreed(stored, "observation_space")
            if action_space is None:
                action_space = self._agreed(stored, "action_space")
        _check_action_space(action_space)
        self.observation_space, self.action_space = observation_space, action_space
        self.obs_dim = flat_obs_dim(observation_space)

    def _footer(self, path: Path) -> tuple[int, Any, int]:
        """(row count, Arrow schema, decoded bytes) from the file's footer; the required columns checked."""
        pa, pq = _pyarrow()
        try:
            meta = pq.read_metadata(_check_file(path, self._roots.get(path)))
            schema = meta.schema.to_arrow_schema()
        except MemoryError:  # pyarrow's is an ArrowException too: not the file's fault
            raise
        except (pa.ArrowException, OSError) as exc:
            raise _unreadable(path, exc) from None
        self._check_columns(path, schema.names)
        return meta.num_rows, schema, _decoded_bytes(meta)

    @staticmethod
    def _check_columns(path: Path, names: list[str]) -> None:
        for column in REQUIRED:
            if column not in names:
                raise OfflineDataError(f"{path}: no column {column!r} (columns: {', '.join(names)}). {NEEDS}")

    @staticmethod
    def _stored_spaces(path: Path, schema: Any) -> dict[str, gym.Space] | None:
        raw = (schema.metadata or {}).get(METADATA_KEY)
        if raw is None:
            return None
        try:
            meta = json.loads(raw)
            newer = meta["format_version"] > FORMAT_VERSION
            spaces = None if newer else {k: space_from_json(meta[k]) for k in ("observation_space", "action_space")}
        except (ValueError, TypeError, KeyError) as exc:
            raise OfflineDataError(
                f"{path}: its rlarena metadata is unreadable ({exc}). Pass observation_space= "
                f"and action_space= to read it."
            ) from None
        if newer:
            raise OfflineDataError(
                f"{path}: format version {meta['format_version']}, newer than this rlarena reads "
                f"({FORMAT_VERSION}). Upgrade rlarena."
            )
        return spaces

    @staticmethod
    def _agreed(stored: dict[Path, dict[str, gym.Space] | None], which: str) -> gym.Space:
        """The space every file records, or an OfflineDataError naming a file without it or two that differ."""
        first: tuple[Path, gym.Space] | None = None
        for path, spaces in stored.items():
            if spaces is None:
                raise OfflineDataError(
                    f"{path} does not record its spaces (it was not written by rlarena): pass "
                    f"observation_space= and action_space= (for training: give "
                    f".environment(env) for evaluation)."
                )
            if first is None:
                first = path, spaces[which]
            elif space_to_json(spaces[which]) != space_to_json(first[1]):
                raise OfflineDataError(
                    f"{path} records {which} {spaces[which]}, but {first[0]} records {first[1]}: "
                    f"one data set has one pair of spaces. Read them separately."
                )
        assert first is not None  # _find_files found at least one file
        return first[1]

    def read_file(self, path: str | os.PathLike) -> dict[str, Any]:
        """The file's rows as numpy arrays, validated (shapes, dtypes, finite values, action range).
        The file is checked again first (it may have changed since construction): a regular file
        inside its folder, its footer within the bounds."""
        pa, pq = _pyarrow()
        path = Path(path)
        real = _check_file(path, self._roots.get(path, path.parent))
        try:
            with pq.ParquetFile(real) as parquet:
                meta = parquet.metadata
                _check_size(f"Offline data file {str(path)!r}", meta.num_rows, _decoded_bytes(meta))
                names = meta.schema.to_arrow_schema().names
                self._check_columns(path, names)
                table = parquet.read(columns=[c for c in (*REQUIRED, *OPTIONAL) if c in names])
        except MemoryError:  # pyarrow's is an ArrowException too: not the file's fault
            raise
        except (pa.ArrowException, OSError) as exc:
            raise _unreadable(path, exc) from None
        n = table.num_rows
        data: dict[str, Any] = {"eps_id": _scalars(table, "eps_id", path, np.int64)}
        agent = table.column("agent_id") if "agent_id" in names else None
        data["agent_id"] = (
            None if agent is None or agent.null_count == n else (agent.to_numpy(zero_copy_only=False).astype(object))
        )
        data["obs"] = _matrix(table, "obs", self.obs_dim, path)
        if isinstance(self.action_space, gym.spaces.Discrete):
            actions = _scalars(table, "actions", path, np.int64)
            low, high = int(self.action_space.start), int(self.action_space.start + self.action_space.n)
            out = np.flatnonzero((actions < low) | (actions >= high))
            if len(out):
                raise _bad(
                    path,
                    "actions",
                    int(out[0]),
                    f"action {actions[out[0]]} is outside {self.action_space} (expected {low} to {high - 1})",
                )
            data["actions"] = actions
        else:
            data["actions"] = _matrix(table, "actions", int(np.prod(self.action_space.shape)), path)
        data["rewards"] = _scalars(table, "rewards", path, np.float32)
        data["new_obs"] = _matrix(table, "new_obs", self.obs_dim, path)
        data["terminateds"] = _scalars(table, "terminateds", path, np.bool_)
        data["truncateds"] = _scalars(table, "truncateds", path, np.bool_)
        if "t" in names:
            data["t"] = _scalars(table, "t", path, np.int64)
        else:  # each row's position in its episode, in file order
            order, first = _episode_order(data)
            data["t"] = np.empty(n, np.int64)
            data["t"][order] = np.arange(n) - np.maximum.accumulate(np.where(first, np.arange(n), 0))
        if "action_logp" in names:
            data["action_logp"] = _scalars(table, "action_logp", path, np.float32)
        return data

    @staticmethod
    def episodes_returns(data: dict[str, Any], gamma: float) -> np.ndarray:
        """float32 [n]: each row's discounted reward-to-go, sum_k gamma^k r_{t+k}, within its (eps_id,
        agent_id) episode (rows grouped by episode, ordered by t); nothing is bootstrapped at a cut."""
        n = len(data["rewards"])
        order, first = _episode_order(data)
        returns = np.asarray(data["rewards"], np.float64)[order]
        # G_i = r_i + a_i G_{i+1}, a_i = gamma but 0 on an episode's last row. A segmented scan (Hillis &
        # Steele 1986): after each round G_i = returns_i + a_i G_{i+span}, span doubling: log2(n) numpy ops.
        a = np.full(n, float(gamma))
        a[np.flatnonzero(first)[1:] - 1] = 0.0
        a[-1:] = 0.0
        span = 1
        while span < n:
            returns[:-span] += a[:-span] * returns[span:]
            a[:-span] *= a[span:]  # a window that reaches an episode's end holds 0; numpy copies overlaps
            span *= 2
        out = np.empty(n, np.float32)
        out[order] = returns
        return out

    @staticmethod
    def episodes_bootstrap(data: dict[str, Any], gamma: float) -> tuple[np.ndarray, np.ndarray]:
        """(float32 [n] gamma^(steps to its episode's end + 1), float32 [n, D] its episode's last new_obs)
        per row: what a learner adds to the reward-to-go, discount x V(last new_obs), for an episode that
        was truncated or cut; the discount is 0 in an episode that terminated (nothing follows)."""
        n = len(data["rewards"])
        order, first = _episode_order(data)
        episode = np.cumsum(first) - 1  # each sorted row's episode
        last = np.append(np.flatnonzero(first)[1:] - 1, n - 1)[episode]  # its episode's last sorted row
        steps_left = last - np.arange(n)
        goes_on = ~np.asarray(data["terminateds"], bool)[order][last]
        discount, final = np.empty(n, np.float32), np.empty_like(np.asarray(data["new_obs"]))
        discount[order] = np.where(goes_on, float(gamma) ** (steps_left + 1.0), 0.0)
        final[order] = np.asarray(data["new_obs"])[order][last]
        return discount, final

    def iter_files(self, rng: np.random.Generator) -> Iterator[tuple[Path, dict[str, Any]]]:
        """(path, read_file(path)) for every file once, in a shuffled order."""
        for i in rng.permutation(len(self.files)):
            yield self.files[i], self.read_file(self.files[i])

    def batches(
        self, batch_size: int, rng: np.random.Generator, gamma: float | None = None, shuffle_files: int = 2
    ) -> Iterator[dict[str, np.ndarray]]:
        """An endless iterator of minibatches (columns as read_file's, plus "returns", "bootstrap_discount"
        and "bootstrap_obs" (episodes_bootstrap) when gamma is given, computed per file). It holds `shuffle_files` files at a time and draws their rows in a random
        order without replacement, then reads the next ones; each epoch takes the files in a new order.
        The rows a window leaves over (fewer than batch_size) go into the next, so an epoch sees every row."""
        if batch_size < 1 or shuffle_files < 1:
            raise ConfigError(
                f"OfflineData.batches: batch_size ({batch_size}) and shuffle_files ({shuffle_files}) "
                f"must be at least 1."
            )
        if self.num_rows < batch_size:
            raise OfflineDataError(
                f"The offline data ({len(self.files)} files) holds {self.num_rows} rows, fewer than "
                f"one batch of {batch_size}: lower the batch size or record more."
            )
        return self._batches(batch_size, rng, gamma, shuffle_files)

    def _batches(
        self, batch_size: int, rng: np.random.Generator, gamma: float | None, shuffle_files: int
    ) -> Iterator[dict[str, np.ndarray]]:
        left: dict[str, np.ndarray] | None = None
        while True:
            order = rng.permutation(len(self.files))
            for start in range(0, len(order), shuffle_files):
                parts = [self._rows(self.files[i], gamma) for i in order[start : start + shuffle_files]]
                window = _concatenate(parts if left is None else [*parts, left])
                del parts
                n = len(window["eps_id"])
                idx = rng.permutation(n)
                full = n - n % batch_size
                for s in range(0, full, batch_size):
                    yield {k: v[idx[s : s + batch_size]] for k, v in window.items()}
                left = {k: v[idx[full:]] for k, v in window.items()}
                del window  # before the next files are read: memory holds one window

    def episode_batches(
        self, batch_size: int, rng: np.random.Generator, gamma: float | None = None, shuffle_files: int = 2
    ) -> Iterator[dict[str, np.ndarray]]:
        """An endless iterator of whole logged episodes, time-major, for a recurrent model: episodes drawn
        in a random order (files as batches() holds them) until they hold batch_size rows or more, padded
        to the longest. Each batch: "obs" [L+1, M, D] (row len_m: the episode's last new_obs, to bootstrap
        from), "actions" [L, M, ...], "rewards" [L, M], "valid" [L, M] bool; with gamma, "returns" [L, M]
        (rewards-to-go) and "bootstrap_discount" [L, M] (gamma^(steps to the end + 1); 0 where the episode
        terminated)."""
        if batch_size < 1 or self.num_rows < 1:
            raise OfflineDataError(f"OfflineData.episode_batches: no rows to batch (batch_size {batch_size}).")
        return self._episode_batches(batch_size, rng, gamma, shuffle_files)

    def _episode_batches(
        self, batch_size: int, rng: np.random.Generator, gamma: float | None, shuffle_files: int
    ) -> Iterator[dict[str, np.ndarray]]:
        chosen: list[dict[str, np.ndarray]] = []
        rows = 0
        while True:
            order = rng.permutation(len(self.files))
            for start in range(0, len(order), shuffle_files):
                window = _concatenate([self._rows(self.files[i], gamma) for i in order[start : start + shuffle_files]])
                sorted_rows, first = _episode_order(window)
                bounds = np.append(np.flatnonzero(first), len(sorted_rows))
                for e in rng.permutation(len(bounds) - 1):
                    idx = sorted_rows[bounds[e] : bounds[e + 1]]
                    chosen.append({k: v[idx] for k, v in window.items() if k != "agent_id"})
                    rows += len(idx)
                    if rows >= batch_size:
                        yield _pad_episodes(chosen)
                        chosen, rows = [], 0

    def _rows(self, path: Path, gamma: float | None) -> dict[str, np.ndarray]:
        """read_file's columns with the same keys for every file: action_logp only when all files have it,
        agent_id only when not None, returns and the bootstrap columns when gamma is given."""
        data = self.read_file(path)
        if gamma is not None:
            data["returns"] = self.episodes_returns(data, gamma)
            data["bootstrap_discount"], data["bootstrap_obs"] = self.episodes_bootstrap(data, gamma)
        if not self.has_logp:
            data.pop("action_logp", None)
        if data["agent_id"] is None:
            del data["agent_id"]
        return data


def _pad_episodes(episodes: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Episodes' rows (in step order) as time-major arrays padded with zeros (see episode_batches)."""
    L, M = max(len(e["rewards"]) for e in episodes), len(episodes)
    first = episodes[0]
    obs = np.zeros((L + 1, M, *first["obs"].shape[1:]), first["obs"].dtype)
    out: dict[str, np.ndarray] = {
        "actions": np.zeros((L, M, *first["actions"].shape[1:]), first["actions"].dtype),
        "rewards": np.zeros((L, M), np.float32),
        "valid": np.zeros((L, M), bool),
    }
    if "returns" in first:
        out["returns"] = np.zeros((L, M), np.float32)
        out["bootstrap_discount"] = np.zeros((L, M), np.float32)
    for m, e in enumerate(episodes):
        n = len(e["rewards"])
        obs[:n, m], obs[n, m] = e["obs"], e["new_obs"][-1]
        out["actions"][:n, m], out["rewards"][:n, m], out["valid"][:n, m] = e["actions"], e["rewards"], True
        if "returns" in e:
            out["returns"][:n, m], out["bootstrap_discount"][:n, m] = e["returns"], e["bootstrap_discount"]
    out["obs"] = obs
    return out


def _concatenate(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Parts' columns end to end; agent_id None-filled for parts without it (single-agent files)."""
    keys = dict.fromkeys(k for p in parts for k in p)
    return {
        k: np.concatenate([p[k] if k in p else np.full(len(p["eps_id"]), None, object) for p in parts]) for k in keys
    }


def _episode_order(data: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(order, first): the row order that groups each (eps_id, agent_id) episode with its rows by t (file
    order without t), and in that order whether a row is its episode's first."""
    eps = np.asarray(data["eps_id"])
    n = len(eps)
    agent = data.get("agent_id")
    codes = np.zeros(n, np.int64) if agent is None else np.unique(agent.astype(str), return_inverse=True)[1].reshape(-1)
    t = data.get("t")
    order = np.lexsort((np.arange(n) if t is None else t, codes, eps))
    first = np.ones(n, bool)
    first[1:] = (np.diff(eps[order]) != 0) | (np.diff(codes[order]) != 0)
    return order, first


def _first_null(array: Any) -> int:
    return int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])


def _scalars(table: Any, name: str, path: Path, dtype: type) -> np.ndarray:
    """A one-value-per-row column as `dtype` (int64, float32 or bool), checked: the Arrow type fits, no
    nulls, floats finite."""
    import pyarrow as pa

    column = table.column(name).combine_chunks()
    kinds = {
        np.int64: (pa.types.is_integer, "integers"),
        np.bool_: (pa.types.is_boolean, "booleans"),
        np.float32: (lambda t: pa.types.is_integer(t) or pa.types.is_floating(t), "numbers"),
    }
    fits, expected = kinds[dtype]
    if not fits(column.type):
        raise OfflineDataError(
            f"{path}: column {name!r} holds {column.type}, expected {expected}. Fix or remove the "
            f"file (OfflineWriter writes valid rows)."
        )
    if column.null_count:
        raise _bad(path, name, _first_null(column), "null (missing) value")
    values = column.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    if dtype is np.float32:
        _check_finite(values, 1, name, path)
    return values


def _matrix(table: Any, name: str, width: int, path: Path) -> np.ndarray:
    """A column of `width` numbers per row as float32 [n, width]: a (fixed-size) list column, or nested
    lists in the space's shape (a Box stored unflattened), flattened; checked like _scalars."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = table.column(name).combine_chunks()
    n = len(column)
    start, end = np.arange(n), np.arange(1, n + 1)  # row i holds items [start_i, end_i) of the current level
    while (
        pa.types.is_list(column.type) or pa.types.is_large_list(column.type) or pa.types.is_fixed_size_list(column.type)
    ):
        if column.null_count:
            raise _bad(path, name, int(np.searchsorted(end, _first_null(column), "right")), "null (missing) value")
        bounds = np.concatenate([[0], np.cumsum(pc.list_value_length(column).to_numpy(zero_copy_only=False))])
        start, end = bounds[start], bounds[end]
        column = column.flatten()
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise OfflineDataError(
            f"{path}: column {name!r} holds {column.type} values, expected lists of {width} "
            f"numbers. Fix or remove the file (OfflineWriter writes valid rows)."
        )
    if column.null_count:
        raise _bad(path, name, int(np.searchsorted(end, _first_null(column), "right")), "null (missing) value")
    wrong = np.flatnonzero(end - start != width)
    if len(wrong):
        row = int(wrong[0])
        raise _bad(
            path,
            name,
            row,
            f"{end[row] - start[row]} numbers, expected {width} (the flat size of the "
            f"space; pass the spaces the data was recorded with)",
        )
    values = column.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(n, width)
    _check_finite(values, width, name, path)
    return values


def _check_finite(values: np.ndarray, width: int, name: str, path: Path) -> None:
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values.reshape(-1)))[0])
        raise _bad(path, name, bad // width, f"{values.reshape(-1)[bad]} (values must be finite numbers)")
