"""Where to infill + the user's settings -> `InfillRequest`s: the one place requests are built.

    inline_requests     an inline completion: one request when automatic (a line where
                        `automatic_line` says so, else a block); when invoked, the rest of the line,
                        a block (multi-line sites) and a sampled one
    offered_fills       the texts an inline completion offers: the requests' answers, and when
                        invoked the other line drafts too, before the sampled one
    selection_request   dg.fillSelection: the selection masked and regenerated from both sides
    rewrite_request     dg.rewriteMarkdown: one prose span as a draft, partly re-masked

Pure functions of plain data; a request checks itself when made (`runtime.types`).
"""

from __future__ import annotations

from collections.abc import Sequence

from dg_lsp.context import Site, prefix_window, suffix_window, to_model_text
from dg_lsp.markdown import RewritePlan, Span
from dg_lsp.settings import Settings
from runtime.retrieval import Draft
from runtime.types import InfillRequest

SINGLE_LINE_MAX_TOKENS = 32
"""A rest-of-line completion is short (Copilot caps it at 20 tokens; the p95 line is 73 characters)."""
INVOKED_SAMPLE = {"temperature": 0.8, "seed": 1}
"""The invoked request's last, sampled variant: a different suggestion, reproducible."""
REWRITE_REMASK = 0.5
"""Fraction of a prose span's tokens re-masked by dg.rewriteMarkdown."""


def inline_requests(
    site: Site,
    settings: Settings,
    *,
    invoked: bool,
    drafts: Sequence[Draft] = (),
    snippets: tuple[tuple[str, str], ...] = (),
) -> list[InfillRequest]:
    """Automatic: one request within the automatic budget, a line where `automatic_line` says so, else
    a block.  Invoked (the user asked, and may cycle through several): the rest of the line, then for a
    multi-line site a block, then a sample.  The greedy single-line requests carry the line `drafts`
    (best first) for the model to verify; every request carries the context `snippets`."""
    pairs = tuple((d.text, d.score) for d in drafts) if settings.drafts else ()
    ctx = {"snippets": snippets if settings.snippets else ()}
    if not invoked:
        one_line = automatic_line(site, bool(pairs))
        return [_site_request(site, settings, settings.automatic_budget_ms, single_line=one_line,
                              drafts=pairs if one_line else (), **ctx)]  # fmt: skip
    budget = settings.invoked_budget_ms
    shapes = [True] if site.single_line else [True, False]
    out = [
        _site_request(site, settings, budget, single_line=one, drafts=pairs if one else (), **ctx)
        for one in shapes
    ]
    out.append(_site_request(site, settings, budget, single_line=site.single_line, **ctx, **INVOKED_SAMPLE))
    return out


def automatic_line(site: Site, drafted: bool) -> bool:
    """Whether an automatic trigger asks for a line: at a single-line site, and on the blank line of an
    empty body when retrieval has drafts for it (after `if x in seen:` and Enter, `return True`).  There
    the model's block is right less often than the drafted line (`benchmarks/empty_body.py`: HumanEval's
    empty-body tasks pass 13.0 % with the block, 25.0 % with the line; held-out bodies' first line
    5.0 % / 9.0 %), and the user who wants a block invokes the trigger.  After an opener on its own
    line (no Enter yet) the block stays: the line's rest is empty there."""
    return site.single_line or (drafted and not site.line_before.strip())


AUTOMATIC_ITEMS = 3
INVOKED_ITEMS = 6
"""The most items an inline completion offers, automatic or invoked (the user cycles through them)."""


def offered_fills(fills: Sequence[str], requests: Sequence[InfillRequest], *, invoked: bool) -> list[str]:
    """The texts to offer, best first: `fills` are the answers of `requests` (in order; fewer when
    one was superseded or failed).  Invoked, the line drafts the model did not choose follow the
    greedy answers and come before the sampled variant: retrieval's next drafts are right more
    often than a sample (the answer is among the best 4 drafts for 29 % of held-out lines, the
    first for 24 %: docs/workspace.md).  Items that repeat one another are dropped later
    (`dg_lsp.edits.inline_items`)."""
    out = list(fills)
    if not invoked or not requests:
        return out
    drafts = [text for text, _ in requests[0].drafts]
    sampled = len(out) == len(requests) and requests[-1].temperature > 0
    head, tail = (out[:-1], out[-1:]) if sampled else (out, [])
    return head + drafts + tail


def _site_request(
    site: Site,
    s: Settings,
    deadline_ms: float,
    *,
    single_line: bool,
    temperature: float = 0.0,
    seed: int = 0,
    drafts: tuple[tuple[str, float], ...] = (),
    snippets: tuple[tuple[str, str], ...] = (),
) -> InfillRequest:
    return InfillRequest(
        prefix=site.prefix,
        suffix=site.suffix,
        max_tokens=min(s.max_tokens, SINGLE_LINE_MAX_TOKENS) if single_line else s.max_tokens,
        policy=s.policy,
        deadline_ms=deadline_ms,
        temperature=temperature,
        seed=seed,
        context_tokens=s.context_tokens,
        single_line=single_line,
        drafts=drafts,
        snippets=snippets,
        snippet_tokens=s.snippet_tokens,
    )


def selection_request(
    text: str, start: int, end: int, settings: Settings, canvas_len: int | None
) -> InfillRequest:
    """Mask `text[start:end]` and regenerate it from both sides.

    The canvas is sized from the selection (in characters, a safe upper bound on
    tokens) so short selections stay short; pads let it shrink, further canvases
    let it grow up to twice the selection.  `canvas_len` None: the backend's canvas is fixed
    and it refuses a size, so none is asked for."""
    s = settings
    selected = to_model_text(text[start:end])
    return InfillRequest(
        prefix=to_model_text(prefix_window(text, start, s.context_tokens)),
        suffix=to_model_text(suffix_window(text, end, s.context_tokens)),
        max_tokens=max(8, 2 * len(selected) + 8),
        policy=s.policy,
        deadline_ms=s.invoked_budget_ms,
        context_tokens=s.context_tokens,
        canvas_tokens=None if canvas_len is None else max(4, min(len(selected) + 4, canvas_len)),
    )


def rewrite_request(plan: RewritePlan, span: Span, settings: Settings) -> InfillRequest:
    """One prose span of a Markdown rewrite: its text is the draft, the rewritten text before it
    and the original text after it are the context."""
    s = settings
    before = plan.before(span)
    draft = to_model_text(plan.text[span.start : span.end])
    return InfillRequest(
        prefix=to_model_text(prefix_window(before, len(before), s.context_tokens)),
        suffix=to_model_text(suffix_window(plan.text, span.end, s.context_tokens)),
        max_tokens=len(draft) + 8,
        policy=s.policy,
        deadline_ms=s.invoked_budget_ms,
        context_tokens=s.context_tokens,
        draft=draft,
        remask=REWRITE_REMASK,
    )
