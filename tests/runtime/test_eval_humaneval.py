"""HumanEval-infilling harness: programs run in a subprocess with a timeout; scoring is pass/fail."""

import os
import time

import pytest

from runtime.canvas import canvas_target
from runtime.context import build_context
from runtime.eval import humaneval
from runtime.eval.humaneval import Problem, evaluate, finish, load_problems, program, request, run_program


def test_the_benchmark_ships_with_its_license():
    """No skip when a clone has no ../shared: the MIT data is in the repository (issue 14, item 13)."""
    assert humaneval.DEFAULT_DATA.is_relative_to(humaneval.Path(humaneval.__file__).parent)
    for name in humaneval.BENCHMARKS.values():
        assert (humaneval.DEFAULT_DATA / name).exists()
    assert "MIT License" in (humaneval.DEFAULT_DATA / "LICENSE").read_text()


@pytest.fixture(scope="module")
def single():
    return load_problems("single-line")


def test_data_loads(single):
    assert len(single) == 1033
    assert len(load_problems("random-span-light")) == 164
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_problems("nosuch")


def test_canonical_middle_passes_and_a_wrong_one_fails(single):
    p = single[0]
    assert run_program(program(p, p.canonical_solution))
    indent = p.canonical_solution[: len(p.canonical_solution) - len(p.canonical_solution.lstrip())]
    assert not run_program(program(p, indent + "raise ValueError('wrong')\n"))
    assert not run_program(program(p, indent + "return (\n"))  # a syntax error fails too


def test_timeout_kills_the_program_and_its_children():
    t0 = time.perf_counter()
    src = (
        "import subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
        "while True: pass\n"
    )
    assert not run_program(src, timeout=1.0)
    assert time.perf_counter() - t0 < 5


def test_programs_never_run_in_this_process(tmp_path):
    marker = tmp_path / "ran"
    src = f"import os\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\n"
    assert run_program(src)
    assert marker.exists() and int(marker.read_text()) != os.getpid()
    assert run_program("import os\nassert os.getcwd() != " + repr(os.getcwd()) + "\n")


def test_pass_at_1_is_the_mean_over_tasks(single):
    probs = single[:6]
    right = evaluate(lambda p: p.canonical_solution, probs)
    assert right == {"n": 6, "pass@1": 1.0}
    half = evaluate(lambda p: p.canonical_solution if probs.index(p) % 2 else "    return None\n", probs)
    assert half["pass@1"] <= 0.5 + 1e-9


def test_line_benchmarks_get_whole_lines():
    assert finish("    return x\n    more", "single-line") == "    return x\n"
    assert finish("    return x", "single-line") == "    return x\n"
    assert finish("a\nb", "multi-line") == "a\nb\n"
    assert finish("x + 1", "random-span-light") == "x + 1"


def test_oracle_setting_fixes_the_length_to_the_canonical_middle(tiny_backend, single):
    p: Problem = single[3]
    req = request(tiny_backend, p, "single-line", "oracle", 1024)
    ctx = build_context(tiny_backend.tok, p.prompt, p.suffix, 1024)
    n = len(canvas_target(tiny_backend.tok, ctx.heal, p.canonical_solution))
    assert req.max_tokens == n and req.exact_length and req.single_line
    assert tiny_backend.infill(req).stats.tokens == n
    unknown = request(tiny_backend, p, "single-line", "unknown", 1024)
    assert unknown.canvas_tokens is None
    problems = load_problems("random-span-light")[:2]

    def completer(pr):
        res = tiny_backend.infill(request(tiny_backend, pr, "random-span-light", "oracle", 1024))
        return finish(res.text, "random-span-light")

    out = evaluate(completer, problems)
    assert out["n"] == 2 and 0.0 <= out["pass@1"] <= 1.0


def test_a_healed_newline_does_not_end_a_single_line():
    """HumanEval line prompts end in a newline, which boundary healing moves into slot 0:
    that newline must not end the single line (it did, and every completion was empty)."""
    import torch

    from runtime.canvas import canvas_spec
    from runtime.policies import make_policy
    from runtime.sampler import denoise

    newline_tok, word, pad, mask = 5, 6, 0, 1

    def forward(canvas):
        logits = torch.full((4, 8), -10.0)  # (C, V)
        logits[0, newline_tok] = 10.0
        logits[1:, word] = 10.0
        return logits

    spec = canvas_spec(
        4,
        mask_id=mask,
        pad_id=pad,
        banned_ids=(mask,),
        first_slot_ids=(newline_tok,),
        stop_ids=frozenset({newline_tok}),
    )
    out = denoise(forward, spec, make_policy("sequential", 4))
    assert out.tokens == [newline_tok, word, word, word]


def test_the_editor_setting_asks_on_the_blank_line_with_the_documents_drafts(tiny_backend):
    """`editor`: the cursor at the start of a blank line where the middle goes, and on single lines the
    line drafts the server takes from the document, indented for that line (the tiny model accepts the
    best draft, so the completion is the draft and the program passes)."""
    prompt = "def add(a, b):\n    s = a + b\n    return s\n\n\ndef add2(a, b):\n"
    p = Problem(
        "t/0", prompt, "    return s\n", "    s = a + b\n", "def check(f):\n    assert f(1, 2) == 3\n", "add2"
    )
    req = request(tiny_backend, p, "single-line", "editor", 1024)
    assert req.suffix == "\n" + p.suffix and req.drafts[0][0] == "    s = a + b"
    completion = finish(tiny_backend.infill(req).text, "single-line")
    assert completion == p.canonical_solution and run_program(program(p, completion))
    multi = request(tiny_backend, p, "multi-line", "editor", 1024)
    assert multi.suffix == "\n" + p.suffix and multi.drafts == ()
    assert request(tiny_backend, p, "random-span", "editor", 1024) == request(
        tiny_backend, p, "random-span", "unknown", 1024
    )


def test_the_editor_setting_adds_the_line_librarys_drafts(tiny_backend):
    """With the line library the server ships (here a small one), a line the document lacks comes
    from the library's pairs, with the indentation the pair's step gives (out of the loop after a
    return; short lines: the tiny model's canvas is 16 slots)."""
    from runtime.library import LineLibrary

    prompt = "def has(xs, t):\n    for x in xs:\n        if x == t:\n            return 1\n"
    p = Problem("t/1", prompt, "", "    return 0\n", "def check(f):\n    assert f([1], 2) == 0\n", "has")
    lib = LineLibrary([(300, -2, "return 1", "return 0"), (200, -1, "return 1", "return 0")])
    assert request(tiny_backend, p, "single-line", "editor", 1024).drafts == ()
    req = request(tiny_backend, p, "single-line", "editor", 1024, lib)
    # nothing of the function below: both steps give the function's body level, their evidence summed
    assert [d for d, _ in req.drafts] == ["    return 0"]
    completion = finish(tiny_backend.infill(req).text, "single-line")
    assert completion == p.canonical_solution and run_program(program(p, completion))
