"""Full read of an uncompressed CT series with rescale (group ``ct``).

The data set (:func:`benchmarks.realdata.ensure_ct_uncompressed`): every
512x512 slice of the shared JPEG Lossless CT (301; 150 with ``--quick``),
decompressed with pydicom into one Explicit VR Little Endian series, int16
with RescaleIntercept -1024, so every tool returns float32 (or a type that
holds the rescaled values) and rescaling is part of the work.

Issue 8 targets for ``series.ndarray(("InstanceNumber",)).compute()`` with
default arguments: >= 3x faster than the pydicom loop (``dcmread`` +
``pixel_array`` + rescale to float32), within 1.5x of ``numpy()``; and the
streamed ``ndarray(...).mean().compute()`` within 2x of reading the files'
bytes. The pydicom loop's result is the reference.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from . import peers
from .common import Row, error_row, import_lazydicom
from .data import warm_page_cache
from .fullread import (
    Target,
    Tool,
    apply_targets,
    array_check,
    dcm2niix_tool,
    lazydicom_tools,
    run_tools,
)
from .realdata import Stack, ct_jpeg_source, ensure_ct_uncompressed, missing_reason

__all__ = ["run_ct", "CT_TARGETS"]

DIMS = ("InstanceNumber",)

CT_TARGETS = [
    Target("CT with rescale: ndarray(dims).compute() >= 3x the pydicom loop (#8)",
           "pydicom", "pydicom", "lazydicom.compute", 3.0),
    Target("CT with rescale: ndarray(dims).compute() within 1.5x of numpy() (#8)",
           "lazydicom.compute", "lazydicom.compute", "lazydicom.numpy", 1.5, at_least=False),
    Target("CT with rescale: streamed ndarray(dims).mean().compute() within 2x of reading "
           "the files' bytes (#8)", "lazydicom.mean", "lazydicom.mean", "bytes", 2.0,
           at_least=False),
]


def ct_tools(stack: Stack, reference: np.ndarray, out: Path, verbose: bool) -> list[Tool]:
    """The tools of the CT table (everything but lazydicom's rows)."""
    folder = stack.folder
    check = array_check(reference)
    tools = [
        Tool("bytes", "read the files' bytes: open + read, every file",
             lambda: peers.read_bytes(stack.files)),
        Tool("limit", "raw-read limit: os.pread at the known offset + rescale into float32",
             lambda: peers.raw_read_stack(stack), check),
        Tool("pydicom", "pydicom loop: dcmread + pixel_array + rescale to float32, "
             "sort by InstanceNumber", lambda: peers.pydicom_read(folder, DIMS), check),
        Tool("sitk", "SimpleITK ImageSeriesReader (rescaled, int32)",
             lambda: peers.sitk_read_stack(folder), array_check(reference, any_order=True),
             alone=True),
        Tool("highdicom", "highdicom: imread(path).get_frame(1, dtype=float32) per file",
             lambda: peers.highdicom_read(folder, DIMS, np.float32), check, alone=True),
        Tool("highdicom.volume", "highdicom: get_volume_from_series([dcmread(path)...])",
             lambda: peers.highdicom_volume(folder, np.float32),
             array_check(reference, any_order=True), slow=True),
    ]
    what = "dbdicom 0.3: db.pixel_data(series) (sorted by SliceLocation)"
    try:
        dbd = peers.dbdicom_open(folder)
        tools.append(Tool("dbdicom", what, lambda: peers.dbdicom_read(dbd, ("SliceLocation",)),
                          array_check(reference, any_order=True), slow=True))
    except Exception as exc:  # noqa: BLE001 - a failed peer is a row
        tools.append(Tool("dbdicom", what, note=error_row(what, exc, verbose=verbose).note))
    tools.append(dcm2niix_tool(folder, out, reference))
    return tools


def run_ct(scratch: Path, quick: bool = False, repeat: int = 3, verbose: bool = False
           ) -> list[Row]:
    """Time reading the uncompressed CT series with every tool (see the module docstring)."""
    reason = missing_reason(ct_jpeg_source())
    if reason:
        return [Row("uncompressed CT", note=reason)]
    stack = ensure_ct_uncompressed(scratch, quick)
    folder = stack.folder
    shutil.rmtree(folder / ".lazydicom", ignore_errors=True)
    warm_page_cache(stack.files)
    reference = peers.pydicom_read(folder, DIMS)
    if not np.array_equal(peers.raw_read_stack(stack), reference):
        raise RuntimeError("the raw read differs from the pydicom loop: offsets are wrong")
    out = Path(tempfile.mkdtemp(prefix="lazydicom-bench-dcm2niix-"))
    tools = ct_tools(stack, reference, out, verbose)
    try:
        db = import_lazydicom().open(folder, progress=False)
        (series,) = db.series(SeriesDescription="ct uncompressed")
        tools += lazydicom_tools(series, folder, {"SeriesDescription": "ct uncompressed"},
                                 DIMS, reference)
    except Exception as exc:  # noqa: BLE001
        tools.append(Tool("lazydicom.compute", "lazydicom ndarray(dims).compute()",
                          note=error_row("lazydicom", exc, verbose=verbose).note))
    try:
        rows = run_tools(tools, repeat, stack.nframes, verbose)
    finally:
        shutil.rmtree(out, ignore_errors=True)
        peers.dbdicom_clean(folder)
        shutil.rmtree(folder / ".lazydicom", ignore_errors=True)
    apply_targets(rows, CT_TARGETS)
    rows.append(Row("data", note=f"{stack.description}: {stack.nframes} files of "
                    f"{stack.rows}x{stack.cols} int16, rescale slope {stack.slope:g} "
                    f"intercept {stack.intercept:g}, in {folder}"))
    return rows
