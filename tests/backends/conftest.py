"""Tiny random-weight model folders, built in code (nothing is downloaded)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# before transformers is imported: remote-code modules go to a throwaway folder, never to the hub
os.environ.setdefault("HF_MODULES_CACHE", tempfile.mkdtemp(prefix="dg-lsp-hf-modules-"))
os.environ["HF_HUB_OFFLINE"] = "1"

import pytest

pytest.importorskip("transformers")

import torch
from tiny_folders import save_char_tokenizer, tiny_diffusiongemma_config


@pytest.fixture(scope="session")
def diffusiongemma_dir(tmp_path_factory) -> Path:
    from transformers import DiffusionGemmaForBlockDiffusion

    path = tmp_path_factory.mktemp("tiny-diffusiongemma")
    torch.manual_seed(0)
    model = DiffusionGemmaForBlockDiffusion(tiny_diffusiongemma_config())
    model.save_pretrained(path)
    save_char_tokenizer(path)
    return path


@pytest.fixture(scope="module")
def backend(diffusiongemma_dir):
    """The tiny folder through `load_diffusiongemma`, 6 denoising steps per canvas (one per test module)."""
    from test_diffusiongemma import fresh

    return fresh(diffusiongemma_dir)
