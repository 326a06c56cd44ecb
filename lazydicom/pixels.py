"""Read one frame's pixels, knowing from the index where its bytes are.

A :class:`FrameRef` is everything needed to read a frame without parsing
its header again: a small frozen record that pickles in microseconds, so
dask can ship it to threads, processes or cluster workers.

Native (uncompressed) frames are one positioned read of the recorded bytes
and a ``numpy.frombuffer`` view: this is the hot path, measured at the
raw-read limit. Everything else (encapsulated transfer syntaxes, bit-packed
or sub-sampled native data, 8-bit big endian) goes to pydicom's decoders,
positioned at the Pixel Data value so that pydicom's offset-table and
fragment logic reads only the frame asked for. Deflated files, whose bytes
cannot be addressed, are read whole by pydicom.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from .errors import FrameReadError, InconsistentFramesError, MissingDecoderError

__all__ = ["FrameRef", "read_frame", "stored_dtype", "frame_shape"]

_BIG_ENDIAN = "1.2.840.10008.1.2.2"
_COLOUR = (
    "RGB",
    "YBR_FULL",
    "YBR_FULL_422",
    "YBR_ICT",
    "YBR_RCT",
    "YBR_PARTIAL_420",
    "PALETTE COLOR",
)


@dataclass(frozen=True, slots=True)
class FrameRef:
    """Where one frame lives and how its bytes are laid out.

    ``frame_offset``/``frame_length`` address the bytes of a native frame
    (-1 when the frame must be decoded from ``pixel_offset``, the start of
    the Pixel Data value; -1 there means the file must be read whole).
    ``size`` and ``mtime`` identify the file version the index saw.
    """

    path: str
    index: int  # 0-based frame index within the file
    number_of_frames: int
    pixel_offset: int
    frame_offset: int
    frame_length: int
    transfer_syntax: str
    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric: str
    planar_configuration: int
    slope: float
    intercept: float
    size: int
    mtime: int

    @property
    def colour(self) -> bool:
        return self.samples_per_pixel == 3 or self.photometric == "PALETTE COLOR"


def stored_dtype(
    bits_allocated: int,
    pixel_representation: int,
    photometric: str = "",
    palette_bits: int | None = None,
) -> np.dtype:
    """The numpy dtype pydicom returns for frames with this pixel description."""
    if photometric == "PALETTE COLOR":
        return np.dtype(np.uint8 if palette_bits == 8 else np.uint16)
    if bits_allocated == 1:
        return np.dtype(np.uint8)
    if bits_allocated not in (8, 16, 32, 64):
        raise InconsistentFramesError(f"BitsAllocated {bits_allocated} is not supported")
    kind = "i" if pixel_representation == 1 else "u"
    return np.dtype(f"{kind}{bits_allocated // 8}")


def frame_shape(ref: FrameRef) -> tuple[int, ...]:
    """Shape of the frame as lazydicom returns it: ``(x, y)`` or ``(x, y, 3)``."""
    return (ref.columns, ref.rows, 3) if ref.colour else (ref.columns, ref.rows)


def _fast_native(ref: FrameRef) -> bool:
    return (
        ref.frame_offset >= 0
        and ref.bits_allocated in (8, 16, 32, 64)
        and not (ref.transfer_syntax == _BIG_ENDIAN and ref.bits_allocated == 8)
        and ref.photometric in ("MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR")
    )


def _read_native(ref: FrameRef) -> np.ndarray:
    """One positioned read of the frame's bytes, viewed as (rows, cols[, samples])."""
    fd = os.open(ref.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        data = os.pread(fd, ref.frame_length, ref.frame_offset)
    finally:
        os.close(fd)
    if len(data) != ref.frame_length:
        raise FrameReadError(
            f"{ref.path!r} is shorter than indexed: frame {ref.index + 1} needs "
            f"{ref.frame_length} bytes at offset {ref.frame_offset}; re-open the database"
        )
    dtype = stored_dtype(ref.bits_allocated, ref.pixel_representation)
    if ref.transfer_syntax == _BIG_ENDIAN:
        dtype = dtype.newbyteorder(">")
    arr = np.frombuffer(data, dtype=dtype)
    if ref.transfer_syntax == _BIG_ENDIAN:
        arr = arr.astype(dtype.newbyteorder("="))
    spp = ref.samples_per_pixel
    if spp == 1:
        arr = arr.reshape(ref.rows, ref.columns)
    elif ref.planar_configuration == 1:
        arr = arr.reshape(spp, ref.rows, ref.columns).transpose(1, 2, 0)
    else:
        arr = arr.reshape(ref.rows, ref.columns, spp)
    if ref.pixel_representation == 1 and ref.bits_stored < ref.bits_allocated:
        # sign-extend from BitsStored, as pydicom does
        shift = ref.bits_allocated - ref.bits_stored
        arr = (arr << shift) >> shift
    return arr


def _decoder_options(ref: FrameRef) -> dict:
    return dict(
        rows=ref.rows,
        columns=ref.columns,
        samples_per_pixel=ref.samples_per_pixel,
        bits_allocated=ref.bits_allocated,
        bits_stored=ref.bits_stored,
        pixel_representation=ref.pixel_representation,
        photometric_interpretation=ref.photometric,
        number_of_frames=ref.number_of_frames,
        planar_configuration=ref.planar_configuration,
        pixel_keyword="PixelData",
    )


def _read_decoded(ref: FrameRef) -> np.ndarray:
    """Decode one frame with pydicom's decoders (no hand-written codecs)."""
    import pydicom
    from pydicom.pixels import get_decoder

    if ref.pixel_offset < 0:  # e.g. Deflated: pydicom reads the file whole
        return pydicom.pixels.pixel_array(ref.path, index=ref.index)
    try:
        decoder = get_decoder(ref.transfer_syntax)
    except NotImplementedError:
        raise MissingDecoderError(
            f"pydicom has no decoder for transfer syntax {ref.transfer_syntax!r} "
            f"(file {ref.path!r})"
        ) from None
    if not decoder.is_available:
        missing = "; ".join(str(m) for m in decoder.missing_dependencies)
        raise MissingDecoderError(
            f"Cannot decode {ref.path!r}: no plugin for {decoder.UID.name} is installed "
            f"({missing}). Install lazydicom's codecs extra: pip install 'lazydicom[codecs]'"
        )
    with open(ref.path, "rb") as f:
        f.seek(ref.pixel_offset)
        arr, _ = decoder.as_array(f, index=ref.index, **_decoder_options(ref))
    return arr


@functools.lru_cache(maxsize=64)
def _palette(path: str, mtime: int):
    import pydicom

    return pydicom.dcmread(path, stop_before_pixels=True)


def read_frame(ref: FrameRef, rescale: bool = True) -> np.ndarray:
    """Read one frame as ``(x, y)`` (or ``(x, y, 3)`` for colour).

    Parameters
    ----------
    ref : FrameRef
        The frame.
    rescale : bool
        Apply RescaleSlope/Intercept (as float32) when they are not 1/0.

    Returns
    -------
    numpy.ndarray
        A transposed view of the frame as stored (or decoded): ``arr[x, y]``
        is the pixel in column x, row y, so ``arr.T`` equals pydicom's
        ``pixel_array`` for the frame.

    Raises
    ------
    MissingDecoderError
        No plugin to decode the frame's transfer syntax (an ImportError).
    FrameReadError
        The file is missing, unreadable or shorter than indexed.
    """
    try:
        arr = _read_native(ref) if _fast_native(ref) else _read_decoded(ref)
    except (MissingDecoderError, FrameReadError):
        raise
    except FileNotFoundError:
        raise FrameReadError(
            f"{ref.path!r} was removed after it was indexed; refresh the database"
        ) from None
    except OSError as exc:
        raise FrameReadError(f"Cannot read frame {ref.index + 1} of {ref.path!r}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - decoders raise many types; name the file
        raise FrameReadError(
            f"Cannot decode frame {ref.index + 1} of {ref.path!r} ({type(exc).__name__}: {exc})"
        ) from exc
    if ref.photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, _palette(ref.path, ref.mtime))
    if rescale and (ref.slope != 1 or ref.intercept != 0):
        # in float64, then rounded once: float32 arithmetic loses digits when a
        # large intercept nearly cancels stored * slope (Philips B0 maps)
        arr = (arr * ref.slope + ref.intercept).astype(np.float32)
    return arr.swapaxes(0, 1)
