"""The language server: LSP methods -> pure translation -> the worker -> LSP results.

Read top to bottom this is the table of contents of dg-lsp.  A request's path:

    documents     which open document, a command's target
    context       document + position -> the infill site
    requests      site + settings -> InfillRequests (the one place they are built)
    typing_cache  a suggestion being typed is answered without the model
    session       settings, model lifecycle, status, progress; awaits the worker
    worker        one thread runs the backend (runtime.backends), with cancel flags
    edits         results -> inline items, completion items, edits
    markdown      the structure-preserving plan of dg.rewriteMarkdown
"""

from __future__ import annotations

import asyncio
from typing import Any

from lsprotocol import types as t
from pygls.workspace import TextDocument

from dg_lsp.context import Cursor, Site, eol_of, locate, site_at
from dg_lsp.documents import apply_edit, command_target, open_document, selected_completion
from dg_lsp.edits import ACCEPTED_COMMAND, completion_item, inline_items, keep_line_ends, replace_edit
from dg_lsp.markdown import RewritePlan
from dg_lsp.requests import (
    AUTOMATIC_ITEMS,
    INVOKED_ITEMS,
    inline_requests,
    offered_fills,
    rewrite_request,
    selection_request,
)
from dg_lsp.session import DgServer
from runtime.types import InfillRequest

FILL_SELECTION = "dg.fillSelection"
REWRITE_MARKDOWN = "dg.rewriteMarkdown"
STATS = "dg.stats"

server = DgServer()


@server.feature(t.INITIALIZE)
def initialize(ls: DgServer, params: t.InitializeParams) -> None:
    ls.configure_initial(params.initialization_options)


@server.feature(t.INITIALIZED)
async def initialized(ls: DgServer, params: t.InitializedParams) -> None:
    indexing = asyncio.ensure_future(ls.index_workspace())  # alongside the model load
    await ls.load_model()  # first: it marks the model as loading before anything awaits
    await ls.watch_files()
    await indexing


@server.feature(t.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def did_change_configuration(ls: DgServer, params: t.DidChangeConfigurationParams) -> None:
    if ls.configure_changed(params.settings):
        await ls.load_model()
    await ls.index_workspace()  # only when a workspace setting changed


@server.feature(t.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: DgServer, params: t.DidOpenTextDocumentParams) -> None:
    if ls.feed is not None:
        ls.feed.opened(params.text_document.uri, params.text_document.text)


@server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: DgServer, params: t.DidChangeTextDocumentParams) -> None:
    if ls.feed is not None:
        uri = params.text_document.uri
        ls.feed.changed(uri, lambda: getattr(open_document(ls.workspace, uri), "source", None))


@server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: DgServer, params: t.DidCloseTextDocumentParams) -> None:
    ls.typing.forget(params.text_document.uri)
    if ls.feed is not None:
        ls.feed.closed(params.text_document.uri)


@server.feature(t.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def did_change_watched_files(ls: DgServer, params: t.DidChangeWatchedFilesParams) -> None:
    if ls.feed is not None:
        ls.feed.files_changed([(c.uri, c.type == t.FileChangeType.Deleted) for c in params.changes])


@server.feature(t.TEXT_DOCUMENT_INLINE_COMPLETION, t.InlineCompletionOptions())
async def inline_completion(ls: DgServer, params: t.InlineCompletionParams) -> t.InlineCompletionList:
    invoked = params.context.trigger_kind == t.InlineCompletionTriggerKind.Invoked
    if invoked:  # the user asked: worth waiting for a model that is loading, within the budget
        await ls.wait_for_model(ls.settings.invoked_budget_ms / 1000)
    doc = ls.completion_document(params.text_document.uri)
    if doc is None:
        return t.InlineCompletionList(items=[])
    lines, text = doc.lines, doc.source
    cursor = locate(lines, params.position.line, params.position.character, ls.encoding)
    selected = selected_completion(lines, params.context.selected_completion_info, ls.encoding)
    site = site_at(lines, cursor, context_tokens=ls.settings.context_tokens, selected=selected, text=text)
    fills = None if site.typed else ls.typing.lookup(doc.uri, text, cursor.offset)
    if fills is None:
        requests = site_requests(ls, doc, site, cursor, invoked=invoked)
        fills = offered_fills(await ls.fills(doc.uri, requests), requests, invoked=invoked)
    limit = INVOKED_ITEMS if invoked else AUTOMATIC_ITEMS
    shown = inline_items(lines, site, fills, encoding=ls.encoding, eol=eol_of(lines), limit=limit)
    ls.typing.remember(doc.uri, text, cursor.offset, [] if site.typed else shown.fills)
    return t.InlineCompletionList(items=shown.items)


def site_requests(
    ls: DgServer, doc: TextDocument, site: Site, cursor: Cursor, *, invoked: bool
) -> list[InfillRequest]:
    """The requests for a completion at `site`, with the line drafts and context snippets there."""
    drafts = [] if site.typed else ls.line_drafts(doc.uri, doc.source, cursor.offset)
    snippets = ls.context_snippets(doc.uri, doc.source, cursor.offset)
    return inline_requests(site, ls.settings, invoked=invoked, drafts=drafts, snippets=snippets)


@server.feature(t.TEXT_DOCUMENT_COMPLETION, t.CompletionOptions())
async def completion(ls: DgServer, params: t.CompletionParams) -> t.CompletionList:
    """The fallback for clients without inline completion: one item carrying the infill."""
    doc = None if ls.client_has_inline_completion else ls.completion_document(params.text_document.uri)
    if doc is None:
        return t.CompletionList(is_incomplete=True, items=[])
    lines = doc.lines
    cursor = locate(lines, params.position.line, params.position.character, ls.encoding)
    site = site_at(lines, cursor, context_tokens=ls.settings.context_tokens, text=doc.source)
    fills = await ls.fills(doc.uri, site_requests(ls, doc, site, cursor, invoked=False))
    items = [completion_item(lines, site, f, encoding=ls.encoding, eol=eol_of(lines)) for f in fills]
    return t.CompletionList(is_incomplete=True, items=[i for i in items if i is not None])


@server.command(FILL_SELECTION)
async def fill_selection(ls: DgServer, *args: Any) -> t.WorkspaceEdit | None:
    """{uri, range}: mask the selection, regenerate it from both sides, apply it."""
    doc = command_target(ls.workspace, args, FILL_SELECTION, ls.encoding, range_required=True)
    request = selection_request(doc.text, doc.start.offset, doc.end.offset, ls.settings, ls.canvas_len)
    result = await ls.run_command_infill(request)
    if result is None:
        return None
    old = doc.text[doc.start.offset : doc.end.offset]
    edit = replace_edit(
        doc.lines,
        doc.start,
        doc.end,
        old,
        keep_line_ends(old, result.text),
        encoding=ls.encoding,
        eol=eol_of(doc.lines),
        shrink=False,
    )
    return await apply_edit(ls, doc, [edit], "dg: fill selection")


@server.command(REWRITE_MARKDOWN)
async def rewrite_markdown(ls: DgServer, *args: Any) -> t.WorkspaceEdit | None:
    """{uri, range?}: re-denoise the prose of a Markdown document, keeping its structure."""
    doc = command_target(
        ls.workspace, args, REWRITE_MARKDOWN, ls.encoding, range_required=False, markdown_only=True
    )
    plan = RewritePlan(doc.text, doc.start.offset, doc.end.offset)
    async with ls.progress("dg-lsp: rewriting Markdown", len(plan.spans)) as step:
        for span in plan.spans:
            result = await ls.run_command_infill(rewrite_request(plan, span, ls.settings))
            plan.accept(span, None if result is None else result.text)
            step()
    old = doc.text[doc.start.offset : doc.end.offset]
    # the plan's text is the document's own, line breaks included (a mixed-EOL file keeps them)
    edit = replace_edit(doc.lines, doc.start, doc.end, old, plan.result(), encoding=ls.encoding, eol=None)
    return await apply_edit(ls, doc, [edit], "dg: rewrite Markdown")


@server.command(STATS)
def stats(ls: DgServer, *args: Any) -> dict[str, Any]:
    return ls.stats()


@server.command(ACCEPTED_COMMAND)
def accepted_completion(ls: DgServer, *args: Any) -> None:
    ls.accepted += 1


@server.feature(t.SHUTDOWN)
def shutdown(ls: DgServer, params: None) -> None:
    ls.service.close()
