"""Weight memory of DiffusionGemma 26B-A4B by kind of parameter, and what each load option leaves.

    python benchmarks/dg_memory.py [--layers 30]

Counts the parameters of a DiffusionGemma-shaped model built on the meta device (no memory, no
download): the widths of benchmarks/backends_gpu.py's GPU model (approximately the 26B-A4B
checkpoint's: hidden 2816, 128 experts of 704, top-8, vocabulary 262144), 30 layers with a 5:1
sliding/full pattern, and transformers' default Gemma 4 vision config (the published checkpoint's
own config.json is not read here).  Bytes per parameter follow each option's rule in transformers
5.24: bitsandbytes swaps `nn.Linear` modules only (integrations/bitsandbytes.py), fine-grained FP8
also swaps the `.experts` modules (integrations/finegrained_fp8.py); the tied embedding stays bf16.
Scales, the K/V cache and activations come on top.
"""

from __future__ import annotations

import argparse
from collections import Counter

import torch


def counts(layers: int) -> Counter:
    from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion

    types = [("full_attention" if (i + 1) % 6 == 0 else "sliding_attention") for i in range(layers)]
    types[-1] = "full_attention"
    text = {
        "vocab_size": 262_144, "hidden_size": 2816, "num_attention_heads": 16, "num_key_value_heads": 8,
        "head_dim": 256, "intermediate_size": 2112, "moe_intermediate_size": 704, "num_experts": 128,
        "top_k_experts": 8, "num_hidden_layers": layers, "layer_types": types, "sliding_window": 1024,
        "per_layer_config": {i: {"head_dim": 512, "num_key_value_heads": 2}
                             for i, t in enumerate(types) if t == "full_attention"},
        "max_position_embeddings": 8192, "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 1,
    }  # fmt: skip
    with torch.device("meta"):
        model = DiffusionGemmaForBlockDiffusion(DiffusionGemmaConfig(text_config=text, canvas_length=256))
    out: Counter = Counter()
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if id(p) in seen:  # tied weights once
            continue
        seen.add(id(p))
        if "vision" in name:
            kind = "vision"
        elif ".experts." in name:
            kind = "experts"
        elif "embed_tokens" in name:
            kind = "embedding"
        elif p.ndim == 2:
            kind = "linear"
        else:
            kind = "other"
        out[kind] += p.numel()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=30)
    c = counts(ap.parse_args().layers)
    text = c["experts"] + c["linear"] + c["embedding"] + c["other"]
    print("| parameters | billions |")
    print("| --- | ---: |")
    for kind in ("experts", "linear", "embedding", "other", "vision"):
        print(f"| {kind} | {c[kind] / 1e9:.3f} |")
    print(f"| total (text) | {text / 1e9:.3f} |")
    gb = 1e9
    rest = c["embedding"] + c["other"]
    rows = {
        "bfloat16, vision tower loaded": 2 * (text + c["vision"]),
        "bfloat16, vision skipped (default)": 2 * text,
        "bitsandbytes 4-bit (nn.Linear only, experts bf16)": 2 * (c["experts"] + rest) + 0.5 * c["linear"],
        "fine-grained FP8 (linear and experts; embedding bf16)": c["experts"] + c["linear"] + 2 * rest,
    }
    print()
    print("| load | weights GB |")
    print("| --- | ---: |")
    for name, nbytes in rows.items():
        print(f"| {name} | {nbytes / gb:.1f} |")


if __name__ == "__main__":
    main()
