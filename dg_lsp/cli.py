"""`dg-lsp` command line: serve, infill, batch, eval, train.

Errors the user can fix (bad file, position, JSON line, policy, model folder)
are one line on stderr and exit code 2, never a traceback.  Nothing but
results goes to stdout.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec

from dg_lsp import serve
from runtime.policy_spec import POLICY_NAMES
from runtime.types import (
    DEVICE_MAPS,
    DTYPES,
    QUANTIZATIONS,
    REMOTE_PROMPTS,
    InfillRequest,
    LargeModelOptions,
    RuntimeError_,
)

EXIT_USAGE = 2


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=getattr(logging, (getattr(args, "log_level", None) or "WARNING").upper(), logging.WARNING),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except (UserError, RuntimeError_) as e:  # RuntimeError_: bad model, request, remote server
        print(f"dg-lsp: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("dg-lsp: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dg-lsp", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("serve", help="run the language server (stdio, or --tcp for debugging)")
    serve.add_arguments(s)
    s.set_defaults(func=serve.run)

    s = sub.add_parser("infill", help="print the infill at FILE:LINE:COL (1-based line and column)")
    s.add_argument("location", metavar="FILE:LINE:COL")
    _model_options(s)
    s.add_argument("--stats", action="store_true", help="print statistics to stderr")
    s.set_defaults(func=cmd_infill)

    s = sub.add_parser("batch", help="infill every task of a JSON Lines file")
    s.add_argument("--in", dest="inp", required=True, metavar="TASKS.jsonl",
                   help='one {"id", "prefix", "suffix"} object per line ("-" for stdin)')
    s.add_argument("--out", required=True, metavar="RESULTS.jsonl",
                   help='one {"id", "text", "forwards", "tokens", "ms"} per task ("-" for stdout)')
    _model_options(s)
    s.set_defaults(func=cmd_batch)

    for name, module, what in (
        ("eval", "runtime.eval.__main__", "HumanEval-infilling and held-out evaluation"),
        ("train", "runtime.train.__main__", "build the corpus, tokenizer and train the embedded model"),
    ):
        s = sub.add_parser(name, help=what, add_help=False)
        s.add_argument("rest", nargs=argparse.REMAINDER)
        s.set_defaults(func=lambda a, module=module: _delegate(module, a.rest))
    return p


def _model_options(s: argparse.ArgumentParser) -> None:
    s.add_argument("--model", default="default",
                   help="'default' (the shipped model), 'tiny' (random weights), a model folder (embedded, "
                        "DiffusionGemma or LLaDA/Dream-style) or http://HOST:PORT/v1 (vLLM/SGLang server)")
    s.add_argument("--remote-model", default=None, metavar="NAME",
                   help="model name on the --model http(s) server (default: its only model)")
    s.add_argument("--trust-remote-code", action="store_true",
                   help="let a masked model folder run its own modeling code (only folders you trust)")
    s.add_argument("--policy", default="adaptive",
                   help=f"one of: {', '.join(POLICY_NAMES)}; options as NAME:KEY=VALUE,... "
                        "(threshold:tau=0.8)")
    s.add_argument("--max-tokens", type=int, default=64, help="upper bound on generated tokens")
    s.add_argument("--deadline-ms", type=float, default=None, help="anytime deadline (adaptive policy)")
    s.add_argument("--context-tokens", type=int, default=1024, help="token budget for prefix+suffix")
    s.add_argument("--single-line", action="store_true", help="stop at the end of the line")
    s.add_argument("--temperature", type=float, default=0.0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu")
    s.add_argument("--threads", type=int, default=None, help="torch threads (default: cores/2, >= 1)")
    s.add_argument("--dtype", choices=DTYPES, default="auto",
                   help="matrix-product number format (auto: bfloat16 where the hardware has it natively)")
    s.add_argument("--no-kernels", dest="kernels", action="store_false",
                   help="run the PyTorch reference instead of the Triton kernels on a GPU (debugging)")
    s.add_argument("--workspace", type=Path, default=None, metavar="DIR",
                   help="index DIR and put line drafts from it on the canvas (with --single-line), and "
                        "context snippets from it in the prompt of a model that declares the layout")
    s.add_argument("--line-library", default="default", metavar="FILE",
                   help="line library of the --workspace drafts: 'default' (shipped), a file, or '' for none")
    s.add_argument("--snippet-tokens", type=int, default=512, metavar="N",
                   help="token budget for the --workspace context snippets (0: none; the model's cap wins)")
    _large_model_options(s)
    s.add_argument("--log-level", default="WARNING")


def _large_model_options(s: argparse.ArgumentParser) -> None:
    """DiffusionGemma and remote servers (docs/backends.md); the settings of the same names."""
    g = s.add_argument_group("large models (DiffusionGemma folders, remote servers)")
    g.add_argument("--max-denoising-steps", type=int, default=None, metavar="N",
                   help="most denoising steps per canvas (default: the checkpoint's)")
    g.add_argument("--vision", action="store_true", help="also load DiffusionGemma's vision tower")
    g.add_argument("--device-map", choices=DEVICE_MAPS, default=None,
                   help="let accelerate place the model over the GPUs and the CPU")
    g.add_argument("--max-memory", action="append", default=[], metavar="DEVICE=SIZE",
                   help="with --device-map: e.g. 0=20GiB or cpu=48GiB (repeatable)")
    g.add_argument("--quantization", choices=QUANTIZATIONS, default=None,
                   help="quantize a bfloat16 DiffusionGemma folder while loading (CUDA)")
    g.add_argument("--remote-prompt", choices=REMOTE_PROMPTS, default="chat",
                   help="chat: /chat/completions with the chat layout; plain: /completions (base models)")


def _options(args: argparse.Namespace) -> LargeModelOptions:
    memory = []
    for item in args.max_memory:
        device, sep, size = item.partition("=")
        if not sep or not device or not size:
            raise UserError(f"--max-memory {item!r} is not DEVICE=SIZE (for example 0=20GiB)")
        memory.append((device, size))
    return LargeModelOptions(
        vision=args.vision, device_map=args.device_map, max_memory=tuple(memory),
        quantization=args.quantization, max_denoising_steps=args.max_denoising_steps,
        remote_prompt=args.remote_prompt,
    )


def _check_options(args: argparse.Namespace) -> None:
    """Before the model loads: a request with these options raises `BadRequest` naming a bad one."""
    _request(args, "", "")


def _backend(args: argparse.Namespace):
    from runtime.load import load_backend

    return load_backend(args.model, device=args.device, threads=args.threads, dtype=args.dtype,
                        remote_model=args.remote_model, allow_remote_code=args.trust_remote_code,
                        kernels=args.kernels, options=_options(args))


def _workspace(args: argparse.Namespace):
    """The --workspace index (None without the option), built with progress on stderr."""
    if args.workspace is None:
        return None
    if not args.workspace.is_dir():
        raise UserError(f"--workspace {args.workspace} is not a folder")
    from runtime.workspace import WorkspaceIndex

    index = WorkspaceIndex()
    index.add_folder(args.workspace.resolve(), progress=lambda n, path: print(
        f"dg-lsp: indexing {args.workspace}: {n} files", file=sys.stderr))  # fmt: skip
    st = index.stats
    print(f"dg-lsp: indexed {st.documents} files ({st.bytes / 2**20:.1f} MB) in {st.build_ms / 1000:.1f} s; "
          f"left out: {st.skipped or 'none'}", file=sys.stderr)  # fmt: skip
    return index


def _drafts(args: argparse.Namespace, index, prefix: str, suffix: str, document: Path | None):
    """Line drafts for a single-line request (the document's own entry left out: its text is
    the prefix and suffix, never the file on disk)."""
    if index is None or not args.single_line:
        return ()
    from runtime import library
    from runtime.retrieval import line_drafts

    try:
        lib = library.from_setting(args.line_library)
    except library.LibraryError as e:
        raise UserError(f"--line-library: {e}") from None
    key = str(document.resolve()) if document is not None else None
    found = line_drafts(prefix, suffix, index, document=key, library=lib)
    return tuple((d.text, d.score) for d in found)


def _snippets(args: argparse.Namespace, backend, index, prefix: str, suffix: str, document: Path | None):
    """Context snippets from the --workspace index, for a model whose config.json declares the
    layout (`layout.snippet_tokens`); paths relative to DIR, as the server sends them."""
    if index is None or not args.snippet_tokens or not backend.snippet_tokens:
        return ()
    from runtime.snippets import workspace_snippets

    key = str(document.resolve()) if document is not None else None
    found = workspace_snippets(prefix, suffix, index, document=key, roots=[str(args.workspace.resolve())])
    return tuple((s.path, s.text) for s in found)


def _request(args: argparse.Namespace, prefix: str, suffix: str, drafts=(), snippets=()) -> InfillRequest:
    return InfillRequest(
        prefix=prefix,
        suffix=suffix,
        max_tokens=args.max_tokens,
        policy=args.policy,
        deadline_ms=args.deadline_ms,
        temperature=args.temperature,
        seed=args.seed,
        context_tokens=args.context_tokens,
        single_line=args.single_line,
        drafts=drafts,
        snippets=snippets,
        snippet_tokens=args.snippet_tokens,
    )


# ----------------------------------------------------------------------------- infill
def parse_location(location: str) -> tuple[Path, int, int]:
    path, sep1, rest = location.rpartition(":")
    path, sep2, line = path.rpartition(":")
    if not (sep1 and sep2 and path):
        raise UserError(f"location {location!r} is not FILE:LINE:COL")
    try:
        return Path(path), int(line), int(rest)
    except ValueError:
        raise UserError(f"location {location!r}: LINE and COL must be integers") from None


def split_at(text: str, line: int, col: int, where: str) -> tuple[str, str]:
    """Prefix and suffix at 1-based `line` and `col` (col counts characters; col = len+1 is the end)."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        raise UserError(f"{where}: line {line} is out of range (the file has {len(lines)} lines)")
    length = len(lines[line - 1].rstrip("\r"))
    if not 1 <= col <= length + 1:
        raise UserError(f"{where}: column {col} is out of range (line {line} has {length} characters)")
    offset = sum(len(x) + 1 for x in lines[: line - 1]) + col - 1
    return text[:offset], text[offset:]


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"file {path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a folder, not a file") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text") from None


def cmd_infill(args: argparse.Namespace) -> int:
    _check_options(args)
    path, line, col = parse_location(args.location)
    prefix, suffix = split_at(read_text(path), line, col, str(path))
    index = _workspace(args)
    backend = _backend(args)
    drafts = _drafts(args, index, prefix, suffix, path)
    snippets = _snippets(args, backend, index, prefix, suffix, path)
    result = backend.infill(_request(args, prefix, suffix, drafts, snippets))
    sys.stdout.write(result.text)
    if not result.text.endswith("\n"):
        sys.stdout.write("\n")
    if args.stats:
        s = result.stats
        print(
            f"model={backend.description} policy={args.policy} forwards={s.forwards} tokens={s.tokens} "
            f"tokens/forward={s.tokens_per_forward:.2f} remasked={s.remasked} drafts={s.drafts_tried} "
            f"accepted={s.drafts_accepted} context={s.context_tokens} snippet_tokens={s.snippet_tokens} "
            f"snippets={','.join(f'{p}:{n}' for p, n in s.snippets) or 'none'} ms={s.ms:.1f}",
            file=sys.stderr,
        )
    return 0


# ------------------------------------------------------------------------------ batch
class Task(msgspec.Struct):
    id: str | int
    prefix: str
    suffix: str
    path: str | None = None
    """With --workspace: the task's own document, relative to the workspace (its file on disk is
    never read: the prefix and suffix stand for it, as an open buffer would)."""


def read_tasks(lines: Iterator[str]) -> Iterator[tuple[int, Task | str]]:
    """(line number, task) for good lines, (line number, problem) for malformed ones."""
    decoder = msgspec.json.Decoder(Task)
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            yield n, decoder.decode(raw)
        except msgspec.DecodeError as e:
            yield n, str(e)


def cmd_batch(args: argparse.Namespace) -> int:
    _check_options(args)
    inp = sys.stdin if args.inp == "-" else _open_in(Path(args.inp))
    index = _workspace(args)
    backend = _backend(args)
    out = sys.stdout if args.out == "-" else _open_out(Path(args.out))
    encoder = msgspec.json.Encoder()
    done = skipped = 0
    last_report = started = time.monotonic()
    try:
        for n, task in read_tasks(iter(inp)):
            if isinstance(task, str):
                print(f"dg-lsp: {args.inp}:{n}: skipped malformed task: {task}", file=sys.stderr)
                skipped += 1
                continue
            t0 = time.perf_counter()
            document = args.workspace / task.path if index is not None and task.path else None
            drafts = _drafts(args, index, task.prefix, task.suffix, document)
            snippets = _snippets(args, backend, index, task.prefix, task.suffix, document)
            retrieval_ms = (time.perf_counter() - t0) * 1000  # part of the latency a user sees
            r = backend.infill(_request(args, task.prefix, task.suffix, drafts, snippets))
            row = {"id": task.id, "text": r.text, "forwards": r.stats.forwards,
                   "tokens": r.stats.tokens, "ms": round(r.stats.ms + retrieval_ms, 3)}
            if index is not None:
                row.update(drafts_tried=r.stats.drafts_tried, drafts_accepted=r.stats.drafts_accepted,
                           snippet_tokens=r.stats.snippet_tokens)
            out.write(encoder.encode(row).decode() + "\n")
            out.flush()
            done += 1
            if time.monotonic() - last_report > 5:
                last_report = time.monotonic()
                rate = done / (last_report - started)
                print(f"dg-lsp: batch: {done} done, {skipped} skipped ({rate:.1f} tasks/s)", file=sys.stderr)
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"dg-lsp: batch: {done} done, {skipped} skipped", file=sys.stderr)
    return EXIT_USAGE if skipped else 0


def _open_in(path: Path):
    try:
        return path.open(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise UserError(f"input file {path} does not exist") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None


def _open_out(path: Path):
    try:
        return path.open("w", encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None


# ------------------------------------------------------------------- eval, train, serve
def _delegate(module: str, argv: list[str]) -> int:
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise UserError(f"{module} is not available: {e}") from None
    return int(mod.main(argv) or 0)


if __name__ == "__main__":
    sys.exit(main())
