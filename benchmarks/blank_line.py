"""Line drafts at the start of a blank line (no model): is the best draft the line, indentation included?

    python benchmarks/blank_line.py [--n 400] [--library default|FILE|none]

An editor that trims a blank line's automatic indentation leaves the cursor at column 0 inside a block,
and HumanEval's line tasks put it there too; retrieved lines are stripped, so the draft must carry the
indentation the line needs (`runtime.retrieval._Margin`).  Task sets, each scored by the first draft
equal to the whole line:

* rest-of-line tasks of the held-out packages (`runtime.eval.heldout`, kind `line_rest`) with the
  cursor moved to the line's start: seeds 1-2 (the tuning seeds), seed 0, and httpx + markdown-it-py
  (seeds 0-2, never tuned on); each package its workspace;
* *final returns*: every `return` line of those packages that follows a line ending a deeper block
  (`return`, `raise`, `break`, `continue`) with nothing more of its function below, the cursor at the
  line's start (the loop's `return False` after `return True`);
* HumanEval single-line tasks as an editor asks (`runtime.eval.humaneval.editor_request`: the document
  and the line library): the first draft, and any of the first 4.

Rows: the rules before `_Margin.final_return` (a `return` that leaves blocks where nothing of its
function follows goes to the function's body level) and the parse check (`runtime.syntax`: drafts that
break the code around the cursor are dropped), with the first, with both (shipped).  Prints a Markdown
table.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime import retrieval  # noqa: E402 - after the path set-up
from runtime.eval import humaneval  # noqa: E402
from runtime.eval.heldout import heldout_documents, iter_tasks, package_indexes, third_party_documents  # noqa: E402
from runtime.library import from_setting  # noqa: E402
from runtime.measure import cpu_name  # noqa: E402

CLOSES = re.compile(r"\s*(return|raise|continue|break)\b")
RETURN = re.compile(r"\s*return\b")

Case = tuple[str, str, str, str, str]
"""prefix (ending with the blank line's start), suffix, the line, package, path"""


def blank_line_tasks(docs, n: int, seeds: tuple[int, ...]) -> Iterator[Case]:
    """`line_rest` tasks with the cursor moved to the start of their line."""
    for seed in seeds:
        for t in iter_tasks(n, kinds=("line_rest",), seed=seed, docs=docs):
            if "\n" not in t.prefix:
                continue
            head, lead = t.prefix.rsplit("\n", 1)
            if lead.strip():
                continue
            package, path, _ = t.source.rsplit(":", 2)
            yield head + "\n", t.suffix, (lead + t.middle).split("\n")[0], package, path


def final_returns(docs) -> Iterator[Case]:
    """`return` lines after a line that ends a deeper block, with nothing of their function below."""
    for d in docs:
        lines = d.text.split("\n")
        for i, line in enumerate(lines):
            if not RETURN.match(line):
                continue
            above = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), None)
            below = next((lines[j] for j in range(i + 1, len(lines)) if lines[j].strip()), None)
            if above is None or _depth(above) <= _depth(line) or not CLOSES.match(above):
                continue
            if below is not None and _depth(below) >= _depth(line):
                continue
            yield "\n".join(lines[:i]) + "\n", "\n" + "\n".join(lines[i + 1 :]), line, d.package, d.path


def _depth(line: str) -> int:
    return len(line) - len(line.lstrip())


def top_right(cases: list[Case], indexes, library) -> tuple[int, int]:
    hits = 0
    for prefix, suffix, line, package, path in cases:
        ds = retrieval.line_drafts(prefix, suffix, indexes[package], document=path, library=library, limit=1)
        hits += bool(ds) and ds[0].text == line
    return hits, len(cases)


def humaneval_rows(library) -> tuple[int, int, int]:
    top = any4 = 0
    problems = humaneval.load_problems("single-line")
    for p in problems:
        drafts = [text for text, _ in humaneval.editor_request(p, True, 320, library).drafts]
        canonical = p.canonical_solution.rstrip("\n")
        top += bool(drafts) and drafts[0] == canonical
        any4 += canonical in drafts[:4]
    return top, any4, len(problems)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--n", type=int, default=400, help="rest-of-line tasks per seed (before the blank-line filter)"
    )
    ap.add_argument("--library", default="default", help="line library: default, a file, or none")
    a = ap.parse_args(argv)
    library = from_setting(a.library)
    first, third = heldout_documents(), third_party_documents()
    first_ix, third_ix = package_indexes(first), package_indexes(third)
    sets = [
        ("blank line, seeds 1-2", list(blank_line_tasks(first, a.n, (1, 2))), first_ix),
        ("blank line, seed 0", list(blank_line_tasks(first, a.n // 2, (0,))), first_ix),
        ("blank line, httpx + markdown-it-py", list(blank_line_tasks(third, a.n // 2, (0, 1, 2))), third_ix),
        ("final returns, first packages", list(final_returns(first)), first_ix),
        ("final returns, httpx + markdown-it-py", list(final_returns(third)), third_ix),
    ]
    day = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# Line drafts at the start of a blank line ({cpu_name()}, {day}; first draft = the line)\n")
    heads = [f"{name} ({len(cases)})" for name, cases, _ in sets] + ["HumanEval first / any of 4 (1033)"]
    print("| rules | " + " | ".join(heads) + " |")
    print("| --- |" + " ---: |" * len(heads))
    rows = (
        ("2026-12-02 12:30 (before both rules)", False, False),
        ("the function-level return", True, False),
        ("and the parse check (shipped)", True, True),
    )
    for name, final_return, parse_check in rows:
        retrieval.FINAL_RETURN, retrieval.PARSE_CHECK = final_return, parse_check
        cells = []
        for _, cases, indexes in sets:
            hits, n = top_right(cases, indexes, library)
            cells.append(f"{100 * hits / max(n, 1):.1f} % ({hits})")
        top, any4, n = humaneval_rows(library)
        cells.append(f"{100 * top / n:.1f} / {100 * any4 / n:.1f} %")
        print(f"| {name} | " + " | ".join(cells) + " |")
    retrieval.FINAL_RETURN = retrieval.PARSE_CHECK = True
    return 0


if __name__ == "__main__":
    sys.exit(main())
