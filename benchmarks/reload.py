"""Model reloads: does the server's memory plateau?  The real server over stdio; each round pushes a
setting that reloads the model (`kernels` toggled: on a CPU it changes nothing but forces a reload),
waits for `ready`, asks for two inline completions (one on a blank line, one mid-line, so every
per-model cache is used), then reads the server's RSS.  Prints a table of RSS by round.

    python benchmarks/reload.py [--reloads 80] [--model default] [--every 10]
"""

from __future__ import annotations

import argparse
import json
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.measure import cpu_name  # noqa: E402 - after the path set-up

DOC = "def total(items):\n    s = 0\n    for x in items:\n        \n    return s\n"
SITES = [(3, 8), (1, 9)]
"""(line, character): the blank line of the loop body, and after `s = 0` (mid-file, end of line)."""


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024  # type: ignore[union-attr]


class Server:
    """`python -m dg_lsp serve` spoken to in raw frames."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "dg_lsp", "serve", "--log-level", "WARNING"],
                                     cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.messages: queue.Queue = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while (h := out.readline()):
            if (m := re.match(rb"Content-Length: (\d+)", h)):
                while out.readline().strip():
                    pass
                self.messages.put(json.loads(out.read(int(m.group(1)))))

    def send(self, msg: dict) -> None:
        body = json.dumps(msg).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def wait(self, pred, timeout: float = 600.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            m = self.messages.get(timeout=max(0.1, deadline - time.monotonic()))
            if "method" in m and "id" in m:  # the server's own requests (progress tokens)
                self.send({"jsonrpc": "2.0", "id": m["id"], "result": None})
            if pred(m):
                return m

    def request(self, method: str, params: dict) -> dict:
        self.next_id += 1
        msg_id = self.next_id
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return self.wait(lambda m: m.get("id") == msg_id and "method" not in m)

    def notify(self, method: str, params: dict) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})


def ready(m: dict) -> bool:
    return m.get("method") == "dg/status" and m["params"]["state"] in ("ready", "error")


def complete(server: Server, uri: str) -> None:
    for line, character in SITES:
        server.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": character},
            "context": {"triggerKind": 1}})


def measure(reloads: int, model: str, every: int) -> dict[int, float]:
    """RSS (MB) after round 0 (the first load) and after every `every`-th reload."""
    server = Server()
    settings = {"model": model, "threads": 1, "kernels": True}
    server.request("initialize", {"processId": None, "rootUri": None, "capabilities": {
        "textDocument": {"inlineCompletion": {}}}, "initializationOptions": {"dgLsp": settings}})
    server.notify("initialized", {})
    server.wait(ready)
    uri = "file:///reload.py"
    server.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": DOC}})
    complete(server, uri)
    out = {0: rss_mb(server.proc.pid)}
    for i in range(1, reloads + 1):
        settings["kernels"] = not settings["kernels"]
        server.notify("workspace/didChangeConfiguration", {"settings": {"dgLsp": dict(settings)}})
        server.wait(lambda m: m.get("method") == "dg/status" and m["params"]["state"] == "loading")
        server.wait(ready)
        complete(server, uri)
        if i % every == 0 or i == reloads:
            out[i] = rss_mb(server.proc.pid)
    server.request("shutdown", {})
    server.notify("exit", {})
    server.proc.wait(timeout=60)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reloads", type=int, default=80)
    ap.add_argument("--model", default="default")
    ap.add_argument("--every", type=int, default=10, help="read RSS after every N reloads")
    a = ap.parse_args(argv)
    started = time.perf_counter()
    rss = measure(a.reloads, a.model, a.every)
    print(f"{cpu_name()}; model {a.model}; {a.reloads} reloads in {time.perf_counter() - started:.0f} s")
    print("| reloads | " + " | ".join(str(k) for k in rss) + " |")
    print("|---|" + "---:|" * len(rss))
    print("| RSS MB | " + " | ".join(f"{v:.0f}" for v in rss.values()) + " |")
    keys = list(rss)
    half = keys[len(keys) // 2]
    print(f"growth over the second half ({half} -> {keys[-1]} reloads): "
          f"{rss[keys[-1]] - rss[half]:+.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
