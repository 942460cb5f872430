"""Each trained policy's Learner: the lr schedule reaches the optimizers of BC, MARWIL, ES, ARS and
AlphaZero, and the bandits (closed-form updates) refuse one. The on-policy and off-policy families' cases
are in tests/test_learners_on_policy.py and tests/test_learners_off_policy.py."""

from __future__ import annotations

import numpy as np
import pytest

# -- BC / MARWIL, ES / ARS, AlphaZero and the bandits ----------------------------------------------
# lr_schedule reaches the optimizers these algorithms step: a schedule of zeros leaves the weights as
# they were, while the same run without it moves them.


def _misc_flat_weights(algo) -> np.ndarray:
    """Every weight of the default policy, one vector (float64)."""
    return np.concatenate(
        [
            np.asarray(v, np.float64).ravel()
            for k, v in sorted(algo.policy.get_state().items())
            if k.startswith("model.")
        ]
    )


def _misc_moved(config, iterations: int = 2) -> bool:
    """Whether `iterations` of training change any weight of the default policy."""
    algo = config.build()
    try:
        before = _misc_flat_weights(algo)
        for _ in range(iterations):
            algo.train()
        return not np.array_equal(_misc_flat_weights(algo), before)
    finally:
        algo.stop()


def _misc_offline_data(directory, rows: int = 512, seed: int = 0, n: int = 4) -> str:
    """One-step DiscreteIdentityEnv episodes, half of them with the rewarded action."""
    from probe_envs import DiscreteIdentityEnv

    from rlarena.offline import OfflineWriter

    rng = np.random.default_rng(seed)
    env = DiscreteIdentityEnv(n)
    targets = rng.integers(n, size=rows)
    actions = np.where(rng.random(rows) < 0.5, targets, (targets + 1) % n)
    obs = np.eye(n, dtype=np.float32)[targets]
    writer = OfflineWriter(directory, env.observation_space, env.action_space)
    writer.add(
        {
            "eps_id": np.arange(rows),
            "obs": obs,
            "new_obs": obs,
            "actions": actions,
            "rewards": (actions == targets).astype(np.float32),
            "terminateds": np.ones(rows, bool),
            "truncateds": np.zeros(rows, bool),
            "t": np.zeros(rows, np.int64),
        }
    )
    writer.close()
    return str(directory)


def _misc_offline_config(cls, data: str, **training):
    from probe_envs import DiscreteIdentityEnv

    return (
        cls()
        .offline_data(input_=data)
        .environment(DiscreteIdentityEnv)
        .training(
            **{"lr": 1e-2, "train_batch_size": 128, "minibatch_size": 64, "model": {"fcnet_hiddens": [8]}, **training}
        )
        .debugging(seed=0)
    )


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["BC", "MARWIL"])
def test_bc_and_marwil_lr_schedule_sets_the_learning_rate(name, tmp_path):
    pytest.importorskip("pyarrow")
    from rlarena import BCConfig, MARWILConfig

    cls = {"BC": BCConfig, "MARWIL": MARWILConfig}[name]
    data = _misc_offline_data(tmp_path / "data")
    assert _misc_moved(_misc_offline_config(cls, data))
    assert not _misc_moved(_misc_offline_config(cls, data, lr_schedule=[[0, 0.0]]))
    # an offline run samples no env steps: its schedule runs over the logged rows trained on
    algo = _misc_offline_config(cls, data, lr_schedule=[[0, 1e-2], [128, 0.0]]).build()
    try:
        learner = algo.learners["default_policy"]
        assert learner.current_lr("main") == pytest.approx(1e-2)
        algo.train()
        assert algo.num_env_steps_sampled_lifetime == 0 and algo.num_rows_trained_lifetime == 128
        assert learner.current_lr("main") == 0.0
        assert set(algo.optimizers) == {("default_policy", "main")}
    finally:
        algo.stop()


def _misc_es_config(cls, **training):
    from rlarena import ESConfig

    if cls is ESConfig:
        training = {"episodes_per_batch": 4, **training}
    else:
        training = {"num_rollouts": 2, "rollouts_used": 1, **training}
    return cls().environment("CartPole-v1").training(model={"fcnet_hiddens": [4]}, **training).debugging(seed=0)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["ES", "ARS"])
def test_es_and_ars_lr_schedule_scales_their_step_size(name):
    from rlarena import ARSConfig, ESConfig

    cls = {"ES": ESConfig, "ARS": ARSConfig}[name]
    assert _misc_moved(_misc_es_config(cls))
    assert not _misc_moved(_misc_es_config(cls, lr_schedule=[[0, 0.0]]))
    # the step size (ES's stepsize, ARS's sgd_stepsize) is scaled by schedule / lr
    algo = _misc_es_config(cls, lr=1e-3, lr_schedule=[[0, 2e-3]]).build()
    try:
        own = algo.config.stepsize if name == "ES" else algo.config.sgd_stepsize
        assert algo.learners["default_policy"].current_lr("main") == pytest.approx(2 * own)
        algo.train()
        assert algo.optimizers[("default_policy", "main")].lr == pytest.approx(2 * own)
    finally:
        algo.stop()


@pytest.mark.timeout(180)
def test_alphazero_lr_schedule_sets_the_learning_rate():
    from rlarena import AlphaZeroConfig

    def config(**training):
        return (
            AlphaZeroConfig()
            .environment("tic_tac_toe")
            .training(
                num_parallel_games=4,
                train_batch_size=32,
                minibatch_size=16,
                mcts_config={"num_simulations": 4},
                num_steps_sampled_before_learning_starts=16,
                model={"fcnet_hiddens": [8]},
                **training,
            )
            .debugging(seed=0)
        )

    assert _misc_moved(config(), iterations=1)
    # Adam's step and the decoupled weight decay (at the step's learning rate) both stop
    assert not _misc_moved(config(lr_schedule=[[0, 0.0]], l2_coeff=0.1), iterations=1)
    algo = config().build()
    try:
        assert set(algo.learners) == {"default_policy"} and set(algo.optimizers) == {("default_policy", "main")}
    finally:
        algo.stop()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["LinUCB", "LinTS"])
def test_bandits_refuse_lr_schedule_in_one_line(name):
    from rlarena import LinTSConfig, LinUCBConfig
    from rlarena.envs.bandits import LinearDiscreteEnv
    from rlarena.errors import ConfigError

    cls = {"LinUCB": LinUCBConfig, "LinTS": LinTSConfig}[name]
    with pytest.raises(ConfigError) as info:
        cls().environment(LinearDiscreteEnv).training(lr_schedule=[[0, 1e-3]]).build()
    message = str(info.value)
    assert "\n" not in message and "lr_schedule" in message and "closed-form" in message
    algo = cls().environment(LinearDiscreteEnv).debugging(seed=0).build()  # no schedule: an empty learner
    try:
        algo.train()
        assert set(algo.learners) == {"default_policy"} and algo.optimizers == {}
    finally:
        algo.stop()
