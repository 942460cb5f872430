"""Anyscale's RLlib notebook 01 ("Introduction to OpenAI Gym and RLlib"), ported cell by cell.

Gym's FrozenLake and CartPole, check_env, a random baseline, PPOConfig, a Tune run with stop
criteria and checkpoints, the results as a dataframe, TensorBoard, restoring from a checkpoint,
compute_single_action and a video; the exercise (PPO -> DQN) at the end. The imports changed
(ray -> rlarena, gym -> gymnasium); every other change has a comment saying why.

    python examples/rllib_notebook_cartpole.py         # under a minute: the 60,000-episode baseline, PPO to 400
    RLARENA_EXAMPLE_QUICK=1 python examples/...        # the test suite's smoke run: a few iterations

It writes my_PPO_logs/ and videos/ into the current directory, as the notebook does.
"""

import os

# The test suite runs this file with RLARENA_EXAMPLE_QUICK=1: a shorter baseline and a few
# training iterations instead of training to a mean return of 400 (about 10 s here).
QUICK = os.environ.get("RLARENA_EXAMPLE_QUICK") == "1"

# In [1]:
# import libraries
import gymnasium as gym  # was: import gym. Gymnasium is gym's maintained successor, the API rlarena uses

print(f"gym: {gym.__version__}")

# List all available gym environments
# (gym 0.21's registry.all() is gone: Gymnasium's registry is a dict of id -> EnvSpec)
all_env = list(gym.envs.registry.values())
print(f'Num Gym Environments: {len(all_env)}')

# You could loop through and list all environments if you wanted
# [print(e) for e in all_env]
# (str() of a Gymnasium EnvSpec lists all its fields, so the id is matched instead)
envs_starting_with_f = [e for e in all_env if e.id.startswith("Frozen")]
print(envs_starting_with_f)  # a notebook shows a cell's last value; a script prints it

# In [2]:
env_name = "FrozenLake-v1"

# Instantiate gym env object with a runtime parameter value (is_slippery).
# is_slippery specifies if the environment is deterministic or stochastic
env = gym.make(
    env_name,
    is_slippery=False,  # whether the grid-world behaves deterministically or not
    render_mode="ansi",  # Gymnasium fixes the render mode at make(); "ansi": render() returns the map as text
)

# inspect the gym spec for the environment
print(f"env: {env}")
env_spec = env.spec
print(f"env_spec: {env_spec}")

# Note: "TimeLimit" means termination condition for an episode will be time steps

# In [3]:
# check if it is a gym instance
if isinstance(env, gym.Env):
    print("This is a gym environment.")
    print()

    # print gym Spaces
    if isinstance(env.action_space, gym.spaces.Space):
        print(f"gym action space: {env.action_space}")
    if isinstance(env.observation_space, gym.spaces.Space):
        print(f"gym observation space: {env.observation_space}")

# Note: the action space is discrete with 4 possible actions.
# Note: the observation space is 4x4 and thus runs from 0 to 15.

# In [4]:
# inspect env.spec parameters

# View default env spec params that are hard-coded in Gym code itself
# Default parameters are fixed
print("Default spec params...")
print(f"id: {env_spec.id}")
# rewards above this value considered "success"
print(f"reward_threshold: {env_spec.reward_threshold}")
# env is deterministic or stochastic
print(f"nondeterministic: {env_spec.nondeterministic}")
# number of time steps per episode
print(f"max_episode_steps: {env_spec.max_episode_steps}")
# must reset before step or render
print(f"order_enforce: {env_spec.order_enforce}")

# View runtime **kwargs .spec params.  These params set after env instantiated.
print()
print("Runtime spec params...")
[print(f"{k}: {v}") for k, v in env_spec.kwargs.items()]  # gym 0.21's private _kwargs is Gymnasium's kwargs
print()

# Note:  We can tell that our frozen lake environment is:
# 1) Success criteria is rewards >= 0.7
# 2) Deterministic
# 3) Episode terminates when number time_steps = 100

# In [5]:
# Print the starting observation.
# Recall possible observations are between 4x4 grid.
print(env.reset())  # Gymnasium's reset() returns (observation, info)
print(env.render())  # an "ansi" env returns its text instead of printing it

# In [6]:
# Take an action
# Recall the possible actions are: 0: LEFT, 1: DOWN, 2: RIGHT, 3: UP

# Gymnasium's step() returns 5 values: gym's `done` is split into terminated (the episode ended in
# the env: a hole, the goal) and truncated (the time limit)
new_obs, reward, terminated, truncated, _ = env.step(2)  # Right
done = terminated or truncated
print(f"obs: {new_obs}, reward: {reward}, done: {done}")
print(env.render())
new_obs, reward, terminated, truncated, _ = env.step(1)  # Down
done = terminated or truncated
print(f"obs: {new_obs}, reward: {reward}, done: {done}")
print(env.render())

# In [7]:
# Comment this cell if you want whole notebook to run without errors

# Try to take an invalid action

# env.step(4) # invalid

# should see KeyError below

# In [8]:
# The notebook renders each frame in place with ipywidgets' Output, pausing 0.3 s per frame; a
# terminal prints the frames one after another, so those display lines and the pause are dropped.

# Putting the simple API methods together.
# Here is a pattern for running a bunch of episodes.
num_episodes = 5  # Number of episodes you want to run the agent
total_reward = 0.0  # Initialize reward to 0

# Loop through episodes
for ep in range(num_episodes):

    # Reset the environment at the start of each episode
    obs, info = env.reset()  # Gymnasium: (observation, info)
    done = False

    # Loop through time steps per episode
    while True:
        # take random action, but you can also do something more intelligent
        action = env.action_space.sample()

        # apply the action
        new_obs, reward, terminated, truncated, info = env.step(action)  # Gymnasium: 5 values
        done = terminated or truncated
        total_reward += reward

        # If the epsiode is up, then start another one
        if done:
            break

        # Render the env
        print(f"episode: {ep}")
        print(f"obs: {new_obs}, reward: {total_reward}, done: {done}")
        print(env.render())

# Close the env
env.close()

# In [9]:
# import libraries
import rlarena  # was: import ray. rlarena trains in this process: there is no ray.init()
from rlarena import tune  # was: from ray import tune
from rlarena.tune.logger import pretty_print  # was: from ray.tune.logger import pretty_print

print(f"rlarena: {rlarena.__version__}")

# In [10]:
# Instantiate gym env object with a runtime parameter value
env = gym.make("CartPole-v1")

# inspect the gym spec for the environment
print(f"env: {env}")
env_spec = env.spec
print(f"env_spec: {env_spec}")

# inspect gym env.spec parameters
print()
print("Environment parameters...")
print(pretty_print(vars(env_spec)))

# Note: "TimeLimit" means termination condition for an episode will be time steps
# Note:  We can tell that our CartPole environment is:
# 1) Success criteria is rewards >= 475
# 2) Deterministic
# 3) Episode terminates when number time_steps = 500

# In [11]:
from rlarena import check_env  # was: from ray.rllib.utils.pre_checks.env import check_env

# How to check you do not have any environment errors
print("checking environment ...")
try:
    check_env(env)
    print("All checks passed. No errors found.")
except:  # noqa: E722 - the notebook's own bare except
    print("failed")

# In [12]:
# Putting the simple API methods together.
# Here is a pattern for running a bunch of episodes.
num_episodes = 300 if QUICK else 60000  # Number of episodes you want to run the agent
total_reward = 0.0  # Initialize reward to 0

# Loop through episodes
for ep in range(num_episodes):

    # Reset the environment at the start of each episode
    obs, info = env.reset()  # Gymnasium: (observation, info)
    done = False

    # Loop through time steps per episode
    while True:
        # take random action, but you can also do something more intelligent
        action = env.action_space.sample()

        # apply the action
        new_obs, reward, terminated, truncated, info = env.step(action)  # Gymnasium: 5 values
        done = terminated or truncated
        total_reward += reward

        # If the epsiode is up, then start another one
        if done:
            break

# calculate mean_reward
print()
print("**************")
mean_reward = total_reward / num_episodes
print(f"Baseline mean_reward: {mean_reward:.2f} out of success: {env_spec.reward_threshold} "
      f"after {num_episodes} episodes")
print("**************")

# Close the env
env.close()

# In [13]:
# config is an object instead of a dictionary since Ray version >= 1.13
from rlarena import PPOConfig  # noqa: I001 - was: from ray.rllib.algorithms.ppo import PPOConfig (cells import apart)

# In [14]:
# Common RLlib General config (for all algorithms)

from rlarena import AlgorithmConfig  # was: from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

config = AlgorithmConfig()

# # uncomment below to see the long list of RLlib general config values
# print(f"RLlib's general default training config values:")
# print(pretty_print(config.to_dict()))

# In [15]:
# uncomment below to see the long list of specifically PPO default config values
# print(pretty_print(PPOConfig().to_dict()))

# Define algorithm config values
env_name = "CartPole-v1"
evaluation_interval = 2  # 100, num training episodes to run between eval steps
evaluation_duration = 20  # 100, num eval episodes to run for the eval step
num_workers = 4  # +1 for head node, num parallel workers or actors for rollouts
num_gpus = 0  # num gpus to use in the cluster
num_envs_per_worker = 1  # 1, no vectorization of environments to run at same time

# Define trainer runtime config values
checkpoint_freq = evaluation_interval  # freq save checkpoints >= evaulation_interval
checkpoint_at_end = True  # always save last checkpoint
relative_checkpoint_dir = "my_PPO_logs"  # redirect logs instead of ~/ray_results/
random_seed = 415
# Set the log level to DEBUG, INFO, WARN, or ERROR
log_level = "ERROR"

# Create a new training config
# override certain default algorithm config values
# (rlarena accepts RLlib's framework, num_rollout_workers, num_gpus, disable_env_checking and
# log_level; where one has no effect here, a one-line notice says so)
config_PPO = (
    PPOConfig()
    .framework(framework='torch')
    .environment(env=env_name, disable_env_checking=False)
    .rollouts(num_rollout_workers=num_workers, num_envs_per_worker=num_envs_per_worker)
    .resources(num_gpus=num_gpus, )
    # .training(gamma=0.9, lr=0.01, kl_coeff=0.3)  # do not override defaults
    .evaluation(evaluation_interval=evaluation_interval,
                evaluation_duration=evaluation_duration)
    .debugging(seed=random_seed, log_level=log_level)
)

print(type(config_PPO))

# In [20]:
# Create a PPOConfig object (same as we did in the previous notebook):
config_PPO = PPOConfig()

# Setup our config object the exact same way as before:
# Point to our MultiAgentArena env:
config_PPO.environment(env="CartPole-v1",
                       disable_env_checking=False)

# Reduce the number of workers from 2 (default) to 1
# to save some resources on the expensive hyperparameter sweep.
# IMPORTANT: More information on resource requirements for tune hyperparameter
#            and different RLlib algorithm setups below
config_PPO.rollouts(num_rollout_workers=1)

# Set up evaluation:
config_PPO.evaluation(
    # Run evaluation once per `train()` call.
    evaluation_interval=2,
    # Use separate resources (RLlib rollout workers).
    evaluation_num_workers=2,
    # Run 20 episodes per evaluation (per iteration)
    # -> 10 per eval worker (we have 2 eval workers).
    evaluation_duration=20,
    evaluation_duration_unit="timesteps",
    # # Run evaluation alternatingly with training (not in parallel).
    # evaluation_parallel_to_training=False,
)

config_PPO.evaluation(evaluation_interval=evaluation_interval,
                      evaluation_duration=evaluation_duration)

# Set the log level to DEBUG, INFO, WARN, or ERROR
config_PPO.debugging(seed=415, log_level="ERROR")

# In [16] (all commented out in the notebook): training with the RLlib API instead of Tune, i.e.
# ppo_algo = config_PPO.build(), then result = ppo_algo.train() in a loop printing
# result['episode_reward_mean'], then ppo_algo.stop(). examples/quickstart_cartpole.py runs that loop.

# In [22]:
experiment_results = tune.run("PPO",

    # training config params
    config = config_PPO.to_dict(),

    # Stopping criteria whichever occurs first: average reward over training episodes, or ...
    stop={"episode_reward_mean": 400,  # stop if achieve 400 out of max 500
          # "training_iteration": 200,  # stop if achieved 200 episodes
          # "timesteps_total": 100000,  # stop if achieved 100,000 timesteps
          **({"training_iteration": 4} if QUICK else {}),  # the test suite's smoke run
          },

    #redirect logs instead of default ~/ray_results/
    local_dir = relative_checkpoint_dir, #relative path

    # set frequency saving checkpoints >= evaulation_interval
    checkpoint_freq = 2,
    checkpoint_at_end=True,

    # Reduce logging messages
    ###############
    # Note about Ray Tune verbosity.
    # Screen verbosity in Ray Tune is defined as verbose = 0, 1, 2, or 3, where:
    # 0 = silent
    # 1 = only status updates, no logging messages
    # 2 = status and brief trial results, includes logging messages
    # 3 = status and detailed trial results, includes logging messages
    # Defaults to 3.
    ###############
    verbose = 2,

    # Define what we are comparing for, when we search for the
    # "best" checkpoint at the end.
    metric="episode_reward_mean",
    mode="max",

    )

print("Training completed.")

# In [ ]:
# Get RLlib default stats
stats = experiment_results.stats()
secs = stats["timestamp"] - stats["start_time"]
print(f'{secs:7.2f} seconds, {secs/60.0:7.2f} minutes')

# Typically takes about 67 seconds

# In [ ]:
# Read Tune experiment results in a pandas dataframe
df = experiment_results.results_df

print(f"df.shape: {df.shape}")  #Only 1 trial
print(f"df.columns: {df.columns}")
print(df.iloc[:,0:8].head())  # a notebook shows a cell's last value; a script prints it

# In [ ]:
# Get number of episodes for the 1st trial
print(df.iloc[0,:].episodes_this_iter)

# Answer is 8 episodes

# In [ ]:
# Watch out, the following output is long because there are many parameters!

# experiment_results.get_best_config(metric="episode_reward_mean", mode="mean")

# Visualize the training progress in TensorBoard (the notebook's instructions, as a command):
print(f"TensorBoard: tensorboard --logdir {relative_checkpoint_dir}")

# In [ ]:
# Get best checkpoint path
# (as in Ray, "evaluation_reward_mean" is not a result key, so this prints None, with a notice
# naming the key meant: evaluation/episode_reward_mean)
logdir = experiment_results.get_best_logdir(metric="evaluation_reward_mean", mode="max")
print(logdir)

# Get last checkpoint path
checkpoint = experiment_results.get_last_checkpoint()
print(f"\n{checkpoint}")

# In [ ]:
# Create new Algorithm and restore its state from the last checkpoint.

# create an empty Algorithm
algo = config_PPO.build(env=env_name)

# restore the agent from the checkpoint
algo.restore(checkpoint)

# In [ ]:
from gymnasium.wrappers import RecordVideo  # was: from gym.wrappers import RecordVideo

#############
## Create the env to do inference on
#############
# Try this first to make sure it is working
# env = gym.make(env_name)
# Once you have confirmed it works, wrap the method
# RecordVideo() takes as input a path name where to store the video
# RecordVideo() includes its own render step, records, and saves the video.
# (Gymnasium renders frames only for an env made with render_mode="rgb_array", and its RecordVideo
# writes them with moviepy. Without moviepy the same episode is played unrecorded, and rlarena's own
# recorder, which `rlarena rollout CHECKPOINT --video videos` uses, records one afterwards.)
try:
    env = RecordVideo(gym.make(env_name, render_mode="rgb_array"), "videos", )
except gym.error.DependencyNotInstalled as exc:
    print(f"RecordVideo unavailable ({exc}); recording with rlarena instead.")
    env = gym.make(env_name)
obs, info = env.reset()  # Gymnasium: (observation, info)

#############
## Use the restored model and run it in inference mode
## You will see a pop-up video rendering for about 10 seconds
#############
num_episodes_during_inference = 1
num_episodes = 0
episode_reward = 0.0
done = False

while num_episodes < num_episodes_during_inference:
    # Compute an action (`a`).
    a = algo.compute_single_action(observation=obs)
    # Send the computed action `a` to the env.
    obs, reward, terminated, truncated, _ = env.step(a)  # Gymnasium: 5 values
    done = terminated or truncated
    episode_reward += reward

    # Is the episode `done`? -> Reset.
    if done:
        print(f"Episode done: reward = {episode_reward}")
        obs, info = env.reset()
        num_episodes += 1
        episode_reward = 0.0
        break

env.close()

if not isinstance(env, RecordVideo):
    from rlarena.rollout.episodes import record_video

    os.makedirs("videos", exist_ok=True)  # RecordVideo makes its folder itself; record_video does not
    cart_pole_video, episode = record_video(algo, "videos/rl-video-episode-0")
    print(f"Recorded episode: reward = {episode.episode_return}")

# The restored agent manages to achieve a perfect score during the 1 episode rollout.

# In [ ]:
# Show a video player in the notebook, and play the video you just recorded!
# (IPython's Video player is notebook-only: a script says where the file is.)
if isinstance(env, RecordVideo):
    cart_pole_video = 'videos/rl-video-episode-0.mp4'
print(f"video: {cart_pole_video}")

# In [ ]:
# Shut down Ray if you are done
# (there is no Ray to shut down: rlarena trained in this process)
algo.stop()

# Exercise 1: How would you choose another algorithm to train Cart Pole? ... How would you change
# the choice of RLlib algorithm from PPO to DQN?
# In RLlib: tune.run("DQN", config=DQNConfig()...to_dict(), ...); rlarena's DQN takes the same names.
# One iteration here (RLlib's DQN samples 1000 env steps per iteration); its logs go beside PPO's.
dqn_results = tune.run("DQN", config={"env": "CartPole-v1"}, stop={"training_iteration": 1}, local_dir="my_DQN_logs")
dqn_df = dqn_results.dataframe()
print(f"Exercise (PPO -> DQN): DQN trained {int(dqn_df['timesteps_total'].iloc[-1])} env steps "
      f"(episode_reward_mean {dqn_df['episode_reward_mean'].iloc[-1]:.1f})")
