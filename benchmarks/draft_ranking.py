"""Can the model choose among line drafts better than retrieval's evidence?  Rankers compared.

    python benchmarks/draft_ranking.py [--n 400] [--seeds 1,2] [--k 16] [--model default]

Held-out single-line tasks, each package its own workspace (as `benchmarks/line_drafts.py`): for every
task, retrieval's best `k` candidates (`runtime.retrieval`, the shipped evidence rule), each with
three groups of features:

* evidence: log(1 + occurrences) per kind and place, the summed evidence, its rank, its length;
* specificity: how often the whole line occurs in the workspace and in the file, how near the
  cursor, whether it repeats the line above or below;
* the model: its belief in the visible draft on a canvas (`runtime.drafts`: the weakest and the
  mean token log-probability) and the causal head's (the context rows' next-token head,
  `InfillTransformer.continuation_logits`): the draft's sum, mean and weakest log-probability
  after the prefix, and that of the suffix's first tokens after the draft (does it join?).

Rows: the shipped ranking (evidence), the shipped judge (the canvas belief + 8 x log evidence over the
best 4), and linear rankers (a softmax over each task's candidates, fitted on one seed and scored on
the other: two-fold, so give two seeds) on growing feature sets; the last rows are the ceilings (the
answer among the best 4 / k).  Prints a Markdown table.  Run it on seeds the reports do not use.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.canvas import canvas_target  # noqa: E402
from runtime.context import build_context  # noqa: E402
from runtime.eval.heldout import is_exact, iter_tasks, package_indexes  # noqa: E402
from runtime.measure import cpu_name  # noqa: E402
from runtime.retrieval import EVIDENCE, candidates, ranked, shape_check  # noqa: E402

KINDS = sorted(EVIDENCE.weights)
CONTEXT_TOKENS = 320
JOIN_TOKENS = 12
"""The suffix tokens scored after a draft (the causal head's "does it join the suffix")."""
GROUPS = ("evidence", "specificity", "canvas", "causal")


def evidence_features(text: str, found: dict, score: float, rank: int) -> list[float]:
    return [math.log1p(found.get(k, 0)) for k in KINDS] + [
        score, float(rank == 0), math.log1p(rank), math.log1p(len(text)), float(len(found)),
    ]  # fmt: skip


def specificity_features(line: str, lines: list[str], row: int, index, document: str) -> list[float]:
    """The whole line's count in the workspace and the file, its nearest occurrence, a neighbour repeated."""
    ws = index.occurrences(line, exclude=document)
    near = [abs(j - row) for j, ln in enumerate(lines) if ln == line and j != row]
    above = next((ln for ln in reversed(lines[:row]) if ln), "")
    below = next((ln for ln in lines[row + 1 :] if ln), "")
    dist = min(near) if near else 1000
    repeat = float(line in (above, below))
    return [math.log1p(ws), math.log1p(len(near)), math.log1p(dist), float(not near), repeat]


def model_features(backend, prefix: str, suffix: str, texts: list[str]) -> list[list[float]]:
    """Per text: the canvas belief (weakest, mean) and the causal head's scores (sum, mean, weakest
    over the draft; sum and first over the suffix tokens after it); zeros + a flag where it does not fit."""
    with torch.inference_mode(), backend.autocast():  # the precision the backend decodes in
        return _beliefs(backend, prefix, suffix, texts)


def _beliefs(backend, prefix: str, suffix: str, texts: list[str]) -> list[list[float]]:
    tok, model = backend.tok, backend.model
    if not texts:
        return []
    ctx = build_context(tok, prefix, suffix, CONTEXT_TOKENS)
    short = model.encode(torch.tensor([ctx.ids[:-1]]), None)  # the causal head reads the last one
    past = model.encode(torch.tensor([ctx.ids[-1:]]), short)
    joint = tok.encode(suffix[: JOIN_TOKENS * 16])[:JOIN_TOKENS]
    out: list[list[float]] = []
    for text in texts:
        ids = canvas_target(tok, ctx.heal, text)
        if not ids or len(ids) >= backend.canvas_len:
            out.append([0.0] * 7 + [1.0])
            continue
        canvas = torch.tensor([ids + [tok.pad_id] * (backend.canvas_len - len(ids))])
        lp = torch.log_softmax(model.denoise(canvas, past).float(), -1)[0, : len(ids)]
        seen = lp.gather(-1, torch.tensor(ids)[:, None])[:, 0]
        seq = [ctx.ids[-1], *ids, *joint]
        cl = torch.log_softmax(model.continuation_logits(torch.tensor([seq]), short).float(), -1)[0, :-1]
        causal = cl.gather(-1, torch.tensor(seq[1:])[:, None])[:, 0]
        own, after = causal[: len(ids)], causal[len(ids) :]
        joins = [float(after.sum()), float(after[0])] if len(after) else [0.0, 0.0]
        out.append([float(seen.min()), float(seen.mean()), float(own.sum()), float(own.mean()),
                    float(own.min()), *joins, 0.0])  # fmt: skip
    return out


def gather(backend, n: int, seeds: list[int], k: int) -> list[dict]:
    """Per task: its seed and candidates (features by group, exact or not), the best `k` by evidence."""
    indexes = package_indexes()
    rows = []
    for seed in seeds:
        for task in iter_tasks(n, kinds=("line_rest", "mid_line"), seed=seed):
            package, path, _ = task.source.rsplit(":", 2)
            found = candidates(task.prefix, task.suffix, indexes[package], document=path)
            per: dict[str, dict] = {}
            for (text, how, where), c in found.items():
                per.setdefault(text, {})[how, where] = c
            top = ranked(found, EVIDENCE, k, fits=shape_check(task.prefix, task.suffix))
            before, after = task.prefix.split("\n"), task.suffix.split("\n")
            lines = [ln.strip() for ln in before[:-1]] + [""] + [ln.strip() for ln in after[1:]]
            typed = before[-1].lstrip()
            beliefs = model_features(backend, task.prefix, task.suffix, [d.text for d in top])
            cands = [{
                "exact": is_exact(d.text, task.middle),
                "evidence": evidence_features(d.text, per[d.text], d.score, r),
                "specificity": specificity_features((typed + d.text).strip(), lines, len(before) - 1,
                                                    indexes[package], path),
                "canvas": beliefs[r][:2] + beliefs[r][-1:], "causal": beliefs[r][2:],
            } for r, d in enumerate(top)]  # fmt: skip
            rows.append({"seed": seed, "cands": cands})
    return rows


def tensors(rows: list[dict], groups: tuple[str, ...], k: int):
    """(tasks, k, features) features, (tasks, k) exact, (tasks, k) candidate present."""
    width = sum(len(next(c[g] for r in rows for c in r["cands"])) for g in groups)
    x, y = torch.zeros(len(rows), k, width), torch.zeros(len(rows), k)
    present = torch.zeros(len(rows), k, dtype=torch.bool)
    for i, row in enumerate(rows):
        for j, c in enumerate(row["cands"][:k]):
            x[i, j] = torch.tensor([v for g in groups for v in c[g]])
            y[i, j], present[i, j] = float(c["exact"]), True
    return x, y, present


def fit(rows: list[dict], groups: tuple[str, ...], k: int, l2: float = 0.01):
    """A linear ranker: softmax over each task's candidates, the likelihood of its right ones (L-BFGS)."""
    x, y, present = tensors(rows, groups, k)
    mu, sd = x[present].mean(0), x[present].std(0) + 1e-6
    xs, keep = (x - mu) / sd, y.sum(1) > 0
    w = torch.zeros(x.shape[-1], requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=300)

    def closure():
        opt.zero_grad()
        s = (xs[keep] @ w).masked_fill(~present[keep], -1e9)
        right = torch.logsumexp(s.masked_fill(y[keep] == 0, -1e9), 1)
        loss = (torch.logsumexp(s, 1) - right).mean() + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), mu, sd


def top1(rows: list[dict], groups: tuple[str, ...], k: int, ranker) -> int:
    """How many tasks the ranker's first candidate answers."""
    w, mu, sd = ranker
    x, y, present = tensors(rows, groups, k)
    best = (((x - mu) / sd) @ w).masked_fill(~present, -1e9).argmax(1)
    return int(y.gather(1, best[:, None]).sum())


def two_fold(rows: list[dict], seeds: list[int], groups: tuple[str, ...], k: int) -> int:
    """Fitted on one seed, counted on the other, both ways."""
    a, b = ([r for r in rows if r["seed"] == s] for s in seeds[:2])
    return top1(b, groups, k, fit(a, groups, k)) + top1(a, groups, k, fit(b, groups, k))


JUDGE_WEIGHTS = (2.0, 16.0, 32.0, 1000.0)
"""Other evidence weights of the judge (`runtime.drafts.DraftRules.evidence_weight`) compared."""


def shipped_judge(row: dict, weight: float = 8.0) -> bool:
    """runtime.drafts.judge over the best 4: the weakest canvas log-probability + weight x log evidence."""
    cands = [c for c in row["cands"][:4] if not c["canvas"][-1]]
    if not cands:
        return False
    ev = len(KINDS)  # the summed evidence's place in the evidence features
    return max(cands, key=lambda c: c["canvas"][0] + weight * math.log(c["evidence"][ev]))["exact"]


def comparisons(rows: list[dict], seeds: list[int], k: int) -> list[tuple[str, int]]:
    """(ranking, tasks it answers) for the table."""
    first = sum(bool(r["cands"]) and r["cands"][0]["exact"] for r in rows)
    table = [
        ("shipped: retrieval's evidence", first),
        ("shipped: the judge (canvas belief + 8 x log evidence, best 4)", sum(map(shipped_judge, rows))),
    ]
    for weight in JUDGE_WEIGHTS:
        hits = sum(shipped_judge(r, weight) for r in rows)
        table.append((f"the judge with evidence weight {weight:g}", hits))
    sets = [GROUPS[:i] for i in range(1, len(GROUPS) + 1)] + [("evidence", "causal")]
    table += [(f"linear ranker, two-fold: {' + '.join(g)}", two_fold(rows, seeds, g, k)) for g in sets]
    for top in (4, k):
        hits = sum(any(c["exact"] for c in r["cands"][:top]) for r in rows)
        table.append((f"ceiling: the answer among the best {top}", hits))
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="tasks per kind and seed")
    ap.add_argument("--seeds", default="1,2", help="two comma-separated task seeds (the fits' two folds)")
    ap.add_argument("--k", type=int, default=16, help="candidates per task")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default="default")
    a = ap.parse_args(argv)
    from runtime.load import load_backend

    seeds = [int(s) for s in a.seeds.split(",")]
    if len(seeds) != 2:
        ap.error("--seeds takes two seeds (fit on one, score on the other)")
    backend = load_backend(a.model, threads=a.threads)
    t0 = time.perf_counter()
    rows = gather(backend, a.n, seeds, a.k)
    total = len(rows)
    print(f"# Ranking line drafts ({cpu_name()}, {backend.description}; {total} held-out tasks, seeds "
          f"{a.seeds}, {a.k} candidates each; gathered in {time.perf_counter() - t0:.0f} s)\n")  # fmt: skip
    table = comparisons(rows, seeds, a.k)
    print("| ranking | exact match % |")
    print("| --- | ---: |")
    for name, hits in table:
        print(f"| {name} | {100 * hits / max(total, 1):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
