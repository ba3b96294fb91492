"""The pinned list of extra distributions -> wheels in a download cache (corpus build time only).

    pinned-packages.txt (name==version a line) -> pip download --no-deps --only-binary=:all: -> cache

Run by ``python -m runtime.train corpus --pinned FILE --wheels DIR``; nothing else downloads, and
nothing at run time.  A wheel already in the cache is not fetched again; a failed download is
reported on one line and the rest go on; a pin on the reserved-for-evaluation list is refused
before anything is fetched (`corpus.iter_wheel` checks the wheel's own METADATA name again).
`corpus.iter_wheel` then reads each wheel's files straight out of the zip.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runtime.train.corpus import ManifestRow, dist_key

PINNED_FILE = Path(__file__).with_name("pinned-packages.txt")


@dataclass(frozen=True)
class Pin:
    name: str
    version: str

    @property
    def key(self) -> str:
        return dist_key(self.name)

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


class DownloadError(RuntimeError):
    """One pin could not be fetched; the message is one line."""


def read_pinned(path: Path = PINNED_FILE) -> list[Pin]:
    """The pins of a list file: `name==version` a line, `#` comments and blank lines ignored."""
    pins: list[Pin] = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#")[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9.+!_-]+)", line)
        if m is None:
            raise ValueError(f"{path}:{n}: expected 'name==version', got {line!r}")
        pins.append(Pin(m.group(1), m.group(2)))
    return pins


def cached_wheel(pin: Pin, cache: Path) -> Path | None:
    """The wheel for `pin` already in `cache` (file name `<name>-<version>-...whl`), if any."""
    for whl in sorted(cache.glob("*.whl")):
        parts = whl.name.split("-")
        if len(parts) >= 5 and dist_key(parts[0]) == pin.key and parts[1] == pin.version:
            return whl
    return None


def pip_download(pin: Pin, cache: Path) -> Path:
    """Fetch one wheel with pip (no dependencies, wheels only); its path in `cache`."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input", "-d", str(cache), str(pin)]  # fmt: skip
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as e:
        raise DownloadError(f"pip download timed out after {e.timeout:.0f} s") from None
    if out.returncode != 0:
        errors = [ln.strip() for ln in out.stderr.splitlines() if ln.strip().startswith("ERROR")]
        last = errors[-1] if errors else (out.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise DownloadError(f"pip exited {out.returncode}: {last.strip()}")
    saved = re.findall(r"(?:Saved|File was already downloaded) (\S+\.whl)", out.stdout)
    path = Path(saved[-1]) if saved else cached_wheel(pin, cache)
    if path is None or not path.is_file():
        raise DownloadError("pip succeeded but left no wheel for it in the cache")
    return cache / path.name


def fetch(
    pins: list[Pin],
    cache: Path,
    reserved: frozenset[str],
    offline: bool = False,
    download: Callable[[Pin, Path], Path] = pip_download,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
) -> tuple[list[Path], list[ManifestRow]]:
    """(wheels to read, manifest rows for the pins refused or not fetched).  One progress line a
    pin, a summary of the failures at the end."""
    cache.mkdir(parents=True, exist_ok=True)
    wheels: list[Path] = []
    failed: list[ManifestRow] = []
    for i, pin in enumerate(pins, 1):
        head = f"[{i}/{len(pins)}] {pin}"
        if pin.key in reserved:
            log(f"{head}: refused, reserved for evaluation (reserved-packages.txt)")
            failed.append(ManifestRow(f"site:{pin.key}", "", str(pin), "-", "skip:reserved-for-evaluation"))
            continue
        whl = cached_wheel(pin, cache)
        if whl is not None:
            log(f"{head}: cached {whl.name}")
        elif offline:
            log(f"{head}: FAILED: not in {cache} (--offline)")
            failed.append(ManifestRow(f"site:{pin.key}", "", str(pin), "-", "skip:not-downloaded"))
            continue
        else:
            try:
                whl = download(pin, cache)
            except DownloadError as e:
                log(f"{head}: FAILED: {e}")
                failed.append(ManifestRow(f"site:{pin.key}", "", str(pin), "-", "skip:download-failed"))
                continue
            log(f"{head}: downloaded {whl.name} ({whl.stat().st_size / 1e6:.2f} MB)")
        wheels.append(whl)
    size = sum(w.stat().st_size for w in wheels) / 1e6
    log(f"wheels: {len(wheels)} of {len(pins)} pins ready in {cache} ({size:.1f} MB); {len(failed)} not")
    for row in failed:
        log(f"  not ready: {row.file} ({row.status.removeprefix('skip:')})")
    return wheels, failed
