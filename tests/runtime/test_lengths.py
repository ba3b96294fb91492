"""Length search (`runtime.lengths`, config.json `decoding.length_search` and `decoding.causal_line`):
parsed and checked, the causal head's joint score and its own line, and when the embedded backend
searches."""

import dataclasses

import pytest
import torch

from runtime.backends.embedded import EmbeddedBackend
from runtime.canvas import canvas_target
from runtime.context import build_context
from runtime.decoding import Decoding
from runtime.lengths import CAUSAL_SLACK, causal_line, join_tokens, joint_log_probs
from runtime.text import finish, strip_heal
from runtime.types import Cancelled, InfillRequest

LINE = InfillRequest(
    "def area(w, h):\n    return ", "\n\nprint(area(2, 3))\n", single_line=True, max_tokens=32
)


def test_the_section_names_lengths_and_refuses_bad_ones():
    d = Decoding.from_config({"length_search": [20, 3, 3]})
    assert d.length_search == (3, 20)
    assert d.describe() == "end bars 0.5 / 0.5; length search 3, 20"
    assert Decoding.from_config({}).length_search == ()
    for bad in (3, [0], [65], [2.5], [True], ["3"]):
        with pytest.raises(ValueError, match=r"decoding\.length_search must be a list of token counts 1-64"):
            Decoding.from_config({"length_search": bad})


def test_batched_joint_scores_are_each_candidate_s_own(tiny_backend):
    """Right padding in the batch changes nothing: each score equals the candidate scored alone, token
    by token from the causal head (the context's last row predicts the first token)."""
    tok, model = tiny_backend.tok, tiny_backend.model
    ctx = build_context(tok, LINE.prefix, LINE.suffix, 320)
    texts = [canvas_target(tok, ctx.heal, t) for t in ("w * h", "w", "(w * h) / 2 + 1")]
    join = join_tokens(tok, LINE.suffix)
    with torch.inference_mode():
        kv = model.encode(torch.tensor([ctx.ids]), None)
        batched = joint_log_probs(model, kv, ctx.ids[-1], texts, join)
        for ids, score in zip(texts, batched, strict=True):
            seq = [*ctx.ids, *ids, *join]
            logp = torch.log_softmax(
                model.forward_train(
                    torch.tensor([seq]), len(seq), torch.ones(1, len(seq), dtype=torch.bool)
                ).float(),
                -1,
            )[0]
            own = sum(float(logp[i - 1, seq[i]]) for i in range(len(ctx.ids), len(seq)))
            assert score == pytest.approx(own, abs=1e-3)
    assert join == tok.encode(LINE.suffix)[: len(join)]


def _searching(backend: EmbeddedBackend, lengths: tuple[int, ...]) -> EmbeddedBackend:
    return EmbeddedBackend(
        backend.model, backend.tok, decoding=dataclasses.replace(backend.decoding, length_search=lengths)
    )


def test_a_single_line_of_unknown_length_is_searched_and_answered_by_a_candidate(tiny_backend):
    plain, searching = _searching(tiny_backend, ()), _searching(tiny_backend, (3, 8))
    free = plain.infill(LINE)
    found = searching.infill(LINE)
    exact = {plain.infill(dataclasses.replace(LINE, max_tokens=n, exact_length=True)).text for n in (3, 8)}
    assert found.text in exact | {free.text}
    # every chain's forwards and the scoring pass are counted
    assert found.stats.forwards > free.stats.forwards + 2


@pytest.mark.parametrize(
    "change",
    [
        {"single_line": False},
        {"exact_length": True, "max_tokens": 5},
        {"temperature": 0.7},
        {"canvas_tokens": 16},
        {"draft": "w * h"},
    ],
)
def test_no_search_where_the_length_is_given_or_the_request_is_not_a_greedy_line(tiny_backend, change):
    req = dataclasses.replace(LINE, **change)
    plain, searching = _searching(tiny_backend, ()), _searching(tiny_backend, (3, 8))
    assert searching.infill(req).stats.forwards == plain.infill(req).stats.forwards


def test_the_section_declares_the_causal_line_and_refuses_a_non_boolean():
    d = Decoding.from_config({"causal_line": True})
    assert d.causal_line and d.searches and d.length_search == ()
    assert d.describe() == "end bars 0.5 / 0.5; causal line"
    assert not Decoding.from_config({}).searches
    for bad in (1, "true", None):
        with pytest.raises(ValueError, match=r"decoding\.causal_line must be true or false"):
            Decoding.from_config({"causal_line": bad})


@pytest.fixture(scope="module")
def shipped():
    """The shipped model in float32 (a random model seldom writes a line break, the trained one does)."""
    from runtime.load import load_embedded

    return load_embedded("default", threads=1, dtype="float32")


def _greedy_uncached(
    model, ids: list[int], banned: torch.Tensor, n: int, first: tuple[int, ...]
) -> list[int]:
    """n greedy tokens from the causal head, the first one of `first`, the whole sequence encoded again
    at every step."""
    out = []
    for step in range(n):
        seq = torch.tensor([ids + out])
        logits = model.forward_train(seq, seq.shape[1], torch.ones_like(seq, dtype=torch.bool))[0, -1].float()
        logits = logits.masked_fill(banned, float("-inf"))
        if step == 0:
            allowed = torch.zeros_like(banned)
            allowed[list(first)] = True
            logits = logits.masked_fill(~allowed, float("-inf"))
        out.append(int(logits.argmax()))
    return out


NAMED = InfillRequest(
    "class A:\n    def __init__(self, name):\n        self.name = ", "\n", single_line=True, max_tokens=32
)
"""A line the shipped model's causal head ends (on `LINE` it runs on past a canvas)."""


@pytest.mark.parametrize("prefix", [NAMED.prefix, "def size(items):\n    ret"])
def test_the_causal_line_is_the_uncached_greedy_decode_through_the_line_break(shipped, prefix):
    """The first token begins with the healed text (a space, a cut word), as a canvas's first slot does."""
    tok, model, banned = shipped.tok, shipped.model, shipped.never_written
    ctx = build_context(tok, prefix, "\n", 320)
    assert ctx.heal
    first = tok.ids_starting_with(ctx.heal.encode())
    with torch.inference_mode():
        kv = model.encode(torch.tensor([ctx.ids]), None)
        line, spent = causal_line(model, tok, kv, ctx.ids[-1], heal=ctx.heal, banned=banned, limit=24)
        assert line is not None and spent == len(line) and line[0] in first
        assert line == _greedy_uncached(model, ctx.ids, banned, len(line), first)
        assert b"\n" in tok.token_bytes(line[-1]) and not any(b"\n" in tok.token_bytes(t) for t in line[:-1])
        # no line break within the limit: no candidate, every step counted
        if len(line) > 1:
            assert causal_line(model, tok, kv, ctx.ids[-1], heal=ctx.heal, banned=banned, limit=1) == (
                None,
                1,
            )


@pytest.mark.parametrize("prefix", [NAMED.prefix, "def size(items):\n    ret"])
def test_a_draft_gives_the_same_causal_line_in_fewer_forwards(shipped, prefix):
    """Greedy speculative decoding: the draft's tokens the head agrees with are taken in one forward;
    a wrong draft costs nothing, a partly right one saves its right tokens' steps."""
    tok, model, banned = shipped.tok, shipped.model, shipped.never_written
    ctx = build_context(tok, prefix, "\n", 320)
    with torch.inference_mode():
        kv = model.encode(torch.tensor([ctx.ids]), None)
        line, plain = causal_line(model, tok, kv, ctx.ids[-1], heal=ctx.heal, banned=banned, limit=24)
        assert line is not None and plain == len(line)
        wrong = [t for t in tok.encode(" zzz qqq") if t not in line]
        for draft, spent in [
            (line, 1), (line[:-1], 1), (wrong, plain), (line[:1] + wrong, plain - 1), ([*line, *wrong], 1)
        ]:  # fmt: skip
            got = causal_line(
                model, tok, kv, ctx.ids[-1], heal=ctx.heal, banned=banned, limit=24, draft=draft
            )
            assert got == (line, max(spent, 1)), draft


def test_a_cancelled_request_stops_the_causal_line_between_steps(shipped):
    tok, model, banned = shipped.tok, shipped.model, shipped.never_written
    ctx = build_context(tok, NAMED.prefix, "\n", 320)
    calls = []
    with torch.inference_mode():
        kv = model.encode(torch.tensor([ctx.ids]), None)
        with pytest.raises(Cancelled):
            causal_line(
                model, tok, kv, ctx.ids[-1], heal=ctx.heal, banned=banned, limit=24,
                should_cancel=lambda: calls.append(1) or True,
            )  # fmt: skip
    assert len(calls) == 1  # checked before the second step, never before the first


def test_a_backend_with_the_causal_line_answers_with_one_of_its_candidates(shipped):
    causal = EmbeddedBackend(
        shipped.model, shipped.tok, decoding=dataclasses.replace(shipped.decoding, causal_line=True)
    )
    plain = EmbeddedBackend(
        shipped.model, shipped.tok, decoding=dataclasses.replace(shipped.decoding, causal_line=False)
    )
    free = plain.infill(NAMED)
    found = causal.infill(NAMED)
    ctx = build_context(shipped.tok, NAMED.prefix, NAMED.suffix, 320)
    with torch.inference_mode():
        kv = shipped.model.encode(torch.tensor([ctx.ids]), None)
        guess = canvas_target(shipped.tok, ctx.heal, free.text)  # the canvas's text: the causal line's draft
        line, spent = causal_line(
            shipped.model, shipped.tok, kv, ctx.ids[-1], heal=ctx.heal, banned=causal.never_written,
            limit=min(33, len(guess) + CAUSAL_SLACK), draft=guess,
        )  # fmt: skip
    assert line is not None
    written = finish(strip_heal(shipped.tok, ctx.heal, line), NAMED)
    assert found.text in {free.text, written}
    scored = written != free.text  # two texts: one scoring pass
    assert found.stats.forwards == free.stats.forwards + spent + scored
    # on LINE the causal head runs on past the canvas's text: no candidate, no choice, its steps counted
    cut = len(canvas_target(shipped.tok, " ", plain.infill(LINE).text)) + CAUSAL_SLACK
    assert causal.infill(LINE).text == plain.infill(LINE).text
    assert causal.infill(LINE).stats.forwards == plain.infill(LINE).stats.forwards + min(33, cut)
    # a request that is not a greedy line of unknown length writes no causal line
    block = dataclasses.replace(NAMED, single_line=False)
    assert causal.infill(block).stats.forwards == plain.infill(block).stats.forwards
