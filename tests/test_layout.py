"""The architecture rules, checked: dependencies point one way, the server starts without torch,
functions stay short.  (README, "Layout".)"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_FUNCTION_LINES = 50
LONG_OK = "# long:"
"""A function may be longer with a comment on its first line saying why."""


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


@pytest.mark.parametrize("path", _modules("runtime"), ids=lambda p: str(p.relative_to(ROOT)))
def test_runtime_never_imports_the_lsp_side(path):
    bad = {m for m in _imports(path) if m.split(".")[0] in {"dg_lsp", "pygls", "lsprotocol"}}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _modules("dg_lsp"), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_tensor_crosses_into_the_lsp_side(path):
    bad = {m for m in _imports(path) if m.split(".")[0] in {"torch", "triton", "kernels"}}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_starting_the_server_imports_no_torch():
    """`import dg_lsp.server` and the CLI's parser load no torch: it comes with the first model."""
    code = (
        "import sys, dg_lsp.server, dg_lsp.cli; dg_lsp.cli.build_parser(); "
        "from dg_lsp.settings import parse_settings; parse_settings({'policy': 'llada:steps=4'}); "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _functions(path: Path):
    source = path.read_text().splitlines()
    for node in ast.walk(ast.parse("\n".join(source))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.lineno - 1
            yield node.name, node.end_lineno - node.lineno + 1, source[first]


@pytest.mark.parametrize("package", ["dg_lsp", "runtime"])
def test_functions_are_short(package):
    long = [
        f"{p.relative_to(ROOT)}:{name} ({n} lines)"
        for p in _modules(package)
        for name, n, head in _functions(p)
        if n > MAX_FUNCTION_LINES and LONG_OK not in head
    ]
    assert not long, f"over {MAX_FUNCTION_LINES} lines without a '{LONG_OK} why' comment: {long}"


def test_one_request_enters_each_file_once_in_path_order():
    """Follow one request from the backend's `infill` to the model's forward: on every call stack
    (the project's own frames, nested calls inside one file collapsed) no file appears twice, and
    the stack that reaches the canvas forward runs through the files in the order of the path."""
    from runtime.load import load_embedded
    from runtime.types import InfillRequest

    backend = load_embedded("tiny", threads=1)
    root = str(ROOT) + "/"
    stacks: set[tuple[str, ...]] = set()
    current: list[str] = []

    def profile(frame, event, arg):
        name = frame.f_code.co_filename
        if not name.startswith(root) or "/.venv/" in name:
            return
        if event == "call":
            current.append(name[len(root) :])
            stacks.add(tuple(current))
        elif event == "return" and current:
            current.pop()

    sys.setprofile(profile)
    try:
        backend.infill(InfillRequest(prefix="def f(x):\n    ", suffix="\n", single_line=True, max_tokens=20))
    finally:
        sys.setprofile(None)
    collapsed = {tuple(f for i, f in enumerate(s) if i == 0 or s[i - 1] != f) for s in stacks}
    twice = [s for s in collapsed if len(s) != len(set(s))]
    assert not twice, twice[:3]
    to_forward = [s for s in collapsed if "runtime/sampler.py" in s and s[-1] == "runtime/model.py"]
    assert ("runtime/backends/base.py", "runtime/backends/embedded.py", "runtime/blocks.py",
            "runtime/sampler.py", "runtime/cache.py", "runtime/model.py") in to_forward
