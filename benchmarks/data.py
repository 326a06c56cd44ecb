"""Benchmark data: synthetic MR series written with pydicom only, cached on disk.

Two data sets are made, each in its own folder under the scratch directory:

``grid``
    A variable flip angle series on a 3-D grid (SliceLocation x FlipAngle x
    RepetitionTime; 20 x 8 x 8 = 1,280 single-frame 256x256 uint16 files by
    default). Files sit in nested folders with spaces in their names, one
    folder per (FlipAngle, RepetitionTime) acquisition, and have random names
    so that neither the file names nor the directory order follow the grid.
``big``
    A large series for the memory benchmark (SliceLocation x
    TemporalPositionIdentifier, 40 x 100 = 4,000 frames of 512x512, 2.1 GB by
    default).

Every frame is a cyclic shift of the ramp ``0 .. rows*cols - 1`` (mod 65536) by
an amount that depends on the frame's grid cell, so a misplaced, transposed or
byte-swapped frame fails an equality check, and the mean of every frame is
known without reading it: a frame of 256x256 (or 512x512) pixels holds every
value ``0 .. 65535`` once (or four times), so its mean is 32767.5.

A manifest (``<name>.manifest.json`` next to the data folder) records the
grid, each file's grid cell and the byte offset of its pixel data (found with
pydicom after writing, never inside a timed region). A folder whose manifest matches the requested
parameters and whose files are all present is reused; anything else is
regenerated.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

__all__ = [
    "GRID_DIMS",
    "GridSpec",
    "Manifest",
    "frame_pixels",
    "grid_spec",
    "big_spec",
    "ensure_dataset",
    "warm_page_cache",
    "clean_indexes",
]

#: The dims of the grid series, in the order of the array axes after (x, y).
GRID_DIMS: tuple[str, str, str] = ("SliceLocation", "FlipAngle", "RepetitionTime")
#: The dims of the big (memory) series.
BIG_DIMS: tuple[str, str] = ("SliceLocation", "TemporalPositionIdentifier")

_MANIFEST_SUFFIX = ".manifest.json"
_FORMAT_VERSION = 2  # bump when the generated files change


@dataclass(frozen=True, slots=True)
class GridSpec:
    """What to generate: a grid of single-frame files.

    Parameters
    ----------
    name : str
        Folder name under the scratch directory.
    coords : dict
        ``{keyword: values}`` per grid axis, values sorted ascending.
    rows, cols : int
        Frame size.
    description : str
        SeriesDescription of the series.
    layout : str
        ``"acquisition"``: one subfolder per combination of all axes but the
        first (so each subfolder holds one 3-D stack); ``"flat"``: one folder.
    seed : int
        Seed for the file names and their order on disk.
    """

    name: str
    coords: dict[str, list[float]]
    rows: int = 256
    cols: int = 256
    description: str = "t1 vfa"
    layout: str = "acquisition"
    seed: int = 20240611

    @property
    def shape(self) -> tuple[int, ...]:
        """Grid shape, one entry per dim."""
        return tuple(len(v) for v in self.coords.values())

    @property
    def nframes(self) -> int:
        """Number of frames (= files)."""
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        """Size of all pixel data in bytes."""
        return self.nframes * self.rows * self.cols * 2


@dataclass(slots=True)
class Manifest:
    """What was generated: the grid, and per file its cell and pixel offset.

    Attributes
    ----------
    folder : Path
        Root of the data set.
    spec : GridSpec
        The parameters it was generated from.
    paths : list of str
        File paths relative to ``folder``, in generation (grid C) order.
    cells : numpy.ndarray
        ``(nframes, ndims)`` grid index of every file, aligned with ``paths``.
    offsets : numpy.ndarray
        Byte offset of every file's Pixel Data value.
    """

    folder: Path
    spec: GridSpec
    paths: list[str] = field(default_factory=list)
    cells: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def files(self) -> list[Path]:
        """Absolute paths of all files, aligned with :attr:`cells`."""
        return [self.folder / p for p in self.paths]

    @property
    def dims(self) -> tuple[str, ...]:
        """The grid dims in axis order."""
        return tuple(self.spec.coords)

    @property
    def array_shape(self) -> tuple[int, ...]:
        """Shape of the full ``ndarray(dims)``: ``(cols, rows, *grid)``."""
        return (self.spec.cols, self.spec.rows, *self.spec.shape)

    def subfolders(self) -> list[Path]:
        """Folders holding files, sorted."""
        return sorted({(self.folder / p).parent for p in self.paths})


def grid_spec(quick: bool = False) -> GridSpec:
    """Return the grid series spec: 20x8x8 (1,280 frames), or 10x4x4 when ``quick``."""
    nslice, nflip, ntr = (10, 4, 4) if quick else (20, 8, 8)
    flips = [2.0, 4.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0]
    trs = [5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 50.0, 100.0]
    return GridSpec(
        name=f"grid-{nslice}x{nflip}x{ntr}",
        coords={
            "SliceLocation": [-47.5 + 5.0 * i for i in range(nslice)],
            "FlipAngle": flips[:nflip] if not quick else flips[::2],
            "RepetitionTime": trs[:ntr] if not quick else trs[::2],
        },
        description="t1 vfa",
        layout="acquisition",
    )


def big_spec(quick: bool = False) -> GridSpec:
    """Return the memory series spec: 40x100 frames of 512x512 (2.1 GB), 40x10 if ``quick``.

    Large frames keep the number of files (and so the generation time, which is
    dominated by pydicom writing headers) down.
    """
    nslice, ntime = (40, 10) if quick else (40, 100)
    return GridSpec(
        name=f"big-{nslice}x{ntime}",
        coords={
            "SliceLocation": [-97.5 + 5.0 * i for i in range(nslice)],
            "TemporalPositionIdentifier": list(range(1, ntime + 1)),
        },
        rows=512,
        cols=512,
        description="dynamic",
        layout="flat",
    )


def frame_pixels(cell: int, rows: int, cols: int) -> np.ndarray:
    """Return the stored ``(rows, cols)`` uint16 pixels of the frame of flat cell ``cell``.

    The frame is the ramp ``0 .. rows*cols - 1`` shifted by ``51 * cell``,
    modulo 65536: distinct for every cell, not symmetric under transposition.
    """
    ramp = np.arange(rows * cols, dtype=np.uint64).astype(np.uint16)  # wraps mod 65536
    ramp += np.uint16((51 * cell) % 65536)  # uint16 addition wraps mod 65536
    return ramp.reshape(rows, cols)


def _format_ds(value: float) -> str:
    """Format a number as a DICOM DS string that parses back to the same float."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _base_dataset(spec: GridSpec, uids: dict[str, str]) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = MRImageStorage
    ds.Modality = "MR"
    ds.PatientName = "Bench^Phantom"
    ds.PatientID = "BENCH001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = uids["study"]
    ds.StudyDescription = "lazydicom benchmark"
    ds.StudyDate = "20240611"
    ds.StudyTime = "120000"
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.SeriesInstanceUID = uids["series"]
    ds.SeriesDescription = spec.description
    ds.SeriesNumber = 3
    ds.FrameOfReferenceUID = uids["frame_of_reference"]
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "lazydicom"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.ScanningSequence = "GR"
    ds.SequenceVariant = "SP"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "3D"
    ds.EchoTime = "2.3"
    ds.EchoTrainLength = 1
    ds.MagneticFieldStrength = "3"
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1, 1]
    ds.SliceThickness = 5
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = spec.rows
    ds.Columns = spec.cols
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    return ds


def _subfolder(spec: GridSpec, values: dict[str, float]) -> str:
    base = os.path.join("Patient 001 Bench", "Study 1 MR brain", f"Series 3 {spec.description}")
    if spec.layout == "flat":
        return base
    rest = list(spec.coords)[1:]
    label = " ".join(f"{_ABBREV.get(k, k)} {_format_ds(values[k])}" for k in rest)
    return os.path.join(base, f"acq {label}")


_ABBREV = {"FlipAngle": "FA", "RepetitionTime": "TR"}


def _write_grid(spec: GridSpec, folder: Path) -> Manifest:
    rng = np.random.default_rng(spec.seed)
    uids = {k: generate_uid() for k in ("study", "series", "frame_of_reference")}
    n = spec.nframes
    cells = np.array(np.unravel_index(np.arange(n), spec.shape)).T
    # random, unique file names; files written in a random order
    names = rng.choice(10**7, size=n, replace=False)
    order = rng.permutation(n)
    jobs = [
        (spec, str(folder), uids, [(int(f), cells[f].tolist(), int(names[f])) for f in part])
        for part in np.array_split(order, max(1, min(64, n // 50)))
    ]
    paths: list[str] = [""] * n
    offsets = np.zeros(n, dtype=np.int64)
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    # fork only while this process has no other thread (forking threads can deadlock)
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        ctx = multiprocessing.get_context("fork")
    else:
        ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        for written in pool.imap_unordered(_write_frames, jobs):
            for flat, rel, offset in written:
                paths[flat] = rel
                offsets[flat] = offset
    return Manifest(folder=folder, spec=spec, paths=paths, cells=cells, offsets=offsets)


def _write_frames(
    job: tuple[GridSpec, str, dict[str, str], list[tuple[int, list[int], int]]],
) -> list[tuple[int, str, int]]:
    """Write some frames of a grid; return ``(flat index, relative path, pixel offset)``."""
    spec, folder, uids, frames = job
    base = _base_dataset(spec, uids)
    keys = list(spec.coords)
    half = spec.cols / 2 - 0.5
    written = []
    for flat, cell, name in frames:
        values = {k: spec.coords[k][i] for k, i in zip(keys, cell, strict=True)}
        ds = base.copy()
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceNumber = flat + 1
        for key, value in values.items():
            if key == "TemporalPositionIdentifier":
                setattr(ds, key, int(value))
            else:
                setattr(ds, key, _format_ds(value))
        z = values["SliceLocation"]
        ds.ImagePositionPatient = [_format_ds(-half), _format_ds(-half), _format_ds(z)]
        ds.AcquisitionNumber = 1
        ds.PixelData = frame_pixels(flat, spec.rows, spec.cols).tobytes()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds.file_meta = meta
        rel = os.path.join(_subfolder(spec, values), f"IM {name:07d}")
        path = Path(folder) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        written.append((flat, rel, pixel_offset(path)))
    return written


def pixel_offset(path: str | os.PathLike[str]) -> int:
    """Return the byte offset of the Pixel Data value in ``path``, found with pydicom.

    The Pixel Data element is read deferred, so pydicom records where its value
    starts (``DataElement.file_tell``) without reading it.
    """
    ds = pydicom.dcmread(path, defer_size=1024)
    return int(ds["PixelData"].file_tell)


def _manifest_path(folder: Path) -> Path:
    """The manifest sits next to (not inside) the data folder, so no reader sees it."""
    return folder.with_name(folder.name + _MANIFEST_SUFFIX)


def _save_manifest(manifest: Manifest) -> None:
    data: dict[str, Any] = {
        "format_version": _FORMAT_VERSION,
        "spec": asdict(manifest.spec),
        "paths": manifest.paths,
        "cells": manifest.cells.tolist(),
        "offsets": manifest.offsets.tolist(),
    }
    path = _manifest_path(manifest.folder)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def _load_manifest(folder: Path, spec: GridSpec) -> Manifest | None:
    try:
        data = json.loads(_manifest_path(folder).read_text())
    except (OSError, ValueError):
        return None
    if data.get("format_version") != _FORMAT_VERSION or data.get("spec") != json.loads(
        json.dumps(asdict(spec))
    ):
        return None
    manifest = Manifest(
        folder=folder,
        spec=spec,
        paths=data["paths"],
        cells=np.array(data["cells"], dtype=np.int64),
        offsets=np.array(data["offsets"], dtype=np.int64),
    )
    expected = 128 + 2 * spec.rows * spec.cols  # at least preamble + pixels
    for path in manifest.files:
        try:
            if path.stat().st_size < expected:
                return None
        except OSError:
            return None
    return manifest


def ensure_dataset(scratch: Path, spec: GridSpec, log: Any = print) -> Manifest:
    """Return the manifest of ``spec`` under ``scratch``, generating the files if needed.

    Parameters
    ----------
    scratch : Path
        Scratch directory holding all benchmark data.
    spec : GridSpec
        What to generate.
    log : callable
        Called with progress messages.

    Returns
    -------
    Manifest
        The (cached or new) data set.
    """
    folder = Path(scratch) / spec.name
    manifest = _load_manifest(folder, spec)
    if manifest is not None:
        return manifest
    gb = spec.nbytes / 1e9
    log(f"generating {spec.nframes} files ({gb:.2f} GB) in {folder} ...")
    shutil.rmtree(folder, ignore_errors=True)
    _manifest_path(folder).unlink(missing_ok=True)
    folder.mkdir(parents=True)
    manifest = _write_grid(spec, folder)
    _save_manifest(manifest)
    return manifest


def clean_indexes(folder: Path) -> None:
    """Remove index files that lazydicom and dbdicom write into a data folder."""
    shutil.rmtree(Path(folder) / ".lazydicom", ignore_errors=True)
    for name in ("index.json",):
        try:
            (Path(folder) / name).unlink()
        except FileNotFoundError:
            pass


def warm_page_cache(paths: list[Path]) -> None:
    """Read every file once so timed runs find them in the page cache."""
    for path in paths:
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass


def expected_array(manifest: Manifest) -> np.ndarray:
    """Return the ``(cols, rows, *grid)`` array computed from the generator, reading no file."""
    spec = manifest.spec
    out = np.empty(manifest.array_shape, dtype=np.uint16, order="F")
    for flat, cell in enumerate(manifest.cells):
        out[(slice(None), slice(None), *cell)] = frame_pixels(flat, spec.rows, spec.cols).T
    return out
