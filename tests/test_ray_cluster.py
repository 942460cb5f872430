"""Remote env runners on a multi-node Ray cluster (issue 13): simulated nodes on this machine
(ray.cluster_utils.Cluster), every one bound to 127.0.0.1 (checked: the nodes' addresses and every
socket the cluster's processes listen on). The head has no CPU, so the runners land on
the worker nodes; each worker node has one CPU, so two runners take one node each. PPO trains with
the runners there; a node that goes away takes its runner with it: without fault tolerance train()
raises an EnvError naming the runner, with restart_failed_env_runners the iteration completes with
the other runner's fragment and the runner comes back, same worker index, on a node with room."""

import ipaddress
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

ray = pytest.importorskip("ray")

from ray._private import ray_constants
from ray.cluster_utils import Cluster

from rlarena import PPOConfig
from rlarena.envs.registry import EnvContext
from rlarena.errors import EnvError, RLArenaNotice

# simulated nodes are a Linux feature of Ray's (cluster_utils), and the sockets are read from Linux's /proc
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Ray's simulated clusters: Linux")

# Ray's workers cannot import this test module: its classes travel by value, as a script's do
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

TINY = {"train_batch_size": 64, "minibatch_size": 32, "num_epochs": 1, "model": {"fcnet_hiddens": [16]}}
NODE_NUMBER = "rlarena_test_node"  # a custom resource: worker node k declares {NODE_NUMBER: k}; the head none
LOOPBACK = {"node_ip_address": "127.0.0.1"}


class ClusterNodes:
    """The cluster and its worker nodes by number (1, 2, ...: never reused, so a fragment's node
    number says which node it came from)."""

    def __init__(self, cluster: Cluster):
        self.cluster, self.nodes, self.count = cluster, {}, 0

    def add(self) -> int:
        """A worker node with one CPU; its number."""
        self.count += 1
        self.nodes[self.count] = self.cluster.add_node(**LOOPBACK, num_cpus=1, resources={NODE_NUMBER: self.count})
        return self.count

    def remove(self, number: int) -> None:
        """The node goes away: its raylet and workers (the runner on it) are killed."""
        self.cluster.remove_node(self.nodes.pop(number))


@pytest.fixture(scope="module")
def cluster():
    if ray.is_initialized():  # another module's Ray: this module's driver joins the cluster instead
        ray.shutdown()
    # Ray binds to loopback only where it believes clusters are unsupported (rlarena.rollout.ray_cluster.ray_init);
    # without this, ray.init(address="127.0.0.1:port") is resolved to the machine's address, where nothing
    # listens, and hangs. The variable must be set before the nodes start: their processes inherit it.
    # RAY_TMPDIR: the cluster writes its address to <tmp>/ray/ray_current_cluster, which a plain ray.init()
    # in any process on this machine would join; a directory of our own keeps other test runs out.
    saved_env = {k: os.environ.get(k) for k in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_TMPDIR")}
    saved_constant = ray_constants.ENABLE_RAY_CLUSTER
    tmp = tempfile.mkdtemp(prefix="rlc")  # short: Ray's socket paths live below it
    os.environ.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_TMPDIR=tmp)
    ray_constants.ENABLE_RAY_CLUSTER = False  # read when ray was imported, before the variable was set
    head = Cluster(initialize_head=True, head_node_args={**LOOPBACK, "num_cpus": 0, "include_dashboard": False})
    try:
        yield ClusterNodes(head)
    finally:
        ray.shutdown()  # the next module starts its own Ray
        head.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
        ray_constants.ENABLE_RAY_CLUSTER = saved_constant
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def nodes(cluster):
    """Two fresh worker nodes (numbers returned); every worker node is removed after the test."""
    yield cluster, cluster.add(), cluster.add()
    for number in list(cluster.nodes):
        cluster.remove(number)


class WhereCartPole(gym.Env):
    """CartPole whose observation ends with (worker_index, node number): which runner stepped it, on
    which node (the driver's env, worker 0, says node -1). The node number is the node's amount of the
    custom resource env_config["resource"] (an env class gets its EnvContext only when env_config has a
    key: `env(cfg) if cfg else env()` in rlarena.envs.registry)."""

    def __init__(self, config: EnvContext):
        self.env = gym.make("CartPole-v1")
        number = -1
        if config.remote:
            node_id = ray.get_runtime_context().get_node_id()
            number = next(
                node["Resources"].get(config["resource"], 0) for node in ray.nodes() if node["NodeID"] == node_id
            )
        self.where = np.array([config.worker_index, number], np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (6,), np.float32)
        self.action_space = self.env.action_space

    def _obs(self, obs: np.ndarray) -> np.ndarray:
        return np.concatenate([obs, self.where]).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed)
        return self._obs(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._obs(obs), reward, terminated, truncated, info


def cluster_config(cluster: ClusterNodes):
    """PPO on 2 remote runners (2 envs each, 16 steps a fragment) of one CPU each, joining the cluster
    through rlarena's own ray_init(address) (the driver is not connected before build)."""
    return (
        PPOConfig()
        .environment(WhereCartPole, env_config={"resource": NODE_NUMBER})
        .env_runners(num_env_runners=2, num_envs_per_env_runner=2)
        .training(**TINY)
        .debugging(seed=0)
        .resources(ray_address=cluster.cluster.address)
    )


def placement(algo) -> dict[int, int]:
    """{worker index: node number} read from one sampled fragment (every env of a runner on one node)."""
    obs = algo.sample()["default_policy"].obs[0]  # [N, 6]: runner 1's two envs, then runner 2's
    where = {(int(w), int(n)) for w, n in obs[:, 4:]}
    assert len(where) == len({w for w, _ in where}), f"a runner's envs on two nodes: {where}"
    return dict(where)


def listening_addresses(pids: set[int]) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The local addresses of the TCP sockets that processes `pids` listen on (Linux /proc)."""
    inodes = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:  # exited meanwhile
            continue
        for fd in fds:
            try:
                link = os.readlink(fd)
            except OSError:  # closed meanwhile (the listing's own descriptor, for one)
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # state 0A: LISTEN
                raw = bytes.fromhex(fields[1].split(":")[0])
                # the kernel prints each 32-bit word in host (little-endian) order
                address = ipaddress.ip_address(b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4)))
                found.add(getattr(address, "ipv4_mapped", None) or address)
    return found


def descendants(roots: set[int]) -> set[int]:
    """`roots` and every process below them."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(text[text.rindex(")") + 2 :].split()[1])
    found, grew = set(roots), True
    while grew:
        below = {pid for pid, parent in parents.items() if parent in found} - found
        found |= below
        grew = bool(below)
    return found


def test_ppo_trains_on_runners_placed_on_the_worker_nodes_of_a_loopback_only_cluster(nodes):
    cluster, a, b = nodes
    ray.shutdown()  # whatever ran before: the driver joins through rlarena's ray_init(address) here
    with cluster_config(cluster).build() as algo:
        assert ray.get_runtime_context().get_node_id() == cluster.cluster.head_node.node_id
        for _ in range(2):
            result = algo.train()
            assert (result["num_env_steps_sampled_this_iter"], result["num_healthy_env_runners"]) == (64, 2)
            assert np.isfinite(result["policy_loss"]) and np.isfinite(result["vf_loss"])
        assert result["num_env_steps_sampled_lifetime"] == 128 and result["num_env_runner_restarts"] == 0
        where = placement(algo)
        assert sorted(where) == [1, 2] and sorted(where.values()) == [a, b]  # one runner a node, none on the head
        # every process of the cluster (nodes, agents, the runners' workers) and the driver: loopback only
        assert {node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]} == {"127.0.0.1"}
        roots = {os.getpid()} | {
            info.process.pid
            for node in cluster.cluster.list_all_nodes()
            for infos in node.all_processes.values()
            for info in infos
        }
        addresses = listening_addresses(descendants(roots))
    assert addresses and all(address.is_loopback for address in addresses), addresses


def test_without_fault_tolerance_losing_a_node_stops_training_naming_its_runner(nodes):
    cluster, _, _ = nodes
    with cluster_config(cluster).build() as algo:
        algo.train()
        cluster.remove(placement(algo)[2])
        with pytest.raises(
            EnvError, match=r"Remote env runner 2 of 2 \(env 'WhereCartPole'\) failed: .*fault_tolerance\("
        ):
            algo.train()


def test_a_runner_on_a_lost_node_is_restarted_with_its_worker_index_on_a_node_with_room(nodes):
    cluster, _, _ = nodes
    config = cluster_config(cluster).fault_tolerance(
        restart_failed_env_runners=True, delay_between_env_runner_restarts_s=0
    )
    with config.build() as algo:
        algo.train()
        where = placement(algo)
        spare = cluster.add()  # the only free CPU of the cluster once runner 1's node is gone
        cluster.remove(where[1])
        with pytest.warns(RLArenaNotice, match=r"Remote env runner 1 of 2 .* failed: .*restarting it in 0 s"):
            first = algo.train()  # runner 1 fails: the iteration has runner 2's fragment only
        assert (first["num_env_steps_sampled_this_iter"], first["num_healthy_env_runners"]) == (32, 1)
        with pytest.warns(RLArenaNotice, match="Remote env runner 1 restarted"):
            second = algo.train()  # runner 1 is made again, on the spare node; runner 2 does not wait for it
        deadline = time.monotonic() + 120  # until it has started (the call sends it the latest weights)
        while second["num_env_steps_sampled_this_iter"] != 64 and time.monotonic() < deadline:
            assert (second["num_env_steps_sampled_this_iter"], second["num_healthy_env_runners"]) == (32, 1)
            time.sleep(0.1)
            second = algo.train()
        assert (second["num_env_steps_sampled_this_iter"], second["num_healthy_env_runners"]) == (64, 2)
        assert second["num_env_runner_restarts"] == 1 and np.isfinite(second["policy_loss"])
        assert placement(algo) == {1: spare, 2: where[2]}
