"""The examples/ scripts run end to end (with a tiny training budget) and exit cleanly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["quickstart_cartpole.py", "quickstart_frozenlake.py"]


@pytest.mark.parametrize("script", EXAMPLES)
def test_example_runs(script: str, tmp_path: Path) -> None:
    checkpoint_dir = tmp_path / "checkpoint"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--max-iters", "3", "--quiet",
         "--checkpoint-dir", str(checkpoint_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    # every step of the tutorial ran: check_env, training, a checkpoint, the restored policy's episode
    for expected in ("check_env: OK", "evaluate(): mean return", "saved checkpoint", "restored policy"):
        assert expected in proc.stdout, f"{script}: {expected!r} missing from its output:\n{proc.stdout}"
    assert (checkpoint_dir / "rlarena_checkpoint.json").exists()


@pytest.mark.parametrize("script, args", [("multi_agent_arena.py", ["--max-iters", "1"]),
                                          ("connect_four_selfplay.py", ["--iters", "1"])])
def test_multi_agent_examples_run(script: str, args: list[str]) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "iter   1" in out.stdout
