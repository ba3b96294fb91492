"""The runtime's wiring of the kernels (runtime/ops.py): the sampler and the embedded model take the
Triton kernels where the dispatch says so and give the same canvases as the reference path; the off
switches (DG_LSP_KERNELS=0, the `kernels` load option) select the reference.

No GPU here: on the CPU, Triton's interpreter (TRITON_INTERPRET=1, set by conftest.py) stands in for
a GPU, and `runtime.ops.forced_kernels()` (test only) sends CPU tensors down the kernel path.  On a
machine with CUDA the same tests put the tensors on the GPU and the ordinary dispatch takes the
compiled kernels."""

from __future__ import annotations

import contextlib

import pytest
import torch
from kernel_support import DEVICE, GPU, needs_triton

import kernels
from kernels import beliefs as kernel_beliefs
from kernels import canvas_attention
from runtime import ops
from runtime.cache import ContextCache
from runtime.canvas import canvas_spec
from runtime.model import PRESETS, CanvasKV, InfillTransformer
from runtime.policies import make_policy
from runtime.rules import ContentRule, EndBars
from runtime.sampler import CanvasState, StepBeliefs, denoise

pytestmark = needs_triton

V, MASK, PAD = 12, 1, 0  # a vocabulary smaller than one kernel block


@pytest.fixture(autouse=True)
def kernels_on(monkeypatch):
    monkeypatch.delenv(kernels.ENV_SWITCH, raising=False)
    yield
    kernels.set_kernels_enabled(True)


def kernel_path():
    """The kernel path for this machine's tensors: CUDA ones by the dispatch, CPU ones forced."""
    return contextlib.nullcontext() if GPU else ops.forced_kernels()


@contextlib.contextmanager
def reference_path():
    """The reference path: CPU tensors take it by themselves; on a GPU, kernels off."""
    kernels.set_kernels_enabled(not GPU)
    try:
        yield
    finally:
        kernels.set_kernels_enabled(True)


@pytest.fixture
def launches(monkeypatch):
    """Counts the launches of each kernel (the kernel still runs)."""
    counts = {"beliefs": 0, "attention": 0}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(ops, "triton_beliefs", counted("beliefs", kernel_beliefs.triton_beliefs))
    attention = canvas_attention.triton_canvas_attention
    monkeypatch.setattr(ops, "triton_canvas_attention", counted("attention", attention))
    return counts


def scripted(target, sharp=8.0, flat_slots=(), weak_pad_slots=()):
    """A forward that believes `target` at every slot: unsure at `flat_slots`; at `weak_pad_slots`
    pad wins the argmax with less than half the mass (the weak-end rule proposes the runner-up)."""

    def forward(canvas):
        logits = torch.zeros(len(target), V)  # (C, V)
        for i, t in enumerate(target):
            logits[i, t] = 0.0 if i in flat_slots else sharp
            if i in weak_pad_slots:
                logits[i, PAD], logits[i, t] = 2.0, 1.9
        return logits.to(DEVICE)

    return forward


def content_rule():
    visible = torch.ones(V, dtype=torch.bool)
    visible[[PAD, MASK, 4]] = False  # 4 is whitespace
    breaks = torch.zeros(V, dtype=torch.bool)
    breaks[3] = True  # 3 holds a line break
    return ContentRule.from_flags(visible, breaks, visible.clone(), breaks.clone(), pad_id=PAD)


CASES = {
    "plain": (dict(), dict()),
    "pad ends the text": (dict(flat_slots=(3, 4, 5, 6, 7)), dict()),
    "weak end": (dict(weak_pad_slots=(2, 5)), dict()),
    # pad's 0.31 there clears a lower bar: the kernel must take the spec's bar, not the default
    "weak end, lower bar": (dict(weak_pad_slots=(5,)), dict(end_bars=EndBars(0.25, 0.25))),
    "healed first slot": (dict(), dict(first_slot_ids=(9, 10))),
    "blank line": (dict(), dict(content_rule=content_rule(), stop_ids=frozenset({3}))),
    "starting text": (dict(), dict(initial=(5, MASK, MASK, 7, MASK, MASK, 9, MASK))),
}


@pytest.mark.parametrize("policy", ["sequential", "entropy"])
@pytest.mark.parametrize("case", list(CASES))
def test_the_kernel_path_gives_the_reference_canvas(case, policy, launches):
    forward_kw, spec_kw = CASES[case]
    target = [PAD, 3, 6, 7, PAD, 8, 9, 10] if case == "blank line" else [5, 6, 7, 8, 9, 10, 11, 5]
    spec = canvas_spec(8, mask_id=MASK, pad_id=PAD, banned_ids=(MASK, 2), **spec_kw)
    with reference_path():
        want = denoise(scripted(target, **forward_kw), spec, make_policy(policy, 8))
    assert launches["beliefs"] == 0
    with kernel_path():
        got = denoise(scripted(target, **forward_kw), spec, make_policy(policy, 8))
    assert launches["beliefs"] == got.forwards > 0
    assert (got.tokens, got.forwards, got.remasked) == (want.tokens, want.forwards, want.remasked)


def test_one_step_matches_the_reference_beliefs(launches):
    """Random logits, every constraint at once (banned ids, slot 0's set, blocked ends): the same
    proposals, and the same probabilities to float32 rounding (kernels/README.md, tolerance)."""
    g = torch.Generator().manual_seed(3)
    spec = canvas_spec(6, mask_id=MASK, pad_id=PAD, banned_ids=(MASK, 2), first_slot_ids=(4, 5, 9),
                       content_rule=content_rule())
    state = CanvasState.start(spec)
    state.tokens[:2], state.masked[:2] = torch.tensor([4, 4]), False  # whitespace: slot 2 is blocked
    for temperature in (0.0, 0.7):
        logits = torch.randn(6, V, generator=g).to(DEVICE)
        logits[:, PAD] += 1.5  # pad often wins: the weak-end rule and the blocked ends matter
        with reference_path():
            want = StepBeliefs(spec)(logits.clone(), state, temperature, torch.Generator().manual_seed(0))
        with kernel_path():
            got = StepBeliefs(spec)(logits, state, temperature, torch.Generator().manual_seed(0))
        if temperature == 0:
            assert torch.equal(got["proposal"], want["proposal"])
            assert torch.allclose(got["confidence"], want["confidence"], rtol=1e-5, atol=1e-6)
        assert got["proposal"].device.type == "cpu" and int(got["proposal"][2]) not in (PAD, 3)
        for key in ("entropy", "current_confidence"):
            assert torch.allclose(got[key], want[key], rtol=1e-5, atol=1e-6), key
    assert launches["beliefs"] == 2


def test_sampling_on_the_kernel_path_draws_from_the_generator(launches):
    """Temperature > 0: one uniform number per slot from the request's generator (inverse CDF), so
    the same seed gives the same canvas; a confident model gives its target either way."""
    target = [5, 6, 7, 8, 9, 10, 11, 5]
    spec = canvas_spec(8, mask_id=MASK, pad_id=PAD, banned_ids=(MASK,))
    runs = []
    for _ in range(2):
        with kernel_path():
            out = denoise(scripted(target, sharp=30.0), spec, make_policy("entropy", 8), temperature=0.8,
                          generator=torch.Generator().manual_seed(7))
        runs.append(out.tokens)
    assert runs[0] == runs[1] == target
    flat = scripted(target, flat_slots=range(8))
    draws = []
    for _ in range(2):
        with kernel_path():
            out = denoise(flat, spec, make_policy("sequential", 8), temperature=1.0,
                          generator=torch.Generator().manual_seed(11))
        draws.append(out.tokens)
    assert draws[0] == draws[1] and MASK not in draws[0]
    assert launches["beliefs"] > 0


def test_the_off_switches_select_the_reference(monkeypatch, launches):
    target = [5, 6, 7, 8]
    spec = canvas_spec(4, mask_id=MASK, pad_id=PAD, banned_ids=(MASK,))
    monkeypatch.setenv(kernels.ENV_SWITCH, "0")
    with kernel_path():
        assert denoise(scripted(target), spec, make_policy("sequential", 4)).tokens == target
    assert launches["beliefs"] == 0
    monkeypatch.delenv(kernels.ENV_SWITCH)
    from runtime.load import load_backend

    load_backend("tiny", threads=1, kernels=False)  # the `kernels` setting and --no-kernels
    assert not kernels.kernels_enabled()
    with kernel_path():
        assert denoise(scripted(target), spec, make_policy("sequential", 4)).tokens == target
    assert launches["beliefs"] == 0
    load_backend("tiny", threads=1)  # the default turns them back on
    assert kernels.kernels_enabled()
    with kernel_path():
        denoise(scripted(target), spec, make_policy("sequential", 4))
    assert launches["beliefs"] == 4


def test_a_rule_the_kernel_does_not_know_keeps_the_reference(launches):
    class Odd(ContentRule):
        pass

    rule = content_rule()
    spec = canvas_spec(4, mask_id=MASK, pad_id=PAD, banned_ids=(MASK,),
                       content_rule=Odd(visible=rule.visible, ends=rule.ends))
    with kernel_path():
        denoise(scripted([5, 6, 7, 8]), spec, make_policy("sequential", 4))
    assert launches["beliefs"] == 0


def test_the_model_attends_its_canvas_with_the_kernel(launches):
    """The embedded model's denoising forward: the canvas attention kernel over the CanvasKV's
    context (a view, no copy) against the model's own SDPA over the room, per layer."""
    torch.manual_seed(0)
    model = InfillTransformer(PRESETS["tiny"]).to(DEVICE).eval()
    ctx = torch.randint(4, 261, (1, 37), device=DEVICE)  # T not a multiple of the kernel's tile
    canvas = torch.randint(4, 261, (1, 16), device=DEVICE)
    with torch.inference_mode():
        kv = model.encode(ctx, None)
        with reference_path():
            want = model.denoise(canvas, CanvasKV(kv, 16))
        with kernel_path():
            got = model.denoise(canvas, CanvasKV(kv, 16))
    assert launches["attention"] == model.args.n_layers
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)  # float32: only the sums' order differs


def test_the_embedded_backend_runs_the_kernels_end_to_end(launches):
    """The forward closure keeps the logits where the model ran (runtime/cache.py), the sampler's
    dispatch sends them to the fused kernel; a random tiny model gives the reference's text."""
    from runtime.load import load_embedded
    from runtime.types import InfillRequest

    backend = load_embedded("tiny", device=DEVICE, threads=1, dtype="float32")
    req = InfillRequest(prefix="def f(x):\n    return ", suffix="\n", max_tokens=6, canvas_tokens=6,
                        policy="threshold")
    with reference_path():
        want = backend.infill(req).text
    assert launches == {"beliefs": 0, "attention": 0}
    backend.cache = ContextCache()  # encode the context again
    with kernel_path():
        got = backend.infill(req).text
    assert launches["beliefs"] > 0 and launches["attention"] > 0
    assert got == want
