"""End to end: the workspace as context.  The real server over stdio (pytest-lsp) opens a small
workspace of fixture files on disk and suggests, in an open buffer, an identifier that exists only
in another file of the workspace: a line draft, verified by the model on the canvas.  Files the
index must leave out (ignored, hidden, binary, outside the workspace) are there too.  The model is
the random-weight "tiny" preset; the defaults accept the best draft (runtime/drafts.py), so the
suggestion is the draft whatever the weights say."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_lsp
from lsp_harness import CONFIG, inline_params, open_doc, start, stats, wait_until
from lsprotocol import types as t
from pytest_lsp import LanguageClient

pytestmark = pytest.mark.asyncio(loop_scope="module")


def make_workspace(root: Path) -> Path:
    ws = root / "ws"
    (ws / "pkg").mkdir(parents=True)
    (ws / "pkg" / "helpers.py").write_text(
        "def qx_norm(q):\n    return q\n\n\ndef use(q):\n    value = qx_norm(q)\n    return value\n"
    )
    (ws / ".gitignore").write_text("ignored/\n")
    (ws / "ignored").mkdir()
    (ws / "ignored" / "secret.py").write_text("    value = qx_secret(q)\n" * 9)
    (ws / ".hidden").mkdir()
    (ws / ".hidden" / "h.py").write_text("    value = qx_hidden(q)\n" * 9)
    (ws / "blob.bin").write_bytes(b"\x00\x01value = qx_binary(q)\n" * 9)
    (root / "outside.py").write_text("    value = qx_outside(q)\n" * 9)
    return ws


@pytest_lsp.fixture(config=CONFIG, scope="module")
async def client(lsp_client: LanguageClient, tmp_path_factory):
    root = tmp_path_factory.mktemp("workspace")
    lsp_client.root = root  # type: ignore[attr-defined]
    lsp_client.init = await start(lsp_client, "visual_studio_code", root=make_workspace(root))  # type: ignore[attr-defined]
    await wait_until(lsp_client, "dg/status", lambda: bool(lsp_client.workspace_messages))  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def test_suggestion_copies_an_identifier_from_another_workspace_file(client: LanguageClient):
    ws = client.root / "ws"  # type: ignore[attr-defined]
    uri = (ws / "pkg" / "main.py").as_uri()  # an open buffer: no file on disk
    open_doc(client, uri, "def f(q):\n    value = qx\n")
    result = await client.text_document_inline_completion_async(inline_params(uri, 1, 14))
    assert [i.insert_text for i in result.items] == ["_norm(q)"]
    s = await stats(client)
    assert s["workspaceDocuments"] == 2  # helpers.py and the open buffer
    assert s["workspaceSkipped"].get("binary") == 1 and s["workspaceSkipped"].get("ignored", 0) >= 3
    assert s["workspaceState"] == "ready" and s["workspaceIndexMb"] >= 0


async def test_a_file_outside_the_workspace_gets_drafts_from_it_without_error(client: LanguageClient):
    uri = (client.root / "outside.py").as_uri()  # type: ignore[attr-defined]
    open_doc(client, uri, "def g(q):\n    value = qx\n")
    result = await client.text_document_inline_completion_async(inline_params(uri, 1, 14))
    assert [i.insert_text for i in result.items] == ["_norm(q)"]  # never the disk file's qx_outside


async def test_a_draft_on_a_blank_line_at_its_start_comes_indented(client: LanguageClient):
    """The cursor at the start of a blank line inside a function (an editor trimmed its automatic
    indentation): the draft comes with the indentation the block wants (a short line: the tiny model's
    canvas is 16 slots)."""
    ws = client.root / "ws"  # type: ignore[attr-defined]
    uri = (ws / "pkg" / "blank.py").as_uri()
    open_doc(client, uri, "def a(q):\n    v = f(q)\n    return v\n\n\ndef b(q):\n\n    return v\n")
    result = await client.text_document_inline_completion_async(inline_params(uri, 6, 0))
    assert [i.insert_text for i in result.items] == ["    v = f(q)"]


async def test_invoked_completion_offers_the_other_drafts_to_cycle_through(client: LanguageClient):
    """The user asks (invoked): the best draft first, then the drafts the model did not choose."""
    ws = client.root / "ws"  # type: ignore[attr-defined]
    uri = (ws / "pkg" / "cycle.py").as_uri()
    open_doc(client, uri, "def f(q):\n    value = qx_alpha(q)\n    value = qx_beta(q)\n    value = qx\n")
    auto = await client.text_document_inline_completion_async(inline_params(uri, 3, 14))
    invoked = await client.text_document_inline_completion_async(inline_params(uri, 3, 14, invoked=True))
    texts = [i.insert_text for i in invoked.items]
    assert texts[0] == auto.items[0].insert_text  # the same first suggestion
    assert {"_alpha(q)", "_beta(q)", "_norm(q)"} <= set(texts)  # the file's two and the workspace's one
    assert len(texts) == len(set(texts)) <= 6


async def test_edited_buffers_feed_other_files_and_watched_deletions_apply(client: LanguageClient):
    ws = client.root / "ws"  # type: ignore[attr-defined]
    a, b = (ws / "a.py").as_uri(), (ws / "b.py").as_uri()
    open_doc(client, a, "x = 1\n")
    client.text_document_did_change(t.DidChangeTextDocumentParams(
        text_document=t.VersionedTextDocumentIdentifier(uri=a, version=2),
        content_changes=[t.TextDocumentContentChangeWholeDocument(text="    total = zq_sum(items)\n")],
    ))  # fmt: skip
    open_doc(client, b, "def h(items):\n    total = zq\n")
    result = await client.text_document_inline_completion_async(inline_params(b, 1, 14))
    assert [i.insert_text for i in result.items] == ["_sum(items)"]
    (ws / "pkg" / "helpers.py").unlink()  # deleted on disk: the watcher tells the server
    client.workspace_did_change_watched_files(t.DidChangeWatchedFilesParams(
        changes=[t.FileEvent(uri=(ws / "pkg" / "helpers.py").as_uri(), type=t.FileChangeType.Deleted)]
    ))  # fmt: skip
    s = await stats(client)  # handled after the notification: messages are processed in order
    assert s["workspaceDocuments"] == 6  # main.py, outside.py, blank.py, cycle.py, a.py, b.py (open buffers)
    assert "workspace/didChangeWatchedFiles" in client.registrations  # type: ignore[attr-defined]
