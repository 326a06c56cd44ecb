"""Whole shards encoded in the calling thread with the array's own zarr codecs.

Why this exists: zarr writes a shard through its asynchronous codec pipeline,
one inner chunk at a time, on one event-loop thread shared by every caller.
For the one-frame inner chunks of lazydicom's layout that costs about 0.5 ms
of Python per chunk, more than blosc-lz4 needs to compress a 512x512 int16
frame, and two writer threads get no faster than one (measured on the 2-core
VM of docs/benchmarks.md: 150 CT frames in 0.14-0.16 s through
``arr[...] = block`` with one or two threads, 0.08 s here in one thread and
0.06 s in two).

What is by hand is only the shard container of the zarr v3 sharding spec:
the encoded inner chunks one after the other, and the index of ``(offset,
nbytes)`` pairs (2**64-1 for an absent chunk) at the end or the start. The
bytes of each chunk and of the index come from the array's own codecs
(read from its metadata, so the compressor and its settings are whatever the
array was created with) through zarr's synchronous codec protocol
(``zarr.abc.codec.SupportsSyncCodec``), and the shard is stored through the
array's store. The chunks are laid out in zarr's own (Morton) order, so a
shard is byte for byte the one ``arr[...] = block`` writes
(tests/test_shards.py checks that, and reads every layout back with zarr).

[`ShardWriter.for_array`][lazydicom.io.shards.ShardWriter.for_array] returns
None for arrays this cannot write exactly (no sharding, codecs without the
synchronous protocol, array-to-array codecs, partial inner chunks); callers
then write through ``arr[...]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ShardWriter"]

_ABSENT = np.uint64(2**64 - 1)


def _sync_codecs(codecs: Sequence[Any]) -> bool:
    return all(callable(getattr(c, "_encode_sync", None)) for c in codecs)


def _chunk_order(chunks_per_shard: tuple[int, ...]) -> np.ndarray:
    """Inner chunk coordinates in the order zarr lays them out (Morton), as rows."""
    try:
        from zarr.core.indexing import morton_order_iter

        order = list(morton_order_iter(chunks_per_shard))
    except ImportError:  # pragma: no cover - older zarr: C order is valid too
        order = list(np.ndindex(*chunks_per_shard))
    return np.array(order, dtype=np.intp).reshape(len(order), len(chunks_per_shard))


@dataclass(frozen=True)
class ShardWriter:
    """Encodes and stores whole shards of one sharded zarr v3 array."""

    array: Any  # zarr.Array
    shard: tuple[int, ...]
    inner: tuple[int, ...]
    codecs: tuple[Any, ...]
    index_codecs: tuple[Any, ...]
    index_at_end: bool
    chunk_spec: Any
    index_spec: Any
    order: np.ndarray  # Morton order of the inner chunks of a whole shard

    @classmethod
    def for_array(cls, array: Any) -> ShardWriter | None:
        """A writer for ``array`` (a ``zarr.Array``), or None where it cannot be exact."""
        try:
            from zarr.abc.codec import ArrayBytesCodec, BytesBytesCodec
            from zarr.codecs import ShardingCodec
            from zarr.core.array_spec import ArrayConfig, ArraySpec
            from zarr.core.buffer import default_buffer_prototype
            from zarr.dtype import UInt64

            pipeline = array.async_array.codec_pipeline
            sharding = pipeline.array_bytes_codec
            if (array.metadata.zarr_format != 3 or pipeline.array_array_codecs
                    or pipeline.bytes_bytes_codecs or not isinstance(sharding, ShardingCodec)
                    or not _sync_codecs(sharding.codecs)
                    or not _sync_codecs(sharding.index_codecs)
                    or any(isinstance(c, ShardingCodec) for c in sharding.codecs)
                    # one serializer, then bytes codecs: the chunk spec never changes
                    or not isinstance(sharding.codecs[0], ArrayBytesCodec)
                    or not all(isinstance(c, BytesBytesCodec) for c in sharding.codecs[1:])):
                return None
            shard = tuple(int(n) for n in array.shards)
            inner = tuple(int(n) for n in sharding.chunk_shape)
            if any(s % i for s, i in zip(shard, inner, strict=True)):
                return None
            prototype = default_buffer_prototype()
            chunk_spec = ArraySpec(shape=inner, dtype=array.async_array.metadata.data_type,
                                   fill_value=array.metadata.fill_value,
                                   config=array.async_array.config, prototype=prototype)
            per_shard = tuple(s // i for s, i in zip(shard, inner, strict=True))
            index_spec = ArraySpec(shape=(*per_shard, 2), dtype=UInt64(endianness="little"),
                                   fill_value=int(_ABSENT),
                                   config=ArrayConfig(order="C", write_empty_chunks=False),
                                   prototype=prototype)
            return cls(array, shard, inner, tuple(sharding.codecs),
                       tuple(sharding.index_codecs),
                       sharding.index_location.value == "end", chunk_spec, index_spec,
                       _chunk_order(per_shard))
        except (ImportError, AttributeError, TypeError, ValueError):
            return None  # a zarr without these pieces: the caller writes through zarr

    def covers(self, where: tuple[slice, ...], shape: tuple[int, ...]) -> bool:
        """Whether ``where`` (slices of the array) is a union of whole shards."""
        full = self.array.shape
        for s, n, k, c, length in zip(where, shape, self.shard, self.inner, full, strict=True):
            start = s.start or 0
            stop = start + n
            if start % k or (stop % k and stop != length) or (stop - start) % c:
                return False
        return True

    def store_all(self, first: tuple[int, ...],
                  encoded: dict[tuple[int, ...], np.ndarray]) -> None:
        """Store the shards of ``encoded`` (inner chunks by their coordinates from the
        start of shard ``first``): each shard as ``store`` does."""
        per = [k // c for k, c in zip(self.shard, self.inner, strict=True)]
        shards: dict[tuple[int, ...], dict[tuple[int, ...], np.ndarray]] = {}
        for coords, chunk in encoded.items():
            at = tuple(f + i // p for f, i, p in zip(first, coords, per, strict=True))
            shards.setdefault(at, {})[tuple(i % p for i, p in zip(coords, per,
                                                                  strict=True))] = chunk
        for at, chunks in shards.items():
            self.store(at, chunks)

    def encode(self, data: np.ndarray, offset: Sequence[int],
               into: dict[tuple[int, ...], np.ndarray]) -> None:
        """Encode the inner chunks of ``data`` (whole chunks, C-contiguous), a part of one
        shard starting ``offset`` elements into it, into ``into[chunk coordinates]``.

        A shard can so be encoded a few frames at a time, from a buffer small
        enough to stay in the CPU's cache and to be reused (see
        ``lazydicom.io.zarr.write_shard``), and stored once complete.
        """
        from zarr.core.buffer.cpu import NDBuffer

        first = [o // c for o, c in zip(offset, self.inner, strict=True)]
        counts = [n // c for n, c in zip(data.shape, self.inner, strict=True)]
        for local in np.ndindex(*counts):
            chunk = data[tuple(slice(i * c, (i + 1) * c)
                               for i, c in zip(local, self.inner, strict=True))]
            buffer: Any = NDBuffer.from_numpy_array(np.ascontiguousarray(chunk))
            for codec in self.codecs:
                buffer = codec._encode_sync(buffer, self.chunk_spec)
            into[tuple(f + i for f, i in zip(first, local, strict=True))] = (
                buffer.as_numpy_array())

    def store(self, shard_coords: tuple[int, ...],
              encoded: dict[tuple[int, ...], np.ndarray]) -> None:
        """Lay out the ``encoded`` inner chunks of one shard (zarr's order, its index; the
        chunks not given are absent) and store the shard at ``shard_coords``."""
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.buffer.cpu import NDBuffer
        from zarr.core.sync import sync

        parts: list[np.ndarray] = []
        index = np.full((*(k // c for k, c in zip(self.shard, self.inner, strict=True)), 2),
                        _ABSENT, dtype=np.uint64)
        offset = 0
        for coords in map(tuple, self.order.tolist()):
            chunk = encoded.get(coords)
            if chunk is None:
                continue  # absent (past the array's end in an edge shard)
            index[coords] = (offset, chunk.nbytes)
            parts.append(chunk)
            offset += chunk.nbytes
        if not self.index_at_end:  # chunks follow the index: shift their offsets
            present = index[..., 0] != _ABSENT
            index[present, 0] += self._index_nbytes(index)
        encoded_index: Any = NDBuffer.from_numpy_array(index)
        for codec in self.index_codecs:
            encoded_index = codec._encode_sync(encoded_index, self.index_spec)
        head = encoded_index.as_numpy_array()
        parts = parts + [head] if self.index_at_end else [head, *parts]
        key = self.array.metadata.encode_chunk_key(shard_coords)
        value = default_buffer_prototype().buffer.from_array_like(np.concatenate(parts))
        sync((self.array.store_path / key).set(value))

    def _index_nbytes(self, index: np.ndarray) -> int:
        from zarr.core.buffer.cpu import NDBuffer

        data: Any = NDBuffer.from_numpy_array(index)
        for codec in self.index_codecs:
            data = codec._encode_sync(data, self.index_spec)
        return int(math.prod(data.as_numpy_array().shape))
