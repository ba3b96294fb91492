"""The workspace as context: keeps `runtime.workspace.WorkspaceIndex` in step with the editor.

    initialized          index the workspace folders in a background thread (progress shown)
    didOpen / didChange  the open buffer's text stands for the file (re-indexed lazily: a
                         keystroke only marks it, the next query elsewhere re-reads it)
    didClose             the file on disk stands for it again
    watched files        created, changed and deleted files on disk (not open ones)
    a completion         line drafts for the cursor (`runtime.retrieval.line_drafts`) and
                         context snippets (`runtime.snippets`; paths relative to the folder)

Keys are file-system paths, so a buffer and its file on disk are one document.  Only
`file:` documents take part.  No torch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pygls import uris

from runtime import library
from runtime.library import LineLibrary
from runtime.retrieval import Draft, line_drafts
from runtime.snippets import Snippet, workspace_snippets
from runtime.workspace import WorkspaceIndex, WorkspaceLimits, read_text_file

log = logging.getLogger("dg_lsp")

RETRIEVAL_WINDOW = 200_000
"""Characters of the current document on each side of the cursor that retrieval reads."""
MAX_DRAFTS = 4


def _around(text: str, offset: int) -> tuple[str, str]:
    """The current document's text on each side of the cursor that retrieval reads."""
    prefix = text[max(0, offset - RETRIEVAL_WINDOW) : offset].replace("\r\n", "\n")
    return prefix, text[offset : offset + RETRIEVAL_WINDOW].replace("\r\n", "\n")


def path_of(uri: str) -> str | None:
    """The file-system path of a `file:` URI (None for other schemes)."""
    if not uri.startswith("file:"):
        return None
    return uris.to_fs_path(uri)


class WorkspaceFeed:
    def __init__(self, limits: WorkspaceLimits | None = None) -> None:
        self.index = WorkspaceIndex(limits)
        self.state = "off"
        """off, indexing, ready."""
        self._dirty: dict[str, Callable[[], str | None]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._snippets: tuple[tuple, list[Snippet]] | None = None  # (query key, answer)
        self.roots: list[str] = []
        """The workspace folders: a snippet's path in the prompt is relative to its folder."""
        self.library: LineLibrary | None = None
        """The line library (`runtime.library`): drafts from pairs that recur across the corpus."""

    def load_library(self, spec: str) -> str | None:
        """Blocking (run it in a thread): load the `lineLibrary` setting's file; returns what went
        wrong (the drafts then come from the workspace alone), None when it loaded or none is wanted."""
        try:
            self.library = library.from_setting(spec)
        except library.LibraryError as e:
            log.warning("line library not loaded: %s", e)
            return str(e)
        if self.library is not None:
            log.info("line library: %d line pairs (%s)", len(self.library), spec)
        return None

    # ------------------------------------------------------------------ folders
    def index_folders(self, folders: list[Path], progress: Callable[[int, str], None] | None = None) -> float:
        """Blocking (run it in a thread): index every folder; returns the seconds it took."""
        started = time.perf_counter()
        self.state = "indexing"
        self.roots = [str(f) for f in folders]
        for folder in folders:
            if self._stop.is_set():
                break
            if folder.is_dir():
                self.index.add_folder(folder, progress=progress, should_stop=self._stop.is_set)
        self.state = "ready"
        return time.perf_counter() - started

    def stop(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------------ buffers
    def opened(self, uri: str, text: str) -> None:
        if (path := path_of(uri)) is not None:
            self.index.update(path, text, open_buffer=True)

    def changed(self, uri: str, text: Callable[[], str | None]) -> None:
        """A keystroke: O(1); `text` is read when the index next needs this document."""
        if (path := path_of(uri)) is not None:
            with self._lock:
                self._dirty[path] = text

    def closed(self, uri: str) -> None:
        if (path := path_of(uri)) is None:
            return
        with self._lock:
            self._dirty.pop(path, None)
        text, _ = read_text_file(Path(path), self.index.limits.max_file_bytes)
        self.index.close_buffer(path, text)

    def files_changed(self, paths: list[tuple[str, bool]]) -> None:
        """(uri, deleted) of files changed on disk; open buffers keep winning."""
        for uri, deleted in paths:
            path = path_of(uri)
            if path is None:
                continue
            if deleted:
                self.index.remove(path)
                continue
            text, _ = read_text_file(Path(path), self.index.limits.max_file_bytes)
            if text is not None:
                self.index.update(path, text, open_buffer=False)

    def _refresh(self, except_path: str | None) -> None:
        with self._lock:
            todo = [(p, f) for p, f in self._dirty.items() if p != except_path]
            for p, _ in todo:
                del self._dirty[p]
        for path, text in todo:
            value = text()
            if value is not None:
                self.index.update(path, value, open_buffer=True)

    # ------------------------------------------------------------------ queries
    def drafts(self, uri: str, text: str, offset: int) -> list[Draft]:
        """Line drafts for the cursor at `offset` of the document `text` (its live text)."""
        path = path_of(uri)
        self._refresh(path)
        prefix, suffix = _around(text, offset)
        return line_drafts(prefix, suffix, self.index, document=path, limit=MAX_DRAFTS, library=self.library)

    def snippets(self, uri: str, text: str, offset: int) -> list[Snippet]:
        """Context snippets for the cursor at `offset`; the last answer is reused while the lines
        above the cursor and the index stay the same (typing inside a line)."""
        path = path_of(uri)
        self._refresh(path)
        prefix, suffix = _around(text, offset)
        key = (path, prefix[: prefix.rfind("\n") + 1], self.index.version)  # the lines above
        if self._snippets is None or self._snippets[0] != key:
            found = workspace_snippets(prefix, suffix, self.index, document=path, roots=self.roots)
            self._snippets = (key, found)
        return self._snippets[1]

    def stats(self) -> dict[str, object]:
        out: dict[str, object] = {"workspaceState": self.state}
        out.update(self.index.stats.as_dict())
        out["workspaceIndexMb"] = round(self.index.nbytes_estimate() / 2**20, 1)
        out["lineLibraryPairs"] = len(self.library) if self.library is not None else 0
        return out
