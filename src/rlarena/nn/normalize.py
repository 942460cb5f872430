"""Running mean/std of observations (RLlib's MeanStdFilter, SB3's VecNormalize for observations)."""

from __future__ import annotations

import numpy as np


class RunningMeanStd:
    """Batch-updated mean and variance (Chan et al. parallel algorithm), used to normalize inputs.

    Statistics are updated once per rollout, not per step, so every observation in one rollout is
    normalized with the same statistics and the stored batch matches what the policy saw.
    """

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, epsilon: float = 1e-8):
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = 1e-4  # SB3's initial count: the first batch dominates the prior
        self.clip, self.epsilon = clip, epsilon

    def update(self, batch: np.ndarray) -> None:
        batch = batch.reshape(-1, *self.mean.shape)
        self.update_moments(batch.mean(0), batch.var(0), batch.shape[0])

    def update_moments(self, b_mean: np.ndarray, b_var: np.ndarray, b_count: float) -> None:
        """Merge the statistics of a batch seen elsewhere (another process): its mean, variance and size."""
        if b_count <= 0:
            return
        delta, total = b_mean - self.mean, self.count + b_count
        self.mean = self.mean + delta * b_count / total
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.var, self.count = m2 / total, total

    def __call__(self, x: np.ndarray) -> np.ndarray:
        scale = 1.0 / np.sqrt(self.var + self.epsilon)
        return np.clip((x - self.mean) * scale, -self.clip, self.clip).astype(np.float32)

    def get_state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "var": self.var, "count": np.array([self.count])}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.mean = np.asarray(state["mean"], np.float64).copy()
        self.var = np.asarray(state["var"], np.float64).copy()
        self.count = float(np.asarray(state["count"]).reshape(-1)[0])
