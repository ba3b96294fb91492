"""Where does the text end, and how many slots a step commits: single-line decoding settings.

    python benchmarks/end_bars.py [--rows "adaptive@0.5;adaptive:gamma=3.0@0.3"] [--model default]
                                  [--heldout-seeds 1,2] [--n 150] [--threads 1]

The model spends most of its forwards on a short line deciding where it ends (the trailing pads)
and committing its few uncertain text slots one per step.  A row is `POLICY@BAR`: the policy spec
(`runtime.policy_spec`) and the end-of-text bar (`runtime.rules.EndBars`: `end_probability`, a
pad is proposed only above it; `pad_run_confidence`, a run of pad proposals ends the text only
above it; both set to BAR); the model's own `decoding` defaults (config.json) are set aside.
Each row runs every HumanEval single-line task once (length unknown, context 320 tokens, greedy)
and, with `--heldout-seeds`, the held-out single-line tasks of those seeds (`--n` per kind, model
alone: the requests that get no draft decode like this).
Prints a Markdown table; forwards and tokens are the HumanEval ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.decoding import Decoding  # noqa: E402
from runtime.eval.heldout import SINGLE_LINE_KINDS, is_exact, iter_tasks, request_for  # noqa: E402
from runtime.eval.humaneval import evaluate, finish, load_problems, request  # noqa: E402
from runtime.load import load_embedded  # noqa: E402
from runtime.measure import cpu_name  # noqa: E402
from runtime.rules import EndBars  # noqa: E402


def run(engine, problems, policy: str, bar: float, heldout: list) -> dict:
    """One row; the model's declared decoding defaults are set aside, so the row runs exactly
    `policy` (with the policy's own defaults) at `bar`."""
    saved = engine.decoding
    engine.decoding = Decoding(EndBars(bar, bar))
    counts = {"forwards": 0, "tokens": 0}

    def complete(problem) -> str:
        req = request(engine, problem, "single-line", "unknown", 320)
        res = engine.infill(dataclasses.replace(req, policy=policy))
        counts["forwards"] += res.stats.forwards
        counts["tokens"] += res.stats.tokens
        return finish(res.text, "single-line")

    t0 = time.perf_counter()
    try:
        score = evaluate(complete, problems)
        answers = (engine.infill(request_for(t, 320, policy=policy)).text for t in heldout)
        hits = sum(is_exact(text, t.middle) for text, t in zip(answers, heldout, strict=True))
    finally:
        engine.decoding = saved
    return {
        "pass": 100 * score["pass@1"], "heldout": 100 * hits / max(1, len(heldout)),
        "s": time.perf_counter() - t0, **counts,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="adaptive@0.5;adaptive@0.3", help="POLICY@BAR rows, ';'-separated")
    ap.add_argument("--model", default="default")
    ap.add_argument("--heldout-seeds", default="", help="held-out task seeds, e.g. 1,2 (none: skip)")
    ap.add_argument("--n", type=int, default=150, help="held-out tasks per kind and seed")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    engine = load_embedded(a.model, threads=a.threads, dtype="float32")
    problems = load_problems("single-line")
    seeds = [int(s) for s in a.heldout_seeds.split(",") if s]
    heldout = [t for s in seeds for t in iter_tasks(a.n, kinds=SINGLE_LINE_KINDS, seed=s)]
    what = f"{cpu_name()}, {engine.description}, {len(problems)} HumanEval single-line tasks"
    if heldout:
        what += f", {len(heldout)} held-out single-line tasks (seeds {a.heldout_seeds})"
    print(f"# Single-line decoding settings ({what})\n")
    print("| policy | bar | pass@1 % | held-out exact % | forwards | tokens | tokens/forward | s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in a.rows.split(";"):
        policy, bar = row.rsplit("@", 1)
        r = run(engine, problems, policy, float(bar), heldout)
        held = f"{r['heldout']:.2f}" if heldout else "-"
        print(f"| {policy} | {bar} | {r['pass']:.1f} | {held} | {r['forwards']} | {r['tokens']} | "
              f"{r['tokens'] / max(1, r['forwards']):.2f} | {r['s']:.0f} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
