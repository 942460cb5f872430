"""APPO, asynchronous PPO (RLlib's): IMPALA's architecture and V-trace targets with PPO's clipped
surrogate, against a target network that follows the learning one every target_network_update_freq
updates, and an optional KL penalty towards it.

As RLlib's APPO loss: V-trace corrects from the behaviour policy mu (the weights that sampled) to the
target network pi_old; the surrogate's ratio is rho' * pi(a|x) / pi_old(a|x), with
rho' = clip(pi_old(a|x) / mu(a|x), 0, 2) the importance weight from mu to pi_old:

    L = -mean(min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A)) + c_v mean(1/2 (V - v_s)^2)
        - c_e mean(H) [+ kl_coeff * KL(pi_old || pi)]

The KL is estimated on the sampled actions (Schulman's k3), and kl_coeff adapts towards kl_target as
in RLlib (x1.5 above twice the target, x0.5 below half of it).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlarena.algorithms.config import option
from rlarena.algorithms.impala import IMPALAConfig, VTraceAlgorithm
from rlarena.algorithms.on_policy import masked
from rlarena.errors import CheckpointError

STAT_NAMES = ("policy_loss", "vf_loss", "entropy", "kl", "clip_fraction")


@dataclass
class APPOConfig(IMPALAConfig):
    """APPO's options (RLlib's names); IMPALA's plus the surrogate's."""

    clip_param: float = option(0.4, "training")
    use_kl_loss: bool = option(False, "training")
    kl_coeff: float = option(1.0, "training")
    kl_target: float = option(0.01, "training")
    target_network_update_freq: int = option(1, "training")  # learner updates between target copies

    def validate(self) -> None:
        super().validate()
        self._check("clip_param", self.clip_param > 0, "must be > 0")
        self._check("kl_coeff", self.kl_coeff >= 0, "must be >= 0")
        self._check("kl_target", self.kl_target > 0, "must be > 0")
        self._check("target_network_update_freq", self.target_network_update_freq >= 1, "must be >= 1")


def appo_loss(model, dist, cfg: APPOConfig, kl_coeff: float, obs, actions, behaviour_logp, target_logp, vs, adv,
              mask=None) -> tuple[torch.Tensor, torch.Tensor]:
    dist_inputs, values = model(obs)
    logp, entropy = dist.log_prob_entropy(masked(dist_inputs, mask), actions, True)
    if cfg.normalize_advantages and len(adv) > 1:
        std, mean = torch.std_mean(adv)
        adv = (adv - mean) / (std + 1e-8)
    is_ratio = (target_logp - behaviour_logp).exp().clamp(0.0, 2.0)
    log_ratio = logp - target_logp
    ratio = is_ratio * log_ratio.exp()
    policy_loss = -torch.min(ratio * adv, ratio.clamp(1 - cfg.clip_param, 1 + cfg.clip_param) * adv).mean()
    vf_loss = 0.5 * (values - vs).pow(2).mean()
    entropy_mean = entropy.mean()
    # KL(pi_old || pi) on actions drawn from mu, Schulman's k3 with r = pi / pi_old
    kl = ((log_ratio.exp() - 1) - log_ratio).mean()
    loss = policy_loss + cfg.vf_loss_coeff * vf_loss - cfg.entropy_coeff * entropy_mean
    if cfg.use_kl_loss:
        loss = loss + kl_coeff * kl
    with torch.no_grad():
        clip_fraction = ((ratio - 1).abs() > cfg.clip_param).float().mean()
        stats = torch.stack([policy_loss, vf_loss, entropy_mean, kl, clip_fraction])
    return loss, stats


class APPO(VTraceAlgorithm):
    config_class = APPOConfig
    config: APPOConfig
    stat_names = STAT_NAMES

    def setup(self) -> None:
        super().setup()
        self.target_models: dict[str, torch.nn.Module] = {}
        self.kl_coeffs: dict[str, float] = {}

    def setup_policy(self, policy_id: str) -> None:
        super().setup_policy(policy_id)
        self.target_models[policy_id] = copy.deepcopy(self.policies[policy_id].model)  # type: ignore[attr-defined]
        self.kl_coeffs[policy_id] = self.policy_configs[policy_id].kl_coeff  # type: ignore[attr-defined]

    def target_model(self, policy_id: str) -> Any:
        return self.target_models[policy_id]

    def loss(self, policy_id, model, dist, cfg, minibatch, mask):
        return appo_loss(model, dist, cfg, self.kl_coeffs[policy_id], *minibatch, mask=mask)

    def update_policy(self, policy_id: str, batch) -> dict[str, float]:
        out = super().update_policy(policy_id, batch)
        cfg: APPOConfig = self.policy_configs[policy_id]  # type: ignore[assignment]
        if out and cfg.use_kl_loss:  # RLlib's adaptive coefficient
            if out["kl"] > 2.0 * cfg.kl_target:
                self.kl_coeffs[policy_id] *= 1.5
            elif out["kl"] < 0.5 * cfg.kl_target:
                self.kl_coeffs[policy_id] *= 0.5
            out["kl_coeff"] = self.kl_coeffs[policy_id]
        # num_updates counts finished training steps: this one is number num_updates + 1
        if (self.num_updates + 1) % cfg.target_network_update_freq == 0:
            self.target_models[policy_id].load_state_dict(self.policies[policy_id].model.state_dict())  # type: ignore[attr-defined]
        return out

    # -- checkpoints: the target networks and KL coefficients travel with the weights ----------------
    def _state_arrays(self) -> dict[str, dict[str, np.ndarray]]:
        arrays = super()._state_arrays()
        for pid, target in self.target_models.items():
            if pid in self.policies:
                arrays[f"target.{pid}"] = {k: v.numpy().copy() for k, v in target.state_dict().items()}
        arrays["appo"] = {"kl_coeffs": np.array([self.kl_coeffs[pid] for pid in sorted(self.kl_coeffs)], np.float64),
                          "num_updates": np.array([self.num_updates], np.int64)}
        return arrays

    def _restore(self, meta: dict[str, Any], arrays: dict[str, dict[str, np.ndarray]]) -> None:
        super()._restore(meta, arrays)
        try:
            for pid, target in self.target_models.items():
                if pid in self.policies:
                    target.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in arrays[f"target.{pid}"].items()})
            coeffs = arrays["appo"]["kl_coeffs"]
            for pid, value in zip(sorted(self.kl_coeffs), coeffs.tolist()):
                self.kl_coeffs[pid] = value
            self.num_updates = int(arrays["appo"]["num_updates"][0])
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise CheckpointError(f"Checkpoint does not match this APPO ({type(exc).__name__}: {exc}). Was it saved "
                                  f"with a different model or algorithm?") from exc


APPOConfig.algo_class = APPO
