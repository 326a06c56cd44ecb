"""Run the lazydicom benchmarks: ``python -m benchmarks [--quick] [--only NAME] [--data DIR]``.

Prints one markdown table per group, with the machine description, and writes
the results as JSON (``benchmarks/results/latest.json``, or ``quick.json`` for
``--quick``). See ``benchmarks/README.md`` for what each row means.
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # peers' progress bars; set before tqdm is imported

import argparse  # noqa: E402
import datetime as _dt  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

from .common import REPO, Row, compile_package, machine_info, markdown_table  # noqa: E402

try:  # no tqdm monitor thread: peers' progress bars would start one and leave it running
    import tqdm  # noqa: E402

    tqdm.tqdm.monitor_interval = 0
except ImportError:  # pragma: no cover - tqdm comes with lazydicom and dbdicom
    pass
from .data import big_spec, ensure_dataset, grid_spec  # noqa: E402

GROUPS = (
    "index", "read", "select", "ct", "jpeg", "layout", "decoders", "memory", "write", "cache",
    "extract", "scale", "cluster", "remote",
)

TITLES = {
    "index": "Index: scan the headers of the grid folder",
    "read": "Full read of the grid series into (x, y, SliceLocation, FlipAngle, RepetitionTime)",
    "select": "Selection: one FlipAngle of k",
    "ct": "Full read of an uncompressed CT series with rescale (real pixels)",
    "jpeg": "JPEG Lossless CT (real data, largest series)",
    "layout": "Layout: assembling (x, y, *dims), and chunk sizes of ndarray()",
    "decoders": "Decoding JPEG Lossless CT frames: imagecodecs, pylibjpeg, GDCM",
    "memory": "Memory: mean of a large series, peak RSS of a fresh process",
    "write": "Writing a float volume as a new DICOM series",
    "cache": "Zarr cache and batch extraction to zarr",
    "extract": "Batch extraction end to end, fresh processes: lazydicom extract vs dcm2niix",
    "scale": "Scale: 10k-1M frames, index, reopen, build, one cell, memory",
    "cluster": "Header scan on a LocalCluster: 1 vs 2 worker processes (10k files)",
    "remote": "Object store: the grid series in S3 (moto on loopback), requests and bytes",
}

RESULTS = Path(__file__).resolve().parent / "results"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time lazydicom against pydicom, dbdicom, SimpleITK, imagedata and "
        "the raw-read limit, side by side in one run.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small data (160 grid frames, 210 MB memory series) and fewer "
        "repeats: a smoke run of a few minutes",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only these groups (repeat or comma-separate): {', '.join(GROUPS)}",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(tempfile.gettempdir()) / "lazydicom-bench",
        help="scratch directory for generated data, kept between runs (default: %(default)s)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="timed runs per row, median reported (default 3, 2 with --quick)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="results JSON (default benchmarks/results/latest.json, quick.json with --quick)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="print tracebacks of failed measurements"
    )
    parser.add_argument(
        "--plot",
        nargs="?",
        const=True,
        default=None,
        metavar="PNG",
        help="also draw the per-frame time of every tool per data set (matplotlib) to PNG "
        "(default docs/benchmarks-read.png; benchmarks/results/quick-read.png with --quick)",
    )
    parser.add_argument(
        "--docs",
        action="store_true",
        help="also rewrite the generated blocks of docs/benchmarks.md (targets, results) "
        "and README.md (Performance) from this run (not with --quick)",
    )
    parser.add_argument(
        "--from-results",
        type=Path,
        nargs="+",
        default=None,
        metavar="JSON",
        help="run nothing: print the report of saved runs (and --plot/--docs from it); "
        "with several files, a group of a later file replaces the same group of an "
        "earlier one (e.g. a separate scale run with 1M frames)",
    )
    parser.add_argument(
        "--scale-frames",
        default=None,
        metavar="N,N,...",
        help="sizes of the scale group (default 10000,50000,100000,1000000; 10000 with "
        "--quick). The 1M folder takes about 2 GB and an hour to generate once",
    )
    args = parser.parse_args(argv)
    names = [
        n.strip() for item in (args.only or list(GROUPS)) for n in item.split(",") if n.strip()
    ]
    unknown = sorted(set(names) - set(GROUPS))
    if unknown:
        parser.error(f"unknown group(s) {unknown}; choose from {', '.join(GROUPS)}")
    args.groups = [g for g in GROUPS if g in names]
    if args.repeat is None:
        args.repeat = 2 if args.quick else 3
    if args.output is None:
        args.output = RESULTS / ("quick.json" if args.quick else "latest.json")
    if args.plot is True:
        args.plot = RESULTS / "quick-read.png" if args.quick else REPO / "docs" / \
            "benchmarks-read.png"
    if args.scale_frames is None:
        args.scale_frames = "10000" if args.quick else "10000,50000,100000,1000000"
    try:
        args.scale_frames = [int(v) for v in args.scale_frames.split(",") if v.strip()]
    except ValueError:
        parser.error(f"--scale-frames takes comma-separated integers, not {args.scale_frames!r}")
    if args.docs and args.quick:
        parser.error("--docs shows full runs: not with --quick")
    return args


def _log(message: str) -> None:
    print(f"[benchmarks {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _machine_markdown(info: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    return (
        f"- CPU: {info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB RAM, {info['os']}\n"
        f"- Python {info['python']}; lazydicom git {info['lazydicom_git']}\n"
        f"- {versions}"
    )


def _finish(payload: dict, args: argparse.Namespace) -> None:
    """--plot and --docs from a run's payload."""
    from . import report

    if args.plot:
        plot = Path(args.plot)
        drawings = [(report.plot_read, plot),
                    (report.plot_scale, plot.with_name(plot.name.replace("read", "scale"))),
                    (report.plot_extract, plot.with_name(plot.name.replace("read", "extract")))]
        for draw, path in drawings:
            if path == plot and draw is not report.plot_read:
                continue  # a name without "read": only the read plot goes there
            try:
                _log(f"wrote {draw(payload, path)}")
            except ImportError as exc:
                _log(f"no plot: {exc} (pip install matplotlib)")
                break
            except ValueError as exc:
                _log(f"no plot: {exc}")
    if args.docs:
        if payload.get("quick"):
            raise SystemExit("--docs shows full runs; these results are from --quick")
        for path in report.update_docs(payload):
            _log(f"updated {path}")


def main(argv: list[str] | None = None) -> int:
    """Run the selected groups, print the tables and write the JSON results."""
    args = _parse(argv)
    if args.from_results is not None:
        from .report import merge_payloads

        payload = merge_payloads([json.loads(p.read_text()) for p in args.from_results])
        print(payload["markdown"])
        _finish(payload, args)
        return 0
    scratch: Path = args.data
    scratch.mkdir(parents=True, exist_ok=True)
    compile_package()  # fresh processes start as an installed lazydicom does
    info = machine_info()
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    _log(
        f"groups {args.groups}, scratch {scratch}, repeat {args.repeat}"
        + (", quick" if args.quick else "")
    )

    grid = None
    if {"index", "read", "select", "layout", "remote"} & set(args.groups):
        grid = ensure_dataset(scratch, grid_spec(args.quick), log=_log)

    from . import (
        cache,
        compressed,
        ct,
        decoders,
        extract,
        index,
        layout,
        memory,
        read,
        remote,
        scale,
        write,
    )

    runners: dict[str, Callable[[], list[Row]]] = {
        "index": lambda: index.run_index(grid, args.repeat, args.verbose),
        "read": lambda: read.run_read(grid, args.repeat, args.verbose),
        "select": lambda: read.run_select(grid, args.repeat, args.verbose),
        "ct": lambda: ct.run_ct(scratch, args.quick, args.repeat, args.verbose),
        "jpeg": lambda: compressed.run_jpeg(scratch, args.repeat, args.verbose),
        "layout": lambda: layout.run_layout(grid, scratch, args.quick, args.repeat, args.verbose),
        "decoders": lambda: decoders.run_rows(max(args.repeat, 3), args.verbose),
        "memory": lambda: memory.run_memory(
            ensure_dataset(scratch, big_spec(args.quick), log=_log), args.verbose
        ),
        "write": lambda: write.run_rows(args.quick, scratch, args.repeat, args.verbose),
        "cache": lambda: cache.run_rows(args.quick, scratch, args.repeat, args.verbose),
        "extract": lambda: extract.run_extract(scratch, args.repeat, log=_log, quick=args.quick),
        "scale": lambda: scale.scale_rows(scratch, args.scale_frames, log=_log),
        "cluster": lambda: scale.cluster_rows(scratch, 10_000, args.repeat, log=_log),
        "remote": lambda: remote.run_remote(grid, args.repeat, args.verbose),
    }
    results: dict[str, dict] = {}
    head = [
        "# lazydicom benchmarks",
        "",
        f"{started}{' (--quick)' if args.quick else ''}; median of {args.repeat} runs "
        "unless noted; page cache warm.",
        "",
        _machine_markdown(info),
    ]
    if grid is not None:
        spec = grid.spec
        axes = " x ".join(f"{len(v)} {k}" for k, v in spec.coords.items())
        head += [
            "",
            f"Grid data: {spec.nframes} single-frame {spec.rows}x{spec.cols} uint16 MR files, "
            f"Explicit VR Little Endian, grid {axes}, "
            f"in {len(grid.subfolders())} folders, in {grid.folder}",
        ]
    body: list[str] = []
    for name in args.groups:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        _log(f"running {name} (load average {load}) ...")
        start = time.perf_counter()
        try:
            rows = runners[name]()
        except Exception as exc:  # noqa: BLE001 - one broken group must not hide the others
            if args.verbose:
                raise
            rows = [Row(name, ratio_text="n/a (error)", note=f"{type(exc).__name__}: {exc}")]
        elapsed = time.perf_counter() - start
        load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        _log(f"{name} done in {elapsed:.0f} s (load average {load_end})")
        results[name] = {
            "title": TITLES[name],
            "elapsed_s": elapsed,
            "load_average": load,
            "load_average_end": load_end,
            "rows": [r.to_dict() for r in rows],
        }
        table = markdown_table(rows)
        loads = f"load average {load:.2f} at start, {load_end:.2f} at end" if load else ""
        busy = ": other work was running" if load and max(load, load_end or 0) > 0.7 else ""
        body += ["", f"## {TITLES[name]}", "", f"{elapsed:.0f} s ({loads}{busy})", "", table]

    payload = {
        "created": started,
        "command": ["python", "-m", "benchmarks", *(argv if argv is not None else sys.argv[1:])],
        "quick": args.quick,
        "repeat": args.repeat,
        "groups_run": args.groups,
        "machine": info,
        "groups": results,
    }
    from .report import targets_table

    targets = ["", "## Targets", "", targets_table(payload)]
    payload["markdown"] = "\n".join(head + targets + body) + "\n"
    payload["markdown_results"] = "\n".join(head + body) + "\n"
    print(payload["markdown"])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str))
    tmp.replace(args.output)
    _log(f"wrote {args.output}")
    _finish(payload, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
