"""A model's decoding defaults (config.json `decoding`): parsed and checked, and what they change."""

import json
from pathlib import Path

import pytest
import torch

from runtime.decoding import Decoding
from runtime.load import load_embedded, save_folder
from runtime.model import InfillTransformer, ModelArgs
from runtime.policies import make_policy
from runtime.rules import DEFAULT_BARS, EndBars, VariableLength, WeakEnd
from runtime.tokenizer import Tokenizer
from runtime.types import InfillRequest, ModelLoadError

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "dg-code-small" / "config.json"


def test_no_section_gives_the_defaults():
    assert Decoding.from_config(None) == Decoding()
    assert Decoding().end_bars == DEFAULT_BARS == EndBars(0.5, 0.5)
    assert Decoding.from_config({"tuned_by": "a note"}).policies == {}


def test_a_section_sets_bars_and_policy_options():
    d = Decoding.from_config(
        {"end_probability": 0.3, "policies": {"adaptive": {"gamma": 3, "max_remask_per_slot": 2}}}
    )
    assert d.end_bars == EndBars(0.3, 0.5)  # the bar not given keeps its default
    assert d.policies == {"adaptive": {"gamma": 3.0, "max_remask_per_slot": 2}}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ([0.3], "decoding must be an object"),
        ({"end_probability": 1.5}, r"decoding.end_probability must be a number in \(0, 1\)"),
        ({"pad_run_confidence": "high"}, "decoding.pad_run_confidence"),
        ({"end_probability": True}, "decoding.end_probability"),
        ({"policies": ["adaptive"]}, "decoding.policies must be an object"),
        ({"policies": {"adaptive": 3}}, "decoding.policies.adaptive must be an object"),
        ({"policies": {"fastest": {}}}, "unknown policy 'fastest'"),
        ({"policies": {"adaptive": {"beta": 1}}}, "has no option 'beta'"),
        ({"policies": {"adaptive": {"gamma": -1}}}, "must be a finite number >= 0"),
        ({"policies": {"adaptive": {"gamma": float("inf")}}}, "must be a finite number"),
    ],
)
def test_bad_sections_are_named(section, message):
    with pytest.raises(ValueError, match=message):
        Decoding.from_config(section)


def test_the_request_s_spec_wins_over_the_model_s_defaults():
    defaults = {"adaptive": {"gamma": 3.0, "stable_entropy": 0.5}}
    assert make_policy("adaptive", 8).gamma == 0.25
    assert make_policy("adaptive", 8, defaults).gamma == 3.0
    chosen = make_policy("adaptive:gamma=0.1", 8, defaults)
    assert (chosen.gamma, chosen.stable_entropy) == (0.1, 0.5)
    assert make_policy("entropy", 8, defaults).gamma == 0.1  # another policy's defaults only


def test_the_shipped_model_declares_its_tuned_defaults():
    d = Decoding.from_config(json.loads(SHIPPED.read_text())["decoding"])
    assert d.end_bars == EndBars(0.3, 0.3) and d.policies["adaptive"]["gamma"] == 3.0
    assert d.causal_line and d.length_search == ()
    assert d.describe() == "end bars 0.3 / 0.3; adaptive gamma=3; causal line"
    assert Decoding().describe() == ""


def _folder(tmp_path, decoding):
    model = InfillTransformer(ModelArgs(vocab_size=261, dim=32, n_layers=2, n_heads=2, canvas_len=8))
    extra = {"trained": {"context_tokens": 64}, "decoding": decoding}
    save_folder(tmp_path / "m", model, Tokenizer.byte_level(), name="m", extra=extra)
    return str(tmp_path / "m")


def test_loading_reads_the_section_and_names_a_bad_one(tmp_path):
    engine = load_embedded(_folder(tmp_path / "a", {"end_probability": 0.2, "pad_run_confidence": 0.2}))
    assert engine.decoding.end_bars == EndBars(0.2, 0.2)
    plan = engine._plan(InfillRequest("x = ", "\n", max_tokens=4), "", 8, torch.Generator())
    rules = plan.spec(0, 0).rules
    weak = next(r for r in rules if isinstance(r, WeakEnd))
    length = next(r for r in rules if isinstance(r, VariableLength))
    assert (weak.end_probability, length.pad_run_confidence) == (0.2, 0.2)
    assert engine.infill(InfillRequest("x = ", "\n", max_tokens=4)).stats.forwards >= 1
    with pytest.raises(ModelLoadError, match=r"config\.json: decoding.end_probability"):
        load_embedded(_folder(tmp_path / "b", {"end_probability": 0}))
