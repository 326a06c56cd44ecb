"""Write frames to files: one dask task per block, atomic files, all-or-nothing commit.

A call's work is a ``Job`` (what every frame shares) and one
``Cell`` per frame (its file, and either the file whose header it keeps
or its new coordinate values). The array is cut into blocks of whole frames;
each block is one task that encodes its frames and writes each to a temporary
file in the call's private folder under ``<database>/.lazydicom/`` (never
indexed), returning the paths. Only when every task has succeeded are the
temporary files renamed over their targets, through a journal
(``lazydicom.commits``), so a refused or failed call leaves no file
changed, and a process killed while committing has its commit finished by
the next run: all or nothing, every file either old or new, never truncated.
Tasks carry small picklable values only, so they run on threads, processes
and dask.distributed workers alike; memory is a few blocks, never the array.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from ..commits import Pending
from .encoding import encode_dataset, encode_element, file_bytes, split_elements, text_value
from .stored import StoredFrame, ds_text, store_pixels

__all__ = ["Cell", "Job", "write_block", "run", "STALE_TAGS", "template_elements"]

#: Elements dropped from a header whose pixels are replaced (they would be stale).
STALE_TAGS = {
    0x00280006,  # PlanarConfiguration
    0x00280008,  # NumberOfFrames
    0x00280106,
    0x00280107,
    0x00280108,
    0x00280109,  # smallest/largest pixel values
    0x00280120,
    0x00280121,  # PixelPaddingValue / RangeLimit
    0x00281050,
    0x00281051,
    0x00281052,
    0x00281053,  # window, rescale: set per frame
    0x00281055,  # WindowCenterWidthExplanation
    0x00281101,
    0x00281102,
    0x00281103,
    0x00281201,
    0x00281202,
    0x00281203,  # palette
    0x00283000,
    0x00283010,  # Modality LUT, VOI LUT sequences
    0x00287FE0,  # PixelDataProviderURL
    0x7FE00001,
    0x7FE00002,
    0x7FE00008,
    0x7FE00009,
    0x7FE00010,
    0x00020000,
}
#: Also dropped from a template for new frames: they identify the template's frame.
_INSTANCE_TAGS = {0x00080018, 0x00200013}

_ROWS, _COLUMNS, _IPP, _LOCATION = 0x00280010, 0x00280011, 0x00200032, 0x00201041


@dataclass(frozen=True, slots=True)
class Cell:
    """One frame to write.

    ``path`` is the target file. ``source`` names the file whose header is kept
    (an existing cell being overwritten); for a new cell it is None and
    ``instance``/``values`` give its InstanceNumber and encoded coordinates.
    """

    path: str
    source: str | None = None
    instance: int | None = None
    values: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Job:
    """What every frame of one write shares (picklable; sent once to each worker).

    Attributes
    ----------
    header : dict of int to bytes
        Encoded shared elements of new frames.
    sop_class : str
        SOP Class UID of new frames.
    dims : tuple of (tag or None, VR, geometry)
        Coordinates of new frames; ``geometry`` is "location", "position" or None.
    origin, normal : tuple of float
        ImagePositionPatient of the template and the unit slice normal.
    location : float
        SliceLocation of the template (where ``origin`` lies).
    prefer_signed : bool
        Store integers as int16 when they fit (signed input).
    keep_rescale : bool
        Write RescaleSlope/Intercept even when 1/0 (the template has them).
    tmpdir : str
        Where tasks write; renamed into place by ``run``.
    """

    header: dict[int, bytes]
    sop_class: str
    dims: tuple[tuple[int | None, str, str | None], ...]
    origin: tuple[float, ...]
    normal: tuple[float, ...]
    location: float
    prefer_signed: bool
    keep_rescale: bool
    tmpdir: str


def template_elements(ds: pydicom.Dataset) -> dict[int, bytes]:
    """Shared elements of new frames made from the header ``ds`` of a template."""
    return encode_dataset(ds, STALE_TAGS | _INSTANCE_TAGS)


def _pixel_elements(frame: StoredFrame, keep_rescale: bool) -> dict[int, bytes]:
    rows, columns = frame.pixels.shape
    out = {
        0x00280002: encode_element(0x00280002, "US", 1),
        0x00280004: encode_element(0x00280004, "CS", "MONOCHROME2"),
        _ROWS: encode_element(_ROWS, "US", rows),
        _COLUMNS: encode_element(_COLUMNS, "US", columns),
        0x00280100: encode_element(0x00280100, "US", 16),
        0x00280101: encode_element(0x00280101, "US", 16),
        0x00280102: encode_element(0x00280102, "US", 15),
        0x00280103: encode_element(0x00280103, "US", int(frame.signed)),
        0x00281050: encode_element(0x00281050, "DS", frame.window_center),
        0x00281051: encode_element(0x00281051, "DS", frame.window_width),
    }
    if frame.rescaled or keep_rescale:
        out[0x00281052] = encode_element(0x00281052, "DS", frame.intercept_text)
        out[0x00281053] = encode_element(0x00281053, "DS", frame.slope_text)
    return out


def _new_elements(cell: Cell, job: Job) -> tuple[dict[int, bytes], str]:
    uid = generate_uid()
    elements = dict(job.header)
    elements[0x00080018] = encode_element(0x00080018, "UI", uid)
    elements[0x00200013] = encode_element(0x00200013, "IS", str(cell.instance))
    location = position = None
    for (tag, vr, geometry), value in zip(job.dims, cell.values, strict=True):
        if tag is not None:
            elements[tag] = encode_element(tag, vr, value)
        if geometry == "location":
            location = float(value)
        elif geometry == "position":
            position = [float(v) for v in str(value).split("\\")]
    normal = np.asarray(job.normal)
    if location is not None:
        ipp = np.asarray(job.origin) + (location - job.location) * normal
        elements[_IPP] = encode_element(_IPP, "DS", [ds_text(v) for v in ipp])
        if _LOCATION not in {d[0] for d in job.dims}:
            elements[_LOCATION] = encode_element(_LOCATION, "DS", ds_text(location))
    elif position is not None and _LOCATION not in {d[0] for d in job.dims}:
        elements[_LOCATION] = encode_element(
            _LOCATION, "DS", ds_text(round(float(np.dot(position, normal)), 6))
        )
    return elements, uid


def _source_elements(path: str) -> tuple[dict[int, bytes], str, str, bool]:
    """The header of a file being overwritten: its elements, SOP class and instance."""
    elements = split_elements(path)
    if elements is not None and 0x00080016 in elements and 0x00080018 in elements:
        keep = 0x00281052 in elements or 0x00281053 in elements
        sop_class, uid = text_value(elements[0x00080016]), text_value(elements[0x00080018])
        for tag in STALE_TAGS.intersection(elements):
            del elements[tag]
        return elements, sop_class, uid, keep
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    keep = "RescaleSlope" in ds or "RescaleIntercept" in ds
    return encode_dataset(ds, STALE_TAGS), str(ds.SOPClassUID), str(ds.SOPInstanceUID), keep


def write_block(
    block: np.ndarray, cells: Sequence[Cell], job: Job, block_id: int
) -> list[tuple[str, str, bool]]:
    """Task: write the frames of ``block`` (``(x, y, *dims)``, cells in C order).

    Returns ``(temporary path, target path, is new)`` per frame.
    """
    frames = frame_major(np.asarray(block))
    out: list[tuple[str, str, bool]] = []
    try:
        for k, (index, cell) in enumerate(zip(np.ndindex(*frames.shape[:-2]), cells, strict=True)):
            frame = store_pixels(frames[index], job.prefer_signed)
            if cell.source is None:
                elements, uid = _new_elements(cell, job)
                sop_class, keep = job.sop_class, job.keep_rescale
            else:
                elements, sop_class, uid, keep = _source_elements(cell.source)
            elements.update(_pixel_elements(frame, keep))
            pixels = frame.pixels.astype(frame.pixels.dtype.newbyteorder("<"), copy=False)
            head = file_bytes(elements, sop_class, uid, pixels.nbytes)
            tmp = os.path.join(job.tmpdir, f"{block_id}-{k}.dcm")
            with open(tmp, "xb") as f:
                f.write(head)
                f.write(pixels.data)
            out.append((tmp, cell.path, cell.source is None))
    except BaseException:
        for tmp, _, _ in out:
            _unlink(tmp)
        raise
    return out


def frame_major(block: np.ndarray, tile: int = 8) -> np.ndarray:
    """``(x, y, *dims)`` as ``(*dims, rows, columns)`` with every frame contiguous.

    A view when the frames already are contiguous (Fortran-ordered blocks, as
    lazydicom reads them); else a copy made a few columns at a time, which
    reads the C-ordered source in runs and is about 4x faster than
    ``numpy.asfortranarray`` or one strided copy per frame.
    """
    moved = np.moveaxis(block, (0, 1), (-1, -2))
    item = block.dtype.itemsize
    if block.shape[0] < 2 or block.strides[0] == item:
        if block.shape[1] < 2 or block.strides[1] == item * block.shape[0]:
            return moved
    out = np.empty(moved.shape, dtype=block.dtype)
    for x0 in range(0, block.shape[0], tile):
        out[..., x0 : x0 + tile] = moved[..., x0 : x0 + tile]
    return out


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def run(tasks: list[Any], pending: Pending, folders: Sequence[str]) -> list[str]:
    """Compute write tasks, then commit them (see ``lazydicom.commits``).

    On any error everything written is removed and the database is unchanged.
    """
    import dask

    try:
        results = dask.compute(*tasks)
    except BaseException:
        pending.discard()
        raise
    return pending.commit([w for r in results for w in r], folders)
