"""Writing: lazydicom's ``zeros`` + ``set_ndarray`` against dbdicom and a pydicom loop.

The same float32 volume ``(x, y, z)`` is written as one single-frame MR file
per slice, into a fresh folder per repeat:

- lazydicom: ``db.zeros(shape, {"SliceLocation": ...})`` then
  ``series.set_ndarray(volume, coords=...)`` (the seed's workflow), each step
  also timed alone, and ``set_ndarray`` of a dask array; the index is updated
  for the written files as part of the call;
- dbdicom 0.3: ``dbdicom.write_volume((volume, affine), series)``, its writer
  (0.3 has no ``zeros``/``set_ndarray``; 0.2 had them, with the cell bug);
- pydicom: a loop building one Dataset per slice and ``dcmwrite`` (the
  obvious hand-written baseline, no index).

Every result is read back and compared with the volume (max error within
1e-3 of its range counts as ✓; both tools quantise floats to 16 bits).
``python -m benchmarks.write [--quick] [--verbose]`` prints the table.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .common import Row, error_row, fmt_ratio, import_lazydicom, quiet, time_call

__all__ = ["run", "run_rows"]


def _volume(quick: bool) -> np.ndarray:
    shape = (128, 128, 48) if quick else (256, 256, 192)
    rng = np.random.default_rng(0)
    return (1000 * rng.random(shape)).astype(np.float32)


def _close(result: np.ndarray, volume: np.ndarray) -> tuple[str, str]:
    err = float(np.abs(np.asarray(result, np.float64) - volume).max())
    span = float(volume.max() - volume.min())
    return ("✓", f"max error {err:.2g}") if err <= 1e-3 * span else ("✗", f"max error {err:.2g}")


class _Folders:
    """A new empty folder per repeat under one scratch folder."""

    def __init__(self, scratch: Path):
        self.scratch, self.n, self.current = scratch, 0, scratch

    def next(self) -> Path:
        self.n += 1
        self.current = self.scratch / f"w{self.n:03d}"
        shutil.rmtree(self.current, ignore_errors=True)
        self.current.mkdir(parents=True)
        return self.current


def _lazydicom_rows(volume: np.ndarray, folders: _Folders, repeat: int) -> list[Row]:
    ld = import_lazydicom()
    import dask.array as da

    n = volume.shape[2]
    coords = {"SliceLocation": 2.5 * np.arange(n)}
    rows: list[Row] = []

    def both() -> Any:
        db = ld.open(folders.current)
        s = db.zeros(volume.shape, coords, SeriesDescription="bench")
        s.set_ndarray(volume, coords=coords)
        return s

    t = time_call(both, repeat, setup=folders.next, warmup=1)
    mark, note = _close(t.result.ndarray(("SliceLocation",)).compute(), volume)
    rows.append(
        Row(
            "lazydicom zeros + set_ndarray (numpy float32)",
            t.median,
            n,
            equal=mark,
            note=note,
            times=t.times,
        )
    )

    def zeros() -> Any:
        return ld.open(folders.current).zeros(volume.shape, coords)

    t = time_call(zeros, repeat, setup=folders.next)
    rows.append(Row("lazydicom zeros alone", t.median, n, times=t.times))
    series = t.result
    t = time_call(lambda: series.set_ndarray(volume, coords=coords), repeat)
    rows.append(Row("lazydicom set_ndarray alone (overwrite, numpy)", t.median, n, times=t.times))
    lazy = da.from_array(volume, chunks=(-1, -1, 8))
    t = time_call(lambda: series.set_ndarray(lazy, coords=coords), repeat)
    mark, note = _close(series.ndarray(("SliceLocation",)).compute(), volume)
    rows.append(
        Row(
            "lazydicom set_ndarray alone (overwrite, dask, 8 frames/chunk)",
            t.median,
            n,
            equal=mark,
            note=note,
            times=t.times,
        )
    )
    return rows


def _dbdicom_row(volume: np.ndarray, folders: _Folders, repeat: int) -> Row:
    import dbdicom

    affine = np.diag([1.0, 1.0, 2.5, 1.0])

    def write() -> list:
        series = [str(folders.current), "BENCH", ("Study", 0), ("Series", 0)]
        with quiet():
            dbdicom.write_volume((volume, affine), series, verbose=0)
        return series

    t = time_call(write, repeat, setup=folders.next, warmup=1)
    with quiet():
        back = dbdicom.volume(t.result, verbose=0).values
    mark, note = _close(back, volume)
    return Row(
        "dbdicom 0.3 write_volume", t.median, volume.shape[2], equal=mark, note=note, times=t.times
    )


def _pydicom_row(volume: np.ndarray, folders: _Folders, repeat: int) -> Row:
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    def write() -> Path:
        folder = folders.current
        series, study = generate_uid(), generate_uid()
        for k in range(volume.shape[2]):
            frame = volume[:, :, k].T
            lo, hi = float(frame.min()), float(frame.max())
            slope = (hi - lo) / 65535 or 1.0
            ds = Dataset()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, generate_uid()
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
            ds.PatientID, ds.Modality, ds.InstanceNumber = "BENCH", "MR", k + 1
            ds.ImagePositionPatient = [0, 0, 2.5 * k]
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.PixelSpacing, ds.SliceLocation = [1, 1], 2.5 * k
            ds.Rows, ds.Columns = frame.shape
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            ds.RescaleIntercept = pydicom.valuerep.format_number_as_ds(lo)
            ds.RescaleSlope = pydicom.valuerep.format_number_as_ds(slope)
            q = np.rint((frame - float(ds.RescaleIntercept)) / float(ds.RescaleSlope))
            ds.PixelData = np.clip(q, 0, 65535).astype("<u2").tobytes()
            ds.save_as(folder / f"{k:05d}.dcm", enforce_file_format=True)
        return folder

    t = time_call(write, repeat, setup=folders.next)
    files = sorted(t.result.glob("*.dcm"))
    back = np.stack(
        [
            pydicom.dcmread(f).pixel_array.T * float(pydicom.dcmread(f).RescaleSlope)
            + float(pydicom.dcmread(f).RescaleIntercept)
            for f in files
        ],
        axis=-1,
    )
    mark, note = _close(back, volume)
    return Row(
        "pydicom loop: Dataset + dcmwrite per frame (no index)",
        t.median,
        volume.shape[2],
        equal=mark,
        note=note,
        times=t.times,
    )


def run_rows(
    quick: bool = False,
    scratch: str | os.PathLike | None = None,
    repeat: int | None = None,
    verbose: bool = False,
) -> list[Row]:
    """Run every write measurement; returns :class:`~benchmarks.common.Row` objects."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    repeat = repeat or (2 if quick else 3)
    base = Path(scratch or tempfile.gettempdir()) / "lazydicom-bench-write"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    volume = _volume(quick)
    label = f"{volume.shape[0]}x{volume.shape[1]}x{volume.shape[2]} float32"
    rows: list[Row] = []
    folders = _Folders(base)
    try:
        for what, part in (
            ("lazydicom", lambda: _lazydicom_rows(volume, folders, repeat)),
            ("dbdicom", lambda: [_dbdicom_row(volume, folders, repeat)]),
            ("pydicom", lambda: [_pydicom_row(volume, folders, repeat)]),
        ):
            try:
                rows += part()
            except Exception as exc:  # noqa: BLE001 - a failing peer is a row, not a crash
                rows.append(error_row(what, exc, verbose=verbose))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    ours = rows[0].seconds if rows and rows[0].what.startswith("lazydicom zeros +") else None
    for row in rows:
        row.what = f"{label}: {row.what}"
        if ours and row.seconds and row is not rows[0]:
            row.ratio = row.seconds / ours
            row.ratio_text = f"{fmt_ratio(row.ratio)}x lazydicom zeros + set_ndarray"
    return rows


def run(quick: bool = False) -> list[dict]:
    """Run the write benchmarks; one JSON-ready dict per result row."""
    return [row.to_dict() for row in run_rows(quick)]


if __name__ == "__main__":  # python -m benchmarks.write [--quick] [--verbose]
    import sys

    from .common import markdown_table

    print(markdown_table(run_rows("--quick" in sys.argv, verbose="--verbose" in sys.argv)))
