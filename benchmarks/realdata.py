"""Data sets made from the shared corpus of real files: the JPEG Lossless CT and its derivatives.

The shared corpus sits beside the project (``../shared/data`` relative to the
repository root) or wherever ``LAZYDICOM_SHARED_DATA`` points (see
:func:`benchmarks.common.shared_data`). It is read-only: everything here is
copied or derived into the scratch directory, and kept there between runs (a
manifest next to each folder records what it was made from; a folder whose
manifest does not match is made again).

- :func:`ensure_ct_folder`: a writable copy of ``ct-skull-jpeg-lossless`` (303
  files, 5 series).
- :func:`ensure_ct_jpeg_series`: the largest series of it (111 frames of
  512x512 int16, JPEG Lossless Process 14 SV1) alone in a folder, so that every
  tool (dcm2niix too, which converts whatever a folder holds) reads the same files.
- :func:`ensure_ct_uncompressed`: every 512x512 slice of it (301; 150 with
  ``--quick``) decompressed with pydicom (``Dataset.decompress()``, Explicit VR
  Little Endian), real pixels with RescaleIntercept -1024, written as one
  series. The geometry is rewritten as one axial stack (ImagePositionPatient
  along z, 1 mm apart, one orientation, SliceLocation = z, InstanceNumber in
  the same order), because the source series include reformats with mixed
  orientations: so SimpleITK, highdicom's volume reader and dcm2niix read it as
  one volume, in InstanceNumber order, like the other tools.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.uid import generate_uid

from .common import shared_data
from .data import pixel_offset
from .peers import walk_files

__all__ = [
    "CT_JPEG",
    "Stack",
    "ct_jpeg_source",
    "missing_reason",
    "ensure_ct_folder",
    "ensure_ct_jpeg_series",
    "ensure_ct_uncompressed",
]

#: Name of the JPEG Lossless CT folder in the shared corpus.
CT_JPEG = "ct-skull-jpeg-lossless"
_FORMAT_VERSION = 1  # bump when what is derived here changes


def ct_jpeg_source() -> Path:
    """The shared JPEG Lossless CT folder (it may not exist)."""
    return shared_data() / CT_JPEG


def missing_reason(path: Path) -> str | None:
    """Why a shared folder cannot be used (``None`` if it can): the text of a skipped row."""
    if path.is_dir():
        return None
    return (
        f"{path} not found: skipped (the shared corpus sits at ../shared/data beside the "
        "project root, or set LAZYDICOM_SHARED_DATA)"
    )


@dataclass(slots=True)
class Stack:
    """A folder holding one single-frame series.

    Attributes
    ----------
    folder : Path
        The folder (nothing else in it but lazydicom's index, once opened).
    files : list of Path
        The files, sorted by InstanceNumber.
    rows, cols : int
        Frame size.
    transfer_syntax : str
        Transfer Syntax UID of the files.
    description : str
        What the series is, for table captions.
    offsets : numpy.ndarray or None
        Byte offset of each file's Pixel Data value (uncompressed files only).
    slope, intercept : float
        The series' rescale (the same in every file).
    """

    folder: Path
    files: list[Path]
    rows: int
    cols: int
    transfer_syntax: str
    description: str
    offsets: np.ndarray | None = None
    slope: float = 1.0
    intercept: float = 0.0

    @property
    def nframes(self) -> int:
        return len(self.files)

    @property
    def nbytes(self) -> int:
        """Bytes of the files (headers included)."""
        return sum(p.stat().st_size for p in self.files)


def _writable_copy(source: Path, target: Path) -> Path:
    if not target.exists() or len(walk_files(target)) != len(walk_files(source)):
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
        for root, _dirs, files in os.walk(target):
            os.chmod(root, 0o755)
            for f in files:
                os.chmod(os.path.join(root, f), 0o644)
    return target


def ensure_ct_folder(scratch: Path, name: str = CT_JPEG) -> Path:
    """A writable copy of the shared JPEG Lossless CT folder under ``scratch``."""
    return _writable_copy(ct_jpeg_source(), Path(scratch) / name)


def _headers(folder: Path) -> list[tuple[Path, pydicom.Dataset]]:
    found = []
    for path in sorted(walk_files(folder)):
        try:
            found.append((Path(path), pydicom.dcmread(path, stop_before_pixels=True)))
        except InvalidDicomError:
            continue
    return found


def _signature(source: Path, extra: Any) -> str:
    """What a derived folder depends on: the source files' names and sizes, and ``extra``."""
    h = hashlib.sha1(repr((_FORMAT_VERSION, extra)).encode())
    for path in sorted(walk_files(source)):
        h.update(f"{os.path.relpath(path, source)}\0{os.path.getsize(path)}\0".encode())
    return h.hexdigest()


def _manifest_path(folder: Path) -> Path:
    return folder.with_name(folder.name + ".manifest.json")


def _load(folder: Path, signature: str) -> dict[str, Any] | None:
    try:
        data = json.loads(_manifest_path(folder).read_text())
    except (OSError, ValueError):
        return None
    if data.get("signature") != signature:
        return None
    if not all((folder / name).is_file() for name in data["files"]):
        return None
    return data


def _save(folder: Path, data: dict[str, Any]) -> None:
    path = _manifest_path(folder)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def _stack(folder: Path, data: dict[str, Any]) -> Stack:
    offsets = data.get("offsets")
    return Stack(
        folder=folder,
        files=[folder / name for name in data["files"]],
        rows=data["rows"],
        cols=data["cols"],
        transfer_syntax=data["transfer_syntax"],
        description=data["description"],
        offsets=None if offsets is None else np.asarray(offsets, dtype=np.int64),
        slope=data.get("slope", 1.0),
        intercept=data.get("intercept", 0.0),
    )


def ensure_ct_jpeg_series(scratch: Path, log: Callable[[str], None] = print) -> Stack:
    """The largest series of the JPEG Lossless CT, alone in ``scratch/ct-jpeg-largest-series``."""
    source = ct_jpeg_source()
    folder = Path(scratch) / "ct-jpeg-largest-series"
    signature = _signature(source, "largest series")
    data = _load(folder, signature)
    if data is None:
        log(f"copying the largest series of {source} to {folder} ...")
        groups: dict[str, list[tuple[Path, pydicom.Dataset]]] = defaultdict(list)
        for path, ds in _headers(source):
            groups[ds.SeriesInstanceUID].append((path, ds))
        uid = max(groups, key=lambda u: len(groups[u]))
        members = sorted(groups[uid], key=lambda item: int(item[1].InstanceNumber))
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        names = []
        for path, _ds in members:
            shutil.copyfile(path, folder / path.name)
            os.chmod(folder / path.name, 0o644)
            names.append(path.name)
        first = members[0][1]
        data = {
            "signature": signature,
            "files": names,
            "rows": int(first.Rows),
            "cols": int(first.Columns),
            "transfer_syntax": str(first.file_meta.TransferSyntaxUID),
            "description": f"series {first.SeriesNumber} of {CT_JPEG}",
            "slope": float(first.get("RescaleSlope", 1) or 1),
            "intercept": float(first.get("RescaleIntercept", 0) or 0),
        }
        _save(folder, data)
    return _stack(folder, data)


def ensure_ct_uncompressed(
    scratch: Path, quick: bool = False, log: Callable[[str], None] = print
) -> Stack:
    """Every 512x512 slice of the JPEG CT (150 with ``quick``), decompressed, as one series.

    See the module docstring for what is kept (pixels, rescale, most of the
    header) and what is rewritten (UIDs, numbering, geometry).
    """
    source = ct_jpeg_source()
    limit = 150 if quick else None
    folder = Path(scratch) / f"ct-uncompressed-{'150' if quick else 'all'}"
    signature = _signature(source, ("uncompressed", limit))
    data = _load(folder, signature)
    if data is not None:
        return _stack(folder, data)
    log(f"decompressing the 512x512 slices of {source} into {folder} ...")
    slices = [
        (path, ds) for path, ds in _headers(source) if (int(ds.Rows), int(ds.Columns)) == (512, 512)
    ]
    slices.sort(key=lambda item: (int(item[1].SeriesNumber), int(item[1].InstanceNumber)))
    if limit is not None:
        slices = slices[:limit]
    if len(slices) < (limit or 150):
        raise RuntimeError(f"{source} has only {len(slices)} 512x512 slices, expected >= 150")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    series_uid, frame_of_reference = generate_uid(), generate_uid()
    first = pydicom.dcmread(slices[0][0], stop_before_pixels=True)
    x0, y0 = (float(v) for v in first.ImagePositionPatient[:2])
    spacing = list(first.PixelSpacing)
    names, offsets = [], []
    for k, (path, _) in enumerate(slices):
        ds = pydicom.dcmread(path)
        ds.decompress()  # Explicit VR Little Endian, pixels decoded by pydicom's plugins
        if ds.pixel_array.dtype != np.int16:
            raise RuntimeError(f"{path}: expected int16 pixels, got {ds.pixel_array.dtype}")
        z = float(k)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_of_reference
        ds.SeriesNumber = 900
        ds.SeriesDescription = "ct uncompressed"
        ds.InstanceNumber = k + 1
        ds.AcquisitionNumber = 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [x0, y0, z]
        ds.SliceLocation = z
        ds.SliceThickness = 1
        ds.PixelSpacing = spacing
        if "GantryDetectorTilt" in ds:
            ds.GantryDetectorTilt = 0
        name = f"CT{k + 1:04d}.dcm"
        ds.save_as(folder / name, enforce_file_format=True)
        names.append(name)
        offsets.append(pixel_offset(folder / name))
    data = {
        "signature": signature,
        "files": names,
        "offsets": offsets,
        "rows": 512,
        "cols": 512,
        "transfer_syntax": str(pydicom.uid.ExplicitVRLittleEndian),
        "description": f"{len(names)} slices of {CT_JPEG}, decompressed",
        "slope": float(first.get("RescaleSlope", 1) or 1),
        "intercept": float(first.get("RescaleIntercept", 0) or 0),
    }
    _save(folder, data)
    return _stack(folder, data)
