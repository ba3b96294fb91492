"""The causal-lines benchmark's decode: greedy tokens of the causal head, healed, one line."""

import torch

from benchmarks.causal_lines import COLUMNS, MAX_NEW, causal_line, joint_choice, tally
from runtime.context import build_context


def _greedy_chain(backend, prefix: str, suffix: str) -> list[int]:
    """The same greedy chain, recomputed from scratch in one pass over the whole sequence
    (the last context row and each written token predict the next token)."""
    tok, model = backend.tok, backend.model
    ctx = build_context(tok, prefix, suffix, 320)
    with torch.inference_mode(), backend.autocast():
        past = model.encode(torch.tensor([ctx.ids[:-1]]), None)
        seq = [ctx.ids[-1]]
        for _ in range(MAX_NEW):
            logits = model.continuation_logits(torch.tensor([seq]), past)[0, -1].float()
            logits[list(tok.special_ids)] = float("-inf")
            if len(seq) == 1 and ctx.heal:
                keep = torch.full_like(logits, float("-inf"))
                ids = list(tok.ids_starting_with(ctx.heal.encode()))
                keep[ids] = logits[ids]
                logits = keep
            seq.append(int(logits.argmax()))
            if b"\n" in b"".join(tok.token_bytes(i) for i in seq[1:])[len(ctx.heal.encode()) :]:
                break
    return seq[1:]


def test_a_causal_line_is_one_healed_line_of_the_greedy_chain(tiny_backend):
    prefix, suffix = "def area(width, height):\n    return wid", "\n\n\nprint(area(2, 3))\n"
    text = causal_line(tiny_backend, prefix, suffix, 320)
    assert "\n" not in text
    ctx = build_context(tiny_backend.tok, prefix, suffix, 320)
    chain = b"".join(tiny_backend.tok.token_bytes(i) for i in _greedy_chain(tiny_backend, prefix, suffix))
    assert chain.startswith(ctx.heal.encode())  # the first token begins with the healed text
    written = chain.decode("utf-8", errors="ignore").removeprefix(ctx.heal).split("\n")[0]
    assert written.startswith(text.rstrip())  # the suffix trim only ever shortens it


def test_the_chooser_never_takes_a_text_that_does_not_fit_and_tallies_its_picks(tiny_backend):
    prefix, suffix = "def f(x):\n    return ", "\n"
    assert not joint_choice(tiny_backend, prefix, suffix, "x + 1", "x + 1")
    assert not joint_choice(tiny_backend, prefix, suffix, "x" * 400, "x + 1")  # longer than a canvas
    assert joint_choice(tiny_backend, prefix, suffix, "x + 1", "x" * 400)
    rows = [
        (True, False, True, True),
        (True, False, False, False),
        (False, True, False, False),
        (False, False, True, False),
    ]
    table = tally(rows)
    assert [table[k] for k in COLUMNS] == [50, 25, 50, 75, 25]
