"""Static checks: ruff over the library and its tests, and mypy over the typed core (the settings are
pyproject.toml's [tool.ruff] and [tool.mypy]). Each runs in a subprocess from the repository root; a
failure prints the checker's report."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALGORITHMS = ROOT / "src" / "rlarena" / "algorithms"
# what mypy checks, relative to the repository root: every file named here must stay free of errors
CORE = (
    "src/rlarena/learners",
    "src/rlarena/checkpoint",
    "src/rlarena/algorithms",
    "src/rlarena/policies",
    "src/rlarena/rollout",
    "src/rlarena/nn/catalog.py",
    "src/rlarena/nn/memory.py",
    "src/rlarena/nn/distributions.py",
    "src/rlarena/envs/memory_envs.py",
    "src/rlarena/envs/atari.py",
    "src/rlarena/envs/spaces.py",
)


def run(*args: str) -> subprocess.CompletedProcess:
    """`python -m <checker> ...`; the dev extra installs ruff and mypy, so a missing one fails here."""
    assert importlib.util.find_spec(args[0]) is not None, f"{args[0]} is not installed: pip install -e '.[dev]'"
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=280, check=False
    )


def test_ruff_passes_over_src_and_tests():
    out = run("ruff", "check", "src", "tests")
    assert out.returncode == 0, out.stdout + out.stderr


def test_src_and_tests_are_ruff_formatted():
    """`ruff format src tests` writes what this expects."""
    out = run("ruff", "format", "--check", "src", "tests")
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_finds_no_error_in_the_core():
    """About 30 s with a cold cache (.mypy_cache), seconds after."""
    out = run("mypy", *CORE)
    assert out.returncode == 0, out.stdout + out.stderr
