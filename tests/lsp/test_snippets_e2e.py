"""End to end: context snippets through the server.  The real server over stdio (pytest-lsp) runs
conftest's `snippet_model`: the shipped model's weights in a folder whose config.json declares the
snippet layout (`layout.snippet_tokens` 128).  The weights were never trained with snippets, so
these tests check the server's plumbing with the real model (the workspace feed -> the request ->
the context the backend builds), not that the model makes use of the snippets.

What the backend put in each request's context is read back from `dg.stats` (`lastSnippets`: the
path and token count of every snippet in the last completed request's context; `snippetTokens`,
`snippetRequests`), the statistics a user sees.  A snippet block is `[FILE_SEP] path "\\n" text
"\\n"`: its token count, computed here with the model's tokenizer from the text the test wrote,
pins which text went in (tests/runtime/test_embedded.py checks the ids themselves)."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_lsp
from lsp_harness import CONFIG, inline_params, open_doc, start, stats, wait_status, wait_until
from lsprotocol import types as t
from pytest_lsp import LanguageClient

from runtime.tokenizer import Tokenizer

pytestmark = pytest.mark.asyncio(loop_scope="module")

HELPERS = "def qx_norm(qvec):\n    return qvec / qx_scale(qvec)\n"
"""pkg/helpers.py on disk: `qx_norm` exists only there."""
MAIN = "def run(qvec):\n    scaled = qx_scale(qvec)\n    value = qx\n"
"""pkg/main.py, an open buffer: the lines above the cursor share identifiers with helpers.py."""


def options(model: Path, **more: object) -> dict:
    return {"dgLsp": {"model": str(model), "threads": 1, **more}}


@pytest_lsp.fixture(config=CONFIG, scope="module")
async def client(lsp_client: LanguageClient, tmp_path_factory, snippet_model):
    ws = tmp_path_factory.mktemp("snippets") / "ws"
    (ws / "pkg").mkdir(parents=True)
    (ws / "pkg" / "helpers.py").write_text(HELPERS)
    lsp_client.ws = ws  # type: ignore[attr-defined]
    lsp_client.model = snippet_model  # type: ignore[attr-defined]
    lsp_client.tok = Tokenizer.from_file(snippet_model / "tokenizer.json")  # type: ignore[attr-defined]
    await start(lsp_client, "visual_studio_code", options(snippet_model), root=ws)
    await wait_until(lsp_client, "dg/status", lambda: bool(lsp_client.workspace_messages))  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


def block_tokens(client: LanguageClient, path: str, text: str) -> int:
    """Tokens of the snippet block for `text` (a file shorter than a window is one whole window)."""
    return 1 + len(client.tok.encode(f"{path}\n{text}\n"))  # type: ignore[attr-defined]


async def complete(client: LanguageClient, uri: str, line: int, col: int) -> dict:
    """An automatic inline completion, then what the backend put in its context."""
    before = (await stats(client))["completed"]
    await client.text_document_inline_completion_async(inline_params(uri, line, col))
    s = await stats(client)
    assert s["completed"] == before + 1  # the model ran (not the typing cache): lastSnippets is this one's
    return s


def configure(client: LanguageClient, **more: object) -> None:
    settings = options(client.model, **more)  # type: ignore[attr-defined]
    client.workspace_did_change_configuration(t.DidChangeConfigurationParams(settings=settings))


def change(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(t.DidChangeTextDocumentParams(
        text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[t.TextDocumentContentChangeWholeDocument(text=text)],
    ))  # fmt: skip


def close(client: LanguageClient, uri: str) -> None:
    client.text_document_did_close(
        t.DidCloseTextDocumentParams(text_document=t.TextDocumentIdentifier(uri=uri))
    )


async def test_the_context_holds_the_other_files_snippet_within_the_budget(client: LanguageClient):
    uri = (client.ws / "pkg" / "main.py").as_uri()  # type: ignore[attr-defined]
    open_doc(client, uri, "def run(qvec):\n")
    change(client, uri, 2, MAIN)  # edited: the buffer's live text is what the query reads
    n = block_tokens(client, "pkg/helpers.py", HELPERS)
    assert n <= 128
    s = await complete(client, uri, 2, 14)
    assert s["lastSnippets"] == [{"path": "pkg/helpers.py", "tokens": n}]  # relative, never absolute
    assert s["snippetTokens"] == n and s["snippetRequests"] == 1
    configure(client, snippetTokens=n - 1)  # one token short: whole snippets only, so none
    assert (await complete(client, uri, 2, 14))["lastSnippets"] == []
    configure(client, snippetTokens=n)
    assert (await complete(client, uri, 2, 14))["lastSnippets"] == [{"path": "pkg/helpers.py", "tokens": n}]
    configure(client)


async def test_the_snippets_setting_off_sends_none(client: LanguageClient):
    uri = (client.ws / "pkg" / "main.py").as_uri()  # type: ignore[attr-defined]
    configure(client, snippets=False)
    before = (await stats(client))["snippetTokens"]
    s = await complete(client, uri, 2, 14)
    assert s["lastSnippets"] == [] and s["snippetTokens"] == before
    configure(client)
    assert (await complete(client, uri, 2, 14))["lastSnippets"] != []  # on again


async def test_a_snippet_whose_lines_the_context_holds_is_not_sent_again(client: LanguageClient):
    uri = (client.ws / "pkg" / "copy.py").as_uri()  # type: ignore[attr-defined]
    query = "def run2(qvec):\n    scaled = qx_scale(qvec) * 2\n    value = qx\n"
    open_doc(client, uri, query)
    paths = [x["path"] for x in (await complete(client, uri, 2, 14))["lastSnippets"]]
    assert "pkg/helpers.py" in paths
    change(client, uri, 2, HELPERS + "\n\n" + query)  # helpers.py's lines are now above the cursor
    paths = [x["path"] for x in (await complete(client, uri, 5, 14))["lastSnippets"]]
    assert "pkg/helpers.py" not in paths
    close(client, uri)  # no file on disk: it leaves the index, the later tests' snippets stay known


async def test_an_edit_of_another_open_buffer_shows_in_the_next_snippet(client: LanguageClient):
    ws = client.ws  # type: ignore[attr-defined]
    other, user = (ws / "pkg" / "other.py").as_uri(), (ws / "pkg" / "user.py").as_uri()
    old = "def zq_sum(items):\n    return zq_total(items)\n"
    new = "def zq_sum(items, start):\n    return zq_total(items) + zq_offset(start)\n"
    open_doc(client, other, old)
    open_doc(client, user, "def use(items):\n    total = zq_total(items)\n    value = zq\n")
    entry = {"path": "pkg/other.py", "tokens": block_tokens(client, "pkg/other.py", old)}
    assert entry in (await complete(client, user, 2, 14))["lastSnippets"]
    change(client, other, 2, new)
    entry = {"path": "pkg/other.py", "tokens": block_tokens(client, "pkg/other.py", new)}
    assert entry in (await complete(client, user, 2, 14))["lastSnippets"]
    close(client, other)
    close(client, user)


async def test_a_watched_file_change_on_disk_shows_in_the_next_snippet(client: LanguageClient):
    helpers = client.ws / "pkg" / "helpers.py"  # type: ignore[attr-defined]
    uri = (client.ws / "pkg" / "main.py").as_uri()  # type: ignore[attr-defined]
    edited = HELPERS + "\n\ndef qx_clip(qvec, qx_limit):\n    return min(qvec, qx_limit)\n"
    helpers.write_text(edited)
    client.workspace_did_change_watched_files(t.DidChangeWatchedFilesParams(
        changes=[t.FileEvent(uri=helpers.as_uri(), type=t.FileChangeType.Changed)]
    ))  # fmt: skip
    entry = {"path": "pkg/helpers.py", "tokens": block_tokens(client, "pkg/helpers.py", edited)}
    assert entry["tokens"] != block_tokens(client, "pkg/helpers.py", HELPERS)
    assert (await complete(client, uri, 2, 14))["lastSnippets"] == [entry]  # main.py's only other file


async def test_the_shipped_model_declares_no_layout_and_gets_no_snippets(client: LanguageClient):
    from runtime.load import DEFAULT_MODEL_DIR

    since = len(client.statuses)  # type: ignore[attr-defined]
    client.workspace_did_change_configuration(t.DidChangeConfigurationParams(
        settings={"dgLsp": {"model": str(DEFAULT_MODEL_DIR), "threads": 1}}))  # fmt: skip
    await wait_status(client, "loading", since)
    statuses = client.statuses  # type: ignore[attr-defined]
    loading = next(i for i in range(since, len(statuses)) if statuses[i][0] == "loading")
    await wait_status(client, "ready", loading + 1)  # not a "ready" of the old model's last request
    uri = (client.ws / "pkg" / "main.py").as_uri()  # type: ignore[attr-defined]
    before = (await stats(client))["snippetTokens"]
    s = await complete(client, uri, 2, 14)
    assert s["model"] == "dg-code-small" and s["lastSnippets"] == [] and s["snippetTokens"] == before
