"""Repeated index values kept once (pandas categoricals): same results as plain columns.

Large indexes store repeated values (UIDs, descriptions, orientations) as
categoricals (lazydicom.schema.from_arrow). The threshold is lowered here so
that a small synthetic study takes that path; every result is compared with
the pattern the synthetic writer encodes.
"""

from __future__ import annotations

import numpy as np
import pytest

import lazydicom
from lazydicom import schema
from tests.synthetic import expected_ndarray, write_series

COORDS = {"SliceLocation": [10.0, -5.0, 2.5], "FlipAngle": [15, 2]}
DIMS = tuple(COORDS)
SHAPE = (6, 4)


def test_categorical_index_gives_the_same_arrays_filters_and_saves(tmp_path, monkeypatch):
    monkeypatch.setattr(schema, "_DICTIONARY_ROWS", 1)
    write_series(tmp_path, COORDS, SHAPE, series_number=1, series_description="a")
    write_series(tmp_path, COORDS, SHAPE, series_number=2, series_description="b",
                 rescale=(2.0, -5.0))
    lazydicom.open(tmp_path, progress=False)  # index written
    db = lazydicom.open(tmp_path, progress=False)  # reopened: from_arrow makes categoricals
    table = db.table()
    assert str(table["SeriesDescription"].dtype) == "category"
    assert str(table["ImageOrientationPatient"].dtype) == "category"
    (a,) = db.series(SeriesDescription="a")
    (b,) = db.series(SeriesDescription=["b"])
    np.testing.assert_array_equal(a.ndarray(DIMS).compute(), expected_ndarray(COORDS, SHAPE))
    np.testing.assert_array_equal(b.numpy(DIMS),
                                  expected_ndarray(COORDS, SHAPE, rescale=(2.0, -5.0)))
    assert a.xarray(DIMS).attrs["ImageOrientationPatient"] == [1, 0, 0, 0, 1, 0]
    a.ensure(["EchoTime"])  # an on-demand column: the index is saved with categoricals
    again = lazydicom.open(tmp_path, progress=False)
    assert len(again.table()) == 12 and "EchoTime" in again.table()
    with pytest.raises(lazydicom.DuplicateCellError):
        again.ndarray(DIMS)
