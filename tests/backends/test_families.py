"""The published masked diffusion families through the real load path (`load_backend`) and infill.

Each tiny folder (`family_folders`) reproduces its published model's pattern; the weights are
random, so where an answer must be asserted the model's logits are scripted by a forward hook on
the real loaded module (`script`), which is the only stand-in: loading, shims, attention, the
layout and our loop all run for real.  No real checkpoint runs here (multi-GB, GPU).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from family_folders import write_dream, write_llada, write_open_dcoder

from runtime.backends.masked import MaskedBackend
from runtime.backends.shims import default_rope, shimmed_class
from runtime.load import load_backend
from runtime.types import InfillRequest, ModelLoadError

LETTERS = "abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    return {
        "llada": write_llada(root / "tiny-llada"),
        "dream": write_dream(root / "tiny-dream"),
        "diffucoder": write_dream(root / "tiny-diffucoder", "diffucoder"),
        "dreamon": write_dream(root / "tiny-dreamon", "dreamon"),
        "open-dcoder": write_open_dcoder(root / "tiny-open-dcoder"),
    }


def load(folders, name: str) -> MaskedBackend:
    b = load_backend(str(folders[name]), allow_remote_code=True)
    assert isinstance(b, MaskedBackend) and b.family.name == name
    return b


def script(backend: MaskedBackend, rows) -> list[list[int]]:
    """Replace the model's logits: `rows(ids) -> {position: {token id: logit}}` for the (L,) input
    ids (unnamed positions/tokens get 0).  Returns the inputs the model saw."""
    seen: list[list[int]] = []

    def hook(module, args, kwargs, out):
        ids = kwargs["input_ids"]
        logits = torch.zeros(*ids.shape, out.logits.shape[-1])
        for b, row in enumerate(ids.tolist()):
            seen.append(row)
            for pos, scores in rows(row).items():
                for tok, value in scores.items():
                    logits[b, pos, tok] = value
        out.logits = logits
        return out

    backend.model.register_forward_hook(hook, with_kwargs=True)
    return seen


def infill(backend: MaskedBackend, suffix: str = "\n", **kw):
    """A request after "x = ", one slot per step unless the test asks for another policy."""
    return backend.infill(InfillRequest(prefix="x = ", suffix=suffix, **{"policy": "sequential", **kw}))


def char(backend: MaskedBackend, c: str) -> int:
    return backend.tok.convert_tokens_to_ids(c)


def by_position(backend: MaskedBackend):
    """Row p favours the p-th letter: the answer shows which rows fed the canvas."""
    return lambda ids: {p: {char(backend, LETTERS[p % 26]): 20.0} for p in range(len(ids))}


@pytest.mark.parametrize(
    ("name", "head", "shift"),
    [("llada", 1, False), ("dream", 1, True), ("diffucoder", 1, True), ("open-dcoder", 0, True)],
)
def test_logit_shift_direction(folders, name, head, shift):
    """LLaDA reads the canvas rows themselves; Dream's family and Open-dCoder read the row before
    (logits[i] predict token i + 1).  The canvas starts after `head` bos tokens and the prefix."""
    b = load(folders, name)
    script(b, by_position(b))
    r = infill(b, max_tokens=3, canvas_tokens=3)
    start = head + len(b._encode("x = ")) - (1 if shift else 0)
    assert b.shift_logits is shift
    assert r.text == LETTERS[start : start + 3]


def test_llada_needs_both_transformers5_shims(folders):
    """The tiny folder breaks transformers 5.24 the way LLaDA-8B does: no post_init(), then the
    argless tie_weights; our loader loads it."""
    from transformers import AutoModel
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    with pytest.raises(AttributeError, match="all_tied_weights_keys"):
        AutoModel.from_pretrained(folders["llada"], trust_remote_code=True)
    cls = get_class_from_dynamic_module("modeling_llada.LLaDAModelLM", str(folders["llada"]))
    with pytest.raises(TypeError, match=r"tie_weights.*unexpected keyword argument"):
        shimmed_class(cls, ("post_init",)).from_pretrained(folders["llada"])
    b = load(folders, "llada")
    assert b.mask_id == 98 and b.ids.bos == 1 and 2 in b.end_ids
    assert type(b.model).__name__ == "LLaDAModelLM" and type(b.model).__mro__[1] is cls


def test_dream_rope_and_rotary_buffers(folders):
    """Dream's rotary embedding asks for ROPE_INIT_FUNCTIONS["default"] (gone in 5.24), and the
    meta-device load leaves its inv_freq uninitialised; the loaded backend has the right one."""
    from transformers import AutoModel
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    with pytest.raises(KeyError, match="default"):
        AutoModel.from_pretrained(folders["dream"], trust_remote_code=True)
    b = load(folders, "dream")
    assert "default" not in ROPE_INIT_FUNCTIONS  # the shim lived only during the load
    want, _ = default_rope(b.model.config)
    assert torch.equal(b.model.model.rotary_emb.inv_freq, want)


def test_dream_loads_wrong_rotary_without_the_buffer_shim(folders):
    """What `rotary_buffers` repairs: with only the rope entry, inv_freq is whatever memory held."""
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    from runtime.backends.shims import loading

    cls = get_class_from_dynamic_module("modeling_dream.DreamModel", str(folders["dream"]))
    with loading(("rope_default",)):
        model = cls.from_pretrained(folders["dream"])
    assert not torch.equal(model.model.rotary_emb.inv_freq, default_rope(model.config)[0])


def test_diffucoder_stops_at_dlm_pad(folders):
    """DiffuCoder fills the tail with <|dlm_pad|>: it is its pad, not a banned special, so the middle
    ends there (one canvas, though max_tokens allows more)."""
    b = load(folders, "diffucoder")
    pad = b.tok.convert_tokens_to_ids("<|dlm_pad|>")
    assert b.end_id == pad and pad not in b.banned
    a, z = char(b, "a"), char(b, "z")

    def rows(ids):  # shifted head: row p speaks for slot p + 1 - start; start = bos + "x = "
        return {p: ({a: 20.0} if p + 1 - 5 == 0 else {z: 20.0} if p + 1 - 5 == 1 else {pad: 20.0})
                for p in range(len(ids))}  # fmt: skip

    script(b, rows)
    r = infill(b, max_tokens=40, canvas_tokens=16)
    assert r.text == "az" and r.stats.canvases == 1 and r.stats.tokens == 2


def test_dreamon_layout_and_expand_grows_the_span(folders):
    """DreamOn: [bos] prefix masks suffix [eos]; while the span is shorter than 6 the model asks to
    expand, then writes "a": from 2 starting slots the span grows to 6 (banning expand, as our
    loader did, would leave 2)."""
    b = load(folders, "dreamon")
    expand, a = b.tok.convert_tokens_to_ids("<|expand|>"), char(b, "a")
    prefix, suffix = [1, *b._encode("x = ")], [*b._encode(")\n"), 2]

    def rows(ids):
        span = len(ids) - len(prefix) - len(suffix)
        return {p: {expand if span < 6 else a: 20.0} for p in range(len(ids))}

    seen = script(b, rows)
    r = infill(b, ")\n", max_tokens=12, canvas_tokens=2)
    assert r.text == "aaaaaa"
    assert seen[0] == prefix + [b.mask_id] * 2 + suffix
    assert [len(s) - len(prefix) - len(suffix) for s in seen][:5] == [2, 3, 4, 5, 6]


def test_dreamon_delete_shrinks_the_span_and_keeps_later_text(folders):
    """A committed delete closes the open slots after it and leaves the span; text already
    committed after it moves left and stays (DreamOn's sampler, not a truncation)."""
    b = load(folders, "dreamon")
    delete, a, z = b.tok.convert_tokens_to_ids("<|delete|>"), char(b, "a"), char(b, "z")
    start = 1 + 4

    def rows(ids):  # shifted: row p speaks for slot p + 1 - start
        slot = {0: {a: 30.0}, 2: {z: 25.0}}
        return {p: slot.get(p + 1 - start, {delete: 10.0}) for p in range(len(ids))}

    script(b, rows)
    r = infill(b, max_tokens=12, canvas_tokens=8)
    assert r.text == "az" and r.stats.tokens == 2


def test_dreamon_expansion_is_bounded(folders):
    """A model that always asks to expand: the span stops at max_tokens and the loop ends."""
    b = load(folders, "dreamon")
    expand, z = b.tok.convert_tokens_to_ids("<|expand|>"), char(b, "z")
    script(b, lambda ids: {p: {expand: 20.0, z: 10.0} for p in range(len(ids))})
    r = infill(b, max_tokens=10, canvas_tokens=2, policy="adaptive")
    assert r.text == "z" * 10 and r.stats.forwards <= 2 * 10


def test_open_dcoder_attends_both_ways(folders):
    """Open-dCoder is transformers' Qwen2 used bidirectionally: a change to a later token changes an
    earlier position's logits through our call, but not through Qwen2's own causal forward."""
    b = load(folders, "open-dcoder")
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    later = ids.clone()
    later[0, 4] = 40
    with torch.inference_mode():
        ours, ours_later = b.call(ids), b.call(later)
        assert not torch.allclose(ours[0, :4], ours_later[0, :4])
        torch.testing.assert_close(ours[0, 5:], b.call(ids)[0, 5:])  # deterministic
    from transformers import Qwen2ForCausalLM

    causal = Qwen2ForCausalLM.from_pretrained(folders["open-dcoder"]).eval()
    with torch.inference_mode():
        torch.testing.assert_close(causal(input_ids=ids).logits[0, :4], causal(input_ids=later).logits[0, :4])


def test_open_dcoder_mask_from_generation_config(folders):
    b = load(folders, "open-dcoder")
    assert b.mask_id == 98 and b.ids.bos is None  # only generation_config.json names it
    assert type(b.model).__name__ == "Qwen2ForCausalLM"  # not the headless Qwen2Model


def test_open_dcoder_mask_from_its_tokenizer(tmp_path):
    """Open-dLLM's own scripts read tokenizer.mask_token_id: a Qwen2 folder whose tokenizer names its
    mask token is Open-dCoder too."""
    path = write_open_dcoder(tmp_path / "odc-tokenizer-mask")
    (path / "generation_config.json").unlink()
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    tok.add_special_tokens({"mask_token": "<|mdm|>"})
    tok.save_pretrained(path)
    b = load_backend(str(path))
    assert isinstance(b, MaskedBackend) and b.family.name == "open-dcoder" and b.mask_id == 98


def test_unknown_family_is_one_line(tmp_path):
    """A causal LM with a mask token in its tokenizer is no family we can run: one line saying so."""
    path = write_open_dcoder(tmp_path / "qwen-with-mask")
    (path / "generation_config.json").unlink()
    from tiny_folders import save_char_tokenizer

    save_char_tokenizer(path, extra=["<|mask|>"])
    with pytest.raises(ModelLoadError) as e:
        load_backend(str(path))
    msg = str(e.value)
    assert "\n" not in msg and "'qwen2' (Qwen2ForCausalLM)" in msg and "remote backend" in msg


def test_dreamon_deadline_drops_pending_expansions(folders):
    """At the deadline the span is committed as it stands: an expand is dropped, not grown."""
    b = load(folders, "dreamon")
    expand, z = b.tok.convert_tokens_to_ids("<|expand|>"), char(b, "z")
    script(b, lambda ids: {p: {expand: 20.0, z: 10.0} for p in range(len(ids))})
    r = infill(b, max_tokens=10, canvas_tokens=3, deadline_ms=0.001, policy="adaptive")
    assert r.stats.deadline_hit and r.stats.forwards == 1 and r.text == ""
