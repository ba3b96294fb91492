"""Shared pieces of the end-to-end tests: the server command, client profiles, waiting helpers.

The server runs as a real subprocess over stdio (`python -m dg_lsp serve`)
with the random-weight "tiny" model and one torch thread.  Nothing sleeps:
tests wait for the notification they expect.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest_lsp
from lsprotocol import types as t
from pytest_lsp import ClientServerConfig, LanguageClient

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "lsp"
SERVER = [sys.executable, "-m", "dg_lsp", "serve", "--log-level", "WARNING"]
TINY = {"dgLsp": {"model": "tiny", "threads": 1}}
PROFILES = ["neovim", "visual_studio_code"]
TIMEOUT = 60


def make_client() -> LanguageClient:
    """pytest-lsp's client plus a record of `dg/status` and `workspace/applyEdit`."""
    client = pytest_lsp.client.make_test_lsp_client()
    client.statuses = []  # type: ignore[attr-defined]
    client.applied = []  # type: ignore[attr-defined]
    client.apply_result = True  # type: ignore[attr-defined]
    client.registrations = []  # type: ignore[attr-defined]
    client.workspace_messages = []  # type: ignore[attr-defined]

    @client.feature("dg/status")
    def status(ls: LanguageClient, params: Any) -> None:
        client.statuses.append((_get(params, "state"), _get(params, "message")))  # type: ignore[attr-defined]
        if (workspace := _get(params, "workspace")) is not None:
            client.workspace_messages.append(workspace)  # type: ignore[attr-defined]

    @client.feature(t.CLIENT_REGISTER_CAPABILITY)
    def register(ls: LanguageClient, params: t.RegistrationParams) -> None:
        client.registrations.extend(r.method for r in params.registrations)  # type: ignore[attr-defined]

    @client.feature(t.WORKSPACE_APPLY_EDIT)
    def apply_edit(ls: LanguageClient, params: t.ApplyWorkspaceEditParams) -> t.ApplyWorkspaceEditResult:
        client.applied.append(params)  # type: ignore[attr-defined]
        return t.ApplyWorkspaceEditResult(applied=client.apply_result)  # type: ignore[attr-defined]

    return client


CONFIG = ClientServerConfig(server_command=SERVER, client_factory=make_client)


def _get(params: Any, name: str) -> Any:
    return params.get(name) if isinstance(params, dict) else getattr(params, name, None)


def capabilities(profile: str, *, inline: bool = True) -> t.ClientCapabilities:
    """A real client's capabilities; `inline` adds inline completion (Neovim 0.12, VS Code >= 1.91)."""
    caps = pytest_lsp.client_capabilities(profile)
    if inline:
        caps.text_document.inline_completion = t.InlineCompletionClientCapabilities()  # type: ignore[union-attr]
    return caps


async def start(client: LanguageClient, profile: str, options: Any = None, *, inline: bool = True,
                wait: str | None = "ready", root: Path | None = None) -> t.InitializeResult:
    folders = [t.WorkspaceFolder(uri=root.as_uri(), name=root.name)] if root is not None else None
    result = await client.initialize_session(
        t.InitializeParams(
            capabilities=capabilities(profile, inline=inline),
            initialization_options=TINY if options is None else options,
            workspace_folders=folders,
            root_uri=root.as_uri() if root is not None else None,
        )
    )
    if wait:
        await wait_status(client, wait)
    return result


async def wait_until(client: LanguageClient, method: str, done: Callable[[], bool]) -> None:
    """Wait for notifications of `method` until `done()` holds (checked before each wait)."""
    async def loop() -> None:
        while not done():
            await client.wait_for_notification(method)

    await asyncio.wait_for(loop(), TIMEOUT)


async def wait_status(client: LanguageClient, state: str, since: int = 0) -> tuple[str, str]:
    statuses = client.statuses  # type: ignore[attr-defined]
    await wait_until(client, "dg/status", lambda: any(s[0] == state for s in statuses[since:]))
    return next(s for s in statuses[since:] if s[0] == state)


def columns(text: str, encoding: str) -> int:
    """Length of `text` in the negotiated position encoding's code units."""
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    if encoding == "utf-32":
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def encoding_of(result: t.InitializeResult) -> str:
    enc = result.capabilities.position_encoding or "utf-16"
    return str(getattr(enc, "value", enc))


def open_doc(client: LanguageClient, uri: str, text: str, language: str = "python", version: int = 1) -> None:
    client.text_document_did_open(
        t.DidOpenTextDocumentParams(
            text_document=t.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)
        )
    )


async def stats(client: LanguageClient) -> dict[str, Any]:
    params = t.ExecuteCommandParams(command="dg.stats", arguments=[])
    return await client.workspace_execute_command_async(params)


def inline_params(uri: str, line: int, character: int, *, invoked: bool = False,
                  selected: t.SelectedCompletionInfo | None = None) -> t.InlineCompletionParams:
    kind = t.InlineCompletionTriggerKind.Invoked if invoked else t.InlineCompletionTriggerKind.Automatic
    return t.InlineCompletionParams(
        text_document=t.TextDocumentIdentifier(uri=uri),
        position=t.Position(line=line, character=character),
        context=t.InlineCompletionContext(trigger_kind=kind, selected_completion_info=selected),
    )
