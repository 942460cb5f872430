"""The offline Parquet format (rlarena.offline.io): round trips of interleaved episodes, whole episodes
per file, atomic writes, errors that name the file and column, returns-to-go against hand-computed
numbers, and minibatches that stream a data set larger than the memory a process may use."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest

from rlarena.errors import OfflineDataError
from rlarena.offline import OfflineData, OfflineWriter

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
DISCRETE = gym.spaces.Discrete(3)
BOX = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)


def make_episodes(rng, lengths, action_space, agents=(None,), logp=True, cut=()) -> dict[tuple, dict]:
    """(eps_id, agent_id) -> that episode's columns; episode i ends terminated (odd i) or truncated,
    except those in `cut`, which are still open."""
    out = {}
    for i, length in enumerate(lengths):
        for agent in agents:
            ep = {
                "obs": rng.standard_normal((length, 3)).astype(np.float32),
                "new_obs": rng.standard_normal((length, 3)).astype(np.float32),
                "actions": np.array([action_space.sample() for _ in range(length)]),
                "rewards": rng.standard_normal(length).astype(np.float32),
                "terminateds": np.zeros(length, bool),
                "truncateds": np.zeros(length, bool),
            }
            if i not in cut:
                ep["terminateds" if i % 2 else "truncateds"][-1] = True
            if logp:
                ep["action_logp"] = -rng.random(length).astype(np.float32)
            out[(100 + i, agent)] = ep
    return out


def step_batches(episodes: dict[tuple, dict]) -> list[dict]:
    """The rows as a runner hands them over: at step k, row k of every episode that is that long."""
    batches = []
    for k in range(max(len(ep["rewards"]) for ep in episodes.values())):
        keys = [key for key, ep in episodes.items() if len(ep["rewards"]) > k]
        batch = {c: np.stack([episodes[key][c][k] for key in keys]) for c in episodes[keys[0]]}
        batch["eps_id"] = np.array([key[0] for key in keys])
        if keys[0][1] is not None:
            batch["agent_id"] = np.array([key[1] for key in keys], object)
        batches.append(batch)
    return batches


def read_episodes(data: OfflineData) -> tuple[dict[tuple, dict], dict[tuple, int]]:
    """(episode -> its columns in t order, episode -> index of the file that holds it); an episode
    found in two files fails."""
    episodes, where = {}, {}
    for i, path in enumerate(data.files):
        rows = data.read_file(path)
        agents = rows["agent_id"] if rows["agent_id"] is not None else [None] * len(rows["t"])
        for key in dict.fromkeys(zip(rows["eps_id"].tolist(), agents)):
            assert key not in where, f"episode {key} split across files"
            idx = [j for j, k in enumerate(zip(rows["eps_id"].tolist(), agents)) if k == key]
            idx = np.array(idx)[np.argsort(rows["t"][idx])]
            assert (rows["t"][idx] == np.arange(len(idx))).all()
            episodes[key] = {c: v[idx] for c, v in rows.items() if c not in ("agent_id", "eps_id", "t")}
            where[key] = i
    return episodes, where


@pytest.mark.parametrize(
    "action_space, agents, logp",
    [(DISCRETE, (None,), True), (BOX, (None,), False), (DISCRETE, ("p0", "p1"), False), (BOX, ("a", "b"), True)],
)
def test_round_trip_of_interleaved_episodes(tmp_path, action_space, agents, logp):
    rng = np.random.default_rng(0)
    written = make_episodes(rng, [5, 3, 7, 1], action_space, agents, logp)
    with OfflineWriter(tmp_path, OBS, action_space) as writer:
        for batch in step_batches(written):
            writer.add(batch)
    assert len(writer.files) == 1 and re.fullmatch(
        r"output-\d{8}-\d{6}-[0-9a-f]{8}-00000\.parquet", writer.files[0].name
    )
    data = OfflineData(tmp_path)
    assert data.files == writer.files and data.num_rows == 16 * len(agents)
    assert data.observation_space == OBS and data.action_space == action_space  # from the schema metadata
    assert data.obs_dim == 3 and data.has_logp == logp
    rows = data.read_file(data.files[0])
    dtypes = {
        "eps_id": np.int64,
        "t": np.int64,
        "obs": np.float32,
        "new_obs": np.float32,
        "rewards": np.float32,
        "terminateds": np.bool_,
        "truncateds": np.bool_,
        "actions": np.int64 if action_space is DISCRETE else np.float32,
    }
    assert {k: rows[k].dtype for k in dtypes} == dtypes
    assert rows["obs"].shape == (data.num_rows, 3)
    assert rows["actions"].shape == ((data.num_rows,) if action_space is DISCRETE else (data.num_rows, 2))
    assert ("action_logp" in rows) == logp
    assert (rows["agent_id"] is None) == (agents == (None,))
    read, _ = read_episodes(data)
    assert read.keys() == written.keys()
    for key, ep in written.items():
        for column, values in ep.items():
            np.testing.assert_array_equal(
                read[key][column], values.astype(read[key][column].dtype), err_msg=f"{key} {column}"
            )
    schema = pq.read_schema(data.files[0])
    assert schema.field("obs").type == pa.list_(pa.float32(), 3) and schema.field("agent_id").type == pa.string()


def test_small_files_hold_whole_episodes_and_open_ones_are_written_cut(tmp_path):
    rng = np.random.default_rng(1)
    written = make_episodes(rng, [6, 2, 9, 4, 5, 3, 8, 1], DISCRETE, cut=(2, 6))
    writer = OfflineWriter(tmp_path, OBS, DISCRETE, max_file_size=300)
    for batch in step_batches(written):
        writer.add(batch)
    before = len(writer.files)
    writer.close()
    writer.close()  # idempotent
    assert len(writer.files) >= 3 and [p.name[-13:-8] for p in writer.files] == [
        f"{i:05d}" for i in range(len(writer.files))
    ]
    read, where = read_episodes(OfflineData(tmp_path))
    assert read.keys() == written.keys()
    for key, ep in written.items():
        np.testing.assert_array_equal(read[key]["rewards"], ep["rewards"])
    cut = [(102, None), (106, None)]
    assert all(not read[k]["terminateds"].any() and not read[k]["truncateds"].any() for k in cut)
    assert min(where[k] for k in cut) >= before  # written by close()
    row_bytes = 8 + 12 + 8 + 4 + 12 + 1 + 1 + 8 + 4  # eps_id obs actions rewards new_obs flags t logp
    for i in range(len(writer.files) - 1):  # a file exceeds max_file_size by at most its last episode
        lengths = [len(ep["rewards"]) for k, ep in read.items() if where[k] == i]
        assert (sum(lengths) - lengths[-1]) * row_bytes < 300 <= sum(lengths) * row_bytes


def test_t_is_counted_when_absent_and_continues_after_a_flush(tmp_path):
    writer = OfflineWriter(tmp_path, OBS, DISCRETE)
    row = {
        "eps_id": [7],
        "obs": np.zeros((1, 3)),
        "new_obs": np.zeros((1, 3)),
        "actions": [1],
        "rewards": [1.0],
        "terminateds": [False],
        "truncateds": [False],
    }
    writer.add(row)
    writer.add(row)
    writer.flush()
    writer.add({**row, "terminateds": [True]})
    writer.close()
    data = OfflineData(tmp_path)
    assert [data.read_file(p)["t"].tolist() for p in data.files] == [[0, 1], [2]]


def test_writes_are_atomic_and_leftover_temp_files_are_ignored(tmp_path):
    written = make_episodes(np.random.default_rng(2), [3, 4], DISCRETE)
    with OfflineWriter(tmp_path, OBS, DISCRETE) as writer:
        for batch in step_batches(written):
            writer.add(batch)
    assert [p.name for p in tmp_path.iterdir()] == [writer.files[0].name]  # no temp file remains
    (tmp_path / f".{writer.files[0].name[:-13]}00001.parquet.tmp").write_bytes(b"PAR1 half a file")
    data = OfflineData(tmp_path)
    assert data.files == writer.files and data.num_rows == 7
    assert OfflineData(str(tmp_path / "*.parquet")).files == writer.files  # a glob pattern
    assert OfflineData([writer.files[0], str(tmp_path)]).files == writer.files  # a list; each file once


def good_file(tmp_path):
    """A valid file's path (single-agent, Discrete actions, action_logp) and its table."""
    written = make_episodes(np.random.default_rng(3), [4, 3], DISCRETE)
    with OfflineWriter(tmp_path / "good", OBS, DISCRETE) as writer:
        for batch in step_batches(written):
            writer.add(batch)
    return writer.files[0], pq.read_table(writer.files[0])


def with_column(table, name, values):
    return table.set_column(table.schema.get_field_index(name), name, values)


def nan_at(column, row):
    values = column.to_numpy().copy()
    values[row] = np.nan
    return pa.array(values)


def nan_obs(table):
    obs = table.column("obs").combine_chunks().flatten().to_numpy().copy()
    obs[4] = np.inf  # row 1
    return with_column(table, "obs", pa.FixedSizeListArray.from_arrays(pa.array(obs), 3))


BAD = {
    "missing column": ("rewards", lambda t: t.drop_columns(["rewards"]), "no column 'rewards'"),
    "obs too narrow": (
        "obs",
        lambda t: with_column(
            t, "obs", pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(2 * t.num_rows, np.float32)), 2)
        ),
        "row 0: 2 numbers, expected 3",
    ),
    "NaN reward": ("rewards", lambda t: with_column(t, "rewards", nan_at(t.column("rewards"), 2)), "row 2: nan"),
    "inf in obs": ("obs", nan_obs, "row 1: inf"),
    "NaN logp": (
        "action_logp",
        lambda t: with_column(t, "action_logp", nan_at(t.column("action_logp"), 5)),
        "row 5: nan",
    ),
    "action out of range": (
        "actions",
        lambda t: with_column(t, "actions", pa.array(np.r_[0, 1, 3, np.zeros(t.num_rows - 3, np.int64)])),
        "row 2: action 3 is outside Discrete",
    ),
    "strings": (
        "rewards",
        lambda t: with_column(t, "rewards", pa.array(["1"] * t.num_rows)),
        "holds string, expected numbers",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_data_names_file_and_column(tmp_path, case):
    column, damage, expected = BAD[case]
    _, table = good_file(tmp_path)
    path = tmp_path / "bad.parquet"
    pq.write_table(damage(table), path)
    with pytest.raises(OfflineDataError) as info:
        data = OfflineData(path)
        data.read_file(path)
    message = str(info.value)
    assert "bad.parquet" in message and repr(column) in message and expected in message, message
    assert "\n" not in message


def test_a_box_observation_may_be_stored_in_its_shape(tmp_path):
    path, table = good_file(tmp_path)
    rows = [[row] for row in table.column("obs").to_pylist()]  # [n][3] -> [n][1][3]
    nested = pa.array(rows, pa.list_(pa.list_(pa.float32())))
    pq.write_table(with_column(table, "obs", nested), tmp_path / "nested.parquet")
    data = OfflineData(tmp_path / "nested.parquet", gym.spaces.Box(-np.inf, np.inf, (1, 3)), DISCRETE)
    rows = data.read_file(data.files[0])
    np.testing.assert_array_equal(rows["obs"], OfflineData(path).read_file(path)["obs"])


def test_unreadable_files_and_missing_spaces(tmp_path):
    (tmp_path / "notes.parquet").write_text("not parquet")
    with pytest.raises(OfflineDataError, match="notes.parquet: not a readable Parquet file"):
        OfflineData(tmp_path)
    path, table = good_file(tmp_path / "x")
    (tmp_path / "cut.parquet").write_bytes(path.read_bytes()[:-100])  # truncated: no footer
    with pytest.raises(OfflineDataError, match="cut.parquet: not a readable Parquet file"):
        OfflineData(tmp_path / "cut.parquet")
    pq.write_table(table.replace_schema_metadata(None), tmp_path / "plain.parquet")
    with pytest.raises(OfflineDataError, match="plain.parquet does not record its spaces.*observation_space="):
        OfflineData(tmp_path / "plain.parquet")
    assert OfflineData(tmp_path / "plain.parquet", OBS, DISCRETE).num_rows == 7  # the arguments win
    with pytest.raises(OfflineDataError, match="nowhere"):
        OfflineData(tmp_path / "nowhere")


def test_episodes_returns_by_hand():
    # episode (1, a): rewards 1, 2, 3; episode (2, a): 4, 2; episode (1, b): 8; rows interleaved, not in t order
    data = {
        "eps_id": np.array([1, 2, 1, 1, 2, 1]),
        "agent_id": np.array(["a", "a", "a", "b", "a", "a"], object),
        "t": np.array([0, 1, 2, 0, 0, 1]),
        "rewards": np.array([1, 2, 3, 8, 4, 2], np.float32),
    }
    returns = OfflineData.episodes_returns(data, 0.5)
    # (1, a): G2 = 3, G1 = 2 + 0.5 * 3 = 3.5, G0 = 1 + 0.5 * 3.5 = 2.75; (2, a): G1 = 2, G0 = 4 + 0.5 * 2 = 5
    np.testing.assert_allclose(returns, [2.75, 2, 3, 8, 5, 3.5])
    assert returns.dtype == np.float32
    single = {"eps_id": np.array([5, 5, 5]), "agent_id": None, "rewards": np.array([1, 1, 1], np.float32)}
    np.testing.assert_allclose(OfflineData.episodes_returns(single, 1.0), [3, 2, 1])  # no t: file order


def test_episodes_bootstrap_by_hand():
    """Episode 1 (rows 0, 2, 3 by t) was truncated: gamma^(steps left + 1) and its last new_obs; episode 2
    terminated: nothing to bootstrap."""
    data = {
        "eps_id": np.array([1, 2, 1, 1, 2]),
        "agent_id": None,
        "t": np.array([0, 0, 1, 2, 1]),
        "rewards": np.zeros(5, np.float32),
        "terminateds": np.array([False, False, False, False, True]),
        "new_obs": np.arange(5, dtype=np.float32).reshape(5, 1) * 10,
    }
    discount, final = OfflineData.episodes_bootstrap(data, 0.5)
    np.testing.assert_allclose(discount, [0.125, 0, 0.25, 0.5, 0])
    np.testing.assert_array_equal(final[[0, 2, 3], 0], [30, 30, 30])  # row 3 (t = 2) ends episode 1
    np.testing.assert_array_equal(final[[1, 4], 0], [40, 40])


def test_batches_see_every_row_once_per_epoch(tmp_path):
    rng = np.random.default_rng(4)
    written = make_episodes(rng, [5, 7, 3, 9, 6, 2], DISCRETE)  # 32 rows
    writer = OfflineWriter(tmp_path, OBS, DISCRETE, max_file_size=400)
    for batch in step_batches(written):
        writer.add(batch)
    writer.close()
    data = OfflineData(tmp_path)
    assert len(data.files) >= 3 and data.num_rows == 32
    expected = {
        (k[0], t): data.episodes_returns({"eps_id": np.full(len(ep["rewards"]), k[0]), "rewards": ep["rewards"]}, 0.9)[
            t
        ]
        for k, ep in written.items()
        for t in range(len(ep["rewards"]))
    }
    batches = data.batches(8, np.random.default_rng(0), gamma=0.9, shuffle_files=2)
    for epoch in range(2):
        seen = []
        for _ in range(4):
            batch = next(batches)
            assert batch["obs"].shape == (8, 3) and batch["actions"].shape == (8,) and batch["returns"].shape == (8,)
            for eps, t, ret in zip(batch["eps_id"].tolist(), batch["t"].tolist(), batch["returns"]):
                assert ret == pytest.approx(expected[(eps, t)])
                seen.append((eps, t))
        assert sorted(seen) == sorted(expected), f"epoch {epoch}"
    assert "returns" not in next(data.batches(8, np.random.default_rng(0)))
    with pytest.raises(OfflineDataError, match="fewer than one batch"):
        data.batches(33, rng)


def test_import_does_not_load_pyarrow():
    code = "import sys, rlarena.offline; print('pyarrow' in sys.modules)"
    assert subprocess.check_output([sys.executable, "-c", code], text=True).strip() == "False"


# The streaming test: a data set on disk larger than the address space the reader may grow by.
WRITE = """
import sys, numpy as np, gymnasium as gym
from rlarena.offline import OfflineWriter
D, length, copies = 256, 100, 20  # episodes of 100 steps, 20 at a time, 2 KiB of obs + new_obs a row
rng = np.random.default_rng(0)
writer = OfflineWriter(sys.argv[1], gym.spaces.Box(-np.inf, np.inf, (D,)), gym.spaces.Discrete(4), 14 * 2**20)
t = np.repeat(np.arange(length), copies)
for chunk in range(int(sys.argv[2]) * 2**20 // (length * copies * 2 * 4 * D) + 1):
    n = len(t)
    writer.add({"eps_id": np.tile(np.arange(copies), length) + chunk * copies, "t": t,
                "obs": rng.standard_normal((n, D), np.float32), "new_obs": rng.standard_normal((n, D), np.float32),
                "actions": rng.integers(4, size=n), "rewards": np.ones(n, np.float32),
                "terminateds": t == length - 1, "truncateds": np.zeros(n, bool)})
writer.close()
"""
READ = """
import resource, sys, tempfile
import gymnasium as gym, numpy as np, pyarrow
from rlarena import BCConfig
from rlarena.offline import OfflineData, OfflineWriter

with OfflineWriter(tempfile.mkdtemp(), gym.spaces.Box(0, 1, (1,)), gym.spaces.Discrete(2)) as w:
    w.add({"eps_id": [0], "obs": [[0.0]], "new_obs": [[0.0]], "actions": [0], "rewards": [0.0],
           "terminateds": [True], "truncateds": [False]})
OfflineData(w.files[0]).read_file(w.files[0])  # starts pyarrow's thread pools: their stacks are address space
algo = (BCConfig().offline_data(input_=sys.argv[1]).training(train_batch_size=4096, model={"fcnet_hiddens": [32]})
        .build())
algo.train()  # torch's first backward allocates its own pools
size = int(next(line for line in open("/proc/self/status") if line.startswith("VmSize:")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + int(sys.argv[2]) * 2**20, resource.RLIM_INFINITY))
data = OfflineData(sys.argv[1])
batches = data.batches(4096, np.random.default_rng(0), gamma=0.99)
rows = total = 0
while rows < 1.3 * data.num_rows:
    batch = next(batches)
    rows += len(batch["rewards"])
    total += float(batch["rewards"].sum())
assert total == rows, (total, rows)
while algo.num_rows_trained_lifetime < 1.3 * data.num_rows:  # BC trains on more than fits, too
    algo.train()
print(data.num_rows, rows, algo.num_rows_trained_lifetime)
"""


def test_a_data_set_larger_than_the_memory_allowed_streams_and_trains(tmp_path):
    """RLIMIT_AS caps the reader's address space at what it had after its imports (and pyarrow's
    thread pools started, and a BC's first step) plus 200 MiB, below the 256 MiB of rows on disk: it completes 1.3 epochs
    only because batches() holds two files of at most 16 MiB at a time (14 MiB of numpy
    rows, the writer's estimate, take ~7% more in Parquet)."""
    headroom = 200
    subprocess.run([sys.executable, "-c", textwrap.dedent(WRITE), str(tmp_path), "256"], check=True, timeout=120)
    on_disk = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert on_disk > headroom * 2**20 and all(p.stat().st_size <= 16 * 2**20 for p in tmp_path.iterdir())
    read = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(READ), str(tmp_path), str(headroom)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert read.returncode == 0, read.stderr[-2000:]
    num_rows, rows, trained = map(int, read.stdout.split())
    assert rows >= 1.3 * num_rows > 0 and trained >= 1.3 * num_rows
