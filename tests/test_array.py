"""The frames array (lazydicom.array): reads, pruning at any chunk size, chunks, arguments.

Values are checked against the pattern the synthetic writer encodes
(tests.synthetic.expected_ndarray) or numpy indexing of that independent
reference; file-open counts (tests.conftest.opened_files) prove that a
selection reads exactly its frames whatever the chunking.
"""

from __future__ import annotations

import os
import pickle

import dask
import numpy as np
import pytest
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

import lazydicom
from lazydicom.errors import InvalidArgumentError, InvalidChunksError, InvalidSelectionError
from tests.conftest import opened_files
from tests.synthetic import expected_ndarray, write_series

COORDS = {
    "SliceLocation": [20.0, -5.0, 7.5, 12.5],
    "FlipAngle": [15, 2, 30],
    "RepetitionTime": [5.0, 2.5],
}
DIMS = tuple(COORDS)
SHAPE = (6, 4)
MISSING = {(1, 2, 0)}  # SliceLocation -5, FlipAngle 30, TR 5: an empty cell
EMPTY = (0, 2, 1)  # the same cell in the sorted grid


def _series(folder, **kw) -> lazydicom.Series:
    write_series(folder, COORDS, SHAPE, missing=MISSING, **kw)
    (series,) = lazydicom.open(folder, progress=False).series()
    return series


def _path_of(series: lazydicom.Series, **values) -> str:
    t = series.table()
    mask = np.ones(len(t), dtype=bool)
    for k, v in values.items():
        mask &= t[k].to_numpy() == v
    (path,) = t.path[mask]
    return os.path.join(series.database.path, path)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grid")
    return _series(folder, transfer_syntax=RLELossless)


EXPECTED = expected_ndarray(COORDS, SHAPE, missing=MISSING)


# ---------------------------------------------------------------- DicomFrames


@pytest.mark.parametrize("key", [
    (slice(None), slice(None), 1, 0, 1),
    (0, slice(1, 3), slice(None), [2, 0], 0),
    (Ellipsis, [1, 0]),
    (slice(None), 3, [3, 0, 0], slice(None, None, -1), 1),
    (np.int64(2), -1, np.array([True, False, True, True]), 1),
], ids=["one-cell", "outer-lists", "ellipsis", "repeats-reverse", "numpy-and-bool"])
def test_getitem_equals_numpy_indexing_of_the_reference(grid, key):
    """frames[key] gives numpy's result for the same key on the expected array."""
    frames = grid.frames(DIMS)
    # numpy applies lists jointly; outer indexing applies each on its own axis
    got = frames[key]
    k = key if isinstance(key, tuple) else (key,)
    expected = EXPECTED
    full = k
    if any(x is Ellipsis for x in k):
        i = k.index(Ellipsis)
        full = k[:i] + (slice(None),) * (EXPECTED.ndim - len(k) + 1) + k[i + 1 :]
    full = full + (slice(None),) * (EXPECTED.ndim - len(full))
    for axis in reversed(range(EXPECTED.ndim)):
        expected = np.take(expected, np.arange(EXPECTED.shape[axis])[full[axis]], axis=axis)
    assert got.dtype == EXPECTED.dtype
    np.testing.assert_array_equal(got, expected)


def test_getitem_reads_only_the_cells_selected(grid):
    frames = grid.frames(DIMS)
    with opened_files(grid.database.path) as opened:
        frames[:, :, [0, 3], 1, 0]  # SliceLocation -5 and 20, FlipAngle 15, TR 2.5
    expected = {_path_of(grid, SliceLocation=s, FlipAngle=15, RepetitionTime=2.5)
                for s in (-5.0, 20.0)}
    assert sorted(opened) == sorted(expected)


def test_frames_pickle_and_describe_themselves(grid):
    frames = grid.frames(DIMS)
    clone = pickle.loads(pickle.dumps(frames))
    assert clone.token == frames.token
    np.testing.assert_array_equal(clone[...], EXPECTED)
    assert frames.dims == ("x", "y", *DIMS)
    assert frames.shape == EXPECTED.shape and frames.dtype == EXPECTED.dtype
    assert frames.coords["FlipAngle"].tolist() == [2, 15, 30]
    assert dask.base.tokenize(frames) == dask.base.tokenize(grid.frames(DIMS))


# ---------------------------------------------------------------- the dask array


@pytest.mark.parametrize("chunks", [None, -1, 1, 2, (2, -1, 1), {"FlipAngle": 1}, "1KiB"],
                         ids=str)
def test_dask_slicing_reads_only_selected_frames_at_any_chunk_size(grid, chunks):
    """dask fuses slices into the read tasks: big chunks prune as well as one-frame chunks."""
    arr = grid.ndarray(DIMS, chunks=chunks)
    # sorted axes: SliceLocation -5, 7.5, 12.5, 20; FlipAngle 2, 15, 30; TR 2.5, 5
    cases = [
        ((slice(None), slice(None), 0, 2, 0), [dict(SliceLocation=-5.0, FlipAngle=30,
                                                     RepetitionTime=2.5)]),
        ((slice(None), slice(None), slice(2, 4), 0, 1),
         [dict(SliceLocation=s, FlipAngle=2, RepetitionTime=5.0) for s in (12.5, 20.0)]),
        ((slice(None), slice(None), *EMPTY), []),
    ]
    for key, cells in cases:
        with opened_files(grid.database.path) as opened:
            got = arr[key].compute()
        assert sorted(opened) == sorted(_path_of(grid, **c) for c in cells), key
        np.testing.assert_array_equal(got, EXPECTED[key])


@pytest.mark.parametrize("chunks", [None, -1, (1, 1, 1)], ids=str)
def test_a_list_index_reads_at_most_the_range_it_spans(grid, chunks):
    """dask takes a list by slicing its range, then picking: documented in semantics.md."""
    arr = grid.ndarray(DIMS, chunks=chunks)
    with opened_files(grid.database.path) as opened:
        got = arr[0, 0, 1, [0, 2], 0].compute()
    selected = {_path_of(grid, SliceLocation=7.5, FlipAngle=f, RepetitionTime=2.5)
                for f in (2, 30)}
    spanned = selected | {_path_of(grid, SliceLocation=7.5, FlipAngle=15, RepetitionTime=2.5)}
    assert selected <= set(opened) <= spanned and len(opened) == len(set(opened))
    np.testing.assert_array_equal(got, EXPECTED[0, 0, 1, [0, 2], 0])
    # frames[...] and coords= read exactly the cells, lists included
    with opened_files(grid.database.path) as opened:
        grid.frames(DIMS)[0, 0, 1, [0, 2], 0]
        grid.ndarray(coords={"SliceLocation": [7.5], "FlipAngle": [2, 30],
                             "RepetitionTime": [2.5]}).compute()
    assert sorted(opened) == sorted(list(selected) * 2)  # each read once per call


@pytest.mark.parametrize("chunks", [None, 1, 3, (1, 3, 2), {"RepetitionTime": 1}], ids=str)
def test_compute_is_fortran_ordered_and_equal_at_any_chunk_size(grid, chunks):
    arr = grid.ndarray(DIMS, chunks=chunks)
    got = arr.compute()  # local threads: read straight into one result
    assert got.flags.f_contiguous
    np.testing.assert_array_equal(got, EXPECTED)
    for other in (arr.compute(optimize_graph=True), dask.compute(arr)[0],  # dask's path
                  arr.compute(scheduler="sync"), np.asarray(arr)):
        assert other.flags.f_contiguous
        np.testing.assert_array_equal(other, EXPECTED)
    # what dask derives from it is a plain dask array with the same values
    np.testing.assert_array_equal((arr + 0).compute(), EXPECTED)
    np.testing.assert_array_equal(arr.persist().compute(), EXPECTED)
    assert float(arr.mean().compute()) == pytest.approx(EXPECTED.mean())
    clone = pickle.loads(pickle.dumps(arr))
    assert type(clone) is type(arr)
    np.testing.assert_array_equal(clone.compute(scheduler="sync"), EXPECTED)


def test_building_opens_no_file(grid):
    with opened_files(grid.database.path) as opened:
        grid.frames(DIMS)
        grid.ndarray(DIMS)
        grid.ndarray(DIMS, chunks=-1)
        grid.ndarray(coords={"FlipAngle": [2], "SliceLocation": [7.5], "RepetitionTime": [5]})
    assert opened == []


def test_default_chunks_are_sized_in_bytes(grid):
    """Frames from the first dim on, up to dask's array.chunk-size; x and y whole."""
    frame = SHAPE[0] * SHAPE[1] * 2  # uint16
    with dask.config.set({"array.chunk-size": f"{frame * 8}B"}):  # 8 frames
        chunks = grid.ndarray(DIMS).chunks
    # 4 slices whole, then 8 // 4 = 2 flip angles (3 split evenly: 2 + 1), then 1 TR
    assert chunks == ((SHAPE[1],), (SHAPE[0],), (4,), (2, 1), (1, 1))
    with dask.config.set({"array.chunk-size": "128MiB"}):
        # compressed (RLE): about two chunks per core, at least 8 frames each
        assert grid.ndarray(DIMS).chunks[2:] == ((4,), (2, 1), (1, 1))


@pytest.mark.parametrize("chunks", [0, -2, (0, 1, 1), (1, 1), 1.5, "lots", {"Nope": 2},
                                    (True, 1, 1)], ids=str)
def test_invalid_chunks_are_a_clear_error(grid, chunks):
    with pytest.raises(InvalidChunksError):
        grid.ndarray(DIMS, chunks=chunks)


# ---------------------------------------------------------------- arguments


def test_slice_accepts_python_slices_and_refuses_non_integers(grid):
    got = grid.ndarray(slice={"SliceLocation": slice(1, None, 2), "FlipAngle": [2],
                              "RepetitionTime": 0}).compute()
    assert got.shape == (SHAPE[1], SHAPE[0], 2, 1, 1)
    np.testing.assert_array_equal(got, EXPECTED[:, :, 1::2, [2], :1])
    for bad in ("a", 1.7, [0, "x"], None):
        with pytest.raises(InvalidSelectionError, match="not an integer index"):
            grid.ndarray(slice={"FlipAngle": [bad], "SliceLocation": 0, "RepetitionTime": 0})
    with pytest.raises(IndexError):  # an IndexError for callers that catch that
        grid.ndarray(slice={"FlipAngle": 1.7, "SliceLocation": 0, "RepetitionTime": 0})


def test_one_attribute_twice_is_refused(grid):
    with pytest.raises(InvalidArgumentError, match="twice"):
        grid.ndarray(("FlipAngle", 0x00181314))
    with pytest.raises(InvalidArgumentError, match="twice"):
        grid.ndarray(coords={"FlipAngle": [2], "(0018,1314)": [15]})


@pytest.mark.parametrize(("fill", "dtype"), [(0, "uint16"), (65535, "uint16"), (-1, "int32"),
                                            (70000, "uint32"), (np.nan, "float32"),
                                            (0.5, "float32"), (2.0, "uint16")])
def test_fill_value_decides_the_dtype_when_the_call_is_made(grid, fill, dtype):
    arr = grid.ndarray(DIMS, fill_value=fill)
    assert arr.dtype == np.dtype(dtype)
    got = arr.compute()
    np.testing.assert_array_equal(got[(slice(None), slice(None), *EMPTY)],
                                  np.full(got.shape[:2], fill, dtype))
    others = np.ones(got.shape[2:], dtype=bool)
    others[EMPTY] = False
    np.testing.assert_array_equal(got[:, :, others], EXPECTED[:, :, others])


@pytest.mark.parametrize("fill", ["0", None, [1], 1j, True])
def test_fill_value_that_is_not_a_real_number_is_refused(grid, fill):
    with pytest.raises(InvalidArgumentError, match="fill_value"):
        grid.ndarray(DIMS, fill_value=fill)


# ---------------------------------------------------------------- rescale


def test_rescale_is_exact_in_float32_and_in_float64(tmp_path):
    """Integer slope/intercept take the float32 path; others are rounded once from float64."""
    coords = {"InstanceNumber": [1, 2, 3]}
    rescales = {(0,): (1.0, -1024.0), (1,): (3.0, 7.0), (2,): (0.000123, 10000.5)}
    write_series(tmp_path, coords, (64, 48), dtype="int16",
                 transfer_syntax=ExplicitVRLittleEndian, rescale=lambda i: rescales[i])
    (series,) = lazydicom.open(tmp_path, progress=False).series()
    expected = expected_ndarray(coords, (64, 48), dtype="int16",
                                rescale=lambda i: rescales[i])
    for got in (series.ndarray().compute(), series.numpy()):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("values", [
    [512, 512, 512], [1.0, 1.0], [-0.0, 0.0, 0.0], [np.nan, np.nan], [1.0, np.nan, 1.0],
    [2, 3, 2], [True, True], ["MONOCHROME2"] * 3, ["RGB", "MONOCHROME2", "RGB"],
    ["MONOCHROME2", None, "MONOCHROME2"], [None, None], [3, 2, 3, 1, 2],
])
@pytest.mark.parametrize("categorical", [False, True])
def test_format_columns_are_factorized_as_pandas_does(values, categorical):
    """frame_table factorises a pixel-format column of a series once for the whole
    index and then per series' rows (lazydicom.columns): the codes and values are
    pandas.factorize's of the series' rows alone, for a slice of the index and for
    scattered rows, with other series' values around them."""
    import pandas as pd

    from lazydicom.columns import TableColumns

    pad = {str: "PAD", bool: False}.get(type(values[0]), 77)
    whole = pd.Series([pad, pad] + values + [pad], dtype="category" if categorical else None)
    table = TableColumns(pd.DataFrame({"c": whole}))
    n = len(values)
    scattered = np.array([n + 1, 0, *range(2, n + 1)])  # rows out of order, a pad among them
    for rows in (slice(2, 2 + n), scattered):
        codes, uniques = table.rows(rows).factorized("c")
        part = whole.iloc[rows]
        want_codes, want_uniques = pd.factorize(part, use_na_sentinel=True)
        np.testing.assert_array_equal(codes, want_codes)
        assert list(uniques) == list(want_uniques)
        signs = lambda us: [np.signbit(float(u)) for u in us if not isinstance(u, str)]  # noqa: E731
        assert signs(uniques) == signs(want_uniques)  # -0.0 stays -0.0
