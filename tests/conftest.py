import json
import shutil

import pytest
import torch

torch.set_num_threads(1)

SNIPPET_LAYOUT_TOKENS = 128
"""The snippet budget the `snippet_model` folder declares (what the GPU training run writes)."""


@pytest.fixture(scope="session")
def tiny_backend():
    from runtime.load import load_embedded

    return load_embedded("tiny", threads=1)


@pytest.fixture(scope="session")
def snippet_model(tmp_path_factory):
    """A copy of the shipped model folder whose config.json declares the context-snippet layout
    (`"layout": {"snippet_tokens": 128}`), as a model trained with `--snippets` does.  The weights
    are the shipped ones, which were never trained with snippets: tests that load it check the
    plumbing (retrieval -> request -> the context the real model reads -> stats), never that the
    model makes use of the snippets."""
    from runtime.load import DEFAULT_MODEL_DIR

    folder = tmp_path_factory.mktemp("models") / "dg-code-small-snippets"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    cfg = json.loads((folder / "config.json").read_text())
    assert "layout" not in cfg  # the shipped model declares none: the copy is what adds it
    cfg["layout"] = {"snippet_tokens": SNIPPET_LAYOUT_TOKENS}
    cfg["name"] = "dg-code-small (snippet layout declared, for tests)"
    (folder / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return folder
