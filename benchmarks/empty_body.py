"""What an editor shows right after a block opener: the cursor on the new line of an empty body.

    python benchmarks/empty_body.py [--n 200] [--seed 0] [--humaneval-only] [--threads 1] [--model default]

After `if x in seen:` and Enter the body is empty, and the server must choose what to ask the model
for: a block, or the line with the drafts retrieval found (the line library's `return True`, a line of
the workspace).  This benchmark asks the real server (`dg-lsp serve` over stdio, its whole request path:
the site, the drafts, the requests, the cleaned items) with an automatic and with an invoked trigger, at
such sites, and scores the first item shown:

* HumanEval single-line tasks whose blank line is an empty body (the cursor at its start, as
  docs/eval.md's `editor` row): pass@1 when the whole item is accepted (Tab), and when only its first
  line is (accept-line);
* held-out lines that open a body (`runtime.eval.heldout`'s packages, and corpus v2's httpx and
  markdown-it-py when built): the body removed, the cursor after the new line's indentation (what an
  editor's auto-indent leaves), each package its workspace (the files on disk in a scratch folder, the
  task's own file open with the body removed): the first item's first line equal to the body's first
  line, the whole item equal to the whole body, and the item's lines.

Latency is from the request to the answer, the model and retrieval included.  Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.lsp_client import Served, serve  # noqa: E402 - after the path set-up
from dg_lsp.context import locate, site_at, split_lines  # noqa: E402
from runtime.eval.heldout import heldout_documents, third_party_documents  # noqa: E402
from runtime.eval.humaneval import Problem, load_problems, program, run_program  # noqa: E402
from runtime.measure import cpu_name, percentile  # noqa: E402

OPENER = re.compile(r":\s*(#.*)?$")
TRIGGERS = ("automatic", "invoked")


@dataclass(frozen=True)
class BodyTask:
    """A line that opens a body, the body removed: `text` is the file as the editor holds it."""

    package: str
    path: str
    text: str
    line: int
    character: int
    body: str
    """The removed body as the item would write it: its first line from the cursor on."""


def empty_body(problem: Problem) -> bool:
    """Whether the task's blank line (the cursor at its start) is an empty body: a multi-line site."""
    text = problem.prompt + "\n" + problem.suffix
    lines = split_lines(text)
    row = problem.prompt.count("\n")
    return not site_at(lines, locate(lines, row, 0), text=text).single_line


def body_tasks(docs, n: int, seed: int) -> list[BodyTask]:
    """`n` bodies of the documents' openers (a line ending with a colon, then a deeper one), drawn with
    `seed`; the cursor goes after the indentation of the body's first line."""
    sites = []
    for doc in docs:
        lines = doc.text.split("\n")
        for i, line in enumerate(lines[:-1]):
            if OPENER.search(line) and line.strip() and not line.lstrip().startswith("#"):
                sites.append((doc, i))
    rng = random.Random(seed)
    out = []
    for doc, i in rng.sample(sites, len(sites)):
        task = _cut(doc, i)
        if task is not None:
            out.append(task)
        if len(out) == n:
            break
    return out


def _cut(doc, i: int) -> BodyTask | None:
    lines = doc.text.split("\n")
    depth = _depth(lines[i])
    j = i + 1
    while j < len(lines) and not lines[j].strip():
        j += 1
    if j >= len(lines) or _depth(lines[j]) <= depth or j != i + 1:
        return None  # no body, or a blank line first: not what Enter after the opener gives
    end = j
    while end < len(lines) and (not lines[end].strip() or _depth(lines[end]) > depth):
        end += 1
    while end > j and not lines[end - 1].strip():
        end -= 1  # trailing blank lines stay below
    lead = lines[j][: _depth(lines[j])]
    body = "\n".join([lines[j][len(lead) :], *lines[j + 1 : end]])
    text = "\n".join([*lines[: i + 1], lead, *lines[end:]])
    return BodyTask(doc.package, doc.path, text, i + 1, len(lead), body)


def _depth(line: str) -> int:
    return len(line) - len(line.lstrip())


def _first(text: str) -> str:
    return text.split("\n", 1)[0].strip()


def _norm(text: str) -> str:
    return "\n".join(ln.rstrip() for ln in text.strip("\n").split("\n"))


async def humaneval_rows(options: dict, problems: list[Problem]) -> dict[str, dict]:
    served = await serve(options)
    rows = _rows()
    try:
        for k, p in enumerate(problems):
            uri = f"file:///humaneval/task_{k}.py"
            served.open(uri, p.prompt + "\n" + p.suffix)

            def passes(item: str, p: Problem = p) -> tuple[bool, bool]:
                whole = run_program(program(p, item + "\n"))
                return whole, run_program(program(p, item.split("\n", 1)[0] + "\n"))

            await _ask(served, uri, p.prompt.count("\n"), 0, rows, passes)
            served.close(uri)
    finally:
        await served.stop()
    return rows


async def body_rows(options: dict, tasks: list[BodyTask], docs) -> dict[str, dict]:
    rows = _rows()
    by_package: dict[str, list[BodyTask]] = {}
    for task in tasks:
        by_package.setdefault(task.package, []).append(task)
    for package, group in sorted(by_package.items()):
        with tempfile.TemporaryDirectory(prefix="dg-empty-body-") as tmp:
            root = Path(tmp)
            for d in docs:
                if d.package == package:
                    (root / d.path).parent.mkdir(parents=True, exist_ok=True)
                    (root / d.path).write_text(d.text, encoding="utf-8")
            served = await serve(options, workspace=root)
            try:
                await _ask_bodies(served, root, group, rows)
            finally:
                await served.stop()
    return rows


async def _ask_bodies(served: Served, root: Path, group: list[BodyTask], rows: dict[str, dict]) -> None:
    for task in group:
        uri = (root / task.path).as_uri()
        served.open(uri, task.text)

        def matches(item: str, task: BodyTask = task) -> tuple[bool, bool]:
            return bool(item) and _norm(item) == _norm(task.body), bool(item) and _first(item) == _first(
                task.body
            )

        await _ask(served, uri, task.line, task.character, rows, matches)
        served.close(uri)


def _rows() -> dict[str, dict]:
    return {trig: {"whole": 0, "line": 0, "lines": [], "ms": [], "none": 0} for trig in TRIGGERS}


async def _ask(served: Served, uri: str, line: int, character: int, rows: dict[str, dict], score) -> None:
    """Both triggers at one site: the first item, scored by `score(item) -> (whole right, first line
    right)`, its lines and the time to the answer go into `rows`."""
    for trig in TRIGGERS:
        t0 = time.perf_counter()
        items = await served.inline(uri, line, character, invoked=trig == "invoked")
        row = rows[trig]
        row["ms"].append((time.perf_counter() - t0) * 1000)
        item = items[0] if items else ""
        row["none"] += not items
        row["lines"].append(item.count("\n") + 1 if item else 0)
        whole, first = score(item)
        row["whole"] += whole
        row["line"] += first


def table(title: str, rows: dict[str, dict], n: int, whole: str, line: str) -> None:
    print(f"\n{title} ({n} sites)\n")
    print(f"| trigger | {whole} % | {line} % | no item % | item lines (mean) | p50 ms | p95 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for trig, r in rows.items():
        pct = [f"{100 * r[k] / n:.1f}" for k in ("whole", "line", "none")]
        print(f"| {trig} | {' | '.join(pct)} | {statistics.mean(r['lines']):.2f} | "
              f"{percentile(r['ms'], 50):.0f} | {percentile(r['ms'], 95):.0f} |")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="held-out bodies per package set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default="default")
    ap.add_argument("--humaneval-only", action="store_true")
    a = ap.parse_args(argv)
    options = {"model": a.model, "threads": a.threads}
    print(f"# After a block opener: the empty body ({cpu_name()}, torch threads {a.threads}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, model {a.model})")  # fmt: skip
    problems = [p for p in load_problems("single-line") if empty_body(p)]
    rows = asyncio.run(humaneval_rows(options, problems))
    table("HumanEval single-line tasks at an empty body, the cursor at the line's start", rows, len(problems),
          "pass@1, item accepted", "pass@1, its first line accepted")  # fmt: skip
    if a.humaneval_only:
        return 0
    sets = [("held-out packages", heldout_documents)]
    sets.append(("httpx + markdown-it-py (never tuned on)", third_party_documents))
    for name, load in sets:
        try:
            docs = load()
        except FileNotFoundError as e:
            print(f"\n{name}: skipped ({e})")
            continue
        tasks = body_tasks(docs, a.n, a.seed)
        rows = asyncio.run(body_rows(options, tasks, docs))
        table(f"{name}: a body removed, the cursor after its indentation, the package as workspace", rows,
              len(tasks), "item = the body", "first line right")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
