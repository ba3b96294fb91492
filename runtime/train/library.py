"""Build the line library (`runtime.library`) from a corpus's training split.

    python -m runtime.train library [--corpus data/corpus-v2] [--out models/line-library.tsv.gz]
                                    [--min-packages 2]

Every Python file of the training split gives its pairs of consecutive non-blank lines
(`runtime.library.document_pairs`, with the file's own indentation level); a pair is counted once
per package and kept when at least `--min-packages` packages hold it: an idiom of many projects, not
one package's repeated boilerplate (counting files instead keeps four times the pairs for the same
drafts, docs/workspace.md).  The training split holds no held-out
package (`runtime.train.corpus.HELDOUT_PACKAGES`) and no reserved one; this command checks both
again and refuses a corpus that has any.  Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from runtime.library import DEFAULT_LIBRARY, document_pairs, write
from runtime.retrieval import indent_unit
from runtime.train.corpus import HELDOUT_PACKAGES, SourceFile, dist_key, read_shards, reserved_packages


def forbidden(docs: list[SourceFile]) -> list[str]:
    """The packages of `docs` that must never feed a library: held-out and reserved ones."""
    reserved = reserved_packages()
    bad = set()
    for doc in docs:
        kind, _, name = doc.package.partition(":")
        if doc.package in HELDOUT_PACKAGES or (kind == "site" and dist_key(name) in reserved):
            bad.add(doc.package)
    return sorted(bad)


def count_pairs(docs: list[SourceFile], progress: bool = True) -> Counter[tuple[int, str, str]]:
    """(step, line, next line) -> the number of packages with a Python file holding that pair."""
    per_package: dict[str, set[tuple[int, str, str]]] = {}
    python = [d for d in docs if d.path.endswith(".py")]
    t0 = time.monotonic()
    for k, doc in enumerate(python, start=1):
        pairs = document_pairs(doc.text, indent_unit(doc.text.split("\n")))
        per_package.setdefault(doc.package, set()).update(pairs)
        if progress and (k % 2000 == 0 or k == len(python)):
            took = time.monotonic() - t0
            print(f"  {k}/{len(python)} files, {len(per_package)} packages, {took:.0f} s", file=sys.stderr)
    packages: Counter[tuple[int, str, str]] = Counter()
    for pairs in per_package.values():
        packages.update(pairs)
    return packages


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus-v2"))
    ap.add_argument("--out", type=Path, default=DEFAULT_LIBRARY)
    ap.add_argument("--min-packages", type=int, default=2, help="keep pairs that this many packages hold")
    a = ap.parse_args(argv)
    docs = read_shards(a.corpus, "train")
    bad = forbidden(docs)
    if bad:
        where = f"{a.corpus}'s training split"
        print(f"error: {where} holds held-out or reserved packages: {bad}", file=sys.stderr)
        return 1
    print(f"{len(docs)} training documents from {a.corpus}", file=sys.stderr)
    packages = count_pairs(docs)
    rows = [(n, step, x, y) for (step, x, y), n in packages.items() if n >= a.min_packages]
    about = {
        "corpus": str(a.corpus),
        "split": "train",
        "python_files": sum(d.path.endswith(".py") for d in docs),
        "packages": len({d.package for d in docs}),
        "min_packages": a.min_packages,
        "built_by": "python -m runtime.train library",
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    n = write(a.out, rows, about)
    size = a.out.stat().st_size / 2**20
    print(f"{n} pairs (of {len(packages)}) -> {a.out} ({size:.1f} MiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
