"""Writers: zeros and set_ndarray, exact by value, valid DICOM, streamed and atomic.

Round trips compare ``set_ndarray`` then ``ndarray`` with the array written and
with the independent eager reference reader (tests/reference.py, pydicom only),
on non-square frames, three dims of different lengths and coordinate values
given in an order that is neither sorted nor symmetric, so a cell written by
position instead of value (dbdicom's meshgrid bug) fails.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pydicom
import pytest

import lazydicom
from lazydicom.errors import DuplicateCellError
from lazydicom.writers.stored import store_frame

from .reference import reference_ndarray

ROOT = Path(__file__).resolve().parents[1]

# three dims of different lengths, values neither sorted nor evenly spaced
COORDS = {
    "SliceLocation": [7.5, -2.0, 0.0, 31.25],
    "FlipAngle": [30, 2, 15],
    "RepetitionTime": [5.0, 2.5],
}
SHAPE = (7, 5, 4, 3, 2)  # x (columns) != y (rows)


def _sorted_view(array: np.ndarray, coords: dict) -> np.ndarray:
    """``array`` (axes in the order of ``coords``' values) with every axis sorted by value."""
    for axis, values in enumerate(coords.values(), start=2):
        array = np.take(array, np.argsort(np.asarray(values, dtype=float)), axis=axis)
    return array


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".lazydicom" not in p.parts
    }


@pytest.fixture
def db(tmp_path: Path) -> lazydicom.Database:
    (tmp_path / "db").mkdir()
    return lazydicom.open(tmp_path / "db")


@pytest.fixture
def series(db: lazydicom.Database) -> lazydicom.Series:
    return db.zeros(SHAPE, COORDS, SeriesDescription="writers test")


# ----------------------------------------------------------------- zeros


def test_zeros_seed_shape_and_dtype(db):
    coords = {
        "SliceLocation": 10 * np.arange(8),
        "FlipAngle": [2, 15, 30],
        "RepetitionTime": [2.5, 5.0],
    }
    zeros = db.zeros((16, 12, 8, 3, 2), coords)
    arr = zeros.ndarray(dims=tuple(coords))
    assert arr.shape == (16, 12, 8, 3, 2)
    assert arr.dtype == np.uint16
    assert not arr.compute().any()
    assert len(zeros.files()) == 48
    assert zeros.unique("RepetitionTime") == [2.5, 5]


def test_zeros_is_one_instance_per_cell_in_c_order(series):
    t = series.table().sort_values("InstanceNumber")
    assert t["InstanceNumber"].tolist() == list(range(1, 25))
    first = t.iloc[:3]
    # the last dim runs fastest: InstanceNumber order is array.reshape(x, y, -1) order
    assert first["RepetitionTime"].tolist() == [5.0, 2.5, 5.0]
    assert first["FlipAngle"].tolist() == [30, 30, 2]
    assert len(set(t["SOPInstanceUID"])) == 24
    assert t["SeriesInstanceUID"].nunique() == 1
    assert t["SeriesDescription"].unique().tolist() == ["writers test"]


def test_zeros_layout_is_readable(series):
    rel = Path(series.files()[0]).relative_to(series.database.path)
    patient, study, folder, name = rel.parts
    assert patient == "LAZYDICOM"
    assert folder == "Series_001_writers_test"
    assert name == "IM_000001.dcm"


@pytest.mark.parametrize(
    ("shape", "dims"),
    [
        ((4, 3), ()),
        ((4, 3, 5), ("SliceLocation",)),
        ((4, 3, 5, 2), ("SliceLocation", "TemporalPositionIdentifier")),
    ],
    ids=["2d", "3d", "4d"],
)
def test_zeros_default_coords(db, shape, dims):
    s = db.zeros(shape)
    assert s.ndarray(dims).shape == shape
    if dims:
        assert s.unique(dims[0]) == list(range(shape[2]))


def test_zeros_without_coords_beyond_4d_is_a_clear_error(db):
    with pytest.raises(ValueError, match="Cannot infer coordinates.*coords="):
        db.zeros((4, 3, 2, 2, 2))
    assert not _snapshot(Path(db.path))


@pytest.mark.parametrize(
    ("coords", "match"),
    [
        ({"SliceLocation": [0, 1]}, "gives 1 dim"),
        ({"SliceLocation": [0, 1, 2], "FlipAngle": [1, 2, 3]}, r"'SliceLocation'.*3 value.*size 2"),
        ({"SliceLocation": [0, 0], "FlipAngle": [1, 2, 3]}, "twice"),
        ({"Rows": [0, 1], "FlipAngle": [1, 2, 3]}, "cannot be a coordinate"),
        ({"FlipAngle": [1, 2], "EchoTime": [1, np.nan, 3]}, "finite"),
    ],
    ids=["too-few-dims", "wrong-size", "repeated", "pixel-attribute", "nan-coordinate"],
)
def test_zeros_refuses_bad_coords(db, coords, match):
    with pytest.raises(ValueError, match=match):
        db.zeros((4, 3, 2, 3), coords)
    assert not _snapshot(Path(db.path))


def test_zeros_unknown_keyword(db):
    with pytest.raises(KeyError, match="FlipAngel"):
        db.zeros((4, 3, 2), {"FlipAngel": [1, 2]})
    with pytest.raises(KeyError, match="SeriesDescriptoin"):
        db.zeros((4, 3), SeriesDescriptoin="x")


def test_module_level_zeros_uses_a_temporary_folder():
    s = lazydicom.zeros((4, 3, 2), SeriesDescription="ax 5 flip")
    assert os.path.basename(s.database.path).startswith("lazydicom-")
    assert lazydicom.open(s.database.path).series(SeriesDescription="ax 5 flip")


def test_module_level_zeros_with_path(tmp_path):
    s = lazydicom.zeros((4, 3, 2), path=tmp_path / "new")
    assert Path(s.database.path) == tmp_path / "new"
    assert len(s.files()) == 2


def test_zeros_joins_an_existing_study(db):
    first = db.zeros((4, 3, 2), PatientID="P1", PatientName="Doe^Jane", StudyDescription="T1")
    study_uid = first.table()["StudyInstanceUID"].iloc[0]
    second = db.zeros((4, 3, 2), StudyInstanceUID=study_uid, SeriesDescription="T1 map")
    t = second.table()
    assert t["PatientID"].iloc[0] == "P1"
    assert t["PatientName"].iloc[0] == "Doe^Jane"
    assert t["StudyDescription"].iloc[0] == "T1"
    assert t["SeriesNumber"].iloc[0] == 2
    assert len(db.studies()) == 1 and len(db.series()) == 2


def test_zeros_tags_and_private_tags_as_coords(db):
    s = db.zeros((4, 3, 2, 3), {"(0019,100C)": [1000.0, 0.0], 0x00180080: [3.0, 1.0, 2.0]})
    assert s.unique("(0019,100C)") == [0, 1000]
    assert s.unique("RepetitionTime") == [1, 2, 3]
    ds = pydicom.dcmread(s.files()[0])
    assert ds[0x00190010].value == "LAZYDICOM"  # its private creator


def test_zeros_text_coordinates(db):
    s = db.zeros((4, 3, 2), {"SequenceName": ["fl3d", "séq"]}, SeriesDescription="Müller")
    assert s.unique("SequenceName") == ["fl3d", "séq"]
    ds = pydicom.dcmread(s.files()[1])
    assert ds.SpecificCharacterSet == "ISO_IR 192" and ds.SeriesDescription == "Müller"


# ----------------------------------------------------------------- round trips


def test_round_trip_by_coords_is_exact_for_integers(series):
    rng = np.random.default_rng(1)
    array = rng.integers(0, 60000, SHAPE).astype(np.uint16)
    series.set_ndarray(array, coords=COORDS)
    back = series.ndarray(coords=COORDS)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back.compute(), array)
    # sorted axes, checked against the independent eager reader
    expected = _sorted_view(array, COORDS)
    np.testing.assert_array_equal(series.ndarray(tuple(COORDS)).compute(), expected)
    np.testing.assert_array_equal(reference_ndarray(series.files(), tuple(COORDS)), expected)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "int32", "int64", "bool"])
def test_round_trip_integer_dtypes(series, dtype):
    rng = np.random.default_rng(2)
    info = np.iinfo(np.int16 if dtype in ("int32", "int64") else dtype) if dtype != "bool" else None
    if info is None:
        array = rng.integers(0, 2, SHAPE).astype(bool)
    else:
        array = rng.integers(info.min, info.max, SHAPE, endpoint=True).astype(dtype)
    series.set_ndarray(array, coords=COORDS)
    back = series.ndarray(coords=COORDS).compute()
    np.testing.assert_array_equal(back, array.astype(back.dtype))
    assert back.dtype.kind in "iu"


def test_wide_integers_exact_with_an_intercept(series):
    rng = np.random.default_rng(3)
    array = 1_000_000 + rng.integers(-30000, 30000, SHAPE)
    series.set_ndarray(array, coords=COORDS)
    back = series.ndarray(coords=COORDS).compute()
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("scale", [1e-6, 1.0, 1e5])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_floats_within_1e3_of_range(series, dtype, scale):
    rng = np.random.default_rng(4)
    array = (scale * rng.normal(3, 2, SHAPE)).astype(dtype)
    series.set_ndarray(array, coords=COORDS)
    back = series.ndarray(coords=COORDS).compute()
    assert back.dtype == np.float32
    span = float(array.max() - array.min())
    err = np.abs(back.astype(np.float64) - array).max()
    assert err <= 1e-3 * span
    # and per frame: half a 16-bit step of the frame's own range
    frames = array.reshape(*SHAPE[:2], -1)
    worst = (frames.max(axis=(0, 1)) - frames.min(axis=(0, 1))).max()
    assert err <= worst / 131070 * 1.01 + np.abs(array).max() * 2e-7


def test_integral_floats_are_stored_exactly(series):
    array = np.arange(np.prod(SHAPE), dtype=float).reshape(SHAPE) % 3000
    series.set_ndarray(array, coords=COORDS)
    np.testing.assert_array_equal(series.ndarray(coords=COORDS).compute(), array)


def test_constant_and_negative_frames(series):
    array = np.full(SHAPE, -7.25)
    array[..., 0] = 3.5
    series.set_ndarray(array, coords=COORDS)
    np.testing.assert_allclose(series.ndarray(coords=COORDS).compute(), array, atol=1e-6)


def test_round_trip_by_slice(series):
    array = np.random.default_rng(5).integers(0, 1000, (7, 5, 2, 1, 2)).astype(np.uint16)
    # indices into the SORTED axes: SliceLocation [-2, 0, 7.5, 31.25], FlipAngle [2, 15, 30]
    series.set_ndarray(
        array, slice={"SliceLocation": [3, 0], "FlipAngle": [1], "RepetitionTime": [1, 0]}
    )
    got = series.ndarray(
        coords={"SliceLocation": [31.25, -2.0], "FlipAngle": [15], "RepetitionTime": [5.0, 2.5]}
    ).compute()
    np.testing.assert_array_equal(got, array)
    others = series.ndarray(
        coords={"SliceLocation": [0.0, 7.5], "FlipAngle": [2, 30], "RepetitionTime": [2.5, 5.0]}
    ).compute()
    assert not others.any()


def test_subset_of_cells_leaves_the_others_alone(series):
    before = {p: Path(p).read_bytes() for p in series.files()}
    part = np.ones((7, 5, 1, 3, 2), dtype=np.uint16)
    series.set_ndarray(
        part,
        coords={"SliceLocation": [0.0], "FlipAngle": [30, 2, 15], "RepetitionTime": [5.0, 2.5]},
    )
    arr = series.ndarray(coords=COORDS).compute()
    assert (arr[:, :, 2] == 1).all() and not np.delete(arr, 2, axis=2).any()
    changed = [p for p, b in before.items() if Path(p).read_bytes() != b]
    assert len(changed) == 6


def test_new_cells_are_created_from_the_template(series):
    array = np.full((7, 5, 1, 2, 1), 9, dtype=np.uint16)
    # FlipAngle 45 and SliceLocation 100 are new values: new files, other attributes kept
    series.set_ndarray(
        array, coords={"SliceLocation": [100.0], "FlipAngle": [45, 2], "RepetitionTime": [2.5]}
    )
    t = series.table()
    assert len(t) == 26
    assert t["InstanceNumber"].is_unique and t["SOPInstanceUID"].is_unique
    assert series.unique("FlipAngle") == [2, 15, 30, 45]
    new = t[t["SliceLocation"] == 100]
    assert new["SeriesDescription"].tolist() == ["writers test"] * 2
    assert [p[2] for p in new["ImagePositionPatient"]] == [100.0, 100.0]
    got = series.ndarray(
        coords={"SliceLocation": [100.0], "FlipAngle": [45, 2], "RepetitionTime": [2.5]}
    ).compute()
    np.testing.assert_array_equal(got, array)
    full = series.ndarray(tuple(COORDS))
    assert full.shape == (7, 5, 5, 4, 2)  # the grid grew, missing cells are fill


def test_ds_rounded_coordinates_still_match_by_value(db):
    s = db.zeros((3, 2, 2), {"EchoTime": [0.1 + 0.2, 1 / 3]})
    s.set_ndarray(np.ones((3, 2, 2), np.uint16), coords={"EchoTime": [0.1 + 0.2, 1 / 3]})
    assert len(s.table()) == 2  # overwritten, not added


def test_numpy_dask_and_lists_agree(db):
    array = np.random.default_rng(6).integers(0, 500, (4, 3, 6)).astype(np.int16)
    for kind in ("numpy", "dask", "list"):
        s = db.zeros((4, 3, 6), SeriesDescription=kind)
        data = {
            "numpy": array,
            "dask": da.from_array(array, chunks=(2, 3, 4)),
            "list": array.tolist(),
        }[kind]
        s.set_ndarray(data, coords={"SliceLocation": np.arange(6)})
        np.testing.assert_array_equal(s.ndarray(("SliceLocation",)).compute(), array)


def test_no_dims(db):
    s = db.zeros((4, 3))
    s.set_ndarray(np.full((4, 3), 5), coords={})
    np.testing.assert_array_equal(s.ndarray(()).compute(), np.full((4, 3), 5))


# ----------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, "exactly one"),
        ({"coords": COORDS, "slice": {"SliceLocation": [0]}}, ValueError, "exactly one"),
        ({"coords": {"SliceLocation": COORDS["SliceLocation"]}}, ValueError, "gives 1 dim"),
        (
            {"coords": {**COORDS, "FlipAngle": [30, 2]}},
            ValueError,
            r"'FlipAngle'.* 2 value.*size 3",
        ),
        (
            {
                "slice": {
                    "SliceLocation": [0, 1, 2, 4],
                    "FlipAngle": [0, 1, 2],
                    "RepetitionTime": [0, 1],
                }
            },
            IndexError,
            r"index 4 is out of range.*4 value",
        ),
        (
            {
                "slice": {
                    "SliceLocation": [0, 1, 2, 3],
                    "FlipAngle": [0, 1, -4],
                    "RepetitionTime": [0, 1],
                }
            },
            IndexError,
            "out of range",
        ),
    ],
    ids=["neither", "both", "dims", "size", "slice-index", "negative-index"],
)
def test_refused_calls_write_nothing(series, kwargs, error, match):
    before = _snapshot(Path(series.database.path))
    with pytest.raises(error, match=match):
        series.set_ndarray(np.ones(SHAPE), **kwargs)
    assert _snapshot(Path(series.database.path)) == before


def test_frame_size_must_match(series):
    with pytest.raises(ValueError, match=r"7 along axis 0.*Columns=7|has 5 along axis 0"):
        series.set_ndarray(np.ones((5, 7, 4, 3, 2)), coords=COORDS)


def test_nan_is_refused_numpy(series):
    before = _snapshot(Path(series.database.path))
    array = np.ones(SHAPE)
    array[1, 2, 3, 1, 0] = np.nan
    array[0, 0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="2 NaN or infinite"):
        series.set_ndarray(array, coords=COORDS)
    assert _snapshot(Path(series.database.path)) == before


def test_nan_is_refused_dask_and_nothing_is_written(series):
    """The NaN is found by one task while others have written: all of it is rolled back."""
    root = Path(series.database.path)
    before = _snapshot(root)
    array = np.ones(SHAPE)
    array[:, :, 3, 2, 1] = np.nan  # in the last block
    with pytest.raises(ValueError, match="NaN or infinite"):
        series.set_ndarray(da.from_array(array, chunks=(7, 5, 1, 1, 1)), coords=COORDS)
    assert _snapshot(root) == before
    assert not list((root / ".lazydicom").glob("writing-*"))
    np.testing.assert_array_equal(series.ndarray(coords=COORDS).compute(), 0)


def test_complex_is_refused(series):
    with pytest.raises(TypeError, match="complex"):
        series.set_ndarray(np.ones(SHAPE, complex), coords=COORDS)


def test_duplicate_cells_in_the_series_are_refused(series):
    with pytest.raises(DuplicateCellError):
        series.set_ndarray(np.ones((7, 5, 4)), coords={"SliceLocation": COORDS["SliceLocation"]})


def test_nan_and_inf_in_store_frame():
    with pytest.raises(ValueError, match="1 NaN"):
        store_frame(np.array([[1.0, np.nan]]))


# ----------------------------------------------------------------- files


def test_files_are_what_pydicom_writes_byte_for_byte(series):
    series.set_ndarray(np.random.default_rng(7).normal(size=SHAPE), coords=COORDS)
    for path in series.files()[:3]:
        raw = Path(path).read_bytes()
        ds = pydicom.dcmread(path)
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        assert out.getvalue() == raw
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert ds.SOPClassUID == pydicom.uid.MRImageStorage
        assert ds.BitsAllocated == 16 and ds.BitsStored == 16 and ds.HighBit == 15


def test_geometry_is_consistent(db):
    s = db.zeros(
        (6, 4, 3),
        {"SliceLocation": [5.0, -2.5, 10.0]},
        PixelSpacing=[0.5, 0.8],
        ImageOrientationPatient=[0, 1, 0, 0, 0, -1],
    )
    for path in s.files():
        ds = pydicom.dcmread(path)
        normal = np.cross(
            np.asarray(ds.ImageOrientationPatient[:3], float),
            np.asarray(ds.ImageOrientationPatient[3:], float),
        )
        assert float(np.dot(normal, np.asarray(ds.ImagePositionPatient, float))) == pytest.approx(
            float(ds.SliceLocation)
        )
    assert s.unique("SlicePosition") == [-2.5, 5, 10]
    assert float(pydicom.dcmread(s.files()[0]).SliceThickness) == 5


def test_simpleitk_reads_a_written_volume(db):
    sitk = pytest.importorskip("SimpleITK")
    s = db.zeros((6, 4, 5), {"SliceLocation": 2.5 * np.arange(5)}, PixelSpacing=[0.8, 0.5])
    volume = np.random.default_rng(8).integers(0, 4000, (6, 4, 5)).astype(np.uint16)
    s.set_ndarray(volume, coords={"SliceLocation": 2.5 * np.arange(5)})
    folder = os.path.dirname(s.files()[0])
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
    image = reader.Execute()
    assert image.GetSize() == (6, 4, 5)
    assert image.GetSpacing() == pytest.approx((0.5, 0.8, 2.5))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image).T, volume)


def _dciodvfy_errors(path: str) -> list[str]:
    out = subprocess.run(["dciodvfy", path], capture_output=True, text=True, check=False)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools' dciodvfy not installed")
def test_dciodvfy_finds_no_errors(series):
    series.set_ndarray(
        np.random.default_rng(9).normal(size=(7, 5, 1, 3, 2)),
        coords={**COORDS, "SliceLocation": [0.0]},
    )
    series.set_ndarray(
        np.ones((7, 5, 1, 1, 1), np.int16) * -3,
        coords={"SliceLocation": [50.0], "FlipAngle": [90], "RepetitionTime": [9]},
    )
    t = series.table()
    rescaled = t[t["RescaleSlope"].fillna(1) != 1]["path"]
    picks = [t["path"].iloc[0], rescaled.iloc[0], t[t["FlipAngle"] == 90]["path"].iloc[0]]
    for rel in picks:
        assert _dciodvfy_errors(os.path.join(series.database.path, rel)) == [], rel


# ----------------------------------------------------------------- real data


def test_overwrite_and_extend_a_real_series(corpus):
    db = lazydicom.open(corpus)
    (s,) = db.series(
        SeriesDescription="ax 5 flip",
        StudyInstanceUID=db.series(SeriesDescription="ax 5 flip")[0]
        .table()["StudyInstanceUID"]
        .iloc[0],
    )
    dims = ("SliceLocation",)
    locations = s.unique("SliceLocation")
    shape = s.ndarray(dims).shape
    before_errors = {p: _dciodvfy_errors(p) for p in s.files()} if shutil.which("dciodvfy") else {}
    array = np.random.default_rng(10).normal(100, 30, shape)
    s.set_ndarray(array, coords={"SliceLocation": locations})
    np.testing.assert_allclose(
        s.ndarray(dims).compute(), array, atol=1e-3 * (array.max() - array.min())
    )
    new = np.ones(shape[:2] + (1,), np.uint16)
    s.set_ndarray(new, coords={"SliceLocation": [max(locations) + 5.0]})
    assert len(s.files()) == len(locations) + 1
    ds = pydicom.dcmread(sorted(s.files(), key=os.path.getmtime)[-1])
    assert ds.PatientID == s.table()["PatientID"].iloc[0]
    for p, errors in before_errors.items():  # writing adds no error to what the source had
        assert set(_dciodvfy_errors(p)) <= set(errors), p


# ----------------------------------------------------------------- streaming


def test_index_is_updated_without_a_rescan(series, monkeypatch):
    import lazydicom.index

    scan = lazydicom.index.scan_folder

    def no_scan(folder):  # the series' own folder is looked at (files of other writers)
        if Path(folder) == Path(series.database.path):
            raise AssertionError("the folder was rescanned")
        return scan(folder)

    monkeypatch.setattr(lazydicom.index, "scan_folder", no_scan)
    series.set_ndarray(
        np.ones((7, 5, 1, 1, 1)),
        coords={"SliceLocation": [99.0], "FlipAngle": [2], "RepetitionTime": [2.5]},
    )
    assert len(series.table()) == 25
    monkeypatch.undo()
    fresh = lazydicom.open(series.database.path).series()[0]
    assert len(fresh.table()) == 25


@pytest.mark.parametrize("scheduler", ["sync", "threads", "processes"])
def test_dask_schedulers(series, scheduler):
    array = np.random.default_rng(11).integers(0, 100, SHAPE).astype(np.uint16)
    with dask.config.set(scheduler=scheduler):
        series.set_ndarray(da.from_array(array, chunks=(7, 5, 2, 1, 2)), coords=COORDS)
    np.testing.assert_array_equal(series.ndarray(coords=COORDS).compute(), array)


@pytest.mark.distributed
def test_dask_distributed(series):
    distributed = pytest.importorskip("distributed")
    array = np.random.default_rng(12).integers(0, 100, SHAPE).astype(np.uint16)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster),
    ):
        series.set_ndarray(da.from_array(array, chunks=(7, 5, 1, 3, 2)), coords=COORDS)
        series.set_ndarray(series.ndarray(coords=COORDS) + 1, coords=COORDS)
    np.testing.assert_array_equal(series.ndarray(coords=COORDS).compute(), array + 1)


def test_read_modify_write_in_place(series):
    """Tasks read the files they replace: the commit waits until every task is done."""
    array = np.random.default_rng(14).integers(0, 1000, SHAPE).astype(np.uint16)
    series.set_ndarray(array, coords=COORDS)
    series.set_ndarray(series.ndarray(coords=COORDS) * 2 + 1, coords=COORDS)
    np.testing.assert_array_equal(series.ndarray(coords=COORDS).compute(), array * 2 + 1)


def test_zeros_attributes(db):
    s = db.zeros(
        (4, 3, 2), PixelSpacing=[0.7, 0.9], SeriesNumber=7, ImagePositionPatient=[-10, -20, 0]
    )
    t = s.table()
    assert t["SliceLocation"].tolist() == [0, 1]  # the default coordinates
    assert t["ImagePositionPatient"].tolist() == [(-10, -20, 0), (-10, -20, 1)]
    assert t["PixelSpacing"].iloc[0] == (0.7, 0.9) and t["SeriesNumber"].iloc[0] == 7
    one = db.zeros((4, 3), SliceLocation=12.5, ImagePositionPatient=[-10, -20, 0]).table()
    assert one["SliceLocation"].tolist() == [12.5]
    assert one["ImagePositionPatient"].tolist() == [(-10, -20, 12.5)]
    with pytest.raises(ValueError, match="InstanceNumber"):
        db.zeros((4, 3), InstanceNumber=3)
    with pytest.raises(ValueError, match="Modality"):
        db.zeros((4, 3), Modality="CT")


def test_reads_a_series_and_writes_a_derived_one(series, db):
    """The workflow of a derived map: read one series lazily, write another next to it."""
    array = np.random.default_rng(13).integers(1, 1000, SHAPE).astype(np.uint16)
    series.set_ndarray(array, coords=COORDS)
    derived = db.zeros(SHAPE, COORDS, SeriesDescription="T1 map")
    derived.set_ndarray(series.ndarray(coords=COORDS, chunks=6) / 7.0, coords=COORDS)
    got = derived.ndarray(coords=COORDS).compute()
    np.testing.assert_allclose(got, array / 7.0, atol=1e-3 * 1000 / 7)


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def test_peak_memory_while_writing_a_large_dask_array(db):
    pytest.importorskip("psutil")
    shape = (256, 256, 20, 15)  # float64: 157 MB
    coords = {"SliceLocation": 2.0 * np.arange(20), "EchoTime": np.arange(1, 16)}
    s = db.zeros(shape, coords)
    array = da.random.default_rng(0).random(shape, chunks=(256, 256, 4, 5))
    assert array.nbytes >= 150e6
    base, peak, done = _rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with dask.config.set(scheduler="threads", num_workers=2):
            s.set_ndarray(array, coords=coords)
    finally:
        done.set()
        sampler.join()
    growth = peak[0] - base
    assert growth < 0.4 * array.nbytes, f"RSS grew {growth / 1e6:.0f} MB"
    sample_cells = s.ndarray(coords={"SliceLocation": [38.0], "EchoTime": [15]}).compute()
    np.testing.assert_allclose(sample_cells[..., 0, 0], array[:, :, 19, 14].compute(), atol=2e-5)


_KILLED_WRITER = textwrap.dedent("""
    import sys, numpy as np, dask, dask.array as da, lazydicom
    s = lazydicom.open(sys.argv[1]).series()[0]
    x = da.full((64, 48, 400), 7, dtype=np.uint16, chunks=(64, 48, 1))
    print("writing", flush=True)
    with dask.config.set(scheduler="sync"):
        for _ in range(1000):
            s.set_ndarray(x, coords={"SliceLocation": np.arange(400)})
""")


@pytest.mark.slow
def test_killed_writer_leaves_every_file_old_or_new(db):
    """SIGKILL during writes and commits: every file parses, with all 0 or all 7."""
    s = db.zeros((64, 48, 400))
    root = Path(db.path)
    for delay in (0.3, 1.1, 2.3):
        proc = subprocess.Popen(
            [sys.executable, "-c", _KILLED_WRITER, str(root)],
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert proc.stdout is not None and proc.stdout.readline()
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for path in s.files():
            pixels = pydicom.dcmread(path).pixel_array
            assert pixels.shape == (48, 64)
            assert len(np.unique(pixels)) == 1 and pixels[0, 0] in (0, 7), path
    fresh = lazydicom.open(root)
    assert len(fresh.series()[0].table()) == 400


# ----------------------------------------------------------------- docs


def test_docs_writing_examples():
    """The examples of docs/writing.md run (Markdown fences blanked out, as in test_docs)."""
    import doctest
    import re

    text = (ROOT / "docs" / "writing.md").read_text()
    text = re.sub(r"(?m)^[ \t]*(```|~~~).*$", "", text)
    test = doctest.DocTestParser().get_doctest(text, {}, "writing.md", "docs/writing.md", 0)
    assert len(test.examples) > 10
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=report.append)
    assert runner.summarize(verbose=False).failed == 0, "".join(report)
