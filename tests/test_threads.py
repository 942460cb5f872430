"""num_torch_threads="auto" (the default): one torch thread where a gradient step's matrices are small,
two where they are large (rlarena.algorithms.threads); a number is obeyed; the choice is reported."""

from __future__ import annotations

import pytest
import torch

from rlarena import PPOConfig, SACConfig
from rlarena.algorithms.threads import AUTO_MAX_THREADS, AUTO_THREADS_FLOPS, available_cores, step_flops
from rlarena.errors import ConfigError

TINY = {"train_batch_size": 64, "minibatch_size": 32, "num_epochs": 1}


@pytest.fixture(autouse=True)
def _keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_auto_keeps_small_networks_on_one_thread_and_gives_large_ones_two(build):
    ppo = build(PPOConfig().environment("CartPole-v1"))  # [64, 64] on minibatches of 128
    assert step_flops(ppo) < AUTO_THREADS_FLOPS
    assert ppo.num_torch_threads == 1 and torch.get_num_threads() == 1
    sac = build(SACConfig().environment("Pendulum-v1"))  # [256, 256] actor and twin critics, batches of 256
    assert step_flops(sac) > AUTO_THREADS_FLOPS
    expected = min(available_cores(), AUTO_MAX_THREADS)  # one on a single-core machine
    assert sac.num_torch_threads == expected and torch.get_num_threads() == expected


def test_the_estimate_grows_with_the_network_and_the_batch(build):
    small = build(PPOConfig().environment("CartPole-v1").training(minibatch_size=64))
    wide = build(
        PPOConfig().environment("CartPole-v1").training(minibatch_size=64, model={"fcnet_hiddens": [512, 512]})
    )
    bigger_batch = build(PPOConfig().environment("CartPole-v1").training(minibatch_size=256))
    assert step_flops(wide) > 20 * step_flops(small)
    assert step_flops(bigger_batch) == pytest.approx(4 * step_flops(small))


def test_a_number_is_obeyed_and_sampling_beside_the_learner_keeps_one(build):
    sac = build(SACConfig().environment("Pendulum-v1").resources(num_torch_threads=1))
    assert sac.num_torch_threads == 1 and torch.get_num_threads() == 1
    ppo = build(PPOConfig().environment("CartPole-v1").training(**TINY).resources(num_torch_threads=2))
    assert ppo.num_torch_threads == 2 and ppo.train()["num_torch_threads"] == 2  # reported in every result
    wide = PPOConfig().environment("CartPole-v1").training(model={"fcnet_hiddens": [1024, 1024]}, minibatch_size=512)
    assert build(wide).num_torch_threads == min(available_cores(), AUTO_MAX_THREADS)
    assert build(wide.env_runners(sample_async=True)).num_torch_threads == 1  # the sampler has the other core


@pytest.mark.parametrize("value", [0, "many", 2.5, True])
def test_a_wrong_thread_count_is_refused_in_one_line(value):
    with pytest.raises(ConfigError, match=r"num_torch_threads=.*(\"auto\" or from 1 to|expected an integer)") as info:
        PPOConfig().environment("CartPole-v1").resources(num_torch_threads=value).build()
    assert "\n" not in str(info.value)
