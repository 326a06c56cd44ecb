"""A measured fast path for reading the common DICOM header.

Why a hand-written walker exists
--------------------------------
Indexing a folder parses every header once. pydicom's ``read_partial`` builds a
``Dataset`` of every element, parses undefined-length sequences eagerly, and
converts values through its general machinery; on the RIDER MR files that
costs ~1 ms per file, while a ``struct`` walk that only *skips* over the
elements it does not need and converts the ~80 wanted ones costs a fraction of
that (see ``design.md``, "Facts measured here", consequence (3)).

pydicom stays the authority. This module handles only the common case --
128-byte preamble + ``DICM``, an Explicit VR Little Endian file meta group,
then an Implicit or Explicit VR Little Endian (not deflated, not big endian)
dataset without Functional Groups sequences -- and converts only the value
representations whose pydicom conversion it reproduces exactly (the tests
cross-check both paths on real and synthetic files). Whenever anything is
unusual (other transfer syntaxes, a VR the walker does not know, a length
running past the end of the file, a command set, enhanced multi-frame
functional groups, a mismatch between the transfer syntax and the encoding
found, ...) ``read_fast`` returns ``None`` and the caller uses pydicom.
Single values it cannot convert exactly (other character sets, ambiguous VRs
in implicit VR, private tags in implicit VR, ``UN``, ``AT``, malformed numbers)
are converted by pydicom itself from the raw bytes found here.

Memory: the file's head is read with ``os.pread`` or a ranged read (8 KiB,
doubled on demand),
never beyond the file's size, so a bogus length can never make it allocate
more than the file holds.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydicom import config
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import BaseTag
from pydicom.uid import PrivateTransferSyntaxes

from .tags import Attribute, plain_value

try:  # pydicom adds 65536 to a negative first value of these (hooks.raw_element_value)
    from pydicom.hooks import _LUT_DESCRIPTOR_TAGS as _LUT_DESCRIPTORS
except ImportError:  # pragma: no cover - private name moved: be conservative
    _LUT_DESCRIPTORS = {0x00281101, 0x00281102, 0x00281103, 0x00283002, 0x00289422}  # type: ignore[assignment]

__all__ = [
    "FastHeader",
    "Plan",
    "plan_for",
    "read_fast",
    "plain",
    "convert_fast",
    "ends_inside_element",
    "FALLBACK",
    "ReadAt",
    "reader_of",
]

_HEAD = 8 * 1024  # first read (most headers end before; 64 KiB costs 5 us more)
_UNDEFINED = 0xFFFFFFFF
_MAX_DEPTH = 16  # nesting of undefined-length sequences we walk before giving up


def _swap(tag: int) -> int:
    """A tag as ``struct.unpack('<I')`` reads it: element in the high half."""
    return ((tag & 0xFFFF) << 16) | (tag >> 16)


# Tags are compared in their "swapped" little-endian form so one '<I' unpack
# gives a dictionary key without shifting group and element.
_ITEM = _swap(0xFFFEE000)
_ITEM_DELIM = _swap(0xFFFEE00D)
_SEQ_DELIM = _swap(0xFFFEE0DD)
_PIXEL = {_swap(t): t for t in (0x7FE00010, 0x7FE00008, 0x7FE00009)}
_FUNCTIONAL_GROUPS = {_swap(0x52009229), _swap(0x52009230)}
_CHARSET = _swap(0x00080005)
_TS_SWAPPED = _swap(0x00020010)
_SPECIAL = frozenset(_PIXEL) | _FUNCTIONAL_GROUPS | {_ITEM_DELIM}

#: VRs with a 2-byte reserved field and a 4-byte length in explicit VR.
_LONG_VR = frozenset(
    v.encode()
    for v in ("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV")
)
_SHORT_VR = frozenset(
    v.encode()
    for v in (
        "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "PN",
        "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US",
    )
)
_ALL_VR = _LONG_VR | _SHORT_VR
_HEADER_SIZE = {**dict.fromkeys(_LONG_VR, 12), **dict.fromkeys(_SHORT_VR, 8)}

_HDR_EXPLICIT = struct.Struct("<I2sH").unpack_from  # swapped tag, VR, 16-bit length
_HDR_IMPLICIT = struct.Struct("<II").unpack_from  # swapped tag, 32-bit length
_U32 = struct.Struct("<I").unpack_from

#: Python codecs for the character sets decoded here; any other
#: (0008,0005) value sends text values to pydicom.
_CHARSETS = {
    b"": "latin_1", b"ISO_IR 6": "latin_1", b"ISO_IR 100": "latin_1", b"ISO_IR 192": "utf_8"
}

_IMPLICIT_TS = "1.2.840.10008.1.2"
_UNSUPPORTED_TS = {"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}  # big endian, deflate

FALLBACK: Any = object()  # "let pydicom convert this value"


class _Bail(Exception):
    """The walker met something it does not handle; pydicom takes over."""


class _Truncated(_Bail):
    """The walk ran past the end of the file: an element is cut short."""


# ---------------------------------------------------------------------------
# value conversion, reproducing ``plain_value(pydicom value)`` exactly


def _norm(x: Any) -> Any:
    if type(x) in (int, float, str, bool) or x is None:
        return x
    if isinstance(x, bool):
        return bool(x)
    if isinstance(x, int):  # pydicom IS
        return int(x)
    if isinstance(x, float):  # ISfloat, DSfloat
        return float(x)
    if isinstance(x, str):  # UID
        return str(x)
    return x


def plain(value: Any) -> Any:
    """``lazydicom.tags.plain_value`` with pydicom's number/UID subclasses made plain.

    ``plain_value`` keeps pydicom's ``IS`` (an ``int`` subclass) and ``UID``
    items in multi-valued elements, and turns pydicom 3 sequences into their
    repr text; the index wants exact builtin types and None for sequences,
    so both header paths give identical rows.
    """
    if isinstance(value, DicomSequence):
        # plain_value documents "sequences are not plain values (None)" but
        # pydicom 3's Sequence is no MultiValue/list, so it would give repr text
        return None
    out = plain_value(value)
    t = type(out)
    if t is tuple:
        if all(type(x) in (int, float, str) for x in out):
            return out
        return tuple(_norm(x) for x in out)
    if t in (int, float, str) or out is None:
        return out
    return _norm(out)


_IS_EXACT = 2**53  # IS values beyond this differ from float(value): pydicom makes ISfloat


def _pn(text: str) -> str:
    # str(PersonName(text)): components split on '=', trailing empty ones dropped
    if "=" not in text:
        return text
    comps = text.split("=")
    while comps and not comps[-1]:
        comps.pop()
    return "=".join(comps)


def _cs(raw: bytes, encoding: str | None) -> Any:
    # CS, AS, DA, TM, DT (pydicom convert_string / multi_string)
    s = raw.decode("latin_1").rstrip(" \x00")
    if "\\" in s:
        return tuple(s.split("\\"))
    return s.strip() or None


def _ui(raw: bytes, encoding: str | None) -> Any:
    s = raw.decode("latin_1").rstrip("\x00 ")
    if "\\" in s:
        return tuple(x.strip() for x in s.split("\\"))  # UID() strips each item
    return s.strip() or None


def _ds(raw: bytes, encoding: str | None) -> Any:
    # pydicom: multi_string(text.strip(), DSfloat); DSfloat(item) is float(item),
    # except that blank items stay strings; a ValueError makes pydicom retry
    # other VRs, which we leave to pydicom.
    s = raw.decode("latin_1").strip().rstrip(" \x00")
    try:
        if "\\" not in s:
            return float(s) if s else None
        parts = s.split("\\")
        try:
            return tuple(map(float, parts))
        except ValueError:  # blank items?
            return tuple([float(x) if x.strip() else x for x in parts])
    except ValueError:
        return FALLBACK


def _is(raw: bytes, encoding: str | None) -> Any:
    # pydicom: multi_string(text, IS); IS(item) is int(item) for integer
    # strings, blank items stay strings; anything else (floats such as "1.0",
    # huge numbers, junk) is left to pydicom.
    s = raw.decode("latin_1").rstrip(" \x00")
    try:
        if "\\" not in s:
            if not s:
                return None
            v = int(s)
            return v if -_IS_EXACT < v < _IS_EXACT else FALLBACK
        parts = s.split("\\")
        try:
            out = tuple(map(int, parts))
        except ValueError:  # blank items?
            out = tuple([int(x) if x.strip() else x for x in parts])  # type: ignore[misc]
    except ValueError:
        return FALLBACK
    for v in out:
        if v.__class__ is int and not -_IS_EXACT < v < _IS_EXACT:
            return FALLBACK
    return out


def _text(raw: bytes, encoding: str | None) -> Any:
    # SH, LO, UC: multi-valued text (pydicom convert_text)
    if encoding is None or b"\x1b" in raw:
        return FALLBACK
    try:
        s = raw.decode(encoding)
    except UnicodeDecodeError:
        return FALLBACK
    if "\\" in s:
        return tuple(x.rstrip("\x00 ") for x in s.split("\\"))
    return s.rstrip("\x00 ").strip() or None


def _single_text(raw: bytes, encoding: str | None) -> Any:
    # ST, LT, UT: one value, backslash allowed (pydicom convert_single_string)
    if encoding is None or b"\x1b" in raw:
        return FALLBACK
    try:
        s = raw.decode(encoding)
    except UnicodeDecodeError:
        return FALLBACK
    return s.rstrip("\x00 ").strip() or None


def _person_name(raw: bytes, encoding: str | None) -> Any:
    if encoding is None or b"\x1b" in raw:
        return FALLBACK
    try:
        s = raw.rstrip(b"\x00 ").decode(encoding)
    except UnicodeDecodeError:
        return FALLBACK
    if "\\" in s:
        return tuple(_pn(x) for x in s.split("\\"))
    return _pn(s).strip() or None


def _ae(raw: bytes, encoding: str | None) -> Any:
    items = [x.strip() for x in raw.decode("latin_1").split("\\")]
    if len(items) == 1:
        return items[0] or None
    return tuple(items)


def _ur(raw: bytes, encoding: str | None) -> Any:
    return raw.decode("latin_1").strip() or None


def _bytes(raw: bytes, encoding: str | None) -> Any:
    return plain_value(raw)


def _sequence(raw: bytes, encoding: str | None) -> Any:
    return None


def _numbers(fmt: str) -> Any:
    size = struct.calcsize("<" + fmt)
    one = struct.Struct("<" + fmt).unpack

    def convert(raw: bytes, encoding: str | None) -> Any:
        n, rest = divmod(len(raw), size)
        if rest:
            return FALLBACK  # pydicom raises, then retries other VRs
        if n == 1:
            return one(raw)[0]
        return struct.unpack(f"<{n}{fmt}", raw)

    return convert


_CONVERTERS: dict[bytes, Any] = {
    b"CS": _cs, b"AS": _cs, b"DA": _cs, b"TM": _cs, b"DT": _cs,
    b"UI": _ui, b"DS": _ds, b"IS": _is,
    b"SH": _text, b"LO": _text, b"UC": _text,
    b"ST": _single_text, b"LT": _single_text, b"UT": _single_text,
    b"PN": _person_name, b"AE": _ae, b"UR": _ur,
    b"OB": _bytes, b"OW": _bytes, b"OD": _bytes, b"OF": _bytes, b"OL": _bytes, b"OV": _bytes,
    b"SQ": _sequence,
    b"US": _numbers("H"), b"SS": _numbers("h"), b"UL": _numbers("L"), b"SL": _numbers("l"),
    b"FL": _numbers("f"), b"FD": _numbers("d"), b"SV": _numbers("q"), b"UV": _numbers("Q"),
}  # UN, AT and ambiguous VRs are left to pydicom


def convert_fast(vr: bytes, raw: bytes, encoding: str | None) -> Any:
    """Convert one element's raw value like ``plain(pydicom value)`` would.

    Parameters
    ----------
    vr : bytes
        The two-letter VR (``b"DS"``).
    raw : bytes
        The value bytes (little endian).
    encoding : str or None
        Python codec for text VRs, None when pydicom must decode text.

    Returns
    -------
    object
        The plain value, or ``FALLBACK`` when pydicom must convert it.
    """
    if not raw:
        return None  # pydicom's empty value for every VR is plain None
    convert = _CONVERTERS.get(vr)
    if convert is None:
        return FALLBACK
    return convert(raw, encoding)


# ---------------------------------------------------------------------------
# what to look for


@dataclass(frozen=True)
class Plan:
    """The wanted attributes of one call, precomputed once per attribute list.

    Attributes
    ----------
    attrs : tuple of Attribute
        The non-derived attributes, in column order.
    columns : tuple of str
        Row keys in the order ``{a.column: ... for a in attrs}`` creates them.
    wanted : dict
        Swapped tag -> (tag, dictionary VR as bytes or None, converter for
        implicit VR or None when pydicom converts it). Tags in
        ``always_pydicom`` are converted by pydicom in every encoding.
    by_tag : dict
        Tag -> its columns.
    simple : bool
        True when every column comes from one tag and every tag gives one
        column (the usual case).
    column_of : dict
        Tag -> its column, for simple plans.
    """

    attrs: tuple[Attribute, ...]
    columns: tuple[str, ...]
    wanted: dict[int, tuple[int, bytes | None, Any]]
    always_pydicom: frozenset[int]
    by_tag: dict[int, tuple[str, ...]]
    simple: bool
    column_of: dict[int, str]


def _dictionary_vr(tag: int) -> bytes | None:
    if (tag >> 16) % 2:  # private: pydicom resolves these with the creator
        return None
    try:
        vr = str(dictionary_VR(tag))
    except KeyError:
        return None
    vr_b = vr.encode()
    return vr_b if vr_b in _ALL_VR else None  # "US or SS" etc. -> pydicom


@lru_cache(maxsize=64)
def plan_for(attrs: tuple[Attribute, ...]) -> Plan:
    """Precompute lookups for a tuple of (non-derived) attributes."""
    columns = tuple(dict.fromkeys(a.column for a in attrs))
    by_tag: dict[int, list[str]] = {}
    column_tags: dict[str, set[int]] = {}
    for a in attrs:
        by_tag.setdefault(a.tag, [])  # type: ignore[arg-type]
        if a.column not in by_tag[a.tag]:  # type: ignore[index]
            by_tag[a.tag].append(a.column)  # type: ignore[index]
        column_tags.setdefault(a.column, set()).add(a.tag)  # type: ignore[arg-type]
    always = frozenset(_swap(t) for t in by_tag if t in _LUT_DESCRIPTORS)

    def entry(t: int) -> tuple[int, bytes | None, Any]:
        vr = _dictionary_vr(t)
        implicit_converter = None if vr is None or _swap(t) in always else _CONVERTERS.get(vr)
        return (t, vr, implicit_converter)

    wanted = {_swap(t): entry(t) for t in by_tag if t >> 16 != 2}
    # presence of these decides "no DICOM attributes found", as in header._rows
    # (and the character set is needed to decode text)
    for t in (0x00080016, 0x00100020, 0x00280010, 0x00080005):
        if _swap(t) not in wanted:
            wanted[_swap(t)] = entry(t)
    simple = all(len(tags) == 1 for tags in column_tags.values()) and all(
        len(c) == 1 for c in by_tag.values()
    )
    return Plan(
        tuple(attrs),
        columns,
        wanted,
        always,
        {t: tuple(c) for t, c in by_tag.items()},
        simple,
        {t: c[0] for t, c in by_tag.items() if len(c) == 1},
    )


def _config_ok() -> bool:
    """The fast path does not validate values, so it steps aside when pydicom must.

    pydicom's value-type settings (datetime_conversion, DS as Decimal or numpy,
    which other packages such as dbdicom switch on for the whole process) do not
    matter: both paths store the same plain values (see ``tags.plain_value``).
    """
    return config.settings.reading_validation_mode != config.RAISE


# ---------------------------------------------------------------------------
# the walker


#: ``read_at(offset, n)``: up to ``n`` bytes of a file at ``offset`` (fewer only at its end).
ReadAt = Callable[[int, int], bytes]


def reader_of(source: int | ReadAt) -> ReadAt:
    """A ``read_at`` callable for an open file descriptor (positioned reads) or a callable."""
    if isinstance(source, int):
        fd = source
        return lambda offset, n: os.pread(fd, n, offset)
    return source


class _Buffer:
    """The file's head, read with ``read_at`` and grown on demand (never past EOF).

    ``read_at`` is a positioned read of a local file (``os.pread``) or a
    ranged read of an object in a store (``lazydicom.objectstore``); either
    way the walk asks for the head once and for more only when the header
    runs past what it holds.
    """

    __slots__ = ("read_at", "size", "buf")

    def __init__(self, source: int | ReadAt, size: int) -> None:
        self.read_at = read_at = reader_of(source)
        self.size = size
        self.buf = read_at(0, min(size, _HEAD))
        if len(self.buf) != min(size, _HEAD):
            raise _Truncated("short read")

    def need(self, end: int) -> bytes:
        """Make ``buf`` cover ``[0, end)``; bail when ``end`` is past the file."""
        have = len(self.buf)
        if end <= have:
            return self.buf
        if end > self.size:
            raise _Truncated("past end of file")
        new = min(self.size, max(end, have * 2))
        more = self.read_at(have, new - have)
        if len(more) != new - have:
            raise _Truncated("short read")
        self.buf += more
        return self.buf


def _is_vr_byte(b: int) -> bool:
    return 0x40 < b < 0x5B  # as pydicom's _is_implicit_vr


def _skip_sequence(r: _Buffer, pos: int, implicit: bool, depth: int) -> int:
    """Skip an undefined-length value made of items; return the position after it."""
    if depth > _MAX_DEPTH:
        raise _Bail("sequences nested too deep")
    while True:
        buf = r.need(pos + 8)
        stag, length = _HDR_IMPLICIT(buf, pos)
        pos += 8
        if stag == _ITEM:
            if length == _UNDEFINED:
                pos = _skip_item(r, pos, implicit, depth + 1)
            else:
                pos += length
                if pos > r.size:
                    raise _Truncated("item past end of file")
        elif stag == _SEQ_DELIM:
            return pos
        else:
            raise _Bail("unexpected tag in sequence")


def _skip_item(r: _Buffer, pos: int, implicit: bool, depth: int) -> int:
    """Skip the elements of an undefined-length item; return the position after it."""
    buf = r.need(pos + 8)
    if not implicit and _HDR_IMPLICIT(buf, pos)[0] != _ITEM_DELIM:
        # like pydicom, an item of an explicit VR sequence may be implicit VR
        implicit = not (_is_vr_byte(buf[pos + 4]) and _is_vr_byte(buf[pos + 5]))
    while True:
        buf = r.need(pos + 8)
        if implicit:
            stag, length = _HDR_IMPLICIT(buf, pos)
            if stag == _ITEM_DELIM:
                return pos + 8
            pos += 8
        else:
            stag, vr, length = _HDR_EXPLICIT(buf, pos)
            if stag == _ITEM_DELIM:
                return pos + 8
            if vr in _LONG_VR:
                buf = r.need(pos + 12)
                length = _U32(buf, pos + 8)[0]
                pos += 12
            elif vr in _SHORT_VR:
                pos += 8
            else:
                raise _Bail("unknown VR in item")
        if length == _UNDEFINED:
            pos = _skip_sequence(r, pos, implicit, depth + 1)
        else:
            pos += length
            if pos > r.size:
                raise _Truncated("element past end of file")


@dataclass
class FastHeader:
    """What ``read_fast`` found.

    Attributes
    ----------
    base : dict
        Column -> plain value for every planned column (None when absent).
    transfer_syntax : str
    implicit : bool
    pixel : dict
        ``tag``, ``vr``, ``length``, ``element_start`` of the pixel data element
        (as ``header._read_dataset`` reports it), empty when there is none.
    has_identity : bool
        True when SOPClassUID, PatientID or Rows is present.
    """

    base: dict[str, Any]
    transfer_syntax: str
    implicit: bool
    pixel: dict[str, Any]
    has_identity: bool


def _read_meta(r: _Buffer) -> tuple[str, int]:
    """Parse the file meta group (explicit VR LE); return (transfer syntax, end)."""
    buf = r.buf
    if len(buf) < 144 or buf[128:132] != b"DICM":
        raise _Bail("no preamble")
    pos = 132
    ts: str | None = None
    header_size = _HEADER_SIZE
    while True:
        if pos + 12 > len(buf):
            buf = r.need(pos + 8)
        stag, vr, length = _HDR_EXPLICIT(buf, pos)
        if stag & 0xFFFF != 0x0002:
            break
        hdr = header_size.get(vr)
        if hdr is None:
            raise _Bail("implicit or unknown VR in file meta")
        if hdr == 12:
            buf = r.need(pos + 12)
            length = _U32(buf, pos + 8)[0]
            if length == _UNDEFINED:
                raise _Bail("undefined length in file meta")
        vpos = pos + hdr
        pos = vpos + length
        if stag == _TS_SWAPPED:
            if vr != b"UI":
                raise _Bail("odd transfer syntax VR")
            buf = r.need(pos)
            ts = buf[vpos:pos].decode("latin_1").rstrip("\x00 ").strip()
    if not ts or "\\" in ts:
        raise _Bail("no transfer syntax")
    return ts, pos


def read_fast(source: int | ReadAt, size: int, plan: Plan) -> FastHeader | None:
    """Read the header of an open file on the fast path, or None to use pydicom.

    Parameters
    ----------
    source : int or callable
        An open file descriptor (read with ``os.pread``; its offset is
        untouched), or ``read_at(offset, n)`` returning the file's bytes.
    size : int
        The file's size in bytes.
    plan : Plan
        From ``plan_for``.

    Returns
    -------
    FastHeader or None
        None whenever the file is not the common case handled here.
    """
    if size < 144 or not _config_ok():
        return None
    try:
        r = _Buffer(source, size)
        ts, pos = _read_meta(r)
        if ts in _UNSUPPORTED_TS or ts in PrivateTransferSyntaxes:
            return None
        implicit = ts == _IMPLICIT_TS
        found, pixel, end = _walk(r, pos, implicit, plan.wanted, False)
        r.need(end)
        return _build(r, plan, ts, implicit, pos, found, pixel)
    except _Bail:
        return None
    except (struct.error, IndexError, ValueError, UnicodeDecodeError):
        return None


def ends_inside_element(source: int | ReadAt, size: int) -> bool:
    """True when the top-level dataset of a Part 10 file (Little Endian) is cut
    inside an element (its header, value or sequence items run past the end).

    False when the walk reaches the end of the file on an element boundary or
    reaches Pixel Data, and when the file is not one the walker can judge
    (no preamble, big endian, deflated, unusual structure): pydicom's
    reading is then taken as it is.
    """
    try:
        r = _Buffer(source, size)
        ts, pos = _read_meta(r)
        if ts in _UNSUPPORTED_TS or ts in PrivateTransferSyntaxes:
            return False
        _walk(r, pos, ts == _IMPLICIT_TS, {}, True)
    except _Truncated:
        return True
    except (_Bail, struct.error, IndexError, ValueError, UnicodeDecodeError):
        return False
    return False


def _walk(
    r: _Buffer, pos: int, implicit: bool, wanted: dict, collect_all: bool
) -> tuple[dict[int, tuple[bytes | None, int, int]], dict[str, Any], int]:
    """Walk the top-level dataset from ``pos`` to the pixel data or end of file.

    Returns the (VR, value position, length) of wanted elements (of every
    defined-length element with ``collect_all``), the pixel data element and
    the end of the last value found.
    """
    size = r.size
    found: dict[int, tuple[bytes | None, int, int]] = {}
    pixel: dict[str, Any] = {}
    if pos + 8 > size:
        raise _Bail("no dataset")
    buf = r.need(pos + 8)
    # pydicom checks the first element's VR bytes and switches encoding
    # (with a warning) when they disagree with the transfer syntax
    looks_implicit = not (_is_vr_byte(buf[pos + 4]) and _is_vr_byte(buf[pos + 5]))
    if looks_implicit != implicit:
        raise _Bail("encoding differs from transfer syntax")
    if _HDR_IMPLICIT(buf, pos)[0] & 0xFFFF == 0:
        raise _Bail("command set")
    # locals: this loop runs once per top-level element
    special = _SPECIAL  # pixel data and functional groups
    header_size = _HEADER_SIZE
    unpack = _HDR_IMPLICIT if implicit else _HDR_EXPLICIT
    u32 = _U32
    undefined = _UNDEFINED
    end = 0
    have = len(buf)
    vr: bytes | None = None
    while True:
        if pos + 12 > have:
            if pos + 8 > size:
                if pos == size:
                    break  # clean end of file: no pixel data
                raise _Truncated("truncated element header")
            buf = r.need(min(pos + 12, size))
            have = len(buf)
        if implicit:
            stag, length = unpack(buf, pos)
            vpos = pos + 8
        else:
            stag, vr, length = unpack(buf, pos)
            hdr = header_size.get(vr)
            if hdr is None:
                raise _Bail("unknown VR")
            if hdr == 12:
                length = u32(buf, pos + 8)[0]
            vpos = pos + hdr
        if stag in special:
            if stag in _PIXEL:
                pixel = {
                    "tag": _PIXEL[stag],
                    "vr": None if vr is None else vr.decode(),
                    "length": length,
                    "element_start": pos,
                }
                break
            if not (collect_all and stag in _FUNCTIONAL_GROUPS):
                # functional groups: pydicom flattens them; an item delimiter
                # at the top level ends pydicom's dataset early
                raise _Bail("functional groups or a delimiter at top level")
        if length == undefined:
            if stag in (_ITEM, _ITEM_DELIM, _SEQ_DELIM):
                raise _Bail("delimiter at top level")
            if vr is not None and vr not in (b"SQ", b"UN"):
                raise _Bail("undefined length non-sequence")
            if stag in wanted and not collect_all and implicit and wanted[stag][1] != b"SQ":
                raise _Bail("undefined length on a wanted non-sequence")
            pos = _skip_sequence(r, vpos, implicit, 0)
            buf = r.buf
            have = len(buf)
            if stag in wanted:
                found[stag] = (b"SQ", -1, 0)
            continue
        pos = vpos + length
        if pos > size:
            raise _Truncated("value past end of file")
        if collect_all or stag in wanted:
            found[stag] = (vr, vpos, length)
            end = pos
    return found, pixel, end


def _build(
    r: _Buffer,
    plan: Plan,
    ts: str,
    implicit: bool,
    start: int,
    found: dict[int, tuple[bytes | None, int, int]],
    pixel: dict[str, Any],
) -> FastHeader:
    """Convert the wanted elements found into a row base."""
    encoding: str | None = "latin_1"
    charset = found.get(_CHARSET)
    if charset is not None and charset[1] >= 0:
        cs_vr, cs_pos, cs_len = charset
        cs_raw = r.need(cs_pos + cs_len)[cs_pos : cs_pos + cs_len].rstrip(b" \x00")
        encoding = _CHARSETS.get(cs_raw)
    values: dict[int, Any] = {}
    fallback: list[int] = []
    wanted = plan.wanted
    always = plan.always_pydicom
    converters = _CONVERTERS
    buf = r.buf  # covers every value found (read_fast called r.need)
    for stag, (vr, vpos, length) in found.items():
        tag, dict_vr, convert = wanted[stag]
        if vr == b"SQ" or not length:
            values[tag] = None
            continue
        if not implicit:
            convert = None if stag in always else converters.get(vr)  # type: ignore[arg-type]
        if convert is None:
            fallback.append(stag)
            continue
        value = convert(buf[vpos : vpos + length], encoding)
        if value is FALLBACK:
            fallback.append(stag)
        else:
            values[tag] = value
    if fallback:
        values.update(_pydicom_values(r, start, implicit, fallback, wanted))
    if plan.simple:
        base = dict.fromkeys(plan.columns)
        columns = plan.column_of
        for tag, value in values.items():
            column = columns.get(tag)
            if column is not None:
                base[column] = value
    else:
        base = {a.column: values.get(a.tag) for a in plan.attrs}  # type: ignore[arg-type]
    has_identity = any(_swap(t) in found for t in (0x00080016, 0x00100020, 0x00280010))
    return FastHeader(base, ts, implicit, pixel, has_identity)


def _pydicom_values(
    r: _Buffer, start: int, implicit: bool, stags: list[int], wanted: dict
) -> dict[int, Any]:
    """Let pydicom convert some values, from a Dataset of the raw top-level elements.

    The dataset holds every defined-length top-level element so that
    pydicom's context-dependent conversions (character sets, private
    creators, VRs that depend on Pixel Representation) see what they would
    see in a full read.
    """
    everything, _, end = _walk(r, start, implicit, wanted, True)
    r.need(end)
    raw: dict[BaseTag, RawDataElement] = {}
    for stag, (vr, vpos, length) in everything.items():
        if vpos < 0:
            continue
        tag = BaseTag(_swap(stag))
        vr_s = None if vr is None else vr.decode()
        if length:
            value: bytes | None = r.need(vpos + length)[vpos : vpos + length]
        else:
            value = empty_value_for_VR(vr_s, raw=True)  # type: ignore[assignment]
        raw[tag] = RawDataElement(tag, vr_s, length, value, vpos, implicit, True)
    ds = Dataset(raw)  # type: ignore[arg-type]
    ds.set_original_encoding(implicit, True, ds._character_set)
    out: dict[int, Any] = {}
    for stag in stags:
        tag = wanted[stag][0]
        try:
            out[tag] = plain(ds[tag].value) if tag in ds else None
        except Exception:  # noqa: BLE001 - as header._get: malformed value -> absent
            out[tag] = None
    return out
