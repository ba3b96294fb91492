"""`python -m runtime.train <command> ...`: corpus, tokenizer, train, val, library.

`main(argv)` is the entry the CLI wires as `dg-lsp train ...`.
"""

from __future__ import annotations

import sys

COMMANDS = {
    "corpus": "runtime.train.corpus",
    "tokenizer": "runtime.train.tokenizer_train",
    "train": "runtime.train.trainer",
    "val": "runtime.train.validate",
    "library": "runtime.train.library",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m runtime.train {{{','.join(COMMANDS)}}} [options]", file=sys.stderr)
        return 2
    import importlib

    module = importlib.import_module(COMMANDS[argv[0]])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
