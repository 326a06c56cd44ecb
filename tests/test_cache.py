"""The zarr frame cache: read-through, write-through, invalidation, integrity, concurrency.

Values read through the cache are compared bit for bit with reads without it
and with the pattern the synthetic writer encodes. "Opens no DICOM file" is
checked with the audit-hook counter of tests.conftest (every open of any
kind is seen).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pydicom
import pytest
import zarr
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

import lazydicom
from lazydicom.array import frame_table
from lazydicom.cache import CacheWarning, FrameCache
from lazydicom.pixels import read_frames
from tests.conftest import opened_files
from tests.synthetic import expected_ndarray, write_series

COORDS = {"SliceLocation": [10.0, -5.0, 2.5], "FlipAngle": [15, 2]}
DIMS = tuple(COORDS)
SHAPE = (6, 4)


def _write(folder: Path, syntax: str = RLELossless, **kw) -> list[Path]:
    return write_series(folder, COORDS, SHAPE, transfer_syntax=syntax, **kw)


@pytest.fixture
def dicom(tmp_path: Path) -> Path:
    """The DICOM folder of a test; caches other than the default live beside it."""
    return tmp_path / "dicom"


def _open(folder, cache=True) -> lazydicom.Database:
    return lazydicom.open(folder, progress=False, cache=cache)


def _cached(folder, cache=True) -> tuple[lazydicom.Series, FrameCache]:
    db = _open(folder, cache)
    (series,) = db.series()
    return series, db.cache


def test_cache_is_off_by_default(dicom):
    _write(dicom)
    assert lazydicom.open(dicom, progress=False).cache is None


def test_warm_cache_opens_no_dicom_file_and_returns_identical_values(dicom):
    _write(dicom, rescale=(2.0, -5.0))
    plain = lazydicom.open(dicom, progress=False).series()[0].ndarray(DIMS).compute()
    series, cache = _cached(dicom)
    cold = series.ndarray(DIMS).compute(scheduler="sync")
    assert cache.stats() == {"miss": 6}
    with opened_files(dicom) as opened:
        warm = series.ndarray(DIMS).compute(scheduler="sync")
        warm_np = series.numpy(DIMS)
        raw = series.ndarray(DIMS, rescale=False).compute(scheduler="sync")
    assert opened == []
    assert cache.stats() == {"miss": 6, "hit": 18}
    expected = expected_ndarray(COORDS, SHAPE, rescale=(2.0, -5.0))
    for got in (plain, cold, warm, warm_np):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(raw, expected_ndarray(COORDS, SHAPE))


def test_entries_are_per_frame_so_any_dims_or_selection_hits(dicom):
    _write(dicom)
    series, cache = _cached(dicom)
    series.ndarray(("InstanceNumber",)).compute(scheduler="sync")
    assert cache.stats() == {"miss": 6}
    with opened_files(dicom) as opened:
        sel = series.ndarray(coords={"FlipAngle": [15], "SliceLocation": [2.5, -5.0]})
        got = sel.compute(scheduler="sync")
        series.ndarray(DIMS, chunks=4).compute(scheduler="sync")
    assert opened == [] and cache.stats() == {"miss": 6, "hit": 8}
    plain = lazydicom.open(dicom, progress=False).series()[0]
    np.testing.assert_array_equal(
        got, plain.ndarray(coords={"FlipAngle": [15], "SliceLocation": [2.5, -5.0]}).compute())


def test_changed_file_is_reread_alone(dicom):
    files = write_series(dicom, COORDS, SHAPE, transfer_syntax=RLELossless)
    series, cache = _cached(dicom)
    series.ndarray(DIMS).compute(scheduler="sync")
    # rewrite one file with new pixels (and a new SOPInstanceUID), same grid position
    target = files[0]
    ds = pydicom.dcmread(target)
    new = ds.pixel_array.copy()
    new[:] = 4242
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.PixelData = new.tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(target, enforce_file_format=True)
    os.utime(target, ns=(os.stat(target).st_atime_ns, os.stat(target).st_mtime_ns + 10**9))

    series2, cache2 = _cached(dicom, cache=FrameCache(cache.location, native=True))
    with opened_files(dicom) as opened:
        got = series2.ndarray(DIMS).compute(scheduler="sync")
    assert {os.path.abspath(p) for p in opened} == {os.path.abspath(target)}
    assert cache2.stats() == {"miss": 1, "hit": 5}
    assert (got == 4242).sum() == SHAPE[0] * SHAPE[1]
    others = got != 4242
    np.testing.assert_array_equal(got[others], expected_ndarray(COORDS, SHAPE)[others])


def test_file_changed_after_indexing_is_not_served_from_the_cache(dicom):
    """A file touched after indexing: its entry is not served; the read reports the change."""
    files = write_series(dicom, COORDS, SHAPE, transfer_syntax=RLELossless)
    series, cache = _cached(dicom)
    series.ndarray(DIMS).compute(scheduler="sync")
    st = os.stat(files[0])
    os.utime(files[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # no refresh
    with pytest.raises(lazydicom.FrameReadError, match="changed since it was indexed"):
        series.ndarray(DIMS).compute(scheduler="sync")
    assert cache.stats()["bypass"] == 1
    series.database.refresh()
    got = series.ndarray(DIMS).compute(scheduler="sync")
    np.testing.assert_array_equal(got, expected_ndarray(COORDS, SHAPE))


def _identity(series: lazydicom.Series, i: int) -> tuple:
    """The cache identity of the i-th frame of a series (path, index, size, mtime)."""
    return frame_table(series.table(), series.database.path).identity(i)


def _entry_files(cache: FrameCache, ref) -> tuple[Path, Path]:
    key = cache.key(ref)
    base = Path(cache.location) / key[:2] / key
    return base / "zarr.json", base / "c" / "0" / "0"


@pytest.mark.parametrize("damage", ["flip-chunk", "truncate-chunk", "drop-chunk", "drop-meta",
                                    "garble-meta", "foreign-meta"])
def test_corrupt_or_partial_entry_is_detected_and_reread(dicom, damage):
    _write(dicom, rescale=(1.5, 3.0))
    series, cache = _cached(dicom)
    expected = series.ndarray(DIMS).compute(scheduler="sync")
    ref = _identity(series, 0)
    meta, chunk = _entry_files(cache, ref)
    if damage == "flip-chunk":
        data = bytearray(chunk.read_bytes())
        data[len(data) // 2] ^= 0xFF
        chunk.write_bytes(bytes(data))
    elif damage == "truncate-chunk":
        chunk.write_bytes(chunk.read_bytes()[:-3])
    elif damage == "drop-chunk":
        chunk.unlink()
    elif damage == "drop-meta":
        meta.unlink()
    elif damage == "garble-meta":
        meta.write_bytes(meta.read_bytes()[:40])
    else:  # an entry whose metadata describes another file version
        other = _entry_files(cache, _identity(series, 1))[0]
        meta.write_bytes(other.read_bytes())
    assert cache.get(ref) is None
    got = series.ndarray(DIMS).compute(scheduler="sync")
    np.testing.assert_array_equal(got, expected)
    assert cache.stats()["miss"] == 8  # 6 cold, the get above, the re-read
    rewritten = cache.get(ref)
    assert rewritten is not None
    np.testing.assert_array_equal(rewritten, pydicom.dcmread(ref[0]).pixel_array)


def test_cache_lives_in_zarr(dicom):
    files = _write(dicom)
    series, cache = _cached(dicom)
    series.ndarray(DIMS).compute()
    assert Path(cache.location) == Path(dicom) / ".lazydicom" / "cache.zarr"
    root = zarr.open_group(cache.location, mode="r")
    assert root.attrs["lazydicom_cache"]["format"] == 1
    ref = _identity(series, 0)
    key = cache.key(ref)
    arr = root[f"{key[:2]}/{key}"]
    assert isinstance(arr, zarr.Array)
    np.testing.assert_array_equal(arr[...], pydicom.dcmread(ref[0]).pixel_array)
    assert arr.attrs["lazydicom"]["source"][0] == ref[0]
    assert len(cache.entries()) == 6 and files


def test_native_frames_bypass_by_default_and_cache_on_request(dicom, tmp_path):
    _write(dicom, syntax=ExplicitVRLittleEndian)
    series, cache = _cached(dicom)
    series.ndarray(DIMS).compute(scheduler="sync")
    # native frames never touch a cache that does not cache them
    assert cache.stats() == {} and cache.entries() == []
    assert not cache.caches(encapsulated=False) and cache.caches(encapsulated=True)
    series, cache = _cached(dicom, FrameCache(tmp_path / "native.zarr", native=True))
    series.ndarray(DIMS).compute(scheduler="sync")
    with opened_files(dicom) as opened:
        got = series.ndarray(DIMS).compute(scheduler="sync")
    assert [p for p in opened if "native.zarr" not in p] == []
    assert cache.stats() == {"miss": 6, "hit": 6}
    np.testing.assert_array_equal(got, expected_ndarray(COORDS, SHAPE))


@pytest.mark.parametrize("compressor", ["lz4", "zstd", None])
def test_compressors_and_colour_round_trip(dicom, tmp_path, compressor):
    write_series(dicom, {"InstanceNumber": [2, 1]}, SHAPE, transfer_syntax=RLELossless,
                 dtype="uint8", samples_per_pixel=3)
    series, cache = _cached(dicom, FrameCache(tmp_path / "c.zarr", compressor=compressor))
    cold = series.ndarray().compute(scheduler="sync")
    warm = series.ndarray().compute(scheduler="sync")
    assert cache.stats() == {"miss": 2, "hit": 2}
    np.testing.assert_array_equal(cold, warm)
    assert warm.shape == (SHAPE[1], SHAPE[0], 2, 3)


def test_real_jpeg_lossless_ct(corpus):
    folder = corpus / "ct-skull-jpeg-lossless"
    plain = {s.uid: s.numpy() for s in lazydicom.open(folder, progress=False).series()}
    db = _open(folder)
    for s in db.series():
        s.numpy()
    with opened_files(folder) as opened:
        for s in db.series():
            np.testing.assert_array_equal(s.numpy(), plain[s.uid])
    assert opened == []


def test_handle_is_small_and_picklable(tmp_path):
    cache = FrameCache(str(tmp_path / "c.zarr")).create()
    cache._count("hit")
    data = pickle.dumps(cache)
    assert len(data) < 300
    clone = pickle.loads(data)
    assert clone.location == cache.location and clone.stats() == {}


def test_cache_accepts_a_path_or_a_zarr_store(dicom, tmp_path):
    _write(dicom)
    series, cache = _cached(dicom, str(tmp_path / "elsewhere"))
    series.ndarray(DIMS).compute()
    assert len(cache.entries()) == 6 and (tmp_path / "elsewhere" / "zarr.json").exists()
    store = zarr.storage.MemoryStore()
    series, cache = _cached(dicom, store)
    series.ndarray(DIMS).compute(scheduler="sync")
    series.ndarray(DIMS).compute(scheduler="sync")
    assert cache.stats() == {"miss": 6, "hit": 6}
    with pytest.raises(TypeError, match="cache must be"):
        _open(dicom, cache=3.5)
    with pytest.raises(ValueError, match="compressor"):
        FrameCache("x", compressor="gzip")


class _ReadOnlyStore(zarr.storage.MemoryStore):
    """A store that refuses writes, as a read-only or full disk does."""

    def set_sync(self, key, value):
        raise PermissionError(13, "Permission denied", key)


def test_unwritable_cache_warns_and_still_reads(dicom):
    _write(dicom)
    with pytest.warns(CacheWarning, match="Cannot create the frame cache"):
        series, cache = _cached(dicom, _ReadOnlyStore())
    with pytest.warns(CacheWarning, match="Cannot write frame"):
        got = series.ndarray(DIMS).compute(scheduler="sync")
    np.testing.assert_array_equal(got, expected_ndarray(COORDS, SHAPE))


def test_prune_and_clear(dicom):
    files = _write(dicom)
    series, cache = _cached(dicom)
    series.ndarray(DIMS).compute()
    os.utime(files[0], ns=(0, os.stat(files[0]).st_mtime_ns + 10**9))
    db = _open(dicom)
    db.series()[0].ndarray(DIMS).compute()
    assert len(cache.entries()) == 7
    assert cache.prune(frame_table(db.table(), db.path)) == 1
    assert len(cache.entries()) == 6
    cache.clear()
    assert cache.entries() == []


def _fill(args) -> int:
    cache, table, order = args
    fmt = table.formats[0]
    for i in order:
        out = np.empty((fmt.columns, fmt.rows, 1), dtype=fmt.dtype, order="F")
        read_frames(table, [i], out, cache=cache)
    return cache.stats().get("miss", 0)


def test_many_processes_fill_one_cache_at_once(dicom):
    """Racing writers of the same entries leave every entry whole and no temp file."""
    write_series(dicom, {"InstanceNumber": list(range(1, 25))}, (32, 40),
                 transfer_syntax=RLELossless)
    db = _open(dicom)
    table = frame_table(db.table(), db.path)
    order = list(range(len(table)))
    # not fork: forking a process whose zarr event-loop thread holds a lock could hang
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver")) as pool:
        misses = list(pool.map(_fill, [(db.cache, table, order), (db.cache, table, order[::-1]),
                                       (db.cache, table, order), (db.cache, table, order[::-1])]))
    assert sum(misses) >= len(table)
    for i in order:
        got = db.cache.get(table.identity(i))
        assert got is not None
        np.testing.assert_array_equal(got, pydicom.dcmread(table.identity(i)[0]).pixel_array)
    assert not [p for p in Path(db.cache.location).rglob("*") if p.name.endswith(".partial")]


@pytest.mark.distributed
def test_cache_on_a_local_cluster(dicom):
    distributed = pytest.importorskip("distributed")
    _write(dicom)
    series, cache = _cached(dicom)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        cold = client.compute(series.ndarray(DIMS)).result()
        assert len(cache.entries()) == 6  # filled by the workers
        with opened_files(dicom) as opened:
            warm = series.ndarray(DIMS).compute(scheduler="sync")
    assert opened == []
    np.testing.assert_array_equal(cold, warm)
    np.testing.assert_array_equal(warm, expected_ndarray(COORDS, SHAPE))
