"""Connecting to Ray, for every layer that runs something on it: `ray_init` / `ray_shutdown` and
`cpus_needed`. It imports ray only inside these functions, and only the code that runs on Ray calls
them (when a config asks for it: `num_env_runners > 0`, a Ray trial or a Tune trainable), so
`import rlarena` and local training never load ray.

- `ray_init(address, num_cpus)`: join the cluster the caller names (an address, or RAY_ADDRESS) or
  start a Ray private to this process (127.0.0.1, no dashboard, its own 0700 temp directory and token);
  `ray_shutdown()` stops the Ray rlarena started and removes its temp directory.

What runs on Ray, each in its own layer: the remote env and evaluation runners
(rlarena.rollout.ray_runners), a sweep's trials as parallel actors (rlarena.train.ray_trials) and every
algorithm as a Ray Tune trainable (rlarena.tune.ray_trainable, behind rlarena.tune.trainable).
"""

from __future__ import annotations

import atexit
import inspect
import math
import os
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass

from rlarena.errors import ClusterError, ConfigError

# What a private Ray sets in this process's environment for its life (Ray's processes inherit it at start)
_AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")


@dataclass
class _PrivateRay:
    """The local Ray this process started: its directory (0700: its temp dir, token, logs, sockets),
    the process that owns it (a forked child inherits this module but never removes the parent's
    Ray), and the environment variables it replaced."""

    directory: str
    pid: int
    saved_env: dict[str, str | None]


_private: _PrivateRay | None = None


def ray_init(address: str | None = None, num_cpus: int | None = None) -> None:
    """Make sure this process is connected to Ray. Already connected: nothing to do.

    Joins a cluster only when the caller names one: `address` ("host:port", or "auto" for the cluster
    `ray start` recorded on this machine), else the RAY_ADDRESS environment variable. Otherwise (or
    "local") it starts a new Ray private to this process, never one found on disk: Ray's own
    `ray.init()` joins the cluster recorded in its shared temp directory (/tmp/ray), which any local
    user can create first. The private Ray listens on 127.0.0.1 only, starts no dashboard, declares
    `num_cpus` CPUs (None: this machine's count), keeps its files in a directory only this user can
    open, and admits only clients holding its own token (a file in that directory, mode 0600): its
    ports are reachable by every user of the machine."""
    global _private
    env_address = os.environ.get("RAY_ADDRESS") or None
    # Ray's resolution: RAY_ADDRESS replaces no address and "auto", never an explicit one
    from_env = address in (None, "auto") and env_address is not None
    target = env_address if from_env else address
    private = target in (None, "local")
    if private:
        # Ray binds its local processes to the loopback address only where it believes clusters are
        # unsupported (macOS, Windows); this switch, read when ray is imported (here and in its worker
        # processes, which inherit the environment), asks for that on Linux too. `_node_ip_address`
        # alone is turned back into the machine's address by Ray (services.resolve_ip_for_localhost).
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray

    if ray.is_initialized():
        return
    _remove_private_ray()  # one this process started before, shut down since by ray.shutdown()
    if not private:
        try:
            ray.init(address=address, log_to_driver=True)
        except (ValueError, ConnectionError) as exc:  # a malformed address; none running there, or a refused token
            named = f"RAY_ADDRESS={target!r}" if from_env else repr(target)
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
            raise ClusterError(
                f"Cannot join the Ray cluster {named}: {reason}. Give the host:port of a running "
                f"cluster's head (`ray start --head` prints it; with its token in RAY_AUTH_TOKEN or "
                f"RAY_AUTH_TOKEN_PATH when it asks for one), or no address for a private local "
                f"Ray."
            ) from None
        return
    from ray._private import ray_constants

    # ray was imported before the switch above was set (by the user, or an earlier ray_init that joined
    # a cluster): the constant it read then decides, so say it again
    ray_constants.ENABLE_RAY_CLUSTER = False
    directory = _private_directory()
    _private = _PrivateRay(directory, os.getpid(), {k: os.environ.get(k) for k in _AUTH_VARIABLES})
    try:
        _use_token(os.path.join(directory, "auth_token"))
        # Ray makes its temp dir world-writable (0777, ray._common.utils.try_to_create_directory): it gets
        # a subdirectory, and the 0700 directory around it keeps other users out
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            _temp_dir=os.path.join(directory, "ray"),
            log_to_driver=True,
        )
    except BaseException:
        _stop_ray()
        _remove_private_ray()
        raise


def ray_shutdown() -> None:
    """Disconnect from Ray; a Ray that ray_init started is stopped and its directory removed."""
    _stop_ray()
    _remove_private_ray()


def _stop_ray() -> None:
    import ray

    if "wait_for_processes" in inspect.signature(ray.shutdown).parameters:
        ray.shutdown(wait_for_processes=True)  # its processes gone before their directory goes
    else:
        ray.shutdown()


def _private_directory() -> str:
    """A new directory only this user can open (mkdtemp: mode 0700), for the private Ray's files. Under
    RAY_TMPDIR when the caller set it, else /tmp: Ray's unix socket paths below it
    (<dir>/ray/session_<date>_<pid>/sockets/plasma_store) must fit in 107 bytes (103 on macOS), which
    a long TMPDIR (macOS's /var/folders/...) would break."""
    parent = os.environ.get("RAY_TMPDIR") or ("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir())
    directory = tempfile.mkdtemp(prefix="rlarena-ray-", dir=parent)
    longest_below = len("/ray/session_2024-01-01_00-00-00_000000_4194304/sockets/plasma_store")
    if sys.platform != "win32" and len(directory) + longest_below > (103 if sys.platform == "darwin" else 107):
        os.rmdir(directory)
        raise ConfigError(
            f"RAY_TMPDIR={parent!r} is too long a path for Ray's sockets below it; set RAY_TMPDIR "
            f"to a short directory such as /tmp."
        )
    return directory


def _use_token(path: str) -> None:
    """Turn on Ray's token authentication with a new token written to `path` (0600). Ray (2.52 and later)
    reads the token from RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH names, else ~/.ray/auth_token;
    a Ray started by ray.init() without one writes a new token to ~/.ray/auth_token with the default
    umask (readable by every user) and shares it with every Ray of this user. A RAY_AUTH_TOKEN the
    caller set is theirs and stays first."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))  # Ray's own tokens: 256 random bits, in hex
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=path)
    _reload_auth_settings()


def _reload_auth_settings() -> None:
    """Ray caches the authentication mode and token in the process: read them again from the environment."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]  # (compiled)
    except ImportError:  # Ray before token authentication
        return
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _remove_private_ray() -> None:
    """Forget the private Ray (already shut down): its directory goes, the environment comes back."""
    global _private
    if _private is None or _private.pid != os.getpid():
        return
    for key, value in _private.saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    _reload_auth_settings()
    for _ in range(3):  # a Ray process that was still exiting may have written a last log line
        shutil.rmtree(_private.directory, ignore_errors=True)
        if not os.path.exists(_private.directory):
            break
    _private = None


@atexit.register
def _stop_private_ray_at_exit() -> None:
    """A private Ray still running when the interpreter exits (Ray's own exit hook may have stopped it
    already): stop it and remove its directory."""
    if _private is not None and _private.pid == os.getpid():
        ray_shutdown()


def cpus_needed(num_env_runners: int, num_cpus_per_env_runner: float) -> int:
    """The CPUs a local Ray declares: this machine's, or more when the runners ask for more (a
    2-core laptop still runs 4 runners; Ray's CPUs are scheduling slots, not cores)."""
    return max(os.cpu_count() or 1, math.ceil(num_env_runners * num_cpus_per_env_runner))
