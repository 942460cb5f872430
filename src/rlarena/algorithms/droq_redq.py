"""DroQ and REDQ: SAC (algorithms/sac.py) with the papers' settings as the defaults of its options.

Recipes, the papers' settings (DroQConfig and REDQConfig take them as defaults):
    DroQ (Hiraoka et al. 2022, arXiv:2110.02034): n_critics=2, critic_dropout=0.01, critic_layer_norm=True,
        gradient_steps=20, policy_delay=20, actor_q_reduction="mean"
    REDQ (Chen et al. 2021, arXiv:2101.05982): n_critics=10, target_critics_subset=2, gradient_steps=20,
        policy_delay=20, actor_q_reduction="mean"
Their batch, lr, tau, networks and temperature are SAC's; both papers' code learns after 5000 uniformly
random steps, DroQConfig and REDQConfig after SAC's 100 (num_steps_sampled_before_learning_starts=5000
for the papers' warm-up). The options themselves (critic_dropout, target_critics_subset, ...) are SAC's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rlarena.algorithms.config import option
from rlarena.algorithms.sac import SAC, SACConfig


@dataclass
class DroQConfig(SACConfig):
    """SAC with DroQ's settings as defaults (Hiraoka et al. 2022; the recipe in the module docstring)."""

    critic_dropout: float = option(0.01, "training")
    critic_layer_norm: bool = option(True, "training")
    gradient_steps: int | None = option(20, "training")
    policy_delay: int = option(20, "training")
    actor_q_reduction: Literal["min", "mean"] = option("mean", "training")


@dataclass
class REDQConfig(SACConfig):
    """SAC with REDQ's settings as defaults (Chen et al. 2021; the recipe in the module docstring)."""

    n_critics: int = option(10, "training")
    target_critics_subset: int | None = option(2, "training")
    gradient_steps: int | None = option(20, "training")
    policy_delay: int = option(20, "training")
    actor_q_reduction: Literal["min", "mean"] = option("mean", "training")


class DroQ(SAC):
    config_class = DroQConfig
    config: DroQConfig


class REDQ(SAC):
    config_class = REDQConfig
    config: REDQConfig


DroQConfig.algo_class = DroQ
REDQConfig.algo_class = REDQ
