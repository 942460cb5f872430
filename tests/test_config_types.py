"""Every option is checked against its declared type in one place (AlgorithmConfig.validate), so a
value of the wrong type is one line naming the option, the value and the expected type, on every path
to an algorithm: the builder, --config, YAML, rlarena.run, per-policy overrides and checkpoints."""

from __future__ import annotations

import json
import typing
from typing import Any

import numpy as np
import pytest

import rlarena
from rlarena import Algorithm, CheckpointError, ConfigError, PPOConfig
from rlarena.algorithms.config import MODEL_DEFAULTS, MODEL_TYPES, _conform, _field_types
from rlarena.cli.main import main
from rlarena.envs.arena import MultiAgentArena
from rlarena.multiagent import PolicySpec

SMALL = {"train_batch_size": 64, "minibatch_size": 32, "num_epochs": 1, "model": {"fcnet_hiddens": [8]}}


def cartpole() -> PPOConfig:
    return PPOConfig().environment("CartPole-v1").env_runners(num_envs_per_env_runner=2).training(**SMALL)


def error_of(config: PPOConfig) -> str:
    with pytest.raises(ConfigError) as info:
        config.validate()
    return str(info.value)


# -- the rules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lr": "fast"}, "Invalid lr='fast': expected a number (float)."),
        ({"lr": True}, "Invalid lr=True: expected a number (float)."),  # a bool is never a number
        ({"gamma": None}, "Invalid gamma=None: expected a number (float)."),
        (
            {"entropy_coeff": float("nan")},
            "Invalid entropy_coeff=nan: expected a number (float) (finite: not NaN or infinity).",
        ),
        ({"grad_clip": "x"}, "Invalid grad_clip='x': expected a number (float) or None."),
        ({"num_epochs": 2.5}, "Invalid num_epochs=2.5: expected an integer (int)."),
        ({"num_epochs": True}, "Invalid num_epochs=True: expected an integer (int)."),
        (
            {"train_batch_size": "64"},
            ("Invalid train_batch_size='64': expected an integer (int), not a string: write it unquoted."),
        ),
        ({"normalize_advantages": "yes"}, "Invalid normalize_advantages='yes': expected true or false (bool)."),
        ({"normalize_advantages": 1}, "Invalid normalize_advantages=1: expected true or false (bool)."),
        ({"lr_schedule": "linear"}, "Invalid lr_schedule='linear': expected a list or None."),
        ({"model": "big"}, "Invalid model='big': expected a dict."),
        (
            {"model": {"fcnet_hiddens": "big"}},
            "Invalid model.fcnet_hiddens='big': expected a list of positive integers (layer sizes, e.g. [64, 64]).",
        ),
        (
            {"model": {"fcnet_hiddens": [64, 0]}},
            "Invalid model.fcnet_hiddens=[64, 0]: expected a list of positive integers (layer sizes, e.g. [64, 64]).",
        ),
        (
            {"model": {"fcnet_hiddens": [64, 2.5]}},
            "Invalid model.fcnet_hiddens=[64, 2.5]: expected a list of positive integers (layer sizes, e.g. [64, 64]).",
        ),
        ({"model": {"fcnet_activation": 1}}, "Invalid model.fcnet_activation=1: expected a string (str)."),
        ({"model": {"vf_share_layers": 0}}, "Invalid model.vf_share_layers=0: expected true or false (bool)."),
        ({"model": {"log_std_init": "low"}}, "Invalid model.log_std_init='low': expected a number (float)."),
        ({"model": {"board_features": 3}}, "Invalid model.board_features=3: expected a string (str) or None."),
    ],
)
def test_a_value_of_the_wrong_type_is_one_line_naming_option_value_and_type(options, message):
    assert error_of(cartpole().training(**options)) == message


@pytest.mark.parametrize(
    ("method", "options", "message"),
    [
        (
            "env_runners",
            {"rollout_fragment_length": "foo"},
            "Invalid rollout_fragment_length='foo': expected 'auto' or an integer (int).",
        ),
        (
            "env_runners",
            {"rollout_fragment_length": 2.5},
            "Invalid rollout_fragment_length=2.5: expected 'auto' or an integer (int).",
        ),
        ("env_runners", {"rollout_fragment_length": 0}, "Invalid rollout_fragment_length=0: must be >= 1 or 'auto'."),
        (
            "env_runners",
            {"num_envs_per_env_runner": None},
            "Invalid num_envs_per_env_runner=None: expected an integer (int).",
        ),
        ("env_runners", {"observation_filter": None}, "Invalid observation_filter=None: expected a string (str)."),
        ("environment", {"env_config": None}, "Invalid env_config=None: expected a dict."),
        (
            "evaluation",
            {"evaluation_interval": 1.5},
            "Invalid evaluation_interval=1.5: expected an integer (int) or None.",
        ),
        ("evaluation", {"evaluation_explore": "no"}, "Invalid evaluation_explore='no': expected true or false (bool)."),
        ("debugging", {"seed": "zero"}, "Invalid seed='zero': expected an integer (int) or None."),
        ("debugging", {"seed": -1}, "Invalid seed=-1: must be >= 0 or None."),
    ],
)
def test_other_builder_groups_are_checked_too(method, options, message):
    assert error_of(getattr(cartpole(), method)(**options)) == message


def test_every_bad_value_is_reported_at_once_one_line_each():
    config = cartpole().training(lr="fast", num_epochs=2.5, model={"vf_share_layers": "no", "fcnet_hiden": [8]})
    assert error_of(config).splitlines() == [
        "Invalid lr='fast': expected a number (float).",
        "Invalid num_epochs=2.5: expected an integer (int).",
        "Invalid model.vf_share_layers='no': expected true or false (bool).",
        (
            "Unknown model option 'fcnet_hiden'. Did you mean 'fcnet_hiddens'? Valid model options: "
            + ", ".join(MODEL_TYPES)
            + "."
        ),
    ]


def test_a_long_value_is_shortened_in_the_message():
    message = error_of(cartpole().training(lr="x" * 500))
    assert len(message) < 120 and message.endswith("...: expected a number (float).")


def test_values_of_the_right_kind_are_accepted_and_stored_in_plain_form():
    caller_model = {"fcnet_hiddens": (16.0, np.int64(8)), "log_std_init": np.float32(-0.5)}
    config = cartpole().training(
        num_epochs=2.0,
        train_batch_size=np.int64(64),
        minibatch_size=3.2e1,
        lr=1,
        gamma=np.float64(0.98),
        grad_clip=None,
        model=caller_model,
    )
    config.env_runners(rollout_fragment_length=16.0).debugging(seed=np.int32(3))
    config.validate()
    # 2.0 (or 1e4 from JSON) is the int it equals: accepted, stored as an int
    assert (config.num_epochs, config.train_batch_size, config.minibatch_size) == (2, 64, 32)
    assert all(
        type(v) is int
        for v in (
            config.num_epochs,
            config.train_batch_size,
            config.minibatch_size,
            config.rollout_fragment_length,
            config.seed,
        )
    )
    assert config.lr == 1 and type(config.gamma) is float
    assert config.model == {"fcnet_hiddens": [16, 8], "log_std_init": -0.5}
    assert type(config.model["log_std_init"]) is float
    assert caller_model["fcnet_hiddens"] == (16.0, 8)  # the caller's dict is left alone
    json.dumps(config.to_dict())  # plain values: the checkpoint's JSON can hold them
    algo = config.build()
    try:
        algo.train()
    finally:
        algo.stop()


def test_every_field_has_a_resolved_annotation_and_every_default_fits_it():
    types = _field_types(PPOConfig)
    assert {name for name, annotation in types.items() if annotation is Any} == {"policy_mapping_fn"}
    config = PPOConfig()
    for name, annotation in types.items():
        assert _conform(getattr(config, name), annotation)[0], name
    assert set(MODEL_TYPES) == set(MODEL_DEFAULTS)
    for key, value in MODEL_DEFAULTS.items():
        assert _conform(value, MODEL_TYPES[key])[0], key
    # objects keep their own checks (a class, a creator function, a mapping function)
    assert typing.get_origin(types["env"]) is not None


# -- every path goes through the check ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("config_json", "line"),
    [
        ('{"lr": "fast"}', "error: Invalid lr='fast': expected a number (float)."),
        ('{"num_epochs": 2.5}', "error: Invalid num_epochs=2.5: expected an integer (int)."),
        (
            '{"model": {"fcnet_hiddens": "big"}}',
            (
                "error: Invalid model.fcnet_hiddens='big': expected a list of "
                "positive integers (layer sizes, e.g. [64, 64])."
            ),
        ),
        (
            '{"rollout_fragment_length": "foo"}',
            "error: Invalid rollout_fragment_length='foo': expected 'auto' or an integer (int).",
        ),
    ],
)
def test_cli_config_json_prints_one_line(tmp_path, capsys, config_json, line):
    rc = main(["train", "--env", "CartPole-v1", "--config", config_json, "--storage-path", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err == line
    assert not any(tmp_path.iterdir())  # failed before anything was written


def test_yaml_experiment_file(tmp_path, capsys):
    spec = tmp_path / "exp.yaml"
    spec.write_text("algo: PPO\nenv: CartPole-v1\nconfig: {lr: 3e-4, num_epochs: 2.5}\nstop: {training_iteration: 1}\n")
    assert main(["train", "-f", str(spec), "--storage-path", str(tmp_path / "runs")]) == 2
    # 3e-4 without a dot is a float (YAML 1.2, as RLlib's files write it; PyYAML alone reads a string)
    assert capsys.readouterr().err.strip().splitlines() == ["error: Invalid num_epochs=2.5: expected an integer (int)."]
    spec.write_text("algo: PPO\nenv: CartPole-v1\nconfig: {lr: '3e-4'}\n")
    assert main(["train", "-f", str(spec), "--storage-path", str(tmp_path / "runs")]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "error: Invalid lr='3e-4': expected a number (float), not a string: write it unquoted."
    )


def test_rlarena_run(tmp_path):
    with pytest.raises(ConfigError, match=r"^Invalid lr='fast': expected a number \(float\)\.$"):
        rlarena.run(cartpole().training(lr="fast"), stop={"training_iteration": 1}, storage_path=tmp_path, verbose=0)
    with pytest.raises(ConfigError, match="Invalid lr='fast'"):  # a sweep's trial values
        rlarena.run(
            cartpole(),
            param_space={"lr": rlarena.grid_search([1e-3, "fast"])},
            stop={"training_iteration": 1},
            storage_path=tmp_path,
            verbose=0,
        )


def test_per_policy_config_overrides_name_the_policy():
    config = (
        PPOConfig()
        .environment(MultiAgentArena, env_config={"width": 4, "height": 4, "ts": 10})
        .env_runners(num_envs_per_env_runner=1)
        .training(**SMALL)
        .multi_agent(
            policies={"p1": PolicySpec(config={"lr": "fast"}), "p2": PolicySpec()},
            policy_mapping_fn=lambda agent_id, episode, **kw: "p1" if agent_id == "agent1" else "p2",
        )
    )
    with pytest.raises(ConfigError) as info:
        config.build()
    assert (
        str(info.value)
        == "Policy 'p1' (its PolicySpec config overrides): Invalid lr='fast': expected a number (float)."
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    algo = cartpole().build()
    try:
        return algo.save(tmp_path_factory.mktemp("ckpt") / "cartpole")
    finally:
        algo.stop()


def edited_copy(checkpoint: str, tmp_path, **config: Any) -> str:
    import shutil

    path = tmp_path / "edited"
    shutil.copytree(checkpoint, path)
    meta = json.loads((path / "rlarena_checkpoint.json").read_text())
    meta["config"].update(config)
    (path / "rlarena_checkpoint.json").write_text(json.dumps(meta))
    return str(path)


def test_a_value_edited_into_a_checkpoint_says_it_came_from_the_checkpoint(checkpoint, tmp_path):
    path = edited_copy(checkpoint, tmp_path, lr="fast")
    with pytest.raises(CheckpointError) as info:
        Algorithm.from_checkpoint(path)
    assert str(info.value) == f"Checkpoint {path!r}: Invalid lr='fast': expected a number (float)."


@pytest.mark.parametrize("command", ["rollout", "evaluate"])
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"lr": "fast"}, "Invalid lr='fast': expected a number (float)."),
        ({"num_epochs": 2.5}, "Invalid num_epochs=2.5: expected an integer (int)."),
        (
            {"model": {"fcnet_hiddens": "big"}},
            "Invalid model.fcnet_hiddens='big': expected a list of positive integers (layer sizes, e.g. [64, 64]).",
        ),
    ],
)
def test_cli_on_an_edited_checkpoint_prints_one_line(checkpoint, tmp_path, capsys, command, edit, message):
    path = edited_copy(checkpoint, tmp_path, **edit)
    assert main([command, path, "--episodes", "1"]) == 2
    assert capsys.readouterr().err.strip() == f"error: Checkpoint {path!r}: {message}"
