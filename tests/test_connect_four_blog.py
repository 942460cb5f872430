"""The Connect Four blog's self-play script (examples/connect_four_blog.py, a port of
../shared/seeds/000_*.txt) runs end to end: PettingZoo's connect_four_v3, heuristics written the
RLlib way, the SelfPlayCallback growing and trimming the league through add_policy/remove_policy,
the Tune-style run with checkpoints, from_checkpoint and the ONNX export."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_connect_four_blog_script_grows_its_league_and_exports(tmp_path: Path) -> None:
    # threshold -1: every iteration's win rate passes it, so the league grows each iteration; with
    # room for 5 opponents the oldest heuristic is evicted at iteration 2 and removed at iteration 3
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "connect_four_blog.py"),
            "--stop-iters",
            "3",
            "--win-rate-threshold",
            "-1",
            "--opponent-count",
            "5",
            "--storage-path",
            str(tmp_path / "runs"),
        ],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{proc.stderr}"
    win_rates = [float(x) for x in re.findall(r"^Iter=\d win-rate=([0-9.]+)$", out, re.MULTILINE)]
    assert len(win_rates) == 3 and all(0.0 <= w <= 1.0 for w in win_rates), out
    added = re.findall(r"^Iter=\d Adding new opponent to the mix \((\w+)\)", out, re.MULTILINE)
    assert len(added) == 3, out
    assert re.search(r"^Remove  always_same from opponent policies$", out, re.MULTILINE), out
    exported = re.search(r"^exported (\S+) \| policies: (.+)$", out, re.MULTILINE)
    assert exported, out
    assert Path(exported.group(1)).stat().st_size > 0
    policies = exported.group(2).split(", ")
    # the checkpoint holds the league as it ended: 5 at the start, 3 added, always_same removed
    assert len(policies) == 7 and {"learned", *added} <= set(policies), (policies, added)
    assert "Traceback" not in proc.stderr
