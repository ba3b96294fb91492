"""What the temperature does to DiffusionGemma's parallelism: the old mapping against ours.

    python benchmarks/dg_temperature.py [--canvas 256] [--steps 48] [--init 0.2]

The model is transformers' tiny DiffusionGemma test config (vocab 99, hidden 32, 2 layers, 4
experts) with a 256-token canvas and random weights at initializer_range 0.2 (at transformers'
0.02 the logits are so flat that every schedule accepts one slot per step).  One prompt, one
canvas, seeded alike, so step 1 sees the same noise canvas in every row.  A random model says
nothing about quality; this shows only how the temperature moves the entropy bound.

    old   generate(t_max=T, t_min=T/2): what runtime/backends/diffusiongemma.py did before
    ours  DiffusionGemmaBackend.infill(temperature=T): the checkpoint schedule (0.8 -> 0.4), the
          accepted tokens drawn at T (argmax at 0)

Columns: slots accepted at step 1 (of the canvas), denoising steps for the canvas, wall ms.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "backends"))


def build(canvas: int, init: float, steps: int):
    import tempfile

    from tiny_folders import save_char_tokenizer, tiny_diffusiongemma_config
    from transformers import AutoTokenizer, DiffusionGemmaForBlockDiffusion

    from runtime.backends.diffusiongemma import DiffusionGemmaBackend

    config = tiny_diffusiongemma_config()
    config.canvas_length = canvas
    config.text_config.initializer_range = config.initializer_range = init
    torch.manual_seed(0)
    model = DiffusionGemmaForBlockDiffusion(config).eval()
    folder = Path(tempfile.mkdtemp(prefix="dg-temperature-"))
    save_char_tokenizer(folder)
    return DiffusionGemmaBackend(model, AutoTokenizer.from_pretrained(folder), max_denoising_steps=steps)


class Recorder:
    """Slots accepted at each step, from transformers' own sampler."""

    def __init__(self) -> None:
        from transformers.models.diffusion_gemma.generation_diffusion_gemma import EntropyBoundSampler

        self.accepted: list[int] = []
        original = EntropyBoundSampler.accept_canvas

        def spy(sampler, current, proposal, logits, step):
            out = original(sampler, current, proposal, logits, step)
            self.accepted.append(int(sampler.accepted_token_mask.sum()))
            return out

        EntropyBoundSampler.accept_canvas = spy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--canvas", type=int, default=256)
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--init", type=float, default=0.2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from runtime.backends.diffusiongemma import ARGMAX_NOISE_SEED
    from runtime.types import InfillRequest

    backend = build(args.canvas, args.init, args.steps)
    rec = Recorder()
    req = InfillRequest(prefix="def add(a, b):\n    return ", suffix="\n", max_tokens=args.canvas)
    ids = torch.tensor([backend.prompt_ids(req)])
    print("| T | old: step-1 slots | old: steps | old ms | ours: step-1 slots | ours: steps | ours ms |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for t in (0.0, 0.05, 0.4, 0.8, 1.6):
        row = [f"{t:g}"]
        if t > 0:
            rec.accepted.clear()
            torch.manual_seed(ARGMAX_NOISE_SEED)
            start = time.perf_counter()
            with torch.inference_mode():
                backend.model.generate(ids, max_new_tokens=args.canvas, max_denoising_steps=args.steps,
                                       t_max=t, t_min=t / 2)  # fmt: skip
            ms = (time.perf_counter() - start) * 1000
            row += [f"{rec.accepted[0]}/{args.canvas}", str(len(rec.accepted)), f"{ms:.0f}"]
        else:
            row += ["(library: the checkpoint's sampling)", "", ""]
        rec.accepted.clear()
        start = time.perf_counter()
        backend.infill(InfillRequest(prefix=req.prefix, suffix=req.suffix, max_tokens=args.canvas,
                                     temperature=t))  # fmt: skip
        ms = (time.perf_counter() - start) * 1000
        row += [f"{rec.accepted[0]}/{args.canvas}", str(len(rec.accepted)), f"{ms:.0f}"]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
