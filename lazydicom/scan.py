"""Walk a folder and list its files with size and modification time.

The scan only stats files; it never opens one. Its output is what the index
compares against to decide which headers to (re-)read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from .errors import DatabaseNotFoundError

__all__ = ["FileStat", "scan_folder", "INDEX_DIRNAME"]

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


def scan_folder(root: str | os.PathLike) -> list[FileStat]:
    """List every regular file under ``root``, recursively, in sorted order.

    Hidden folders of lazydicom (``.lazydicom``) are skipped, as are symbolic
    links to folders (which could loop). Files may have any name and extension.

    Parameters
    ----------
    root : str or PathLike
        The folder to walk.

    Returns
    -------
    list of FileStat

    Raises
    ------
    DatabaseNotFoundError
        If ``root`` does not exist (a ``FileNotFoundError``).
    NotADirectoryError
        If ``root`` is a file.
    """
    root = Path(root)
    if not root.exists():
        raise DatabaseNotFoundError(f"No such folder: {str(root)!r}")
    if not root.is_dir():
        raise NotADirectoryError(f"lazydicom.open expects a folder, {str(root)!r} is a file")
    found: list[FileStat] = []
    unnamed: list[str] = []
    stack = [(str(root), "")]
    while stack:
        folder, rel = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # an unreadable sub-folder is not fatal; its files are not listed
        for entry in entries:
            name = entry.name
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                # bytes that are not UTF-8 (os.fsdecode's surrogates): the index
                # stores paths as text, so such a file cannot be indexed
                unnamed.append(f"{rel}{name!r}")
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if name != INDEX_DIRNAME:
                        stack.append((entry.path, f"{rel}{name}/"))
                elif entry.is_file():
                    st = entry.stat()
                    found.append(FileStat(f"{rel}{name}", st.st_size, st.st_mtime_ns))
            except OSError:
                continue  # vanished while scanning
    found.sort(key=lambda f: f.path)
    if unnamed:
        import warnings

        from .errors import SkippedFilesWarning

        warnings.warn(
            f"{len(unnamed)} file or folder name(s) under {str(root)!r} are not valid UTF-8 "
            f"and were not indexed (rename them to include them): {unnamed[:5]}",
            SkippedFilesWarning,
            stacklevel=3,
        )
    return found
