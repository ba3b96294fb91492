"""Workspace-aware infilling: exact match with and without the workspace, the copy heuristic as the
baseline, tokens per forward, latency with retrieval included, index build and update costs.

    python benchmarks/workspace.py [--n 200] [--seed 0] [--threads 1] [--model FOLDER] [--quality-only]
                                   [--corpus data/corpus-v2 --packages site:httpx,site:markdown-it-py]
                                   [--library default|FILE|none]

Held-out single-line tasks (`runtime.eval.heldout`: the rest of the line after the indentation,
and mid-line), each held-out package as the workspace of its own files, the task's own file left
out of the index (its prefix and suffix stand for it).  `--corpus` takes another built corpus's
held-out split (corpus v2 also holds out two pinned third-party packages, httpx and markdown-it-py,
which no model here was trained on), `--packages` keeps some of its packages.  Rows:

* model: the shipped model, no workspace;
* copy heuristic: the most frequent other line of the same file, else of the package, that starts
  with what is typed on the cursor's line (its rest is the answer) -- the baseline to beat;
* top draft: retrieval's best line draft (the package's and the line library's, `--library`), no model;
* model + drafts: what the server does (drafts verified on canvases, `runtime.drafts`; and context
  snippets in the prompt for a model whose config.json declares the layout).

Those requests have cold contexts (each task is another file); a second measurement times the
typing case (about 120 of the tasks, each warmed once, then the median of 3).

Then: indexing a Python standard library folder capped at 2,000 files / 20 MB (time, resident
memory growth; `--index-mb 64` reaches the 2,000 files, which 20 MB stops short of), and the cost of a
keystroke in a 5,000-line open file.  Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import sysconfig
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.eval.heldout import (  # noqa: E402 - after the path set-up
    DEFAULT_CORPUS,
    HeldoutTask,
    heldout_documents,
    is_exact,
    iter_tasks,
    package_indexes,
    request_for,
    workspace_request,
)
from runtime.measure import cpu_name, percentile, rss_bytes  # noqa: E402
from runtime.workspace import WorkspaceIndex, WorkspaceLimits  # noqa: E402

KINDS = ("line_rest", "mid_line")
PATTERNS = {"line_rest": "new line (after Enter, at the indentation)", "mid_line": "inside a line"}


def copy_heuristic(task: HeldoutTask, index: WorkspaceIndex, path: str) -> str:
    """The baseline: the most frequent other line of the same file, else of the package, that
    starts with what is typed on the cursor's line; the answer is the rest of that line."""
    before = task.prefix.rsplit("\n", 1)[-1]
    typed = before.lstrip()
    lines = task.prefix.split("\n")[:-1] + task.suffix.split("\n")[1:]
    own = Counter(ln.strip() for ln in lines if ln.strip().startswith(typed) and len(ln.strip()) > len(typed))
    if own:
        return own.most_common(1)[0][0][len(typed) :]
    package = index.with_prefix(typed, exclude=path) if typed else []
    return max(package, key=lambda x: x[1])[0][len(typed) :] if package else ""


def typing(
    backend, tasks: list[HeldoutTask], indexes, context_tokens: int, library=None
) -> dict[str, tuple[float, float]]:
    """The typing case: each request run once to warm the context cache (the previous keystroke's
    context), then timed as the median of 3; retrieval included.  "row, pattern" -> (p50, p95) ms,
    the patterns: at the indentation of a new line (`line_rest`), inside a line (`mid_line`), both."""
    out = {}
    for name in ("model", "model + drafts"):
        ms: dict[str, list[float]] = {kind: [] for kind in KINDS}
        for task in tasks:
            req = request_for(task, context_tokens)
            t0 = time.perf_counter()
            if name != "model":
                req = workspace_request(
                    task, req, indexes, snippet_tokens=backend.snippet_tokens, library=library
                )
            retrieval_ms = (time.perf_counter() - t0) * 1000
            backend.infill(req)
            warm = statistics.median(backend.infill(req).stats.ms for _ in range(3))
            ms[task.kind].append(warm + retrieval_ms)
        groups = {PATTERNS[kind]: ms[kind] for kind in KINDS} | {"both": [t for k in KINDS for t in ms[k]]}
        for pattern, times in groups.items():
            out[f"{name}, {pattern}"] = (percentile(times, 50), percentile(times, 95))
    return out


def quality(backend, tasks: list[HeldoutTask], indexes, context_tokens: int, library=None) -> list[dict]:
    names = ("model", "copy heuristic", "top draft", "model + drafts")
    rows: dict[str, dict] = {
        n: {"hits": Counter(), "n": Counter(), "fw": 0, "tok": 0, "ms": []} for n in names
    }
    for task in tasks:
        package, path, _ = task.source.rsplit(":", 2)
        index = indexes[package]
        base = request_for(task, context_tokens)
        t0 = time.perf_counter()
        with_drafts = workspace_request(
            task, base, indexes, snippet_tokens=backend.snippet_tokens, library=library
        )
        retrieval_ms = (time.perf_counter() - t0) * 1000
        answers = {
            "copy heuristic": (copy_heuristic(task, index, path), None, 0.0),
            "top draft": ((with_drafts.drafts[0][0] if with_drafts.drafts else ""), None, retrieval_ms),
        }
        for name, req, extra in (("model", base, 0.0), ("model + drafts", with_drafts, retrieval_ms)):
            res = backend.infill(req)
            answers[name] = (res.text, res.stats, res.stats.ms + extra)
        for name, (text, stats, ms) in answers.items():
            row = rows[name]
            row["n"][task.kind] += 1
            row["hits"][task.kind] += is_exact(text, task.middle)
            row["ms"].append(ms)
            if stats is not None:
                row["fw"] += stats.forwards
                row["tok"] += stats.tokens
    out = []
    for name, row in rows.items():
        n_all = sum(row["n"].values())
        out.append({
            "name": name,
            **{k: 100 * row["hits"][k] / max(1, row["n"][k]) for k in KINDS},
            "all": 100 * sum(row["hits"].values()) / max(1, n_all),
            "tpf": row["tok"] / row["fw"] if row["fw"] else None,
            "p50": percentile(row["ms"], 50), "p95": percentile(row["ms"], 95),
        })  # fmt: skip
    return out


def snippet_recall(tasks: list[HeldoutTask], indexes) -> dict:
    """How often the answer's line is inside a retrieved context snippet (what a model trained with
    the snippet layout could copy), and the retrieval's cost (cold: each task is another file)."""
    from runtime.snippets import workspace_snippets

    hits, ms, counts = 0, [], []
    for task in tasks:
        package, path, _ = task.source.rsplit(":", 2)
        t0 = time.perf_counter()
        found = workspace_snippets(task.prefix, task.suffix, indexes[package], document=path)
        ms.append((time.perf_counter() - t0) * 1000)
        line = (task.prefix.rsplit("\n", 1)[-1] + task.middle).strip()
        hits += any(line in s.text for s in found)
        counts.append(len(found))
    return {"recall": 100 * hits / max(1, len(tasks)), "p50": percentile(ms, 50), "p95": percentile(ms, 95),
            "per_task": statistics.mean(counts) if counts else 0.0}  # fmt: skip


def indexing(max_files: int = 2000, max_bytes: int = 20 * 2**20) -> dict:
    folder = Path(sysconfig.get_paths()["stdlib"])
    gc.collect()
    before = rss_bytes()
    index = WorkspaceIndex(WorkspaceLimits(max_files=max_files, max_bytes=max_bytes))
    t0 = time.perf_counter()
    index.add_folder(folder)
    seconds = time.perf_counter() - t0
    gc.collect()
    return {"folder": str(folder), "files": index.stats.documents, "mb": index.stats.bytes / 2**20,
            "seconds": seconds, "rss_mb": (rss_bytes() - before) / 2**20, "index": index}  # fmt: skip


def keystroke(index: WorkspaceIndex, lines: int = 5000) -> dict:
    """A 5,000-line open file: a keystroke marks it (dg_lsp.workspace: O(1)); the next query in
    another file re-indexes it once: both timed, and a draft query in the file itself."""
    from dg_lsp.workspace import WorkspaceFeed

    text = "".join(f"    value_{i % 700} = compute(item_{i % 300}, {i})\n" for i in range(lines))
    feed = WorkspaceFeed()
    feed.index = index
    index.limits = WorkspaceLimits(max_bytes=index.limits.max_bytes + 2**20)  # room for the open file
    uri = "file:///bench/big.py"
    feed.opened(uri, text)
    marks, updates, queries = [], [], []
    for i in range(50):
        edited = text + f"    x = {i}\n"
        t0 = time.perf_counter()
        feed.changed(uri, lambda edited=edited: edited)
        marks.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        feed._refresh(None)  # what the next query elsewhere does first
        updates.append((time.perf_counter() - t0) * 1000)
        offset = len(text) - 20
        t0 = time.perf_counter()
        feed.drafts(uri, edited, offset)
        queries.append((time.perf_counter() - t0) * 1000)
    return {"mark": statistics.median(marks), "reindex": statistics.median(updates),
            "query": statistics.median(queries)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="tasks per kind")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--context-tokens", type=int, default=320)
    ap.add_argument("--model", default="default", help="model folder (default: the shipped one)")
    ap.add_argument("--quality-only", action="store_true", help="only the exact-match table")
    ap.add_argument("--indexing-only", action="store_true", help="only indexing and keystroke costs")
    ap.add_argument("--index-mb", type=int, default=20, help="byte cap of the indexing run (64: 2,000 files)")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="built corpus: its held-out split")
    ap.add_argument("--packages", default="", help="comma-separated held-out packages to keep (default: all)")
    ap.add_argument("--library", default="default", help="line library: default, a file, or none")
    a = ap.parse_args(argv)
    if not a.indexing_only:
        with_model(a)
    if not a.quality_only:
        index_costs(a.index_mb)
    return 0


def with_model(a: argparse.Namespace) -> None:
    """The exact-match table, snippet recall and (unless --quality-only) the typing table."""
    from runtime.library import from_setting
    from runtime.load import load_backend

    backend = load_backend(a.model, threads=a.threads)
    library = from_setting(a.library)
    docs = heldout_documents(a.corpus)
    if a.packages:
        docs = [d for d in docs if d.package in a.packages.split(",")]
    tasks = list(iter_tasks(a.n, kinds=KINDS, seed=a.seed, docs=docs))
    indexes = package_indexes(docs)
    day = time.strftime("%Y-%m-%d")
    print(f"# Workspace-aware infilling ({cpu_name()}, torch threads {a.threads}, {day}, "
          f"{backend.description})\n")  # fmt: skip
    packages = ", ".join(sorted({d.package for d in docs}))
    pairs = f"the line library's {len(library):,} pairs" if library is not None else "no line library"
    print(f"{len(tasks)} held-out tasks (seed {a.seed}; {packages}), each package its own workspace, "
          f"{pairs}; ms include retrieval.\n")  # fmt: skip
    print("| row | exact line_rest % | exact mid_line % | exact all % | tokens/forward | p50 ms | p95 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in quality(backend, tasks, indexes, a.context_tokens, library):
        tpf = f"{r['tpf']:.2f}" if r["tpf"] is not None else "-"
        print(f"| {r['name']} | {r['line_rest']:.1f} | {r['mid_line']:.1f} | {r['all']:.1f} | {tpf} | "
              f"{r['p50']:.1f} | {r['p95']:.1f} |")  # fmt: skip
    sr = snippet_recall(tasks, indexes)
    budget = backend.snippet_tokens
    shown = f"in the prompt, budget {budget} tokens" if budget else "not shown to this model"
    print(f"\nContext snippets ({shown}): the answer's line is inside "
          f"one for {sr['recall']:.1f} % of the tasks ({sr['per_task']:.1f} snippets a task; retrieval "
          f"p50 {sr['p50']:.1f} / p95 {sr['p95']:.1f} ms, cold).")  # fmt: skip
    if a.quality_only:
        return
    warm = typing(backend, tasks[:: max(1, len(tasks) // 120)], indexes, a.context_tokens, library)
    print("\nTyping (warm context cache, median of 3, retrieval included):\n")
    print("| row, typing pattern | p50 ms | p95 ms |\n| --- | ---: | ---: |")
    for name, (p50, p95) in warm.items():
        print(f"| {name} | {p50:.1f} | {p95:.1f} |")


def index_costs(index_mb: int) -> None:
    """Indexing (capped at 2,000 files and `index_mb`) and a keystroke's cost."""
    ix = indexing(max_bytes=index_mb * 2**20)
    print(f"\nIndexing {ix['folder']}: {ix['files']} files, {ix['mb']:.1f} MB in {ix['seconds']:.1f} s, "
          f"resident memory +{ix['rss_mb']:.0f} MB.")  # fmt: skip
    ks = keystroke(ix["index"])
    print(f"Keystroke in a 5,000-line open file: mark {ks['mark'] * 1000:.0f} us; deferred re-index "
          f"{ks['reindex']:.1f} ms (once per burst, at the next query in another file); drafts query "
          f"{ks['query']:.1f} ms (medians of 50).")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
