"""`jit`: `triton.jit` applied on a kernel's first launch, so importing `kernels` never imports triton.

A kernel module declares `tl = None` and writes its kernels as usual, decorated with `@jit` instead of
`@triton.jit` (with `from __future__ import annotations`, `BLOCK: tl.constexpr` stays a string, which
Triton reads the same way).  The first launch imports triton, binds the module's `tl` to
`triton.language` and hands the function to `triton.jit` (which honours TRITON_INTERPRET=1 then).
Kernels call no other jitted helper: Triton resolves those by global name at compile time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


@functools.cache
def triton_available() -> bool:
    """Whether triton imports here (imports it: call only on the way to a kernel)."""
    try:
        import triton.language  # noqa: F401
    except Exception:  # ImportError, or a broken install that fails on import
        return False
    return True


class jit:  # lower case: it stands for triton.jit
    def __init__(self, fn: Callable[..., None]) -> None:
        self.fn = fn
        self._jitted: Any = None
        functools.update_wrapper(self, fn)

    def jitted(self) -> Any:
        """The `triton.jit` function (an interpreted one under TRITON_INTERPRET=1)."""
        if self._jitted is None:
            import triton
            import triton.language

            self.fn.__globals__["tl"] = triton.language
            self._jitted = triton.jit(self.fn)
        return self._jitted

    def __getitem__(self, grid: Any) -> Callable[..., Any]:
        return self.jitted()[grid]
