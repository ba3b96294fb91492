"""DiffusionGemma's memory options on the tiny folder (whose config, like the real one, carries the
default Gemma 4 vision tower): skipping it, float16 refused, accelerate's device map, quantization
refused where it cannot work, and the settings that reach the loader."""

from __future__ import annotations

import importlib.util
import json

import pytest
from test_diffusiongemma import PREFIX, SUFFIX

from dg_lsp.settings import parse_settings
from runtime.backends.diffusiongemma import load_diffusiongemma, text_only_class
from runtime.load import load_backend
from runtime.types import InfillRequest, LargeModelOptions, ModelLoadError

HAVE_ACCELERATE = importlib.util.find_spec("accelerate") is not None
NO_ACCELERATE = "accelerate is not installed (pip install 'dg-lsp[backends]')"
REQ = InfillRequest(prefix=PREFIX, suffix=SUFFIX, max_tokens=16)


def _vision_parameters(model) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if "vision" in n)


def test_the_vision_tower_is_skipped_by_default(backend, diffusiongemma_dir):
    assert isinstance(backend.model, text_only_class())
    assert _vision_parameters(backend.model) == 0
    options = LargeModelOptions(vision=True, max_denoising_steps=6)
    with_vision = load_diffusiongemma(diffusiongemma_dir, options=options)
    assert _vision_parameters(with_vision.model) > 1000 * sum(p.numel() for p in backend.model.parameters())
    assert with_vision.infill(REQ).text == backend.infill(REQ).text  # text answers do not need it


@pytest.mark.parametrize("how", ["direct", "load_backend"])
def test_float16_is_refused_in_one_line(diffusiongemma_dir, how):
    with pytest.raises(ModelLoadError) as e:
        if how == "direct":
            load_diffusiongemma(diffusiongemma_dir, dtype="float16")
        else:
            load_backend(str(diffusiongemma_dir), dtype="float16")
    assert "float16" in str(e.value) and "bfloat16" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.skipif(not HAVE_ACCELERATE, reason=NO_ACCELERATE)
def test_device_map_auto_with_max_memory_loads_through_accelerate(backend, diffusiongemma_dir):
    options = LargeModelOptions(device_map="auto", max_memory=(("cpu", "2GiB"),), max_denoising_steps=6)
    mapped = load_diffusiongemma(diffusiongemma_dir, options=options)
    assert mapped.infill(REQ).text == backend.infill(REQ).text


@pytest.mark.skipif(HAVE_ACCELERATE, reason="accelerate is installed: its absence cannot be shown")
def test_device_map_without_accelerate_says_what_to_install(diffusiongemma_dir):
    with pytest.raises(ModelLoadError, match=r"deviceMap 'auto' needs the accelerate package.*\[backends\]"):
        load_diffusiongemma(diffusiongemma_dir, options=LargeModelOptions(device_map="auto"))


def test_max_memory_needs_a_device_map():
    with pytest.raises(ModelLoadError, match="max_memory needs device_map"):
        LargeModelOptions(max_memory=(("0", "20GiB"),))


def test_fp8_quantization_is_refused_on_cpu(diffusiongemma_dir):
    with pytest.raises(ModelLoadError, match=r"fp8 needs a CUDA GPU of compute capability 8\.9"):
        load_diffusiongemma(diffusiongemma_dir, options=LargeModelOptions(quantization="fp8"))


def test_quantizing_a_quantized_folder_is_refused(diffusiongemma_dir, tmp_path):
    folder = tmp_path / "quantized"
    folder.mkdir()
    for f in diffusiongemma_dir.iterdir():
        (folder / f.name).symlink_to(f)
    (folder / "config.json").unlink()
    cfg = json.loads((diffusiongemma_dir / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "fp8"}
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="already quantized"):
        load_diffusiongemma(folder, device="cuda", options=LargeModelOptions(quantization="fp8"))


def test_settings_reach_the_loader(diffusiongemma_dir):
    settings, problems = parse_settings({"maxDenoisingSteps": 3, "vision": False, "remotePrompt": "plain"})
    assert problems == []
    options = settings.large_model_options()
    assert options == LargeModelOptions(max_denoising_steps=3, remote_prompt="plain")
    b = load_backend(str(diffusiongemma_dir), options=options)
    assert b.max_denoising_steps == 3
    assert b.infill(REQ).stats.forwards <= 3


@pytest.mark.parametrize(
    "raw", [{"maxDenoisingSteps": 0}, {"deviceMap": "gpu"}, {"quantization": "int3"}, {"remotePrompt": "x"}]
)
def test_bad_large_model_settings_fall_back(raw):
    settings, problems = parse_settings(raw)
    (key,) = raw
    assert len(problems) == 1 and key in problems[0]
    assert settings.large_model_options() == LargeModelOptions()
