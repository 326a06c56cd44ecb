"""Scale: thousands of files, parallel header reads, incremental refresh (slow; -m slow)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import lazydicom
from tests.conftest import opened_files
from tests.synthetic import expected_ndarray, write_series

pytestmark = pytest.mark.slow

COORDS = {
    "SliceLocation": [float(v) for v in range(0, 150, 5)],  # 30
    "FlipAngle": [2, 5, 10, 15, 20, 25, 30, 35, 40, 45],  # 10
    "RepetitionTime": [2.5, 5.0, 7.5, 10.0, 12.5, 15.0, 17.5, 20.0, 22.5, 25.0],  # 10
}


def test_three_thousand_files(tmp_path):
    files = write_series(tmp_path, COORDS, (64, 48))
    assert len(files) == 3000
    db = lazydicom.open(tmp_path, progress=False, workers=2)  # processes
    (series,) = db.series()
    dims = tuple(COORDS)
    expected = expected_ndarray(COORDS, (64, 48))
    np.testing.assert_array_equal(series.numpy(dims), expected)
    np.testing.assert_array_equal(series.ndarray(dims, chunks=100).compute(), expected)

    # touch 10 files: a refresh re-reads exactly those
    touched = files[::300]
    for f in touched:
        os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    with opened_files(tmp_path) as opened:
        assert db.refresh()["changed"] == len(touched)
    assert sorted(opened) == sorted(str(f) for f in touched)

    # one frame by dask slicing reads one file
    arr = series.ndarray(dims)
    with opened_files(tmp_path) as opened:
        frame = arr[:, :, 7, 3, 9].compute()
    assert len(opened) == 1
    np.testing.assert_array_equal(frame, expected[:, :, 7, 3, 9])
