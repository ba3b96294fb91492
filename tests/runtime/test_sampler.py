"""The denoising loop with scripted forwards: pure functions of the canvas that stand in for a
trained model, so the loop's bookkeeping can be checked exactly."""

import pytest
import torch

from runtime.canvas import canvas_spec
from runtime.policies import POLICIES, make_policy
from runtime.rules import END_PROBABILITY, ContentRule, EndBars
from runtime.sampler import denoise
from runtime.schedule import CosineSchedule
from runtime.types import BadRequest, Cancelled

V, MASK, PAD = 12, 1, 0


def spec(c=8, **kw):
    return canvas_spec(c, mask_id=MASK, pad_id=PAD, banned_ids=(MASK,), **kw)


def scripted(target, sharp=8.0, flat_slots=()):
    """A forward that believes `target` at every slot (and is unsure at `flat_slots`)."""
    calls = []

    def forward(canvas):
        calls.append(canvas.clone())
        logits = torch.zeros(len(target), V)
        for i, t in enumerate(target):
            logits[i, t] = 0.0 if i in flat_slots else sharp
        return logits

    forward.calls = calls
    return forward


@pytest.mark.parametrize("name", list(POLICIES))
def test_every_policy_recovers_a_confident_target(name):
    target = [5, 6, 7, 8, 9, 10, 11, 5]
    out = denoise(scripted(target), spec(), make_policy(name, 8))
    assert out.tokens == target
    assert 1 <= out.forwards <= 8


def test_sequential_is_one_token_per_forward_and_parallel_policies_are_faster():
    target = [5, 6, 7, 8, 9, 10, 11, 5]
    seq = denoise(scripted(target), spec(), make_policy("sequential", 8))
    thr = denoise(scripted(target), spec(), make_policy("threshold", 8))
    ent = denoise(scripted(target), spec(), make_policy("entropy", 8))
    assert seq.forwards == 8
    assert thr.forwards == 1 and ent.forwards < 8


def test_llada_uses_its_step_count():
    target = [5] * 8
    out = denoise(scripted(target), spec(), make_policy("llada", 8, steps=4))
    assert out.forwards == 4


def test_pad_closes_the_rest_of_the_canvas():
    target = [5, 6, PAD, 7, 8, 9, 10, 11]
    out = denoise(scripted(target, flat_slots=(3, 4, 5, 6, 7)), spec(), make_policy("sequential", 8))
    assert out.tokens == [5, 6, PAD, PAD, PAD, PAD, PAD, PAD]
    assert out.forwards == 3  # slots after the pad were never decided one by one


def test_first_slot_constraint_heals_the_boundary():
    target = [5, 6, 7, 8]
    out = denoise(scripted(target), spec(4, first_slot_ids=(9, 10)), make_policy("threshold", 4))
    assert out.tokens[0] in (9, 10) and out.tokens[1:] == [6, 7, 8]


def test_banned_ids_are_never_proposed():
    out = denoise(scripted([MASK, MASK, 5, 6]), spec(4), make_policy("entropy", 4))
    assert MASK not in out.tokens


def test_cancel_stops_within_one_step():
    n = {"forwards": 0}
    fwd = scripted([5] * 8)

    def counting(canvas):
        n["forwards"] += 1
        return fwd(canvas)

    with pytest.raises(Cancelled):
        denoise(counting, spec(), make_policy("sequential", 8), should_cancel=lambda: n["forwards"] >= 2)
    assert n["forwards"] == 2


def test_adaptive_self_correction_is_bounded():
    """A model that disowns every committed token: the loop re-masks, but must terminate."""

    def fickle(canvas):
        logits = torch.zeros(len(canvas), V)
        logits[:, 5] = 6.0
        committed = canvas != MASK
        logits[committed, 5] = -6.0  # committed tokens now look wrong
        logits[committed, 6] = 6.0
        return logits

    policy = make_policy("adaptive", 8, max_remask_per_slot=2)
    out = denoise(fickle, spec(), policy)
    assert out.remasked > 0
    assert out.remasked <= 2 * 8
    assert MASK not in out.tokens


def test_adaptive_deadline_commits_everything_at_once():
    target = [5, 6, 7, 8, 9, 10, 11, 5]
    slow = scripted(target, sharp=0.5)  # unsure everywhere: entropy policy alone would go slot by slot
    out = denoise(slow, spec(), make_policy("adaptive", 8), deadline_ms=1e-6)
    assert out.forwards == 1 and out.deadline_hit
    assert MASK not in out.tokens


def test_adaptive_stops_early_when_stable():
    target = [5, 6, 7, 8, 9, 10, 11, 5]
    medium = scripted(target, sharp=3.5)  # confident enough to be stable, not enough for gamma
    ent = denoise(medium, spec(), make_policy("entropy", 8, gamma=0.05))
    ada = denoise(medium, spec(), make_policy("adaptive", 8, gamma=0.05, stable_entropy=1.5))
    assert ada.tokens == target
    assert ada.forwards < ent.forwards


def test_draft_canvas_keeps_committed_tokens():
    draft = (5, MASK, 7, MASK)
    fwd = scripted([5, 6, 7, 8])
    out = denoise(fwd, spec(4, initial=draft), make_policy("sequential", 4))
    assert out.tokens == [5, 6, 7, 8] and out.forwards == 2
    assert fwd.calls[0].tolist() == list(draft)


def test_temperature_sampling_is_reproducible_with_a_seed():
    fwd = scripted([5, 6, 7, 8, 9, 10, 11, 5], sharp=1.0)
    run = lambda seed: denoise(  # noqa: E731
        fwd, spec(), make_policy("entropy", 8), temperature=1.0, generator=torch.Generator().manual_seed(seed)
    ).tokens
    assert run(3) == run(3)
    assert any(run(3) != run(s) for s in range(4, 10))


def test_unknown_policy_is_a_bad_request():
    with pytest.raises(BadRequest, match="unknown policy 'fast'"):
        make_policy("fast", 8)


def test_policy_options_from_the_name():
    assert make_policy("threshold:tau=0.5", 8).tau == 0.5
    assert make_policy("llada:steps=3", 8).schedule.steps == 3
    assert make_policy("adaptive:gamma=0.4,max_remask_per_slot=2", 8).max_remask_per_slot == 2
    assert isinstance(make_policy("llada:schedule=cosine", 8).schedule, CosineSchedule)
    with pytest.raises(BadRequest, match="schedule='wavy': choose from linear, cosine"):
        make_policy("llada:schedule=wavy", 8)
    with pytest.raises(BadRequest, match="NAME=VALUE"):
        make_policy("threshold:tau", 8)
    with pytest.raises(BadRequest, match="policy 'entropy' has no option 'tau'"):
        make_policy("entropy:tau=0.3", 8)


def test_the_option_table_matches_the_policies():
    """runtime.policy_spec (torch-free, used by the settings) knows exactly the options each
    policy's factory takes, with a value of the right type."""
    import inspect

    from runtime.policies import Adaptive
    from runtime.policy_spec import OPTIONS

    for name, factory in POLICIES.items():
        params = inspect.signature(factory).parameters
        taken = Adaptive.__dataclass_fields__ if name == "adaptive" else params
        assert set(OPTIONS[name]) == set(taken) - {"canvas_len"}, name
        for key, kind in OPTIONS[name].items():
            value = kind[-1] if isinstance(kind, tuple) else kind(2)
            assert make_policy(f"{name}:{key}={value}", 8) is not None


def test_stop_token_ends_a_single_line():
    target = [5, 6, 9, 7, 8, 10, 11, 5]  # 9 stands for a token holding a newline

    def left_to_right(canvas):  # more confident on the left, so sequential goes left to right
        logits = torch.zeros(8, V)
        for i, t in enumerate(target):
            logits[i, t] = 8.0 - 0.5 * i
        return logits

    out = denoise(left_to_right, spec(stop_ids=frozenset({9})), make_policy("sequential", 8))
    assert out.tokens == [5, 6, 9, PAD, PAD, PAD, PAD, PAD]
    assert out.forwards == 3


def test_a_run_of_pad_proposals_closes_in_one_step():
    """Trailing pads are the most confident slots: the run must not be committed one per forward."""
    target = [5, 6, 7, PAD, PAD, PAD, PAD, PAD]

    def pads_most_confident(canvas):
        logits = torch.zeros(8, V)
        for i, t in enumerate(target):
            logits[i, t] = 12.0 if t == PAD else 6.0 - 0.1 * i
        return logits

    out = denoise(pads_most_confident, spec(), make_policy("sequential", 8))
    assert out.tokens == target
    assert out.forwards == 4  # one for the pad run, then one per text token


def test_an_unsure_pad_does_not_end_the_text_early():
    target = [5, 6, 7, 8, PAD, PAD, PAD, PAD]

    def unsure_about_slot_3(canvas):
        logits = torch.zeros(8, V)
        for i, t in enumerate(target):
            logits[i, t] = 12.0 if t == PAD else 6.0
        logits[3, PAD] = 5.9  # pad is the runner-up at slot 3, not the proposal
        return logits

    out = denoise(unsure_about_slot_3, spec(), make_policy("sequential", 8))
    assert out.tokens == target


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_llada_schedules_finish_in_their_step_count(schedule):
    policy = make_policy("llada", 16, steps=5, schedule=schedule)
    out = denoise(scripted([5] * 16), spec(16), policy)
    assert out.forwards == 5 and out.tokens == [5] * 16


def distribution(rows):
    """A forward whose slot i has the probabilities rows[i] (a dict id -> p; the rest share 1e-6)."""

    def forward(canvas):
        logits = torch.full((len(rows), V), -30.0)
        for i, row in enumerate(rows):
            for t, p in row.items():
                logits[i, t] = torch.log(torch.tensor(p))
        return logits

    return forward


def test_pad_wins_only_where_ending_is_more_likely_than_going_on():
    """Slot 1 puts 0.3 on pad and spreads 0.7 over text tokens: pad is the argmax, yet going on
    is more likely, so slot 1 gets text; slot 2 is sure of pad and the text ends there."""
    spread = {PAD: 0.3, 5: 0.24, 6: 0.23, 7: 0.23}
    assert spread[PAD] < END_PROBABILITY
    rows = [{8: 0.9, PAD: 0.1}, spread, {PAD: 0.9, 5: 0.1}, {PAD: 0.9, 5: 0.1}]
    out = denoise(distribution(rows), spec(4), make_policy("sequential", 4))
    assert out.tokens == [8, 5, PAD, PAD]


def test_a_model_s_lower_end_bars_end_the_text_sooner():
    """The same beliefs under lower bars (a model's config.json `decoding`, `EndBars`): pad's 0.3
    at slot 1 now wins, and the run of 0.4 pads closes in the step that commits slot 3's sure pad
    (two forwards where the default bars take four, and keep text at slots 1-2)."""
    spread = {PAD: 0.3, 5: 0.24, 6: 0.23, 7: 0.23}
    rows = [{8: 0.9, PAD: 0.1}, spread, {PAD: 0.4, 5: 0.3, 6: 0.3}, {PAD: 0.95, 5: 0.05}]
    default = denoise(distribution(rows), spec(4), make_policy("sequential", 4))
    low = denoise(distribution(rows), spec(4, end_bars=EndBars(0.25, 0.25)), make_policy("sequential", 4))
    assert (default.tokens, default.forwards) == ([8, 5, 5, PAD], 4)
    assert (low.tokens, low.forwards) == ([8, PAD, PAD, PAD], 2)


def flags(*ids):
    t = torch.zeros(V, dtype=torch.bool)
    t[list(ids)] = True
    return t


# ids 5, 6: visible text; 7: a line break; 9: whitespace only
RULE = ContentRule.from_flags(flags(5, 6), flags(7), flags(5, 6), flags(7), pad_id=PAD)


@pytest.mark.parametrize("name", list(POLICIES))
def test_content_rule_keeps_a_blank_line_completion_from_being_empty(name):
    """A model sure the middle is empty (pad first) still has to put visible text first."""
    rows = [{PAD: 0.7, 7: 0.2, 5: 0.1}, {PAD: 0.9, 6: 0.1}, {PAD: 0.95, 6: 0.05}, {PAD: 0.95, 5: 0.05}]
    plain = denoise(distribution(rows), spec(4), make_policy(name, 4))
    assert plain.tokens[0] == PAD
    ruled = denoise(distribution(rows), spec(4, content_rule=RULE), make_policy(name, 4))
    assert ruled.tokens[0] == 5 and ruled.tokens[1:] == [PAD, PAD, PAD]


def test_content_rule_allows_the_end_once_text_is_committed():
    """Whitespace (9) does not count as text; the break (7) may come only after the 5."""
    rows = [{9: 0.8, 7: 0.2}, {7: 0.6, 5: 0.4}, {7: 0.9, 6: 0.1}, {PAD: 0.9, 6: 0.1}]
    out = denoise(distribution(rows), spec(4, content_rule=RULE), make_policy("sequential", 4))
    assert out.tokens == [9, 5, 7, PAD]


def test_content_rule_takes_back_an_end_committed_beside_whitespace():
    """threshold commits whitespace at slot 0 and pad at slots 1-3 in one step; the pad at slot 1
    is re-opened and then has to be text."""
    rows = [{9: 0.95, 5: 0.05}, {PAD: 0.95, 6: 0.05}, {PAD: 0.95, 6: 0.05}, {PAD: 0.95, 6: 0.05}]
    out = denoise(distribution(rows), spec(4, content_rule=RULE), make_policy("threshold", 4))
    assert out.tokens == [9, 6, PAD, PAD]
    assert out.forwards == 2


def test_equal_confidences_commit_the_leftmost_slots():
    """Ties go to the leftmost open slots whatever the CPU (torch.topk leaves them to the kernel)."""
    from runtime.policies import _top

    score = torch.tensor([0.2, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9])
    masked = torch.tensor([True, False, True, True, True, True, True, True, True, True])
    assert _top(score, masked, 1).nonzero().flatten().tolist() == [2]
    assert _top(score, masked, 3).nonzero().flatten().tolist() == [2, 3, 4]
    assert _top(score, masked, 20).sum() == 9  # never more than the open slots
