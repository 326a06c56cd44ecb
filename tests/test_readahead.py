"""Headers read ahead by the command line (lazydicom.readahead).

What the index takes from the read-ahead must be exactly what it would have
read itself: every index built here is compared with one built the usual way
(no read-ahead) from a copy of the same folder, and file-open counts show
which headers the index read itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pandas as pd
import pydicom
import pytest

import lazydicom
from lazydicom import readahead
from lazydicom.cli import main
from tests.conftest import opened_files
from tests.synthetic import write_junk, write_series


def _open(folder: Path) -> lazydicom.Database:
    with pytest.warns(lazydicom.SkippedFilesWarning) if _has_junk(folder) else _nothing():
        return lazydicom.open(folder, progress=False)


def _has_junk(folder: Path) -> bool:
    return (folder / "junk").exists()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _reference(folder: Path, tmp_path: Path) -> lazydicom.Database:
    """The index of a copy of ``folder`` built the usual way (nothing was read ahead
    for the copy: a read-ahead is taken by its folder's path)."""
    copy = tmp_path / f"reference-{folder.name}"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(".lazydicom"))
    return _open(copy)


def _assert_same_index(db: lazydicom.Database, ref: lazydicom.Database) -> None:
    # same files (copied with their mtimes), so equal tables down to size and mtime
    pd.testing.assert_frame_equal(db.table(), ref.table())
    pd.testing.assert_frame_equal(db.skipped().sort_values("path", ignore_index=True),
                                  ref.skipped().sort_values("path", ignore_index=True))


def _finished(timeout: float = 60.0) -> None:
    """Wait until the running read-ahead has read every header it will read."""
    running = readahead._RUNNING
    assert running is not None
    deadline = time.monotonic() + timeout
    while running._left.value != 0:
        assert time.monotonic() < deadline, "the read-ahead did not finish"
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def _no_read_ahead_left():
    yield
    readahead.stop()


def _dicom_files(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*") if p.is_file() and ".lazydicom" not in p.parts}


def test_an_index_takes_every_header_read_ahead_and_reads_none_itself(corpus, tmp_path):
    # real data (JPEG Lossless CT, enhanced MR, palette US, ...) plus files that are not DICOM
    write_junk(corpus / "junk")
    ref = _reference(corpus, tmp_path)
    readahead.start([str(corpus)])
    _finished()
    with opened_files(corpus) as opened:
        db = _open(corpus)
    assert opened == []  # every header came from the read-ahead
    _assert_same_index(db, ref)
    assert len(db.skipped()) > 0  # the junk files' reasons came across too


def test_files_changed_after_they_were_read_ahead_are_read_again(tmp_path):
    folder = tmp_path / "series"
    files = write_series(folder, {"InstanceNumber": list(range(1, 9))})
    readahead.start([str(folder)])
    _finished()
    changed = files[3]
    ds = pydicom.dcmread(changed)
    ds.SeriesDescription = "rewritten after the read-ahead"
    ds.save_as(changed)
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with opened_files(folder) as opened:
        db = _open(folder)
    assert opened == [str(changed)]  # only the changed file was read again
    table = db.table().set_index("path")["SeriesDescription"]
    rel = changed.relative_to(folder).as_posix()
    assert table[rel] == "rewritten after the read-ahead"
    assert set(table.drop(rel)) == {"synthetic"}
    _assert_same_index(db, _reference(folder, tmp_path))


def test_a_read_ahead_stopped_half_way_leaves_the_rest_to_the_index(tmp_path, monkeypatch):
    folder = tmp_path / "series"
    write_series(folder, {"InstanceNumber": list(range(1, 41))})
    ref = _reference(folder, tmp_path)
    # batches of 4 files; never finishes for the index (stops after its batch)
    monkeypatch.setattr(readahead, "_BATCH", 4)
    monkeypatch.setattr(readahead, "_FINISH", -1)
    monkeypatch.setattr(readahead, "_MOST", 12)  # and reads no more than 12 files
    readahead.start([str(folder)])
    _finished()
    with opened_files(folder) as opened:
        db = _open(folder)
    assert len(opened) == 40 - 12  # the index read the 28 files the read-ahead did not
    assert len(set(opened)) == len(opened)
    _assert_same_index(db, ref)


def test_a_killed_read_ahead_costs_nothing_but_its_work(tmp_path):
    folder = tmp_path / "series"
    write_series(folder, {"InstanceNumber": list(range(1, 11))})
    ref = _reference(folder, tmp_path)
    readahead.start([str(folder)])
    running = readahead._RUNNING
    assert running is not None
    os.kill(running._process.pid, signal.SIGKILL)
    running._process.join()
    with opened_files(folder) as opened:
        db = _open(folder)
    assert set(opened) == _dicom_files(folder)  # read by the index itself
    _assert_same_index(db, ref)


def test_the_index_command_reads_a_new_folder_ahead(corpus, tmp_path, capsys):
    ref = _reference(corpus, tmp_path)
    taken: list[int] = []
    real = readahead.take

    def take(root, files):
        # here main() had no libraries to import: give the worker the time they take
        _finished()
        rows, skipped, rest = real(root, files)
        taken.append(len(files) - len(rest))
        return rows, skipped, rest

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(readahead, "take", take)
        assert main(["index", str(corpus), "-q"]) == 0
    assert taken and taken[0] > 0  # the index took headers the worker had read
    assert readahead._RUNNING is not None and readahead._RUNNING._files is not None
    _assert_same_index(_open(corpus), ref)


def test_no_read_ahead_for_refused_arguments_or_a_folder_with_an_index(tmp_path, monkeypatch):
    folder = tmp_path / "series"
    write_series(folder, {"InstanceNumber": [1, 2, 3]})
    started: list[list[str]] = []
    monkeypatch.setattr(readahead, "start", started.append)
    # an unknown dim is refused before anything is read
    assert main(["extract", str(folder), str(tmp_path / "out.zarr"), "--dims", "NoSuchTag"]) == 2
    assert started == []
    assert readahead.wanted(str(folder))
    _open(folder)  # now it has an index: refreshed from it, not read ahead
    assert not readahead.wanted(str(folder))
    assert not readahead.wanted("s3://bucket/prefix")
    assert not readahead.wanted(str(tmp_path / "missing"))


def test_a_read_ahead_still_listing_is_not_waited_for(tmp_path, monkeypatch):
    folder = tmp_path / "series"
    write_series(folder, {"InstanceNumber": list(range(1, 6))})
    ref = _reference(folder, tmp_path)
    real = readahead.scan_folder

    def slow_listing(root):  # runs in the (forked) worker: a folder on a slow file system
        time.sleep(60)
        return real(root)

    monkeypatch.setattr(readahead, "scan_folder", slow_listing)
    readahead.start([str(folder)])
    began = time.monotonic()
    with opened_files(folder) as opened:
        db = _open(folder)
    assert time.monotonic() - began < 20  # the index did not wait for the listing
    assert set(opened) == _dicom_files(folder)  # and read every header itself
    assert not readahead._RUNNING._process.is_alive()
    _assert_same_index(db, ref)
