"""Context snippets: windows of workspace text that look like the code around the cursor.

    query   the identifiers of the QUERY_LINES lines above the cursor's line (the line being
            typed is left out, so the snippets, which come first in the context, stay the same
            while it is typed and the context cache stays warm)
    files   every workspace document but the current one, ranked by how many of the query's
            identifiers they hold; the best MAX_FILES are read, at most MAX_LINES lines in all
            (Copilot's neighbouring tabs read up to 20 files), plus the current document's own text
    windows WINDOW_LINES lines every STRIDE lines, scored by a scorer looked up by name in
            `SCORERS`: "jaccard" (the default: Jaccard similarity of identifier sets, as Copilot
            does) or "bm25" (Okapi BM25 over identifier occurrences, the query's candidate windows
            as the corpus); the best window of each file, the best `limit` overall

BM25 did not beat Jaccard on the held-out tasks and cost twice the time, and the `bm25s` library
scored the same as our BM25 at several times the cost (it indexes a static corpus; ours change
with every file version): `benchmarks/snippets.py`, docs/workspace.md.

The backend drops the snippets that its clipped context already holds and fits the rest to its
token budget (`runtime.context.snippet_blocks`); a model declares in its config.json whether it was
trained with snippets at all (`layout.snippet_tokens`).  Pure Python and numpy, no torch.
"""

from __future__ import annotations

import functools
import re
import weakref
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from runtime.workspace import WorkspaceIndex

QUERY_LINES = 20
WINDOW_LINES = 20
STRIDE = 10
MAX_FILES = 20
MAX_LINES = 8000
"""Lines read per query: the ranked files are read in order until they hold this many (the first
always), so a workspace of large files costs a bounded time (the best-ranked files are the largest:
they hold the most identifiers)."""
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


class FileTable:
    """Every file's hashed identifiers in one array (with the file each came from), so a query is
    ranked against all files in one `np.isin` rather than one per file."""

    def __init__(self, files: Sequence[tuple[str, np.ndarray]]) -> None:
        self.keys = [key for key, _ in files]
        arrays = [hashes for _, hashes in files]
        self.hashes = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint32)
        sizes = [len(a) for a in arrays]
        self.owner = np.repeat(np.arange(len(arrays), dtype=np.int32), sizes)  # (n,) the file of each hash

    def ranked(self, query: set[str], *, exclude: str | None = None, limit: int = MAX_FILES) -> list[str]:
        """The keys of the `limit` files holding most of the query's identifiers (ties: first
        seen), `exclude` left out."""
        if not query or not self.keys:
            return []
        hits = np.bincount(self.owner[np.isin(self.hashes, hashed(query))], minlength=len(self.keys))
        if exclude is not None and exclude in self.keys:
            hits[self.keys.index(exclude)] = 0
        order = np.argsort(-hits, kind="stable")[:limit]
        return [self.keys[i] for i in order.tolist() if hits[i] > 0]


_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""index -> (its version, its FileTable): rebuilt only when the index changed."""


def file_table(index: WorkspaceIndex) -> FileTable:
    version = index.version
    held = _TABLES.get(index)
    if held is None or held[0] != version:
        held = (version, FileTable(index.file_words()))
        _TABLES[index] = held
    return held[1]


class Window:
    """A window of a file: its text, its distinct identifiers (what Jaccard reads) and, counted on
    first use so that Jaccard never pays for them, their occurrences (what BM25 reads)."""

    __slots__ = ("_counts", "text", "words")

    def __init__(self, text: str, words: frozenset[str]) -> None:
        self.text = text
        self.words = words
        self._counts: tuple[dict[str, int], int] | None = None

    @property
    def counts(self) -> dict[str, int]:
        """identifier -> occurrences (term frequencies)."""
        return self._counted()[0]

    @property
    def length(self) -> int:
        """Identifier occurrences in all (the document length)."""
        return self._counted()[1]

    def _counted(self) -> tuple[dict[str, int], int]:
        if self._counts is None:
            counts = dict(Counter(_WORD.findall(self.text)))
            self._counts = (counts, sum(counts.values()))
        return self._counts


@functools.lru_cache(maxsize=WINDOW_CACHE)
def windows(text: str) -> tuple[Window, ...]:
    """The windows of `text` that hold an identifier (cached: a file's windows are computed once
    per version, not once per keystroke)."""
    lines = text.split("\n")
    line_words = [words(ln) for ln in lines]
    out = []
    for start in range(0, max(1, len(lines) - WINDOW_LINES + STRIDE), STRIDE):
        w = frozenset().union(*line_words[start : start + WINDOW_LINES])
        if w:
            out.append(Window("\n".join(lines[start : start + WINDOW_LINES]), w))
    return tuple(out)


class Scorer(Protocol):
    """Scores the windows of candidate texts against the query's identifiers."""

    name: str
    min_score: float
    """Windows scoring below this are not worth their tokens."""

    def best(self, query: set[str], texts: Sequence[str]) -> list[tuple[float, str]]:
        """(score, window text) of the best window of each text ((0.0, "") for none)."""
        ...


@dataclass(frozen=True)
class JaccardScorer:
    """Jaccard similarity of identifier sets (as Copilot's neighbouring-tab snippets do)."""

    name: str = "jaccard"
    min_score: float = MIN_SCORE

    def best(self, query: set[str], texts: Sequence[str]) -> list[tuple[float, str]]:
        return [best_window(query, text) for text in texts]


def best_window(query: set[str], text: str) -> tuple[float, str]:
    """(Jaccard score, text) of the window of `text` most like the query."""
    best, best_text = 0.0, ""
    for w in windows(text):
        shared = len(query & w.words)
        if shared:
            score = shared / (len(query) + len(w.words) - shared)
            if score > best:
                best, best_text = score, w.text
    return best, best_text


@dataclass(frozen=True)
class BM25Scorer:
    """Okapi BM25 over identifier tokens, the candidate windows of the query as the corpus (their
    document frequencies give the IDF; Lucene's IDF, always positive).  The score is divided by
    the most the query could score (each of its identifiers that occurs in some window, at a
    saturated frequency), so it lies in [0, 1) and one `min_score` serves every query."""

    name: str = "bm25"
    min_score: float = 0.05
    k1: float = 1.2
    b: float = 0.75

    def best(self, query: set[str], texts: Sequence[str]) -> list[tuple[float, str]]:
        per_text = [windows(text) for text in texts]
        flat = [w for ws in per_text for w in ws]
        scores = self.scores(query, flat)
        out, at = [], 0
        for ws in per_text:
            if ws:
                i = at + int(np.argmax(scores[at : at + len(ws)]))
                out.append((float(scores[i]), ws[i - at].text) if scores[i] > 0 else (0.0, ""))
            else:
                out.append((0.0, ""))
            at += len(ws)
        return out

    def scores(self, query: set[str], flat: Sequence[Window]) -> np.ndarray:
        """The normalized BM25 score of each window."""
        terms = {t: j for j, t in enumerate(sorted(query))}
        rows, cols, tf = [], [], []
        for i, w in enumerate(flat):
            for t in query & w.words:
                rows.append(i)
                cols.append(terms[t])
                tf.append(w.counts[t])
        if not rows:
            return np.zeros(len(flat))
        r, c, f = np.asarray(rows), np.asarray(cols), np.asarray(tf, dtype=np.float64)
        lengths = np.fromiter((w.length for w in flat), dtype=np.float64, count=len(flat))
        idf = self.idf(np.bincount(c, minlength=len(terms)), len(flat), query, terms)
        norm = self.k1 * (1 - self.b + self.b * lengths[r] / lengths.mean())
        raw = np.bincount(r, weights=idf[c] * f * (self.k1 + 1) / (f + norm), minlength=len(flat))
        return raw / (idf[np.unique(c)].sum() * (self.k1 + 1))

    def idf(self, df: np.ndarray, n: int, query: set[str], terms: dict[str, int]) -> np.ndarray:
        """IDF of each query term from its document frequency among the `n` windows."""
        return np.log1p((n - df + 0.5) / (df + 0.5))


SCORERS: dict[str, Scorer] = {s.name: s for s in (JaccardScorer(), BM25Scorer())}
DEFAULT_SCORER = "jaccard"


def scorer_named(scorer: str | Scorer) -> Scorer:
    """A scorer by name (`SCORERS`), or the scorer object itself."""
    if not isinstance(scorer, str):
        return scorer
    try:
        return SCORERS[scorer]
    except KeyError:
        raise ValueError(f"unknown snippet scorer {scorer!r} (known: {sorted(SCORERS)})") from None


def context_snippets(
    prefix: str,
    suffix: str,
    documents: Iterable[tuple[str, str]],
    *,
    current: str = "",
    limit: int = 4,
    query: set[str] | None = None,
    scorer: str | Scorer = DEFAULT_SCORER,
) -> list[Snippet]:
    """The best `limit` snippets for the cursor between `prefix` and `suffix` of the document
    `current`, from `documents` ((key, text) of the ranked files, the current one excluded) and
    from the current document's own text away from the cursor, their windows scored by `scorer`
    (a name in `SCORERS`, or a scorer).  `query`: `query_words(prefix)` when the caller has it
    already."""
    score_by = scorer_named(scorer)
    query = query_words(prefix) if query is None else query
    if not query:
        return []
    own_lines = prefix.split("\n")
    far_prefix = "\n".join(own_lines[: max(0, len(own_lines) - 1 - QUERY_LINES)])
    candidates = [(current, far_prefix), (current, suffix), *documents]
    found = []
    best = score_by.best(query, [text for _, text in candidates])
    for (key, _), (score, window) in zip(candidates, best, strict=True):
        if score >= score_by.min_score and score > 0 and window.strip():
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
    scorer: str | Scorer = DEFAULT_SCORER,
) -> list[Snippet]:
    """`context_snippets` over a workspace index (the document `document` is its live text).
    `roots`: the workspace folders, when the index's keys are absolute paths (the server's, the
    CLI's): each snippet's path is then `shown_path`; None leaves the keys as they are."""
    query = query_words(prefix)
    if not query:
        return []
    texts = offered_texts(index, query, document)
    found = context_snippets(
        prefix, suffix, texts, current=document or "", limit=limit, query=query, scorer=scorer
    )
    if roots is None:
        return found
    return [Snippet(shown_path(s.path, roots), s.text, s.score) for s in found]


def offered_texts(
    index: WorkspaceIndex, query: set[str], document: str | None = None
) -> list[tuple[str, str]]:
    """(key, text) of the other files a query's snippets are taken from: ranked by the identifiers
    they share with it (`FileTable`, `document` left out), read within `MAX_LINES`."""
    keys = file_table(index).ranked(query, exclude=document)
    return within_lines((k, index.text(k) or "") for k in keys)


def within_lines(texts: Iterable[tuple[str, str]], budget: int | None = None) -> list[tuple[str, str]]:
    """The leading (key, text) pairs whose texts hold at most `budget` (default `MAX_LINES`) lines in
    all (the first always)."""
    budget = MAX_LINES if budget is None else budget
    out, lines = [], 0
    for key, text in texts:
        lines += text.count("\n") + 1
        if out and lines > budget:
            break
        out.append((key, text))
    return out


def shown_path(key: str, roots: Sequence[str]) -> str:
    """A snippet's path as the model reads it: relative to the first of the workspace folders
    `roots` that holds it, with "/" (training's paths are relative to their package), else the
    file's name (a file outside every folder; no absolute path reaches the prompt)."""
    path = PurePath(key)
    for root in roots:
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return path.name
