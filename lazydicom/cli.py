"""The ``lazydicom`` command line.

``lazydicom index FOLDER`` builds or refreshes the index of a folder and
prints its patients, studies and series, with the attributes that vary within
each series (candidates for ``dims``) and the files that were skipped.
``lazydicom array`` shows the array of each series, ``lazydicom extract``
writes them to zarr (or NIfTI).

One wording throughout: studies and series are labelled by description,
date, time and the end of their UID (descriptions repeat, UIDs do not);
frame sizes are ``rows x columns``, as DICOM says; array shapes are
``(x, y, *dims)``, x running along a row; counts agree with their noun.

Errors are one line on stderr (``lazydicom: error: ...``) and a non-zero exit
status, never a traceback (``--debug`` shows it): 2 for arguments refused
before anything is read (unknown dims, with suggestions; ``--where`` values
that do not fit their attribute), 1 for everything else.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .errors import LazyDicomError, SkippedFilesWarning
from .version import __version__

if TYPE_CHECKING:
    import pandas as pd

# `lazydicom --help` imports nothing heavy: pandas, pydicom (through .tags
# and .schema), zarr and dask are imported by the command that needs them.

__all__ = ["main"]

# Attributes worth suggesting as dims when they vary within a series.
_DIM_HINTS = (
    "SliceLocation", "SlicePosition", "InStackPositionNumber", "FlipAngle", "RepetitionTime",
    "EchoTime", "EffectiveEchoTime", "InversionTime", "DiffusionBValue", "TriggerTime",
    "TemporalPositionIdentifier", "TemporalPositionIndex", "AcquisitionTime", "EchoNumbers",
    "ComplexImageComponent", "ImageType", "StackID", "AcquisitionNumber", "InstanceNumber",
    "FrameNumber", "ImageOrientationPatient",
)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def varying(table: pd.DataFrame) -> list[str]:
    """Attributes from ``_DIM_HINTS`` that take more than one value in ``table``."""
    from .grid import axis_key

    out = []
    for col in _DIM_HINTS:
        if col in table.columns:
            n = len({axis_key(v) for v in table[col].tolist()})
            if n > 1:
                out.append(f"{col}({n})")
    return out


def _text(value) -> str:
    """A table value for display: '-' when absent."""
    from .grid import axis_key

    value = axis_key(value)
    return "-" if value is None or value == "" else str(value)


def _count(n: int, word: str, plural: str | None = None) -> str:
    """``1 frame``, ``2 frames``; ``plural`` for irregular words (``series``)."""
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _date(value) -> str:
    """A DICOM date (DA, ``YYYYMMDD``) as ``YYYY-MM-DD``; other text as it is."""
    text = _text(value)
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return "" if text == "-" else text


def _time(value) -> str:
    """A DICOM time (TM, ``HHMMSS.FFFFFF``) as ``HH:MM:SS`` (or ``HH:MM``, ``HH``)."""
    text = _text(value)
    if text == "-":
        return ""
    digits = text.split(".")[0].replace(":", "")
    if digits.isdigit() and len(digits) in (2, 4, 6):
        return ":".join(digits[i:i + 2] for i in range(0, len(digits), 2))
    return text


def _when(row, prefix: str) -> str:
    """``StudyDate StudyTime`` (or ``Series...``) of a table row, formatted; '' if absent."""
    return " ".join(t for t in (_date(row[f"{prefix}Date"]), _time(row[f"{prefix}Time"])) if t)


def _uid_suffixes(uids, least: int = 5) -> dict[str, str]:
    """The shortest common length of UID suffix (``least`` or more) telling ``uids`` apart.

    Descriptions, numbers and dates repeat (the same protocol in two
    sessions, anonymised dates), UIDs do not; their beginnings are shared
    roots, so the end is what differs. One length for all, so that the
    suffixes line up and none is the end of another.

    Examples
    --------
    >>> _uid_suffixes(["1.2.840.99.1.2593.0", "1.2.840.99.1.2634.0"])
    {'1.2.840.99.1.2593.0': '...593.0', '1.2.840.99.1.2634.0': '...634.0'}
    """
    uids = sorted({_text(u) for u in uids})
    for n in range(least, max(map(len, uids), default=0) + 1):
        if len({u[-n:] for u in uids}) == len(uids):
            break
    else:
        n = max(map(len, uids), default=0)
    return {u: (u if len(u) <= n else "..." + u[-n:]) for u in uids}


def _frame_size(table: pd.DataFrame) -> str:
    """``512 rows x 512 columns`` (the DICOM Rows and Columns; ``x`` runs along a row)."""
    sizes = table[["Rows", "Columns"]].drop_duplicates()
    text = [f"{int(r)} rows x {int(c)} columns" for r, c in sizes.itertuples(index=False)]
    return text[0] if len(text) == 1 else "frames of several sizes: " + ", ".join(text)


def _described(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _quoted(value) -> str:
    """A description in quotes, or '' when there is none."""
    text = _text(value)
    return "" if text == "-" else repr(text)


def _study_label(first, suffix: dict[str, str]) -> str:
    """``Study 'BRAIN^RESEARCH' 1904-03-21, uid ...71264``: what tells studies apart."""
    return (_described("Study", _quoted(first["StudyDescription"]), _when(first, "Study"))
            + f", uid {suffix[_text(first['StudyInstanceUID'])]}")


def _series_label(first, suffix: dict[str, str]) -> str:
    """``Series 6 'ax 5 flip' MR 2004-03-21 10:21:07, uid ...57403``."""
    return (_described("Series", _text(first["SeriesNumber"]),
                       _quoted(first["SeriesDescription"]), _text(first["Modality"]),
                       _when(first, "Series"))
            + f", uid {suffix[_text(first['SeriesInstanceUID'])]}")


def _print_tree(db, out) -> None:
    table = db.table()
    if not len(table):
        print("No image frames found.", file=out)
    sizes = table.drop_duplicates("path")
    studies = _uid_suffixes(table["StudyInstanceUID"])
    series_uids = _uid_suffixes(table["SeriesInstanceUID"])
    for pid, patient in table.groupby("PatientID", dropna=False, sort=True):
        print(f"Patient {_text(pid)} ({_text(patient['PatientName'].iloc[0])})", file=out)
        for _, study in patient.groupby("StudyInstanceUID", dropna=False, sort=False):
            print(f"  {_study_label(study.iloc[0], studies)}", file=out)
            for uid, series in study.groupby("SeriesInstanceUID", dropna=False, sort=False):
                nbytes = sizes[sizes["SeriesInstanceUID"] == uid]["size"].sum()
                hint = ", ".join(varying(series)) or "-"
                print(
                    f"    {_series_label(series.iloc[0], series_uids)}: "
                    f"{_count(len(series), 'frame')} in "
                    f"{_count(series['path'].nunique(), 'file')} ({_size(nbytes)}), "
                    f"{_frame_size(series)}; varies: {hint}",
                    file=out,
                )
    objects = db.objects()
    if len(objects):
        print(f"\n{_count(len(objects), 'object')} without pixel data (not frames):", file=out)
        for _, row in objects.iterrows():
            print(f"  {row['path']!r}: {_text(row['Modality'])} {_text(row['SOPClassUID'])}",
                  file=out)
    skipped = db.skipped()
    if len(skipped):
        print(f"\n{_count(len(skipped), 'file')} skipped:", file=out)
        for _, row in skipped.iterrows():
            print(f"  {row['path']!r}: {row['reason']}", file=out)


def _cmd_index(args: argparse.Namespace) -> int:
    headers = _headers(args.header)
    if headers and not _is_dicomweb(args.folder):
        raise _UsageError("--header applies to DICOMweb sources (dicomweb+https://...)")
    _read_ahead([args.folder], args.index)
    from .records import open_database

    _started()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedFilesWarning)  # listed in the report instead
        db = open_database(args.folder, index_path=args.index, progress=not args.quiet and None,
                           headers=_web_headers(args.folder, headers),
                           storage_options=_storage_options(args))
    _print_tree(db, sys.stdout)
    return 0


def _add_header(p: argparse.ArgumentParser) -> None:
    p.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                   help="DICOMweb only: an HTTP header sent with every request, e.g. "
                   "--header \"Authorization: Bearer $TOKEN\" (repeatable)")


def _headers(given: Sequence[str]) -> dict[str, str]:
    headers = {}
    for text in given:
        name, sep, value = text.partition(":")
        if not sep or not name.strip():
            raise _UsageError(f"--header expects 'NAME: VALUE', not {text!r}")
        headers[name.strip()] = value.strip()
    return headers


def _is_dicomweb(source: str) -> bool:
    return source.startswith(("dicomweb+http://", "dicomweb+https://"))


def _web_headers(source: str, headers: dict[str, str]) -> dict[str, str] | None:
    """``headers=`` for a DICOMweb source (None for a folder, which takes none)."""
    return headers or None if _is_dicomweb(source) else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lazydicom",
        description="Index folders of DICOM files and extract N-D arrays sorted on DICOM tags.",
    )
    parser.add_argument("--version", action="version", version=f"lazydicom {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser(
        "index",
        help="build or refresh the index of a folder and print its series",
        description="Build or refresh the index of FOLDER (only new or changed files are "
        "read) and print patients, studies and series with frame counts, sizes and the "
        "attributes that vary within each series (hints for dims). Skipped files are listed.",
    )
    p.add_argument("folder", help="folder of DICOM files (walked recursively), or a DICOMweb "
                   "service root: dicomweb+https://host/dicom-web")
    p.add_argument("--index", metavar="DIR", default=None,
                   help="keep the index in DIR instead of FOLDER/.lazydicom")
    _add_header(p)
    _add_storage_option(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_index)
    _add_array(sub)
    _add_extract(sub)
    return parser


def default_dims(table: pd.DataFrame) -> tuple[str, ...]:
    """The dims ``lazydicom array`` uses for a series when ``--dims`` is not given.

    ``InstanceNumber`` when it tells the frames apart (one frame per file,
    numbered as usual); else ``FrameNumber`` (one multi-frame file, whose
    frames share the file's InstanceNumber); else both (several multi-frame
    files). When nothing tells the frames apart, ``InstanceNumber``, and the
    grid's error names the attributes that differ.
    """
    from .grid import axis_key

    def distinct(*columns: str) -> bool:
        if not set(columns) <= set(table.columns):
            return False
        keys = zip(*(map(axis_key, table[c].tolist()) for c in columns))
        return len(set(keys)) == len(table)

    for dims in (("InstanceNumber",), ("FrameNumber",), ("InstanceNumber", "FrameNumber")):
        if distinct(*dims):
            return dims
    return ("InstanceNumber",)


def _cmd_array(args: argparse.Namespace) -> int:
    dims = None if args.dims is None else tuple(_dims(args.dims))
    where = _where(args.where)
    headers = _headers(args.header)
    if headers and not _is_dicomweb(args.folder):
        raise _UsageError("--header applies to DICOMweb sources (dicomweb+https://...)")
    _read_ahead([args.folder], args.index)
    from .records import open_database

    _started()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedFilesWarning)  # `lazydicom index` lists them
        db = open_database(args.folder, index_path=args.index, progress=not args.quiet and None,
                           headers=_web_headers(args.folder, headers),
                           storage_options=_storage_options(args))
    found = db.series(where or None)
    if not found:
        print("No series matched.", file=sys.stderr)
        return 1
    table = db.table()
    studies = _uid_suffixes(table["StudyInstanceUID"])
    series_uids = _uid_suffixes(table["SeriesInstanceUID"])
    failed = []
    for series in found:
        rows = series.table()
        first = rows.iloc[0]
        label = _series_label(first, series_uids)
        print(label)
        print(f"  in {_study_label(first, studies)} of patient {_text(first['PatientID'])}")
        try:
            _print_array(series, dims or default_dims(rows), compute=args.compute)
        except Exception as exc:  # noqa: BLE001 - reported, and the next series shown
            if args.debug:
                raise
            print(f"  failed: {_one_line(exc)}")
            failed.append(label)
        sys.stdout.flush()  # before any error on stderr, in order on a terminal
    if failed:
        print(f"lazydicom: error: {len(failed)} of {_count(len(found), 'series', 'series')} "
              f"failed: {'; '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _print_array(series, dims: tuple[str, ...], *, compute: bool) -> None:
    """The lines of ``lazydicom array`` for one series (after its label)."""
    import numpy as np

    arr = series.ndarray(dims)
    axes = ("x", "y", *dims) + (("rgb",) if arr.ndim > len(dims) + 2 else ())
    print(f"  ndarray(dims={dims}): shape {arr.shape} on ({', '.join(axes)}), "
          f"dtype {arr.dtype}, {_count(arr.npartitions, 'chunk')} (nothing read yet)")
    print(f"  x: {_count(arr.shape[0], 'column')}, y: {_count(arr.shape[1], 'row')}")
    for dim, values in series.coords(dims).items():
        shown = list(values)
        text = ", ".join(map(str, shown[:8])) + (", ..." if len(shown) > 8 else "")
        print(f"  {dim}: [{text}]" + (f" ({len(shown)} values)" if len(shown) > 8 else ""))
    if compute:
        pixels = series.numpy(dims)
        print(f"  computed: min {np.min(pixels)}, max {np.max(pixels)}, "
              f"mean {np.mean(pixels, dtype=np.float64):.4g}")


def _add_array(sub) -> None:
    p = sub.add_parser(
        "array",
        help="show the N-D array of each matching series for some dims",
        description="Index FOLDER (or refresh its index) and, for each series matching "
        "--where, build series.ndarray(DIMS) and print its shape, dtype and coordinates. "
        "Nothing is read unless --compute is given. A series that fails (two frames in "
        "one cell of DIMS, say) is reported and the next one shown; the exit status is "
        "then 1.",
    )
    p.add_argument("folder", help="folder of DICOM files (walked recursively)")
    p.add_argument("--dims", default=None, metavar="D1,D2,...",
                   help="comma-separated dims: keywords or tags such as (0018,1314) "
                   "(default, per series: InstanceNumber, or FrameNumber when frames "
                   "share an InstanceNumber, as in multi-frame files)")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="keep series with frames where KEY equals VALUE (A|B for either); "
                   "repeat for several conditions")
    p.add_argument("--compute", action="store_true",
                   help="also read the pixels and print min, max and mean")
    p.add_argument("--index", metavar="DIR", default=None,
                   help="keep the index in DIR instead of FOLDER/.lazydicom")
    _add_header(p)
    _add_storage_option(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_array)


class _UsageError(Exception):
    """Arguments refused before anything is read (exit status 2)."""


def _split_dims(text: str) -> list[str]:
    """Split ``--dims`` at the commas outside parentheses: ``(0018,1314)`` is one dim.

    Examples
    --------
    >>> _split_dims("SliceLocation, (0018,1314),0x00180080")
    ['SliceLocation', '(0018,1314)', '0x00180080']
    """
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0 or depth > 1:
            break
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise _UsageError(f"--dims {text!r}: unbalanced parentheses; write tags as "
                          "(gggg,eeee), e.g. --dims 'SliceLocation,(0018,1314)'")
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _dims(text: str) -> list[str]:
    """The comma-separated dims, each checked (a typo is reported once, with suggestions)."""
    from .tags import resolve

    dims = _split_dims(text)
    for dim in dims:
        try:
            resolve(dim)
        except KeyError as exc:
            raise _UsageError(f"--dims: {exc}") from None
    return dims


def _where(items: Sequence[str]) -> dict:
    """``KEY=VALUE`` filters, values read by the attribute's VR; ``A|B`` matches either.

    Text attributes keep the text as it is (``PatientID=0123`` is ``'0123'``,
    not 123), number attributes parse it, private tags match either.
    """
    if not items:
        return {}  # pandas (with schema) loads after the header read-ahead has started
    from .schema import parse_text
    from .tags import resolve

    where: dict = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise _UsageError(f"--where expects KEY=VALUE, got {item!r}")
        try:
            column = resolve(key).column
            values = [v for part in text.split("|") for v in parse_text(column, part)]
        except (KeyError, ValueError) as exc:
            raise _UsageError(f"--where {item!r}: {str(exc).strip(chr(34))}") from None
        where[key] = values if len(values) > 1 else values[0]
    return where


def _check_output(out: str) -> None:
    """A local output path must be a folder (or not exist yet)."""
    if "://" in out:
        return
    if os.path.exists(out) and not os.path.isdir(out):
        raise _UsageError(f"{out!r} is a file; OUT must be a folder for the zarr group (or "
                          "a path that does not exist yet)")


def _check_scheduler(address: str | None, timeout: float = 5.0) -> None:
    """Fail fast, in one line, when a scheduler address cannot be reached."""
    if address is None or address in ("threads", "processes", "sync", "synchronous",
                                      "single-threaded"):
        return
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls"):
        return  # other transports (inproc, ucx): left to dask.distributed
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise _UsageError(f"--scheduler {address!r} is not an address such as "
                          "tcp://host:8786")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise OSError(f"cannot reach the dask scheduler at {address!r} "
                      f"({exc.strerror or exc}); is it running?") from None


def _fill(text: str | None) -> float | int | None:
    """``--fill-value``: None (the default rule), nan, or a number."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)  # "nan", "1.5", "-inf"
    except ValueError:
        raise _UsageError(f"--fill-value expects a number or nan, not {text!r}") from None


def _cmd_extract(args: argparse.Namespace) -> int:
    if len(args.paths) < 2:
        raise _UsageError("extract needs at least one FOLDER and the OUT store")
    *sources, out = args.paths
    dims = _dims(args.dims)
    if not dims:
        raise _UsageError("--dims needs at least one attribute, e.g. --dims "
                          "SliceLocation,FlipAngle")
    where = _where(args.where)
    _check_output(out)
    _check_scheduler(args.scheduler)
    progress = False if args.quiet else None
    options = _storage_options(args)
    if args.index and len(sources) > 1:
        raise _UsageError("--index takes one FOLDER")
    headers = _headers(args.header)
    if headers and not any(_is_dicomweb(s) for s in sources):
        raise _UsageError("--header applies to DICOMweb sources (dicomweb+https://...)")
    _read_ahead(sources, args.index)
    import zarr  # noqa: F401 - imported by extract(); loaded before _started()

    from .extract import extract

    _started()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedFilesWarning)  # `lazydicom index` lists them
        if args.index or any(_is_dicomweb(s) for s in sources):
            from .records import open_database

            sources = [open_database(s, index_path=args.index, progress=progress,
                                     cache=args.cache, headers=_web_headers(s, headers),
                                     storage_options=None if _is_dicomweb(s) else options)
                       if args.index or _is_dicomweb(s) else s for s in sources]
        report = extract(sources, out, dims, where=where or None, scheduler=args.scheduler,
                         storage_options=options,
                         progress=progress, cache=args.cache, compressor=args.compressor,
                         shard_bytes=args.shard_size, fill_value=_fill(args.fill_value),
                         format=args.format, pack=not args.no_pack)
    failed = [r for r in report if r["status"] == "failed"]
    counts = {s: sum(r["status"] == s for r in report) for s in ("written", "skipped", "failed")}
    frames = sum(r["frames"] for r in report if r["status"] == "written")
    if not report:
        print("No series matched.", file=sys.stderr)
    for r in failed:
        print(f"failed {r['name']}: {r['error']}", file=sys.stderr)
    print(f"{out}: {counts['written']} series written ({_count(frames, 'frame')}), "
          f"{counts['skipped']} already complete (skipped), {counts['failed']} failed")
    return 1 if failed else 0


def _add_extract(sub) -> None:
    p = sub.add_parser(
        "extract",
        help="write every matching series of one or more folders to one zarr store "
        "(resumable)",
        description="Write each series of the FOLDERs (optionally filtered with --where) "
        "into the zarr store OUT, one group per series named "
        "SeriesNumber_description_uidhash: the variable 'pixels' with dims "
        "(*reversed(DIMS), y, x), sharded, the grid coordinates and the series "
        "attributes. Rerunning skips the series already complete; an interrupted run "
        "resumes. Open the result with xarray.open_datatree(OUT, engine='zarr').",
    )
    p.add_argument("paths", nargs="+", metavar="FOLDER... OUT",
                   help="folders of DICOM files (walked recursively; glob patterns such as "
                   "'scans/*' allowed) or DICOMweb service roots (dicomweb+https://host/"
                   "dicom-web), then the zarr store to write, e.g. study.zarr")
    p.add_argument("--dims", required=True, metavar="D1,D2,...",
                   help="comma-separated dims: keywords or tags, e.g. "
                   "SliceLocation,FlipAngle or 'SliceLocation,(0018,1314)' (quoted for the shell)")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="keep series with frames where KEY equals VALUE (A|B for either); "
                   "repeat for several conditions")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="dask.distributed scheduler address (tcp://host:8786), or threads / "
                   "processes; default: one process per core for many series, else threads")
    p.add_argument("--cache", metavar="DIR", nargs="?", const=True, default=None,
                   help="keep decoded frames in a zarr cache (default location beside the "
                   "index, or DIR)")
    p.add_argument("--format", choices=("zarr", "nifti"), default="zarr",
                   help="zarr (default): one store; nifti: OUT/<series>.nii per series "
                   "(needs a spatial dim such as SlicePosition)")
    p.add_argument("--no-pack", action="store_true",
                   help="store rescaled values as floats, not the stored integers with "
                   "scale_factor/add_offset (used where exact, e.g. CT)")
    p.add_argument("--fill-value", default=None, metavar="VALUE",
                   help="value of cells without a frame: a number or nan (default: nan for "
                   "float output, 0 for integers)")
    p.add_argument("--shard-size", default="16MiB", metavar="BYTES",
                   help="bytes of frames per zarr shard and per task (default 16MiB)")
    p.add_argument("--compressor", choices=("lz4", "zstd", "none"), default="lz4",
                   help="codec of the pixel chunks (default blosc-lz4)")
    p.add_argument("--index", metavar="DIR", default=None,
                   help="keep the index in DIR instead of FOLDER/.lazydicom (one FOLDER)")
    _add_header(p)
    _add_storage_option(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_extract)


def _add_storage_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage-option", action="append", default=[], metavar="KEY=VALUE",
                   dest="storage_options",
                   help="for a FOLDER that is a URL (s3://bucket/prefix): an option of its "
                   "fsspec filesystem, e.g. anon=true or "
                   "client_kwargs.endpoint_url=http://localhost:9000 (dots nest); repeat for "
                   "several. Without them s3fs reads the AWS_* environment variables")


def _storage_options(args: argparse.Namespace) -> dict | None:
    """``--storage-option KEY=VALUE`` items as a dict: values as JSON when they parse
    (true, 3, {...}), else text; dots in KEY nest (client_kwargs.endpoint_url)."""
    items = getattr(args, "storage_options", None) or []
    if not items:
        return None
    options: dict = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise _UsageError(f"--storage-option expects KEY=VALUE, not {item!r}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        *parents, last = key.strip().split(".")
        target = options
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise _UsageError(f"--storage-option {item!r}: {part!r} is not a group")
        target[last] = value
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    An error prints one line on stderr and returns 1 (2 for arguments refused
    before anything is read); ``--debug`` raises it with its traceback instead.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if _QUICK_START:
        _import_pydicom()
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # e.g. `lazydicom index FOLDER | head`: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0
    except _UsageError as exc:
        print(f"lazydicom: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lazydicom: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback (--debug for it)
        if args.debug:
            raise
        print(f"lazydicom: error: {_one_line(exc)}", file=sys.stderr)
        return 1


_QUICK_START = False  # set by run(): the garbage collector waits for _started()


def _read_ahead(sources: Sequence[str], index_path: str | None) -> None:
    """Start reading the headers of the folders that have no index yet, in a worker
    process, while this one imports the command's libraries (``lazydicom.readahead``).

    Called once the arguments are checked: a refused command reads nothing.
    """
    from .errors import InvalidArgumentError
    from .scan import expand_sources
    from .workers import processes_allowed

    if index_path or (os.cpu_count() or 1) < 2 or not processes_allowed():
        return  # an index elsewhere is refreshed from it; one core has nothing to spare
    try:
        folders = expand_sources(s for s in sources if not _is_dicomweb(s))
    except InvalidArgumentError:
        return  # reported by the command itself
    from .readahead import start, wanted

    start([f for f in folders if wanted(f)])


def _import_pydicom() -> None:
    """Import pydicom without ``requests``, which it loads only to download its own
    test files (``pydicom.data``), falling back to ``urllib`` when it is missing.

    ``requests`` with urllib3, charset_normalizer and idna was 50 ms of the
    0.3 s ``import pydicom`` (median of 6 runs each, ``python -X importtime``
    on the 2-core VM of docs/benchmarks.md), in every command: all three read
    DICOM. Only for the command-line process (``run``), where nothing
    downloads pydicom's test data; ``requests`` stays importable afterwards
    (dicomweb-client uses it for DICOMweb sources). Where pydicom cannot be
    imported so, it is imported as usual.
    """
    if "pydicom" in sys.modules or "requests" in sys.modules:
        return
    sys.modules["requests"] = None  # type: ignore[assignment]  # "import requests" fails
    try:
        import pydicom  # noqa: F401
    except ImportError:
        pass  # imported again below with requests, and any real error raised there
    finally:
        if "requests" in sys.modules and sys.modules["requests"] is None:
            del sys.modules["requests"]
    import pydicom  # noqa: F401,F811


def _started() -> None:
    """A command's libraries are imported: freeze them, and collect from now on.

    [`run`][lazydicom.cli.run] turns the cyclic garbage collector off while
    the command's libraries load (pandas, pydicom, pyarrow, zarr: about a
    quarter of a million objects, none of them garbage); its collections
    during those imports were 0.12 s of CPU, and every later full
    collection would walk those objects again. Here they are moved to the
    permanent generation (``gc.freeze``, as Python's documentation advises
    before forking worker processes) and collection resumes for the
    command's own work. ``lazydicom extract`` of the 1,200-file CT folder of
    docs/benchmarks.md: 0.2 s faster (median of 10 interleaved runs).
    Called outside ``run`` (tests calling ``main``), it does nothing.
    """
    import gc

    if _QUICK_START and not gc.isenabled():
        gc.freeze()
        gc.enable()


def run() -> None:
    """The ``lazydicom`` command: [`main`][lazydicom.cli.main], then a quick exit.

    Once the command is done, its pools joined and every ``atexit`` handler
    run (finalizers, logging, executor threads), the process ends with
    ``os._exit`` instead of tearing down the interpreter: freeing every
    module and object one by one took 0.2-0.45 s of a 3 s ``lazydicom
    extract`` on the 2-core VM of docs/benchmarks.md, with nothing left to
    write. mypy ends its command the same way (``mypy.util.hard_exit``). If a
    library left a non-daemon thread running, the normal exit waits for it.
    The cyclic garbage collector is off while the command's libraries are
    imported (see ``_started``).
    """
    import atexit
    import gc
    import threading

    global _QUICK_START
    _QUICK_START = True
    gc.disable()  # until the command's imports are done: see _started
    try:
        code = main()
    finally:
        gc.enable()
    others = [t for t in threading.enumerate()
              if t is not threading.main_thread() and t.is_alive() and not t.daemon]
    if others:
        sys.exit(code)
    atexit._run_exitfuncs()  # the handlers a normal exit runs (they may print or flush)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more to say
            pass
    os._exit(code)


def _one_line(exc: BaseException) -> str:
    """The error as one line; its type too when it is not lazydicom's own."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, LazyDicomError | OSError):
        return text
    return f"{type(exc).__name__}: {text}"


if __name__ == "__main__":  # pragma: no cover
    run()
