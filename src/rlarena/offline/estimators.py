"""Off-policy estimation: the value of a policy from episodes another (behaviour) policy logged.

`action_logp` is the log-density of logged env actions under a policy that has one (ActionLogProbs); the estimators are
pure functions over one data set's columns, with RLlib's definitions
(rllib/offline/estimators/importance_sampling.py, weighted_importance_sampling.py and
off_policy_estimator.py; Thomas & Brunskill 2016, arXiv:1604.00923, and Voloshin et al. 2019,
arXiv:1911.06854). For an episode with steps t = 0..T-1, rewards r_t and the cumulative ratio

    p_t = prod_{t' <= t} pi_e(a_t' | s_t') / pi_b(a_t' | s_t')

    v_behavior = sum_t gamma^t r_t
    IS:   v_target = sum_t gamma^t p_t r_t
    WIS:  v_target = sum_t gamma^t (p_t / w_t) r_t,  w_t = the mean of p_t over the episodes that
                                                    reach step t (all episodes of the data set)

and over the episodes: v_behavior and v_target (means), their population std (`_std`), v_gain =
v_target / max(v_behavior, 1e-8) and v_delta = v_target - v_behavior, as RLlib reports them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlarena.errors import ConfigError, OfflineDataError, closest
from rlarena.policies.policy import ActionLogProbs


def action_logp(policy: Any, x: np.ndarray, actions: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """float32 [B]: log pi(actions | x) of env actions (as recorded) for preprocessed observations x
    [B, D] (after policy.normalize), `mask` [B, n] the legal actions of masked Discrete policies: the
    policy's ActionLogProbs capability."""
    if not isinstance(policy, ActionLogProbs):
        raise ConfigError(
            f"Off-policy estimation needs a stochastic policy (its log-probabilities of the logged "
            f"actions); a {type(policy).__name__} has none (DQN's greedy or epsilon-greedy policy, a "
            f"heuristic). Estimate a PPO, A2C, SAC, BC or MARWIL policy, or set "
            f"off_policy_estimation_methods={{}}."
        )
    return policy.action_log_probs(x, actions, mask)


# -- the estimators: pure functions over columns -------------------------------------------------
def _episodes(episode: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order: the rows sorted by episode then t, starts: each episode's first position in that order,
    step: each sorted row's index within its episode)."""
    order = np.lexsort((t, episode))
    key = episode[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    step = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    return order, starts, step


def _cumulative_ratios(
    behavior_logp: np.ndarray, target_logp: np.ndarray, starts: np.ndarray, order: np.ndarray
) -> np.ndarray:
    """p_t (sorted rows, float64): exp of the running sum of log ratios within each episode. An action
    the target never takes (log-prob -inf) makes p 0 from there on."""
    log_ratio = (np.asarray(target_logp, np.float64) - np.asarray(behavior_logp, np.float64))[order]
    never = np.isneginf(log_ratio)
    lengths = np.diff(np.r_[starts, len(order)])

    def within(values: np.ndarray) -> np.ndarray:  # running sums restarted at each episode
        total = np.cumsum(values)
        return total - np.repeat(np.r_[0.0, total][starts], lengths)

    with np.errstate(over="ignore"):
        p = np.exp(within(np.where(never, 0.0, log_ratio)))
    return np.where(within(never.astype(np.float64)) > 0, 0.0, p)


def _summary(v_behavior: np.ndarray, v_target: np.ndarray) -> dict[str, float]:
    """RLlib's OffPolicyEstimator.estimate: means and std over episodes, gain and delta."""
    out = {
        "v_behavior": float(v_behavior.mean()),
        "v_behavior_std": float(v_behavior.std()),
        "v_target": float(v_target.mean()),
        "v_target_std": float(v_target.std()),
    }
    out["v_gain"] = out["v_target"] / max(out["v_behavior"], 1e-8)
    out["v_delta"] = out["v_target"] - out["v_behavior"]
    return out


def importance_sampling(
    rewards: np.ndarray,
    behavior_logp: np.ndarray,
    target_logp: np.ndarray,
    episode: np.ndarray,
    t: np.ndarray,
    gamma: float,
) -> dict[str, float]:
    """Step-wise importance sampling (RLlib's ImportanceSampling): per episode
    v_target = sum_t gamma^t p_t r_t. `episode` [n] ids (any ints), `t` [n] step order within each."""
    order, starts, step = _episodes(np.asarray(episode), np.asarray(t))
    p = _cumulative_ratios(behavior_logp, target_logp, starts, order)
    discounted = np.asarray(rewards, np.float64)[order] * float(gamma) ** step
    return _summary(np.add.reduceat(discounted, starts), np.add.reduceat(p * discounted, starts))


def weighted_importance_sampling(
    rewards: np.ndarray,
    behavior_logp: np.ndarray,
    target_logp: np.ndarray,
    episode: np.ndarray,
    t: np.ndarray,
    gamma: float,
) -> dict[str, float]:
    """Step-wise weighted importance sampling (RLlib's WeightedImportanceSampling): p_t divided by
    w_t, the mean p_t over the episodes that reach step t. A step where every p_t is 0 adds 0."""
    order, starts, step = _episodes(np.asarray(episode), np.asarray(t))
    p = _cumulative_ratios(behavior_logp, target_logp, starts, order)
    w = np.bincount(step, weights=p) / np.bincount(step)  # [max length]
    w_row = w[step]
    normalized = np.divide(p, w_row, out=np.zeros_like(p), where=w_row > 0)
    discounted = np.asarray(rewards, np.float64)[order] * float(gamma) ** step
    return _summary(np.add.reduceat(discounted, starts), np.add.reduceat(normalized * discounted, starts))


ESTIMATORS = {"ImportanceSampling": importance_sampling, "WeightedImportanceSampling": weighted_importance_sampling}
# RLlib's older class names of the same estimators
ESTIMATOR_ALIASES = {
    "ImportanceSamplingEstimator": "ImportanceSampling",
    "WeightedImportanceSamplingEstimator": "WeightedImportanceSampling",
    "is": "ImportanceSampling",
    "wis": "WeightedImportanceSampling",
}
METHOD_KEYS = ("type", "epsilon_greedy")


def _estimator(name: str, method: Any) -> tuple[Any, float]:
    """(the estimator function, epsilon_greedy) of one off_policy_estimation_methods entry."""
    valid = ", ".join(ESTIMATORS)
    if not isinstance(method, dict) or "type" not in method:
        raise ConfigError(
            f"off_policy_estimation_methods[{name!r}] must be a dict with a 'type' ({valid}), e.g. "
            f"{{'type': 'ImportanceSampling'}}; got {method!r}."
        )
    unknown = [k for k in method if k not in METHOD_KEYS]
    if unknown:
        raise ConfigError(
            f"off_policy_estimation_methods[{name!r}] has no option {unknown[0]!r}."
            f"{closest(str(unknown[0]), METHOD_KEYS)} Valid options: {', '.join(METHOD_KEYS)}."
        )
    kind = method["type"]
    kind = getattr(kind, "__name__", kind)  # RLlib code passes the class itself
    kind = ESTIMATOR_ALIASES.get(kind, kind)
    if kind not in ESTIMATORS:
        raise ConfigError(
            f"off_policy_estimation_methods[{name!r}]: unknown estimator type {method['type']!r}."
            f"{closest(str(kind), ESTIMATORS)} Valid types: {valid} (DirectMethod and DoublyRobust "
            f"are not supported)."
        )
    eps = method.get("epsilon_greedy", 0.0)
    if not (isinstance(eps, int | float) and not isinstance(eps, bool) and 0 <= eps <= 1):
        raise ConfigError(f"off_policy_estimation_methods[{name!r}]['epsilon_greedy'] must be in [0, 1]; got {eps!r}.")
    return ESTIMATORS[kind], float(eps)


def estimate_off_policy(
    policy: Any, data: dict[str, np.ndarray], gamma: float, methods: dict[str, Any]
) -> dict[str, float]:
    """RLlib's off-policy estimates of `policy` on logged episodes: {"off_policy_estimation/<name>/v_target",
    .../v_behavior, .../v_gain, .../v_delta, ..._std} for each methods entry, e.g. {"is": {"type":
    "ImportanceSampling"}, "wis": {"type": "WeightedImportanceSampling", "epsilon_greedy": 0.05}}.

    `data`: columns as OfflineData.read_file returns them (obs before the observation filter, env
    actions, rewards, eps_id, t, agent_id, action_logp of the behaviour policy). epsilon_greedy (RLlib's,
    Discrete only): the target acts uniformly at random with that probability, pi_e = (1 - eps) pi + eps/n.
    """
    estimators = {name: _estimator(name, method) for name, method in methods.items()}
    if not estimators:
        return {}
    if "action_logp" not in data:
        raise OfflineDataError(
            "Off-policy estimation needs the behaviour policy's log-probabilities (column "
            "'action_logp'), and these episodes have none. Record them with a policy that has "
            "log-probabilities (PPO, A2C, SAC, BC, MARWIL via .offline_data(output=DIR)), or set "
            "off_policy_estimation_methods={}."
        )
    n = len(data["rewards"])
    if n == 0:
        raise OfflineDataError("Off-policy estimation got no logged steps: the input files hold no rows.")
    target = action_logp(policy, policy.normalize(np.asarray(data["obs"], np.float32)), data["actions"])
    t = data["t"] if data.get("t") is not None else np.arange(n)
    episode = np.asarray(data["eps_id"], np.int64)
    agent_id = data.get("agent_id")
    if agent_id is not None:  # one episode per (eps_id, agent_id)
        _, agent_code = np.unique(np.asarray(agent_id).astype(str), return_inverse=True)
        _, episode = np.unique(np.stack([episode, agent_code.astype(np.int64)], 1), axis=0, return_inverse=True)
        episode = episode.reshape(-1)
    out: dict[str, float] = {}
    for name, (estimator, eps) in estimators.items():
        logp = target
        if eps > 0:
            if policy.continuous:
                raise ConfigError(
                    f"off_policy_estimation_methods[{name!r}]: epsilon_greedy needs Discrete actions; "
                    f"this policy's are {policy.action_space}."
                )
            logp = np.log((1 - eps) * np.exp(target.astype(np.float64)) + eps / policy.action_space.n)
        values = estimator(data["rewards"], data["action_logp"], logp, episode, t, gamma)
        out.update({f"off_policy_estimation/{name}/{k}": v for k, v in values.items()})
    return out
