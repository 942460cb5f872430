"""examples/multi_agent_arena_tutorial.py, the RLlib MultiAgentArena tutorial with only its imports
changed, runs end to end: its RLlib 1.x env, Exercise 1's loop, PPOTrainer with a dict config and the
"multiagent" section, results['policy_reward_mean'], and the compute_action evaluation loop."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLD_API_NOTICE = "RLArenaNotice: Env MultiAgentArena uses RLlib's old MultiAgentEnv API"


def test_tutorial_runs_end_to_end() -> None:
    env = {**os.environ, "RLARENA_TUTORIAL_ITERS": "1"}  # 1 iteration per training loop instead of 10
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "multi_agent_arena_tutorial.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr}"
    out = proc.stdout
    # the first cell: one step, agent1 down and agent2 up
    assert "Agent1's x/y position=[1, 0]" in out and "Agent2's x/y position=[8, 9]" in out
    assert "Env timesteps=1" in out
    # a frame per step: the first cell's, Exercise 1's episode and the evaluation episode (100 steps each)
    assert sum(line.startswith("R1=") for line in out.splitlines()) == 1 + 100 + 100
    # one iteration with the default policy, then two policies
    assert "'policy_reward_mean/default_policy'" in out
    assert "agent1 is now mapped to policy1" in out and "agent2 is now mapped to policy2" in out
    assert 'Iteration=1: R("return")=' in out
    assert 'Iteration=2: R("return")=' in out and " R1=" in out.split('Iteration=2: R("return")=')[1]
    # the env's old API is adapted with one notice, though the script builds two trainers
    assert proc.stderr.count(OLD_API_NOTICE) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
