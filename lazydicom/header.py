"""Read one file's header (never its pixels) into one row per frame.

A row is a plain ``dict`` of index columns: the attributes lazydicom sorts
and selects on (``KEYWORDS``, plus any extra tags asked for), the image
pixel description, and where the frame's bytes are, so that a later read
needs no header parse:

``PixelDataOffset``
    file position of the Pixel Data element's value (-1 when the pixels
    cannot be reached by position, e.g. Deflated transfer syntax);
``FrameOffset``, ``FrameLength``
    for native (uncompressed) data that can be read as is, the position and
    size of the frame's bytes; for encapsulated data, the span of the frame's
    fragment items (see ``lazydicom.fragments``); -1 where frames are
    reached through pydicom (Deflated files, bit-packed data, several
    fragments per frame without an offset table).

Enhanced multi-frame files give one row per frame with the attributes of the
Shared and Per-Frame Functional Groups flattened in (per-frame wins over
shared, shared over the top level). Objects without pixel data give one row
with ``FrameNumber`` 0 and ``IsImage`` False.

pydicom is the authority for parsing. The common case (preamble, Implicit or
Explicit VR Little Endian, no functional groups) is read by a measured fast
path, ``lazydicom._fastheader``, which gives the same rows several times
faster and hands every file it does not fully understand back to pydicom.
Files that are not DICOM raise ``HeaderError`` with a reason, which the
index reports as skipped.

What a header claims is checked against the file before rows are made, on
both paths: the Pixel Data element's header is read from its bytes (a meta
group that says Implicit VR over Explicit VR data must not shift the
pixels); NumberOfFrames must be a positive whole number that the Pixel Data
can hold (encapsulated data: one fragment per frame at least, checked by the
fragment walk); a file that describes an image but has no Pixel Data, or
whose dataset ends inside an element, was cut short. Each is a
``HeaderError``, so the file is skipped with its reason, never indexed
as an object without pixels or with frames that are not there.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import EXPLICIT_VR_LENGTH_32, read_partial
from pydicom.tag import Tag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ImplicitVRLittleEndian

from . import _fastheader
from ._fastheader import plain
from .fragments import FragmentError, frame_spans
from .tags import KEYWORDS, Attribute, resolve

__all__ = [
    "KEYWORDS",
    "HeaderError",
    "read_header",
    "read_header_at",
    "read_rows",
    "add_slice_position",
    "dataset_rows",
]

_PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}  # Pixel Data, Float, Double Float
_DEFER = 16 * 1024  # values larger than this are skipped by position, not read
_FG_TAGS = (0x52009229, 0x52009230)  # Shared, Per-Frame Functional Groups Sequence
#: Transfer syntaxes whose Pixel Data is native (not encapsulated).
_NATIVE_SYNTAXES = {
    ImplicitVRLittleEndian, "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
    DeflatedExplicitVRLittleEndian,
}


class HeaderError(Exception):
    """A file cannot be indexed; ``str(err)`` says why (shown in skip reports)."""


class _BoundedFile:
    """A read-only file for pydicom whose reads never ask for more than the file holds.

    A bogus element length (0xFFFFFFF0 in a mangled file) makes pydicom call
    ``fp.read(length)``, and ``BufferedReader.read(n)`` allocates ``n`` bytes
    up front (hundreds of MB to 4 GiB) before finding the end of the file.
    Capping ``n`` at the bytes left returns exactly the same data. Not an
    ``io.BufferedReader`` on purpose: pydicom then keeps this object for
    deferred reads of large values instead of re-opening the file unbounded.
    """

    def __init__(self, fp: Any, size: int, name: Any) -> None:
        self._fp = fp
        self._size = size
        self.name = name  # pydicom's FileDataset.filename

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            return self._fp.read()
        return self._fp.read(min(n, max(self._size - self._fp.tell(), 0)))

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fp.seek(offset, whence)

    def tell(self) -> int:
        return self._fp.tell()

    def fileno(self) -> int:
        return self._fp.fileno()

    @property
    def closed(self) -> bool:
        return self._fp.closed


def _looks_like_raw_dataset(fp) -> bool:
    """True for files without preamble that start with a group 0002/0008 element."""
    fp.seek(0)
    start = fp.read(4)
    fp.seek(0)
    return len(start) == 4 and start[1] == 0 and start[0] in (0x02, 0x08) and start[3] == 0


def _read_dataset(fp, size: int) -> tuple[Dataset, dict[str, Any]]:
    """Parse the header up to the pixel data; return it and the pixel element found."""
    found: dict[str, Any] = {}

    def stop(tag, vr, length) -> bool:
        if int(tag) in _PIXEL_TAGS:
            found.update(tag=int(tag), vr=vr, length=length)
            return True
        return False

    try:
        ds = read_partial(fp, stop_when=stop, defer_size=_DEFER)
    except InvalidDicomError:
        if not _looks_like_raw_dataset(fp):
            raise HeaderError("not a DICOM file (no 'DICM' marker)") from None
        found.clear()
        try:
            ds = read_partial(fp, stop_when=stop, defer_size=_DEFER, force=True)
        except Exception as exc:  # noqa: BLE001 - any parse failure means "skip"
            raise HeaderError(f"unreadable DICOM header ({exc})") from None
    except (EOFError, OSError) as exc:
        raise HeaderError(f"truncated or unreadable header ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on bad bytes
        raise HeaderError(f"unreadable DICOM header ({type(exc).__name__}: {exc})") from None
    end = fp.tell()
    if end > size:
        # pydicom skips a deferred value by seeking: an element whose length runs
        # past the end of the file swallows the rest (Pixel Data included)
        raise HeaderError(
            "an element's length runs past the end of the file (truncated or corrupt)"
        )
    if found:
        found["element_start"] = end
    return ds, found


def _get(ds: Dataset, attr: Attribute, present: Any = None) -> Any:
    """The plain value of one attribute in a dataset, None when absent."""
    tag = attr.tag
    if tag is None or tag not in (ds if present is None else present):
        return None
    try:
        return plain(ds[tag].value)
    except Exception:  # noqa: BLE001 - a malformed value is treated as absent
        return None


def _flatten_group(item: Dataset, wanted: dict[int, str], out: dict[str, Any], depth: int) -> None:
    """Copy wanted attributes from a functional-group item and its nested macros.

    Within one item the first occurrence wins: standard macros (even groups)
    sort before private sequences, which may repeat a standard attribute with
    other values (Philips keeps an older ImagePositionPatient there).
    """
    found: dict[str, Any] = {}
    _collect_group(item, wanted, found, depth)
    out.update(found)


def _collect_group(item: Dataset, wanted: dict[int, str], found: dict[str, Any], depth: int
                   ) -> None:
    for elem in item:
        tag = int(elem.tag)
        if elem.VR == "SQ":
            if depth < 3 and elem.value:
                # Macros hold one item; the first carries the frame's values.
                _collect_group(elem.value[0], wanted, found, depth + 1)
            continue
        column = wanted.get(tag)
        if column is not None and column not in found:
            value = plain(elem.value)
            if value is not None:
                found[column] = value


def _transfer_syntax(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    uid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if uid:
        return str(uid)
    implicit, little = ds.original_encoding
    if implicit is False and little is False:
        return "1.2.840.10008.1.2.2"
    if implicit is False:
        return "1.2.840.10008.1.2.1"
    return str(ImplicitVRLittleEndian)


def add_slice_position(row: dict[str, Any]) -> None:
    """Set the derived ``SlicePosition``: ImagePositionPatient on the slice normal.

    Plain float arithmetic, not numpy: numpy's cross/dot on 3-vectors cost
    ~80 us per call, more than the whole fast header read. The products and
    sums are the same IEEE operations in the same order as ``np.cross`` and
    ``np.dot`` (checked on 200,000 random geometries), and the result is
    rounded to 1e-6 mm.
    """
    ipp, iop = row.get("ImagePositionPatient"), row.get("ImageOrientationPatient")
    if (
        isinstance(ipp, tuple) and len(ipp) == 3 and isinstance(iop, tuple) and len(iop) == 6
    ):
        r0, r1, r2, c0, c1, c2 = (float(v) for v in iop)
        p0, p1, p2 = (float(v) for v in ipp)
        n0, n1, n2 = r1 * c2 - r2 * c1, r2 * c0 - r0 * c2, r0 * c1 - r1 * c0
        row["SlicePosition"] = round(n0 * p0 + n1 * p1 + n2 * p2, 6)


def _frame_bytes(row: dict[str, Any]) -> int | None:
    """Bytes per native frame, None when frames are not byte-addressable."""
    bits = row.get("BitsAllocated")
    if not bits or bits % 8 or row.get("PhotometricInterpretation") == "YBR_FULL_422":
        return None
    return int(row["Rows"]) * int(row["Columns"]) * int(row.get("SamplesPerPixel") or 1) * (
        bits // 8
    )


_KEYWORD_ATTRS: list[Attribute] = []


_PLANS: dict[tuple[Attribute, ...], tuple[tuple[Attribute, ...], _fastheader.Plan]] = {}


def _attributes(extra: Sequence[Attribute]) -> tuple[Attribute, ...]:
    """``KEYWORDS`` resolved (once per process) plus the non-derived extras."""
    return _plan(extra)[0]


def _plan(extra: Sequence[Attribute]) -> tuple[tuple[Attribute, ...], _fastheader.Plan]:
    """The attributes of a call and their fast-path plan, cached per ``extra``.

    Resolving 80 keywords, or even hashing 80 ``Attribute`` objects, costs
    more than the fast header read itself, so the cache is keyed on the
    (usually empty) extras only.
    """
    key = tuple(extra)
    cached = _PLANS.get(key)
    if cached is None:
        if not _KEYWORD_ATTRS:
            resolved = [resolve(k) for k in KEYWORDS]
            if not _KEYWORD_ATTRS:  # another thread may have been first
                _KEYWORD_ATTRS[:] = resolved
        attrs = tuple(_KEYWORD_ATTRS) + tuple(a for a in key if not a.derived)
        cached = (attrs, _fastheader.plan_for(attrs))
        if len(_PLANS) > 256:
            _PLANS.clear()
        _PLANS[key] = cached
    return cached


def read_header(
    path: str | os.PathLike, extra: Sequence[Attribute] = ()
) -> list[dict[str, Any]]:
    """Read the header of one file into one row per frame.

    Parameters
    ----------
    path : str or PathLike
        The file.
    extra : sequence of Attribute
        Attributes to keep in addition to ``KEYWORDS`` (e.g. private tags).

    Returns
    -------
    list of dict
        One row per frame (one row with ``FrameNumber`` 0 for objects without
        pixel data). Columns ``path``, ``size`` and ``mtime`` are not set here.

    Raises
    ------
    HeaderError
        If the file is not DICOM, is truncated, or its pixel data cannot be located.
    """
    return _read_header(path, extra, fast=True)


def read_rows(
    root: str, files: Iterable[tuple[str, int, int]], extra: Sequence[Attribute] = ()
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of ``files`` (``(path relative to root, size, mtime)``) and those skipped.

    Each row carries its file's ``path``, ``size`` and ``mtime``; a file that
    is not read (``HeaderError``) is skipped with its reason. pydicom's
    warnings about odd values are silenced: what matters to the user (which
    files were skipped, and why) is reported once, by the index.
    """
    import warnings

    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for rel, size, mtime in files:
            try:
                frames = read_header(os.path.join(root, rel), extra)
            except HeaderError as exc:
                skipped.append({"path": rel, "size": size, "mtime": mtime, "reason": str(exc)})
                continue
            for row in frames:
                row["path"], row["size"], row["mtime"] = rel, size, mtime
                rows.append(row)
    return rows, skipped


def _read_header(
    path: str | os.PathLike, extra: Sequence[Attribute], fast: bool
) -> list[dict[str, Any]]:
    """``read_header``; ``fast=False`` forces the pydicom path (tests compare both)."""
    try:
        # os.open + os.pread: the fast path needs no Python file object
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
            return _rows(_fastheader.reader_of(fd), st.st_size, os.fspath(path), extra, fast,
                         lambda: open(fd, "rb", closefd=False))
        finally:
            os.close(fd)
    except HeaderError:
        raise
    except PermissionError as exc:
        raise HeaderError(f"permission denied ({exc.strerror})") from None
    except OSError as exc:
        raise HeaderError(f"cannot read ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - never let one bad file crash a scan
        raise HeaderError(f"unreadable DICOM header ({type(exc).__name__}: {exc})") from None


def read_header_at(
    read_at: Callable[[int, int], bytes],
    size: int,
    name: str,
    extra: Sequence[Attribute] = (),
) -> list[dict[str, Any]]:
    """[`read_header`][lazydicom.header.read_header] of a file known only by its bytes.

    The rows are those ``read_header`` gives for a local copy of the file.
    Used for objects in a store, where every read is a ranged request: the
    fast path asks ``read_at`` for the head and for more only when the header
    is longer; pydicom's path reads through a buffered file over ``read_at``.

    Parameters
    ----------
    read_at : callable
        ``read_at(offset, n)`` returns the ``n`` bytes of the file at
        ``offset`` (fewer only at its end).
    size : int
        The file's size in bytes.
    name : str
        What the file is called (URL), for pydicom.
    extra : sequence of Attribute
        As for ``read_header``.

    Raises
    ------
    HeaderError
        As ``read_header``; errors of ``read_at`` itself (``OSError``) propagate.
    """
    try:
        return _rows(read_at, size, name, extra, True,
                     lambda: io.BufferedReader(_RangeFile(read_at, size), _RANGE_BUFFER))
    except (HeaderError, OSError):
        raise
    except Exception as exc:  # noqa: BLE001 - never let one bad file crash a scan
        raise HeaderError(f"unreadable DICOM header ({type(exc).__name__}: {exc})") from None


def _rows(
    read_at: Callable[[int, int], bytes],
    size: int,
    name: str,
    extra: Sequence[Attribute],
    fast: bool,
    open_file: Callable[[], Any],
) -> list[dict[str, Any]]:
    """The rows of a file read through ``read_at`` (fast path) or ``open_file()`` (pydicom)."""
    attrs, plan = _plan(extra)
    if size == 0:
        raise HeaderError("empty file")
    if fast:
        found = _fastheader.read_fast(read_at, size, plan)
        if found is not None:
            if not found.has_identity:
                raise _no_attributes(read_at, size)
            base = found.base
            base["TransferSyntaxUID"] = found.transfer_syntax
            pixel, implicit = _check_pixels(read_at, size, base, found.implicit, found.pixel)
            return _frames(base, implicit, pixel, size, attrs, None, read_at)
    with open_file() as fp:
        bounded = _BoundedFile(fp, size, name)
        ds, pixel = _read_dataset(bounded, size)
        if not {0x00080016, 0x00100020, 0x00280010} & set(ds.keys()):
            raise _no_attributes(read_at, size)
        base, implicit, groups = _base(ds, attrs)
        pixel, implicit = _check_pixels(read_at, size, base, implicit, pixel)
        return _frames(base, implicit, pixel, size, attrs, groups, read_at)


_RANGE_BUFFER = 64 * 1024  # pydicom's reads of a remote header, in blocks of this size


class _RangeFile(io.RawIOBase):
    """A read-only, seekable raw file over ``read_at`` (for pydicom on remote objects)."""

    def __init__(self, read_at: Callable[[int, int], bytes], size: int) -> None:
        self._read_at, self._size, self._pos = read_at, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), max(self._size - self._pos, 0))
        if n <= 0:
            return 0
        data = self._read_at(self._pos, n)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _no_attributes(read_at: Callable[[int, int], bytes], size: int) -> HeaderError:
    """The error of a file without SOPClassUID, PatientID and Rows: cut short, or not
    an image file at all."""
    if _fastheader.ends_inside_element(read_at, size):
        return HeaderError("the file ends inside an element of its header: it is truncated")
    return HeaderError("no DICOM attributes found")


def _base(ds: Dataset, attrs: Sequence[Attribute]) -> tuple[dict[str, Any], bool | None, Any]:
    """Attributes of a dataset read by pydicom (the reference path), its encoding
    and a function returning its functional groups."""
    present = set(ds.keys())  # only present tags are converted
    if 0x00080016 not in present and 0x00100020 not in present and 0x00280010 not in present:
        raise HeaderError("no DICOM attributes found")
    base: dict[str, Any] = {a.column: _get(ds, a, present) for a in attrs}
    base["TransferSyntaxUID"] = _transfer_syntax(ds)
    implicit, _ = ds.original_encoding

    def groups() -> tuple[Any, ...]:
        return tuple(ds[t].value if t in present else None for t in _FG_TAGS)

    return base, implicit, groups


# ---------------------------------------------------------------------------
# what the header claims, checked against the file (both paths, before _frames)

#: Pixel Data VRs; in Explicit VR their element header is 12 bytes.
_PIXEL_VRS = {b"OB", b"OW", b"OD", b"OF", b"OL", b"OV", b"UN"}
#: SOP Classes whose objects always carry Pixel Data, besides "... Image Storage".
_PIXEL_SOP_CLASSES = {"Segmentation Storage", "Parametric Map Storage"}
#: Deflate cannot shrink data by more than this factor.
_MAX_INFLATE = 1032


def _check_pixels(
    read_at: Callable[[int, int], bytes], size: int, base: dict[str, Any],
    implicit: bool | None, pixel: dict[str, Any],
) -> tuple[dict[str, Any], bool | None]:
    """Check the pixel description against the file; return the pixel element and
    its encoding as found in the file's bytes.

    Raises ``HeaderError`` for a file that describes an image but has no
    Pixel Data (cut inside its header), and a NumberOfFrames that is not a
    positive whole number or that native Pixel Data (or a deflated file)
    cannot hold. Encapsulated Pixel Data is checked by ``_frames``.
    """
    if not pixel:
        _check_no_pixels(read_at, size, base)
        return pixel, implicit
    if pixel["tag"] != 0x7FE00010:
        return pixel, implicit  # Float Pixel Data: an object, not frames
    n_frames = _number_of_frames(base)
    ts = base.get("TransferSyntaxUID")
    if ts == DeflatedExplicitVRLittleEndian:  # positions refer to the inflated stream
        _check_claim(base, n_frames, _MAX_INFLATE * size, "the deflated file")
        return pixel, implicit
    pixel, implicit = _pixel_element(read_at, size, pixel, ts)
    if pixel["length"] != 0xFFFFFFFF:
        _check_claim(base, n_frames, pixel["length"], "the Pixel Data")
    # encapsulated: _frames walks the fragment items (lazydicom.fragments), which
    # refuses a missing delimiter, items past the end and more frames than fragments
    return pixel, implicit


def _pixel_element(
    read_at: Callable[[int, int], bytes], size: int, pixel: dict[str, Any], ts: Any
) -> tuple[dict[str, Any], bool]:
    """The Pixel Data element as its bytes say: a transfer syntax that claims
    Implicit VR for Explicit VR data (or the reverse) must not shift the pixels."""
    start = pixel["element_start"]
    head = read_at(start, 12)
    if len(head) < 8:
        raise HeaderError("the file ends inside the Pixel Data element header (truncated)")
    order = ">" if ts == "1.2.840.10008.1.2.2" else "<"
    group, element = struct.unpack(order + "HH", head[:4])
    if (group << 16 | element) != pixel["tag"]:
        raise HeaderError(f"no Pixel Data element at byte {start} (corrupt header)")
    explicit = head[4:6] in _PIXEL_VRS and head[6:8] == b"\0\0"
    if explicit:
        if len(head) < 12:
            raise HeaderError("the file ends inside the Pixel Data element header (truncated)")
        (length,) = struct.unpack(order + "I", head[8:12])
        vr = head[4:6].decode()
    else:
        (length,) = struct.unpack(order + "I", head[4:8])
        vr = "OB" if pixel.get("vr") == "OB" else "OW"
    return dict(pixel, vr=vr, length=length), not explicit


def _number_of_frames(base: dict[str, Any]) -> int:
    value = base.get("NumberOfFrames")
    if value is None:
        return 1
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise HeaderError(f"NumberOfFrames is {value!r}, not a positive whole number")
    return value


def _check_claim(base: dict[str, Any], n_frames: int, room: int, where: str) -> None:
    """NumberOfFrames frames of the described size must fit in ``room`` bytes."""
    try:
        bits = (
            int(base["Rows"])
            * int(base["Columns"])
            * int(base.get("SamplesPerPixel") or 1)
            * int(base["BitsAllocated"])
        )
    except (KeyError, TypeError, ValueError):
        return  # _frames names the missing attribute
    if base.get("PhotometricInterpretation") == "YBR_FULL_422":
        bits = bits * 2 // 3
    need = -(-n_frames * bits // 8)
    if bits > 0 and need > room + 1:  # +1: odd lengths are padded
        raise HeaderError(
            f"NumberOfFrames {n_frames} of {base['Rows']}x{base['Columns']} need "
            f"{need} bytes but {where} holds {room}"
        )


def _check_no_pixels(read_at: Callable[[int, int], bytes], size: int, base: dict[str, Any]
                     ) -> None:
    """A file without Pixel Data is an object (presentation state, SR...), unless
    it describes an image or ends inside an element: then it was cut short."""
    sop = base.get("SOPClassUID")
    name = UID(sop).name if isinstance(sop, str) else ""
    if name.endswith("Image Storage") or name in _PIXEL_SOP_CLASSES:
        raise HeaderError(
            f"no Pixel Data, although it is a {name} object: the file is truncated"
        )
    if base.get("Rows") and base.get("Columns") and base.get("BitsAllocated"):
        raise HeaderError(
            "no Pixel Data, although it describes an image (Rows, Columns, "
            "BitsAllocated): the file is truncated"
        )
    if _fastheader.ends_inside_element(read_at, size):
        raise HeaderError("the file ends inside an element: it is truncated")


def _frames(
    base: dict[str, Any],
    implicit: bool | None,
    pixel: dict[str, Any],
    size: int,
    attrs: Sequence[Attribute],
    groups: Any,
    read_at: Callable[[int, int], bytes],
) -> list[dict[str, Any]]:
    """One row per frame from a file's attributes and its pixel data element.

    ``groups`` returns the (Shared, Per-Frame) Functional Groups sequences, or
    is None when the file has none (the fast path never reads such files).
    ``read_at(offset, n)`` reads the file, to locate encapsulated frames.
    """
    ts = base["TransferSyntaxUID"]
    if not pixel or pixel["tag"] != 0x7FE00010:
        # No (integer) pixel data: presentation states, raw data, SR, ...
        base.update(
            FrameNumber=0, IsImage=False, PixelDataOffset=-1, FrameOffset=-1, FrameLength=-1
        )
        if pixel:
            base["IsImage"] = False  # Float pixel data are not supported as frames
        return [base]
    for key in ("Rows", "Columns", "BitsAllocated"):
        if not base.get(key):
            raise HeaderError(f"has Pixel Data but no {key}")
    vr = pixel["vr"]
    header = 12 if (not implicit and vr in EXPLICIT_VR_LENGTH_32) else 8
    value_offset = pixel["element_start"] + header
    length = pixel["length"]
    n_frames = int(base.get("NumberOfFrames") or 1)
    encapsulated = length == 0xFFFFFFFF
    deflated = ts == DeflatedExplicitVRLittleEndian  # ts is a plain, stripped str
    if encapsulated == (ts in _NATIVE_SYNTAXES):
        raise HeaderError(
            f"Pixel Data is {'encapsulated' if encapsulated else 'native'} but the transfer "
            f"syntax {ts!r} says otherwise"
        )
    spans: list[tuple[int, int]] | None = None
    if deflated:
        # positions are in the inflated stream, not the file: frames are read
        # by pydicom from the whole file (PixelDataOffset -1)
        frame_bytes = None
    else:
        frame_bytes = None if encapsulated else _frame_bytes(base)
        if value_offset > size:
            raise HeaderError("Pixel Data starts past the end of the file")
        if encapsulated:
            try:
                spans = frame_spans(read_at, value_offset, size, n_frames)
            except FragmentError as exc:
                raise HeaderError(f"encapsulated Pixel Data: {exc}") from None
        elif value_offset + length > size:
            raise HeaderError(
                f"Pixel Data length {length} runs past the end of the file "
                f"({size - value_offset} bytes left); the file is truncated"
            )
    if frame_bytes is not None and n_frames * frame_bytes > length:
        raise HeaderError(
            f"Pixel Data holds {length} bytes, {n_frames} frame(s) of "
            f"{base['Rows']}x{base['Columns']} need {n_frames * frame_bytes}"
        )
    base.update(IsImage=True, PixelDataOffset=-1 if deflated else value_offset)

    def locate(i: int) -> tuple[int, int]:
        if frame_bytes is not None:
            return value_offset + i * frame_bytes, frame_bytes
        if spans is not None:
            return spans[i]
        return -1, -1

    return _frame_rows(base, n_frames, attrs, groups, locate)


def _frame_rows(
    base: dict[str, Any],
    n_frames: int,
    attrs: Sequence[Attribute],
    groups: Any,
    locate: Callable[[int], tuple[int, int]],
) -> list[dict[str, Any]]:
    """One row per frame: ``base`` with the functional groups flattened in and the
    frame's ``(FrameOffset, FrameLength)`` from ``locate(i)``."""
    shared: dict[str, Any] = {}
    per_frame: Any = ()
    wanted: dict[int, str] = {}
    if groups is not None:
        sfg, pfg = groups()
        wanted = {a.tag: a.column for a in attrs if a.tag is not None}
        if sfg:
            _flatten_group(sfg[0], wanted, shared, 0)
        per_frame = pfg or ()
    rows = []
    for i in range(n_frames):
        row = dict(base) if n_frames > 1 else base
        if shared:
            row.update(shared)
        if i < len(per_frame):
            _flatten_group(per_frame[i], wanted, row, 0)
        row["FrameNumber"] = i + 1
        row["FrameOffset"], row["FrameLength"] = locate(i)
        add_slice_position(row)
        rows.append(row)
    return rows


def dataset_rows(
    ds: Dataset, pixels: bool, transfer_syntax: str | None, extra: Sequence[Attribute] = ()
) -> list[dict[str, Any]]:
    """The rows of a dataset that is not a file, e.g. DICOMweb metadata (DICOM JSON).

    The same attributes as [`read_header`][lazydicom.header.read_header], enhanced
    multi-frame functional groups included, but nothing locates the pixels:
    ``PixelDataOffset``, ``FrameOffset`` and ``FrameLength`` are -1 (the frames
    are fetched by their frame number). ``pixels`` says whether the object has
    Pixel Data; ``transfer_syntax`` is its stored transfer syntax (None when
    unknown). Columns ``path``, ``size`` and ``mtime`` are not set here.

    Raises
    ------
    HeaderError
        Pixel Data without Rows, Columns or BitsAllocated, or a NumberOfFrames
        that is not a positive whole number.
    """
    attrs = _attributes(extra)
    base, _, groups = _base(ds, attrs)
    base["TransferSyntaxUID"] = transfer_syntax
    base.update(PixelDataOffset=-1, FrameOffset=-1, FrameLength=-1)
    if not pixels:
        base.update(FrameNumber=0, IsImage=False)
        return [base]
    for key in ("Rows", "Columns", "BitsAllocated"):
        if not base.get(key):
            raise HeaderError(f"has Pixel Data but no {key}")
    base["IsImage"] = True
    return _frame_rows(base, _number_of_frames(base), attrs, groups, lambda i: (-1, -1))


def read_attributes(
    path: str | os.PathLike, attrs: Iterable[Attribute]
) -> list[dict[str, Any]]:
    """Read only some attributes of a file, one dict per frame (on-demand columns).

    Objects without pixel data give one dict. Errors give an empty list.
    """
    attrs = [a for a in attrs if not a.derived]
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, defer_size=_DEFER, force=True)
    except Exception:  # noqa: BLE001 - on-demand reads never fail the caller
        return []
    base = {a.column: _get(ds, a) for a in attrs}
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    wanted = {a.tag: a.column for a in attrs if a.tag is not None}
    shared: dict[str, Any] = {}
    sfg = ds.get(Tag(_FG_TAGS[0]))
    if sfg is not None and sfg.value:
        _flatten_group(sfg.value[0], wanted, shared, 0)
    pfg = ds.get(Tag(_FG_TAGS[1]))
    per_frame = pfg.value if pfg is not None and pfg.value else ()
    out = []
    for i in range(n_frames):
        row = dict(base)
        row.update(shared)
        if i < len(per_frame):
            _flatten_group(per_frame[i], wanted, row, 0)
        out.append(row)
    return out
