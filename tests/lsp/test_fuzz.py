"""A bounded fuzz of the wire (issue 14): a few hundred random malformed message sequences with a
fixed seed against the real server; after each one the server is alive, answers a valid request,
and prints no traceback.  No model loads (`initialized` is never sent)."""

from __future__ import annotations

import json
import random
import time

from raw_client import RawServer, frame

SEED, SEQUENCES = 14, 300
METHODS = ["textDocument/inlineCompletion", "textDocument/completion", "workspace/executeCommand",
           "textDocument/didOpen", "textDocument/didChange", "textDocument/didClose", "initialize",
           "shutdown", "$/cancelRequest", "workspace/didChangeConfiguration", "dg/nothing"]
VALUES = [None, -1, 0, 2**31, 2**63, 1.5, "", "x", [], [1, "a"], {}, {"uri": 5}, True,
          {"line": -3, "character": 2**40}, "file:///fuzz.py"]


def junk_value(rng: random.Random, depth: int = 0) -> object:
    if depth < 2 and rng.random() < 0.4:
        keys = ["textDocument", "position", "context", "command", "arguments", "uri", "range", "text",
                "contentChanges", "line", "character", "triggerKind", "settings", "id"]
        return {rng.choice(keys): junk_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return rng.choice(VALUES)


def junk_message(rng: random.Random, n: int) -> bytes:
    message: dict[str, object] = {"jsonrpc": rng.choice(["2.0", "2.0", "2.0", "1.0", None]),
                                  "method": rng.choice([*METHODS, 5, None])}
    if rng.random() < 0.7:
        message["id"] = rng.choice([n, f"f{n}", 1.5, None, [n]])
    if rng.random() < 0.9:
        message["params"] = junk_value(rng)
    body = json.dumps(message).encode()
    kind = rng.randrange(8)
    if kind == 0:  # cut JSON
        body = body[: rng.randrange(len(body))]
    if kind == 1:  # wrong length
        return b"Content-Length: %d\r\n\r\n" % max(0, len(body) + rng.randint(-20, 20)) + body
    if kind == 2:  # a broken header
        header = rng.choice([b"Content-Length: abc", b"Content-Length: -3", b"Content-Length: 9" * 20,
                             b"Content-Type: x", b"content-length: %d" % len(body), b""])
        return header + rng.choice([b"\r\n\r\n", b"\n\n"]) + body
    if kind == 3:  # random bytes
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 60)))
    return frame(body)


def test_fuzzed_sequences_never_deafen_or_crash_the_server():
    rng = random.Random(SEED)
    s = RawServer()
    start = time.monotonic()
    try:
        assert "result" in s.initialize()
        for n in range(SEQUENCES):
            s.send(b"".join(junk_message(rng, n) for _ in range(rng.randint(1, 4))))
            # a complete frame after the junk: a valid request must be answered
            s.send(b"\r\n")
            reply = s.call("workspace/executeCommand", {"command": "dg.stats", "arguments": []})
            assert "result" in reply or reply.get("error", {}).get("code") == -32600, (n, reply)
            assert s.proc.poll() is None, n
            if "error" in reply:  # the fuzz sent `shutdown`: start again
                s.close()
                s = RawServer()
                assert "result" in s.initialize()
        assert time.monotonic() - start < 60
    finally:
        stderr = s.stderr
        s.close()
    assert "Traceback" not in stderr, stderr[-3000:]
