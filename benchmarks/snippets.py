"""Context-snippet retrieval: Jaccard against BM25 (ours, and the `bm25s` library) on the same
windows, the same query and the same file ranking.

    python benchmarks/snippets.py [--n 150] [--seed 0] [--corpus data/corpus] [--no-large]

Held-out single-line tasks (`runtime.eval.heldout`, seed 0: rest of line and mid-line), each
held-out package the workspace of its own files, the task's file left out of the index (its
prefix and suffix stand for it), as `benchmarks/workspace.py` does.  Per scorer:

* recall: the answer's line (stripped) is inside a retrieved snippet; recall@1: inside the best;
  in budget: inside what `runtime.context` actually places within `--snippet-tokens` (the
  clipped context of `--context-tokens` decides what it holds already);
* snippets and their tokens a task (the shipped tokenizer), and tokens placed within the budget;
* retrieval ms, cold (every window cache emptied before the task: the first query after the
  files changed) and warm (the same request again, windows cached: the median of 3).

Rows: `jaccard` and `bm25` (runtime.snippets); `bm25 workspace IDF` (document frequencies over
every window of the package but the task's file, instead of over the query's candidate windows);
`bm25s` (the library, a fresh index of the candidate windows per query; it has no incremental
update).  Then, unless --no-large, a Python standard library folder capped at 20 MB as a large
workspace: retrieval latency there, and what one `bm25s` index of all its windows costs to build
(what every file version would cost with a static index).  Prints Markdown.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import statistics
import sys
import sysconfig
import time
import tracemalloc
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime import snippets as S  # noqa: E402 - after the path set-up
from runtime.context import build_context  # noqa: E402
from runtime.eval.heldout import DEFAULT_CORPUS, heldout_documents, iter_tasks, package_indexes  # noqa: E402
from runtime.measure import cpu_name, percentile  # noqa: E402
from runtime.tokenizer import Tokenizer  # noqa: E402
from runtime.workspace import WorkspaceIndex, WorkspaceLimits  # noqa: E402

KINDS = ("line_rest", "mid_line")
TOKENIZER = ROOT / "models" / "dg-code-small" / "tokenizer.json"


@dataclasses.dataclass(frozen=True)
class Bm25sScorer(S.BM25Scorer):
    """The same BM25 (Lucene's variant: bm25s leaves out the (k1 + 1) factor, which the
    normalization cancels), computed by `bm25s` over a fresh index of the candidate windows."""

    name: str = "bm25s"

    def scores(self, query: set[str], flat: Sequence[S.Window]) -> np.ndarray:
        import bm25s

        corpus = [[t for t, c in w.counts.items() for _ in range(c)] for w in flat]
        model = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
        model.index(corpus, show_progress=False)
        ids = [model.vocab_dict[t] for t in query if t in model.vocab_dict]
        if not ids or not flat:
            return np.zeros(len(flat))
        df = np.diff(model.scores["indptr"])[ids]
        ideal = np.log1p((len(flat) - df + 0.5) / (df + 0.5)).sum()
        return np.asarray(model.get_scores(ids), dtype=np.float64) / ideal


@dataclasses.dataclass(frozen=True)
class WorkspaceIdfScorer(S.BM25Scorer):
    """BM25 with document frequencies over every window of the workspace (the task's own file
    left out; its far text's windows, which are candidates, count at least as the query's)."""

    name: str = "bm25 workspace IDF"
    stats: dict = dataclasses.field(default_factory=dict)
    """'package' -> (window df Counter, windows); (package, path) -> the same for one file;
    'now' -> (package, path) of the task being run."""

    def idf(self, df: np.ndarray, n: int, query: set[str], terms: dict[str, int]) -> np.ndarray:
        package, path = self.stats["now"]
        (total, windows), (own, own_n) = self.stats[package], self.stats[(package, path)]
        ordered = sorted(terms, key=terms.__getitem__)
        wide = np.array([total[t] - own[t] for t in ordered], dtype=np.float64)
        wide, n_wide = np.maximum(wide, df), max(n, windows - own_n)
        return np.log1p((n_wide - wide + 0.5) / (wide + 0.5))


def workspace_df(docs) -> dict:
    """The window document frequencies `WorkspaceIdfScorer` needs, per package and per file."""
    stats: dict = {}
    for d in docs:
        ws = S.windows(d.text)
        own = Counter(t for w in ws for t in w.words)
        stats[(d.package, d.path)] = (own, len(ws))
        total, n = stats.get(d.package, (Counter(), 0))
        total.update(own)
        stats[d.package] = (total, n + len(ws))
    S.windows.cache_clear()
    return stats


def answer_line(task) -> str:
    return (task.prefix.rsplit("\n", 1)[-1] + task.middle).strip()


def placed(tok: Tokenizer, task, found, context_tokens: int, snippet_tokens: int) -> tuple[str, int]:
    """(text, tokens) of the snippets `build_context` places within the budget."""
    pairs = [(s.path, s.text) for s in found]
    ctx = build_context(tok, task.prefix, task.suffix, context_tokens, pairs, snippet_tokens)
    return tok.decode(ctx.ids[: ctx.snippet_tokens]), ctx.snippet_tokens


def timed(fn, repeat: int = 1) -> tuple[object, float]:
    """(result, ms): the median of `repeat` calls."""
    ms, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        ms.append((time.perf_counter() - t0) * 1000)
    return out, statistics.median(ms)


def measure(scorer, tasks, indexes, tok: Tokenizer, a) -> dict:
    """One scorer's row over the tasks."""
    sums, cold, warm = Counter(), [], []
    for task in tasks:
        package, path, _ = task.source.rsplit(":", 2)
        if isinstance(scorer, WorkspaceIdfScorer):
            scorer.stats["now"] = (package, path)

        def ask(task=task, package=package, path=path):
            return S.workspace_snippets(
                task.prefix, task.suffix, indexes[package], document=path, scorer=scorer
            )

        S.windows.cache_clear()
        found, ms = timed(ask)
        cold.append(ms)
        warm.append(timed(ask, 3)[1])
        line = answer_line(task)
        text_in, n_in = placed(tok, task, found, a.context_tokens, a.snippet_tokens)
        sums["recall"] += any(line in s.text for s in found)
        sums["recall1"] += bool(found) and line in found[0].text
        sums["recall_in"] += line in text_in
        sums["per_task"] += len(found)
        sums["tokens"] += sum(len(tok.encode(f"{s.path}\n{s.text}\n")) + 1 for s in found)
        sums["tokens_in"] += n_in
    n = max(1, len(tasks))
    row = {k: v / n for k, v in sums.items()}
    for k in ("recall", "recall1", "recall_in"):
        row[k] *= 100
    row["cold"] = (percentile(cold, 50), percentile(cold, 95))
    row["warm"] = (percentile(warm, 50), percentile(warm, 95))
    return {"name": scorer.name, "min": scorer.min_score, **row}


def reachable(tasks, indexes) -> float:
    """% of tasks whose answer line is in some window of the texts any scorer is offered (the
    ranked files and the current file away from the cursor): the ceiling of every row."""
    hits = 0
    for task in tasks:
        package, path, _ = task.source.rsplit(":", 2)
        index, query = indexes[package], S.query_words(task.prefix)
        offered = S.offered_texts(index, query, path) if query else []
        own = task.prefix.split("\n")
        far = "\n".join(own[: max(0, len(own) - 1 - S.QUERY_LINES)])
        texts = [far, task.suffix, *(text for _, text in offered)]
        line = answer_line(task)
        hits += bool(query) and any(line in w.text for t in texts for w in S.windows(t))
    S.windows.cache_clear()
    return 100 * hits / max(1, len(tasks))


def window_memory(docs) -> tuple[float, float]:
    """(MB of every window of the held-out files as Jaccard keeps them, MB that BM25's term
    frequencies add once counted)."""
    gc.collect()
    tracemalloc.start()
    kept = [S.windows.__wrapped__(d.text) for d in docs]
    sets = tracemalloc.get_traced_memory()[0]
    for w in (w for ws in kept for w in ws):
        _ = w.length
    counted = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return sets / 2**20, (counted - sets) / 2**20


def large_workspace(tasks, scorers, max_bytes: int = 20 * 2**20, with_bm25s: bool = True) -> dict:
    """The standard library folder (20 MB) as the workspace: retrieval p50/p95 per scorer for the
    tasks' prefixes, cold and warm, and one bm25s index of all its windows (build ms, MB)."""
    index = WorkspaceIndex(WorkspaceLimits(max_files=2000, max_bytes=max_bytes))
    index.add_folder(Path(sysconfig.get_paths()["stdlib"]))
    out: dict = {"files": index.stats.documents, "mb": index.stats.bytes / 2**20, "rows": {}}
    for scorer in scorers:
        cold, warm = [], []
        for task in tasks:

            def ask(t=task, s=scorer):
                return S.workspace_snippets(t.prefix, t.suffix, index, scorer=s)

            S.windows.cache_clear()
            cold.append(timed(ask)[1])
            warm.append(timed(ask, 3)[1])
        out["rows"][scorer.name] = [percentile(v, q) for v in (cold, warm) for q in (50, 95)]
    out["bm25s"] = static_bm25s(index) if with_bm25s else None
    return out


def static_bm25s(index: WorkspaceIndex) -> tuple[int, float, float, float]:
    """(windows, ms to window every file, ms to build one bm25s index of them, its MB)."""
    import bm25s

    t0 = time.perf_counter()
    corpus = []
    keys = index.keys()
    for key in keys:
        for w in S.windows.__wrapped__(index.text(key) or ""):
            corpus.append([t for t, c in w.counts.items() for _ in range(c)])
    window_ms = (time.perf_counter() - t0) * 1000
    model = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
    _, build_ms = timed(lambda: model.index(corpus, show_progress=False))
    arrays = sum(model.scores[k].nbytes for k in ("data", "indices", "indptr"))
    vocab = sum(sys.getsizeof(t) for t in model.vocab_dict) + sys.getsizeof(model.vocab_dict)
    return len(corpus), window_ms, build_ms, (arrays + vocab) / 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=150, help="tasks per kind")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--context-tokens", type=int, default=1024)
    ap.add_argument("--snippet-tokens", type=int, default=512, help="the budget (the server's default)")
    ap.add_argument("--no-large", action="store_true", help="skip the standard library workspace")
    ap.add_argument("--large-only", action="store_true",
                    help="only the standard library workspace, Jaccard only, no bm25s index")  # fmt: skip
    a = ap.parse_args(argv)
    if a.large_only:
        tasks = list(iter_tasks(a.n, kinds=KINDS, seed=a.seed, docs=heldout_documents(a.corpus)))
        print_large(large_workspace(tasks[::3], [S.SCORERS["jaccard"]], with_bm25s=False))
        return 0
    docs = heldout_documents(a.corpus)
    tasks = list(iter_tasks(a.n, kinds=KINDS, seed=a.seed, docs=docs))
    indexes = package_indexes(docs)
    tok = Tokenizer.from_file(TOKENIZER)
    scorers = [S.SCORERS["jaccard"], S.SCORERS["bm25"], WorkspaceIdfScorer(stats=workspace_df(docs))]
    try:
        import bm25s

        scorers.append(Bm25sScorer(min_score=S.SCORERS["bm25"].min_score))
        lib = f"bm25s {bm25s.__version__}"
    except ImportError:
        lib = "bm25s not installed: its rows are left out"
    print(f"# Context-snippet retrieval ({cpu_name()}, {time.strftime('%Y-%m-%d %H:%M')}, {lib})\n")
    ceiling = reachable(tasks, indexes)
    print(f"{len(tasks)} held-out tasks (seed {a.seed}), each package its own workspace; budget "
          f"{a.snippet_tokens} snippet tokens after a {a.context_tokens}-token context. The answer's "
          f"line is in some window of the offered texts for {ceiling:.1f} %.\n")  # fmt: skip
    print("| scorer | min score | recall % | recall@1 % | in budget % | snippets | tokens | tokens placed "
          "| cold p50 / p95 ms | warm p50 / p95 ms |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for scorer in scorers:
        r = measure(scorer, tasks, indexes, tok, a)
        print(f"| {r['name']} | {r['min']:g} | {r['recall']:.1f} | {r['recall1']:.1f} | "
              f"{r['recall_in']:.1f} | {r['per_task']:.2f} | {r['tokens']:.0f} | {r['tokens_in']:.0f} | "
              f"{r['cold'][0]:.1f} / {r['cold'][1]:.1f} | "
              f"{r['warm'][0]:.1f} / {r['warm'][1]:.1f} |")  # fmt: skip
    sets, counts = window_memory(docs)
    text_mb = sum(len(d.text) for d in docs) / 2**20
    print(f"\nThe windows of all {len(docs)} held-out files ({text_mb:.1f} MB of text), as Jaccard keeps "
          f"them: {sets:.1f} MB; BM25 term frequencies add {counts:.1f} MB (on first use).")  # fmt: skip
    if not a.no_large:
        print_large(
            large_workspace(tasks[::3], [s for s in scorers if not isinstance(s, WorkspaceIdfScorer)])
        )
    return 0


def print_large(lw: dict) -> None:
    rows = "; ".join(f"{name} cold p50 {c50:.0f} / p95 {c95:.0f} ms, warm p50 {w50:.1f} / p95 {w95:.1f} ms"
                     for name, (c50, c95, w50, w95) in lw["rows"].items())  # fmt: skip
    print(f"\nA large workspace (standard library, {lw['files']} files, {lw['mb']:.1f} MB), retrieval: "
          f"{rows}.")
    if lw["bm25s"] is None:
        return
    n, window_ms, build_ms, mb = lw["bm25s"]
    print(f"One bm25s index of all its {n} windows: windowing {window_ms:.0f} ms, indexing "
          f"{build_ms:.0f} ms, {mb:.1f} MB (bm25s cannot update it: a static index pays this per file "
          "version).")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
