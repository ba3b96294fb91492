"""`dg-lsp serve` as an editor runs it: stderr quiet by default, and a quiet end on a closed pipe.

Neovim files every line a server writes to stderr in lsp.log as `[ERROR]`, and
`:qa!` closes the pipes without waiting for the answer to `shutdown`.  The
server here is a real subprocess spoken to in raw JSON-RPC over its pipes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from dg_lsp import serve

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0


def _frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class Pipes:
    """Just enough of an LSP client: send messages, read them until one matches."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc, self.buf = proc, b""

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(_frame({"jsonrpc": "2.0", **message}))
        self.proc.stdin.flush()

    def _read_message(self, deadline: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if sep:
                length = int(head.split(b"Content-Length:")[1].split(b"\r\n")[0])
                if len(rest) >= length:
                    self.buf = rest[length:]
                    return json.loads(rest[:length])
            left = deadline - time.monotonic()
            assert left > 0, f"no message from the server within {TIMEOUT} s"
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                assert chunk, "the server closed its stdout"
                self.buf += chunk

    def wait_for(self, method: str, **params: Any) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while True:
            m = self._read_message(deadline)
            if m.get("method") == method and all(m["params"].get(k) == v for k, v in params.items()):
                return m


def test_default_stderr_is_quiet_and_a_closed_pipe_ends_the_server_quietly(tmp_path: Path) -> None:
    stderr_file = tmp_path / "stderr.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with stderr_file.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dg_lsp", "serve"],  # no --log-level, no --log-file: an editor's default
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, cwd=tmp_path, env=env,
        )
    try:
        pipes = Pipes(proc)
        pipes.send({"id": 1, "method": "initialize", "params": {
            "processId": os.getpid(), "rootUri": None, "capabilities": {},
            "initializationOptions": {"dgLsp": {"model": "tiny", "threads": 1}},
        }})
        pipes.send({"method": "initialized", "params": {}})
        pipes.wait_for("dg/status", state="ready")
        # what `:qa!` does: ask for shutdown, then close both pipes without reading the answer
        pipes.send({"id": 2, "method": "shutdown", "params": None})
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdout.close()
        proc.stdin.close()
        code = proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = stderr_file.read_text()
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert " INFO " not in stderr, f"INFO lines on stderr by default:\n{stderr}"
    assert code == 0, (code, stderr)


def _root_level(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    serve._setup_logging(parser.parse_args(argv))
    return logging.getLogger().level


def test_default_log_level_is_warning_on_stderr_and_info_in_a_file(tmp_path: Path) -> None:
    saved = logging.getLogger().handlers[:], logging.getLogger().level
    try:
        assert _root_level([]) == logging.WARNING
        assert _root_level(["--log-file", str(tmp_path / "server.log")]) == logging.INFO
        assert _root_level(["--log-level", "debug"]) == logging.DEBUG
    finally:
        root = logging.getLogger()
        for h in root.handlers[:]:
            root.removeHandler(h)
            h.close()
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])


def test_client_pipe_drops_writes_after_the_client_closed_it(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # the client is gone
    stream = os.fdopen(write_fd, "wb", buffering=0)
    pipe = serve.ClientPipe(stream)
    assert pipe.write(b"Content-Length: 2\r\n\r\n{}") > 0  # BrokenPipeError swallowed
    pipe.flush()
    assert pipe.closed
    assert pipe.write(b"more") == 4  # and nothing raised afterwards
    stream.close()
