"""RLlib code, files and command lines run unchanged: the older option names
in the builder, in dict configs (PPOTrainer(config={...})), in update_from_dict()/from_dict() and in
RLlib's own tuned-example YAML files; the options rlarena ignores (a one-line notice) or refuses (one
line naming the algorithm they belong to); `rllib train/rollout` command lines as `rlarena ...`."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlarena import PPO, ConfigError, PPOConfig, PPOTrainer
from rlarena.algorithms import get_algorithm_class
from rlarena.algorithms.legacy import IGNORED, NO_EQUIVALENT, OTHER_ALGORITHMS, RENAMED
from rlarena.cli.main import main
from rlarena.cli.spec import load_spec, make_config
from rlarena.errors import RLArenaNotice, closest
from rlarena.train.stop import Stopper

REPO = Path(__file__).resolve().parent.parent
RLLIB_FILES = REPO / "tuned_examples" / "rllib"
SMALL = {"train_batch_size": 64, "minibatch_size": 32, "num_epochs": 1, "num_envs_per_env_runner": 2}
QUIET = ["--verbose", "0", "--no-tensorboard", "--no-plot"]


def cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "rlarena.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


# -- the builder methods of RLlib 2.x (seed 003's notebook) --------------------------------------------------
def test_notebook_builder_chain_maps_old_names_and_notes_what_it_ignores():
    with pytest.warns(RLArenaNotice) as caught:
        config = (
            PPOConfig()
            .framework(framework="torch")
            .environment(env="CartPole-v1", disable_env_checking=False)
            .rollouts(num_rollout_workers=4, num_envs_per_worker=1)
            .resources(num_gpus=0)
            .evaluation(evaluation_interval=2, evaluation_duration=20, evaluation_num_workers=2)
            .debugging(seed=415, log_level="ERROR")
        )
    assert (config.env, config.num_envs_per_env_runner, config.num_env_runners) == ("CartPole-v1", 1, 0)
    assert (config.evaluation_interval, config.evaluation_duration, config.seed) == (2, 20, 415)
    notes = [str(w.message) for w in caught]
    # one line each, for what does nothing here; nothing where the value is what rlarena does anyway
    # (framework="torch", num_gpus=0, disable_env_checking=False: RLlib's defaults)
    assert [n.split("=")[0] for n in notes] == ["num_rollout_workers", "evaluation_num_workers", "log_level"]
    assert all("\n" not in n for n in notes)
    assert "Ray" in notes[0] and "in this process" in notes[0]
    config.validate()  # the config is usable as it stands


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda c: c.framework("tf2"), "framework='tf2' is ignored: rlarena runs PyTorch."),
        (lambda c: c.framework("torch", eager_tracing=True), "eager_tracing=True is ignored"),
        (lambda c: c.resources(num_gpus=1), "num_gpus=1 is ignored: rlarena trains on the CPU only."),
    ],
)
def test_framework_and_gpus_other_than_torch_on_cpu_leave_a_notice(call, needle):
    with pytest.warns(RLArenaNotice, match=needle.replace("(", r"\(").replace(")", r"\)")):
        call(PPOConfig())


def test_torch_and_no_gpu_are_accepted_silently():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PPOConfig().framework("torch").resources(num_gpus=0).rollouts(num_rollout_workers=0)


def test_a_framework_rllib_never_had_is_a_mistake():
    with pytest.raises(ConfigError, match="Invalid framework='pytorch': expected one of 'torch'"):
        PPOConfig().framework("pytorch")


def test_training_takes_old_names():
    config = PPOConfig().training(num_sgd_iter=3, sgd_minibatch_size=16, vf_share_layers=True)
    assert (config.num_epochs, config.minibatch_size, config.model) == (3, 16, {"vf_share_layers": True})


# -- one table, the same meaning everywhere -------------------------------------------------------------------
OLD = {
    "env": "CartPole-v1",
    "num_workers": 0,
    "num_envs_per_worker": 2,
    "num_sgd_iter": 3,
    "sgd_minibatch_size": 32,
    "lambda": 0.9,
    "vf_share_layers": True,
    "train_batch_size": 64,
    "framework": "torch",
    "model": {"fcnet_hiddens": [16]},
}


def test_update_from_dict_from_dict_and_dict_constructors_agree():
    expected = {
        "num_envs_per_env_runner": 2,
        "num_epochs": 3,
        "minibatch_size": 32,
        "lambda_": 0.9,
        "model": {"fcnet_hiddens": [16], "vf_share_layers": True},
        "train_batch_size": 64,
    }
    updated = PPOConfig().update_from_dict(OLD)
    loaded = PPOConfig.from_dict(OLD)
    algo = PPOTrainer(config=OLD)
    try:
        for config in (updated, loaded, algo.config):
            assert {k: getattr(config, k) for k in expected} == expected
        assert isinstance(algo, PPO) and algo.train()["training_iteration"] == 1
    finally:
        algo.stop()


def test_ppo_takes_env_and_a_dict_config():
    algo = PPO(env="CartPole-v1", config={"train_batch_size": 64, "sgd_minibatch_size": 32, "num_sgd_iter": 1})
    try:
        assert (algo.config.env, algo.config.minibatch_size) == ("CartPole-v1", 32)
    finally:
        algo.stop()
    with pytest.raises(ConfigError, match="PPOConfig has no option 'gama'. Did you mean 'gamma'"):
        PPO(env="CartPole-v1", config={"gama": 0.9})


def test_rllib_1x_multiagent_dict_config_trains():
    """Seed 002's PPOTrainer config: RLlib's (None, obs_space, act_space, {}) tuples under "multiagent"."""
    from rlarena.envs.arena import MultiAgentArena

    env = MultiAgentArena()
    obs_space, act_space = env.observation_spaces["agent1"], env.action_spaces["agent1"]
    trainer = PPOTrainer(
        config={
            "env": MultiAgentArena,
            "framework": "torch",
            "num_workers": 0,
            **SMALL,
            "multiagent": {
                "policies": {
                    "policy1": (None, obs_space, act_space, {}),
                    "policy2": (None, obs_space, act_space, {"lr": 0.0002}),
                },
                "policy_mapping_fn": lambda agent_id, *args, **kw: "policy1" if agent_id == "agent1" else "policy2",
                "policies_to_train": ["policy1", "policy2"],
            },
        }
    )
    try:
        assert sorted(trainer.config.policies) == ["policy1", "policy2"]
        assert trainer.config.policies_to_train == ["policy1", "policy2"]
        result = trainer.train()
        assert set(result["info"]["learner"]) == {"policy1", "policy2"}  # both trained
    finally:
        trainer.stop()


# -- refusals: one line naming what the option belongs to -----------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"learning_starts": 1000},
            "'learning_starts' is an option of DQN, QRDQN, SAC, TD3, DDPG, TQC, CrossQ, DroQ and REDQ",
        ),
        (
            {"prioritized_replay": True},
            "'prioritized_replay' is an option of DQN, QRDQN, SAC, TD3, DDPG, TQC, CrossQ, DroQ and REDQ",
        ),
        ({"n_step": 3}, "'n_step' is an option of DQN, QRDQN, SAC, TD3, DDPG, TQC, CrossQ, DroQ and REDQ"),
        ({"Q_model": {}}, "Q_model={} is not available: rlarena's SAC builds both networks from model="),
        ({"optimization": {"actor_learning_rate": 3e-4}}, "takes actor_lr, critic_lr and alpha_lr"),
        ({"vtrace": True}, "'vtrace' is an option of IMPALA and APPO; PPOConfig cannot use it"),
        ({"horizon": 200}, "horizon=200 is not available: episodes are cut by the env itself"),
        ({"no_done_at_end": True}, "no_done_at_end=True is not available"),
        ({"kl_coeff": 0.2}, "kl_coeff=0.2 is not available: rlarena's PPO has no KL penalty"),
        ({"batch_mode": "complete_episodes"}, "batch_mode='complete_episodes' is not available"),
        ({"timesteps_per_iteration": 1000}, "set train_batch_size"),
        ({"multiagent": {"count_steps_by": "agent_steps"}}, "multiagent.count_steps_by='agent_steps' is not available"),
        ({"multiagent": {"policy_mapper": None}}, "Unknown option 'multiagent.policy_mapper'"),
    ],
)
def test_options_without_an_equivalent_are_refused_in_one_line(options, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as info:
        PPOConfig().update_from_dict(options)
    assert "\n" not in str(info.value)


def test_the_values_rlarena_has_anyway_are_accepted_silently():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PPOConfig().update_from_dict(
            {
                "no_done_at_end": False,
                "kl_coeff": 0.0,
                "batch_mode": "truncate_episodes",
                "use_gae": True,
                "timesteps_per_iteration": 0,
                "model": {"use_lstm": False},
                "multiagent": {"count_steps_by": "env_steps"},
            }
        )


def test_the_tables_do_not_overlap_with_current_names():
    fields = set(PPOConfig._fields())
    for table in (RENAMED, IGNORED, OTHER_ALGORITHMS):
        assert not fields & set(table), table
    assert set(RENAMED.values()) <= fields
    refusals = {k for k, rule in IGNORED.items() if not rule.why}
    assert refusals <= set(NO_EQUIVALENT)  # every refused value says why


@pytest.mark.parametrize(
    ("typo", "expected"),
    [
        ("gama", "gamma"),
        ("lrr", "lr"),
        ("num_epoch", "num_epochs"),
        ("trian_batch_size", "train_batch_size"),
        ("entropy", "entropy_coeff"),
        ("framework_", None),
        ("foo", None),
        ("num_gpu", None),
        ("fcnet", None),
    ],
)
def test_suggestions_are_close_or_absent(typo, expected):
    hint = closest(typo, PPOConfig._fields())
    assert hint == (f" Did you mean {expected!r}?" if expected else "")


def test_unknown_option_names_no_poor_suggestion():
    with pytest.raises(ConfigError) as info:
        PPOConfig().update_from_dict({"foo": 1})
    assert str(info.value) == "PPOConfig has no option 'foo'."


# -- stop criteria written RLlib's way ----------------------------------------------------------------------
def test_stop_keys_in_rllib_groups_read_the_flat_results():
    stopper = Stopper(
        {"sampler_results/episode_reward_mean": 150, "env_runners/episode_return_mean": 100, "timesteps_total": 1000}
    )
    assert set(stopper.criteria) == {"episode_reward_mean", "episode_return_mean", "timesteps_total"}
    assert stopper({"episode_reward_mean": 151.0}) and stopper({"timesteps_total": 1000})
    assert not stopper({"episode_reward_mean": 10.0, "episode_return_mean": 10.0, "timesteps_total": 10})


# -- RLlib's tuned-example files, unchanged -----------------------------------------------------------------
def test_rllib_files_are_rllibs_layout():
    spec = load_spec(RLLIB_FILES / "pendulum-ppo.yaml")
    assert (spec["name"], spec["algo"], spec["env"]) == ("pendulum-ppo", "PPO", "Pendulum-v1")
    assert spec["config"]["lambda"] == 0.1 and spec["config"]["num_envs_per_worker"] == 20
    with pytest.warns(RLArenaNotice) as caught:
        config, _ = make_config(spec["algo"], spec["env"], spec["config"])
    assert [str(w.message).split("=")[0] for w in caught] == ["framework", "enable_connectors"]
    assert (config.lambda_, config.minibatch_size, config.num_envs_per_env_runner, config.seed) == (0.1, 64, 20, 42)
    assert config.observation_filter == "MeanStdFilter" and config.vf_clip_param == 10.0


CARTPOLE = RLLIB_FILES / "cartpole-ppo.yaml"  # sets fcnet_activation: linear (RLlib's name for none)


@pytest.mark.parametrize("path", [RLLIB_FILES / "pendulum-ppo.yaml", CARTPOLE], ids=["pendulum-ppo", "cartpole-ppo"])
def test_rllib_file_starts_with_cli(tmp_path, path):
    """`rlarena train -f FILE` one iteration at small sizes; benchmarks/tuned_examples.py runs them to
    their own stop criteria."""
    proc = cli(
        "train",
        "-f",
        str(path),
        "--config",
        json.dumps(SMALL),
        "--stop",
        '{"training_iteration": 1}',
        *QUIET,
        cwd=tmp_path,
        check=False,
    )
    notes = proc.stderr.splitlines()
    assert "notice: framework='tf' is ignored: rlarena runs PyTorch." in notes
    assert proc.returncode == 0, proc.stderr
    assert all(line.startswith(("notice: ", "using ")) for line in notes), proc.stderr  # no warning paths


# a tuned-example file (RLlib's format) for an algorithm rlarena does not have yet
CARTPOLE_R2D2 = """\
cartpole-r2d2:
    env: CartPole-v1
    run: R2D2
    stop:
        sampler_results/episode_reward_mean: 150
        timesteps_total: 200000
    config:
        framework: torch
        vtrace: true
"""


def test_file_for_an_algorithm_rlarena_lacks_says_so_in_one_line(tmp_path):
    (tmp_path / "cartpole-r2d2.yaml").write_text(CARTPOLE_R2D2)
    proc = cli("train", "-f", "cartpole-r2d2.yaml", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip() == "error: R2D2 is one of RLlib's algorithms that rlarena does not have yet. "
        "Available: PPO, A2C, DQN, QRDQN, SAC, TD3, DDPG, TQC, CrossQ, DroQ, REDQ, AlphaZero, LinUCB, LinTS, ES, ARS, BC, MARWIL, "
        "CQL, IMPALA, APPO."
    )
    with pytest.raises(ConfigError, match="Unknown algorithm 'PPOO'. Did you mean 'PPO'"):
        get_algorithm_class("PPOO")


# -- `rllib train` / `rllib rollout` command lines ----------------------------------------------------------
def test_train_takes_rllib_flags(tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    from rlarena.train import ray_trials

    start_ray = ray_trials.ray_init

    def no_cluster_here(address=None, num_cpus=None):  # `auto` finds none, whatever else runs on this machine
        if address == "auto":
            raise ConnectionError("Could not find any running Ray instance.")
        start_ray(address, num_cpus)

    monkeypatch.setattr(ray_trials, "ray_init", no_cluster_here)
    code = main(
        [
            "train",
            "--run",
            "PPO",
            "--env",
            "CartPole-v1",
            '--stop={"training_iteration": 1}',
            "--ray-address",
            "auto",
            "--framework",
            "tf2",
            "--config",
            json.dumps(SMALL),
            "--local-dir",
            str(tmp_path / "r"),
            "--name",
            "x",
            *QUIET,
        ]
    )
    assert code == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("notice: ")]  # not Ray's logs
    assert err == [
        "notice: framework='tf2' is ignored: rlarena runs PyTorch.",
        (
            "notice: ray address 'auto': no Ray cluster is running on this machine; the trials run on a "
            "local Ray on 127.0.0.1 instead."
        ),
    ]
    trial = tmp_path / "r" / "x" / "PPO_CartPole-v1_00000"
    assert [json.loads(line)["training_iteration"] for line in (trial / "result.json").read_text().splitlines()] == [1]


def test_rollout_takes_rllib_flags(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--run",
                "PPO",
                "--env",
                "CartPole-v1",
                "--stop",
                '{"training_iteration": 1}',
                "--config",
                json.dumps(SMALL),
                "--storage-path",
                str(tmp_path),
                "--name",
                "r",
                *QUIET,
            ]
        )
        == 0
    )
    run = str(tmp_path / "r")
    assert main(["rollout", run, "--run", "PPO", "--steps", "50", "--no-render", "--seed", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    lengths = [int(line.rsplit("length ", 1)[1]) for line in out if line.startswith("episode ")]
    assert sum(lengths) == 50  # the last episode is cut at the step budget
    assert out[-1].startswith(f"mean return over {len(lengths)} episode") and out[-1].count("50 steps") == 1
    assert main(["rollout", run, "--steps", "500", "--episodes", "1", "--seed", "0"]) == 0
    assert sum(line.startswith("episode ") for line in capsys.readouterr().out.splitlines()) == 1
    assert main(["rollout", run, "--run", "DQN"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: --run DQN does not match the checkpoint: ") and "was trained by PPO" in err


# `rlarena train` whose "auto" finds no running Ray: besides the recorded cluster (no_ray_cluster_env),
# Ray's "auto" joins any raylet it sees in the process list (ray._private.services.find_gcs_addresses:
# another user's Ray, another test run's); that scan is made to see none
NO_CLUSTER_MAIN = (
    "import sys, ray._private.services as services; "
    "assert hasattr(services, '_find_address_from_flag'), 'Ray moved its process scan'; "
    "services._find_address_from_flag = lambda flag: set(); "
    "from rlarena.cli.main import main; sys.exit(main())"
)


@pytest.fixture
def no_ray_cluster_env() -> Iterator[dict[str, str]]:
    """An environment in which `--ray-address auto` finds no Ray cluster, whatever runs on this machine:
    no RAY_ADDRESS, and RAY_TMPDIR/TMPDIR an empty directory, where Ray looks for the cluster the last
    `ray start` recorded (ray/ray_current_cluster). A short name under /tmp: the local Ray's sockets go
    below it, in paths of at most 107 bytes."""
    empty = tempfile.mkdtemp(prefix="nr-", dir="/tmp" if os.path.isdir("/tmp") else None)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    yield {**env, "RAY_TMPDIR": empty, "TMPDIR": empty}
    shutil.rmtree(empty, ignore_errors=True)


def test_the_tutorial_commands_run(tmp_path, no_ray_cluster_env):
    """examples/rllib_commands.sh as written; `rlarena train` gets a small batch (an extra --config), and
    `--ray-address auto` finds no cluster (no_ray_cluster_env, NO_CLUSTER_MAIN), so it falls back to a
    local Ray with its notice on any machine."""
    python = shlex.quote(sys.executable)
    shim = (
        f'rlarena() {{ if [ "$1" = train ]; then {python} -c {shlex.quote(NO_CLUSTER_MAIN)} "$@" '
        f"--config {shlex.quote(json.dumps(SMALL))} --no-tensorboard --no-plot; "
        f'else {python} -m rlarena.cli.main "$@"; fi; }}'
    )
    script = REPO / "examples" / "rllib_commands.sh"
    proc = subprocess.run(
        ["bash", "-c", f"{shim}\nsource {shlex.quote(str(script))}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**no_ray_cluster_env, "SDL_VIDEODRIVER": "dummy"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run,) = (tmp_path / "runs").iterdir()
    checkpoints = sorted(p.name for p in (run / "PPO_CartPole-v1_00000" / "checkpoints").iterdir())
    assert checkpoints == ["checkpoint_000010", "checkpoint_000020"]
    assert proc.stdout.count("PPO on CartPole-v1") == 3
    assert "mean return over 5 episodes" in proc.stdout
    assert "at most 1000 steps" in proc.stdout
    assert "notice: ray address 'auto': no Ray cluster is running on this machine" in proc.stderr
