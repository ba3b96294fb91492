"""How should drafted canvases be judged?  The evidence behind the defaults of runtime/drafts.py.

    python benchmarks/drafts_tuning.py [--n 100] [--seed 1] [--model FOLDER]

On held-out single-line tasks (a seed other than the one benchmarks/workspace.py reports), each
package its own workspace: exact match when the drafts are dropped below an acceptance score
(the canvas then denoised by the model as without drafts), and when the tokens the model doubts
are re-masked and denoised again, and when the draft's end slot counts.  The chosen rules go in
the model folder's config.json (`drafts`: see runtime/drafts.py).  Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.eval.heldout import is_exact, iter_tasks, package_indexes, request_for, workspace_request  # noqa: E402
from runtime.measure import cpu_name  # noqa: E402

KINDS = ("line_rest", "mid_line")


def exact(backend, reqs, tasks) -> dict[str, float]:
    hits = {k: [] for k in KINDS}
    for req, task in zip(reqs, tasks, strict=True):
        hits[task.kind].append(is_exact(backend.infill(req).text, task.middle))
    return {k: 100 * sum(v) / max(1, len(v)) for k, v in hits.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="tasks per kind")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default="default", help="the model folder to tune (default: the shipped one)")
    a = ap.parse_args(argv)
    from runtime.load import load_backend

    backend = load_backend(a.model, threads=a.threads)
    declared = backend.draft_rules
    tasks = list(iter_tasks(a.n, kinds=KINDS, seed=a.seed))
    indexes = package_indexes()
    plain = [request_for(t, 320) for t in tasks]
    drafted = [workspace_request(t, r, indexes) for t, r in zip(tasks, plain, strict=True)]
    what = f"{cpu_name()}, {backend.description}, {len(tasks)} held-out tasks, seed {a.seed}"
    print(f"# Judging drafts ({what})\n")
    print(f"Rules the model declares: {declared}\n")
    print("| setting | exact line_rest % | exact mid_line % | all % |")
    print("| --- | ---: | ---: | ---: |")
    rows = [("no drafts", plain, {})]
    bars = (-math.inf, -8.0, -6.0, -4.0, -3.0, -2.0)
    rows += [(f"accept score >= {s}", drafted, {"accept_score": s}) for s in bars]
    rows += [(f"doubt probability {p}", drafted, {"doubt_probability": p}) for p in (0.001, 0.01, 0.05)]
    rows += [(f"evidence weight {w}", drafted, {"evidence_weight": w}) for w in (0.5, 1.0, 4.0, 8.0, 16.0)]
    rows += [("end slot counts", drafted, {"end_slot": True})]
    eight = [workspace_request(t, r, indexes, limit=8) for t, r in zip(tasks, plain, strict=True)]
    rows += [("8 drafts instead of 4", eight, {})]
    for name, reqs, change in rows:
        backend.draft_rules = dataclasses.replace(declared, **change)
        em = exact(backend, reqs, tasks)
        both = (em["line_rest"] + em["mid_line"]) / 2
        print(f"| {name} | {em['line_rest']:.1f} | {em['mid_line']:.1f} | {both:.1f} |", flush=True)
    backend.draft_rules = declared
    return 0


if __name__ == "__main__":
    sys.exit(main())
