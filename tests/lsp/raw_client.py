"""A client that speaks raw bytes to the real server over stdio, for tests where framing, message
shape or the lifecycle is the point (pytest-lsp's client cannot send a broken frame).

Nothing sleeps: `response(id)` and `notification(method)` block on a reader thread's queue
with a timeout.
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
import time
from typing import Any

from lsp_harness import SERVER

TIMEOUT = 60


def frame(message: Any) -> bytes:
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class RawServer:
    """`python -m dg_lsp serve` with its stdin, stdout (parsed into messages) and stderr."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([*SERVER, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._stderr: list[bytes] = []
        self._next_id = 1000
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            header = out.readline()
            if not header:
                self.messages.put(None)
                return
            m = re.match(rb"Content-Length: (\d+)", header)
            if m is None:
                continue
            while out.readline().strip():
                pass
            self.messages.put(json.loads(out.read(int(m.group(1)))))

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return b"".join(self._stderr).decode("utf-8", "replace")

    def wait_stderr(self, text: str, timeout: float = 10.0) -> str:
        """The server's stderr once it holds `text` (its lines reach us through a reader thread, so
        a line the server wrote before an answer may arrive after it); raises after `timeout` s."""
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the server's stderr:\n{self.stderr[-3000:]}")
            time.sleep(0.02)
        return self.stderr

    def send(self, data: bytes | dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data if isinstance(data, bytes) else frame(data))
        self.proc.stdin.flush()

    def request(self, method: str, params: Any = None, *, send: bool = True) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        if send:
            self.send(message)
        return self._next_id

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def _next(self, timeout: float) -> dict[str, Any]:
        m = self.messages.get(timeout=timeout)
        if m is None:
            raise EOFError(f"server closed its output; stderr:\n{self.stderr[-3000:]}")
        self.seen.append(m)
        return m

    def response(self, msg_id: Any, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The response to `msg_id`, answering the server's own requests on the way."""
        for m in self.seen:
            if m.get("id") == msg_id and "method" not in m:
                return m
        while True:
            m = self._next(timeout)
            if "method" in m and "id" in m:  # a request from the server (progress, applyEdit)
                result = {"applied": True} if m["method"] == "workspace/applyEdit" else None
                self.send({"jsonrpc": "2.0", "id": m["id"], "result": result})
            elif m.get("id") == msg_id:
                return m

    def call(self, method: str, params: Any = None) -> dict[str, Any]:
        return self.response(self.request(method, params))

    def notification(self, method: str, where: Any = None, timeout: float = TIMEOUT) -> dict[str, Any]:
        for m in self.seen:
            if m.get("method") == method and (where is None or where(m.get("params"))):
                return m
        while True:
            m = self._next(timeout)
            if "method" in m and "id" in m:
                self.send({"jsonrpc": "2.0", "id": m["id"], "result": None})
            if m.get("method") == method and (where is None or where(m.get("params"))):
                return m

    def initialize(self, options: Any = None, capabilities: Any = None) -> dict[str, Any]:
        params = {"processId": None, "rootUri": None, "capabilities": capabilities or {},
                  "initializationOptions": options}
        return self.call("initialize", params)

    def close(self) -> int:
        """Shut down and exit if still running; the exit code."""
        if self.proc.poll() is None:
            try:
                self.call("shutdown")
                self.notify("exit")
            except (EOFError, queue.Empty, BrokenPipeError, OSError):
                pass
        try:
            return self.proc.wait(timeout=TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
