"""ONNX export: onnxruntime's outputs equal torch's (to float32 rounding) on random inputs, for
each kind of observation preprocessing, action space and masking; OnnxPolicy plays like the torch
policy; the shipped model.onnx is the shipped checkpoint (an AlphaZero network, policy "default_policy");
the CLI and its errors; no torch needed to play."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config

from rlarena import Algorithm, CheckpointError, ConfigError
from rlarena.cli.main import main
from rlarena.export.onnx import FORMAT, INSTALL_HINT, OnnxPolicy, export_onnx
from rlarena.policies.policy import MASKED_LOGIT

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "src" / "rlarena" / "games" / "connect_four" / "agent"
# Two backends (onnxruntime, torch, and the sampler's numpy) agree only to float32 rounding, and how
# they round depends on the CPU's kernels: logits of ~28 differed by 1.5e-5 on an AMD EPYC. So they
# are compared relative to the magnitude, with a small absolute floor for values near 0.
RTOL, ATOL = 1e-4, 1e-5
BATCHES = (1, 37)  # one exported file serves both: the batch dimension is dynamic


def assert_close(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def assert_greedy(actions: np.ndarray, logits: np.ndarray) -> None:
    """Each action is a greedy choice for `logits` computed by another backend: its logit is its row's
    largest up to rounding (where two logits tie to rounding, either backend may pick either)."""
    chosen, best = logits[np.arange(len(actions)), actions], logits.max(-1)
    assert (best - chosen <= ATOL + RTOL * np.abs(best)).all(), (actions, logits)


def torch_outputs(policy, obs_batch) -> tuple[np.ndarray, np.ndarray]:
    """What the torch policy computes: its own preprocessing, the model, the mask as in sample()."""
    with torch.no_grad():
        first, value = policy.model(torch.from_numpy(policy.normalize(policy.flatten(obs_batch))))
    first = first.numpy()
    mask = policy.action_mask(obs_batch)
    return (np.where(mask, first, MASKED_LOGIT) if mask is not None else first), value.numpy()


def random_obs(name: str, batch: int, rng: np.random.Generator):
    if name == "FrozenLake-v1":
        return rng.integers(0, 16, batch)
    if name == "connect_four":
        mask = rng.integers(0, 2, (batch, 7)).astype(np.int8)
        mask[np.arange(batch), rng.integers(0, 7, batch)] = 1  # a board has at least one legal move
        return {"observation": rng.integers(0, 2, (batch, 6, 7, 2)).astype(np.int8), "action_mask": mask}
    dim = {"CartPole-v1": 4, "Pendulum-v1": 3}[name]
    # wide enough that the MeanStdFilter's clipping at +-10 is reached for some entries
    return (rng.standard_normal((batch, dim)) * rng.choice([0.5, 3.0, 50.0], (batch, dim))).astype(np.float32)


CASES = {  # case -> (env, env_runners options); the shipped Connect Four checkpoint is the fifth case
    "mlp": ("CartPole-v1", {}),
    "mean_std_filter": ("CartPole-v1", {"observation_filter": "MeanStdFilter"}),
    "box_actions": ("Pendulum-v1", {}),
    "discrete_obs": ("FrozenLake-v1", {}),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """case -> (algorithm, policy id, env name, exported path); each exported once for the module."""
    out, algos = {}, []
    root = tmp_path_factory.mktemp("onnx")
    for case, (env, extra) in CASES.items():
        config = tiny_config(env, num_envs=2)
        if extra:
            config = config.env_runners(**extra)
        algo = config.build()
        algo.train()  # trained weights live in the optimizer's flat buffer; filter statistics are non-trivial
        out[case] = (algo, "default_policy", env, algo.export_onnx(root / f"{case}.onnx"))
        algos.append(algo)
    c4 = Algorithm.from_checkpoint(
        SHIPPED, config_overrides={"num_envs_per_env_runner": 1, "vectorization_mode": "sync"}
    )
    algos.append(c4)
    out["connect_four"] = (
        c4,
        "default_policy",
        "connect_four",
        c4.export_onnx(root / "c4.onnx", policy_id="default_policy"),
    )
    yield out
    for algo in algos:
        algo.stop()


@pytest.mark.parametrize("case", [*CASES, "connect_four"])
def test_onnxruntime_matches_torch(exported, case):
    algo, pid, env, path = exported[case]
    policy, served = algo.get_policy(pid), OnnxPolicy(path)
    rng = np.random.default_rng(0)
    for batch in BATCHES:
        obs = random_obs(env, batch, rng)
        want_first, want_value = torch_outputs(policy, obs)
        first, value = served.compute_outputs(obs)
        assert first.shape == want_first.shape and value.shape == (batch,)
        assert_close(first, want_first)
        assert_close(value, want_value)
        # greedy actions are the torch policy's (Box: the clipped mean)
        served_greedy = served.compute_actions(obs, explore=False)
        torch_greedy = policy.compute_actions(obs, explore=False)
        if policy.continuous:
            assert_close(served_greedy, torch_greedy)
        else:
            assert_greedy(served_greedy, want_first)
            assert_greedy(torch_greedy, want_first)  # the sampler computes the logits in numpy
    if case == "mean_std_filter":  # the filter's statistics were really baked in (not the identity)
        assert not np.allclose(policy.obs_filter.mean, 0)


def test_graph_inputs_outputs_and_metadata(exported):
    for case, (algo, pid, env, path) in exported.items():
        served = OnnxPolicy(path)
        inputs, outputs = served.session.get_inputs(), served.session.get_outputs()
        assert [i.name for i in inputs] == (
            ["observation", "action_mask"] if case == "connect_four" else ["observation"]
        )
        assert [o.name for o in outputs] == ["mean" if case == "box_actions" else "logits", "value"]
        assert all(isinstance(t.shape[0], str) for t in [*inputs, *outputs])  # a symbolic (dynamic) batch
        assert inputs[0].type == ("tensor(int64)" if case == "discrete_obs" else "tensor(float)")
        assert (served.policy_id, served.env_name) == (pid, env)
        assert served.observation_space == algo.get_policy(pid).observation_space
        assert served.action_space == algo.get_policy(pid).action_space
        # a flat vector, Discrete or Box actions, no memory: format 1, which rlarena before format 2 reads
        assert served.session.get_modelmeta().custom_metadata_map[FORMAT] == "1"
    assert not [f for f in os.listdir(path.parent) if ".tmp-" in f]  # atomic writes leave no temp files


def test_sampling_respects_masks_and_bounds(exported):
    c4 = OnnxPolicy(exported["connect_four"][3], seed=0)
    rng = np.random.default_rng(1)
    obs = random_obs("connect_four", 500, rng)
    for explore in (True, False):
        actions = c4.compute_actions(obs, explore=explore)
        assert actions.dtype == np.int64 and actions.shape == (500,)
        assert obs["action_mask"][np.arange(500), actions].all()
    pendulum = OnnxPolicy(exported["box_actions"][3], seed=0)
    obs = random_obs("Pendulum-v1", 200, rng)
    sampled, greedy = pendulum.compute_actions(obs), pendulum.compute_actions(obs, explore=False)
    assert sampled.shape == greedy.shape == (200, 1) and sampled.dtype == np.float32
    assert (np.abs(sampled) <= 2.0).all() and not np.allclose(sampled, greedy)  # noise from the stored log-std


def test_shipped_model_is_the_shipped_checkpoint(exported):
    algo, _, _, _ = exported["connect_four"]
    policy, shipped = algo.get_policy("default_policy"), OnnxPolicy(SHIPPED / "model.onnx")
    assert (shipped.policy_id, shipped.env_name) == ("default_policy", "connect_four")
    # small: one shared [512, 512] trunk over the board features, ~1.6 MB
    assert SHIPPED.joinpath("model.onnx").stat().st_size < 2_000_000
    import onnx

    model = onnx.load(SHIPPED / "model.onnx")
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version <= 9  # readable by onnxruntime 1.17, our extras' floor
    rng = np.random.default_rng(2)
    for batch in BATCHES:
        obs = random_obs("connect_four", batch, rng)
        want_logits, want_value = torch_outputs(policy, obs)
        logits, value = shipped.compute_outputs(obs)
        assert_close(logits, want_logits)
        assert_close(value, want_value)
        # the app's call: int8 boards and masks in, int64 actions out
        actions = shipped.compute_actions(obs, explore=False)
        assert actions.dtype == np.int64 and actions.shape == (batch,)
        assert_greedy(actions, want_logits)
        assert_greedy(policy.compute_actions(obs, explore=False), want_logits)


def test_single_action_and_input_errors(exported):
    cartpole = OnnxPolicy(exported["mlp"][3])
    assert isinstance(cartpole.compute_single_action(np.zeros(4, np.float32), explore=False), int)
    with pytest.raises(ConfigError, match=r"shape \[batch, 4\]"):
        cartpole.compute_actions(np.zeros((2, 3), np.float32))
    c4 = OnnxPolicy(exported["connect_four"][3])
    with pytest.raises(ConfigError, match="'observation' and 'action_mask'"):
        c4.compute_actions(np.zeros((2, 6, 7, 2), np.int8))
    with pytest.raises(ConfigError, match=r"action_mask must have shape \[batch, 7\]"):
        c4.compute_actions({"observation": np.zeros((2, 6, 7, 2), np.int8), "action_mask": np.ones((2, 6))})


def test_export_errors(exported, league_checkpoint, tmp_path, monkeypatch):
    league = Algorithm.from_checkpoint(league_checkpoint)  # a network among heuristics, as the PPO league saves
    try:
        with pytest.raises(ConfigError, match="Did you mean 'learned'.*Policies: learned, random, negamax_1"):
            league.export_onnx(tmp_path / "x.onnx", policy_id="learnd")
        with pytest.raises(ConfigError, match="'negamax_1' is a NegamaxDepth1.*Exportable: learned[.]"):
            league.export_onnx(tmp_path / "x.onnx", policy_id="negamax_1")
    finally:
        league.stop()
    c4 = exported["connect_four"][0]
    with pytest.raises(ConfigError, match="Did you mean 'default_policy'.*Policies: default_policy[.]"):
        c4.export_onnx(tmp_path / "x.onnx", policy_id="default_polcy")
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if the onnx extra were not installed
    with pytest.raises(ConfigError, match=INSTALL_HINT.replace("[", r"\[").replace("]", r"\]")):
        export_onnx(c4.policies, tmp_path / "x.onnx", "default_policy")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ConfigError, match="onnxruntime package"):
        OnnxPolicy(SHIPPED / "model.onnx")
    assert not list(tmp_path.iterdir())


def test_files_that_are_not_ours(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    onnx.save(
        helper.make_model(graph, ir_version=9, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "foreign.onnx"
    )
    with pytest.raises(CheckpointError, match=f"not an rlarena policy.*{FORMAT}"):
        OnnxPolicy(tmp_path / "foreign.onnx")
    (tmp_path / "garbage.onnx").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a readable ONNX model"):
        OnnxPolicy(tmp_path / "garbage.onnx")
    with pytest.raises(CheckpointError, match="No ONNX model at"):
        OnnxPolicy(tmp_path / "missing.onnx")


@pytest.fixture(scope="module")
def cartpole_checkpoint(tmp_path_factory):
    algo = tiny_config(num_envs=2).build()
    algo.train()
    path = algo.save(tmp_path_factory.mktemp("ckpt") / "cartpole")
    yield algo, path
    algo.stop()


def test_cli_export(cartpole_checkpoint, tmp_path, capsys):
    algo, ckpt = cartpole_checkpoint
    out = tmp_path / "sub" / "model.onnx"
    assert main(["export", ckpt, "--onnx", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "inputs observation [batch, 4]; outputs logits [batch, 2], value [batch]" in text
    obs = random_obs("CartPole-v1", 37, np.random.default_rng(3))
    assert_close(OnnxPolicy(out).compute_outputs(obs)[0], torch_outputs(algo.get_policy(), obs)[0])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["export", "{ckpt}", "--onnx", "{tmp}/m.onnx", "--policy-id", "nope"], "No policy 'nope' to export"),
        (["export", "{tmp}/no_such_checkpoint", "--onnx", "{tmp}/m.onnx"], "no_such_checkpoint"),
        (["export", "{league}", "--onnx", "{tmp}/m.onnx", "--policy-id", "random"], "RandomPolicy, not a trained"),
        (["rollout", "--onnx", "{tmp}/m.onnx"], "--onnx needs --env"),
        (["rollout", "{ckpt}", "--onnx", "{tmp}/m.onnx", "--env", "CartPole-v1"], "either a CHECKPOINT or --onnx"),
        (["rollout"], "Give a CHECKPOINT"),
        (["rollout", "--onnx", "{tmp}/missing.onnx", "--env", "CartPole-v1"], "No ONNX model at"),
        (["rollout", "--onnx", "{shipped}", "--env", "CartPole-v1"], "takes masked observations"),
    ],
)
def test_cli_errors_exit_2_with_one_line(cartpole_checkpoint, league_checkpoint, tmp_path, capsys, argv, message):
    subs = {
        "ckpt": cartpole_checkpoint[1],
        "tmp": str(tmp_path),
        "shipped": str(SHIPPED / "model.onnx"),
        "league": str(league_checkpoint),
    }
    assert main([a.format(**subs) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()


def test_rollout_onnx_without_torch(exported, tmp_path):
    """rollout --onnx imports no torch: a single-agent env, and Connect Four in self-play."""
    code = (
        "import sys; sys.modules['torch'] = None; from rlarena.cli.main import main; "
        f"rc = main(['rollout', '--onnx', {str(exported['mlp'][3])!r}, '--env', 'CartPole-v1', "
        "'--episodes', '2', '--seed', '0']); "
        f"rc += main(['rollout', '--onnx', {str(SHIPPED / 'model.onnx')!r}, '--env', 'connect_four', "
        "'--episodes', '1', '--seed', '0', '--explore']); "
        "print('torch loaded' if any(m.startswith('torch.') for m in sys.modules) else 'no torch'); sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "ONNX policy 'default_policy' (mlp.onnx) on CartPole-v1, 2 episodes, greedy actions"
    assert lines[1].startswith("episode 1: return ") and lines[2].startswith("episode 2: return ")
    assert lines[3].startswith("mean return over 2 episodes: ")
    assert (
        lines[4] == "ONNX policy 'default_policy' (model.onnx) on connect_four, 1 episode, sampled actions (--explore)"
    )
    assert lines[5].startswith("episode 1: return ") and lines[-1] == "no torch"
