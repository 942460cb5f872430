"""Each trained policy's Learner owns what optimizing it needs (rlarena.learners): the lr schedule
reaches every optimizer, and removing a policy removes all it owned. The off-policy family here (DQN,
SAC, TD3, DDPG, CQL: replay buffers, targets, counters); the on-policy family's cases are in
tests/test_learners_on_policy.py."""

from __future__ import annotations

import gc
import math
import weakref

import gymnasium as gym
import numpy as np
import pytest
from conftest import all_arrays, assert_same_arrays

from rlarena import Algorithm, DDPGConfig, DQNConfig, SACConfig, TD3Config
from rlarena.algorithms.cql import CQLConfig
from rlarena.checkpoint.io import read_checkpoint, write_checkpoint
from rlarena.envs.multi_agent import MultiAgentEnv
from rlarena.learners import piecewise
from rlarena.multiagent import PolicySpec
from rlarena.offline import OfflineWriter

pytestmark = pytest.mark.timeout(300)


# -- off-policy: the lr schedule reaches every optimizer ----------------------------------------------
SMALL = {
    "model": {"fcnet_hiddens": [16]},
    "train_batch_size": 16,
    "num_steps_sampled_before_learning_starts": 32,
    "min_sample_timesteps_per_iteration": 64,
}
# each optimizer's own learning rate differs from lr, so the schedule's scaling (schedule / lr) shows
OFF_POLICY = {
    "DQN": lambda: (
        DQNConfig()
        .environment("CartPole-v1")
        .env_runners(num_envs_per_env_runner=2)
        .training(**SMALL, target_network_update_freq=16, epsilon=[[0, 1.0], [64, 0.1]])
    ),
    "SAC": lambda: (
        SACConfig().environment("Pendulum-v1").training(**SMALL, actor_lr=5e-4, critic_lr=2e-3, alpha_lr=1e-3)
    ),
    # policy_delay 1: the actor steps with each update, so its last lr is the schedule's now (its
    # delayed steps are covered by the frozen-weights case, where policy_delay is TD3's 2)
    "TD3": lambda: (
        TD3Config().environment("Pendulum-v1").training(**SMALL, actor_lr=5e-4, critic_lr=2e-3, policy_delay=1)
    ),
    "DDPG": lambda: DDPGConfig().environment("Pendulum-v1").training(**SMALL, actor_lr=5e-4, critic_lr=2e-3),
}


def _identity_data(directory) -> None:
    box = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    rng = np.random.default_rng(0)
    n = 256
    x, a = rng.uniform(-1, 1, (n, 1)).astype(np.float32), rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    with OfflineWriter(directory, box, box) as writer:
        writer.add(
            {
                "eps_id": np.arange(n),
                "obs": x,
                "actions": a,
                "rewards": -((a - x) ** 2)[:, 0],
                "new_obs": x,
                "terminateds": np.ones(n, bool),
                "truncateds": np.zeros(n, bool),
                "t": np.zeros(n, np.int64),
                "action_logp": np.full(n, -math.log(2), np.float32),
            }
        )


def _off_policy_config(name, tmp_path, **training):
    if name == "CQL":
        if not (tmp_path / "data").exists():
            _identity_data(tmp_path / "data")
        config = (
            CQLConfig()
            .offline_data(input_=str(tmp_path / "data"))
            .training(
                train_batch_size=16,
                num_actions=2,
                model={"fcnet_hiddens": [16]},
                min_train_timesteps_per_iteration=64,
                bc_iters=2,
                lagrangian=True,
                actor_lr=5e-4,
                critic_lr=2e-3,
                alpha_lr=1e-3,
            )
        )
    else:
        config = OFF_POLICY[name]()
    return config.training(**training).debugging(seed=0)


def _trained_state(algo: Algorithm) -> dict:
    """The weights and target networks (what an lr of 0 must leave as they are)."""
    return {k: v.copy() for k, v in all_arrays(algo).items() if k[0].startswith(("policy.", "target."))}


@pytest.mark.parametrize("name", ["DQN", "SAC", "TD3", "DDPG", "CQL"])
def test_off_policy_lr_schedule_sets_every_optimizers_learning_rate(name, build, tmp_path):
    """A schedule at zero leaves every weight (temperatures and alpha' too) and target as it was, while
    the same run without it moves them; a falling schedule: after an update each optimizer's lr is the
    schedule at that step, scaled by its own lr / lr."""
    steps = 3 if name == "CQL" else 2  # CQL: past bc_iters, so its actor loss reads the critics

    def trained(schedule, **training):
        algo = build(_off_policy_config(name, tmp_path, lr_schedule=schedule, **training))
        before = _trained_state(algo)
        for _ in range(steps):
            algo.train()
        return algo, before

    delay = {"policy_delay": 2} if name == "TD3" else {}
    frozen, before = trained([[0, 0.0], [10**9, 0.0]], **delay)
    assert frozen.num_gradient_steps > 0
    after = _trained_state(frozen)
    assert after.keys() == before.keys() and all(np.array_equal(before[k], v) for k, v in after.items())
    moving, before = trained(None, **delay)
    after = _trained_state(moving)
    moved = {k[0] + "/" + k[1] for k, v in after.items() if not np.array_equal(before[k], v)}
    assert any(k.startswith("target.") for k in moved) and any(k.startswith("policy.") for k in moved)
    if name in ("SAC", "CQL"):
        assert "policy.default_policy/model.temperature.log_alpha" in moved
    if name == "CQL":
        assert "policy.default_policy/model.alpha_prime.log_alpha" in moved

    schedule = [[0, 2e-3], [100_000, 0.0]]
    falling, _ = trained(schedule)
    learner, config = falling.learners["default_policy"], falling.config
    # the clock of the last update: env steps sampled (CQL, offline: the logged rows trained on before it)
    at = (
        falling.num_env_steps_trained - config.train_batch_size
        if name == "CQL"
        else falling.num_env_steps_sampled_lifetime
    )
    own = (
        {"main": config.lr}
        if name == "DQN"
        else {
            "actor": config.actor_lr,
            "critic": config.critic_lr,
            "alpha": getattr(config, "alpha_lr", None),
            "alpha_prime": config.critic_lr,
        }
    )  # alpha' learns as the critics
    assert set(learner.optimizers) == {
        "DQN": {"main"},
        "SAC": {"actor", "critic", "alpha"},
        "CQL": {"actor", "critic", "alpha", "alpha_prime"},
    }.get(name, {"actor", "critic"})
    for opt_name, optimizer in learner.optimizers.items():
        expected = piecewise(schedule, at) * own[opt_name] / config.lr
        assert optimizer.lr == pytest.approx(expected, rel=1e-12), opt_name
        assert 0 < optimizer.lr != own[opt_name]  # not the unscheduled lr


def test_dqn_reports_the_scheduled_lr():
    config = _off_policy_config("DQN", None, lr_schedule=[[0, 1e-3], [1000, 0.0]])
    with config.build() as algo:
        result = algo.train()
        assert result["cur_lr"] == pytest.approx(1e-3 * (1 - algo.num_env_steps_sampled_lifetime / 1000))
        assert result["cur_lr"] == algo.learners["default_policy"].optimizers["main"].lr


# -- off-policy: remove_policy takes all the policy owned, and the rest saves and loads -----------------
class TwoAgents(MultiAgentEnv):
    """Two agents act together for 4 steps on random observations; reward -|a - x_0| (Box) or
    [a == (x_0 > 0)] (Discrete)."""

    def __init__(self, config=None):
        self.possible_agents = ["a", "b"]
        self.agents = list(self.possible_agents)
        action = gym.spaces.Discrete(2) if (config or {}).get("discrete") else gym.spaces.Box(-1, 1, (1,), np.float32)
        self.observation_spaces = {p: gym.spaces.Box(-1, 1, (2,), np.float32) for p in self.possible_agents}
        self.action_spaces = {p: action for p in self.possible_agents}

    def _obs(self):
        return {p: self.np_random.uniform(-1, 1, 2).astype(np.float32) for p in self.agents}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.agents = 0, list(self.possible_agents)
        self.last = self._obs()
        return self.last, {}

    def step(self, action_dict):
        rewards = {}
        for p, a in action_dict.items():
            x = float(self.last[p][0])
            rewards[p] = float(int(a) == (x > 0)) if np.ndim(a) == 0 else -abs(float(np.asarray(a)[0]) - x)
        self.t += 1
        done = self.t == 4
        self.last = self._obs()
        flags = {p: done for p in self.possible_agents} | {"__all__": done}
        return self.last, rewards, flags, {p: False for p in flags}, {}


def by_agent(agent_id, *args, **kwargs):
    return "p0" if agent_id == "a" else "p1"


def only_p0(agent_id, *args, **kwargs):
    return "p0"


MULTI_AGENT = {"DQN": (DQNConfig, True), "SAC": (SACConfig, False), "TD3": (TD3Config, False)}


def _two_policies(name, build):
    config_class, discrete = MULTI_AGENT[name]
    return build(
        config_class()
        .environment(TwoAgents, env_config={"discrete": discrete})
        .env_runners(num_envs_per_env_runner=2, rollout_fragment_length=4)
        .training(**SMALL)
        .multi_agent(policies={"p0": PolicySpec(), "p1": PolicySpec()}, policy_mapping_fn=by_agent)
        .debugging(seed=0)
    )


@pytest.mark.parametrize("name", MULTI_AGENT)
def test_off_policy_remove_policy_frees_its_memory_then_save_and_restore(name, build, track, tmp_path):
    algo = _two_policies(name, build)
    algo.train()
    removed = algo.learners["p1"]
    assert len(removed.buffer) > 0 and removed.targets
    refs = [
        weakref.ref(x)
        for x in (removed, removed.buffer, *removed.flats.values(), *(t.module for t in removed.targets.values()))
    ]
    del removed
    algo.remove_policy("p1", policy_mapping_fn=only_p0)
    gc.collect()
    assert all(ref() is None for ref in refs), "the removed policy's learner, buffer, flats or targets live on"
    algo.train()
    path = algo.save(tmp_path / "ck")
    assert not any(group.endswith(".p1") for group in read_checkpoint(path)[1])
    restored = track(Algorithm.from_checkpoint(path, env=TwoAgents, config_overrides={"policy_mapping_fn": only_p0}))
    assert set(restored.learners) == {"p0"} and set(restored.policies) == {"p0"}
    assert_same_arrays(algo, restored)  # weights, optimizers, targets, replay, counters
    assert len(restored.learners["p0"].buffer) == len(algo.learners["p0"].buffer)
    if name == "TD3":
        assert restored.learners["p0"].critic_steps == algo.learners["p0"].critic_steps > 0
    result = restored.train()
    assert result["training_iteration"] == algo.iteration + 1 and np.isfinite(
        result["learner/p0/critic_loss" if name != "DQN" else "learner/p0/qf_loss"]
    )


def test_td3_checkpoint_of_format_1_keeps_its_critic_steps(build, track, tmp_path):
    """Format 1 kept TD3's critic steps in its "td3" group, one per policy in the order they were set
    up: still read (they decide when the delayed actor steps)."""
    algo = _two_policies("TD3", build)
    algo.train()
    algo.learners["p0"].critic_steps, algo.learners["p1"].critic_steps = 5, 8
    meta, arrays = read_checkpoint(algo.save(tmp_path / "new"))
    assert arrays["learner.p0"]["critic_steps"].tolist() == [5] and "critic_steps" not in arrays["td3"]
    arrays["td3"]["critic_steps"] = np.array([5, 8], np.int64)  # as format 1 wrote them
    del arrays["learner.p0"], arrays["learner.p1"]
    old = write_checkpoint(
        tmp_path / "old", {k: v for k, v in meta.items() if k not in ("files", "format_version")}, arrays
    )
    restored = track(Algorithm.from_checkpoint(old, env=TwoAgents, config_overrides={"policy_mapping_fn": by_agent}))
    assert (restored.learners["p0"].critic_steps, restored.learners["p1"].critic_steps) == (5, 8)
    restored.train()
