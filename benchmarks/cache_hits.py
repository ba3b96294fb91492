"""Which cached contexts do keystrokes hit?  Sizes the context cache's default (runtime/cache.py).

    python benchmarks/cache_hits.py [--chars 600] [--threads 1]

Types `--chars` characters of benchmarks/data/textwrap_excerpt.py (from line 60) through the shipped
model, one single-line request per keystroke, and records for every cache lookup the recency rank
of the entry it reused (0 = the most recent).  Prints the share of hits within the last k entries,
the size of an entry, and what the cache held at the end.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.cache import ContextCache, common_prefix  # noqa: E402 - after the path set-up
from runtime.measure import cpu_name  # noqa: E402
from runtime.types import InfillRequest  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=600)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache-mb", type=float, default=256.0, help="cap during the replay (large: see all)")
    a = ap.parse_args(argv)
    from runtime.load import load_embedded

    backend = load_embedded("default", threads=a.threads)
    backend.cache = ContextCache(int(a.cache_mb * 2**20))
    ranks: Counter[int] = Counter()
    sizes: list[int] = []
    lookup = backend.cache.lookup

    def recording(ids, **kw):  # the best entry's recency rank, then the real lookup
        entries = list(backend.cache._entries.values())
        best = max(range(len(entries)), key=lambda i: common_prefix(entries[i].ids, ids), default=None)
        if best is not None and common_prefix(entries[best].ids, ids) > 0:
            ranks[len(entries) - 1 - best] += 1
            sizes.append(entries[best].nbytes)
        return lookup(ids, **kw)

    backend.cache.lookup = recording  # type: ignore[method-assign]
    text = (ROOT / "benchmarks" / "data" / "textwrap_excerpt.py").read_text()
    start = sum(len(x) for x in text.splitlines(keepends=True)[:60])
    region, doc = text[start : start + a.chars], text[: start] + text[start + a.chars :]
    for i in range(1, len(region) + 1):
        req = InfillRequest(prefix=doc[:start] + region[:i], suffix=doc[start:], single_line=True,
                            max_tokens=8, context_tokens=320, policy="sequential")  # fmt: skip
        backend.infill(req)
    hits = sum(ranks.values())
    print(f"# Context-cache hits by recency ({cpu_name()}, {a.chars} keystrokes, {hits} hits)\n")
    print("| within the last k entries | share of hits |")
    print("| ---: | ---: |")
    for k in (1, 2, 4, 10, 20):
        print(f"| {k} | {100 * sum(n for r, n in ranks.items() if r < k) / max(1, hits):.1f} % |")
    held = backend.cache.stats()
    entry_mb = sum(sizes) / max(1, len(sizes)) / 2**20
    print(f"\nAn entry: {entry_mb:.2f} MB on average; at the end the cache held {held.entries} entries, "
          f"{held.nbytes / 2**20:.1f} MB.")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
