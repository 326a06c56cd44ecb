"""Read frames into their slots of an array, knowing from the index where their bytes are.

A ``FrameTable`` is the columnar description of a set of frames (numpy
arrays, one entry per frame, plus a few unique files and pixel formats): it
pickles quickly, so dask can ship it to threads, processes or cluster workers,
and it costs a few dozen bytes per frame instead of a Python object each.

``read_frames`` fills slots of a Fortran-ordered array ``(x, y, n[, 3])``:
slot ``k`` is ``out[:, :, k]``, whose memory is exactly a DICOM frame's
``(rows, columns)`` in C order, so a frame lands as one contiguous write.
Frames are grouped by file: each file is opened once per call, checked
against the size and modification time the index saw (a file changed since
it was indexed is an error, never a read at stale offsets), and its frames
are read in file order.

- Native (uncompressed) frames are one positioned read of the recorded bytes,
  straight into the slot when no conversion applies (the raw-read limit).
- Encapsulated frames with a recorded span are one positioned read of their
  fragment items, decoded by [`lazydicom.decoders.decode_frame`][lazydicom.decoders.decode_frame].
- Everything else (Deflated files, bit-packed data, fragments that only a
  codec can split) goes to pydicom's decoders.

Rescale (RescaleSlope/Intercept) is applied on the way into the slot: in
float32 when float32 arithmetic is exact (integer slope and intercept and
values below 2**24, e.g. CT's -1024), else in float64 rounded once to float32
(Philips maps whose intercept nearly cancels stored * slope keep every digit).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .decoders import decode_frame
from .errors import FrameReadError, InconsistentFramesError, MissingDecoderError
from .fragments import FragmentError, codestream

__all__ = [
    "PixelFormat", "FrameTable", "FrameSource", "FrameCacheLike", "read_frames", "store_frame",
    "NATIVE_SYNTAXES", "decode_whole_file",
]

_BIG_ENDIAN = "1.2.840.10008.1.2.2"
_DEFLATED = "1.2.840.10008.1.2.1.99"
#: Transfer syntaxes whose Pixel Data is native (not encapsulated).
NATIVE_SYNTAXES = frozenset(
    {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", _BIG_ENDIAN, _DEFLATED}
)
_COLOUR = frozenset(
    {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420",
     "PALETTE COLOR"}
)
_FLOAT32_EXACT = 2**24  # integers below this are exact in float32


@dataclass(frozen=True, slots=True)
class PixelFormat:
    """How the pixels of a file's frames are encoded (shared by many frames).

    ``palette_bits`` is the bit depth of a PALETTE COLOR lookup table (0 otherwise).
    """

    transfer_syntax: str
    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric: str
    planar_configuration: int
    number_of_frames: int
    palette_bits: int = 0

    @property
    def colour(self) -> bool:
        """True for frames returned as RGB (a trailing axis of 3)."""
        return self.samples_per_pixel == 3 or self.photometric == "PALETTE COLOR"

    @property
    def encapsulated(self) -> bool:
        return self.transfer_syntax not in NATIVE_SYNTAXES

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """Shape of a frame as lazydicom returns it: ``(x, y)`` or ``(x, y, 3)``."""
        return (self.columns, self.rows, 3) if self.colour else (self.columns, self.rows)

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype pydicom returns for these frames (before rescale)."""
        if self.photometric == "PALETTE COLOR":
            return np.dtype(np.uint8 if self.palette_bits == 8 else np.uint16)
        if self.bits_allocated == 1:
            return np.dtype(np.uint8)
        if self.bits_allocated not in (8, 16, 32, 64):
            raise InconsistentFramesError(f"BitsAllocated {self.bits_allocated} is not supported")
        kind = "i" if self.pixel_representation == 1 else "u"
        return np.dtype(f"{kind}{self.bits_allocated // 8}")

    @property
    def readable_natively(self) -> bool:
        """Frames are plain bytes at a known offset (no decoder, no unpacking)."""
        return (
            not self.encapsulated
            and self.transfer_syntax != _DEFLATED
            and self.bits_allocated in (8, 16, 32, 64)
            and not (self.transfer_syntax == _BIG_ENDIAN and self.bits_allocated == 8)
            and self.photometric in ("MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR")
        )

    def decode_options(self) -> dict[str, Any]:
        """Keyword arguments describing the frames to a decoder."""
        return dict(
            rows=self.rows,
            columns=self.columns,
            samples_per_pixel=self.samples_per_pixel,
            bits_allocated=self.bits_allocated,
            bits_stored=self.bits_stored,
            pixel_representation=self.pixel_representation,
            photometric_interpretation=self.photometric,
            planar_configuration=self.planar_configuration,
        )


@dataclass(frozen=True, eq=False)
class FrameTable:
    """Columnar references to frames: where each one is and how it is encoded.

    Per file: ``paths`` (absolute), ``sizes`` and ``mtimes`` (ns) as indexed.
    Per frame: ``file`` (into ``paths``), ``index`` (0-based frame number in
    the file), ``offset``/``length`` (native bytes or fragment span; -1 when
    pydicom must find them), ``pixel_offset`` (start of the Pixel Data value,
    -1 when the file must be read whole), ``format`` (into ``formats``),
    ``slope`` and ``intercept``.
    """

    paths: tuple[str, ...]
    sizes: np.ndarray
    mtimes: np.ndarray
    formats: tuple[PixelFormat, ...]
    file: np.ndarray
    index: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    pixel_offset: np.ndarray
    format: np.ndarray
    slope: np.ndarray
    intercept: np.ndarray
    #: Where the bytes come from: ``None`` for local files (``paths`` are file
    #: paths), else a picklable object with the ``FrameSource`` methods.
    source: FrameSource | None = None

    def __len__(self) -> int:
        return len(self.file)

    def take(self, frames: np.ndarray) -> FrameTable:
        """The table of ``frames`` only (files and formats kept as they are)."""
        return dataclasses.replace(
            self, **{name: getattr(self, name)[frames] for name in _PER_FRAME}
        )

    def rescaled(self, frames: np.ndarray | None = None) -> bool:
        """Whether any of ``frames`` (all by default) has a slope or intercept other than 1/0."""
        slope = self.slope if frames is None else self.slope[frames]
        intercept = self.intercept if frames is None else self.intercept[frames]
        return bool(np.any(slope != 1) or np.any(intercept != 0))

    def identity(self, frame: int) -> tuple[str, int, int, int]:
        """``(path, 0-based frame index, size, mtime)``: the version of a frame's file."""
        f = int(self.file[frame])
        return (self.paths[f], int(self.index[frame]), int(self.sizes[f]), int(self.mtimes[f]))


_PER_FRAME = ("file", "index", "offset", "length", "pixel_offset", "format", "slope", "intercept")


class FrameSource(Protocol):
    """Reads the frames of one file from somewhere other than a local disk.

    A ``FrameTable`` whose ``source`` is set hands each group of frames that
    share a file to ``read_file`` instead of opening ``paths[f]`` locally.
    An implementation fetches the bytes its own way (ranged GETs, WADO-RS)
    and fills each slot with [`store_frame`][lazydicom.pixels.store_frame] so
    that decoding, rescale and palettes behave exactly as for local files.
    It must pickle (dask ships the table to processes and cluster workers).

    A source may also define ``read_files(table, groups, out, rescale,
    cache)``, with ``groups`` a list of ``(frames, slots)`` of one file each:
    ``read_frames`` then hands it every file of a call at once, so that it
    can fetch them concurrently (an object store: one round trip for many
    single-frame objects instead of one per object).
    """

    def read_file(
        self,
        table: FrameTable,
        frames: np.ndarray,
        out: np.ndarray,
        slots: np.ndarray,
        rescale: bool,
        cache: FrameCacheLike | None,
    ) -> None: ...


class FrameCacheLike(Protocol):
    """What ``read_frames`` needs of a frame cache (see ``lazydicom.cache``)."""

    def caches(self, encapsulated: bool) -> bool: ...

    def get(self, identity: tuple[str, int, int, int]) -> np.ndarray | None: ...

    def put(self, identity: tuple[str, int, int, int], frame: np.ndarray) -> None: ...


# ---------------------------------------------------------------- reading


def read_frames(
    table: FrameTable,
    frames: Sequence[int] | np.ndarray,
    out: np.ndarray,
    *,
    fill_value: Any = 0,
    rescale: bool = True,
    cache: FrameCacheLike | None = None,
) -> None:
    """Read ``frames`` of ``table`` into the slots of ``out``; -1 fills a slot.

    Parameters
    ----------
    table : FrameTable
    frames : sequence of int
        Frame number in ``table`` for each slot, -1 for an empty cell.
    out : numpy.ndarray
        ``(x, y, n)`` or ``(x, y, n, 3)``, Fortran-ordered or at least with
        every slot ``out[:, :, k]`` Fortran-contiguous.
    fill_value : scalar
        Value of the empty slots.
    rescale : bool
        Apply RescaleSlope/Intercept (``out`` must then be a float dtype when
        any frame has a slope or intercept other than 1/0).
    cache : optional
        A frame cache: hits open no DICOM file, misses are written to it.

    Raises
    ------
    FrameReadError
        A file is missing, changed since it was indexed, or shorter than indexed,
        or a frame cannot be decoded (an ``OSError``).
    MissingDecoderError
        No installed plugin decodes the transfer syntax (an ``ImportError``).
    """
    frames = np.asarray(frames, dtype=np.int64).reshape(-1)
    if len(frames) != out.shape[2]:
        raise ValueError(f"{len(frames)} frames for {out.shape[2]} slots")
    empty = np.flatnonzero(frames < 0)
    for k in empty.tolist():
        out[:, :, k] = fill_value
    slots = np.flatnonzero(frames >= 0)
    if not slots.size:
        return
    # file order: one open per file, frames in the order they sit in it
    order = np.lexsort((table.offset[frames[slots]], table.index[frames[slots]],
                        table.file[frames[slots]]))
    slots = slots[order]
    files = table.file[frames[slots]]
    bounds = np.flatnonzero(np.diff(files)) + 1
    scratch = _Scratch()
    groups = np.split(slots, bounds)
    read_files = getattr(table.source, "read_files", None)
    if read_files is not None:  # a source that fetches several files at once
        read_files(table, [(frames[g], g) for g in groups], out, rescale, cache)
        return
    for group in groups:
        if table.source is not None:
            table.source.read_file(table, frames[group], out, group, rescale, cache)
        else:
            _read_file(table, frames[group], out, group, rescale, cache, scratch)


class _Scratch:
    """A reusable byte buffer: fresh large allocations cost a page fault per 4 KiB."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = np.empty(0, dtype=np.uint8)

    def get(self, n: int) -> np.ndarray:
        if self.buf.size < n:
            self.buf = np.empty(n, dtype=np.uint8)
        return self.buf[:n]


def _read_file(
    table: FrameTable,
    frames: np.ndarray,
    out: np.ndarray,
    slots: np.ndarray,
    rescale: bool,
    cache: FrameCacheLike | None,
    scratch: _Scratch,
) -> None:
    """Read frames that all live in one file."""
    f = int(table.file[frames[0]])
    path = table.paths[f]
    todo: list[tuple[int, int]] = []
    for frame, slot in zip(frames.tolist(), slots.tolist()):
        fmt = table.formats[table.format[frame]]
        if cache is not None and cache.caches(fmt.encapsulated):
            stored = cache.get(table.identity(frame))
            if stored is not None:
                _store(stored, out[:, :, slot], table, frame, fmt, rescale)
                continue
        todo.append((frame, slot))
    if not todo:
        return
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise FrameReadError(
            f"{path!r} was removed after it was indexed; refresh the database "
            "(db.refresh() or lazydicom index FOLDER)"
        ) from None
    except OSError as exc:
        raise FrameReadError(f"Cannot open {path!r}: {exc.strerror or exc}") from exc
    try:
        _check_version(fd, path, int(table.sizes[f]), int(table.mtimes[f]))
        for frame, slot in todo:
            fmt = table.formats[table.format[frame]]
            try:
                stored = _read_one(fd, path, table, frame, fmt, out[:, :, slot], rescale, scratch)
            except (FrameReadError, MissingDecoderError):
                raise
            except OSError as exc:
                raise FrameReadError(
                    f"Cannot read frame {int(table.index[frame]) + 1} of {path!r}: {exc}"
                ) from exc
            except Exception as exc:  # noqa: BLE001 - decoders raise many types; name the file
                raise FrameReadError(
                    f"Cannot decode frame {int(table.index[frame]) + 1} of {path!r} "
                    f"({type(exc).__name__}: {exc})"
                ) from exc
            if cache is not None and cache.caches(fmt.encapsulated):
                cache.put(table.identity(frame), stored)
    finally:
        os.close(fd)


def _check_version(fd: int, path: str, size: int, mtime: int) -> None:
    """The file must be the version the index saw: same size and modification time."""
    if size < 0 or mtime < 0:
        return
    st = os.fstat(fd)
    if st.st_size != size or st.st_mtime_ns != mtime:
        what = "size" if st.st_size != size else "modification time"
        raise FrameReadError(
            f"{path!r} changed since it was indexed ({what} differs: "
            f"{st.st_size} bytes now, {size} indexed); refresh the database "
            "(db.refresh() or lazydicom index FOLDER) and build the array again"
        )


def _pread(fd: int, path: str, n: int, offset: int, buf: np.ndarray | None = None) -> Any:
    """Exactly ``n`` bytes at ``offset``, into ``buf`` when given; an error if the file is short."""
    data: Any
    if buf is None:
        data = os.pread(fd, n, offset)
        got = len(data)
    else:
        data = buf
        got = os.preadv(fd, [memoryview(buf).cast("B")], offset)  # type: ignore[arg-type]
    if got != n:
        raise FrameReadError(
            f"{path!r} is shorter than indexed: {n} bytes expected at offset {offset}, "
            f"{got} found; refresh the database"
        )
    return data


def _read_one(
    fd: int,
    path: str,
    table: FrameTable,
    frame: int,
    fmt: PixelFormat,
    slot: np.ndarray,
    rescale: bool,
    scratch: _Scratch,
) -> np.ndarray:
    """Read one frame into ``slot`` (``(x, y[, 3])``); return its stored values for a cache."""
    offset, length = int(table.offset[frame]), int(table.length[frame])
    if fmt.readable_natively and offset >= 0:
        dtype = fmt.dtype if fmt.photometric != "PALETTE COLOR" else _index_dtype(fmt)
        direct = (
            not fmt.colour
            and slot.dtype == dtype
            and fmt.transfer_syntax != _BIG_ENDIAN
            and not (rescale and _has_rescale(table, frame))
            and slot.T.flags.c_contiguous
        )
        if direct:
            # the slot's memory is the frame's (rows, cols): read the bytes into place
            _pread(fd, path, length, offset, slot.T)
            _sign_extend(slot, fmt)
            return slot.T  # the stored values, for a cache that keeps native frames
        raw = _pread(fd, path, length, offset, scratch.get(length))
        return store_frame(raw, table, frame, slot, rescale, path=path)
    if fmt.encapsulated and offset >= 0:
        return store_frame(_pread(fd, path, length, offset), table, frame, slot, rescale,
                           path=path)
    stored = _read_with_pydicom(fd, path, table, frame, fmt)
    return store_frame(stored, table, frame, slot, rescale, path=path)


def store_frame(
    data: Any,
    table: FrameTable,
    frame: int,
    slot: np.ndarray,
    rescale: bool = True,
    *,
    path: str | None = None,
    header: Any = None,
) -> np.ndarray:
    """Fill ``slot`` (``(x, y[, 3])``) with frame ``frame`` of ``table`` given its bytes.

    ``data`` is what the file holds for the frame: the native pixel bytes
    (``table.length[frame]`` of them), or the span of fragment items of an
    encapsulated frame (bytes or 1-D uint8), or an already decoded
    ``numpy.ndarray`` of stored values ``(rows, columns[, samples])``.
    Decoding, sign extension, palette colour and rescale are applied as for
    a local read. Returns the stored
    values (what a frame cache keeps). ``header``: the file's pydicom
    dataset, for the lookup tables of PALETTE COLOR frames (read from
    ``path`` when not given; a remote source passes it).

    Raises
    ------
    FrameReadError
        The fragment items are damaged.
    """
    fmt = table.formats[table.format[frame]]
    where = path if path is not None else table.paths[table.file[frame]]
    if isinstance(data, np.ndarray) and data.ndim >= 2:  # decoded already
        stored = data
    elif fmt.encapsulated:
        try:
            stream = codestream(data)
        except FragmentError as exc:
            raise FrameReadError(f"{where!r} changed or is damaged: {exc}") from None
        stored = decode_frame(stream, fmt.transfer_syntax, **fmt.decode_options())
    else:
        stored = _native_view(data, fmt)
    if fmt.photometric == "PALETTE COLOR":
        if header is not None:
            from pydicom.pixels import apply_color_lut

            stored = apply_color_lut(stored, header)
        else:
            stored = _apply_palette(stored, where, int(table.mtimes[table.file[frame]]))
    _store(stored, slot, table, frame, fmt, rescale)
    return stored


def _index_dtype(fmt: PixelFormat) -> np.dtype:
    kind = "i" if fmt.pixel_representation == 1 else "u"
    return np.dtype(f"{kind}{fmt.bits_allocated // 8}")


def _native_view(raw: Any, fmt: PixelFormat) -> np.ndarray:
    """Stored values of a native frame as ``(rows, cols[, samples])``, sign-extended."""
    dtype = _index_dtype(fmt)
    if fmt.transfer_syntax == _BIG_ENDIAN:
        arr = np.frombuffer(raw, dtype=dtype.newbyteorder(">")).astype(dtype)
    else:
        arr = np.frombuffer(raw, dtype=dtype)
    spp = fmt.samples_per_pixel
    if spp == 1:
        arr = arr.reshape(fmt.rows, fmt.columns)
    elif fmt.planar_configuration == 1:
        arr = arr.reshape(spp, fmt.rows, fmt.columns).transpose(1, 2, 0)
    else:
        arr = arr.reshape(fmt.rows, fmt.columns, spp)
    if fmt.pixel_representation == 1 and fmt.bits_stored < fmt.bits_allocated:
        shift = fmt.bits_allocated - fmt.bits_stored
        arr = (arr << shift) >> shift  # sign-extend from BitsStored, as pydicom does
    return arr


def _sign_extend(slot: np.ndarray, fmt: PixelFormat) -> None:
    if fmt.pixel_representation == 1 and 0 < fmt.bits_stored < fmt.bits_allocated:
        shift = fmt.bits_allocated - fmt.bits_stored
        np.left_shift(slot, shift, out=slot)
        np.right_shift(slot, shift, out=slot)


def _has_rescale(table: FrameTable, frame: int) -> bool:
    return bool(table.slope[frame] != 1 or table.intercept[frame] != 0)


def _store(
    stored: np.ndarray, slot: np.ndarray, table: FrameTable, frame: int, fmt: PixelFormat,
    rescale: bool,
) -> None:
    """Write stored values ``(rows, cols[, s])`` into ``slot`` ``(x, y[, s])``, rescaled."""
    source = stored.swapaxes(0, 1)
    if not (rescale and _has_rescale(table, frame)):
        np.copyto(slot, source, casting="unsafe")
        return
    slope, intercept = float(table.slope[frame]), float(table.intercept[frame])
    if slot.dtype == np.float32 and _exact_in_float32(stored.dtype, fmt, slope, intercept):
        np.multiply(source, np.float32(slope), out=slot, casting="unsafe")
        if intercept:
            np.add(slot, np.float32(intercept), out=slot)
        return
    # in float64, then rounded once: float32 arithmetic loses digits when a
    # large intercept nearly cancels stored * slope (Philips B0 maps)
    values = np.multiply(source, slope, dtype=np.float64)
    values += intercept
    np.copyto(slot, values, casting="unsafe")


def _exact_in_float32(dtype: np.dtype, fmt: PixelFormat, slope: float, intercept: float) -> bool:
    """True when stored * slope + intercept is exact in float32 for every stored value."""
    if dtype.kind not in "iu" or not (slope.is_integer() and intercept.is_integer()):
        return False
    bits = fmt.bits_stored if 0 < fmt.bits_stored <= dtype.itemsize * 8 else dtype.itemsize * 8
    largest = 2 ** bits  # |stored| < 2**bits whether signed or not
    return largest * abs(slope) + abs(intercept) < _FLOAT32_EXACT


def _read_with_pydicom(fd: int, path: str, table: FrameTable, frame: int, fmt: PixelFormat
                       ) -> np.ndarray:
    """A frame pydicom must find: positioned at the Pixel Data value, or the whole file."""
    from pydicom.pixels import get_decoder

    index = int(table.index[frame])
    pixel_offset = int(table.pixel_offset[frame])
    if pixel_offset < 0:  # e.g. Deflated: pydicom reads the file whole
        with open(fd, "rb", closefd=False) as f:
            f.seek(0)
            return decode_whole_file(f, index)
    try:
        decoder = get_decoder(fmt.transfer_syntax)
    except NotImplementedError:
        raise MissingDecoderError(
            f"pydicom has no decoder for transfer syntax {fmt.transfer_syntax!r} "
            f"(file {path!r})"
        ) from None
    if not decoder.is_available:
        missing = "; ".join(str(m) for m in decoder.missing_dependencies)
        raise MissingDecoderError(
            f"Cannot decode {path!r}: no plugin for {decoder.UID.name} is installed "
            f"({missing}). Install lazydicom's codecs extra: pip install 'lazydicom[codecs]'"
        )
    with open(fd, "rb", closefd=False) as f:
        f.seek(pixel_offset)
        options: dict[str, Any] = dict(fmt.decode_options(), pixel_keyword="PixelData",
                                       number_of_frames=fmt.number_of_frames)
        arr, _ = decoder.as_array(f, index=index, **options)
    return arr


def decode_whole_file(fp: Any, index: int) -> np.ndarray:
    """Stored values of frame ``index`` (0-based) of a whole DICOM file, decoded by pydicom.

    For files whose frames cannot be reached by position (``PixelDataOffset``
    -1, e.g. Deflated Explicit VR Little Endian): the dataset is read as
    ``dcmread`` reads it (inflating a deflated one; ``pydicom.pixels.pixel_array``
    on a file does not), then its pixels are decoded.
    """
    import pydicom

    ds = pydicom.dcmread(fp)
    arr = ds.pixel_array
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    return arr[index] if frames > 1 else arr


@functools.lru_cache(maxsize=64)
def _palette_dataset(path: str, mtime: int) -> Any:
    import pydicom

    return pydicom.dcmread(path, stop_before_pixels=True)


def _apply_palette(stored: np.ndarray, path: str, mtime: int) -> np.ndarray:
    from pydicom.pixels import apply_color_lut

    return apply_color_lut(stored, _palette_dataset(path, mtime))
