"""The index: one row per frame, persisted, refreshed by re-reading only what changed.

Frame counts and attribute values are checked against plain pydicom reads
(tests.reference), and file-open counts prove what is (not) re-read.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

import lazydicom
from lazydicom.array import frame_table
from lazydicom.index import Index
from tests.conftest import opened_files
from tests.reference import frame_value, read_frames
from tests.synthetic import write_enhanced_mr, write_junk, write_series


def _open(folder, **kw):
    return lazydicom.open(folder, progress=False, **kw)


def _frames_per_series(folder: Path, broken=()) -> Counter:
    """Independent count: pydicom frames per SeriesInstanceUID (pixel-less objects left out)."""
    files = [
        p
        for p in folder.rglob("*")
        if p.is_file() and ".lazydicom" not in p.parts and p not in set(broken)
    ]
    counts: Counter = Counter()
    for path in files:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            continue
        if "Rows" in ds and "PixelData" in pydicom.dcmread(path, specific_tags=["PixelData"]):
            counts[ds.SeriesInstanceUID] += int(ds.get("NumberOfFrames") or 1)
    return counts


def test_real_corpus_with_junk_lists_every_series(corpus):
    junk = write_junk(corpus / "junk")
    with pytest.warns(lazydicom.SkippedFilesWarning) as caught:
        db = _open(corpus)
    message = str(caught[0].message)
    skipped = set(db.skipped()["path"])
    for name in ("text", "empty", "random", "truncated", "bad_length"):
        rel = junk[name].relative_to(corpus).as_posix()
        assert rel in skipped, f"{name} file {rel} was not reported as skipped"
    assert "junk/notes.txt" in message
    reasons = dict(zip(db.skipped()["path"], db.skipped()["reason"]))
    assert "empty" in reasons["junk/empty.dcm"]
    assert "end of the file" in reasons["junk/truncated.dcm"]

    expected = _frames_per_series(corpus, broken=[junk["truncated"], junk["bad_length"]])
    got = db.table().groupby("SeriesInstanceUID").size().to_dict()
    assert got == dict(expected)
    # enhanced MOLLI expands to 10 frames; its presentation state and raw data are objects
    (molli,) = db.series(SeriesDescription="Cor_T1MOLLI_BH")
    assert len(molli.table()) == 10
    assert {"mr-enhanced-molli/PS_0002", "mr-enhanced-molli/XX_0004"} <= set(db.objects()["path"])
    assert "junk/presentation_state.dcm" in set(db.objects()["path"])


def test_record_tables_are_their_rows_and_leave_the_index_alone(corpus, tmp_path):
    """Series/Study tables hold exactly the rows of their UID in index order (a plain
    boolean mask of the database table is the reference), also when a series' rows are
    not side by side; writing into one changes neither the index nor a later table."""
    write_series(tmp_path / "a", {"InstanceNumber": [1, 2, 3]}, (4, 4), series_number=1)
    write_series(tmp_path / "b", {"InstanceNumber": [1, 2]}, (4, 4), series_number=2)
    # a series whose files sort on either side of another's: rows not side by side
    split = write_series(tmp_path / "c", {"InstanceNumber": [1, 2, 3]}, (4, 4),
                         series_number=3)
    os.replace(split[0], tmp_path / "a" / "0_first.dcm")
    for folder in (corpus, tmp_path):
        db = _open(folder)
        full = db.table()
        before = full.copy()
        records = [*db.series(), *db.studies()]
        assert len(records) > 3
        for record in records:
            key = "SeriesInstanceUID" if isinstance(record, lazydicom.Series) else (
                "StudyInstanceUID")
            expected = full[full[key] == record.uid]
            got = record.table()
            pd.testing.assert_frame_equal(got, expected)
            # extract's view of the same rows of the index's converted columns
            planned = frame_table(record._columns(), db.path)
            assert [p[len(db.path) + 1:] for p in planned.paths] == list(
                dict.fromkeys(expected["path"]))
            np.testing.assert_array_equal(planned.index, expected["FrameNumber"] - 1)
            got.iloc[0, got.columns.get_loc("InstanceNumber")] = -99
            got["extra"] = 1
        pd.testing.assert_frame_equal(db.table(), before)
        for record in records:
            assert -99 not in record.table()["InstanceNumber"].tolist()


def test_attribute_values_match_pydicom(corpus):
    db = _open(corpus)
    keywords = [
        "InstanceNumber",
        "SliceLocation",
        "ImagePositionPatient",
        "PixelSpacing",
        "FlipAngle",
        "RepetitionTime",
        "EchoTime",
        "SeriesDescription",
        "Rows",
        "RescaleSlope",
        "EffectiveEchoTime",
        "InStackPositionNumber",
        "TemporalPositionIndex",
        "ImageOrientationPatient",
    ]
    table = db.table().set_index(["path", "FrameNumber"])
    checked = 0
    files = [p for p in corpus.rglob("*") if p.is_file() and ".lazydicom" not in p.parts]
    for path, ds, frame in read_frames(files):
        rel = Path(path).relative_to(corpus).as_posix()
        row = table.loc[(rel, 1 if frame is None else frame + 1)]
        for kw in keywords:
            want = frame_value(ds, kw, frame)
            got = row[kw]
            if want is None or want == "":  # the index keeps empty values as None
                assert got is None or (isinstance(got, float) and np.isnan(got)), (rel, kw)
            elif isinstance(want, tuple):
                np.testing.assert_allclose(got, want, err_msg=f"{rel} {kw}")
            elif isinstance(want, float | int):
                assert float(got) == pytest.approx(float(want)), (rel, kw)
            else:
                assert got == want, (rel, kw)
            checked += 1
    assert checked > 500


def test_private_tag_on_demand_from_functional_groups(corpus):
    db = _open(corpus)
    (molli,) = db.series(SeriesDescription="Cor_T1MOLLI_BH")
    with opened_files(corpus) as opened:
        values = molli.values("(2005,1429)")  # Philips private, nested in functional groups
    assert set(opened) == {
        str(corpus / "mr-enhanced-molli" / "IM_0001")
    }  # headers of its file only
    ds = pydicom.dcmread(corpus / "mr-enhanced-molli" / "IM_0001")
    assert values == [frame_value(ds, 0x20051429, k) or None for k in range(10)]
    # kept in the index: asking again, or after reopening, reads nothing
    with opened_files(corpus) as opened:
        again = _open(corpus).series(SeriesDescription="Cor_T1MOLLI_BH")[0].values("(2005,1429)")
    assert opened == [] and again == values


def test_reopen_reads_no_dicom_file(corpus):
    write_junk(corpus / "junk")
    with pytest.warns(lazydicom.SkippedFilesWarning):
        first = _open(corpus)
    with opened_files(corpus) as opened:
        again = _open(corpus)
    assert opened == []
    pd.testing.assert_frame_equal(again.table(), first.table())


def test_refresh_reads_only_added_changed_removed(tmp_path):
    files = write_series(tmp_path / "a", {"InstanceNumber": [1, 2, 3, 4]}, (6, 4))
    db = _open(tmp_path)
    new = write_series(tmp_path / "b", {"InstanceNumber": [1, 2]}, (6, 4), series_description="new")
    files[0].unlink()
    ds = pydicom.dcmread(files[1])
    ds.SeriesDescription = "rewritten"
    ds.save_as(files[1])
    os.utime(files[1], ns=(time.time_ns(), time.time_ns() + 10**9))
    with opened_files(tmp_path) as opened:
        counts = db.refresh()
    assert counts == {"added": 2, "changed": 1, "removed": 0 + 1, "skipped": 0}
    assert sorted(opened) == sorted(str(p) for p in [*new, files[1]])
    assert len(db.series(SeriesDescription="new")[0].table()) == 2
    paths = set(db.table()["path"])
    assert files[0].relative_to(tmp_path).as_posix() not in paths
    assert (
        db.table()
        .set_index("path")
        .loc[files[1].relative_to(tmp_path).as_posix(), "SeriesDescription"]
        == "rewritten"
    )


def test_killed_write_leaves_previous_index(tmp_path, monkeypatch):
    write_series(tmp_path, {"InstanceNumber": [1, 2]}, (6, 4))
    db = _open(tmp_path)
    before = db.table().copy()
    write_series(tmp_path / "more", {"InstanceNumber": [1]}, (6, 4))
    import lazydicom.disk

    def crash(source, target):  # the new index file is written, not yet renamed
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(lazydicom.disk.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        db.refresh()
    monkeypatch.undo()
    assert not [p for p in (tmp_path / ".lazydicom").iterdir() if p.name.endswith(".tmp")]
    reloaded = Index(tmp_path)
    pd.testing.assert_frame_equal(reloaded.table, before)


def test_index_elsewhere_and_missing_path(tmp_path):
    write_series(tmp_path / "data", {"InstanceNumber": [1]}, (6, 4))
    db = _open(tmp_path / "data", index_path=tmp_path / "idx")
    assert (tmp_path / "idx" / "index.json").exists()
    assert not (tmp_path / "data" / ".lazydicom").exists()
    assert len(db.table()) == 1
    with pytest.raises(FileNotFoundError, match="nope"):
        lazydicom.open(tmp_path / "nope")


def test_read_only_folder_indexes_elsewhere(tmp_path, monkeypatch):
    write_series(tmp_path / "data", {"InstanceNumber": [1]}, (6, 4))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    from lazydicom import index as index_module

    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if self.name == ".lazydicom":
            raise PermissionError("read-only file system")
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    db = _open(tmp_path / "data")
    assert len(db.table()) == 1
    assert str(db.index.location).startswith(str(tmp_path / "cache"))
    assert index_module  # the fallback lives in lazydicom.index.default_location


def test_empty_folder_is_an_empty_database(tmp_path):
    db = _open(tmp_path)
    assert db.series() == [] and db.patients() == [] and len(db.table()) == 0


def test_records_and_filters(tmp_path):
    write_series(
        tmp_path,
        {"SliceLocation": [0, 5], "FlipAngle": [5, 10]},
        (6, 4),
        series_description="vfa",
        patient_id="P1",
    )
    write_series(
        tmp_path,
        {"SliceLocation": [0]},
        (6, 4),
        series_description="other",
        patient_id="P2",
        series_number=2,
    )
    db = _open(tmp_path)
    assert {p.uid for p in db.patients()} == {"P1", "P2"}
    (vfa,) = db.series(SeriesDescription="vfa")
    assert vfa.unique("FlipAngle") == [5, 10]
    assert sorted(vfa.values("SliceLocation")) == [0, 0, 5, 5]
    assert len(vfa.files()) == 4 and all(os.path.isabs(f) for f in vfa.files())
    assert db.series(FlipAngle=10) == [vfa]
    assert db.series(FlipAngle=[10.0, 99]) == [vfa]
    assert db.series({"(0018,1314)": 5}) == [vfa]
    assert len(db.patients()[0].studies()) == 1
    assert "vfa" in repr(vfa) and "frames=4" in repr(vfa)


def test_enhanced_rows_carry_per_frame_attributes(tmp_path):
    coords = {"InStackPositionNumber": [1, 2, 3], "EffectiveEchoTime": [2.5, 5.0]}
    write_enhanced_mr(tmp_path / "e.dcm", coords, (6, 4), rescale=lambda i: (2.0, float(i[0])))
    db = _open(tmp_path)
    table = db.table()
    assert list(table["FrameNumber"]) == [1, 2, 3, 4, 5, 6]
    ds = pydicom.dcmread(tmp_path / "e.dcm")
    for k in range(6):
        row = table.iloc[k]
        for kw in (
            "InStackPositionNumber",
            "EffectiveEchoTime",
            "RescaleIntercept",
            "ImagePositionPatient",
        ):
            want = frame_value(ds, kw, k)
            assert np.allclose(row[kw], want), (k, kw)
        normal = np.cross(*np.reshape(frame_value(ds, "ImageOrientationPatient", k), (2, 3)))
        assert row["SlicePosition"] == pytest.approx(
            float(np.dot(normal, frame_value(ds, "ImagePositionPatient", k)))
        )


def test_non_utf8_file_name_is_reported_not_fatal(tmp_path):
    files = write_series(tmp_path, {"InstanceNumber": [1, 2]}, (6, 4), subfolders=False)
    bad = os.path.join(os.fsencode(tmp_path), b"scan\xff.dcm")  # not UTF-8
    with open(bad, "wb") as f:
        f.write(files[0].read_bytes())
    with pytest.warns(lazydicom.SkippedFilesWarning, match="not valid UTF-8"):
        db = _open(tmp_path)
    assert len(db.table()) == 2  # the two valid files; the index was saved and reloads
    with pytest.warns(lazydicom.SkippedFilesWarning):
        assert len(_open(tmp_path).table()) == 2


@pytest.mark.distributed
def test_header_scan_on_a_local_cluster_gives_the_local_index(corpus, tmp_path):
    """lazydicom.open(folder, scheduler=client): workers read the headers, same index.

    The client is not dask's default one (``set_as_default=False``): the
    scan must use the client it is given, not whichever is current.
    """
    distributed = pytest.importorskip("distributed")
    import shutil

    other = tmp_path / "again"
    shutil.copytree(corpus, other)
    local = lazydicom.open(corpus, progress=False, workers=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        remote = lazydicom.open(other, progress=False, scheduler=client)
        assert len(client.scheduler_info()["workers"]) == 2

    def canonical(db):
        t = db.index.table.drop(columns=["mtime"]).sort_values(["path", "FrameNumber"])
        t = t[sorted(t.columns)].reset_index(drop=True).astype(object)
        return t.where(t.notna().values, None)

    a, b = canonical(local), canonical(remote)
    assert list(a.columns) == list(b.columns) and len(a) > 50
    assert a.equals(b)
    assert sorted(local.skipped()["path"]) == sorted(remote.skipped()["path"])


#: The index layout each FORMAT_VERSION was released with: a digest of every
#: column's name and Arrow type (KEYWORDS and STORAGE, in order) and of the
#: table of skipped files. A change of columns or types must bump
#: FORMAT_VERSION (so that older indexes are rebuilt, not misread) and add its
#: digest here.
_SCHEMA_DIGESTS = {
    3: "0cdefa19efa80da2",
}


def _schema_digest() -> str:
    import hashlib

    from lazydicom import schema

    parts = [f"{c}:{schema.column_type(c)}" for c in schema.KEYWORDS]
    parts += [f"{c}:{t}" for c, t in schema.STORAGE.items()]
    parts += [f"skipped {c}:{t}" for c, t in schema.SKIPPED.items()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def test_index_columns_changed_only_with_a_format_version_bump():
    """The columns and types of the index are those of the current FORMAT_VERSION."""
    from lazydicom.index import FORMAT_VERSION

    assert FORMAT_VERSION in _SCHEMA_DIGESTS, (
        f"FORMAT_VERSION {FORMAT_VERSION} has no recorded digest: add "
        f"{FORMAT_VERSION}: {_schema_digest()!r} to _SCHEMA_DIGESTS"
    )
    assert _schema_digest() == _SCHEMA_DIGESTS[FORMAT_VERSION], (
        "the index columns or their types changed: bump lazydicom.index.FORMAT_VERSION "
        f"and record {_schema_digest()!r} for it in _SCHEMA_DIGESTS"
    )


def test_scan_lists_files_in_path_order(tmp_path):
    # the walk emits each folder's entries in path order (a folder sorts as
    # "name/"), which must equal sorting every path, for names around "/"
    for rel in ["a.b", "a-b/x", "a/y", "a/z/1", "ab", "a b", "A", "é", "zz/a/b/c", "zz/a.c",
                "zz/a-/d", "a/.lazydicom/q"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)
    (tmp_path / "empty").mkdir()
    found = lazydicom.scan.scan_folder(tmp_path)
    assert found.paths == sorted(found.paths)
    assert found.paths == ["A", "a b", "a-b/x", "a.b", "a/y", "a/z/1", "ab", "zz/a-/d",
                           "zz/a.c", "zz/a/b/c", "é"]
    assert [f.path for f in found.files] == found.paths
    assert found.sizes == [len(p.encode()) for p in found.paths]


def _tricky_tree(root: Path) -> None:
    """Names around "/" in sort order, files at every level, deep and empty folders,
    links, a .lazydicom folder, a name that is not UTF-8."""
    for rel in ["a.b", "a-b/x", "a/y", "a/z/1", "ab", "a b", "A", "é", "zz/a/b/c", "zz/a.c",
                "zz/a-/d", "a/.lazydicom/q", "d1/d2/d3/d4/f", "d1/d2/g", "d1/h",
                *(f"many/{i:02d}/{j}" for i in range(12) for j in range(3))]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)
    (root / "empty").mkdir()
    (root / "many" / "05" / "empty").mkdir()
    os.symlink(root / "a", root / "many" / "link-to-folder")
    os.symlink(root / "ab", root / "d1" / "link-to-file")
    os.symlink(root / "gone", root / "d1" / "d2" / "broken")
    (root / os.fsdecode(b"many/07/bad-\xff")).write_text("x")


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_a_scan_in_worker_processes_equals_the_walk_in_one(tmp_path, workers):
    from lazydicom.scan import scan_folder
    from lazydicom.workers import process_pool

    _tricky_tree(tmp_path)
    serial = scan_folder(tmp_path)
    assert serial.paths == sorted(serial.paths)  # the independent reference: sorted()
    assert "d1/link-to-file" in serial.paths and "many/07/bad-\\xff" not in serial.paths
    assert {p for p, _ in serial.problems} >= {"many/link-to-folder", "d1/d2/broken",
                                               "many/07/bad-\\xff"}
    with process_pool(workers) as pool:
        parallel = scan_folder(tmp_path, pool, workers)
    assert parallel == serial


def test_refresh_of_a_large_index_scans_in_workers_and_sees_each_change(tmp_path, monkeypatch):
    """Above _PARALLEL_SCAN_MIN rows the walk runs in a process pool: same refresh counts."""
    files = [write_series(tmp_path / f"s{k}", {"InstanceNumber": [1, 2, 3]}, (6, 4),
                          series_number=k + 1) for k in range(3)]
    lazydicom.open(tmp_path, progress=False)
    monkeypatch.setattr(lazydicom.index, "_PARALLEL_SCAN_MIN", 1)
    pools = []
    real = lazydicom.index.start_scan
    monkeypatch.setattr(lazydicom.index, "start_scan",
                        lambda root, pool=None, n=2: pools.append(pool) or real(root, pool, n))
    assert Index(tmp_path).refresh(progress=False, workers=2) == {
        "added": 0, "changed": 0, "removed": 0, "skipped": 0}
    st = files[0][0].stat()
    os.utime(files[0][0], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    files[1][0].unlink()
    write_series(tmp_path / "s3", {"InstanceNumber": [1, 2]}, (6, 4), series_number=9)
    counts = Index(tmp_path).refresh(progress=False, workers=2)
    assert counts == {"added": 2, "changed": 1, "removed": 1, "skipped": 0}
    assert len(pools) == 2 and all(p is not None for p in pools)


@pytest.mark.parametrize("few_skipped", [0, 64], ids=["skipped-sorted-in", "skipped-inserted"])
def test_reopen_of_an_unchanged_folder_reads_nothing_and_sees_each_change(tmp_path, monkeypatch,
                                                                         few_skipped):
    monkeypatch.setattr(lazydicom.index, "_FEW_SKIPPED", few_skipped)
    write_series(tmp_path / "s", {"InstanceNumber": [1, 2, 3]}, (6, 4))
    write_enhanced_mr(tmp_path / "mf.dcm", {"FlipAngle": [5, 10, 15, 20]}, (6, 4))
    junk = write_junk(tmp_path / "junk")
    with pytest.warns(lazydicom.SkippedFilesWarning):
        n = len(lazydicom.open(tmp_path, progress=False).index.table)

    def per_file(self):
        raise AssertionError("an unchanged folder is compared without a dict per file")

    with monkeypatch.context() as m:
        m.setattr(Index, "_known", per_file)
        counts = Index(tmp_path).refresh(progress=False)  # from the loaded Arrow table
        assert counts == {"added": 0, "changed": 0, "removed": 0, "skipped": 0}
        index = Index(tmp_path)
        assert len(index.table) == n
        assert index.refresh(progress=False)["changed"] == 0  # from the pandas table
    for path in (tmp_path / "mf.dcm", junk["text"]):  # a multi-frame file, a skipped one
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    with pytest.warns(lazydicom.SkippedFilesWarning):
        counts = Index(tmp_path).refresh(progress=False)
    assert counts["changed"] == 2 and counts["added"] == 0 and counts["removed"] == 0


@pytest.mark.parametrize("files", [1, 2])
def test_reopening_a_folder_of_one_or_two_frames_warns_of_nothing(tmp_path, files):
    """The index check compares neighbouring rows: one row has none (was a 'damaged' index)."""
    import warnings

    write_series(tmp_path, {"InstanceNumber": list(range(1, files + 1))}, (6, 4))
    lazydicom.open(tmp_path, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        db = lazydicom.open(tmp_path, progress=False)
    assert len(db.table()) == files
