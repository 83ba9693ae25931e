"""The emulator's control API holds: loopback Host only, no cross-site caller, capped sizes, honest framing."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest

from airflow_provider_browsersessions.testing.emulator.faults import MAX_BOMB_BYTES
from airflow_provider_browsersessions.testing.emulator.server import MAX_REQUEST_BODY, MAX_SEED_COUNT

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def emulator(browsersessions_emulator):
    browsersessions_emulator.reset()
    return browsersessions_emulator


def call(emulator, method: str, route: str, body: object = None, **headers: str) -> tuple[int, dict]:
    """One control request with exactly these headers (``Host`` included when given)."""
    connection = http.client.HTTPConnection(emulator.host, emulator.port, timeout=10)
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.putrequest(method, f"/_emulator/{route}", skip_host="Host" in headers)
        for name, value in headers.items():
            connection.putheader(name.replace("_", "-"), value)
        if data is not None:
            connection.putheader("Content-Length", str(len(data)))
            connection.putheader("Content-Type", "application/json")
        connection.endheaders(data)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"null")
    finally:
        connection.close()


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "192.0.2.1", "127.0.0.1.evil.example", ""])
def test_a_control_request_addressed_to_another_host_is_refused(emulator, host):
    status, body = call(emulator, "POST", "seed", {"platform": "brightdata", "count": 5}, Host=host)
    assert status == 403
    assert "loopback host" in body["error"]
    assert emulator.sessions("brightdata") == []  # refused before anything ran


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST", "[::1]:{port}", "127.0.0.2"])
def test_a_control_request_addressed_to_loopback_is_served(emulator, host):
    status, body = call(emulator, "GET", "health", Host=host.format(port=emulator.port))
    assert (status, body) == (200, {"ok": True})


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},  # another loopback origin is another site too
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_cross_site_control_request_is_refused(emulator, headers):
    status, body = call(emulator, "POST", "reset", {}, **headers)
    assert status == 403
    assert "cross-site request refused" in body["error"]


def test_a_same_origin_control_request_is_served(emulator):
    status, _ = call(emulator, "POST", "reset", {}, Origin=f"http://127.0.0.1:{emulator.port}")
    assert status == 200


def test_seed_counts_and_bomb_sizes_are_capped_with_an_error_naming_the_cap(emulator):
    status, body = call(emulator, "POST", "seed", {"platform": "brightdata", "count": MAX_SEED_COUNT + 1})
    assert status == 400
    assert "'count'" in body["error"]
    assert f"{MAX_SEED_COUNT:,}" in body["error"]
    status, body = call(emulator, "POST", "seed", {"platform": "brightdata", "count": -1})
    assert status == 400
    fault = {"kind": "gzip_bomb", "size": 16 * 1024**3}
    status, body = call(emulator, "POST", "faults/script", {"faults": [fault]})
    assert status == 400
    assert "'size'" in body["error"]
    assert f"{MAX_BOMB_BYTES:,}" in body["error"]
    assert emulator.sessions("brightdata") == []


def raw_exchange(emulator, request: bytes) -> bytes:
    """Send raw bytes, read the answer until the server closes (it must: the body's end is unknown)."""
    with socket.create_connection((emulator.host, emulator.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("route", ["/_emulator/seed", "/browser_sessions"])
@pytest.mark.parametrize("length", ["-1", "abc", "1e3", str(MAX_REQUEST_BODY + 1)])
def test_a_content_length_that_is_no_byte_count_is_answered_not_read(emulator, route, length):
    head = f"POST {route} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n\r\n".encode()
    answer = raw_exchange(emulator, head + b"{}")
    status_line, _, rest = answer.partition(b"\r\n")
    expected = b"413" if length.isdigit() else b"400"
    assert status_line.split()[1] == expected, answer[:300]
    assert b"Content-Length must be a whole number of bytes" in rest


def test_the_ready_file_is_readable_by_its_owner_only(tmp_path):
    ready = tmp_path / "ready.json"
    command = [sys.executable, "-m", "airflow_provider_browsersessions.testing.cli", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--sessions", "0", "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            if ready.exists() or process.poll() is not None:
                break
            time.sleep(0.05)
        assert ready.exists()
        assert stat.S_IMODE(os.stat(ready).st_mode) == 0o600  # it holds the emulator's keys
        assert "env" in json.loads(ready.read_text())
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
