"""Class 6 (writers): arguments are refused when the call is made, nothing is written.

Every kind calls ``zeros`` or ``set_ndarray`` with one bad argument and
checks the error is lazydicom's own (InvalidArgumentError: a ValueError and
a TypeError; InvalidSelectionError also an IndexError) and that the database
folder is byte for byte what it was.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lazydicom
from tests.faults.catalog import cases


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".lazydicom" not in p.parts
    }


ZEROS = {
    "zeros/shape-floats": (((8.7, 6.2),), {}, "holds 8.7"),
    "zeros/shape-string": (("88",), {}, "not '88'"),
    "zeros/shape-an-int": ((5,), {}, "not 5"),
    "zeros/shape-bool": (((True, 4),), {}, "holds True"),
    "zeros/shape-zero": (((0, 5),), {}, ">= 1"),
    "zeros/shape-one-dim": (((5,),), {}, ">= 1|x, y"),
    "zeros/coords-one-attribute-twice": (
        ((4, 3, 2, 2), {"FlipAngle": [5, 10], "(0018,1314)": [5, 10]}),
        {},
        "twice",
    ),
    "zeros/coords-and-attribute": (((4, 3, 2), {"FlipAngle": [5, 10]}), {"FlipAngle": 5},
                                   "give it once"),
    "zeros/fl-beyond-float32": (((4, 3, 2), {"B1rms": [1.0, 1e39]}), {}, "FL"),
    "zeros/us-beyond-65535": (((4, 3, 2), {"ExposuresOnPlate": [1, 70000]}), {}, "US"),
    "zeros/is-beyond-int32": (((4, 3, 2), {"AcquisitionNumber": [1, 2**31]}), {}, "IS"),
    "zeros/is-fraction": (((4, 3, 2), {"AcquisitionNumber": [1, 2.5]}), {}, "integers"),
    "zeros/ds-not-finite": (((4, 3, 2), {"SliceLocation": [0.0, float("nan")]}), {}, "finite"),
    "zeros/coords-not-a-dict": (((4, 3, 2), [1, 2]), {}, "dict"),
    "zeros/attribute-us-range": (((4, 3),), {"ExposuresOnPlate": -1}, "US"),
}
ZEROS_CASES = cases(
    6,
    "error",
    {
        "zeros/shape-floats": "zeros((8.7, 6.2)) (was truncated to (8, 6))",
        "zeros/shape-string": "zeros('88') (was read as (8, 8))",
        "zeros/shape-an-int": "zeros(5)",
        "zeros/shape-bool": "zeros((True, 4))",
        "zeros/shape-zero": "zeros((0, 5))",
        "zeros/shape-one-dim": "zeros((5,))",
        "zeros/coords-one-attribute-twice": "coords naming FlipAngle as 'FlipAngle' and "
        "'(0018,1314)'",
        "zeros/coords-and-attribute": "FlipAngle both in coords and as FlipAngle=5",
        "zeros/fl-beyond-float32": "an FL coordinate of 1e39 (was stored as inf)",
        "zeros/us-beyond-65535": "a US coordinate of 70000 (struct.error before)",
        "zeros/is-beyond-int32": "an IS coordinate of 2**31",
        "zeros/is-fraction": "an IS coordinate of 2.5",
        "zeros/ds-not-finite": "a DS coordinate NaN",
        "zeros/coords-not-a-dict": "coords given as a list",
        "zeros/attribute-us-range": "ExposuresOnPlate=-1 for every frame (US)",
    },
)


@pytest.mark.parametrize("kind", ZEROS_CASES)
def test_zeros_refuses_bad_arguments(kind, tmp_path):
    args, attributes, match = ZEROS[kind]
    db = lazydicom.open(tmp_path, progress=False)
    with pytest.raises(lazydicom.InvalidArgumentError, match=match) as err:
        db.zeros(*args, **attributes)
    assert isinstance(err.value, ValueError) and isinstance(err.value, TypeError)
    assert _snapshot(tmp_path) == {}
    assert lazydicom.open(tmp_path, progress=False).series() == []


@pytest.fixture
def series(tmp_path: Path) -> lazydicom.Series:
    return lazydicom.zeros((4, 3, 2, 2), {"FlipAngle": [5, 10], "EchoTime": [1.0, 2.0]},
                           path=tmp_path / "db")


_BY_INDEX = lazydicom.InvalidSelectionError
SET = {
    "set-ndarray/coords-one-attribute-twice": (
        dict(coords={"FlipAngle": [5, 10], "(0018,1314)": [1, 2]}), "twice",
        lazydicom.InvalidArgumentError,
    ),
    "set-ndarray/slice-index-fraction": (
        dict(slice={"FlipAngle": [0, 1.7], "EchoTime": [0, 1]}), "1.7", _BY_INDEX,
    ),
    "set-ndarray/slice-index-text": (
        dict(slice={"FlipAngle": [0, "a"], "EchoTime": [0, 1]}), "'a'", _BY_INDEX,
    ),
    "set-ndarray/slice-index-out-of-range": (
        dict(slice={"FlipAngle": [0, 5], "EchoTime": [0, 1]}), "out of range", _BY_INDEX,
    ),
    "set-ndarray/coords-and-slice": (
        dict(coords={"FlipAngle": [5, 10], "EchoTime": [1.0, 2.0]},
             slice={"FlipAngle": [0, 1], "EchoTime": [0, 1]}), "exactly one",
        lazydicom.InvalidArgumentError,
    ),
    "set-ndarray/new-cell-fl-beyond-float32": (
        dict(coords={"FlipAngle": [5, 10], "B1rms": [1e39, 1.0]}), "FL",
        lazydicom.InvalidArgumentError,
    ),
}
SET_CASES = cases(
    6,
    "error",
    {
        "set-ndarray/coords-one-attribute-twice": "coords naming FlipAngle twice under two "
        "names (it corrupted a series on disk)",
        "set-ndarray/slice-index-fraction": "slice index 1.7 (was truncated to 1)",
        "set-ndarray/slice-index-text": "slice index 'a'",
        "set-ndarray/slice-index-out-of-range": "slice index beyond the axis",
        "set-ndarray/coords-and-slice": "both coords and slice",
        "set-ndarray/new-cell-fl-beyond-float32": "a new cell whose FL coordinate is 1e39",
    },
)


@pytest.mark.parametrize("kind", SET_CASES)
def test_set_ndarray_refuses_bad_arguments(kind, series):
    kwargs, match, error = SET[kind]
    root = Path(series.database.path)
    before = _snapshot(root)
    with pytest.raises(error, match=match):
        series.set_ndarray(np.ones((4, 3, 2, 2)), **kwargs)  # the FL case: (FlipAngle, B1rms)
    assert _snapshot(root) == before
    np.testing.assert_array_equal(series.numpy(("FlipAngle", "EchoTime")), 0)
