"""How a frame's values are stored: 16-bit integers, with a rescale only when needed.

Every frame is stored with BitsAllocated = BitsStored = 16 (HighBit 15), the
pixel depth of MR Image Storage, chosen per frame from its values:

1. integer values that fit ``uint16`` (or ``int16``, preferred for signed
   integer arrays) are stored as they are, without RescaleSlope/Intercept, so
   they read back exactly and in the stored dtype;
2. other integer values whose range (max - min) is at most 65535 are stored
   exactly as ``uint16`` with RescaleIntercept = min (they read back as
   float32, exact while ``|value| < 2**24``);
3. anything else (fractions, wider ranges) is quantised linearly to the
   frame's own range: RescaleIntercept = min, RescaleSlope = (max - min) /
   65535, so the error is at most half a step, ``(max - min) / 131070`` of the
   frame's range (plus float32 rounding when read back).

NaN and infinity cannot be stored in integer pixels and are refused with a
ValueError that gives the count; nothing is written then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydicom.valuerep import format_number_as_ds

from ..errors import NonFiniteError

__all__ = ["StoredFrame", "store_frame", "store_pixels", "ds_text", "NonFiniteError"]

_U16 = 65535


@dataclass(frozen=True, slots=True)
class StoredFrame:
    """One frame as written: ``pixels`` is ``(rows, columns)`` C-contiguous 16-bit."""

    pixels: np.ndarray
    signed: bool
    slope: float
    intercept: float
    slope_text: str
    intercept_text: str
    window_center: str
    window_width: str

    @property
    def rescaled(self) -> bool:
        return self.slope != 1 or self.intercept != 0


def ds_text(value: float) -> str:
    """A number as a DICOM DS string (at most 16 characters), integers without '.0'."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format_number_as_ds(value)


def _window(lo: float, hi: float) -> tuple[str, str]:
    return ds_text((lo + hi) / 2), ds_text(max(hi - lo, 1.0))


def _stored(
    pixels: np.ndarray, signed: bool, slope: float, intercept: float, lo: float, hi: float
) -> StoredFrame:
    center, width = _window(lo, hi)
    return StoredFrame(
        np.ascontiguousarray(pixels),
        signed,
        slope,
        intercept,
        ds_text(slope),
        ds_text(intercept),
        center,
        width,
    )


def store_frame(frame: np.ndarray, prefer_signed: bool = False) -> StoredFrame:
    """Choose the stored representation of one ``(x, y)`` frame (see module docs).

    Parameters
    ----------
    frame : numpy.ndarray
        ``(x, y)``: x along columns, y along rows, as ``Series.ndarray`` returns.
    prefer_signed : bool
        Store integer values that fit both as ``int16`` (for signed arrays).

    Raises
    ------
    NonFiniteError
        The frame holds NaN or infinity (a ValueError).
    TypeError
        The values are not real numbers.
    """
    return store_pixels(np.asarray(frame).T, prefer_signed)


def store_pixels(data: np.ndarray, prefer_signed: bool = False) -> StoredFrame:
    """As ``store_frame``, for a frame given as ``(rows, columns)``, best contiguous."""
    kind = data.dtype.kind
    if kind == "b":
        data, kind = data.view(np.uint8), "u"
    if kind not in "uif":
        raise TypeError(f"Cannot store {data.dtype} values as DICOM pixels; give real numbers")
    if data.size == 0:
        return _stored(data.astype(np.uint16), False, 1.0, 0.0, 0.0, 0.0)
    lo, hi = data.min().item(), data.max().item()
    if kind == "f" and not (math.isfinite(lo) and math.isfinite(hi)):  # NaN propagates
        bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        raise NonFiniteError(
            f"{bad} NaN or infinite value(s) in a frame; DICOM pixels are integers "
            "and cannot store them. Replace them first, e.g. numpy.nan_to_num(array). "
            "Nothing was written."
        )
    integral = kind in "ui" or (hi - lo <= _U16 and bool(np.all(np.floor(data) == data)))
    if integral:
        lo, hi = int(lo), int(hi)
        if prefer_signed and -32768 <= lo and hi <= 32767:
            return _stored(data.astype(np.int16, copy=False), True, 1.0, 0.0, lo, hi)
        if 0 <= lo and hi <= _U16:
            return _stored(data.astype(np.uint16, copy=False), False, 1.0, 0.0, lo, hi)
        if -32768 <= lo and hi <= 32767:
            return _stored(data.astype(np.int16, copy=False), True, 1.0, 0.0, lo, hi)
        if hi - lo <= _U16:
            shifted = data.astype(np.int64) - lo if kind != "f" else data - lo
            return _stored(shifted.astype(np.uint16), False, 1.0, float(lo), lo, hi)
    # quantise to the frame's range with the slope and intercept as they will be read
    intercept = float(ds_text(lo))
    slope = float(ds_text((hi - intercept) / _U16)) or 1.0
    if intercept + slope * _U16 < hi:  # DS rounding made the step too small
        slope = float(ds_text(slope * (1 + 1e-9)))
    q = data.astype(np.float64)
    q -= intercept
    q *= 1.0 / slope
    q += 0.5  # values are >= 0 (up to rounding): truncation below rounds to nearest
    np.clip(q, 0, _U16, out=q)
    return _stored(q.astype(np.uint16), False, slope, intercept, lo, hi)
