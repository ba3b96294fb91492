"""A client for benchmarks that drive the real server: `dg-lsp serve` over stdio, started, initialised
and waited for (the model loaded and, with a workspace folder, the workspace indexed)."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types as t
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 300


@dataclass
class Served:
    """A started server: the client, and the `dg/status` states it reported."""

    client: LanguageClient
    statuses: list[str] = field(default_factory=list)

    async def stats(self) -> dict[str, Any]:
        return await self.client.workspace_execute_command_async(t.ExecuteCommandParams(command="dg.stats"))

    def open(self, uri: str, text: str, version: int = 1) -> None:
        item = t.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)
        self.client.text_document_did_open(t.DidOpenTextDocumentParams(text_document=item))

    def close(self, uri: str) -> None:
        self.client.text_document_did_close(t.DidCloseTextDocumentParams(t.TextDocumentIdentifier(uri=uri)))

    async def inline(self, uri: str, line: int, character: int, *, invoked: bool) -> list[str]:
        """The texts of an inline completion's items, best first."""
        kind = t.InlineCompletionTriggerKind.Invoked if invoked else t.InlineCompletionTriggerKind.Automatic
        params = t.InlineCompletionParams(
            text_document=t.TextDocumentIdentifier(uri=uri),
            position=t.Position(line=line, character=character),
            context=t.InlineCompletionContext(trigger_kind=kind),
        )
        result = await self.client.text_document_inline_completion_async(params)
        items = result.items if isinstance(result, t.InlineCompletionList) else (result or [])
        return [i.insert_text if isinstance(i.insert_text, str) else i.insert_text.value for i in items]

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()


async def serve(
    options: dict[str, Any], *, workspace: Path | None = None, name: str = "dg-lsp-bench"
) -> Served:
    """Start `dg-lsp serve` with these `dgLsp` settings and wait until the model is ready (and the
    `workspace` folder, when given, indexed); a model that fails to load raises SystemExit."""
    client = LanguageClient(name, "0")
    served = Served(client)
    ready, indexed = asyncio.Event(), asyncio.Event()

    @client.feature("dg/status")
    def on_status(ls, params):
        get = params.get if isinstance(params, dict) else lambda k: getattr(params, k, None)
        served.statuses.append(get("state"))
        if get("state") in ("ready", "error"):
            ready.set()
        if get("workspace"):
            indexed.set()

    @client.feature(t.WINDOW_LOG_MESSAGE)
    def on_log(ls, params):
        pass

    await client.start_io(sys.executable, "-m", "dg_lsp", "serve", "--log-level", "WARNING", cwd=str(ROOT))
    caps = t.ClientCapabilities(
        text_document=t.TextDocumentClientCapabilities(
            inline_completion=t.InlineCompletionClientCapabilities()
        )
    )
    folders = [t.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)] if workspace else None
    params = t.InitializeParams(
        capabilities=caps,
        initialization_options={"dgLsp": options},
        workspace_folders=folders,
        root_uri=workspace.as_uri() if workspace else None,
    )
    await client.initialize_async(params)
    client.initialized(t.InitializedParams())
    await asyncio.wait_for(ready.wait(), WAIT_S)
    if served.statuses[-1] == "error":
        raise SystemExit(f"the model {options.get('model')!r} failed to load")
    if workspace is not None:
        await asyncio.wait_for(indexed.wait(), WAIT_S)
    return served
