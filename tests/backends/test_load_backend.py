"""`load_backend` dispatch and its one-line errors; the CLI's --remote-model and --trust-remote-code."""

from __future__ import annotations

import json

import pytest
from test_remote import FakeServer

from dg_lsp.cli import main
from runtime.backends.base import Backend
from runtime.backends.embedded import EmbeddedBackend
from runtime.load import load_backend
from runtime.types import ModelLoadError


def test_presets_stay_embedded():
    b = load_backend("tiny", threads=1)
    assert isinstance(b, EmbeddedBackend) and isinstance(b, Backend)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "has no config.json"),
        (lambda p: (p.mkdir(), (p / "config.json").write_text("{")), "not valid JSON"),
        (lambda p: (p.mkdir(), (p / "config.json").write_text("{}")), "no model_type"),
        (
            lambda p: (p.mkdir(), (p / "config.json").write_text(json.dumps({"model_type": "no-such-arch"}))),
            "unknown model_type 'no-such-arch'",
        ),
    ],
)
def test_bad_folders_are_one_line(tmp_path, setup, message):
    path = tmp_path / "model"
    setup(path)
    with pytest.raises(ModelLoadError) as e:
        load_backend(str(path))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_wrong_architecture_is_refused(tmp_path):
    """An autoregressive model folder has no mask token: refused before any weights load."""
    from tiny_folders import save_char_tokenizer

    path = tmp_path / "gpt2ish"
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": 99, "n_layer": 1}))
    save_char_tokenizer(path)
    with pytest.raises(ModelLoadError, match="not a masked diffusion model"):
        load_backend(str(path))


def test_cli_infill_through_a_remote_server(tmp_path, capsys):
    src = tmp_path / "a.py"
    src.write_text("def f(x):\n    return \n")
    with FakeServer(["ok"]) as server:
        code = main(["infill", f"{src}:2:12", "--model", server.url, "--remote-model", "tiny-dg"])
    assert code == 0
    assert capsys.readouterr().out == "x + 1\n"
    assert server.posts[0]["model"] == "tiny-dg"


def test_cli_reports_refused_remote_code(tmp_path, capsys):
    from test_masked import write_folder

    folder = write_folder(tmp_path / "tinymask")
    src = tmp_path / "a.py"
    src.write_text("x = \n")
    assert main(["infill", f"{src}:1:5", "--model", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--trust-remote-code" in err
    assert (
        main(["infill", f"{src}:1:5", "--model", str(folder), "--trust-remote-code", "--max-tokens", "4"])
        == 0
    )
