"""Class 4: a damaged index is found on load and rebuilt, never trusted.

Each kind damages one of the three index files (the pointer ``index.json``,
the frame table, the table of skipped files) after a good index was saved.
The next open must warn (DamagedIndexWarning) and give exactly the table a
fresh index gives, save a clean index (the open after it says nothing), and
leave no file of the damaged generation behind. A few kinds are not damage
but a state a killed or older process leaves: no warning is due for those.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import lazydicom
from tests.faults import corpus
from tests.faults.catalog import cases
from tests.synthetic import write_series


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two series (one real) and a junk file, indexed once."""
    root = tmp_path / "db"
    write_series(root / "synthetic", {"InstanceNumber": [1, 2, 3]}, (6, 4))
    corpus.copy_sample("explicit-vr-le", root / "real")
    (root / "notes.txt").write_text("not DICOM\n")
    with pytest.warns(lazydicom.SkippedFilesWarning):
        lazydicom.open(root, progress=False)
    return root


def _fresh(root: Path, tmp_path: Path) -> pd.DataFrame:
    """The table a fresh index of the same files gives."""
    with pytest.warns(lazydicom.SkippedFilesWarning):
        db = lazydicom.open(root, index_path=tmp_path / "fresh-index", progress=False)
    return db.table().reset_index(drop=True)


def _pointer(root: Path) -> dict:
    return corpus.pointer(root / ".lazydicom")


def _write_pointer(root: Path, meta) -> None:
    (root / ".lazydicom" / "index.json").write_text(json.dumps(meta))


def _int_column(table: pa.Table, name: str, values) -> pa.Table:
    return corpus.set_column(table, name, pa.array(values, type=pa.int64()))


DAMAGE = {
    # the pointer
    "pointer/empty": lambda r: (r / ".lazydicom/index.json").write_bytes(b""),
    "pointer/not-json": lambda r: (r / ".lazydicom/index.json").write_bytes(b"\x89PNG\r\n"),
    "pointer/a-list": lambda r: _write_pointer(r, [1, 2, 3]),
    "pointer/files-a-string": lambda r: _write_pointer(r, {**_pointer(r), "files": "x"}),
    "pointer/extra-a-list": lambda r: _write_pointer(r, {**_pointer(r), "extra": ["a"]}),
    "pointer/size-as-text": lambda r: _write_pointer(
        r, _nested(_pointer(r), ["files", "index", "size"], "12")
    ),
    "pointer/name-outside": lambda r: _write_pointer(
        r, _nested(_pointer(r), ["files", "index", "name"], "../../notes.txt")
    ),
    "pointer/unknown-extra-column": lambda r: _write_pointer(
        r, {**_pointer(r), "extra": {"NotAKeyword": []}}
    ),
    # the frame table
    "table/missing": lambda r: corpus.data_file(r / ".lazydicom").unlink(),
    "table/empty": lambda r: corpus.data_file(r / ".lazydicom").write_bytes(b""),
    "table/truncated": lambda r: _truncate(corpus.data_file(r / ".lazydicom")),
    "table/bit-flip-middle": lambda r: corpus.flip_bit(corpus.data_file(r / ".lazydicom")),
    "table/bit-flip-footer": lambda r: corpus.flip_bit(corpus.data_file(r / ".lazydicom"), 0.99),
    "table/other-columns": lambda r: corpus.rewrite_table(
        r / ".lazydicom", "index", lambda t: t.rename_columns([f"c{i}" for i in t.column_names])
    ),
    "table/column-dropped": lambda r: corpus.rewrite_table(
        r / ".lazydicom", "index", lambda t: t.drop_columns(["FrameOffset"])
    ),
    "table/wrong-column-type": lambda r: corpus.rewrite_table(
        r / ".lazydicom", "index",
        lambda t: corpus.set_column(t, "SeriesNumber", pc.cast(t["SeriesNumber"], pa.string())),
    ),
    "table/zeroed-pixel-offsets": lambda r: corpus.rewrite_table(
        r / ".lazydicom", "index", lambda t: _int_column(t, "PixelDataOffset", [0] * t.num_rows)
    ),
    "table/zeroed-frame-offsets": lambda r: corpus.rewrite_table(
        r / ".lazydicom", "index", lambda t: _int_column(t, "FrameOffset", [0] * t.num_rows)
    ),
    "table/offset-past-end": lambda r: corpus.rewrite_table(
        r / ".lazydicom", "index",
        lambda t: _int_column(t, "FrameOffset", pc.add(t["FrameOffset"], 10**6).to_pylist()),
    ),
    "table/path-outside": lambda r: corpus.rewrite_table(
        r / ".lazydicom", "index",
        lambda t: corpus.set_column(t, "path", pa.array(["../x"] * t.num_rows)),
    ),
    "table/duplicate-rows": lambda r: corpus.rewrite_table(
        r / ".lazydicom", "index", lambda t: pa.concat_tables([t, t])
    ),
    "table/rows-reversed": lambda r: corpus.rewrite_table(
        r / ".lazydicom", "index", lambda t: t.take(pa.array(range(t.num_rows - 1, -1, -1)))
    ),
    # the table of skipped files
    "skipped/missing": lambda r: corpus.data_file(r / ".lazydicom", "skipped").unlink(),
    "skipped/bit-flip": lambda r: corpus.flip_bit(corpus.data_file(r / ".lazydicom", "skipped")),
    "skipped/other-columns": lambda r: corpus.rewrite_table(
        r / ".lazydicom", "skipped", lambda t: t.drop_columns(["reason"])
    ),
}


def _nested(meta: dict, keys: list, value) -> dict:
    inner = meta
    for key in keys[:-1]:
        inner = inner[key]
    inner[keys[-1]] = value
    return meta


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGED = cases(
    4,
    "correct",
    {
        "index/" + name: {
            "pointer/empty": "index.json is empty",
            "pointer/not-json": "index.json holds binary bytes",
            "pointer/a-list": "index.json is a JSON list",
            "pointer/files-a-string": "index.json lists its data files as a string",
            "pointer/extra-a-list": "index.json lists the on-demand columns as a list",
            "pointer/size-as-text": "index.json gives a data file's size as text",
            "pointer/name-outside": "index.json names a data file outside the index folder",
            "pointer/unknown-extra-column": "index.json names an on-demand column that is "
            "no attribute",
            "table/missing": "the frame table's file is missing",
            "table/empty": "the frame table's file is empty",
            "table/truncated": "the frame table's file is cut in half",
            "table/bit-flip-middle": "one bit flipped in the frame table's data",
            "table/bit-flip-footer": "one bit flipped in the frame table's footer",
            "table/other-columns": "a frame table with other columns (checksum updated)",
            "table/column-dropped": "a frame table without FrameOffset (checksum updated)",
            "table/wrong-column-type": "SeriesNumber stored as text (checksum updated)",
            "table/zeroed-pixel-offsets": "every PixelDataOffset 0 (checksum updated)",
            "table/zeroed-frame-offsets": "every FrameOffset 0 (checksum updated)",
            "table/offset-past-end": "frame offsets past the end of their files "
            "(checksum updated)",
            "table/path-outside": "paths that leave the folder (checksum updated)",
            "table/duplicate-rows": "every frame listed twice (checksum updated)",
            "table/rows-reversed": "the rows in reverse path order (checksum updated)",
            "skipped/missing": "the skipped-files table's file is missing",
            "skipped/bit-flip": "one bit flipped in the skipped-files table",
            "skipped/other-columns": "a skipped-files table without its reason column "
            "(checksum updated)",
        }[name]
        for name in DAMAGE
    },
)


@pytest.mark.parametrize("kind", DAMAGED)
def test_damaged_index_is_rebuilt_with_a_warning(kind, folder, tmp_path):
    location = folder / ".lazydicom"
    before = set(p.name for p in location.iterdir())
    DAMAGE[kind.split("/", 1)[1]](folder)
    with pytest.warns(lazydicom.DamagedIndexWarning, match="rebuilt"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", lazydicom.SkippedFilesWarning)
            db = lazydicom.open(folder, progress=False)
    pd.testing.assert_frame_equal(db.table().reset_index(drop=True), _fresh(folder, tmp_path))
    assert "notes.txt" in set(db.skipped()["path"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = lazydicom.open(folder, progress=False)  # clean: no warning at all
    pd.testing.assert_frame_equal(again.table(), db.table())
    assert corpus.leftovers(location) == []
    assert not (before - {"index.json", "index.lock", "sessions"}) & set(
        p.name for p in location.iterdir()
    ), "files of the damaged generation were left"


PAIRED = cases(
    4,
    "correct",
    {
        "index/new-table-old-pointer": "a new frame table beside the pointer of the previous "
        "save (the killed-save race of format 1)",
        "index/old-table-new-pointer": "the previous save's frame table copied over the new "
        "one's name",
    },
)


@pytest.mark.parametrize("kind", PAIRED)
def test_tables_of_two_saves_are_never_paired(kind, folder, tmp_path):
    location = folder / ".lazydicom"
    old_pointer = (location / "index.json").read_bytes()
    old_table = corpus.data_file(location).read_bytes()
    write_series(folder / "more", {"InstanceNumber": [1]}, (6, 4), series_description="more")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lazydicom.SkippedFilesWarning)
        lazydicom.open(folder, progress=False)  # a second save
    if kind.endswith("new-table-old-pointer"):
        (location / "index.json").write_bytes(old_pointer)  # its tables were removed
    else:
        corpus.data_file(location).write_bytes(old_table)
    with pytest.warns(lazydicom.DamagedIndexWarning):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", lazydicom.SkippedFilesWarning)
            db = lazydicom.open(folder, progress=False)
    pd.testing.assert_frame_equal(db.table().reset_index(drop=True), _fresh(folder, tmp_path))
    assert len(db.series(SeriesDescription="more")) == 1


STATES = cases(
    4,
    "correct",
    {
        "index/pointer-missing": "index.json missing, data files present (killed before the "
        "first pointer): rebuilt quietly, the orphans removed",
        "index/format-1": "an index of format 1 (index.arrow, skipped.arrow): rebuilt quietly, "
        "its files removed",
        "index/future-format": "an index of a format this version does not know: rebuilt",
        "index/leftover-temporary-files": "temporary and unreferenced data files of killed "
        "saves: removed on the next open",
    },
)


@pytest.mark.parametrize("kind", STATES)
def test_states_a_killed_or_other_version_leaves(kind, folder, tmp_path):
    location = folder / ".lazydicom"
    name = kind.split("/")[1]
    if name == "pointer-missing":
        (location / "index.json").unlink()
    elif name == "format-1":
        for p in list(location.iterdir()):
            if p.name.startswith(("index", "skipped")):
                p.unlink()
        (location / "index.json").write_text(json.dumps({"version": 1, "root": str(folder),
                                                         "extra": {}}))
        (location / "index.arrow").write_bytes(b"ARROW1 old format")
        (location / "skipped.arrow").write_bytes(b"ARROW1 old format")
    elif name == "future-format":
        _write_pointer(folder, {**_pointer(folder), "version": 99})
    else:
        (location / "index.json.0123abcd.tmp").write_bytes(b"half")
        (location / "index-0123456789abcdef.arrow").write_bytes(b"orphan")
        (location / "skipped-0123456789abcdef.arrow.89ab.tmp").write_bytes(b"half")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lazydicom.SkippedFilesWarning)
        warnings.simplefilter("error", lazydicom.DamagedIndexWarning)
        db = lazydicom.open(folder, progress=False)
    pd.testing.assert_frame_equal(db.table().reset_index(drop=True), _fresh(folder, tmp_path))
    assert corpus.leftovers(location) == []
    assert not {"index.arrow", "skipped.arrow"} & set(p.name for p in location.iterdir())
