"""`dg-lsp serve --tcp`: the same framing path as stdio (`FrameReader`, `DgProtocol.receive`), over a
loopback socket.  Before, TCP used pygls's own reader, which a bad `Content-Length` deafened for the
rest of the connection.  No model loads (no `initialized`): the server starts in about a second."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys

from raw_client import frame

TIMEOUT = 60


def read_message(sock: socket.socket, buf: bytearray) -> dict:
    while True:
        end = buf.find(b"\r\n\r\n")
        m = re.match(rb"Content-Length: (\d+)\r\n", buf)
        if end >= 0 and m is not None and len(buf) >= end + 4 + int(m.group(1)):
            body = bytes(buf[end + 4 : end + 4 + int(m.group(1))])
            del buf[: end + 4 + int(m.group(1))]
            return json.loads(body)
        data = sock.recv(65536)
        assert data, "the server closed the connection"
        buf += data


def test_tcp_resynchronises_after_a_malformed_frame_and_answers():
    proc = subprocess.Popen([sys.executable, "-m", "dg_lsp", "serve", "--tcp", "127.0.0.1:0"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
        m = re.match(r"dg-lsp: listening on 127\.0\.0\.1:(\d+)", line)
        assert m is not None, line
        sock = socket.create_connection(("127.0.0.1", int(m.group(1))), timeout=TIMEOUT)
        buf = bytearray()
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"processId": None, "rootUri": None, "capabilities": {}}}
        sock.sendall(frame(init))
        assert "capabilities" in read_message(sock, buf)["result"]
        stats = {"jsonrpc": "2.0", "id": 2, "method": "workspace/executeCommand",
                 "params": {"command": "dg.stats", "arguments": []}}
        body = json.dumps(stats).encode()
        # a length that is not a number, then the same request whole: both are answered
        sock.sendall(b"Content-Length: abc\r\n\r\n" + body + frame({**stats, "id": 3}))
        replies = {r["id"]: r for r in (read_message(sock, buf), read_message(sock, buf))}
        assert replies[2]["error"]["code"] == -32700  # the broken frame, by the id in its body
        assert replies[3]["result"]["protocolErrors"] == 1
        sock.sendall(frame({"jsonrpc": "2.0", "id": 4, "method": "shutdown"}))
        assert read_message(sock, buf)["id"] == 4
        sock.sendall(frame({"jsonrpc": "2.0", "method": "exit"}))
        assert proc.wait(timeout=TIMEOUT) == 0
        sock.close()
        assert "Traceback" not in proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
