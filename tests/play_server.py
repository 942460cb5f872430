"""`rlarena play connect4` served for a test: on 127.0.0.1, on a free port, in a process where torch
cannot be imported (the page serves with onnxruntime and numpy alone)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_page(tmp: Path, *args: str, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """`rlarena play connect4 *args` served on a free port of 127.0.0.1 (`env`: extra environment
    variables for the server); yields the page's URL, stops the server after."""
    port = free_port()
    # torch blocked: `import torch` anywhere in the serving process raises ImportError
    code = (
        "import sys; sys.modules['torch'] = None; from rlarena.cli.main import main; "
        f"sys.exit(main(['play', 'connect4', '--host', '127.0.0.1', '--port', '{port}', *{list(args)!r}]))"
    )
    with open(tmp / "server.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, **(env or {})},
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + 300  # a guard against hanging, not a speed check (Gradio starts slowly)
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"the server exited ({proc.returncode}):\n{(tmp / 'server.log').read_text()}")
                try:
                    with urllib.request.urlopen(url, timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"the server did not answer within 300 s:\n{(tmp / 'server.log').read_text()}")
                time.sleep(0.25)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
