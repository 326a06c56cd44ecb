"""Compressed read benchmark (group ``jpeg``): the largest series of the real JPEG Lossless CT.

The largest series of the shared ``ct-skull-jpeg-lossless`` (111 frames of
512x512 int16, JPEG Lossless Process 14 SV1, RescaleIntercept -1024; a
reformatted series with two orientations) is copied alone into a folder
(:func:`benchmarks.realdata.ensure_ct_jpeg_series`), so that every tool reads
the same files: dcm2niix converts whatever a folder holds.

Issue 8 targets, lazydicom ``ndarray(("InstanceNumber",)).compute()`` with
default arguments:

- >= 4x faster than the pydicom loop (``dcmread`` + ``pixel_array`` with
  pydicom's default plugins, + rescale to float32, sorted by InstanceNumber);
- >= 2x faster than dcm2niix converting the folder to NIfTI
  (``dcm2niix -z n -o OUT FOLDER``, a subprocess). Measured twice: lazydicom in a
  fresh process timed the same way, end to end (``python -c`` that imports
  lazydicom, opens the folder with no index and computes the series), and
  lazydicom in this process (index built, imports done) against the same
  dcm2niix runs.

The pydicom loop's result is the reference. lazydicom decodes JPEG Lossless
with imagecodecs (``lazydicom.decoders``); the ``decoder`` row names what each
side used.
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
from .realdata import ct_jpeg_source, ensure_ct_jpeg_series, missing_reason

__all__ = ["run_jpeg", "decoder_plugins", "JPEG_TARGETS"]

DIMS = ("InstanceNumber",)

JPEG_TARGETS = [
    Target("JPEG Lossless CT: ndarray().compute() >= 4x the pydicom loop, pydicom's default "
           "plugins (#8)", "pydicom", "pydicom", "lazydicom.compute", 4.0),
    Target("JPEG Lossless CT: >= 2x dcm2niix, both timed as fresh processes, end to end (#8)",
           "lazydicom.process", "dcm2niix", "lazydicom.process", 2.0),
    Target("JPEG Lossless CT: >= 2x dcm2niix, lazydicom ndarray().compute() in-process "
           "against the dcm2niix process (#8)", "dcm2niix", "dcm2niix", "lazydicom.compute",
           2.0),
]


def decoder_plugins(transfer_syntax: str) -> str:
    """Describe pydicom's decoder plugins for ``transfer_syntax`` and lazydicom's choice."""
    from pydicom.pixels import get_decoder

    decoder = get_decoder(transfer_syntax)
    available = ", ".join(decoder.available_plugins) or "none"
    missing = ", ".join(sorted(set(decoder._unavailable))) or "none"  # noqa: SLF001
    try:
        import_lazydicom()
        from lazydicom.decoders import decoder_for

        lazy = decoder_for(transfer_syntax)
    except Exception as exc:  # noqa: BLE001 - a description, not a measurement
        lazy = f"unknown ({type(exc).__name__})"
    return (
        f"{decoder.UID.name}: pydicom plugins available: {available} (pixel_array takes the "
        f"first that works); not installed: {missing}; lazydicom decodes with: {lazy}"
    )


def run_jpeg(scratch: Path, repeat: int = 3, verbose: bool = False) -> list[Row]:
    """Time every tool on the largest JPEG Lossless CT series (see the module docstring).

    Returns
    -------
    list of Row
        One skipped row if the shared folder is missing.
    """
    reason = missing_reason(ct_jpeg_source())
    if reason:
        return [Row("JPEG Lossless CT", note=reason)]
    stack = ensure_ct_jpeg_series(scratch)
    folder = stack.folder
    shutil.rmtree(folder / ".lazydicom", ignore_errors=True)
    warm_page_cache(stack.files)
    reference = peers.pydicom_read(folder, DIMS)
    check = array_check(reference)
    any_order = array_check(reference, any_order=True)
    out = Path(tempfile.mkdtemp(prefix="lazydicom-bench-dcm2niix-"))
    tools = [
        Tool("bytes", "read the files' bytes: open + read, every file",
             lambda: peers.read_bytes(stack.files)),
        Tool("pydicom", "pydicom loop: dcmread + pixel_array (+ rescale), sort by InstanceNumber",
             lambda: peers.pydicom_read(folder, DIMS), check),
        Tool("sitk", "SimpleITK ImageSeriesReader (sorted by position)",
             lambda: peers.sitk_read_stack(folder), any_order, alone=True),
        Tool("highdicom", "highdicom: imread(path).get_frame(1, dtype=float32) per file",
             lambda: peers.highdicom_read(folder, DIMS, np.float32), check, alone=True),
    ]
    what = "highdicom: get_volume_from_series([dcmread(path)...])"
    try:  # it builds one regularly spaced volume: this series has two orientations
        peers.highdicom_volume(folder, np.float32)
        tools.append(Tool("highdicom.volume", what,
                          lambda: peers.highdicom_volume(folder, np.float32), any_order,
                          slow=True))
    except ValueError as exc:
        tools.append(Tool("highdicom.volume", what, note=f"skipped: it refuses this series "
                          f"({exc})"))
    what = "dbdicom 0.3: db.pixel_data(series) (sorted by SliceLocation)"
    try:
        dbd = peers.dbdicom_open(folder)
        tools.append(Tool("dbdicom", what, lambda: peers.dbdicom_read(dbd, ("SliceLocation",)),
                          any_order, slow=True))
    except Exception as exc:  # noqa: BLE001 - a failed peer is a row
        tools.append(Tool("dbdicom", what, note=error_row(what, exc, verbose=verbose).note))
    tools.append(dcm2niix_tool(folder, out, reference))
    try:
        (series,) = import_lazydicom().open(folder, progress=False).series()
        lazy = lazydicom_tools(series, folder, {}, DIMS, reference, mean=False)
        lazy.insert(
            2,
            Tool(
                "lazydicom.processes",
                "lazydicom numpy(dims, scheduler='processes'), 2 workers",
                lambda: series.numpy(dims=DIMS, scheduler="processes", num_workers=2,
                                     frames_per_task=8),
                check,
            ),
        )
        tools += lazy
    except Exception as exc:  # noqa: BLE001
        tools.append(Tool("lazydicom.compute", "lazydicom ndarray(dims).compute()",
                          note=error_row("lazydicom", exc, verbose=verbose).note))
    try:
        rows = run_tools(tools, repeat, stack.nframes, verbose)
    finally:
        shutil.rmtree(out, ignore_errors=True)
        peers.dbdicom_clean(folder)
        shutil.rmtree(folder / ".lazydicom", ignore_errors=True)
    compare = dict.fromkeys(("sitk", "highdicom", "dbdicom"), "lazydicom.compute")
    compare.update({"lazydicom.compute": "lazydicom.numpy"})
    apply_targets(rows, JPEG_TARGETS, compare=compare)
    rows.append(Row("decoder", note=f"{decoder_plugins(stack.transfer_syntax)}; "
                    f"{stack.description}, {stack.nframes} frames"))
    return rows
