"""Canvas beliefs: the reference against today's sampler arithmetic (exactly), the Triton kernel against
the reference on small awkward shapes (under the interpreter on CPU), the launcher's messages, and
the real shapes on a GPU."""

from __future__ import annotations

import pytest
import torch
from kernel_support import DEVICE, gpu_only, needs_triton

from kernels.beliefs import constraint_rows, constraint_table, reference, triton_beliefs
from runtime.canvas import CanvasSpec, canvas_spec
from runtime.rules import ContentRule, _undecided_or_text_before
from runtime.sampler import CanvasState, beliefs

PAD, MASK = 0, 1


def sampler_spec(c: int, v: int, w: int) -> tuple[CanvasSpec, torch.Tensor, torch.Tensor]:
    """A spec with every constraint the sampler applies, and a canvas state where slots 0-2 are
    blocked by the content rule (slots 0 and 1 hold committed whitespace)."""
    g = torch.Generator().manual_seed(1)
    visible = torch.rand(w, generator=g) < 0.5  # (W,)
    breaks = torch.rand(w, generator=g) < 0.2
    visible[[5, 6]] = False
    rule = ContentRule.from_flags(visible, breaks, visible.clone(), breaks.clone(), pad_id=PAD)
    spec = canvas_spec(
        c, mask_id=MASK, pad_id=PAD, banned_ids=(MASK, 2, 3), first_slot_ids=(5, 7, 9, 40),
        content_rule=rule,
    )  # fmt: skip
    tokens = torch.full((c,), MASK)  # (C,)
    tokens[:2] = torch.tensor([5, 6])
    masked = tokens == MASK
    return spec, tokens, masked


def content_rule(spec: CanvasSpec) -> ContentRule:
    return next(r for r in spec.rules if isinstance(r, ContentRule))


def sampler_step(spec, tokens, masked, logits, temperature):
    """`runtime.sampler.beliefs`, the sampler's own step from logits to beliefs (greedy proposals)."""
    state = CanvasState(tokens.clone(), masked.clone(), torch.where(masked, -1, 0), torch.zeros_like(tokens),
                        MASK)  # fmt: skip
    x = logits.float() + spec.bias(logits.shape[-1])  # (C, V)
    view = beliefs(x, spec, state, temperature, torch.Generator().manual_seed(0))
    return view["proposal"], view["confidence"], view["entropy"], view["current_confidence"]


def blocked_slots(spec, tokens, masked):
    rule = content_rule(spec)
    _, content = rule._ends_and_content(tokens, masked)
    return ~_undecided_or_text_before(masked, content)  # (C,) bool


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_reference_is_the_sampler_step_exactly(temperature):
    c, v, w = 6, 120, 100  # the content rule's tables are narrower than the vocabulary, as they may be
    spec, tokens, masked = sampler_spec(c, v, w)
    logits = torch.randn(c, v, generator=torch.Generator().manual_seed(2)) * 2
    top = logits.max(-1).values
    logits[3, PAD] = top[3] + 0.1  # pad wins slot 3 weakly (the weak-end rule proposes text) and 4 strongly
    logits[4, PAD] = top[4] + 6.0
    want = sampler_step(spec, tokens, masked, logits, temperature)
    table = constraint_table(v, spec.banned_ids, spec.first_slot_ids, content_rule(spec).ends)
    rows = constraint_rows(c, blocked_slots(spec, tokens, masked))
    assert rows.tolist() == [3, 2, 2, 0, 0, 0]
    got = reference(logits, table, rows, temperature=temperature, token=tokens, pad_id=PAD)
    assert torch.equal(got.entropy, want[2]) and torch.equal(got.token_prob, want[3])
    if temperature == 0:  # with T > 0 the sampler samples; the proposal rule is then the sample's
        assert torch.equal(got.proposal, want[0]) and torch.equal(got.confidence, want[1])
        assert want[0][3] != PAD and want[0][4] == PAD


def test_reference_sample_follows_the_distribution():
    """Inverse CDF on evenly spaced u: each id is drawn for a share of rows equal to its probability."""
    n = 4000
    logits = torch.tensor([[0.0, 1.0, -torch.inf, 2.0, 0.5]]).expand(n, -1)
    u = (torch.arange(n) + 0.5) / n  # (n,)
    got = reference(logits, [4], temperature=0.5, uniform=u)
    probs = torch.softmax(torch.tensor([0.0, 1.0, -torch.inf, 2.0, -torch.inf]) / 0.5, -1)
    share = torch.bincount(got.proposal, minlength=5) / n
    assert torch.allclose(share, probs, atol=1.0 / n)  # one row of rounding per bin edge
    assert torch.allclose(got.confidence, probs[got.proposal])


# ---------------------------------------------------------------- kernel vs reference


def awkward_cases():
    """(name, logits, kwargs, block_v): vocabularies that are not a multiple of the block."""
    g = torch.Generator().manual_seed(3)
    c, v = 5, 300  # block 64: four whole blocks and a partial one
    spec, tokens, masked = sampler_spec(c, v, 250)
    x = torch.randn(c, v, generator=g) * 3
    x[3, PAD] = x[3].max() + 0.1  # pad wins weakly (the weak-end rule proposes text) and strongly
    x[4, PAD] = x[4].max() + 6.0
    table = constraint_table(v, spec.banned_ids, spec.first_slot_ids, content_rule(spec).ends)
    rows = constraint_rows(c, blocked_slots(spec, tokens, masked))
    sampler = dict(banned=table, ban_rows=rows, token=tokens, pad_id=PAD)
    yield "sampler constraints, greedy", x, sampler, 64

    one = torch.randn(1, 77, generator=g)
    yield "C = 1, no constraints", one, dict(token=torch.tensor([500])), 16  # clamped to V - 1

    only = torch.ones(3, v, dtype=torch.bool)  # every id banned but one, each row's in another block
    keep = [0, 130, 299]
    only[torch.arange(3), keep] = False
    lone = dict(banned=only, token=torch.tensor(keep))
    yield "all banned but one", torch.randn(3, v, generator=g), lone, 64

    inf = torch.randn(4, v, generator=g)
    inf[:, :200] = -torch.inf  # the first blocks hold no finite logit at all
    inf[1, 250:280] = -torch.inf
    inf[2, ::3] = -torch.inf
    yield "-inf logits", inf, dict(banned=[201, 202], token=torch.tensor([0, 210, 255, 299])), 64

    ties = torch.randint(-3, 3, (4, v), generator=g).float()  # many exact ties: the lowest id wins
    yield "ties across blocks", ties, dict(pad_id=PAD), 64

    for dtype in (torch.bfloat16, torch.float16):
        low = (torch.randn(c, v, generator=g) * 4).to(dtype)
        yield f"{dtype}", low, dict(sampler, temperature=0.7), 64

    hot = torch.randn(c, v, generator=g) * 2
    u = torch.rand(c, generator=g)
    yield "sampling at T = 0.9", hot, dict(banned=table, ban_rows=rows, temperature=0.9, uniform=u), 64


CASES = list(awkward_cases())


@needs_triton
@pytest.mark.parametrize(("name", "logits", "kwargs", "block_v"), CASES, ids=[c[0] for c in CASES])
def test_kernel_matches_reference(name, logits, kwargs, block_v):
    kwargs = {k: val.to(DEVICE) if isinstance(val, torch.Tensor) else val for k, val in kwargs.items()}
    logits = logits.to(DEVICE)
    got = triton_beliefs(logits, block_v=block_v, **kwargs)
    want = reference(logits, **kwargs)
    # ids exactly: the test logits have no near-ties (only exact ones, which both break to the lowest id)
    assert torch.equal(got.proposal, want.proposal)
    # both compute in float32 from the same float32 (or upcast) logits and differ only in the order of
    # summation (blockwise online softmax vs log_softmax over the row): a few float32 ulps
    torch.testing.assert_close(got.confidence, want.confidence, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.entropy, want.entropy, rtol=1e-5, atol=1e-5)
    if want.token_logp is not None:
        torch.testing.assert_close(got.token_logp, want.token_logp, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- launcher checks

X = torch.zeros(3, 10)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: triton_beliefs(torch.zeros(10)), r"logits must be a \(C, V\) tensor, got shape \(10,\)"),
        (lambda: triton_beliefs(torch.zeros(3, 10, dtype=torch.int32)), "float32, float16 or bfloat16"),
        (lambda: triton_beliefs(torch.zeros(3, 0)), "empty vocabulary"),
        (lambda: triton_beliefs(X, torch.zeros(2, 9, dtype=torch.bool)), r"with V = 10, got torch.bool"),
        (lambda: triton_beliefs(X, torch.zeros(10)), "bool tensor"),
        (lambda: triton_beliefs(X, [3, 10]), r"banned ids must lie in \[0, 10\), got \[10\]"),
        (lambda: triton_beliefs(X, None, torch.zeros(3, dtype=torch.int32)), "ban_rows given without"),
        (lambda: triton_beliefs(X, [1], torch.zeros(4, dtype=torch.int32)), r"ban_rows must be a \(C,\)"),
        (lambda: triton_beliefs(X, token=torch.zeros(2, dtype=torch.long)), r"token must be a \(C,\) tensor"),
        (lambda: triton_beliefs(X, token=torch.zeros(3)), "token must hold integer ids"),
        (lambda: triton_beliefs(X, uniform=torch.rand(3)), "uniform given with temperature 0"),
        (lambda: triton_beliefs(X, temperature=-1.0), "temperature must be >= 0, got -1.0"),
        (lambda: triton_beliefs(X, temperature=float("nan")), "temperature must be >= 0"),
        (lambda: triton_beliefs(X, pad_id=10), "pad_id 10 is outside the vocabulary of 10 ids"),
        (lambda: triton_beliefs(X, block_v=48), "block_v must be a power of two >= 16, got 48"),
        (lambda: triton_beliefs(torch.zeros(10, 3).t()), "contiguous along V"),
        (lambda: constraint_table(10, [1], ends=torch.zeros(2, 11, dtype=torch.bool)), r"W <= 10"),
    ],
)
def test_launcher_names_the_bad_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_launcher_refuses_cpu_tensors_outside_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="needs CUDA tensors, got cpu"):
        triton_beliefs(X)


# ---------------------------------------------------------------- real shapes on a GPU


@gpu_only
@needs_triton
@pytest.mark.parametrize(("c", "v"), [(32, 8192), (64, 126_464), (256, 262_144)])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_kernel_at_real_shapes(c, v, dtype):
    g = torch.Generator(device="cuda").manual_seed(0)
    logits = (torch.randn(c, v, device="cuda", generator=g) * 4).to(dtype)
    logits[:, PAD] = 9.0
    table = constraint_table(v, range(1, 40), first_slot_ids=range(100, 600), device="cuda")
    rows = constraint_rows(c, device="cuda")  # slot 0: the allowed set; the others: the banned ids
    token = torch.randint(0, v, (c,), device="cuda", generator=g)
    kw = dict(banned=table, ban_rows=rows, token=token, pad_id=PAD)
    got, want = triton_beliefs(logits, **kw), reference(logits, **kw)
    assert (got.proposal == want.proposal).float().mean() >= 0.99  # near-ties among 262k random logits
    torch.testing.assert_close(got.entropy, want.entropy, rtol=1e-4, atol=1e-4)  # sums of 262k terms
    torch.testing.assert_close(got.token_logp, want.token_logp, rtol=1e-4, atol=1e-4)
    u = torch.rand(c, device="cuda", generator=g)
    got = triton_beliefs(logits, table, rows, temperature=0.8, uniform=u)
    want = reference(logits, table, rows, temperature=0.8, uniform=u)
    # a flat row's bins are ~1/V wide, so float32 rounding of the running sums (ours blockwise, torch's
    # cumsum) moves a few draws to a neighbouring id; each draw's own probability must be exact
    assert (got.proposal == want.proposal).float().mean() >= 0.9
    own = reference(logits, table, rows, temperature=0.8, token=got.proposal).token_prob
    torch.testing.assert_close(got.confidence, own, rtol=1e-4, atol=1e-7)
