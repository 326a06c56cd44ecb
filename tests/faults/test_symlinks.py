"""Class 5: symbolic links never lead a write or a delete out of the database.

Every kind plants a link (or a file) where lazydicom writes, pointing to an
``outside`` folder holding a precious file. Afterwards the outside folder
must be exactly as it was, and lazydicom must have refused with
OutsideDatabaseError (error) or done the right thing inside the database
(correct).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

import lazydicom
from tests.faults.catalog import cases
from tests.synthetic import write_series


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "precious.txt").write_text("do not touch")
    (folder / "writing-0123").mkdir()  # looks like a writer's leftover
    (folder / "writing-0123" / "keep.dcm").write_bytes(b"keep")
    return folder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "db"
    write_series(folder / "series", {"InstanceNumber": [1, 2]}, (6, 4), subfolders=False)
    return folder


REFUSED = cases(
    5,
    "error",
    {
        "link/index-folder": "`.lazydicom` is a link to another folder",
        "link/index-folder-is-a-file": "`.lazydicom` is a file",
        "link/cache-folder": "`.lazydicom/cache.zarr` is a link to another folder",
        "link/lock-file": "`.lazydicom/index.lock` is a link to a file outside",
        "link/zeros-patient-folder": "zeros() into a patient folder that is a link out of the "
        "database",
        "link/zeros-study-folder": "zeros() into a study folder (two levels down) that is a link",
        "link/zeros-file-in-the-way": "zeros() where a file stands in place of the patient folder",
    },
)


@pytest.mark.parametrize("kind", REFUSED)
def test_writes_through_links_are_refused(kind, root, outside):
    before = _snapshot(outside)
    name = kind.split("/")[1]
    if name == "index-folder":
        (root / ".lazydicom").symlink_to(outside, target_is_directory=True)
        action = lambda: lazydicom.open(root, progress=False)  # noqa: E731
    elif name == "index-folder-is-a-file":
        (root / ".lazydicom").write_text("a file")
        action = lambda: lazydicom.open(root, progress=False)  # noqa: E731
    elif name == "cache-folder":
        lazydicom.open(root, progress=False)
        (root / ".lazydicom" / "cache.zarr").symlink_to(outside, target_is_directory=True)
        action = lambda: lazydicom.open(root, progress=False, cache=True)  # noqa: E731
    elif name == "lock-file":
        (root / ".lazydicom").mkdir()
        (root / ".lazydicom" / "index.lock").symlink_to(outside / "precious.txt")
        action = lambda: lazydicom.open(root, progress=False)  # noqa: E731
    else:
        db = lazydicom.open(root, progress=False)
        if name == "zeros-patient-folder":
            (root / "LAZYDICOM").symlink_to(outside, target_is_directory=True)
            action = lambda: db.zeros((4, 3, 2))  # noqa: E731
        elif name == "zeros-study-folder":
            first = db.zeros((4, 3, 1))  # a study folder under root/LAZYDICOM
            uid = first.study().uid
            (study,) = (root / "LAZYDICOM").iterdir()
            os.rename(study, root / "moved")
            study.symlink_to(outside, target_is_directory=True)
            action = lambda: db.zeros((4, 3, 2), StudyInstanceUID=uid)  # noqa: E731
        else:
            (root / "LAZYDICOM").write_text("in the way")
            action = lambda: db.zeros((4, 3, 2))  # noqa: E731
    with pytest.raises(lazydicom.OutsideDatabaseError) as err:
        action()
    assert isinstance(err.value, PermissionError)
    assert _snapshot(outside) == before


HANDLED = cases(
    5,
    "correct",
    {
        "link/old-writing-folder": "an old `writing-*` folder in `.lazydicom` that is a link "
        "to an outside folder (not deleted through)",
        "link/pointer-file": "`.lazydicom/index.json` is a link to an outside file (the link "
        "is replaced, the file untouched)",
        "link/cell-file": "set_ndarray over a cell whose file is a link to an outside file "
        "(the link is replaced by the new file)",
        "link/journal-target-outside": "a killed writer's journal that names a target outside "
        "the database",
    },
)


@pytest.mark.parametrize("kind", HANDLED)
def test_links_are_never_followed_to_delete_or_replace(kind, root, outside, tmp_path):
    before = _snapshot(outside)
    name = kind.split("/")[1]
    if name == "old-writing-folder":
        (root / ".lazydicom").mkdir()
        link = root / ".lazydicom" / "writing-0123"
        link.symlink_to(outside / "writing-0123", target_is_directory=True)
        old = os.stat(outside).st_mtime - 10 * 86400
        os.utime(link, (old, old), follow_symlinks=False)
        db = lazydicom.open(root, progress=False)
        db.series()[0].set_ndarray(np.ones((4, 6, 1)), coords={"InstanceNumber": [3]})
    elif name == "pointer-file":
        lazydicom.open(root, progress=False)
        pointer = root / ".lazydicom" / "index.json"
        pointer.unlink()
        pointer.symlink_to(outside / "precious.txt")
        write_series(root / "more", {"InstanceNumber": [1]}, (6, 4))
        with pytest.warns(lazydicom.DamagedIndexWarning):
            db = lazydicom.open(root, progress=False)
        assert not pointer.is_symlink() and len(db.series()) == 2
    elif name == "cell-file":
        (series,) = write_series(outside / "cells", {"InstanceNumber": [7]}, (6, 4),
                                 subfolders=False, series_description="linked")
        before = _snapshot(outside)
        ds = pydicom.dcmread(series)  # a second file of the same series, in the database
        ds.InstanceNumber, ds.SOPInstanceUID = 8, pydicom.uid.generate_uid()
        (root / "l").mkdir()
        ds.save_as(root / "l" / "b.dcm")
        (root / "l" / "cell.dcm").symlink_to(series)
        db = lazydicom.open(root, progress=False)
        (linked,) = db.series(SeriesDescription="linked")
        linked.set_ndarray(np.full((4, 6, 2), 5), coords={"InstanceNumber": [7, 8]})
        assert not (root / "l" / "cell.dcm").is_symlink()
        np.testing.assert_array_equal(linked.numpy(), 5)
    else:
        lazydicom.open(root, progress=False)
        dead = root / ".lazydicom" / "writing-deadbeef"
        dead.mkdir()
        (dead / "owner.lock").write_bytes(b"")
        (dead / "0-0.dcm").write_bytes(b"not for outside")
        journal = {"files": [["0-0.dcm", "../outside/precious.txt"]]}
        (dead / "commit.json").write_text(json.dumps(journal))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", lazydicom.SkippedFilesWarning)
            lazydicom.open(root, progress=False)
        assert not dead.exists()  # recovered: what was inside the database, nothing else
    assert _snapshot(outside) == before
