"""Generators of bad input, from the real files of tests/data and synthetic ones.

Nothing here imports lazydicom: positions in files are found with pydicom and
plain byte arithmetic, so a lazydicom bug cannot hide in the generator. Every
function writes new files (tests/data is only read).
"""

from __future__ import annotations

import json
import shutil
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.feather as feather
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

DATA = Path(__file__).resolve().parents[1] / "data"

#: One real file per transfer syntax (and layout) in tests/data.
SAMPLES = {
    "implicit-vr-le": "mr-rider-neuro/*/*/*sag 3d gre*/1-010.dcm",
    "explicit-vr-le": "mr-rider-neuro/*/*/*ax 5 flip*/1-08.dcm",
    "enhanced-mr": "mr-enhanced-molli/IM_0001",
    "jpeg-lossless": "ct-skull-jpeg-lossless/I95",
    "rle-lossless": "us-palette-color/0020.DCM",
}


def sample(name: str) -> Path:
    """The real file of tests/data for a :data:`SAMPLES` key."""
    return sorted(DATA.glob(SAMPLES[name]))[0]


def copy_sample(name: str, folder: Path, filename: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (filename or f"{name}.dcm")
    shutil.copyfile(sample(name), target)
    return target


# ----------------------------------------------------------------- layout


@dataclass(frozen=True)
class Layout:
    """Byte positions in a Part 10 file: end of the meta group, the Pixel Data
    element, its value, the end of the value (after the sequence delimiter when
    encapsulated) and the file size."""

    meta_end: int
    pixel_element: int
    pixel_value: int
    pixel_end: int
    size: int
    encapsulated: bool


def layout(path: Path) -> Layout:
    data = path.read_bytes()
    (group_length,) = struct.unpack("<I", data[140:144])
    meta_end = 144 + group_length
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, defer_size=64)
    raw = ds._dict[Tag(0x7FE00010)]
    implicit = ds.original_encoding[0]
    value = raw.value_tell
    element = value - (8 if implicit else 12)
    if raw.length != 0xFFFFFFFF:
        return Layout(meta_end, element, value, value + raw.length, len(data), False)
    pos = value
    while True:  # items until the sequence delimiter
        group, elem, length = struct.unpack("<HHI", data[pos : pos + 8])
        pos += 8
        if (group, elem) == (0xFFFE, 0xE0DD):
            return Layout(meta_end, element, value, pos, len(data), True)
        pos += length


def cut_points(path: Path) -> dict[str, int]:
    """Where to cut a file: inside the preamble, the meta group, the dataset, the
    Pixel Data element header, the pixel data, and just before its end."""
    lay = layout(path)
    return {
        "preamble": 64,
        "meta": (132 + lay.meta_end) // 2,
        "dataset": (lay.meta_end + lay.pixel_element) // 2,
        "pixel-header": lay.pixel_element + 6,
        "pixel-data": (lay.pixel_value + lay.pixel_end) // 2,
        # encapsulated: every fragment complete, the sequence delimiter missing
        "before-end": lay.pixel_end - 8 if lay.encapsulated else lay.pixel_end - 2,
    }


def truncate(source: Path, target: Path, at: int) -> Path:
    target.write_bytes(source.read_bytes()[:at])
    return target


# ----------------------------------------------------------------- elements


def with_raw(source: Path, target: Path, elements: dict[int, tuple[str, bytes]]) -> Path:
    """A copy of an Explicit VR file with some top-level elements set to raw bytes
    (values pydicom would refuse to encode: IS 2**64, "-3" frames, text in DS)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(source)
        for tag, (vr, raw) in elements.items():
            if len(raw) % 2:
                raw += b" "
            ds._dict[Tag(tag)] = RawDataElement(Tag(tag), vr, len(raw), raw, 0, False, True)
        ds.save_as(target)
    return target


def with_transfer_syntax(source: Path, target: Path, uid: str) -> Path:
    """A copy whose meta group claims ``uid`` while the dataset bytes stay as they are."""
    data = source.read_bytes()
    (group_length,) = struct.unpack("<I", data[140:144])
    end = 144 + group_length
    pos, meta = 144, b""
    while pos < end:
        group, elem, vr = struct.unpack("<HH2s", data[pos : pos + 6])
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT", b"UC", b"UR"):
            (length,) = struct.unpack("<I", data[pos + 8 : pos + 12])
            head = 12
        else:
            (length,) = struct.unpack("<H", data[pos + 6 : pos + 8])
            head = 8
        element = data[pos : pos + head + length]
        if (group, elem) == (0x0002, 0x0010):
            value = uid.encode() + (b"\0" if len(uid) % 2 else b"")
            element = struct.pack("<HH2sH", 2, 0x10, b"UI", len(value)) + value
        meta += element
        pos += head + length
    length_element = struct.pack("<HH2sHI", 2, 0, b"UL", 4, len(meta))
    target.write_bytes(data[:132] + length_element + meta + data[end:])
    return target


def with_implicit_dataset(source: Path, target: Path) -> Path:
    """The reverse mismatch: the meta group says Explicit VR, the dataset is Implicit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(source)
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        ds.save_as(target, enforce_file_format=True)
    return with_transfer_syntax(target, target, str(pydicom.uid.ExplicitVRLittleEndian))


def pixels(path: Path):
    """The reference pixels of a single-frame file, as pydicom decodes them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path).pixel_array


# ----------------------------------------------------------------- index files


def pointer(location: Path) -> dict:
    return json.loads((location / "index.json").read_text())


def data_file(location: Path, kind: str = "index") -> Path:
    return location / pointer(location)["files"][kind]["name"]


def flip_bit(path: Path, position: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    at = int(len(data) * position)
    data[at] ^= 0x10
    path.write_bytes(bytes(data))


def rewrite_table(location: Path, kind: str, change: Callable[[pa.Table], pa.Table]) -> None:
    """Replace a data file by ``change(table)`` and update the pointer's checksum,
    as a buggy (or another) writer would: the file is consistent but wrong."""
    path = data_file(location, kind)
    table = change(feather.read_table(path))
    sink = pa.BufferOutputStream()
    feather.write_feather(table, sink, compression="uncompressed")
    data = sink.getvalue().to_pybytes()
    path.write_bytes(data)
    meta = pointer(location)
    meta["files"][kind].update(size=len(data), crc32=zlib.crc32(data))
    (location / "index.json").write_text(json.dumps(meta))


def set_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, values)


def leftovers(location: Path) -> list[str]:
    """Files of unfinished saves and writes in an index folder."""
    names = set(p.name for p in location.iterdir())
    referenced = set()
    if "index.json" in names:
        referenced = {f["name"] for f in pointer(location)["files"].values()}
    return sorted(
        n for n in names
        if n.endswith(".tmp") or n.startswith("writing-") or n.startswith(".new-")
        or (n.endswith(".arrow") and n not in referenced)
    )
