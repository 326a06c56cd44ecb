"""Headers read ahead, while a command still imports its libraries.

A first ``lazydicom extract`` (or ``index``, ``array``) of a folder spends
its first second importing pandas, pyarrow and zarr in one thread while the
other cores wait, and only then reads every header. [`start`][lazydicom.readahead.start]
starts one worker process as soon as the command's arguments are checked: it
lists the folders and reads their headers in batches (the same
``lazydicom.header.read_rows`` as the index's workers), keeping the rows.
When the index reads the headers of a folder (``lazydicom.index.read_files``)
it first [`take`][lazydicom.readahead.take]s what the worker has read: the
rows of every file it needs whose path, size and modification time are the
ones the worker saw, and reads the others itself. At the first ``take`` a
worker with a few hundred files left finishes them (sooner than the index
could start its own pool); one with more stops after the batch it is on, and
the index's usual pool of workers reads the rest (nothing is read twice). On
the 2-core VM of docs/benchmarks.md the worker has read the 1,200 headers of
the extract benchmark's CT folder by the time the imports are done, and the
index is ready 0.07-0.15 s after them instead of 0.27-0.33 s.

Only the command line reads ahead (``lazydicom.open`` does not guess what
comes next), only for local folders without an index yet (a folder with one
is refreshed from it, reading only what changed), and only the default
attributes. Nothing is written: the worker's rows become part of the index
only through the index's own checks. If the worker fails or is killed, the
index reads those headers itself.
"""

from __future__ import annotations

import atexit
import gc
import multiprocessing
import os
import threading
from pathlib import Path
from typing import Any

from .header import read_rows
from .scan import scan_folder
from .workers import tie_to_parent

__all__ = ["start", "take", "stop", "wanted"]

_BATCH = 64  # files per batch: the worker stops within one batch (~20 ms of headers)
_MOST = 20_000  # files read ahead at most, whatever the wait: bounds the rows held
_FINISH = 512  # files left that the worker finishes when asked (~0.15 s; a pool costs ~0.1 s)
_WAIT = 10.0  # seconds given to a stopping worker to hand over its rows

_LOCK = threading.Lock()
_RUNNING: _ReadAhead | None = None


def _key(root: str | os.PathLike) -> str:
    return str(Path(root).absolute())  # as lazydicom.index.Index names its root


class _ReadAhead:
    """One worker process reading the headers of ``roots`` until done or told to stop."""

    def __init__(self, roots: list[str]) -> None:
        context = multiprocessing.get_context()
        self._stop = context.Event()
        self._left = context.Value("q", -1, lock=False)  # files still to read; -1: listing
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_work, args=(roots, send, self._stop, self._left, os.getpid()),
            daemon=True, name="lazydicom-readahead")
        self._process.start()
        send.close()
        self._files: dict[str, dict[str, tuple[int, int, list, dict | None]]] | None = None

    def results(self) -> dict[str, dict[str, tuple[int, int, list, dict | None]]]:
        """What the worker read: root -> path -> (size, mtime, rows, skip entry or None).

        A worker still listing the folders has read nothing: it is stopped at
        once. One with at most ``_FINISH`` files left finishes them (sooner
        than the index could start its pool); one with more stops after its
        batch.
        """
        if self._files is not None:
            return self._files
        files: dict[str, dict[str, tuple[int, int, list, dict | None]]] = {}
        left = self._left.value
        if left < 0:
            self._close()
            return {}
        if left > _FINISH:
            self._stop.set()
        try:
            if self._receive.poll(_WAIT):
                for root, batches in self._receive.recv():
                    got = files.setdefault(root, {})
                    for part, rows, skipped in batches:
                        by_path: dict[str, list] = {}
                        for row in rows:
                            by_path.setdefault(row["path"], []).append(row)
                        skips = {s["path"]: s for s in skipped}
                        for rel, size, mtime in part:
                            got[rel] = (size, mtime, by_path.get(rel, []), skips.get(rel))
        except (EOFError, OSError):
            files = {}  # the worker died: the index reads everything itself
        self._files = files
        self._close()
        return files

    def _close(self) -> None:
        """End the worker (it writes nothing, so it may be killed at any point)."""
        self._stop.set()
        self._receive.close()
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        if self._files is None:
            self._files = {}


def _work(roots: list[str], send: Any, stop: Any, left: Any, parent: int) -> None:
    """The worker: list ``roots``, read their headers in batches until done, stopped or
    ``_MOST`` files are read, then send ``[(root, [(files, rows, skipped), ...]), ...]``."""
    tie_to_parent(parent)
    gc.freeze()  # the parent's imports are never garbage: not walked by collections
    gc.enable()  # (the command line turns the collector off while it imports)
    done: list[tuple[str, list]] = []
    try:
        todo = []
        for root in roots:
            found = scan_folder(root)
            todo.append((root, list(zip(found.paths, found.sizes, found.mtimes, strict=True))))
        left.value = min(_MOST, sum(len(files) for _, files in todo))
        for root, files in todo:
            batches: list = []
            done.append((root, batches))
            for begin in range(0, len(files), _BATCH):
                if stop.is_set() or left.value <= 0:
                    break
                part = files[begin:begin + _BATCH]
                batches.append((part, *read_rows(root, part)))
                left.value = max(0, left.value - len(part))
    except Exception:  # noqa: BLE001 - the index reads and reports for itself
        pass
    left.value = 0
    try:
        send.send(done)
    except (OSError, ValueError):  # the command is gone or done without it
        pass
    send.close()


def start(folders: list[str]) -> None:
    """Start reading the headers of ``folders`` (local folders without an index) ahead.

    At most one read-ahead runs in a process; a second ``start`` stops the first.
    """
    global _RUNNING
    roots = list(dict.fromkeys(_key(f) for f in folders))
    stop()
    if roots:
        with _LOCK:
            _RUNNING = _ReadAhead(roots)


def take(
    root: str | os.PathLike, files: list[tuple[str, int, int]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[tuple[str, int, int]]]:
    """What was read ahead for ``files`` (``(path, size, mtime)``) of ``root``.

    Returns ``(rows, skipped, rest)``: the rows and skipped entries of the
    files read ahead as they are now (same size and mtime), and the files
    still to read. Stops the read-ahead (its other folders keep what it read).
    """
    with _LOCK:
        running = _RUNNING
        found = running.results().get(_key(root), {}) if running is not None else {}
        if not found:
            return [], [], files
        rows: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        rest: list[tuple[str, int, int]] = []
        for rel, size, mtime in files:
            seen = found.pop(rel, None)  # each file's rows are handed over once
            if seen is None or seen[:2] != (size, mtime):
                rest.append((rel, size, mtime))
                continue
            rows += seen[2]
            if seen[3] is not None:
                skipped.append(seen[3])
        return rows, skipped, rest


def stop() -> None:
    """Stop the read-ahead, if any, and drop what it read."""
    global _RUNNING
    with _LOCK:
        running, _RUNNING = _RUNNING, None
        if running is not None:
            running._close()


atexit.register(stop)


def wanted(folder: str) -> bool:
    """Whether reading ``folder`` ahead can help: a local folder with no index yet.

    An index lives in ``folder/.lazydicom`` or, for a folder this user cannot
    write, in the user's cache (``lazydicom.index.default_location``); when
    either exists the index is refreshed from it instead.
    """
    from .disk import user_cache_location
    from .scan import INDEX_DIRNAME

    if "://" in folder or not os.path.isdir(folder):
        return False
    root = Path(folder).absolute()
    return not (root / INDEX_DIRNAME).exists() and not user_cache_location(root).exists()
