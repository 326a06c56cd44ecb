"""Synthetic DICOM series for tests, written with pydicom and numpy only.

Every frame's pixels encode the frame's grid cell, so a frame that lands in the
wrong cell, is transposed, or is read with the wrong sign, byte order or bit
depth fails loudly when compared with :func:`expected_ndarray`.

The grid is given as ``coords``: a mapping from DICOM keyword to the values of
that attribute along one axis, e.g. ``{"SliceLocation": [0, 5, 10],
"FlipAngle": [15, 2]}``. A *grid index* is a tuple with one index per key into
those sequences, in the order given (not sorted). :func:`expected_ndarray`
returns the array the ndarray semantics of ``design.md`` must produce for
``dims=tuple(coords)``: shape ``(cols, rows, *dims)`` with every axis sorted by
value.

Nothing here imports ``lazydicom``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    EnhancedMRImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    GrayscaleSoftcopyPresentationStateStorage,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    MRImageStorage,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from pydicom.valuerep import DSfloat

__all__ = [
    "ENCODER_LIMITS",
    "ENHANCED_MACROS",
    "COMPRESSED_SYNTAXES",
    "UNCOMPRESSED_SYNTAXES",
    "GridIndex",
    "Rescale",
    "encoder_available",
    "expected_ndarray",
    "frame_pixels",
    "grid_indices",
    "set_attribute",
    "write_enhanced_mr",
    "write_junk",
    "write_series",
]

GridIndex = tuple[int, ...]
#: ``(slope, intercept)`` for every frame, or a function of the grid index.
Rescale = tuple[float, float] | Callable[[GridIndex], tuple[float, float]] | None

UNCOMPRESSED_SYNTAXES = (ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian)
COMPRESSED_SYNTAXES = (RLELossless, JPEGLSLossless, JPEG2000Lossless)

#: (min rows, min cols, max bits stored) the installed encoders accept, measured
#: with pydicom 3.0, pyjpegls 1.5 and pylibjpeg-openjpeg 2.6 / pylibjpeg-rle 2.2:
#: OpenJPEG fails below 32 pixels (its default 6 resolution levels), CharLS fails
#: on tiny noisy frames (5 x 3), pydicom's RLE encoder takes at most 16 bits.
ENCODER_LIMITS: dict[str, tuple[int, int, int]] = {
    RLELossless: (1, 1, 16),
    JPEGLSLossless: (8, 6, 16),
    JPEG2000Lossless: (32, 32, 24),
}

_SOP_CLASS = {"MR": MRImageStorage, "CT": CTImageStorage}
_SUBFOLDERS = ("Study 1", "Study 1/series a", "Study 1/series a/more files", "other study/x y")
_PRIVATE_CREATOR = "LAZYDICOM TEST"


# --------------------------------------------------------------------------
# Pixel encoding
# --------------------------------------------------------------------------


def _value_range(dtype: np.dtype, bits_stored: int) -> tuple[int, int]:
    if dtype.kind == "i":
        return -(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1
    return 0, 2**bits_stored - 1


def frame_pixels(
    cell: int,
    ncells: int,
    shape: tuple[int, int],
    dtype: str | np.dtype = "uint16",
    bits_stored: int | None = None,
    samples_per_pixel: int = 1,
) -> np.ndarray:
    """Return the stored pixels of the frame written for one grid cell.

    The value range of ``dtype`` (restricted to ``bits_stored`` bits) is cut into
    ``ncells + 1`` bands of equal width; cell ``k`` gets band ``k + 1`` and a ramp
    ``(r * cols + c) % band_width`` inside it. So no two cells share a value, the
    ramp detects transposition and flips, and the bands reach the top of the range
    (and below zero for signed types), which catches sign, bit depth and byte
    order mistakes.

    Parameters
    ----------
    cell : int
        Flat index of the grid cell (``np.ravel_multi_index`` of the grid index
        over the grid shape, coords in the order given).
    ncells : int
        Number of cells in the grid.
    shape : tuple of int
        ``(rows, cols)``.
    dtype : str or numpy.dtype
        Stored dtype: uint8, int8, uint16, int16, uint32 or int32.
    bits_stored : int, optional
        Bits Stored; defaults to the full width of ``dtype``.
    samples_per_pixel : int
        1 for grey, 3 for RGB (then the result has a trailing axis of 3).

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` or ``(rows, cols, 3)`` array of ``dtype``.
    """
    dtype = np.dtype(dtype)
    bits_stored = bits_stored or 8 * dtype.itemsize
    lo, hi = _value_range(dtype, bits_stored)
    span = hi - lo + 1
    band = span // (ncells + 1)
    if band < 1:
        raise ValueError(f"{ncells} cells do not fit in {bits_stored} bits of {dtype}")
    rows, cols = shape
    ramp = np.arange(rows * cols, dtype=np.int64).reshape(rows, cols) % min(rows * cols, band)
    values = lo + (cell + 1) * band + ramp
    if samples_per_pixel == 3:
        values = np.stack([lo + (values - lo + s * 37) % span for s in range(3)], axis=-1)
    elif samples_per_pixel != 1:
        raise ValueError("samples_per_pixel must be 1 or 3")
    return values.astype(dtype)


def grid_indices(coords: Mapping[str, Sequence[Any]]) -> list[GridIndex]:
    """Return every grid index of ``coords`` in C order."""
    return list(itertools.product(*(range(len(v)) for v in coords.values())))


def _grid_shape(coords: Mapping[str, Sequence[Any]]) -> tuple[int, ...]:
    return tuple(len(v) for v in coords.values())


def _sort_key(value: Any) -> Any:
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(_sort_key(v) for v in value)
    if isinstance(value, (int, float, np.number)):
        return float(value)
    return value


def _ranks(values: Sequence[Any]) -> list[int]:
    keys = [_sort_key(v) for v in values]
    if len(set(keys)) != len(keys):
        raise ValueError(f"coordinate values must be unique, got {list(values)!r}")
    order = sorted(range(len(keys)), key=keys.__getitem__)
    ranks = [0] * len(keys)
    for rank, i in enumerate(order):
        ranks[i] = rank
    return ranks


def _rescale_for(rescale: Rescale, index: GridIndex) -> tuple[float, float] | None:
    return rescale(index) if callable(rescale) else rescale


def expected_ndarray(
    coords: Mapping[str, Sequence[Any]],
    shape: tuple[int, int] = (6, 4),
    *,
    dtype: str | np.dtype = "uint16",
    bits_stored: int | None = None,
    rescale: Rescale = None,
    missing: Iterable[GridIndex] = (),
    fill_value: float = 0,
    samples_per_pixel: int = 1,
) -> np.ndarray:
    """Return the array ``ndarray(dims=tuple(coords))`` must give for a written grid.

    Takes the same grid arguments as :func:`write_series` and
    :func:`write_enhanced_mr`.

    Returns
    -------
    numpy.ndarray
        Shape ``(cols, rows, *len(v) for v in coords.values())`` (plus a trailing
        3 for RGB), each axis sorted by value; ``arr[:, :, *k]`` is the frame's
        ``pixel_array.T``. The dtype is ``float32`` if any written cell has a
        rescale other than ``(1, 0)`` (values computed in float64, then cast),
        else ``dtype``. Missing cells hold ``fill_value``.
    """
    missing = set(missing)
    grid = _grid_shape(coords)
    ranks = [_ranks(v) for v in coords.values()]
    cells = [i for i in grid_indices(coords) if i not in missing]
    rescales = {i: _rescale_for(rescale, i) or (1, 0) for i in cells}
    scaled = any(tuple(r) != (1, 0) for r in rescales.values())
    out_dtype = np.dtype(np.float32) if scaled else np.dtype(dtype)
    rows, cols = shape
    extra = (3,) if samples_per_pixel == 3 else ()
    out = np.full((cols, rows, *grid, *extra), fill_value, dtype=out_dtype)
    ncells = int(np.prod(grid))
    for index in cells:
        frame = frame_pixels(
            int(np.ravel_multi_index(index, grid)),
            ncells,
            shape,
            dtype,
            bits_stored,
            samples_per_pixel,
        )
        slope, intercept = rescales[index]
        if scaled:
            frame = (frame.astype(np.float64) * slope + intercept).astype(np.float32)
        pos = tuple(r[i] for r, i in zip(ranks, index, strict=True))
        where: tuple[slice | int, ...] = (slice(None), slice(None), *pos)
        out[where] = np.swapaxes(frame, 0, 1)
    return out


# --------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------


def _tag(key: str | int) -> int:
    if isinstance(key, int):
        return key
    if key.startswith("("):
        group, elem = key.strip("()").split(",")
        return int(group, 16) << 16 | int(elem, 16)
    tag = tag_for_keyword(key)
    if tag is None:
        raise ValueError(f"{key!r} is not a DICOM keyword")
    return tag


def _ds_value(value: Any) -> Any:
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_ds_value(v) for v in value]
    return DSfloat(value, auto_format=True)


def set_attribute(ds: Dataset, key: str | int, value: Any) -> None:
    """Set a keyword or tag on ``ds``, formatting DS values to fit 16 characters.

    Private tags (odd group) get a private creator ``"LAZYDICOM TEST"`` in
    block ``0x10`` and a VR inferred from the value (DS for float, IS for int,
    LO for str). They read back as VR UN (raw bytes) under Implicit VR.
    """
    tag = Tag(_tag(key))
    if tag.is_private:
        ds.add_new(Tag(tag.group, 0x0010), "LO", _PRIVATE_CREATOR)
        first = value[0] if isinstance(value, (list, tuple)) else value
        vr = "DS" if isinstance(first, float) else "IS" if isinstance(first, int) else "LO"
        ds.add_new(tag, vr, _ds_value(value) if vr == "DS" else value)
        return
    vr = dictionary_VR(tag)
    if vr == "DS":
        value = _ds_value(value)
    elif isinstance(value, np.generic):
        value = value.item()
    elif isinstance(value, (tuple, np.ndarray)):
        value = list(np.asarray(value).tolist())
    ds.add_new(tag, vr, value)


def _patient_study(
    ds: Dataset, *, patient_id: str, patient_name: str, study_uid: str, study_description: str
) -> None:
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.StudyDescription = study_description
    ds.StudyDate = "20240101"
    ds.StudyTime = "120000"
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""


def _pixel_module(
    ds: Dataset, dtype: np.dtype, bits_stored: int, shape: tuple[int, int], samples: int
) -> None:
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
    if samples == 3:
        ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = shape
    ds.BitsAllocated = 8 * dtype.itemsize
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = int(dtype.kind == "i")


def _file_meta(sop_class: str, sop_instance: str, transfer_syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return meta


def encoder_available(transfer_syntax: str) -> bool:
    """Return True if pydicom can encode ``transfer_syntax`` here (uncompressed always)."""
    uid = UID(transfer_syntax)
    if not uid.is_compressed:
        return True
    try:
        from pydicom.pixels import get_encoder

        return bool(get_encoder(uid).is_available)
    except (NotImplementedError, ValueError):
        return False


def _set_pixels(ds: Dataset, frames: np.ndarray, transfer_syntax: str) -> None:
    """Store ``frames`` (native byte order) as Pixel Data in ``transfer_syntax``."""
    uid = UID(transfer_syntax)
    ds.file_meta.TransferSyntaxUID = uid
    if uid.is_compressed:
        if not encoder_available(uid):
            raise RuntimeError(f"no pydicom encoder available for {uid.name!r}")
        limits = ENCODER_LIMITS.get(uid)
        rows, cols, bits = ds.Rows, ds.Columns, ds.BitsStored
        if limits and (rows < limits[0] or cols < limits[1] or bits > limits[2]):
            raise ValueError(
                f"{uid.name!r} encoding needs frames of at least {limits[:2]} and at most "
                f"{limits[2]} bits stored, got {(rows, cols)} and {bits} bits"
            )
        # compress() needs the little endian native pixel data to start from
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PixelData = frames.astype(frames.dtype.newbyteorder("<")).tobytes()
        ds["PixelData"].VR = "OB" if frames.dtype.itemsize == 1 else "OW"
        ds.compress(uid, generate_instance_uid=False)
        return
    byteorder: Literal["<", ">"] = ">" if uid == ExplicitVRBigEndian else "<"
    ds.PixelData = frames.astype(frames.dtype.newbyteorder(byteorder)).tobytes()
    # 8-bit data as OB so that big endian needs no byte swapping of words
    ds["PixelData"].VR = "OB" if frames.dtype.itemsize == 1 else "OW"


def _write(ds: Dataset, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pydicom.dcmwrite(path, ds, enforce_file_format=True, overwrite=False)


def _file_names(
    n: int, prefix: str, subfolders: bool, shuffle: bool, rng: np.random.Generator
) -> list[str]:
    numbers = rng.permutation(n) if shuffle else np.arange(n)
    names = []
    for k in numbers:
        name = f"{prefix} {k:05d}.dcm" if shuffle else f"{prefix}_{k:05d}.dcm"
        if subfolders:
            sub = (
                _SUBFOLDERS[int(rng.integers(len(_SUBFOLDERS)))]
                if shuffle
                else _SUBFOLDERS[k % len(_SUBFOLDERS)]
            )
            name = f"{sub}/{name}"
        names.append(name)
    return names


def write_series(
    folder: str | os.PathLike[str],
    coords: Mapping[str, Sequence[Any]],
    shape: tuple[int, int] = (6, 4),
    *,
    transfer_syntax: str = ExplicitVRLittleEndian,
    dtype: str | np.dtype = "uint16",
    bits_stored: int | None = None,
    rescale: Rescale = None,
    missing: Iterable[GridIndex] = (),
    duplicates: Iterable[GridIndex] = (),
    subfolders: bool = True,
    shuffle: bool = True,
    seed: int = 0,
    samples_per_pixel: int = 1,
    series_description: str = "synthetic",
    series_number: int = 1,
    modality: str = "MR",
    patient_id: str = "SYNTH001",
    patient_name: str = "Synthetic^Patient",
    study_uid: str | None = None,
    study_description: str = "synthetic study",
    extra: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write one single-frame-per-file series whose frames fill a grid of ``coords``.

    Parameters
    ----------
    folder : path
        Where to write; created if needed. Several series may share a folder:
        file names start with the last digits of the SeriesInstanceUID.
    coords : mapping of str to sequence
        DICOM keyword (or tag, private allowed: see :func:`set_attribute`) to the
        unique values of that attribute along one grid axis. Values may be
        numbers, strings or tuples (multi-valued, e.g. ImagePositionPatient).
        DS values are formatted to 16 characters, so use values that survive
        that (``0.1 + 0.2`` is written as ``0.3``).
    shape : tuple of int
        ``(rows, cols)`` of every frame; rows != cols by default.
    transfer_syntax : str
        Implicit/Explicit VR Little Endian, Explicit VR Big Endian, RLE Lossless,
        JPEG-LS Lossless or JPEG 2000 Lossless (see :func:`encoder_available`
        and :data:`ENCODER_LIMITS`: 32-bit data only uncompressed, JPEG 2000
        only for frames of at least 32 x 32).
    dtype : str or numpy.dtype
        uint8, int8, uint16, int16, uint32 or int32; signed types set
        PixelRepresentation 1.
    bits_stored : int, optional
        Bits Stored (e.g. 12 of 16); defaults to the full width.
    rescale : (slope, intercept) or callable, optional
        Written as RescaleSlope/RescaleIntercept; a callable gets the grid index.
    missing : iterable of tuple
        Grid indices to leave out.
    duplicates : iterable of tuple
        Grid indices written twice (same attributes and pixels, new SOP Instance
        UID), the second file right after the first in the returned list.
    subfolders : bool
        Spread files over nested subfolders whose names contain spaces.
    shuffle : bool
        File names (and subfolders) in random order unrelated to the grid.
    seed : int
        Seed of the shuffle; UIDs are random regardless.
    samples_per_pixel : int
        1 (MONOCHROME2) or 3 (RGB, uint8 only).
    series_description, series_number, modality : str, int, str
        Series attributes. Modality MR and CT use MR/CT Image Storage, any other
        Secondary Capture.
    patient_id, patient_name, study_uid, study_description : str
        Patient and study attributes; ``study_uid`` defaults to a new UID.
    extra : mapping, optional
        Further attributes set on every file (applied before ``coords``).

    Returns
    -------
    list of pathlib.Path
        The files written, in grid (C) order of the written cells.

    Notes
    -----
    Geometry: ImageOrientationPatient is axial (``[1, 0, 0, 0, 1, 0]``),
    PixelSpacing ``[1.5, 1.25]``, ImagePositionPatient is
    ``[-cols/2, -rows/2, SliceLocation]`` (z = 0 without a SliceLocation
    coordinate) unless ImagePositionPatient is a coordinate itself; SliceThickness
    is the smallest SliceLocation step (1 without). InstanceNumber runs 1..n in
    grid order unless it is a coordinate. Use :func:`expected_ndarray` with the
    same arguments for the array a correct reader returns.
    """
    dtype = np.dtype(dtype)
    bits_stored = bits_stored or 8 * dtype.itemsize
    if samples_per_pixel == 3 and dtype != np.uint8:
        raise ValueError("RGB series are uint8 only")
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    grid = _grid_shape(coords)
    for axis in coords.values():
        _ranks(axis)  # checks uniqueness
    missing, duplicates = set(missing), set(duplicates)
    cells = [i for i in grid_indices(coords) if i not in missing]
    written = [(i, copy) for i in cells for copy in range(2 if i in duplicates else 1)]

    series_uid = generate_uid()
    study_uid = study_uid or generate_uid()
    frame_of_reference = generate_uid()
    sop_class = _SOP_CLASS.get(modality, SecondaryCaptureImageStorage)
    names = _file_names(len(written), series_uid[-6:], subfolders, shuffle, rng)
    rows, cols = shape
    locations = sorted(float(v) for v in coords.get("SliceLocation", []))
    thickness = min(np.diff(locations), default=1.0) if len(locations) > 1 else 1.0

    paths = []
    for number, ((index, _), name) in enumerate(zip(written, names, strict=True), start=1):
        values = {k: v[i] for k, v, i in zip(coords, coords.values(), index, strict=True)}
        ds = Dataset()
        ds.file_meta = _file_meta(sop_class, generate_uid(), transfer_syntax)
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        _patient_study(
            ds,
            patient_id=patient_id,
            patient_name=patient_name,
            study_uid=study_uid,
            study_description=study_description,
        )
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.SeriesDescription = series_description
        ds.Modality = modality
        ds.FrameOfReferenceUID = frame_of_reference
        ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
        if modality == "MR":
            ds.ScanningSequence = "GR"
            ds.SequenceVariant = "NONE"
            ds.ScanOptions = ""
            ds.MRAcquisitionType = "2D"
        ds.InstanceNumber = number
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [DSfloat(1.5), DSfloat(1.25)]
        ds.SliceThickness = _ds_value(thickness)
        z = values.get("SliceLocation", 0)
        ds.ImagePositionPatient = _ds_value([-cols / 2, -rows / 2, float(z)])
        for key, value in (extra or {}).items():
            set_attribute(ds, key, value)
        for key, value in values.items():
            set_attribute(ds, key, value)
        scale = _rescale_for(rescale, index)
        if scale is not None:
            ds.RescaleSlope = _ds_value(scale[0])
            ds.RescaleIntercept = _ds_value(scale[1])
            ds.RescaleType = "US"
        _pixel_module(ds, dtype, bits_stored, shape, samples_per_pixel)
        cell = int(np.ravel_multi_index(index, grid))
        frame = frame_pixels(cell, int(np.prod(grid)), shape, dtype, bits_stored, samples_per_pixel)
        _set_pixels(ds, frame, transfer_syntax)
        path = folder / name
        _write(ds, path)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------
# Enhanced MR
# --------------------------------------------------------------------------

#: Per-frame functional group macro that holds each supported coordinate.
ENHANCED_MACROS: dict[str, str] = {
    "ImagePositionPatient": "PlanePositionSequence",
    "InStackPositionNumber": "FrameContentSequence",
    "TemporalPositionIndex": "FrameContentSequence",
    "StackID": "FrameContentSequence",
    "FrameAcquisitionNumber": "FrameContentSequence",
    "FrameAcquisitionDateTime": "FrameContentSequence",
    "FrameReferenceDateTime": "FrameContentSequence",
    "EffectiveEchoTime": "MREchoSequence",
    "FlipAngle": "MRTimingAndRelatedParametersSequence",
    "RepetitionTime": "MRTimingAndRelatedParametersSequence",
    "InversionTimes": "MRModifierSequence",
    "DiffusionBValue": "MRDiffusionSequence",
    "NominalCardiacTriggerDelayTime": "CardiacSynchronizationSequence",
}


def write_enhanced_mr(
    path: str | os.PathLike[str],
    coords: Mapping[str, Sequence[Any]],
    shape: tuple[int, int] = (6, 4),
    *,
    transfer_syntax: str = ExplicitVRLittleEndian,
    dtype: str | np.dtype = "uint16",
    bits_stored: int | None = None,
    rescale: Rescale = None,
    missing: Iterable[GridIndex] = (),
    duplicates: Iterable[GridIndex] = (),
    shuffle: bool = True,
    seed: int = 0,
    series_description: str = "synthetic enhanced",
    patient_id: str = "SYNTH001",
    patient_name: str = "Synthetic^Patient",
    study_uid: str | None = None,
    study_description: str = "synthetic study",
) -> list[GridIndex]:
    """Write one Enhanced MR Image Storage file holding one frame per grid cell.

    Parameters
    ----------
    path : path
        File to write (parent folders are created).
    coords : mapping of str to sequence
        Per-frame attributes, keys from :data:`ENHANCED_MACROS` (each goes in
        that macro of the frame's PerFrameFunctionalGroupsSequence item).
        Without an ImagePositionPatient coordinate the frame's z is
        InStackPositionNumber (0 without). FrameContentSequence always has
        StackID, InStackPositionNumber, TemporalPositionIndex (from coords, else
        1) and DimensionIndexValues (1-based sorted rank per coord, matching the
        top-level DimensionIndexSequence).
    shape, transfer_syntax, dtype, bits_stored, missing, duplicates, study_uid
        As for :func:`write_series`.
    rescale : (slope, intercept) or callable, optional
        A tuple goes in the SharedFunctionalGroupsSequence, a callable in each
        frame's PixelValueTransformationSequence.
    shuffle : bool
        Store the frames in random order unrelated to the grid.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    list of tuple
        Grid index of each stored frame, in frame order.
    """
    dtype = np.dtype(dtype)
    bits_stored = bits_stored or 8 * dtype.itemsize
    unknown = set(coords) - set(ENHANCED_MACROS)
    if unknown:
        raise ValueError(
            f"unsupported enhanced coords {sorted(unknown)!r}; use {sorted(ENHANCED_MACROS)!r}"
        )
    path = Path(path)
    rng = np.random.default_rng(seed)
    grid = _grid_shape(coords)
    ranks = [_ranks(v) for v in coords.values()]
    missing, duplicates = set(missing), set(duplicates)
    cells = [i for i in grid_indices(coords) if i not in missing]
    frames = [i for i in cells for _ in range(2 if i in duplicates else 1)]
    if shuffle:
        frames = [frames[k] for k in rng.permutation(len(frames))]
    rows, cols = shape

    ds = Dataset()
    ds.file_meta = _file_meta(EnhancedMRImageStorage, generate_uid(), transfer_syntax)
    ds.SOPClassUID = EnhancedMRImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    _patient_study(
        ds,
        patient_id=patient_id,
        patient_name=patient_name,
        study_uid=study_uid or generate_uid(),
        study_description=study_description,
    )
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 1
    ds.SeriesDescription = series_description
    ds.Modality = "MR"
    ds.FrameOfReferenceUID = generate_uid()
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.ContentDate = "20240101"
    ds.ContentTime = "120000"
    ds.AcquisitionDateTime = "20240101120000"
    ds.AcquisitionContrast = "T1"
    ds.PixelPresentation = "MONOCHROME"
    ds.VolumetricProperties = "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    ds.ComplexImageComponent = "MAGNITUDE"
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.NumberOfFrames = len(frames)
    ds.DimensionOrganizationSequence = DicomSequence([Dataset()])
    ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = generate_uid()
    dimension_index = []
    for key in coords:
        item = Dataset()
        item.DimensionOrganizationUID = ds.DimensionOrganizationSequence[0].DimensionOrganizationUID
        item.DimensionIndexPointer = tag_for_keyword(key)
        item.FunctionalGroupPointer = tag_for_keyword(ENHANCED_MACROS[key])
        dimension_index.append(item)
    ds.DimensionIndexSequence = DicomSequence(dimension_index)

    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [DSfloat(1.5), DSfloat(1.25)]
    measures.SliceThickness = DSfloat(2.0)
    shared.PixelMeasuresSequence = DicomSequence([measures])
    orientation = Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PlaneOrientationSequence = DicomSequence([orientation])
    frame_type = Dataset()
    frame_type.FrameType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    shared.MRImageFrameTypeSequence = DicomSequence([frame_type])
    if rescale is not None and not callable(rescale):
        shared.PixelValueTransformationSequence = DicomSequence([_transformation(rescale)])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])

    per_frame = []
    for index in frames:
        values = {k: v[i] for k, v, i in zip(coords, coords.values(), index, strict=True)}
        item = Dataset()
        macros: dict[str, Dataset] = {}
        for key, value in values.items():
            macro = macros.setdefault(ENHANCED_MACROS[key], Dataset())
            set_attribute(macro, key, value)
        content = macros.setdefault("FrameContentSequence", Dataset())
        content.setdefault("StackID", "1")
        content.setdefault("InStackPositionNumber", 1)
        content.setdefault("TemporalPositionIndex", 1)
        content.DimensionIndexValues = [r[i] + 1 for r, i in zip(ranks, index, strict=True)] or [1]
        if "PlanePositionSequence" not in macros:
            z = float(content.InStackPositionNumber) if "InStackPositionNumber" in values else 0.0
            position = macros.setdefault("PlanePositionSequence", Dataset())
            position.ImagePositionPatient = _ds_value([-cols / 2, -rows / 2, z])
        if callable(rescale):
            macros["PixelValueTransformationSequence"] = _transformation(rescale(index))
        for name, macro in sorted(macros.items()):
            setattr(item, name, DicomSequence([macro]))
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)

    _pixel_module(ds, dtype, bits_stored, shape, 1)
    ncells = int(np.prod(grid))
    pixels = np.stack(
        [
            frame_pixels(int(np.ravel_multi_index(i, grid)), ncells, shape, dtype, bits_stored)
            for i in frames
        ]
    )
    _set_pixels(ds, pixels, transfer_syntax)
    _write(ds, path)
    return frames


def _transformation(rescale: tuple[float, float]) -> Dataset:
    item = Dataset()
    item.RescaleSlope = _ds_value(rescale[0])
    item.RescaleIntercept = _ds_value(rescale[1])
    item.RescaleType = "US"
    return item


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------


def write_junk(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Write files a scanner must survive into ``folder``.

    Returns
    -------
    dict of str to pathlib.Path
        ``text``: a text file; ``empty``: a zero-byte ``.dcm``; ``random``:
        random bytes named ``x.dcm``; ``truncated``: the first half of a valid
        DICOM file (cut inside Pixel Data); ``bad_length``: a valid file whose
        SeriesDescription length field (0xFFF0) points past the end of the file;
        ``unreadable``: a valid DICOM file with mode 000 -- root ignores file
        permissions, so under root (as in CI containers) it IS readable and a
        test must check ``os.access(path, os.R_OK)`` before expecting an error;
        ``no_pixels``: a valid Grayscale Softcopy Presentation State (no Pixel
        Data); ``valid``: one valid single-frame MR image, so the folder is not
        all junk.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    out["text"] = folder / "notes.txt"
    out["text"].write_text("This is not a DICOM file.\n")
    out["empty"] = folder / "empty.dcm"
    out["empty"].write_bytes(b"")
    out["random"] = folder / "x.dcm"
    out["random"].write_bytes(np.random.default_rng(0).bytes(4096))

    (valid,) = write_series(
        folder / "valid",
        {"InstanceNumber": [1]},
        (32, 24),
        subfolders=False,
        shuffle=False,
        series_description="JUNKDESC",
    )
    out["valid"] = valid
    data = valid.read_bytes()

    out["truncated"] = folder / "truncated.dcm"
    out["truncated"].write_bytes(data[: len(data) // 2])

    # Explicit VR LE short form: tag (0008,103E), VR "LO", 2-byte length
    marker = b"\x08\x00\x3e\x10LO"
    at = data.index(marker)
    out["bad_length"] = folder / "bad_length.dcm"
    out["bad_length"].write_bytes(data[: at + 6] + (0xFFF0).to_bytes(2, "little") + data[at + 8 :])

    out["unreadable"] = folder / "unreadable.dcm"
    out["unreadable"].write_bytes(data)
    out["unreadable"].chmod(0)

    out["no_pixels"] = folder / "presentation_state.dcm"
    ds = Dataset()
    ds.file_meta = _file_meta(
        GrayscaleSoftcopyPresentationStateStorage, generate_uid(), ExplicitVRLittleEndian
    )
    ds.SOPClassUID = GrayscaleSoftcopyPresentationStateStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    _patient_study(
        ds,
        patient_id="SYNTH001",
        patient_name="Synthetic^Patient",
        study_uid=generate_uid(),
        study_description="synthetic study",
    )
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 99
    ds.Modality = "PR"
    ds.InstanceNumber = 1
    ds.ContentLabel = "JUNK"
    ds.ContentDescription = "presentation state without pixels"
    ds.PresentationCreationDate = "20240101"
    ds.PresentationCreationTime = "120000"
    ds.ContentCreatorName = ""
    ds.PresentationLUTShape = "IDENTITY"
    _write(ds, out["no_pixels"])
    return out
