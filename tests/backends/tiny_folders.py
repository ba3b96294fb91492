"""Helpers that build tiny tokenizers and configs in code (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
"""Ids 0..3, as in transformers' own tiny DiffusionGemma test config (pad 0, bos 1, eos 2)."""
CHARS = ["\n"] + [chr(c) for c in range(32, 127) if chr(c) not in "^~"]
"""One token per character; 4 + 94 = 98 tokens, within the tiny vocabulary of 99."""


def save_char_tokenizer(path: Path, *, extra: list[str] = (), chat_template: str | None = None) -> None:
    """A character-level fast tokenizer (`extra` tokens are added as specials after the characters)."""
    from tokenizers import Tokenizer, decoders
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate([*SPECIALS, *CHARS])}
    core = Tokenizer(BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>", unk_token="<unk>"
    )
    if extra:
        tok.add_special_tokens({"additional_special_tokens": list(extra)})
    if chat_template is not None:
        tok.chat_template = chat_template
    tok.save_pretrained(path)


def tiny_diffusiongemma_config(sliding_window: int = 8):
    """transformers' tests/models/diffusion_gemma tiny config (text only): vocab 99, hidden 32,
    2 layers (one sliding, one full), 4 experts, canvas 16.  A small window makes prompts cross it."""
    from transformers import DiffusionGemmaConfig

    text = {
        "vocab_size": 99,
        "hidden_size": 32,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "intermediate_size": 32,
        "max_position_embeddings": 512,
        "pad_token_id": 0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "moe_intermediate_size": 8,
        "num_experts": 4,
        "top_k_experts": 2,
        "num_hidden_layers": 2,
        "layer_types": ["sliding_attention", "full_attention"],
        "per_layer_config": {1: {"head_dim": 16, "num_key_value_heads": 2}},
        "sliding_window": sliding_window,
    }
    return DiffusionGemmaConfig(text_config=text, vision_config=None, canvas_length=16)
