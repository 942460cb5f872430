"""Fuzz the loaders with mutated real files (run by tests/test_fuzz_files.py in its own process).

    python tests/fuzz_files.py WORKDIR EXAMPLES [SEED]

WORKDIR holds a real checkpoint (`checkpoint/`) and a real Hub package (`package/`). Hypothesis
mutates their JSON (types, huge and non-finite numbers, nested structures, strings with separators,
keys added) and loads each mutant through Algorithm.from_checkpoint, `rlarena evaluate` and
load_from_hub, under a memory limit (RLIMIT_AS: what the process held after a first load, plus
MEMORY_HEADROOM) and a time limit per load (SIGALRM). Every outcome must be a loaded agent or one of
rlarena's own errors (the command line: exit status 0 or 2 and no traceback); a hang, a traceback or
an allocation past the limit fails, and the failing mutation is printed. Exit status 0: all passed.
"""

from __future__ import annotations

import contextlib
import io
import json
import resource
import shutil
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as fixed_seed
from hypothesis import strategies as st

MEMORY_HEADROOM = 2 * 2**30  # bytes of address space a load may add to the process's
SECONDS_PER_LOAD = 120  # the largest network a file may ask for (rlarena.limits) takes ~70 s to initialize

HOSTILE_STRINGS = [
    "../../etc/passwd",
    "/dev/zero",
    "a/b",
    "a\\b",
    "\x00",
    "x" * 5000,
    "ray://127.0.0.1:1",
    "127.0.0.1:6379",
    "auto",
    "os:system",
    "rlarena.checkpoint.io:shutil.rmtree",
    "",
    ".",
    "..",
    "Infinity",
    "1e300",
    "CartPole-v1",
    "PPO",
    "default_policy",
    '{"callable": "os:system"}',
]
HOSTILE_NUMBERS = [
    10**3,
    10**6,
    10**9,
    10**13,
    10**19,
    2**63,
    10**30,
    10**300,
    -1,
    -(10**9),
    0,
    float("inf"),
    float("-inf"),
    float("nan"),
    1e300,
    -1e300,
    1e-320,
    0.5,
    2.5,
]


def _nested(depth: int, kind: str) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.sampled_from(HOSTILE_NUMBERS),
    st.text(max_size=12),
    st.sampled_from(HOSTILE_STRINGS),
)
hostile = st.one_of(
    leaf,
    st.recursive(
        leaf,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
        max_leaves=12,
    ),
    st.builds(_nested, st.integers(1, 400), st.sampled_from(["list", "dict"])),
    st.lists(st.sampled_from(HOSTILE_NUMBERS), min_size=1, max_size=3),  # e.g. fcnet_hiddens [1e9, 1e9]
    st.dictionaries(
        st.sampled_from(["capacity", "num_simulations", "fcnet_hiddens", "type", "callable"]), leaf, max_size=3
    ),
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON value (dict keys and list indexes), the value itself included."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:8]):
            out += paths(v, (*prefix, i))
    return out


def mutate(data: Any, path: tuple, new: Any, add_key: str | None) -> Any:
    if not path:
        return new
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if add_key is not None and isinstance(parent[path[-1]], dict):
        parent[path[-1]][add_key] = new
    else:
        parent[path[-1]] = new
    return data


class Hang(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise Hang(f"a load took more than {SECONDS_PER_LOAD} s")


def main() -> int:
    work, examples = Path(sys.argv[1]), int(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    warnings.simplefilter("ignore")
    from rlarena import Algorithm
    from rlarena.checkpoint import METADATA_FILE
    from rlarena.cli.main import main as cli
    from rlarena.errors import RLArenaError
    from rlarena.hub import load_from_hub

    sources = {"checkpoint": (work / "checkpoint", METADATA_FILE), "package": (work / "package", "config.json")}
    originals = {name: json.loads((folder / file).read_text()) for name, (folder, file) in sources.items()}
    all_paths = {name: paths(data) for name, data in originals.items()}
    Algorithm.from_checkpoint(sources["checkpoint"][0]).stop()  # what a load costs, before the limit is set
    load_from_hub(sources["package"][0]).stop()
    with open("/proc/self/statm") as f:
        held = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (held + MEMORY_HEADROOM, resource.RLIM_INFINITY))
    signal.signal(signal.SIGALRM, _alarm)

    def load(kind: str, folder: Path) -> str:
        signal.alarm(SECONDS_PER_LOAD)
        try:
            if kind == "from_checkpoint":
                algo = Algorithm.from_checkpoint(folder)
            elif kind == "load_from_hub":
                algo = load_from_hub(folder)
            else:
                err = io.StringIO()
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    try:
                        status = cli(["evaluate", str(folder), "--episodes", "1"])
                    except SystemExit as exc:
                        status = exc.code
                text = err.getvalue()
                assert status in (0, 2) and "Traceback" not in text, f"rlarena evaluate: status {status}: {text}"
                return "error" if status else "loaded"
            algo.stop()
            return "loaded"
        except RLArenaError as exc:
            assert str(exc).strip(), "an empty error message"
            return "error"
        finally:
            signal.alarm(0)

    outcomes: dict[str, int] = {}

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(sources)), label="file")
        folder, file = sources[name]
        meta = json.loads(json.dumps(originals[name]))
        for _ in range(data.draw(st.integers(1, 3), label="mutations")):
            path = data.draw(st.sampled_from(all_paths[name]), label="path")
            try:
                add = data.draw(
                    st.one_of(
                        st.none(),
                        st.text(max_size=8)
                        | st.sampled_from(
                            ["num_env_runners", "ray_address", "output", "model", "replay_buffer_config", "policies"]
                        ),
                    ),
                    label="add key",
                )
                meta = mutate(meta, path, data.draw(hostile, label="value"), add)
            except (KeyError, IndexError, TypeError):
                continue  # the path went away with an earlier mutation
        mutant = work / f"mutant_{name}"
        shutil.rmtree(mutant, ignore_errors=True)
        shutil.copytree(folder, mutant)
        try:
            text = json.dumps(meta)
        except (ValueError, RecursionError):
            return
        (mutant / file).write_text(text)
        kinds = ["from_checkpoint", "evaluate"] if name == "checkpoint" else ["load_from_hub"]
        for kind in kinds:
            outcome = load(kind, mutant)
            outcomes[f"{kind}: {outcome}"] = outcomes.get(f"{kind}: {outcome}", 0) + 1

    try:
        fixed_seed(seed)(check)()
    finally:
        print(json.dumps(outcomes, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
