"""Scale out on Ray: the only package that imports ray, and only when a config asks for it
(`num_env_runners > 0`). `import rlarena` and local training never load it.

- `ray_init(address, num_cpus)`: join a cluster (an address, or RAY_ADDRESS) or start a local Ray bound
  to 127.0.0.1 without the dashboard.
- `rlarena.distributed.ray_env_runners`: the remote env runners (RemoteEnvRunnerGroup: N Ray actors,
  each with its own envs and policy copies, sampling fragments the driver puts side by side; fault
  tolerance) and the evaluation runners (RemoteEvalRunnerGroup).
- `rlarena.distributed.tune`: every algorithm as a Ray Tune trainable (rlarena.tune.trainable).
- `rlarena.distributed.trials`: rlarena.run(..., ray=...), a sweep's trials as parallel Ray actors.
"""

from __future__ import annotations

import math
import os


def ray_init(address: str | None = None, num_cpus: int | None = None) -> None:
    """Make sure this process is connected to Ray. Already connected: nothing to do. `address` (or the
    RAY_ADDRESS environment variable): join that cluster. Otherwise start a local Ray with `num_cpus`
    CPUs (None: this machine's count) that listens on 127.0.0.1 only: anyone who reaches Ray's ports
    can run code there, so nothing is bound to another interface unless you start the cluster yourself."""
    if address is None and not os.environ.get("RAY_ADDRESS"):
        # Ray binds its local processes to the loopback address only where it believes clusters are
        # unsupported (macOS, Windows); this switch, read when ray is imported (here and in its worker
        # processes, which inherit the environment), asks for that on Linux too. `_node_ip_address`
        # alone is turned back into the machine's address by Ray (services.resolve_ip_for_localhost).
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray

    if ray.is_initialized():
        return
    if address is not None or os.environ.get("RAY_ADDRESS"):
        ray.init(address=address, log_to_driver=True)
        return
    from ray._private import ray_constants

    # ray was imported before the switch above was set (by the user, or an earlier ray_init that joined
    # a cluster): the constant it read then decides, so say it again
    ray_constants.ENABLE_RAY_CLUSTER = False
    ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=True)


def cpus_needed(num_env_runners: int, num_cpus_per_env_runner: float) -> int:
    """The CPUs a local Ray declares: this machine's, or more when the runners ask for more (a
    2-core laptop still runs 4 runners; Ray's CPUs are scheduling slots, not cores)."""
    return max(os.cpu_count() or 1, math.ceil(num_env_runners * num_cpus_per_env_runner))
