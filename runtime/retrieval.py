"""Line drafts: candidate texts for the rest of the cursor's line, taken from the workspace.

A fifth of the lines of real code appear verbatim elsewhere in the same file, more in the
same package; a draft puts such a line on the canvas, where the model verifies all of it in
one forward (`runtime.backends.embedded`).  Three kinds, each from the current document
(its live text: the request's prefix and suffix) and from the rest of the workspace
(`runtime.workspace.WorkspaceIndex`, the current document's own entry left out):

    prefix    lines that start with what is typed on the cursor's line
    follows   lines that follow another occurrence of the line above the cursor
    ngram     in the current document, the text after another occurrence of the last
              words typed (prompt lookup)

Each candidate's evidence is its count, weighted by kind and by where it was found (the same
file counts more); the best `limit` distinct drafts are returned.  Pure Python, no torch.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from runtime.workspace import WorkspaceIndex

WEIGHTS = {("follows", "file"): 4.0, ("follows", "workspace"): 2.0, ("prefix", "file"): 2.0,
           ("prefix", "workspace"): 1.0, ("ngram", "file"): 2.0}  # fmt: skip
"""Evidence per occurrence: a line that follows the same line elsewhere says more than one that
only starts the same way; the current file says more than the rest of the workspace."""
MAX_DRAFT_CHARS = 200
MAX_MATCHES = 200
"""Matching lines taken per kind and place: enough evidence, and a bounded cost in a long file
whose every line matches."""
_TOKEN = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class Draft:
    text: str
    """What goes at the cursor: the rest of the line."""
    score: float
    how: str
    """prefix, follows or ngram."""
    where: str
    """file (the current document) or workspace."""


@dataclass(frozen=True)
class _Cursor:
    typed: str  # the cursor line before the cursor, without its indentation
    rest: str  # the cursor line after the cursor, stripped
    lines: list[str]  # the document's stripped lines, the cursor line included
    row: int  # the cursor line's index in `lines`

    @classmethod
    def of(cls, prefix: str, suffix: str) -> _Cursor:
        before, after = prefix.split("\n"), suffix.split("\n")
        lines = [ln.strip() for ln in before[:-1]] + [""] + [ln.strip() for ln in after[1:]]
        return cls(before[-1].lstrip(), after[0].strip(), lines, len(before) - 1)

    def line_above(self) -> tuple[str, int]:
        for j in range(self.row - 1, -1, -1):
            if self.lines[j]:
                return self.lines[j], j
        return "", -1

    def continuation(self, line: str) -> str | None:
        """The rest of the cursor line if it becomes `line` (None when `line` does not fit)."""
        if not line.startswith(self.typed) or len(line) <= len(self.typed):
            return None
        text = line[len(self.typed) :]
        if self.rest and text.endswith(self.rest):  # the rest of the line is already there
            text = text[: -len(self.rest)]
        return text if text.strip() and len(text) <= MAX_DRAFT_CHARS else None


def line_drafts(
    prefix: str,
    suffix: str,
    index: WorkspaceIndex | None = None,
    *,
    document: str | None = None,
    limit: int = 4,
) -> list[Draft]:
    """The best `limit` drafts for the cursor between `prefix` and `suffix`.  `document` is the
    current document's key in `index`: its entry (maybe stale) is left out, the live text is used."""
    cur = _Cursor.of(prefix, suffix)
    evidence: Counter[tuple[str, str, str]] = Counter()  # (text, how, where) -> occurrences
    taken: Counter[tuple[str, str]] = Counter()

    def add(line: str, how: str, where: str, n: int = 1) -> None:
        if taken[how, where] >= MAX_MATCHES:
            return
        text = cur.continuation(line)
        if text is not None:
            evidence[text, how, where] += n
            taken[how, where] += 1

    above, at = cur.line_above()
    if above:
        for j, line in enumerate(cur.lines):
            if line == above and j != at:
                nxt = next((x for x in cur.lines[j + 1 :] if x), None)
                if nxt is not None:
                    add(nxt, "follows", "file")
        if index is not None:
            for line, n in index.followers(above, exclude=document):
                add(line, "follows", "workspace", n)
    if cur.typed:
        for j, line in enumerate(cur.lines):
            if j != cur.row and line.startswith(cur.typed):
                add(line, "prefix", "file")
        if index is not None:
            for line, n in index.with_prefix(cur.typed, exclude=document):
                add(line, "prefix", "workspace", n)
        _ngram(cur, add)
    scores: Counter[str] = Counter()
    best: dict[str, tuple[str, str]] = {}
    for (text, how, where), n in evidence.items():
        score = WEIGHTS[how, where] * n
        scores[text] += score
        if text not in best or score > WEIGHTS[best[text]] * evidence[text, *best[text]]:
            best[text] = (how, where)
    return [Draft(text, s, *best[text]) for text, s in scores.most_common(limit)]


def _ngram(cur: _Cursor, add) -> None:
    """Prompt lookup in the current document: the last two tokens typed, found in another line,
    and what follows them there."""
    tokens = _TOKEN.findall(cur.typed)
    if len(tokens) < 2:
        return
    tail = cur.typed[cur.typed.rfind(tokens[-2]) :]
    if len(tail) < 4:
        return
    head = cur.typed[: len(cur.typed) - len(tail)]
    for j, line in enumerate(cur.lines):
        k = line.find(tail) if j != cur.row else -1
        if k >= 0:
            add(head + line[k:], "ngram", "file")
