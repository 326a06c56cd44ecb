"""Writes of many files that a kill cannot leave half done.

A writer (``zeros``, ``set_ndarray``) first writes every file it makes into
a private folder ``<database>/.lazydicom/writing-<id>/``, which holds a lock
while its writer lives. When every file is written, the commit

1. writes a journal, ``commit.json`` (atomically), listing each temporary
   file and its target (a path inside the database),
2. renames the files into place (``os.replace``: each file is either old or
   new, never partly written),
3. removes the folder.

A process killed before step 1 changed nothing in the database: the next
run removes its folder. Killed after step 1, the next run finishes the
renames from the journal, so the write is all or nothing. ``recover``
does this, at every ``lazydicom.open`` and before every write; a folder whose
lock is held (a writer still running) is never touched.

Every folder created and every rename goes through ``lazydicom.disk``,
which refuses symbolic links out of the database.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from . import disk
from .errors import OutsideDatabaseError

__all__ = ["Pending", "begin", "recover"]

_PREFIX = "writing-"
_OWNER = "owner.lock"
_JOURNAL = "commit.json"
_STALE_SECONDS = 3600.0  # folders without a lock file (older versions, or a kill at birth)


class Pending:
    """The private folder of one write, locked while this process works in it.

    Attributes
    ----------
    root : str
        The database folder.
    path : str
        The folder temporary files are written to (by any worker process).
    """

    def __init__(self, root: str, path: str, lock: disk.Lock) -> None:
        self.root, self.path, self._lock = root, path, lock

    def commit(self, written: Sequence[tuple[str, str, bool]], folders: Sequence[str]) -> list[str]:
        """Move ``(temporary file, target, is new)`` into place; return the targets.

        A new file never replaces another file: it gets a free name instead.
        """
        plan: list[tuple[str, str]] = []
        taken: set[str] = set()
        for tmp, target, new in written:
            if new and (os.path.lexists(target) or target in taken):
                target = _free_name(target)
            taken.add(target)
            plan.append((tmp, target))
        for folder in folders:  # refused now (a link out), before anything is committed
            disk.check_inside(self.root, folder)
        journal = {
            "files": [
                [os.path.basename(tmp), Path(os.path.relpath(target, self.root)).as_posix()]
                for tmp, target in plan
            ]
        }
        disk.atomic_write(os.path.join(self.path, _JOURNAL), json.dumps(journal).encode())
        for folder in folders:  # after the journal: a kill before it leaves no folder
            disk.make_folders(self.root, folder)
        _apply(self.root, self.path, journal["files"])
        self.close(remove=True)
        return [target for _, target in plan]

    def discard(self) -> None:
        """Remove the folder and everything written to it; the database is unchanged.

        The folder is renamed first, so that tasks still running (a scheduler
        re-raises the first error while others go on) cannot create more files.
        """
        gone = f"{self.path}-discarded"
        try:
            os.rename(self.path, gone)
        except OSError:
            gone = self.path
        disk.remove_tree(gone)
        self.close(remove=False)

    def close(self, remove: bool) -> None:
        """Release the folder's lock, after removing the folder if ``remove``."""
        if remove:
            disk.remove_tree(self.path)
        self._lock.release()


def begin(root: str | os.PathLike) -> Pending:
    """A new locked folder for one write's temporary files (abandoned ones recovered first)."""
    root = os.fspath(root)
    base = disk.private_folder(root)
    recover(root)
    ident = uuid.uuid4().hex
    # locked under a name recover() ignores, then renamed: never seen unlocked
    birth = base / f".new-{ident}"
    os.mkdir(birth)
    lock = disk.Lock(birth / _OWNER)
    lock.acquire()
    path = base / f"{_PREFIX}{ident}"
    os.rename(birth, path)
    lock.path = os.fspath(path / _OWNER)
    return Pending(root, os.fspath(path), lock)


def recover(root: str | os.PathLike) -> int:
    """Finish or remove the writes of killed processes in ``root``; return how many.

    A folder with a journal is committed (the renames left are done), one
    without is removed. Folders of live writers (locked) are left alone, as
    is anything that is not a real folder inside ``root/.lazydicom``.
    """
    root = os.fspath(root)
    base = disk.private_folder(root, create=False)
    try:
        entries = list(os.scandir(base))
    except OSError:
        return 0
    done = 0
    now = time.time()
    for entry in entries:
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
            if entry.name.startswith(".new-"):
                if now - entry.stat(follow_symlinks=False).st_mtime > _STALE_SECONDS:
                    disk.remove_tree(entry.path)
                continue
            if not entry.name.startswith(_PREFIX):
                continue
            owner = os.path.join(entry.path, _OWNER)
            if not os.path.lexists(owner):
                if now - entry.stat(follow_symlinks=False).st_mtime > _STALE_SECONDS:
                    disk.remove_tree(entry.path)
                    done += 1
                continue
            lock = disk.Lock(owner)
            if not lock.acquire(blocking=False):
                continue  # a writer is working there
            try:
                journal = _read_journal(os.path.join(entry.path, _JOURNAL))
                if journal:
                    _apply(root, entry.path, journal, strict=False)
                disk.remove_tree(entry.path)
                done += 1
            finally:
                lock.release()
        except OSError:
            continue
    return done


def _read_journal(path: str) -> list[list[str]] | None:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except (OSError, ValueError):
        return None  # no journal (killed before the commit): nothing to finish
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        return None
    out = []
    for item in files:
        if (
            isinstance(item, list)
            and len(item) == 2
            and all(isinstance(x, str) and x for x in item)
            and "/" not in item[0]
            and os.sep not in item[0]
        ):
            out.append(item)
    return out


def _apply(root: str, folder: str, files: Sequence[Sequence[str]], strict: bool = True) -> None:
    """Rename each temporary file still there to its target (a path inside ``root``).

    Not ``strict`` (recovering a journal a killed process left): a target
    outside the database is left out instead of stopping the recovery.
    """
    for name, rel in files:
        tmp = os.path.join(folder, name)
        if not os.path.lexists(tmp):
            continue  # renamed before the kill
        target = os.path.join(root, *rel.split("/"))
        try:
            disk.make_folders(root, os.path.dirname(target))
            disk.replace_inside(root, tmp, target)
        except OutsideDatabaseError:
            if strict:
                raise


def _free_name(path: str) -> str:
    stem, ext = os.path.splitext(path)
    return f"{stem}_{uuid.uuid4().hex[:8]}{ext}"
