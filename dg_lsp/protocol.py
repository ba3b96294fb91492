"""The wire: framing, message checks, the LSP lifecycle and error replies, around pygls.

pygls reads frames in a loop that a single bad `Content-Length` deafens for the
rest of the connection, answers a request whose params fail validation with
nothing (and a popup), and prints a traceback per mistake.  This module puts a
stricter front on it; the handlers never see a malformed message:

    FrameReader      bytes -> frames; resynchronises on the next header after a bad one,
                     caps a message at MAX_MESSAGE_BYTES
    DgProtocol       frame -> checked message -> pygls's dispatch.  Every request gets a
                     response: -32700 malformed JSON or frame, -32600 a bad message shape,
                     a second `initialize` or anything after `shutdown`, -32002 before
                     `initialize`, -32602 params that fail validation, -32601 an unknown
                     method; error messages are one line, never a traceback
    ProtocolServer   the LanguageServer base of `DgServer`: stdio and TCP through the above, the exit
                     code LSP asks for (0 after `shutdown`, else 1), a client's protocol
                     mistakes logged at warning level once per kind, never a popup
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import threading
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, BinaryIO

from cattrs import transform_error
from cattrs.errors import ClassValidationError
from lsprotocol import types as t
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcMethodNotFound,
    JsonRpcParseError,
    JsonRpcRequestCancelled,
    JsonRpcServerNotInitialized,
)
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.protocol.json_rpc import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage

from dg_lsp.documents import LspWorkspace, open_document

log = logging.getLogger("dg_lsp")

MAX_MESSAGE_BYTES = 64 * 2**20
"""The largest message accepted (64 MiB: a 20 MB document in JSON with room to spare); a frame
announcing more is answered with an error and skipped."""
MAX_HEADER_BYTES = 8192
"""Longest header line kept while looking for a line break; junk beyond it is dropped."""

_LENGTH = re.compile(rb"content-length:[ \t]*([^\s]*)[ \t]*$", re.IGNORECASE)
_NEXT_HEADER = re.compile(rb"(?<=[}\]\s])Content-Length:[ \t]*\d+[ \t]*\r?\n", re.IGNORECASE)
"""A header inside what was announced as a body: the previous frame's length was too long.
JSON cannot hold a raw line break inside a string, so this never matches inside a valid body."""
_HEADER_START = re.compile(
    rb"(?<=[}\]\s])"
    + b"".join(b"(?:" + re.escape(bytes([c])) for c in b"Content-Length")
    + b")?" * 13 + rb"(?::[ \t]*\d*\r?)?)$",
    re.IGNORECASE,
)
"""The start of a header cut off at the end of what was announced as a body."""
_OTHER_HEADER = re.compile(rb"^[A-Za-z][A-Za-z0-9-]*:")
_ID = re.compile(rb'"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\]|\\.){0,200}")')


@dataclass(frozen=True)
class Frame:
    """One frame read from the client: a message body, or a framing problem and what was read
    in the message's place (perhaps its body, which may still name the request id)."""

    body: bytes
    problem: str | None = None


class FrameReader:
    """`Content-Length` framing, fed bytes as they arrive (pure: no I/O).

    Tolerant where it costs nothing (LF-only header lines, header names in any case,
    whitespace) and resynchronising where a frame is broken: a bad, missing or oversize
    length is reported and the reader looks for the next header; a length that is too
    short leaves junk before the next header, one that is too long ends at the next
    header found in the body (or at a complete JSON body)."""

    def __init__(self, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._buf = bytearray()
        self._length: int | None = None
        """Length announced by the headers being read; None when none (yet)."""
        self._problem: str | None = None
        """What is wrong with the header block being read (bad length, ...)."""
        self._in_headers = False
        self._body: int | None = None
        """Length of the body being read."""
        self._scanned = 0
        """How much of a partly read body was searched for a header already."""

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        return list(self._frames())

    def _frames(self) -> Iterator[Frame]:
        while True:
            if self._body is not None:
                frame = self._take_body(self._body)
                if frame is None:
                    return
                self._body = None
                yield frame
                continue
            nl = self._buf.find(b"\n")
            if nl < 0:
                if self._problem is not None and _complete_json(self._buf):
                    # the body of a header block without a usable length, complete: answer it now
                    body, self._buf = bytes(self._buf), bytearray()
                    yield self._broken(body)
                elif len(self._buf) > MAX_HEADER_BYTES:
                    del self._buf[: len(self._buf) - 64]
                return
            line = bytes(self._buf[: nl + 1])
            del self._buf[: nl + 1]
            yield from self._header_line(line.rstrip(b"\r\n"))

    def _header_line(self, line: bytes) -> Iterator[Frame]:
        if not line.strip():
            if not self._in_headers:
                return  # a stray blank line between frames
            if self._length is not None:
                self._body, self._scanned = self._length, 0
                self._length, self._problem, self._in_headers = None, None, False
            else:
                self._problem = self._problem or "no Content-Length header"
                self._in_headers = False  # its body follows; reported with it, or at the next header
            return
        m = _LENGTH.search(line)
        if m is None and self._in_headers and _OTHER_HEADER.match(line):
            return  # Content-Type and the like
        junk = line[: m.start()] if m else line
        if junk.strip() or (m and self._problem is not None):
            # text where a header belongs: a broken frame's body, or the rest of a body whose
            # length was too short
            yield self._broken(junk)
        if m is None:
            return
        self._in_headers, self._length, self._problem = True, None, None
        value = m.group(1)
        if not value.isdigit():
            self._problem = f"bad Content-Length {value[:40].decode('ascii', 'replace')!r}"
        elif len(value) > 12 or int(value) > self.max_bytes:
            self._problem = f"message of {value[:40].decode()} bytes exceeds the maximum {self.max_bytes}"
        elif int(value) == 0:
            self._problem = "empty message (Content-Length 0)"
        else:
            self._length = int(value)

    def _broken(self, body: bytes) -> Frame:
        problem = self._problem or "bytes outside a frame (a Content-Length too short?)"
        self._problem, self._in_headers = None, False
        return Frame(body, problem)

    def _take_body(self, n: int) -> Frame | None:
        if len(self._buf) >= n:
            body = bytes(self._buf[:n])
            del self._buf[:n]
            # a length that was too long swallowed (part of) the next frame's header: keep that frame
            if (m := _NEXT_HEADER.search(body)) is not None and not _complete_json(body):
                end: int | None = m.start()
            elif not body.rstrip().endswith((b"}", b"]")):
                end = _json_before_header(body)
                if end is None and (cut := _HEADER_START.search(body)) is not None:
                    end = cut.start()
            else:
                end = None
            if end is not None:
                self._buf[:0] = body[end:]
                body = body[:end]
            return Frame(body)
        m = _NEXT_HEADER.search(self._buf, max(0, self._scanned - 32))
        self._scanned = len(self._buf)
        if m is not None or _complete_json(self._buf):
            # the body is complete before its announced end: the length was too long
            end = m.start() if m is not None else len(self._buf)
            body = bytes(self._buf[:end])
            del self._buf[:end]
            return Frame(body)
        return None


def _json_before_header(data: bytes) -> int | None:
    """The end of a JSON value at the start of `data` when what follows it begins a header."""
    try:
        text = data.decode("utf-8")
        _, end = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return None
    rest = text[end:].lstrip()[:14].lower()
    if not rest or not "content-length".startswith(rest):
        return None
    return len(text[:end].encode("utf-8"))


def _complete_json(data: bytes | bytearray) -> bool:
    """Whether `data` is one whole JSON object or array (cheap test first: it ends like one)."""
    tail = bytes(data[-64:]).rstrip()
    if not tail.endswith((b"}", b"]")):
        return False
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


class ProblemLog:
    """A client's protocol mistakes: each kind logged at warning level once, then counted."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def warn(self, kind: str, message: str) -> None:
        self.counts[kind] += 1
        if self.counts[kind] == 1:
            log.warning("%s (logged once per kind; dg.stats counts them)", message)
        else:
            log.debug("%s", message)

    def stats(self) -> dict[str, int]:
        return {"protocolErrors": sum(self.counts.values())}


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DgProtocol(LanguageServerProtocol):
    """pygls's protocol behind the checks of `receive`, with error replies of one line."""

    def __init__(self, server: Any, converter: Any) -> None:
        super().__init__(server, converter)
        self.problems = ProblemLog()
        self.initialize_received = False
        self.shutdown_received = False
        self._parse_errors: deque[Any] = deque(maxlen=32)
        """Ids answered with a parse error lately."""
        self.exit_code: int | None = None
        """Set by `exit`: 0 after `shutdown`, 1 without (LSP)."""

    # ------------------------------------------------------------------ frames
    def receive(self, frame: Frame) -> None:
        """One frame from the client -> a reply, a dispatched message, or a logged problem."""
        if frame.problem is not None:
            self.problems.warn("frame", f"bad frame: {frame.problem}")
            msg_id = _id_in(frame.body)
            if msg_id is not None and msg_id not in self._parse_errors:  # else nothing to answer
                self._reply_parse_error(msg_id, f"bad frame: {frame.problem}")
            return
        try:
            raw = json.loads(frame.body)
        except ValueError as e:  # UnicodeDecodeError included
            self.problems.warn("json", f"malformed JSON: {_one_line(e, 120)}")
            self._reply_parse_error(_id_in(frame.body), f"malformed JSON: {_one_line(e, 120)}")
            return
        problem, msg_id = _shape_problem(raw)
        if problem is not None:
            self.problems.warn("shape", f"bad message: {problem}")
            self._reply_error(msg_id, JsonRpcInvalidRequest(f"bad message: {problem}"))
            return
        method = raw.get("method")
        if method is not None and (error := self._lifecycle_error(method, "id" in raw)) is not None:
            if "id" in raw:
                self._reply_error(msg_id, error)
            return
        if method is not None and not self._known(method):
            if "id" in raw:
                self.problems.warn("method", f"unknown method {method!r:.80}")
                self._reply_error(msg_id, JsonRpcMethodNotFound(f"unknown method {method!r:.80}"))
            elif not method.startswith("$/"):  # LSP: $/ notifications may be ignored silently
                self.problems.warn("method", f"unknown notification {method!r:.80} (ignored)")
            return
        try:
            message = self._structure(raw)
        except JsonRpcException as e:
            self.problems.warn(f"params:{method}", f"{method}: {e.message}")
            if "id" in raw and method is not None:
                self._reply_error(msg_id, e)
            return
        if method == t.INITIALIZE:
            self.initialize_received = True
        elif method == t.SHUTDOWN:
            self.shutdown_received = True
        self.handle_message(message)

    def _lifecycle_error(self, method: str, request: bool) -> JsonRpcException | None:
        if method == t.EXIT:
            return None
        if self.shutdown_received:
            error: JsonRpcException = JsonRpcInvalidRequest(f"{method}: the server is shut down")
        elif method == t.INITIALIZE and self.initialize_received:
            error = JsonRpcInvalidRequest("initialize: the server is already initialized")
        elif not self.initialize_received and method != t.INITIALIZE:
            error = JsonRpcServerNotInitialized(f"{method}: the server is not initialized yet")
        else:
            return None
        what = "request" if request else "notification (ignored)"
        self.problems.warn(f"lifecycle:{error.code}", f"{error.message} ({what})")
        return error

    def _known(self, method: str) -> bool:
        return method in self.fm.builtin_features or method in self.fm.features or method == t.CANCEL_REQUEST

    def _structure(self, raw: dict[str, Any]) -> Any:
        """pygls's `structure_message` without its traceback in the log; a one-line -32602."""
        method = raw.get("method")
        try:
            if "id" in raw and "error" in raw:
                return self._converter.structure(raw, t.ResponseErrorMessage)
            if method is not None:
                default = JsonRPCRequestMessage if "id" in raw else JsonRPCNotification
                return self._converter.structure(raw, self.get_message_type(method) or default)
            kind = self._result_types.pop(raw["id"], None) or JsonRPCResponseMessage
            return self._converter.structure(raw, kind)
        except ClassValidationError as e:
            where = "; ".join(transform_error(e, path="$"))
            raise JsonRpcInvalidParams(f"invalid params: {_one_line(where)}") from None
        except Exception as e:
            raise JsonRpcInvalidParams(f"invalid params: {_one_line(f'{type(e).__name__}: {e}')}") from None

    def _reply_parse_error(self, msg_id: Any, message: str) -> None:
        # a frame cut short leaves its rest for the next frame: answer its id once
        if msg_id is not None:
            self._parse_errors.append(msg_id)
        self._reply_error(msg_id, JsonRpcParseError(message))

    def _reply_error(self, msg_id: Any, error: JsonRpcException) -> None:
        self._send_response(msg_id, error=t.ResponseError(code=error.code, message=error.message))

    # -------------------------------------------- pygls's dispatch, made quiet
    def _send_handler_result(self, future: Future[Any], *, msg_id: Any) -> None:
        self._request_futures.pop(msg_id, None)
        if future.cancelled():
            self._reply_error(msg_id, JsonRpcRequestCancelled(f"request {msg_id!r} was cancelled"))
            return
        exc = future.exception()
        if exc is None:
            self._send_response(msg_id, result=future.result())
        elif isinstance(exc, JsonRpcException):
            self.problems.warn(f"error:{exc.code}", f"request failed: {_one_line(exc.message)}")
            self._reply_error(msg_id, exc)
        else:
            log.error("request %r failed", msg_id, exc_info=exc)
            message = _one_line(f"internal error: {type(exc).__name__}: {exc}")
            self._send_response(msg_id, error=t.ResponseError(code=-32603, message=message))

    def _check_handler_result(self, future: Future[Any]) -> None:
        # pygls files the future of a notification whose handler is a generator or a coroutine
        # (didOpen, didChange, didChangeConfiguration ...) in `_request_futures` under a fresh uuid
        # and never takes it out: one Future per keystroke, ~3.6 MB a minute in the typing storm.
        # The dict holds only the requests in flight besides, so finding it is cheap.  A new dict,
        # not a deletion: `shutdown` cancels these futures while it iterates over the old one.
        if any(pending is future for pending in self._request_futures.values()):
            self._request_futures = {k: f for k, f in self._request_futures.items() if f is not future}
        if not future.cancelled() and (exc := future.exception()) is not None:
            if isinstance(exc, JsonRpcException):
                self.problems.warn(f"notification:{exc.code}", f"notification failed: {_one_line(exc)}")
            else:
                log.error("notification failed", exc_info=exc)

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        future = self._request_futures.pop(msg_id, None)
        if future is not None:  # else it finished already: nothing to do, nothing to log
            future.cancel()

    # ------------------------------------------------------------- lifecycle
    @lsp_method(t.INITIALIZE)
    def lsp_initialize(self, params: t.InitializeParams) -> Any:
        """pygls's initialize, with a workspace whose documents break lines as LSP does."""
        steps = super().lsp_initialize(params)
        value: Any = None
        while True:
            try:
                step = steps.send(value)
            except StopIteration as done:
                return done.value
            finally:
                if self._workspace is not None and not isinstance(self._workspace, LspWorkspace):
                    self._workspace = LspWorkspace.like(self._workspace)
            value = yield step

    @lsp_method(t.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: t.DidChangeTextDocumentParams) -> Any:
        if open_document(self.workspace, params.text_document.uri) is None:
            self.problems.warn("didChange", f"didChange for a document that is not open: "
                                            f"{params.text_document.uri:.200} (ignored)")
            return None
        return (yield from super().lsp_text_document__did_change(params))

    @lsp_method(t.EXIT)
    def lsp_exit(self, *args: Any) -> None:
        self.exit_code = 0 if self.shutdown_received else 1
        stop = getattr(self._server, "_stop_event", None)
        if stop is not None:
            stop.set()


def _shape_problem(raw: Any) -> tuple[str | None, Any]:
    """What makes `raw` no JSON-RPC 2.0 message (None when it is one), and its id if usable."""
    if not isinstance(raw, dict):
        return f"a message is a JSON object, got {type(raw).__name__}", None
    msg_id = raw.get("id")
    if msg_id is not None and (isinstance(msg_id, bool) or not isinstance(msg_id, int | str)):
        return f"bad id {msg_id!r:.60}", None
    if raw.get("jsonrpc") != "2.0":
        return f"jsonrpc must be \"2.0\", got {raw.get('jsonrpc')!r:.40}", msg_id
    method = raw.get("method")
    if "method" in raw and not isinstance(method, str):
        return f"method must be a string, got {method!r:.60}", msg_id
    if method is None and ("id" not in raw or ("result" not in raw and "error" not in raw)):
        return "neither a request, a notification nor a response", msg_id
    if "params" in raw and raw["params"] is not None and not isinstance(raw["params"], dict | list):
        return f"params must be an object or an array, got {type(raw['params']).__name__}", msg_id
    return None, msg_id


def _id_in(body: bytes) -> Any:
    """The request id in a body that is not valid JSON, if one can be read (else null)."""
    m = _ID.search(body[:4096])
    if m is None:
        return None
    try:
        return json.loads(m.group(1))
    except ValueError:
        return None


class ProtocolServer(LanguageServer):
    """A LanguageServer on `DgProtocol`, serving stdio or TCP through `FrameReader`."""

    protocol: DgProtocol

    def __init__(self, name: str, version: str) -> None:
        super().__init__(name, version, protocol_cls=DgProtocol)

    def report_server_error(self, error: Exception, source: Any) -> None:
        # pygls would pop up "Error in server"; a client's mistake is no news for its user
        self.protocol.problems.warn(f"server:{type(error).__name__}", f"error: {_one_line(error)}")

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:  # type: ignore[override]
        """Serve stdio until `exit` or the end of input; the process exit code."""
        self._stop_event = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        try:
            return asyncio.run(self._serve(stdin or sys.stdin.buffer))
        except BrokenPipeError:
            log.error("the connection to the client is lost; stopping")
            return 1
        except KeyboardInterrupt:
            return 130
        finally:
            self.shutdown()

    async def _serve(self, stdin: BinaryIO) -> int:
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[bytes] = asyncio.Queue()

        try:
            fd: int | None = stdin.fileno()
        except (OSError, ValueError, AttributeError):
            fd = None

        def pump() -> None:
            # a daemon thread, so `exit` returns at once even while a read blocks; on the raw file
            # descriptor, whose read holds no lock that the interpreter's shutdown would wait for
            while True:
                try:
                    data = os.read(fd, 65536) if fd is not None else stdin.read1(65536)  # type: ignore[attr-defined]
                except (OSError, ValueError):
                    data = b""
                loop.call_soon_threadsafe(chunks.put_nowait, data)
                if not data:
                    return

        threading.Thread(target=pump, name="dg-stdin", daemon=True).start()
        return await self._receive_all(chunks.get)

    async def _receive_all(self, read: Callable[[], Awaitable[bytes]]) -> int:
        """Frames from `read` (b"" at the end of input) to the protocol until `exit` or the end;
        the process exit code.  stdio and TCP both come through here."""
        reader = FrameReader()
        stop = self._stop_event
        assert stop is not None
        while not stop.is_set():
            data = await read()
            if not data:
                break
            for frame in reader.feed(data):
                self.protocol.receive(frame)
                if stop.is_set():
                    break
        code = self.protocol.exit_code
        return 0 if code is None else code

    def start_tcp(  # type: ignore[override]
        self, host: str, port: int, on_listening: Callable[[str], None] | None = None
    ) -> int:
        """Serve one client over TCP (debugging) through `FrameReader`, as stdio is; the listening
        socket closes once it connects.  `on_listening` gets "HOST:PORT" (port 0 picks a free one)."""
        self._stop_event = threading.Event()
        try:
            return asyncio.run(self._serve_tcp(host, port, on_listening))
        except KeyboardInterrupt:
            return 130
        finally:
            self.shutdown()

    async def _serve_tcp(self, host: str, port: int, on_listening: Callable[[str], None] | None) -> int:
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if done.done() or not listener.is_serving():
                writer.close()  # one client at a time: this server is for debugging
                return
            listener.close()
            self.protocol.set_writer(writer)  # type: ignore[arg-type]

            async def read() -> bytes:
                try:
                    return await reader.read(65536)
                except (ConnectionError, OSError):
                    return b""

            try:
                code = await self._receive_all(read)
            finally:
                writer.close()
            if not done.done():
                done.set_result(code)

        listener = await asyncio.start_server(connection, host, port)
        address = listener.sockets[0].getsockname()
        log.info("listening on %s:%s", address[0], address[1])
        if on_listening is not None:
            on_listening(f"{address[0]}:{address[1]}")
        return await done
