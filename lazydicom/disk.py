"""Writing inside a database folder: never out of it, atomically, under locks.

lazydicom writes in two places only: its private folder ``.lazydicom`` (the
index, locks, temporary files, the frame cache) and the folders of the series
it writes. The rules of every write and delete are here:

- the private folder is a real folder inside the database: a symbolic link
  (or a file) named ``.lazydicom`` is refused with
  [`OutsideDatabaseError`][lazydicom.OutsideDatabaseError], as is a folder of a
  written series that is reached through a symbolic link;
- a file is replaced atomically: written to a new temporary file beside it,
  flushed to disk, then renamed over the old one;
- locks are advisory locks on lock files (``fcntl.flock``, ``msvcrt.locking``
  on Windows), which the operating system releases when their process dies,
  even by SIGKILL, so a killed process never leaves a lock behind;
- a process that uses a database holds a *session* lock there; the next
  process that finds a session whose owner died without closing it knows
  that temporary files may be left and removes them (see
  ``open_session``).
"""

from __future__ import annotations

import atexit
import errno
import hashlib
import os
import shutil
import stat
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import OutsideDatabaseError
from .scan import INDEX_DIRNAME

__all__ = [
    "Lock",
    "locked",
    "private_folder",
    "atomic_write",
    "make_folders",
    "check_inside",
    "replace_inside",
    "open_session",
    "remove_partial_files",
    "remove_tree",
]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


_HELD: weakref.WeakSet[Lock] = weakref.WeakSet()


class Lock:
    """An exclusive advisory lock on a lock file, released when its process dies.

    Locks of one file taken through two ``Lock`` objects exclude each
    other, also between threads of one process. A process forked while a
    lock is held (a process pool) does not keep it: the child closes its
    copies at once, so the lock is released when its owner releases it or
    dies, whatever its children do.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self._fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock; without ``blocking``, return False when it is held."""
        fd = _open_lock_file(self.path)
        try:
            if not _lock(fd, blocking):
                os.close(fd)
                return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        _HELD.add(self)
        return True

    def release(self) -> None:
        """Release the lock (closing the file releases it)."""
        fd, self._fd = self._fd, None
        _HELD.discard(self)
        if fd is not None:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _forget(self) -> None:
        """In a forked child: close this copy of the file, which the parent still holds."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def _forget_inherited_locks() -> None:
    for lock in list(_HELD):
        lock._forget()
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_locks)


def _open_lock_file(path: str) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC | _BINARY, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise OutsideDatabaseError(
                f"The lock file {path!r} is a symbolic link; lazydicom does not write through "
                "symbolic links. Remove it."
            ) from None
        raise


def _lock(fd: int, blocking: bool) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        return True
    import msvcrt  # pragma: no cover - Windows

    while True:  # pragma: no cover - Windows
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            return True
        except OSError:
            if not blocking:
                return False
            time.sleep(0.05)


@contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Hold the lock of ``path`` (a lock file, created if needed) inside the block."""
    lock = Lock(path)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _refuse_link(path: str | os.PathLike, what: str) -> None:
    raise OutsideDatabaseError(
        f"{what} {os.fspath(path)!r} is a symbolic link; lazydicom never writes or deletes "
        "through a symbolic link out of the database folder. Replace it with a real folder "
        "(or give index_path= to keep the index elsewhere)."
    )


def private_folder(root: str | os.PathLike, create: bool = True) -> Path:
    """``root/.lazydicom``, a real folder (created if ``create``).

    Raises
    ------
    OutsideDatabaseError
        ``.lazydicom`` is a symbolic link or a file.
    """
    path = Path(root) / INDEX_DIRNAME
    if create:
        try:
            path.mkdir()
        except FileExistsError:
            pass
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if create:
            raise
        return path
    if stat.S_ISLNK(st.st_mode):
        _refuse_link(path, "The index folder")
    if not stat.S_ISDIR(st.st_mode):
        raise OutsideDatabaseError(
            f"{str(path)!r} is a file, not lazydicom's index folder; remove or rename it "
            "(or give index_path= to keep the index elsewhere)"
        )
    return path


def user_cache() -> Path:
    """lazydicom's folder in the user's cache (``$XDG_CACHE_HOME/lazydicom``)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lazydicom"


def user_cache_location(root: Path) -> Path:
    """Where the index of a folder this user cannot write lives: the user's cache,
    keyed by the folder's real path."""
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    return user_cache() / digest


def atomic_write(path: str | os.PathLike, data: bytes, *, sync: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically (temporary file, fsync, rename).

    A process killed at any point leaves either the old file or the new one,
    plus at most a ``*.tmp`` file beside it.
    """
    path = os.fspath(path)
    tmp = f"{path}.{uuid.uuid4().hex[:12]}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _relative(root: str, path: str) -> list[str]:
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    parts = Path(rel).parts
    if os.path.isabs(rel) or (parts and parts[0] == os.pardir):
        raise OutsideDatabaseError(f"{path!r} is outside the database folder {root!r}")
    return [p for p in parts if p != os.curdir]


def check_inside(root: str | os.PathLike, folder: str | os.PathLike) -> None:
    """Check that the existing part of ``folder`` is real folders inside ``root``.

    Raises
    ------
    OutsideDatabaseError
        ``folder`` is outside ``root`` or reached through a symbolic link.
    """
    root, current = os.fspath(root), os.fspath(root)
    for part in _relative(root, os.fspath(folder)):
        current = os.path.join(current, part)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            _refuse_link(current, "The folder")
        if not stat.S_ISDIR(st.st_mode):
            raise OutsideDatabaseError(
                f"{current!r} is a file where lazydicom needs a folder; move it away"
            )


def make_folders(root: str | os.PathLike, folder: str | os.PathLike) -> None:
    """Create ``folder`` under ``root``: every level a real folder, none a symbolic link."""
    root, current = os.fspath(root), os.fspath(root)
    for part in _relative(root, os.fspath(folder)):
        current = os.path.join(current, part)
        try:
            os.mkdir(current)
        except FileExistsError:
            pass
        st = os.lstat(current)
        if stat.S_ISLNK(st.st_mode):
            _refuse_link(current, "The folder")
        if not stat.S_ISDIR(st.st_mode):
            raise OutsideDatabaseError(
                f"{current!r} is a file where lazydicom needs a folder; move it away"
            )


def replace_inside(root: str | os.PathLike, source: str, target: str) -> None:
    """``os.replace(source, target)`` once the target's folder is checked to be inside ``root``.

    A target that is itself a symbolic link is replaced (the link, not what it
    points to).
    """
    check_inside(root, os.path.dirname(target))
    os.replace(source, target)


def remove_tree(path: str | os.PathLike) -> None:
    """Remove a folder (never through a symbolic link: a link itself is not followed)."""
    path = os.fspath(path)
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            return
    except FileNotFoundError:
        return
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- sessions

_SESSIONS: dict[str, tuple[Lock, int]] = {}
_SESSION_DIR = "sessions"


def _close_sessions() -> None:
    for lock, pid in list(_SESSIONS.values()):
        if pid == os.getpid():  # not in a forked child that exits normally
            path = lock.path
            lock.release()
            try:
                os.unlink(path)
            except OSError:
                pass
    _SESSIONS.clear()


def open_session(location: str | os.PathLike) -> bool:
    """Mark this process as a user of ``location``; True when an earlier user was killed.

    The session is a locked file in ``location/sessions``, held until the
    process exits. A session file whose lock can be taken belongs to a
    process that died without removing it (killed): it is removed, and True
    tells the caller to remove what such a process may have left (partial
    cache entries).
    """
    folder = Path(location) / _SESSION_DIR
    try:
        folder.mkdir(exist_ok=True)
    except OSError:
        return False  # read-only: nothing to mark, nothing can have been left
    killed = False
    mine = _SESSIONS.get(str(location))
    for entry in os.scandir(folder):
        if not entry.name.endswith(".lock") or (mine and entry.path == mine[0].path):
            continue
        if entry.is_symlink():
            continue
        lock = Lock(entry.path)
        try:
            if lock.acquire(blocking=False):
                killed = True
                try:
                    os.unlink(entry.path)
                finally:
                    lock.release()
        except OSError:
            continue
    if mine is None or mine[1] != os.getpid():
        # locked under a name nobody looks at, then renamed: never seen unlocked
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        lock = Lock(folder / f"{name}.new")
        lock.acquire()
        os.replace(lock.path, folder / f"{name}.lock")
        lock.path = os.fspath(folder / f"{name}.lock")
        if not _SESSIONS:
            atexit.register(_close_sessions)
        _SESSIONS[str(location)] = (lock, os.getpid())
    return killed


def remove_partial_files(folder: str | os.PathLike, suffixes: tuple[str, ...]) -> int:
    """Remove files under ``folder`` whose names end with ``suffixes``; return how many.

    Symbolic links are neither followed nor removed.
    """
    removed = 0
    stack = [os.fspath(folder)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_symlink():
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.name.endswith(suffixes):
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                continue
    return removed
