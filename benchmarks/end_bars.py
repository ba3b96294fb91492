"""Where does the text end?  HumanEval single-line pass@1 and forwards at several end-of-text bars.

    python benchmarks/end_bars.py [--bars 0.5,0.3] [--model default] [--threads 1]

The model spends most of its forwards on a short line deciding where it ends (the trailing pads),
so lower bars (`runtime.rules.END_PROBABILITY`: a pad is proposed only above it;
`PAD_RUN_CONFIDENCE`: a run of pad proposals ends the text only above it) mean fewer forwards.
Each row sets both to one value and runs every HumanEval single-line task once (length unknown,
context 320 tokens, greedy, `adaptive`); the shipped value is 0.5.  Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime import rules  # noqa: E402
from runtime.eval.humaneval import evaluate, finish, load_problems, request  # noqa: E402
from runtime.load import load_embedded  # noqa: E402
from runtime.measure import cpu_name  # noqa: E402


def run(engine, problems, bar: float) -> dict:
    saved = rules.END_PROBABILITY, rules.PAD_RUN_CONFIDENCE
    rules.END_PROBABILITY = rules.PAD_RUN_CONFIDENCE = bar
    counts = {"forwards": 0, "tokens": 0}

    def complete(problem) -> str:
        res = engine.infill(request(engine, problem, "single-line", "unknown", 320))
        counts["forwards"] += res.stats.forwards
        counts["tokens"] += res.stats.tokens
        return finish(res.text, "single-line")

    t0 = time.perf_counter()
    try:
        score = evaluate(complete, problems)
    finally:
        rules.END_PROBABILITY, rules.PAD_RUN_CONFIDENCE = saved
    return {"bar": bar, "pass": 100 * score["pass@1"], "s": time.perf_counter() - t0, **counts}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", default="0.5,0.3")
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    engine = load_embedded(a.model, threads=a.threads, dtype="float32")
    problems = load_problems("single-line")
    what = f"{cpu_name()}, {engine.description}, {len(problems)} HumanEval single-line tasks"
    print(f"# End-of-text bars ({what})\n")
    print("| bar | pass@1 % | forwards | tokens | tokens/forward | s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for bar in (float(b) for b in a.bars.split(",")):
        r = run(engine, problems, bar)
        print(f"| {r['bar']} | {r['pass']:.1f} | {r['forwards']} | {r['tokens']} | "
              f"{r['tokens'] / max(1, r['forwards']):.2f} | {r['s']:.0f} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
