"""How fast does the server answer while someone types?  Prints p50/p95/p99 latency per typing speed.

Replays typing a region of a real Python file (an excerpt of CPython's
textwrap.py) one character at a time against `dg-lsp serve` over stdio: each
keystroke is a `didChange` followed by an automatic `textDocument/inlineCompletion`
request, with no client-side debounce (the worst case: the server's
cancel-previous is the only thing that sheds load).  Latency is measured from
sending a request to its answer, over the requests that were not superseded by
a newer one.  Uses the shipped model; falls back to "tiny" with a warning when
models/dg-code-small is missing.

    python benchmarks/lsp_latency.py [--chars 300] [--speeds 10 30] [--model default]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from lsprotocol import types as t

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "benchmarks" / "data" / "textwrap_excerpt.py"
sys.path.insert(0, str(ROOT))

from benchmarks.lsp_client import serve  # noqa: E402 - after the path set-up
from runtime.measure import percentile  # noqa: E402


async def replay(
    model: str, speed: float, chars: int, start_line: int, threads: int | None, dtype: str = "auto"
) -> dict:
    text = SAMPLE.read_text()
    lines = text.splitlines(keepends=True)
    offset = sum(len(x) for x in lines[:start_line])
    region = text[offset : offset + chars]
    doc = text[:offset] + text[offset + chars :]
    served = await serve({"model": model, "threads": threads, "dtype": dtype}, name="lsp-latency-bench")
    client = served.client
    uri = SAMPLE.as_uri()
    served.open(uri, doc)
    warm = await served.stats()

    line, col = start_line, 0
    sent: list[tuple[int, float]] = []
    answered: list[float] = []
    superseded = 0
    pending: list[asyncio.Task] = []

    async def ask(seq: int, pos: t.Position) -> None:
        nonlocal superseded
        t0 = time.perf_counter()
        result = await client.text_document_inline_completion_async(
            t.InlineCompletionParams(
                text_document=t.TextDocumentIdentifier(uri=uri),
                position=pos,
                context=t.InlineCompletionContext(trigger_kind=t.InlineCompletionTriggerKind.Automatic),
            )
        )
        ms = (time.perf_counter() - t0) * 1000
        if seq < len(sent) - 1 and not (result and result.items):
            superseded += 1
        else:
            answered.append(ms)

    interval = 1.0 / speed
    start = time.perf_counter()
    for i, ch in enumerate(region):
        await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))  # the typist's clock
        pos = t.Position(line=line, character=col)
        client.text_document_did_change(
            t.DidChangeTextDocumentParams(
                text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=i + 2),
                content_changes=[
                    t.TextDocumentContentChangePartial(range=t.Range(start=pos, end=pos), text=ch)
                ],
            )
        )
        line, col = (line + 1, 0) if ch == "\n" else (line, col + 1)
        sent.append((i, time.perf_counter()))
        pending.append(asyncio.ensure_future(ask(i, t.Position(line=line, character=col))))
    await asyncio.gather(*pending)
    s = await served.stats()
    await served.stop()
    lookups = s["contextCacheLookups"] - warm["contextCacheLookups"]
    hits = s["contextCacheHits"] - warm["contextCacheHits"]
    return {
        "speed": speed,
        "requests": len(region),
        "answered": len(answered),
        "p50": percentile(answered, 50),
        "p95": percentile(answered, 95),
        "p99": percentile(answered, 99),
        "cancelled": s["cancelled"] - warm["cancelled"],
        "typing_hits": s["typingHits"] - warm["typingHits"],
        "ctx_hit_rate": hits / lookups if lookups else 0.0,
        "model": s["model"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default")
    p.add_argument("--speeds", type=float, nargs="+", default=[10.0, 30.0], help="characters per second")
    p.add_argument("--chars", type=int, default=300, help="characters typed per run")
    p.add_argument("--start-line", type=int, default=60, help="0-based line where typing starts")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--dtype", default="auto", help="the dtype setting: auto, float32 or bfloat16")
    args = p.parse_args(argv)
    model = args.model
    if model == "default":
        from runtime.load import DEFAULT_MODEL_DIR

        if not DEFAULT_MODEL_DIR.exists():
            print(
                f"WARNING: {DEFAULT_MODEL_DIR} is missing; measuring the random-weight 'tiny' model "
                "instead (latency plumbing only, not the shipped model)",
                file=sys.stderr,
            )
            model = "tiny"
    rows = [
        asyncio.run(replay(model, s, args.chars, args.start_line, args.threads, args.dtype))
        for s in args.speeds
    ]
    typed = f"{args.chars} chars of {SAMPLE.name} from line {args.start_line}"
    print(f"model: {rows[0]['model']}   typed: {typed}")
    print(
        "| chars/s | requests | answered | p50 ms | p95 ms | p99 ms | cancelled | typing-cache hits "
        "| context-cache hit rate |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['speed']:g} | {r['requests']} | {r['answered']} | {r['p50']:.1f} | {r['p95']:.1f} "
            f"| {r['p99']:.1f} | {r['cancelled']} | {r['typing_hits']} | {r['ctx_hit_rate']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
