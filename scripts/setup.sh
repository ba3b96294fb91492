#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with the CPU build of torch and dg-lsp (editable).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.dg-lsp-installed
if [ ! -x .venv/bin/python ]; then
  echo "dg-lsp: creating .venv" >&2
  "$PY" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "dg-lsp: installing dependencies into .venv (first run only)" >&2
  .venv/bin/python -m pip install -q --upgrade pip >&2
  # the CPU build; for a GPU see "GPU install" in the README
  .venv/bin/python -m pip install -q torch==2.13.0 >&2
  .venv/bin/python -m pip install -q -e '.[dev]' >&2
  touch "$stamp"
fi
