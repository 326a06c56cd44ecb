"""Names of attributes: DICOM keywords, tags and derived attributes.

Users speak DICOM keywords (``"FlipAngle"``) but may also give a tag as an
integer (``0x00180080``), as text (``"(0018,0080)"``, ``"0018,0080"``,
``"00180080"``) or a private tag (``"(2005,100E)"``). Every name resolves to one
*column* of the index: the keyword for dictionary tags, ``"(GGGG,EEEE)"`` for
private or unknown tags, and the name itself for derived attributes.

Also owns the conversion of pydicom values to plain, hashable, comparable
Python values (float, int, str, tuples of those) that the index stores.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import numpy as np
from pydicom.datadict import dictionary_VR, keyword_dict, keyword_for_tag, tag_for_keyword
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.valuerep import DA, DT, TM, PersonName

from .errors import UnknownAttributeError

__all__ = ["Attribute", "resolve", "suggest", "plain_value", "DERIVED", "KEYWORDS"]

#: Attributes kept in the index for every frame (``lazydicom.schema`` types
#: them; here so that reading headers needs no pandas). Anything else is read on
#: demand (see ``lazydicom.index.Index.ensure``).
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
)  # fmt: skip

#: Attributes computed by lazydicom rather than read from one element.
DERIVED = {
    "FrameNumber": "1-based number of the frame within its file",
    "SlicePosition": "ImagePositionPatient projected on the slice normal (mm)",
}

_TAG_TEXT = re.compile(r"^\(?\s*([0-9A-Fa-f]{4})\s*,?\s*([0-9A-Fa-f]{4})\s*\)?$")
_HEX_TAG = re.compile(r"^(0x)?([0-9A-Fa-f]{8})$")


@dataclass(frozen=True, slots=True)
class Attribute:
    """One resolved attribute name.

    Attributes
    ----------
    column : str
        The index column holding its values.
    tag : int or None
        The DICOM tag, None for derived attributes.
    """

    column: str
    tag: int | None

    @property
    def derived(self) -> bool:
        return self.tag is None


def _column_for_tag(tag: int) -> str:
    keyword = keyword_for_tag(tag)
    if keyword and not (tag >> 16) % 2:
        return keyword
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def resolve(name: str | int) -> Attribute:
    """Resolve a keyword, tag or derived attribute to its index column.

    Parameters
    ----------
    name : str or int
        ``"FlipAngle"``, ``0x00180080``, ``"(0018,0080)"``, ``"0018,0080"``,
        ``"00180080"``, a private tag such as ``"(2005,100E)"`` or a derived
        attribute (``"FrameNumber"``, ``"SlicePosition"``).

    Returns
    -------
    Attribute

    Raises
    ------
    UnknownAttributeError
        If the name is neither a keyword, a tag nor a derived attribute.

    Examples
    --------
    >>> resolve("FlipAngle") == Attribute("FlipAngle", 0x00181314)
    True
    >>> resolve("(0018,0080)").column
    'RepetitionTime'
    >>> resolve(0x2005100E).column
    '(2005,100E)'
    """
    if isinstance(name, Attribute):
        return name
    if isinstance(name, int) and not isinstance(name, bool):
        if not 0 <= name <= 0xFFFFFFFF:
            raise UnknownAttributeError(f"{name!r} is not a DICOM tag (0 to 0xFFFFFFFF)")
        return Attribute(_column_for_tag(name), name)
    if not isinstance(name, str):
        raise UnknownAttributeError(
            f"An attribute is a DICOM keyword, a tag or a derived name, not {name!r}"
        )
    if name in DERIVED:
        return Attribute(name, None)
    tag = tag_for_keyword(name)
    if tag is not None:
        return Attribute(name, tag)
    match = _TAG_TEXT.match(name.strip()) or None
    if match:
        return resolve(int(match.group(1) + match.group(2), 16))
    match = _HEX_TAG.match(name.strip())
    if match:
        return resolve(int(match.group(2), 16))
    close = suggest(name)
    hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    raise UnknownAttributeError(
        f"{name!r} is not a DICOM keyword, a tag such as '(0018,0080)' or 0x00180080, "
        f"nor a derived attribute ({', '.join(sorted(DERIVED))}); {hint}"
        "keywords are case-sensitive, e.g. 'FlipAngle'"
    )


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    names = {k: k for k in keyword_dict}
    names.update({k: k for k in DERIVED})
    return names


def suggest(name: str, n: int = 3) -> list[str]:
    """Keywords (or derived attributes) close to a misspelt ``name``, best first.

    Examples
    --------
    >>> suggest("FlipAngel")
    ['FlipAngle']
    >>> suggest("sliceLocation")
    ['SliceLocation']
    """
    names = _names()
    exact = [k for k in names if k.lower() == name.lower()]
    if exact:
        return exact[:n]
    return difflib.get_close_matches(name, list(names), n=n, cutoff=0.8)


def vr_of(tag: int) -> str | None:
    """The dictionary VR of a tag, or None for private and unknown tags."""
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


def _scalar(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, DA | DT | TM):
        # read with pydicom.config.datetime_conversion on: keep the DICOM text
        return str(value.original_string).strip()
    if isinstance(value, Decimal):  # DS read with config.use_DS_decimal
        return float(value)
    if isinstance(value, int):  # IS and other int subclasses become plain int
        return int(value)
    if isinstance(value, str):  # UID, PersonName-like str subclasses
        return str(value)
    if isinstance(value, float):  # DSfloat, IS are subclasses
        return float(value)
    if isinstance(value, PersonName):
        return str(value)
    if isinstance(value, bytes | bytearray):
        try:
            text = bytes(value).decode("ascii").strip("\x00 ")
        except UnicodeDecodeError:
            return bytes(value).hex()
        return text
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return str(value)


def plain_value(value: Any) -> Any:
    """Convert a pydicom element value to a plain, hashable Python value.

    Numbers become ``int``/``float`` (IS -> int, DS -> float), person names and
    other strings ``str`` (trailing blanks removed), multi-valued attributes
    tuples, empty values ``None``. Sequences are not plain values (``None``).

    Examples
    --------
    >>> from pydicom.valuerep import DSfloat
    >>> plain_value([DSfloat("1.5"), DSfloat("2")])
    (1.5, 2.0)
    >>> plain_value("AX 5 FLIP ") is None, plain_value("AX 5 FLIP ")
    (False, 'AX 5 FLIP')
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, Sequence):  # pydicom 3's Sequence is not a list
        return None
    if isinstance(value, np.ndarray):  # DS/IS read with config.use_DS_numpy
        value = value.tolist() if value.ndim else [value.item()]
    if isinstance(value, MultiValue | list | tuple):
        if len(value) == 0:
            return None
        if len(value) and hasattr(value[0], "items"):  # a Sequence of datasets
            return None
        items = tuple(_scalar(v) for v in value)
        if len(items) == 1:
            return items[0]
        return items
    if hasattr(value, "items") and hasattr(value, "keys"):  # Dataset
        return None
    if isinstance(value, bytes | bytearray) and len(value) > 256:
        return None
    out = _scalar(value)
    if isinstance(out, str):
        out = out.strip()
        return out or None
    return out
