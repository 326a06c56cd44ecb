"""Classes 3 and 6 (the array layer): cases for the rewrite of issue 8.

The array/reading layer is being replaced (issue 8); these are the issue's
cases for it, written ahead. Those that fail today are strict expected
failures (``pending`` in the catalog): when the new layer lands and a case
passes, pytest reports an XPASS failure, the signal to remove the mark.

- Class 3: a file rewritten in place between ``open`` and ``compute`` (a
  longer header, another frame size) must raise FrameReadError naming the
  file (or be re-indexed and read correctly), never return stale offsets'
  bytes.
- Class 6: ``ndarray`` arguments are validated when the call is made, with
  lazydicom's own errors: InvalidSelectionError (also an IndexError) for
  slice indices that are not integers, InvalidArgumentError (ValueError and
  TypeError) for ``chunks=(0,)``, a dim given twice, a ``fill_value`` the
  dtype cannot hold.
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
PENDING_CHANGED = cases(
    3,
    "error",
    {
        "changed/longer-header": "a file rewritten with a longer header between open and "
        "compute (stale offsets read the wrong bytes)",
        "changed/other-frame-size": "a file rewritten with another frame size between open and "
        "compute",
    },
    pending=True,
)
DONE_CHANGED = cases(
    3,
    "error",
    {
        "changed/truncated": "a file truncated between open and compute",
        "changed/removed": "a file removed between open and compute",
    },
)


@pytest.mark.parametrize("kind", PENDING_CHANGED + DONE_CHANGED)
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
    "arguments/slice-object": (dict(slice={"FlipAngle": slice(0, 2)}),
                               lazydicom.InvalidSelectionError),
    "arguments/chunks-zero": (dict(dims=("FlipAngle",), chunks=(0,)),
                              lazydicom.InvalidArgumentError),
    "arguments/same-dim-twice": (dict(dims=("FlipAngle", "FlipAngle")),
                                 lazydicom.InvalidArgumentError),
    "arguments/same-attribute-two-names": (dict(dims=("FlipAngle", "(0018,1314)")),
                                           lazydicom.InvalidArgumentError),
}
PENDING_ARGUMENTS = cases(
    6,
    "error",
    {
        "arguments/slice-index-text": "ndarray(slice={'FlipAngle': ['a']}) (a ValueError from "
        "int())",
        "arguments/slice-index-fraction": "ndarray(slice={'FlipAngle': [1.7]}) (truncated to 1)",
        "arguments/slice-object": "ndarray(slice={'FlipAngle': slice(0, 2)}) (a TypeError "
        "from int())",
        "arguments/chunks-zero": "ndarray(chunks=(0,)) (ZeroDivisionError)",
        "arguments/same-dim-twice": "ndarray(dims=('FlipAngle', 'FlipAngle')) (a diagonal "
        "array)",
        "arguments/same-attribute-two-names": "ndarray(dims=('FlipAngle', '(0018,1314)'))",
    },
    pending=True,
)


@pytest.mark.parametrize("kind", PENDING_ARGUMENTS)
def test_ndarray_arguments_are_checked_at_the_call(kind, series):
    kwargs, error = ARGUMENTS[kind]
    with pytest.raises(error) as err:
        series.ndarray(**kwargs)
    assert isinstance(err.value, lazydicom.LazyDicomError)


FILL = cases(
    6,
    "error",
    {
        "arguments/fill-value-negative-for-uint16": "ndarray(fill_value=-1) on uint16 frames "
        "with an empty cell (an error inside dask at compute time)",
        "arguments/fill-value-text": "ndarray(fill_value='abc') with an empty cell",
    },
    pending=True,
)


@pytest.mark.parametrize("kind", FILL)
def test_fill_value_the_dtype_cannot_hold(kind, tmp_path):
    coords = {"FlipAngle": [5, 10], "EchoTime": [1.0, 2.0]}
    write_series(tmp_path / "db", coords, (6, 4), missing=[(1, 1)])
    (series,) = lazydicom.open(tmp_path / "db", progress=False).series()
    fill = -1 if kind.endswith("uint16") else "abc"
    with pytest.raises(lazydicom.InvalidArgumentError):
        series.ndarray(("FlipAngle", "EchoTime"), fill_value=fill)
