"""The published masked diffusion families: how each loads and how it infills (docs/backends.md).

    family       detected by (config.json, generation_config.json, tokenizer)    loads     shift
    llada        model_type "llada"                                               AutoModel  no
    dreamon      model_type "dream" and <|expand|>/<|delete|> (tokenizer or        AutoModel  yes
                 generation_config expand_token_id/delete_token_id)
    diffucoder   model_type "dream" and <|dlm_pad|> in the tokenizer              AutoModel  yes
    dream        model_type "dream" (Dream-7B, Dream-Coder-7B)                    AutoModel  yes
    open-dcoder  native model_type "qwen2" with a mask id (generation_config,      CausalLM   yes
                 config.json or the tokenizer's mask token)
    generic      a folder that states the contract itself: its own code and a     Auto...    config
                 mask_token_id in config.json, or a native masked-LM architecture

Anything else is refused with one line (`unknown_family`).  A family says which auto class
loads it, the load shims it needs for transformers 5 (`runtime.backends.shims`, applied at load
time only; the folder is never edited), whether its causal architecture must be made to attend
both ways, whether its head is shifted, the spellings of its special tokens and its layout:

    [bos] prefix canvas suffix [eos]      bos where the family uses one, eos after the suffix
                                          for DreamOn (its published infilling layout)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runtime.types import ModelLoadError

MASK_TOKENS = ("<|mdm_mask|>", "<|mask|>", "[MASK]", "<mask>")
"""Mask token spellings looked up in the tokenizer when neither config nor tokenizer names one."""
EXPAND, DELETE = "<|expand|>", "<|delete|>"


@dataclass(frozen=True)
class FolderFacts:
    """What detection reads: config.json, generation_config.json (or {}), the tokenizer's vocabulary."""

    cfg: dict
    generation: dict
    vocab: dict[str, int]
    native: bool
    """transformers knows the model_type itself (no modeling code runs from the folder)."""
    tokenizer_mask: int | None = None
    """The tokenizer's own mask token id, if it names one."""

    @property
    def model_type(self) -> str:
        return str(self.cfg.get("model_type", "")).lower()

    def has(self, *tokens: str) -> bool:
        return all(t in self.vocab for t in tokens)


@dataclass(frozen=True)
class Family:
    name: str
    checkpoints: str
    """The published checkpoints this family covers (docs)."""
    detect: Callable[[FolderFacts], bool]
    auto_classes: tuple[str, ...] = ("AutoModel",)
    shift_logits: bool | None = False
    """Logits at i predict token i + 1 (None: config.json's "shift_logits", default no)."""
    bidirectional: bool = False
    """A causal transformers architecture used with full attention (its modules are switched)."""
    shims: tuple[str, ...] = ()
    """Load-time compatibility shims (`runtime.backends.shims.SHIMS`)."""
    pad_tokens: tuple[str, ...] = ()
    """Spellings of the token the model fills the tail with (else EOS, else pad)."""
    end_tokens: tuple[str, ...] = ()
    """More spellings that end the middle when committed."""
    span_tokens: tuple[str, str] | None = None
    """(expand, delete): DreamOn's variable span."""
    bos: bool = True
    eos_after_suffix: bool = False


@dataclass(frozen=True)
class SpecialIds:
    """A family's ids resolved against one folder."""

    mask: int
    pad: int
    """Fills the canvas after the middle (the canvas rules' pad); DreamOn: <|delete|>."""
    ends: frozenset[int]
    bos: int | None
    eos_tail: int | None
    expand: int | None = None
    delete: int | None = None
    banned: tuple[int, ...] = field(default=(), compare=False)


REMOTE_SHIMS = ("post_init", "tie_weights")
DREAM_SHIMS = ("rope_default", "rotary_buffers")


def _dream(f: FolderFacts) -> bool:
    return f.model_type == "dream"


def _dreamon(f: FolderFacts) -> bool:
    named = "expand_token_id" in f.generation and "delete_token_id" in f.generation
    return _dream(f) and (f.has(EXPAND, DELETE) or named)


def _open_dcoder(f: FolderFacts) -> bool:
    """Qwen2 trained as a masked diffusion model: an ordinary Qwen2 folder names no mask token."""
    named = (f.generation.get("mask_token_id"), f.cfg.get("mask_token_id"), f.tokenizer_mask)
    return f.native and f.model_type == "qwen2" and any(isinstance(v, int) for v in named)


def _generic(f: FolderFacts) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    if f.native:
        return f.cfg.get("model_type") in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    return isinstance(f.cfg.get("mask_token_id"), int)


FAMILIES: tuple[Family, ...] = (
    Family("llada", "LLaDA-8B-Base, LLaDA-8B-Instruct, LLaDA-1.5", lambda f: f.model_type == "llada",
           shims=REMOTE_SHIMS),
    Family("dreamon", "DreamOn-v0-7B", _dreamon, shift_logits=True, shims=REMOTE_SHIMS + DREAM_SHIMS,
           span_tokens=(EXPAND, DELETE), eos_after_suffix=True),
    Family("diffucoder", "DiffuCoder-7B-Base, -Instruct, -cpGRPO",
           lambda f: _dream(f) and f.has("<|dlm_pad|>"),
           shift_logits=True, shims=REMOTE_SHIMS + DREAM_SHIMS, pad_tokens=("<|dlm_pad|>",),
           end_tokens=("<|im_end|>",)),
    Family("dream", "Dream-v0-Base-7B, Dream-v0-Instruct-7B, Dream-Coder-v0-7B", _dream, shift_logits=True,
           shims=REMOTE_SHIMS + DREAM_SHIMS),
    Family("open-dcoder", "Open-dCoder-0.5B", _open_dcoder, auto_classes=("AutoModelForCausalLM",),
           shift_logits=True, bidirectional=True, bos=False),
    Family("generic", "folders that name their mask_token_id (docs/backends.md)", _generic,
           auto_classes=("AutoModelForMaskedLM", "AutoModel", "AutoModelForCausalLM"), shift_logits=None,
           shims=REMOTE_SHIMS),
)  # fmt: skip
BY_NAME = {f.name: f for f in FAMILIES}


def read_generation_config(path: Path) -> dict:
    import json

    try:
        data = json.loads((path / "generation_config.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def detect_family(facts: FolderFacts, path: Path) -> Family:
    """The first family whose detection matches, else one line saying why we cannot run it."""
    for family in FAMILIES:
        if family.detect(facts):
            return family
    raise ModelLoadError(unknown_family(facts, path))


def unknown_family(facts: FolderFacts, path: Path) -> str:
    arch = ", ".join(facts.cfg.get("architectures") or []) or "no architectures"
    known = ", ".join(f.name for f in FAMILIES if f.name != "generic")
    return (
        f"{path} is model_type {facts.cfg.get('model_type')!r} ({arch}), not a masked diffusion family "
        f"dg-lsp can run ({known}; or a bidirectional model with its own code and mask_token_id in "
        "config.json): "
        "serve it with vLLM or SGLang and use the remote backend (--model http://HOST:PORT/v1)"
    )


def find_mask_id(facts: FolderFacts, config, tokenizer) -> int | None:
    """config.mask_token_id, generation_config's, the tokenizer's mask token, else a known spelling."""
    for value in (getattr(config, "mask_token_id", None), facts.generation.get("mask_token_id"),
                  tokenizer.mask_token_id):  # fmt: skip
        if isinstance(value, int):
            return value
    return next((facts.vocab[t] for t in MASK_TOKENS if t in facts.vocab), None)


def _first_id(*values) -> int | None:
    for value in values:
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, int):
            return value
    return None


def special_ids(family: Family, facts: FolderFacts, config, tok, mask: int, vocab_rows: int) -> SpecialIds:
    """The family's ids in this folder; raises a one-line error where one is missing."""
    gen = facts.generation
    eos = _first_id(tok.eos_token_id, getattr(config, "eos_token_id", None), gen.get("eos_token_id"))
    tok_pad = _first_id(tok.pad_token_id, getattr(config, "pad_token_id", None))
    expand = delete = None
    if family.span_tokens is not None:
        expand = _first_id(gen.get("expand_token_id"), facts.vocab.get(family.span_tokens[0]))
        delete = _first_id(gen.get("delete_token_id"), facts.vocab.get(family.span_tokens[1]))
        if expand is None or delete is None:
            names = " / ".join(family.span_tokens)
            raise ModelLoadError(f"{family.name}: neither tokenizer nor generation_config has {names}")
    named_pad = next((facts.vocab[t] for t in family.pad_tokens if t in facts.vocab), None)
    pad = _first_id(delete, named_pad, eos, tok_pad)
    if pad is None:
        raise ModelLoadError(f"{family.name}: neither config nor tokenizer names an EOS or pad token")
    ends = {i for i in (pad, eos, tok_pad, *(facts.vocab.get(t) for t in family.end_tokens)) if i is not None}
    keep = ends | {i for i in (expand, delete) if i is not None}
    specials = set(tok.all_special_ids) | {mask}
    banned = tuple(sorted((specials - keep) | set(range(len(tok), vocab_rows))))
    return SpecialIds(
        mask=mask, pad=pad, ends=frozenset(ends), bos=tok.bos_token_id if family.bos else None,
        eos_tail=eos if family.eos_after_suffix else None, expand=expand, delete=delete, banned=banned,
    )  # fmt: skip


def attention_call(model, family: Family) -> Callable:
    """(B, L) ids -> (B, L, V) logits with the family's attention.  `bidirectional`: transformers'
    causal architecture attends both ways, as Open-dLLM runs Qwen2 (is_causal=False): every
    attention module's `is_causal` is switched off and the model gets no causal mask (a mask
    mapping with no mask per layer type), so SDPA, eager and flash attention all see full
    attention."""
    if not family.bidirectional:
        return lambda ids: model(input_ids=ids).logits
    for module in model.modules():
        if hasattr(module, "is_causal"):
            module.is_causal = False
    layer_types = set(getattr(model.config, "layer_types", None) or ["full_attention"])
    no_masks = {t: None for t in layer_types | {"full_attention", "sliding_attention"}}
    return lambda ids: model(input_ids=ids, attention_mask=no_masks).logits
