"""Whole-shard writes (lazydicom.io.shards) against zarr's own writes of the same data.

The reference is zarr itself: the same block written through ``arr[...] =``
into an array of the same metadata must give byte-identical shard files, and
zarr must read back exactly the block.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

from zarr.codecs import BloscCodec, ShardingCodecIndexLocation, ZstdCodec  # noqa: E402

from lazydicom.io.shards import ShardWriter  # noqa: E402


def _write(writer: ShardWriter, block: np.ndarray, where: tuple[slice, ...]) -> None:
    """Encode every inner chunk of ``block`` and store its whole shards at ``where``."""
    encoded: dict = {}
    writer.encode(block, (0,) * block.ndim, encoded)
    writer.store_all(tuple((s.start or 0) // k for s, k in zip(where, writer.shard)), encoded)


def _files(root: str) -> dict[str, bytes]:
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            if name != "zarr.json":
                path = os.path.join(folder, name)
                with open(path, "rb") as f:
                    out[os.path.relpath(path, root)] = f.read()
    return out


LAYOUTS = [
    # shape, inner chunk, shard, dtype, compressor
    pytest.param((12, 16, 8), (1, 16, 8), (4, 16, 8), "int16",
                 BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"), id="frames-lz4"),
    pytest.param((10, 16, 8), (1, 16, 8), (4, 16, 8), "int16",
                 BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"), id="edge-shard"),
    pytest.param((3, 5, 7, 6, 4), (1, 1, 1, 6, 4), (1, 2, 3, 6, 4), "float32",
                 ZstdCodec(level=1), id="3-dims-zstd-two-edges"),
    pytest.param((3, 4, 6, 5), (1, 1, 6, 5), (1, 4, 6, 5), "uint8", None, id="rgb-none"),
    pytest.param((9, 4, 4), (1, 4, 4), (9, 4, 4), ">u2",
                 BloscCodec(cname="zstd", clevel=1, shuffle="bitshuffle"), id="big-endian"),
]


@pytest.mark.parametrize("index_location", ["end", "start"])
@pytest.mark.parametrize(("shape", "inner", "shard", "dtype", "compressor"), LAYOUTS)
def test_whole_shards_equal_zarrs_own_bytes_and_read_back(tmp_path, shape, inner, shard, dtype,
                                                          compressor, index_location):
    data = np.random.default_rng(7).integers(0, 200, size=shape).astype(dtype)

    def make(name: str):
        return zarr.create_array(
            str(tmp_path / name), shape=shape, dtype=dtype, chunks=inner, shards=shard,
            compressors=compressor, fill_value=0, config={"write_empty_chunks": True},
            serializer="auto" if index_location == "end" else zarr.codecs.BytesCodec())

    reference, ours = make("zarr.zarr"), make("ours.zarr")
    if index_location == "start":  # rebuild both with the index first
        for name in ("zarr.zarr", "ours.zarr"):
            zarr.create_array(
                str(tmp_path / name), shape=shape, dtype=dtype, overwrite=True,
                chunks=shard, compressors=None, fill_value=0,
                serializer=zarr.codecs.ShardingCodec(
                    chunk_shape=inner,
                    codecs=[zarr.codecs.BytesCodec(), *([compressor] if compressor else [])],
                    index_location=ShardingCodecIndexLocation.start),
                config={"write_empty_chunks": True})
        reference = zarr.open_array(str(tmp_path / "zarr.zarr"), mode="r+")
        ours = zarr.open_array(str(tmp_path / "ours.zarr"), mode="r+")
    reference[...] = data

    writer = ShardWriter.for_array(ours)
    assert writer is not None  # this zarr has the synchronous codecs: the fast path is taken
    where = tuple(slice(0, n) for n in shape)
    assert writer.covers(where, data.shape)
    _write(writer, data, where)

    assert _files(str(tmp_path / "ours.zarr")) == _files(str(tmp_path / "zarr.zarr"))
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "ours.zarr"))[...], data)


def test_a_region_of_whole_shards_is_written_alone(tmp_path):
    """Writing one shard region leaves the others absent (fill value) and is read back."""
    data = np.arange(12 * 4 * 4, dtype=np.int32).reshape(12, 4, 4)
    arr = zarr.create_array(str(tmp_path / "a.zarr"), shape=data.shape, dtype="int32",
                            chunks=(1, 4, 4), shards=(4, 4, 4), fill_value=-1)
    writer = ShardWriter.for_array(arr)
    where = (slice(4, 8), slice(None), slice(None))
    assert writer.covers(where, (4, 4, 4))
    _write(writer, data[4:8], where)
    back = zarr.open_array(str(tmp_path / "a.zarr"))[...]
    np.testing.assert_array_equal(back[4:8], data[4:8])
    assert (back[:4] == -1).all() and (back[8:] == -1).all()


def test_regions_that_are_not_whole_shards_are_declined(tmp_path):
    arr = zarr.create_array(str(tmp_path / "a.zarr"), shape=(10, 4, 4), dtype="int16",
                            chunks=(1, 4, 4), shards=(4, 4, 4), fill_value=0)
    writer = ShardWriter.for_array(arr)
    assert not writer.covers((slice(2, 6), slice(None), slice(None)), (4, 4, 4))  # unaligned
    assert not writer.covers((slice(0, 3), slice(None), slice(None)), (3, 4, 4))  # part
    assert writer.covers((slice(8, 10), slice(None), slice(None)), (2, 4, 4))  # the edge shard


def test_arrays_it_cannot_write_exactly_get_none(tmp_path):
    unsharded = zarr.create_array(str(tmp_path / "u.zarr"), shape=(4, 4), dtype="int16",
                                  chunks=(1, 4))
    assert ShardWriter.for_array(unsharded) is None
    filtered = zarr.create_array(str(tmp_path / "f.zarr"), shape=(4, 4), dtype="int16",
                                 chunks=(1, 4), shards=(2, 4),
                                 filters=[zarr.codecs.TransposeCodec(order=(1, 0))])
    assert ShardWriter.for_array(filtered) is None


@pytest.mark.parametrize("piece_frames", [1, 3, 7, 100],
                         ids=["1-frame", "3-frames", "a-column", "whole"])
@pytest.mark.parametrize("colour", [False, True], ids=["grey", "rgb"])
def test_write_shard_takes_the_whole_shard_path_for_lazydicoms_layout(tmp_path, monkeypatch,
                                                                     colour, piece_frames):
    """Every shard of extract's layout is stored by ShardWriter, none through arr[...];
    shards read and encoded a few frames at a time (pieces across both dims, edge
    shards) are byte for byte the shards zarr writes from the whole array."""
    import lazydicom
    from lazydicom.io import zarr as lzarr
    from tests.synthetic import expected_ndarray, write_series

    coords = {"SliceLocation": [3.0, 1.0, 2.0, 0.0, 4.0], "EchoTime": [5.0, 9.0, 7.0]}
    samples, dtype = (3, "uint8") if colour else (1, "uint16")
    write_series(tmp_path / "dicom", coords, (6, 4), samples_per_pixel=samples, dtype=dtype)
    (series,) = lazydicom.open(tmp_path / "dicom", progress=False).series()
    frames = series.frames(list(coords))
    # 5 slices x 2 echo times per shard: an edge shard along the echo times
    target = lzarr.create(frames, str(tmp_path / "out.zarr"),
                          shard_bytes=frames.frame_nbytes * 10)
    assert target.shards == (5, 2)
    monkeypatch.setattr(lzarr, "_PIECE_BYTES", frames.frame_nbytes * piece_frames)
    stored = []
    real = ShardWriter.store
    monkeypatch.setattr(ShardWriter, "store",
                        lambda self, at, chunks: stored.append(at) or real(self, at, chunks))
    monkeypatch.setattr(zarr.Array, "__setitem__", lambda *a: pytest.fail("zarr wrote a shard"))
    regions = list(target.regions(frames.grid.shape))
    for region in regions:
        lzarr.write_shard(frames, target, region)
    # a shard per region, three for colour (one per sample: shards hold one of R, G, B)
    assert len(stored) == len(set(stored)) == len(regions) * (3 if colour else 1)
    assert len(regions) == 2
    monkeypatch.undo()
    back = zarr.open_array(str(tmp_path / "out.zarr"), path="pixels")
    expected = expected_ndarray(coords, (6, 4), samples_per_pixel=samples, dtype=dtype)
    np.testing.assert_array_equal(back[...].T, expected)
    reference = zarr.create_array(str(tmp_path / "zarr.zarr"), shape=back.shape,
                                  dtype=back.dtype, chunks=back.chunks, shards=back.shards,
                                  compressors=back.compressors, fill_value=back.fill_value,
                                  chunk_key_encoding={"name": "default", "separator": "."},
                                  config={"write_empty_chunks": True})
    reference[...] = expected.T
    assert _files(str(tmp_path / "out.zarr" / "pixels")) == _files(str(tmp_path / "zarr.zarr"))


COORDINATES = [
    np.array([3.5, -1.0, 2.25]),
    np.array([0.0, 0.0]),  # all fill value: zarr stores no chunk
    np.array([-0.0, 0.0]),  # -0.0 is not the fill value 0.0 bit for bit
    np.array([np.nan, 1.0, np.nan]),
    np.arange(6, dtype=np.int64).reshape(2, 3),
    np.arange(4, dtype=">i4"),  # big-endian input, stored little-endian
    np.array([[True, False], [True, True]]),
    np.zeros((2, 2, 2), dtype=bool),
    np.array([7], dtype=np.uint16),
]


@pytest.mark.parametrize(("data", "fill"), [(d, None) for d in COORDINATES] + [
    (np.ones((3, 2), dtype=bool), True),  # has_frame of a complete series: no chunk
    (np.array([True, False, True]), True),
    # a constant coordinate's own value as its fill value (ImagePositionPatient_0 of an
    # axial series), from the template of fill None
    (np.full(3, -127.5), -127.5),
    (np.full((2, 2), 7, dtype=np.int64), 7),
    (np.array([-0.0, -0.0]), -0.0),
    (np.array([2.0, 3.0]), 2.0),  # not constant: a chunk with the 3.0
], ids=lambda v: f"{v.dtype.str}-{v.shape}" if isinstance(v, np.ndarray) else f"fill={v}")
def test_coordinate_arrays_from_a_template_are_zarrs_own_objects(data, fill):
    """A coordinate array made from the metadata of an earlier one (lazydicom.io.zarr
    ``_coordinate_objects``) is stored as the very keys and bytes zarr's create_array
    and setitem store for the same data and fill value, and zarr reads back the data.
    Numeric fill values are taught by a template of zarr's default fill value."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync
    from zarr.storage import MemoryStore

    from lazydicom.io import zarr as lz

    prototype = default_buffer_prototype()
    axes = tuple(f"d{i}" for i in range(data.ndim))
    # an earlier array of the same dtype and ndim (other shape, values, dims) teaches it
    other = np.resize(data, tuple(n + 1 for n in data.shape))
    taught = fill if fill is None or isinstance(fill, bool) else None
    lz._TEMPLATES.pop((data.dtype.str, data.ndim, fill), None)
    lz._TEMPLATES.pop((data.dtype.str, data.ndim, taught), None)
    assert lz._coordinate_objects(data, axes, fill) is None
    lz._learn_coordinate(other, zarr.create_array(
        MemoryStore(), shape=other.shape, dtype=other.dtype, chunks=other.shape,
        compressors=None, chunk_key_encoding=lz._KEYS, dimension_names=("q",) * other.ndim,
        fill_value=taught).metadata, taught)
    made = lz._coordinate_objects(data, axes, fill)
    if not data.dtype.isnative:  # zarr's own path, whatever it does with the byte order
        assert made is None
        return
    assert made is not None
    objects, metadata = made
    reference = MemoryStore()
    arr = zarr.create_array(reference, shape=data.shape, dtype=data.dtype, chunks=data.shape,
                            compressors=None, chunk_key_encoding=lz._KEYS,
                            dimension_names=axes, fill_value=fill)
    arr[...] = data
    expected = {key: sync(reference.get(key, prototype=prototype)).to_bytes()
                for key in sync(_keys(reference))}
    assert {k: v.to_bytes() for k, v in objects.items()} == expected
    assert metadata == arr.metadata
    if fill is not None and not isinstance(fill, bool):
        assert (metadata.encode_chunk_key((0,) * data.ndim) in objects) == bool(
            (data != fill).any() or (np.signbit(data) != np.signbit(fill)).any())
    mine = MemoryStore()
    for key, value in objects.items():
        sync(mine.set(key, value))
    np.testing.assert_array_equal(zarr.open_array(mine, mode="r")[...], data)


async def _keys(store) -> list[str]:
    return [key async for key in store.list()]
