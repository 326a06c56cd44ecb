"""Encapsulated frames located at index time (lazydicom.fragments), against pydicom.

For every compressed file bundled with pydicom and in tests/data, the spans the
index records give, joined, exactly the frames pydicom's own
``generate_frames`` splits from the whole Pixel Data. Truncated and malformed
encapsulations are refused with a reason, never indexed as complete.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames

from lazydicom.fragments import FragmentError, codestream, frame_spans
from lazydicom.header import HeaderError, read_header
from lazydicom.pixels import NATIVE_SYNTAXES

DATA = Path(__file__).parent / "data"
DELIMITER = b"\xfe\xff\xdd\xe0" + bytes(4)


def _compressed_files() -> list[Path]:
    found = []
    candidates = sorted(Path(pydicom.__file__).parent.joinpath("data", "test_files").rglob("*"))
    candidates += sorted(p for p in DATA.rglob("*") if p.is_file() and p.suffix != ".md")
    for path in candidates:
        if not path.is_file():
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - not DICOM: not a case here
            continue
        meta = getattr(ds, "file_meta", None)
        syntax = str(getattr(meta, "TransferSyntaxUID", "") or "")
        if syntax and syntax not in NATIVE_SYNTAXES and "Rows" in ds:
            found.append(path)
    return found


FILES = _compressed_files()


def test_there_are_many_compressed_files():
    assert len(FILES) >= 30


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_spans_give_exactly_pydicoms_frames(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        rows = read_header(path)
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    reference = [bytes(f) for f in generate_frames(ds.PixelData, number_of_frames=n)]
    data = path.read_bytes()
    assert len(rows) == n
    if rows[0]["FrameOffset"] < 0:  # frames only a codec can split: pydicom reads them
        pytest.skip("no offset table and several fragments per frame")
    got = [bytes(codestream(data[r["FrameOffset"]:r["FrameOffset"] + r["FrameLength"]]))
           for r in rows]
    assert got == reference


def _spans(data: bytes, frames: int):
    return frame_spans(lambda o, n: data[o:o + n], 0, len(data), frames)


def test_offset_table_and_one_fragment_per_frame_agree():
    frames = [b"ab", b"cdef", b"gh"]  # even lengths: DICOM pads fragments to even
    with_bot = encapsulate(frames, has_bot=True) + DELIMITER
    without = encapsulate(frames, has_bot=False) + DELIMITER
    for data in (with_bot, without):
        assert [bytes(codestream(data[o:o + n])) for o, n in _spans(data, 3)] == frames


def test_several_fragments_per_frame():
    data = encapsulate([b"abcdef", b"ghij"], fragments_per_frame=2, has_bot=True) + DELIMITER
    assert [bytes(codestream(data[o:o + n])) for o, n in _spans(data, 2)] == [
        b"abcdef", b"ghij"]
    single = encapsulate([b"abcdef"], fragments_per_frame=3, has_bot=False) + DELIMITER
    assert [bytes(codestream(single[o:o + n])) for o, n in _spans(single, 1)] == [b"abcdef"]
    # no offset table, more fragments than frames: only a codec can split them
    many = encapsulate([b"abcdef", b"ghij"], fragments_per_frame=2, has_bot=False) + DELIMITER
    assert _spans(many, 2) is None


@pytest.mark.parametrize("cut", [4, 9, 16, 20, 30], ids=lambda c: f"cut-at-{c}")
def test_truncated_encapsulation_is_refused(cut):
    data = (encapsulate([b"abcdef", b"ghij"], has_bot=True) + DELIMITER)[:cut]
    with pytest.raises(FragmentError):
        _spans(data, 2)


def test_missing_delimiter_and_bad_items_are_refused():
    data = encapsulate([b"abcdef"], has_bot=False)
    with pytest.raises(FragmentError, match="delimiter"):
        _spans(data, 1)
    bad = bytearray(encapsulate([b"abcdef"], has_bot=False) + DELIMITER)
    bad[8:12] = b"\x10\x00\x10\x00"  # the fragment item's tag replaced by (0010,0010)
    with pytest.raises(FragmentError, match="fragment item was expected"):
        _spans(bytes(bad), 1)
    with pytest.raises(FragmentError, match="only 1"):
        _spans(encapsulate([b"abcdef"], has_bot=False) + DELIMITER, 3)
    lying = bytearray(encapsulate([b"ab", b"cd"], has_bot=True) + DELIMITER)
    struct.pack_into("<I", lying, 12, 99)  # second offset points nowhere
    assert [bytes(codestream(lying[o:o + n])) for o, n in _spans(bytes(lying), 2)] == [
        b"ab", b"cd"]  # one fragment per frame still tells


def test_truncated_compressed_file_is_skipped_with_a_reason(tmp_path):
    source = DATA / "ct-skull-jpeg-lossless" / "I100"
    data = source.read_bytes()
    for fraction in (0.6, 0.95):
        cut = tmp_path / f"cut{fraction}"
        cut.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(HeaderError, match="truncated|past the end"):
            read_header(cut)
