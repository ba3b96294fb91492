"""End to end: the real server over stdio, driven as Neovim and as VS Code would (pytest-lsp).

One server per client profile serves the tests of this module (each test
uses its own document URIs); tests that need their own settings start their
own server.  The model is the random-weight "tiny" preset: its text is
garbage but deterministic, so the tests check structure (ranges, encodings,
line endings, counts), never wording.
"""

from __future__ import annotations

import asyncio
import re

import pytest
import pytest_lsp
from lsp_harness import (
    CONFIG,
    DATA,
    PROFILES,
    TIMEOUT,
    columns,
    encoding_of,
    inline_params,
    open_doc,
    start,
    stats,
    wait_status,
    wait_until,
)
from lsprotocol import types as t
from pytest_lsp import LanguageClient

from dg_lsp.context import split_lines
from dg_lsp.markdown import segment

pytestmark = pytest.mark.asyncio(loop_scope="module")

COMMANDS = {"dg.fillSelection", "dg.rewriteMarkdown", "dg.stats", "dg.acceptedCompletion"}


@pytest_lsp.fixture(config=CONFIG, params=PROFILES, scope="module")
async def client(request, lsp_client: LanguageClient):
    lsp_client.init = await start(lsp_client, request.param)  # type: ignore[attr-defined]
    lsp_client.profile = request.param  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


def enc(client: LanguageClient) -> str:
    return encoding_of(client.init)  # type: ignore[attr-defined]


async def inline(client: LanguageClient, uri: str, line: int, ch: int, **kw) -> list[t.InlineCompletionItem]:
    result = await client.text_document_inline_completion_async(inline_params(uri, line, ch, **kw))
    assert isinstance(result, t.InlineCompletionList)
    return list(result.items)


def text_of(item: t.InlineCompletionItem) -> str:
    assert isinstance(item.insert_text, str)
    return item.insert_text


def apply_text_edits(text: str, edits: list[t.TextEdit], encoding: str) -> str:
    """Apply LSP edits (positions in `encoding`) to `text`, as a client would."""
    lines = split_lines(text) or [""]

    def offset(p: t.Position) -> int:
        line = lines[p.line] if p.line < len(lines) else ""
        body = line.rstrip("\r\n")
        i = 0
        while i < len(body) and columns(body[: i + 1], encoding) <= p.character:
            i += 1
        return sum(len(x) for x in lines[: p.line]) + i

    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        a, b = offset(e.range.start), offset(e.range.end)
        text = text[:a] + e.new_text + text[b:]
    return text


def edits_of(edit: t.WorkspaceEdit | dict) -> list[t.TextEdit]:
    if isinstance(edit, t.WorkspaceEdit):
        if edit.document_changes:
            return list(edit.document_changes[0].edits)  # type: ignore[union-attr]
        return [e for es in (edit.changes or {}).values() for e in es]
    raise AssertionError(f"not a WorkspaceEdit: {edit!r}")


# ---------------------------------------------------------------------------- initialize
async def test_capabilities_are_advertised(client: LanguageClient):
    caps = client.init.capabilities  # type: ignore[attr-defined]
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    assert set(caps.execute_command_provider.commands) >= COMMANDS
    statuses = [s for s, _ in client.statuses]  # type: ignore[attr-defined]
    assert statuses[:2] == ["loading", "ready"]


async def test_model_load_reports_work_done_progress(client: LanguageClient):
    kinds = [[type(v).__name__ for v in vs] for vs in client.progress_reports.values()]
    assert ["WorkDoneProgressBegin", "WorkDoneProgressEnd"] in [k[:1] + k[-1:] for k in kinds]


# --------------------------------------------------------------------------- inline
async def test_automatic_trigger_gives_one_item_at_the_cursor(client: LanguageClient):
    uri = "file:///e2e/auto.py"
    open_doc(client, uri, "def area(r):\n    return 3.14 * \n")
    items = await inline(client, uri, 1, 18)
    assert len(items) == 1
    item = items[0]
    assert item.range == t.Range(start=t.Position(line=1, character=18), end=t.Position(line=1, character=18))
    assert text_of(item).strip() and "\n" not in text_of(item)  # rest of line only
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text_of(item))
    assert item.command is not None and item.command.command == "dg.acceptedCompletion"


async def test_invoked_trigger_gives_up_to_three_distinct_items(client: LanguageClient):
    uri = "file:///e2e/invoked.py"
    open_doc(client, uri, "def main():\n    \n")
    items = await inline(client, uri, 1, 4, invoked=True)
    texts = [text_of(i) for i in items]
    assert 2 <= len(texts) <= 3
    assert len(set(texts)) == len(texts)


async def test_selected_completion_info_is_extended_with_the_same_range(client: LanguageClient):
    uri = "file:///e2e/selected.py"
    open_doc(client, uri, "import os\nos.pa\n")
    rng = t.Range(start=t.Position(line=1, character=3), end=t.Position(line=1, character=5))
    info = t.SelectedCompletionInfo(range=rng, text="path")
    items = await inline(client, uri, 1, 5, invoked=True, selected=info)
    assert items
    for item in items:
        assert item.range == rng
        assert text_of(item).startswith("path") and len(text_of(item)) > 4


async def test_items_cover_auto_closed_brackets_instead_of_repeating_them(client: LanguageClient):
    uri = "file:///e2e/closers.py"
    open_doc(client, uri, 'print(len(""))\n')
    items = await inline(client, uri, 0, 11)  # between the quotes: `"))` right of the cursor
    assert items
    item = items[0]
    assert item.range.start.character == 11 and item.range.end.character == 14
    assert text_of(item).endswith('"))')
    after = 'print(len("' + text_of(item)
    assert after.count("(") - after.count(")") <= 0  # never an unbalanced or duplicated closer


async def test_typing_as_suggested_answers_without_the_model(client: LanguageClient):
    uri = "file:///e2e/typing.py"
    open_doc(client, uri, "x = \n")
    first = text_of((await inline(client, uri, 0, 4))[0])
    before = await stats(client)
    typed = first[:2]
    client.text_document_did_change(t.DidChangeTextDocumentParams(
        text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[t.TextDocumentContentChangePartial(
            range=t.Range(start=t.Position(line=0, character=4), end=t.Position(line=0, character=4)),
            text=typed)],
    ))
    col = 4 + columns(typed, enc(client))
    items = await inline(client, uri, 0, col)
    after = await stats(client)
    assert [text_of(i) for i in items] == [first[2:]]
    assert after["typingHits"] == before["typingHits"] + 1
    assert after["completed"] == before["completed"]  # no model work


async def test_context_cache_is_reused_across_keystrokes(client: LanguageClient):
    uri = "file:///e2e/cache.py"
    body = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(30))
    open_doc(client, uri, body + "y = f1(\n")
    before = await stats(client)
    await inline(client, uri, 90, 7)
    client.text_document_did_change(t.DidChangeTextDocumentParams(  # a keystroke
        text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[t.TextDocumentContentChangeWholeDocument(text=body + "y = f1(a\n")],
    ))  # fmt: skip
    await inline(client, uri, 90, 8)
    after = await stats(client)
    assert after["contextCacheHits"] > before["contextCacheHits"]
    assert after["contextCacheReusedTokens"] > before["contextCacheReusedTokens"]


# ----------------------------------------------------------------------- robustness
async def test_utf16_positions_with_emoji_and_cjk(client: LanguageClient):
    uri = "file:///e2e/unicode.py"
    line = 's = "😀漢字🎉" + '
    open_doc(client, uri, f"{line}\n")
    col = columns(line, enc(client))
    items = await inline(client, uri, 0, col)
    assert items and items[0].range.start == t.Position(line=0, character=col)
    # a position inside the emoji (UTF-16 surrogate pair / UTF-8 bytes) snaps to its start
    items = await inline(client, uri, 0, columns('s = "', enc(client)) + 1)
    assert items and items[0].range.start.character == columns('s = "', enc(client))


async def test_crlf_documents_get_crlf_line_breaks(client: LanguageClient):
    uri = "file:///e2e/crlf.py"
    text = "class A:\r\n    def f(self):\r\n        \r\n"
    open_doc(client, uri, text)
    items = await inline(client, uri, 2, 8, invoked=True)
    assert items
    for item in items:
        assert "\n" not in text_of(item).replace("\r\n", "")
        assert item.range.start == t.Position(line=2, character=8)
    # past the end of a CRLF line means before its "\r"
    items = await inline(client, uri, 1, 200)
    assert items and items[0].range.start == t.Position(line=1, character=16)
    rng = t.Range(start=t.Position(line=0, character=6), end=t.Position(line=1, character=9))
    await client.workspace_execute_command_async(
        t.ExecuteCommandParams(command="dg.fillSelection", arguments=[{"uri": uri, "range": rng}])
    )
    (e,) = edits_of(client.applied[-1].edit)  # type: ignore[attr-defined]
    assert e.range == rng
    assert "\n" not in e.new_text.replace("\r\n", "")


async def test_positions_past_the_end_are_clamped(client: LanguageClient):
    uri = "file:///e2e/past.py"
    open_doc(client, uri, "a = 1\nb = ")
    items = await inline(client, uri, 1, 400)
    assert items and items[0].range.start == t.Position(line=1, character=4)
    items = await inline(client, uri, 99, 99)
    assert items and items[0].range.start == t.Position(line=1, character=4)


async def test_a_5mb_file(client: LanguageClient):
    uri = "file:///e2e/big.py"
    chunk = "".join(f"value_{i} = compute({i}, 'x' * {i})\n" for i in range(1000))
    text = chunk * (5 * 2**20 // len(chunk) + 1)
    assert len(text) >= 5 * 2**20
    open_doc(client, uri, text)
    middle = text.count("\n") // 2
    items = await asyncio.wait_for(inline(client, uri, middle, 10), TIMEOUT)
    assert items and items[0].range.start == t.Position(line=middle, character=10)


async def test_binary_junk(client: LanguageClient):
    uri = "file:///e2e/junk.bin"
    junk = bytes(range(256)).decode("latin-1") * 20 + "\ufffd\x00\x1b[31m"
    open_doc(client, uri, junk, language="binary")
    result = await client.text_document_inline_completion_async(inline_params(uri, 3, 50, invoked=True))
    assert isinstance(result, t.InlineCompletionList)
    for item in result.items:
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text_of(item))


async def test_unknown_language_still_completes(client: LanguageClient):
    uri = "file:///e2e/unknown.zz"
    open_doc(client, uri, "frobnicate the widget with \n", language="no-such-language")
    assert await inline(client, uri, 0, 27, invoked=True)


async def test_disabled_language_gets_nothing_and_costs_nothing(client: LanguageClient):
    uri = "file:///e2e/notes.txt"
    open_doc(client, uri, "some notes \n", language="plaintext")
    before = await stats(client)
    assert await inline(client, uri, 0, 11, invoked=True) == []
    assert (await stats(client))["requests"] == before["requests"]


async def test_unopened_document_gets_nothing(client: LanguageClient):
    assert await inline(client, "file:///e2e/never-opened.py", 0, 0) == []


# ------------------------------------------------------------------------- commands
async def test_fill_selection_applies_and_returns_the_edit(client: LanguageClient):
    uri = "file:///e2e/fill.py"
    text = "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n"
    open_doc(client, uri, text)
    rng = t.Range(start=t.Position(line=1, character=11), end=t.Position(line=1, character=16))
    applied_before = len(client.applied)  # type: ignore[attr-defined]
    edit = await client.workspace_execute_command_async(
        t.ExecuteCommandParams(command="dg.fillSelection", arguments=[{"uri": uri, "range": rng}])
    )
    assert len(client.applied) == applied_before + 1  # type: ignore[attr-defined]
    sent = client.applied[-1].edit  # type: ignore[attr-defined]
    (e,) = edits_of(sent)
    assert e.range == rng
    assert "\r" not in e.new_text
    if client.profile == "visual_studio_code":  # type: ignore[attr-defined]
        assert sent.document_changes and sent.document_changes[0].text_document.version == 1
    else:
        assert sent.changes and uri in sent.changes
    assert edit is not None  # the command returns the edit too


async def test_fill_selection_rejects_a_bad_argument(client: LanguageClient):
    with pytest.raises(Exception, match="object argument"):
        await client.workspace_execute_command_async(
            t.ExecuteCommandParams(command="dg.fillSelection", arguments=["file:///x.py"])
        )


async def test_rewrite_markdown_keeps_the_structure(client: LanguageClient):
    uri = "file:///e2e/README.md"
    text = (DATA / "rewrite.md").read_text()
    open_doc(client, uri, text, language="markdown")
    before = len(client.applied)  # type: ignore[attr-defined]
    await client.workspace_execute_command_async(
        t.ExecuteCommandParams(command="dg.rewriteMarkdown", arguments=[{"uri": uri}])
    )
    assert len(client.applied) == before + 1  # type: ignore[attr-defined]
    new = apply_text_edits(text, edits_of(client.applied[-1].edit), enc(client))  # type: ignore[attr-defined]
    assert new != text  # the prose changed
    fixed = [text[s.start : s.end] for s in segment(text) if not s.prose]
    pos = 0
    for piece in fixed:  # every structural piece is still there, in order
        found = new.find(piece, pos)
        assert found >= 0, f"structure lost: {piece!r}"
        pos = found + len(piece)
    assert new.count("\n") == text.count("\n")


async def test_rewrite_markdown_refuses_other_languages(client: LanguageClient):
    uri = "file:///e2e/code.py"
    open_doc(client, uri, "x = 1\n")
    with pytest.raises(Exception, match="not a Markdown document"):
        await client.workspace_execute_command_async(
            t.ExecuteCommandParams(command="dg.rewriteMarkdown", arguments=[{"uri": uri}])
        )


async def test_stats_and_accepted_completion(client: LanguageClient):
    uri = "file:///e2e/accept.py"
    open_doc(client, uri, "total = \n")
    item = (await inline(client, uri, 0, 8))[0]
    before = await stats(client)
    await client.workspace_execute_command_async(
        t.ExecuteCommandParams(command=item.command.command, arguments=list(item.command.arguments))
    )
    after = await stats(client)
    assert after["accepted"] == before["accepted"] + 1
    for key in ("latencyP50Ms", "latencyP95Ms", "forwardsPerToken", "contextCacheHitRate"):
        assert key in after
    assert after["completed"] > 0 and after["latencyP95Ms"] >= after["latencyP50Ms"] > 0
    assert after["forwardsPerToken"] > 0


async def test_burst_of_200_requests(client: LanguageClient):
    uri = "file:///e2e/burst.py"
    text = "".join(f"item_{i} = \n" for i in range(50))
    open_doc(client, uri, text)
    other = "file:///e2e/burst2.py"
    open_doc(client, other, text)

    async def burst():
        reqs = [inline(client, uri if k % 2 else other, k % 50, 9, invoked=k % 7 == 0) for k in range(200)]
        return await asyncio.wait_for(asyncio.gather(*reqs), TIMEOUT)

    await burst()
    first = await stats(client)
    results = await burst()
    second = await stats(client)
    assert len(results) == 200
    assert second["pending"] == 0
    assert second["cancelled"] - first["cancelled"] >= 150  # superseded requests did no work
    assert second["rssMb"] - first["rssMb"] < 64
    await client.workspace_execute_command_async(t.ExecuteCommandParams(command="dg.stats"))


# ------------------------------------------------------------- servers of their own
@pytest_lsp.fixture(config=CONFIG, params=PROFILES)
async def plain_client(request, lsp_client: LanguageClient):
    """A client without inline completion (VS Code 1.65, Neovim 0.11 profiles as shipped)."""
    lsp_client.init = await start(lsp_client, request.param, inline=False)  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio(loop_scope="function")
async def test_completion_fallback_for_clients_without_inline_completion(plain_client: LanguageClient):
    client = plain_client
    uri = "file:///e2e/fallback.py"
    open_doc(client, uri, "import os\nresult = os.pa\n")
    col = 14
    result = await client.text_document_completion_async(
        t.CompletionParams(text_document=t.TextDocumentIdentifier(uri=uri),
                           position=t.Position(line=1, character=col))
    )
    assert isinstance(result, t.CompletionList) and len(result.items) == 1
    item = result.items[0]
    assert item.text_edit is not None and item.text_edit.new_text.startswith("pa")
    assert item.text_edit.range.start == t.Position(line=1, character=12)  # the word being typed
    assert item.filter_text.startswith("pa")
    # the fallback gets the line drafts too: a name the document holds nearby
    uri = "file:///e2e/fallback_drafts.py"
    open_doc(client, uri, "def f(q):\n    value = qx_norm(q)\n    value = qx\n")
    at = t.CompletionParams(text_document=t.TextDocumentIdentifier(uri=uri), position=t.Position(2, 14))
    result = await client.text_document_completion_async(at)
    assert [i.text_edit.new_text for i in result.items] == ["qx_norm(q)"]


async def test_completion_is_empty_for_clients_with_inline_completion(client: LanguageClient):
    uri = "file:///e2e/no-fallback.py"
    open_doc(client, uri, "x = \n")
    result = await client.text_document_completion_async(
        t.CompletionParams(text_document=t.TextDocumentIdentifier(uri=uri),
                           position=t.Position(line=0, character=4))
    )
    assert result is not None and len(result.items) == 0


@pytest_lsp.fixture(config=CONFIG, params=PROFILES)
async def bare_client(request, lsp_client: LanguageClient):
    """Initialized by the test itself, with its own settings."""
    lsp_client.profile = request.param  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio(loop_scope="function")
async def test_model_load_failure_keeps_the_server_up(bare_client: LanguageClient):
    client = bare_client
    await start(client, client.profile, {"dgLsp": {"model": "/no/such/model"}}, wait="error")  # type: ignore[attr-defined]
    _, message = next(s for s in client.statuses if s[0] == "error")  # type: ignore[attr-defined]
    assert "/no/such/model" in message

    def shown() -> bool:
        return any(m.type == t.MessageType.Error and "failed to load" in m.message for m in client.messages)

    # the server sends the message just before the status; wait for the client to have read it
    await wait_until(client, "window/showMessage", shown)
    uri = "file:///e2e/nomodel.py"
    open_doc(client, uri, "x = \n")
    assert await inline(client, uri, 0, 4) == []
    with pytest.raises(Exception, match="no model"):
        await client.workspace_execute_command_async(t.ExecuteCommandParams(
            command="dg.fillSelection",
            arguments=[{"uri": uri, "range": {"start": {"line": 0, "character": 0},
                                              "end": {"line": 0, "character": 1}}}],
        ))
    assert (await stats(client))["state"] == "error"


@pytest.mark.asyncio(loop_scope="function")
async def test_bad_settings_give_one_message_and_defaults(bare_client: LanguageClient):
    client = bare_client
    options = {"dgLsp": {"model": "tiny", "threads": 1, "policy": "nonsense", "maxTokens": -3,
                         "disabledLanguages": ["python"]}}
    await start(client, client.profile, options)  # type: ignore[attr-defined]
    warnings = [m for m in client.messages if m.type == t.MessageType.Warning]
    assert len(warnings) == 1
    assert "nonsense" in warnings[0].message and "maxTokens" in warnings[0].message
    uri = "file:///e2e/settings.py"
    open_doc(client, uri, "x = \n")
    assert await inline(client, uri, 0, 4) == []  # python disabled by the good part of the settings
    n = len(client.messages)
    client.workspace_did_change_configuration(t.DidChangeConfigurationParams(
        settings={"dgLsp": {"model": "tiny", "threads": 1, "automaticBudgetMs": "fast"}}))
    await wait_until(client, "window/showMessage", lambda: len(client.messages) > n)
    assert "automaticBudgetMs" in client.messages[-1].message
    assert await inline(client, uri, 0, 4)  # python enabled again: settings replaced, not merged


@pytest.mark.asyncio(loop_scope="function")
async def test_cancel_request_stops_model_work_within_a_step(bare_client: LanguageClient):
    client = bare_client
    options = {"dgLsp": {"model": "tiny", "threads": 1, "maxTokens": 4096, "invokedBudgetMs": 600000}}
    await start(client, client.profile, options)  # type: ignore[attr-defined]
    uri = "file:///e2e/cancel.py"
    open_doc(client, uri, "def long():\n    \n")
    since = len(client.statuses)  # type: ignore[attr-defined]
    request = asyncio.ensure_future(client.protocol.send_request_async(
        t.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 1, 4, invoked=True), msg_id="long-one"))
    await wait_status(client, "busy", since)
    since = len(client.statuses)  # type: ignore[attr-defined]
    client.protocol.notify(t.CANCEL_REQUEST, t.CancelParams(id="long-one"))
    with pytest.raises(Exception, match=r"(?i)cancel"):
        await asyncio.wait_for(request, TIMEOUT)
    await wait_status(client, "ready", since)
    s = await stats(client)
    assert s["cancelled"] == 1 and s["completed"] == 0
    assert s["maxStepsAfterCancel"] <= 1
    assert s["maxCancelLatencyMs"] < 250


@pytest.mark.asyncio(loop_scope="function")
async def test_a_new_request_cancels_the_previous_one(bare_client: LanguageClient):
    client = bare_client
    options = {"dgLsp": {"model": "tiny", "threads": 1, "maxTokens": 4096, "invokedBudgetMs": 600000}}
    await start(client, client.profile, options)  # type: ignore[attr-defined]
    uri = "file:///e2e/previous.py"
    open_doc(client, uri, "def long():\n    \nz = \n")
    since = len(client.statuses)  # type: ignore[attr-defined]
    first = asyncio.ensure_future(inline(client, uri, 1, 4, invoked=True))
    await wait_status(client, "busy", since)
    second = await inline(client, uri, 2, 4)
    assert await asyncio.wait_for(first, TIMEOUT) == []
    assert len(second) == 1
    s = await stats(client)
    assert s["cancelled"] == 1 and s["maxStepsAfterCancel"] <= 1


@pytest.mark.asyncio(loop_scope="function")
async def test_same_settings_pushed_during_load_do_not_load_twice(bare_client: LanguageClient):
    """Neovim pushes its settings again right after `initialized`, while the model is loading."""
    client = bare_client
    options = {"dgLsp": {"model": "tiny", "threads": 1}}
    await start(client, client.profile, options, wait=None)  # type: ignore[attr-defined]
    client.workspace_did_change_configuration(t.DidChangeConfigurationParams(settings=options))
    await wait_status(client, "ready")
    uri = "file:///e2e/twice.py"
    open_doc(client, uri, "x = \n")
    await inline(client, uri, 0, 4)  # a round trip: the push was handled before this answer
    states = [s[0] for s in client.statuses]  # type: ignore[attr-defined]
    assert states.count("loading") == 1
