"""Compressed read benchmark: the real JPEG Lossless CT folder of the shared corpus.

The largest series of ``/work/shared/data/ct-skull-jpeg-lossless`` (512x512
int16 slices, JPEG Lossless Process 14 SV1, RescaleIntercept -1024) is read with
a pydicom loop (``dcmread`` + ``pixel_array``, rescaled to float32, sorted by
InstanceNumber) and with lazydicom's ``ndarray(dims=("InstanceNumber",))``.
Decoding dominates, so both must use the same decoder: lazydicom calls pydicom's
``get_decoder(uid).as_array`` without naming a plugin, which is the selection
``Dataset.pixel_array`` makes; the rows report the plugins pydicom has for the
transfer syntax (it takes the first available one that succeeds).

The shared corpus is read-only, so it is copied to the scratch directory first.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from .common import (
    Row,
    equal_mark,
    error_row,
    fmt_ratio,
    import_lazydicom,
    pydicom_config,
    time_call,
)
from .data import warm_page_cache
from .peers import walk_files

__all__ = ["CT_SOURCE", "run_jpeg", "decoder_plugins"]

#: The shared real-data folder.
CT_SOURCE = Path("/work/shared/data/ct-skull-jpeg-lossless")


def _copy(source: Path, scratch: Path) -> Path:
    target = scratch / source.name
    wanted = len(walk_files(source))
    if not target.exists() or len(walk_files(target)) != wanted:
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
    return target


def _largest_series(folder: Path) -> tuple[str, list[str], str]:
    """Return (SeriesInstanceUID, its files, transfer syntax) of the series with most files."""
    groups: dict[str, list[str]] = defaultdict(list)
    syntax: dict[str, str] = {}
    for path in walk_files(folder):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except InvalidDicomError:
            continue
        groups[ds.SeriesInstanceUID].append(path)
        syntax[ds.SeriesInstanceUID] = ds.file_meta.TransferSyntaxUID
    uid = max(groups, key=lambda u: len(groups[u]))
    return uid, groups[uid], syntax[uid]


def decoder_plugins(transfer_syntax: str) -> str:
    """Describe pydicom's decoder plugins for ``transfer_syntax``: available and missing."""
    from pydicom.pixels import get_decoder

    decoder = get_decoder(transfer_syntax)
    available = ", ".join(decoder.available_plugins) or "none"
    missing = ", ".join(sorted(set(decoder._unavailable))) or "none"  # noqa: SLF001
    return f"{decoder.UID.name}: pydicom plugins available: {available}; not installed: {missing}"


def pydicom_read_series(files: list[str]) -> np.ndarray:
    """Read with ``dcmread`` + ``pixel_array``, rescale to float32, sort by InstanceNumber.

    Returns
    -------
    numpy.ndarray
        F-ordered ``(cols, rows, n)`` float32 (values computed in float64, then cast).
    """
    frames = {}
    for path in files:
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        if (slope, intercept) != (1.0, 0.0):
            arr = (arr * slope + intercept).astype(np.float32)
        frames[int(ds.InstanceNumber)] = arr
    first = next(iter(frames.values()))
    out = np.empty((first.shape[1], first.shape[0], len(frames)), dtype=first.dtype, order="F")
    for k, number in enumerate(sorted(frames)):
        out[:, :, k] = frames[number].T
    return out


def run_jpeg(scratch: Path, repeat: int = 3, verbose: bool = False) -> list[Row]:
    """Time the pydicom loop and lazydicom on the largest JPEG Lossless CT series.

    Returns
    -------
    list of Row
        Empty if the shared folder is missing.
    """
    if not CT_SOURCE.is_dir():
        return [Row("JPEG Lossless CT", note=f"{CT_SOURCE} not found: skipped")]
    folder = _copy(CT_SOURCE, Path(scratch))
    shutil.rmtree(folder / ".lazydicom", ignore_errors=True)
    uid, files, syntax = _largest_series(folder)
    n = len(files)
    warm_page_cache([Path(f) for f in files])
    plugins = decoder_plugins(syntax)
    rows = []

    what = "pydicom loop: dcmread + pixel_array (+ rescale), sort by InstanceNumber"
    with pydicom_config():
        t = time_call(lambda: pydicom_read_series(files), repeat, warmup=1)
    reference = t.result
    loop = Row(what, t.median, n, times=t.times, note=f"{n / t.median:,.0f} frames/s")
    rows.append(loop)

    dims = ("InstanceNumber",)
    calls = [
        (
            "lazydicom ndarray(dims=('InstanceNumber',)).compute()",
            lambda s: s.ndarray(dims=dims).compute(),
        ),
        ("lazydicom numpy(dims=('InstanceNumber',))", lambda s: s.numpy(dims=dims)),
        (
            "lazydicom numpy(dims, scheduler='processes'), 2 workers",
            lambda s: s.numpy(dims=dims, scheduler="processes", num_workers=2,
                              frames_per_task=8),
        ),
    ]
    series = None
    try:
        lazydicom = import_lazydicom()
        db = lazydicom.open(folder, progress=False)
        found = db.series(SeriesInstanceUID=uid)
        if len(found) != 1:
            raise RuntimeError(f"expected 1 series with the UID, found {len(found)}")
        series = found[0]
    except Exception as exc:  # noqa: BLE001 - a failed measurement is a row
        rows += [error_row(what, exc, verbose=verbose) for what, _ in calls]
    if series is not None:
        for what, call in calls:
            try:
                with pydicom_config():
                    t = time_call(lambda c=call: c(series), repeat, warmup=1)
                row = Row(what, t.median, n, times=t.times)
                row.equal, why = equal_mark(t.result, reference)
                row.note = "; ".join(x for x in (f"{n / t.median:,.0f} frames/s", why) if x)
                row.ratio = loop.seconds / t.median
                row.ratio_text = f"{fmt_ratio(row.ratio)}x the loop's speed"
            except Exception as exc:  # noqa: BLE001
                row = error_row(what, exc, verbose=verbose)
            rows.append(row)
    loop.equal = "✓ (reference)"
    loop.ratio_text = "1 (reference)"
    rows.append(
        Row("decoder", note=plugins + f"; series of {n} frames, {os.path.basename(folder)}")
    )
    return rows
