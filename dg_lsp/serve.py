"""`dg-lsp serve`: start the language server on stdio (or TCP for debugging).

`dg_lsp.cli` calls `add_arguments` and `run`.  Logs go to stderr or
`--log-file`; stdout carries the protocol and nothing else.  Model options
given here win over the client's settings.
"""

from __future__ import annotations

import argparse
import logging
import sys

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
    parser.add_argument("--log-file", help="write logs here instead of stderr")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)")


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in ("model", "device", "threads", "dtype", "policy"):
        value = getattr(args, name, None)
        if value is not None:
            out[name] = value
    return out


def _setup_logging(args: argparse.Namespace) -> None:
    level = getattr(logging, str(args.log_level).upper(), None)
    if not isinstance(level, int):
        raise SystemExit(f"dg-lsp: error: unknown --log-level {args.log_level!r}")
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    if args.log_file:
        logging.basicConfig(level=level, filename=args.log_file, format=fmt, force=True)
    else:
        logging.basicConfig(level=level, stream=sys.stderr, format=fmt, force=True)
    # pygls logs every message at DEBUG/INFO; keep our own level for dg_lsp only
    logging.getLogger("pygls").setLevel(max(level, logging.WARNING))


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
        server.start_tcp(host or "127.0.0.1", int(port))
        return 0
    return server.start_io()  # the exit code LSP asks for: 0 after shutdown, else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dg-lsp serve", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
