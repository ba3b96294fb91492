"""Every unmasking policy on the same held-out tasks: exact match vs forwards per token.

    python benchmarks/policies.py [--model default|tiny|PATH] [--n 40] [--sweep] [--threads 1]

Tasks are lines of held-out packages (never trained on): the rest of a line after
its indentation, the rest of a line from mid-line, and 2-4 line blocks
(`runtime.eval.heldout`).  Prints a table (exact match, forwards per token,
tokens per forward, re-masked tokens, ms p50/p95 on this machine; each request's
time is the median of `--repeat` warm runs) and writes a
plot of exact match against forwards per token.  `--sweep` also runs each
policy at several settings, which draws each policy's curve.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from runtime.eval.heldout import iter_tasks, request_for
from runtime.load import DEFAULT_MODEL_DIR, load_embedded
from runtime.measure import percentile

BASE = ["sequential", "llada", "threshold", "entropy", "adaptive"]
SWEEP = [
    "llada:steps=2", "llada:steps=4", "llada:steps=16",
    "threshold:tau=0.7", "threshold:tau=0.5",
    "entropy:gamma=0.5", "entropy:gamma=1.0",
    "adaptive:gamma=0.1", "adaptive:gamma=0.5", "adaptive:gamma=1.0",
]


def run_policy(engine, tasks, policy: str, context_tokens: int, repeat: int = 3) -> dict:
    exact = forwards = tokens = remasked = 0
    ms: list[float] = []
    for task in tasks:
        req = request_for(task, context_tokens, policy)
        engine.infill(req)  # warm the context cache: the editor case is a warm cache
        runs = [engine.infill(req) for _ in range(max(1, repeat))]
        res = runs[0]  # greedy decoding: every run gives the same text and counts
        ms.append(statistics.median(r.stats.ms for r in runs))  # a shared VM's stalls hit single runs
        exact += res.text.rstrip() == task.middle.rstrip()
        forwards += res.stats.forwards
        tokens += res.stats.tokens
        remasked += res.stats.remasked
    n = len(tasks)
    return {
        "policy": policy,
        "n": n,
        "exact": 100.0 * exact / n,
        "fpt": forwards / max(tokens, 1),
        "tpf": tokens / max(forwards, 1),
        "remasked": remasked,
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--n", type=int, default=40, help="tasks per kind")
    ap.add_argument("--kinds", default="line_rest,mid_line,block")
    ap.add_argument("--policies", default=",".join(BASE))
    ap.add_argument("--sweep", action="store_true", help="also run the policies at other settings")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="auto", help="auto (bf16 where native), float32 or bfloat16")
    ap.add_argument("--context-tokens", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed warm runs per request; its time is their median (default 3)")
    ap.add_argument("--plot", default="benchmarks/out/policies.png")
    args = ap.parse_args(argv)

    model = args.model
    if model == "default" and not DEFAULT_MODEL_DIR.exists():
        print("warning: no shipped model in models/dg-code-small: using the random 'tiny' preset "
              "(plumbing only, exact match is meaningless)", file=sys.stderr)
        model = "tiny"
    engine = load_embedded(model, threads=args.threads, dtype=args.dtype)
    tasks = list(iter_tasks(n_per_kind=args.n, kinds=args.kinds.split(",")))
    policies = args.policies.split(",") + (SWEEP if args.sweep else [])
    print(f"# model={engine.description} tasks={len(tasks)} threads={torch.get_num_threads()} "
          f"compute={engine.compute_dtype or torch.float32} "
          f"machine={platform.machine()} {platform.processor() or ''} cpus={torch.get_num_threads()}/"
          f"{__import__('os').cpu_count()}")
    header = f"{'policy':24} {'n':>4} {'exact%':>7} {'fwd/tok':>8} {'tok/fwd':>8} {'remask':>7} " \
             f"{'p50 ms':>8} {'p95 ms':>8}"
    print(header)
    print("-" * len(header))
    rows = []
    started = time.perf_counter()
    for policy in policies:
        r = run_policy(engine, tasks, policy, args.context_tokens, args.repeat)
        rows.append(r)
        print(f"{r['policy']:24} {r['n']:4d} {r['exact']:7.1f} {r['fpt']:8.3f} {r['tpf']:8.2f} "
              f"{r['remasked']:7d} {r['p50']:8.1f} {r['p95']:8.1f}", flush=True)
    print(f"# {time.perf_counter() - started:.0f} s")
    plot(rows, Path(args.plot), engine.description)
    return 0


def plot(rows: list[dict], path: Path, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("# matplotlib is not installed: no plot", file=sys.stderr)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    for base in dict.fromkeys(r["policy"].split(":")[0] for r in rows):
        pts = sorted((r["fpt"], r["exact"]) for r in rows if r["policy"].split(":")[0] == base)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=base)
    ax.set_xlabel("forwards per token (lower is faster)")
    ax.set_ylabel("exact match (%)")
    ax.set_title(f"policies: {title}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"# plot: {path}")


if __name__ == "__main__":
    sys.exit(main())
