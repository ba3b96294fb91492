"""The wire (issue 14 items 2, 3, 9, 10): framing, error replies, lifecycle and noise, over stdio
with raw bytes against the real server, plus `FrameReader` on its own.

Most of these never send `initialized`, so no model loads and the server starts in about a second.
"""

from __future__ import annotations

import json

import pytest
from lsp_harness import TINY
from raw_client import RawServer, frame

from dg_lsp.protocol import MAX_MESSAGE_BYTES, Frame, FrameReader

STATS = {"command": "dg.stats", "arguments": []}


def msg(i: int, method: str = "workspace/executeCommand", params: object = STATS) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}).encode()


# ------------------------------------------------------------------ FrameReader (pure)
def test_frames_split_anywhere_are_reassembled():
    data = frame(msg(1)) + frame(msg(2))
    for cut in range(len(data)):
        r = FrameReader()
        got = r.feed(data[:cut]) + r.feed(data[cut:])
        assert got == [Frame(msg(1)), Frame(msg(2))], cut


BROKEN = {
    "too short": b"Content-Length: 20\r\n\r\n" + msg(1),
    "too long": b"Content-Length: %d\r\n\r\n" % (len(msg(1)) + 30) + msg(1),
    "missing": b"Content-Type: application/vscode-jsonrpc\r\n\r\n" + msg(1),
    "non-numeric": b"Content-Length: abc\r\n\r\n" + msg(1),
    "negative": b"Content-Length: -5\r\n\r\n" + msg(1),
    "2**63": b"Content-Length: 9223372036854775808\r\n\r\n" + msg(1),
    "over the maximum": b"Content-Length: %d\r\n\r\n" % (MAX_MESSAGE_BYTES + 1) + msg(1),
    "zero": b"Content-Length: 0\r\n\r\n" + msg(1),
    "junk line": b"hello\r\n" + frame(msg(1)),
}


@pytest.mark.parametrize("case", BROKEN)
def test_reader_resynchronises_after_a_broken_frame(case):
    """Whatever the broken frame, the next one is read whole (the broken one may be read too)."""
    r = FrameReader()
    frames = r.feed(BROKEN[case] + frame(msg(2)))
    assert frames[-1] == Frame(msg(2)), frames


def test_lf_only_headers_are_accepted():
    assert FrameReader().feed(b"Content-Length: %d\n\n" % len(msg(1)) + msg(1)) == [Frame(msg(1))]


def test_a_too_long_length_that_cuts_the_next_header_keeps_the_next_frame():
    cut = b'{"jsonrpc": "2.0", "id": 1, "met'  # not JSON, and 30 bytes short of its announced length
    data = b"Content-Length: %d\r\n\r\n" % (len(cut) + 30) + cut + b"\r\n" + frame(msg(2))
    assert FrameReader().feed(data)[-1] == Frame(msg(2))


def test_a_too_long_length_answers_without_waiting_for_more_bytes():
    (f,) = FrameReader().feed(b"Content-Length: 9999\r\n\r\n" + msg(1))
    assert f == Frame(msg(1))


# --------------------------------------------------------- the real server, raw bytes
@pytest.fixture(scope="module")
def server():
    s = RawServer()
    assert "result" in s.initialize()
    yield s
    s.close()


def stats_answered(s: RawServer) -> None:
    reply = s.call("workspace/executeCommand", STATS)
    assert reply["result"]["protocolErrors"] >= 0, reply


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_frame_does_not_deafen_the_server(server, case):
    server.send(BROKEN[case])
    stats_answered(server)
    assert server.proc.poll() is None


PARAMS = {
    "negative line": ("textDocument/inlineCompletion",
                      {"textDocument": {"uri": "file:///x.py"}, "position": {"line": -1, "character": 0},
                       "context": {"triggerKind": 1}}),
    "huge character": ("textDocument/inlineCompletion",
                       {"textDocument": {"uri": "file:///x.py"}, "position": {"line": 0, "character": 2**40},
                        "context": {"triggerKind": 1}}),
    "null params": ("textDocument/inlineCompletion", None),
    "list params": ("textDocument/completion", [1, 2]),
    "non-list arguments": ("workspace/executeCommand", {"command": "dg.stats", "arguments": 5}),
    "unknown command": ("workspace/executeCommand", {"command": "dg.nope"}),
    "bad command argument": ("workspace/executeCommand", {"command": "dg.fillSelection", "arguments": [1]}),
}


@pytest.mark.parametrize("case", PARAMS)
def test_invalid_params_get_one_line_32602(server, case):
    method, params = PARAMS[case]
    i = server.request(method, send=False)
    server.send({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
    error = server.response(i)["error"]
    assert error["code"] == -32602, error
    assert "\n" not in error["message"] and "data" not in error
    stats_answered(server)


def test_malformed_json_and_bad_shapes(server):
    server.send(frame(b'{"jsonrpc": "2.0", "id": 71, "method": '))
    assert server.response(71)["error"]["code"] == -32700
    server.send(frame(b"[1, 2]"))
    server.send(frame({"jsonrpc": "2.0", "id": 72, "method": 5}))
    assert server.response(72)["error"]["code"] == -32600
    server.send(frame({"jsonrpc": "1.0", "id": 73, "method": "shutdown"}))
    assert server.response(73)["error"]["code"] == -32600
    i = server.request("dg/nothing")
    assert server.response(i)["error"]["code"] == -32601
    stats_answered(server)


def test_client_mistakes_are_logged_once_without_popups_or_tracebacks(server):
    for n in range(20):
        server.notify("textDocument/didChange", {
            "textDocument": {"uri": f"file:///never-opened-{n}.py", "version": 2},
            "contentChanges": [{"text": "x"}]})
        server.send(b"Content-Length: abc\r\n\r\n{}")
    stats_answered(server)
    popups = [m for m in server.seen if m.get("method") == "window/showMessage"]
    assert popups == []
    stderr = server.wait_stderr("didChange for a document that is not open")
    assert "Traceback" not in stderr
    assert stderr.count("didChange for a document that is not open") == 1
    assert stderr.count("bad Content-Length") <= 1


def test_lifecycle_follows_the_spec():
    s = RawServer()
    try:
        early = s.call("workspace/executeCommand", STATS)
        assert early["error"]["code"] == -32002
        assert s.call("shutdown")["error"]["code"] == -32002  # before initialize: refused, not deaf
        assert "result" in s.initialize()
        assert s.initialize()["error"]["code"] == -32600  # a second initialize
        s.notify("initialized", {})
        stats_answered(s)
        assert s.call("shutdown")["result"] is None
        assert s.call("shutdown")["error"]["code"] == -32600
        assert s.call("workspace/executeCommand", STATS)["error"]["code"] == -32600
        s.notify("exit")
        assert s.proc.wait(timeout=60) == 0
    finally:
        s.close()
    assert "Traceback" not in s.stderr


def test_exit_without_shutdown_exits_1():
    s = RawServer()
    try:
        s.initialize()
        s.notify("exit")
        assert s.proc.wait(timeout=60) == 1
    finally:
        s.close()


def test_a_second_initialize_keeps_the_open_documents():
    s = RawServer()
    try:
        s.initialize(TINY)
        s.notify("textDocument/didOpen", {"textDocument": {
            "uri": "file:///keep.md", "languageId": "markdown", "version": 1, "text": "Some words here.\n"}})
        assert s.initialize()["error"]["code"] == -32600
        # the document is still open: the command gets past "is not open" (and waits for no model:
        # `initialized` was never sent, so it fails for the model, not for the document)
        i = s.request("workspace/executeCommand", {"command": "dg.rewriteMarkdown",
                                                   "arguments": [{"uri": "file:///keep.md"}]})
        s.notify("initialized", {})
        reply = s.response(i)
        assert "not open" not in json.dumps(reply)
    finally:
        s.close()


def test_commands_and_invoked_requests_wait_for_the_model_load():
    """Sent right after `initialized`, while the model loads: the invoked request waits within its
    budget and the command runs once the model is there (item 5); neither fails."""
    s = RawServer()
    try:
        caps = {"window": {"workDoneProgress": True}, "textDocument": {"inlineCompletion": {}},
                "workspace": {"applyEdit": True}}
        s.initialize({"dgLsp": {"model": "tiny", "threads": 1, "invokedBudgetMs": 120_000}}, caps)
        s.notify("initialized", {})
        s.notify("textDocument/didOpen", {"textDocument": {
            "uri": "file:///early.py", "languageId": "python", "version": 1,
            "text": "def add(a, b):\n    return a + b\n"}})
        inline = s.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": "file:///early.py"}, "position": {"line": 1, "character": 10},
            "context": {"triggerKind": 1}})
        rng = {"start": {"line": 1, "character": 11}, "end": {"line": 1, "character": 16}}
        command = s.request("workspace/executeCommand", {
            "command": "dg.fillSelection", "arguments": [{"uri": "file:///early.py", "range": rng}]})
        assert s.response(inline)["result"]["items"]
        assert s.response(command)["result"] is not None
        statuses = [m["params"]["state"] for m in s.seen if m.get("method") == "dg/status"]
        assert statuses[0] == "loading" and "ready" in statuses
    finally:
        s.close()


# ------------------------------------------------------------------ bookkeeping (in process)
async def test_notifications_leave_no_future_behind():
    """pygls kept the future of every notification with a generator or coroutine handler (didOpen,
    didChange) in `_request_futures` for good: the typing storm's RSS grew ~3.6 MB a minute."""
    import io

    from dg_lsp.session import DgServer

    ls = DgServer()
    try:
        p = ls.protocol
        p.set_writer(io.BytesIO())
        p.receive(Frame(msg(1, "initialize", {"processId": None, "rootUri": None, "capabilities": {}})))
        uri = "file:///a.py"
        p.receive(Frame(json.dumps({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": ""}}}).encode()))
        for v in range(2, 202):
            at = {"line": 0, "character": v - 2}
            change = {"range": {"start": at, "end": at}, "text": "x"}
            p.receive(Frame(json.dumps({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
                "textDocument": {"uri": uri, "version": v}, "contentChanges": [change]}}).encode()))
        assert ls.workspace.get_text_document(uri).source == "x" * 200
        assert len(p._request_futures) == 0, len(p._request_futures)
    finally:
        ls.service.close()


async def test_progress_tokens_are_forgotten_when_done():
    """pygls keeps a Future per work-done progress token for good (one per model load and command)."""
    import asyncio
    import io
    import re

    from dg_lsp.session import DgServer

    ls = DgServer()
    try:
        p, out = ls.protocol, io.BytesIO()
        p.set_writer(out)
        p.receive(Frame(msg(1, "initialize", {"processId": None, "rootUri": None,
                                              "capabilities": {"window": {"workDoneProgress": True}}})))

        async def work() -> None:
            async with ls.progress("dg-lsp: test", 1) as step:
                step()

        task = asyncio.ensure_future(work())
        for _ in range(100):  # until the server asks the client for a token
            await asyncio.sleep(0.01)
            if (m := re.search(rb'\{"id": ("[^"]+"|\d+)[^\n]*"window/workDoneProgress/create"',
                               out.getvalue())):
                break
        assert m is not None, out.getvalue()
        p.receive(Frame(b'{"jsonrpc": "2.0", "id": %s, "result": null}' % m.group(1)))
        await asyncio.wait_for(task, 10)
        assert b'"kind": "end"' in out.getvalue()
        assert ls.work_done_progress.tokens == {}
    finally:
        ls.service.close()
