"""Class 9: concurrent writers never share a SeriesNumber, a folder or an InstanceNumber.

Two writers open the same database first, wait for each other (a barrier of
files, so both hold the same stale view), then write at once. Before the
write lock each computed the next number from its own view, so both got the
same one whatever the timing: the outcome does not depend on timing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import lazydicom
from tests.faults.catalog import cases

ROOT = Path(__file__).resolve().parents[2]

_WRITER = textwrap.dedent("""
    import os, sys, time, warnings
    warnings.simplefilter("ignore")
    import numpy as np, lazydicom
    root, me, action, uid = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    db = lazydicom.open(root, progress=False)  # both views are taken before either writes
    series = db.series()[0]
    open(os.path.join(root, f"ready-{me}"), "w").close()
    while len([n for n in os.listdir(root) if n.startswith("ready-")]) < 2:
        time.sleep(0.01)
    if action == "zeros":
        db.zeros((4, 3, 2), StudyInstanceUID=uid, SeriesDescription=f"writer {me}")
    else:
        value = 10 + int(me)
        series.set_ndarray(np.full((4, 3, 1), value), coords={"FlipAngle": [value]})
""")

PROCESSES = cases(
    9,
    "correct",
    {
        "concurrent/zeros-two-processes": "two processes run zeros() into one study at once "
        "(they got the same SeriesNumber and folder)",
        "concurrent/set-ndarray-two-processes": "two processes add new cells to one series at "
        "once with set_ndarray (they got the same InstanceNumber)",
    },
)


def _study(tmp_path: Path) -> tuple[Path, lazydicom.Series]:
    root = tmp_path / "db"
    series = lazydicom.zeros((4, 3, 2), {"FlipAngle": [1, 2]}, path=root)
    return root, series


def _check(root: Path, action: str) -> None:
    db = lazydicom.open(root, progress=False)
    if action == "zeros":
        numbers = sorted(int(s.unique("SeriesNumber")[0]) for s in db.series())
        assert numbers == [1, 2, 3], numbers
        folders = {os.path.dirname(s.files()[0]) for s in db.series()}
        assert len(folders) == 3
    else:
        (series,) = db.series()
        numbers = series.values("InstanceNumber")
        assert sorted(numbers) == [1, 2, 3, 4], numbers
        assert series.unique("FlipAngle") == [1, 2, 11, 12]
        got = series.numpy("FlipAngle")
        np.testing.assert_array_equal(got[:, :, 2:], [[[11, 12]] * 3] * 4)


@pytest.mark.parametrize("kind", PROCESSES)
def test_two_processes(kind, tmp_path):
    action = "zeros" if "zeros" in kind else "set_ndarray"
    root, series = _study(tmp_path)
    uid = str(series.study().uid)
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(root), str(i), action, uid],
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         stderr=subprocess.PIPE, text=True)
        for i in (1, 2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    for ready in root.glob("ready-*"):
        ready.unlink()
    _check(root, action)


THREADS = cases(
    9,
    "correct",
    {
        "concurrent/zeros-two-threads": "two threads, each with its own Database, run zeros() "
        "into one study at once",
        "concurrent/set-ndarray-two-threads": "two threads, each with its own Database, add "
        "cells to one series at once",
    },
)


@pytest.mark.parametrize("kind", THREADS)
def test_two_threads(kind, tmp_path):
    action = "zeros" if "zeros" in kind else "set_ndarray"
    root, series = _study(tmp_path)
    uid = series.study().uid
    views = [lazydicom.open(root, progress=False) for _ in range(2)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            db = views[i]
            barrier.wait(timeout=60)
            if action == "zeros":
                db.zeros((4, 3, 2), StudyInstanceUID=uid, SeriesDescription=f"thread {i}")
            else:
                value = 11 + i
                db.series()[0].set_ndarray(np.full((4, 3, 1), value),
                                           coords={"FlipAngle": [value]})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    _check(root, action)
