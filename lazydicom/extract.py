"""Batch extraction: every series of one or more folders into one zarr store, resumably.

Layout::

    out.zarr/                          root group, attrs: sources, dims, format
      003_ax_5_flip_1a2b3c4d/          one group per series (see lazydicom.io.zarr)
        pixels                         dims (*reversed(dims), y, x), sharded
        SliceLocation, ...             one coordinate array per dim
        attrs: the series' attributes, "lazydicom_extract" completion marker

``xarray.open_datatree(out, engine="zarr")`` opens the whole tree;
``xarray.open_zarr(out, group=name)`` one series.

How it runs. Every series is planned from the index (no pixel read), its
group created, and its shards (blocks of frames of about 16 MiB) become
tasks: a task reads its frames (each frame read once, decoded once, rescaled
into place) and the shard is compressed with the array's zarr codecs and
stored. Tasks of all series run together on a thread pool of one thread more
than the machine's cores (decoders, reads and compressors release the GIL;
a writer waits for its store write), each series' group made as a task
behind the first shard of the series before it; or on a dask.distributed
cluster. A series is
marked complete once all its shards are written; a rerun skips complete
series whose files, dims and options are unchanged, deciding from the index
alone (no DICOM file is opened for them); an interrupted or failed series is
written again from scratch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import InvalidArgumentError, LazyDicomError
from .io.labels import series_attrs, series_name, units
from .io.zarr import GroupWriter, ZarrTarget, packed, write_shard
from .records import Database, Series, open_database
from .scan import expand_sources

if TYPE_CHECKING:
    import pandas as pd

    from .array import DicomFrames

__all__ = ["extract", "EXTRACT_FORMAT"]

#: Bumped when the extraction layout or marker changes; older series are rewritten.
EXTRACT_FORMAT = 2
_MARKER = "lazydicom_extract"


@dataclass
class _Job:
    """One series to write: its plan, target and the shards still to do."""

    name: str
    frames: DicomFrames | None
    fingerprint: str
    cells: int
    target: ZarrTarget | None = None
    make_target: Callable[[], ZarrTarget] | None = None  # creates the group (no pixel)
    pending: int = 0
    error: BaseException | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def _fingerprint(t: pd.DataFrame, dims: Sequence[Any], options: Mapping[str, Any]) -> str:
    """What the output of a series depends on, from the index alone (no file opened)."""
    h = hashlib.sha1()
    h.update(json.dumps([str(d) for d in dims]).encode())
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    for p, size, mtime in sorted(zip(t["path"].tolist(), t["size"].tolist(),
                                     t["mtime"].tolist(), strict=True)):
        h.update(f"{p}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()


def _frame_count(series: Series) -> int:
    rows = series._rows()
    return rows.stop - rows.start if isinstance(rows, slice) else len(rows)


def _marker(out: str, name: str) -> dict | None:
    import zarr

    if "://" not in out and not os.path.isdir(os.path.join(out, name)):
        return None  # a new series: zarr's open_group would look for three files, 1.2 ms
    try:
        g = zarr.open_group(out, path=name, mode="r", use_consolidated=False)
    except Exception:  # noqa: BLE001 - missing or unreadable group: not complete
        return None
    marker = g.attrs.get(_MARKER)
    return marker if isinstance(marker, dict) else None


def _mark_complete(groups: GroupWriter, name: str, fingerprint: str) -> None:
    groups.update_attributes(name, {_MARKER: {"format": EXTRACT_FORMAT,
                                              "fingerprint": fingerprint, "complete": True}})


def _client(scheduler: Any) -> Any:
    """A dask.distributed Client for ``scheduler`` (address or Client), the active one, or None."""
    if scheduler is None:
        if "distributed" not in sys.modules:  # no Client can exist; importing costs 0.3 s
            return None
        try:
            from distributed import default_client

            return default_client()
        except (ImportError, ValueError):
            return None
    if (isinstance(scheduler, str) and scheduler in (
            "threads", "processes", "sync", "synchronous", "single-threaded")):
        return None
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "A scheduler address needs dask.distributed: pip install 'lazydicom[distributed]'"
        ) from None
    if isinstance(scheduler, Client):
        return scheduler
    if not isinstance(scheduler, str):
        raise InvalidArgumentError(
            f"scheduler must be an address such as 'tcp://host:8786', a distributed.Client, "
            f"or 'threads'/'processes'/'sync', not {scheduler!r}")
    return Client(scheduler, timeout="10s")


class _Progress:
    """One bar for the whole batch on a terminal (frames, frames/s, series done), else nothing."""

    def __init__(self, total: int, series: int, enabled: bool | None) -> None:
        self.bar = None
        self.series, self.done_series = series, 0
        if (sys.stderr.isatty() if enabled is None else enabled) and total:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="Extracting", unit="frame", smoothing=0.1)
            self._postfix()

    def _postfix(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"series {self.done_series}/{self.series}")

    def frames(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def series_done(self) -> None:
        self.done_series += 1
        self._postfix()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def extract(
    sources: str | os.PathLike | Database | Sequence[str | os.PathLike | Database],
    out: str | os.PathLike,
    dims: Sequence[str | int] | str | int = ("InstanceNumber",),
    *,
    where: Mapping[Any, Any] | None = None,
    scheduler: Any = None,
    progress: bool | None = None,
    cache: Any = None,
    rescale: bool = True,
    fill_value: Any = None,
    compressor: str | None = "lz4",
    shard_bytes: str | int = "16MiB",
    workers: int | None = None,
    format: str = "zarr",
    pack: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Extract every (matching) series of one or more folders into one zarr store, resumably.

    Parameters
    ----------
    sources : folder, Database, or a sequence of them
        Folders (glob patterns allowed) are opened with [`lazydicom.open`][lazydicom.open]
        (indexed or refreshed); an open Database is used as it is.
    out : str or PathLike
        The zarr group to write (created if needed). On a cluster, a path every
        worker can write to.
    dims : sequence
        Dims of every series' array, as [`Series.ndarray`][lazydicom.Series.ndarray]. A series
        lacking an attribute gets a size-1 axis for it.
    where : dict, optional
        Keep the series with frames matching these values (as
        [`Database.series`][lazydicom.Database.series]).
    scheduler : str or distributed.Client, optional
        A scheduler address (``"tcp://host:8786"``) or Client: shards run as
        tasks on that cluster. ``"processes"``: each series is written by one
        of ``workers`` forked processes (default: the number of cores);
        ``"threads"``: shards run on local threads. Default: the active Client
        if there is one, else processes for a batch of at least 4 series per
        core whose median series holds at most 16 MiB of frames (many small
        series: making a group is Python that holds the GIL, so threads use
        one core), else threads. Processes are forked, on
        Linux only, for local files written to a local store; otherwise threads.
    progress : bool, optional
        One progress bar for the batch; default only on a terminal.
    cache : optional
        As [`lazydicom.open`][lazydicom.open] (decoded frames kept for later reads); a
        Database source keeps its own cache.
    rescale : bool, optional
        As [`Series.ndarray`][lazydicom.Series.ndarray].
    fill_value : scalar, optional
        Value of cells without a frame. Default NaN for float output (rescaled
        data), so that missing cells read back as missing, and 0 for integer
        output; the coordinate ``has_frame`` marks them either way.
    compressor : {'lz4', 'zstd', 'none'}
        Codec of the pixel chunks (blosc-lz4 by default).
    shard_bytes : str or int
        Bytes of frames per shard and per task (default 16 MiB).
    workers : int, optional
        Local threads (default: one more than the number of cores: a thread
        waits for its shard's store write while the others read and compress),
        or processes with ``scheduler="processes"``.
    pack : bool, optional
        Store integers with CF ``scale_factor``/``add_offset`` where that is
        exact (e.g. CT's -1024; see ``lazydicom.io.zarr.packed``): half the
        bytes of float32 and a third of the compression time. xarray decodes
        them to the rescaled values. False stores the rescaled floats.
    format : {'zarr', 'nifti'}
        ``"nifti"`` writes ``out/<name>.nii`` per series instead (nibabel; the
        dims need one spatial dim, see [`Series.affine`][lazydicom.Series.affine]), each with a
        ``<name>.json`` sidecar written last that makes reruns skip it.
    storage_options : dict, optional
        For sources that are URLs (``s3://bucket/prefix``): options of their
        fsspec filesystem, as [`lazydicom.open`][lazydicom.open].

    Returns
    -------
    list of dict
        One per series, sorted by name: ``name``, ``status`` ("written",
        "skipped" or "failed"), ``frames``, ``error``, ``source``.
    """
    import zarr

    if isinstance(sources, str | os.PathLike | Database):
        sources = [sources]
    dims = (dims,) if isinstance(dims, str | int) else tuple(dims)
    out = os.path.abspath(os.fspath(out)) if "://" not in os.fspath(out) else os.fspath(out)
    if os.path.isfile(out):
        raise InvalidArgumentError(f"{out!r} is a file; give a folder for the zarr store")
    databases = [s if isinstance(s, Database) else open_database(
                     s, cache=cache, progress=progress,
                     storage_options=storage_options if "://" in s else None)
                 for s in ([s for s in sources if isinstance(s, Database)]
                           + expand_sources(s for s in sources if not isinstance(s, Database)))]
    if format == "nifti":
        return _extract_nifti(databases, out, dims, where, rescale, progress)
    if format != "zarr":
        raise InvalidArgumentError(f"format must be 'zarr' or 'nifti', not {format!r}")
    options = {"rescale": rescale, "fill_value": fill_value, "compressor": compressor,
               "pack": pack,
               "shard_bytes": shard_bytes, "format": EXTRACT_FORMAT}
    root = zarr.open_group(out, mode="a", use_consolidated=False)
    root.attrs.update({"lazydicom": {"format": EXTRACT_FORMAT, "dims": [str(d) for d in dims],
                                     "sources": [db.path for db in databases]}})
    groups = GroupWriter(out)

    report: list[dict[str, Any]] = []
    jobs: list[_Job] = []
    seen: set[str] = set()
    for db in databases:
        selected = db.series(where)
        # Series are planned from views of the index's columns, each converted once
        # for the whole index (lazydicom.columns): 4 ms less planning per series of
        # 90 columns. Worth it when the series extracted hold much of the index; a
        # few series of a large index are planned from their own tables.
        shared = 4 * sum(_frame_count(s) for s in selected) >= len(db.table())
        for series in selected:
            table = series.table()
            name = series_name(table)
            if name in seen:  # the same series in two sources: written once
                continue
            seen.add(name)
            fingerprint = _fingerprint(table, dims, options)
            marker = _marker(out, name)
            entry = {"name": name, "frames": len(table), "error": None, "source": db.path}
            if marker and marker.get("complete") and marker.get("fingerprint") == fingerprint:
                report.append({**entry, "status": "skipped"})
                continue
            job = _Job(name, None, fingerprint, 0)
            try:
                columns = series.ensure(dims)
                rows = series._columns() if shared else None
                if not set(columns) <= set(table.columns):  # read from headers just now
                    table = series.table()
                    rows = None  # the index changed: its columns would be converted again
                # planned from the table in hand: Series.frames would take it again
                frames = series._planned(table, dims, columns, fill_value=0 if fill_value
                                         is None else fill_value, rescale=rescale, rows=rows)
                if fill_value is None:
                    frames = frames.marking_empty()
                frames, encoding = packed(frames) if pack else (frames, {})
                attrs = series_attrs(table if rows is None else rows)
                unit = units(attrs, rescale)
                if unit:
                    attrs["units"] = unit
                attrs["dims"] = [str(d) for d in dims]
                job.frames, job.cells = frames, frames.grid.size
                job.make_target = functools.partial(
                    groups.create, frames, group=name, attrs=attrs, compressor=compressor,
                    shard_bytes=shard_bytes, table=table, encoding=encoding)
            except (LazyDicomError, ValueError, KeyError, OSError) as exc:
                job.error = exc
            jobs.append(job)
            report.append({**entry, "status": "failed"})

    jobs.sort(key=lambda j: j.name)  # a deterministic order: resumes redo the same tail
    bar = _Progress(sum(j.cells for j in jobs if j.error is None), len(jobs), progress)
    try:
        _run(jobs, scheduler, workers, bar, groups,
             lambda job: _mark_complete(groups, job.name, job.fingerprint))
    finally:
        bar.close()
        groups.consolidate()
    by_name = {job.name: job for job in jobs}
    for entry in report:
        if entry["name"] in by_name:
            error = by_name[entry["name"]].error
            entry["status"] = "failed" if error else "written"
            entry["error"] = None if error is None else f"{type(error).__name__}: {error}"
    return sorted(report, key=lambda r: r["name"])


def _extract_nifti(databases: list[Database], out: str, dims: tuple, where: Any, rescale: bool,
                   progress: bool | None) -> list[dict[str, Any]]:
    """One NIfTI file per series (see ``extract``), written then renamed, sidecar last."""
    os.makedirs(out, exist_ok=True)
    options = {"rescale": rescale, "format": "nifti"}
    report: list[dict[str, Any]] = []
    todo = []
    for db in databases:
        for series in db.series(where):
            table = series.table()
            todo.append((series_name(table), series, table, db.path))
    bar = _Progress(sum(len(t) for _, _, t, _ in todo), len(todo), progress)
    try:
        for name, series, table, source in sorted(todo, key=lambda t: t[0]):
            entry = {"name": name, "frames": len(table), "error": None, "source": source}
            fingerprint = _fingerprint(table, dims, options)
            sidecar = os.path.join(out, f"{name}.json")
            try:
                with open(sidecar) as f:
                    done = json.load(f).get("fingerprint") == fingerprint
            except (OSError, ValueError, AttributeError):
                done = False
            if done:
                report.append({**entry, "status": "skipped"})
            else:
                partial = os.path.join(out, f".{name}.partial.nii")
                try:
                    series.to_nifti(partial, dims, rescale=rescale)
                    os.replace(partial, os.path.join(out, f"{name}.nii"))
                    attrs = series_attrs(table)
                    with open(sidecar + ".partial", "w") as f:
                        json.dump({"fingerprint": fingerprint, "dims": [str(d) for d in dims],
                                   "attributes": attrs}, f)
                    os.replace(sidecar + ".partial", sidecar)
                    report.append({**entry, "status": "written"})
                except (LazyDicomError, ValueError, KeyError, OSError) as exc:
                    report.append({**entry, "status": "failed",
                                   "error": f"{type(exc).__name__}: {exc}"})
            bar.frames(len(table))
            bar.series_done()
    finally:
        bar.close()
    return report


def _run(jobs: list[_Job], scheduler: Any, workers: int | None, bar: _Progress,
         groups: GroupWriter, complete: Callable[[_Job], None]) -> None:
    """Write every shard of every job, locally or on a cluster, marking errors per job.

    ``complete(job)`` runs as soon as all shards of a job are written: in this
    thread, or in the worker process that wrote the job (whose copy of
    ``groups`` made its group; the metadata made comes back to ``groups``).
    """
    def shards(job: _Job) -> list[tuple[slice, ...]]:
        """The job's shard regions; completes a job that has none."""
        regions = _regions(job)
        job.pending = len(regions)
        if not regions:
            complete(job)
            bar.series_done()
        return regions

    def finished(job: _Job, cells: int, error: BaseException | None) -> None:
        with job.lock:
            job.pending -= 1
            if error is not None and job.error is None:
                job.error = error
            last = job.pending == 0
        bar.frames(cells)
        if last:
            if job.error is None:
                complete(job)
            bar.series_done()

    live = [j for j in jobs if j.error is None and j.frames is not None]
    client = _client(scheduler)
    if client is not None:  # the groups are made here, the shards on the cluster
        tasks = []
        for job in live:
            error = _make_target(job)
            if error is None:
                tasks += [(job, r) for r in shards(job)]
            else:
                bar.series_done()
        _run_distributed(client, tasks, finished, own=isinstance(scheduler, str))
        return
    processes = _processes(live, scheduler, workers) if _local(live, groups) else 0
    if processes:
        _run_processes(live, processes, bar, groups, complete)
        return
    if scheduler in ("sync", "synchronous", "single-threaded"):
        workers = 1
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    # Creating a series' group (coordinates, metadata) is a task too, queued
    # behind the first shard of the series before it: the pool starts on shards
    # at once and the next group is ready before the previous shards run out
    # (queued all at the start, the 8 groups of a CT batch held both threads for
    # the first quarter of an extract while no shard was written). One thread
    # more than cores: each shard's store write runs on zarr's I/O threads
    # while its writer waits for it (the 1,200-file CT batch of
    # docs/benchmarks.md, in-process: 0.92 s with 3 threads, 1.00 s with 2,
    # medians of 8 interleaved runs on 2 cores).
    with ThreadPoolExecutor(workers or (os.cpu_count() or 1) + 1,
                            thread_name_prefix="lazydicom-extract") as pool:
        pending: dict[Any, tuple[_Job, tuple[slice, ...] | None]] = {}
        upcoming = iter(live)

        def make_next() -> None:
            job = next(upcoming, None)
            if job is not None:
                pending[pool.submit(_make_target, job)] = (job, None)

        make_next()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job, region = pending.pop(future)
                if region is None:  # the group exists (or failed): its shards follow
                    if future.result() is not None:
                        bar.series_done()
                        make_next()
                        continue
                    regions = shards(job)
                    for i, r in enumerate(regions):
                        pending[pool.submit(_guarded, job, r)] = (job, r)
                        if i == 0:
                            make_next()
                    if not regions:
                        make_next()
                else:
                    cells, error = future.result()
                    finished(job, cells, error)


def _local(live: list[_Job], groups: GroupWriter) -> bool:
    """Whether every frame is read from a local file and the store is a local folder:
    worker processes are forked only then (a remote source's or store's client and
    event loop are the parent's, not to be used from a forked child)."""
    from zarr.storage import LocalStore

    return isinstance(groups.store, LocalStore) and all(
        job.frames is not None and job.frames.table.source is None for job in live)


# A series this small (frames' bytes) costs more Python (its group, the GIL) than
# pixel work (reading, compressing and writing, which release the GIL): a batch of
# such series goes to worker processes by default. A CT series of 150 frames (75 MB)
# does not: in threads its shards spread over the cores, and the 8-series CT batch of
# docs/benchmarks.md was as fast or faster in threads (in process, medians of 4:
# 1.22 s against 1.42 s).
_SMALL_SERIES = 16 * 2**20


def _median_bytes(live: list[_Job]) -> float:
    sizes = [job.cells * math.prod(job.frames.frame_shape) * job.frames.dtype.itemsize
             for job in live if job.frames is not None]
    return float(sorted(sizes)[len(sizes) // 2]) if sizes else 0.0


def _processes(live: list[_Job], scheduler: Any, workers: int | None) -> int:
    """How many forked processes write a local batch; 0: threads (see ``extract``)."""
    import multiprocessing

    from .workers import processes_allowed

    cores = os.cpu_count() or 1
    if scheduler == "processes":
        n = workers or cores
    elif (scheduler is None and workers is None and cores > 1 and len(live) >= 4 * cores
          and _median_bytes(live) <= _SMALL_SERIES):
        n = cores
    else:
        return 0
    if (not sys.platform.startswith("linux") or not processes_allowed()
            or "fork" not in multiprocessing.get_all_start_methods()):
        return 0
    return max(1, min(n, len(live)))


# In a worker process of ``_run_processes``: the jobs of its batch, their completion
# callback and the worker's own copy of the batch's GroupWriter.
_FORKED: tuple[list[_Job], Callable[[_Job], None], GroupWriter] | None = None


def _receive(live: list[_Job], complete: Callable[[_Job], None], groups: GroupWriter) -> None:
    """Worker initializer: keep the batch (a forked process gets it without pickling)."""
    global _FORKED
    _FORKED = (live, complete, groups)


def _run_processes(live: list[_Job], processes: int, bar: _Progress, groups: GroupWriter,
                   complete: Callable[[_Job], None]) -> None:
    """Write each job in one of ``processes`` forked workers (group, shards, marker).

    Why processes: for a batch of many small series the work is Python that
    holds the GIL (making a group through zarr, planning a shard), so threads
    share one core. Measured on the 2-core VM of docs/benchmarks.md, 200
    series of 5 frames written to tmpfs: 1.2-1.3 s in two processes (fork,
    groups, consolidation) against 2.1-2.5 s in threads. Forked: the jobs are
    not pickled, only their indices and, back, the metadata of the group made.
    A worker that dies fails the series it held, not the batch.
    """
    import multiprocessing
    from concurrent.futures import as_completed

    from .workers import process_pool

    # the batch reaches the workers as the initializer's arguments, which a forked
    # process inherits rather than unpickles
    with process_pool(processes, mp_context=multiprocessing.get_context("fork"),
                      initializer=_receive, initargs=(live, complete, groups)) as pool:
        futures = {pool.submit(_write_forked, i): job for i, job in enumerate(live)}
        lost: list[_Job] = []
        for future in as_completed(futures):
            job = futures[future]
            try:
                cells, error, nodes = future.result()
            except Exception as exc:  # noqa: BLE001 - a worker died: its series failed
                cells, error, nodes = job.cells, exc, None
                lost.append(job)
            if nodes is not None:  # the group made (also of a series that failed after)
                groups.adopt(job.name, nodes)
            if error is not None or nodes is None:
                job.error = error or RuntimeError("the worker made no group")
            bar.frames(cells)
            bar.series_done()
    # the workers are gone: a group a dying worker (or the pool's shutdown) left
    # half-written, its zarr.json perhaps cut short, is removed rather than
    # consolidated; it was not marked complete, so the next run writes it
    for job in lost:
        groups.discard(job.name)


def _write_forked(index: int) -> tuple[int, BaseException | None, Any]:
    """In a worker: make job ``index``'s group, write its shards, mark it complete.

    Returns the cells written, the error (None) and the metadata of the group
    made (for the parent's consolidation). Never raises.
    """
    assert _FORKED is not None
    jobs, complete, groups = _FORKED
    job = jobs[index]
    cells = 0
    error = _make_target(job)
    try:
        if error is None:
            for region in _regions(job):
                written, error = _guarded(job, region)
                cells += written
                if error is not None:
                    break
        if error is None:
            complete(job)
    except Exception as exc:  # noqa: BLE001 - recorded per series, the batch goes on
        error = exc
    made = groups.made.get(job.name)
    return cells, _picklable(error), None if made is None else made[1]


def _picklable(error: BaseException | None) -> BaseException | None:
    """``error``, or a RuntimeError with its text when it cannot go back to the parent."""
    import pickle

    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 - any failure to round-trip
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


def _regions(job: _Job) -> list[tuple[slice, ...]]:
    """The shard regions of a job whose group exists (none of an empty grid)."""
    assert job.frames is not None and job.target is not None
    return [r for r in job.target.regions(job.frames.grid.shape)
            if all(s.stop > s.start for s in r)]


def _make_target(job: _Job) -> BaseException | None:
    """Create the job's group; the error (recorded on the job) or None. Never raises."""
    if job.target is not None:
        return None
    try:
        assert job.make_target is not None
        job.target = job.make_target()
    except Exception as exc:  # noqa: BLE001 - recorded per series, the batch goes on
        job.error = exc
        return exc
    return None


def _guarded(job: _Job, region: tuple[slice, ...]) -> tuple[int, BaseException | None]:
    """Write one shard unless its series already failed; never raise."""
    cells = 1
    for s in region:
        cells *= s.stop - s.start
    if job.error is not None:
        return cells, None
    try:
        assert job.frames is not None and job.target is not None
        return write_shard(job.frames, job.target, region), None
    except Exception as exc:  # noqa: BLE001 - recorded per series, the batch goes on
        return cells, exc


def _run_distributed(client: Any, tasks: list, finished: Callable, own: bool) -> None:
    from distributed import as_completed

    try:
        # each series' frames object is sent once and shared by its shards' tasks
        scattered = {}
        futures = {}
        for job, region in tasks:
            if job.name not in scattered:
                scattered[job.name] = client.scatter(job.frames, hash=False)
            future = client.submit(write_shard, scattered[job.name], job.target, region,
                                   pure=False)
            futures[future] = (job, region)
        for future in as_completed(list(futures), loop=client.loop):
            job, region = futures[future]
            cells = 1
            for s in region:
                cells *= s.stop - s.start
            finished(job, cells, future.exception())
    finally:
        if own:
            client.close()
