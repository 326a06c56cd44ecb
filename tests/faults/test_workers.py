"""Class 7: worker processes die with their parent, even when it is SIGKILLed.

A parent process starts workers that block forever, reports their pids, and
is killed with SIGKILL. Every worker must be gone soon after (polled, with a
generous bound: the test waits for an event, it does not time anything).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tests.faults.catalog import cases

psutil = pytest.importorskip("psutil")
ROOT = Path(__file__).resolve().parents[2]

_POOL = textwrap.dedent("""
    import time
    from lazydicom.workers import process_pool
    pool = process_pool(2)
    futures = [pool.submit(time.sleep, 3600) for _ in range(2)]
    print("ready", flush=True)  # the test waits for the two workers to appear
    time.sleep(3600)
""")

_INDEX = textwrap.dedent("""
    import multiprocessing, os, sys, time
    multiprocessing.set_start_method("fork")  # the workers inherit the blocking reader
    import lazydicom.index
    from lazydicom.index import Index

    def block(root, files, extra):
        print("ready", flush=True)
        time.sleep(3600)

    lazydicom.index._read_files = block
    Index(sys.argv[1]).refresh(workers=2, progress=False)
""")

KINDS = cases(
    7,
    "correct",
    {
        "workers/process-pool": "SIGKILL of a process whose lazydicom.workers.process_pool "
        "workers are busy",
        "workers/lazydicom-index": "SIGKILL of `lazydicom index` while its 2 header-reading "
        "workers read (they were left running forever)",
    },
)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("kind", KINDS)
def test_workers_die_with_their_parent(kind, tmp_path):
    if kind.endswith("process-pool"):
        argv = [sys.executable, "-c", _POOL]
    else:
        for i in range(100):  # enough files for the parallel path
            (tmp_path / f"{i}.dcm").write_bytes(b"")
        argv = [sys.executable, "-c", _INDEX, str(tmp_path)]
    proc = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, text=True)
    workers: list = []
    try:
        assert proc.stdout is not None and "ready" in proc.stdout.readline()
        deadline = time.monotonic() + 60
        while True:  # wait until both workers are up
            workers = psutil.Process(proc.pid).children(recursive=True)
            if len(workers) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(workers) >= 2
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 30
        while not all(_gone(w.pid) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(_gone(w.pid) for w in workers), "workers outlived their killed parent"
    finally:
        if not workers and proc.poll() is None:
            workers = psutil.Process(proc.pid).children(recursive=True)
        proc.kill()
        proc.wait()
        for w in workers:  # when the test fails: do not leave them running
            if not _gone(w.pid):
                w.kill()


LOCKS = cases(
    7,
    "correct",
    {
        "workers/forked-while-locked": "a process forked while the database's write lock is "
        "held (a process pool) does not keep the lock after its parent releases it",
    },
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
@pytest.mark.parametrize("kind", LOCKS)
def test_forked_children_do_not_keep_locks(kind, tmp_path):
    import multiprocessing

    from lazydicom import disk

    context = multiprocessing.get_context("fork")
    started = context.Event()

    def work() -> None:  # runs after the fork hooks
        started.set()
        time.sleep(60)

    lock = disk.Lock(tmp_path / "write.lock")
    assert lock.acquire()
    child = context.Process(target=work)
    child.start()
    try:
        assert started.wait(60)
        lock.release()
        other = disk.Lock(tmp_path / "write.lock")
        assert other.acquire(blocking=False), "the forked child kept the lock"
        other.release()
    finally:
        child.kill()
        child.join()


def test_process_pool_runs_tasks():
    from lazydicom.workers import process_pool

    with process_pool(2) as pool:
        assert sorted(pool.map(abs, [-2, -1, 3])) == [1, 2, 3]


DAEMONIC = cases(
    7,
    "correct",
    {
        "workers/inside-a-multiprocessing-pool": "lazydicom.open (a cold index of 120 files, "
        "then a reopen with the folder walked by a pool) and a read inside a worker of a "
        "multiprocessing.Pool, which may not start processes (it was an AssertionError), "
        "forked after a threaded read in the parent (the read in the child hung)",
    },
)


def _open_in_pool_worker(folder: str) -> tuple:
    import lazydicom.index

    db = lazydicom.open(folder, progress=False)  # 120 files: the header pool's size
    cold = len(db.table())
    lazydicom.index._PARALLEL_SCAN_MIN = 1  # and the pooled stat walk
    db = lazydicom.open(folder, progress=False)
    (series,) = db.series()
    return cold, len(db.table()), series.numpy(("InstanceNumber",))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
@pytest.mark.parametrize("kind", DAEMONIC)
def test_open_inside_a_multiprocessing_pool_worker(kind, tmp_path):
    import multiprocessing

    import lazydicom
    from tests.synthetic import expected_ndarray, write_series

    coords = {"InstanceNumber": list(range(1, 121))}
    write_series(tmp_path / "dicom", coords, (6, 4))
    parent = tmp_path / "parent"
    write_series(parent, {"InstanceNumber": [1, 2, 3]}, (6, 4))
    (series,) = lazydicom.open(parent, progress=False).series()
    series.numpy(("InstanceNumber",))  # a threaded read here first: its pool is forked too
    with multiprocessing.get_context("fork").Pool(1) as pool:  # its workers are daemonic
        result = pool.apply_async(_open_in_pool_worker, (str(tmp_path / "dicom"),))
        cold, reopened, array = result.get(timeout=300)  # a hang fails, after a while
    assert cold == reopened == 120
    np.testing.assert_array_equal(array, expected_ndarray(coords, (6, 4)))


def test_processes_scheduler_inside_a_daemonic_process_is_a_clear_error(tmp_path):
    import multiprocessing

    from tests.synthetic import write_series

    write_series(tmp_path / "dicom", {"InstanceNumber": [1, 2]}, (6, 4))
    with multiprocessing.get_context("fork").Pool(1) as pool:
        message = pool.apply_async(_read_with_processes, (str(tmp_path / "dicom"),)).get(300)
    assert "daemonic" in message and "'threads'" in message


def _read_with_processes(folder: str) -> str:
    import lazydicom

    (series,) = lazydicom.open(folder, progress=False).series()
    try:
        series.frames(("InstanceNumber",)).read(scheduler="processes")
    except lazydicom.errors.InvalidArgumentError as exc:
        return str(exc)
    return "no error"
