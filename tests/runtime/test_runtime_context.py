import pytest
from tokenizers import Tokenizer as HF
from tokenizers import models, trainers

from runtime.canvas import canvas_target
from runtime.context import PREFIX_LINE_QUANTUM, build_context, clip_prefix
from runtime.text import strip_heal, trim_suffix_overlap
from runtime.tokenizer import SPECIAL_TOKENS, Tokenizer, configure_byte_level


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.byte_level()


@pytest.fixture(scope="module")
def bpe():
    """A small trained BPE, so tokens span several characters (healing matters)."""
    hf = HF(models.BPE())
    configure_byte_level(hf)
    corpus = ["def function(value):\n    return value + 1\n", "print(function(2))\n"] * 50
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    hf.train_from_iterator(corpus, trainer)
    return Tokenizer(hf)


def test_layout_is_suffix_then_prefix(tok):
    ctx = build_context(tok, "abc", "xyz", 64)
    assert ctx.ids[0] == tok.fim_suffix_id
    assert ctx.ids[1:4] == tok.encode("xyz")
    assert ctx.ids[4] == tok.fim_prefix_id
    assert ctx.ids[5:] == tok.encode("ab")  # the last token moved into the canvas
    assert ctx.heal == "c"


def test_heal_inside_a_word(bpe):
    prefix = "def function(value):\n    return val"
    ctx = build_context(bpe, prefix, "\n", 256)
    assert ctx.heal and prefix.endswith(ctx.heal)
    assert bpe.decode(ctx.ids[ctx.ids.index(bpe.fim_prefix_id) + 1 :]) + ctx.heal == prefix
    target = canvas_target(bpe, ctx.heal, "ue + 1")
    assert bpe.token_bytes(target[0]).startswith(ctx.heal.encode())
    assert strip_heal(bpe, ctx.heal, target) == "ue + 1"


def test_empty_prefix_has_no_heal(tok):
    ctx = build_context(tok, "", "tail", 32)
    assert ctx.heal == "" and ctx.ids[-1] == tok.fim_prefix_id


def test_budget_keeps_text_nearest_the_cursor(tok):
    prefix = "".join(f"line {i}\n" for i in range(400))
    suffix = "".join(f"after {i}\n" for i in range(400))
    ctx = build_context(tok, prefix, suffix, 256)
    assert len(ctx.ids) <= 256
    text = tok.decode(ctx.ids)
    assert text.startswith("after 0\n")  # suffix start kept
    assert (text + ctx.heal).endswith("line 399\n")  # prefix end kept
    assert "line 0\n" not in text and "after 399" not in text


def test_clipped_prefix_start_is_stable_while_typing(tok):
    """The cache only helps if typing does not move the clipped prefix start each keystroke."""
    base = "".join(f"x{i} = {i}\n" for i in range(300))
    starts = set()
    typed = ""
    for ch in "value = compute(1)":
        typed += ch
        text = base + typed
        starts.add(len(text) - len(clip_prefix(tok, text, 512)))
    assert len(starts) == 1
    dropped = starts.pop()
    assert dropped > 0 and base.count("\n", 0, dropped) % PREFIX_LINE_QUANTUM == 0


def test_long_single_line_prefix_is_cut(tok):
    ctx = build_context(tok, "a" * 5000, "", 64)
    assert len(ctx.ids) <= 64


def test_tiny_budget_is_rejected(tok):
    with pytest.raises(ValueError, match="too small"):
        build_context(tok, "a", "b", 4)


@pytest.mark.parametrize(
    ("text", "suffix", "prefix_line", "want"),
    [
        ("x)", ")", "print(", "x"),  # auto-closed bracket written again
        ("f(x)", ")", "g(", "f(x)"),  # needed: g(f(x)) balances only with both closers
        ("value + 1", "", "return ", "value + 1"),
        ("a, b):", "):", "def f(", "a, b"),
        ("x = 1\nreturn x\n", "return x\n", "", "x = 1\n"),  # repeats the next line
        ("return x", "return x\n", "", ""),
        ("a,\n    b", "))\n    b\nc\n", "f(g(", "a,\n"),  # last line repeats the one after the closers
        ("a,\n    b", "x)\n    b\n", "f(", "a,\n    b"),  # not after a rest of line that is code
        # nested auto-closed brackets: the fill repeats the first of two closers (issue 14, item 4)
        ("s)", "))", "print(len(", "s"),
        ("s))", "))", "print(len(", "s"),
        ("x])", "]))", "f(g([", "x"),
        ("s) + 1", "))", "print(len(", "s) + 1"),  # not a repeat of the closers' start
        ("g(x)", "))", "f(h(", "g(x)"),  # needed: f(h(g(x))) balances only with the fill's closer
    ],
)
def test_trim_suffix_overlap(text, suffix, prefix_line, want):
    assert trim_suffix_overlap(text, suffix, prefix_line) == want


def test_five_megabyte_prefix(tok):
    prefix = "x = 1  # some code here\n" * 220_000  # ~5 MB
    ctx = build_context(tok, prefix + "y = ", "\nz = 2\n", 512)
    assert len(ctx.ids) <= 512
    assert tok.decode(ctx.ids).endswith("y =") and ctx.heal == " "


def test_invalid_utf8_never_reaches_the_text(tok):
    ids = [*tok.encode("ok "), tok.encode("é")[0], *tok.encode(" end")]  # a lone lead byte
    assert strip_heal(tok, "", ids) == "ok  end"
    assert "\ufffd" not in tok.decode(ids)


def test_finish_cuts_one_line_then_trims():
    from runtime.text import finish
    from runtime.types import InfillRequest

    line = InfillRequest(prefix="x = ", suffix="\ny = 2\n", single_line=True)
    assert finish("1\ny = 2", line) == "1"
    block = InfillRequest(prefix="def f():\n    ", suffix="\n    return 1\n")
    assert finish("x = 1\n    return 1\n", block) == "x = 1\n"


def test_snippets_come_first_best_last_whole_and_never_repeat_the_context(tok):
    a, b = ("a.py", "def alpha():\n    return 1"), ("b.py", "def beta():\n    return 2")
    held = ("c.py", "x = 1")  # already in the context: skipped
    ctx = build_context(tok, "x = 1\ny = ", "\n", 64, (a, b, held), snippet_budget=200)
    block_a = [tok.file_sep_id, *tok.encode("a.py\ndef alpha():\n    return 1\n")]
    block_b = [tok.file_sep_id, *tok.encode("b.py\ndef beta():\n    return 2\n")]
    assert ctx.ids[: ctx.snippet_tokens] == block_b + block_a  # the best one nearest the context
    assert ctx.ids[ctx.snippet_tokens :] == build_context(tok, "x = 1\ny = ", "\n", 64).ids
    small = build_context(tok, "x = 1\ny = ", "\n", 64, (a, b), snippet_budget=len(block_a) + 3)
    assert small.ids[: small.snippet_tokens] == block_a  # whole snippets only, best first
    assert build_context(tok, "x = 1\ny = ", "\n", 64, (a, b)).snippet_tokens == 0  # no budget: none
