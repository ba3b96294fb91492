"""The remote backend against a small HTTP server on 127.0.0.1 that speaks the completions API.

The server stands in for vLLM or SGLang serving DiffusionGemma, which need a GPU.  It can
answer, stall (never answer) or drop the connection, and records what it saw.
"""

from __future__ import annotations

import json
import select
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("httpx")

from runtime.backends.remote import RemoteBackend, RemoteError, RemoteOptions, connect_remote
from runtime.load import load_backend
from runtime.types import Cancelled, InfillRequest, ModelLoadError


class FakeServer:
    """`behaviour` is a list consumed one POST at a time (the last one repeats): ok, stall, drop, 404, 503."""

    def __init__(
        self, behaviour: list[str], models: tuple[str, ...] = ("tiny-dg",), reply: str = "x + 1"
    ) -> None:
        self.behaviour = list(behaviour)
        self.models = models
        self.reply = reply
        self.posts: list[dict] = []
        self.client_closed = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                outer._send(self, 200, {"object": "list", "data": [{"id": m} for m in outer.models]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.posts.append(body)
                mode = outer.behaviour.pop(0) if len(outer.behaviour) > 1 else outer.behaviour[0]
                if mode == "ok":
                    outer._send(
                        self,
                        200,
                        {
                            "id": "cmpl-1",
                            "object": "text_completion",
                            "model": body["model"],
                            "choices": [{"index": 0, "text": outer.reply, "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
                        },
                    )
                elif mode == "stall":
                    outer._wait_for_close(self)
                elif mode == "drop":
                    self.close_connection = True
                    self.connection.close()
                elif mode == "404":
                    outer._send(
                        self,
                        404,
                        {
                            "object": "error",
                            "type": "NotFoundError",
                            "code": 404,
                            "message": "The model `nope` does not exist.",
                        },
                    )
                elif mode == "503":
                    outer._send(self, 503, {"error": {"message": "server is loading the model"}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _send(self, handler: BaseHTTPRequestHandler, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _wait_for_close(self, handler: BaseHTTPRequestHandler) -> None:
        """Never answer; notice when the client closes its end (recv returns b'')."""
        sock = handler.connection
        end = time.monotonic() + 10
        while time.monotonic() < end:
            readable, _, _ = select.select([sock], [], [], 0.02)
            if readable and not sock.recv(1):
                self.client_closed.set()
                return

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


FAST = RemoteOptions(timeout_s=5.0, connect_timeout_s=1.0, retries=2, backoff_s=0.01, poll_s=0.01)
REQ = InfillRequest(prefix="def f(x):\n    return ", suffix="\n", max_tokens=16)


def test_completion_through_load_backend():
    with FakeServer(["ok"]) as server:
        backend = load_backend(server.url, remote_model="tiny-dg")
        try:
            r = backend.infill(REQ)
        finally:
            backend.close()
    assert backend.name == "remote"
    assert r.text == "x + 1" and r.stats.tokens == 3
    (post,) = server.posts
    assert post["model"] == "tiny-dg" and post["max_tokens"] == 16
    assert post["prompt"].endswith("def f(x):\n    return ")  # the prefix comes last (plain layout)
    assert "```" in post["stop"]


def test_single_served_model_is_picked_and_unknown_model_refused():
    with FakeServer(["ok"], models=("only-one",)) as server:
        backend = connect_remote(server.url, None, FAST)
        backend.close()
        assert backend.model == "only-one"
        with pytest.raises(ModelLoadError, match="does not serve 'other'"):
            connect_remote(server.url, "other", FAST)
    with (
        FakeServer(["ok"], models=("a", "b")) as server,
        pytest.raises(ModelLoadError, match="--remote-model"),
    ):
        connect_remote(server.url, None, FAST)


def test_server_down_is_one_clear_line():
    with FakeServer(["ok"]) as server:
        url = server.url
    with pytest.raises(ModelLoadError) as e:  # nothing listens on that port any more
        connect_remote(url, "tiny-dg", FAST)
    assert "is the server running?" in str(e.value) and "\n" not in str(e.value)


def test_stalled_server_times_out_and_the_connection_is_closed():
    slow = RemoteOptions(timeout_s=0.3, connect_timeout_s=1.0, retries=2, backoff_s=0.01, poll_s=0.01)
    with FakeServer(["stall"]) as server:
        backend = RemoteBackend(server.url, "tiny-dg", slow)
        started = time.monotonic()
        try:
            with pytest.raises(RemoteError, match=r"did not answer within 0\.3 s"):
                backend.infill(REQ)
        finally:
            backend.close()
        assert time.monotonic() - started < 3
        assert len(server.posts) == 1  # a slow server is not retried
        assert server.client_closed.wait(2)


def test_cancel_closes_the_in_flight_request():
    with FakeServer(["stall"]) as server:
        backend = RemoteBackend(server.url, "tiny-dg", FAST)
        cancel_at = time.monotonic() + 0.2
        try:
            with pytest.raises(Cancelled):
                backend.infill(REQ, lambda: time.monotonic() > cancel_at)
            assert server.client_closed.wait(2), "the server never saw the client close the connection"
        finally:
            backend.close()


def test_deadline_gives_up_with_an_empty_answer():
    with FakeServer(["stall"]) as server:
        backend = RemoteBackend(server.url, "tiny-dg", FAST)
        try:
            r = backend.infill(InfillRequest(prefix="x = ", suffix="", deadline_ms=150))
        finally:
            backend.close()
        assert r.text == "" and r.stats.deadline_hit
        assert server.client_closed.wait(2)


def test_dropped_connections_are_retried_then_succeed():
    with FakeServer(["drop", "drop", "ok"]) as server:
        backend = RemoteBackend(server.url, "tiny-dg", FAST)
        try:
            assert backend.infill(REQ).text == "x + 1"
        finally:
            backend.close()
    assert len(server.posts) == 3


def test_retries_are_bounded():
    with FakeServer(["drop"]) as server:
        backend = RemoteBackend(server.url, "tiny-dg", FAST)
        try:
            with pytest.raises(RemoteError) as e:
                backend.infill(REQ)
        finally:
            backend.close()
    assert len(server.posts) == FAST.retries + 1
    assert "dropped the connection" in str(e.value) and "(3 tries)" in str(e.value)


def test_http_errors_carry_the_server_message():
    with FakeServer(["404"]) as server:
        backend = RemoteBackend(server.url, "nope", FAST)
        try:
            with pytest.raises(RemoteError, match=r"HTTP 404: The model `nope` does not exist\."):
                backend.infill(REQ)
        finally:
            backend.close()
        assert len(server.posts) == 1  # a client error is not retried
    with FakeServer(["503", "ok"]) as server:
        backend = RemoteBackend(server.url, "tiny-dg", FAST)
        try:
            assert backend.infill(REQ).text == "x + 1"  # 503 (still loading) is retried
        finally:
            backend.close()


def test_reply_repeating_the_suffix_is_trimmed():
    with FakeServer(["ok"], reply="x + 1)\n```\nmore") as server:
        backend = RemoteBackend(server.url, "tiny-dg", FAST)
        try:
            r = backend.infill(InfillRequest(prefix="y = f(", suffix=")\n", max_tokens=8))
        finally:
            backend.close()
    assert r.text == "x + 1"
