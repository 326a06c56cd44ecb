"""Headers of written files: coordinate values, geometry and new-series defaults.

A new series ([`lazydicom.zeros`][lazydicom.zeros]) is MR Image Storage, one frame per
file, with every module the MR Image IOD requires: Patient, General Study,
General Series, Frame of Reference, General Equipment, General Image, Image
Plane, Image Pixel, MR Image, VOI LUT and SOP Common. Patient and study
attributes are taken from the index when the PatientID or StudyInstanceUID
given already exists in the database, so a new series joins its study
consistently.

Coordinate values are encoded with the attribute's dictionary VR (private
tags: FD for floats, SL for integers, LO for text) and compared with the
values already in the index as the reader would see them after writing, so
``set_ndarray(coords=...)`` matches cells by value even when a DS string
rounds the number.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import MRImageStorage, generate_uid

from ..errors import InvalidArgumentError
from ..grid import axis_key
from ..tags import Attribute, plain_value, resolve
from ..version import __version__
from .stored import ds_text

__all__ = [
    "Coordinate",
    "coordinate",
    "new_series_dataset",
    "slice_normal",
    "check_attributes",
    "next_series_number",
    "GEOMETRY_DEFAULTS",
]

#: Dims that cannot be coordinates of written frames: identity, file and pixel layout.
_NOT_COORDS = {
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "SOPClassUID",
    "FrameOfReferenceUID",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "NumberOfFrames",
    "RescaleSlope",
    "RescaleIntercept",
    "PixelData",
    "FrameNumber",
    "TransferSyntaxUID",
    "ImageOrientationPatient",
    "PixelSpacing",
    "WindowCenter",
    "WindowWidth",
}
#: Attributes set per frame by the writer; not accepted as ``**attributes``.
_PER_FRAME = _NOT_COORDS - {
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "ImageOrientationPatient",
    "PixelSpacing",
}

GEOMETRY_DEFAULTS = {
    "ImageOrientationPatient": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    "ImagePositionPatient": (0.0, 0.0, 0.0),
    "PixelSpacing": (1.0, 1.0),
}


class Coordinate:
    """One dim of written frames: its attribute, VR and how values are encoded."""

    __slots__ = ("name", "attr", "vr", "geometry")

    def __init__(self, name: Any, attr: Attribute, vr: str, geometry: str | None):
        self.name = name
        self.attr = attr
        self.vr = vr
        #: "location" (SliceLocation/SlicePosition), "position" (ImagePositionPatient) or None
        self.geometry = geometry

    def encode(self, value: Any) -> Any:
        """The value as written: str (or list of str) for text VRs, numbers for binary."""
        multi = isinstance(value, list | tuple | np.ndarray)
        values = list(np.asarray(value).reshape(-1).tolist()) if multi else [value]
        out = [_encode_one(self.name, self.vr, v) for v in values]
        if self.vr in ("US", "SS", "UL", "SL", "FL", "FD", "SV", "UV"):
            return out if multi else out[0]
        return "\\".join(out)

    def key(self, value: Any) -> Any:
        """The index's value (an axis key) of ``value`` once written and read back."""
        if self.geometry == "location" and self.attr.derived:
            return axis_key(round(float(ds_text(_number(self.name, value))), 6))
        encoded = self.encode(value)
        assert self.attr.tag is not None
        elem = DataElement(self.attr.tag, self.vr, encoded)
        return axis_key(plain_value(elem.value))


#: Integers each VR can store (IS: the range DICOM allows, PS3.5 6.2).
_INT_RANGES = {
    "US": (0, 2**16 - 1),
    "SS": (-(2**15), 2**15 - 1),
    "UL": (0, 2**32 - 1),
    "SL": (-(2**31), 2**31 - 1),
    "SV": (-(2**63), 2**63 - 1),
    "UV": (0, 2**64 - 1),
    "IS": (-(2**31), 2**31 - 1),
}
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _number(name: Any, value: Any) -> float:
    if isinstance(value, str | bytes):
        raise InvalidArgumentError(f"{name!r} values must be numbers, got {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgumentError(f"{name!r} values must be numbers, got {value!r}") from None
    if not math.isfinite(f):
        raise InvalidArgumentError(f"{name!r} values must be finite numbers, got {value!r}")
    return f


def _integer(name: Any, vr: str, value: Any) -> int:
    """An integer ``vr`` can store, exactly (Python ints are not rounded through float)."""
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    else:
        f = _number(name, value)
        if not f.is_integer():
            raise InvalidArgumentError(f"{name!r} ({vr}) takes integers; {value!r} is not one")
        n = int(f)
    low, high = _INT_RANGES[vr]
    if not low <= n <= high:
        raise InvalidArgumentError(
            f"{name!r} ({vr}) stores integers from {low} to {high}; {value!r} is out of range"
        )
    return n


def _encode_one(name: Any, vr: str, v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if vr == "DS":
        return ds_text(_number(name, v))
    if vr == "IS":
        return str(_integer(name, vr, v))
    if vr in ("US", "SS", "UL", "SL", "SV", "UV"):
        return _integer(name, vr, v)
    if vr == "FL":
        f = _number(name, v)
        if abs(f) > _FLOAT32_MAX:
            raise InvalidArgumentError(
                f"{name!r} is FL (a 32-bit float, at most {_FLOAT32_MAX:.7g} in magnitude); "
                f"{v!r} would be stored as infinity"
            )
        return f
    if vr == "FD":
        return _number(name, v)
    if vr == "DA" and isinstance(v, _dt.date):
        return v.strftime("%Y%m%d")
    if vr == "TM" and isinstance(v, _dt.time):
        return v.strftime("%H%M%S.%f")
    if vr == "DT" and isinstance(v, _dt.datetime):
        return v.strftime("%Y%m%d%H%M%S.%f")
    if vr in (
        "AE",
        "AS",
        "CS",
        "DA",
        "DT",
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
    ):
        if isinstance(v, bytes):
            v = v.decode()
        return str(v)
    raise InvalidArgumentError(
        f"{name!r} has VR {vr}; it cannot be a coordinate of written frames"
    )


def coordinate(name: Any) -> Coordinate:
    """Resolve a dim to a ``Coordinate``; refuse dims a writer cannot set.

    Raises
    ------
    UnknownAttributeError
        Not a keyword, tag or derived attribute (a KeyError).
    ValueError
        An identity, file-layout or pixel attribute, or a derived attribute other
        than SlicePosition.
    """
    attr = resolve(name)
    if attr.derived:
        if attr.column != "SlicePosition":
            raise InvalidArgumentError(f"{name!r} is derived by lazydicom and cannot be written")
        return Coordinate(name, attr, "DS", "location")
    if attr.column in _NOT_COORDS:
        raise InvalidArgumentError(
            f"{name!r} cannot be a coordinate of written frames: it identifies the "
            "series or describes the pixel layout, which the writer sets itself"
        )
    assert attr.tag is not None
    if attr.tag >> 16 & 1:
        vr = None
    else:
        try:
            vr = str(dictionary_VR(attr.tag))
        except KeyError:
            vr = None
    if vr is None or " or " in vr:
        vr = ""  # decided from the first value (see coordinates())
    geometry = {"SliceLocation": "location", "ImagePositionPatient": "position"}.get(attr.column)
    return Coordinate(name, attr, vr, geometry)


def fix_private_vr(coord: Coordinate, values: Sequence[Any]) -> None:
    """Private and ambiguous tags: the VR follows the type of the values."""
    if coord.vr:
        return
    sample = values[0] if len(values) else 0.0
    if isinstance(sample, np.generic):
        sample = sample.item()
    if isinstance(sample, bool | int):
        coord.vr = "SL"
    elif isinstance(sample, float):
        coord.vr = "FD"
    else:
        coord.vr = "LO"


def slice_normal(iop: Sequence[float]) -> np.ndarray:
    """The unit normal of the slice plane of an ImageOrientationPatient."""
    row, col = np.asarray(iop[:3], float), np.asarray(iop[3:6], float)
    normal = np.cross(row, col)
    norm = np.linalg.norm(normal)
    return normal / norm if norm else np.array([0.0, 0.0, 1.0])


def check_attributes(attributes: Mapping[str, Any]) -> None:
    """Refuse ``**attributes`` that are not keywords or that the writer sets per frame."""
    for k in attributes:
        resolve(k)  # UnknownAttributeError for typos
        if tag_for_keyword(k) is None:
            raise InvalidArgumentError(
                f"{k!r} is not a DICOM keyword that can be set on a new series"
            )
        if k in _PER_FRAME or k in ("SOPClassUID", "SOPInstanceUID", "InstanceNumber"):
            raise InvalidArgumentError(
                f"{k!r} is set by the writer for every frame; it cannot be given"
            )
    if "Modality" in attributes and attributes["Modality"] != "MR":
        raise InvalidArgumentError(
            f"zeros writes MR Image Storage, whose Modality is 'MR'; got "
            f"Modality={attributes['Modality']!r}"
        )


def _now() -> tuple[str, str]:
    now = _dt.datetime.now()
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S")


def _existing(table: pd.DataFrame, column: str, value: Any) -> pd.Series | None:
    if value is None or not len(table) or column not in table.columns:
        return None
    rows = table[table[column] == value]
    return None if not len(rows) else rows.iloc[0]


_PATIENT = ("PatientName", "PatientBirthDate", "PatientSex")
_STUDY = ("StudyDate", "StudyTime", "StudyID", "AccessionNumber", "StudyDescription")


def new_series_dataset(attributes: Mapping[str, Any], table: pd.DataFrame) -> Dataset:
    """The shared header of a new MR series (per-frame elements are set later).

    ``table`` is the database index: an existing StudyInstanceUID or PatientID
    in ``attributes`` brings that study's or patient's attributes along.
    """
    date, time = _now()
    ds = Dataset()
    # SOP Common, General Image, General Series, Equipment
    ds.SOPClassUID = MRImageStorage
    ds.ImageType = ["DERIVED", "PRIMARY", "OTHER"]
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.Modality = "MR"
    ds.Manufacturer = "lazydicom"
    ds.ManufacturerModelName = "lazydicom"
    ds.SoftwareVersions = __version__
    # Patient
    ds.PatientName = "LAZYDICOM^ZEROS"
    ds.PatientID = "LAZYDICOM"
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    # Study
    ds.StudyInstanceUID = generate_uid()
    ds.StudyDate, ds.StudyTime = date, time
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.StudyDescription = "lazydicom"
    # Series
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesDate, ds.SeriesTime = date, time
    ds.SeriesDescription = "zeros"
    ds.PatientPosition = "HFS"
    ds.Laterality = ""
    ds.ContentDate, ds.ContentTime = date, time
    # Frame of Reference
    ds.FrameOfReferenceUID = generate_uid()
    ds.PositionReferenceIndicator = ""
    # Image Plane (per-frame: ImagePositionPatient, SliceLocation)
    ds.ImageOrientationPatient = [ds_text(v) for v in GEOMETRY_DEFAULTS["ImageOrientationPatient"]]
    ds.PixelSpacing = [ds_text(v) for v in GEOMETRY_DEFAULTS["PixelSpacing"]]
    ds.SliceThickness = "1"
    # MR Image (acquisition attributes are unknown: type 2 empty)
    ds.ScanningSequence = "RM"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = ""
    ds.EchoTime = ""
    ds.EchoTrainLength = ""

    study = _existing(table, "StudyInstanceUID", attributes.get("StudyInstanceUID"))
    patient_id = attributes.get("PatientID", study["PatientID"] if study is not None else None)
    patient = _existing(table, "PatientID", patient_id)
    if study is not None:
        for k in _STUDY + ("StudyInstanceUID",):
            _set_from_index(ds, k, study.get(k))
    if patient is not None:
        for k in _PATIENT + ("PatientID",):
            _set_from_index(ds, k, patient.get(k))
    if study is not None and "SeriesNumber" not in attributes:
        ds.SeriesNumber = next_series_number(table, study["StudyInstanceUID"])
    else:
        ds.SeriesNumber = 1
    for k, v in attributes.items():
        setattr(ds, k, _dicom_value(k, v))
    if any(not str(e.value).isascii() for e in ds if e.VR in ("PN", "LO", "SH", "ST", "LT", "UT")):
        ds.SpecificCharacterSet = "ISO_IR 192"
    return ds


def next_series_number(table: pd.DataFrame, study_uid: Any) -> int:
    """One more than the largest SeriesNumber of the study in the index (1 if none)."""
    if not len(table) or "StudyInstanceUID" not in table.columns:
        return 1
    numbers = pd.to_numeric(
        table.loc[table["StudyInstanceUID"] == study_uid, "SeriesNumber"], errors="coerce"
    )
    return int(numbers.max()) + 1 if numbers.notna().any() else 1


def _set_from_index(ds: Dataset, keyword: str, value: Any) -> None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return
    setattr(ds, keyword, _dicom_value(keyword, value))


def _dicom_value(keyword: str, value: Any) -> Any:
    """A Python value as pydicom takes it for ``keyword`` (numbers to DS/IS text)."""
    tag = tag_for_keyword(keyword)
    vr = str(dictionary_VR(tag)) if tag is not None else ""
    if vr in ("DS", "IS"):
        return Coordinate(keyword, resolve(keyword), vr, None).encode(value).split("\\")
    if vr in ("US", "SS", "UL", "SL", "SV", "UV", "FL", "FD"):  # checked against the VR's range
        return Coordinate(keyword, resolve(keyword), vr, None).encode(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
