"""`python -m runtime.eval [options]`: HumanEval-infilling pass@1 and held-out exact match -> a table.

`main(argv)` is the entry the CLI wires as `dg-lsp eval ...`.  The table is printed
and written (Markdown) to `--out` (docs/eval.md by default).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from runtime import library
from runtime.eval import heldout, humaneval
from runtime.library import LineLibrary
from runtime.load import load_embedded, resolve
from runtime.measure import cpu_name, percentile
from runtime.model import count_params


def trained_record(spec: str) -> dict:
    where = resolve(spec)
    if isinstance(where, str):
        return {}
    try:
        return json.loads((Path(where) / "config.json").read_text()).get("trained", {})
    except (OSError, json.JSONDecodeError):
        return {}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.eval", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="default", help="'default', a preset name or a model folder")
    p.add_argument("--benchmarks", default="single-line,random-span-light", help="'': none")
    p.add_argument("--settings", default="unknown,oracle,editor")
    p.add_argument("--limit", type=int, default=None, help="first N HumanEval tasks per benchmark")
    p.add_argument("--heldout-n", type=int, default=200, help="held-out tasks per kind (0: skip)")
    p.add_argument("--context-tokens", type=int, default=None, help="default: the model's training budget")
    p.add_argument("--policy", default="adaptive")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", default="auto", help="auto (bf16 where native), float32 or bfloat16")
    p.add_argument("--out", type=Path, default=Path("docs/eval.md"))
    p.add_argument("--no-baseline", action="store_true", help="skip the empty-middle reference rows")
    p.add_argument(
        "--library",
        default="default",
        help="line library of the workspace and editor rows: 'default' (shipped), a file or none",
    )
    p.add_argument("--third-party", type=Path, default=heldout.THIRD_PARTY_CORPUS,
                   help="a corpus whose other held-out packages get rows too (none: skipped)")  # fmt: skip
    return p


Add = Callable[..., None]
"""add(benchmark, setting, n, score, note="") records one row of the table."""


def humaneval_rows(engine, a: argparse.Namespace, ctx: int, add: Add, lib: LineLibrary | None) -> None:
    for bench in filter(None, a.benchmarks.split(",")):  # "": HumanEval skipped
        problems = humaneval.load_problems(bench)[: a.limit]
        for setting in a.settings.split(","):
            if setting == "editor" and bench not in humaneval.LINE_BENCHMARKS:
                continue  # the same requests as `unknown` there
            t0 = time.perf_counter()
            ms: list[float] = []

            def completer(
                pr: humaneval.Problem, setting: str = setting, bench: str = bench, ms: list[float] = ms
            ) -> str:
                res = engine.infill(humaneval.request(engine, pr, bench, setting, ctx, lib))
                ms.append(res.stats.ms)
                return humaneval.finish(res.text, bench)

            r = humaneval.evaluate(completer, problems)
            add(f"HumanEval {bench} pass@1", setting, r["n"], r["pass@1"],
                f"p50 {percentile(ms, 50):.0f} ms/infill, {time.perf_counter() - t0:.0f} s")  # fmt: skip
        if not a.no_baseline:
            r = humaneval.evaluate(lambda pr, b=bench: humaneval.finish("", b), problems)
            add(f"HumanEval {bench} pass@1", "empty middle (ref)", r["n"], r["pass@1"])


def heldout_rows(engine, a: argparse.Namespace, ctx: int, add: Add, lib: LineLibrary | None) -> None:
    tasks = list(heldout.iter_tasks(a.heldout_n))
    res = heldout.evaluate(engine, tasks, context_tokens=ctx, policy=a.policy)
    for kind in (*heldout.KINDS, "all_single_line"):
        if kind in res:
            add(f"held-out exact match: {kind}", "unknown", int(res[kind]["n"]), res[kind]["exact_match"],
                f"p50 {res[kind]['ms_p50']:.0f} ms/infill")  # fmt: skip
    single = [t for t in tasks if t.kind in heldout.SINGLE_LINE_KINDS]
    indexes = heldout.package_indexes()
    res = heldout.evaluate(engine, single, context_tokens=ctx, policy=a.policy, indexes=indexes, library=lib)
    for kind in (*heldout.SINGLE_LINE_KINDS, "all_single_line"):
        if kind in res:
            add(f"held-out exact match: {kind}", "workspace", int(res[kind]["n"]), res[kind]["exact_match"],
                f"p50 {res[kind]['ms_p50']:.0f} ms/infill (line drafts, package as workspace)")  # fmt: skip


def third_party_rows(engine, a: argparse.Namespace, ctx: int, add: Add, lib: LineLibrary | None) -> None:
    """Single-line rows, alone and with the workspace, on the held-out packages of `--third-party` that
    the first corpus does not hold out (corpus v2's pinned third-party packages, httpx and markdown-it-py)."""
    try:
        docs = heldout.third_party_documents(a.third_party)
    except FileNotFoundError:
        print(f"no corpus at {a.third_party}: no third-party rows", file=sys.stderr)
        return
    if not docs:
        return
    names = ", ".join(sorted({d.package.removeprefix("site:") for d in docs}))
    tasks = list(heldout.iter_tasks(a.heldout_n, kinds=heldout.SINGLE_LINE_KINDS, docs=docs))
    for setting, indexes in (("unknown", None), ("workspace", heldout.package_indexes(docs))):
        res = heldout.evaluate(
            engine, tasks, context_tokens=ctx, policy=a.policy, indexes=indexes, library=indexes and lib
        )
        row = res["all_single_line"]
        add(f"held-out exact match: single-line, {names}", setting, int(row["n"]), row["exact_match"],
            f"p50 {row['ms_p50']:.0f} ms/infill")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    engine = load_embedded(a.model, threads=a.threads, dtype=a.dtype)
    trained = trained_record(a.model)
    ctx = a.context_tokens or int(trained.get("context_tokens", 1024))
    rows: list[tuple[str, str, int, float, str]] = []  # benchmark, setting, n, score, note

    def add(bench: str, setting: str, n: int, score: float, note: str = "") -> None:
        rows.append((bench, setting, n, score, note))
        print(f"{bench:34} {setting:18} {n:5d} {100 * score:6.1f}%  {note}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    lib = library.from_setting(a.library)
    humaneval_rows(engine, a, ctx, add, lib)
    if a.heldout_n:
        heldout_rows(engine, a, ctx, add, lib)
        third_party_rows(engine, a, ctx, add, lib)
    total = time.perf_counter() - started
    compute = str(engine.compute_dtype or torch.float32).removeprefix("torch.")
    table = render(
        a, engine.description, count_params(engine.model), trained, ctx, rows, total, compute,
        engine.decoding.describe(),
    )  # fmt: skip
    print(table)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(table)
    return 0


def render(
    a,
    name: str,
    params: int,
    trained: dict,
    ctx: int,
    rows,
    total: float,
    compute: str = "float32",
    decoding: str = "",
) -> str:
    lines = [
        "# Evaluation",
        "",
        f"Model `{name}` ({params / 1e6:.2f}M parameters"
        + (f", {trained['tokens'] / 1e6:.1f}M training tokens, {trained['steps']} steps" if trained else "")
        + f"); policy `{a.policy}`"
        + (f" with the model's decoding defaults ({decoding})" if decoding else "")
        + f", greedy, context budget {ctx} tokens, torch threads "
        f"{torch.get_num_threads()}, {compute} matrix products, on {cpu_name()} "
        f"({time.strftime('%Y-%m-%d')}, {total / 60:.0f} min).",
        "",
        f"Reproduce: `python -m runtime.eval --model {a.model} --heldout-n {a.heldout_n}"
        + (f" --limit {a.limit}" if a.limit else "")
        + (f" --library {a.library}" if a.library != "default" else "")
        + "`. HumanEval: one greedy completion per task, run in a subprocess with a "
        f"{humaneval.TIMEOUT_S:.0f} s timeout; `unknown` = default canvas, `oracle` = the text is exactly as "
        "many tokens as the canonical middle (the canvas keeps its size: slots past that start as pad, "
        "pad is banned before), `editor` = as an editor asks on the blank line where the middle goes (the "
        "cursor at its start; single lines get the line drafts the server takes from the document itself"
        + (" and from its line library" if a.library not in ("", "none") else "")
        + "; the invoked trigger's first item, and the automatic one's wherever it asks for a line: every "
        "single-line site, and an empty body with drafts, docs/workspace.md). Held-out: packages never "
        "trained on (see docs/training.md); `workspace` = line drafts from the "
        "task's package" + (" and the line library" if a.library not in ("", "none") else "") + ".",
        "",
        "| benchmark | setting | n | score | notes |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    lines += [f"| {b} | {s} | {n} | {100 * v:.1f}% | {note} |" for b, s, n, v, note in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
