"""Class 2: headers that disagree with the file; what the scan cannot list.

Each bad file sits in a folder beside a good synthetic file: the bad one must
be listed by ``Database.skipped()`` with a reason (never filed as an object
without pixels, never vanish from both tables), the good one indexed; or, for
files lazydicom can read correctly, the pixels must equal pydicom's.
"""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

import lazydicom
from tests.faults import corpus
from tests.faults.catalog import cases
from tests.synthetic import write_series

CUTS = {
    "preamble": "inside the 128-byte preamble",
    "meta": "inside the file meta group",
    "dataset": "in the middle of the dataset",
    "pixel-header": "inside the Pixel Data element header",
    "pixel-data": "in the middle of the pixel data",
    "before-end": "just before the end of the pixel data (encapsulated: all fragments, "
    "no sequence delimiter)",
}
TRUNCATED = cases(
    2,
    "skipped",
    {
        f"truncated/{ts}/{where}": f"a {ts} file of tests/data cut {text}"
        for ts in corpus.SAMPLES
        for where, text in CUTS.items()
    },
)


def _folder_with(tmp_path: Path) -> Path:
    """A folder holding one good synthetic file."""
    folder = tmp_path / "db"
    write_series(folder / "good", {"InstanceNumber": [1]}, (6, 4), subfolders=False)
    return folder


def _skipped(folder: Path, name: str) -> str:
    """Open ``folder``: the good file indexed, ``name`` skipped; return its reason."""
    with pytest.warns(lazydicom.SkippedFilesWarning):
        db = lazydicom.open(folder, progress=False)
    reasons = dict(zip(db.skipped()["path"], db.skipped()["reason"]))
    assert name in reasons, f"{name} is not in skipped(): {reasons}"
    assert reasons[name].strip()
    indexed = set(db.table()["path"]) | set(db.objects()["path"] if len(db.objects()) else ())
    assert name not in indexed
    assert len(db.table()) == 1  # the good file
    return reasons[name]


@pytest.mark.parametrize("kind", TRUNCATED)
def test_truncated_files_are_skipped(kind, tmp_path):
    _, ts, where = kind.split("/")
    folder = _folder_with(tmp_path)
    source = corpus.sample(ts)
    corpus.truncate(source, folder / "cut.dcm", corpus.cut_points(source)[where])
    reason = _skipped(folder, "cut.dcm")
    assert any(w in reason for w in ("DICM", "trunc", "end", "past")), reason


FRAMES = cases(
    2,
    "skipped",
    {
        "number-of-frames/negative": "NumberOfFrames '-3' in a native file",
        "number-of-frames/zero": "NumberOfFrames '0' in a native file",
        "number-of-frames/text": "NumberOfFrames 'abc'",
        "number-of-frames/fraction": "NumberOfFrames '2.5'",
        "number-of-frames/multi-valued": "NumberOfFrames '2\\3'",
        "number-of-frames/native-absurd": "NumberOfFrames 300000 in a single-frame native file",
        "number-of-frames/jpeg-absurd": "NumberOfFrames 300000 in a JPEG Lossless file "
        "(one fragment)",
        "number-of-frames/rle-one-too-many": "NumberOfFrames 12 in the 11-frame RLE file",
    },
)


@pytest.mark.parametrize("kind", FRAMES)
def test_number_of_frames_the_file_cannot_hold(kind, tmp_path):
    value = {
        "negative": b"-3",
        "zero": b"0",
        "text": b"abc",
        "fraction": b"2.5",
        "multi-valued": b"2\\3",
        "native-absurd": b"300000",
        "jpeg-absurd": b"300000",
        "rle-one-too-many": b"12",
    }[kind.split("/")[1]]
    ts = {"jpeg-absurd": "jpeg-lossless", "rle-one-too-many": "rle-lossless"}.get(
        kind.split("/")[1], "explicit-vr-le"
    )
    folder = _folder_with(tmp_path)
    corpus.with_raw(corpus.sample(ts), folder / "frames.dcm", {0x00280008: ("IS", value)})
    reason = _skipped(folder, "frames.dcm")
    assert "NumberOfFrames" in reason or "frame" in reason, reason


def _bad_item(source: Path, target: Path) -> Path:
    lay = corpus.layout(source)
    data = bytearray(source.read_bytes())
    (bot,) = struct.unpack("<I", data[lay.pixel_value + 4 : lay.pixel_value + 8])
    first = lay.pixel_value + 8 + bot  # the first fragment's item tag
    data[first : first + 4] = b"\x08\x00\x16\x00"  # (0008,0016) instead of (FFFE,E000)
    target.write_bytes(bytes(data))
    return target


def _bogus_length(source: Path, target: Path) -> Path:
    data = bytearray(source.read_bytes())
    at = data.index(b"\x08\x00\x3e\x10LO")  # SeriesDescription, 2-byte length
    data[at + 6 : at + 8] = struct.pack("<H", 0xFFF0)
    target.write_bytes(bytes(data))
    return target


def _cut_at_pixel_element(source: Path, target: Path) -> Path:
    return corpus.truncate(source, target, corpus.layout(source).pixel_element)


def _cut_presentation_state(source: Path, target: Path) -> Path:
    return corpus.truncate(source, target, source.stat().st_size * 2 // 3)


def _empty(source: Path, target: Path) -> Path:
    target.write_bytes(b"")
    return target


def _not_dicom(source: Path, target: Path) -> Path:
    target.write_bytes(b"not a DICOM file\n" * 100)
    return target


STRUCTURE = cases(
    2,
    "skipped",
    {
        "encapsulated/bad-item-tag": "a JPEG Lossless file whose first fragment item has "
        "another tag",
        "element/length-past-end": "SeriesDescription whose length runs past the end of the file",
        "image/cut-at-pixel-element": "an MR image cut exactly before its Pixel Data element "
        "(an element boundary: looks like an object without pixels)",
        "object/cut-inside-value": "a presentation state (no pixels) cut inside an element",
        "file/empty": "a 0-byte .dcm file",
        "file/not-dicom": "a text file named .dcm",
    },
)
_STRUCTURE = {
    "encapsulated/bad-item-tag": ("jpeg-lossless", _bad_item),
    "element/length-past-end": ("explicit-vr-le", _bogus_length),
    "image/cut-at-pixel-element": ("explicit-vr-le", _cut_at_pixel_element),
    "object/cut-inside-value": (None, _cut_presentation_state),
    "file/empty": ("explicit-vr-le", _empty),
    "file/not-dicom": ("explicit-vr-le", _not_dicom),
}


@pytest.mark.parametrize("kind", STRUCTURE)
def test_broken_structure_is_skipped(kind, tmp_path):
    ts, make = _STRUCTURE[kind]
    source = corpus.sample(ts) if ts else corpus.DATA / "mr-enhanced-molli" / "PS_0002"
    folder = _folder_with(tmp_path)
    make(source, folder / "bad.dcm")
    _skipped(folder, "bad.dcm")


MISMATCH = cases(
    2,
    "correct",
    {
        "encoding/implicit-meta-explicit-data": "the meta group says Implicit VR, the dataset "
        "is Explicit VR (pixels were read 4 bytes off)",
        "encoding/explicit-meta-implicit-data": "the meta group says Explicit VR, the dataset "
        "is Implicit VR",
    },
)


@pytest.mark.parametrize("kind", MISMATCH)
def test_encoding_mismatch_reads_the_right_pixels(kind, tmp_path):
    source = corpus.sample("explicit-vr-le")
    folder = tmp_path / "db"
    folder.mkdir()
    target = folder / "mismatch.dcm"
    if kind.endswith("implicit-meta-explicit-data"):
        corpus.with_transfer_syntax(source, target, "1.2.840.10008.1.2")
    else:
        corpus.with_implicit_dataset(source, target)
    db = lazydicom.open(folder, progress=False)
    (series,) = db.series()
    got = series.numpy()[:, :, 0]
    np.testing.assert_array_equal(got.T, corpus.pixels(source))


SCAN = cases(
    2,
    "skipped",
    {
        "scan/unreadable-sub-folder": "a sub-folder that cannot be listed (permission denied)",
        "scan/non-utf8-file-name": "a file whose name is not valid UTF-8",
        "scan/non-utf8-folder-name": "a folder whose name is not valid UTF-8",
        "scan/link-to-folder": "a symbolic link to a folder (not followed: it could loop)",
        "scan/broken-link": "a symbolic link to nothing",
    },
)


@pytest.mark.parametrize("kind", SCAN)
def test_what_the_scan_cannot_list_is_reported(kind, tmp_path, monkeypatch):
    folder = _folder_with(tmp_path)
    good = next((folder / "good").iterdir())
    name = kind.split("/")[1]
    if name == "unreadable-sub-folder":
        (folder / "locked").mkdir()
        (folder / "locked" / "a.dcm").write_bytes(good.read_bytes())
        scandir = os.scandir

        def refuse(path="."):  # as for a folder without read permission (root ignores chmod)
            if Path(path) == folder / "locked":
                raise PermissionError(13, "Permission denied", str(path))
            return scandir(path)

        monkeypatch.setattr(os, "scandir", refuse)
        shown = "locked/"
    elif name == "non-utf8-file-name":
        with open(os.path.join(os.fsencode(folder), b"scan\xff.dcm"), "wb") as f:
            f.write(good.read_bytes())
        shown = "scan\\xff.dcm"
    elif name == "non-utf8-folder-name":
        os.mkdir(os.path.join(os.fsencode(folder), b"dir\xfe"))
        shown = "dir\\xfe"
    elif name == "link-to-folder":
        (tmp_path / "elsewhere").mkdir()
        (folder / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
        shown = "link"
    else:
        (folder / "broken").symlink_to(tmp_path / "nothing")
        shown = "broken"
    reason = _skipped(folder, shown)
    assert reason
    # reported on every open while it lasts, and the index still loads
    with pytest.warns(lazydicom.SkippedFilesWarning):
        assert len(lazydicom.open(folder, progress=False).table()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders without read permission")
def test_unreadable_sub_folder_for_real(tmp_path):
    folder = _folder_with(tmp_path)
    (folder / "locked").mkdir()
    (folder / "locked").chmod(0)
    try:
        assert _skipped(folder, "locked/")
    finally:
        (folder / "locked").chmod(0o755)


ROOT = cases(2, "error", {"scan/unreadable-root": "a database folder that cannot be listed"})


@pytest.mark.parametrize("kind", ROOT)
def test_unreadable_root_is_a_clear_error(kind, tmp_path, monkeypatch):
    folder = _folder_with(tmp_path)
    scandir = os.scandir

    def refuse(path="."):
        if Path(path) == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    with pytest.raises(lazydicom.UnreadableFolderError, match="Cannot list the folder") as err:
        lazydicom.open(folder, progress=False)
    assert isinstance(err.value, PermissionError) and str(folder) in str(err.value)


def test_every_real_file_still_reads_as_pydicom_says(corpus):
    """The new checks skip nothing real: every image file of tests/data is indexed."""
    db = lazydicom.open(corpus, progress=False)
    assert len(db.skipped()) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frames = sum(
            int(ds.get("NumberOfFrames") or 1)
            for ds in (
                pydicom.dcmread(p, stop_before_pixels=True)
                for p in corpus.rglob("*")
                if p.is_file() and ".lazydicom" not in p.parts
            )
            if "BitsAllocated" in ds
        )
    assert len(db.table()) == frames
