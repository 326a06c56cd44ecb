"""The index: one row per frame of every DICOM file under a folder.

Built once by reading every header (never the pixels), persisted beside the
data in ``.lazydicom/`` and refreshed incrementally: a refresh stats the
folder, re-reads only files that are new or whose size or modification time
changed, and drops rows of removed files. Files that could not be read are
remembered with the reason (and their size/mtime) so that an unchanged
folder is reopened without opening any DICOM file.

The table is a ``pandas.DataFrame`` typed by ``lazydicom.schema``;
it is persisted as Arrow IPC (pyarrow), which loads in milliseconds.

Persistence is a small commit protocol. A save writes the frame table and
the table of skipped files under new names (``index-<generation>.arrow``,
``skipped-<generation>.arrow``), flushes them, then replaces the pointer
``index.json`` atomically: it names the generation and holds each data
file's size and CRC-32. The pointer is the commit: a process killed at any
point leaves the previous index or the new one, never a mix, and the files
of an unfinished save are removed by the next run. A load checks the
pointer, the checksums, the schema and the storage invariants
(``lazydicom.schema.check_index``); on any doubt it warns
([`DamagedIndexWarning`][lazydicom.DamagedIndexWarning]) and rebuilds the index from
the DICOM files. Saves hold a lock (``index.lock``), so concurrent processes
never remove each other's files.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import operator
import os
import re
import sys
import uuid
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather

from . import commits, disk, readahead, schema
from .errors import (
    DamagedIndexWarning,
    InvalidArgumentError,
    InvalidValueWarning,
    OutsideDatabaseError,
    SkippedFilesWarning,
)
from .header import HeaderError, read_attributes, read_header_at, read_rows
from .objectstore import ObjectStore
from .scan import INDEX_DIRNAME, FileStat, scan_folder, start_scan
from .tags import Attribute, resolve
from .workers import process_pool, processes_allowed

__all__ = ["Index", "FORMAT_VERSION", "read_files", "read_objects", "default_location",
           "remote_location"]

#: Bumped whenever the files or their columns change; other versions are rebuilt.
FORMAT_VERSION = 3
_POINTER = "index.json"
_LOCK = "index.lock"
_DATA = ("index", "skipped")  # the data files of a generation: <kind>-<generation>.arrow
_DATA_NAME = re.compile(r"^(index|skipped)-([0-9a-f]{16})\.arrow$")
_LEGACY = ("index.arrow", "skipped.arrow")  # format 1
_CACHE_DIR = "cache.zarr"
_PARTIAL = (".partial",)  # zarr LocalStore's temporary files (cache fills)
_PARALLEL_MIN_FILES = 96  # below this, starting processes costs more than it saves
#: Indexed rows from which a refresh stats the folder in worker processes (the
#: serial walk of 20,000 files takes ~0.1 s, about what starting two workers does)
_PARALLEL_SCAN_MIN = 20_000
_CHUNK = 32  # files per task sent to a worker process
_LOAD_ATTEMPTS = 3  # a concurrent save may replace the files being loaded
#: First ranged read of an object's header: most headers end well before, a
#: round trip to a store costs more than transferring 64 KiB more.
OBJECT_HEAD = 64 * 1024
_OBJECT_BATCH = 256  # objects whose heads are fetched in one concurrent round
_MAX_BLOCK = 8 * 1024 * 1024  # largest block of a walk over fragment items
_FEW_SKIPPED = 64  # skipped files merged into a reopen's comparison one by one


class _Damaged(Exception):
    """The persisted index failed a check; the message says which."""


def _read_files(root: str, files: Sequence[tuple[str, int, int]], extra: Sequence[str]):
    """Worker: read headers of ``files``; return (rows, skipped), rows with path/size/mtime.

    The rows come back as one DataFrame per batch, built in the worker: a
    million frames as dicts in the parent cost gigabytes and minutes.
    """
    rows, skipped = read_rows(root, files, [resolve(e) for e in extra])
    return (pd.DataFrame.from_records(rows) if rows else None), skipped


class _ObjectReader:
    """``read_at`` over an object whose head is fetched already: more only on demand.

    A read past what is held fetches at least ``OBJECT_HEAD`` bytes from
    there (one ranged request); reads that continue the head extend it, so
    the header walk's doubling reads stay contiguous. Reads elsewhere (the
    walk over the fragment items of encapsulated pixel data) fetch blocks
    that double each time, up to 8 MiB: a walk over many fragments costs a
    few requests rather than one round trip per fragment.
    """

    __slots__ = ("store", "rel", "size", "head", "blocks", "requests", "block")

    def __init__(self, store: ObjectStore, rel: str, size: int, head: bytes) -> None:
        self.store, self.rel, self.size, self.head = store, rel, size, head
        self.blocks: list[tuple[int, bytes]] = []
        self.requests = 0
        self.block = OBJECT_HEAD

    def read_at(self, offset: int, n: int) -> bytes:
        end = min(offset + n, self.size)
        if end <= len(self.head):
            return self.head[offset:end]
        for start, data in self.blocks:
            if start <= offset and end <= start + len(data):
                return data[offset - start : end - start]
        if offset >= self.size:
            return b""
        stop = min(self.size, max(end, offset + OBJECT_HEAD))
        self.requests += 1
        if offset <= len(self.head):  # continues the head: extend it
            more = self.store.read_ranges([self.rel], [len(self.head)], [stop])[0]
            self.head = self.head + more
            return self.head[offset:end]
        self.block = min(self.block * 2, _MAX_BLOCK)
        stop = min(self.size, max(end, offset + self.block))
        data = self.store.read_ranges([self.rel], [offset], [stop])[0]
        self.blocks.append((offset, data))
        return data[: end - offset]


def read_objects(
    store: ObjectStore,
    files: Sequence[FileStat],
    extra: Sequence[str] = (),
    *,
    progress: bool | None = None,
    scheduler: Any = None,
) -> tuple[pd.DataFrame | None, list[dict[str, Any]]]:
    """[`read_files`][lazydicom.index.read_files] for the objects of a store, by ranged reads.

    The first ``OBJECT_HEAD`` bytes of many objects are fetched concurrently
    (one ranged request each); an object whose header is longer gets more
    ranges on demand. Native pixel data beyond the head is never fetched.
    The rows equal those of a local copy of the files (``path``, ``size``
    and ``mtime`` are the object's key under the folder, its size and version).
    ``scheduler``: a dask.distributed Client or address sends batches of
    objects to its workers, which read the heads from the store themselves;
    anything else reads here (the requests are concurrent already).
    """
    if scheduler not in (None, "processes", "sync", "synchronous", "single-threaded", "threads"):
        todo = [(f.path, f.size, f.mtime) for f in files]
        return _read_on_cluster(scheduler, store, todo, extra, progress, _read_object_batch)
    attrs = [resolve(e) for e in extra]
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    bar = _progress(len(files), progress, "Reading DICOM headers from the store")
    try:
        with warnings.catch_warnings():  # as _read_files: reported once, by _warn_skipped
            warnings.simplefilter("ignore", UserWarning)
            for first in range(0, len(files), _OBJECT_BATCH):
                batch = list(files[first : first + _OBJECT_BATCH])
                wanted = [f for f in batch if f.size > 0]
                heads: dict[str, bytes | None] = dict(zip(
                    [f.path for f in wanted],
                    store.read_ranges([f.path for f in wanted], [0] * len(wanted),
                                      [min(f.size, OBJECT_HEAD) for f in wanted], missing=None),
                ))
                for f in batch:
                    head = heads.get(f.path, b"")
                    if head is None:
                        continue  # removed since the listing: the next refresh drops it
                    reader = _ObjectReader(store, f.path, f.size, head)
                    try:
                        frames = read_header_at(reader.read_at, f.size, store.url_of(f.path),
                                                attrs)
                    except HeaderError as exc:
                        skipped.append({"path": f.path, "size": f.size, "mtime": f.mtime,
                                        "reason": str(exc)})
                        continue
                    for row in frames:
                        row["path"], row["size"], row["mtime"] = f.path, f.size, f.mtime
                        rows.append(row)
                if bar is not None:
                    bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
    return (pd.DataFrame.from_records(rows) if rows else None), skipped


def _read_object_batch(store: ObjectStore, files: Sequence[tuple[str, int, int]],
                       extra: Sequence[str]) -> tuple[pd.DataFrame | None, list[dict[str, Any]]]:
    """Worker: :func:`read_objects` of one batch (a cluster task)."""
    return read_objects(store, [FileStat(*f) for f in files], extra, progress=False)


def _progress(total: int, enabled: bool | None, desc: str):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="file", leave=False)


def read_files(
    root: str | os.PathLike,
    files: Sequence[FileStat],
    extra: Sequence[str] = (),
    *,
    workers: int | None = None,
    progress: bool | None = None,
    scheduler: Any = None,
) -> tuple[pd.DataFrame | None, list[dict[str, Any]]]:
    """Read the headers of ``files`` under ``root``, in parallel when worth it.

    Returns ``(rows, skipped)``: a DataFrame (None if no frame) whose rows
    carry ``path``, ``size`` and ``mtime``, and the files skipped with reasons.
    ``scheduler``: None or ``"processes"`` (local worker processes, the
    default), ``"threads"``/``"sync"`` (this process), or a dask.distributed
    Client or scheduler address: batches of files become cluster tasks whose
    rows are gathered here (the files must be reachable from the workers).
    """
    root = str(root)
    todo = [(f.path, f.size, f.mtime) for f in files]
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if scheduler in ("sync", "synchronous", "single-threaded", "threads"):
        workers = 1  # header parsing holds the GIL: threads would not help
    elif scheduler not in (None, "processes"):
        return _read_on_cluster(scheduler, root, todo, extra, progress)
    rows: list[pd.DataFrame] = []
    skipped: list[dict[str, Any]] = []
    if not extra:  # what the command line read ahead of its imports (lazydicom.readahead)
        ahead, skipped, todo = readahead.take(root, todo)
        if ahead:
            rows.append(pd.DataFrame.from_records(ahead))
    bar = _progress(len(todo), progress, "Reading DICOM headers")
    try:
        if workers <= 1 or len(todo) < _PARALLEL_MIN_FILES or not processes_allowed():
            for start in range(0, len(todo), _CHUNK):
                part = todo[start : start + _CHUNK]
                r, s = _read_files(root, part, extra)
                if r is not None:
                    rows.append(r)
                skipped += s
                if bar is not None:
                    bar.update(len(part))
        else:
            chunk = max(1, min(_CHUNK * 4, len(todo) // (workers * 4) or 1))
            parts = [todo[i : i + chunk] for i in range(0, len(todo), chunk)]
            with process_pool(workers) as pool:
                for part, (r, s) in zip(
                    parts, pool.map(_read_files, [root] * len(parts), parts, [extra] * len(parts))
                ):
                    if r is not None:
                        rows.append(r)
                    skipped += s
                    if bar is not None:
                        bar.update(len(part))
    finally:
        if bar is not None:
            bar.close()
    frames = (rows[0] if len(rows) == 1 else pd.concat(rows, ignore_index=True)) if rows else None
    return frames, skipped


def _read_on_cluster(scheduler: Any, root: Any, todo: list[tuple[str, int, int]],
                     extra: Sequence[str], progress: bool | None,
                     read: Callable[..., Any] = _read_files,
                     ) -> tuple[pd.DataFrame | None, list[dict[str, Any]]]:
    """:func:`read_files` with batches as dask.distributed tasks: ``read(root, batch,
    extra)`` on the workers (``root`` a folder, or an ``ObjectStore``)."""
    try:
        from distributed import Client, as_completed
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("A scheduler address needs dask.distributed: "
                          "pip install 'lazydicom[distributed]'") from None
    client = scheduler if isinstance(scheduler, Client) else Client(scheduler, timeout="10s")
    rows: list[pd.DataFrame] = []
    skipped: list[dict[str, Any]] = []
    bar = _progress(len(todo), progress, "Reading DICOM headers on the cluster")
    try:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        chunk = max(1, min(_CHUNK * 4, len(todo) // (workers * 4) or 1))
        parts = [todo[i : i + chunk] for i in range(0, len(todo), chunk)]
        futures = client.map(read, [root] * len(parts), parts, [list(extra)] * len(parts),
                             pure=False)
        sizes = {f.key: len(p) for f, p in zip(futures, parts)}
        for future in as_completed(futures, loop=client.loop):
            r, s = future.result()
            if r is not None:
                rows.append(r)
            skipped += s
            if bar is not None:
                bar.update(sizes[future.key])
    finally:
        if bar is not None:
            bar.close()
        if client is not scheduler:
            client.close()
    frames = (rows[0] if len(rows) == 1 else pd.concat(rows, ignore_index=True)) if rows else None
    return frames, skipped


# ---------------------------------------------------------------- persistence


def default_location(root: Path) -> Path:
    """Where the index of ``root`` lives: ``root/.lazydicom`` if writable, else a user cache.

    Raises
    ------
    OutsideDatabaseError
        ``root/.lazydicom`` is a symbolic link (never written through).
    """
    try:
        here = disk.private_folder(root)
        probe = here / f".write-test-{uuid.uuid4().hex[:8]}"
        probe.touch()
        probe.unlink()
        return here
    except (PermissionError, OSError) as exc:
        if isinstance(exc, OutsideDatabaseError):
            raise
        return disk.user_cache_location(root)


def remote_location(identity: str) -> Path:
    """Where the index of a folder in an object store lives: a user cache folder
    keyed by its URL and endpoint (``$XDG_CACHE_HOME/lazydicom/remote/<digest>``)."""
    digest = hashlib.sha1(identity.encode()).hexdigest()[:16]
    return disk.user_cache() / "remote" / digest


#: LZ4 frames: an index is mostly absent and repeated values, ~10x smaller; reading
#: it decompresses each column into its own buffer, so one column's memory can be
#: released (or shared, see _share_absent) without the whole file's. Files
#: written uncompressed (before) are read all the same.
_COMPRESSION = "lz4" if pa.Codec.is_available("lz4") else "uncompressed"


def _arrow_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    # one record batch: a table concatenated from worker batches keeps their chunks,
    # and an IPC file of thousands of small batches is ten times larger and slower
    feather.write_feather(table.combine_chunks(), sink, compression=_COMPRESSION,
                          chunksize=max(len(table), 1))
    return sink.getvalue().to_pybytes()


def _share_absent(table: pa.Table) -> pa.Table:
    """``table`` with each column of only absent values over one shared zero buffer.

    Most of the ~90 columns of an index are absent for a given folder; read
    from the file, each holds its own buffers (8 bytes a row for numbers). A
    column of n absent values only needs a zero validity bitmap (and zero
    offsets for text and lists): one buffer of zeros serves them all. Values,
    types and null counts are unchanged.
    """
    n = table.num_rows
    if not n:
        return table
    zeros: pa.Buffer | None = None
    for i, field in enumerate(table.schema):
        column = table.column(i)
        kind = field.type
        if column.null_count != n:
            continue
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            width = kind.bit_width // 8
        elif pa.types.is_string(kind) or pa.types.is_list(kind):
            width = 4  # int32 offsets, n + 1 of them
        else:
            continue
        if zeros is None:
            zeros = pa.py_buffer(bytes(8 * (n + 1)))  # calloc'd: pages untouched until read
        validity = zeros.slice(0, (n + 7) // 8)
        data = zeros.slice(0, width * (n + 1))
        if pa.types.is_list(kind):
            empty = pa.array([], type=kind.value_type)
            array = pa.Array.from_buffers(kind, n, [validity, data], null_count=n,
                                          children=[empty])
        elif pa.types.is_string(kind):
            array = pa.Array.from_buffers(kind, n, [validity, data, pa.py_buffer(b"")],
                                          null_count=n)
        else:
            array = pa.Array.from_buffers(kind, n, [validity, data], null_count=n)
        table = table.set_column(i, field, array)
    return table


def _read_table(path: Path, entry: Any) -> pa.Table:
    """A data file named by the pointer, checked against its size and CRC-32."""
    if not isinstance(entry, dict):
        raise _Damaged(f"{_POINTER} describes a data file as {entry!r}")
    name, size, crc = entry.get("name"), entry.get("size"), entry.get("crc32")
    if not isinstance(name, str) or not _DATA_NAME.match(name):
        raise _Damaged(f"{_POINTER} names the data file {name!r}")
    if not isinstance(size, int) or not isinstance(crc, int):
        raise _Damaged(f"{_POINTER} gives no size and checksum for {name!r}")
    data = (path / name).read_bytes()  # FileNotFoundError: handled by the caller
    if len(data) != size:
        raise _Damaged(f"{name} holds {len(data)} bytes, {size} were written")
    if zlib.crc32(data) != crc:
        raise _Damaged(f"{name} fails its checksum (its bytes changed since it was written)")
    table = _share_absent(feather.read_table(pa.BufferReader(data)))
    # the buffers of the absent columns, freed just now: give them back to the system
    # (the allocator keeps them otherwise) before the scan and the conversion need more
    pa.default_memory_pool().release_unused()
    return table


def _read_pointer(path: Path) -> dict[str, Any] | None:
    """The pointer file, None when there is none; _Damaged when it is not one."""
    try:
        raw = (path / _POINTER).read_bytes()
    except FileNotFoundError:
        return None
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Damaged(f"{_POINTER} is not JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise _Damaged(f"{_POINTER} holds a {type(meta).__name__}, not an object")
    return meta


def _check_meta(meta: dict[str, Any]) -> dict[str, set[str]]:
    """The on-demand columns of a current-version pointer (checked)."""
    files, extra = meta.get("files"), meta.get("extra")
    if not isinstance(files, dict) or set(files) != set(_DATA):
        raise _Damaged(f"{_POINTER} lists the data files as {files!r}")
    if not isinstance(extra, dict):
        raise _Damaged(f"{_POINTER} lists the on-demand columns as {extra!r}")
    out: dict[str, set[str]] = {}
    for column, paths in extra.items():
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise _Damaged(f"{_POINTER} lists the files read for {column!r} as {paths!r}")
        try:
            attr = resolve(column)
        except Exception:  # noqa: BLE001 - any unknown name is damage
            raise _Damaged(f"{_POINTER} names an unknown on-demand column {column!r}") from None
        if attr.derived or attr.column != column:
            raise _Damaged(f"{_POINTER} names an on-demand column {column!r}")
        out[column] = set(paths)
    return out


def _remove_unreferenced(location: Path, keep: Iterable[str]) -> None:
    """Remove data files of other generations, temporary files and format-1 files."""
    keep = set(keep)
    try:
        entries = list(os.scandir(location))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        stale = (_DATA_NAME.match(name) and name not in keep) or name in _LEGACY
        temporary = name.startswith((_POINTER, "index-", "skipped-")) and name.endswith(".tmp")
        stale = stale or temporary
        if stale and not entry.is_dir(follow_symlinks=False):
            try:
                os.unlink(entry.path)
            except OSError:
                pass


# ---------------------------------------------------------------- the index


_EMPTY_SKIPPED: list[pd.DataFrame] = []


def _empty_skipped() -> pd.DataFrame:
    if not _EMPTY_SKIPPED:
        types = schema.SKIPPED
        arrays = [pa.array([], type=t) for t in types.values()]
        _EMPTY_SKIPPED.append(schema.from_arrow(pa.Table.from_arrays(arrays, names=list(types))))
    return _EMPTY_SKIPPED[0].copy()


class Index:
    """The persisted per-frame table of one folder.

    Use [`lazydicom.open`][lazydicom.open]; this class is the engine behind it.

    Attributes
    ----------
    root : Path
        The folder indexed.
    location : Path
        The folder holding the index files.
    table : pandas.DataFrame
        One row per frame (and one per object without pixels, ``IsImage`` False).
    skipped : pandas.DataFrame
        Files that are not indexed, with columns path, size, mtime, reason
        (size and mtime -1 for what the scan could not list: folders,
        names that are not UTF-8).
    """

    #: Where frames are read from: None for the files under ``root``, else a
    #: ``lazydicom.pixels.FrameSource`` (a remote database, e.g. ``lazydicom.dicomweb``).
    source: Any = None

    def __init__(self, root: str | os.PathLike, location: str | os.PathLike | None = None, *,
                 store: ObjectStore | None = None):
        #: The folder's object store, None for a local folder.
        self.store = store
        if store is not None:
            # nothing is read from root: it is the local folder of the index
            self.location = Path(location) if location is not None else remote_location(
                store.identity)
            self.root = self.location.absolute()
        else:
            self.root = Path(root).absolute()
            if not self.root.exists():
                scan_folder(self.root)  # raises the documented FileNotFoundError
            self.location = (Path(location) if location is not None
                             else default_location(self.root))
        self.location.mkdir(parents=True, exist_ok=True)
        disk.check_inside(self.location, self.location / _CACHE_DIR)
        self._table: pd.DataFrame | None = pd.DataFrame()
        self._arrow: pa.Table | None = None  # the loaded index, until table is first used
        self.skipped = _empty_skipped()
        #: extra columns (non-default attributes) and the files already read for them
        self.extra: dict[str, set[str]] = {}
        self._housekeeping()
        self._load()

    @property
    def address(self) -> str:
        """What the database is opened from: the folder, or a URL for a remote source."""
        return self.folder

    # -- persistence -----------------------------------------------------------

    def _housekeeping(self) -> None:
        """Finish or remove what killed processes left (writes, saves, cache fills)."""
        private = self.root / INDEX_DIRNAME
        if (self.store is None and private.is_dir() and not private.is_symlink()
                and os.access(self.root, os.W_OK)):
            commits.recover(self.root)
        if disk.open_session(self.location):
            disk.remove_partial_files(self.location / _CACHE_DIR, _PARTIAL)

    def _load(self) -> None:
        """Load the persisted index, or leave it empty (to be rebuilt) with a warning
        when it is damaged."""
        for _ in range(_LOAD_ATTEMPTS):
            try:
                meta = _read_pointer(self.location)
                if meta is None:
                    return  # no index yet
                if meta.get("version") != FORMAT_VERSION:
                    return  # another format: rebuilt, its files removed at the save
                extra = _check_meta(meta)
                arrow = _read_table(self.location, meta["files"]["index"])
                skipped = _read_table(self.location, meta["files"]["skipped"])
                schema.check_index(arrow, extra)
                schema.check_skipped(skipped)
            except FileNotFoundError:
                continue  # replaced by a concurrent save: read the new pointer
            except _Damaged as exc:
                return self._damaged(str(exc))
            except (schema.SchemaError, pa.ArrowException, OSError, ValueError) as exc:
                return self._damaged(f"{type(exc).__name__}: {exc}")
            # Converting ~90 columns to pandas costs more than the rest of a reopen;
            # it is done when the table is first used (refresh needs three columns).
            self._arrow, self._table = arrow, None
            self.skipped = schema.from_arrow(skipped)
            self.extra = extra
            self._clean(keep=[meta["files"][k]["name"] for k in _DATA])
            return
        self._damaged(f"its data files are missing (named by {_POINTER})")

    def _damaged(self, reason: str) -> None:
        warnings.warn(
            f"The index in {str(self.location)!r} is damaged ({reason}); it is rebuilt from "
            "the DICOM files.",
            DamagedIndexWarning,
            stacklevel=4,
        )

    def _clean(self, keep: Iterable[str]) -> None:
        """Remove files of unfinished saves, unless a save is running right now."""
        lock = disk.Lock(self.location / _LOCK)
        try:
            if not lock.acquire(blocking=False):
                return
        except OSError:
            return  # read-only location
        try:
            _remove_unreferenced(self.location, keep)
        finally:
            lock.release()

    @property
    def table(self) -> pd.DataFrame:
        """One row per frame (and per object without pixels); see the class docstring."""
        if self._table is None:
            # handed over, not kept: the conversion frees each column once converted
            self._table = schema.from_arrow(self._hand_over())
            pa.default_memory_pool().release_unused()  # the Arrow table's buffers
        return self._table

    @table.setter
    def table(self, value: pd.DataFrame) -> None:
        self._table, self._arrow = value, None

    def _rows(self) -> int:
        """Rows of the index (frames), without converting a loaded Arrow table."""
        if self._table is None and self._arrow is not None:
            return int(self._arrow.num_rows)
        return len(self._table) if self._table is not None else 0

    def _hand_over(self) -> pa.Table:
        """The loaded Arrow table, no longer referenced by the index."""
        arrow, self._arrow = self._arrow, None
        assert arrow is not None
        return arrow

    def save(self) -> None:
        """Persist the index: data files of a new generation, then the pointer (the commit).

        Values that do not fit their column are stored as absent and reported
        with an [`InvalidValueWarning`][lazydicom.InvalidValueWarning].
        """
        table = self.table.reset_index(drop=True)
        arrow, problems = schema.to_arrow(table, self.extra)
        skipped, _ = schema.to_arrow(self.skipped.reset_index(drop=True), types=schema.SKIPPED)
        if problems:
            _warn_values(problems, table)
        generation = uuid.uuid4().hex[:16]
        files: dict[str, dict[str, Any]] = {}
        with disk.locked(self.location / _LOCK):
            for kind, data in (("index", _arrow_bytes(arrow)), ("skipped", _arrow_bytes(skipped))):
                name = f"{kind}-{generation}.arrow"
                disk.atomic_write(self.location / name, data)
                files[kind] = {"name": name, "size": len(data), "crc32": zlib.crc32(data)}
            meta = {
                "version": FORMAT_VERSION,
                "root": self.folder,
                "files": files,
                "extra": {k: sorted(v) for k, v in self.extra.items()},
            }
            disk.atomic_write(self.location / _POINTER, json.dumps(meta).encode())
            _remove_unreferenced(self.location, [f["name"] for f in files.values()])
        # what a later open() loads, so a fresh and a reopened index are equal
        self.table = schema.from_arrow(arrow)
        self.skipped = schema.from_arrow(skipped)

    # -- refresh ------------------------------------------------------------------

    @property
    def folder(self) -> str:
        """The folder indexed: its path, or its URL in an object store."""
        return self.store.url if self.store is not None else str(self.root)

    def _known(self) -> dict[str, tuple[int, int]]:
        """(size, mtime) of every file the index has seen, indexed or skipped."""
        known: dict[str, tuple[int, int]] = {}
        if self._table is None and self._arrow is not None:  # loaded Arrow: three columns
            columns = [self._arrow.column(c).to_pylist() for c in ("path", "size", "mtime")]
            known.update(zip(columns[0], zip(columns[1], columns[2])))
        for frame in ((self.table,) if self._table is not None else ()) + (self.skipped,):
            if len(frame):
                # rows of one file repeat the same values: later ones just overwrite
                size = frame["size"].astype(np.int64)
                files = size >= 0  # not the scan's problems (folders, names)
                known.update(
                    zip(
                        frame["path"][files].tolist(),
                        zip(size[files].tolist(), frame["mtime"][files].astype(np.int64).tolist()),
                    )
                )
        return known

    def _seen(self) -> tuple[list[str], list[int], list[int]]:
        """Path, size and mtime of every file the index has seen (indexed or skipped),
        as parallel lists sorted by path, as a scan lists them.

        Equal to the scan exactly when nothing changed: a file whose rows
        disagree on its size or mtime, or that is both indexed and skipped,
        appears twice and so never equals a scan. Cheaper than ``_known``:
        no object per file.
        """
        if self._table is None and self._arrow is not None:  # loaded Arrow: three columns
            paths = self._arrow.column("path").to_pylist()
            sizes = self._arrow.column("size").to_numpy().astype(np.int64)
            mtimes = self._arrow.column("mtime").to_numpy().astype(np.int64)
        else:
            table = self.table
            paths = table["path"].tolist() if len(table) else []
            sizes = table["size"].to_numpy(dtype=np.int64) if len(table) else np.zeros(0, np.int64)
            mtimes = table["mtime"].to_numpy(dtype=np.int64) if len(table) else sizes
        if len(paths) > 1:  # the rows of a file (its frames) follow each other: keep the first
            first = np.ones(len(paths), dtype=bool)
            first[1:] = np.fromiter(map(operator.ne, paths[1:], paths[:-1]), dtype=bool,
                                    count=len(paths) - 1)
            first[1:] |= (sizes[1:] != sizes[:-1]) | (mtimes[1:] != mtimes[:-1])
            if not first.all():
                paths = list(itertools.compress(paths, first.tolist()))
                sizes, mtimes = sizes[first], mtimes[first]
        seen = (paths, sizes.tolist(), mtimes.tolist())
        skip = self.skipped
        if len(skip):
            skip = skip[skip["size"].astype(np.int64) >= 0]  # files, not the scan's problems
        if len(skip) and len(skip) <= _FEW_SKIPPED:
            # a few (a README, a DICOMDIR): each inserted at its place, no sort of all
            # (were the indexed paths not sorted, the result could not equal a scan)
            added = sorted(zip(skip["path"].tolist(), skip["size"].tolist(),
                               skip["mtime"].tolist()))
            for path, size, mtime in added:
                at = bisect.bisect_left(seen[0], path)
                seen[0].insert(at, path)
                seen[1].insert(at, int(size))
                seen[2].insert(at, int(mtime))
        elif len(skip):
            merged = [seen[k] + skip[c].tolist() for k, c in enumerate(("path", "size", "mtime"))]
            merged[1] = [int(v) for v in merged[1]]
            merged[2] = [int(v) for v in merged[2]]
            order = sorted(range(len(merged[0])), key=merged[0].__getitem__)
            paths, sizes_, mtimes_ = ([column[i] for i in order] for column in merged)
            seen = (paths, sizes_, mtimes_)
        return seen

    def refresh(self, *, progress: bool | None = None, workers: int | None = None,
                scheduler: Any = None) -> dict:
        """Bring the index in line with the folder; read only new or changed files.

        Returns
        -------
        dict
            Counts ``{"added": .., "changed": .., "removed": .., "skipped": ..}``.
        """
        if self.store is not None:
            found, seen = self.store.list_objects(), self._seen()
        elif (self._rows() >= _PARALLEL_SCAN_MIN and (workers or os.cpu_count() or 1) > 1
              and processes_allowed()):
            # a large folder: worker processes stat its sub-folders while this
            # process makes the index's own lists to compare with
            n = workers or os.cpu_count() or 1
            with process_pool(n) as pool:
                finish = start_scan(self.root, pool, n)
                seen = self._seen()
                found = finish()
        else:
            found, seen = scan_folder(self.root), self._seen()
        todo: list[FileStat] = []
        removed: set[str] = set()
        known: dict[str, tuple[int, int]] = {}
        if (found.paths, found.sizes, found.mtimes) != seen:
            # something changed: find what, file by file
            known = self._known()
            files = found.files
            on_disk = set(found.paths)
            todo = [f for f in files if known.get(f.path) != (f.size, f.mtime)]
            removed = set(known) - on_disk
        return self._apply(
            todo, removed, progress=progress, workers=workers, known=known, problems=found.problems,
            scheduler=scheduler
        )

    def sync(self, folder: str | os.PathLike) -> dict:
        """Bring the index in line with one sub-folder of the root (recursively).

        What another process wrote there since this index was read is added,
        what it removed is dropped; the rest of the folder is not walked.
        """
        self._local("sync")
        folder = Path(folder)
        disk.check_inside(self.root, folder)  # a link out of the folder is not walked
        rel = folder.relative_to(self.root).as_posix()
        prefix = "" if rel == "." else f"{rel}/"
        files = scan_folder(folder).files if folder.is_dir() else []
        files = [FileStat(prefix + f.path, f.size, f.mtime) for f in files]
        known = self._known()
        on_disk = {f.path for f in files}
        todo = [f for f in files if known.get(f.path) != (f.size, f.mtime)]
        removed = {p for p in known if p.startswith(prefix) and p not in on_disk}
        return self._apply(todo, removed, progress=False, workers=1, known=known)

    def _apply(
        self,
        todo: list[FileStat],
        removed: set[str],
        *,
        progress: bool | None,
        workers: int | None,
        known: dict | None = None,
        problems: list[tuple[str, str]] | None = None,
        scheduler: Any = None,
    ) -> dict:
        """Read ``todo``, drop ``removed`` and stale rows, save; return counts.

        ``problems`` (from a scan of the whole folder) replace the scan's rows
        of the skipped table.
        """
        known = self._known() if known is None else known
        stale = removed | {f.path for f in todo if f.path in known}
        counts = {
            "added": sum(f.path not in known for f in todo),
            "changed": sum(f.path in known for f in todo),
            "removed": len(removed),
            "skipped": 0,
        }
        skip = self.skipped
        problem_rows = [
            {"path": path, "size": -1, "mtime": -1, "reason": reason}
            for path, reason in (problems or ())
        ]
        listed = skip[skip["size"].astype(np.int64) < 0] if len(skip) else skip
        problems_changed = problems is not None and sorted(
            zip(listed["path"].tolist(), listed["reason"].tolist())
        ) != sorted((r["path"], r["reason"]) for r in problem_rows)
        if problem_rows:
            _warn_skipped(problem_rows, "file(s) or folder(s) under the folder cannot be indexed")
        if not todo and not removed and not problems_changed:
            return counts
        extra = sorted(self.extra)
        if self.store is not None:
            rows, skipped = read_objects(self.store, todo, extra, progress=progress,
                                         scheduler=scheduler)
        else:
            rows, skipped = read_files(self.root, todo, extra, workers=workers,
                                       progress=progress, scheduler=scheduler)
        table = self.table
        if stale and len(table):
            table = table[~table["path"].isin(stale)]
        if stale and len(skip):
            skip = skip[~skip["path"].isin(stale)]
        if problems is not None and len(skip):
            skip = skip[skip["size"].astype(np.int64) >= 0]
        if rows is not None:
            table = pd.concat([table, rows], ignore_index=True) if len(table) else rows
        added = skipped + (problem_rows if problems is not None else [])
        if added:
            new_skip = pd.DataFrame.from_records(added)
            skip = pd.concat([skip, new_skip], ignore_index=True) if len(skip) else new_skip
        if len(table):
            table = table.sort_values(["path", "FrameNumber"], kind="stable")
            table = table.reset_index(drop=True)
        self.table, self.skipped = table, skip.reset_index(drop=True)
        read_paths = {f.path for f in todo}
        for done in self.extra.values():
            done.difference_update(stale)
            done.update(read_paths)
        counts["skipped"] = len(skipped)
        self.save()
        if skipped:
            _warn_skipped(skipped)
        return counts

    def update_files(self, paths: Iterable[str | os.PathLike]) -> dict:
        """Re-read only ``paths`` (absolute or relative to the root), e.g. files just written.

        Faster than [`refresh`][lazydicom.Database.refresh] for a known set of files: the folder is
        not walked.
        """
        self._local("update_files")
        stats = []
        gone = set()
        for p in paths:
            p = Path(p)
            rel = (p if not p.is_absolute() else p.relative_to(self.root)).as_posix()
            try:
                st = (self.root / rel).stat()
            except FileNotFoundError:
                gone.add(rel)
                continue
            stats.append(FileStat(rel, st.st_size, st.st_mtime_ns))
        return self._apply(stats, gone, progress=False, workers=1)

    # -- on-demand columns ---------------------------------------------------------

    def _to_read(
        self,
        names: Iterable[str | int | Attribute],
        paths: Iterable[str] | Callable[[], Iterable[str]] | None,
    ) -> tuple[list[str], list[Attribute], set[str]]:
        """What ``ensure`` must read: ``(columns, missing attributes, paths)``.

        Nothing is missing (an empty list) when every column is there, or when
        the index is empty: then the new attributes are only recorded, to be
        read for every file indexed from now on, and absent columns added.
        """
        attrs = [n if isinstance(n, Attribute) else resolve(n) for n in names]
        columns = [a.column for a in attrs]
        missing = [a for a in attrs if not a.derived and a.column not in self.table.columns]
        missing += [a for a in attrs if a.column in self.extra and a not in missing]
        if not missing or not len(self.table):
            for a in missing:  # read for every file indexed from now on
                self.extra.setdefault(a.column, set())
            for a in attrs:
                if a.column not in self.table.columns:
                    self.table[a.column] = None
            return columns, [], set()
        if callable(paths):
            paths = paths()
        return columns, missing, set(self.table["path"]) if paths is None else set(paths)

    def ensure(
        self,
        names: Iterable[str | int | Attribute],
        paths: Iterable[str] | Callable[[], Iterable[str]] | None = None,
    ) -> list[str]:
        """Make sure the index holds columns for ``names``; return the column names.

        Attributes that are not kept by default (any keyword or tag, private tags
        included) are read from the headers of the files in ``paths`` (all files
        by default; a callable giving them is called only when a header must be
        read), never from pixel data, and kept in the index, typed as
        the default columns are (see ``lazydicom.schema``). A file changed
        since it was indexed is indexed again first, so its values never mix
        two versions of the file.
        """
        columns, missing, paths = self._to_read(names, paths)
        if not missing:
            return columns
        todo: dict[str, list[Attribute]] = {}
        for a in missing:
            done = self.extra.get(a.column, set())
            for p in paths - done:
                todo.setdefault(p, []).append(a)
        if not todo:
            return columns
        self._reindex_changed(todo)
        table = self.table
        for a in missing:
            if a.column not in table.columns:
                table[a.column] = pd.Series([None] * len(table), dtype=object, index=table.index)
            elif table[a.column].dtype != object:
                table[a.column] = table[a.column].astype(object)
        by_path = table.groupby("path", sort=False).indices
        for p, want in todo.items():
            positions = by_path.get(p, [])
            if not len(positions):
                continue  # removed, or skipped when indexed again
            with warnings.catch_warnings():  # pydicom's notes on odd values, as in _read_files
                warnings.simplefilter("ignore", UserWarning)
                if self.store is not None:
                    with self.store.open(p) as f:
                        values = read_attributes(f, want)
                else:
                    values = read_attributes(self.root / p, want)
            for pos, frame_values in zip(positions, values):
                for a in want:
                    table.iat[pos, table.columns.get_loc(a.column)] = frame_values.get(a.column)
        for a in missing:
            self.extra.setdefault(a.column, set()).update(paths)
        self.table = table
        self.save()
        return columns

    def _reindex_changed(self, todo: dict[str, list[Attribute]]) -> None:
        """Index again the files of ``todo`` whose size or mtime changed since indexed."""
        known = self._known()
        changed = []
        for p in todo:
            version: tuple[int, int] | None
            if self.store is not None:
                version = self.store.info(p)
            else:
                try:
                    st = (self.root / p).stat()
                    version = (st.st_size, st.st_mtime_ns)
                except OSError:
                    version = None
            if version != known.get(p):
                changed.append(p)
        if changed and self.store is not None:
            self.refresh(progress=False)
        elif changed:
            self.update_files(changed)

    def _local(self, what: str) -> None:
        if self.store is not None:
            raise InvalidArgumentError(
                f"{what} writes to the folder; {self.store.url!r} is in an object store, "
                "which lazydicom reads only"
            )


def _warn_skipped(skipped: list[dict[str, Any]], what: str = "file(s) were not indexed") -> None:
    lines = [f"  {s['path']!r}: {s['reason']}" for s in skipped[:10]]
    more = f"\n  ... and {len(skipped) - 10} more" if len(skipped) > 10 else ""
    warnings.warn(
        f"{len(skipped)} {what}:\n"
        + "\n".join(lines)
        + more
        + "\nSee Database.skipped() for the full list.",
        SkippedFilesWarning,
        stacklevel=4,
    )


def _warn_values(problems: list[schema.Problem], table: pd.DataFrame) -> None:
    paths = table["path"].tolist() if "path" in table.columns else []
    lines = [
        f"  {paths[p.row] if p.row < len(paths) else '?'!r}: {p.column}={p.value!r} "
        f"(expected {p.expected})"
        for p in problems[:10]
    ]
    more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
    warnings.warn(
        f"{len(problems)} attribute value(s) do not fit their attribute's type and are "
        "indexed as absent:\n" + "\n".join(lines) + more,
        InvalidValueWarning,
        stacklevel=4,
    )
