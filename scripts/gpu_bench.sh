#!/usr/bin/env bash
# Both GPU benchmarks and the kernel tests in one command, for a machine with a CUDA GPU:
#   benchmarks/kernels_gpu.py   Triton kernels vs reference vs torch.compile (a markdown table)
#   benchmarks/backends_gpu.py  our DiffusionGemma backend vs transformers' generate, per step
#   tests/kernels               every kernel test, compiled for the GPU, real shapes included
# Each output goes to stdout and, when $OUT is set, to a file under it.  Every step runs even if
# one before it failed; the exit status is non-zero if any failed.
# Python: $PYTHON, else .venv/bin/python (with a CUDA build of torch, triton and the dev extra).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if [ -n "${OUT:-}" ]; then mkdir -p "$OUT"; fi
failed=0

step() {  # step NAME COMMAND...: run it, tee its output to $OUT/NAME.txt when $OUT is set
  local name=$1
  shift
  echo "== $name: $*" >&2
  if [ -n "${OUT:-}" ]; then
    "$@" 2>&1 | tee "$OUT/$name.txt"
  else
    "$@"
  fi
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    echo "== $name failed (exit $rc)" >&2
    failed=1
  fi
}

"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
  echo "gpu_bench: no CUDA GPU visible to $PY; nothing to measure" >&2
  exit 1
}
step kernels_gpu "$PY" benchmarks/kernels_gpu.py
step backends_gpu "$PY" benchmarks/backends_gpu.py
step kernel_tests "$PY" -m pytest tests/kernels -q -rs
exit $failed
