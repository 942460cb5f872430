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
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rlarena.algorithms.config import NotProvided, NotProvidedType, option, provided
from rlarena.algorithms.impala import IMPALAConfig, VTraceAlgorithm
from rlarena.learners import Learner
from rlarena.nn.distributions import masked
from rlarena.policies.torch_policy import TorchPolicy

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on

STAT_NAMES = ("policy_loss", "vf_loss", "entropy", "kl", "clip_fraction")


@dataclass
class APPOConfig(IMPALAConfig):
    """APPO's options (RLlib's names); IMPALA's plus the surrogate's."""

    clip_param: float = option(0.4, "training")
    use_kl_loss: bool = option(False, "training")
    kl_coeff: float = option(1.0, "training")
    kl_target: float = option(0.01, "training")
    target_network_update_freq: int = option(1, "training")  # learner updates between target copies

    def training(
        self,
        *,
        clip_param: float | NotProvidedType = NotProvided,
        use_kl_loss: bool | NotProvidedType = NotProvided,
        kl_coeff: float | NotProvidedType = NotProvided,
        kl_target: float | NotProvidedType = NotProvided,
        target_network_update_freq: int | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to IMPALAConfig.training()."""
        return super().training(**provided(locals()))

    def validate(self) -> None:
        super().validate()
        self._check("clip_param", self.clip_param > 0, "must be > 0")
        self._check("kl_coeff", self.kl_coeff >= 0, "must be >= 0")
        self._check("kl_target", self.kl_target > 0, "must be > 0")
        self._check("target_network_update_freq", self.target_network_update_freq >= 1, "must be >= 1")


def appo_loss(
    model, dist, cfg: APPOConfig, kl_coeff: float, obs, actions, behaviour_logp, target_logp, vs, adv, mask=None
) -> tuple[torch.Tensor, torch.Tensor]:
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


class APPOLearner(Learner):
    """What APPO's learner keeps beside Adam: the target network V-trace corrects towards and the
    adaptive KL coefficient (set by APPO.build_learner)."""

    target: torch.nn.Module
    kl_coeff: float


class APPO(VTraceAlgorithm):
    config_class = APPOConfig
    config: APPOConfig
    stat_names = STAT_NAMES
    learner_class = APPOLearner

    def build_learner(self, learner: Learner) -> None:
        """Adam (VTraceAlgorithm's), the target network V-trace corrects towards, and the adaptive KL
        coefficient: the learner's state "target" (the target's state_dict) and "learner" (kl_coeff)."""
        assert isinstance(learner, APPOLearner)
        super().build_learner(learner)
        learner.target, learner.kl_coeff = copy.deepcopy(learner.policy.model), learner.config.kl_coeff
        target = learner.target
        learner.register_state(
            "target",
            lambda: {k: v.numpy().copy() for k, v in target.state_dict().items()},
            lambda arrays: target.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in arrays.items()}),
        )
        learner.register_state(
            "learner",
            lambda: {"kl_coeff": np.array([learner.kl_coeff], np.float64)},
            lambda arrays: setattr(learner, "kl_coeff", float(arrays["kl_coeff"][0])),
        )

    def setup(self) -> None:
        super().setup()
        self.register_state(
            "appo",
            lambda: {"num_updates": np.array([self.num_updates], np.int64)},
            lambda arrays: setattr(self, "num_updates", int(arrays["num_updates"][0])),
        )

    def _state(self, policy_id: str) -> APPOLearner:
        learner = self.learners[policy_id]
        assert isinstance(learner, APPOLearner)
        return learner

    def target_model(self, policy_id: str) -> Any:
        return self._state(policy_id).target

    def loss(self, policy_id, model, dist, cfg, minibatch, mask):
        return appo_loss(model, dist, cfg, self._state(policy_id).kl_coeff, *minibatch, mask=mask)

    def update_policy(self, policy_id: str, batch) -> dict[str, float]:
        out = super().update_policy(policy_id, batch)
        cfg = self.policy_configs[policy_id]
        assert isinstance(cfg, APPOConfig)  # a copy of this algorithm's config, its overrides applied
        state = self._state(policy_id)
        if out and cfg.use_kl_loss:  # RLlib's adaptive coefficient
            if out["kl"] > 2.0 * cfg.kl_target:
                state.kl_coeff *= 1.5
            elif out["kl"] < 0.5 * cfg.kl_target:
                state.kl_coeff *= 0.5
            out["kl_coeff"] = state.kl_coeff
        # num_updates counts finished training steps: this one is number num_updates + 1
        if (self.num_updates + 1) % cfg.target_network_update_freq == 0:
            policy = self.policies[policy_id]
            assert isinstance(policy, TorchPolicy)  # the actor-critic policy_class it trains (Algorithm's default)
            state.target.load_state_dict(policy.model.state_dict())
        return out

    # -- checkpoints: the learners hold the targets and KL coefficients; the update count is APPO's own ---
    def _restore(self, meta: dict[str, Any], arrays: dict[str, dict[str, np.ndarray]]) -> None:
        # checkpoint format 1 kept the KL coefficients in "appo", ordered by policy id
        old = arrays.get("appo", {}).get("kl_coeffs")
        if old is not None:
            arrays = dict(arrays)
            for pid, value in zip(sorted(self.learners), np.asarray(old).tolist()):
                arrays.setdefault(f"learner.{pid}", {"kl_coeff": np.array([value], np.float64)})
        super()._restore(meta, arrays)


APPOConfig.algo_class = APPO
