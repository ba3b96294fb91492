"""Facts about this machine and this process, for reports and benchmarks (no torch import)."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence
from pathlib import Path


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, `q` in 0..100 (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return ""


def cpu_name() -> str:
    """The CPU's model name (Linux), else what the platform module says."""
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX-BF16 in the CPU flags (Linux); False where they cannot be read."""
    flags = _cpuinfo().split()
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def rss_bytes() -> int:
    """Resident memory of this process (Linux), 0 where it cannot be read."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
