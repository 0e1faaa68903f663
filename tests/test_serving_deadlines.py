"""Slow clients: deadlines for a request's headers and body, and admission once a body is in."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import time
import urllib.error
from pathlib import Path

import pytest

from server_process import HOST, begin_post, call, serving
from serving_fakes import FakeModel, FakeProvider, app_for, serve_async
from tiny_sklearn import save_tiny_model

REPO = Path(__file__).resolve().parents[1]
TOKEN = "deadline-test-token"
HEADER_S = 1.0
BODY_S = 2.0
SLOTS = 2  # serve.max_concurrent_requests
TRICKLE_S = 0.25  # a slow client sends a byte (or a header line) this often
MARGIN_S = 5.0  # how much later than its deadline a cut may come on 2 busy cores


def metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name))


REFUSED_BODY = 'te_request_refused_total{reason="body_timeout",status="408"}'
REFUSED_HEADER = 'te_request_refused_total{reason="header_timeout",status="408"}'


# --- the guard, in-process ----------------------------------------------------------------


async def held_body(first: bytes, gate: asyncio.Event, rest: bytes = b""):
    """A request body that sends `first`, then waits for `gate` before the rest."""
    yield first
    await gate.wait()
    yield rest


def test_a_body_not_in_by_the_deadline_is_408_closing_the_connection_and_counted() -> None:
    app = app_for(FakeProvider(FakeModel()), body_timeout_s=0.2, max_wait_ms=0)

    async def scenario(client):
        never = asyncio.Event()
        response = await client.post("/predict", content=held_body(b'{"inputs": "sl', never),
                                     headers={"content-type": "application/json"})
        return response, (await client.get("/metrics")).text

    response, metrics = serve_async(app, scenario)

    assert response.status_code == 408 and response.headers["connection"] == "close"
    body = response.json()
    assert body["error_type"] == "timeout"
    assert "serve.body_timeout_s = 0.2 s" in body["error"] and "14 bytes" in body["error"]
    assert metric(metrics, REFUSED_BODY) == 1
    assert metric(metrics, 'te_request_count_total{route="/predict",status="408"}') == 1


def test_a_slow_sender_holds_no_in_flight_slot() -> None:
    app = app_for(FakeProvider(FakeModel()), max_concurrent_requests=1, max_wait_ms=0)

    async def scenario(client):
        gate = asyncio.Event()
        slow = asyncio.ensure_future(client.post(
            "/predict", content=held_body(b'{"inputs": ', gate, b'"at last"}'),
            headers={"content-type": "application/json"}))
        await asyncio.sleep(0)  # the slow request starts sending
        normal = await client.post("/predict", json={"inputs": "not refused"})
        in_flight = app.state.service.in_flight.count
        gate.set()
        return normal.status_code, in_flight, (await slow).status_code

    normal, in_flight, slow = serve_async(app, scenario)

    assert (normal, in_flight, slow) == (200, 0, 200)


# --- a real server --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("deadlines")
    save_tiny_model(root / "tiny")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")  # for --set
    args = ["--model", str(root / "tiny"), "--trust", "--set", "serve.reload_interval_s=0",
            "--set", f"serve.header_timeout_s={HEADER_S}",
            "--set", f"serve.body_timeout_s={BODY_S}",
            "--set", f"serve.max_concurrent_requests={SLOTS}"]
    with serving(args, cwd=root, env={"SENTIMENT_PIPELINE_API_TOKEN": TOKEN}) as server:
        yield server


def head(port: int, *, length: int, token: str | None = TOKEN, end: bool = True) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (f"POST /predict HTTP/1.1\r\nHost: {HOST}:{port}\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
            + ("\r\n" if end else "")).encode()


def trickle(socks: list[socket.socket], chunk: bytes, within_s: float) -> list[tuple]:
    """Send `chunk` on each socket every TRICKLE_S until the server closes it, for at most
    `within_s`; per socket, (seconds until it was closed or None, what the server sent)."""
    start = time.monotonic()
    closed: list[float | None] = [None] * len(socks)
    answers = [b""] * len(socks)
    for sock in socks:
        sock.setblocking(False)
    while None in closed and time.monotonic() - start < within_s:
        for i, sock in enumerate(socks):
            if closed[i] is not None:
                continue
            # Read what the server sent before sending more: a send to a socket it has closed
            # can reset the connection and drop its 408 from the receive buffer.
            if drained(sock, answers, i):
                closed[i] = time.monotonic() - start
                continue
            try:
                sock.send(chunk)
            except BlockingIOError:
                pass
            except OSError:  # reset or broken pipe: closed (keep what arrived before)
                drained(sock, answers, i)
                closed[i] = time.monotonic() - start
        time.sleep(TRICKLE_S)
    for sock in socks:
        sock.close()
    return list(zip(closed, answers, strict=True))


def drained(sock: socket.socket, answers: list[bytes], i: int) -> bool:
    """Append what the server has sent on `sock`; True once it has closed the connection."""
    try:
        while data := sock.recv(65536):
            answers[i] += data
        return True  # recv gave b"": the server closed it
    except BlockingIOError:
        return False  # still open, nothing (more) to read
    except OSError:  # reset
        return True


def connect(port: int, first: bytes) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=10)
    sock.sendall(first)
    return sock


@pytest.mark.slow
def test_clients_sending_headers_slowly_are_cut_off_at_the_header_deadline(served) -> None:
    # Issue 17, finding 4: connections that sent their headers slowly stayed open for 30 s.
    socks = [connect(served.port, head(served.port, length=2, token=None, end=False))
             for _ in range(20)]

    cut = trickle(socks, b"X-Slow: 1\r\n", HEADER_S + MARGIN_S)

    for seconds, answer in cut:
        assert seconds is not None, "a connection sending headers slowly was not closed"
        assert HEADER_S * 0.9 <= seconds <= HEADER_S + MARGIN_S
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b'"error_type": "timeout"' in answer and b"serve.header_timeout_s" in answer


@pytest.mark.slow
def test_a_client_trickling_its_body_gets_408_at_the_body_deadline(served) -> None:
    # Finding 4: one byte every 2 s held a request (and its slot) with no deadline at all.
    sock = connect(served.port, head(served.port, length=100) + b"{")

    [(seconds, answer)] = trickle([sock], b" ", BODY_S + MARGIN_S)

    assert seconds is not None and BODY_S * 0.9 <= seconds <= BODY_S + MARGIN_S
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 408 Request Timeout"
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert b"connection: close" in headers.lower()
    assert json.loads(body)["error_type"] == "timeout"


@pytest.mark.slow
def test_slow_senders_beyond_the_in_flight_limit_leave_room_for_others(served) -> None:
    # Finding 4: 520 slow senders held all 512 slots; every other client got 429.
    slow = [begin_post(served.port, "/predict", 100, token=TOKEN) for _ in range(SLOTS + 3)]
    try:
        for sock in slow:
            sock.sendall(b'{"inputs": ')  # and nothing more for now

        status, body = call(served.port, "/predict", {"inputs": "served at once"}, token=TOKEN)
    except urllib.error.HTTPError as refused:
        pytest.fail(f"a normal request was refused while slow senders were connected: "
                    f"{refused.code} {refused.read().decode()}")
    finally:
        for sock in slow:
            sock.close()

    assert status == 200 and len(json.loads(body)) == 3


@pytest.mark.slow
def test_an_unread_body_still_arriving_at_the_deadline_closes_the_connection(served) -> None:
    # Without the token the answer is 401 at once and the body is never read; a client that
    # goes on trickling it does not keep the connection.
    sock = connect(served.port, head(served.port, length=100, token=None) + b"{")

    [(seconds, answer)] = trickle([sock], b" ", BODY_S + MARGIN_S)

    assert answer.startswith(b"HTTP/1.1 401 ")
    assert seconds is not None and seconds <= BODY_S + MARGIN_S


@pytest.mark.slow
def test_metrics_count_the_408s_by_reason(served) -> None:
    before = call(served.port, "/metrics", token=TOKEN)[1]
    socks = [connect(served.port, head(served.port, length=2, end=False)),
             connect(served.port, head(served.port, length=100) + b"{")]

    cut = trickle(socks, b"X", BODY_S + MARGIN_S)  # a header line that never ends; a body

    assert [answer[:12] for _, answer in cut] == [b"HTTP/1.1 408"] * 2
    after = call(served.port, "/metrics", token=TOKEN)[1]
    assert metric(after, REFUSED_HEADER) == metric(before, REFUSED_HEADER) + 1
    assert metric(after, REFUSED_BODY) == metric(before, REFUSED_BODY) + 1
    assert (metric(after, 'te_request_count_total{route="/predict",status="408"}')
            == metric(before, 'te_request_count_total{route="/predict",status="408"}') + 1)
