"""Walk a folder and list its files with size and modification time.

The scan only stats files; it never opens one. Its output is what the index
compares against to decide which headers to (re-)read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from .errors import DatabaseNotFoundError, UnreadableFolderError

__all__ = ["FileStat", "Scan", "scan_folder", "INDEX_DIRNAME"]

#: Hidden folder beside the data where lazydicom keeps its index and cache.
INDEX_DIRNAME = ".lazydicom"


class FileStat(NamedTuple):
    """One file found by the scan: path relative to the root (POSIX), size, mtime (ns).

    A NamedTuple rather than a frozen dataclass: a scan makes one per file and
    a tuple is created several times faster.
    """

    path: str
    size: int
    mtime: int


class Scan(NamedTuple):
    """What a scan found: the files, and what it could not list, with the reason.

    ``problems`` holds ``(path, reason)`` for folders that cannot be listed,
    names that are not valid UTF-8 (shown with ``\\x..`` escapes), symbolic
    links to folders (not followed, they could loop) and entries that are not
    regular files; the index reports them in ``Database.skipped()``.
    """

    files: list[FileStat]
    problems: list[tuple[str, str]]


def _shown(name: str) -> str:
    """A name as text: bytes that are not UTF-8 as ``\\xNN`` escapes."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def scan_folder(root: str | os.PathLike) -> Scan:
    """List every regular file under ``root``, recursively, in sorted order.

    Hidden folders of lazydicom (``.lazydicom``) are skipped. Symbolic links
    to folders are not followed (they could loop) and are reported, as are
    folders that cannot be listed and names that are not valid UTF-8 (the
    index stores paths as text). Files may have any name and extension.

    Parameters
    ----------
    root : str or PathLike
        The folder to walk.

    Returns
    -------
    Scan

    Raises
    ------
    DatabaseNotFoundError
        If ``root`` does not exist (a ``FileNotFoundError``).
    NotADirectoryError
        If ``root`` is a file.
    UnreadableFolderError
        If ``root`` cannot be listed (a ``PermissionError``).
    """
    root = Path(root)
    if not root.exists():
        raise DatabaseNotFoundError(f"No such folder: {str(root)!r}")
    if not root.is_dir():
        raise NotADirectoryError(f"lazydicom.open expects a folder, {str(root)!r} is a file")
    found: list[FileStat] = []
    problems: list[tuple[str, str]] = []
    stack = [(str(root), "")]
    while stack:
        folder, rel = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            if not rel:
                raise UnreadableFolderError(
                    f"Cannot list the folder {str(root)!r} ({exc.strerror or exc}); "
                    "check that you may read it"
                ) from None
            if not isinstance(exc, FileNotFoundError):  # else: removed while scanning
                problems.append(
                    (rel, f"cannot list this folder ({exc.strerror or exc}): its files are "
                     "not indexed")
                )
            continue
        for entry in entries:
            name = entry.name
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                # bytes that are not UTF-8 (os.fsdecode's surrogates): the index
                # stores paths as text, so such a file cannot be indexed
                problems.append(
                    (f"{_shown(rel)}{_shown(name)}",
                     "the name is not valid UTF-8: rename it to index it")
                )
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if name != INDEX_DIRNAME:
                        stack.append((entry.path, f"{rel}{name}/"))
                elif entry.is_file():
                    st = entry.stat()
                    found.append(FileStat(f"{rel}{name}", st.st_size, st.st_mtime_ns))
                elif entry.is_symlink():
                    what = "a folder" if entry.is_dir() else "nothing (a broken link)"
                    problems.append(
                        (f"{rel}{name}", f"a symbolic link to {what}: not followed")
                    )
                else:
                    problems.append((f"{rel}{name}", "not a regular file"))
            except FileNotFoundError:
                continue  # removed while scanning
            except OSError as exc:
                problems.append((f"{rel}{name}", f"cannot read ({exc.strerror or exc})"))
    found.sort(key=lambda f: f.path)
    problems.sort()
    return Scan(found, problems)
