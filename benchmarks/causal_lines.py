"""The causal head as an autoregressive line model, against the canvas (no workspace, no drafts).

    python benchmarks/causal_lines.py [--model default] [--n 100] [--seeds 1] [--humaneval] [--limit N]

The model's context is `FIM_SUFFIX suffix FIM_PREFIX prefix` and its context rows are trained with the
next-token loss (`runtime/train/objective.py`), so the causal head at the end of the context is an
autoregressive model of the text after the cursor that has read the suffix. Issue #11 asks whether that
causal side gives more per FLOP than the canvas; this measures it on the shipped decoding path's tasks:
greedy tokens from the head, the first constrained to begin with the healed text (as the canvas's first
slot is), until a line break, then the same `runtime.text.finish` as every backend (the single-line cut
and the suffix-overlap trim). Rows: exact match on held-out single-line tasks (`runtime.eval.heldout`,
rest of line and mid-line), and with `--humaneval` HumanEval single-line pass@1 (length unknown), each for
the causal head, the canvas (`backend.infill`, the model's decoding defaults), a chooser between the two
(the text whose causal log-probability, with the suffix's first tokens after it, is the higher: the causal
head's likelihood of the joined text, no weight to tune) and either of the two (the most a perfect chooser
could reach); and the canvas with the length search (`runtime.lengths`, at `--lengths`: the exact-length
canvases beside the free one, the causal head's joint score choosing), which the shipped model does not
declare; then the forwards per held-out task of the canvas and of the length search. Quality only: the
causal decode here re-reads its own tokens each step, so its time is not the time a cached decode would
take.
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

from benchmarks.draft_ranking import model_features  # noqa: E402
from runtime.context import build_context  # noqa: E402
from runtime.eval import humaneval as he  # noqa: E402
from runtime.eval.heldout import is_exact, iter_tasks, task_request  # noqa: E402
from runtime.measure import cpu_name  # noqa: E402
from runtime.text import finish  # noqa: E402

COLUMNS = ("causal head", "canvas", "chooser", "either", "length search")
MAX_NEW = 40
"""Tokens the causal head may write for one line (a line of code is rarely longer)."""


@torch.inference_mode()
def causal_line(backend, prefix: str, suffix: str, context_tokens: int) -> str:
    """Greedy tokens from the causal head after the context until a line break, finished as a
    single-line request's text."""
    tok, model = backend.tok, backend.model
    ctx = build_context(tok, prefix, suffix, context_tokens)
    banned = torch.zeros(model.head.weight.shape[0], dtype=torch.bool)
    banned[list(tok.special_ids)] = True
    seq, data = [ctx.ids[-1]], b""
    with backend.autocast():
        past = model.encode(torch.tensor([ctx.ids[:-1]]), None)  # the last context row predicts slot 0
        for step in range(MAX_NEW):
            logits = model.continuation_logits(torch.tensor([seq]), past)[0, -1].float()
            logits = logits.masked_fill(banned, float("-inf"))
            if step == 0 and ctx.heal:
                allowed = torch.zeros_like(banned)
                allowed[list(tok.ids_starting_with(ctx.heal.encode()))] = True
                logits = logits.masked_fill(~allowed, float("-inf"))
            token = int(logits.argmax())
            seq.append(token)
            data += tok.token_bytes(token)
            if b"\n" in data[len(ctx.heal.encode()) :]:
                break
    text = data.decode("utf-8", errors="ignore").removeprefix(ctx.heal)
    req = task_request(prefix, suffix, single_line=True, context_tokens=context_tokens)
    return finish(text, req)


def joint_choice(backend, prefix: str, suffix: str, causal: str, canvas: str) -> bool:
    """True: the chooser takes the causal head's text (the higher causal log-probability of the text
    and the suffix's first tokens after it; a text that does not fit a canvas is never taken)."""
    if causal == canvas:
        return False
    c, d = model_features(backend, prefix, suffix, [causal, canvas])
    own, other = c[2] + c[5], d[2] + d[5]  # the text's causal sum + the suffix's after it
    return not c[-1] and (bool(d[-1]) or own > other)


def tally(rows: list[tuple[bool, bool, bool, bool]]) -> dict[str, float]:
    """(causal right, canvas right, chooser took causal, length search right) per task -> the table's
    percentages."""
    hits = {
        "causal head": sum(a for a, _, _, _ in rows),
        "canvas": sum(b for _, b, _, _ in rows),
        "chooser": sum(a if pick else b for a, b, pick, _ in rows),
        "either": sum(a or b for a, b, _, _ in rows),
        "length search": sum(s for *_, s in rows),
    }
    return {k: 100.0 * v / max(len(rows), 1) for k, v in hits.items()} | {"n": len(rows)}


def searching(backend, lengths: tuple[int, ...]):
    """The backend with the length search at `lengths` (`runtime.lengths`; the same model and cache)."""
    other = copy.copy(backend)
    other.decoding = dataclasses.replace(backend.decoding, length_search=lengths)
    return other


def heldout_rows(backend, search, n: int, seeds: list[int], context_tokens: int) -> dict[str, float]:
    rows, forwards = [], [0, 0]
    for seed in seeds:
        for task in iter_tasks(n, kinds=("line_rest", "mid_line"), seed=seed):
            req = task_request(task.prefix, task.suffix, single_line=True, context_tokens=context_tokens)
            causal = causal_line(backend, task.prefix, task.suffix, context_tokens)
            canvas, searched = backend.infill(req), search.infill(req)
            forwards[0] += canvas.stats.forwards
            forwards[1] += searched.stats.forwards
            pick = joint_choice(backend, task.prefix, task.suffix, causal, canvas.text)
            ok = [is_exact(text, task.middle) for text in (causal, canvas.text, searched.text)]
            rows.append((ok[0], ok[1], pick, ok[2]))
    spent = {
        "canvas forwards": forwards[0] / max(len(rows), 1),
        "search forwards": forwards[1] / max(len(rows), 1),
    }
    return tally(rows) | spent


def humaneval_rows(backend, search, limit: int | None, context_tokens: int) -> dict[str, float]:
    rows = []
    for p in he.load_problems("single-line")[:limit]:
        causal = he.finish(causal_line(backend, p.prompt, p.suffix, context_tokens), "single-line")
        req = he.request(backend, p, "single-line", "unknown", context_tokens)
        canvas = he.finish(backend.infill(req).text, "single-line")
        searched = he.finish(search.infill(req).text, "single-line")
        pick = joint_choice(backend, p.prompt, p.suffix, causal, canvas)
        runs = {t: he.run_program(he.program(p, t)) for t in {causal, canvas, searched}}  # each text once
        rows.append((runs[causal], runs[canvas], pick, runs[searched]))
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

    backend = load_backend(a.model, threads=a.threads)
    seeds = [int(s) for s in a.seeds.split(",")]
    search = searching(backend, tuple(int(n) for n in a.lengths.split(",")))
    rows = {"held-out single-line exact match": heldout_rows(backend, search, a.n, seeds, a.context_tokens)}
    if a.humaneval:
        name = "HumanEval single-line pass@1, length unknown"
        rows[name] = humaneval_rows(backend, search, a.limit, a.context_tokens)
    print(f"# The causal head as a line model ({cpu_name()}, {backend.description}, seeds {a.seeds})\n")
    print(f"| tasks | n | causal head % | canvas % | chooser % | either % | length search {a.lengths} % |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in rows.items():
        cells = " | ".join(f"{r[k]:.1f}" for k in COLUMNS)
        print(f"| {name} | {r['n']} | {cells} |")
    held = rows["held-out single-line exact match"]
    print(
        f"\nforwards per held-out task: the canvas {held['canvas forwards']:.2f}, "
        f"with the length search {held['search forwards']:.2f} (its chains and the scoring pass)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
