"""Offline RL end to end: recording what algorithms sample (single- and multi-agent, `rlarena rollout
--output`), BC and MARWIL learning from the files alone, their checkpoints, the CLI without an env, and
the errors for what cannot work. The Parquet format itself: test_offline_io.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import tiny_config
from probe_envs import ContinuousIdentityEnv, DiscreteIdentityEnv

from rlarena import Algorithm, BCConfig, ESConfig, MARWILConfig, PolicySpec, PPOConfig
from rlarena.cli.main import main
from rlarena.envs.arena import MultiAgentArena
from rlarena.errors import ConfigError, OfflineDataError
from rlarena.offline import OfflineData, OfflineWriter

pytest.importorskip("pyarrow")


def read_all(directory) -> dict[str, np.ndarray]:
    data = OfflineData(str(directory))
    parts = [data.read_file(f) for f in data.files]
    return {k: np.concatenate([p[k] for p in parts]) for k, v in parts[0].items() if v is not None}


def episodes(rows: dict[str, np.ndarray]) -> dict[tuple, np.ndarray]:
    """(eps_id, agent_id) -> that episode's row indices, in step order."""
    agents = rows.get("agent_id")
    keys = list(zip(rows["eps_id"].tolist(), agents.tolist() if agents is not None else [None] * len(rows["t"])))
    out: dict[tuple, list[int]] = {}
    for i, key in enumerate(keys):
        out.setdefault(key, []).append(i)
    return {k: np.array(sorted(v, key=lambda i: rows["t"][i])) for k, v in out.items()}


def test_ppo_run_records_its_episodes(tmp_path):
    algo = tiny_config().offline_data(output=str(tmp_path / "rec")).build()
    for _ in range(4):
        algo.train()
    sampled, finished = algo.num_env_steps_sampled_lifetime, list(algo.episode_stats.window)
    algo.stop()
    rows = read_all(tmp_path / "rec")
    # every sampled step but the autoreset ones (one after each episode end) is a row
    assert sampled - len(finished) - 4 <= len(rows["rewards"]) <= sampled
    assert set(np.unique(rows["actions"])) <= {0, 1}
    assert (rows["action_logp"] <= 0).all() and (rows["action_logp"] > np.log(1e-6)).all()
    eps = episodes(rows)
    ended = [idx for idx in eps.values() if rows["terminateds"][idx[-1]] or rows["truncateds"][idx[-1]]]
    assert len(ended) == len(finished)
    # the recorded episodes are the runner's: same returns and lengths
    assert sorted(round(float(rows["rewards"][idx].sum()), 3) for idx in ended) == sorted(
        round(r, 3) for r, _ in finished
    )
    for idx in eps.values():
        assert (rows["t"][idx] == np.arange(len(idx))).all()
        assert not rows["terminateds"][idx[:-1]].any() and not rows["truncateds"][idx[:-1]].any()
        assert np.allclose(rows["new_obs"][idx[:-1]], rows["obs"][idx[1:]])  # one trajectory, no gaps


def test_multi_agent_run_records_one_row_per_agent_step(tmp_path):
    config = (
        PPOConfig()
        .environment(MultiAgentArena, env_config={"ts": 20})
        .env_runners(num_envs_per_env_runner=2, rollout_fragment_length=15)
        .training(train_batch_size=60, minibatch_size=30, num_epochs=1, model={"fcnet_hiddens": [16]})
        .multi_agent(
            policies={"p1": PolicySpec(), "p2": PolicySpec()},
            policy_mapping_fn=lambda agent, episode, **kw: "p1" if agent == "agent1" else "p2",
        )
        .offline_data(output=str(tmp_path / "rec"))
        .debugging(seed=0)
    )
    algo = config.build()
    for _ in range(3):
        algo.train()
    algo.stop()
    for pid, agent in (("p1", "agent1"), ("p2", "agent2")):
        rows = read_all(tmp_path / "rec" / pid)
        assert set(rows["agent_id"]) == {agent}
        for idx in episodes(rows).values():
            assert (np.diff(rows["t"][idx]) > 0).all()
            assert not rows["truncateds"][idx[:-1]].any()
            assert np.allclose(rows["new_obs"][idx[:-1]], rows["obs"][idx[1:]])
        # episodes of 20 steps: those that ended are truncated by the time limit, on their 20th step
        done = [idx for idx in episodes(rows).values() if rows["truncateds"][idx[-1]]]
        assert done and all(rows["t"][idx[-1]] == 19 and len(idx) == 20 for idx in done)


def test_rollout_cli_records_episodes(tmp_path, capsys):
    algo = tiny_config().build()
    algo.train()
    checkpoint = algo.save(tmp_path / "ckpt")
    algo.stop()
    assert main(["rollout", checkpoint, "--episodes", "3", "--seed", "1", "--output", str(tmp_path / "rec")]) == 0
    assert "recorded" in capsys.readouterr().out
    rows = read_all(tmp_path / "rec")
    eps = episodes(rows)
    assert len(eps) == 3
    for idx in eps.values():
        assert rows["terminateds"][idx[-1]] or rows["truncateds"][idx[-1]]
        assert (rows["t"][idx] == np.arange(len(idx))).all()
    assert "action_logp" in rows


def write_identity_data(directory, n_rows: int, expert_share: float, seed: int = 0, n: int = 4) -> None:
    """One-step episodes of DiscreteIdentityEnv: the expert's action (the target) with probability
    expert_share, else a wrong one (the next action); reward 1 when the action is the target."""
    rng = np.random.default_rng(seed)
    env = DiscreteIdentityEnv(n)
    targets = rng.integers(n, size=n_rows)
    actions = np.where(rng.random(n_rows) < expert_share, targets, (targets + 1) % n)
    obs = np.eye(n, dtype=np.float32)[targets]
    writer = OfflineWriter(directory, env.observation_space, env.action_space)
    writer.add(
        {
            "eps_id": np.arange(n_rows),
            "obs": obs,
            "new_obs": obs,
            "actions": actions,
            "rewards": (actions == targets).astype(np.float32),
            "terminateds": np.ones(n_rows, bool),
            "truncateds": np.zeros(n_rows, bool),
            "t": np.zeros(n_rows, np.int64),
            "action_logp": np.log(np.where(actions == targets, expert_share, 1 - expert_share)).astype(np.float32),
        }
    )
    writer.close()


def offline_config(cls, data, **training):
    return (
        cls()
        .offline_data(input_=str(data))
        .environment(DiscreteIdentityEnv)
        .training(**{"lr": 3e-3, "train_batch_size": 256, "model": {"fcnet_hiddens": [32]}, **training})
        .evaluation(evaluation_duration=100)
        .debugging(seed=0)
    )


def test_bc_learns_the_expert_from_files_alone(tmp_path):
    write_identity_data(tmp_path / "data", 4000, expert_share=0.9)
    algo = offline_config(BCConfig, tmp_path / "data").build()
    assert algo.env is None and algo.num_env_steps_sampled_lifetime == 0
    for _ in range(60):
        result = algo.train()
    assert result["num_env_steps_trained_lifetime"] == 60 * 256 and result["num_env_steps_sampled_lifetime"] == 0
    assert algo.evaluate()["episode_return_mean"] >= 0.95  # the env only judges
    algo.stop()


def test_marwil_beats_bc_on_mostly_bad_data(tmp_path):
    """A wrong action in 3 steps of 4, the expert's in 1: BC imitates the majority; MARWIL weights each
    action by exp(beta * advantage / norm) and picks the rewarded one. (The advantage norm adapts fast
    here; RLlib's default rate, 1e-8, keeps it at its start of 100 for a long run.)"""
    write_identity_data(tmp_path / "data", 4000, expert_share=0.25)
    scores = {}
    for name, cls, extra in (
        ("bc", BCConfig, {}),
        ("marwil", MARWILConfig, {"beta": 1.0, "moving_average_sqd_adv_norm_update_rate": 0.1}),
    ):
        algo = offline_config(cls, tmp_path / "data", **extra).build()
        for _ in range(100):
            algo.train()
        scores[name] = algo.evaluate()["episode_return_mean"]
        algo.stop()
    assert scores["marwil"] >= 0.9 and scores["bc"] <= 0.1, scores


def test_bc_continuous_actions(tmp_path):
    env = ContinuousIdentityEnv()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (3000, 1)).astype(np.float32)
    writer = OfflineWriter(tmp_path / "data", env.observation_space, env.action_space)
    writer.add(
        {
            "eps_id": np.arange(3000),
            "obs": x,
            "new_obs": x,
            "actions": x + 0.05 * rng.standard_normal(x.shape),
            "rewards": np.zeros(3000, np.float32),
            "terminateds": np.ones(3000, bool),
            "truncateds": np.zeros(3000, bool),
        }
    )
    writer.close()
    algo = (
        BCConfig()
        .offline_data(input_=str(tmp_path / "data"))
        .environment(ContinuousIdentityEnv)
        .training(lr=3e-3, train_batch_size=256, model={"fcnet_hiddens": [32]})
        .evaluation(evaluation_duration=50)
        .debugging(seed=0)
    ).build()
    for _ in range(150):
        algo.train()
    assert algo.evaluate()["episode_return_mean"] > -0.02  # the zero action scores -1/3
    algo.stop()


def test_off_policy_estimates_in_evaluation(tmp_path):
    """The behaviour policy picks the target 70 % of the time: v_behavior = 0.7. BC imitates it, so its
    weighted-IS estimate is about the same; RLlib's keys come with evaluate()."""
    write_identity_data(tmp_path / "data", 2000, expert_share=0.7, seed=1)
    methods = {"is": {"type": "ImportanceSampling"}, "wis": {"type": "WeightedImportanceSampling"}}
    algo = (
        offline_config(BCConfig, tmp_path / "data")
        .evaluation(off_policy_estimation_methods=methods, evaluation_duration=2000)
        .build()
    )
    for _ in range(40):
        algo.train()
    out = algo.evaluate()
    assert abs(out["off_policy_estimation/wis/v_behavior"] - 0.7) < 0.03
    assert abs(out["off_policy_estimation/wis/v_target"] - 0.7) < 0.1
    assert {"v_target", "v_gain", "v_delta"} <= {
        k.rsplit("/", 1)[1] for k in out if k.startswith("off_policy_estimation/is/")
    }
    algo.stop()


def test_checkpoint_round_trip_continues(tmp_path):
    write_identity_data(tmp_path / "data", 1000, expert_share=0.5)
    algo = offline_config(MARWILConfig, tmp_path / "data").build()
    for _ in range(3):
        algo.train()
    path = algo.save(tmp_path / "ckpt")
    # the checkpoint does not choose what is read: the data is passed again to continue
    restored = Algorithm.from_checkpoint(path, config_overrides={"input_": str(tmp_path / "data")})
    assert type(restored).__name__ == "MARWIL" and restored.iteration == 3
    assert restored.ma_adv_norm == algo.ma_adv_norm
    assert restored.num_rows_trained_lifetime == algo.num_rows_trained_lifetime
    for a, b in zip(algo.policy.get_state().values(), restored.policy.get_state().values()):
        assert np.array_equal(a, b)
    assert restored.train()["training_iteration"] == 4
    algo.stop()
    restored.stop()


@pytest.mark.timeout(120)
def test_checkpoint_of_format_1_restores_the_advantage_norm(tmp_path):
    """The advantage norm and the rows counter are the learner's state ("learner.<policy id>"); a
    checkpoint of format 1 kept them in MARWIL's own group "marwil", which still loads."""
    write_identity_data(tmp_path / "data", 1000, expert_share=0.5)
    algo = offline_config(MARWILConfig, tmp_path / "data", moving_average_sqd_adv_norm_update_rate=0.1).build()
    for _ in range(2):
        algo.train()
    path = tmp_path / "ckpt"
    algo.save(path)
    assert algo.ma_adv_norm != 100.0 and algo.num_rows_trained_lifetime == 512
    new, old = "learner.default_policy.safetensors", "marwil.safetensors"
    (path / new).rename(path / old)
    meta = json.loads((path / "rlarena_checkpoint.json").read_text())
    meta["files"][old] = meta["files"].pop(new)
    (path / "rlarena_checkpoint.json").write_text(json.dumps(meta))
    restored = Algorithm.from_checkpoint(path, config_overrides={"input_": str(tmp_path / "data")})
    try:
        assert restored.ma_adv_norm == algo.ma_adv_norm
        assert restored.num_rows_trained_lifetime == algo.num_rows_trained_lifetime
        assert restored.train()["num_env_steps_trained_lifetime"] == 768
    finally:
        algo.stop()
        restored.stop()


def test_without_an_env_the_spaces_come_from_the_files(tmp_path):
    write_identity_data(tmp_path / "data", 500, expert_share=1.0)
    algo = BCConfig().offline_data(input_=str(tmp_path / "data")).training(train_batch_size=64).build()
    assert algo.policy.action_space.n == 4 and algo.policy.obs_dim == 4
    result = algo.train()
    assert np.isnan(result["episode_return_mean"])  # no env: no episodes
    assert algo.evaluate()["evaluation_time_s"] >= 0  # nothing to play: no episode metrics, no error
    algo.stop()


def test_cli_trains_bc_without_an_env(tmp_path, capsys):
    write_identity_data(tmp_path / "data", 500, expert_share=1.0)
    code = main(
        [
            "train",
            "--algo",
            "BC",
            "--config",
            json.dumps({"input": str(tmp_path / "data"), "train_batch_size": 64}),
            "--stop",
            '{"training_iteration": 2}',
            "--storage-path",
            str(tmp_path / "runs"),
            "--verbose",
            "0",
            "--no-tensorboard",
            "--no-plot",
        ]
    )
    assert code == 0
    assert list((tmp_path / "runs").glob("BC_offline*/*/checkpoints/checkpoint_*"))


def test_what_cannot_work_says_so(tmp_path):
    write_identity_data(tmp_path / "data", 100, expert_share=1.0)
    with pytest.raises(ConfigError, match="BC, MARWIL or CQL"):
        PPOConfig().environment("CartPole-v1").offline_data(input_=str(tmp_path / "data")).build()
    with pytest.raises(ConfigError, match="input_=DIR"):
        BCConfig().environment("CartPole-v1").build()
    with pytest.raises(ConfigError, match="does not record"):
        ESConfig().environment("CartPole-v1").offline_data(output=str(tmp_path / "x")).build()
    with pytest.raises(ConfigError, match="set one of them"):
        BCConfig().offline_data(input_=str(tmp_path / "data"), output=str(tmp_path / "x")).build()
    with pytest.raises(OfflineDataError, match="nowhere"):
        BCConfig().offline_data(input_=str(tmp_path / "nowhere")).build()
    with pytest.raises(ConfigError, match="offline_data"):
        PPOConfig().environment("CartPole-v1").evaluation(
            off_policy_estimation_methods={"is": {"type": "ImportanceSampling"}}
        ).build()


def test_rllib_names():
    config = BCConfig().update_from_dict({"input": "sampler"})  # RLlib's default: sample the env
    with pytest.raises(ConfigError, match="No environment"):
        config.validate()
    assert config.input_ is None
    assert BCConfig().update_from_dict({"input": "/data", "offline_sampling": True}).input_ == "/data"
    with pytest.raises(ConfigError, match="Parquet"):
        BCConfig().update_from_dict({"input": "dataset", "input_config": {"format": "json", "paths": "x.json"}})
