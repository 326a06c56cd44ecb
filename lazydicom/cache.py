"""The frame cache: decoded frames kept in a zarr store, read-through and write-through.

Decoding a compressed frame costs tens of milliseconds; reading it back from
the cache costs a fraction of one. [`FrameCache`][lazydicom.cache.FrameCache] is a small picklable
handle (a store path, or a zarr store object, and a few options) that every
read task carries; each process opens the store itself on first use.

Layout. The cache is a zarr v3 group (``zarr.open_group(path)`` browses it)
with one array per frame, at ``<key[:2]>/<key>``. The key is a hash of the
frame's file path, frame number, file size and modification time (ns), so it
does not depend on the dims or selection that asked for the frame, and any
later array of any shape reuses it; a file rewritten in place (new pixels, new
SOPInstanceUID) gets a new mtime and hence new keys, so its stale entries are
never served. The array is ``(rows, columns[, 3])`` as pydicom's
``pixel_array`` gives it, one chunk, compressed with blosc-lz4 by default.

What is cached. The STORED values (after decoding and palette lookup, before
RescaleSlope/Intercept); ``read_frames`` applies rescale
on the way into the array, exactly as for a frame read from DICOM, so one
entry serves ``rescale=True`` and ``rescale=False`` and values are
bit-identical with and without the cache.

Native frames. An uncompressed frame is one positioned read of its bytes,
already at the raw-read limit, so by default the cache leaves native frames
alone (``native=False``): with the cache on, the uncompressed path does exactly
what it does with the cache off. ``native=True`` caches them too (useful when
the DICOM files sit on a slow network share and the cache on a local disk).

Integrity. An entry is written chunk first, then its ``zarr.json`` (the commit
marker), each as one atomic store write (LocalStore writes a temporary file
and renames it). ``zarr.json`` carries the source identity and the CRC-32 and
length of the chunk. A read checks all of them: a missing, partial, torn or
corrupt entry, or one written for another file version, is a miss, and the
frame is re-read from DICOM and written again. Workers racing to fill the same
entry write identical bytes, so the last rename wins harmlessly. Before
serving a hit the source file is ``stat``-ed (never opened): if its size or
mtime no longer match the index, the frame is read from DICOM as it would be
without a cache.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import CacheWarning
from .pixels import FrameTable

#: A frame's file version: ``(path, 0-based frame index, size, mtime in ns)``.
Identity = tuple[str, int, int, int]

__all__ = ["FrameCache", "CacheWarning", "open_cache", "CACHE_FORMAT"]

#: Bumped when the entry layout changes; entries of another format are misses.
CACHE_FORMAT = 1
_COMPRESSORS = ("lz4", "zstd", None)
_LOCK = threading.Lock()
_STORES: dict[str, Any] = {}  # per-process open stores, by location
_TEMPLATES: dict[tuple, dict] = {}  # zarr.json templates by (shape, dtype, compressor)
_KNOWN_SHARDS: set[tuple[str, str]] = set()  # shard groups written by this process
_WRITE_FAILED: set[str] = set()  # caches this process could not write (warned once)


@dataclass(frozen=True, eq=False)
class FrameCache:
    """A picklable handle on a zarr store of decoded frames.

    Parameters
    ----------
    location : str or zarr store
        A folder (a zarr LocalStore is opened there in each process) or any
        zarr v3 store object (it must pickle to reach other processes, and
        be shared storage to be shared by them).
    native : bool, optional
        Also cache uncompressed frames (default False: they are read
        directly, which is as fast as reading the cache).
    compressor : {'lz4', 'zstd', None}, optional
        Codec of the cached chunks (blosc-lz4 by default: fast to decode).
    verify : bool, optional
        ``stat`` the source file before serving a hit and bypass the cache
        if it changed since it was indexed (default True; no file is opened).

    Examples
    --------
    >>> import pickle, tempfile
    >>> cache = FrameCache(tempfile.mkdtemp())
    >>> pickle.loads(pickle.dumps(cache)).location == cache.location
    True
    """

    location: Any
    native: bool = False
    compressor: str | None = "lz4"
    verify: bool = True
    _stats: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.compressor not in _COMPRESSORS:
            raise ValueError(
                f"compressor must be one of {_COMPRESSORS}, got {self.compressor!r}"
            )
        if isinstance(self.location, str | os.PathLike):  # absolute: workers' cwd differs
            object.__setattr__(self, "location", os.path.abspath(os.fspath(self.location)))

    def __getstate__(self) -> dict:
        return {"location": self.location, "native": self.native,
                "compressor": self.compressor, "verify": self.verify}

    def __setstate__(self, state: dict) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "_stats", {})

    # -- store -----------------------------------------------------------------

    def store(self) -> Any:
        """The zarr store, opened once per process."""
        if not isinstance(self.location, str):
            return self.location
        return _local_store(self.location)

    def create(self) -> FrameCache:
        """Create the cache's root group if needed; returns self."""
        try:
            if _get(self.store(), "zarr.json") is None:
                _set(self.store(), "zarr.json", _group_json(
                    {"lazydicom_cache": {"format": CACHE_FORMAT,
                                         "about": "decoded DICOM frames; safe to delete"}}))
        except OSError as exc:
            warnings.warn(f"Cannot create the frame cache at {self.location!r} ({exc}); "
                          "frames will be read from DICOM", CacheWarning, stacklevel=3)
        return self

    def group(self):
        """The cache as a ``zarr.Group`` (for inspection)."""
        import zarr

        return zarr.open_group(self.store(), mode="r")

    # -- entries ---------------------------------------------------------------

    @property
    def token(self) -> str:
        """What identifies this cache in dask keys."""
        return f"{self._where()}|{self.native}|{self.compressor}|{self.verify}"

    @staticmethod
    def key(identity: Identity) -> str:
        """The entry name of a frame: a hash of its file version and frame number."""
        path, index, size, mtime = identity
        return hashlib.sha1(f"{path}\0{index}\0{size}\0{mtime}".encode()).hexdigest()

    def _path(self, identity: Identity) -> str:
        k = self.key(identity)
        return f"{k[:2]}/{k}"

    def caches(self, encapsulated: bool) -> bool:
        """Whether frames of this kind are cached (native ones only with ``native=True``)."""
        return self.native or encapsulated

    def get(self, identity: Identity) -> np.ndarray | None:
        """The cached stored values ``(rows, cols[, 3])`` of a frame, or None on a miss.

        With ``verify`` (the default) the source file is ``stat``-ed first and
        a changed file is a miss (counted as "bypass"). Remote frames (a URL
        path) are keyed by the version their index recorded; a refresh of the
        index changes it.
        """
        path, _, size, mtime = identity
        if size < 0 or mtime < 0:
            return None  # file version unknown: no safe key
        if self.verify and "://" not in path and not _unchanged(path, size, mtime):
            self._count("bypass")
            return None
        arr = self._lookup(identity)
        self._count("miss" if arr is None else "hit")
        return arr

    def _lookup(self, identity: Identity) -> np.ndarray | None:
        store = self.store()
        base = self._path(identity)
        raw = _get(store, f"{base}/zarr.json")
        if raw is None:
            return None
        try:
            meta = json.loads(raw)
            info = meta["attributes"]["lazydicom"]
            if info["source"] != _identity(identity) or info["format"] != CACHE_FORMAT:
                return None
            shape = tuple(meta["shape"])
            dtype = np.dtype(meta["data_type"]).newbyteorder("<")
            names = [c["name"] for c in meta["codecs"]]
        except (ValueError, KeyError, TypeError):
            return None  # unreadable or foreign metadata: a miss, rewritten below
        chunk = _get(store, f"{base}/c" + "/0" * len(shape))
        if chunk is None or len(chunk) != info["nbytes"] or zlib.crc32(chunk) != info["crc32"]:
            return None
        try:
            if names == ["bytes"]:
                data = chunk
            elif names == ["bytes", "blosc"]:
                from numcodecs import blosc

                data = blosc.decompress(chunk)
            elif names == ["bytes", "zstd"]:
                from numcodecs import Zstd

                data = Zstd().decode(chunk)
            else:
                return None
        except Exception:  # noqa: BLE001 - a codec error is a corrupt entry
            return None
        if len(data) != int(np.prod(shape)) * dtype.itemsize:
            return None
        return np.frombuffer(data, dtype=dtype).reshape(shape)

    def put(self, identity: Identity, frame: np.ndarray) -> None:
        """Write a frame's stored values ``(rows, cols[, 3])``, chunk first, metadata last.

        A failed write warns with [`CacheWarning`][lazydicom.CacheWarning] once and stops this
        process writing to that cache; the read itself is not affected.
        """
        where = self._where()
        if where in _WRITE_FAILED:  # after one failed write, stop trying (and warning)
            return
        try:
            self._write(identity, frame)
        except OSError as exc:
            _WRITE_FAILED.add(where)
            warnings.warn(f"Cannot write frame {identity[1] + 1} of {identity[0]!r} to the "
                          f"cache at {self.location!r}: {exc}; not writing to it again in "
                          "this process", CacheWarning, stacklevel=3)

    def _write(self, identity: Identity, frame: np.ndarray) -> None:
        store = self.store()
        data = np.ascontiguousarray(frame)
        data = data.astype(data.dtype.newbyteorder("<"), copy=False)
        if self.compressor == "lz4":
            from numcodecs import blosc

            chunk = bytes(blosc.compress(data, b"lz4", 5, blosc.SHUFFLE))
        elif self.compressor == "zstd":
            from numcodecs import Zstd

            chunk = bytes(Zstd(level=1).encode(data))
        else:
            chunk = data.tobytes()
        meta = copy.deepcopy(_template(data.shape, data.dtype, self.compressor))
        meta["attributes"] = {"lazydicom": {
            "format": CACHE_FORMAT, "source": _identity(identity),
            "nbytes": len(chunk), "crc32": zlib.crc32(chunk),
        }}
        base = self._path(identity)
        shard = base.split("/")[0]
        location = self._where()
        if (location, shard) not in _KNOWN_SHARDS:
            if _get(store, f"{shard}/zarr.json") is None:
                _set(store, f"{shard}/zarr.json", _group_json({}))
            _KNOWN_SHARDS.add((location, shard))
        _set(store, f"{base}/c" + "/0" * data.ndim, chunk)
        _set(store, f"{base}/zarr.json", json.dumps(meta).encode())

    def _where(self) -> str:
        return self.location if isinstance(self.location, str) else f"store-{id(self.location)}"

    def _count(self, what: str) -> None:
        with _LOCK:
            self._stats[what] = self._stats.get(what, 0) + 1

    def stats(self) -> dict[str, int]:
        """Hits, misses and bypasses of this handle in this process (for tests and tuning)."""
        return dict(self._stats)

    # -- housekeeping ----------------------------------------------------------

    def entries(self) -> list[str]:
        """Names (keys) of the entries in the cache, committed or not."""
        return sorted({k.split("/")[1] for k in _list(self.store()) if k.count("/") >= 2})

    def prune(self, frames: FrameTable) -> int:
        """Delete entries that are not the current version of one of ``frames``; returns the count.

        Entries of files that changed or were removed are never served, only
        kept; ``cache.prune(db.series()[0].frames(...).table)`` or a table of
        every frame reclaims them.
        """
        keep = {self.key(frames.identity(i)) for i in range(len(frames))}
        removed = 0
        for key in self.entries():
            if key not in keep:
                _delete_prefix(self.store(), f"{key[:2]}/{key}")
                removed += 1
        return removed

    def clear(self) -> None:
        """Delete every entry (the root group stays)."""
        for key in self.entries():
            _delete_prefix(self.store(), f"{key[:2]}/{key}")


def open_cache(spec: Any, default_location: str | os.PathLike) -> FrameCache | None:
    """The cache for ``lazydicom.open(..., cache=spec)``.

    ``None``/``False``: no cache. ``True``: ``default_location``. A path: a
    zarr store in that folder. A zarr store: used as is. A
    [`FrameCache`][lazydicom.cache.FrameCache]: used as is (to set ``native``, ``compressor`` or
    ``verify``).
    """
    if spec is None or spec is False:
        return None
    if isinstance(spec, FrameCache):
        cache = spec
    elif spec is True:
        cache = FrameCache(os.fspath(default_location))
    elif isinstance(spec, str | os.PathLike):
        cache = FrameCache(spec)
    elif hasattr(spec, "get") and hasattr(spec, "set"):
        cache = FrameCache(spec)
    else:
        raise TypeError(
            f"cache must be True, a folder path, a zarr store or a FrameCache, not {spec!r}"
        )
    return cache.create()


# ---------------------------------------------------------------- helpers


def _identity(identity: Identity) -> list:
    path, index, size, mtime = identity
    return [path, index + 1, size, mtime]


def _unchanged(path: str, size: int, mtime: int) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_size == size and st.st_mtime_ns == mtime


def _template(shape: tuple[int, ...], dtype: np.dtype, compressor: str | None) -> dict:
    """The zarr.json zarr itself writes for a one-chunk array of this kind."""
    key = (shape, dtype.str, compressor)
    meta = _TEMPLATES.get(key)
    if meta is None:
        import zarr
        from zarr.codecs import BloscCodec, ZstdCodec
        from zarr.storage import MemoryStore

        codec = {
            "lz4": BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),
            "zstd": ZstdCodec(level=1),
            None: None,
        }[compressor]
        store = MemoryStore()
        zarr.create_array(store, name="t", shape=shape, chunks=shape, dtype=dtype,
                          fill_value=0, compressors=codec,
                          chunk_key_encoding={"name": "default", "separator": "/"})
        meta = json.loads(_get(store, "t/zarr.json") or b"{}")
        _TEMPLATES[key] = meta
    return meta


def _local_store(location: str) -> Any:
    """The zarr LocalStore of a folder, opened once per process."""
    store = _STORES.get(location)
    if store is None:
        from zarr.storage import LocalStore

        with _LOCK:
            store = _STORES.get(location)
            if store is None:
                store = _STORES[location] = LocalStore(location)
    return store


def _group_json(attributes: dict) -> bytes:
    return json.dumps({"zarr_format": 3, "node_type": "group",
                       "attributes": attributes}).encode()


def _get(store: Any, key: str) -> bytes | None:
    get_sync = getattr(store, "get_sync", None)
    if get_sync is not None:
        buf = get_sync(key)
    else:
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync

        buf = sync(store.get(key, default_buffer_prototype()))
    return None if buf is None else buf.to_bytes()


def _set(store: Any, key: str, value: bytes) -> None:
    from zarr.core.buffer import default_buffer_prototype

    buf = default_buffer_prototype().buffer.from_bytes(value)
    set_sync = getattr(store, "set_sync", None)
    if set_sync is not None:
        set_sync(key, buf)
    else:
        from zarr.core.sync import sync

        sync(store.set(key, buf))


def _list(store: Any) -> list[str]:
    from zarr.core.sync import sync

    async def collect() -> list[str]:
        return [k async for k in store.list()]

    return sync(collect())


def _delete_prefix(store: Any, prefix: str) -> None:
    from zarr.core.sync import sync

    sync(store.delete_dir(prefix))
