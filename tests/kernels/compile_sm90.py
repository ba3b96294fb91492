"""Compile every kernel variant for an H100/H200 (sm_90) down to a cubin, with no GPU: Triton's
interpreter runs Python, so only this catches code the GPU compiler rejects.  Run without
TRITON_INTERPRET (it changes what triton.language does), as `test_compile.py` does:

    python tests/kernels/compile_sm90.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kernels import beliefs, canvas_attention


def compile_sm90(kernel, signature: dict[str, str], constexprs: dict[str, object], num_warps: int = 4):
    """`signature` and `constexprs` in the kernel's parameter order: the compiler matches by position."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    kernel.jitted()  # binds the module's `tl`
    fn = triton.runtime.jit.JITFunction(kernel.fn)
    signature = {**signature, **dict.fromkeys(constexprs, "constexpr")}
    src = ASTSource(fn=fn, signature=signature, constexprs=constexprs)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": num_warps})


def variants():
    """(name, kernel, signature, constexprs, num_warps) for the feature sets the launchers use."""
    sig = dict(
        logits_ptr="*bf16", stride_logits="i32", ban_ptr="*u8", stride_ban="i32", ban_rows_ptr="*i32",
        token_ptr="*i64", uniform_ptr="*fp32", proposal_ptr="*i64", confidence_ptr="*fp32",
        entropy_ptr="*fp32", token_logp_ptr="*fp32", V="i32", temperature="fp32", pad_id="i32",
        end_probability="fp32",
    )  # fmt: skip
    for sample in (False, True):
        flags = dict(HAS_BAN=True, HAS_TOKEN=True, SAMPLE=sample, END_RULE=not sample, BLOCK_V=4096)
        yield f"beliefs sample={sample}", beliefs.beliefs_kernel, sig, flags, 8
    # float32 (IEEE products) compiles too, in 5 s on 2 cores: left out to keep the suite short
    for dtype, d in (("bf16", 64), ("bf16", 256)):
        tiles = dict(
            G=2, D=d, BLOCK_M=64 if d <= 128 else 32, BLOCK_T=64 if d <= 128 else 32, BLOCK_D=d,
            PRECISION="ieee" if dtype == "fp32" else "tf32", DOT_FP32=False,
        )  # fmt: skip
        q = dict(q_ptr=f"*{dtype}", sq_k="i32", sq_h="i32", sq_c="i32")
        context = dict(
            **q, ck_ptr=f"*{dtype}", sck_h="i32", sck_t="i32", cv_ptr=f"*{dtype}", scv_h="i32", scv_t="i32",
            o_ptr="*fp32", lse_ptr="*fp32", K="i32", H="i32", C="i32", T="i32", split_len="i32",
            qk_scale="fp32",
        )  # fmt: skip
        yield f"context partials {dtype} D={d}", canvas_attention.context_partials_kernel, context, tiles, 4
        merge = dict(
            **q, k_ptr=f"*{dtype}", sk_k="i32", sk_h="i32", sk_c="i32",
            v_ptr=f"*{dtype}", sv_k="i32", sv_h="i32", sv_c="i32", o_ptr="*fp32", lse_ptr="*fp32",
            out_ptr=f"*{dtype}", so_k="i32", so_h="i32", so_c="i32", K="i32", H="i32", C="i32", S="i32",
            qk_scale="fp32",
        )  # fmt: skip
        if (dtype, d) == ("bf16", 64):  # the merge kernel's tiles are the context kernel's: one variant
            yield f"canvas merge {dtype} D={d}", canvas_attention.canvas_merge_kernel, merge, tiles, 4


def main() -> int:
    if os.environ.get("TRITON_INTERPRET") == "1":
        print("unset TRITON_INTERPRET: it changes what triton.language does", file=sys.stderr)
        return 2
    for name, kernel, sig, flags, warps in variants():
        t0 = time.perf_counter()
        compiled = compile_sm90(kernel, sig, flags, warps)
        took, size = time.perf_counter() - t0, len(compiled.asm["cubin"])
        print(f"{name}: cubin {size} B, shared memory {compiled.metadata.shared} B, {took:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
