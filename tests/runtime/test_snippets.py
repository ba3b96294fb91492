"""Context snippets: ranked files, Jaccard windows, the cursor line left out of the query."""

from runtime.snippets import (
    QUERY_LINES,
    context_snippets,
    query_words,
    rank_files,
    shown_path,
    word_hashes,
    workspace_snippets,
)
from runtime.workspace import WorkspaceIndex

HELPER = "\n".join([
    "def load_settings(path):",
    "    with open(path) as handle:",
    "        settings = parse_settings(handle.read())",
    "    return validate_settings(settings)",
])  # fmt: skip
NOISE = "\n".join(f"def unrelated_{i}(alpha, beta):\n    return alpha * beta + {i}" for i in range(30))


def test_the_query_is_the_lines_above_the_cursor_line():
    prefix = "a_first = 1\n" * 3 + "settings = parse_settings(raw)\n    partial_name"
    q = query_words(prefix)
    assert "parse_settings" in q and "a_first" in q and "partial_name" not in q
    far = "far_away = 1\n" + "x = 0\n" * QUERY_LINES + "cursor_line"
    assert "far_away" not in query_words(far)


def test_files_are_ranked_by_shared_identifiers():
    files = [
        ("noise.py", word_hashes(NOISE)),
        ("helper.py", word_hashes(HELPER)),
        ("empty.py", word_hashes("")),
    ]
    assert rank_files({"parse_settings", "validate_settings", "handle"}, files) == ["helper.py"]
    assert rank_files({"alpha", "parse_settings"}, files) == ["noise.py", "helper.py"]  # ties: first seen
    assert rank_files(set(), files) == []


def test_snippets_come_from_the_workspace_and_the_far_part_of_the_file():
    index = WorkspaceIndex()
    index.update("helper.py", HELPER, open_buffer=False)
    index.update("noise.py", NOISE, open_buffer=False)
    index.update("current.py", "stale text of the current file: never read", open_buffer=False)
    prefix = "import os\n\ndef main(path):\n    settings = parse_settings(open(path).read())\n    return "
    found = workspace_snippets(prefix, "\n", index, document="current.py")
    assert [s.path for s in found][:1] == ["helper.py"] and "validate_settings" in found[0].text
    assert all("stale text" not in s.text for s in found)
    # the current file's own text far above the cursor is a candidate too
    far = HELPER + "\n" + "pass\n" * (QUERY_LINES + 2) + "settings = parse_settings(handle.read())\n"
    own = context_snippets(far + "    x = ", "\n", (), current="current.py")
    assert own and own[0].path == "current.py" and "validate_settings" in own[0].text
    assert workspace_snippets("x = 1", "", index) == []  # nothing above the cursor: no query


def test_with_the_workspace_folders_a_snippet_path_is_relative_to_its_folder(tmp_path):
    """The server's and the CLI's index keys are absolute paths; the prompt gets the path in the
    workspace (training's paths are relative to their package), a file outside it its name only."""
    root, other = tmp_path / "ws", tmp_path / "elsewhere"
    index = WorkspaceIndex()
    index.update(str(root / "pkg" / "helper.py"), HELPER, open_buffer=False)
    index.update(str(other / "copy.py"), HELPER.replace("load_settings", "load_copy"), open_buffer=False)
    prefix = "def main(path):\n    settings = parse_settings(open(path).read())\n    return "
    found = workspace_snippets(prefix, "\n", index, document=str(root / "main.py"), roots=[str(root)])
    assert sorted(s.path for s in found) == ["copy.py", "pkg/helper.py"]
    keys = workspace_snippets(prefix, "\n", index, document=str(root / "main.py"))
    assert sorted(s.path for s in keys) == sorted([str(other / "copy.py"), str(root / "pkg" / "helper.py")])
    assert shown_path(str(root / "a.py"), [str(tmp_path), str(root)]) == "ws/a.py"  # the first holding it
