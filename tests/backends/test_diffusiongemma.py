"""DiffusionGemma through transformers' real `generate`, on the tiny random config of transformers' tests."""

from __future__ import annotations

import pytest
import torch

from runtime.backends.diffusiongemma import DiffusionGemmaBackend, load_diffusiongemma
from runtime.backends.prompt_cache import PromptCache
from runtime.load import load_backend
from runtime.types import BadRequest, Cancelled, InfillRequest, LargeModelOptions

STEPS = 6
PREFIX = "import os\n\ndef read(path):\n    with open(path) as f:\n        return "
SUFFIX = "\n\nprint(read('x'))\n"


def fresh(diffusiongemma_dir) -> DiffusionGemmaBackend:
    """A backend with a cold prompt cache."""
    return load_diffusiongemma(diffusiongemma_dir, options=LargeModelOptions(max_denoising_steps=STEPS))


class DecoderCount:
    """Counts decoder forwards (one per denoising step) with a hook on the real module."""

    def __init__(self, backend: DiffusionGemmaBackend) -> None:
        self.n = 0
        self._hook = backend.model.model.decoder.register_forward_hook(self._count)

    def _count(self, *args) -> None:
        self.n += 1

    def __enter__(self) -> DecoderCount:
        return self

    def __exit__(self, *exc) -> None:
        self._hook.remove()


def test_load_backend_picks_diffusiongemma(diffusiongemma_dir):
    b = load_backend(str(diffusiongemma_dir))
    assert isinstance(b, DiffusionGemmaBackend) and b.name == "diffusiongemma"
    assert b.canvas_len == 16 and {0, 2} <= b.end_ids


def test_infill_counts_steps_and_only_the_returned_texts_tokens(backend, monkeypatch):
    outputs = []
    generate = backend.model.generate

    def spy(*args, **kwargs):
        out = generate(*args, **kwargs)
        outputs.append(out)
        return out

    monkeypatch.setattr(backend.model, "generate", spy)
    with DecoderCount(backend) as count:
        r = backend.infill(InfillRequest(prefix=PREFIX, suffix=SUFFIX, max_tokens=32, seed=1))
    (out,) = outputs
    assert isinstance(r.text, str)
    assert r.stats.forwards == count.n > 0
    generated = out.sequences[0, 1:].tolist()
    assert r.stats.canvases == len(generated) // 16 and r.stats.context_tokens > 0
    # `tokens` is the generated tokens the returned text is made of, not transformers' count
    # of every non-pad token (EOS and the tokens past a cut included)
    n = r.stats.tokens
    decode = backend.tok.decode
    assert decode(generated[:n], skip_special_tokens=True).startswith(r.text)
    assert n == 0 or len(decode(generated[: n - 1], skip_special_tokens=True)) < len(r.text)


def test_same_seed_same_answer(backend):
    req = InfillRequest(prefix=PREFIX, suffix=SUFFIX, max_tokens=16, seed=3, temperature=0.8)
    state = torch.get_rng_state()
    a, b = backend.infill(req), backend.infill(req)
    assert a.text == b.text and a.stats.tokens == b.stats.tokens
    assert torch.equal(state, torch.get_rng_state())  # seeding happens on a forked generator


def test_max_tokens_bounds_the_answer(backend):
    r = backend.infill(InfillRequest(prefix=PREFIX, suffix="", max_tokens=5, seed=2))
    assert len(r.text) <= 5  # one token per character
    assert r.stats.canvases == 1 and r.stats.forwards <= STEPS
    assert r.stats.tokens <= 5  # not the canvas's 16


def test_deadline_commits_the_current_draft(backend):
    with DecoderCount(backend) as count:
        r = backend.infill(InfillRequest(prefix=PREFIX, suffix=SUFFIX, max_tokens=64, deadline_ms=1))
    assert r.stats.deadline_hit
    assert count.n == r.stats.forwards == 1
    assert r.stats.canvases == 1


def test_cancel_acts_between_denoising_steps(backend):
    calls = []

    def should_cancel() -> bool:  # false before the prompt is encoded, true after the first step
        calls.append(1)
        return len(calls) >= 2

    with DecoderCount(backend) as count, pytest.raises(Cancelled):
        backend.infill(InfillRequest(prefix=PREFIX, suffix=SUFFIX, max_tokens=64), should_cancel)
    assert count.n == 1
    # the prompt cache survives a cancelled request
    r = backend.infill(InfillRequest(prefix=PREFIX, suffix=SUFFIX, max_tokens=16))
    assert r.stats.cached_tokens > 0


def test_prompt_cache_reuses_the_common_prefix(backend, diffusiongemma_dir):
    first = InfillRequest(prefix=PREFIX, suffix=SUFFIX, max_tokens=16, seed=5)
    typed = InfillRequest(prefix=PREFIX + "f.re", suffix=SUFFIX, max_tokens=16, seed=5)
    backend.infill(first)
    before = backend.cache_stats()
    warm = backend.infill(typed)
    after = backend.cache_stats()
    ids_first, ids_typed = backend.prompt_ids(first), backend.prompt_ids(typed)
    assert ids_typed[: len(ids_first)] == ids_first  # typing at the cursor only extends the prompt
    # the cache holds all but the last prompt token, which `generate` itself encodes
    assert warm.stats.cached_tokens == len(ids_first) - 1 > 8  # beyond the tiny sliding window
    assert after.hits == before.hits + 1
    cold = fresh(diffusiongemma_dir).infill(typed)
    assert cold.stats.cached_tokens == 0
    assert (warm.text, warm.stats.tokens) == (cold.text, cold.stats.tokens)


@pytest.mark.parametrize("edit", ["append", "backspace"])
def test_cropped_cache_equals_a_fresh_encode(backend, edit):
    """Cropping must also roll back sliding-window layers, whose transformers cache forgets the past."""
    a = backend.prompt_ids(InfillRequest(prefix=PREFIX, suffix=SUFFIX))
    b = a + a[5:9] if edit == "append" else a[:-3] + a[-2:]
    with torch.inference_mode():
        reused = PromptCache(backend.model)
        reused.prepare(a)
        view, n = reused.prepare(b)
        fresh, m = PromptCache(backend.model).prepare(b)
    assert m == 0 and n == (len(a) if edit == "append" else len(a) - 3)
    assert view.get_seq_length() == fresh.get_seq_length() == len(b)
    for got, want in zip(view.layers, fresh.layers, strict=True):
        assert got.keys.shape == want.keys.shape
        torch.testing.assert_close(got.keys, want.keys, rtol=1e-5, atol=1e-5)  # float32, same ops
        torch.testing.assert_close(got.values, want.values, rtol=1e-5, atol=1e-5)


def test_single_line_stops_at_the_newline(backend):
    for seed in range(3):
        r = backend.infill(
            InfillRequest(prefix=PREFIX, suffix=SUFFIX, max_tokens=48, single_line=True, seed=seed)
        )
        assert "\n" not in r.text


def test_plain_layout_puts_the_suffix_first_and_the_prefix_last(backend):
    ids = backend.prompt_ids(InfillRequest(prefix="a = 1\nb = ", suffix="\nc = 3\n"))
    text = backend.tok.decode(ids[1:])
    assert ids[0] == backend.tok.bos_token_id
    assert text.index("c = 3") < text.index("a = 1") and text.endswith("```\na = 1\nb = ")


def test_chat_template_layout(diffusiongemma_dir, backend):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(diffusiongemma_dir)
    tok.chat_template = (
        "{% for m in messages %}<bos>[{{ m['role'] }}]{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}[model]{% endif %}"
    )
    chat = DiffusionGemmaBackend(backend.model, tok, max_denoising_steps=STEPS)
    ids = chat.prompt_ids(InfillRequest(prefix="x = ", suffix=")\n"))
    text = tok.decode(ids, skip_special_tokens=False)
    assert text.startswith("<bos>[user]Fill in the code") and "```\n)\n\n```" in text
    assert text.endswith("[model]```\nx = ")
    assert isinstance(chat.infill(InfillRequest(prefix="x = ", suffix=")\n", max_tokens=8)).text, str)


def test_rewrite_mode_is_refused(backend):
    with pytest.raises(BadRequest, match="rewrite"):
        backend.infill(InfillRequest(prefix="", suffix="", draft="x"))
