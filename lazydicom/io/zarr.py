"""Write a [`DicomFrames`][lazydicom.array.DicomFrames] to a zarr (v3) group, sharded, through zarr.

Layout of a group (``xarray.open_zarr(store, group=...)`` opens it)::

    <group>/                 attributes: the series' (JSON-safe) attributes
      pixels                 dims (*reversed(dims), "y", "x"): each frame contiguous,
                             one inner chunk per frame, shards of many frames
      SliceLocation, ...     one coordinate array per dim (and <dim>_0.. for
                             numeric multi-valued attributes)

The pixel array's dims are the grid's dims reversed, then ``(y, x)``: exactly
the memory of the Fortran-ordered ``(x, y, *dims)`` blocks lazydicom reads, so
a block is written as its transpose, a view, without copying; and each frame
is one contiguous inner chunk, as pydicom stacks frames. ``.transpose("x",
"y", ...)`` on the opened variable gives the ``(x, y, *dims)`` order of
[`Series.ndarray`][lazydicom.Series.ndarray].

Shards (zarr's sharding codec) hold many frames each, sized in bytes (16 MiB
by default), so a study of 1,000 series is about as many files as series, not
one file per frame, while a reader of one frame still reads only its chunk.
A shard is the unit of work: one task reads its frames (decoding where
needed) a few at a time into a reused buffer, and encodes them with the array's own
zarr codecs in its own thread (``lazydicom.io.shards``; zarr's asynchronous
pipeline costs more per one-frame chunk than compressing it, and does not
run two writers in parallel), blosc-lz4 by default: fast to write and to
read. Shards are written in full, so tasks never read back or lock.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidArgumentError
from .labels import cell_labels, coordinates
from .shards import ShardWriter, _sync_codecs

if TYPE_CHECKING:
    import pandas as pd
    from zarr.core.chunk_key_encodings import ChunkKeyEncodingParams

    from ..array import DicomFrames

__all__ = ["ZarrTarget", "GroupWriter", "create", "write_shard", "to_zarr",
           "packed", "COMPRESSORS"]

#: Codecs of the pixel chunks: name -> (zarr codec class path, its arguments).
COMPRESSORS = ("lz4", "zstd", "none")
_SHARD_BYTES = "16MiB"  # of frames per shard, and per task
# Frames read and encoded at a time within a shard: a buffer that stays in the
# CPU's cache and is reused, instead of a shard-sized one. On the 2-core VM of
# docs/benchmarks.md, new memory is slow to touch (the host hands pages back
# lazily): 16 MiB buffers cost about as much as 4 MiB shards saved.
_PIECE_BYTES = 2 * 1024 * 1024
PIXELS = "pixels"
# Chunk keys "c.0.0.0", files side by side, rather than zarr's default nested
# folders "c/0/0/0": a shard along the frame axis cost two new folders and a
# file, now one file (a CT series: 49 files and folders -> 31). Creating
# inodes was 12% of an extract's CPU (ext4's inode allocation, measured with
# perf on the 2-core VM of docs/benchmarks.md); on object stores, fewer keys
# to list. The v3 spec's "default" encoding, read by every zarr v3 reader.
_KEYS: ChunkKeyEncodingParams = {"name": "default", "separator": "."}


def _codec(compressor: str | None) -> Any:
    from zarr.codecs import BloscCodec, ZstdCodec

    if compressor in (None, "none"):
        return None
    if compressor == "lz4":
        return BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
    if compressor == "zstd":
        return ZstdCodec(level=1)
    raise InvalidArgumentError(f"compressor must be one of {COMPRESSORS}, not {compressor!r}")


@dataclass(frozen=True)
class ZarrTarget:
    """Where a frames array is written: a store (a path, or a zarr store for local
    writes) and the array inside it, with the shard grid over the frames' dims."""

    store: Any
    path: str
    shards: tuple[int, ...]  # along the grid dims of the frames, in their order

    def regions(self, grid_shape: tuple[int, ...]) -> Iterator[tuple[slice, ...]]:
        """The shard regions along the grid dims (Fortran order: first dim fastest)."""
        ranges = [[slice(s, min(s + k, n)) for s in range(0, n, k)] if n else [slice(0, 0)]
                  for k, n in zip(self.shards, grid_shape)]
        for combo in itertools.product(*reversed(ranges)):
            yield tuple(reversed(combo))


def packed(frames: DicomFrames) -> tuple[DicomFrames, dict[str, Any]]:
    """The stored integers and CF ``scale_factor``/``add_offset``, when that is exact.

    A CT series is int16 on disk with one RescaleSlope/Intercept (1, -1024);
    written rescaled it is float32: twice the bytes and three times the
    compression time (measured: 1.4 ms against 0.45 ms per 512x512 frame with
    blosc-lz4). When every frame has the same integer slope and intercept and
    empty cells (if any) can be marked by an integer no pixel can hold (outside
    BitsStored), the stored values are written with the netCDF/CF attributes
    ``scale_factor``, ``add_offset`` and ``_FillValue``: xarray decodes them to
    exactly the values of ``Series.ndarray`` (as
    float64, xarray's choice for scaled integers; NaN in empty cells), and
    ``mask_and_scale=False`` gives the stored integers. Otherwise ``frames`` is
    returned as is, with no attributes.
    """
    import dataclasses

    t = frames.table
    if (not frames.rescale or frames.dtype.kind != "f" or frames.colour or not len(t)
            or not (isinstance(frames.fill_value, float) and math.isnan(frames.fill_value)
                    or bool((frames.grid.cells >= 0).all()))):
        return frames, {}
    slopes, intercepts = np.unique(t.slope), np.unique(t.intercept)
    if len(slopes) != 1 or len(intercepts) != 1:
        return frames, {}
    slope, intercept = float(slopes[0]), float(intercepts[0])
    if not (slope.is_integer() and intercept.is_integer()) or slope == 0:
        return frames, {}
    formats = [t.formats[c] for c in np.unique(t.format).tolist()]
    dtype = np.result_type(*(f.dtype for f in formats))
    attrs: dict[str, Any] = {"scale_factor": slope, "add_offset": intercept}
    fill = 0
    if (frames.grid.cells < 0).any():
        bits = max(f.bits_stored for f in formats)
        if dtype.kind not in "iu" or bits >= dtype.itemsize * 8:
            return frames, {}  # every integer may be a pixel: keep float32 and NaN
        fill = int(np.iinfo(dtype).min if dtype.kind == "i" else np.iinfo(dtype).max)
        attrs["_FillValue"] = fill
    return dataclasses.replace(frames, rescale=False, dtype=dtype, fill_value=fill), attrs


def _store_location(store: Any) -> Any:
    """A path string for folders (absolute: workers' cwd differs), else the store itself."""
    if isinstance(store, str | os.PathLike):
        text = os.fspath(store)
        return text if "://" in text else os.path.abspath(text)
    return store


def create(
    frames: DicomFrames,
    store: Any,
    *,
    group: str | None = None,
    attrs: Mapping[str, Any] | None = None,
    compressor: str | None = "lz4",
    shard_bytes: str | int = _SHARD_BYTES,
    fill_value: Any = None,
    consolidate: bool = True,
    table: pd.DataFrame | None = None,
    encoding: Mapping[str, Any] | None = None,
) -> ZarrTarget:
    """Create (replace) the group of ``frames``: coordinates, attributes, an empty pixel array.

    Reads no pixel. ``fill_value`` (default: the frames' own) is what zarr
    reports for chunks never written. The attributes go on the group and on
    the pixel array (xarray shows them on the Dataset and on the variable).
    ``consolidate`` writes the store's consolidated metadata (from its root,
    as xarray reads it). With ``table`` (the index table the frames were
    selected from) the cells' geometry and presence are stored too (see
    ``lazydicom.io.labels.cell_labels``).
    """
    groups = GroupWriter(store)
    target = groups.create(frames, group=group, attrs=attrs, compressor=compressor,
                           shard_bytes=shard_bytes, fill_value=fill_value, table=table,
                           encoding=encoding)
    if consolidate:
        groups.consolidate()
    return target


class GroupWriter:
    """Makes groups of one zarr store, keeping their metadata in memory for the rest of a batch.

    Why: extraction makes a group per series, marks it complete once its
    shards are written, and consolidates the store's metadata at the end.
    Through zarr's API on the store itself, each of these reads back what was
    just written: the pixel array opened by every writer (4.5 ms), the group
    reopened to add the marker, and every ``zarr.json`` read again to
    consolidate (1.0 s for 200 series of 9 arrays). For a batch of many small
    series those reads were most of the time (measured on the 2-core VM of
    docs/benchmarks.md: 200 series of 5 frames, 40-50 ms a series). Here zarr
    makes each group in a ``MemoryStore`` that mirrors the metadata this
    writer stored (one per group: a shared one made each group's
    ``mode="w"`` list every key made before), along with zarr's metadata
    objects of its nodes; attributes are updated there and stored, and the
    consolidated metadata is built with zarr's own steps from those objects
    plus the ``zarr.json`` of every node of the store this writer did not make
    (series of earlier runs), so it describes the store as it is.

    Every operation runs on zarr's event loop (``zarr.core.sync``), so
    threads may create groups concurrently.
    """

    def __init__(self, store: Any) -> None:
        import zarr.api.asynchronous as azarr
        from zarr.core.sync import sync
        from zarr.storage import MemoryStore

        self.location = _store_location(store)
        # the root is created if missing (as extract's open_group(mode="a"))
        self.store = sync(azarr.open_group(self.location, mode="a", zarr_format=3)).store
        # group -> the mirror of what was stored, and zarr's metadata of each of its
        # nodes by path in the group ("" the group): consolidated without parsing
        self.made: dict[str, tuple[MemoryStore | None, dict[str, Any]]] = {}

    def create(
        self,
        frames: DicomFrames,
        *,
        group: str | None = None,
        attrs: Mapping[str, Any] | None = None,
        compressor: str | None = "lz4",
        shard_bytes: str | int = _SHARD_BYTES,
        fill_value: Any = None,
        table: pd.DataFrame | None = None,
        encoding: Mapping[str, Any] | None = None,
    ) -> ZarrTarget:
        """Create (replace) the group of ``frames``, as [`create`][lazydicom.io.zarr.create]
        without consolidating."""
        import asyncio

        import zarr
        import zarr.api.asynchronous as azarr
        from zarr.core.sync import sync
        from zarr.storage import MemoryStore, StorePath

        group = (group or "").strip("/")
        attrs = dict(attrs or {})
        more: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}
        if table is not None:
            more, geometry = cell_labels(table, frames)
            attrs.update(geometry)
        names = list(frames.dims[2:])
        arrays: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}  # coordinate arrays
        extra: list[str] = []
        for dim, values in zip(names, frames.grid.coords):
            for coord, (axis, data) in coordinates(dim, values).items():
                arrays[coord] = ((axis,), data)
                if coord != dim:
                    extra.append(coord)
        for coord, (axes, data) in more.items():
            arrays[coord] = (axes, data)
            if coord not in ("x", "y"):
                extra.append(coord)
        if frames.colour:
            arrays["rgb"] = (("rgb",), np.array(["R", "G", "B"], dtype=object))
            names = names[:-1]
        budget = f"{shard_bytes}B" if isinstance(shard_bytes, int) else shard_bytes
        shards = frames.chunks(budget)[2 : 2 + len(names)]
        shard = tuple(max(c) if c else 1 for c in shards)
        x, y = frames.frame_shape[:2]
        shape = (*reversed(frames.grid.shape), y, x)
        dims = (*reversed(names), "y", "x")
        inner = (1,) * len(names) + (y, x)
        outer = tuple(reversed(shard)) + (y, x)
        if frames.colour:
            shape, dims, inner, outer = (3, *shape), ("rgb", *dims), (1, *inner), (1, *outer)
        pixel_attrs = dict(attrs or {})
        pixel_attrs.update(encoding or {})
        if extra:
            pixel_attrs["coordinates"] = " ".join(extra)
        path = f"{group}/{PIXELS}" if group else PIXELS

        # The group is made in the mirror, then its objects are stored in one
        # gathered batch. Made in place, every zarr.json and coordinate chunk
        # is a round trip through zarr's event loop and, for a folder, a hop to
        # a file thread (a CT series' 9 arrays: 41-45 ms of CPU per group made
        # in place, 17-23 ms this way; measured on the 2-core VM of
        # docs/benchmarks.md, where 8 series' groups were a quarter of an
        # extract's time). Coordinates are stored uncompressed: a few hundred
        # values, nothing to gain.
        codec = _codec(compressor)  # a bad name fails here, before any coroutine exists

        async def make() -> Any:
            # made at the root of its own store (stored under ``group``): zarr
            # writes every array's parent groups with it, one level here
            mirror = MemoryStore()
            root = await azarr.open_group(mirror, mode="w", zarr_format=3, attributes=attrs)
            nodes: dict[str, Any] = {"": root.metadata}

            async def coordinate(name: str, axes: tuple[str, ...], data: np.ndarray) -> None:
                # has_frame's fill value is True: a series without empty cells (most)
                # stores no chunk for it, one file fewer (zarr reads the fill value);
                # so is a constant coordinate's (ImagePositionPatient_0 and _1 of an
                # axial series)
                fill = True if name == "has_frame" and data.dtype == bool else (
                    _constant(data))
                made = _coordinate_objects(data, axes, fill)
                if made is not None:  # like an array zarr made before
                    objects, nodes[name] = made
                    for key, value in objects.items():
                        await mirror.set(f"{name}/{key}", value)
                    return
                kind = str if data.dtype == object else data.dtype
                arr = await root.create_array(name, shape=data.shape, dtype=kind,
                                              chunks=data.shape if data.size else "auto",
                                              dimension_names=axes, compressors=None,
                                              chunk_key_encoding=_KEYS, fill_value=fill)
                nodes[name] = arr.metadata
                if data.size:
                    await arr.setitem(Ellipsis, data)
                    if fill is None or isinstance(fill, bool):  # not one constant's
                        _learn_coordinate(data, arr.metadata, fill)

            _, pixels = await asyncio.gather(
                asyncio.gather(*(coordinate(name, axes, data)
                                 for name, (axes, data) in arrays.items())),
                root.create_array(
                    PIXELS, shape=shape, dtype=frames.dtype, chunks=inner,
                    shards=outer if all(shape) else None, compressors=codec,
                    fill_value=frames.fill_value if fill_value is None else fill_value,
                    dimension_names=dims, attributes=pixel_attrs, chunk_key_encoding=_KEYS))
            self.made.pop(group, None)  # replaced: until stored, the store is the truth
            await self._store_group(group, mirror)
            nodes[PIXELS] = pixels.metadata
            self.made[group] = (mirror, nodes)
            return pixels

        pixels = sync(make())
        target = ZarrTarget(self.location, path, shard)
        # the writers' array, from the metadata just made rather than read back
        _remember(target, zarr.Array(zarr.AsyncArray(
            pixels.metadata, StorePath(self.store, path))))
        return target

    async def _store_group(self, group: str, mirror: Any) -> None:
        """Store the objects of ``group`` made in ``mirror``, replacing what was there.

        What was under ``group`` is deleted first (as zarr's ``mode="w"``);
        the parent groups are stored only where none exists, so an existing
        root keeps its attributes.
        """
        import asyncio

        import zarr.api.asynchronous as azarr
        from zarr.core.buffer import default_buffer_prototype
        from zarr.storage import LocalStore, MemoryStore

        prototype = default_buffer_prototype()
        prefix = f"{group}/" if group else ""
        items = [(prefix + key, await mirror.get(key, prototype=prototype))
                 async for key in mirror.list()]
        parts = group.split("/") if group else []
        parents = ["/".join([*parts[:i], "zarr.json"]) for i in range(1, len(parts))]
        if not group:
            await self.store.clear()
        elif not (isinstance(self.store, LocalStore)  # a new local group: nothing to list
                  and not (self.store.root / group).exists()):
            await self.store.delete_dir(group)
        if parents:  # intermediate groups, without attributes, where none exists
            empty = MemoryStore()
            await azarr.open_group(empty, mode="w", zarr_format=3)
            value = await empty.get("zarr.json", prototype=prototype)
            assert value is not None
            await asyncio.gather(*(self.store.set_if_not_exists(key, value) for key in parents))
        items = [(key, value) for key, value in items if value is not None]
        if group and isinstance(self.store, LocalStore):
            # A group's folder is new here (deleted above if it existed), and the
            # group counts only once its completion marker is added: the files
            # need none of LocalStore's temp-file-and-rename (three namespace
            # operations a file) nor a thread hop each. On the 2-core VM of
            # docs/benchmarks.md, with the file system busy after the previous
            # output was deleted, 3,400 small files took 1.1 s written plainly
            # against 3.4 s through temp files (0.21 against 0.32 s when calm);
            # in a whole extract of 200 small series the gain was within the
            # VM's noise.
            await asyncio.to_thread(_write_files, self.store.root, items)
        else:
            await asyncio.gather(*(self.store.set(key, value) for key, value in items))

    def adopt(self, group: str, nodes: dict[str, Any]) -> None:
        """Count ``group`` as made here, with zarr's metadata ``nodes`` (by path in the
        group) as a copy of this writer returned them (a forked worker's): it is
        consolidated as this writer's own. Its attributes are not updated here."""
        self.made[group.strip("/")] = (None, nodes)

    def discard(self, group: str) -> None:
        """Delete ``group`` from the store (a group left half-made), and forget it."""
        from zarr.core.sync import sync

        group = group.strip("/")
        self.made.pop(group, None)
        if group:
            sync(self.store.delete_dir(group))

    def update_attributes(self, group: str, attrs: Mapping[str, Any]) -> None:
        """Add ``attrs`` to the attributes of ``group`` (made by this writer) and store them."""
        import zarr.api.asynchronous as azarr
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync

        group = group.strip("/")
        if group not in self.made or self.made[group][0] is None:
            raise KeyError(f"group {group!r} was not made by this writer")
        mirror, nodes = self.made[group]
        assert mirror is not None
        key = f"{group}/zarr.json" if group else "zarr.json"

        async def update() -> None:
            g = await azarr.open_group(mirror, mode="r+", use_consolidated=False)
            await g.update_attributes(dict(attrs))
            nodes[""] = g.metadata
            value = await mirror.get("zarr.json", prototype=default_buffer_prototype())
            assert value is not None
            await self.store.set(key, value)

        sync(update())

    def consolidate(self) -> None:
        """zarr's consolidated metadata of the whole store (xarray opens it in one read).

        The steps of ``zarr.consolidate_metadata``, given the metadata objects
        of the nodes this writer made rather than parsing each ``zarr.json``
        again (0.8 s of 200 series' 1,800 nodes on the VM of
        docs/benchmarks.md); the store's other nodes are read as zarr reads
        them. tests/test_extract.py checks the result against
        ``zarr.consolidate_metadata`` run on the same store.
        """
        from zarr.core.group import ConsolidatedMetadata, GroupMetadata
        from zarr.core.sync import sync

        async def run() -> None:
            import dataclasses

            import zarr.api.asynchronous as azarr
            from zarr.core.buffer import default_buffer_prototype
            from zarr.storage import MemoryStore

            prototype = default_buffer_prototype()
            others = MemoryStore()  # the nodes this writer did not make
            made = tuple(f"{g}/" for g in self.made if g)
            async for key in self.store.list():
                if ((key == "zarr.json" or key.endswith("/zarr.json"))
                        and not key.startswith(made)):
                    value = await self.store.get(key, prototype=prototype)
                    if value is not None:
                        await others.set(key, value)
            if await others.get("zarr.json", prototype=prototype) is None:
                return  # no root: nothing to consolidate
            root = await azarr.open_group(others, mode="r", use_consolidated=False)
            members = {k: v.metadata async for k, v in root.members(
                max_depth=None, use_consolidated_for_children=False)}
            for group, (_, nodes) in self.made.items():
                for path, metadata in nodes.items():
                    key = "/".join(p for p in (group, path) if p)
                    if key:  # not the root itself
                        members[key] = metadata
            # as zarr.consolidate_metadata: child groups say they are consolidated
            for k, v in members.items():
                if isinstance(v, GroupMetadata) and v.consolidated_metadata is None:
                    members[k] = dataclasses.replace(
                        v, consolidated_metadata=ConsolidatedMetadata(metadata={}))
            ConsolidatedMetadata._flat_to_nested(members)
            metadata = dataclasses.replace(
                root.metadata, consolidated_metadata=ConsolidatedMetadata(metadata=members))
            await self.store.set("zarr.json", metadata.to_buffer_dict(prototype)["zarr.json"])

        sync(run())


def write_shard(frames: DicomFrames, target: ZarrTarget, region: tuple[slice, ...]) -> int:
    """Read the frames of one shard region (grid dims) and write them; returns the cells.

    A task: it carries the frames object, the target and a region, and opens
    the zarr array itself, so it runs in threads, processes or cluster workers.
    A region of whole shards (as ``ZarrTarget.regions`` makes them) is read
    and encoded ``_PIECE_BYTES`` of frames at a time, each shard stored once
    all its chunks are encoded; any other region is read whole and written
    through zarr.
    """
    arr, writer = _opened(target)
    where = (*reversed(region), slice(None), slice(None))
    if frames.colour:
        where = (slice(None), *where)
    cells = frames.grid.cells[region]
    extra = frames.frame_shape[2:]
    shape = frames.frame_shape[:2] + cells.shape + extra
    data_shape = shape[::-1]  # the block's transpose: (rgb?, *reversed(dims), y, x)
    if writer is not None and writer.covers(where, data_shape):
        frame_bytes = math.prod(frames.frame_shape) * frames.dtype.itemsize
        encoded: dict[tuple[int, ...], np.ndarray] = {}
        for piece in _pieces(region, frame_bytes, _PIECE_BYTES):
            part = frames.grid.cells[piece]
            part_shape = frames.frame_shape[:2] + part.shape + extra
            with _BUFFERS.borrow(math.prod(part_shape) * frames.dtype.itemsize) as buffer:
                block = buffer.view(frames.dtype).reshape(part_shape, order="F")
                frames.read_cells(part, out=block)  # Fortran (x, y, *cells[, 3])
                into = [p.start - r.start for p, r in zip(piece, region, strict=True)]
                writer.encode(block.T, (*[0] * len(extra), *reversed(into), 0, 0), encoded)
        writer.store_all(tuple((w.start or 0) // k for w, k in zip(where, writer.shard,
                                                                   strict=True)), encoded)
    else:  # not whole shards, or codecs ShardWriter cannot apply: through zarr
        with _BUFFERS.borrow(math.prod(shape) * frames.dtype.itemsize) as buffer:
            block = buffer.view(frames.dtype).reshape(shape, order="F")
            frames.read_cells(cells, out=block)  # Fortran (x, y, *cells[, 3])
            arr[where] = block.T  # C-contiguous: (rgb?, *reversed(dims), y, x)
    return math.prod(s.stop - s.start for s in region)


# Coordinate arrays: zarr's metadata of one array per (dtype, ndim), made by
# zarr's create_array, then reused with another shape and dims. Why: making an
# array through zarr costs about 1.1 ms of Python (dtype lookup in its
# registry, the parent groups written again, its existence checked, JSON), a
# series has 5-8 coordinate arrays, and that was the largest part of making a
# group for a batch of many small series (measured on the 2-core VM of
# docs/benchmarks.md: 12 ms a series, 200 series of 5 frames). The reused
# metadata goes through zarr's own ArrayV3Metadata (validated, serialised by
# zarr) and the one chunk through the array's own codecs; the objects are byte
# for byte those of create_array and setitem (tests/test_shards.py checks
# that). Any zarr without these pieces falls back to create_array.
_TEMPLATES: dict[tuple[str, int, Any], Any] = {}


def _constant(data: np.ndarray) -> Any:
    """The one value of a numeric ``data`` (a Python number), None when it varies or is
    NaN. As a coordinate array's fill value, zarr stores no chunk for it: one file
    fewer per constant coordinate, on file systems where each file costs (the VM of
    docs/benchmarks.md: up to 0.8 ms a file created after a previous output was
    deleted). xarray reads zarr v3 fill values as values, not as missing ones."""
    if not data.size or data.dtype.kind not in "iuf" or not data.dtype.isnative:
        return None
    first = data.reshape(-1)[0]
    if first != first or not (data == first).all():
        return None
    if data.dtype.kind == "f" and bool((np.signbit(data) != np.signbit(first)).any()):
        return None  # 0.0 and -0.0: equal, but not one value bit for bit
    return first.item()


def _learn_coordinate(data: np.ndarray, metadata: Any, fill: Any = None) -> None:
    """Keep ``metadata`` (of an array of ``data``'s dtype and ndim, made by zarr with
    the fill value ``fill``, None for zarr's default) as the template of such arrays."""
    if data.dtype != object and data.dtype.isnative:
        _TEMPLATES.setdefault((data.dtype.str, data.ndim, fill), metadata)


def _coordinate_objects(data: np.ndarray, axes: tuple[str, ...], fill: Any = None
                        ) -> tuple[dict[str, Any], Any] | None:
    """The stored objects (key -> zarr Buffer) of a one-chunk uncompressed coordinate
    array of ``data`` with the fill value ``fill``, as zarr writes them, and its
    metadata; None when no template applies."""
    template = _TEMPLATES.get((data.dtype.str, data.ndim, fill))
    other_fill = {}
    if template is None and fill is not None and not isinstance(fill, bool):
        # another fill value (a constant coordinate's own): zarr parses it as given
        template = _TEMPLATES.get((data.dtype.str, data.ndim, None))
        other_fill = {"fill_value": fill}
    if template is None or not data.size or data.dtype == object or not data.dtype.isnative:
        return None
    try:
        import dataclasses

        from zarr.core.array_spec import ArrayConfig
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.buffer.cpu import NDBuffer
        from zarr.core.chunk_grids import RegularChunkGrid

        metadata = dataclasses.replace(template, shape=data.shape,
                                       chunk_grid=RegularChunkGrid(chunk_shape=data.shape),
                                       dimension_names=axes, **other_fill)
        prototype = default_buffer_prototype()
        objects = {"zarr.json": metadata.to_buffer_dict(prototype)["zarr.json"]}
        spec = metadata.get_chunk_spec((0,) * data.ndim,
                                       ArrayConfig(order="C", write_empty_chunks=False),
                                       prototype)
        chunk: Any = NDBuffer.from_numpy_array(np.ascontiguousarray(data))
        if not _sync_codecs(metadata.codecs):
            return None
        if not chunk.all_equal(spec.fill_value):  # zarr stores no chunk of the fill value
            for codec in metadata.codecs:
                chunk = codec._encode_sync(chunk, spec)
            objects[metadata.encode_chunk_key((0,) * data.ndim)] = chunk
        return objects, metadata
    except (ImportError, AttributeError, TypeError, ValueError):
        return None


def _write_files(root: Any, items: list[tuple[str, Any]]) -> None:
    """Write zarr ``Buffer`` values at their keys under the folder ``root`` (a Path),
    as LocalStore maps keys to paths."""
    folders: set[Any] = set()
    for key, value in items:
        path = root / key
        if path.parent not in folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            folders.add(path.parent)
        with open(path, "wb") as f:
            f.write(value.as_buffer_like())


def _pieces(region: tuple[slice, ...], frame_bytes: int, limit: int
            ) -> Iterator[tuple[slice, ...]]:
    """``region`` (grid dims) in parts of about ``limit`` bytes of frames, each
    contiguous in the Fortran block of the region: the first dims whole, a run
    along the next, single positions along the rest (at least one frame each)."""
    sizes = [s.stop - s.start for s in region]
    whole, j = 1, 0  # cells in the whole first j dims
    while j < len(sizes) and whole * sizes[j] * frame_bytes <= limit:
        whole *= sizes[j]
        j += 1
    if j == len(sizes):
        yield region
        return
    run = max(1, limit // (whole * frame_bytes))
    for outer in itertools.product(*(range(n) for n in sizes[j + 1:])):
        for a in range(0, sizes[j], run):
            yield (*region[:j],
                   slice(region[j].start + a, region[j].start + min(a + run, sizes[j])),
                   *(slice(r.start + o, r.start + o + 1)
                     for r, o in zip(region[j + 1:], outer, strict=True)))


def _opened(target: ZarrTarget) -> tuple[Any, ShardWriter | None]:
    """The target's zarr array and shard writer, opened once per target object.

    Opening the array reads its metadata through zarr's event loop: 4.5 ms a
    shard beside busy writer threads (0.18 s of a 40-shard CT extract). Keyed
    by the object (kept alive with it, so its id is not reused): a group made
    again is a new target and opened again.
    """
    import zarr

    with _OPENED_LOCK:
        found = _OPENED.get(id(target))
    if found is not None and found[0] is target:
        return found[1], found[2]
    return _remember(target, zarr.open_array(target.store, path=target.path, mode="r+"))


def _remember(target: ZarrTarget, arr: Any) -> tuple[Any, ShardWriter | None]:
    """Keep ``arr`` and its shard writer as the target's; returns them."""
    arr = arr.with_config({"write_empty_chunks": True})  # never compare chunks with the fill
    writer = ShardWriter.for_array(arr)
    with _OPENED_LOCK:
        _OPENED[id(target)] = (target, arr, writer)
        while len(_OPENED) > 8:  # the oldest first (dicts keep insertion order)
            del _OPENED[next(iter(_OPENED))]
    return arr, writer


_OPENED: dict[int, tuple[ZarrTarget, Any, ShardWriter | None]] = {}
_OPENED_LOCK = threading.Lock()


class _BufferPool:
    """Byte buffers for a piece of a shard, reused across write tasks (at most ``keep`` kept).

    Written by hand because the cost it avoids is the kernel's, not Python's:
    every fresh numpy array of frames is new pages, and first-touch page faults
    (with transparent huge pages, zeroing and compaction) cost as much as
    reading the frames from the page cache (measured on the 2-core VM of
    docs/benchmarks.md: 150 CT frames read in 0.05-0.24 s into fresh arrays,
    0.03 s into a reused one). The frames are encoded (by ShardWriter or
    zarr) before the buffer is given back, so it is free right after.
    """

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.free: list[np.ndarray] = []
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def borrow(self, nbytes: int) -> Iterator[np.ndarray]:
        """A uint8 buffer of ``nbytes`` for the ``with`` block (not to be kept after it)."""
        free, buffer = self.free, None
        with self.lock:
            fits = [i for i, b in enumerate(free) if b.nbytes >= nbytes]
            if fits:  # the smallest that fits (by position: arrays do not compare)
                buffer = free.pop(min(fits, key=lambda i: free[i].nbytes))
        if buffer is None:
            buffer = np.empty(nbytes, dtype=np.uint8)
        try:
            yield buffer[:nbytes]
        finally:
            with self.lock:
                free.append(buffer)
                if len(free) > self.keep:  # keep the largest
                    free.pop(min(range(len(free)), key=lambda i: free[i].nbytes))


# one per writer thread (extract runs cores + 1) up to 5: a few MiB held once done
_BUFFERS = _BufferPool(keep=min((os.cpu_count() or 1) + 1, 5))


def to_zarr(
    frames: DicomFrames,
    store: Any,
    *,
    group: str | None = None,
    attrs: Mapping[str, Any] | None = None,
    compressor: str | None = "lz4",
    shard_bytes: str | int = _SHARD_BYTES,
    compute: bool = True,
    scheduler: Any = None,
    table: pd.DataFrame | None = None,
    pack: bool = True,
) -> Any:
    """Write ``frames`` to a zarr group (see the module docstring for the layout).

    Parameters
    ----------
    frames : DicomFrames
    store : str, PathLike or zarr store
        A folder (or URL) every worker can reach for dask.distributed.
    group : str, optional
        Subgroup to write into (replaced if it exists).
    attrs : mapping, optional
        Group attributes (e.g. ``lazydicom.io.labels.series_attrs``).
    compressor : {'lz4', 'zstd', 'none'}
        blosc-lz4 (default), zstd level 1, or none.
    shard_bytes : str or int
        Bytes of frames per shard (and per task), default ``"16MiB"``.
    compute : bool
        False returns a ``dask.delayed`` object whose ``.compute()`` writes the
        pixels (the group, coordinates and attributes are written at once).
    scheduler : optional
        As ``dask.compute(scheduler=...)``.
    table : pandas.DataFrame, optional
        The index table the frames were selected from, for the cells' geometry
        (x/y in mm, ImagePositionPatient, ``has_frame``, ``affine``).
    pack : bool
        Write stored integers with CF ``scale_factor``/``add_offset`` where
        that is exact (see ``packed``); False writes the rescaled floats.

    Returns
    -------
    None, or with ``compute=False`` a dask Delayed.
    """
    import dask
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    frames, encoding = packed(frames) if pack else (frames, {})
    target = create(frames, store, group=group, attrs=attrs, compressor=compressor,
                    shard_bytes=shard_bytes, table=table, encoding=encoding)
    token = dask.base.tokenize(frames.token, target.store if isinstance(target.store, str)
                               else id(target.store), target.path, target.shards)
    source, name = f"lazydicom-frames-{token}", f"lazydicom-write-{token}"
    graph: dict[Any, Any] = {source: frames}
    keys = []
    for i, region in enumerate(target.regions(frames.grid.shape)):
        if any(s.stop == s.start for s in region):
            continue
        graph[(name, i)] = (write_shard, source, target, region)
        keys.append((name, i))
    graph[name] = (sum, keys)
    writes = Delayed(name, HighLevelGraph.from_collections(name, graph, dependencies=()))
    if not compute:
        return writes
    writes.compute(scheduler=scheduler)
    return None
