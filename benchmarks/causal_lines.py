"""The causal head as an autoregressive line model, against the canvas (no workspace, no drafts).

    python benchmarks/causal_lines.py [--model default] [--n 100] [--seeds 1] [--humaneval] [--limit N]

The model's context is `FIM_SUFFIX suffix FIM_PREFIX prefix` and its context rows are trained with the
next-token loss (`runtime/train/objective.py`), so the causal head at the end of the context is an
autoregressive model of the text after the cursor that has read the suffix. Issue #11 asks whether that
causal side gives more per FLOP than the canvas; this measures it on the decoding path's tasks. Rows:
exact match on held-out single-line tasks (`runtime.eval.heldout`, rest of line and mid-line), and with
`--humaneval` HumanEval single-line pass@1 (length unknown). Columns:

* causal head: its own line (`runtime.lengths.causal_line`: greedy, the first token beginning with the
  healed text as the canvas's first slot does, through the line break, then the same
  `runtime.text.finish` as every backend); none where it runs on past a canvas;
* canvas: `backend.infill` with the model's decoding defaults, no length search, no causal line;
* chooser: the backend with `decoding.causal_line` (the text whose causal log-probability, with the
  suffix's first tokens after it, is the higher: no weight to tune);
* either: the causal head's or the canvas's right (the most a perfect chooser could reach);
* length search: the backend with `decoding.length_search` at `--lengths` (exact-length canvases beside
  the free one, the same joint score choosing).

Then the forwards per held-out task of the canvas, the chooser and the length search (a causal step is
a one-token forward over the cached context, far cheaper than a canvas forward).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.context import build_context  # noqa: E402
from runtime.eval import humaneval as he  # noqa: E402
from runtime.eval.heldout import is_exact, iter_tasks, task_request  # noqa: E402
from runtime.lengths import causal_limit, causal_line  # noqa: E402
from runtime.measure import cpu_name  # noqa: E402
from runtime.text import finish, strip_heal  # noqa: E402

COLUMNS = ("causal head", "canvas", "chooser", "either", "length search")


@torch.inference_mode()
def causal_text(backend, req) -> str:
    """The causal head's own line for a single-line request (`runtime.lengths.causal_line`), finished
    as the request's text; "" where it runs on past a canvas without a line break. Uncut: a backend with
    `decoding.causal_line` also drops a line that runs `CAUSAL_SLACK` tokens past its canvas's text."""
    tok, model = backend.tok, backend.model
    ctx = build_context(tok, req.prefix, req.suffix, req.context_tokens)
    limit = causal_limit(req.max_tokens, backend.canvas_len)
    with backend.autocast():
        kv = model.encode(torch.tensor([ctx.ids]), None)
        line, _ = causal_line(
            model, tok, kv, ctx.ids[-1], heal=ctx.heal, banned=backend.never_written, limit=limit
        )
    return "" if line is None else finish(strip_heal(tok, ctx.heal, line), req)


def tally(rows: list[tuple[bool, bool, bool, bool]]) -> dict[str, float]:
    """(causal right, canvas right, chooser right, length search right) per task -> the table's
    percentages."""
    hits = {
        "causal head": sum(a for a, _, _, _ in rows),
        "canvas": sum(b for _, b, _, _ in rows),
        "chooser": sum(c for _, _, c, _ in rows),
        "either": sum(a or b for a, b, _, _ in rows),
        "length search": sum(s for *_, s in rows),
    }
    return {k: 100.0 * v / max(len(rows), 1) for k, v in hits.items()} | {"n": len(rows)}


def searching(backend, **decoding):
    """The backend with other decoding options (`runtime.decoding`: `length_search`, `causal_line`;
    the same model and cache)."""
    other = copy.copy(backend)
    other.decoding = dataclasses.replace(backend.decoding, **decoding)
    return other


def heldout_rows(backend, variants, n: int, seeds: list[int], context_tokens: int) -> dict[str, float]:
    """`variants`: the backend with the chooser, with the length search."""
    rows, forwards = [], [0, 0, 0]
    for seed in seeds:
        for task in iter_tasks(n, kinds=("line_rest", "mid_line"), seed=seed):
            req = task_request(task.prefix, task.suffix, single_line=True, context_tokens=context_tokens)
            results = [b.infill(req) for b in (backend, *variants)]
            for i, r in enumerate(results):
                forwards[i] += r.stats.forwards
            texts = [causal_text(backend, req), *(r.text for r in results)]
            rows.append(tuple(is_exact(text, task.middle) for text in texts))
    spent = dict(zip(("canvas forwards", "chooser forwards", "search forwards"), forwards, strict=True))
    return tally(rows) | {k: v / max(len(rows), 1) for k, v in spent.items()}


def humaneval_rows(backend, variants, limit: int | None, context_tokens: int) -> dict[str, float]:
    rows = []
    for p in he.load_problems("single-line")[:limit]:
        req = he.request(backend, p, "single-line", "unknown", context_tokens)
        texts = [causal_text(backend, req), *(b.infill(req).text for b in (backend, *variants))]
        texts = [he.finish(t, "single-line") for t in texts]
        runs = {t: he.run_program(he.program(p, t)) for t in set(texts)}  # each text once
        rows.append(tuple(runs[t] for t in texts))
    return tally(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--n", type=int, default=100, help="held-out tasks per kind and seed")
    ap.add_argument("--seeds", default="1", help="comma-separated task seeds")
    ap.add_argument("--humaneval", action="store_true", help="HumanEval single-line pass@1 too")
    ap.add_argument("--limit", type=int, default=None, help="first N HumanEval tasks")
    ap.add_argument("--context-tokens", type=int, default=320)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lengths", default="3,20", help="the length search's exact lengths")
    a = ap.parse_args(argv)
    from runtime.load import load_backend

    backend = searching(load_backend(a.model, threads=a.threads), causal_line=False, length_search=())
    seeds = [int(s) for s in a.seeds.split(",")]
    lengths = tuple(int(n) for n in a.lengths.split(","))
    variants = (searching(backend, causal_line=True), searching(backend, length_search=lengths))
    rows = {"held-out single-line exact match": heldout_rows(backend, variants, a.n, seeds, a.context_tokens)}
    if a.humaneval:
        name = "HumanEval single-line pass@1, length unknown"
        rows[name] = humaneval_rows(backend, variants, a.limit, a.context_tokens)
    print(f"# The causal head as a line model ({cpu_name()}, {backend.description}, seeds {a.seeds})\n")
    print(f"| tasks | n | causal head % | canvas % | chooser % | either % | length search {a.lengths} % |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in rows.items():
        cells = " | ".join(f"{r[k]:.1f}" for k in COLUMNS)
        print(f"| {name} | {r['n']} | {cells} |")
    held = rows["held-out single-line exact match"]
    print(
        f"\nforwards per held-out task: the canvas {held['canvas forwards']:.2f}, with the causal line "
        f"{held['chooser forwards']:.2f} (its one-token steps and the scoring pass), with the length search "
        f"{held['search forwards']:.2f} (its chains and the scoring pass)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
