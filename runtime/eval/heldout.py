"""Exact match on lines of the held-out packages (never trained on).

    held-out documents -> tasks (prefix, suffix, middle, kind) -> engine.infill -> exact match

Kinds (Python files only, lines with at least `MIN_LINE_CHARS` non-blank characters):

* ``line_rest``: the cursor after a line's indentation; middle = the rest of the line;
* ``mid_line``: the cursor at a random character inside the line's code; middle = the rest;
* ``block``: 2-4 whole lines (with their newlines), the cursor at a line start.

`iter_tasks` is the reusable part (benchmarks import it); `evaluate` scores an engine.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.backends.base import Backend
from runtime.library import LineLibrary
from runtime.retrieval import line_drafts
from runtime.snippets import workspace_snippets
from runtime.train.corpus import HELDOUT_PACKAGES, SourceFile, collect, read_shards
from runtime.types import InfillRequest
from runtime.workspace import WorkspaceIndex

KINDS = ("line_rest", "mid_line", "block")
SINGLE_LINE_KINDS = ("line_rest", "mid_line")
MIN_LINE_CHARS = 4
DEFAULT_CORPUS = Path("data/corpus")
THIRD_PARTY_CORPUS = Path("data/corpus-v2")


@dataclass(frozen=True)
class HeldoutTask:
    prefix: str
    suffix: str
    middle: str
    kind: str
    source: str
    """'<package>:<file>:<line number>'"""


def heldout_documents(corpus: Path = DEFAULT_CORPUS) -> list[SourceFile]:
    """Held-out Python files: from the built corpus, else collected from this machine's sources."""
    try:
        docs = read_shards(corpus, "heldout")
    except FileNotFoundError:
        docs = collect(heldout=HELDOUT_PACKAGES)[1]
    return python_files(docs)


def third_party_documents(corpus: Path = THIRD_PARTY_CORPUS) -> list[SourceFile]:
    """The held-out Python files of `corpus` (corpus v2: its pinned third-party packages httpx and
    markdown-it-py) that the first corpus does not hold out.  Seeds draw other lines of the same files,
    so these packages, never used to tune anything, are the independent check of rules tuned on the
    first ones.  Raises FileNotFoundError when `corpus` is not built."""
    first = {d.package for d in heldout_documents()}
    return [d for d in python_files(read_shards(corpus, "heldout")) if d.package not in first]


def python_files(docs: Iterable[SourceFile]) -> list[SourceFile]:
    """The Python files of `docs`, in (package, path) order: what held-out tasks are cut from."""
    return sorted((d for d in docs if d.path.endswith(".py")), key=lambda d: (d.package, d.path))


def _candidate_lines(text: str) -> list[tuple[int, int, int]]:
    """(line index, start offset, end offset) of lines worth completing."""
    out, offset = [], 0
    for i, line in enumerate(text.split("\n")):
        if len(line.strip()) >= MIN_LINE_CHARS:
            out.append((i, offset, offset + len(line)))
        offset += len(line) + 1
    return out


def make_task(doc: SourceFile, kind: str, rng: random.Random) -> HeldoutTask | None:
    text = doc.text
    lines = _candidate_lines(text)
    if not lines:
        return None
    i, start, end = rng.choice(lines)
    line = text[start:end]
    indent = start + len(line) - len(line.lstrip())
    if kind == "line_rest":
        a, b = indent, end
    elif kind == "mid_line":
        if end - indent < 4:
            return None
        a, b = rng.randint(indent + 1, end - 2), end
    elif kind == "block":
        a, b = start, end
        for _ in range(rng.randint(1, 3)):
            nxt = text.find("\n", b + 1)
            b = len(text) if nxt < 0 else nxt
        b = min(len(text), b + 1)
    else:
        raise ValueError(f"unknown held-out task kind {kind!r} (known: {KINDS})")
    return HeldoutTask(text[:a], text[b:], text[a:b], kind, f"{doc.package}:{doc.path}:{i + 1}")


def iter_tasks(
    n_per_kind: int = 200,
    kinds: Sequence[str] = KINDS,
    seed: int = 0,
    docs: Sequence[SourceFile] | None = None,
    corpus: Path = DEFAULT_CORPUS,
) -> Iterator[HeldoutTask]:
    """A fixed (seeded) set of held-out tasks: `n_per_kind` of each kind, files drawn round-robin."""
    docs = list(docs) if docs is not None else heldout_documents(corpus)
    if not docs:
        raise ValueError("no held-out Python documents")
    for kind in kinds:
        rng = random.Random(f"{seed}:{kind}")
        made = tries = 0
        while made < n_per_kind and tries < 20 * n_per_kind:
            task = make_task(docs[tries % len(docs)], kind, rng)
            tries += 1
            if task is not None:
                made += 1
                yield task


def is_exact(output: str, middle: str) -> bool:
    return output.rstrip() == middle.rstrip()


def task_request(
    prefix: str, suffix: str, *, single_line: bool, context_tokens: int, policy: str = "adaptive"
) -> InfillRequest:
    """An evaluation task's request, length unknown: room for a line, or for a few lines."""
    return InfillRequest(
        prefix=prefix,
        suffix=suffix,
        single_line=single_line,
        max_tokens=64 if single_line else 128,
        policy=policy,
        context_tokens=context_tokens,
    )


def request_for(task: HeldoutTask, context_tokens: int, policy: str = "adaptive") -> InfillRequest:
    single = task.kind in SINGLE_LINE_KINDS
    return task_request(
        task.prefix, task.suffix, single_line=single, context_tokens=context_tokens, policy=policy
    )


def package_indexes(docs: Sequence[SourceFile] | None = None) -> dict[str, WorkspaceIndex]:
    """Each held-out package as its own workspace: an index of its files (the evaluation's
    stand-in for the workspace folder a user opens)."""
    out: dict[str, WorkspaceIndex] = {}
    for doc in docs if docs is not None else heldout_documents():
        out.setdefault(doc.package, WorkspaceIndex()).update(doc.path, doc.text, open_buffer=False)
    return out


def workspace_request(
    task: HeldoutTask,
    req: InfillRequest,
    indexes: dict[str, WorkspaceIndex],
    limit: int = 4,
    snippet_tokens: int = 0,
    library: LineLibrary | None = None,
) -> InfillRequest:
    """`req` with (at most `limit`) line drafts from the task's package, its own file left out
    (the task's prefix and suffix stand for it, as an open buffer would), and, for a model that
    reads them (`snippet_tokens` > 0: its `Backend.snippet_tokens`), context snippets too."""
    package, path, _ = task.source.rsplit(":", 2)
    index = indexes[package]
    drafts = line_drafts(task.prefix, task.suffix, index, document=path, limit=limit, library=library)
    req = dataclasses.replace(req, drafts=tuple((d.text, d.score) for d in drafts))
    if snippet_tokens <= 0:
        return req
    found = workspace_snippets(task.prefix, task.suffix, indexes[package], document=path)
    snippets = tuple((s.path, s.text) for s in found)
    return dataclasses.replace(req, snippets=snippets, snippet_tokens=snippet_tokens)


def evaluate(
    engine: Backend,
    tasks: Iterable[HeldoutTask],
    context_tokens: int = 1024,
    policy: str = "adaptive",
    indexes: dict[str, WorkspaceIndex] | None = None,
    library: LineLibrary | None = None,
) -> dict[str, dict[str, float]]:
    """{kind: {"n", "exact_match", "ms_p50"}} plus an "all_single_line" row.  With `indexes`
    (see `package_indexes`), single-line tasks get line drafts from their package and `library` (and
    context snippets, for a model that reads them)."""
    hits: dict[str, list[bool]] = {}
    ms: dict[str, list[float]] = {}
    for task in tasks:
        req = request_for(task, context_tokens, policy)
        if indexes is not None and task.kind in SINGLE_LINE_KINDS:
            req = workspace_request(task, req, indexes, snippet_tokens=engine.snippet_tokens, library=library)
        res = engine.infill(req)
        hits.setdefault(task.kind, []).append(is_exact(res.text, task.middle))
        ms.setdefault(task.kind, []).append(res.stats.ms)
    out = {k: _row(hits[k], ms[k]) for k in hits}
    single = [h for k in SINGLE_LINE_KINDS for h in hits.get(k, [])]
    single_ms = [m for k in SINGLE_LINE_KINDS for m in ms.get(k, [])]
    if single:
        out["all_single_line"] = _row(single, single_ms)
    return out


def _row(hits: list[bool], ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {"n": len(hits), "exact_match": sum(hits) / len(hits), "ms_p50": ms[len(ms) // 2]}
