"""The Connect Four page lets in only what it needs: served by `rlarena play connect4` on 127.0.0.1 and
spoken to in plain HTTP, it refuses uploads (and writes nothing to Gradio's upload directory), a Host
that is not this machine (DNS rebinding), requests from other sites' pages (cross-site posts) and
oversized bodies (unread), while the page and its API keep working for its own origin. The gate's
rules for other binds (0.0.0.0, a LAN address) are checked without a server."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlarena.games.connect_four.app import MAX_BODY_BYTES, PageGate, exposure_notice, page_url

pytestmark = pytest.mark.timeout(300)  # a guard against hanging (Gradio starts in tens of seconds on 2 cores)

ATTACKER = "http://attacker.example"


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """The served page: its port, its own origin and Gradio's upload directory (GRADIO_TEMP_DIR)."""
    pytest.importorskip("gradio")
    pytest.importorskip("onnxruntime")
    from play_server import serve_page

    tmp = tmp_path_factory.mktemp("page_safety")
    uploads = tmp / "gradio"
    # --search none: the network alone is the default opponent, so a move through the API is quick
    for url in serve_page(tmp, "--search", "none", env={"GRADIO_TEMP_DIR": str(uploads)}):
        port = int(url.rsplit(":", 1)[1].strip("/"))
        yield {"port": port, "origin": f"http://127.0.0.1:{port}", "uploads": uploads}


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One request to 127.0.0.1:port; `headers` may set Host (else 127.0.0.1:port)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Host": f"127.0.0.1:{port}", **(headers or {})}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def files_under(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")) if directory.exists() else []


def multipart(name: str, content: bytes) -> tuple[bytes, str]:
    boundary = "rlarenaboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


# -- served, in plain HTTP --------------------------------------------------------------------------------
def test_uploads_are_refused_and_nothing_is_written(page):
    port, origin = page["port"], page["origin"]
    before = files_under(page["uploads"])
    body, content_type = multipart("planted.txt", b"not for this page\n" * 100)
    # from the page's own origin, from a client without one, and from another site (a cross-site form post)
    for headers in ({"Origin": origin}, {}, {"Origin": ATTACKER}):
        for path in (
            "/gradio_api/upload",
            "/gradio_api/upload/",
            "/gradio_api/upload?upload_id=x",
            "/gradio_api/process_recording",
            "/upload",
        ):
            status, text = request(port, "POST", path, body, {"Content-Type": content_type, **headers})
            assert status == 403, (path, headers, status, text)
    # a file sent to any other route is refused too: the page takes JSON only
    for path in ("/gradio_api/component_server", "/gradio_api/queue/join"):
        status, text = request(port, "POST", path, body, {"Content-Type": content_type, "Origin": origin})
        assert status == 415 and b"not forms or files" in text, (path, status, text)
    after = files_under(page["uploads"])
    assert after == before and not any("planted" in name for name in after)


def test_a_rebound_host_name_is_refused(page):
    port = page["port"]
    for host in (
        "attacker.example",
        f"attacker.example:{port}",
        f"127.0.0.1.attacker.example:{port}",
        f"localhost.:{port}",
        f"192.168.1.20:{port}",
    ):
        status, text = request(port, "GET", "/", headers={"Host": host})
        assert status == 421 and b"Misdirected request" in text, (host, status, text)
        assert request(port, "GET", "/config", headers={"Host": host})[0] == 421
        status, _ = request(
            port,
            "POST",
            "/gradio_api/call/play_column_4",
            b'{"data": []}',
            {"Host": host, "Content-Type": "application/json"},
        )
        assert status == 421, host


def test_a_request_without_a_host_is_refused(page):
    conn = http.client.HTTPConnection("127.0.0.1", page["port"], timeout=60)
    try:
        conn.putrequest("GET", "/", skip_host=True)
        conn.endheaders()
        response = conn.getresponse()
        assert response.status in (400, 421), response.status  # the HTTP parser or the gate
    finally:
        conn.close()


def test_posts_from_other_sites_are_refused(page):
    port = page["port"]
    move = b'{"data": []}'
    for headers in (
        {"Origin": ATTACKER},
        {"Origin": "null"},
        {"Origin": f"http://127.0.0.1:{port + 1}"},
        {"Origin": f"http://localhost:{port}"},  # another origin than the Host asked for
        {"Referer": f"{ATTACKER}/game.html"},
    ):
        status, text = request(
            port, "POST", "/gradio_api/call/play_column_4", move, {"Content-Type": "application/json", **headers}
        )
        assert status == 403 and b"Cross-site request refused" in text, (headers, status, text)
    # the simple cross-origin post a browser sends without asking: a form, text/plain or urlencoded
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        status, _ = request(
            port, "POST", "/gradio_api/queue/join", b"data=1", {"Content-Type": content_type, "Origin": ATTACKER}
        )
        assert status == 403, content_type


def test_the_page_and_its_api_work_for_its_own_origin(page):
    port = page["port"]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        status, text = request(port, "GET", "/", headers={"Host": host})
        assert status == 200 and b"<html" in text.lower(), host
        status, text = request(port, "GET", "/config", headers={"Host": host})
        assert status == 200 and "components" in json.loads(text), host
    # a move through the page's API, as its own script sends it (Origin and Referer of the page)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        own = {
            "Host": host,
            "Origin": f"http://{host}",
            "Referer": f"http://{host}/",
            "Content-Type": "application/json",
        }
        status, text = request(port, "POST", "/gradio_api/call/play_column_4", b'{"data": []}', own)
        assert status == 200, text
        event = json.loads(text)["event_id"]
        status, text = request(port, "GET", f"/gradio_api/call/play_column_4/{event}", headers={"Host": host})
        assert status == 200 and b"event: complete" in text, text[:300]
        assert b'data-moves=\\"2\\"' in text and b"answered column" in text  # the human's piece and the agent's


def answer_to_headers(port: int, method: str, path: str, headers: dict[str, str]) -> bytes:
    """The status line the server answers to a request's headers alone: the body they announce is never
    sent, so a server that read it would wait (until the socket's timeout fails the test)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        lines = "".join(f"{key}: {value}\r\n" for key, value in {"Host": f"127.0.0.1:{port}", **headers}.items())
        sock.sendall(f"{method} {path} HTTP/1.1\r\n{lines}\r\n".encode())
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(4096)
            assert chunk, f"the server closed the connection without answering: {reply!r}"
            reply += chunk
    return reply.split(b"\r\n", 1)[0]


def test_an_oversized_body_is_refused_unread(page):
    port, own = page["port"], {"Origin": page["origin"], "Content-Type": "application/json"}
    for length in (10**9, MAX_BODY_BYTES + 1):
        for path in ("/gradio_api/queue/join", "/gradio_api/call/play_column_4", "/"):
            status = answer_to_headers(port, "POST", path, {**own, "Content-Length": str(length)})
            assert status.startswith(b"HTTP/1.1 413"), (length, path, status)
    # a body of unknown length (chunked) is refused before it is read
    status = answer_to_headers(port, "POST", "/gradio_api/queue/join", {**own, "Transfer-Encoding": "chunked"})
    assert status.startswith(b"HTTP/1.1 411"), status
    # the bound is generous for the page's own calls (under 1 KB): a body of MAX_BODY_BYTES gets through
    padded = b'{"data": []' + b" " * (MAX_BODY_BYTES - 12) + b"}"
    assert len(padded) == MAX_BODY_BYTES
    status, text = request(port, "POST", "/gradio_api/call/play_column_4", padded, own)
    assert status == 200 and "event_id" in json.loads(text), (status, text)


# -- the gate's rules, without a server -------------------------------------------------------------------
def scope(host: str | None, method: str = "GET", path: str = "/", kind: str = "http", **headers: str) -> dict:
    pairs = [] if host is None else [(b"host", host.encode())]
    pairs += [(key.replace("_", "-").encode(), value.encode()) for key, value in headers.items()]
    return {"type": kind, "method": method, "path": path, "scheme": "http", "headers": pairs}


def test_a_loopback_bind_answers_to_loopback_names_on_any_port():
    gate = PageGate(None, "127.0.0.1")
    # any port: an SSH tunnel (ssh -L 9000:127.0.0.1:7860) or a forwarded port changes it, never the name
    for host in ("127.0.0.1:7860", "localhost:9000", "LOCALHOST:7860", "[::1]:7860", "localhost"):
        assert gate.check(scope(host)) is None, host
    for host in ("attacker.example:7860", "192.168.1.20:7860", "0.0.0.0:7860", "[::1", ""):
        assert gate.check(scope(host))[0] == 421, host
    assert gate.check(scope(None))[0] == 421
    assert gate.check(scope("localhost:7860", "POST", origin="http://localhost:9000"))[0] == 403
    assert gate.check(scope("localhost:7860", "POST", origin="http://localhost:7860")) is None


def test_a_wildcard_bind_answers_to_addresses_and_this_machines_name():
    gate = PageGate(None, "0.0.0.0")
    machine = socket.gethostname()
    for host in ("192.168.1.20:7860", "[fe80::1]:7860", "localhost:7860", f"{machine}:7860", f"{machine}.local"):
        assert gate.check(scope(host)) is None, host
    for host in ("attacker.example:7860", f"{machine}.attacker.example:7860"):
        assert gate.check(scope(host))[0] == 421, host
    # a LAN player's own page posts to itself; another site cannot
    assert gate.check(scope("192.168.1.20:7860", "POST", origin="http://192.168.1.20:7860")) is None
    assert gate.check(scope("192.168.1.20:7860", "POST", origin=ATTACKER))[0] == 403
    # a name given to --host is answered to as well
    assert PageGate(None, "arena.lan").check(scope("arena.lan:7860")) is None


def test_gets_from_other_sites_links_are_let_through_but_not_their_scripts():
    gate = PageGate(None, "127.0.0.1")
    # following a link from another site sends its Referer: the page opens
    assert gate.check(scope("127.0.0.1:7860", referer=f"{ATTACKER}/readme")) is None
    # a script's fetch from another site carries its Origin, on any method
    assert gate.check(scope("127.0.0.1:7860", origin=ATTACKER))[0] == 403
    assert gate.check(scope("127.0.0.1:7860", "POST", referer=f"{ATTACKER}/x"))[0] == 403
    assert gate.check(scope("127.0.0.1:7860", "POST", referer="http://127.0.0.1:7860/")) is None
    assert gate.check(scope("127.0.0.1:7860", "POST")) is None  # curl, gradio_client: no browser to drive


def test_malformed_requests_are_refused_with_a_reason():
    gate = PageGate(None, "127.0.0.1")
    request = scope("127.0.0.1:7860", "POST")
    request["headers"].append((b"host", b"attacker.example"))  # which one would a proxy believe?
    assert gate.check(request) == (400, "Bad request: more than one host header.")
    for length in ("-1", "\u00b2", "1e3", "0x10"):
        status, reason = gate.check(scope("127.0.0.1:7860", "POST", content_length=length))
        assert status == 400 and "is not a number of bytes" in reason, length
    assert gate.check(scope("127.0.0.1:7860", "POST", content_length=str(MAX_BODY_BYTES))) is None


def test_the_gate_refuses_before_the_app_sees_the_request():
    seen: list[dict] = []

    async def app(scope, receive, send):
        seen.append(scope)

    async def call(request: dict) -> list[dict]:
        sent: list[dict] = []

        async def receive() -> dict:
            raise AssertionError("the gate read the body of a refused request")

        async def send(message: dict) -> None:
            sent.append(message)

        await PageGate(app, "127.0.0.1")(request, receive, send)
        return sent

    sent = asyncio.run(call(scope("127.0.0.1:7860", "POST", "/gradio_api/upload", content_length="10")))
    assert sent[0]["status"] == 403 and (b"connection", b"close") in sent[0]["headers"]
    assert sent[1]["body"] == b"This page takes no file uploads.\n" and not seen
    # a websocket from another site is closed before it is accepted (the server answers 403)
    sent = asyncio.run(call(scope("127.0.0.1:7860", kind="websocket", origin=ATTACKER)))
    assert sent == [{"type": "websocket.close", "code": 1008}] and not seen
    asyncio.run(call({"type": "lifespan"}))
    asyncio.run(call(scope("127.0.0.1:7860")))
    assert [s["type"] for s in seen] == ["lifespan", "http"]


def test_the_command_says_what_applies_beyond_this_machine():
    assert exposure_notice("127.0.0.1", 7860) == exposure_notice("localhost", 7860) == ""
    notice = exposure_notice("0.0.0.0", 7860)
    assert "every interface" in notice and "anyone who can reach port 7860" in notice and "\n" not in notice
    assert "192.168.1.20" in exposure_notice("192.168.1.20", 7860)
    assert page_url("0.0.0.0", 7860) == "http://127.0.0.1:7860/"
    assert page_url("::1", 8000) == "http://[::1]:8000/" and page_url("127.0.0.1", 80) == "http://127.0.0.1:80/"
