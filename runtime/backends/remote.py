"""An OpenAI-compatible server (vLLM or SGLang serving DiffusionGemma) as a backend.

    request -> clipped context (runtime.context) -> the chat layout (runtime.backends.layout)
            -> POST {base}/chat/completions with continue_final_message -> text
    (`prompt="plain"`, for base models: the plain layout -> POST {base}/completions)

The HTTP client is httpx's async client on a private event loop thread: a
blocking `infill` submits the request there and polls `should_cancel` every
`poll_s`; cancelling the task makes httpx close the connection, so the
server sees the client go away and can stop generating.  Timeouts, bounded
retries with exponential backoff (connection refused or dropped, HTTP 429 and
502-504) and one-line `RemoteError`s for a server that is down, slow or says no.

vLLM rejects the completions API's `suffix` field, so the suffix travels in
the prompt; `tokens` comes from the server's usage and forwards are unknown
(0).  Neither temperature nor seed is sent: both servers' DiffusionGemma
samplers take their schedule from the server's configuration, and SGLang
refuses a request seed (docs/backends.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime.backends.base import Backend
from runtime.backends.hf import INSTALL_HINT
from runtime.backends.layout import FENCE, chat_messages, clean_middle, drop_typed, plain_prompt
from runtime.context import CHARS_PER_TOKEN, clip_context
from runtime.types import (
    Cancelled,
    InfillRequest,
    InfillResult,
    InfillStats,
    ModelLoadError,
    RuntimeError_,
    one_line,
)

BUDGET_CHARS_PER_TOKEN = CHARS_PER_TOKEN // 2
"""No tokenizer on the client: a token is counted as this many characters (half the upper bound,
a typical rate for code), so the prompt stays near the budget rather than below it."""


def _pieces(text: str) -> list[str]:
    """Stand-in tokens for the clipping rule: BUDGET_CHARS_PER_TOKEN-character pieces."""
    return [text[i : i + BUDGET_CHARS_PER_TOKEN] for i in range(0, len(text), BUDGET_CHARS_PER_TOKEN)]


def clip(req: InfillRequest) -> tuple[str, str]:
    """Prefix and suffix within the request's budget, by the embedded context's rule
    (`runtime.context.clip_context`: the prefix starts on a stable line grid)."""
    return clip_context(req.prefix, req.suffix, req.context_tokens, _pieces, "".join)  # type: ignore[arg-type]
RETRY_STATUS = frozenset({429, 502, 503, 504})


class RemoteError(RuntimeError_):
    """The server is down, slow, dropped the connection or answered with an error; one line."""


@dataclass(frozen=True)
class RemoteOptions:
    timeout_s: float = 30.0
    """Longest wait for the server to start answering (read timeout)."""
    connect_timeout_s: float = 3.0
    retries: int = 2
    """Extra attempts after a connection failure or HTTP 429/502/503/504."""
    backoff_s: float = 0.25
    """First wait before a retry; doubles each time."""
    poll_s: float = 0.02
    """How often the cancel flag and deadline are checked while a request runs."""
    prompt: str = "chat"
    """"chat": the chat layout through /chat/completions (instruction-tuned checkpoints);
    "plain": the plain layout through /completions (base models)."""


class RemoteBackend(Backend):
    name = "remote"
    sizes_canvas = False  # the server denoises its own canvas length
    def __init__(self, base_url: str, model: str, options: RemoteOptions | None = None) -> None:
        super().__init__()
        try:
            import httpx
        except ImportError:
            raise ModelLoadError(f"the remote backend needs httpx: {INSTALL_HINT}") from None
        self.httpx = httpx
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.options = options or RemoteOptions()
        self.description = f"{model} at {self.base_url} (remote)"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="dg-lsp-remote", daemon=True)
        self._thread.start()
        o = self.options
        timeout = httpx.Timeout(o.timeout_s, connect=o.connect_timeout_s)
        self._client = self._run(self._make_client(timeout))

    async def _make_client(self, timeout):
        return self.httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    def _run(self, coro, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self._client.aclose(), timeout=5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    # ---------------------------------------------------------------------------- requests
    def served_models(self) -> list[str]:
        """Model ids from GET {base}/models (one attempt; used at load time)."""
        data = self._run(self._send("GET", "/models", None, retries=0))
        return [str(m.get("id")) for m in data.get("data", []) if isinstance(m, dict)]

    def request(self, req: InfillRequest) -> tuple[str, dict[str, Any], str]:
        """(path, JSON body, prefix whitespace left out of the prompt) for one infill request."""
        prefix, suffix = clip(req)
        body: dict[str, Any] = {"model": self.model, "max_tokens": req.max_tokens}
        if self.options.prompt == "plain":
            body["prompt"], typed, path = plain_prompt(prefix, suffix), "", "/completions"
        else:
            body["messages"], typed = chat_messages(prefix, suffix)
            body.update(add_generation_prompt=False, continue_final_message=True)
            path = "/chat/completions"
        # a single line stops at a line break, unless the reply must first re-type one the user typed
        body["stop"] = [FENCE, "\n"] if req.single_line and "\n" not in typed else [FENCE]
        return path, body, typed

    def run(self, req: InfillRequest, should_cancel: Callable[[], bool] | None) -> InfillResult:
        started = time.perf_counter()
        path, payload, typed = self.request(req)
        done = threading.Event()
        future = asyncio.run_coroutine_threadsafe(self._complete(path, payload, done), self._loop)
        deadline_hit = False
        data = None
        while data is None:
            try:
                data = future.result(timeout=self.options.poll_s)
            except concurrent.futures.TimeoutError:
                elapsed = (time.perf_counter() - started) * 1000
                if should_cancel is not None and should_cancel():
                    self._abort(future, done)
                    raise Cancelled("cancelled while waiting for the server") from None
                if req.deadline_ms is not None and elapsed >= req.deadline_ms:
                    self._abort(future, done)
                    deadline_hit = True
                    data = {}
        text, tokens = "", 0
        if not deadline_hit:
            text, tokens = _parse_completion(data, self.base_url + path)
        text = clean_middle(drop_typed(text, typed), req)
        stats = InfillStats(
            tokens=tokens,
            canvases=0 if deadline_hit else 1,
            ms=(time.perf_counter() - started) * 1000,
            deadline_hit=deadline_hit,
        )
        return InfillResult(text=text, stats=stats)

    def _abort(self, future: concurrent.futures.Future, done: threading.Event) -> None:
        """Cancel the request task; httpx closes its connection as the cancellation unwinds."""
        future.cancel()
        done.wait(timeout=2.0)

    async def _complete(self, path: str, payload: dict, done: threading.Event) -> dict:
        try:
            return await self._send("POST", path, payload, retries=self.options.retries)
        finally:
            done.set()

    async def _send(self, method: str, path: str, payload: dict | None, *, retries: int) -> dict:
        httpx = self.httpx
        url = self.base_url + path
        problem = ""
        for attempt in range(retries + 1):
            if attempt:
                await asyncio.sleep(self.options.backoff_s * 2 ** (attempt - 1))
            try:
                response = await self._client.request(method, path, json=payload)
            except httpx.ConnectTimeout:
                problem = f"cannot connect to {url} within {self.options.connect_timeout_s:g} s"
                continue
            except httpx.ConnectError as e:
                problem = f"cannot reach {url} ({one_line(e)}): is the server running?"
                continue
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as e:
                problem = f"{url} dropped the connection ({one_line(e)})"
                continue
            except httpx.TimeoutException:
                raise RemoteError(
                    f"{url} did not answer within {self.options.timeout_s:g} s (server slow or overloaded)"
                ) from None
            except httpx.HTTPError as e:
                raise RemoteError(f"request to {url} failed: {one_line(e)}") from None
            if response.status_code in RETRY_STATUS:
                problem = f"{url} answered HTTP {response.status_code}: {_error_message(response)}"
                continue
            if response.status_code >= 400:
                raise RemoteError(f"{url} answered HTTP {response.status_code}: {_error_message(response)}")
            try:
                data = response.json()
            except ValueError:
                raise RemoteError(
                    f"{url} answered with something that is not JSON: {response.text[:120]!r}"
                ) from None
            if not isinstance(data, dict):
                raise RemoteError(f"{url} answered with unexpected JSON: {str(data)[:120]}")
            return data
        tries = f"{retries + 1} tries" if retries else "1 try"
        raise RemoteError(f"{problem} ({tries})")


def _error_message(response) -> str:
    """vLLM/SGLang/OpenAI error bodies: {"error": {"message": ...}} or {"message": ...}."""
    try:
        body = response.json()
    except ValueError:
        return one_line(Exception(response.text)) if response.text else response.reason_phrase
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return one_line(Exception(err["message"]))
        if isinstance(err, str):
            return one_line(Exception(err))
    return one_line(Exception(str(body)))


def _parse_completion(data: dict, where: str) -> tuple[str, int]:
    """(text, completion tokens) of a completions (choices[0].text) or chat (.message.content) answer."""
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"] if "message" in choice else choice["text"]
    except (KeyError, IndexError, TypeError):
        raise RemoteError(f"{where} answered without choices[0].text or .message.content: "
                          f"{str(data)[:120]}") from None
    if not isinstance(text, str):
        raise RemoteError(f"{where} answered with a non-text completion")
    usage = data.get("usage") or {}
    tokens = usage.get("completion_tokens", 0) if isinstance(usage, dict) else 0
    return text, int(tokens or 0)


def connect_remote(url: str, model: str | None, options: RemoteOptions | None = None) -> RemoteBackend:
    """A remote backend after checking that the server answers and serves `model`.

    Without `model`, the server's only model is used; several need --remote-model / remoteModel."""
    backend = RemoteBackend(url, model or "", options)
    try:
        served = backend.served_models()
    except RemoteError as e:
        backend.close()
        raise ModelLoadError(f"remote model server: {e}") from None
    if not model:
        if len(served) != 1:
            backend.close()
            listing = ", ".join(served) or "none"
            raise ModelLoadError(
                f"{url} serves {len(served)} models ({listing}): pick one with --remote-model or remoteModel"
            )
        model = served[0]
    elif served and model not in served:
        backend.close()
        raise ModelLoadError(f"{url} does not serve {model!r} (it serves: {', '.join(served)})")
    backend.model = model
    backend.description = f"{model} at {backend.base_url} (remote)"
    return backend
