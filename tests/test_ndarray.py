"""Series.ndarray: the grid by value, selections, pruning and pixel values.

Every array is checked against an independent oracle: the pattern the
synthetic writer encodes (tests.synthetic.expected_ndarray) or a plain,
eager pydicom read (tests.reference.reference_ndarray). File-open counts
(tests.conftest.opened_files) prove that building reads nothing and that
computing reads exactly the selected frames.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

import lazydicom
from tests.conftest import opened_files
from tests.reference import reference_ndarray
from tests.synthetic import encoder_available, expected_ndarray, write_enhanced_mr, write_series

# Deliberately unsorted, different lengths, asymmetric values.
COORDS = {
    "SliceLocation": [20.0, -5.0, 7.5],
    "FlipAngle": [15, 2, 30, 10],
    "RepetitionTime": [5.0, 2.5],
}
DIMS = tuple(COORDS)
SHAPE = (6, 4)  # rows, cols


def _open(folder) -> lazydicom.Database:
    return lazydicom.open(folder, progress=False)


def _only_series(folder) -> lazydicom.Series:
    (series,) = _open(folder).series()
    return series


# ----------------------------------------------------------------- pixel formats

FORMATS = [
    pytest.param(ExplicitVRLittleEndian, "uint16", None, id="explicit-le-u16"),
    pytest.param(ImplicitVRLittleEndian, "int16", None, id="implicit-le-i16"),
    pytest.param(ExplicitVRBigEndian, "uint16", None, id="big-endian-u16"),
    pytest.param(ExplicitVRBigEndian, "int16", 12, id="big-endian-i16-12bit"),
    pytest.param(ExplicitVRLittleEndian, "uint8", None, id="explicit-le-u8"),
    pytest.param(ExplicitVRLittleEndian, "int8", None, id="explicit-le-i8"),
    pytest.param(ExplicitVRLittleEndian, "int16", 12, id="explicit-le-i16-12bit"),
    pytest.param(ExplicitVRLittleEndian, "uint16", 12, id="explicit-le-u16-12bit"),
    pytest.param(ExplicitVRLittleEndian, "uint32", None, id="explicit-le-u32"),
    pytest.param(ImplicitVRLittleEndian, "int32", None, id="implicit-le-i32"),
    pytest.param(DeflatedExplicitVRLittleEndian, "int16", 12, id="deflated-i16-12bit"),
    pytest.param(RLELossless, "uint16", None, id="rle-u16"),
    pytest.param(RLELossless, "int16", None, id="rle-i16"),
    pytest.param(JPEGLSLossless, "uint16", None, id="jpegls-u16"),
    pytest.param(JPEG2000Lossless, "int16", None, id="j2k-i16"),
]


@pytest.mark.parametrize(("syntax", "dtype", "bits"), FORMATS)
def test_values_equal_the_encoded_pattern(tmp_path, syntax, dtype, bits):
    """Each frame lands in the cell of its values, with the exact stored pixels."""
    if not encoder_available(syntax):
        pytest.skip(f"no encoder for {syntax} to write the test data")
    shape = (40, 36) if syntax in (JPEG2000Lossless, JPEGLSLossless) else SHAPE
    missing = {(1, 2, 0), (0, 0, 1)}
    write_series(
        tmp_path,
        COORDS,
        shape,
        transfer_syntax=syntax,
        dtype=dtype,
        bits_stored=bits,
        missing=missing,
    )
    series = _only_series(tmp_path)
    arr = series.ndarray(DIMS, fill_value=7)
    expected = expected_ndarray(
        COORDS, shape, dtype=dtype, bits_stored=bits, missing=missing, fill_value=7
    )
    assert arr.shape == expected.shape == (shape[1], shape[0], 3, 4, 2)
    assert arr.dtype == expected.dtype
    got = arr.compute()
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(series.numpy(DIMS, fill_value=7), expected)
    np.testing.assert_array_equal(got, reference_ndarray(series.files(), DIMS, fill_value=7))


def test_rescale_gives_float32_decided_before_reading(tmp_path):
    write_series(
        tmp_path, COORDS, SHAPE, dtype="int16", rescale=lambda i: (0.5 + i[0], -100.0 * i[1])
    )
    series = _only_series(tmp_path)
    with opened_files(tmp_path) as opened:
        arr = series.ndarray(DIMS)
    assert opened == [] and arr.dtype == np.float32
    ref = reference_ndarray(series.files(), DIMS)
    np.testing.assert_allclose(arr.compute(), ref, rtol=1e-6)
    raw = series.ndarray(DIMS, rescale=False)
    assert raw.dtype == np.int16
    np.testing.assert_array_equal(
        raw.compute(), reference_ndarray(series.files(), DIMS, rescale=False)
    )


def test_identity_rescale_keeps_stored_dtype(tmp_path):
    write_series(tmp_path, COORDS, SHAPE, rescale=(1.0, 0.0))
    assert _only_series(tmp_path).ndarray(DIMS).dtype == np.uint16


def test_rgb_has_trailing_axis(tmp_path):
    write_series(tmp_path, {"InstanceNumber": [3, 1, 2]}, SHAPE, dtype="uint8", samples_per_pixel=3)
    series = _only_series(tmp_path)
    arr = series.ndarray()
    assert arr.shape == (SHAPE[1], SHAPE[0], 3, 3)
    np.testing.assert_array_equal(arr.compute(), reference_ndarray(series.files()))
    np.testing.assert_array_equal(series.numpy(), reference_ndarray(series.files()))


# ----------------------------------------------------------------- grid semantics


def test_duplicate_cell_names_both_files(tmp_path):
    files = write_series(tmp_path, COORDS, SHAPE, duplicates={(2, 1, 0)})
    series = _only_series(tmp_path)
    with pytest.raises(ValueError, match="share a cell") as err:
        series.ndarray(DIMS)
    assert isinstance(err.value, lazydicom.DuplicateCellError)
    names = [str(p.relative_to(tmp_path)) for p in files]
    assert sum(n in str(err.value) for n in names) == 2
    assert "SliceLocation=7.5" in str(err.value)
    # the attributes that tell them apart are suggested as extra dims
    assert "InstanceNumber" in str(err.value)
    # selecting cells without the duplicate works
    arr = series.ndarray(
        coords={
            "SliceLocation": [-5.0, 20.0],
            "FlipAngle": [2, 10, 15, 30],
            "RepetitionTime": [2.5, 5.0],
        }
    )
    assert arr.shape == (4, 6, 2, 4, 2)


def test_coords_select_by_value(tmp_path):
    write_series(tmp_path, COORDS, SHAPE)
    series = _only_series(tmp_path)
    full = expected_ndarray(COORDS, SHAPE)
    sel = {"SliceLocation": [-5.0, 20.0, 99.0], "FlipAngle": [15], "RepetitionTime": [2.5, 5]}
    arr = series.ndarray(coords=sel)
    assert arr.shape == (4, 6, 2, 1, 2)
    # sorted axes: SliceLocation -5, 7.5, 20; FlipAngle 2, 10, 15, 30
    np.testing.assert_array_equal(arr.compute(), full[:, :, [0, 2]][:, :, :, [2]])
    np.testing.assert_array_equal(arr.compute(), reference_ndarray(series.files(), coords=sel))


def test_coords_keep_the_order_given(tmp_path):
    """Like xarray's sel with a list: the axis follows the order of the values given."""
    write_series(tmp_path, COORDS, SHAPE)
    series = _only_series(tmp_path)
    full = expected_ndarray(COORDS, SHAPE)
    arr = series.ndarray(
        coords={"FlipAngle": [30, 2], "SliceLocation": [7.5], "RepetitionTime": [5.0, 2.5]}
    )
    # result dims follow the coords keys: (x, y, FlipAngle, SliceLocation, RepetitionTime)
    expected = full[:, :, [1]][:, :, :, [3, 0]][:, :, :, :, [1, 0]].transpose(0, 1, 3, 2, 4)
    np.testing.assert_array_equal(arr.compute(), expected)


def test_slice_selects_by_index(tmp_path):
    write_series(tmp_path, COORDS, SHAPE)
    series = _only_series(tmp_path)
    full = expected_ndarray(COORDS, SHAPE)
    sl = {"SliceLocation": np.arange(3), "FlipAngle": [1], "RepetitionTime": np.arange(2)}
    arr = series.ndarray(slice=sl)
    assert arr.shape == (4, 6, 3, 1, 2)
    np.testing.assert_array_equal(arr.compute(), full[:, :, :, [1]])
    np.testing.assert_array_equal(arr.compute(), reference_ndarray(series.files(), slice=sl))
    # out-of-range indices are left out
    sl["FlipAngle"] = [1, 17, -99]
    assert series.ndarray(slice=sl).shape == (4, 6, 3, 1, 2)


def test_nothing_selected_gives_size_zero(tmp_path):
    write_series(tmp_path, COORDS, SHAPE)
    series = _only_series(tmp_path)
    arr = series.ndarray(coords={"FlipAngle": [99]})
    assert arr.size == 0 and arr.shape == (4, 6, 0)
    assert arr.compute().size == 0
    assert series.numpy(coords={"FlipAngle": [99], "SliceLocation": [7.5]}).shape == (4, 6, 0, 1)


def test_coords_and_slice_together_refused(tmp_path):
    write_series(tmp_path, COORDS, SHAPE)
    with pytest.raises(ValueError, match="not both"):
        _only_series(tmp_path).ndarray(coords={"FlipAngle": [2]}, slice={"FlipAngle": [0]})


def test_dims_as_tags_and_derived(tmp_path):
    write_series(tmp_path, COORDS, SHAPE)
    series = _only_series(tmp_path)
    expected = expected_ndarray(COORDS, SHAPE)
    for dims in [
        (0x00201041, "(0018,1314)", "00180080"),
        ("SlicePosition", "FlipAngle", "RepetitionTime"),
    ]:
        np.testing.assert_array_equal(series.ndarray(dims).compute(), expected)
    coords = series.coords(("SliceLocation", "FlipAngle"))
    np.testing.assert_array_equal(coords["SliceLocation"], [-5.0, 7.5, 20.0])
    np.testing.assert_array_equal(coords["FlipAngle"], [2, 10, 15, 30])


def test_unknown_dim_is_a_clear_error(tmp_path):
    write_series(tmp_path, COORDS, SHAPE)
    with pytest.raises(KeyError, match="FlipAngel"):
        _only_series(tmp_path).ndarray(("FlipAngel",))


def test_frames_of_different_sizes_refused(tmp_path):
    write_series(
        tmp_path / "a", {"InstanceNumber": [1, 2]}, (6, 4), extra={"SeriesInstanceUID": "1.2.3.4"}
    )
    write_series(
        tmp_path / "b", {"InstanceNumber": [3]}, (8, 4), extra={"SeriesInstanceUID": "1.2.3.4"}
    )
    series = _only_series(tmp_path)
    with pytest.raises(ValueError, match="differ in size") as err:
        series.ndarray()
    assert "6x4" in str(err.value) and "8x4" in str(err.value)
    assert series.ndarray(coords={"InstanceNumber": [1, 2]}).shape == (4, 6, 2)


# ----------------------------------------------------------------- laziness and pruning


def test_build_reads_nothing_and_compute_reads_only_selected(tmp_path):
    write_series(tmp_path, COORDS, SHAPE, missing={(0, 1, 1)})
    series = _only_series(tmp_path)
    table = series.table()
    with opened_files(tmp_path) as opened:
        arr = series.ndarray(DIMS)
        sub = series.ndarray(
            coords={"FlipAngle": [10], "SliceLocation": [-5.0, 20.0], "RepetitionTime": [5.0]}
        )
    assert opened == []

    # one cell by dask slicing reads exactly its file
    with opened_files(tmp_path) as opened:
        one = arr[:, :, 2, 3, 1].compute()  # SliceLocation 20, FlipAngle 30, TR 5
    row = table[(table.SliceLocation == 20) & (table.FlipAngle == 30) & (table.RepetitionTime == 5)]
    assert opened == [os.path.join(series.database.path, row.path.iloc[0])]
    np.testing.assert_array_equal(one, expected_ndarray(COORDS, SHAPE)[:, :, 2, 3, 1])

    # a selection reads exactly its frames
    with opened_files(tmp_path) as opened:
        sub.compute()
    wanted = table[
        (table.FlipAngle == 10)
        & (table.RepetitionTime == 5)
        & table.SliceLocation.isin([-5.0, 20.0])
    ]
    assert len(wanted) == 2
    assert sorted(opened) == sorted(os.path.join(series.database.path, p) for p in wanted.path)

    # a missing cell is filled without reading anything
    with opened_files(tmp_path) as opened:
        # missing (0, 1, 1) in the order written: SliceLocation 20, FlipAngle 2, TR 2.5
        empty = arr[:, :, 2, 0, 0].compute()
    assert opened == [] and (empty == 0).all()


def test_keys_are_deterministic(tmp_path):
    write_series(tmp_path, COORDS, SHAPE)
    series = _only_series(tmp_path)
    assert series.ndarray(DIMS).name == series.ndarray(DIMS).name
    assert series.ndarray(DIMS).name != series.ndarray(DIMS, fill_value=1).name
    sel = {"FlipAngle": [2], "SliceLocation": [7.5], "RepetitionTime": [5.0]}
    assert series.ndarray(DIMS).name != series.ndarray(coords=sel).name
    assert series.ndarray(coords=sel).name == series.ndarray(coords=sel).name
    assert series.ndarray(DIMS).name.startswith("lazydicom-")


@pytest.mark.parametrize("chunks", [1, 5, 64, {"FlipAngle": 2}, (-1, 1, 2)])
def test_chunks_do_not_change_values(tmp_path, chunks):
    write_series(tmp_path, COORDS, SHAPE, missing={(2, 3, 1)})
    series = _only_series(tmp_path)
    arr = series.ndarray(DIMS, chunks=chunks)
    np.testing.assert_array_equal(
        arr.compute(), expected_ndarray(COORDS, SHAPE, missing={(2, 3, 1)})
    )


def test_numpy_is_fortran_ordered_and_equal(tmp_path):
    write_series(tmp_path, COORDS, SHAPE)
    series = _only_series(tmp_path)
    out = series.numpy(DIMS, frames_per_task=5)
    assert out.flags.f_contiguous
    np.testing.assert_array_equal(out, expected_ndarray(COORDS, SHAPE))
    np.testing.assert_array_equal(series.numpy(DIMS, scheduler="sync"), out)


def test_process_scheduler(tmp_path):
    write_series(tmp_path, COORDS, SHAPE)
    series = _only_series(tmp_path)
    got = series.ndarray(DIMS, chunks=4).compute(scheduler="processes", num_workers=2)
    np.testing.assert_array_equal(got, expected_ndarray(COORDS, SHAPE))


@pytest.mark.distributed
def test_distributed_worker_processes(tmp_path):
    distributed = pytest.importorskip("distributed")
    write_series(tmp_path, COORDS, SHAPE, transfer_syntax=RLELossless)
    series = _only_series(tmp_path)
    arr = series.ndarray(DIMS)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        got = client.compute(arr).result()
        pids = client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    np.testing.assert_array_equal(got, expected_ndarray(COORDS, SHAPE))


def test_missing_decoder_names_the_extra(tmp_path):
    """Without any JPEG-LS plugin (imagecodecs, pyjpegls, pylibjpeg-libjpeg, gdcm
    unimportable) a clear ImportError names the extra."""
    if not encoder_available(JPEGLSLossless):
        pytest.skip("no JPEG-LS encoder to write the test data")
    write_series(tmp_path, {"InstanceNumber": [1]}, (40, 36), transfer_syntax=JPEGLSLossless)
    script = (
        "import sys\n"
        "for m in ('imagecodecs', 'jpeg_ls', 'pylibjpeg', 'libjpeg', 'gdcm'):\n"
        "    sys.modules[m] = None\n"
        "import lazydicom\n"
        f"s = lazydicom.open({str(tmp_path)!r}, progress=False).series()[0]\n"
        "try:\n"
        "    s.ndarray().compute()\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)
    assert "MissingDecoderError" in done.stdout, done.stdout + done.stderr
    assert "lazydicom[codecs]" in done.stdout


def test_changed_file_gives_clear_error(tmp_path):
    files = write_series(tmp_path, {"InstanceNumber": [1, 2]}, SHAPE, subfolders=False)
    series = _only_series(tmp_path)
    arr = series.ndarray()
    with open(files[0], "r+b") as f:
        f.truncate(200)
    with pytest.raises(OSError, match="changed since it was indexed"):
        arr.compute()


# ----------------------------------------------------------------- enhanced multi-frame


def test_enhanced_multiframe_every_frame_is_a_cell(tmp_path):
    coords = {"InStackPositionNumber": [3, 1, 2], "EffectiveEchoTime": [4.6, 2.3]}
    write_enhanced_mr(
        tmp_path / "enhanced.dcm",
        coords,
        SHAPE,
        missing={(0, 1)},
        rescale=lambda i: (1.0 + i[0], float(i[1])),
    )
    series = _only_series(tmp_path)
    arr = series.ndarray(tuple(coords))
    assert arr.shape == (4, 6, 3, 2) and arr.dtype == np.float32
    ref = reference_ndarray(series.files(), tuple(coords))
    np.testing.assert_allclose(arr.compute(), ref, rtol=1e-6)
    with opened_files(tmp_path) as opened:
        arr[:, :, 1, 1].compute()
    assert len(opened) == 1


# ----------------------------------------------------------------- real data

REAL = Path(__file__).parent / "data"


def _real_cases():
    """(id, series filter, dims) for each real series in tests/data."""
    return [
        pytest.param({"SeriesDescription": "ax 5 flip"}, ("SliceLocation",), id="rider-explicit"),
        pytest.param(
            {"SeriesDescription": "sag 3d gre +c"}, ("InstanceNumber",), id="rider-implicit"
        ),
        pytest.param(
            {"SeriesNumber": 3, "Modality": "CT"}, ("SliceLocation",), id="ct-jpeg-lossless"
        ),
        pytest.param({"SeriesNumber": 1, "Modality": "CT"}, ("InstanceNumber",), id="ct-scout"),
        pytest.param(
            {"SeriesDescription": "Cor_T1MOLLI_BH"}, ("InstanceNumber",), id="enhanced-molli"
        ),
        pytest.param({"Modality": "US"}, ("FrameNumber",), id="us-rle-palette"),
        pytest.param({"Rows": 576}, ("InstanceNumber",), id="siemens-ima"),
    ]


@pytest.mark.parametrize(("filters", "dims"), _real_cases())
def test_real_series_equal_plain_pydicom(corpus, filters, dims):
    db = _open(corpus)
    found = db.series(**filters)
    assert found, f"no series matches {filters}"
    for series in found:
        arr = series.ndarray(dims)
        ref = reference_ndarray(series.files(), dims)
        assert arr.shape == ref.shape and arr.dtype == ref.dtype
        if ref.dtype.kind == "f":
            np.testing.assert_allclose(arr.compute(), ref, rtol=1e-6)
        else:
            np.testing.assert_array_equal(arr.compute(), ref)


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.skipif(
    not (SHARED / "mr-enhanced-multiframe").exists(),
    reason="the full corpus (../shared/data) is not beside this clone",
)
def test_philips_b0_map_shape(tmp_path):
    shutil.copytree(SHARED / "mr-enhanced-multiframe", tmp_path / "mf")
    db = _open(tmp_path / "mf")
    (series,) = [s for s in db.series() if len(s.table()) == 104]
    dims = ("InStackPositionNumber", "EffectiveEchoTime", "ComplexImageComponent")
    arr = series.ndarray(dims)
    assert arr.shape == (128, 128, 13, 2, 4)
    np.testing.assert_allclose(arr.compute(), reference_ndarray(series.files(), dims), rtol=1e-6)
