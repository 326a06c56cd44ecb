"""Full-read and selection benchmarks on the grid data set (uncompressed MR).

Full read (group ``read``): the whole series as a ``(cols, rows,
SliceLocation, FlipAngle, RepetitionTime)`` array, with every tool side by
side (see :mod:`benchmarks.fullread` for how they are timed). Issue 8 targets
for lazydicom's ``series.ndarray(dims).compute()`` with default arguments:
>= 5x faster than the pydicom loop, >= 10x faster than dbdicom 0.3's
``pixel_data``, within 1.5x of ``numpy()``; and the streamed
``ndarray(dims).mean().compute()`` within 2x of the time to read the files'
bytes. ``numpy()`` keeps the earlier target: within 3x of the raw-read limit.

Selection (group ``select``): one FlipAngle out of k (``coords=``), target
<= 1.5/k of the full read with the same call.

The reference array is the raw-read limit's result, itself checked against the
generator's pixels. Every result is compared with ``np.array_equal`` (dcm2niix's
NIfTI frames in any order, flips allowed). The page cache is warm; indexes
(lazydicom's and dbdicom's) are built before timing, except in the rows that
run a fresh process.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from typing import Any

import numpy as np

from . import peers
from .common import Row, equal_mark, error_row, import_lazydicom, pydicom_config, time_call
from .data import Manifest, clean_indexes, expected_array, warm_page_cache
from .fullread import (
    Target,
    Tool,
    apply_targets,
    array_check,
    dcm2niix_tool,
    lazydicom_tools,
    run_tools,
)

__all__ = ["run_read", "run_select", "READ_TARGETS"]

#: The targets of the full read of the grid series (issue 8, and numpy()'s earlier one).
READ_TARGETS = [
    Target("MR: ndarray(dims).compute() >= 5x the pydicom loop (#8)",
           "pydicom", "pydicom", "lazydicom.compute", 5.0),
    Target("MR: ndarray(dims).compute() >= 10x dbdicom 0.3 (#8)",
           "dbdicom", "dbdicom", "lazydicom.compute", 10.0),
    Target("MR: ndarray(dims).compute() within 1.5x of numpy() (#8)",
           "lazydicom.compute", "lazydicom.compute", "lazydicom.numpy", 1.5, at_least=False),
    Target("MR: streamed ndarray(dims).mean().compute() within 2x of reading the files' "
           "bytes (#8)", "lazydicom.mean", "lazydicom.mean", "bytes", 2.0, at_least=False),
    Target("MR: numpy() within 3x of the raw-read limit",
           "lazydicom.numpy", "lazydicom.numpy", "limit", 3.0, at_least=False),
]


def _series(lazydicom: Any, manifest: Manifest) -> Any:
    db = lazydicom.open(manifest.folder, progress=False)
    found = db.series(SeriesDescription=manifest.spec.description)
    if len(found) != 1:
        raise RuntimeError(f"expected 1 series {manifest.spec.description!r}, found {len(found)}")
    return found[0]


def run_read(manifest: Manifest, repeat: int = 3, verbose: bool = False) -> list[Row]:
    """Time reading the whole grid series with every tool.

    Parameters
    ----------
    manifest : Manifest
        The grid data set.
    repeat : int
        Timed runs per row (interleaved rounds for the fast ones); slow peers
        (dbdicom, imagedata) run ``min(repeat, 2)`` times.
    verbose : bool
        Print tracebacks of failed measurements.

    Returns
    -------
    list of Row
    """
    folder = manifest.folder
    dims = manifest.dims
    files = manifest.files
    clean_indexes(folder)
    warm_page_cache(files)
    reference = peers.raw_read(manifest)
    if not np.array_equal(reference, expected_array(manifest)):
        raise RuntimeError("raw read differs from the generated pixels: offsets are wrong")
    check = array_check(reference)
    tools = [
        Tool("bytes", "read the files' bytes: open + read, every file",
             lambda: peers.read_bytes(files)),
        Tool("limit", "raw-read limit: open + os.pread + copy into cell",
             lambda: peers.raw_read(manifest), check),
        Tool("preadv", "raw read, os.preadv into cell (no copy)",
             lambda: peers.raw_readinto(manifest), check),
        Tool("pydicom", "pydicom loop: dcmread + pixel_array, sort by values",
             lambda: peers.pydicom_read(folder, dims), check),
        Tool("sitk", "SimpleITK ImageSeriesReader, one 3-D stack per acquisition folder",
             lambda: peers.sitk_read(folder), check, alone=True),
        Tool("highdicom", "highdicom: imread(path).get_frame(1) per file, sort by values",
             lambda: peers.highdicom_read(folder, dims, np.uint16), check, alone=True),
    ]
    what = f"dbdicom 0.3: db.pixel_data(series, dims={list(dims[1:])})"
    try:
        dbd = peers.dbdicom_open(folder)
        tools.append(Tool("dbdicom", what, lambda: peers.dbdicom_read(dbd, dims), check,
                          slow=True))
    except Exception as exc:  # noqa: BLE001 - a failed peer is a row
        tools.append(Tool("dbdicom", what, note=error_row(what, exc, verbose=verbose).note))
    what = 'imagedata Series(folder, "fa,tr")'
    if importlib.util.find_spec("imagedata") is None:
        tools.append(Tool("imagedata", what, note="imagedata not installed (optional): skipped"))
    else:
        tools.append(Tool("imagedata", what, lambda: peers.imagedata_read(folder), check,
                          slow=True))
    out = tempfile.mkdtemp(prefix="lazydicom-bench-dcm2niix-")
    tools.append(dcm2niix_tool(
        folder, out, reference, ["-f", "%f_%s_%r"],
        "-f %f_%s_%r (first InstanceNumber in each file name): with the default name dcm2niix "
        "runs out of suffixes for this grid's 64 volumes and converts 520 of 1280 files "
        "(exit code 8)"))
    try:
        series = _series(import_lazydicom(), manifest)
        filters = {"SeriesDescription": manifest.spec.description}
        tools += lazydicom_tools(series, folder, filters, dims, reference)
    except Exception as exc:  # noqa: BLE001
        tools.append(Tool("lazydicom.compute", "lazydicom ndarray(dims).compute()",
                          note=error_row("lazydicom", exc, verbose=verbose).note))
    try:
        rows = run_tools(tools, repeat, manifest.spec.nframes, verbose)
    finally:
        shutil.rmtree(out, ignore_errors=True)
        peers.dbdicom_clean(folder)
        clean_indexes(folder)
    apply_targets(rows, READ_TARGETS)
    return rows


def run_select(manifest: Manifest, repeat: int = 3, verbose: bool = False) -> list[Row]:
    """Time selecting one FlipAngle (1/k of the frames) against the full read.

    Both calls are ``series.ndarray(...).compute()``; the full read is timed here
    again, interleaved with the selection (after one untimed run of each), so both
    see the same machine state.

    Returns
    -------
    list of Row
        Full read, selection (ratio selection/full, target <= 1.5/k).
    """
    dims = manifest.dims
    coords = manifest.spec.coords
    n = manifest.spec.nframes
    k = len(coords["FlipAngle"])
    flip_index = k // 2
    flip = coords["FlipAngle"][flip_index]
    selection = {
        "SliceLocation": list(coords["SliceLocation"]),
        "FlipAngle": [flip],
        "RepetitionTime": list(coords["RepetitionTime"]),
    }
    warm_page_cache(manifest.files)
    reference = expected_array(manifest)
    full_what = "lazydicom full read: ndarray(dims).compute()"
    sel_what = f"lazydicom ndarray(coords={{FlipAngle: [{flip:g}], others all}}).compute()"
    target = f"<= 1.5/k = {1.5 / k:.3f} of full (k={k})"
    try:
        with pydicom_config():
            series = _series(import_lazydicom(), manifest)
            full_times, sel_times = [], []
            full_result = sel_result = None
            for i in range(max(1, repeat)):
                warmup = 1 if i == 0 else 0
                t_full = time_call(lambda: series.ndarray(dims=dims).compute(), 1, warmup=warmup)
                t_sel = time_call(
                    lambda: series.ndarray(coords=selection).compute(), 1, warmup=warmup
                )
                full_times += t_full.times
                sel_times += t_sel.times
                full_result, sel_result = t_full.result, t_sel.result
        full = Row(
            full_what, float(np.median(full_times)), n, times=full_times,
            ratio_text="1 (reference)", key="select.full",
        )
        full.equal, full.note = equal_mark(full_result, reference)
        sel = Row(sel_what, float(np.median(sel_times)), n // k, times=sel_times, target=target,
                  key="select")
        sel.equal, sel.note = equal_mark(
            sel_result, reference[:, :, :, flip_index : flip_index + 1]
        )
        sel.ratio = sel.seconds / full.seconds
        sel.ratio_text = f"{sel.ratio:.3f} of full ({sel.ratio * k:.2f}/k)"
        sel.met = sel.ratio <= 1.5 / k
        return [full, sel]
    except Exception as exc:  # noqa: BLE001
        return [
            error_row(full_what, exc, verbose=verbose),
            error_row(sel_what, exc, target=target, verbose=False),
        ]
