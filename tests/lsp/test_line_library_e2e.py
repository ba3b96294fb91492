"""End to end: the line library as a source of drafts.  The real server over stdio (pytest-lsp), its
`lineLibrary` setting pointing at a small library file written here; a line that occurs nowhere in the
workspace comes from the library's pairs.  A library that cannot be read gives one warning and the
drafts go on from the workspace alone.  The model is the random-weight "tiny" preset; the defaults
accept the best draft (runtime/drafts.py), so the suggestion is the draft whatever the weights say."""

from __future__ import annotations

import pytest
import pytest_lsp
from lsp_harness import CONFIG, inline_params, open_doc, start, stats, wait_until
from lsprotocol import types as t
from pytest_lsp import LanguageClient

from runtime import library

pytestmark = pytest.mark.asyncio(loop_scope="module")
ROWS = [
    (30, 1, "if qx_seen:", "return qx_hit"),
    (3, 0, "if qx_seen:", "pass"),
    (9, 1, "while qx_wait:", "qx_tick()"),
]


def options(path: str) -> dict:
    return {"dgLsp": {"model": "tiny", "threads": 1, "lineLibrary": path}}


@pytest_lsp.fixture(config=CONFIG, scope="module")
async def client(lsp_client: LanguageClient, tmp_path_factory):
    root = tmp_path_factory.mktemp("library")
    (root / "ws").mkdir()
    (root / "ws" / "other.py").write_text("def other():\n    return 1\n")
    library.write(root / "lines.tsv.gz", ROWS, {"corpus": "test"})
    lsp_client.root = root  # type: ignore[attr-defined]
    await start(lsp_client, "visual_studio_code", options(str(root / "lines.tsv.gz")), root=root / "ws")
    await wait_until(lsp_client, "dg/status", lambda: bool(lsp_client.workspace_messages))  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def test_a_line_from_the_library_is_suggested(client: LanguageClient):
    uri = (client.root / "ws" / "main.py").as_uri()  # type: ignore[attr-defined]
    open_doc(client, uri, "def f(qx_seen):\n    if qx_seen:\n        \n        log()\n")  # a body: one line
    result = await client.text_document_inline_completion_async(inline_params(uri, 2, 8))
    assert [i.insert_text for i in result.items] == ["return qx_hit"]
    assert (await stats(client))["lineLibraryPairs"] == len(ROWS)


async def test_an_empty_body_gets_the_library_line_when_automatic(client: LanguageClient):
    """After `while qx_wait:` and Enter, nothing below: the automatic trigger asks for the drafted line
    (a block without drafts before; benchmarks/empty_body.py)."""
    uri = (client.root / "ws" / "empty.py").as_uri()  # type: ignore[attr-defined]
    open_doc(client, uri, "def g(qx_wait):\n    while qx_wait:\n        \n")
    result = await client.text_document_inline_completion_async(inline_params(uri, 2, 8))
    assert [i.insert_text for i in result.items] == ["qx_tick()"]


async def test_an_unreadable_library_warns_once_and_drafts_go_on_without_it(client: LanguageClient):
    n = len(client.messages)
    missing = str(client.root / "missing.tsv.gz")  # type: ignore[attr-defined]
    client.workspace_did_change_configuration(t.DidChangeConfigurationParams(settings=options(missing)))
    await wait_until(client, "window/showMessage", lambda: len(client.messages) > n)
    warning = client.messages[-1]
    assert warning.type == t.MessageType.Warning and "missing.tsv.gz" in warning.message
    assert (await stats(client))["lineLibraryPairs"] == 0
    uri = (client.root / "ws" / "second.py").as_uri()  # type: ignore[attr-defined]
    open_doc(client, uri, "def h(qx_seen):\n    if qx_seen:\n        \n        log()\n")
    result = await client.text_document_inline_completion_async(inline_params(uri, 2, 8))
    assert "return qx_hit" not in [i.insert_text for i in result.items]
