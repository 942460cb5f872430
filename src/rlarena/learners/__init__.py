"""Learners: one per trained policy, owning its optimizers (with their lr schedules), target networks,
replay buffer or other state, counters, and the gradient step (rlarena.learners.learner)."""

from rlarena.learners.learner import Learner, Target
from rlarena.schedules import piecewise

__all__ = ["Learner", "Target", "piecewise"]
