import json

import pytest
import torch

from runtime.load import SHARD_BYTES, load_embedded, load_folder, save_folder
from runtime.model import InfillTransformer, ModelArgs
from runtime.tokenizer import Tokenizer
from runtime.types import InfillRequest, ModelLoadError


@pytest.fixture
def folder(tmp_path):
    torch.manual_seed(0)
    model = InfillTransformer(ModelArgs(vocab_size=261, dim=32, n_layers=2, n_heads=2, canvas_len=8))
    tok = Tokenizer.byte_level()
    save_folder(tmp_path / "m", model, tok, name="test-model", extra={"trained": {"context_tokens": 64}})
    return tmp_path / "m", model


def test_roundtrip_gives_identical_outputs(folder):
    path, model = folder
    loaded, _, name, max_context = load_folder(path)
    assert name == "test-model" and max_context == 64
    ids = torch.arange(5, 25)[None]
    with torch.inference_mode():
        a = model.eval().denoise(ids[:, :8], model.encode(ids, None))
        b = loaded.denoise(ids[:, :8], loaded.encode(ids, None))
    assert torch.equal(a, b)
    engine = load_embedded(str(path), threads=1)
    r = engine.infill(InfillRequest("x = 1\n" * 200, "\n", max_tokens=4, context_tokens=1024))
    assert r.stats.tokens >= 1
    assert r.stats.context_tokens <= 64  # clipped to what the model was trained on


def test_shards_are_at_most_16_mib(tmp_path):
    model = InfillTransformer(ModelArgs(vocab_size=8192, dim=512, n_layers=3, n_heads=8))
    files = save_folder(tmp_path / "big", model, Tokenizer.byte_level(), name="big")
    assert len(files) > 1
    assert all(f.stat().st_size <= SHARD_BYTES + 4096 for f in files)  # + safetensors header
    load_folder(tmp_path / "big")


def test_missing_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_embedded(str(tmp_path / "nothing"))


def test_corrupt_weights(folder):
    path, _ = folder
    shard = next(path.glob("*.safetensors"))
    shard.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelLoadError, match="corrupt"):
        load_folder(path)


def test_config_problems(folder):
    path, _ = folder
    cfg = path / "config.json"
    good = json.loads(cfg.read_text())
    cfg.write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load_folder(path)
    cfg.write_text(json.dumps({**good, "format": "something-else"}))
    with pytest.raises(ModelLoadError, match="not a dg-lsp embedded model"):
        load_folder(path)
    cfg.write_text(json.dumps({**good, "model": {**good["model"], "dim": 64}}))
    with pytest.raises(ModelLoadError, match="do not match"):
        load_folder(path)
    (path / "config.json").unlink()
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        load_folder(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_heads": -4}, "n_heads must be > 0"),
        ({"n_heads": 3}, "n_heads 3 does not divide dim"),
        ({"canvas_len": 0}, "canvas_len must be > 0"),
        ({"dim": "256"}, "dim must be an integer"),
        ({"dim": 64.0}, "dim must be an integer"),
        ({"ffn_mult": None}, "ffn_mult must be a number"),
    ],
)
def test_impossible_shapes_are_refused_at_load_naming_the_field(folder, change, message):
    """A config whose shapes cannot run must fail to load (one line), never load as "ready"."""
    path, _ = folder
    cfg = path / "config.json"
    good = json.loads(cfg.read_text())
    cfg.write_text(json.dumps({**good, "model": {**good["model"], **change}}))
    with pytest.raises(ModelLoadError, match=f"bad model section: {message}"):
        load_folder(path)


def test_missing_tokenizer(folder):
    path, _ = folder
    (path / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match=r"tokenizer\.json"):
        load_folder(path)


@pytest.mark.parametrize("load", ["load_embedded", "load_backend"])
def test_missing_default_model_says_how_to_get_it(tmp_path, monkeypatch, load):
    """load_backend (what the server and the CLI call) said only "does not exist" (a `pip install .`:
    .ci/core_install found it)."""
    import runtime.load

    monkeypatch.setattr("runtime.load.DEFAULT_MODEL_DIR", tmp_path / "dg-code-small")
    with pytest.raises(ModelLoadError, match=r"default model is missing.*pip install -e"):
        getattr(runtime.load, load)("default")


def test_draft_rules_are_read_from_the_folder(folder):
    path, _ = folder
    assert load_embedded(str(path)).draft_rules.accept_score == float("-inf")  # none declared
    cfg = path / "config.json"
    good = json.loads(cfg.read_text())
    cfg.write_text(json.dumps({**good, "drafts": {"accept_score": -5.0, "doubt_probability": 0.02}}))
    rules = load_embedded(str(path)).draft_rules
    assert rules.accept_score == -5.0 and rules.doubt_probability == 0.02
    cfg.write_text(json.dumps({**good, "drafts": {"accept_score": "low"}}))
    with pytest.raises(ModelLoadError, match=r"config\.json: drafts\.accept_score"):
        load_embedded(str(path))
