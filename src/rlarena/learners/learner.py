"""A Learner per trained policy: everything optimizing that one policy owns (RLlib's Learner, SB3's
policy-owned optimizers).

An algorithm builds one for each policy it trains (`Algorithm.build_learner`) and registers there:
- its optimizers, each over the flat parameters of a network, with its learning rate: the config's
  `lr_schedule` is applied to every one of them at each of their steps (`step`, the one way an
  optimizer steps), so no algorithm can forget it;
- its target networks (`add_target`, followed by `update_targets`);
- any other state a run needs to continue (a replay buffer, counters): `register_state`.
The one gradient step (finite check, zero_grad, backward, clip, step) is `step`. `get_state()` /
`set_state()` are composed from what was registered, so a checkpoint is each learner's state, and
removing a policy is removing its learner (its optimizers, targets, buffer and counters go with it).

Checkpoint groups keep the names they had before learners (rlarena checkpoint format 1):
"optimizer.<policy id>.<name>", "target.<policy id>", and a registered state `<kind>` as
"<kind>.<policy id>" (e.g. "replay.<policy id>", "learner.<policy id>").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from rlarena.errors import TrainingError
from rlarena.nn.flat import FlatOptimizer, FlatParameters
from rlarena.schedules import piecewise

StateGetter = Callable[[], dict[str, np.ndarray] | None]  # None: nothing to save now
StateSetter = Callable[[dict[str, np.ndarray]], None]


@dataclass
class Target:
    """A target network: a frozen copy of an online network, its flat parameters, and the online
    network's flat parameters it follows (Polyak averaging)."""

    module: nn.Module
    flat: FlatParameters
    online: FlatParameters


class Learner:
    """What optimizing the policy `policy_id` owns; see the module docstring.

    `config`: the policy's config (its PolicySpec overrides applied): `lr`, `lr_schedule`, `grad_clip`.
    `algorithm`: its name, for messages. `clock`: the env steps sampled so far (the schedules' x axis)."""

    def __init__(
        self, policy_id: str, policy: Any, config: Any, algorithm: str, clock: Callable[[], float] = lambda: 0.0
    ):
        self.policy_id, self.policy, self.config, self.algorithm = policy_id, policy, config, algorithm
        self.clock = clock
        self.flats: dict[str, FlatParameters] = {}
        self.optimizers: dict[str, FlatOptimizer] = {}
        self.base_lrs: dict[str, float] = {}  # each optimizer's learning rate before the schedule
        self.targets: dict[str, Target] = {}
        self._states: dict[str, tuple[StateGetter, StateSetter]] = {}

    # -- optimizers ---------------------------------------------------------------------------------
    def add_optimizer(
        self,
        name: str,
        module: nn.Module,
        make: Callable[[FlatParameters, float], FlatOptimizer],
        lr: float | None = None,
    ) -> FlatParameters:
        """Put `module`'s parameters in one flat buffer and register `make(flat, lr)` on it as optimizer
        `name` (lr: the config's `lr` when None). Returns the flat parameters."""
        flat = self.flats[name] = FlatParameters(module)
        self.base_lrs[name] = self.config.lr if lr is None else float(lr)
        self.optimizers[name] = make(flat, self.base_lrs[name])
        return flat

    def lr(self, name: str, env_step: float) -> float:
        """Optimizer `name`'s learning rate at `env_step`. `lr_schedule` gives the learning rate over env
        steps (RLlib's [[step, lr], ...], linearly interpolated); an optimizer with a learning rate of
        its own (SAC's actor_lr, ES's stepsize, ...) is scaled by the same ratio, schedule / lr."""
        schedule, base = self.config.lr_schedule, self.base_lrs[name]
        if not schedule:
            return base
        return piecewise(schedule, env_step) * (base / self.config.lr)

    def current_lr(self, name: str = "main") -> float:
        """Optimizer `name`'s learning rate now (at the clock's env step): what its next step uses."""
        return self.lr(name, self.clock())

    def check_finite(
        self,
        loss: torch.Tensor,
        what: str = "loss",
        hint: str = "",
        advice: str = "set grad_clip, or scale the rewards / normalize observations "
        "(observation_filter='MeanStdFilter')",
    ) -> None:
        """A TrainingError, before any step, when `loss` is NaN or inf: `hint` says what is known of the
        cause, `advice` what else to try besides a lower learning rate."""
        value = float(loss.detach().reshape(-1)[0]) if loss.numel() == 1 else math.nan
        if loss.numel() == 1 and math.isfinite(value):
            return
        if loss.numel() > 1 and bool(torch.isfinite(loss).all()):
            return
        who = "" if self.policy_id == "default_policy" else f" (policy {self.policy_id!r})"
        lrs = ", ".join(f"{n} {o.lr:g}" for n, o in self.optimizers.items())
        raise TrainingError(
            f"{self.algorithm} {what} became {loss.detach().tolist()}{who}. The update was not applied, "
            f"so the weights are still finite. {hint or ''}Lower the learning rate (now {lrs}), "
            f"{advice}."
        )

    def step(
        self, loss: torch.Tensor | None, *names: str, clip: bool | tuple[str, ...] = True
    ) -> dict[str, torch.Tensor]:
        """One gradient step of optimizers `names` (default: all) on `loss`: zero their gradients,
        backpropagate, clip each at grad_clip (global norm), step each. `loss` None: the gradients are
        already in the buffers (computed by the caller), only clip and step. `clip`: True clips every
        optimizer stepped, False none, a tuple those named (one backward pass for losses of separate
        networks, e.g. an actor's and a temperature's, of which only the network is clipped). Each
        optimizer steps with its learning rate of now (the schedule applied here, so no algorithm can
        forget it). Returns each clipped optimizer's gradient norm before clipping. Check the loss first
        (check_finite)."""
        names = names or tuple(self.optimizers)
        if loss is not None:
            for name in names:
                self.flats[name].zero_grad()
            loss.backward()
        norms = {}
        grad_clip = self.config.grad_clip
        clipped = names if clip is True else () if clip is False else clip
        if grad_clip is not None:
            for name in clipped:
                norms[name] = self.flats[name].clip_grad_norm_(grad_clip)
        env_step = self.clock()
        for name in names:
            optimizer = self.optimizers[name]
            optimizer.lr = self.lr(name, env_step)
            optimizer.step()
        return norms

    # -- targets ------------------------------------------------------------------------------------
    def add_target(self, name: str, online: nn.Module, online_flat: FlatParameters) -> nn.Module:
        """A frozen copy of `online` (whose parameters `online_flat` holds), followed by update_targets."""
        import copy

        module = copy.deepcopy(online)
        flat = FlatParameters(module)
        module.requires_grad_(False)  # a target is never differentiated
        self.targets[name] = Target(module, flat, online_flat)
        return module

    def update_targets(self, tau: float) -> None:
        """target <- tau * online + (1 - tau) * target for every target (tau 1 copies)."""
        for target in self.targets.values():
            target.flat.param.lerp_(target.online.param, tau)

    # -- state --------------------------------------------------------------------------------------
    def register_state(self, kind: str, get: StateGetter, set: StateSetter) -> None:
        """Arrays a run needs to continue (a replay buffer, counters), saved as group "<kind>.<policy id>"."""
        self._states[kind] = (get, set)

    def get_state(self) -> dict[str, dict[str, np.ndarray]]:
        """Checkpoint group -> arrays: the optimizers, the targets, the registered states."""
        pid = self.policy_id
        out = {f"optimizer.{pid}.{name}": opt.get_state() for name, opt in self.optimizers.items()}
        if self.targets:
            out[f"target.{pid}"] = {name: t.flat.param.numpy().copy() for name, t in self.targets.items()}
        for kind, (get, _) in self._states.items():
            state = get()
            if state is not None:
                out[f"{kind}.{pid}"] = state
        return out

    def set_state(self, arrays: dict[str, dict[str, np.ndarray]], missing_ok: bool | tuple[str, ...] = ()) -> None:
        """Restore from checkpoint groups (get_state's names). A checkpoint written before optimizers had
        names holds the main optimizer as "optimizer.<policy id>". `missing_ok`: registered state kinds a
        checkpoint may lack (a replay buffer not stored), or True: anything it lacks keeps its fresh
        state (a network-only checkpoint)."""
        pid = self.policy_id

        def lacks(group: str, kind: str) -> bool:
            if group in arrays:
                return False
            if missing_ok is True or kind in (missing_ok or ()):
                return True
            raise KeyError(group)

        for name, opt in self.optimizers.items():
            group = f"optimizer.{pid}.{name}"
            if group not in arrays and name == "main" and f"optimizer.{pid}" in arrays:
                group = f"optimizer.{pid}"
            if not lacks(group, "optimizer"):
                opt.set_state(arrays[group])
        if self.targets and not lacks(f"target.{pid}", "target"):
            saved = arrays[f"target.{pid}"]
            for name, target in self.targets.items():
                target.flat.param.copy_(torch.from_numpy(saved[name]))
        for kind, (_, set_) in self._states.items():
            if not lacks(f"{kind}.{pid}", kind):
                set_(arrays[f"{kind}.{pid}"])
