"""Tiny folders of the published masked diffusion families, built in code (nothing is downloaded).

Each folder reproduces the pattern of its published checkpoint that matters to our loader, in
our own words (none of the published code is copied):

    llada        config.json model_type "llada", auto_map AutoModel + AutoModelForCausalLM ->
                 LLaDAModelLM, mask_token_id in config.json; the model class never calls
                 post_init() and its tie_weights(self) takes no arguments; logits unshifted
    dream        model_type "Dream", auto_map AutoConfig + AutoModel -> DreamModel; the rotary
                 embedding looks up ROPE_INIT_FUNCTIONS[self.rope_type] with rope_type "default"
                 and keeps inv_freq in a non-persistent buffer; _init_weights knows only Linear
                 and Embedding; the head is the autoregressive one (logits shifted by one)
    diffucoder   Dream's code; the tokenizer has <|dlm_pad|> as an additional special token
    dreamon      Dream's code; the tokenizer has <|expand|> and <|delete|>, generation_config.json
                 names them (expand_token_id, delete_token_id)
    open-dcoder  a native qwen2 folder (Qwen2ForCausalLM, transformers' own code, random tiny
                 weights) whose mask id is only in generation_config.json (mask_token_id)

Tokenizers are the character tokenizer of `tiny_folders` (pad 0, bos 1, eos 2, unk 3, one
token per character) with the family's special tokens appended (ids 98, 99, ...).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import torch
from tiny_folders import save_char_tokenizer

VOCAB = 104
HIDDEN = 32
HEADS = 2

LLADA_CONFIG_PY = """
from transformers import PretrainedConfig


class LLaDAConfig(PretrainedConfig):
    model_type = "llada"

    def __init__(self, d_model=32, n_heads=2, n_layers=1, vocab_size=104, embedding_size=104,
                 max_sequence_length=256, rope_theta=10000.0, weight_tying=False,
                 mask_token_id=None, **kwargs):
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_layers = n_layers
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.max_sequence_length = max_sequence_length
        self.rope_theta = rope_theta
        self.weight_tying = weight_tying
        self.mask_token_id = mask_token_id
        super().__init__(**kwargs)
"""

LLADA_MODELING_PY = '''
"""LLaDA's pattern: a plain nn.Module transformer inside a thin PreTrainedModel wrapper whose
__init__ never calls post_init() and whose tie_weights takes no arguments."""
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration_llada import LLaDAConfig


def rotate(x, theta):
    n, d = x.shape[-2], x.shape[-1]
    freq = 1.0 / (theta ** (torch.arange(0, d, 2, device=x.device, dtype=torch.float) / d))
    angle = torch.outer(torch.arange(n, device=x.device, dtype=torch.float), freq)
    cos, sin = torch.cat([angle, angle], -1).cos(), torch.cat([angle, angle], -1).sin()
    half = torch.cat([-x[..., d // 2:], x[..., : d // 2]], -1)
    return x * cos + half * sin


class LLaDAInner(nn.Module):
    """The transformer itself: no PreTrainedModel, full (bidirectional) attention."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.embedding_size, config.d_model),
            att_proj=nn.Linear(config.d_model, 3 * config.d_model, bias=False),
            attn_out=nn.Linear(config.d_model, config.d_model, bias=False),
            ln_f=nn.LayerNorm(config.d_model),
            ff_out=nn.Linear(config.d_model, config.embedding_size, bias=False),
        ))

    def forward(self, input_ids):
        t, c = self.transformer, self.config
        x = t.wte(input_ids)
        b, n, _ = x.shape
        q, k, v = t.att_proj(x).view(b, n, 3, c.n_heads, -1).permute(2, 0, 3, 1, 4)
        q, k = rotate(q, c.rope_theta), rotate(k, c.rope_theta)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=False)
        x = x + t.attn_out(y.transpose(1, 2).reshape(b, n, -1))
        x = t.ln_f(x)
        return t.wte.weight @ x.transpose(1, 2) if c.weight_tying else t.ff_out(x)


class LLaDAModelLM(PreTrainedModel):
    config_class = LLaDAConfig
    base_model_prefix = "model"

    def __init__(self, config, model=None):
        super().__init__(config)
        self.model = model or LLaDAInner(config)  # no post_init(), as in the published wrapper

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        return CausalLMOutputWithPast(logits=self.model(input_ids))

    def get_input_embeddings(self):
        return self.model.transformer.wte

    def get_output_embeddings(self):
        if self.config.weight_tying:
            return self.model.transformer.wte
        return self.model.transformer.ff_out

    def tie_weights(self):  # the pre-v5 signature: no arguments
        if self.config.weight_tying:
            self.model.transformer.ff_out = self.model.transformer.wte
'''

DREAM_CONFIG_PY = """
from transformers import PretrainedConfig
from transformers.modeling_rope_utils import rope_config_validation


class DreamConfig(PretrainedConfig):
    model_type = "Dream"

    def __init__(self, vocab_size=104, hidden_size=32, num_attention_heads=2, num_hidden_layers=1,
                 max_position_embeddings=256, rope_theta=10000.0, rope_scaling=None,
                 initializer_range=0.02, tie_word_embeddings=False, mask_token_id=98,
                 pad_token_id=0, **kwargs):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.num_hidden_layers = num_hidden_layers
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.rope_theta = rope_theta
        self.rope_scaling = rope_scaling  # set before super().__init__, as the published config does
        rope_config_validation(self)
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)
        self.mask_token_id = mask_token_id
        self.pad_token_id = pad_token_id
"""

DREAM_MODELING_PY = '''
"""Dream's pattern: a Qwen2-style decoder used with full attention, the autoregressive head kept
(position i predicts token i + 1), and a rotary embedding written for transformers 4.4x."""
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from .configuration_dream import DreamConfig


class DreamRotaryEmbedding(nn.Module):
    def __init__(self, config, device=None):
        super().__init__()
        scaling = config.rope_scaling
        self.rope_type = scaling.get("rope_type", scaling.get("type")) if scaling else "default"
        self.config = config
        self.rope_kwargs = {}
        self.rope_init_fn = ROPE_INIT_FUNCTIONS[self.rope_type]  # "default" is gone in v5
        inv_freq, self.attention_scaling = self.rope_init_fn(config, device, **self.rope_kwargs)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.original_inv_freq = self.inv_freq

    def forward(self, x, position_ids):
        freqs = position_ids[:, :, None].float() * self.inv_freq[None, None, :].float()
        emb = torch.cat([freqs, freqs], -1)
        return emb.cos() * self.attention_scaling, emb.sin() * self.attention_scaling


def rotate(x, cos, sin):
    d = x.shape[-1]
    return x * cos + torch.cat([-x[..., d // 2:], x[..., : d // 2]], -1) * sin


class DreamPreTrainedModel(PreTrainedModel):
    config_class = DreamConfig
    base_model_prefix = "model"

    def _init_weights(self, module):  # knows Linear and Embedding only, as published
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=std)


class DreamBaseModel(DreamPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.norm = nn.LayerNorm(config.hidden_size)
        self.rotary_emb = DreamRotaryEmbedding(config)
        self.post_init()

    def forward(self, input_ids):
        x = self.embed_tokens(input_ids)
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.config.num_attention_heads, -1).permute(2, 0, 3, 1, 4)
        cos, sin = self.rotary_emb(x, torch.arange(n, device=x.device)[None])
        q, k = rotate(q, cos[:, None], sin[:, None]), rotate(k, cos[:, None], sin[:, None])
        y = F.scaled_dot_product_attention(q, k, v, is_causal=False)  # the canvas attends both ways
        return self.norm(x + self.o_proj(y.transpose(1, 2).reshape(b, n, -1)))


class DreamModel(DreamPreTrainedModel):
    _tied_weights_keys = ["lm_head.weight"]  # the pre-v5 list form

    def __init__(self, config):
        super().__init__(config)
        self.model = DreamBaseModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_head

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        return MaskedLMOutput(logits=self.lm_head(self.model(input_ids)))
'''


def _write_code(path: Path, files: dict[str, str]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(textwrap.dedent(text))


def _save(path: Path, state: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(path / "model.safetensors"),
              metadata={"format": "pt"})  # fmt: skip


def _rand(*shape: int) -> torch.Tensor:
    return torch.randn(*shape) * 0.02


def write_llada(path: Path) -> Path:
    """LLaDA-8B's layout: the mask token <|mdm_mask|> and its id in config.json."""
    _write_code(path, {"configuration_llada.py": LLADA_CONFIG_PY, "modeling_llada.py": LLADA_MODELING_PY})
    save_char_tokenizer(path, extra=["<|mdm_mask|>"])  # id 98, as 126336 in the real vocabulary
    cfg = {
        "model_type": "llada",
        "architectures": ["LLaDAModelLM"],
        "auto_map": {
            "AutoConfig": "configuration_llada.LLaDAConfig",
            "AutoModel": "modeling_llada.LLaDAModelLM",
            "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
        },
        "d_model": HIDDEN, "n_heads": HEADS, "n_layers": 1, "vocab_size": VOCAB, "embedding_size": VOCAB,
        "mask_token_id": 98, "eos_token_id": 2, "pad_token_id": 2, "weight_tying": False,
    }  # fmt: skip
    (path / "config.json").write_text(json.dumps(cfg))
    torch.manual_seed(0)
    _save(path, {
        "model.transformer.wte.weight": _rand(VOCAB, HIDDEN),
        "model.transformer.att_proj.weight": _rand(3 * HIDDEN, HIDDEN),
        "model.transformer.attn_out.weight": _rand(HIDDEN, HIDDEN),
        "model.transformer.ln_f.weight": torch.ones(HIDDEN),
        "model.transformer.ln_f.bias": torch.zeros(HIDDEN),
        "model.transformer.ff_out.weight": _rand(VOCAB, HIDDEN),
    })  # fmt: skip
    return path


DREAM_EXTRAS = {
    "dream": ["<|mask|>"],
    "diffucoder": ["<|mask|>", "<|dlm_pad|>"],
    "dreamon": ["<|mask|>", "<|expand|>", "<|delete|>"],
}


def write_dream(path: Path, variant: str = "dream") -> Path:
    """Dream-7B's layout (also Dream-Coder's); `variant` "diffucoder" or "dreamon" adds their tokens."""
    _write_code(path, {"configuration_dream.py": DREAM_CONFIG_PY, "modeling_dream.py": DREAM_MODELING_PY})
    save_char_tokenizer(path, extra=DREAM_EXTRAS[variant])  # <|mask|> is 98, as 151666 in Dream's
    cfg = {
        "model_type": "Dream",
        "architectures": ["DreamModel"],
        "auto_map": {
            "AutoConfig": "configuration_dream.DreamConfig",
            "AutoModel": "modeling_dream.DreamModel",
        },
        "vocab_size": VOCAB, "hidden_size": HIDDEN, "num_attention_heads": HEADS, "num_hidden_layers": 1,
        "rope_theta": 10000.0, "rope_scaling": None, "tie_word_embeddings": False,
        "mask_token_id": 98, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2,
    }  # fmt: skip
    (path / "config.json").write_text(json.dumps(cfg))
    if variant == "dreamon":
        gen = {"mask_token_id": 98, "expand_token_id": 99, "delete_token_id": 100, "eos_token_id": 2}
        (path / "generation_config.json").write_text(json.dumps(gen))
    torch.manual_seed(0)
    _save(path, {
        "model.embed_tokens.weight": _rand(VOCAB, HIDDEN),
        "model.qkv.weight": _rand(3 * HIDDEN, HIDDEN),
        "model.o_proj.weight": _rand(HIDDEN, HIDDEN),
        "model.norm.weight": torch.ones(HIDDEN),
        "model.norm.bias": torch.zeros(HIDDEN),
        "lm_head.weight": _rand(VOCAB, HIDDEN),
    })  # fmt: skip
    return path


def write_open_dcoder(path: Path) -> Path:
    """Open-dCoder-0.5B's layout: transformers' own Qwen2ForCausalLM (random tiny weights), no
    modeling code in the folder, the mask id only in generation_config.json."""
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=HEADS, num_key_value_heads=1, max_position_embeddings=256,
        bos_token_id=None, eos_token_id=2, pad_token_id=0, tie_word_embeddings=True,
    )  # fmt: skip
    Qwen2ForCausalLM(config).save_pretrained(path)
    GenerationConfig(mask_token_id=98, eos_token_id=2, pad_token_id=0).save_pretrained(path)
    save_char_tokenizer(path, extra=["<|mdm|>"])  # id 98; a spelling our fallback lookup does not know
    return path
