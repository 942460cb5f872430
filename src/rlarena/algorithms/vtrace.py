"""V-trace (Espeholt et al. 2018, "IMPALA", section 4.1): off-policy value targets and policy-gradient
advantages for fragments sampled by an older policy (the behaviour policy) than the one learning.

For one env column, with rho_t = pi(a_t|x_t) / mu(a_t|x_t) (the target over the behaviour probability):

    delta_t = min(rho_bar, rho_t) * (r_t + gamma_t * V(x_{t+1}) - V(x_t))
    v_t - V(x_t) = delta_t + gamma_t * c_t * (v_{t+1} - V(x_{t+1})),   c_t = lambda * min(c_bar, rho_t)
    advantage_t = min(rho_pg_bar, rho_t) * (r_t + gamma_t * v_{t+1} - V(x_t))

gamma_t is the discount times (1 - terminated_t): the recursion stops at an episode's end. With
rho = 1 everywhere (on-policy) and c_bar, lambda >= 1, v_t is the n-step return bootstrapped from the
fragment's last value, and the advantage its TD form. A pure function of numpy arrays, time-major
[T, ...]; the learner calls it without gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class VTrace:
    vs: np.ndarray  # [T, ...] value targets v_t
    pg_advantages: np.ndarray  # [T, ...] the policy gradient's advantages


def vtrace(
    behaviour_logp: np.ndarray,
    target_logp: np.ndarray,
    rewards: np.ndarray,
    values: np.ndarray,
    bootstrap_value: np.ndarray,
    discounts: np.ndarray,
    clip_rho_threshold: float | None = 1.0,
    clip_pg_rho_threshold: float | None = 1.0,
    clip_c_threshold: float | None = 1.0,
    lambda_: float = 1.0,
    valid: np.ndarray | None = None,
) -> VTrace:
    """V-trace targets for a time-major fragment.

    behaviour_logp, target_logp: [T, ...] log-probs of the taken actions under the policy that sampled
    them and under the one learning; rewards, values: [T, ...]; bootstrap_value: [...] V(x_T);
    discounts: [T, ...] gamma * (1 - terminated_t). A threshold of None does not clip (RLlib's
    vtrace_clip_rho_threshold, vtrace_clip_pg_rho_threshold; c is clipped at 1 as in the paper).
    valid: [T, ...] bool, False on the steps that only reset an env (the next-step autoreset layout
    of rlarena.rollout.storage.Rollout): there v_t = V(x_t), so the step before, an episode's
    truncation, bootstraps from the value of its final observation, and nothing flows across.
    """
    rhos = np.exp(np.asarray(target_logp, np.float64) - np.asarray(behaviour_logp, np.float64))
    clipped_rhos = rhos if clip_rho_threshold is None else np.minimum(clip_rho_threshold, rhos)
    cs = lambda_ * (rhos if clip_c_threshold is None else np.minimum(clip_c_threshold, rhos))
    values = np.asarray(values, np.float64)
    discounts = np.asarray(discounts, np.float64)
    bootstrap = np.asarray(bootstrap_value, np.float64)
    next_values = np.concatenate([values[1:], bootstrap[None]], axis=0)
    deltas = clipped_rhos * (np.asarray(rewards, np.float64) + discounts * next_values - values)
    decay = discounts * cs
    if valid is not None:
        deltas = np.where(valid, deltas, 0.0)
        decay = np.where(valid, decay, 0.0)
    corrections = np.zeros_like(values)  # v_t - V(x_t), from the end backwards
    acc = np.zeros_like(bootstrap)
    for t in range(len(values) - 1, -1, -1):
        acc = deltas[t] + decay[t] * acc
        corrections[t] = acc
    vs = values + corrections
    next_vs = np.concatenate([vs[1:], bootstrap[None]], axis=0)
    pg_rhos = rhos if clip_pg_rho_threshold is None else np.minimum(clip_pg_rho_threshold, rhos)
    pg_advantages = pg_rhos * (np.asarray(rewards, np.float64) + discounts * next_vs - values)
    return VTrace(vs.astype(np.float32), pg_advantages.astype(np.float32))
