"""HumanEval-infilling pass@1 (greedy, one sample per task) with the real inference path.

    task (prompt, suffix) -> engine.infill -> completion -> prompt + completion + suffix + test
        -> a separate Python process with a timeout -> pass / fail

Programs are untrusted model output: they never run in this process.  Each runs
in its own session (killed with its children on timeout), in a fresh temporary
folder, in isolated mode, with memory and CPU-time limits.

Settings:

* ``unknown``: the length is not given: default canvas, `max_tokens` as an editor would ask;
* ``oracle``: the canvas is exactly as long as the canonical middle's canvas tokens
  (`canvas_target` of heal + middle), one canvas, no more tokens;
* ``editor``: as an editor asks on the line benchmarks, whose middle is whole lines: the cursor at the
  start of a blank line (the suffix begins with that line's end), length unknown, and on single lines
  the line drafts the server takes from the document itself (`runtime.retrieval.line_drafts`, no other
  file: the task is its whole workspace) and from the line library it ships (`runtime.library`, unless
  the evaluation is told `--library none`): the invoked trigger's first item, and the automatic
  one's wherever it asks for a line (an empty body with drafts too: `dg_lsp.requests.automatic_line`);
  on the other benchmarks the same as ``unknown``.

Line benchmarks mask whole lines, so their completions are cut at the first newline
(`single_line`) and given one back.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runtime.backends.embedded import EmbeddedBackend
from runtime.canvas import canvas_target
from runtime.context import build_context
from runtime.eval.heldout import task_request
from runtime.library import LineLibrary
from runtime.retrieval import line_drafts
from runtime.text import first_line
from runtime.types import InfillRequest

BENCHMARKS = {
    "single-line": "HumanEval-SingleLineInfilling.jsonl.gz",
    "multi-line": "HumanEval-MultiLineInfilling.jsonl.gz",
    "random-span": "HumanEval-RandomSpanInfilling.jsonl.gz",
    "random-span-light": "HumanEval-RandomSpanInfillingLight.jsonl.gz",
}
LINE_BENCHMARKS = ("single-line", "multi-line")
SETTINGS = ("unknown", "oracle", "editor")
DEFAULT_DATA = Path(__file__).resolve().parent / "data" / "human-eval-infilling"
"""The benchmark ships with dg-lsp (MIT, OpenAI; its LICENSE and README are beside it)."""
TIMEOUT_S = 3.0
MEMORY_BYTES = 2 * 2**30


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    suffix: str
    canonical_solution: str
    test: str
    entry_point: str


def data_dir() -> Path:
    return Path(os.environ.get("DG_LSP_HUMANEVAL", DEFAULT_DATA))


def load_problems(benchmark: str, data: Path | None = None) -> list[Problem]:
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r} (choose from {', '.join(BENCHMARKS)})")
    path = (data or data_dir()) / BENCHMARKS[benchmark]
    if not path.exists():
        raise FileNotFoundError(f"{path} not found (set DG_LSP_HUMANEVAL to the human-eval-infilling folder)")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [Problem(**json.loads(line)) for line in f if line.strip()]


def program(problem: Problem, completion: str) -> str:
    """What the upstream harness executes: prefix, completion, suffix, test, check(entry_point)."""
    return (
        problem.prompt + completion + problem.suffix + "\n" + problem.test + "\n"
        f"check({problem.entry_point})\n"
    )


def _limits() -> None:  # runs in the child before exec
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    cpu = int(TIMEOUT_S) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))


def run_program(source: str, timeout: float = TIMEOUT_S) -> bool:
    """True if `source` exits with status 0 within `timeout` seconds, in a separate process."""
    with tempfile.TemporaryDirectory(prefix="dg-lsp-humaneval-") as tmp:
        path = Path(tmp) / "program.py"
        path.write_text(source, encoding="utf-8")
        proc = subprocess.Popen(
            [sys.executable, "-I", "-B", str(path)],
            cwd=tmp,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: a timeout kills its children too
            preexec_fn=_limits if os.name == "posix" else None,  # the harness is single-threaded
            env={"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": "0"},
        )
        try:
            return proc.wait(timeout=timeout) == 0
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return False


def request(
    engine: EmbeddedBackend,
    problem: Problem,
    benchmark: str,
    setting: str,
    context_tokens: int,
    library: LineLibrary | None = None,
) -> InfillRequest:
    line = benchmark == "single-line"
    if setting == "unknown" or (setting == "editor" and benchmark not in LINE_BENCHMARKS):
        return task_request(problem.prompt, problem.suffix, single_line=line, context_tokens=context_tokens)
    if setting == "editor":
        return editor_request(problem, line, context_tokens, library)
    if setting != "oracle":
        raise ValueError(f"unknown setting {setting!r} (choose from {', '.join(SETTINGS)})")
    ctx = build_context(engine.tok, problem.prompt, problem.suffix, context_tokens)
    n = max(1, len(canvas_target(engine.tok, ctx.heal, problem.canonical_solution)))
    return InfillRequest(
        prefix=problem.prompt,
        suffix=problem.suffix,
        single_line=line,
        max_tokens=n,
        exact_length=True,
        context_tokens=context_tokens,
    )


def editor_request(
    problem: Problem, single_line: bool, context_tokens: int, library: LineLibrary | None = None
) -> InfillRequest:
    """The request an editor makes with the cursor at the start of a blank line where the middle goes
    (its completion then fills that line, so `program` needs nothing else); `library`: the line library
    the server ships (`runtime.library`), as the server adds it."""
    suffix = "\n" + problem.suffix
    req = task_request(problem.prompt, suffix, single_line=single_line, context_tokens=context_tokens)
    if not single_line:
        return req
    drafts = line_drafts(problem.prompt, suffix, library=library)
    return dataclasses.replace(req, drafts=tuple((d.text, d.score) for d in drafts))


def finish(text: str, benchmark: str) -> str:
    """Post-processing: line benchmarks mask whole lines, so a completion is whole lines."""
    if benchmark == "single-line":
        text = first_line(text)
    if benchmark in LINE_BENCHMARKS and not text.endswith("\n"):
        text += "\n"
    return text


def evaluate(
    completer: Callable[[Problem], str], problems: list[Problem], timeout: float = TIMEOUT_S
) -> dict[str, float]:
    """pass@1 of one greedy completion per task (the mean over tasks, as upstream)."""
    passed = sum(run_program(program(p, completer(p)), timeout) for p in problems)
    return {"n": len(problems), "pass@1": passed / max(1, len(problems))}
