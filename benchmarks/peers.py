"""What a user would write instead of lazydicom, and the raw-read limit.

Each function does the whole job a user's script would do for the task (walk
the folder, read, sort by attribute values into an array), so its time compares
with the matching lazydicom call. Grid placement never uses the benchmark's
manifest, except in the raw-read limit, whose point is to do nothing but read.

Peers:

- a plain pydicom loop (``dcmread(stop_before_pixels=True)`` for headers,
  ``dcmread`` + ``pixel_array`` for pixels);
- dbdicom 0.3 (``dbdicom.open(folder)`` indexes the folder;
  ``DataBaseDicom.pixel_data(series, dims=[...])`` reads a series eagerly, with
  SliceLocation always the first dim);
- SimpleITK's ``ImageSeriesReader``, one 3-D stack per acquisition folder;
- imagedata's ``Series(folder, input_order="fa,tr", opts={"tr": "RepetitionTime"})``;
- highdicom: ``highdicom.imread(path).get_frame(1)`` per file (its frame
  access, which applies the modality transform), and for a single stack
  ``highdicom.get_volume_from_series(datasets)``;
- dcm2niix (the PyPI package's binary), converting the folder to NIfTI:
  ``dcm2niix -z n -o OUT FOLDER``, timed as a subprocess.

Limits: reading every file's bytes (:func:`read_bytes`), and reading each
frame's bytes at its known offset into its cell (:func:`raw_read`,
:func:`raw_read_stack`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.config import IGNORE, WARN
from pydicom.errors import InvalidDicomError

from .common import pydicom_config, quiet
from .data import Manifest

__all__ = [
    "walk_files",
    "read_bytes",
    "raw_read_stack",
    "highdicom_read",
    "highdicom_volume",
    "sitk_read_stack",
    "dcm2niix_command",
    "nifti_frames",
    "pydicom_headers",
    "pydicom_read",
    "raw_read",
    "raw_readinto",
    "dbdicom_open",
    "dbdicom_read",
    "sitk_read",
    "imagedata_read",
]

#: pydicom options dbdicom 0.3 sets when imported (``dbdicom/dataset.py``).
DBDICOM_OPTIONS = {"datetime_conversion": True}
#: pydicom options imagedata 3 sets when its DICOM plugin is imported
#: (``imagedata/formats/dicomplugin.py``).
IMAGEDATA_OPTIONS = {"reading_validation_mode": IGNORE, "writing_validation_mode": WARN}

_SKIP_DIRS = {".lazydicom"}
_SKIP_FILES = {"index.json"}  # dbdicom's index


def walk_files(folder: str | os.PathLike[str]) -> list[str]:
    """Return every file under ``folder`` (leaving out lazydicom's and dbdicom's index files)."""
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
        files.extend(os.path.join(root, n) for n in names if n not in _SKIP_FILES)
    return files


# --------------------------------------------------------------------------
# pydicom
# --------------------------------------------------------------------------


def pydicom_headers(folder: str | os.PathLike[str]) -> int:
    """Parse every header under ``folder`` with ``dcmread(stop_before_pixels=True)``.

    Returns
    -------
    int
        The number of DICOM files parsed.
    """
    n = 0
    for path in walk_files(folder):
        try:
            pydicom.dcmread(path, stop_before_pixels=True)
        except InvalidDicomError:
            continue
        n += 1
    return n


def _axis_index(values: Sequence[Any]) -> tuple[list[Any], dict[Any, int]]:
    unique = sorted(set(values))
    return unique, {v: i for i, v in enumerate(unique)}


def pydicom_read(folder: str | os.PathLike[str], dims: Sequence[str]) -> np.ndarray:
    """Read every frame under ``folder`` with pydicom and sort it by ``dims`` values.

    The loop a user writes: ``dcmread`` + ``pixel_array`` for every file,
    rescaled as a user would (``arr * RescaleSlope + RescaleIntercept`` in
    float64, cast to float32) when the file has a rescale other than 1/0,
    keeping the frame and its attribute values; then the sorted unique values
    of each dim give the axes, and each frame is copied into its cell of an
    F-ordered ``(cols, rows, *dims)`` array.

    Returns
    -------
    numpy.ndarray
        ``(cols, rows, *grid)``, stored dtype, or float32 when rescaled.
    """
    frames = []
    keys = []
    for path in walk_files(folder):
        try:
            ds = pydicom.dcmread(path)
        except InvalidDicomError:
            continue
        arr = ds.pixel_array
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        if (slope, intercept) != (1.0, 0.0):
            arr = (arr * slope + intercept).astype(np.float32)
        frames.append(arr)
        keys.append(tuple(float(ds[d].value) for d in dims))
    return _place(frames, keys)


def _place(frames: list[np.ndarray], keys: list[tuple[Any, ...]]) -> np.ndarray:
    """Copy ``(rows, cols)`` frames into the cells their sorted unique ``keys`` give."""
    axes = [_axis_index(column) for column in zip(*keys, strict=True)]
    rows, cols = frames[0].shape
    out = np.empty((cols, rows, *(len(a[0]) for a in axes)), dtype=frames[0].dtype, order="F")
    for frame, key in zip(frames, keys, strict=True):
        cell = tuple(index[v] for (_, index), v in zip(axes, key, strict=True))
        out[(slice(None), slice(None), *cell)] = frame.T
    return out


# --------------------------------------------------------------------------
# raw-read limit
# --------------------------------------------------------------------------


def read_bytes(files: Sequence[str | os.PathLike[str]]) -> int:
    """Read every file's bytes (``open`` + ``read``), the floor of any reader of these files.

    Returns
    -------
    int
        The number of bytes read.
    """
    total = 0
    for path in files:
        with open(path, "rb") as f:
            total += len(f.read())
    return total


def raw_read_stack(stack: Any) -> np.ndarray:
    """The raw-read limit of a single-series folder, rescale included.

    For each file of ``stack`` (a :class:`benchmarks.realdata.Stack` of
    uncompressed files): one ``os.pread`` of the frame's bytes at the known
    Pixel Data offset, then the frame is written into its slot of an F-ordered
    ``(cols, rows, n)`` array, as float32 with ``* slope + intercept`` applied
    in place when the series is rescaled (stored dtype otherwise).
    """
    rescaled = (stack.slope, stack.intercept) != (1.0, 0.0)
    first = pydicom.dcmread(stack.files[0], stop_before_pixels=True)
    stored = np.dtype(f"<{'i' if first.PixelRepresentation else 'u'}{first.BitsAllocated // 8}")
    out = np.empty(
        (stack.cols, stack.rows, stack.nframes),
        dtype=np.float32 if rescaled else stored,
        order="F",
    )
    nbytes = stack.rows * stack.cols * stored.itemsize
    shape = (stack.cols, stack.rows)
    for k, (path, offset) in enumerate(zip(stack.files, stack.offsets, strict=True)):
        fd = os.open(path, os.O_RDONLY)
        try:
            buf = os.pread(fd, nbytes, int(offset))
        finally:
            os.close(fd)
        slot = out[:, :, k]
        np.copyto(slot, np.frombuffer(buf, stored).reshape(shape, order="F"), casting="unsafe")
        if rescaled:
            if stack.slope != 1.0:
                slot *= np.float32(stack.slope)
            slot += np.float32(stack.intercept)
    return out



def raw_read(manifest: Manifest) -> np.ndarray:
    """Read every frame's bytes at its known offset into its cell: the limit.

    For each file: ``open``, one ``os.pread`` of ``rows * cols * 2`` bytes at
    the Pixel Data offset (found with pydicom when the data were generated),
    ``close``, and a copy into the F-ordered ``(cols, rows, *grid)`` array at the
    file's grid cell. No header is parsed.
    """
    spec = manifest.spec
    nbytes = spec.rows * spec.cols * 2
    out = np.empty(manifest.array_shape, dtype=np.uint16, order="F")
    shape = (spec.cols, spec.rows)
    for path, offset, cell in zip(manifest.files, manifest.offsets, manifest.cells, strict=True):
        fd = os.open(path, os.O_RDONLY)
        try:
            buf = os.pread(fd, nbytes, int(offset))
        finally:
            os.close(fd)
        out[(slice(None), slice(None), *cell)] = np.frombuffer(buf, "<u2").reshape(shape, order="F")
    return out


def raw_readinto(manifest: Manifest) -> np.ndarray:
    """Like :func:`raw_read`, but ``os.preadv`` straight into the cell (no copy)."""
    out = np.empty(manifest.array_shape, dtype=np.uint16, order="F")
    for path, offset, cell in zip(manifest.files, manifest.offsets, manifest.cells, strict=True):
        # the (cols, rows) F-ordered cell is a C-contiguous (rows, cols) block
        target = out[(slice(None), slice(None), *cell)].T
        fd = os.open(path, os.O_RDONLY)
        try:
            os.preadv(fd, [target], int(offset))
        finally:
            os.close(fd)
    return out


# --------------------------------------------------------------------------
# dbdicom 0.3
# --------------------------------------------------------------------------


def dbdicom_clean(folder: str | os.PathLike[str]) -> None:
    """Remove dbdicom's ``index.json`` so the next open scans the folder again."""
    Path(folder, "index.json").unlink(missing_ok=True)


def dbdicom_open(folder: str | os.PathLike[str]) -> Any:
    """``dbdicom.open(folder)``: scan and index the folder (progress bars silenced).

    dbdicom 0.3 reads every file with ``dcmread(force=True, specific_tags=...)``
    and builds its patient/study/series tree in memory; it writes
    ``folder/index.json`` only on ``close()``, which is never called here.
    """
    with pydicom_config(**DBDICOM_OPTIONS), quiet():
        import dbdicom

        return dbdicom.open(str(folder))


def dbdicom_read(db: Any, dims: Sequence[str]) -> np.ndarray:
    """``db.pixel_data(series, dims=dims[1:])`` of the first series.

    dbdicom's ``pixel_data`` always sorts on SliceLocation first, so ``dims``
    must start with ``"SliceLocation"``; the remaining dims are passed.
    """
    if dims[0] != "SliceLocation":
        raise ValueError("dbdicom sorts on SliceLocation first")
    series = db.series()[0]
    with pydicom_config(**DBDICOM_OPTIONS), quiet():
        return db.pixel_data(series, dims=list(dims[1:]), verbose=0)


# --------------------------------------------------------------------------
# SimpleITK
# --------------------------------------------------------------------------


def sitk_read(folder: str | os.PathLike[str]) -> np.ndarray:
    """Read each acquisition folder as a 3-D stack with SimpleITK, then sort the stacks.

    For every folder holding files: ``ImageSeriesReader.GetGDCMSeriesFileNames``
    (sorts the slices by position), ``Execute`` with the metadata dictionaries
    on (to learn FlipAngle and RepetitionTime of the stack), then the stacks are
    placed by sorted FlipAngle and RepetitionTime into a
    ``(cols, rows, slices, flips, trs)`` array.
    """
    import SimpleITK as sitk

    sitk.ProcessObject_SetGlobalWarningDisplay(False)
    stacks = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
        if not [n for n in names if n not in _SKIP_FILES]:
            continue
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(root))
        reader.MetaDataDictionaryArrayUpdateOn()
        image = reader.Execute()
        flip = float(reader.GetMetaData(0, "0018|1314"))
        tr = float(reader.GetMetaData(0, "0018|0080"))
        # (slices, rows, cols) in C order is (cols, rows, slices) in F order
        stacks.append((flip, tr, sitk.GetArrayFromImage(image).T))
    flips, flip_index = _axis_index([s[0] for s in stacks])
    trs, tr_index = _axis_index([s[1] for s in stacks])
    first = stacks[0][2]
    out = np.empty((*first.shape, len(flips), len(trs)), dtype=first.dtype, order="F")
    for flip, tr, stack in stacks:
        out[:, :, :, flip_index[flip], tr_index[tr]] = stack
    return out


def sitk_read_stack(folder: str | os.PathLike[str]) -> np.ndarray:
    """One folder as one 3-D stack with SimpleITK's ``ImageSeriesReader``.

    ``GetGDCMSeriesFileNames(folder)`` sorts the files by position along the
    slice normal; ``Execute`` reads them (with the rescale applied, into the
    smallest pixel type SimpleITK picks). Returns the ``(cols, rows, n)`` view.
    """
    import SimpleITK as sitk

    sitk.ProcessObject_SetGlobalWarningDisplay(False)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    return sitk.GetArrayFromImage(reader.Execute()).T


# --------------------------------------------------------------------------
# highdicom
# --------------------------------------------------------------------------


def highdicom_read(
    folder: str | os.PathLike[str], dims: Sequence[str], dtype: Any = np.float32
) -> np.ndarray:
    """``highdicom.imread(path).get_frame(1, dtype=dtype)`` per file, sorted by ``dims`` values.

    highdicom's frame access: ``get_frame`` applies the modality transform
    (RescaleSlope/Intercept) when the file has one and casts to ``dtype``.
    Placement as in :func:`pydicom_read`.
    """
    import highdicom

    frames = []
    keys = []
    for path in walk_files(folder):
        try:
            image = highdicom.imread(path)
        except InvalidDicomError:
            continue
        frames.append(image.get_frame(1, dtype=dtype))
        keys.append(tuple(float(image[d].value) for d in dims))
    return _place(frames, keys)


def highdicom_volume(folder: str | os.PathLike[str], dtype: Any = np.float32) -> np.ndarray:
    """``highdicom.get_volume_from_series([dcmread(path) ...], dtype=dtype)`` of one stack.

    highdicom sorts the slices by position and checks that they form one
    regularly spaced volume; its array is ``(slice, row, column)``, returned
    here as the ``(cols, rows, slices)`` view (slice order is highdicom's).
    """
    import highdicom

    datasets = []
    for path in walk_files(folder):
        try:
            datasets.append(pydicom.dcmread(path))
        except InvalidDicomError:
            continue
    volume = highdicom.get_volume_from_series(datasets, dtype=dtype)
    return volume.array.T


# --------------------------------------------------------------------------
# dcm2niix
# --------------------------------------------------------------------------


def dcm2niix_command(
    folder: str | os.PathLike[str], out: str | os.PathLike[str], options: Sequence[str] = ()
) -> list[str]:
    """``dcm2niix -z n [OPTIONS] -o OUT FOLDER``: every series under ``folder`` to NIfTI.

    Raises ``FileNotFoundError`` when the ``dcm2niix`` binary is not on the path
    (``pip install dcm2niix``).
    """
    import shutil

    binary = shutil.which("dcm2niix")
    if binary is None:
        raise FileNotFoundError("dcm2niix not found on the path: pip install dcm2niix")
    return [binary, "-z", "n", *options, "-o", str(out), str(folder)]


def nifti_frames(out: str | os.PathLike[str]) -> list[np.ndarray]:
    """Every 2-D frame of every ``.nii`` file dcm2niix wrote to ``out``, scaled (nibabel)."""
    import nibabel

    frames = []
    for path in sorted(Path(out).glob("*.nii")):
        data = np.asanyarray(nibabel.load(path).dataobj)
        data = data.reshape(data.shape[0], data.shape[1], -1, order="F")
        frames.extend(data[:, :, k] for k in range(data.shape[2]))
    return frames


# --------------------------------------------------------------------------
# imagedata
# --------------------------------------------------------------------------


def imagedata_read(folder: str | os.PathLike[str]) -> np.ndarray:
    """``imagedata.series.Series(folder, input_order="fa,tr", opts={"tr": "RepetitionTime"})``.

    imagedata sorts on slice position and the given input orders; its array is
    ``(flip, tr, slice, row, column)`` in C order. The result returned here is a
    transposed view ``(column, row, slice, flip, tr)`` (no copy).
    """
    with pydicom_config(**IMAGEDATA_OPTIONS), quiet():
        from imagedata.series import Series

        series = Series(str(folder), input_order="fa,tr", opts={"tr": "RepetitionTime"})
    return np.asarray(series).transpose(4, 3, 2, 0, 1)
