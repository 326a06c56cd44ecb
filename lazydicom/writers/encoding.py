"""Bytes of a single-frame DICOM file: Explicit VR Little Endian, one element at a time.

A written file is a header shared by every frame of a call (encoded once by
pydicom), a few elements that differ per frame (UIDs, instance number,
coordinates, geometry, pixel description), and the pixel data. Encoding the
whole dataset with ``pydicom.dcmwrite`` for every frame costs milliseconds;
here the shared elements are encoded once into ``{tag: bytes}`` and each
frame encodes only its own elements, with a small encoder for the simple value
representations used per frame and pydicom for anything else. The tests check
the result byte for byte against ``pydicom.dcmwrite`` of the same dataset.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Set
from typing import Any

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import correct_ambiguous_vr, write_data_element
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

__all__ = [
    "IMPLEMENTATION_UID",
    "IMPLEMENTATION_VERSION",
    "encode_element",
    "encode_dataset",
    "file_bytes",
    "pixel_data_header",
    "split_elements",
    "text_value",
]

#: Implementation Class UID of files written by lazydicom (deterministic).
IMPLEMENTATION_UID = str(generate_uid(entropy_srcs=["lazydicom writers"]))
IMPLEMENTATION_VERSION = "LAZYDICOM_010"

_LONG = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
_TEXT = {
    "AE",
    "AS",
    "CS",
    "DA",
    "DS",
    "DT",
    "IS",
    "LO",
    "LT",
    "PN",
    "SH",
    "ST",
    "TM",
    "UC",
    "UI",
    "UR",
    "UT",
}
_BINARY = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}


def _element(tag: int, vr: str, value: bytes) -> bytes:
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode("ascii")
    if vr in _LONG:
        return head + struct.pack("<HI", 0, len(value)) + value
    if len(value) > 0xFFFF:
        raise ValueError(f"value of ({tag >> 16:04X},{tag & 0xFFFF:04X}) is too long for {vr}")
    return head + struct.pack("<H", len(value)) + value


def _pydicom_bytes(elem: DataElement | RawDataElement, encodings: Any = None) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_data_element(fp, elem, encodings)
    return fp.getvalue()


def encode_element(tag: int, vr: str, value: Any) -> bytes:
    """Encode one element (Explicit VR Little Endian).

    ``value`` is ``None`` (empty), a ``str`` (multiple values joined by
    backslashes) or a list of str for text VRs, numbers or lists of numbers for
    binary VRs, ``bytes`` for OB/OW. Non-ASCII text and other VRs are encoded
    by pydicom.
    """
    if value is None or (isinstance(value, list | tuple) and not value):
        return _element(tag, vr, b"")
    if vr in _TEXT:
        text = value if isinstance(value, str) else "\\".join(str(v) for v in value)
        try:
            raw = text.encode("ascii")
        except UnicodeEncodeError:
            return _pydicom_bytes(DataElement(tag, vr, value), ["ISO_IR 192"])
        if len(raw) % 2:
            raw += b"\x00" if vr == "UI" else b" "
        return _element(tag, vr, raw)
    if vr in _BINARY:
        values = value if isinstance(value, list | tuple) else [value]
        return _element(tag, vr, struct.pack(f"<{len(values)}{_BINARY[vr]}", *values))
    if vr in ("OB", "OW") and isinstance(value, bytes | bytearray):
        raw = bytes(value) + (b"\x00" if len(value) % 2 else b"")
        return _element(tag, vr, raw)
    return _pydicom_bytes(DataElement(tag, vr, value))


def encode_dataset(ds: Dataset, drop: Set[int] = frozenset()) -> dict[int, bytes]:
    """Encode each element of ``ds`` (not its file meta, not pixel data) once.

    Raw elements read from Explicit VR Little Endian files are copied as they
    are; everything else goes through pydicom's element writer (with the
    dataset's character set).
    """
    encodings = ds.get("SpecificCharacterSet") or None
    out: dict[int, bytes] = {}
    corrected = False
    for key, elem in ds._dict.items():  # noqa: SLF001 - keep raw elements unconverted
        tag = int(key)
        if tag in drop or tag >> 16 in (0x0002, 0x7FE0) or tag >> 16 == 0xFFFE:
            continue
        if (
            isinstance(elem, RawDataElement)
            and elem.VR
            and not elem.is_implicit_VR
            and elem.is_little_endian
            and elem.VR != "SQ"
            and elem.length != 0xFFFFFFFF
            and elem.VR not in ("US or SS", "OB or OW", "US or OW", "US or SS or OW")
        ):
            out[tag] = _element(tag, elem.VR, bytes(elem.value or b""))
            continue
        if not corrected:
            correct_ambiguous_vr(ds, True)
            corrected = True
        out[tag] = _pydicom_bytes(ds[tag], encodings)
    return out


def pixel_data_header(nbytes: int) -> bytes:
    """Header of a native (7FE0,0010) OW Pixel Data element of ``nbytes`` bytes."""
    return struct.pack("<HH", 0x7FE0, 0x0010) + b"OW" + struct.pack("<HI", 0, nbytes)


def _meta(sop_class: str, sop_instance: str) -> bytes:
    body = b"".join(
        [
            _element(0x00020001, "OB", b"\x00\x01"),
            encode_element(0x00020002, "UI", sop_class),
            encode_element(0x00020003, "UI", sop_instance),
            encode_element(0x00020010, "UI", str(ExplicitVRLittleEndian)),
            encode_element(0x00020012, "UI", IMPLEMENTATION_UID),
            encode_element(0x00020013, "SH", IMPLEMENTATION_VERSION),
        ]
    )
    return b"\x00" * 128 + b"DICM" + _element(0x00020000, "UL", struct.pack("<I", len(body))) + body


def file_bytes(
    elements: Mapping[int, bytes], sop_class: str, sop_instance: str, pixel_nbytes: int
) -> bytes:
    """Everything of a file up to the pixel data value, elements in tag order."""
    return b"".join(
        [
            _meta(sop_class, sop_instance),
            *(elements[t] for t in sorted(elements)),
            pixel_data_header(pixel_nbytes),
        ]
    )


_VRS = {
    b"AE",
    b"AS",
    b"AT",
    b"CS",
    b"DA",
    b"DS",
    b"DT",
    b"FD",
    b"FL",
    b"IS",
    b"LO",
    b"LT",
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"PN",
    b"SH",
    b"SL",
    b"SQ",
    b"SS",
    b"ST",
    b"SV",
    b"TM",
    b"UC",
    b"UI",
    b"UL",
    b"UN",
    b"UR",
    b"US",
    b"UT",
    b"UV",
}
_LONG_B = {v.encode() for v in _LONG}
_HEAD = struct.Struct("<HH2sH")
_U32 = struct.Struct("<I")
_EXPLICIT_LE = b"1.2.840.10008.1.2.1"


def split_elements(path: str, chunk: int = 8192) -> dict[int, bytes] | None:
    """The encoded elements of a file's dataset up to its pixel data, copied verbatim.

    Only for the common case this writer produces and most scanners write:
    a Part 10 file in Explicit VR Little Endian with defined lengths. Anything
    else returns None and the caller parses the file with pydicom instead.
    """
    head, u32 = _HEAD.unpack_from, _U32.unpack_from
    with open(path, "rb") as f:
        data = f.read(chunk)
        if data[128:132] != b"DICM":
            return None
        pos, size = 132, len(data)
        elements: dict[int, bytes] = {}
        syntax: bytes | None = None
        while True:
            if pos + 12 > size:
                data += f.read(max(chunk, pos + 12 - size))
                if len(data) == size:
                    return None
                size = len(data)
                continue
            group, elem, vr, length = head(data, pos)
            if group == 0x7FE0 and elem == 0x0010:
                return elements if syntax == _EXPLICIT_LE else None
            if vr in _LONG_B:
                length = u32(data, pos + 8)[0]
                start = pos + 12
            elif vr in _VRS:
                start = pos + 8
            else:
                return None
            if length == 0xFFFFFFFF or group == 0xFFFE:
                return None
            end = start + length
            if end > size:
                data += f.read(max(chunk, end - size))
                if len(data) < end:
                    return None
                size = len(data)
            if group == 0x0002:
                if elem == 0x0010:
                    syntax = data[start:end].rstrip(b"\x00 ")
            elif syntax != _EXPLICIT_LE:
                return None
            else:
                elements[group << 16 | elem] = data[pos:end]
            pos = end


def text_value(encoded: bytes) -> str:
    """The text value of an encoded short-VR element (e.g. a UI), padding removed."""
    return encoded[8:].rstrip(b"\x00 ").decode("ascii", "replace")
