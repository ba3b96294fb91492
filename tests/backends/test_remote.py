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
        self.paths: list[str] = []
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
                outer.paths.append(self.path)
                mode = outer.behaviour.pop(0) if len(outer.behaviour) > 1 else outer.behaviour[0]
                if mode == "ok":
                    outer._send(self, 200, outer._answer(self.path, body))
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

    def _answer(self, path: str, body: dict) -> dict:
        """A completions or a chat completions answer, as vLLM shapes them."""
        usage = {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
        if path.endswith("/chat/completions"):
            message = {"role": "assistant", "content": self.reply}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return {"id": "chat-1", "object": "chat.completion", "model": body["model"],
                    "choices": [choice], "usage": usage}  # fmt: skip
        choice = {"index": 0, "text": self.reply, "finish_reason": "stop"}
        return {"id": "cmpl-1", "object": "text_completion", "model": body["model"],
                "choices": [choice], "usage": usage}  # fmt: skip

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
    assert server.paths == ["/v1/chat/completions"]
    assert post["model"] == "tiny-dg" and post["max_tokens"] == 16
    assert post["continue_final_message"] is True and post["add_generation_prompt"] is False
    user, model_turn = post["messages"]
    assert (user["role"], model_turn["role"]) == ("user", "assistant")
    # the model's turn is the prefix, without the space the user typed last (see drop_typed)
    assert model_turn["content"].endswith("def f(x):\n    return")
    assert "```" in post["stop"]
    assert "temperature" not in post and "seed" not in post  # the servers' samplers ignore them


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


_TURNS = "{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
_GEN = "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
CHAT_TEMPLATES = {
    # Gemma-style turns; one keeps message text as it is, one trims it (as many shipped templates do)
    "keeps": _TURNS + "{{ m['content'] }}<end_of_turn>\n" + _GEN,
    "trims": _TURNS + "{{ m['content'] | trim }}<end_of_turn>\n" + _GEN,
}


@pytest.mark.parametrize("template", sorted(CHAT_TEMPLATES))
def test_chat_request_renders_like_the_transformers_backends_prompt(template):
    """What the server renders from our messages (transformers' own renderer, with the request's
    continue_final_message) is the diffusiongemma backend's chat prompt, less the typed whitespace."""
    pytest.importorskip("transformers")
    from transformers.utils.chat_template_utils import render_jinja_template

    from runtime.backends.layout import chat_prompt

    req = InfillRequest(prefix="def f(x):\n    ", suffix="\n\nprint(f(1))\n", max_tokens=16)
    backend = RemoteBackend("http://127.0.0.1:9/v1", "m", FAST)  # nothing is sent
    try:
        path, body, typed = backend.request(req)
    finally:
        backend.close()
    assert path == "/chat/completions" and typed == "\n    "
    (rendered,), _ = render_jinja_template(
        conversations=[body["messages"]], chat_template=CHAT_TEMPLATES[template],
        add_generation_prompt=body["add_generation_prompt"],
        continue_final_message=body["continue_final_message"],
    )  # fmt: skip

    def local(messages):
        (text,), _ = render_jinja_template(
            conversations=[messages], chat_template=CHAT_TEMPLATES[template], add_generation_prompt=True
        )
        return text

    assert rendered + typed == chat_prompt(req.prefix, req.suffix, local)


@pytest.mark.parametrize(
    ("prefix", "reply", "want"),
    [
        ("    return", " x + 1", " x + 1"),  # nothing typed at the end: the reply as it is
        ("    return ", " x + 1", "x + 1"),  # the space the user typed is not inserted twice
        ("def f(x):\n    ", "\n    return x", "return x"),  # nor the line break and indentation
        ("def f(x):\n", "\n\ndef g():", "\ndef g():"),  # one line break typed, a blank line wanted
    ],
)
def test_the_reply_continues_after_what_the_user_typed(prefix, reply, want):
    with FakeServer(["ok"], reply=reply) as server:
        backend = RemoteBackend(server.url, "tiny-dg", FAST)
        try:
            r = backend.infill(InfillRequest(prefix=prefix, suffix="", max_tokens=16))
        finally:
            backend.close()
    assert r.text == want


def test_a_single_line_after_a_typed_line_break_is_not_stopped_at_once():
    with FakeServer(["ok"], reply="\n    return x") as server:
        backend = RemoteBackend(server.url, "tiny-dg", FAST)
        try:
            r = backend.infill(InfillRequest(prefix="def f(x):\n    ", suffix="", single_line=True))
            backend.infill(InfillRequest(prefix="y = ", suffix="", single_line=True))
        finally:
            backend.close()
    assert r.text == "return x"
    assert "\n" not in server.posts[0]["stop"] and "\n" in server.posts[1]["stop"]


def test_plain_prompt_for_base_models():
    plain = RemoteOptions(timeout_s=5.0, connect_timeout_s=1.0, backoff_s=0.01, poll_s=0.01, prompt="plain")
    with FakeServer(["ok"]) as server:
        backend = RemoteBackend(server.url, "tiny-dg", plain)
        try:
            r = backend.infill(REQ)
        finally:
            backend.close()
    (post,) = server.posts
    assert server.paths == ["/v1/completions"] and r.text == "x + 1"
    assert post["prompt"].endswith("def f(x):\n    return ")  # raw text: the prefix comes last, as typed
    assert "messages" not in post and "temperature" not in post and "seed" not in post


def test_plain_prompt_is_reachable_from_load_backend():
    from runtime.types import LargeModelOptions

    with FakeServer(["ok"]) as server:
        options = LargeModelOptions(remote_prompt="plain")
        backend = load_backend(server.url, remote_model="tiny-dg", options=options)
        try:
            backend.infill(REQ)
        finally:
            backend.close()
    assert server.paths == ["/v1/completions"]


def test_the_clipped_prefix_starts_on_a_stable_line_grid():
    """Two keystrokes on a long file: the prompt's prefix starts at the same line both times
    (a multiple of 32 lines), so the server's prefix cache keeps the whole start of the prompt."""
    lines = [f"value_{i} = compute({i}, {i * 7})  # step {i}\n" for i in range(400)]
    first = InfillRequest(prefix="".join(lines) + "result = ", suffix="\n", context_tokens=512)
    second = InfillRequest(prefix=first.prefix + "v", suffix="\n", context_tokens=512)
    backend = RemoteBackend("http://127.0.0.1:9/v1", "m", FAST)
    try:
        heads = [backend.request(r)[1]["messages"][1]["content"] for r in (first, second)]
    finally:
        backend.close()
    start = heads[0].split("\n", 2)[1]  # after the fence: the prompt's first prefix line
    assert heads[1].split("\n", 2)[1] == start and start.startswith("value_")
    assert int(start.split("_")[1].split(" ")[0]) % 32 == 0
    assert len(heads[0]) < len(first.prefix) // 2  # it was clipped
    assert heads[1] == heads[0] + " v"


def test_fixed_canvas_requests_are_refused():
    from runtime.types import BadRequest

    backend = RemoteBackend("http://127.0.0.1:9/v1", "m", FAST)
    try:
        with pytest.raises(BadRequest, match="remote backend cannot honour canvas_tokens"):
            backend.infill(InfillRequest(prefix="x", suffix="", canvas_tokens=8))
    finally:
        backend.close()
