"""The line library: pairs of consecutive lines that recur across the training corpus's packages.

A small model does not memorise idioms (`return True` after `if x in seen:`, `a, b = b, a % b` after
`while b:`); a table of them does.  Each row is a pair of consecutive non-blank lines (stripped), the
indentation step between them in levels, and the number of corpus packages the pair occurs in (at
least two: a pair of one package may be that package's own boilerplate).  `runtime.retrieval` turns
them into line drafts (`follows` and `precedes` from the `library`), which the model verifies like
any other.

Built by `runtime.train.library` from the training split only (never a held-out or reserved package)
and shipped beside the models (`DEFAULT_LIBRARY`).  The file is gzip'd text: a header line
`# dg-lsp line library 1 {json}` (how it was built), then one row per pair, tab-separated:
`packages  step  line  next-line`.  Pure Python and numpy, no torch.
"""

from __future__ import annotations

import functools
import gzip
import itertools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

DEFAULT_LIBRARY = Path(__file__).resolve().parent.parent / "models" / "line-library.tsv.gz"
HEADER = "# dg-lsp line library 1 "
MAX_LINE_CHARS = 200
"""Longer lines are left out (a draft is at most `runtime.retrieval.MAX_DRAFT_CHARS`)."""
MAX_STEP = 4
"""Pairs whose indentation changes by more levels are left out."""


class LibraryError(ValueError):
    """A line library file that cannot be read (its path and what is wrong in the message)."""


class LineLibrary:
    """Lookups of the pairs: the lines that follow a line, the lines that precede one.  The distinct
    lines are kept sorted in one UTF-8 buffer (no Python object per line: a library of 270,000 pairs
    holds about 25 MB), the pairs in numpy arrays sorted by either line, most packages first."""

    def __init__(self, rows: Iterable[tuple[int, int, str, str]], about: dict | None = None) -> None:
        rows = sorted(rows, key=lambda r: -r[0])  # most packages first within each line's rows
        self.about = about or {}
        """The header's record of how the library was built."""
        lines = sorted({line for _, _, a, b in rows for line in (a, b)})
        index = {line: i for i, line in enumerate(lines)}
        data = [line.encode("utf-8") for line in lines]
        self._blob = b"".join(data)
        self._starts = np.cumsum([0] + [len(d) for d in data], dtype=np.int64)
        first = np.array([index[a] for _, _, a, _ in rows], dtype=np.int32)
        second = np.array([index[b] for _, _, _, b in rows], dtype=np.int32)
        self._counts = np.array([n for n, _, _, _ in rows], dtype=np.int32)
        self._steps = np.array([s for _, s, _, _ in rows], dtype=np.int8)
        self._pairs = (first, second)
        self._order = (np.argsort(first, kind="stable"), np.argsort(second, kind="stable"))
        self._keys = (first[self._order[0]], second[self._order[1]])

    def __len__(self) -> int:
        return len(self._counts)

    def followers(self, line: str, limit: int = 200) -> list[tuple[str, int, int]]:
        """(next line, packages, indentation step from `line` to it), most packages first."""
        return self._lookup(line, 0, limit)

    def leaders(self, line: str, limit: int = 200) -> list[tuple[str, int, int]]:
        """(previous line, packages, indentation step from it to `line`), most packages first."""
        return self._lookup(line, 1, limit)

    def _line(self, i: int) -> bytes:
        return self._blob[self._starts[i] : self._starts[i + 1]]

    def _id(self, line: str) -> int | None:
        """The line's index among the sorted distinct lines (UTF-8 keeps code point order)."""
        key, lo, hi = line.encode("utf-8"), 0, len(self._starts) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self._line(mid) < key:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < len(self._starts) - 1 and self._line(lo) == key else None

    def _lookup(self, line: str, side: int, limit: int) -> list[tuple[str, int, int]]:
        i = self._id(line) if line else None
        if i is None:
            return []
        keys = self._keys[side]
        lo, hi = np.searchsorted(keys, i, side="left"), np.searchsorted(keys, i, side="right")
        rows = self._order[side][lo : min(hi, lo + limit)]  # stable sorts: most packages first
        other = self._pairs[1 - side][rows].tolist()
        counts, steps = self._counts[rows].tolist(), self._steps[rows].tolist()
        return [(self._line(j).decode("utf-8"), n, s) for j, n, s in zip(other, counts, steps, strict=True)]

    def nbytes_estimate(self) -> int:
        arrays = (self._starts, *self._pairs, *self._order, *self._keys, self._counts, self._steps)
        return len(self._blob) + sum(a.nbytes for a in arrays)


def document_pairs(text: str, unit: str) -> Iterator[tuple[int, str, str]]:
    """(indentation step, line, next line) for the consecutive non-blank lines of one document,
    `unit` its indentation level (`runtime.retrieval.indent_unit`)."""
    lines = [ln.rstrip() for ln in text.split("\n") if ln.strip()]
    width = max(len(unit), 1)
    for a, b in itertools.pairwise(lines):
        sa, sb = a.strip(), b.strip()
        if len(sa) > MAX_LINE_CHARS or len(sb) > MAX_LINE_CHARS or "\t" in sa + sb:
            continue
        diff = (len(b) - len(sb)) - (len(a) - len(sa))
        if diff % width or abs(diff // width) > MAX_STEP:
            continue
        yield diff // width, sa, sb


def write(path: Path, rows: Iterable[tuple[int, int, str, str]], about: dict) -> int:
    """Write rows (packages, step, line, next line), most packages first; returns how many."""
    rows = sorted(rows, key=lambda r: (-r[0], r[2], r[3], r[1]))
    body = "".join(f"{n}\t{s}\t{a}\t{b}\n" for n, s, a, b in rows)
    text = HEADER + json.dumps(about, sort_keys=True) + "\n" + body
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
        f.write(text.encode("utf-8"))  # no name or time in the gzip header: a rebuild is byte for byte
    return len(rows)


def load(path: Path) -> LineLibrary:
    """Read a library file; a missing or malformed one raises LibraryError naming the path."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            head = f.readline()
            if not head.startswith(HEADER):
                raise LibraryError(f"{path}: not a dg-lsp line library (version 1)")
            about = json.loads(head[len(HEADER) :])
            return LineLibrary(_rows(f, path), about)
    except (OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LibraryError(f"{path}: {e}") from None


def resolve(spec: str) -> Path | None:
    """A library setting: "default" is the shipped file, "" or "none" none, anything else a path."""
    if spec in ("", "none"):
        return None
    return DEFAULT_LIBRARY if spec == "default" else Path(spec).expanduser()


@functools.lru_cache(maxsize=2)
def cached(path: Path) -> LineLibrary:
    """`load`, once per path in a process (the evaluations and benchmarks share one)."""
    return load(path)


def from_setting(spec: str) -> LineLibrary | None:
    """The library a setting names (`resolve`), loaded once per process (`cached`); None for none.
    An unreadable file raises LibraryError."""
    path = resolve(spec)
    return None if path is None else cached(path)


def _rows(lines: Iterable[str], path: Path) -> Iterator[tuple[int, int, str, str]]:
    for k, raw in enumerate(lines, start=2):
        parts = raw.rstrip("\n").split("\t")
        try:
            n, step, a, b = parts
            yield int(n), int(step), a, b
        except ValueError:
            raise LibraryError(f"{path}:{k}: expected packages, step, line and next line") from None
