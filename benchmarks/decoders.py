"""Decoder benchmark: JPEG Lossless CT frames through each available decoder.

``python -m benchmarks.decoders [--repeat N]``, or the ``decoders`` group of
``python -m benchmarks``.

The frames of ``tests/data/ct-skull-jpeg-lossless`` (and of
``../shared/data/ct-skull-jpeg-lossless`` beside the repository, or under
``$LAZYDICOM_SHARED_DATA``, when present)
are read into memory, split with ``pydicom.encaps.generate_frames``, and
decoded one after the other, in the same process, by:

- ``lazydicom.decoders.decode_frame`` (imagecodecs ``jpeg8_decode``, libjpeg-turbo 3),
- pydicom's ``Decoder.as_array`` with ``decoding_plugin="imagecodecs"`` (the same
  decoder behind pydicom's per-frame machinery),
- pydicom's ``Decoder.as_array`` with ``decoding_plugin="pylibjpeg"``
  (pylibjpeg-libjpeg: what ``pixel_array`` uses with lazydicom's codecs extra),
- pydicom's ``Decoder.as_array`` with ``decoding_plugin="gdcm"``, if python-gdcm
  is importable (it is not a lazydicom dependency: install it into a separate
  folder and put that on ``PYTHONPATH`` to measure it, so that pydicom's
  choice of plugin does not change for everything else in the environment).

Only decoding is timed: no file is read inside the timing. Rounds are
interleaved (every decoder once per round, the order rotating), and the
median per-frame time over the rounds is reported, with each decoder's
speed relative to pylibjpeg's. Two-thread rows decode the same frames with a
``ThreadPoolExecutor(2)``: decoders that release the GIL get faster, the
others do not. Every result is compared with the pylibjpeg plugin's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.encaps import encapsulate, generate_frames
from pydicom.errors import InvalidDicomError

from .common import (
    REPO,
    Row,
    error_row,
    fmt_ratio,
    import_lazydicom,
    markdown_table,
    shared_data,
)

__all__ = ["FOLDERS", "Frame", "load_frames", "run_rows", "main"]

#: The JPEG Lossless CT folders: in the repository, and the shared corpus beside it.
FOLDERS = (
    REPO / "tests" / "data" / "ct-skull-jpeg-lossless",
    shared_data() / "ct-skull-jpeg-lossless",
)

REFERENCE = "pydicom as_array, pylibjpeg plugin"


@dataclass(frozen=True, slots=True)
class Frame:
    """One encoded frame and what a decoder needs to know about it."""

    data: bytes
    transfer_syntax: str
    pixels: dict[str, Any]  # rows, columns, ... as decode_frame takes them


def load_frames(folder: Path) -> list[Frame]:
    """Every frame of every DICOM file in ``folder`` with an encapsulated transfer syntax."""
    frames = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            ds = pydicom.dcmread(path)
        except InvalidDicomError:
            continue
        syntax = ds.file_meta.TransferSyntaxUID
        if not syntax.is_encapsulated or "PixelData" not in ds:
            continue
        pixels = {
            "rows": ds.Rows,
            "columns": ds.Columns,
            "samples_per_pixel": ds.SamplesPerPixel,
            "bits_allocated": ds.BitsAllocated,
            "bits_stored": ds.BitsStored,
            "pixel_representation": ds.PixelRepresentation,
            "photometric_interpretation": ds.PhotometricInterpretation,
        }
        n = int(ds.get("NumberOfFrames", 1) or 1)
        for data in generate_frames(ds.PixelData, number_of_frames=n):
            frames.append(Frame(data, str(syntax), pixels))
    return frames


def _pydicom_plugin(name: str) -> Callable[[Frame], np.ndarray]:
    from pydicom.pixels import get_decoder

    def decode(frame: Frame) -> np.ndarray:
        arr, _ = get_decoder(frame.transfer_syntax).as_array(
            encapsulate([frame.data]),
            index=0,
            decoding_plugin=name,
            number_of_frames=1,
            **frame.pixels,
        )
        return arr

    return decode


def decoders(transfer_syntax: str) -> dict[str, Callable[[Frame], np.ndarray]]:
    """The decoders to time, by row label: lazydicom's and each pydicom plugin installed."""
    import_lazydicom()
    from pydicom.pixels import get_decoder

    from lazydicom.decoders import decode_frame

    available = get_decoder(transfer_syntax).available_plugins
    found: dict[str, Callable[[Frame], np.ndarray]] = {
        "lazydicom decode_frame (imagecodecs jpeg8_decode)": lambda f: decode_frame(
            f.data, f.transfer_syntax, **f.pixels
        )
    }
    for plugin in ("imagecodecs", "pylibjpeg", "gdcm"):
        if plugin in available:
            found[f"pydicom as_array, {plugin} plugin"] = _pydicom_plugin(plugin)
    return found


def _decode_all(decode: Callable[[Frame], np.ndarray], frames: list[Frame], threads: int):
    if threads == 1:
        return [decode(f) for f in frames]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(decode, frames))


def _equal(results: list[np.ndarray], reference: list[np.ndarray]) -> tuple[str, str]:
    for k, (a, b) in enumerate(zip(results, reference)):
        if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b):
            return "✗", f"frame {k} differs ({a.dtype}{a.shape} vs {b.dtype}{b.shape})"
    return "✓", ""


def time_decoders(frames: list[Frame], repeat: int, verbose: bool = False) -> list[Row]:
    """Time every decoder on ``frames``, interleaved; one row per decoder and thread count."""
    calls = decoders(frames[0].transfer_syntax)
    if REFERENCE not in calls:
        raise RuntimeError("pydicom's pylibjpeg plugin is not installed: nothing to compare with")
    jobs = [(name, 1) for name in calls]
    jobs += [(name, 2) for name in calls if "as_array, imagecodecs" not in name]
    times: dict[tuple[str, int], list[float]] = {job: [] for job in jobs}
    failed: dict[tuple[str, int], BaseException] = {}
    results: dict[tuple[str, int], list[np.ndarray]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for job in jobs:  # warm-up, and the results to compare
            try:
                results[job] = _decode_all(calls[job[0]], frames, job[1])
            except Exception as exc:  # noqa: BLE001 - a failed decoder is a row
                failed[job] = exc
        for r in range(repeat):
            shift = r % len(jobs)
            for job in jobs[shift:] + jobs[:shift]:
                if job in failed:
                    continue
                start = time.perf_counter()
                _decode_all(calls[job[0]], frames, job[1])
                times[job].append(time.perf_counter() - start)
    reference = results[(REFERENCE, 1)]
    base = statistics.median(times[(REFERENCE, 1)])
    rows = []
    for job in jobs:
        name, threads = job
        what = name if threads == 1 else f"{name}, 2 threads"
        if job in failed:
            rows.append(error_row(what, failed[job], verbose=verbose))
            continue
        median = statistics.median(times[job])
        row = Row(what, median, len(frames), times=times[job])
        row.ratio = base / median
        row.ratio_text = (
            "1 (reference)" if job == (REFERENCE, 1) else f"{fmt_ratio(row.ratio)}x pylibjpeg"
        )
        row.equal, row.note = _equal(results[job], reference)
        rows.append(row)
    return rows


def run_rows(repeat: int = 5, verbose: bool = False) -> list[Row]:
    """The rows of every folder present (the ``decoders`` group of ``python -m benchmarks``)."""
    rows = []
    for folder in FOLDERS:
        if not folder.is_dir():
            rows.append(Row(f"{folder.name} ({folder})", note="folder not found: skipped"))
            continue
        frames = load_frames(folder)
        sizes = sorted({f"{f.pixels['rows']}x{f.pixels['columns']}" for f in frames})
        name = os.path.relpath(folder, REPO)
        rows.append(Row(f"**{name}**", note=f"{len(frames)} frames ({', '.join(sizes)})"))
        try:
            rows += time_decoders(frames, repeat, verbose)
        except Exception as exc:  # noqa: BLE001 - one folder must not hide the other
            rows.append(error_row(name, exc, verbose=verbose))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the per-frame decoding times of each decoder as a markdown table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.decoders", description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--verbose", action="store_true", help="tracebacks of failed rows")
    args = parser.parse_args(argv)
    versions = []
    for dist in ("imagecodecs", "pylibjpeg-libjpeg", "python-gdcm", "pydicom"):
        try:
            versions.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            versions.append(f"{dist} not installed")
    print(f"# Decoding JPEG Lossless frames (median of {args.repeat} interleaved rounds)\n")
    print(f"{os.cpu_count()} cores; " + ", ".join(versions) + "\n")
    print(markdown_table(run_rows(args.repeat, args.verbose)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
