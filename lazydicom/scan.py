"""Walk a folder and list its files with size and modification time.

The scan only stats files; it never opens one. Its output is what the index
compares against to decide which headers to (re-)read.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import BrokenExecutor, Executor
from pathlib import Path
from typing import NamedTuple

from .errors import DatabaseNotFoundError, InvalidArgumentError, UnreadableFolderError

__all__ = ["FileStat", "Scan", "scan_folder", "start_scan", "expand_sources", "INDEX_DIRNAME"]

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


def scan_folder(root: str | os.PathLike, pool: Executor | None = None, workers: int = 2
                ) -> Scan:
    """List every regular file under ``root``, recursively, in sorted order.

    Hidden folders of lazydicom (``.lazydicom``) are skipped. Symbolic links
    to folders are not followed (they could loop) and are reported, as are
    folders that cannot be listed and names that are not valid UTF-8 (the
    index stores paths as text). Files may have any name and extension.

    Parameters
    ----------
    root : str or PathLike
        The folder to walk.
    pool : concurrent.futures.Executor, optional
        Process pool walking sub-folders in parallel (see ``start_scan``);
        the result is the same.
    workers : int
        The pool's number of processes (how finely the folders are split).

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
    return start_scan(root, pool, workers)()


def start_scan(root: str | os.PathLike, pool: Executor | None = None, workers: int = 2
               ) -> Callable[[], Scan]:
    """Start a scan of ``root`` (see ``scan_folder``); call the result for the Scan.

    Without ``pool`` the walk is done before this returns. With a pool, the
    top of the tree is listed here until there are a few sub-folders per
    worker (at most three levels down), their walks are submitted to the
    pool, and this returns at once: the caller can do other work (the index
    loads its own lists) while the workers stat. A stat costs about 3 us of
    Python per file here, and threads do not help (the GIL between stats),
    so a million files are about 6 s in one process. Each sub-folder's files
    are one contiguous run of the path order, so the runs are joined in the
    order of their folders' paths, without sorting the files. Should a worker
    die, that part is walked here instead. ``workers``: the pool's size.
    """
    root = Path(root)
    if not root.exists():
        raise DatabaseNotFoundError(f"No such folder: {str(root)!r}")
    if not root.is_dir():
        raise NotADirectoryError(f"lazydicom.open expects a folder, {str(root)!r} is a file")
    if pool is None:
        scan = _walk(str(root), "")
        return lambda: scan
    files = Scan([], [], [], [])  # the files above the folders walked by the pool
    frontier = [(str(root), "")]
    for depth in range(3):
        folders: list[tuple[str, str]] = []  # (folder, its path relative to root + "/")
        for folder, rel in frontier:
            for entry in _entries(folder, rel, files.problems):
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name != INDEX_DIRNAME:
                            folders.append((entry.path, f"{rel}{entry.name}/"))
                        continue
                except OSError:
                    pass  # _file reports it, as the walk does
                _file(entry, rel, files)
        frontier = folders
        if len(folders) >= 4 * workers or depth == 2 or not folders:
            break
    # a few tasks per worker, each walking a run of folders: a task costs
    # about 0.5 ms of submitting and pickling, so not one per folder
    per_task = max(1, -(-len(frontier) // (4 * workers)))
    batches = [frontier[i : i + per_task] for i in range(0, len(frontier), per_task)]
    futures = [(batch, pool.submit(_walk_many, batch)) for batch in batches]

    def finish() -> Scan:
        walked: dict[str, Scan] = {}
        for batch, future in futures:
            try:
                parts = future.result()
            except (BrokenExecutor, OSError):  # a worker died: walk that part here
                parts = _walk_many(batch)
            walked.update(zip((rel for _, rel in batch), parts))
        # runs in path order: a file's key is its path, a folder's its path and "/"
        runs = sorted([(p, (p, z, m)) for p, z, m in zip(files.paths, files.sizes, files.mtimes)]
                      + [(rel, rel) for rel in walked])
        out = Scan([], [], [], files.problems)
        for key, unit in runs:
            if isinstance(unit, tuple):
                out.paths.append(unit[0])
                out.sizes.append(unit[1])
                out.mtimes.append(unit[2])
                continue
            part = walked[key]
            out.paths.extend(part.paths)
            out.sizes.extend(part.sizes)
            out.mtimes.extend(part.mtimes)
            out.problems.extend(part.problems)
        out.problems.sort()
        return out

    return finish


def _file(entry: os.DirEntry, rel: str, into: Scan) -> None:
    """Add a non-folder entry to ``into``: a regular file, or a problem with its reason."""
    name = entry.name
    try:
        if entry.is_file():
            st = entry.stat()
            into.paths.append(rel + name)
            into.sizes.append(st.st_size)
            into.mtimes.append(st.st_mtime_ns)
        elif entry.is_symlink():
            what = "a folder" if entry.is_dir() else "nothing (a broken link)"
            into.problems.append((f"{rel}{name}", f"a symbolic link to {what}: not followed"))
        else:
            into.problems.append((f"{rel}{name}", "not a regular file"))
    except FileNotFoundError:
        pass  # removed while scanning
    except OSError as exc:
        into.problems.append((f"{rel}{name}", f"cannot read ({exc.strerror or exc})"))


def _walk_many(folders: list[tuple[str, str]]) -> list[Scan]:
    """``_walk`` of each ``(folder, rel)``: one pool task."""
    return [_walk(folder, rel) for folder, rel in folders]


def _walk(folder: str, rel: str) -> Scan:
    """The files under ``folder`` (whose path relative to the root is ``rel``), in order."""
    out = Scan([], [], [], [])
    problems = out.problems
    # Depth first, each folder's entries in the order of their paths (a folder
    # sorts as its name and "/"): the files come out sorted by path without
    # sorting them all at the end. [(entries of a folder still to visit, its path)]
    walk = [(_entries(folder, rel, problems), rel)]
    add_path, add_size, add_mtime = out.paths.append, out.sizes.append, out.mtimes.append
    lstat = os.lstat
    while walk:
        entries, here = walk[-1]
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != INDEX_DIRNAME:
                        sub = f"{here}{entry.name}/"
                        walk.append((_entries(entry.path, sub, problems), sub))
                        break  # its files come next; then the rest of this folder
                    continue
                if entry.is_file(follow_symlinks=False):  # the common case, inline
                    # os.lstat of the path: ~1 us a file less than DirEntry.stat here.
                    # (By name in an open folder, stat(name, dir_fd=...), is 1.3x
                    # faster still, but opens every folder: a reopen would then
                    # "open" paths under the root, which counting tools report.)
                    st = lstat(entry.path)
                    add_path(here + entry.name)
                    add_size(st.st_size)
                    add_mtime(st.st_mtime_ns)
                    continue
            except FileNotFoundError:
                continue  # removed while scanning
            except OSError:
                pass  # _file reports it
            _file(entry, here, out)  # links and the rest
        else:
            walk.pop()
    problems.sort()
    return out


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


def expand_sources(sources: Iterable[str | os.PathLike]) -> list[str]:
    """Folders from paths and glob patterns (patterns matching nothing are an error)."""
    folders: list[str] = []
    for source in sources:
        text = os.fspath(source)
        if glob.has_magic(text) and "://" not in text:
            matches = sorted(p for p in glob.glob(text) if os.path.isdir(p))
            if not matches:
                raise InvalidArgumentError(f"no folder matches {text!r}")
            folders.extend(matches)
        else:
            folders.append(text)
    return folders
