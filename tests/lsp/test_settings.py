"""Unit tests of dg_lsp.settings (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dg_lsp.settings import Settings, documented_fields, from_initialization_options, parse_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def test_defaults():
    s = Settings()
    assert (s.model, s.automatic_budget_ms, s.policy) == ("default", 150.0, "adaptive")
    assert s.language_enabled("python") and not s.language_enabled("plaintext")


def test_good_values_are_taken():
    raw = {"model": "tiny", "threads": 1, "maxTokens": 32, "enabledLanguages": ["rust"]}
    s, problems = parse_settings(raw)
    assert problems == []
    assert (s.model, s.threads, s.max_tokens) == ("tiny", 1, 32)
    assert s.language_enabled("rust") and not s.language_enabled("python")


def test_each_bad_value_falls_back_to_its_default_and_is_reported():
    s, problems = parse_settings(
        {"policy": "nope", "threads": 0, "automaticBudgetMs": -1, "device": "gpu9", "maxTokens": 12, "x": 1}
    )
    assert (s.policy, s.threads, s.automatic_budget_ms, s.device) == ("adaptive", None, 150.0, "cpu")
    assert s.max_tokens == 12
    assert len(problems) == 5
    assert any("'x'" in p for p in problems) and any("nope" in p for p in problems)


def test_initialization_options_shapes():
    assert from_initialization_options({"dgLsp": {"model": "tiny"}})[0].model == "tiny"
    assert from_initialization_options({"model": "tiny"})[0].model == "tiny"
    assert from_initialization_options(None) == (Settings(), [])
    _, problems = from_initialization_options({"dgLsp": [1]})
    assert problems


def test_every_setting_is_documented():
    docs = DOCS.read_text()
    for name, _default, doc in documented_fields():
        assert doc, name
        assert f"`{name}`" in docs, name


def test_policy_with_options_is_accepted_and_bad_options_rejected():
    s, problems = parse_settings({"policy": "threshold:tau=0.8"})
    assert s.policy == "threshold:tau=0.8" and problems == []
    s, problems = parse_settings({"policy": "entropy:tau=0.8"})
    assert s.policy == "adaptive" and len(problems) == 1 and "entropy" in problems[0]


@pytest.mark.parametrize("policy", ["llada:steps=inf", "llada:steps=nan", "llada:steps=1e400",
                                    "threshold:tau=abc", "llada:steps=0", "adaptive:gamma=-1"])
def test_impossible_policy_values_fall_back_and_the_other_keys_still_apply(policy):
    s, problems = parse_settings({"policy": policy, "maxTokens": 10})
    assert s.policy == "adaptive" and s.max_tokens == 10
    assert len(problems) == 1 and problems[0].startswith("policy:")
    s, problems = from_initialization_options({"dgLsp": {"policy": policy}})
    assert s.policy == "adaptive" and len(problems) == 1


def test_dtype_is_checked():
    s, problems = parse_settings({"dtype": "bfloat16"})
    assert s.dtype == "bfloat16" and problems == []
    s, problems = parse_settings({"dtype": "int8"})
    assert s.dtype == "auto" and len(problems) == 1 and "int8" in problems[0]


def test_kernels_setting_is_a_bool_defaulting_on():
    assert Settings().kernels is True
    s, problems = parse_settings({"kernels": False})
    assert s.kernels is False and problems == []
    s, problems = parse_settings({"kernels": "maybe"})
    assert s.kernels is True and len(problems) == 1


def test_vscode_extension_declares_every_server_setting():
    """package.json offers each server setting in the VS Code UI and settings.ts forwards it."""
    import json
    import re

    root = Path(__file__).resolve().parents[2] / "editors" / "vscode"
    declared = json.loads((root / "package.json").read_text())["contributes"]["configuration"]["properties"]
    source = (root / "src" / "settings.ts").read_text()
    forwarded = re.search(r"SERVER_KEYS = \[(.*?)\]", source, re.S)
    assert forwarded
    keys = set(re.findall(r"'(\w+)'", forwarded.group(1)))
    for name, _default, _doc in documented_fields():
        assert f"dgLsp.{name}" in declared, name
        assert name in keys, name
