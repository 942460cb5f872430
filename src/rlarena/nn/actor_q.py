"""Actors and Q critics for SAC (DroQ, REDQ), TD3/DDPG, TQC and CrossQ.

Box actions live in [-1, 1]^d inside these networks (the policy maps them to the env's bounds). Layers
are applied functionally, as in ActorCritic, and each actor has a numpy twin for the env runner. The
critics are an ensemble: K Q-networks (2 for twin Q) whose weights are stacked [K, in, out], so one
batched matmul per layer computes all of them (half the torch calls of two separate MLPs; the math
is the same). A Box critic outputs one value, or n (TQC's quantiles). With a RenormSpec (CrossQ) a
batch renormalization layer precedes each linear layer, the input's included (SBX's CrossQ networks).
DroQ's critics (Hiraoka et al. 2022) put dropout, then layer normalization, after each hidden
linear layer: Linear -> Dropout -> LayerNorm -> ReLU. Their dropout is on in every training forward pass
(the online critics', the target critics' and the actor loss's, as the authors' code and SBX) and off
inside `without_dropout(...)`, where the policy computes values for acting, evaluation and export.
Initialization is torch's default for nn.Linear, as SB3's SAC and TD3 networks.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlarena.limits import count_parameters, layer_parameters
from rlarena.nn.batch_renorm import BatchRenorm, RenormSpec
from rlarena.nn.models import ACTIVATIONS, NUMPY_ACTIVATIONS

# SAC's log-std bounds (Haarnoja et al.'s code, SB3 and RLlib)
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class MLP(nn.Module):
    """in_dim -> hiddens (activation) -> out_dim (linear); with `renorm`, a BatchRenorm before each
    linear layer."""

    def __init__(
        self, in_dim: int, hiddens: Sequence[int], out_dim: int, activation: str, renorm: RenormSpec | None = None
    ):
        super().__init__()
        self.act, self.activation = ACTIVATIONS[activation], activation
        dims = [in_dim, *hiddens, out_dim]
        count_parameters(layer_parameters(dims), "network", hiddens)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        # None without renorm: a SAC or TD3 model's state keeps the names it always had
        self.norms = None if renorm is None else nn.ModuleList(BatchRenorm(d, renorm) for d in dims[:-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if self.norms is not None:
                x = self.norms[i](x)
            x = F.linear(x, layer.weight, layer.bias)
            if i < last:
                x = self.act(x)
        return x

    def numpy(self) -> Callable[[np.ndarray], np.ndarray]:
        """`forward` in numpy over zero-copy views of the live weights (see ActorCritic.numpy_pi);
        batch renormalization with its running statistics, as in inference."""
        act = NUMPY_ACTIVATIONS[self.activation]
        *hidden, last = [(layer.weight.detach().numpy().T, layer.bias.detach().numpy()) for layer in self.layers]
        if self.norms is None:

            def forward(x: np.ndarray) -> np.ndarray:
                for w, b in hidden:
                    x = act(x @ w + b)
                return x @ last[0] + last[1]

            return forward
        *hidden_norms, last_norm = [norm.numpy() for norm in self.norms if isinstance(norm, BatchRenorm)]

        def renormed(x: np.ndarray) -> np.ndarray:
            for (w, b), norm in zip(hidden, hidden_norms):
                x = act(norm(x) @ w + b)
            return last_norm(x) @ last[0] + last[1]

        return renormed


SQUASH_EPS = 1e-6  # actions on the [-1, 1] bounds would give atanh = inf: clipped inside first (as RLlib's)


def tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    """sum_i log(1 - tanh(u_i)^2), the change of variables of a = tanh(u) (Haarnoja et al. 2018, eq. 21),
    written as 2 (log 2 - u - softplus(-2u)) for stability (as SB3's and RLlib's)."""
    return (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)


def squashed_gaussian_logp(mean: torch.Tensor, log_std: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """log pi(a) [B] of given actions a [B, d] in [-1, 1]^d under tanh(N(mean, exp(log_std)^2)), a clipped
    to +-(1 - SQUASH_EPS). Differentiable in mean and log_std (CQL's behaviour cloning uses it)."""
    u = torch.atanh(action.clamp(-1 + SQUASH_EPS, 1 - SQUASH_EPS))
    z = (u - mean) * torch.exp(-log_std)
    return (-0.5 * z.pow(2) - log_std).sum(-1) - 0.5 * math.log(2 * math.pi) * mean.shape[-1] - tanh_log_det(u)


class GaussianActor(nn.Module):
    """obs -> (mean [B, d], log_std [B, d]) of the Gaussian that tanh squashes (SAC, Haarnoja et al. 2018,
    appendix C): both heads on one trunk, log_std clamped to [LOG_STD_MIN, LOG_STD_MAX]."""

    def __init__(
        self, obs_dim: int, action_dim: int, hiddens: Sequence[int], activation: str, renorm: RenormSpec | None = None
    ):
        super().__init__()
        self.net = MLP(obs_dim, hiddens, 2 * action_dim, activation, renorm)
        self.action_dim = action_dim

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(obs).split(self.action_dim, -1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterized action a = tanh(mean + std * eps) in [-1, 1]^d and its log-prob,
        log N(u) - tanh_log_det(u)."""
        mean, log_std = self(obs)
        eps = torch.randn_like(mean)
        u = mean + log_std.exp() * eps
        logp = (-0.5 * eps.pow(2) - log_std).sum(-1) - 0.5 * math.log(2 * math.pi) * self.action_dim
        return torch.tanh(u), logp - tanh_log_det(u)

    def numpy(self) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
        net, d = self.net.numpy(), self.action_dim

        def forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            out = net(x)
            return out[:, :d], np.clip(out[:, d:], LOG_STD_MIN, LOG_STD_MAX)

        return forward


class EnsembleLayerNorm(nn.Module):
    """Layer normalization over the last dimension of [K, B, d], with a gain and bias per member (torch's
    nn.LayerNorm for each of K networks)."""

    def __init__(self, members: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(members, 1, dim))
        self.bias = nn.Parameter(torch.zeros(members, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:]) * self.weight + self.bias


class QEnsemble(nn.Module):
    """K Q-networks. Box actions: Q_k(obs, action) -> [K, B] (the action concatenated to the
    observation), or [K, B, n] for out_dim n > 1 (TQC's quantiles). Discrete: Q_k(obs) -> [K, B, n],
    one value per action. With `renorm`, a BatchRenorm (per member) before each layer; with `dropout`
    and `layer_norm`, DroQ's dropout and layer normalization after each hidden linear layer."""

    def __init__(
        self,
        in_dim: int,
        hiddens: Sequence[int],
        out_dim: int,
        activation: str,
        num_q: int = 2,
        renorm: RenormSpec | None = None,
        dropout: float = 0.0,
        layer_norm: bool = False,
    ):
        super().__init__()
        self.act, self.num_q, self.out_dim = ACTIVATIONS[activation], num_q, out_dim
        dims = [in_dim, *hiddens, out_dim]
        count_parameters(layer_parameters(dims, num_q), f"ensemble of {num_q} Q-networks", hiddens)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in itertools.pairwise(dims):
            bound = 1 / math.sqrt(a)  # nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both
            self.weights.append(nn.Parameter(torch.empty(num_q, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(num_q, 1, b).uniform_(-bound, bound)))
        # None without renorm or layer_norm: a SAC or TD3 model's state keeps the names it always had
        self.norms = None if renorm is None else nn.ModuleList(BatchRenorm(d, renorm, num_q) for d in dims[:-1])
        self.layer_norms = nn.ModuleList(EnsembleLayerNorm(num_q, d) for d in hiddens) if layer_norm else None
        self.dropout = dropout
        self.stochastic = True  # dropout applied (training); False inside without_dropout(...)

    def forward(self, obs: torch.Tensor, action: torch.Tensor | None = None) -> torch.Tensor:
        x = obs if action is None else torch.cat([obs, action], -1)
        x = x.expand(self.num_q, *x.shape)  # [K, B, in]
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if self.norms is not None:
                x = self.norms[i](x)
            x = torch.baddbmm(b, x, w)
            if i < last:
                if self.dropout > 0 and self.stochastic:
                    x = F.dropout(x, self.dropout)  # each member, row and unit its own mask
                if self.layer_norms is not None:
                    x = self.layer_norms[i](x)
                x = self.act(x)
        return x.squeeze(-1) if action is not None and self.out_dim == 1 else x


@contextmanager
def without_dropout(critic: nn.Module) -> Iterator[None]:
    """Inside, `critic`'s dropout is off (values for acting, evaluation and export); afterwards it is
    on again, as in every training forward pass."""
    ensembles = [m for m in critic.modules() if isinstance(m, QEnsemble)]
    before = [m.stochastic for m in ensembles]
    for m in ensembles:
        m.stochastic = False
    try:
        yield
    finally:
        for m, was in zip(ensembles, before):
            m.stochastic = was


class Temperature(nn.Module):
    """SAC's entropy coefficient alpha, learned as log alpha (Haarnoja et al. 2018b, eq. 18)."""

    def __init__(self, initial_alpha: float):
        super().__init__()
        self.log_alpha = nn.Parameter(torch.tensor([math.log(initial_alpha)]))

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.detach().exp()[0]


class ActorQ(nn.Module):
    """An actor and its Q critics, one module (so a policy saves, loads and exports one model).

    kind "gaussian" (SAC, TQC, CrossQ; Box): actor -> (mean, log_std); "categorical" (SAC, Discrete):
    actor -> logits; "deterministic" (TD3/DDPG): actor -> tanh(mu). `temperature` is SAC's alpha (None
    for TD3). `quantiles`: a Box critic's outputs, TQC's quantiles (None: one, a Q-value). `critic_hiddens`:
    the critics' hidden layers when they differ from the actor's (CrossQ's wider critics). `renorm`:
    batch renormalization in actor and critics (CrossQ). `critic_dropout`, `critic_layer_norm`: DroQ's
    critics (QEnsemble).
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        kind: str,
        hiddens: Sequence[int],
        activation: str,
        num_q: int = 2,
        initial_alpha: float | None = None,
        quantiles: int | None = None,
        critic_hiddens: Sequence[int] | None = None,
        renorm: RenormSpec | None = None,
        critic_dropout: float = 0.0,
        critic_layer_norm: bool = False,
    ):
        super().__init__()
        self.kind, self.quantiles = kind, quantiles
        if kind == "gaussian":
            self.actor: GaussianActor | MLP = GaussianActor(obs_dim, action_dim, hiddens, activation, renorm)
        else:
            self.actor = MLP(obs_dim, hiddens, action_dim, activation, renorm)
        discrete = kind == "categorical"
        self.critic = QEnsemble(
            obs_dim if discrete else obs_dim + action_dim,
            hiddens if critic_hiddens is None else critic_hiddens,
            action_dim if discrete else quantiles or 1,
            activation,
            num_q,
            renorm,
            critic_dropout,
            critic_layer_norm,
        )
        self.temperature = Temperature(initial_alpha) if initial_alpha is not None else None

    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        """The greedy action in [-1, 1]^d (Box) or the logits (Discrete)."""
        if self.kind == "gaussian":
            return torch.tanh(self.actor(obs)[0])
        if self.kind == "deterministic":
            return torch.tanh(self.actor(obs))
        return self.actor(obs)

    def q_value(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The critics' estimate of Q(s, a) [B] for Box actions, as the actor's loss reads it: min_k Q_k
        (clipped double Q), or for quantile critics the mean of all critics' quantiles (TQC)."""
        q = self.critic(obs, action)
        return q.min(0).values if self.quantiles is None else q.reshape(*q.shape[:2], -1).mean((0, 2))
