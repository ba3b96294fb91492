"""The client's open documents: which one a request is about, a command's target, applying an edit.

Only documents the client opened are read (never a file from disk behind its
back).  A command's argument is checked here and turned into a `Target`: a
snapshot of the document and a clamped range, so the edit computed later can be
refused if the document changed meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from lsprotocol import types as t
from pygls.capabilities import get_capability
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument, Workspace

from dg_lsp.context import Cursor, locate, split_lines
from dg_lsp.edits import workspace_edit

log = logging.getLogger("dg_lsp")

MARKDOWN_LANGUAGES = {"markdown", "md", "mdx", "quarto", "rmd"}


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


class LspDocument(TextDocument):
    """pygls's document with lines broken where LSP breaks them (`split_lines`): its changes,
    positions and `lines` then match the editor's."""

    @property
    def lines(self) -> Sequence[str]:
        return tuple(split_lines(self.source))


class LspWorkspace(Workspace):
    """pygls's workspace, holding `LspDocument`s."""

    @classmethod
    def like(cls, ws: Workspace) -> LspWorkspace:
        folders = list(ws.folders.values())
        return cls(ws.root_uri, ws._sync_kind, folders, ws.position_encoding)

    def _create_text_document(
        self, doc_uri: str, source: str | None = None, version: int | None = None,
        language_id: str | None = None,
    ) -> TextDocument:
        return LspDocument(doc_uri, source=source, version=version, language_id=language_id,
                           sync_kind=self._sync_kind, position_codec=self.position_codec)


def open_document(workspace: Workspace, uri: str) -> TextDocument | None:
    docs = workspace.text_documents
    return docs.get(uri) or docs.get(unquote(uri))


def selected_completion(
    lines: Sequence[str], info: t.SelectedCompletionInfo | None, encoding: str
) -> tuple[Cursor, Cursor, str] | None:
    """The completion-popup item the client has selected: (start, end, its text)."""
    if info is None:
        return None
    r = info.range
    start = locate(lines, r.start.line, r.start.character, encoding)
    end = locate(lines, r.end.line, r.end.character, encoding)
    return start, end, info.text


def is_markdown(doc: TextDocument) -> bool:
    language = (doc.language_id or "").lower()
    return language in MARKDOWN_LANGUAGES or doc.uri.lower().endswith((".md", ".markdown"))


def command_target(
    workspace: Workspace,
    args: tuple[Any, ...],
    name: str,
    encoding: str,
    *,
    range_required: bool,
    markdown_only: bool = False,
) -> Target:
    """The one object argument {uri, range} of a command -> a document snapshot and clamped range."""
    arg = args[0] if len(args) == 1 else None
    if not isinstance(arg, dict) or not isinstance(arg.get("uri"), str):
        got = repr(list(args))[:200]
        raise JsonRpcInvalidParams(f"{name} takes one object argument {{uri, range}}, got {got}")
    doc = open_document(workspace, arg["uri"])
    if doc is None:
        raise JsonRpcInvalidParams(f"{name}: document {arg['uri']} is not open")
    lines, rng = doc.lines, arg.get("range")
    if rng is None and not range_required:
        start, end = Cursor(0, 0, 0), locate(lines, len(lines), 0, encoding)
    else:
        try:
            a = locate(lines, int(rng["start"]["line"]), int(rng["start"]["character"]), encoding)
            b = locate(lines, int(rng["end"]["line"]), int(rng["end"]["character"]), encoding)
        except (TypeError, KeyError, ValueError):
            raise JsonRpcInvalidParams(f"{name}: bad range {rng!r:.200}") from None
        start, end = (a, b) if a.offset <= b.offset else (b, a)
    if markdown_only and not is_markdown(doc):
        raise JsonRpcInvalidParams(f"{name}: {doc.uri} is not a Markdown document ({doc.language_id})")
    return Target(doc.uri, doc.version, doc.language_id, lines, doc.source, start, end)


async def apply_edit(
    server: LanguageServer, target: Target, edits: list[t.TextEdit], label: str
) -> t.WorkspaceEdit:
    """Apply with workspace/applyEdit (versioned when the client allows) and return the edit;
    refused when the document changed since `target` was taken."""
    caps = server.client_capabilities
    versioned = bool(get_capability(caps, "workspace.workspace_edit.document_changes", False))
    edit = workspace_edit(target.uri, target.version, edits, document_changes=versioned)
    current = open_document(server.workspace, target.uri)
    if current is None or current.version != target.version:
        raise JsonRpcInternalError(f"{label}: the document changed while generating; nothing applied")
    result = await server.workspace_apply_edit_async(t.ApplyWorkspaceEditParams(edit=edit, label=label))
    if not result.applied:
        log.warning("%s: client did not apply the edit: %s", label, result.failure_reason)
    return edit
