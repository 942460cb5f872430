"""rlarena's local Ray is private to the process and never joins a cluster the caller did not name.

Ray's own `ray.init()` without an address joins the cluster recorded in its shared temp directory
(/tmp/ray/ray_current_cluster), which any user of the machine can create first: the other user's
cluster then runs the victim's code, and a driver joining it imports and calls the cluster's
"tracing startup hook". The stand-in here is such a planted cluster: `ray start --head` in a temp
directory of its own (RAY_TMPDIR, which makes it the default temp dir of every process given the same
variable, as /tmp/ray is for everyone), with a custom resource "planted" and a hook that leaves a
`ran-<pid>` file naming each process that called it. A first test shows the trap works (Ray's plain
ray.init() joins it and runs the hook); the others start rlarena's Ray through its public paths in
fresh processes (rlarena.tune.trainable, rlarena.rollout.ray_cluster.ray_init, `rlarena train --ray`) and
check it is a new cluster whose files and token only this user can read, that a client without the
token is refused, and that an address the caller gives is joined.

The stand-in is stopped by signalling its own `ray start --block` process, and any process left
behind that names its directory is killed: never `ray stop`, which stops every Ray of this user.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("ray")

# the stand-in binds to 127.0.0.1 through Ray's switch for it (Linux), and its processes are found in /proc
pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Ray's loopback switch, /proc: Linux"),
    pytest.mark.timeout(480),
]  # a guard against hanging: Ray starts in tens of seconds on 2 busy cores

HOOK = """import os
from pathlib import Path


def run():
    Path(__file__).with_name(f"ran-{os.getpid()}").touch()
"""

# Runs in a fresh process with the victim's environment; writes what it saw to argv[1] as JSON.
VICTIM = r"""
import json, os, subprocess, sys
from pathlib import Path

import ray
import rlarena.tune
from rlarena.rollout.ray_cluster import ray_init, ray_shutdown

report_path, hook_dir, stand_in = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
report = {"pid": os.getpid()}


def where():
    context = ray.get_runtime_context()
    session = Path(ray._private.worker._global_node.get_session_dir_path())
    private = session.parents[1]  # <private dir>/ray/session_...: Ray's temp dir inside rlarena's
    token = os.environ.get("RAY_AUTH_TOKEN_PATH")
    return {"gcs": context.gcs_address, "node": context.get_node_id(), "session": str(session),
            "resources": sorted(ray.cluster_resources()), "private": str(private),
            "private_mode": private.stat().st_mode & 0o777 if private.name.startswith("rlarena-ray-") else None,
            "token": token, "token_mode": os.stat(token).st_mode & 0o777 if token else None,
            "auth_mode": os.environ.get("RAY_AUTH_MODE")}


# 1. the Tune path; then a client without the token tries to join that Ray
rlarena.tune.trainable("PPO")
report["trainable"] = where()
intruder_env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
intruder_env["HOME"] = str(hook_dir.parent / "intruder")
intruder = subprocess.run([sys.executable, "-c", "import ray, sys; ray.init(address=sys.argv[1]); print('JOINED')",
                           report["trainable"]["gcs"]], env=intruder_env, capture_output=True, text=True, timeout=120)
report["intruder"] = {"returncode": intruder.returncode, "joined": "JOINED" in intruder.stdout}
ray_shutdown()
report["removed_at_shutdown"] = not os.path.exists(report["trainable"]["private"])
report["env_restored"] = [os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")] == [None, None]

# 2. ray_init itself, twice (the second finds Ray up: nothing to do)
ray_init()
report["ray_init"] = where()
ray_init()
report["again"] = where()
ray_shutdown()
report["hook_ran_before_explicit_join"] = (hook_dir / f"ran-{os.getpid()}").exists()

# 3. the address the caller gives: joined
ray_init(stand_in)
report["explicit"] = where()
ray_shutdown()
Path(report_path).write_text(json.dumps(report))
"""


@dataclass
class StandIn:
    """The planted cluster: its address, the temp dir that holds its record (the victims' RAY_TMPDIR),
    and the directory of its hook (on the victims' PYTHONPATH)."""

    address: str
    tmp: Path
    hook_dir: Path

    def env(self, home: Path) -> dict[str, str]:
        """A victim's environment: this test process's, without any RAY_ variable (the machine's own
        RAY_ADDRESS, or what an earlier Ray set in this process), with the stand-in's temp dir as Ray's
        default and a HOME of its own (so Ray's ~/.ray is visible). And Ray's loopback switch, which
        rlarena sets for its own Ray, and which a process joining a loopback-only cluster by its address
        needs (without it Ray turns 127.0.0.1 into this machine's address, where nothing listens; as in
        test_ray_cluster)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        path = [str(self.hook_dir), env.get("PYTHONPATH", "")]
        return {
            **env,
            "RAY_TMPDIR": str(self.tmp),
            "HOME": str(home),
            "PYTHONPATH": os.pathsep.join(filter(None, path)),
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        }

    def hook_ran_in(self, pid: int) -> bool:
        return (self.hook_dir / f"ran-{pid}").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_processes_naming(path: Path) -> None:
    """SIGKILL every process whose command line names `path` (the stand-in's own directory)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(path).encode() in cmdline.read_bytes():
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
        except (OSError, ValueError):  # exited meanwhile
            continue


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandIn]:
    tmp = Path(tempfile.mkdtemp(prefix="rlp"))  # short: Ray's socket paths live below it
    hook_dir = tmp / "hook"
    hook_dir.mkdir()
    (hook_dir / "planted_hook.py").write_text(HOOK)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    # the other user's cluster: loopback only (a test never opens ports to the network), no token (the
    # planter does not know the victim's)
    env.update(
        RAY_TMPDIR=str(tmp),
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_AUTH_MODE="disabled",
        HOME=str(tmp / "planter"),
        PYTHONPATH=str(hook_dir),
    )
    log = (tmp / "ray-start.log").open("w")
    head = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ray.scripts.scripts",
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            "--num-cpus=1",
            '--resources={"planted": 1}',
            "--include-dashboard=false",
            "--disable-usage-stats",
            "--tracing-startup-hook=planted_hook:run",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        record = tmp / "ray" / "ray_current_cluster"  # written once the cluster is up
        deadline = time.monotonic() + 120
        while not record.exists() and head.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        if not record.exists():
            pytest.fail(f"the stand-in cluster did not start:\n{(tmp / 'ray-start.log').read_text()[-3000:]}")
        yield StandIn(record.read_text().strip(), tmp, hook_dir)
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        kill_processes_naming(tmp)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def victim(stand_in, tmp_path_factory) -> dict:
    """What a process saw that started rlarena's Ray through rlarena.tune.trainable, then
    rlarena.rollout.ray_cluster.ray_init (twice), then joined the stand-in by its address."""
    home = tmp_path_factory.mktemp("victim-home")
    report = home / "report.json"
    proc = subprocess.run(
        [sys.executable, "-c", VICTIM, str(report), str(stand_in.hook_dir), stand_in.address],
        env=stand_in.env(home),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {**json.loads(report.read_text()), "home": str(home)}


def test_the_stand_in_is_a_trap_that_rays_own_init_falls_into(stand_in, tmp_path):
    """Ray's ray.init() without an address joins the planted cluster and runs its hook: the checks
    below would prove nothing otherwise."""
    code = "import os, ray; ray.init(); print(os.getpid(), ray.get_runtime_context().gcs_address)"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=stand_in.env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    pid, address = proc.stdout.split()[-2:]
    assert address == stand_in.address
    assert stand_in.hook_ran_in(int(pid))


def test_trainable_and_ray_init_start_a_new_ray_not_the_one_on_disk(stand_in, victim):
    for path in ("trainable", "ray_init"):
        seen = victim[path]
        assert seen["gcs"] != stand_in.address and "planted" not in seen["resources"], path
        assert Path(seen["session"]).is_relative_to(seen["private"]), path  # not in Ray's shared temp dir
        assert not Path(seen["private"]).is_relative_to(stand_in.tmp / "ray"), path
    assert victim["trainable"]["node"] != victim["ray_init"]["node"]  # a new Ray each time, its own
    assert victim["again"] == victim["ray_init"]  # already connected: the second ray_init did nothing
    assert not victim["hook_ran_before_explicit_join"]  # the planted hook never ran in the victim


def test_the_private_ray_is_readable_by_this_user_only_and_removed_with_it(stand_in, victim):
    for path in ("trainable", "ray_init"):
        seen = victim[path]
        assert seen["private_mode"] == 0o700, path
        assert seen["auth_mode"] == "token" and seen["token_mode"] == 0o600, path
        assert Path(seen["token"]).parent == Path(seen["private"]), path
    assert victim["trainable"]["token"] != victim["ray_init"]["token"]  # a token per Ray
    # a client without the token (another user cannot read it) is refused
    assert victim["intruder"]["returncode"] != 0 and not victim["intruder"]["joined"]
    # Ray's shared token file (~/.ray/auth_token, created readable by every user) is never written
    assert not (Path(victim["home"]) / ".ray").exists()
    # ray_shutdown removed the first Ray's directory and gave back the environment; exit removed the other
    assert victim["removed_at_shutdown"] and victim["env_restored"]
    assert not list(stand_in.tmp.glob("rlarena-ray-*"))


def test_an_address_the_caller_gives_is_joined(stand_in, victim):
    joined = victim["explicit"]
    assert joined["gcs"] == stand_in.address and "planted" in joined["resources"]
    assert joined["private_mode"] is None and joined["token"] is None  # nothing of a private Ray's
    assert stand_in.hook_ran_in(victim["pid"])  # the caller chose that cluster, hook and all


def test_cli_train_ray_runs_on_a_private_ray(stand_in, tmp_path):
    """The trials run on a private Ray (a process that joined the planted cluster would also fail here:
    Ray refuses num_cpus for a cluster it joins)."""
    config = {"train_batch_size": 64, "minibatch_size": 32, "num_epochs": 1, "model": {"fcnet_hiddens": [8]}}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rlarena.cli.main",
            "train",
            "--env",
            "CartPole-v1",
            "--ray",
            "--config",
            json.dumps(config),
            "--stop",
            '{"training_iteration": 1}',
            "--storage-path",
            str(tmp_path / "runs"),
            "--name",
            "r",
            "--verbose",
            "0",
            "--no-tensorboard",
            "--no-plot",
        ],
        env=stand_in.env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-4000:]
    state = json.loads((tmp_path / "runs" / "r" / "experiment_state.json").read_text())
    assert [t["status"] for t in state["trials"]] == ["TERMINATED"]
    assert not stand_in.hook_ran_in(proc.pid)
    assert not (tmp_path / ".ray").exists() and not list(stand_in.tmp.glob("rlarena-ray-*"))


def test_an_address_ray_cannot_use_is_one_clear_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlarena.cli.main",
            "train",
            "--env",
            "CartPole-v1",
            "--ray-address",
            "nonsense",
            "--storage-path",
            str(tmp_path / "runs"),
            "--verbose",
            "0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        (
            "error: Cannot join the Ray cluster 'nonsense': Invalid address format: nonsense. Give the host:port of a "
            "running cluster's head (`ray start --head` prints it; with its token in RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH "
            "when it asks for one), or no address for a private local Ray."
        )
    ]
    assert not (tmp_path / "runs").exists()
