"""Classes 3 and 6 (the array layer): files changed after open, ndarray arguments.

These are the issue's cases for the array/reading layer, written ahead of its
rewrite (issue 8) as strict expected failures; that layer has landed
(lazydicom.array) and they pass. The catalog's ``pending`` mechanism stays for
cases written ahead of future work.

- Class 3: a file rewritten in place between ``open`` and ``compute`` (a
  longer header, another frame size), truncated or removed must raise
  FrameReadError naming the file (or be re-indexed and read correctly), never
  return the bytes at stale offsets.
- Class 6: ``ndarray`` arguments are validated when the call is made, with
  lazydicom's own errors: InvalidSelectionError (also an IndexError) for
  slice indices that are not integers, InvalidArgumentError (ValueError and
  TypeError) for ``chunks=(0,)``, a dim given twice, a ``fill_value`` that is
  not a number; a Python slice object selects by index, and a ``fill_value``
  the stored dtype cannot hold widens the dtype (both: correct data).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

import lazydicom
from tests.faults.catalog import cases
from tests.synthetic import expected_ndarray, write_series

COORDS = {"FlipAngle": [5, 10, 15]}


@pytest.fixture
def series(tmp_path):
    write_series(tmp_path / "db", COORDS, (6, 4), subfolders=False)
    return lazydicom.open(tmp_path / "db", progress=False).series()[0]


def _rewrite_longer_header(path):
    ds = pydicom.dcmread(path)
    ds.add_new(0x00291010, "OB", b"\x00" * 1000)
    ds.add_new(0x00290010, "LO", "LONGER HEADER")
    ds.save_as(path)


def _rewrite_other_size(path):
    ds = pydicom.dcmread(path)
    ds.Rows, ds.Columns = 8, 5
    ds.PixelData = np.arange(40, dtype=np.uint16).reshape(8, 5).tobytes()
    ds.save_as(path)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])


def _remove(path):
    path.unlink()


CHANGED = {
    "changed/longer-header": (_rewrite_longer_header, True),
    "changed/other-frame-size": (_rewrite_other_size, True),
    "changed/truncated": (_truncate, False),
    "changed/removed": (_remove, False),
}
CHANGED_CASES = cases(
    3,
    "error",
    {
        "changed/longer-header": "a file rewritten with a longer header between open and "
        "compute (stale offsets read the wrong bytes)",
        "changed/other-frame-size": "a file rewritten with another frame size between open and "
        "compute",
        "changed/truncated": "a file truncated between open and compute",
        "changed/removed": "a file removed between open and compute",
    },
)


@pytest.mark.parametrize("kind", CHANGED_CASES)
def test_files_changed_after_open(kind, series):
    change, _ = CHANGED[kind]
    arr = series.ndarray(("FlipAngle",))
    path = sorted(series.files())[1]
    change(Path(path))
    try:
        got = arr.compute()
    except lazydicom.FrameReadError as exc:
        assert path in str(exc) or repr(path) in str(exc)
        return
    # or re-indexed and read: the data of the files as they are now
    expected = expected_ndarray(COORDS, (6, 4))
    np.testing.assert_array_equal(got, expected)


ARGUMENTS = {
    "arguments/slice-index-text": (dict(slice={"FlipAngle": ["a"]}),
                                   lazydicom.InvalidSelectionError),
    "arguments/slice-index-fraction": (dict(slice={"FlipAngle": [1.7]}),
                                       lazydicom.InvalidSelectionError),
    "arguments/chunks-zero": (dict(dims=("FlipAngle",), chunks=(0,)),
                              lazydicom.InvalidArgumentError),
    "arguments/same-dim-twice": (dict(dims=("FlipAngle", "FlipAngle")),
                                 lazydicom.InvalidArgumentError),
    "arguments/same-attribute-two-names": (dict(dims=("FlipAngle", "(0018,1314)")),
                                           lazydicom.InvalidArgumentError),
    "arguments/fill-value-text": (dict(dims=("FlipAngle",), fill_value="abc"),
                                  lazydicom.InvalidArgumentError),
}
ARGUMENT_CASES = cases(
    6,
    "error",
    {
        "arguments/slice-index-text": "ndarray(slice={'FlipAngle': ['a']}) (a ValueError from "
        "int())",
        "arguments/slice-index-fraction": "ndarray(slice={'FlipAngle': [1.7]}) (truncated to 1)",
        "arguments/chunks-zero": "ndarray(chunks=(0,)) (ZeroDivisionError)",
        "arguments/same-dim-twice": "ndarray(dims=('FlipAngle', 'FlipAngle')) (a diagonal "
        "array)",
        "arguments/same-attribute-two-names": "ndarray(dims=('FlipAngle', '(0018,1314)'))",
        "arguments/fill-value-text": "ndarray(fill_value='abc')",
    },
)


@pytest.mark.parametrize("kind", ARGUMENT_CASES)
def test_ndarray_arguments_are_checked_at_the_call(kind, series):
    kwargs, error = ARGUMENTS[kind]
    with pytest.raises(error) as err:
        series.ndarray(**kwargs)
    assert isinstance(err.value, lazydicom.LazyDicomError)


ACCEPTED = cases(
    6,
    "correct",
    {
        "arguments/slice-object": "ndarray(slice={'FlipAngle': slice(0, 2)}) (a TypeError from "
        "int(); now selects by index)",
        "arguments/fill-value-negative-for-uint16": "ndarray(fill_value=-1) on uint16 frames "
        "with an empty cell (an error inside dask at compute time; now a dtype that holds it)",
    },
)


@pytest.mark.parametrize("kind", ACCEPTED)
def test_arguments_that_select_or_widen(kind, series, tmp_path):
    if kind.endswith("slice-object"):
        got = series.ndarray(slice={"FlipAngle": slice(0, 2)}).compute()
        np.testing.assert_array_equal(got, expected_ndarray(COORDS, (6, 4))[:, :, 0:2])
        return
    coords = {"FlipAngle": [5, 10], "EchoTime": [1.0, 2.0]}
    write_series(tmp_path / "gap", coords, (6, 4), missing=[(1, 1)])
    (gap,) = lazydicom.open(tmp_path / "gap", progress=False).series()
    arr = gap.ndarray(("FlipAngle", "EchoTime"), fill_value=-1)
    assert np.dtype(arr.dtype).kind in "if"  # a dtype that holds -1 and every uint16
    expected = expected_ndarray(coords, (6, 4), missing=[(1, 1)]).astype(np.int64)
    expected[:, :, 1, 1] = -1
    np.testing.assert_array_equal(arr.compute().astype(np.int64), expected)
