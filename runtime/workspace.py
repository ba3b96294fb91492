"""The workspace index: the open buffers and the files under the workspace folders, as lines.

    folders -> files (filtered) -> documents (live text; an open buffer wins over the disk)
            -> line tables: every distinct stripped line gets an id; a document is its line ids

What retrieval (`runtime.retrieval`) asks of it, fast enough for every keystroke:

* `with_prefix(text)`: the distinct lines that start with `text`, with how often each occurs
  (a sorted list of the distinct lines, searched by bisection);
* `containing(text)`: the distinct lines with `text` inside them, with counts (the distinct lines
  joined as UTF-8 bytes, searched with `bytes.find`);
* `followers(line)` / `leaders(line)`: the lines that follow / precede an occurrence of `line`
  anywhere, with counts (the (line, next line) pairs of all documents, in one array searched by
  comparison);
* `file_words()` and `text(key)`: each document's identifiers (hashed) and its text, for
  context snippets (`runtime.snippets`).

Files are filtered the way a user expects: `.gitignore` rules (via `pathspec`), hidden and
vendored folders, binary files, files over `max_file_bytes`, and caps on the number of files
and bytes held (`WorkspaceLimits`).  Updating a document is cheap (its lines are re-interned);
the pair arrays are rebuilt lazily at the next query.  Thread-safe: one lock.  No torch.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtime.snippets import word_hashes

SKIP_DIRS = frozenset({
    "node_modules", "__pycache__", "site-packages", "dist-packages", "venv", "env", "build", "dist",
    "target", "vendor", "third_party", "bower_components", "__pypackages__",
})  # fmt: skip
"""Folder names never indexed (besides hidden folders): installed, generated or vendored code."""
BINARY_SNIFF = 8192
RECENT_LINES = 4096
"""New distinct lines kept unsorted (searched by a scan) before they are merged into the sorted list."""


@dataclass(frozen=True)
class WorkspaceLimits:
    max_files: int = 5000
    max_bytes: int = 64 * 2**20
    """Text held in all, open buffers included."""
    max_file_bytes: int = 2**20


@dataclass
class IndexStats:
    documents: int = 0
    bytes: int = 0
    lines: int = 0
    distinct_lines: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    """Files left out, by reason (ignored, binary, too-large, cap, unreadable)."""
    build_ms: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "workspaceDocuments": self.documents, "workspaceBytes": self.bytes,
            "workspaceLines": self.lines, "workspaceDistinctLines": self.distinct_lines,
            "workspaceSkipped": dict(self.skipped), "workspaceBuildMs": round(self.build_ms, 1),
        }  # fmt: skip


@dataclass
class _Doc:
    ids: np.ndarray  # (L,) int32: the document's stripped lines, as ids
    nbytes: int
    open: bool = False
    """An open buffer: its text came from the editor and wins over the file on disk."""
    text: str = ""
    _counts: dict[int, int] | None = None
    _words: np.ndarray | None = None

    def words(self) -> np.ndarray:
        """The document's identifiers, hashed (computed once per version)."""
        if self._words is None:
            self._words = word_hashes(self.text)
        return self._words

    def counts(self) -> dict[int, int]:
        """id -> occurrences in this document (computed once per version)."""
        if self._counts is None:
            ids, n = np.unique(self.ids, return_counts=True)
            self._counts = dict(zip(ids.tolist(), n.tolist(), strict=True))
        return self._counts


def iter_files(root: Path, skipped: dict[str, int]) -> Iterator[Path]:
    """Files under `root` worth indexing, in a stable order; `skipped` counts the others."""
    import pathspec

    specs: list[tuple[Path, pathspec.GitIgnoreSpec]] = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        ignore = here / ".gitignore"
        if ignore.is_file():
            try:
                rules = ignore.read_text(errors="ignore").splitlines()
                specs.append((here, pathspec.GitIgnoreSpec.from_lines(rules)))
            except (OSError, ValueError):
                pass
        kept = []
        for d in sorted(dirs):
            if d.startswith(".") or d in SKIP_DIRS or _ignored(here / d, specs, is_dir=True):
                skipped["ignored"] = skipped.get("ignored", 0) + 1
            else:
                kept.append(d)
        dirs[:] = kept
        for name in sorted(files):
            path = here / name
            if name.startswith(".") or _ignored(path, specs, is_dir=False):
                skipped["ignored"] = skipped.get("ignored", 0) + 1
                continue
            yield path


def _ignored(path: Path, specs: list, *, is_dir: bool) -> bool:
    for base, spec in specs:
        try:
            rel = path.relative_to(base).as_posix()
        except ValueError:
            continue
        if spec.match_file(rel + ("/" if is_dir else "")):
            return True
    return False


def read_text_file(path: Path, max_bytes: int) -> tuple[str | None, str]:
    """(text, "") or (None, why it is left out): too-large, binary, unreadable."""
    try:
        if path.stat().st_size > max_bytes:
            return None, "too-large"
        data = path.read_bytes()
    except OSError:  # deleted while indexing, no permission, a broken link
        return None, "unreadable"
    if b"\0" in data[:BINARY_SNIFF]:
        return None, "binary"
    try:
        return data.decode("utf-8"), ""
    except UnicodeDecodeError:
        return None, "binary"


class WorkspaceIndex:
    def __init__(self, limits: WorkspaceLimits | None = None) -> None:
        self.limits = limits or WorkspaceLimits()
        self._lock = threading.Lock()
        self._docs: dict[str, _Doc] = {}
        self._strings: list[str] = []  # id -> stripped line
        self._id_of: dict[str, int] = {}
        self._counts: list[int] = []  # id -> occurrences over all documents
        self._sorted: list[str] = []  # the distinct non-empty lines, sorted, for prefix search
        self._recent: list[str] = []  # lines interned since the last merge into `_sorted`
        self._pairs: tuple[np.ndarray, np.ndarray] | None = None  # (prev ids, next ids), lazily
        self._joined = bytearray()  # the distinct lines of ids below `_joined_n`, UTF-8, each ending in "\n"
        self._joined_at = np.zeros(1, dtype=np.int64)  # where each of them starts in `_joined`
        self._joined_n = 0
        self._bytes = 0
        self._lines = 0
        self.version = 0
        """Bumped by every change to the documents held (answers computed before are stale)."""
        self.stats = IndexStats()
        self._intern("")  # id 0: the blank line, which the line pairs skip

    # ----------------------------------------------------------------- building
    def add_folder(
        self,
        root: Path,
        *,
        progress: Callable[[int, str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        """Index the files under `root` (open buffers already held are kept as they are)."""
        started = time.perf_counter()
        skipped = self.stats.skipped
        for n, path in enumerate(iter_files(root, skipped), 1):
            if should_stop is not None and should_stop():
                break
            if len(self._docs) >= self.limits.max_files:
                skipped["cap"] = skipped.get("cap", 0) + 1
                continue
            text, why = read_text_file(path, self.limits.max_file_bytes)
            if text is None:
                skipped[why] = skipped.get(why, 0) + 1
                continue
            if not self.update(str(path), text, open_buffer=False):
                skipped["cap"] = skipped.get("cap", 0) + 1
            if progress is not None and n % 100 == 0:
                progress(n, str(path))
        with self._lock:
            self._merge_recent()
            self._join_recent()
        self.stats.build_ms += (time.perf_counter() - started) * 1000

    def update(self, key: str, text: str, *, open_buffer: bool = True) -> bool:
        """Set a document's text; False when the byte cap leaves no room for it.  A file read
        from disk never replaces an open buffer."""
        with self._lock:
            old = self._docs.get(key)
            if old is not None and old.open and not open_buffer:
                return True
            nbytes = len(text)
            if self._bytes - (old.nbytes if old else 0) + nbytes > self.limits.max_bytes:
                return False
            if old is not None:
                self._drop(key)
            ids = np.fromiter((self._intern(line.strip()) for line in text.split("\n")), dtype=np.int32)
            for i in ids.tolist():
                self._counts[i] += 1
            self._docs[key] = _Doc(ids, nbytes, open_buffer, text)
            self._bytes += nbytes
            self._lines += len(ids)
            self._pairs = None
            self.version += 1
            self._refresh_stats()
            return True

    def remove(self, key: str) -> None:
        with self._lock:
            if key in self._docs:
                self._drop(key)
                self._pairs = None
                self.version += 1
                self._refresh_stats()

    def close_buffer(self, key: str, disk_text: str | None) -> None:
        """An open buffer was closed: the file on disk stands for it again (or nothing)."""
        with self._lock:
            if key in self._docs:
                self._docs[key].open = False
        if disk_text is None:
            self.remove(key)
        else:
            self.update(key, disk_text, open_buffer=False)

    def _intern(self, line: str) -> int:
        i = self._id_of.get(line)
        if i is None:
            i = self._id_of[line] = len(self._strings)
            self._strings.append(line)
            self._counts.append(0)
            if line:
                self._recent.append(line)
        return i

    def _merge_recent(self) -> None:
        """Fold the recent lines into the sorted list (two sorted runs: a linear merge)."""
        if self._recent:
            self._sorted = sorted(self._sorted + sorted(self._recent))
            self._recent = []

    def _drop(self, key: str) -> None:
        doc = self._docs.pop(key)
        for i in doc.ids.tolist():
            self._counts[i] -= 1
        self._bytes -= doc.nbytes
        self._lines -= len(doc.ids)

    def _refresh_stats(self) -> None:
        s = self.stats
        s.documents, s.bytes, s.lines = len(self._docs), self._bytes, self._lines
        s.distinct_lines = len(self._strings)

    # ------------------------------------------------------------------ queries
    def keys(self) -> list[str]:
        with self._lock:
            return list(self._docs)

    def with_prefix(
        self, prefix: str, exclude: str | None = None, limit: int = 2000
    ) -> list[tuple[str, int]]:
        """Distinct stripped lines that start with `prefix` (and are longer), with their counts
        over every document but `exclude`; at most `limit` lines are looked at (in sort order)."""
        with self._lock:
            if len(self._recent) > RECENT_LINES:
                self._merge_recent()
            doc = self._docs.get(exclude) if exclude is not None else None
            own = doc.counts() if doc is not None else {}
            lo = bisect.bisect_right(self._sorted, prefix)
            found = []
            for line in self._sorted[lo : lo + limit]:
                if not line.startswith(prefix):
                    break
                found.append(line)
            found += [line for line in self._recent if line.startswith(prefix) and line != prefix]
            out = []
            for line in found:
                i = self._id_of[line]
                n = self._counts[i] - own.get(i, 0)
                if n > 0:
                    out.append((line, n))
            return out

    def containing(self, text: str, exclude: str | None = None, limit: int = 400) -> list[tuple[str, int]]:
        """Distinct stripped lines that contain `text` (and are longer), with their counts over every
        document but `exclude`; at most `limit` lines are looked at (in the order first seen)."""
        with self._lock:
            if len(self._strings) - self._joined_n > RECENT_LINES:
                self._join_recent()
            doc = self._docs.get(exclude) if exclude is not None else None
            own = doc.counts() if doc is not None else {}
            hits, joined, needle, pos = [], self._joined, _utf8(text), 0
            while len(hits) < limit and (k := joined.find(needle, pos)) >= 0:
                hits.append(k)
                pos = joined.find(b"\n", k) + 1  # on to the next line
            found = (np.searchsorted(self._joined_at, hits, side="right") - 1).tolist()
            recent = range(self._joined_n, len(self._strings))
            found += [i for i in recent if text in self._strings[i]][: max(limit - len(found), 0)]
            lines = ((self._strings[i], self._counts[i] - own.get(i, 0)) for i in found)
            return [(line, n) for line, n in lines if n > 0 and line != text]

    def _join_recent(self) -> None:
        """Append the lines interned since the last call to the joined bytes (UTF-8: one byte a
        character for code, where a str holding one wider character would take four)."""
        new = self._strings[self._joined_n :]
        if not new:
            return
        data = _utf8("\n".join(new) + "\n")
        ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10) + 1 + len(self._joined)
        self._joined += data
        self._joined_at = np.concatenate([self._joined_at, ends])
        self._joined_n = len(self._strings)

    def occurrences(self, line: str, exclude: str | None = None) -> int:
        """How often the stripped `line` occurs in every document but `exclude`."""
        with self._lock:
            i = self._id_of.get(line)
            if i is None or not line:
                return 0
            doc = self._docs.get(exclude) if exclude is not None else None
            return self._counts[i] - (doc.counts().get(i, 0) if doc is not None else 0)

    def followers(self, line: str, exclude: str | None = None) -> list[tuple[str, int]]:
        """Stripped lines that follow an occurrence of `line` (blank lines skipped), with counts,
        over every document but `exclude`."""
        return self._neighbours(line, exclude, before=False)

    def leaders(self, line: str, exclude: str | None = None) -> list[tuple[str, int]]:
        """Stripped lines that precede an occurrence of `line` (blank lines skipped), with counts,
        over every document but `exclude`."""
        return self._neighbours(line, exclude, before=True)

    def _neighbours(self, line: str, exclude: str | None, before: bool) -> list[tuple[str, int]]:
        with self._lock:
            i = self._id_of.get(line)
            if i is None or not line:
                return []
            if self._pairs is None:
                self._pairs = _pairs(d.ids for d in self._docs.values())
            found = Counter(self._follow(self._pairs, i, before))
            if exclude is not None and exclude in self._docs:
                found.subtract(self._follow(_pairs([self._docs[exclude].ids]), i, before))
            return [(self._strings[a], n) for a, n in sorted(found.items()) if n > 0]

    @staticmethod
    def _follow(pairs: tuple[np.ndarray, np.ndarray], i: int, before: bool = False) -> dict[int, int]:
        prev, nxt = pairs
        hits = prev[nxt == i] if before else nxt[prev == i]  # (n,)
        ids, counts = np.unique(hits, return_counts=True)
        return dict(zip(ids.tolist(), counts.tolist(), strict=True))

    def file_words(self) -> list[tuple[str, np.ndarray]]:
        """(key, hashed identifiers) of every document."""
        with self._lock:
            docs = list(self._docs.items())
        return [(k, d.words()) for k, d in docs]

    def text(self, key: str) -> str | None:
        with self._lock:
            doc = self._docs.get(key)
            return doc.text if doc is not None else None

    def nbytes_estimate(self) -> int:
        """Memory held, roughly: the texts (one byte a character for ASCII), distinct lines, id
        and identifier arrays."""
        with self._lock:
            strings = sum(len(s) + 49 for s in self._strings)
            words = (d._words.nbytes if d._words is not None else 0 for d in self._docs.values())
            arrays = sum(d.ids.nbytes for d in self._docs.values()) + sum(words)
            joined = len(self._joined) + self._joined_at.nbytes
            return self._bytes + strings + 3 * 8 * len(self._strings) + arrays + joined


def _utf8(text: str) -> bytes:
    """`text` as UTF-8 (a lone surrogate, as from a file decoded leniently, passes through)."""
    return text.encode("utf-8", "surrogatepass")


def _pairs(docs: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(prev, next) id pairs of consecutive non-blank lines of every document."""
    prev, nxt = [], []
    for ids in docs:
        kept = ids[ids != 0]  # id 0 is the blank line
        if len(kept) > 1:
            prev.append(kept[:-1])
            nxt.append(kept[1:])
    if not prev:
        empty = np.zeros(0, dtype=np.int32)
        return empty, empty
    return np.concatenate(prev), np.concatenate(nxt)
