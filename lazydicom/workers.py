"""Worker processes that die with their parent.

A ``concurrent.futures.ProcessPoolExecutor`` shuts its workers down
when the parent exits normally, but a parent killed by SIGKILL (an
out-of-memory killer, ``kill -9``, a cluster's job manager) leaves them
running forever. Every process pool lazydicom starts comes from
``process_pool``, whose workers

- ask Linux to kill them when their parent dies (``PR_SET_PDEATHSIG`` with
  SIGKILL, set through ``prctl`` with ctypes), and
- on every platform also run a watcher thread that exits the worker when the
  process that created the pool is gone (a blocking wait on its handle on
  Windows, a check every second elsewhere).

Linux sends the signal when the *thread* that started the worker exits, so
a pool is used (and shut down) by the thread that created it, as in a
``with process_pool(n) as pool:`` block.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

__all__ = ["process_pool", "processes_allowed", "thread_pool", "tie_to_parent"]

_PR_SET_PDEATHSIG = 1
_POLL_SECONDS = 1.0


_THREAD_POOLS: dict[tuple[int, int | None], ThreadPoolExecutor] = {}
_THREAD_POOLS_LOCK = threading.Lock()


def _forget_thread_pools() -> None:
    """In a forked child: the parent's pools have no threads here (nor may the lock be free)."""
    global _THREAD_POOLS_LOCK
    _THREAD_POOLS.clear()
    _THREAD_POOLS_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_thread_pools)


def thread_pool(max_workers: int | None = None) -> ThreadPoolExecutor:
    """This thread's pool of ``max_workers`` threads (default: the number of cores), made once.

    For dask's threaded scheduler (``dask.threaded.get(..., pool=thread_pool())``)
    instead of its own default pool: dask keeps that pool across a fork, so a
    child forked after a threaded read (a ``multiprocessing.Pool`` worker) got
    a pool without threads and its first read waited forever. These pools are
    forgotten in a forked child. One pool per calling thread, as dask does, so
    a read inside a task of another read does not wait on its own pool.
    """
    key = (threading.get_ident(), max_workers)
    with _THREAD_POOLS_LOCK:
        pool = _THREAD_POOLS.get(key)
        if pool is None:
            pool = _THREAD_POOLS[key] = ThreadPoolExecutor(
                max_workers or os.cpu_count() or 1, thread_name_prefix="lazydicom-read")
    return pool


def processes_allowed() -> bool:
    """Whether this process may start worker processes.

    A daemonic process may not (Python refuses with an AssertionError): the
    workers of a ``multiprocessing.Pool`` are daemonic, so a user mapping
    ``lazydicom.open`` over folders with one must get the serial path.
    """
    return not multiprocessing.current_process().daemon


def process_pool(
    max_workers: int | None = None,
    *,
    mp_context: Any = None,
    initializer: Callable[..., Any] | None = None,
    initargs: tuple[Any, ...] = (),
) -> ProcessPoolExecutor:
    """A process pool whose workers exit when the process creating it dies.

    Parameters
    ----------
    max_workers : int, optional
        Number of worker processes (default: the number of cores).
    mp_context : multiprocessing context, optional
        Default: the platform's default start method, as dask's process
        scheduler uses, so ``multiprocessing.set_start_method`` is respected.
    initializer, initargs : optional
        Run in each worker after it is tied to its parent, as for
        ``ProcessPoolExecutor``.

    Returns
    -------
    concurrent.futures.ProcessPoolExecutor

    Examples
    --------
    >>> with process_pool(1) as pool:
    ...     pool.submit(sum, [1, 2, 3]).result()
    6
    """
    return ProcessPoolExecutor(
        max_workers,
        mp_context=mp_context or multiprocessing.get_context(),
        initializer=_tie_to_parent,
        initargs=(os.getpid(), initializer, initargs),
    )


def _tie_to_parent(
    parent: int, initializer: Callable[..., Any] | None, initargs: tuple[Any, ...]
) -> None:
    """Worker initializer: die with ``parent`` (the process that created the pool)."""
    tie_to_parent(parent)
    if initializer is not None:
        initializer(*initargs)


def tie_to_parent(parent: int) -> None:
    """In a worker process: exit when ``parent`` (the process that started it) dies."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the thread does it
            pass
    ppid = os.getppid()  # the parent, or the fork server that started this worker
    if not _alive(parent):  # died before the signal was asked for
        os._exit(1)
    threading.Thread(target=_watch, args=(parent, ppid), name="lazydicom-parent-watch",
                     daemon=True).start()


def _watch(parent: int, ppid: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - Windows
        _wait_windows(parent)
        os._exit(1)
    stop = threading.Event()
    while not stop.wait(_POLL_SECONDS):
        if os.getppid() != ppid or not _alive(parent):  # re-parented: the parent is gone
            os._exit(1)


def _alive(pid: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - Windows
        return True  # _wait_windows blocks on the handle instead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_windows(pid: int) -> None:  # pragma: no cover - Windows
    synchronize, infinite = 0x00100000, 0xFFFFFFFF
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(synchronize, False, pid)
    if handle:
        kernel32.WaitForSingleObject(handle, infinite)
        kernel32.CloseHandle(handle)
