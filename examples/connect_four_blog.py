"""The Connect Four blog's self-play training script, ported to rlarena.

"Reinforcement Learning with Ray and Connect Four" (ClementBM, 2023; ../shared/seeds/000_*.txt and
its code at huggingface.co/spaces/ClementBM/connectfour): PettingZoo's connect_four_v3, PPO with an
action-mask model, heuristic opponents written as RLlib policies, a SelfPlayCallback that grows a
league of frozen copies of the learner with algorithm.add_policy(), a Tune run with checkpoints,
then Algorithm.from_checkpoint() and an ONNX export of the "learned" policy.

Read it beside the blog: the code is the blog's; the imports changed, and every other change
carries a comment saying why. The pieces the post leaves out (HeuristicBase, the other three
heuristics, select_policy, the callback's __init__) are written the way its repository writes them,
reconstructed here, not copied: the repository is not part of this project.

    python examples/connect_four_blog.py                               # the blog's run (long)
    python examples/connect_four_blog.py --stop-iters 3 --win-rate-threshold -1 --opponent-count 5
        # a few seconds: the league grows every iteration and its oldest member leaves
"""

import argparse
import random
from collections import deque
from pathlib import Path

import numpy as np
import torch
from pettingzoo.classic import connect_four_v3
from torch import nn

# RLlib: from ray import air, tune; from ray.rllib.algorithms import ppo; from
# ray.rllib.algorithms.algorithm import Algorithm; from ray.rllib.algorithms.callbacks import
# DefaultCallbacks; from ray.rllib.policy.policy import Policy, PolicySpec; from ray.tune.registry
# import register_env
from rlarena import Algorithm, Policy, PolicySpec, air, register_env, tune
from rlarena import Callbacks as DefaultCallbacks
from rlarena.algorithms import ppo

# RLlib: from ray.rllib.models.torch.fcnet import FullyConnectedNetwork as TorchFC; from
# ray.rllib.models.torch.torch_modelv2 import TorchModelV2; from ray.rllib.utils.torch_utils import FLOAT_MIN
from rlarena.models import FLOAT_MIN, TorchFC, TorchModelV2

parser = argparse.ArgumentParser()
parser.add_argument("--win-rate-threshold", type=float, default=0.95,
                    help="win rate of 'learned' over the current mix above which the league grows")
parser.add_argument("--opponent-count", type=int, default=15,
                    help="the most opponents kept in the league (the blog's 15); the oldest leaves first")
parser.add_argument("--stop-iters", type=int, default=200)
parser.add_argument("--stop-timesteps", type=int, default=10_000_000)
parser.add_argument("--storage-path", default="runs", help="where the Tune-style run writes its trial")
args = parser.parse_args()


# -- RLlib wrapper around PettingZoo Connect Four ------------------------------------------------
# define how to make the environment
env_creator = lambda config: connect_four_v3.env(render_mode="rgb_array")

# register the environment under an rllib name
# The blog wrapped the env in `Connect4Env(PettingZooEnv)`, a subclass that fixed RLlib's PettingZooEnv
# for PettingZoo >= 1.22 (its reset() and render() calls). rlarena adapts PettingZoo AEC envs itself
# (the agent to move gets its observation, with the action mask), so the env is registered as it is.
register_env("connect4", lambda config: env_creator(config))


# -- RLlib Action Mask ----------------------------------------------------------------------------
# rlarena hands a custom model the observation as RLlib does: input_dict["obs"] is the Dict, its
# "action_mask" included, with a batch axis (rlarena.nn.custom).
class Connect4MaskModel(TorchModelV2, nn.Module):
    def __init__(
        self,
        obs_space,
        action_space,
        num_outputs,
        model_config,
        name,
        **kwargs,
    ):
        orig_space = getattr(obs_space, "original_space", obs_space)

        TorchModelV2.__init__(
            self, obs_space, action_space, num_outputs, model_config, name, **kwargs
        )
        nn.Module.__init__(self)

        self.internal_model = TorchFC(
            orig_space["observation"],
            action_space,
            num_outputs,
            model_config,
            name + "_internal",
        )

    def forward(self, input_dict, state, seq_lens):
        # Extract the available actions tensor from the observation.
        action_mask = input_dict["obs"]["action_mask"]

        # Compute the unmasked logits.
        logits, _ = self.internal_model({"obs": input_dict["obs"]["observation"]})

        # Convert action_mask into a [0.0 || -inf]-type mask.
        inf_mask = torch.clamp(torch.log(action_mask), min=FLOAT_MIN)
        masked_logits = logits + inf_mask

        # Return masked logits.
        return masked_logits, state

    def value_function(self):
        return self.internal_model.value_function()


# -- Opponents (the blog shows AlwaysSameHeuristic; the rest are from its repository) -------------
class HeuristicBase(Policy):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # RLlib: self.exploration = self._create_exploration(). Dropped: an rlarena Policy has no
        # exploration object, and a heuristic does not need one.

    def learn_on_batch(self, samples):
        pass

    def get_weights(self):
        """No weights to save."""
        return {}

    def set_weights(self, weights):
        """No weights to set."""

    def compute_actions(self, obs_batch, state_batches=None, prev_action_batch=None, prev_reward_batch=None,
                        info_batch=None, episodes=None, **kwargs):
        # RLlib flattened Dict observations, so the blog rebuilt them with
        # restore_original_dimensions(np.array(obs_batch, dtype=np.float32), self.observation_space,
        # tensorlib=np); rlarena hands the policy the dict of batches itself.
        return self._do_compute_actions(obs_batch)

    def pick_legal_action(self, legal_action):
        legal_choices = np.arange(len(legal_action))[legal_action == 1]
        return np.random.choice(legal_choices)


class AlwaysSameHeuristic(HeuristicBase):
    """
    Pick a random move and stick with it for the entire episode.
    """
    _rand_choice = random.choice(range(7))

    def _do_compute_actions(self, obs_batch):
        def select_action(legal_action):
            legal_choices = np.arange(len(legal_action))[legal_action == 1]

            if self._rand_choice not in legal_choices:
                self._rand_choice = np.random.choice(legal_choices)

            return self._rand_choice
        return [select_action(x) for x in obs_batch["action_mask"]], [], {}


class LinearHeuristic(HeuristicBase):
    """
    Pick a random move and then play the next column, in one direction, while it is legal.
    """
    _rand_choice = random.choice(range(7))
    _rand_sign = np.random.choice([-1, 1])

    def _do_compute_actions(self, obs_batch):
        def select_action(legal_action):
            legal_choices = np.arange(len(legal_action))[legal_action == 1]

            self._rand_choice += 1 * self._rand_sign

            if self._rand_choice not in legal_choices:
                self._rand_choice = np.random.choice(legal_choices)

            return self._rand_choice

        return [select_action(x) for x in obs_batch["action_mask"]], [], {}


class BeatLastHeuristic(HeuristicBase):
    """
    Play in the column where the opponent has more pieces than we do.
    """

    def _do_compute_actions(self, obs_batch):
        def select_action(legal_action, observation):
            legal_choices = np.arange(len(legal_action))[legal_action == 1]

            obs_sums = np.sum(observation, axis=0)

            desired_actions = np.squeeze(np.argwhere(obs_sums[:, 0] < obs_sums[:, 1]))
            if desired_actions.size == 0:
                return np.random.choice(legal_choices)

            if desired_actions.size == 1:
                desired_action = desired_actions[()]
            else:
                desired_action = np.random.choice(desired_actions)
            if desired_action in legal_choices:
                return desired_action

            return np.random.choice(legal_choices)

        return [select_action(x, y) for x, y in zip(obs_batch["action_mask"], obs_batch["observation"])], [], {}


class RandomHeuristic(HeuristicBase):
    def _do_compute_actions(self, obs_batch):
        return [self.pick_legal_action(x) for x in obs_batch["action_mask"]], [], {}


# -- Playing against old versions of itself, with the help of a callback ---------------------------
def create_self_play_callback(win_rate_thr, opponent_policies, opponent_count=10):
    class SelfPlayCallback(DefaultCallbacks):
        win_rate_threshold = win_rate_thr

        def __init__(self):
            super().__init__()
            self.current_opponent = 0
            self.opponent_policies = deque(opponent_policies, maxlen=opponent_count)
            self.policy_to_remove = None
            self.frozen_policies = {
                "always_same": AlwaysSameHeuristic,
                "linear": LinearHeuristic,
                "beat_last": BeatLastHeuristic,
                "random": RandomHeuristic,
            }

        def on_train_result(self, *, algorithm, result, **kwargs):
            """Called at the end of Algorithm.train().

            Args:
                algorithm: Current Algorithm instance.
                result: Dict of results returned from Algorithm.train() call.
                    You can mutate this object to add additional metrics.
                kwargs: Forward compatibility placeholder.
            """
            main_rew = result["hist_stats"].pop("policy_learned_reward")
            opponent_rew = result["hist_stats"].pop("episode_reward")

            won = 0
            for r_main, r_opponent in zip(main_rew, opponent_rew):
                if r_main > r_opponent:
                    won += 1
            win_rate = won / len(main_rew)

            result["win_rate"] = win_rate
            print(f"Iter={algorithm.iteration} win-rate={win_rate}")

            if win_rate > self.win_rate_threshold:
                if len(self.opponent_policies) == self.opponent_policies.maxlen:
                    self.policy_to_remove = self.opponent_policies[0]

                new_pol_id = None
                while new_pol_id is None:
                    if np.random.choice(range(6)) == 0:
                        new_pol_id = np.random.choice(list(self.frozen_policies.keys()))
                    else:
                        self.current_opponent += 1
                        new_pol_id = f"learned_v{self.current_opponent}"

                    if new_pol_id in self.opponent_policies:
                        new_pol_id = None
                    else:
                        self.opponent_policies.append(new_pol_id)

                print("Non trainable policies", list(self.opponent_policies))

                def policy_mapping_fn(agent_id, episode, worker, **kwargs):
                    return (
                        "learned"
                        if episode.episode_id % 2 == int(agent_id[-1:])
                        else np.random.choice(list(self.opponent_policies))
                    )

                print(
                    f"Iter={algorithm.iteration} Adding new opponent to the mix ({new_pol_id}). League size {len(self.opponent_policies) + 1}"
                )

                if new_pol_id in list(self.frozen_policies.keys()):
                    new_policy = algorithm.add_policy(
                        policy_id=new_pol_id,
                        policy_cls=self.frozen_policies[new_pol_id],
                        policy_mapping_fn=policy_mapping_fn,
                    )
                else:
                    new_policy = algorithm.add_policy(
                        policy_id=new_pol_id,
                        policy_cls=type(algorithm.get_policy("learned")),
                        policy_mapping_fn=policy_mapping_fn,
                    )
                    learned_state = algorithm.get_policy("learned").get_state()
                    new_policy.set_state(learned_state)
                algorithm.workers.sync_weights()

            else:
                print("Not good enough... Keep learning ...")

            result["league_size"] = len(self.opponent_policies) + 1

        def on_evaluate_end(self, *, algorithm, evaluation_metrics, **kwargs):
            """Runs when the evaluation is done.

            Runs at the end of Algorithm.evaluate().

            Args:
                algorithm: Reference to the algorithm instance.
                evaluation_metrics: Results dict to be returned from algorithm.evaluate().
                    You can mutate this object to add additional metrics.
                kwargs: Forward compatibility placeholder.
            """

            def policy_mapping_fn(agent_id, episode, worker, **kwargs):
                return (
                    "learned"
                    if episode.episode_id % 2 == int(agent_id[-1:])
                    else np.random.choice(list(self.opponent_policies))
                )

            if self.policy_to_remove is not None:
                print("Remove ", self.policy_to_remove, "from opponent policies")
                algorithm.remove_policy(
                    self.policy_to_remove,
                    policy_mapping_fn=policy_mapping_fn,
                )
                self.policy_to_remove = None
                algorithm.workers.sync_weights()

    return SelfPlayCallback


def select_policy(agent_id, episode, **kwargs):
    if episode.episode_id % 2 == int(agent_id[-1:]):
        return "learned"
    return random.choice(["always_same", "beat_last", "random", "linear"])


# -- RLlib Training Loop -------------------------------------------------------------------------
config = (
    (
        ppo.PPOConfig()
        .environment("connect4")
        .framework("torch")
        .training(model={"custom_model": Connect4MaskModel})
    )
    .multi_agent(
        policies={
            "learned": PolicySpec(),
            "always_same": PolicySpec(policy_class=AlwaysSameHeuristic),
            "linear": PolicySpec(policy_class=LinearHeuristic),
            "beat_last": PolicySpec(policy_class=BeatLastHeuristic),
            "random": PolicySpec(policy_class=RandomHeuristic),
        },
        policy_mapping_fn=select_policy,
        policies_to_train=["learned"],
    )
    .callbacks(
        create_self_play_callback(
            win_rate_thr=args.win_rate_threshold,
            opponent_policies=["always_same", "beat_last", "random", "linear"],
            opponent_count=args.opponent_count,
        )
    )
    .evaluation(evaluation_interval=1)
)

# The blog's Tuner call, with two changes. Its cell had no stop criteria (so it trained until
# interrupted); RLlib's self-play example passes them in run_config=air.RunConfig(stop=...), and so
# does this port, with the directory to write to. And it passes the config itself, not
# config.to_dict(): Ray pickled the dict's callback class and functions, while rlarena's to_dict()
# names them as text, which a class made inside create_self_play_callback() cannot be.
results = tune.Tuner(
    "PPO",
    param_space=config,
    run_config=air.RunConfig(
        stop={"training_iteration": args.stop_iters, "timesteps_total": args.stop_timesteps},
        storage_path=args.storage_path,
        name="connect4_blog",
    ),
    checkpoint_config=air.CheckpointConfig(
        num_to_keep=10,
        checkpoint_at_end=True,
        checkpoint_frequency=10,
        checkpoint_score_order="max",
    )
).fit()
best_result = results.get_best_result(metric="win_rate", mode="max")
print("best result: win_rate", best_result.metrics["win_rate"], "league_size", best_result.metrics["league_size"])

# -- Export policy model as ONNX ------------------------------------------------------------------
config.evaluation(evaluation_interval=None)

# RLlib pickled the callback class and the mapping function into the checkpoint. rlarena never
# unpickles (a checkpoint is data), and these two are defined inside functions, so they cannot be
# named in the file: they are passed again (README, "Opening files from others").
# The blog loads `analysis.best_checkpoint`, a name its post never defines: the best result's
# checkpoint is meant.
algo = Algorithm.from_checkpoint(
    best_result.checkpoint,
    config_overrides={"policy_mapping_fn": select_policy, "callbacks_class": config.callbacks_class},
)
ppo_policy = algo.get_policy("learned")
# RLlib: ppo_policy.export_model("models", onnx=11) writes models/model.onnx; rlarena exports from the
# algorithm (opset 20), with the mask inside the graph. Connect4MaskModel reads the whole observation,
# so the graph's input is it packed in one row (the mask, then the board: rlarena.export.onnx), which
# rlarena.export.onnx.OnnxPolicy builds from the env's observation for onnxruntime.
onnx_path = algo.export_onnx(Path(args.storage_path) / "models" / "model.onnx", policy_id="learned")
print("exported", onnx_path, "| policies:", ", ".join(algo.policies))
algo.stop()
