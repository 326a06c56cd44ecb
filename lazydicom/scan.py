"""Walk a folder and list its files with size and modification time.

The scan only stats files; it never opens one. Its output is what the index
compares against to decide which headers to (re-)read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
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

    The files are three parallel lists, sorted by path: ``paths`` (relative,
    POSIX), ``sizes`` and ``mtimes`` (ns); ``files`` gives them as
    ``FileStat``. Parallel lists rather than one object per file: a scan of a
    million files compares them with the index without creating a million
    objects. ``problems`` holds ``(path, reason)`` for folders that cannot be listed,
    names that are not valid UTF-8 (shown with ``\\x..`` escapes), symbolic
    links to folders (not followed, they could loop) and entries that are not
    regular files; the index reports them in ``Database.skipped()``.
    """

    paths: list[str]
    sizes: list[int]
    mtimes: list[int]
    problems: list[tuple[str, str]]

    @property
    def files(self) -> list[FileStat]:
        """The files found, sorted by path."""
        return list(map(FileStat, self.paths, self.sizes, self.mtimes))

    @classmethod
    def of(cls, files: list[FileStat], problems: list[tuple[str, str]]) -> Scan:
        """The scan of ``files`` (any order) and ``problems``."""
        files = sorted(files, key=lambda f: f.path)
        return cls([f.path for f in files], [f.size for f in files],
                   [f.mtime for f in files], problems)


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
    paths: list[str] = []
    sizes: list[int] = []
    mtimes: list[int] = []
    problems: list[tuple[str, str]] = []
    # Depth first, each folder's entries in the order of their paths (a folder
    # sorts as its name and "/"): the files come out sorted by path without
    # sorting them all at the end. [(entries of a folder still to visit, its path)]
    walk = [(_entries(str(root), "", problems), "")]
    while walk:
        entries, rel = walk[-1]
        for entry in entries:
            name = entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if name != INDEX_DIRNAME:
                        sub = f"{rel}{name}/"
                        walk.append((_entries(entry.path, sub, problems), sub))
                        break  # its files come next; then the rest of this folder
                elif entry.is_file():
                    st = entry.stat()
                    paths.append(rel + name)
                    sizes.append(st.st_size)
                    mtimes.append(st.st_mtime_ns)
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
        else:
            walk.pop()
    problems.sort()
    return Scan(paths, sizes, mtimes, problems)


def _order(entry: os.DirEntry) -> str:
    """The key of an entry among its siblings: its name, and "/" for a folder."""
    try:
        return f"{entry.name}/" if entry.is_dir(follow_symlinks=False) else entry.name
    except OSError:
        return entry.name


def _entries(folder: str, rel: str, problems: list[tuple[str, str]]) -> Iterator[os.DirEntry]:
    """The entries of ``folder`` with UTF-8 names, in path order; the others in ``problems``."""
    try:
        with os.scandir(folder) as listing:
            entries = list(listing)
    except OSError as exc:
        if not rel:
            raise UnreadableFolderError(
                f"Cannot list the folder {folder!r} ({exc.strerror or exc}); "
                "check that you may read it"
            ) from None
        if not isinstance(exc, FileNotFoundError):  # else: removed while scanning
            problems.append(
                (rel, f"cannot list this folder ({exc.strerror or exc}): its files are "
                 "not indexed")
            )
        return iter(())
    try:
        "".join([e.name for e in entries]).encode("utf-8")
    except UnicodeEncodeError:
        # bytes that are not UTF-8 (os.fsdecode's surrogates): the index
        # stores paths as text, so such a file cannot be indexed
        named = []
        for entry in entries:
            try:
                entry.name.encode("utf-8")
                named.append(entry)
            except UnicodeEncodeError:
                problems.append(
                    (f"{_shown(rel)}{_shown(entry.name)}",
                     "the name is not valid UTF-8: rename it to index it")
                )
        entries = named
    entries.sort(key=_order)
    return iter(entries)
