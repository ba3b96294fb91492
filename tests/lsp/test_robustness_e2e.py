"""End to end over stdio (pytest-lsp), issue 14: lines as LSP counts them (item 1), nested
auto-closed brackets (item 4), mixed line endings in dg.rewriteMarkdown (item 11).  Requests
during the model load (item 5) are in test_protocol.py."""

from __future__ import annotations

import pytest
import pytest_lsp
from lsp_harness import CONFIG, PROFILES, open_doc, start
from lsprotocol import types as t
from pytest_lsp import LanguageClient
from test_server_e2e import apply_text_edits, edits_of, inline

from dg_lsp.context import split_lines

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(config=CONFIG, params=PROFILES[:1], scope="module")
async def client(request, lsp_client: LanguageClient):
    await start(lsp_client, request.param)
    yield
    await lsp_client.shutdown_session()


async def fill(client: LanguageClient, uri: str, rng: t.Range) -> t.TextEdit:
    before = len(client.applied)  # type: ignore[attr-defined]
    await client.workspace_execute_command_async(
        t.ExecuteCommandParams(command="dg.fillSelection", arguments=[{"uri": uri, "range": rng}])
    )
    assert len(client.applied) == before + 1  # type: ignore[attr-defined]
    (e,) = edits_of(client.applied[-1].edit)  # type: ignore[attr-defined]
    return e


def pos(line: int, character: int) -> t.Position:
    return t.Position(line=line, character=character)


async def test_lines_break_only_where_lsp_breaks_them(client: LanguageClient):
    """A form feed, U+2028 or \\x85 is inside a line for LSP: positions and changes after one
    stay on the editor's line, and an edit stays inside its selection."""
    uri = "file:///robust/formfeed.py"
    text = "a = 1\x0c# a comment\u2028that goes on\x85and on\nb = 2\n"
    open_doc(client, uri, text)
    rng = t.Range(start=pos(0, 10), end=pos(0, 30))
    e = await fill(client, uri, rng)
    assert e.range == rng
    # an incremental change after the form feed lands on line 1 as the editor sees it
    client.text_document_did_change(t.DidChangeTextDocumentParams(
        text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[t.TextDocumentContentChangePartial(range=t.Range(start=pos(1, 4), end=pos(1, 5)),
                                                            text="3")]))
    text = text.replace("b = 2", "b = 3")
    rng = t.Range(start=pos(1, 0), end=pos(1, 5))
    e = await fill(client, uri, rng)
    assert e.range == rng
    new = apply_text_edits(text, [e], "utf-16")
    assert split_lines(new)[0] == split_lines(text)[0]  # line 0, form feed and all, untouched


async def test_nested_auto_closed_brackets_are_not_duplicated(client: LanguageClient):
    """With `))` right of the cursor every item ends with those closers and the line does not
    get more closers than openers (the tiny model writes `)` often enough to catch a repeat)."""
    uri = "file:///robust/nested.py"
    lines = ["s = 'abc'\n", "print(len())\n"]
    open_doc(client, uri, "".join(lines))
    items = await inline(client, uri, 1, 10, invoked=True)
    for item in items:
        assert isinstance(item.insert_text, str) and item.insert_text.endswith("))")
        line = "print(len(" + item.insert_text
        assert line.count(")") <= line.count("(") or not item.insert_text[:-2].count(")"), line


async def test_mixed_line_endings_survive_rewrite_markdown(client: LanguageClient):
    uri = "file:///robust/mixed.md"
    text = "# Title\r\n\r\nSome prose that the model rewrites.\nMore prose on a second line.\r\n"
    open_doc(client, uri, text, language="markdown")
    before = len(client.applied)  # type: ignore[attr-defined]
    await client.workspace_execute_command_async(
        t.ExecuteCommandParams(command="dg.rewriteMarkdown", arguments=[{"uri": uri}]))
    assert len(client.applied) == before + 1  # type: ignore[attr-defined]
    new = apply_text_edits(text, edits_of(client.applied[-1].edit), "utf-16")  # type: ignore[attr-defined]
    ends = [ln[len(ln.rstrip("\r\n")):] for ln in split_lines(new)]
    assert ends == ["\r\n", "\r\n", "\n", "\r\n"], repr(new)
