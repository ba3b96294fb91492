"""A core-only install (`pip install -e .`, what docs/editors.md tells a user) has every module
`dg-lsp serve/infill/eval/train` imports at module level (issue 14 item 12): each third-party
module imported at the top of a file in dg_lsp/ or runtime/ is a core dependency; extras
(transformers, httpx for runtime/backends) are imported inside the functions that need them.
This is the static half; .ci/core_install (run by .ci/run) installs `pip install .` without extras in
a fresh venv and drives the server and the CLI from it."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OWN = {"dg_lsp", "runtime", "kernels"}
MODULE_OF = {"pygls": "pygls", "lsprotocol": "lsprotocol", "torch": "torch", "tokenizers": "tokenizers",
             "msgspec": "msgspec", "safetensors": "safetensors", "numpy": "numpy", "pathspec": "pathspec"}
"""Distribution -> the module it installs, for the core dependencies."""
WITH_PYGLS = {"cattrs", "attrs"}
"""Modules that come with a core dependency (pygls requires them)."""
EXTRAS = {"transformers", "httpx"}
"""The `backends` extra: only runtime/backends/ modules, which runtime.load imports on demand."""


def top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in tree.body:  # module level only: imports inside functions are lazy on purpose
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_core_dependencies_cover_every_module_level_import():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    core = {MODULE_OF[re.split(r"[=<>\[ ]", d, maxsplit=1)[0]] for d in deps} | WITH_PYGLS
    missing = {}
    for folder in ("dg_lsp", "runtime"):
        for path in (ROOT / folder).rglob("*.py"):
            for name in top_level_imports(path):
                if name in sys.stdlib_module_names or name in OWN or name in core or name == "__future__":
                    continue
                if name in EXTRAS and path.parent.name == "backends":
                    continue
                missing.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not missing, f"imported at module level but not a core dependency: {missing}"
