"""`dg-lsp serve`: start the language server on stdio (or TCP for debugging).

`dg_lsp.cli` calls `add_arguments` and `run`.  Logs go to stderr (warnings
and worse by default: editors file a server's stderr as errors) or to
`--log-file` (INFO by default); stdout carries the protocol and nothing else.
Model options given here win over the client's settings.  When the client
closes the pipe (an editor quitting without `shutdown`), the server ends
without a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import BinaryIO

from runtime.policy_spec import POLICY_NAMES
from runtime.types import DTYPES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio (debugging)")
    parser.add_argument("--model", help="model folder, 'default' or 'tiny' (overrides dgLsp.model)")
    parser.add_argument("--device", help="torch device: cpu, cuda, cuda:N, mps (overrides dgLsp.device)")
    parser.add_argument("--threads", type=int, help="torch threads (overrides dgLsp.threads)")
    parser.add_argument("--dtype", choices=DTYPES, help="matrix-product dtype (overrides dgLsp.dtype)")
    parser.add_argument("--policy", choices=list(POLICY_NAMES),
                        help="unmasking policy (overrides dgLsp.policy)")
    parser.add_argument("--no-kernels", dest="kernels", action="store_false", default=None,
                        help="no Triton kernels on a GPU: the PyTorch reference (overrides dgLsp.kernels)")
    parser.add_argument("--log-file", help="write logs here instead of stderr")
    parser.add_argument(
        "--log-level", default=None,
        help="DEBUG, INFO, WARNING or ERROR (default WARNING on stderr, INFO with --log-file)",
    )


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in ("model", "device", "threads", "dtype", "policy", "kernels"):
        value = getattr(args, name, None)
        if value is not None:
            out[name] = value
    return out


def _setup_logging(args: argparse.Namespace) -> None:
    name = args.log_level or ("INFO" if args.log_file else "WARNING")
    level = getattr(logging, str(name).upper(), None)
    if not isinstance(level, int):
        raise SystemExit(f"dg-lsp: error: unknown --log-level {args.log_level!r}")
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    if args.log_file:
        logging.basicConfig(level=level, filename=args.log_file, format=fmt, force=True)
    else:
        logging.basicConfig(level=level, stream=sys.stderr, format=fmt, force=True)
    # pygls logs every message at DEBUG/INFO; keep our own level for dg_lsp only
    logging.getLogger("pygls").setLevel(max(level, logging.WARNING))


class ClientPipe:
    """The protocol's stdout.  Once the client has closed its end, writes are dropped quietly.

    pygls logs a traceback for every message it fails to send, and the responses
    and status notifications still in flight when an editor quits make dozens.
    """

    CLOSED = (BrokenPipeError, ConnectionResetError, ValueError)  # ValueError: write to a closed file

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.closed = False

    def write(self, data: bytes) -> int:
        if not self.closed:
            try:
                return self._stream.write(data)
            except self.CLOSED:
                self._lost()
        return len(data)

    def flush(self) -> None:
        if not self.closed:
            try:
                self._stream.flush()
            except self.CLOSED:
                self._lost()

    def close(self) -> None:
        self.closed = True

    def _lost(self) -> None:
        self.closed = True
        logging.getLogger("dg_lsp").info("the client closed the connection")
        # what stays buffered would fail again in Python's own flush at exit ("Exception ignored")
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass


def run(args: argparse.Namespace) -> int:
    _setup_logging(args)
    if args.threads is not None and args.threads < 1:
        raise SystemExit(f"dg-lsp: error: --threads must be >= 1, got {args.threads}")
    from dg_lsp.server import server

    server.overrides = _overrides(args)
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        if not port.isdigit():
            raise SystemExit(f"dg-lsp: error: --tcp wants HOST:PORT, got {args.tcp!r}")
        def listening(address: str) -> None:  # the one line a debugging user needs (port 0: which)
            print(f"dg-lsp: listening on {address}", file=sys.stderr, flush=True)

        return server.start_tcp(host or "127.0.0.1", int(port), listening)
    # the exit code LSP asks for: 0 after shutdown, else 1
    return server.start_io(sys.stdin.buffer, ClientPipe(sys.stdout.buffer))  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dg-lsp serve", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
