"""Read one file's header (never its pixels) into one row per frame.

A row is a plain ``dict`` of index columns: the attributes lazydicom sorts
and selects on (:data:`KEYWORDS`, plus any extra tags asked for), the image
pixel description, and where the frame's bytes are, so that a later read
needs no header parse:

``PixelDataOffset``
    file position of the Pixel Data element's value (-1 when the pixels
    cannot be reached by position, e.g. Deflated transfer syntax);
``FrameOffset``, ``FrameLength``
    position and size of the frame's bytes for native (uncompressed) data
    that can be read as is (-1 otherwise: encapsulated data are reached from
    ``PixelDataOffset`` through pydicom's offset-table and fragment logic).

Enhanced multi-frame files give one row per frame with the attributes of the
Shared and Per-Frame Functional Groups flattened in (per-frame wins over
shared, shared over the top level). Objects without pixel data give one row
with ``FrameNumber`` 0 and ``IsImage`` False.

pydicom is the authority for parsing. Files that are not DICOM raise
:class:`HeaderError` with a reason, which the index reports as skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import EXPLICIT_VR_LENGTH_32, read_partial
from pydicom.tag import Tag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ImplicitVRLittleEndian

from .tags import Attribute, plain_value, resolve

__all__ = ["KEYWORDS", "HeaderError", "read_header", "add_slice_position"]

#: Attributes kept in the index for every frame. Anything else is read on
#: demand (see :meth:`lazydicom.index.Index.ensure`).
KEYWORDS: tuple[str, ...] = (
    # identity
    "SOPClassUID", "SOPInstanceUID", "PatientID", "PatientName", "PatientBirthDate",
    "PatientSex", "StudyInstanceUID", "StudyDescription", "StudyDate", "StudyTime",
    "StudyID", "AccessionNumber", "SeriesInstanceUID", "SeriesDescription",
    "SeriesNumber", "SeriesDate", "SeriesTime", "Modality", "Manufacturer",
    "ManufacturerModelName", "ProtocolName", "BodyPartExamined", "FrameOfReferenceUID",
    "ImageType", "InstanceNumber", "AcquisitionNumber", "AcquisitionDate",
    "AcquisitionTime", "ContentDate", "ContentTime", "AcquisitionDateTime",
    # geometry
    "SliceLocation", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
    "SliceThickness", "SpacingBetweenSlices",
    # image pixel
    "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
    "SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration",
    "NumberOfFrames", "RescaleSlope", "RescaleIntercept", "RescaleType",
    "WindowCenter", "WindowWidth", "PixelPaddingValue",
    "RedPaletteColorLookupTableDescriptor",
    # acquisition
    "FlipAngle", "RepetitionTime", "EchoTime", "InversionTime", "EchoNumbers",
    "EchoTrainLength", "TriggerTime", "TemporalPositionIdentifier",
    "NumberOfTemporalPositions", "MagneticFieldStrength", "ScanningSequence",
    "SequenceName", "DiffusionBValue", "DiffusionGradientOrientation", "KVP",
    # enhanced multi-frame (functional groups)
    "EffectiveEchoTime", "InStackPositionNumber", "TemporalPositionIndex", "StackID",
    "ComplexImageComponent", "FrameType", "AcquisitionContrast", "DimensionIndexValues",
    "FrameAcquisitionNumber", "InversionTimes", "FrameAcquisitionDateTime",
)

_PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}  # Pixel Data, Float, Double Float
_DEFER = 16 * 1024  # values larger than this are skipped by position, not read
_FG_TAGS = (0x52009229, 0x52009230)  # Shared, Per-Frame Functional Groups Sequence
_ENCAPSULATED_NATIVE = {ImplicitVRLittleEndian, "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}


class HeaderError(Exception):
    """A file cannot be indexed; ``str(err)`` says why (shown in skip reports)."""


def _looks_like_raw_dataset(fp) -> bool:
    """True for files without preamble that start with a group 0002/0008 element."""
    fp.seek(0)
    start = fp.read(4)
    fp.seek(0)
    return len(start) == 4 and start[1] == 0 and start[0] in (0x02, 0x08) and start[3] == 0


def _read_dataset(fp, path: str) -> tuple[Dataset, dict[str, Any]]:
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
    if found:
        found["element_start"] = fp.tell()
    return ds, found


def _get(ds: Dataset, attr: Attribute) -> Any:
    """The plain value of one attribute in a dataset, None when absent."""
    tag = attr.tag
    if tag is None or tag not in ds:
        return None
    try:
        return plain_value(ds[tag].value)
    except Exception:  # noqa: BLE001 - a malformed value is treated as absent
        return None


def _flatten_group(item: Dataset, wanted: dict[int, str], out: dict[str, Any], depth: int) -> None:
    """Copy wanted attributes from a functional-group item and its nested macros."""
    for elem in item:
        tag = int(elem.tag)
        if elem.VR == "SQ":
            if depth < 3 and elem.value:
                # Macros hold one item; the first carries the frame's values.
                _flatten_group(elem.value[0], wanted, out, depth + 1)
            continue
        column = wanted.get(tag)
        if column is not None:
            value = plain_value(elem.value)
            if value is not None:
                out[column] = value


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
    """Set the derived ``SlicePosition``: ImagePositionPatient on the slice normal."""
    ipp, iop = row.get("ImagePositionPatient"), row.get("ImageOrientationPatient")
    if (
        isinstance(ipp, tuple) and len(ipp) == 3 and isinstance(iop, tuple) and len(iop) == 6
    ):
        normal = np.cross(np.asarray(iop[:3], float), np.asarray(iop[3:], float))
        row["SlicePosition"] = round(float(np.dot(normal, np.asarray(ipp, float))), 6)


def _frame_bytes(row: dict[str, Any]) -> int | None:
    """Bytes per native frame, None when frames are not byte-addressable."""
    bits = row.get("BitsAllocated")
    if not bits or bits % 8 or row.get("PhotometricInterpretation") == "YBR_FULL_422":
        return None
    return int(row["Rows"]) * int(row["Columns"]) * int(row.get("SamplesPerPixel") or 1) * (
        bits // 8
    )


def read_header(
    path: str | os.PathLike, extra: Sequence[Attribute] = ()
) -> list[dict[str, Any]]:
    """Read the header of one file into one row per frame.

    Parameters
    ----------
    path : str or PathLike
        The file.
    extra : sequence of Attribute
        Attributes to keep in addition to :data:`KEYWORDS` (e.g. private tags).

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
    attrs = [resolve(k) for k in KEYWORDS] + [a for a in extra if not a.derived]
    try:
        with open(path, "rb") as fp:
            size = os.fstat(fp.fileno()).st_size
            if size == 0:
                raise HeaderError("empty file")
            ds, pixel = _read_dataset(fp, str(path))
            return _rows(ds, pixel, attrs, size)
    except HeaderError:
        raise
    except PermissionError as exc:
        raise HeaderError(f"permission denied ({exc.strerror})") from None
    except OSError as exc:
        raise HeaderError(f"cannot read ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - never let one bad file crash a scan
        raise HeaderError(f"unreadable DICOM header ({type(exc).__name__}: {exc})") from None


def _rows(
    ds: Dataset, pixel: dict[str, Any], attrs: list[Attribute], size: int
) -> list[dict[str, Any]]:
    if "SOPClassUID" not in ds and "PatientID" not in ds and "Rows" not in ds:
        raise HeaderError("no DICOM attributes found")
    base: dict[str, Any] = {a.column: _get(ds, a) for a in attrs}
    ts = _transfer_syntax(ds)
    base["TransferSyntaxUID"] = ts
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
    implicit, _ = ds.original_encoding
    vr = pixel["vr"]
    header = 12 if (not implicit and vr in EXPLICIT_VR_LENGTH_32) else 8
    value_offset = pixel["element_start"] + header
    length = pixel["length"]
    n_frames = int(base.get("NumberOfFrames") or 1)
    encapsulated = length == 0xFFFFFFFF
    deflated = UID(ts) == DeflatedExplicitVRLittleEndian
    frame_bytes = None if encapsulated or deflated else _frame_bytes(base)
    if value_offset > size:
        raise HeaderError("Pixel Data starts past the end of the file")
    if not encapsulated and not deflated and value_offset + length > size:
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

    groups = [ds[t].value if t in ds else None for t in _FG_TAGS]
    wanted = {a.tag: a.column for a in attrs if a.tag is not None}
    shared: dict[str, Any] = {}
    if groups[0]:
        _flatten_group(groups[0][0], wanted, shared, 0)
    per_frame = groups[1] or ()
    rows = []
    for i in range(n_frames):
        row = dict(base)
        row.update(shared)
        if i < len(per_frame):
            _flatten_group(per_frame[i], wanted, row, 0)
        row["FrameNumber"] = i + 1
        if frame_bytes is not None:
            row["FrameOffset"] = value_offset + i * frame_bytes
            row["FrameLength"] = frame_bytes
        else:
            row["FrameOffset"] = row["FrameLength"] = -1
        add_slice_position(row)
        rows.append(row)
    return rows


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
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1) if "PixelData" in ds or True else 1
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
