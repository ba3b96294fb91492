"""DiffusionGemma decoding controls on transformers' real `generate`: temperature, cancel and deadline
between canvases and during a cold prompt encode, the requests this backend refuses."""

from __future__ import annotations

import pytest
import torch
from test_diffusiongemma import PREFIX, STEPS, SUFFIX, DecoderCount, fresh
from tiny_folders import tiny_diffusiongemma_config
from transformers.models.diffusion_gemma.generation_diffusion_gemma import EntropyBoundSampler

from runtime.backends import diffusiongemma as dg
from runtime.backends.diffusiongemma import DiffusionGemmaBackend
from runtime.backends.prompt_cache import PromptCache
from runtime.types import BadRequest, Cancelled, InfillRequest

LONG = InfillRequest(prefix=PREFIX, suffix=SUFFIX, max_tokens=48)  # up to three 16-token canvases


@pytest.fixture
def steps(monkeypatch) -> list[dict]:
    """Every call of transformers' `EntropyBoundSampler.accept_canvas`: what it was given and accepted."""
    seen: list[dict] = []
    accept = EntropyBoundSampler.accept_canvas

    def spy(self, current_canvas, denoiser_canvas, logits, cur_step):
        out = accept(self, current_canvas, denoiser_canvas, logits, cur_step)
        seen.append({"proposal": denoiser_canvas.clone(), "logits": logits.clone(),
                     "accepted": int(self.accepted_token_mask.sum())})  # fmt: skip
        return out

    monkeypatch.setattr(EntropyBoundSampler, "accept_canvas", spy)
    return seen


@pytest.fixture(scope="module")
def peaked(diffusiongemma_dir) -> DiffusionGemmaBackend:
    """transformers' tiny config with initializer_range 0.2: its logits are peaked enough for the
    entropy bound to react to the temperature (at 0.02 every schedule accepts one slot per step)."""
    # importing the model imports triton: not at collection time (tests/kernels/conftest.py)
    from transformers import AutoTokenizer, DiffusionGemmaForBlockDiffusion

    config = tiny_diffusiongemma_config()
    config.text_config.initializer_range = config.initializer_range = 0.2
    torch.manual_seed(0)
    model = DiffusionGemmaForBlockDiffusion(config)
    tok = AutoTokenizer.from_pretrained(diffusiongemma_dir)
    return DiffusionGemmaBackend(model, tok, max_denoising_steps=48)


def test_temperature_zero_is_deterministic_argmax(backend, steps):
    a = backend.infill(InfillRequest(prefix=PREFIX, suffix=SUFFIX, max_tokens=32, seed=1))
    first = list(steps)
    b = backend.infill(InfillRequest(prefix=PREFIX, suffix=SUFFIX, max_tokens=32, seed=2))
    assert (a.text, a.stats.forwards) == (b.text, b.stats.forwards)  # the seed does not matter at 0
    assert first
    for step in first:  # every accepted token is the argmax of that step's logits
        assert torch.equal(step["proposal"], step["logits"].argmax(-1))


def test_sampling_follows_the_seed(backend):
    requests = [
        InfillRequest(prefix=PREFIX, suffix=SUFFIX, max_tokens=16, seed=s, temperature=1.0) for s in range(4)
    ]
    answers = {backend.infill(r).text for r in requests}
    assert len(answers) > 1


def test_temperature_changes_the_draw_not_the_parallelism(peaked, steps):
    """Step 1 sees the same prompt and the same noise canvas at every temperature (seeded alike),
    so the entropy bound accepts the same number of slots: only the schedule decides it."""
    accepted = {}
    for temperature in (0.0, 0.05, 0.8, 2.0):
        steps.clear()
        peaked.infill(InfillRequest(prefix=PREFIX, suffix=SUFFIX, max_tokens=16, temperature=temperature))
        accepted[temperature] = steps[0]["accepted"]
    assert len(set(accepted.values())) == 1, accepted
    # what the old mapping (t_max = temperature) did to the same step: the check above can fail
    steps.clear()
    ids = torch.tensor([peaked.prompt_ids(InfillRequest(prefix=PREFIX, suffix=SUFFIX))])
    torch.manual_seed(dg.ARGMAX_NOISE_SEED)
    peaked.model.generate(ids, max_new_tokens=16, max_denoising_steps=48, t_max=0.05, t_min=0.025)
    assert steps[0]["accepted"] > accepted[0.0]


def _first_canvas_hook(monkeypatch, action) -> dict:
    """Run `action(watch)` when the first canvas reaches the streamer, then record the decoder count."""
    seen: dict = {"canvases": 0}
    put = dg._StepWatch.put

    def spy(self, value):
        if self._seen_prompt:
            seen["canvases"] += 1
            if seen["canvases"] == 1:
                action(self)
                seen["forwards"] = self.forwards
        put(self, value)

    monkeypatch.setattr(dg._StepWatch, "put", spy)
    return seen


@pytest.fixture
def endless(diffusiongemma_dir) -> DiffusionGemmaBackend:
    """A backend whose answers never end early: the random tiny model puts an end token (EOS or
    pad) in its first canvas, so for the between-canvas tests those ids are no end (ours and
    `generate`'s), and a 48-token request takes three canvases."""
    b = fresh(diffusiongemma_dir)
    b.end_ids = set()
    b.model.generation_config.eos_token_id = None
    assert b.infill(LONG).stats.canvases == 3
    return b


def test_cancel_acts_between_canvases(endless, monkeypatch):
    flag = {"cancel": False}
    seen = _first_canvas_hook(monkeypatch, lambda watch: flag.update(cancel=True))
    with DecoderCount(endless) as count, pytest.raises(Cancelled):
        endless.infill(LONG, lambda: flag["cancel"])
    assert seen["canvases"] == 1 and count.n == seen["forwards"]  # no step of the second canvas


def test_deadline_acts_between_canvases(endless, monkeypatch):
    """The deadline's clock is moved on when the first canvas is done (timing a shared 2-core VM
    to land between two canvases would be flaky): the answer is that canvas, with no more steps."""
    full = endless.infill(LONG)

    def late(watch) -> None:
        watch.started -= 3600.0  # an hour ago

    seen = _first_canvas_hook(monkeypatch, late)
    with DecoderCount(endless) as count:
        r = endless.infill(InfillRequest(prefix=PREFIX, suffix=SUFFIX, max_tokens=48, deadline_ms=60_000))
    assert r.stats.deadline_hit and r.stats.canvases == 1
    assert count.n == seen["forwards"] == r.stats.forwards
    assert full.text.startswith(r.text) and len(r.text) < len(full.text)  # the first canvas of it


def test_an_answer_settled_by_its_canvas_stops_generate(backend):
    """A canvas holding an end token ends the answer, so `generate` is not asked for another."""
    r = backend.infill(LONG)
    assert r.stats.canvases == 1 and len(r.text) < 16


def test_cancel_acts_during_a_cold_prompt_encode(diffusiongemma_dir):
    b = fresh(diffusiongemma_dir)
    b.prompt_cache.chunk = 8
    ids = b.prompt_ids(LONG)
    calls = []

    def should_cancel() -> bool:  # false before the encode starts, true at the first chunk boundary
        calls.append(1)
        return len(calls) >= 2

    encodes = []
    hook = b.model.model.encoder.register_forward_hook(lambda *a: encodes.append(1))
    try:
        with DecoderCount(b) as count, pytest.raises(Cancelled):
            b.infill(LONG, should_cancel)
    finally:
        hook.remove()
    assert len(encodes) == 1 and count.n == 0  # one chunk encoded, no denoising step
    assert b.prompt_cache.ids == ids[:8]  # what was encoded is kept
    assert b.infill(LONG).stats.cached_tokens == 8


def test_deadline_during_a_cold_prompt_encode_answers_empty(diffusiongemma_dir):
    b = fresh(diffusiongemma_dir)
    b.prompt_cache.chunk = 8
    with DecoderCount(b) as count:
        r = b.infill(InfillRequest(prefix=PREFIX, suffix=SUFFIX, max_tokens=16, deadline_ms=1e-6))
    assert r.stats.deadline_hit and r.text == "" and r.stats.tokens == 0 and count.n == 0
    assert 0 < len(b.prompt_cache.ids) < len(b.prompt_ids(LONG))


def test_chunked_encode_equals_one_encode(backend):
    ids = backend.prompt_ids(LONG)
    with torch.inference_mode():
        chunked = PromptCache(backend.model)
        chunked.chunk = 5  # crosses the tiny sliding window (8) several times
        view, _ = chunked.prepare(ids)
        whole, _ = PromptCache(backend.model).prepare(ids)
    for got, want in zip(view.layers, whole.layers, strict=True):
        torch.testing.assert_close(got.keys, want.keys, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(got.values, want.values, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("field", "value"), [("canvas_tokens", 8), ("exact_length", True)], ids=["canvas_tokens", "exact_length"]
)
def test_canvas_size_and_exact_length_are_refused(backend, field, value):
    with pytest.raises(BadRequest, match=rf"diffusiongemma backend cannot honour {field}"):
        backend.infill(InfillRequest(prefix="x = ", suffix="", max_tokens=8, **{field: value}))


def test_selection_requests_leave_the_canvas_size_to_such_a_backend():
    from dg_lsp.requests import selection_request
    from dg_lsp.settings import Settings

    text = "a = 1\nb = 2\n"
    assert selection_request(text, 4, 5, Settings(), canvas_len=None).canvas_tokens is None
    assert selection_request(text, 4, 5, Settings(), canvas_len=32).canvas_tokens == 5


def test_steps_bound_each_canvas(backend):
    with DecoderCount(backend) as count:
        r = backend.infill(InfillRequest(prefix=PREFIX, suffix=SUFFIX, max_tokens=16))
    assert count.n == r.stats.forwards <= STEPS
