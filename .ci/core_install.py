"""A core-only install works (issue 14 item 12); run by .ci/core_install with that install's Python,
from outside the checkout, so only what `pip install .` put in site-packages is imported.

    python core_install.py REPO

Checks: dg-lsp comes from site-packages and no extra (transformers, httpx) is installed; the server
answers `initialize` and an inline completion with the shipped embedded model, and exits 0 after
`shutdown`; nothing it or the CLI prints warns about NumPy or shows a traceback; a command that needs
the `backends` extra says so in one line (exit 2), as does the default model outside an editable
install.  Standard library only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TIMEOUT = 300.0
DOC = "def total(items):\n    s = 0\n    for x in items:\n        s += x\n    return s\n\n\nprint(tot"
EXTRA_HINT = "pip install 'dg-lsp[backends]'"
FAILURES: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        FAILURES.append(what)


def clean(stderr: str) -> bool:
    return "numpy" not in stderr.lower() and "Traceback" not in stderr


class Server:
    def __init__(self, *args: str) -> None:
        exe = Path(sys.executable).with_name("dg-lsp")
        self.proc = subprocess.Popen([str(exe), "serve", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.messages: queue.Queue = queue.Queue()
        self.err: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.err.extend(self.proc.stderr), daemon=True).start()  # type: ignore[arg-type]

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while (h := out.readline()):
            if (m := re.match(rb"Content-Length: (\d+)", h)):
                while out.readline().strip():
                    pass
                self.messages.put(json.loads(out.read(int(m.group(1)))))
        self.messages.put(None)

    def send(self, msg: dict) -> None:
        body = json.dumps(msg).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def wait(self, pred) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while (m := self.messages.get(timeout=max(0.1, deadline - time.monotonic()))) is not None:
            if "method" in m and "id" in m:
                self.send({"jsonrpc": "2.0", "id": m["id"], "result": None})
            if pred(m):
                return m
        raise EOFError("the server closed its output:\n" + b"".join(self.err).decode(errors="replace"))

    def call(self, msg_id: int, method: str, params: dict | None) -> dict:
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return self.wait(lambda m: m.get("id") == msg_id and "method" not in m)


def check_server(model: Path) -> None:
    print("server (stdio), model", model)
    s = Server("--model", str(model), "--threads", "1")
    init = s.call(1, "initialize", {"processId": None, "rootUri": None,
                                    "capabilities": {"textDocument": {"inlineCompletion": {}}}})
    check("inlineCompletionProvider" in init.get("result", {}).get("capabilities", {}),
          "initialize answered with inline completion")
    s.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    status = s.wait(lambda m: m.get("method") == "dg/status" and m["params"]["state"] in ("ready", "error"))
    check(status["params"]["state"] == "ready", f"model loaded: {status['params']['message']}")
    uri = "file:///core_install.py"
    s.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": DOC}}})
    reply = s.call(2, "textDocument/inlineCompletion", {
        "textDocument": {"uri": uri}, "position": {"line": 7, "character": 9}, "context": {"triggerKind": 1}})
    items = (reply.get("result") or {}).get("items", [])
    check(bool(items) and bool(items[0]["insertText"].strip()),
          f"an inline completion: {items[0]['insertText'] if items else reply!r}")
    s.call(3, "shutdown", None)
    s.send({"jsonrpc": "2.0", "method": "exit"})
    check(s.proc.wait(timeout=60) == 0, "exit code 0 after shutdown")
    time.sleep(0.2)  # the stderr reader's last lines
    err = b"".join(s.err).decode(errors="replace")
    shown = "" if clean(err) else f": {err[-400:]!r}"
    check(clean(err), "no NumPy warning, no traceback on stderr" + shown)


def cli(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("dg-lsp")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=TIMEOUT)


def check_one_line_error(what: str, args: list[str], needle: str) -> None:
    r = cli(*args)
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 2 and len(lines) == 1 and needle in r.stderr and clean(r.stderr),
          f"{what}: exit {r.returncode}, {r.stderr.strip()!r}")


def main() -> int:
    repo = Path(sys.argv[1]).resolve()
    model = repo / "models" / "dg-code-small"
    print("install")
    spec = importlib.util.find_spec("runtime")
    where = Path(spec.origin or "") if spec else Path()
    check("site-packages" in where.parts and repo not in where.parents, f"dg-lsp imported from {where}")
    for extra in ("transformers", "httpx"):
        check(importlib.util.find_spec(extra) is None, f"{extra} (an extra) is not installed")
    check_server(model)
    print("command line")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "a.py")
        src.write_text(DOC)
        r = cli("infill", f"{src}:8:10", "--model", str(model), "--threads", "1", "--stats")
        # the model ran (its stats line counts forwards); an empty answer is one it may give
        ran = re.search(r"forwards=([1-9]\d*)", r.stderr) is not None
        check(r.returncode == 0 and ran and clean(r.stderr),
              f"infill with the shipped model: {r.stdout.strip()!r} {r.stderr.strip()[-300:]!r}")
        hf = Path(tmp, "hf")
        hf.mkdir()
        (hf / "config.json").write_text(json.dumps({"model_type": "llama"}))
        check_one_line_error("a Hugging Face folder", ["infill", f"{src}:8:10", "--model", str(hf)],
                             EXTRA_HINT)
        check_one_line_error("a remote model server", ["infill", f"{src}:8:10", "--model",
                                                       "http://127.0.0.1:9/v1"], EXTRA_HINT)
        check_one_line_error("the default model outside an editable install",
                             ["infill", f"{src}:8:10"], "pip install -e")
    print("core install:", "FAILED: " + "; ".join(FAILURES) if FAILURES else "all checks passed")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
