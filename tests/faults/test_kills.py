"""Class 4: what a process killed with SIGKILL leaves on disk.

A driver process (tests/faults/driver.py) does one operation and kills
itself at a chosen step: before or after the n-th call of a function on the
path of a save or a commit. Deterministic kill points cover every step of
the commit protocols (index save, writer journal); random-time kills of
``lazydicom index`` are in the slow suite. After each kill:

- the DICOM files are either all as before or all as written (never some of
  each, never a truncated file), and nothing was written outside the folder;
- the next ``lazydicom.open`` says nothing (no damaged index), gives the
  table a fresh index gives, and leaves no temporary file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

import lazydicom
from tests.faults import corpus
from tests.faults.catalog import cases
from tests.synthetic import write_series

ROOT = Path(__file__).resolve().parents[2]


def _drive(spec: dict, expect_kill: bool = True) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.faults.driver", json.dumps(spec)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if expect_kill:
        assert proc.returncode == -signal.SIGKILL, (
            f"the kill point {spec.get('kill')} was not reached (exit {proc.returncode}):\n"
            f"{proc.stdout}\n{proc.stderr}"
        )
    else:
        assert proc.returncode == 0, proc.stderr


def _dicom_files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".lazydicom" not in p.parts
    }


def _reopen_clean(root: Path, tmp_path: Path) -> lazydicom.Database:
    """Open after the kill: no warning, the table of a fresh index, no leftovers."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", lazydicom.DamagedIndexWarning)
        warnings.simplefilter("ignore", lazydicom.SkippedFilesWarning)
        db = lazydicom.open(root, progress=False)
        fresh = lazydicom.open(root, index_path=tmp_path / "fresh", progress=False)
    pd.testing.assert_frame_equal(db.table().reset_index(drop=True),
                                  fresh.table().reset_index(drop=True))
    assert corpus.leftovers(root / ".lazydicom") == []
    return db


SAVE_POINTS = {
    "kill/index-save-before-data": ["lazydicom.disk.atomic_write", 1, "before"],
    "kill/index-save-mid-data": ["os.write", 1, "after"],
    "kill/index-save-after-data": ["lazydicom.disk.atomic_write", 1, "after"],
    "kill/index-save-after-skipped": ["lazydicom.disk.atomic_write", 2, "after"],
    "kill/index-save-after-pointer": ["lazydicom.disk.atomic_write", 3, "after"],
}
SAVE = cases(
    4,
    "correct",
    {
        "kill/index-save-before-data": "SIGKILL in an index save, before its first data file",
        "kill/index-save-mid-data": "SIGKILL with the frame table written to its temporary file",
        "kill/index-save-after-data": "SIGKILL after the frame table of the new generation",
        "kill/index-save-after-skipped": "SIGKILL after both data files, before the pointer",
        "kill/index-save-after-pointer": "SIGKILL after the pointer, before the old "
        "generation is removed",
    },
)


@pytest.mark.parametrize("kind", SAVE)
def test_killed_index_save(kind, tmp_path):
    root = tmp_path / "db"
    write_series(root / "a", {"InstanceNumber": [1, 2]}, (6, 4))
    (root / "notes.txt").write_text("junk")
    with pytest.warns(lazydicom.SkippedFilesWarning):
        lazydicom.open(root, progress=False)
    write_series(root / "b", {"InstanceNumber": [1, 2]}, (6, 4), series_description="b")
    files = _dicom_files(root)
    _drive({"root": str(root), "action": "index", "kill": SAVE_POINTS[kind]})
    assert _dicom_files(root) == files
    db = _reopen_clean(root, tmp_path)
    assert len(db.series()) == 2


WRITE_POINTS = {
    "kill/write-mid-temporary-files": (["lazydicom.writers.write_block", 2, "before"], "old"),
    "kill/write-before-journal": (["lazydicom.disk.atomic_write", 1, "before"], "old"),
    "kill/write-after-journal": (["lazydicom.disk.atomic_write", 1, "after"], "new"),
    "kill/write-mid-renames": (["lazydicom.disk.replace_inside", 3, "after"], "new"),
    "kill/write-after-renames": (["lazydicom.disk.remove_tree", 1, "before"], "new"),
    "kill/write-before-index-update": (["lazydicom.index.Index.update_files", 1, "before"],
                                       "new"),
}
WRITE = cases(
    4,
    "correct",
    {
        "kill/write-mid-temporary-files": "SIGKILL in set_ndarray while its blocks write "
        "temporary files (nothing must change)",
        "kill/write-before-journal": "SIGKILL in set_ndarray before its journal (nothing must "
        "change)",
        "kill/write-after-journal": "SIGKILL in set_ndarray right after its journal (the next "
        "open finishes the write)",
        "kill/write-mid-renames": "SIGKILL in set_ndarray after 3 of 6 renames (was: a half "
        "written series)",
        "kill/write-after-renames": "SIGKILL in set_ndarray after the renames, before its "
        "temporary folder is removed",
        "kill/write-before-index-update": "SIGKILL in set_ndarray before the index is updated",
    },
)


@pytest.mark.parametrize("kind", WRITE)
def test_killed_writer_is_all_or_nothing(kind, tmp_path):
    root = tmp_path / "db"
    lazydicom.zeros((4, 3, 4), {"FlipAngle": [1, 2, 3, 4]}, path=root)
    before = _dicom_files(root)
    point, expected = WRITE_POINTS[kind]
    _drive({"root": str(root), "action": "set_ndarray", "kill": point})
    for path in root.rglob("*.dcm"):  # every file parses, whole
        if ".lazydicom" not in path.parts:
            assert pydicom.dcmread(path).pixel_array.shape == (3, 4)
    db = _reopen_clean(root, tmp_path)
    (series,) = db.series()
    if expected == "old":
        assert _dicom_files(root) == before
        np.testing.assert_array_equal(series.numpy("FlipAngle"), 0)
        assert series.unique("FlipAngle") == [1, 2, 3, 4]
    else:
        assert series.unique("FlipAngle") == [1, 2, 3, 4, 5, 6]
        np.testing.assert_array_equal(series.numpy("FlipAngle"), 7)
        assert sorted(series.values("InstanceNumber")) == [1, 2, 3, 4, 5, 6]


ZEROS = cases(
    4,
    "correct",
    {
        "kill/zeros-before-journal": "SIGKILL in zeros before its journal (no series, no folder)",
        "kill/zeros-after-journal": "SIGKILL in zeros right after its journal (the next open "
        "finishes it)",
    },
)


@pytest.mark.parametrize("kind", ZEROS)
def test_killed_zeros_is_all_or_nothing(kind, tmp_path):
    root = tmp_path / "db"
    lazydicom.zeros((4, 3, 2), path=root, SeriesDescription="first")
    folders = sorted(p for p in root.rglob("*") if p.is_dir() and ".lazydicom" not in p.parts)
    when = "before" if kind.endswith("before-journal") else "after"
    _drive({"root": str(root), "action": "zeros",
            "kill": ["lazydicom.disk.atomic_write", 1, when]})
    db = _reopen_clean(root, tmp_path)
    killed = db.series(SeriesDescription="killed")
    if when == "before":
        assert killed == []
        assert sorted(p for p in root.rglob("*") if p.is_dir()
                      and ".lazydicom" not in p.parts) == folders
    else:
        (series,) = killed
        assert series.numpy().shape == (4, 3, 5)


CACHE = cases(4, "correct", {
    "kill/cache-fill": "SIGKILL of a process with a partial frame-cache entry on disk (removed "
    "by the next open)",
})


@pytest.mark.parametrize("kind", CACHE)
def test_partial_cache_entries_of_a_killed_process_are_removed(kind, tmp_path):
    root = tmp_path / "db"
    write_series(root, {"InstanceNumber": [1]}, (6, 4))
    lazydicom.open(root, progress=False)
    _drive({"root": str(root), "action": "cache"})
    partial = list((root / ".lazydicom" / "cache.zarr").rglob("*.partial"))
    assert partial  # left by the killed process
    lazydicom.open(root, progress=False)
    assert not list((root / ".lazydicom" / "cache.zarr").rglob("*.partial"))


RANDOM = cases(4, "correct", {
    "kill/index-at-random-times": "SIGKILL of `lazydicom index` (2 worker processes) at 6 "
    "random moments of indexing 300 files (in the slow suite, `-m slow`)",
})


@pytest.mark.slow
@pytest.mark.parametrize("kind", RANDOM)
def test_index_killed_at_random_times(kind, tmp_path):
    root = tmp_path / "db"
    write_series(root, {"SliceLocation": list(range(30)), "FlipAngle": list(range(10))}, (8, 6))
    files = _dicom_files(root)
    rng = random.Random(9)
    for _ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-m", "lazydicom", "index", str(root), "-q"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.5, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert _dicom_files(root) == files
        if rng.random() < 0.5:  # sometimes a new file between runs, for a save
            write_series(root / f"more{rng.random()}", {"InstanceNumber": [1]}, (8, 6))
            files = _dicom_files(root)
    db = _reopen_clean(root, tmp_path)
    assert len(db.table()) == len(files)
