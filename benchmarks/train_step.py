"""One training step of the shipped model's shape on this CPU: float32 against bfloat16 autocast.

    python benchmarks/train_step.py [--threads 1] [--repeats 2]

Forward (the head on the last 32 rows, as the trainer runs it on the canvas) and backward of the
4-layer, dim-256 model on a batch of 16 x 352 tokens, CPU seconds of the fastest repeat.  Where the
CPU has no native bfloat16 (`runtime.measure.cpu_has_native_bf16`), autocast emulates it and the
trainer should run with `--no-bf16`.  Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402 - after the path set-up

from runtime.measure import cpu_has_native_bf16, cpu_name  # noqa: E402
from runtime.model import PRESETS, InfillTransformer, ModelArgs  # noqa: E402


def step_seconds(model: InfillTransformer, bf16: bool) -> tuple[float, float]:
    ids = torch.randint(5, 8000, (16, 352))  # (B, L)
    valid = torch.ones(16, 352, dtype=torch.bool)
    t0 = time.process_time()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        hidden = model.hidden_train(ids, 320, valid)
        logits = model.head(model.norm(hidden[:, -32:]))
    loss = logits.float().logsumexp(-1).mean()
    t1 = time.process_time()
    loss.backward()
    return t1 - t0, time.process_time() - t1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    args = ModelArgs(**{**PRESETS["small"].to_dict(), "n_layers": 4, "vocab_size": 8192})
    model = InfillTransformer(args)
    native = cpu_has_native_bf16()
    print(f"# Training step ({cpu_name()}, torch threads {a.threads}, native bfloat16: {native})\n")
    print("| matrix products | forward s | backward s |")
    print("| --- | ---: | ---: |")
    for bf16 in (False, True):
        fwd, bwd = min(step_seconds(model, bf16) for _ in range(a.repeats))
        print(f"| {'bfloat16 autocast' if bf16 else 'float32'} | {fwd:.2f} | {bwd:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
