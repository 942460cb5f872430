"""Schedules over env steps: RLlib's [[step, value], ...] lists, linearly interpolated (learning rates,
DQN's epsilon). Numpy only: policies and learners both read them."""

from __future__ import annotations

import numpy as np


def piecewise(schedule: list, step: float) -> float:
    """A [[step, value], ...] schedule, linearly interpolated (held constant past its ends)."""
    steps, values = zip(*schedule)
    return float(np.interp(step, steps, values))
