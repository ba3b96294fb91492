"""The server object: settings, model lifecycle, status and progress.

`server.py` holds the LSP handlers; this module holds the state they share.
Model loading runs in a thread after `initialized` and reports `dg/status`
(loading, ready, busy, error) plus work-done progress; a model that fails to
load leaves the server up with empty completions.  Nothing here imports torch:
the runtime's loader is imported when the first model loads.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import gc
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
from lsprotocol import types as t
from pygls.capabilities import get_capability
from pygls.exceptions import JsonRpcInternalError
from pygls.workspace import TextDocument

from dg_lsp import __version__
from dg_lsp.context import UTF16
from dg_lsp.documents import open_document
from dg_lsp.protocol import ProtocolServer
from dg_lsp.settings import SECTION, Settings, from_initialization_options, parse_settings
from dg_lsp.typing_cache import TypingCache
from dg_lsp.worker import InfillService
from dg_lsp.workspace import WorkspaceFeed, path_of
from runtime.backends.base import Backend
from runtime.measure import rss_bytes
from runtime.retrieval import Draft
from runtime.types import InfillRequest, InfillResult, ModelLoadError, RuntimeError_
from runtime.workspace import WorkspaceLimits

log = logging.getLogger("dg_lsp")

STATUS_METHOD = "dg/status"
COMMAND_WAIT_S = 600.0
"""How long a command sent while the model loads waits for it."""


def return_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's `malloc_trim`; elsewhere nothing).

    A model loads on one executor thread and is freed on another, each with its own malloc arena;
    without this the freed weights stay resident (benchmarks/reload.py: 370 MB after 40 reloads of
    the shipped model, 333 MB with it, 302 MB after the first load)."""
    gc.collect()  # anything the old model left in reference cycles
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: not glibc
        ctypes.CDLL(None).malloc_trim(0)


class DgServer(ProtocolServer):
    def __init__(self) -> None:
        super().__init__("dg-lsp", __version__)
        self.settings = Settings()
        self.overrides: dict[str, Any] = {}
        """Settings given on the command line; they win over the client's."""
        self.service = InfillService(on_busy=self._on_busy)
        self.typing = TypingCache()
        self.state = "loading"
        self.state_message = "waiting for initialized"
        self.accepted = 0
        self._loaded: tuple | None = None
        self._loading: tuple | None = None
        self._generation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.feed: WorkspaceFeed | None = None
        """The workspace index's feed; None while `workspaceEnabled` is false."""
        self.workspace_message: str | None = None
        """What the last indexing did, sent with every `dg/status` after it."""
        self._indexed: tuple | None = None
        self._settled = asyncio.Event()
        """Set when no model load is pending (none started yet counts as pending)."""

    # ------------------------------------------------------------------ settings
    def configure_initial(self, options: Any) -> None:
        settings, problems = from_initialization_options(options)
        self._adopt(settings, problems)

    def configure_changed(self, raw: Any) -> bool:
        """Adopt settings pushed by the client; True when the model must be (re)loaded."""
        section = raw.get(SECTION) if isinstance(raw, dict) else None
        if section is None:
            return False
        settings, problems = parse_settings(section)
        self._adopt(settings, problems)
        # compare with what is loaded or being loaded: a client that pushes the same settings
        # right after `initialized` (Neovim does) must not start a second load
        return self._model_key() != (self._loading or self._loaded)

    def _adopt(self, settings: Settings, problems: list[str]) -> None:
        if self.overrides:
            settings = msgspec.structs.replace(settings, **self.overrides)
        self.settings = settings
        for p in problems:
            log.warning("settings: %s", p)
        if problems:
            message = "dg-lsp settings: " + "; ".join(problems)
            self.window_show_message(t.ShowMessageParams(type=t.MessageType.Warning, message=message))

    def workspace_key(self) -> tuple:
        s = self.settings
        return (
            s.workspace_enabled, s.workspace_max_files, s.workspace_max_file_bytes, s.workspace_max_bytes,
            s.line_library,
        )  # fmt: skip

    def _model_key(self) -> tuple:
        s = self.settings
        memory = tuple(sorted((s.max_memory or {}).items()))
        large = (s.vision, s.device_map, memory, s.quantization, s.max_denoising_steps, s.remote_prompt)
        return (s.model, s.device, s.threads, s.dtype, s.remote_model, s.trust_remote_code, s.kernels, large)

    # ----------------------------------------------------------------- lifecycle
    async def load_model(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._generation += 1
        generation, key = self._generation, self._model_key()
        self._loading = key
        self._settled.clear()
        model, device, threads, dtype, remote_model, trust_remote_code, kernels, _ = key
        settings = self.settings
        self.set_status("loading", f"loading model {model!r} on {device}")
        from runtime.load import load_backend  # torch import stays off the initialize path

        async with self.progress(f"dg-lsp: loading model {model}", 1):
            try:
                load = functools.partial(
                    load_backend, model, device=device, threads=threads, dtype=dtype,
                    remote_model=remote_model, allow_remote_code=trust_remote_code, kernels=kernels,
                    options=settings.large_model_options(),
                )
                backend, error = await self._loop.run_in_executor(None, load), None
            except ModelLoadError as e:
                backend, error = None, str(e)
            except Exception as e:  # torch errors (bad device, out of memory) are reported the same way
                backend, error = None, f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
        if generation != self._generation:  # a newer configuration is loading
            self._release_later(backend)
            return
        self._loading = None
        self._replace_backend(backend)
        self._settled.set()
        if backend is None:
            self._loaded = None
            message = f"dg-lsp: model failed to load: {error}"
            self.window_show_message(t.ShowMessageParams(type=t.MessageType.Error, message=message))
            self.set_status("error", f"model {model!r} failed to load: {error}")
        else:
            self._loaded = key
            self.set_status("ready", f"{backend.description} on {device}")

    def _replace_backend(self, backend: Backend | None) -> asyncio.Future[None] | None:
        """Serve with `backend` from now on; the old one is closed (its caches, connections) in a
        thread once its request in flight is done, and nothing here keeps it alive (issue 14 item
        8: a reload kept every old model).  Returns that thread's future."""
        old, self.service.backend = self.service.backend, backend
        return None if old is backend else self._release_later(old)

    def _release_later(self, backend: Backend | None) -> asyncio.Future[None] | None:
        if backend is None or self._loop is None:
            return None
        held = [backend]
        del backend  # only `held` keeps it, and `release` drops that

        def release() -> None:
            old = held.pop()
            try:
                old.release()
            except Exception:  # a backend that fails to close must not take the server down
                log.exception("closing the previous model failed")
            del old  # the last reference: the model's memory is freed here
            return_free_memory()

        return self._loop.run_in_executor(None, release)

    # ---------------------------------------------------------------- workspace
    async def index_workspace(self) -> None:
        """(Re)build the workspace index in a thread, with progress; the open buffers go in first."""
        key = self.workspace_key()
        if key == self._indexed:
            return
        self._indexed = key
        if self.feed is not None:
            self.feed.stop()
        if not self.settings.workspace_enabled:
            self.feed = None
            return
        s = self.settings
        feed = self.feed = WorkspaceFeed(
            WorkspaceLimits(s.workspace_max_files, s.workspace_max_bytes, s.workspace_max_file_bytes)
        )
        for doc in list(self.workspace.text_documents.values()):
            feed.opened(doc.uri, doc.source)
        folders = [Path(p) for f in self.workspace.folders.values() if (p := path_of(f.uri))]
        if not folders and self.workspace.root_path:
            folders = [Path(self.workspace.root_path)]
        loop = asyncio.get_running_loop()
        async with self.progress("dg-lsp: indexing the workspace", 0) as step:
            def report(n: int, path: str) -> None:  # on the indexing thread
                loop.call_soon_threadsafe(step, f"{n} files")

            problem = await loop.run_in_executor(None, feed.load_library, s.line_library)
            if problem:
                message = f"dg-lsp: no line library ({problem}); drafts come from the workspace alone"
                self.window_show_message(t.ShowMessageParams(type=t.MessageType.Warning, message=message))
            seconds = await loop.run_in_executor(None, feed.index_folders, folders, report)
        if not folders:
            return
        st = feed.index.stats
        self.workspace_message = (
            f"workspace indexed: {st.documents} files, {st.bytes / 2**20:.1f} MB in {seconds:.1f} s"
        )
        log.info("%s (skipped: %s)", self.workspace_message, st.skipped)
        if self.state in ("ready", "busy"):  # else the coming `ready` carries it
            self.set_status(self.state, self.state_message)

    async def watch_files(self) -> None:
        """Ask the client to report file changes on disk, where it can register watchers at run time."""
        caps = self.client_capabilities
        if not get_capability(caps, "workspace.did_change_watched_files.dynamic_registration", False):
            return
        watcher = t.FileSystemWatcher(glob_pattern="**/*")
        options = t.DidChangeWatchedFilesRegistrationOptions(watchers=[watcher])
        registration = t.Registration(id="dg-lsp-files", method=t.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                                      register_options=options)  # fmt: skip
        try:
            await self.client_register_capability_async(t.RegistrationParams(registrations=[registration]))
        except Exception as e:  # a client that refuses: the index then follows the open buffers only
            log.warning("the client does not watch files for us (%s): changes on disk are not followed", e)

    def line_drafts(self, uri: str, text: str, offset: int) -> list[Draft]:
        """Line drafts for a completion at `offset` (none when drafts or the workspace are off)."""
        if self.feed is None or not self.settings.drafts:
            return []
        try:
            return self.feed.drafts(uri, text, offset)
        except Exception:  # retrieval must never cost the completion itself
            log.exception("line drafts failed")
            return []

    def context_snippets(self, uri: str, text: str, offset: int) -> tuple[tuple[str, str], ...]:
        """Context snippets for a completion at `offset`, as (path, text) pairs: none when the
        setting or the workspace is off, or when the model was not trained to read them."""
        backend = self.service.backend
        if self.feed is None or not self.settings.snippets or not getattr(backend, "snippet_tokens", 0):
            return ()
        try:
            return tuple((s.path, s.text) for s in self.feed.snippets(uri, text, offset))
        except Exception:  # retrieval must never cost the completion itself
            log.exception("context snippets failed")
            return ()

    def set_status(self, state: str, message: str) -> None:
        self.state, self.state_message = state, message
        log.info("status %s: %s", state, message)
        payload = {"state": state, "message": message}
        if self.workspace_message is not None:
            payload["workspace"] = self.workspace_message
        self.protocol.notify(STATUS_METHOD, payload)
        level = t.MessageType.Error if state == "error" else t.MessageType.Log
        if state in ("loading", "error") or (state == "ready" and message != "idle"):
            self.window_log_message(t.LogMessageParams(type=level, message=f"dg-lsp: {state}: {message}"))

    def _on_busy(self, busy: bool) -> None:
        # called on the worker thread
        if self._loop is not None and self.state in ("ready", "busy"):
            state = "busy" if busy else "ready"
            self._loop.call_soon_threadsafe(self._set_busy, state)

    def _set_busy(self, state: str) -> None:
        if self.state in ("ready", "busy") and self.state != state:
            self.set_status(state, "working" if state == "busy" else "idle")

    @contextlib.asynccontextmanager
    async def progress(self, title: str, total: int) -> AsyncIterator[Callable[..., None]]:
        """Work-done progress when the client supports it; yields a function to call per step
        (with an optional message).  `total` 0: unknown, the steps report messages only."""
        token: str | None = None
        if get_capability(self.client_capabilities, "window.work_done_progress", False):
            token = f"dg-{uuid.uuid4().hex}"
            try:
                await self.work_done_progress.create_async(token)
                self.work_done_progress.begin(token, t.WorkDoneProgressBegin(title=title, percentage=0))
            except Exception:
                log.warning("client refused a progress token", exc_info=True)
                token = None
        done = 0

        def step(message: str | None = None) -> None:
            nonlocal done
            done += 1
            if token is not None:
                if total:
                    pct = min(100, round(100 * done / total))
                    report = t.WorkDoneProgressReport(percentage=pct, message=message or f"{done}/{total}")
                else:  # an unknown total: a message only
                    report = t.WorkDoneProgressReport(message=message or str(done))
                self.work_done_progress.report(token, report)

        try:
            yield step
        finally:
            if token is not None:
                self.work_done_progress.end(token, t.WorkDoneProgressEnd(message="done"))
                # pygls keeps every token's Future otherwise (one per model load and per command)
                self.work_done_progress.tokens.pop(token, None)

    # ----------------------------------------------------------- client and docs
    @property
    def encoding(self) -> str:
        enc = self.workspace.position_encoding or UTF16
        return str(getattr(enc, "value", enc))

    @property
    def client_has_inline_completion(self) -> bool:
        return get_capability(self.client_capabilities, "text_document.inline_completion", None) is not None

    @property
    def canvas_len(self) -> int | None:
        """The backend's canvas size, or None for one that cannot size canvases (diffusiongemma, remote)."""
        backend = self.service.backend
        if not getattr(backend, "sizes_canvas", True):
            return None
        return int(getattr(backend, "canvas_len", 32))

    def completion_document(self, uri: str) -> TextDocument | None:
        """The open document at `uri` if it gets completions now (a model, an enabled language)."""
        doc = open_document(self.workspace, uri)
        if doc is None or self.service.backend is None:
            return None
        return doc if self.settings.language_enabled(doc.language_id or "") else None

    # ------------------------------------------------------------------- infill
    async def fills(self, uri: str, requests: list[InfillRequest]) -> list[str]:
        """The texts of `requests`, in order, until one is superseded or fails (cancel-previous by `uri`)."""
        out = []
        for request in requests:
            try:
                r = await self.service.infill(request, key=uri)
            except RuntimeError_ as e:  # e.g. a remote model server that is down or slow
                log.warning("infill failed: %s", e)
                self.set_status("error", f"model request failed: {e}")
                break
            except Exception:
                log.exception("infill failed")
                break
            if r is None:  # superseded or dropped
                break
            if self.state == "error" and self.service.backend is not None:  # recovered
                self.set_status("ready", self.service.backend.description)
            out.append(r.text)
        return out

    async def wait_for_model(self, timeout_s: float) -> bool:
        """Whether a model is there, waiting up to `timeout_s` while the first one loads
        (or is about to, before `initialized`)."""
        if self.service.backend is None and self.state == "loading":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), timeout_s)
        return self.service.backend is not None

    async def run_command_infill(self, request: InfillRequest) -> InfillResult | None:
        if self.service.backend is None and self.state == "loading":
            async with self.progress("dg-lsp: waiting for the model to load", 1):
                await self.wait_for_model(COMMAND_WAIT_S)
        if self.service.backend is None:
            raise JsonRpcInternalError(f"dg-lsp: no model ({self.state}: {self.state_message})")
        return await self.service.infill(request)

    def stats(self) -> dict[str, Any]:
        backend = self.service.backend
        out: dict[str, Any] = {
            "state": self.state,
            "model": getattr(backend, "description", None),
            "accepted": self.accepted,
            "rssMb": round(rss_bytes() / 2**20, 1),
        }
        cache_stats = backend.cache_stats() if backend is not None else None
        out.update(self.service.stats.as_dict(cache_stats, self.service.pending))
        out.update(self.typing.stats())
        if self.feed is not None:
            out.update(self.feed.stats())
        out.update(self.protocol.problems.stats())
        return out
