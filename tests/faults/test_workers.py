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

import pytest

from tests.faults.catalog import cases

psutil = pytest.importorskip("psutil")
ROOT = Path(__file__).resolve().parents[2]

_POOL = textwrap.dedent("""
    import time
    from lazydicom.workers import process_pool
    pool = process_pool(2)
    futures = [pool.submit(time.sleep, 3600) for _ in range(2)]
    while len(pool._processes) < 2:
        time.sleep(0.05)
    print("ready", flush=True)
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
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
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
        proc.kill()
        for w in psutil.Process().children(recursive=True):
            if w.pid != proc.pid and w.ppid() == 1:
                w.kill()


def test_process_pool_runs_tasks():
    from lazydicom.workers import process_pool

    with process_pool(2) as pool:
        assert sorted(pool.map(abs, [-2, -1, 3])) == [1, 2, 3]
