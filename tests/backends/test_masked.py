"""The masked backend on a tiny folder that ships its own modeling code (the trust_remote_code path)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from tiny_folders import save_char_tokenizer

from runtime.backends.masked import MaskedBackend, canvas_rows
from runtime.load import load_backend
from runtime.policies import POLICIES
from runtime.types import Cancelled, InfillRequest, ModelLoadError

CONFIG_PY = """
from transformers import PretrainedConfig


class TinyMaskConfig(PretrainedConfig):
    model_type = "tinymask"

    def __init__(self, vocab_size=104, hidden_size=32, num_heads=2, max_len=512, **kwargs):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.max_len = max_len
        super().__init__(**kwargs)
"""

MODELING_PY = '''
import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput

from .configuration_tinymask import TinyMaskConfig


class TinyMaskModel(PreTrainedModel):
    """One bidirectional (unmasked) attention layer and a head: a masked LM in miniature."""

    config_class = TinyMaskConfig

    def __init__(self, config):
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
        self.pos = nn.Embedding(config.max_len, config.hidden_size)
        self.attn = nn.MultiheadAttention(config.hidden_size, config.num_heads, batch_first=True)
        self.head = nn.Linear(config.hidden_size, config.vocab_size)
        self.post_init()

    def _init_weights(self, module):
        pass

    def get_output_embeddings(self):
        return self.head

    def forward(self, input_ids, attention_mask=None, **kwargs):
        x = self.embed(input_ids) + self.pos(torch.arange(input_ids.shape[1], device=input_ids.device))
        x = x + self.attn(x, x, x, need_weights=False)[0]
        return MaskedLMOutput(logits=self.head(x))
'''


def write_folder(path: Path, *, shift: bool = False) -> Path:
    """A folder like LLaDA's or Dream's: config.json with auto_map, the code beside it, a tokenizer."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "configuration_tinymask.py").write_text(textwrap.dedent(CONFIG_PY))
    (path / "modeling_tinymask.py").write_text(textwrap.dedent(MODELING_PY))
    save_char_tokenizer(path, extra=["<|mask|>"])  # the mask token gets id 98
    cfg = {
        "model_type": "tinymask",
        "architectures": ["TinyMaskModel"],
        "auto_map": {
            "AutoConfig": "configuration_tinymask.TinyMaskConfig",
            "AutoModel": "modeling_tinymask.TinyMaskModel",
        },
        "vocab_size": 104,
        "mask_token_id": 98,
        "eos_token_id": 2,
        "bos_token_id": 1,
        "pad_token_id": 0,
    }
    if shift:
        cfg["shift_logits"] = True
    (path / "config.json").write_text(json.dumps(cfg))
    torch.manual_seed(0)
    state = {
        "embed.weight": torch.randn(104, 32) * 0.02,
        "pos.weight": torch.randn(512, 32) * 0.02,
        "attn.in_proj_weight": torch.randn(96, 32) * 0.02,
        "attn.in_proj_bias": torch.zeros(96),
        "attn.out_proj.weight": torch.randn(32, 32) * 0.02,
        "attn.out_proj.bias": torch.zeros(32),
        "head.weight": torch.randn(104, 32) * 0.02,
        "head.bias": torch.zeros(104),
    }
    from safetensors.torch import save_file

    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("tinymask"))


@pytest.fixture(scope="module")
def backend(folder) -> MaskedBackend:
    b = load_backend(str(folder), allow_remote_code=True)
    assert isinstance(b, MaskedBackend)
    return b


def favour(backend: MaskedBackend, token: str) -> None:
    """Make the head prefer one token everywhere (random weights say nothing we could assert on)."""
    head = backend.model.head
    with torch.no_grad():
        head.bias.zero_()
        head.bias[backend.tok.convert_tokens_to_ids(token)] = 50.0


def test_refuses_remote_code_unless_allowed(folder):
    with pytest.raises(ModelLoadError) as e:
        load_backend(str(folder))
    msg = str(e.value)
    assert "\n" not in msg
    assert "trustRemoteCode" in msg and "--trust-remote-code" in msg and "modeling_tinymask.py" in msg


def test_special_ids_come_from_the_folder(backend):
    assert backend.mask_id == 98 and backend.end_id == 2
    assert 98 in backend.banned and 1 in backend.banned  # mask and bos are never proposed
    assert set(range(99, 104)) <= set(backend.banned)  # head rows beyond the tokenizer
    assert 2 not in backend.banned  # EOS must stay possible: it ends the middle
    assert backend.shift_logits is False


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_every_policy_fills_the_middle(backend, policy):
    favour(backend, "a")
    r = backend.infill(
        InfillRequest(prefix="x = ", suffix="\n", max_tokens=6, canvas_tokens=6, policy=policy)
    )
    assert r.text == "aaaaaa"
    assert r.stats.tokens == 6 and r.stats.forwards >= 1 and r.stats.canvases == 1
    if policy == "sequential":
        assert r.stats.forwards == 6


def test_eos_ends_the_middle(backend):
    favour(backend, "<eos>")
    r = backend.infill(InfillRequest(prefix="x = ", suffix="\n", max_tokens=8, canvas_tokens=8))
    assert r.text == "" and r.stats.tokens == 0


def test_input_is_prefix_canvas_suffix(backend):
    favour(backend, "a")
    seen: list[list[int]] = []
    hook = backend.model.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(kwargs["input_ids"][0].tolist()), with_kwargs=True
    )
    try:
        backend.infill(
            InfillRequest(prefix="ab", suffix="cd", max_tokens=3, canvas_tokens=3, policy="sequential")
        )
    finally:
        hook.remove()
    ids = backend.tok.convert_tokens_to_ids
    a, b, c, d = ids("a"), ids("b"), ids("c"), ids("d")
    assert seen[0] == [1, a, b, 98, 98, 98, c, d]  # bos, prefix, three masks, suffix
    assert seen[1][3:6].count(98) == 2  # one slot committed per sequential step
    assert len(seen) == 3


def test_multiple_canvases_continue_the_prefix(backend):
    favour(backend, "a")
    r = backend.infill(InfillRequest(prefix="x = ", suffix="", max_tokens=10, canvas_tokens=4))
    assert r.text == "a" * 10 and r.stats.canvases == 3


def test_cancel_between_steps(backend):
    favour(backend, "a")
    calls = []

    def should_cancel() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        backend.infill(
            InfillRequest(prefix="x", suffix="", max_tokens=8, canvas_tokens=8, policy="sequential"),
            should_cancel,
        )
    assert len(calls) == 3


def test_shifted_logits_use_the_row_before():
    logits = torch.arange(10.0)[:, None].expand(10, 3)  # row i holds i
    assert canvas_rows(logits, 4, 3, shift=False)[:, 0].tolist() == [4, 5, 6]
    assert canvas_rows(logits, 4, 3, shift=True)[:, 0].tolist() == [3, 4, 5]


def test_shift_flag_from_config(tmp_path):
    b = load_backend(str(write_folder(tmp_path / "dreamish", shift=True)), allow_remote_code=True)
    assert isinstance(b, MaskedBackend) and b.shift_logits
    favour(b, "z")
    assert b.infill(InfillRequest(prefix="", suffix="", max_tokens=3, canvas_tokens=3)).text == "zzz"


def test_folder_without_mask_token_is_refused(tmp_path):
    path = write_folder(tmp_path / "nomask")
    cfg = json.loads((path / "config.json").read_text())
    del cfg["mask_token_id"]
    (path / "config.json").write_text(json.dumps(cfg))
    save_char_tokenizer(path)  # no <|mask|> either
    with pytest.raises(ModelLoadError, match="not a masked diffusion model"):
        load_backend(str(path), allow_remote_code=True)


def test_drafts_are_verified_in_one_batched_forward(backend):
    """Line drafts go on canvases too: all of them in one forward (B = drafts), the best kept; the
    model here favours "a" everywhere, so the draft it believes more wins over better evidence."""
    favour(backend, "a")
    drafts = (("bb", 9.0), ("aa", 1.0), ("c" * 40, 5.0))  # the last does not fit the canvas
    r = backend.infill(InfillRequest(prefix="x = ", suffix="\n", max_tokens=8, canvas_tokens=8,
                                     single_line=True, drafts=drafts))  # fmt: skip
    assert r.text == "aa" and r.stats.forwards == 1
    assert r.stats.drafts_tried == 2 and r.stats.drafts_accepted == 1
