"""Behaviour check for refactors: the same answers before and after, on a fixed set of requests.

    python scripts/same_answers.py make  TASKS.jsonl          # once, before the change
    python scripts/same_answers.py run   TASKS.jsonl OUT.jsonl # before and after
    python scripts/same_answers.py diff  BEFORE.jsonl AFTER.jsonl

`make` writes every request in full (prefix, suffix and all `InfillRequest` fields), so the
later runs do not depend on the code that built them: 200 held-out tasks (the three kinds),
200 HumanEval single-line tasks with the length unknown and with the oracle length, and small
sets through every policy, rewrite mode (drafts), a canvas-size override and sampling with a
seed.  `run` sends each through `runtime.load.load_backend("default")` (greedy unless the
request samples, no deadline, 1 thread) and records text, forwards and tokens; `diff` lists
every request whose answer changed and exits 1 if any did.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

CONTEXT_TOKENS = 320  # the shipped model's training context


def make(path: Path) -> None:
    from runtime.eval import heldout, humaneval
    from runtime.load import load_backend

    engine = load_backend("default", threads=1)
    rows: list[dict] = []

    def add(name: str, **req: object) -> None:
        rows.append({"id": f"{name}:{len(rows)}", "request": req})

    tasks = list(heldout.iter_tasks(67))
    for task in tasks:
        single = task.kind in heldout.SINGLE_LINE_KINDS
        add(f"heldout-{task.kind}", prefix=task.prefix, suffix=task.suffix, single_line=single,
            max_tokens=64 if single else 128, context_tokens=CONTEXT_TOKENS)
    problems = humaneval.load_problems("single-line")[:200]
    for pr in problems:
        for setting in ("unknown", "oracle"):
            req = humaneval.request(engine, pr, "single-line", setting, CONTEXT_TOKENS)
            add(f"humaneval-{setting}", **{f.name: getattr(req, f.name) for f in dataclasses.fields(req)})
    for policy in ("sequential", "llada", "llada:schedule=cosine", "threshold", "entropy"):
        for task in tasks[::8]:
            add(f"policy-{policy}", prefix=task.prefix, suffix=task.suffix, policy=policy,
                single_line=task.kind != "block", context_tokens=CONTEXT_TOKENS)
    for task in tasks[::10]:
        add("draft", prefix=task.prefix, suffix=task.suffix, draft=task.middle, remask=0.5,
            context_tokens=CONTEXT_TOKENS, max_tokens=64)
        add("canvas16", prefix=task.prefix, suffix=task.suffix, canvas_tokens=16,
            context_tokens=CONTEXT_TOKENS, max_tokens=40)
        add("sample", prefix=task.prefix, suffix=task.suffix, temperature=0.8, seed=1,
            context_tokens=CONTEXT_TOKENS)
        add("blank-line", prefix=task.prefix.rsplit("\n", 1)[0] + "\n    ", suffix=task.suffix,
            context_tokens=CONTEXT_TOKENS)
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print(f"{len(rows)} requests -> {path}", file=sys.stderr)


def run(tasks: Path, out: Path) -> None:
    from runtime.load import load_backend
    from runtime.types import InfillRequest

    engine = load_backend("default", threads=1)
    with tasks.open() as f, out.open("w") as g:
        for n, line in enumerate(f, 1):
            row = json.loads(line)
            res = engine.infill(InfillRequest(**row["request"]))
            g.write(json.dumps({"id": row["id"], "text": res.text, "forwards": res.stats.forwards,
                                "tokens": res.stats.tokens, "canvases": res.stats.canvases}) + "\n")
            if n % 100 == 0:
                print(f"{n} done", file=sys.stderr, flush=True)


def diff(before: Path, after: Path) -> int:
    a = [json.loads(x) for x in before.open()]
    b = [json.loads(x) for x in after.open()]
    if [r["id"] for r in a] != [r["id"] for r in b]:
        print("the two runs are of different request sets")
        return 1
    changed = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    for x, y in changed:
        print(f"{x['id']}: {x} -> {y}")
    print(f"{len(a)} requests, {len(changed)} changed")
    return 1 if changed else 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "make":
        make(Path(argv[1]))
    elif len(argv) == 3 and argv[0] == "run":
        run(Path(argv[1]), Path(argv[2]))
    elif len(argv) == 3 and argv[0] == "diff":
        return diff(Path(argv[1]), Path(argv[2]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
