"""Context snippets: windows of workspace text that look like the code around the cursor.

    query   the identifiers of the QUERY_LINES lines above the cursor's line (the line being
            typed is left out, so the snippets, which come first in the context, stay the same
            while it is typed and the context cache stays warm)
    files   every workspace document but the current one, ranked by how many of the query's
            identifiers they hold; the best MAX_FILES are read (Copilot's neighbouring tabs read
            up to 20 files), plus the current document's own text
    windows WINDOW_LINES lines every STRIDE lines, scored by Jaccard similarity of identifier
            sets with the query; the best window of each file, the best `limit` overall

The backend drops the snippets that its clipped context already holds and fits the rest to its
token budget (`runtime.context.snippet_blocks`); a model declares in its config.json whether it was
trained with snippets at all (`layout.snippet_tokens`).  Pure Python and numpy, no torch.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from runtime.workspace import WorkspaceIndex

QUERY_LINES = 20
WINDOW_LINES = 20
STRIDE = 10
MAX_FILES = 20
WINDOW_CACHE = 64
"""Files whose windows are kept (the ranked files of the last few queries)."""
MIN_SCORE = 0.1
"""Windows sharing less of the query's identifiers than this are not worth their tokens."""
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


@dataclass(frozen=True)
class Snippet:
    path: str
    text: str
    score: float


def words(text: str) -> set[str]:
    """Identifiers of at least three characters (short names and keywords-as-words included)."""
    return set(_WORD.findall(text))


def hashed(names: Iterable[str]) -> np.ndarray:
    """Identifiers as sorted, distinct 32-bit hashes."""
    return np.unique(np.fromiter((zlib.crc32(w.encode()) for w in names), dtype=np.uint32))


def word_hashes(text: str) -> np.ndarray:
    """A document's identifiers, hashed (what a file is ranked by)."""
    return hashed(words(text))


def query_words(prefix: str) -> set[str]:
    """The identifiers of the QUERY_LINES lines above the cursor's line."""
    lines = prefix.split("\n")[:-1]
    return words("\n".join(lines[-QUERY_LINES:]))


def rank_files(query: set[str], files: Iterable[tuple[str, np.ndarray]], limit: int = MAX_FILES) -> list[str]:
    """The keys of the `limit` files holding most of the query's identifiers (ties: first seen)."""
    if not query:
        return []
    q = hashed(query)
    scored = []
    for key, hashes in files:
        hits = int(np.isin(q, hashes, assume_unique=True).sum())
        if hits:
            scored.append((-hits, len(scored), key))
    return [key for _, _, key in sorted(scored)[:limit]]


@functools.lru_cache(maxsize=WINDOW_CACHE)
def windows(text: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """(text, identifiers) of each window of `text` (cached: a file's windows are computed once
    per version, not once per keystroke)."""
    lines = text.split("\n")
    line_words = [words(ln) for ln in lines]
    out = []
    for start in range(0, max(1, len(lines) - WINDOW_LINES + STRIDE), STRIDE):
        w = frozenset().union(*line_words[start : start + WINDOW_LINES])
        if w:
            out.append(("\n".join(lines[start : start + WINDOW_LINES]), w))
    return tuple(out)


def best_window(query: set[str], text: str) -> tuple[float, str]:
    """(Jaccard score, text) of the window of `text` most like the query."""
    best, best_text = 0.0, ""
    for window, w in windows(text):
        shared = len(query & w)
        if shared:
            score = shared / (len(query) + len(w) - shared)
            if score > best:
                best, best_text = score, window
    return best, best_text


def context_snippets(
    prefix: str,
    suffix: str,
    documents: Iterable[tuple[str, str]],
    *,
    current: str = "",
    limit: int = 4,
    query: set[str] | None = None,
) -> list[Snippet]:
    """The best `limit` snippets for the cursor between `prefix` and `suffix` of the document
    `current`, from `documents` ((key, text) of the ranked files, the current one excluded) and
    from the current document's own text away from the cursor.  `query`: `query_words(prefix)`
    when the caller has it already."""
    query = query_words(prefix) if query is None else query
    if not query:
        return []
    own_lines = prefix.split("\n")
    far_prefix = "\n".join(own_lines[: max(0, len(own_lines) - 1 - QUERY_LINES)])
    candidates = [(current, far_prefix), (current, suffix), *documents]
    found = []
    for key, text in candidates:
        score, window = best_window(query, text)
        if score >= MIN_SCORE and window.strip():
            found.append(Snippet(key, window, round(score, 4)))
    found.sort(key=lambda s: -s.score)
    return found[:limit]


def workspace_snippets(
    prefix: str,
    suffix: str,
    index: WorkspaceIndex,
    *,
    document: str | None = None,
    limit: int = 4,
    roots: Sequence[str] | None = None,
) -> list[Snippet]:
    """`context_snippets` over a workspace index (the document `document` is its live text).
    `roots`: the workspace folders, when the index's keys are absolute paths (the server's, the
    CLI's): each snippet's path is then `shown_path`; None leaves the keys as they are."""
    query = query_words(prefix)
    if not query:
        return []
    keys = rank_files(query, index.file_words(exclude=document))
    texts = ((k, index.text(k) or "") for k in keys)
    found = context_snippets(prefix, suffix, texts, current=document or "", limit=limit, query=query)
    if roots is None:
        return found
    return [Snippet(shown_path(s.path, roots), s.text, s.score) for s in found]


def shown_path(key: str, roots: Sequence[str]) -> str:
    """A snippet's path as the model reads it: relative to the first of the workspace folders
    `roots` that holds it, with "/" (training's paths are relative to their package), else the
    file's name (a file outside every folder; no absolute path reaches the prompt)."""
    path = PurePath(key)
    for root in roots:
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return path.name
