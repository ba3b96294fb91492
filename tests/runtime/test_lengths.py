"""Length search (`runtime.lengths`, config.json `decoding.length_search`): parsed and checked, the
causal head's joint score, and when the embedded backend searches."""

import dataclasses

import pytest
import torch

from runtime.backends.embedded import EmbeddedBackend
from runtime.canvas import canvas_target
from runtime.context import build_context
from runtime.decoding import Decoding
from runtime.lengths import join_tokens, joint_log_probs
from runtime.types import InfillRequest

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
