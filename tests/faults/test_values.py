"""Class 1: one odd value must only ever affect its own file.

Each kind puts one value into one file of a folder of good files. The folder
must open, save and reopen; the good files keep their values and types; the
odd value is indexed as absent with an InvalidValueWarning naming the file
(or, for writers, refused before anything is written).
"""

from __future__ import annotations

import math
import struct
import warnings

import pandas as pd
import pytest

import lazydicom
from tests.faults import corpus
from tests.faults.catalog import cases
from tests.synthetic import write_series

ODD = {
    "is-2**64": (0x00200011, "IS", b"18446744073709551616", "SeriesNumber"),
    "is-below-int64": (0x00200013, "IS", b"-9223372036854775809", "InstanceNumber"),
    "is-beyond-2**53": (0x00200013, "IS", b"9007199254740993", "InstanceNumber"),
    "is-fraction": (0x00200013, "IS", b"1.5", "InstanceNumber"),
    "ds-text": (0x00181314, "DS", b"abc", "FlipAngle"),
    "vm1-two-values": (0x00201041, "DS", b"1\\2", "SliceLocation"),
    "text-as-number": (0x0008103E, "US", struct.pack("<H", 7), "SeriesDescription"),
}
VALUES = cases(
    1,
    "correct",
    {
        "value/is-2**64": "SeriesNumber '18446744073709551616' (IS 2**64) in one file",
        "value/is-below-int64": "InstanceNumber below -2**63 (pydicom reads it as a float)",
        "value/is-beyond-2**53": "InstanceNumber 2**53 + 1 (not exact in a float64 column)",
        "value/is-fraction": "InstanceNumber '1.5' (IS holds integers)",
        "value/ds-text": "FlipAngle 'abc' (DS holds numbers)",
        "value/vm1-two-values": "SliceLocation '1\\2' (VM 1 holds one value)",
        "value/text-as-number": "SeriesDescription encoded with VR US (a number in a text column)",
    },
)


def _good_folder(tmp_path):
    folder = tmp_path / "db"
    write_series(folder, {"InstanceNumber": [1, 2, 3]}, (6, 4), series_description="good")
    return folder


@pytest.mark.parametrize("kind", VALUES)
def test_an_odd_value_affects_only_its_file(kind, tmp_path):
    tag, vr, raw, column = ODD[kind.split("/")[1]]
    folder = _good_folder(tmp_path)
    corpus.with_raw(corpus.sample("explicit-vr-le"), folder / "odd.dcm", {tag: (vr, raw)})
    with pytest.warns(lazydicom.InvalidValueWarning, match=r"odd\.dcm.*" + column):
        db = lazydicom.open(folder, progress=False)
    table = db.table().set_index("path")
    assert len(table) == 4
    odd = table.loc["odd.dcm", column]
    assert odd is None or (isinstance(odd, float) and math.isnan(odd))
    good = table.drop(index="odd.dcm")
    assert good["SeriesDescription"].tolist() == ["good"] * 3
    assert sorted(good["InstanceNumber"].astype(int)) == [1, 2, 3]
    # saved and loaded again, without a word: the value is absent, the types stay
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = lazydicom.open(folder, progress=False)
    pd.testing.assert_frame_equal(again.table(), db.table())
    assert len(again.series()) == 2


KEPT = cases(
    1,
    "correct",
    {
        "value/leading-zero-text": "PatientID '0123' and '123' in two files (text stays text)",
        "value/numeric-looking-text-first": "StudyID '1', '2' in the first files, 'A' after "
        "(the column type is the VR's, not the first values')",
    },
)


@pytest.mark.parametrize("kind", KEPT)
def test_text_attributes_keep_their_text(kind, tmp_path):
    folder = tmp_path / "db"
    if kind.endswith("leading-zero-text"):
        write_series(folder / "a", {"InstanceNumber": [1]}, patient_id="0123")
        write_series(folder / "b", {"InstanceNumber": [1]}, patient_id="123")
        db = lazydicom.open(folder, progress=False)
        assert sorted(p.uid for p in db.patients()) == ["0123", "123"]
        assert [s.unique("PatientID") for s in db.series(PatientID="0123")] == [["0123"]]
    else:
        for i, study_id in enumerate(["1", "2", "A"]):
            write_series(folder / f"s{i}", {"InstanceNumber": [1]}, extra={"StudyID": study_id})
        db = lazydicom.open(folder, progress=False)
        assert sorted(db.table()["StudyID"]) == ["1", "2", "A"]
        assert sorted(lazydicom.open(folder, progress=False).table()["StudyID"]) == ["1", "2", "A"]


ON_DEMAND = cases(
    1,
    "correct",
    {
        "on-demand/is-2**64": "ImagesInAcquisition (read on demand) 2**64 in one file",
        "on-demand/private-mixed-types": "a private tag that is a number in one file and text "
        "in another",
        "on-demand/asked-on-empty-index": "a column asked for while the folder was empty, "
        "then files added (it was never read for them)",
    },
)


@pytest.mark.parametrize("kind", ON_DEMAND)
def test_on_demand_columns_follow_the_same_rule(kind, tmp_path):
    folder = _good_folder(tmp_path)
    explicit = corpus.sample("explicit-vr-le")
    if kind.endswith("is-2**64"):
        huge = {0x00201002: ("IS", b"18446744073709551616")}
        corpus.with_raw(explicit, folder / "odd.dcm", huge)
        corpus.with_raw(explicit, folder / "even.dcm", {0x00201002: ("IS", b"12")})
        db = lazydicom.open(folder, progress=False)
        (real,) = db.series(SeriesDescription="ax 5 flip")
        with pytest.warns(lazydicom.InvalidValueWarning, match="odd.dcm"):
            values = real.values("ImagesInAcquisition")
        assert dict(zip(real.table()["path"], values)) == {"even.dcm": 12, "odd.dcm": None}
        again = lazydicom.open(folder, progress=False).series(SeriesDescription="ax 5 flip")[0]
        assert again.values("ImagesInAcquisition") == values
    elif kind.endswith("private-mixed-types"):
        corpus.with_raw(explicit, folder / "n.dcm", {0x00291001: ("DS", b"2.5"),
                                                      0x00290010: ("LO", b"LAZY")})
        corpus.with_raw(explicit, folder / "t.dcm", {0x00291001: ("LO", b"two and a half"),
                                                      0x00290010: ("LO", b"LAZY")})
        db = lazydicom.open(folder, progress=False)
        (real,) = db.series(SeriesDescription="ax 5 flip")
        assert sorted(map(str, real.values("(0029,1001)"))) == ["2.5", "two and a half"]
        again = lazydicom.open(folder, progress=False).series(SeriesDescription="ax 5 flip")[0]
        assert sorted(map(str, again.values("(0029,1001)"))) == ["2.5", "two and a half"]
    else:
        empty = tmp_path / "empty"
        empty.mkdir()
        db = lazydicom.open(empty, progress=False)
        assert db.series() == []
        db.index.ensure(["ImagesInAcquisition"])
        corpus.with_raw(explicit, empty / "a.dcm", {0x00201002: ("IS", b"7")})
        db.refresh()
        assert db.series()[0].values("ImagesInAcquisition") == [7]


WRITERS = cases(
    1,
    "error",
    {"zeros/series-number-1e30": "zeros(SeriesNumber=10**30): an IS value no index can hold"},
)


@pytest.mark.parametrize("kind", WRITERS)
def test_writers_refuse_values_beyond_the_vr(kind, tmp_path):
    with pytest.raises(lazydicom.InvalidArgumentError, match="SeriesNumber.*IS"):
        lazydicom.zeros((4, 3, 2), path=tmp_path / "db", SeriesNumber=10**30)
    assert [p.name for p in (tmp_path / "db").iterdir()] == [".lazydicom"]
    assert lazydicom.open(tmp_path / "db", progress=False).series() == []
