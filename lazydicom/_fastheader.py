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
found, ...) :func:`read_fast` returns ``None`` and the caller uses pydicom.
Single values it cannot convert exactly (other character sets, ambiguous VRs
in implicit VR, private tags in implicit VR, ``UN``, ``AT``, malformed numbers)
are converted by pydicom itself from the raw bytes found here.

Memory: the file's head is read with ``os.pread`` (64 KiB, grown on demand),
never beyond the file's size, so a bogus length can never make it allocate
more than the file holds.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydicom import config
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from .tags import Attribute, plain_value

try:  # pydicom adds 65536 to a negative first value of these (hooks.raw_element_value)
    from pydicom.hooks import _LUT_DESCRIPTOR_TAGS as _LUT_DESCRIPTORS
except ImportError:  # pragma: no cover - private name moved: be conservative
    _LUT_DESCRIPTORS = {0x00281101, 0x00281102, 0x00281103, 0x00283002, 0x00289422}

__all__ = ["FastHeader", "Plan", "plan_for", "read_fast", "plain", "convert_fast", "FALLBACK"]

_HEAD = 64 * 1024  # first read; most headers end well before this
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
_TS = 0x00020010

#: VRs with a 2-byte reserved field and a 4-byte length in explicit VR.
_LONG_VR = frozenset(
    v.encode() for v in ("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV")
)
_SHORT_VR = frozenset(
    v.encode()
    for v in (
        "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "PN",
        "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US",
    )
)
_ALL_VR = _LONG_VR | _SHORT_VR

_HDR_EXPLICIT = struct.Struct("<I2sH").unpack_from  # swapped tag, VR, 16-bit length
_HDR_IMPLICIT = struct.Struct("<II").unpack_from  # swapped tag, 32-bit length
_U32 = struct.Struct("<I").unpack_from

#: Python codecs for the character sets decoded here; any other
#: (0008,0005) value sends text values to pydicom.
_CHARSETS = {b"": "latin_1", b"ISO_IR 6": "latin_1", b"ISO_IR 100": "latin_1", b"ISO_IR 192": "utf_8"}

_IMPLICIT_TS = "1.2.840.10008.1.2"
_UNSUPPORTED_TS = {"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}  # big endian, deflate

FALLBACK: Any = object()  # "let pydicom convert this value"


class _Bail(Exception):
    """The walker met something it does not handle; pydicom takes over."""


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
    """:func:`lazydicom.tags.plain_value` with pydicom's number/UID subclasses made plain.

    ``plain_value`` keeps pydicom's ``IS`` (an ``int`` subclass) and ``UID``
    items in multi-valued elements; the index wants exact builtin types so
    both header paths give identical rows.
    """
    out = plain_value(value)
    t = type(out)
    if t is tuple:
        if all(type(x) in (int, float, str) for x in out):
            return out
        return tuple(_norm(x) for x in out)
    if t in (int, float, str) or out is None:
        return out
    return _norm(out)


_DS_CHARS = re.compile(r"[0-9eE+\-. \\]*").fullmatch
_IS_CHARS = re.compile(r"[0-9+\- \\]*").fullmatch
_NUMBERS = {b"US": "H", b"SS": "h", b"UL": "L", b"SL": "l", b"FL": "f", b"FD": "d",
            b"SV": "q", b"UV": "Q"}
_NUMBER_SIZE = {k: struct.calcsize("<" + v) for k, v in _NUMBERS.items()}
_BYTES_VR = frozenset((b"OB", b"OW", b"OD", b"OF", b"OL", b"OV"))


def _pn(text: str) -> str:
    # str(PersonName(text)): components split on '=', trailing empty ones dropped
    if "=" not in text:
        return text
    comps = text.split("=")
    while comps and not comps[-1]:
        comps.pop()
    return "=".join(comps)


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
        The plain value, or :data:`FALLBACK` when pydicom must convert it.
    """
    if not raw:
        return None
    if vr in (b"CS", b"DA", b"TM", b"DT", b"AS"):
        s = raw.decode("latin_1").rstrip(" \x00")
        if "\\" in s:
            return tuple(s.split("\\"))
        return s.strip() or None
    if vr == b"DS":
        s = raw.decode("latin_1").strip().rstrip(" \x00")
        if not _DS_CHARS(s):
            return FALLBACK
        if "\\" not in s:
            if not s:
                return None
            try:
                return float(s)
            except ValueError:
                return FALLBACK
        out: list[Any] = []
        for item in s.split("\\"):
            if not item:
                out.append("")
                continue
            if not item.strip():
                return FALLBACK
            try:
                out.append(float(item))
            except ValueError:
                return FALLBACK
        return tuple(out)
    if vr == b"IS":
        s = raw.decode("latin_1").rstrip(" \x00")
        if not _IS_CHARS(s):
            return FALLBACK
        items = s.split("\\")
        out = []
        for item in items:
            if not item:
                out.append("")
                continue
            if not item.strip() or len(item) > 12:
                return FALLBACK
            try:
                out.append(int(item))
            except ValueError:
                return FALLBACK
        if len(out) == 1:
            return out[0] if out[0] != "" else None
        return tuple(out)
    if vr == b"UI":
        s = raw.decode("latin_1").rstrip("\x00 ").rstrip(" \x00")
        if "\\" in s:
            return tuple(x.strip() for x in s.split("\\"))
        return s.strip() or None
    if vr in (b"SH", b"LO", b"UC", b"ST", b"LT", b"UT", b"PN"):
        if encoding is None or b"\x1b" in raw:
            return FALLBACK
        if vr == b"PN":
            raw = raw.rstrip(b"\x00 ")
        try:
            s = raw.decode(encoding)
        except UnicodeDecodeError:
            return FALLBACK
        if vr == b"PN":
            if "\\" in s:
                return tuple(_pn(x) for x in s.split("\\"))
            return _pn(s).strip() or None
        if "\\" in s and vr in (b"SH", b"LO", b"UC"):
            return tuple(x.rstrip("\x00 ") for x in s.split("\\"))
        return s.rstrip("\x00 ").strip() or None
    fmt = _NUMBERS.get(vr)
    if fmt is not None:
        size = _NUMBER_SIZE[vr]
        n, rest = divmod(len(raw), size)
        if rest:
            return FALLBACK
        values = struct.unpack(f"<{n}{fmt}", raw)
        return values[0] if n == 1 else values
    if vr == b"AE":
        items = [x.strip() for x in raw.decode("latin_1").split("\\")]
        if len(items) == 1:
            return items[0] or None
        return tuple(items)
    if vr == b"UR":
        return raw.decode("latin_1").strip() or None
    if vr in _BYTES_VR:
        return plain_value(raw)
    if vr == b"SQ":
        return None
    return FALLBACK  # UN, AT, ambiguous or unknown VRs


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
        Swapped tag -> (tag, dictionary VR as bytes or None). A VR of None
        means "pydicom converts this one" in implicit VR files; tags in
        ``always_pydicom`` are converted by pydicom in every encoding.
    simple : bool
        True when every column comes from one tag (the usual case).
    """

    attrs: tuple[Attribute, ...]
    columns: tuple[str, ...]
    wanted: dict[int, tuple[int, bytes | None]]
    always_pydicom: frozenset[int]
    by_tag: dict[int, tuple[str, ...]]
    simple: bool


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
        by_tag.setdefault(a.tag, [])
        if a.column not in by_tag[a.tag]:
            by_tag[a.tag].append(a.column)
        column_tags.setdefault(a.column, set()).add(a.tag)
    wanted = {_swap(t): (t, _dictionary_vr(t)) for t in by_tag if t >> 16 != 2}
    # presence of these decides "no DICOM attributes found", as in header._rows
    # (and the character set is needed to decode text)
    for t in (0x00080016, 0x00100020, 0x00280010, 0x00080005):
        wanted.setdefault(_swap(t), (t, _dictionary_vr(t)))
    simple = all(len(tags) == 1 for tags in column_tags.values())
    always = frozenset(_swap(t) for t in by_tag if t in _LUT_DESCRIPTORS)
    return Plan(
        tuple(attrs), columns, wanted, always, {t: tuple(c) for t, c in by_tag.items()}, simple
    )


def _config_ok() -> bool:
    """The fast conversions assume pydicom's default value settings."""
    return not (
        config.datetime_conversion
        or config.use_DS_numpy
        or config.use_IS_numpy
        or config.use_DS_decimal
        or config.settings.reading_validation_mode == config.RAISE
    )


# ---------------------------------------------------------------------------
# the walker


class _Buffer:
    """The file's head, read with ``os.pread`` and grown on demand (never past EOF)."""

    __slots__ = ("fd", "size", "buf")

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size
        self.buf = os.pread(fd, min(size, _HEAD), 0)
        if len(self.buf) != min(size, _HEAD):
            raise _Bail("short read")

    def need(self, end: int) -> bytes:
        """Make ``buf`` cover ``[0, end)``; bail when ``end`` is past the file."""
        have = len(self.buf)
        if end <= have:
            return self.buf
        if end > self.size:
            raise _Bail("past end of file")
        new = min(self.size, max(end, have * 2))
        more = os.pread(self.fd, new - have, have)
        if len(more) != new - have:
            raise _Bail("short read")
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
                    raise _Bail("item past end of file")
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
                raise _Bail("element past end of file")


@dataclass
class FastHeader:
    """What :func:`read_fast` found.

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
    while True:
        buf = r.need(pos + 8)
        stag, vr, length = _HDR_EXPLICIT(buf, pos)
        if stag & 0xFFFF != 0x0002:
            break
        if vr in _LONG_VR:
            buf = r.need(pos + 12)
            length = _U32(buf, pos + 8)[0]
            vpos = pos + 12
        elif vr in _SHORT_VR:
            vpos = pos + 8
        else:
            raise _Bail("implicit or unknown VR in file meta")
        if length == _UNDEFINED:
            raise _Bail("undefined length in file meta")
        pos = vpos + length
        buf = r.need(pos)
        if stag == _swap(_TS):
            if vr != b"UI":
                raise _Bail("odd transfer syntax VR")
            ts = buf[vpos:pos].decode("latin_1").rstrip("\x00 ").strip()
    if not ts or "\\" in ts:
        raise _Bail("no transfer syntax")
    return ts, pos


def read_fast(fd: int, size: int, plan: Plan) -> FastHeader | None:
    """Read the header of an open file on the fast path, or None to use pydicom.

    Parameters
    ----------
    fd : int
        An open file descriptor (read with ``os.pread``; its offset is untouched).
    size : int
        The file's size in bytes.
    plan : Plan
        From :func:`plan_for`.

    Returns
    -------
    FastHeader or None
        None whenever the file is not the common case handled here.
    """
    if size < 144 or not _config_ok():
        return None
    try:
        r = _Buffer(fd, size)
        ts, pos = _read_meta(r)
        if ts in _UNSUPPORTED_TS:
            return None
        implicit = ts == _IMPLICIT_TS
        found, pixel = _walk(r, pos, implicit, plan.wanted, False)
        return _build(r, plan, ts, implicit, pos, found, pixel)
    except _Bail:
        return None
    except (struct.error, IndexError, ValueError, UnicodeDecodeError):
        return None


def _walk(
    r: _Buffer, pos: int, implicit: bool, wanted: dict, collect_all: bool
) -> tuple[dict[int, tuple[bytes | None, int, int]], dict[str, Any]]:
    """Walk the top-level dataset from ``pos`` to the pixel data or end of file.

    Returns the (VR, value position, length) of wanted elements (of every
    defined-length element with ``collect_all``) and the pixel data element.
    """
    size = r.size
    found: dict[int, tuple[bytes | None, int, int]] = {}
    pixel: dict[str, Any] = {}
    if pos + 8 > size:
        raise _Bail("no dataset")
    buf = r.need(pos + 8)
    if True:
        # pydicom checks the first element's VR bytes and switches encoding
        # (with a warning) when they disagree with the transfer syntax
        looks_implicit = not (_is_vr_byte(buf[pos + 4]) and _is_vr_byte(buf[pos + 5]))
        if looks_implicit != implicit:
            raise _Bail("encoding differs from transfer syntax")
    if _HDR_IMPLICIT(buf, pos)[0] & 0xFFFF == 0:
        raise _Bail("command set")
    while True:
        if pos + 8 > len(buf):
            if pos == size:
                break  # clean end of file: no pixel data
            buf = r.need(pos + 8)
        if implicit:
            stag, length = _HDR_IMPLICIT(buf, pos)
            vr = None
            vpos = pos + 8
        else:
            stag, vr, length = _HDR_EXPLICIT(buf, pos)
            if vr in _LONG_VR:
                if pos + 12 > len(buf):
                    buf = r.need(pos + 12)
                length = _U32(buf, pos + 8)[0]
                vpos = pos + 12
            elif vr in _SHORT_VR:
                vpos = pos + 8
            else:
                raise _Bail("unknown VR")
        if stag in _PIXEL:
            pixel = {
                "tag": _PIXEL[stag],
                "vr": None if vr is None else vr.decode(),
                "length": length,
                "element_start": pos,
            }
            break
        if stag in _FUNCTIONAL_GROUPS:
            raise _Bail("functional groups: pydicom flattens them")
        if length == _UNDEFINED:
            if stag in (_ITEM, _ITEM_DELIM, _SEQ_DELIM):
                raise _Bail("delimiter at top level")
            if vr is not None and vr not in (b"SQ", b"UN"):
                raise _Bail("undefined length non-sequence")
            if stag in wanted and not collect_all and implicit and wanted[stag][1] != b"SQ":
                raise _Bail("undefined length on a wanted non-sequence")
            pos = _skip_sequence(r, vpos, implicit, 0)
            buf = r.buf
            if stag in wanted:
                found[stag] = (b"SQ", -1, 0)
            continue
        pos = vpos + length
        if pos > size:
            raise _Bail("value past end of file")
        if collect_all or stag in wanted:
            found[stag] = (vr, vpos, length)
    return found, pixel


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
    for stag, (vr, vpos, length) in found.items():
        tag, dict_vr = wanted[stag]
        if vr == b"SQ":
            values[tag] = None
            continue
        if implicit:
            vr = dict_vr
            if vr is None:
                fallback.append(stag)
                continue
        if stag in always:
            fallback.append(stag)
            continue
        buf = r.need(vpos + length)
        value = convert_fast(vr, buf[vpos : vpos + length], encoding)
        if value is FALLBACK:
            fallback.append(stag)
        else:
            values[tag] = value
    if fallback:
        values.update(_pydicom_values(r, start, implicit, fallback, wanted))
    if plan.simple:
        base = dict.fromkeys(plan.columns)
        by_tag = plan.by_tag
        for tag, value in values.items():
            for column in by_tag.get(tag, ()):
                base[column] = value
    else:
        base = {a.column: values.get(a.tag) for a in plan.attrs}
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
    everything, _ = _walk(r, start, implicit, wanted, True)
    raw: dict[BaseTag, RawDataElement] = {}
    for stag, (vr, vpos, length) in everything.items():
        if vpos < 0:
            continue
        tag = BaseTag(_swap(stag))
        vr_s = None if vr is None else vr.decode()
        if length:
            value: bytes | None = r.need(vpos + length)[vpos : vpos + length]
        else:
            value = empty_value_for_VR(vr_s, raw=True)
        raw[tag] = RawDataElement(tag, vr_s, length, value, vpos, implicit, True)
    ds = Dataset(raw)
    ds.set_original_encoding(implicit, True, ds._character_set)
    out: dict[int, Any] = {}
    for stag in stags:
        tag = wanted[stag][0]
        try:
            out[tag] = plain(ds[tag].value) if tag in ds else None
        except Exception:  # noqa: BLE001 - as header._get: malformed value -> absent
            out[tag] = None
    return out
