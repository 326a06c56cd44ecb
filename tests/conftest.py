"""Shared pytest fixtures: real data copies and a counter of opened files."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

_recording: list[list[str]] = []
_lock = threading.Lock()


def _audit(event: str, args: tuple) -> None:
    # 'open' is raised by builtins.open, io.open and os.open alike (PEP 578),
    # so every way lazydicom or pydicom could open a file is seen.
    if event == "open" and _recording and isinstance(args[0], str | bytes | os.PathLike):
        with _lock:
            for log in _recording:
                log.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@contextmanager
def opened_files(root: str | os.PathLike) -> Iterator[list[str]]:
    """Record the files under ``root`` opened inside the block (index files excluded)."""
    log: list[str] = []
    _recording.append(log)
    found: list[str] = []
    try:
        yield found
    finally:
        _recording.remove(log)
        root = os.path.abspath(root)
        found.extend(
            p
            for p in (os.path.abspath(p) for p in log)
            if p.startswith(root + os.sep) and f"{os.sep}.lazydicom" not in p
        )


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A writable copy of the real corpus in tests/data (without its provenance note)."""
    dest = tmp_path / "corpus"
    # without any index a user's run left in tests/data (the README's first command)
    shutil.copytree(DATA, dest, ignore=shutil.ignore_patterns("*.md", ".lazydicom"))
    return dest
