"""Frames of objects in a store, read by ranged requests (a ``FrameSource``).

``ObjectFrameSource`` is what a ``FrameTable`` of a database in an object
store carries as its ``source``: ``lazydicom.pixels.read_frames`` hands it
each group of frames that share an object, and it fetches them with the
byte ranges the index recorded:

- a native frame is one ranged GET of its bytes (several frames of an
  object are fetched concurrently);
- an encapsulated frame is one ranged GET of its fragment items;
- frames that pydicom must find (Deflated files, bit-packed data, fragments
  without an offset table: ``FrameOffset`` -1) come from one download of the
  whole object, decoded by pydicom.

The bytes then go through ``lazydicom.pixels.store_frame``, so decoding,
rescale and palettes are those of a local read. Each object is checked to be
the version indexed (size and ETag, see ``lazydicom.objectstore``); a
changed or removed object is a ``FrameReadError`` naming its URL.

The source pickles as the store's URL and storage options (no filesystem, no
open connection): dask ships it with the read tasks to processes and
cluster workers, which read from the store directly.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import FrameReadError, LazyDicomError, MissingDecoderError
from .objectstore import ObjectStore
from .pixels import FrameCacheLike, FrameTable, decode_whole_file, store_frame

__all__ = ["ObjectFrameSource"]


@dataclass(frozen=True)
class ObjectFrameSource:
    """Reads frames of the objects under ``store`` by ranged requests.

    Parameters
    ----------
    store : ObjectStore
        The folder in the store; ``FrameTable.paths`` are URLs under it.
    """

    store: ObjectStore

    def read_file(
        self,
        table: FrameTable,
        frames: np.ndarray,
        out: np.ndarray,
        slots: np.ndarray,
        rescale: bool,
        cache: FrameCacheLike | None,
    ) -> None:
        """Fill ``out[:, :, slots[k]]`` with frame ``frames[k]``, all of one object."""
        self.read_files(table, [(frames, slots)], out, rescale, cache)

    def read_files(
        self,
        table: FrameTable,
        groups: list[tuple[np.ndarray, np.ndarray]],
        out: np.ndarray,
        rescale: bool,
        cache: FrameCacheLike | None,
    ) -> None:
        """``read_file`` for several objects at once: every ranged GET goes concurrently."""
        requests = []
        todo = []
        whole = []
        for frames, slots in groups:
            f = int(table.file[frames[0]])
            url = table.paths[f]
            rel = self.store.rel_of(url)
            size, version = int(table.sizes[f]), int(table.mtimes[f])
            ranged: list[tuple[int, int]] = []
            for frame, slot in zip(frames.tolist(), slots.tolist()):
                fmt = table.formats[table.format[frame]]
                palette = fmt.photometric == "PALETTE COLOR"
                if cache is not None and not palette and cache.caches(fmt.encapsulated):
                    stored = cache.get(table.identity(frame))
                    if stored is not None:
                        store_frame(stored, table, frame, out[:, :, slot], rescale, path=url)
                        continue
                if int(table.offset[frame]) >= 0 and (fmt.readable_natively
                                                      or fmt.encapsulated):
                    ranged.append((frame, slot))
                else:
                    whole.append((rel, size, version, url, frame, slot))
            if ranged:
                starts = [int(table.offset[fr]) for fr, _ in ranged]
                ends = [s + int(table.length[fr]) for s, (fr, _) in zip(starts, ranged)]
                requests.append((rel, size, version, starts, ends))
                todo.append((rel, version, url, ranged))
        for (rel, version, url, ranged), datas in zip(todo, self.store.read_many(requests)):
            for (frame, slot), data in zip(ranged, datas):
                if len(data) != int(table.length[frame]):
                    raise FrameReadError(
                        f"{url!r} is shorter than indexed: {int(table.length[frame])} bytes "
                        f"expected at offset {int(table.offset[frame])}, {len(data)} found; "
                        "refresh the database"
                    )
                self._store(data, table, frame, out, slot, rescale, cache, url, rel, version)
        downloaded: dict[str, bytes] = {}
        for rel, size, version, url, frame, slot in whole:
            if rel not in downloaded:
                downloaded = {rel: self.store.read_object(rel, size, version)}
            stored = _decode_whole(downloaded[rel], int(table.index[frame]), url)
            self._store(stored, table, frame, out, slot, rescale, cache, url, rel, version)

    def _store(self, data: Any, table: FrameTable, frame: int, out: np.ndarray, slot: int,
               rescale: bool, cache: FrameCacheLike | None, url: str, rel: str, version: int
               ) -> None:
        fmt = table.formats[table.format[frame]]
        palette = fmt.photometric == "PALETTE COLOR"
        header = _header(self.store, rel, version) if palette else None
        try:
            stored = store_frame(data, table, frame, out[:, :, slot], rescale, path=url,
                                 header=header)
        except (LazyDicomError, MissingDecoderError):
            raise
        except Exception as exc:  # noqa: BLE001 - decoders raise many types; name the object
            raise FrameReadError(
                f"Cannot decode frame {int(table.index[frame]) + 1} of {url!r} "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        if cache is not None and not palette and cache.caches(fmt.encapsulated):
            cache.put(table.identity(frame), stored)


def _decode_whole(data: bytes, index: int, url: str) -> np.ndarray:
    """Frame ``index`` of a whole object, decoded by pydicom (e.g. Deflated files)."""
    try:
        return decode_whole_file(io.BytesIO(data), index)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types; name the object
        raise FrameReadError(
            f"Cannot decode frame {index + 1} of {url!r} ({type(exc).__name__}: {exc})"
        ) from exc


@functools.lru_cache(maxsize=64)
def _header(store: ObjectStore, rel: str, version: int) -> Any:
    """The header of an object (for its palette lookup tables), read once per version."""
    import pydicom

    with store.open(rel) as f:
        return pydicom.dcmread(f, stop_before_pixels=True)
