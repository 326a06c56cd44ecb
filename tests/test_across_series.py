"""Arrays across series: Study.ndarray / Database.ndarray with where=, one grid by value.

A variable-flip-angle protocol stored as one series per flip angle (and a
multi-echo one as one series per echo) must give the same array as if it were
one series. Checked against the plain pydicom reference (tests.reference),
which grids the files of all the series together by value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import RLELossless, generate_uid

import lazydicom
from tests.conftest import opened_files
from tests.reference import reference_ndarray
from tests.synthetic import write_series

SLICES = [10.0, -5.0, 2.5]
SHAPE = (6, 4)
DIMS = ("SliceLocation", "FlipAngle")


@pytest.fixture
def vfa(tmp_path: Path) -> dict[int, list[Path]]:
    """One study: three series, one per flip angle (one RLE), plus an unrelated localizer."""
    study = generate_uid()
    files = {}
    for number, angle in enumerate((15, 2, 30), start=1):
        files[angle] = write_series(
            tmp_path, {"SliceLocation": SLICES}, SHAPE, series_number=number,
            series_description=f"vfa {angle}", study_uid=study, extra={"FlipAngle": angle},
            transfer_syntax=RLELossless if angle == 2 else "1.2.840.10008.1.2.1", seed=angle)
    files[0] = write_series(tmp_path, {"SliceLocation": [0.0]}, (5, 3), series_number=9,
                            series_description="localizer", study_uid=study)
    return files


def test_study_and_database_arrays_equal_the_reference(vfa, tmp_path):
    db = lazydicom.open(tmp_path, progress=False)
    where = {"SeriesDescription": ["vfa 15", "vfa 2", "vfa 30"]}
    reference = reference_ndarray([f for a in (15, 2, 30) for f in vfa[a]], DIMS)
    (study,) = db.studies()
    for record in (db, study):
        arr = record.ndarray(DIMS, where=where)
        assert arr.shape == (SHAPE[1], SHAPE[0], 3, 3)
        np.testing.assert_array_equal(arr.compute(), reference)
        np.testing.assert_array_equal(record.numpy(DIMS, where=where), reference)
        da = record.xarray(DIMS, where=where)
        assert da.name == "pixels" and da["FlipAngle"].values.tolist() == [2, 15, 30]
        np.testing.assert_array_equal(da.values, reference)
    assert study.coords(DIMS, where=where)["FlipAngle"].tolist() == [2, 15, 30]
    # one flip angle reads only its series' files
    with opened_files(tmp_path) as opened:
        study.ndarray(coords={"SliceLocation": SLICES, "FlipAngle": [30]}, where=where).compute()
    assert sorted(opened) == sorted(str(p) for p in vfa[30])


def test_frames_of_two_series_in_one_cell_are_refused_naming_both(vfa, tmp_path):
    db = lazydicom.open(tmp_path, progress=False)
    with pytest.raises(lazydicom.DuplicateCellError) as err:
        db.ndarray(("SliceLocation",), where={"SeriesDescription": ["vfa 15", "vfa 2"]})
    message = str(err.value)
    assert "FlipAngle" in message  # the attribute that would separate them
    names = {Path(p).name for p in (*vfa[15], *vfa[2])}
    assert sum(name in message for name in names) == 2
    with pytest.raises(lazydicom.InconsistentFramesError):  # the localizer's frames differ
        db.ndarray(DIMS)
