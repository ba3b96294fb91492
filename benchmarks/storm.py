"""Typing storm: the real server over stdio, a character typed every 1/30 s with an automatic inline
request per keystroke (cancel-previous: the previous one gets $/cancelRequest), then a pause and a
final request.  Prints answered/cancelled counts, latency and the server's RSS over time.

    python benchmarks/storm.py [--duration 300] [--model default]

`--model default` (the default) is the shipped model with the server's default settings; `tiny` is
the random-weight test preset.  The last line is the RSS growth after warm-up (1 minute -> the end).
"""

from __future__ import annotations

import argparse
import json
import math
import queue
import re
import statistics
import subprocess
import sys
import threading
import time

TEXT = "def total(items):\n    s = 0\n    for x in items:\n        s += x * 2\n    return s\n\n"


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024  # type: ignore[union-attr]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=300.0, help="seconds of typing (default 300)")
    ap.add_argument("--model", default="default")
    ap.add_argument("--cps", type=float, default=30.0)
    a = ap.parse_args()
    proc = subprocess.Popen([sys.executable, "-m", "dg_lsp", "serve", "--log-level", "WARNING"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    replies: queue.Queue = queue.Queue()
    sent: dict[int, float] = {}

    def read() -> None:
        out = proc.stdout
        while (h := out.readline()):  # type: ignore[union-attr]
            if (m := re.match(rb"Content-Length: (\d+)", h)):
                while out.readline().strip():  # type: ignore[union-attr]
                    pass
                replies.put((time.perf_counter(), json.loads(out.read(int(m.group(1))))))  # type: ignore[union-attr]

    def send(msg: dict) -> None:
        body = json.dumps(msg).encode()
        proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]

    threading.Thread(target=read, daemon=True).start()
    send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "capabilities": {"textDocument": {"inlineCompletion": {}}},
        "initializationOptions": {"dgLsp": {"model": a.model}}}})
    send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    while True:  # wait for ready
        _, m = replies.get(timeout=600)
        if m.get("method") == "dg/status" and m["params"]["state"] == "ready":
            break
    uri, text, version, n = "file:///storm.py", "", 1, 0
    send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": ""}}})
    stats_ids: dict[int, float] = {}

    def stats_at(minute: float) -> None:  # what the server holds: its answer is read at the end
        msg_id = -1000 - len(stats_ids)
        stats_ids[msg_id] = minute
        send({"jsonrpc": "2.0", "id": msg_id, "method": "workspace/executeCommand",
              "params": {"command": "dg.stats", "arguments": []}})

    start, rss, marks = time.perf_counter(), {0: rss_mb(proc.pid)}, [60, 180, 300]
    stats_at(0)
    while (now := time.perf_counter()) - start < a.duration:
        ch = TEXT[n % len(TEXT)]
        lines = text.split("\n")
        pos = {"line": len(lines) - 1, "character": len(lines[-1])}
        version += 1
        send({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"range": {"start": pos, "end": pos}, "text": ch}]}})
        text += ch
        lines = text.split("\n")
        n += 1
        if n > 1:
            send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": n - 1}})
        sent[n] = time.perf_counter()
        send({"jsonrpc": "2.0", "id": n, "method": "textDocument/inlineCompletion", "params": {
            "textDocument": {"uri": uri}, "position": {"line": len(lines) - 1, "character": len(lines[-1])},
            "context": {"triggerKind": 2}}})
        for mk in marks:
            if now - start >= mk and mk // 60 not in rss:
                rss[mk // 60] = rss_mb(proc.pid)
                stats_at(mk // 60)
        time.sleep(max(0.0, start + n / a.cps - time.perf_counter()))
    end = a.duration / 60
    rss[int(end) if end == int(end) else round(end, 2)] = rss_mb(proc.pid)
    stats_at(list(rss)[-1])
    time.sleep(1.0)  # the pause
    final = n + 1
    sent[final] = time.perf_counter()
    send({"jsonrpc": "2.0", "id": final, "method": "textDocument/inlineCompletion", "params": {
        "textDocument": {"uri": uri}, "position": {"line": len(lines) - 1, "character": len(lines[-1])},
        "context": {"triggerKind": 2}}})
    answered, shown, cancelled, lat, final_ok, final_ms, held = 0, 0, 0, [], False, 0.0, {}
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline and not final_ok:
        try:
            at, m = replies.get(timeout=5)
        except queue.Empty:
            break
        if m.get("id") in stats_ids and "result" in m:
            held[stats_ids[m["id"]]] = m["result"]
        if m.get("id") in sent and "method" not in m:
            if "result" in m:
                answered += 1
                shown += bool((m["result"] or {}).get("items"))
                lat.append((at - sent[m["id"]]) * 1000)
            elif m["error"]["code"] == -32800:
                cancelled += 1
            if m["id"] == final and "result" in m:
                final_ok, final_ms = True, (at - sent[final]) * 1000
    send({"jsonrpc": "2.0", "id": -1, "method": "shutdown"})
    send({"jsonrpc": "2.0", "method": "exit"})
    proc.wait(timeout=60)
    lat.sort()
    minutes = " / ".join(f"{k}" for k in rss)
    print("| keystrokes | answered | with an item | cancelled | final after pause | p50 ms | p95 ms |"
          f" RSS MB ({minutes} min) |")
    print("|---|---|---|---|---|---|---|---|")
    p95 = lat[max(0, math.ceil(0.95 * len(lat)) - 1)] if lat else 0.0  # nearest rank
    final_cell = f"answered, {final_ms:.0f} ms" if final_ok else "NOT answered"
    print(f"| {n} | {answered} | {shown} | {cancelled} | {final_cell} | "
          f"{statistics.median(lat) if lat else 0:.0f} | {p95:.0f} | "
          f"{' / '.join(f'{v:.0f}' for v in rss.values())} |")
    print("| minute | " + " | ".join(f"{k}" for k in held) + " |")
    print("|---|" + "---:|" * len(held))
    rows = (("contextCacheBytes", "context cache MB", lambda x: f"{x / 2**20:.1f}"),
            ("workspaceIndexMb", "workspace index MB", lambda x: f"{x:.1f}"),
            ("rssMb", "RSS MB", lambda x: f"{x:.1f}"),
            ("completed", "model requests finished", str), ("typingHits", "typing-cache hits", str))
    for key, label, show in rows:
        if held and all(key in v for v in held.values()):
            print(f"| {label} | " + " | ".join(show(v[key]) for v in held.values()) + " |")
    if 1 in rss and len(rss) > 2:
        last = list(rss.values())[-1]
        print(f"RSS growth after warm-up (1 min -> end): {last - rss[1]:+.1f} MB "
              f"({100 * (last - rss[1]) / rss[1]:+.1f} %)")


if __name__ == "__main__":
    main()
