"""The server object: settings, model lifecycle, status, and the helpers handlers share.

`server.py` holds the LSP handlers; this module holds the state they use, so
each handler stays a few lines.  Model loading runs in a thread after
`initialized` and reports `dg/status` (loading, ready, busy, error) plus
work-done progress; a model that fails to load leaves the server up with
empty completions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from lsprotocol import types as t
from pygls.capabilities import get_capability
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument

from dg_lsp import __version__
from dg_lsp.context import UTF16, Cursor, Site, infill_request, locate
from dg_lsp.edits import workspace_edit
from dg_lsp.engine import InfillService, TypingCache
from dg_lsp.markdown import RewritePlan, Span
from dg_lsp.settings import SECTION, Settings, from_initialization_options, parse_settings
from runtime.types import InfillRequest, InfillResult, ModelLoadError, RuntimeError_

log = logging.getLogger("dg_lsp")

STATUS_METHOD = "dg/status"
MARKDOWN_LANGUAGES = {"markdown", "md", "mdx", "quarto", "rmd"}
REWRITE_REMASK = 0.5
"""Fraction of a prose span's tokens re-masked by dg.rewriteMarkdown."""


@dataclass(frozen=True)
class Target:
    """A command's document snapshot and clamped range."""

    uri: str
    version: int | None
    language_id: str | None
    lines: Sequence[str]
    text: str
    start: Cursor
    end: Cursor


class DgServer(LanguageServer):
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

    def _model_key(self) -> tuple:
        s = self.settings
        return (s.model, s.device, s.threads, s.dtype, s.remote_model, s.trust_remote_code)

    # ----------------------------------------------------------------- lifecycle
    async def load_model(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._generation += 1
        generation, key = self._generation, self._model_key()
        self._loading = key
        model, device, threads, dtype, remote_model, trust_remote_code = key
        self.set_status("loading", f"loading model {model!r} on {device}")
        from runtime.load import load_backend  # torch import stays off the initialize path

        async with self.progress(f"dg-lsp: loading model {model}", 1):
            try:
                load = functools.partial(
                    load_backend, model, device=device, threads=threads, dtype=dtype,
                    remote_model=remote_model, allow_remote_code=trust_remote_code,
                )
                engine, error = await self._loop.run_in_executor(None, load), None
            except ModelLoadError as e:
                engine, error = None, str(e)
            except Exception as e:  # torch errors (bad device, out of memory) are reported the same way
                engine, error = None, f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
        if generation != self._generation:
            return  # a newer configuration is loading
        self._loading = None
        self.service.engine = engine
        if engine is None:
            self._loaded = None
            message = f"dg-lsp: model failed to load: {error}"
            self.window_show_message(t.ShowMessageParams(type=t.MessageType.Error, message=message))
            self.set_status("error", f"model {model!r} failed to load: {error}")
        else:
            self._loaded = key
            self.set_status("ready", f"{engine.description} on {device}")

    def set_status(self, state: str, message: str) -> None:
        self.state, self.state_message = state, message
        log.info("status %s: %s", state, message)
        self.protocol.notify(STATUS_METHOD, {"state": state, "message": message})
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
    async def progress(self, title: str, total: int) -> AsyncIterator[Callable[[], None]]:
        """Work-done progress when the client supports it; yields a function to call per step."""
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

        def step() -> None:
            nonlocal done
            done += 1
            if token is not None:
                pct = min(100, round(100 * done / max(1, total)))
                self.work_done_progress.report(
                    token, t.WorkDoneProgressReport(percentage=pct, message=f"{done}/{total}")
                )

        try:
            yield step
        finally:
            if token is not None:
                self.work_done_progress.end(token, t.WorkDoneProgressEnd(message="done"))

    # ----------------------------------------------------------- client and docs
    @property
    def encoding(self) -> str:
        enc = self.workspace.position_encoding or UTF16
        return str(getattr(enc, "value", enc))

    @property
    def client_has_inline_completion(self) -> bool:
        return get_capability(self.client_capabilities, "text_document.inline_completion", None) is not None

    @property
    def canvas_len(self) -> int:
        engine = self.service.engine
        return int(getattr(engine, "canvas_len", 32))

    def open_document(self, uri: str) -> TextDocument | None:
        """Only documents the client opened (never read from disk behind its back)."""
        docs = self.workspace.text_documents
        return docs.get(uri) or docs.get(_unquote(uri))

    def completion_document(self, uri: str) -> TextDocument | None:
        doc = self.open_document(uri)
        if doc is None or self.service.engine is None:
            return None
        return doc if self.settings.language_enabled(doc.language_id or "") else None

    def selected_completion(
        self, lines: Sequence[str], info: t.SelectedCompletionInfo | None
    ) -> tuple[Cursor, Cursor, str] | None:
        if info is None:
            return None
        r = info.range
        start = locate(lines, r.start.line, r.start.character, self.encoding)
        end = locate(lines, r.end.line, r.end.character, self.encoding)
        return start, end, info.text

    # ------------------------------------------------------------------- infill
    async def fills(self, uri: str, site: Site, *, invoked: bool) -> list[str]:
        """Automatic: one fill within the automatic budget.  Invoked: rest of line, block, sample."""
        s = self.settings
        common = dict(max_tokens=s.max_tokens, policy=s.policy, context_tokens=s.context_tokens)
        if invoked:
            budget = s.invoked_budget_ms
            variants: list[dict[str, Any]] = [
                dict(single_line=True),
                dict(single_line=False),
                dict(single_line=site.single_line, temperature=0.8, seed=1),
            ]
        else:
            budget, variants = s.automatic_budget_ms, [{}]
        out = []
        for v in variants:
            request = infill_request(site, deadline_ms=budget, **common, **v)
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
            if self.state == "error" and self.service.engine is not None:  # recovered
                self.set_status("ready", self.service.engine.description)
            out.append(r.text)
        return out

    def typing_hit(self, uri: str, text: str, offset: int, site: Site) -> list[str] | None:
        if site.typed:
            return None
        self.service.stats.typing_lookups += 1
        rest = self.typing.lookup(uri, text, offset)
        if rest is not None:
            self.service.stats.typing_hits += 1
        return rest

    def remember_shown(
        self, uri: str, text: str, offset: int, site: Site, items: list[t.InlineCompletionItem]
    ) -> None:
        if site.typed:
            self.typing.forget(uri)
            return
        fills = []
        for item in items:
            insert = item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value
            fills.append(insert[: len(insert) - len(site.closers)] if site.closers else insert)
        self.typing.remember(uri, text, offset, fills)

    # ------------------------------------------------------------------ commands
    def command_target(self, args: tuple[Any, ...], name: str, *, range_required: bool) -> Target:
        """The one object argument of a command -> a document snapshot and clamped range."""
        arg = args[0] if len(args) == 1 else None
        if not isinstance(arg, dict) or not isinstance(arg.get("uri"), str):
            got = repr(list(args))[:200]
            raise JsonRpcInvalidParams(f"{name} takes one object argument {{uri, range}}, got {got}")
        doc = self.open_document(arg["uri"])
        if doc is None:
            raise JsonRpcInvalidParams(f"{name}: document {arg['uri']} is not open")
        lines, rng = doc.lines, arg.get("range")
        if rng is None and not range_required:
            start, end = Cursor(0, 0, 0), locate(lines, len(lines), 0, self.encoding)
        else:
            try:
                a = locate(lines, int(rng["start"]["line"]), int(rng["start"]["character"]), self.encoding)
                b = locate(lines, int(rng["end"]["line"]), int(rng["end"]["character"]), self.encoding)
            except (TypeError, KeyError, ValueError):
                raise JsonRpcInvalidParams(f"{name}: bad range {rng!r:.200}") from None
            start, end = (a, b) if a.offset <= b.offset else (b, a)
        if name.endswith("rewriteMarkdown") and not _is_markdown(doc):
            raise JsonRpcInvalidParams(f"{name}: {doc.uri} is not a Markdown document ({doc.language_id})")
        return Target(doc.uri, doc.version, doc.language_id, lines, doc.source, start, end)

    async def run_command_infill(self, request: InfillRequest) -> InfillResult | None:
        if self.service.engine is None:
            raise JsonRpcInternalError(f"dg-lsp: no model ({self.state}: {self.state_message})")
        return await self.service.infill(request)

    def rewrite_request(self, plan: RewritePlan, span: Span) -> InfillRequest:
        s = self.settings
        return plan.request(
            span, remask=REWRITE_REMASK, policy=s.policy, context_tokens=s.context_tokens,
            deadline_ms=s.invoked_budget_ms,
        )

    async def apply(self, target: Target, edits: list[t.TextEdit], label: str) -> t.WorkspaceEdit:
        """Apply with workspace/applyEdit (versioned when the client allows) and return the edit."""
        caps = self.client_capabilities
        versioned = bool(get_capability(caps, "workspace.workspace_edit.document_changes", False))
        edit = workspace_edit(target.uri, target.version, edits, document_changes=versioned)
        current = self.open_document(target.uri)
        if current is None or current.version != target.version:
            raise JsonRpcInternalError(f"{label}: the document changed while generating; nothing applied")
        result = await self.workspace_apply_edit_async(t.ApplyWorkspaceEditParams(edit=edit, label=label))
        if not result.applied:
            log.warning("%s: client did not apply the edit: %s", label, result.failure_reason)
        return edit

    def stats(self) -> dict[str, Any]:
        engine = self.service.engine
        out: dict[str, Any] = {
            "state": self.state,
            "model": getattr(engine, "description", None),
            "accepted": self.accepted,
            "rssMb": round(_rss_bytes() / 2**20, 1),
        }
        cache_stats = engine.cache_stats() if engine is not None else None
        out.update(self.service.stats.as_dict(cache_stats, self.service.pending))
        return out


def _is_markdown(doc: TextDocument) -> bool:
    language = (doc.language_id or "").lower()
    return language in MARKDOWN_LANGUAGES or doc.uri.lower().endswith((".md", ".markdown"))


def _unquote(uri: str) -> str:
    from urllib.parse import unquote

    return unquote(uri)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
