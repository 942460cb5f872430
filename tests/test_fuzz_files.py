"""Property-based: a real checkpoint's and a real Hub package's JSON, mutated by Hypothesis (types, huge
and non-finite numbers, nested structures, strings with separators, keys added), loads through
Algorithm.from_checkpoint, `rlarena evaluate` and load_from_hub as an agent or as one of rlarena's
errors: never a traceback, a hang or an allocation past the memory limit (tests/fuzz_files.py runs the
examples in a process of its own, under RLIMIT_AS and a time limit per load)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_config

FUZZER = Path(__file__).with_name("fuzz_files.py")
EXAMPLES = int(os.environ.get("RLARENA_FUZZ_EXAMPLES", "300"))  # more: RLARENA_FUZZ_EXAMPLES=2000


@pytest.mark.timeout(900)
def test_mutated_files_load_or_fail_with_one_clear_error(tmp_path):
    from rlarena.hub import package_to_hub

    algo = tiny_config(num_envs=2).build()
    algo.train()
    checkpoint = algo.save(tmp_path / "checkpoint")
    algo.stop()
    package_to_hub(checkpoint, tmp_path / "package", episodes=1, video=False)
    out = subprocess.run(
        [sys.executable, str(FUZZER), str(tmp_path), str(EXAMPLES), "0"],
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert out.returncode == 0, f"{out.stdout[-3000:]}\n{out.stderr[-6000:]}"
    assert '"from_checkpoint: loaded"' in out.stdout and '"from_checkpoint: error"' in out.stdout, out.stdout
