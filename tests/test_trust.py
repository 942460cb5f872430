"""A file from a stranger runs no code: loading a checkpoint, a Hub package or an experiment file
imports and calls nothing the file names unless the user trusted it (rlarena.refs).

Booby-trapped copies of real files name a module that leaves a marker file when it is imported, and
a function that leaves another when it is called, in every place a config names an object."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import trained_checkpoint
from probe_envs import DiscreteIdentityEnv

import rlarena
from rlarena import Algorithm, Callbacks, CheckpointError, PolicySpec, PPOConfig, RandomPolicy, UntrustedCodeError, refs
from rlarena.checkpoint import METADATA_FILE
from rlarena.cli.main import main
from rlarena.multiagent.builder import default_mapping_fn
from rlarena.refs import BUILTIN_REFS, MOVED_REFS, Trust

SHIPPED = Path(rlarena.__file__).parent / "games" / "connect_four" / "agent"
TRAP = "booby_trap"
TRAP_SOURCE = """
import pathlib
pathlib.Path(__file__).with_name("IMPORTED").touch()


def boom(*args, **kwargs):
    pathlib.Path(__file__).with_name("CALLED").touch()
"""
# every place a config names an object, and what the loader's message calls it
SLOTS = {
    "env": "env",
    "callbacks_class": "callbacks_class",
    "policy_mapping_fn": "policy_mapping_fn",
    "policy_class": "policies['rand'].policy_class",
}


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with nothing registered or built in this process (rlarena.refs)."""
    monkeypatch.setattr(refs, "_REGISTERED", {})


def another_process() -> None:
    """Forget what this process built and registered: loads then behave as in a new process."""
    refs._REGISTERED.clear()


@pytest.fixture
def trap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An importable module booby_trap (on sys.path and PYTHONPATH); returns its directory."""
    folder = tmp_path / "trap"
    folder.mkdir()
    (folder / f"{TRAP}.py").write_text(TRAP_SOURCE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.delitem(sys.modules, TRAP, raising=False)
    yield folder
    sys.modules.pop(TRAP, None)


def sprung(folder: Path) -> list[str]:
    """What the trap left: IMPORTED, CALLED; and whether the module was imported in this process."""
    return sorted(p.name for p in folder.iterdir() if p.name in ("IMPORTED", "CALLED")) + (
        ["in sys.modules"] if TRAP in sys.modules else []
    )


@pytest.fixture(scope="module")
def multi_agent_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real multi-agent checkpoint whose every named slot holds one of rlarena's built-ins."""
    config = (
        PPOConfig()
        .environment("multi_agent_arena", env_config={"ts": 10})
        .env_runners(num_envs_per_env_runner=1)
        .training(train_batch_size=40, minibatch_size=40, num_epochs=1, model={"fcnet_hiddens": [8]})
        .multi_agent(
            policies={"default_policy": PolicySpec(), "rand": PolicySpec(policy_class=RandomPolicy)},
            policy_mapping_fn=default_mapping_fn,
            policies_to_train=["default_policy"],
        )
        .callbacks(Callbacks)
        .debugging(seed=0)
    )
    return trained_checkpoint(config, tmp_path_factory.mktemp("ma"))


def planted(checkpoint: Path, where: Path, slot: str, ref: dict, json_name: str = METADATA_FILE) -> Path:
    """A copy of `checkpoint` whose config names `ref` in `slot`."""
    copy = where / f"planted_{slot}"
    shutil.copytree(checkpoint, copy)
    meta = json.loads((copy / json_name).read_text())
    if slot == "policy_class":
        meta["config"]["policies"]["rand"]["policy_class"] = ref
    else:
        meta["config"][slot] = ref
    (copy / json_name).write_text(json.dumps(meta))
    return copy


def one_error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("using the latest")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


# -- the traps do not spring ------------------------------------------------------------------------
@pytest.mark.parametrize("slot", SLOTS)
def test_planted_callable_is_refused_before_import_everywhere(slot, multi_agent_checkpoint, trap, tmp_path, capsys):
    copy = planted(multi_agent_checkpoint, tmp_path, slot, {"callable": f"{TRAP}:boom"})
    with pytest.raises(UntrustedCodeError) as info:
        Algorithm.from_checkpoint(copy)
    message = str(info.value)
    assert f"{SLOTS[slot]} names 'booby_trap:boom'" in message and str(copy) in message
    assert "register_trusted" in message and "--trust-module booby_trap" in message and "\n" not in message
    for argv in (
        ["rollout", str(copy), "--episodes", "1"],
        ["evaluate", str(copy), "--episodes", "1"],
        ["export", str(copy), "--onnx", str(tmp_path / "m.onnx")],
        ["package", str(copy), "--out", str(tmp_path / "pkg"), "--episodes", "1", "--no-video"],
    ):
        assert main(argv) == 2, argv
        assert "Refusing to load checkpoint" in one_error_line(capsys)
    from rlarena.cli.play import export_checkpoint

    with pytest.raises(UntrustedCodeError):
        export_checkpoint(str(copy), tmp_path)
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "pkg").exists()
    assert sprung(trap) == []


def test_the_issue_reproduction_runs_no_command(tmp_path, build, capsys):
    """subprocess:run as the env, with the command in env_config: the report that filed issue 10."""
    algo = build(
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_envs_per_env_runner=1)
        .training(train_batch_size=16, minibatch_size=16, num_epochs=1)
    )
    marker = tmp_path / "x"
    copy = planted(Path(algo.save(tmp_path / "c")), tmp_path, "env", {"callable": "subprocess:run"})
    meta = json.loads((copy / METADATA_FILE).read_text())
    meta["config"]["env_config"] = {"touch": 0, str(marker): 0}
    (copy / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(UntrustedCodeError, match="module 'subprocess', which is not trusted"):
        Algorithm.from_checkpoint(copy)
    assert main(["rollout", str(copy), "--episodes", "1"]) == 2
    one_error_line(capsys)
    assert not marker.exists()


def test_cli_subprocess_prints_one_line_and_runs_nothing(multi_agent_checkpoint, trap, tmp_path):
    copy = planted(multi_agent_checkpoint, tmp_path, "callbacks_class", {"callable": f"{TRAP}:boom"})
    proc = subprocess.run(
        [sys.executable, "-m", "rlarena.cli.main", "rollout", str(copy), "--episodes", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "callbacks_class" in proc.stderr
    assert sprung(trap) == []


def test_hub_package_with_planted_config_is_refused(multi_agent_checkpoint, trap, tmp_path):
    from rlarena.hub import CONFIG_FILE, load_from_hub, package_to_hub

    package = package_to_hub(multi_agent_checkpoint, tmp_path / "pkg", episodes=1, video=False).folder
    for slot, key in SLOTS.items():
        copy = planted(package, tmp_path, slot, {"callable": f"{TRAP}:boom"}, json_name=CONFIG_FILE)
        with pytest.raises(UntrustedCodeError, match=f"package .*{key.replace('[', '.').replace(']', '.')}"):
            load_from_hub(copy)
    assert sprung(trap) == []
    load_from_hub(package).stop()  # the untouched package: built-ins only, no flag needed


def test_connect_four_league_checkpoint_with_planted_callbacks(trap, tmp_path, capsys):
    copy = planted(SHIPPED, tmp_path, "callbacks_class", {"callable": f"{TRAP}:boom"})
    assert main(["arena", str(copy), "--games", "1", "--opponents", "random"]) == 2
    assert "callbacks_class" in one_error_line(capsys)
    assert sprung(trap) == []


def test_walking_out_of_a_module_is_refused(tmp_path, build):
    algo = build(
        PPOConfig()
        .environment(DiscreteIdentityEnv)
        .env_runners(num_envs_per_env_runner=1)
        .training(train_batch_size=16, minibatch_size=16, num_epochs=1)
    )
    path = Path(algo.save(tmp_path / "c"))
    another_process()
    # an rlarena module is not a free pass: only the exact built-in names are
    copy = planted(path, tmp_path, "env", {"callable": "rlarena.checkpoint.io:shutil.rmtree"})
    with pytest.raises(UntrustedCodeError, match="rlarena.checkpoint.io"):
        Algorithm.from_checkpoint(copy)
    # a trusted module's own objects only, not what it imported
    shutil.rmtree(copy)
    copy = planted(path, tmp_path, "env", {"callable": "probe_envs:gym.make"})
    with pytest.raises(UntrustedCodeError, match="defined in module 'gymnasium"):
        Algorithm.from_checkpoint(copy, trusted_modules=["probe_envs"])
    # dunder walks are not references at all
    shutil.rmtree(copy)
    copy = planted(path, tmp_path, "env", {"callable": "probe_envs:DiscreteIdentityEnv.__init__.__globals__"})
    with pytest.raises(CheckpointError, match="not a saved reference"):
        Algorithm.from_checkpoint(copy, trusted_modules=["probe_envs"])


def test_trusted_module_is_a_prefix_of_whole_names():
    trust = Trust.create(["probe"])
    assert trust.trusts_module("probe") and trust.trusts_module("probe.sub")
    assert not trust.trusts_module("probe_envs") and not trust.trusts_module("prob")
    with pytest.raises(UntrustedCodeError):
        trust.resolve({"callable": "probe_envs:DiscreteIdentityEnv"}, "env")
    with pytest.raises(rlarena.ConfigError, match="not a module name"):
        Trust.create(["my project"])


def test_yaml_experiment_file_names_a_module_only_with_trust(trap, tmp_path, capsys):
    (tmp_path / "exp.yaml").write_text(f"algo: PPO\nenv: {TRAP}:boom\nstop: {{training_iteration: 1}}\n")
    assert main(["train", "-f", str(tmp_path / "exp.yaml"), "--storage-path", str(tmp_path / "runs")]) == 2
    line = one_error_line(capsys)
    assert "experiment file" in line and "--trust-module booby_trap" in line
    (tmp_path / "exp2.yaml").write_text(f"algo: PPO\nconfig: {{env: '{TRAP}:boom'}}\n")
    assert main(["train", "-f", str(tmp_path / "exp2.yaml"), "--storage-path", str(tmp_path / "runs")]) == 2
    one_error_line(capsys)
    assert sprung(trap) == [] and not (tmp_path / "runs").exists()


def test_resume_refuses_a_planted_checkpoint(trap, tmp_path, capsys):
    runs = tmp_path / "runs"
    tiny = '{"train_batch_size": 32, "minibatch_size": 32, "num_epochs": 1, "num_envs_per_env_runner": 2}'
    args = [
        "train",
        "--env",
        "CartPole-v1",
        "--config",
        tiny,
        "--storage-path",
        str(runs),
        "--name",
        "r",
        "--verbose",
        "0",
        "--no-tensorboard",
        "--no-plot",
    ]
    assert main([*args, "--stop", '{"training_iteration": 1}']) == 0
    (checkpoint,) = runs.glob("r/*/checkpoints/checkpoint_*")
    meta = json.loads((checkpoint / METADATA_FILE).read_text())
    meta["config"]["callbacks_class"] = {"callable": f"{TRAP}:boom"}
    (checkpoint / METADATA_FILE).write_text(json.dumps(meta))
    state_file = runs / "r" / "experiment_state.json"  # as a kill -9 leaves it: the trial unfinished
    state = json.loads(state_file.read_text())
    state["trials"][0]["status"] = "INTERRUPTED"
    state_file.write_text(json.dumps(state))
    assert main([*args, "--stop", '{"training_iteration": 2}', "--resume"]) == 2
    assert "callbacks_class names 'booby_trap:boom'" in one_error_line(capsys)
    assert sprung(trap) == []


# -- what is trusted keeps working ------------------------------------------------------------------
def test_builtins_load_with_no_flag(multi_agent_checkpoint, track):
    algo = track(Algorithm.from_checkpoint(multi_agent_checkpoint))
    assert isinstance(algo.get_policy("rand"), RandomPolicy) and algo.config.policy_mapping_fn is default_mapping_fn
    assert type(algo.callbacks) is Callbacks
    shipped = track(Algorithm.from_checkpoint(SHIPPED, config_overrides={"num_envs_per_env_runner": 1}))
    from rlarena.games.connect_four.rules import ConnectFourMultiAgent

    obs, _ = ConnectFourMultiAgent().reset(seed=0)
    assert 0 <= shipped.compute_single_action(next(iter(obs.values())), explore=False, policy_id="learned") < 7


def test_every_builtin_reference_resolves():
    for ref in BUILTIN_REFS:
        obj = Trust().resolve({"callable": ref}, "test")
        # a moved name (an older checkpoint's) resolves to the object where it lives now
        assert callable(obj) and f"{obj.__module__}:{obj.__qualname__}" == MOVED_REFS.get(ref, ref)


def test_checkpoints_naming_the_old_policy_modules_still_load(multi_agent_checkpoint, tmp_path, track):
    """The policies moved into rlarena.policies: a checkpoint saved before names the old modules, which are
    gone, and loads with no flag (rlarena.refs.MOVED_REFS)."""
    import importlib.util

    from rlarena.policies import QPolicy, TorchPolicy

    for gone in (
        "rlarena.policy",
        "rlarena.torch_policy",
        "rlarena.q_policy",
        "rlarena.actor_q_policy",
        "rlarena.multiagent.policies",
    ):
        assert importlib.util.find_spec(gone) is None
    old = {"callable": "rlarena.multiagent.policies:RandomPolicy"}
    copy = planted(multi_agent_checkpoint, tmp_path, "policy_class", old)
    meta = json.loads((copy / METADATA_FILE).read_text())
    meta["policies"]["rand"]["policy_class"] = old
    (copy / METADATA_FILE).write_text(json.dumps(meta))
    another_process()
    assert type(track(Algorithm.from_checkpoint(copy)).get_policy("rand")) is RandomPolicy
    for name, cls in (("rlarena.torch_policy:TorchPolicy", TorchPolicy), ("rlarena.q_policy:QPolicy", QPolicy)):
        assert Trust().resolve({"callable": name}, "policy_class") is cls


@pytest.fixture
def probe_checkpoint(tmp_path, build) -> Path:
    algo = build(
        PPOConfig()
        .environment(DiscreteIdentityEnv)
        .env_runners(num_envs_per_env_runner=1)
        .training(train_batch_size=16, minibatch_size=16, num_epochs=1)
    )
    algo.train()
    path = Path(algo.save(tmp_path / "probe"))
    another_process()
    return path


def test_user_env_loads_when_passed_again_registered_or_trusted(probe_checkpoint, track, monkeypatch, capsys):
    with pytest.raises(UntrustedCodeError, match=r"Module 'probe_envs' is imported in this process.*trusted_modules"):
        Algorithm.from_checkpoint(probe_checkpoint)
    assert track(Algorithm.from_checkpoint(probe_checkpoint, env=DiscreteIdentityEnv)).config.env is DiscreteIdentityEnv
    assert track(Algorithm.from_checkpoint(probe_checkpoint, trusted_modules="probe_envs")).iteration == 1
    monkeypatch.setattr(refs, "_REGISTERED", {})
    rlarena.register_trusted(DiscreteIdentityEnv)
    assert track(Algorithm.from_checkpoint(probe_checkpoint)).config.env is DiscreteIdentityEnv
    monkeypatch.setattr(refs, "_REGISTERED", {})
    with pytest.raises(rlarena.ConfigError, match="lambda"):
        rlarena.register_trusted(lambda cfg: None)
    # the command line: --trust-module, or --env again
    assert main(["evaluate", str(probe_checkpoint), "--episodes", "1"]) == 2
    assert "--trust-module probe_envs" in one_error_line(capsys)
    assert main(["evaluate", str(probe_checkpoint), "--episodes", "1", "--trust-module", "probe_envs"]) == 0
    assert main(["evaluate", str(probe_checkpoint), "--episodes", "1", "--env", "probe_envs:DiscreteIdentityEnv"]) == 0


def test_register_env_trusts_its_creator(probe_checkpoint, registered_env, track):
    registered_env("probe_identity", DiscreteIdentityEnv)
    assert track(Algorithm.from_checkpoint(probe_checkpoint)).config.env is DiscreteIdentityEnv


def test_the_process_that_built_a_config_restores_its_checkpoints(tmp_path, build, track):
    """The script that trains restores with no flag (its own objects); another process needs trust."""
    algo = build(
        PPOConfig()
        .environment(DiscreteIdentityEnv)
        .env_runners(num_envs_per_env_runner=1)
        .training(train_batch_size=16, minibatch_size=16, num_epochs=1)
    )
    path = algo.save(tmp_path / "c")
    assert track(Algorithm.from_checkpoint(path)).config.env is DiscreteIdentityEnv
    proc = subprocess.run(
        [sys.executable, "-m", "rlarena.cli.main", "evaluate", path, "--episodes", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
    )
    assert proc.returncode == 2 and "--trust-module probe_envs" in proc.stderr and "Traceback" not in proc.stderr
