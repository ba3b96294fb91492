"""Per denoising step: our DiffusionGemma backend vs transformers' own `generate`, and the bandwidth floor.

    python benchmarks/backends_gpu.py [--layers 4] [--prompt 1024] [--steps 16] [--repeats 5]

On a GPU: a DiffusionGemma-shaped model (the 26B-A4B widths, approximately: hidden 2816, 16 heads,
128 experts top-8, vocabulary 262144) with random bfloat16 weights and only `--layers` layers.
Per-step time is (t(N steps) - t(1 step)) / (N - 1), which cancels the prompt encode and the
fixed per-call costs; adaptive stopping is disabled so every call runs exactly N steps.

    theirs  model.generate(prompt, cache=None ...)             transformers alone
    ours    DiffusionGemmaBackend.infill (prompt layout, prompt cache, step hooks, decode)
    floor   bytes one step must read (all layer weights: 256 canvas tokens x top-8 touch every
            expert; the tied embedding twice: head and self-conditioning; the prompt K/V)
            / the card's memory bandwidth

Our target: ours <= 1.10 x theirs.  On CPU it runs transformers' tiny test config instead and
says so: that is a smoke test of this script, not the GPU measurement.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.backends.diffusiongemma import DiffusionGemmaBackend
from runtime.types import InfillRequest

BANDWIDTH = {"H100 PCIe": 2.0e12, "H100": 3.35e12, "H200": 4.8e12, "A100": 2.0e12, "L40S": 0.864e12}
"""Bytes per second (vendor peak); matched against the CUDA device name, longest key first."""


def shaped_config(layers: int, gpu: bool):
    from transformers import DiffusionGemmaConfig

    if not gpu:  # transformers' own tiny test config
        text = {
            "vocab_size": 99,
            "hidden_size": 32,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "intermediate_size": 32,
            "moe_intermediate_size": 8,
            "num_experts": 4,
            "top_k_experts": 2,
            "num_hidden_layers": 2,
            "layer_types": ["sliding_attention", "full_attention"],
            "per_layer_config": {1: {"head_dim": 16, "num_key_value_heads": 2}},
            "pad_token_id": 0,
            "bos_token_id": 1,
            "eos_token_id": 2,
        }
        return DiffusionGemmaConfig(text_config=text, vision_config=None, canvas_length=16)
    types = ["sliding_attention"] * (layers - 1) + ["full_attention"]
    text = {
        "vocab_size": 262_144,
        "hidden_size": 2816,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 256,
        "intermediate_size": 2112,
        "moe_intermediate_size": 704,
        "num_experts": 128,
        "top_k_experts": 8,
        "num_hidden_layers": layers,
        "layer_types": types,
        "sliding_window": 1024,
        "per_layer_config": {layers - 1: {"head_dim": 512, "num_key_value_heads": 2}},
        "max_position_embeddings": 8192,
        "pad_token_id": 0,
        "bos_token_id": 2,
        "eos_token_id": 1,
    }
    return DiffusionGemmaConfig(text_config=text, vision_config=None, canvas_length=256)


class _Tok:
    """Token ids stand for themselves: the benchmark measures steps, not text."""

    bos_token_id = 2
    eos_token_id = 1
    chat_template = None

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [3 + (ord(c) % (self.vocab - 3)) for c in text]

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return "".join(chr(32 + (i % 90)) for i in ids)


def timed(fn, sync) -> float:
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def per_step(run, steps: int, repeats: int, sync) -> float:
    """(min t(steps) - min t(1)) / (steps - 1), in ms; the minimum is the run least disturbed by others."""
    run(1), run(steps)  # warm-up
    t_n = min(timed(lambda: run(steps), sync) for _ in range(repeats))
    t_1 = min(timed(lambda: run(1), sync) for _ in range(repeats))
    return (t_n - t_1) / (steps - 1) * 1000


def step_bytes(model, prompt_len: int) -> int:
    layers = model.model.decoder.layers if hasattr(model.model.decoder, "layers") else []
    layer_bytes = sum(p.numel() * p.element_size() for layer in layers for p in layer.parameters())
    embed = model.model.decoder.embed_tokens.weight
    kv = 0
    for layer in layers:
        attn = layer.self_attn
        kv += 2 * prompt_len * attn.k_proj.out_features * embed.element_size()
    return layer_bytes + 2 * embed.numel() * embed.element_size() + kv


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--prompt", type=int, default=1024, help="prompt tokens")
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    from transformers import DiffusionGemmaForBlockDiffusion

    gpu = torch.cuda.is_available()
    device = "cuda" if gpu else "cpu"
    card = torch.cuda.get_device_name() if gpu else "CPU"
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    torch.manual_seed(0)
    config = shaped_config(args.layers, gpu)
    dtype = torch.bfloat16 if gpu else torch.float32
    model = DiffusionGemmaForBlockDiffusion(config).to(device=device, dtype=dtype).eval()
    model.generation_config.confidence_threshold = 1e-30  # never confident: exactly N steps
    canvas = config.canvas_length
    prompt_len = args.prompt if gpu else 40
    vocab = config.get_text_config().vocab_size
    tok = _Tok(vocab)
    backend = DiffusionGemmaBackend(model, tok, description="shaped")
    req = InfillRequest(prefix="x" * prompt_len, suffix="", max_tokens=canvas, context_tokens=4 * prompt_len)
    prompt = torch.tensor([backend.prompt_ids(req)], device=device)  # (1, P)

    def theirs(steps: int) -> None:
        model.generate(prompt, max_new_tokens=canvas, max_denoising_steps=steps)

    def ours(steps: int) -> None:
        backend.max_denoising_steps = steps
        backend.infill(req)

    with torch.inference_mode():
        t_theirs = per_step(theirs, args.steps, args.repeats, sync)
        t_ours = per_step(ours, args.steps, args.repeats, sync)
    nbytes = step_bytes(model, prompt.shape[1])
    bw = next((v for k, v in sorted(BANDWIDTH.items(), key=lambda kv: -len(kv[0])) if k in card), None)
    floor = nbytes / bw * 1000 if bw else float("nan")
    print(
        f"card: {card}  model: {args.layers if gpu else 2} layers, canvas {canvas}, prompt {prompt.shape[1]} "
        f"tokens, {dtype}, {args.steps} steps, best of {args.repeats}"
    )
    if not gpu:
        print("NOTE: no GPU: tiny test config on CPU; a smoke test of this script, NOT the GPU measurement")
    print(f"{'path':<34}{'ms/step':>10}{'vs generate':>14}")
    print(f"{'transformers generate':<34}{t_theirs:>10.3f}{1.0:>14.3f}")
    print(f"{'dg-lsp diffusiongemma backend':<34}{t_ours:>10.3f}{t_ours / t_theirs:>14.3f}")
    print(
        f"{'bandwidth floor':<34}{floor:>10.3f}{floor / t_theirs:>14.3f}   "
        f"({nbytes / 1e9:.2f} GB/step at {bw / 1e12 if bw else float('nan'):.2f} TB/s)"
    )
    verdict = ("PASS" if t_ours <= 1.10 * t_theirs else "FAIL") if gpu else "not judged on CPU"
    print(f"overhead {100 * (t_ours / t_theirs - 1):+.1f}% (target <= +10%): {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
