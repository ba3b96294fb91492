"""The Triton kernels against their PyTorch reference and `torch.compile` of it, at the shapes they serve.

    python benchmarks/kernels_gpu.py [--repeats 100] [--no-compile] [--budget-s 240]

On a CUDA GPU, in bfloat16 (the GPU dtype of logits and K/V):

    beliefs           (C, V) logits -> proposal, confidence, entropy, token log-prob, with the
                      sampler's constraints (2-row ban table, weak-end rule): the embedded model
                      (V from models/dg-code-small/config.json), LLaDA (V = 126,464), DiffusionGemma
                      (V = 262,144, canvas 256)
    canvas attention  K canvases x H heads x C slots over one shared context of T positions: the
                      embedded model (its heads), LLaDA-8B (32 heads of 128), DiffusionGemma-like
                      (16 heads over 8 kv heads of 256, canvas 256)

Each time is the median of `--repeats` runs (triton.testing.do_bench, which flushes the L2 cache
between runs).  GB/s counts the bytes an op cannot avoid reading and writing once (the logits; the
context K/V once for all canvases, the queries, the canvases' K/V and the output), so GB/s over the
card's peak bandwidth says how near the memory floor each path runs.  Prints a markdown table.
`torch.compile` rows are dropped once `--budget-s` is spent, to stay under 5 minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kernels import beliefs, canvas_attention  # noqa: E402

BANDWIDTH = {"H100 PCIe": 2.0e12, "H100": 3.35e12, "H200": 4.8e12, "A100": 2.0e12, "L40S": 0.864e12}
"""Bytes per second (vendor peak); matched against the CUDA device name, longest key first."""

PAD = 0


def embedded_args() -> dict:
    return json.loads((ROOT / "models/dg-code-small/config.json").read_text())["model"]


def belief_shapes() -> list[tuple[str, int, int]]:
    """(name, C, V)."""
    m = embedded_args()
    return [
        ("embedded", m["canvas_len"], m["vocab_size"]),
        ("LLaDA", 32, 126_464),
        ("LLaDA", 256, 126_464),
        ("DiffusionGemma", 256, 262_144),
    ]


def attention_shapes() -> list[tuple[str, int, int, int, int, int, int]]:
    """(name, K canvases, H, Hkv, C, T, D)."""
    m = embedded_args()
    h, d = m["n_heads"], m["dim"] // m["n_heads"]
    c = m["canvas_len"]
    return [
        ("embedded", 1, h, h, c, 4096, d),
        ("embedded", 3, h, h, c, 32_768, d),
        ("LLaDA-8B", 3, 32, 32, 32, 4096, 128),
        ("DiffusionGemma", 1, 16, 8, 256, 8192, 256),
        ("DiffusionGemma", 3, 16, 8, 256, 8192, 256),
    ]


def bench(fn: Callable[[], object], repeats: int) -> float:
    """Median milliseconds of `fn`."""
    from triton.testing import do_bench

    return do_bench(fn, warmup=10, rep=repeats, return_mode="median")


def belief_rows(args, compiled: dict, started: float) -> list[list[str]]:
    rows = []
    for name, c, v in belief_shapes():
        g = torch.Generator(device="cuda").manual_seed(0)
        logits = (torch.randn(c, v, device="cuda", generator=g) * 4).to(torch.bfloat16)  # (C, V)
        table = beliefs.constraint_table(v, range(1, 8), first_slot_ids=range(100, 400), device="cuda")
        ban_rows = beliefs.constraint_rows(c, device="cuda")
        token = torch.randint(0, v, (c,), device="cuda", generator=g)
        kw = dict(token=token, pad_id=PAD)

        def kernel(logits=logits, table=table, ban_rows=ban_rows, kw=kw):
            return beliefs.triton_beliefs(logits, table, ban_rows, **kw)

        def eager(logits=logits, table=table, ban_rows=ban_rows, kw=kw):
            return beliefs.reference(logits, table, ban_rows, **kw)

        got, want = kernel(), eager()
        diff = (got.entropy - want.entropy).abs().max().item()
        times = [bench(kernel, args.repeats), bench(eager, args.repeats)]
        inputs = (logits, table, ban_rows)
        times.append(_compiled_time(compiled, "beliefs", beliefs.reference, inputs, kw, args, started))
        nbytes = c * v * logits.element_size()  # the logits, read once
        rows.append(_row("beliefs", f"{name} C={c} V={v}", times, nbytes, args.peak, f"entropy {diff:.1e}"))
    return rows


def attention_rows(args, compiled: dict, started: float) -> list[list[str]]:
    rows = []
    for name, n, h, hkv, c, t, d in attention_shapes():
        g = torch.Generator(device="cuda").manual_seed(0)

        def r(*shape, g=g):
            return torch.randn(*shape, device="cuda", generator=g, dtype=torch.bfloat16)

        q, ck, cv, k, v = r(n, h, c, d), r(hkv, t, d), r(hkv, t, d), r(n, hkv, c, d), r(n, hkv, c, d)

        def kernel(q=q, ck=ck, cv=cv, k=k, v=v):
            return canvas_attention.triton_canvas_attention(q, ck, cv, k, v)

        def eager(q=q, ck=ck, cv=cv, k=k, v=v):
            return canvas_attention.reference(q, ck, cv, k, v)

        diff = (kernel().float() - eager().float()).abs().max().item()
        times = [bench(kernel, args.repeats), bench(eager, args.repeats)]
        ref = canvas_attention.reference
        times.append(_compiled_time(compiled, "attention", ref, (q, ck, cv, k, v), {}, args, started))
        # the context K/V once, q and the output, each canvas's own K/V
        nbytes = q.element_size() * (2 * hkv * t * d + 2 * n * h * c * d + 2 * n * hkv * c * d)
        shape = f"{name} K={n} H={h}/{hkv} C={c} T={t} D={d}"
        rows.append(_row("canvas attention", shape, times, nbytes, args.peak, f"out {diff:.1e}"))
    return rows


def _compiled_time(compiled, key, fn, inputs, kw, args, started) -> float | None:
    if args.no_compile or time.perf_counter() - started > args.budget_s:
        return None
    if key not in compiled:
        compiled[key] = torch.compile(fn, dynamic=True)
    op = compiled[key]
    return bench(lambda: op(*inputs, **kw), args.repeats)


def _row(op: str, shape: str, times: list, nbytes: int, peak: float | None, diff: str) -> list[str]:
    kernel_ms, eager_ms, compiled_ms = times
    gbs = nbytes / (kernel_ms / 1e3) / 1e9
    peak = peak / 1e9 if peak else None
    cells = [op, shape, f"{nbytes / 1e6:.1f}", f"{kernel_ms:.4f}", f"{eager_ms:.4f}"]
    cells.append(f"{compiled_ms:.4f}" if compiled_ms is not None else "skipped")
    cells += [f"{eager_ms / kernel_ms:.1f}x", f"{gbs:.0f}", f"{100 * gbs / peak:.0f}%" if peak else "?", diff]
    return cells


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=100, help="ms of timed runs per path (do_bench's rep)")
    p.add_argument("--no-compile", action="store_true", help="leave out torch.compile of the references")
    p.add_argument("--budget-s", type=float, default=240.0, help="no torch.compile after this many seconds")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("kernels_gpu: no CUDA GPU here; this benchmark measures the Triton kernels on a GPU only "
              "(tests/kernels runs them on CPU under the interpreter)", file=sys.stderr)  # fmt: skip
        return 1
    try:
        import triton
    except ImportError:
        print("kernels_gpu: triton is not installed (pip install -e '.[dev]')", file=sys.stderr)
        return 1
    started = time.perf_counter()
    card = torch.cuda.get_device_name()
    by_length = sorted(BANDWIDTH.items(), key=lambda kv: -len(kv[0]))
    args.peak = next((bw for k, bw in by_length if k in card), None)
    compiled: dict = {}
    with torch.inference_mode():
        rows = belief_rows(args, compiled, started) + attention_rows(args, compiled, started)
    peak = f"{args.peak / 1e12:.2f} TB/s peak" if args.peak else "peak bandwidth unknown"
    took = time.perf_counter() - started
    print(f"card: {card} ({peak}); bfloat16; median of do_bench over {args.repeats} ms; "
          f"torch {torch.__version__}, triton {triton.__version__}; {took:.0f} s in all\n")
    head = ["op", "shape", "MB moved", "kernel ms", "reference ms", "compiled ms", "speed-up", "kernel GB/s",
            "of peak", "max |kernel - reference|"]  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
