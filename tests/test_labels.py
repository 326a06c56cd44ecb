"""Series attributes (``lazydicom.io.labels.series_attrs``): the values every frame shares.

``series_attrs`` decides column by column on the column's own storage
(numbers in numpy, text by category codes, a first/middle/last probe before
the rest). These tests hold it to the plain definition, every value of the
column through ``axis_key``, and to pydicom's reading of the files.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest

import lazydicom
from lazydicom import schema
from lazydicom.grid import axis_key
from lazydicom.io.labels import _NOT_ATTRS, series_attrs
from tests.reference import frame_value, read_frames


def _plain_definition(table: pd.DataFrame) -> dict:
    """Every column that has one key (not NaN/None) over all its values, as JSON."""
    out: dict = {}
    for column in table.columns:
        if column in _NOT_ATTRS:
            continue
        keys = {axis_key(v) for v in table[column].tolist()}
        if len(keys) != 1 or None in keys:
            continue
        (key,) = keys
        if isinstance(key, tuple) and any(k is None for k in key):
            continue
        if isinstance(key, float) and math.isinf(key):
            continue
        value = list(key) if isinstance(key, tuple) else key
        if value == "":
            continue
        out[str(column)] = value if isinstance(value, bool | int | float | str | list) \
            else str(value)
    out["NumberOfFramesInSeries"] = len(table)
    return out


@pytest.mark.parametrize("categorical", [False, True], ids=["plain", "categorical"])
def test_real_series_attrs_are_the_values_every_frame_shares(corpus, monkeypatch, categorical):
    """On every series of the real corpus, with text columns plain and as categoricals
    (a reopened large index): the attributes are exactly the columns with one
    value in all frames, and the keywords checked against pydicom are there iff
    every frame's file has one value for them."""
    if categorical:
        monkeypatch.setattr(schema, "_DICTIONARY_ROWS", 1)
    lazydicom.open(corpus, progress=False)  # the index written
    db = lazydicom.open(corpus, progress=False)  # and read back (categoricals if asked)
    checked = ("Modality", "SeriesInstanceUID", "PatientID", "ImageOrientationPatient",
               "PixelSpacing", "RescaleIntercept", "SliceThickness", "FlipAngle")
    seen_varying = seen_shared = 0
    for series in db.series():
        table = series.table()
        attrs = series_attrs(table)
        assert attrs == _plain_definition(table)
        assert series_attrs(series._columns()) == attrs  # extract's view of the index
        frames = read_frames(sorted({os.path.join(db.path, p) for p in table["path"]}))
        assert len(frames) == len(table)
        for keyword in checked:
            values = {axis_key(frame_value(ds, keyword, frame)) for _, ds, frame in frames}
            shared = len(values) == 1 and None not in values
            assert (keyword in attrs) == shared, (series, keyword, values)
            if shared:
                (value,) = values
                got = attrs[keyword]
                expected = list(value) if isinstance(value, tuple) else value
                assert got == expected or (isinstance(expected, list) and np.allclose(
                    np.asarray(got, float), np.asarray(expected, float))), (keyword, got)
                seen_shared += 1
            elif len(values) > 1:
                seen_varying += 1
    assert seen_shared > 20 and seen_varying > 0  # both branches were exercised


def test_series_attrs_edge_cases_match_the_plain_definition():
    """Each column kind on the paths that decide early and on those that do not:
    values that differ only in the middle frame, NaN, missing categories,
    categories that are one number (10 and 10.0), -0.0 and 0.0, tuples, arrays."""
    n = 7
    middle_differs = ["a"] * n
    middle_differs[2] = "b"  # not a probe (frames 0, 3 and 6 are)
    table = pd.DataFrame({
        "SeriesDescription": ["x"] * n,  # object, shared
        "StudyDescription": middle_differs,  # object, differs only at frame 2
        "Manufacturer": pd.Categorical(["GE"] * n),  # categorical, shared
        "InstitutionName": pd.Categorical(middle_differs),  # categorical, frame 2 differs
        "StationName": pd.Categorical(["s"] * (n - 1) + [None]),  # a frame without it
        "EchoNumbers": pd.Categorical([10, 10.0] * 3 + [10]),  # one number, two categories
        "RepetitionTime": [2.5] * n,  # float, shared
        "EchoTime": [1.0] * 2 + [1.5] + [1.0] * 4,  # float, frame 2 differs
        "FlipAngle": [15.0] * (n - 1) + [float("nan")],  # a frame without it
        "SliceThickness": [-0.0] + [0.0] * (n - 1),  # equal numbers
        "AcquisitionNumber": np.arange(n),  # int, varies
        "SeriesNumber": np.full(n, 4),  # int, shared
        "ImageOrientationPatient": [(1.0, 0.0, 0.0, 0.0, 1.0, 0.0)] * n,  # tuples, shared
        "PixelSpacing": [np.array([0.5, 0.5]) for _ in range(n)],  # arrays: equality raises
        "ImagePositionPatient": [(0.0, 0.0, float(i)) for i in range(n)],  # tuples, vary
        "PatientName": pd.array(["p"] * n, dtype="string"),  # pandas strings, shared
        "PatientID": pd.array(["1"] * (n - 1) + [None], dtype="string"),  # one missing
        "BodyPartExamined": [""] * n,  # empty text: not kept
        "SOPInstanceUID": ["u"] * n,  # storage/identity columns are never attributes
        "ProtocolName": [None] * n,  # absent everywhere
    })
    got = series_attrs(table)
    assert got == _plain_definition(table)
    assert got == {
        "SeriesDescription": "x", "Manufacturer": "GE", "EchoNumbers": 10,
        "RepetitionTime": 2.5, "SliceThickness": 0, "SeriesNumber": 4,
        "ImageOrientationPatient": [1, 0, 0, 0, 1, 0], "PixelSpacing": [0.5, 0.5],
        "PatientName": "p", "NumberOfFramesInSeries": n,
    }
    for rows in (1, 2):  # one or two frames: the probes are the frames themselves
        assert series_attrs(table.iloc[:rows]) == _plain_definition(table.iloc[:rows])
    assert series_attrs(table.iloc[:0]) == {"NumberOfFramesInSeries": 0}


def test_series_attrs_of_index_views_are_those_of_their_rows():
    """Extract reads a series' attributes through a view of the whole index's columns
    (lazydicom.columns), converted once: for a slice of the index and for scattered
    rows, with other series' different values around them, they are the plain
    definition of those rows alone."""
    from lazydicom.columns import TableColumns

    n = 6
    one = pd.DataFrame({
        "SeriesDescription": ["x"] * n,
        "Manufacturer": pd.Categorical(["GE"] * n),
        "EchoNumbers": pd.Categorical([10, 10.0] * 3),
        "RepetitionTime": [2.5] * n,
        "EchoTime": [1.0] * (n - 1) + [1.5],
        "SeriesNumber": np.full(n, 4),
        "ImageOrientationPatient": [(1.0, 0.0, 0.0, 0.0, 1.0, 0.0)] * n,
        "ImagePositionPatient": [(0.0, 0.0, float(i)) for i in range(n)],
        "PatientID": pd.array(["1"] * n, dtype="string"),
    })
    other = one.assign(SeriesDescription="y", RepetitionTime=9.0, SeriesNumber=5,
                       EchoTime=1.0, PatientID=pd.array(["2"] * n, dtype="string"))
    other["Manufacturer"] = pd.Categorical(["Siemens"] * n)
    index = pd.concat([other.iloc[:2], one, other.iloc[2:]], ignore_index=True)
    for column in ("Manufacturer", "EchoNumbers"):  # categories of the whole index
        index[column] = index[column].astype("category")
    columns = TableColumns(index)
    scattered = np.array([0, 2, 5, 3, 9])
    for rows in (slice(2, 2 + n), slice(0, 2), slice(2, 3), scattered):
        expected = _plain_definition(index.iloc[rows])
        assert series_attrs(columns.rows(rows)) == expected
        assert series_attrs(index.iloc[rows]) == expected
    assert series_attrs(columns.rows(slice(2, 2 + n)))["SeriesDescription"] == "x"
    assert "EchoTime" not in series_attrs(columns.rows(slice(2, 2 + n)))
    assert series_attrs(columns.rows(slice(0, 2)))["Manufacturer"] == "Siemens"
