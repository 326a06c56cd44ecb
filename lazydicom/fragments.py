"""Where the frames of encapsulated (compressed) Pixel Data are, and their bytes.

Encapsulated Pixel Data is a sequence of items: a Basic Offset Table item,
then one or more fragment items per frame, then a sequence delimiter
(DICOM PS3.5 A.4). At index time ``frame_spans`` records, for every
frame, the byte span of its fragment items (item headers included), so that
reading a frame later is one positioned read of that span and
``codestream`` joins its fragments: no header parse, no offset-table
walk, and the same addressing for a local file and a ranged remote read.

Why a walker here rather than pydicom's ``parse_fragments``: pydicom stops
silently at the end of truncated data (its loop ends on the first short
read), and lazydicom must refuse a file whose Pixel Data is cut, not index
the fragments that happen to be there. Only item headers (8 bytes each) are
read, never fragment payloads.

Frames are told apart as pydicom does when that needs no codec knowledge: by
the Basic Offset Table, or one fragment per frame, or all fragments of a
single-frame file. Otherwise (several fragments per frame and no offset
table, where pydicom looks for JPEG end-of-image markers) the spans are
unknown (None) and frames are read through pydicom's own encapsulation logic.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

__all__ = ["FragmentError", "frame_spans", "codestream"]

_ITEM = b"\xfe\xff\x00\xe0"  # (FFFE,E000), little endian
_DELIMITER = b"\xfe\xff\xdd\xe0"  # (FFFE,E0DD)
_HEADER = struct.Struct("<4sI")
_MAX_FRAGMENTS = 1 << 24  # a guard against walking garbage forever


class FragmentError(ValueError):
    """The encapsulated Pixel Data is truncated or malformed; the message says how."""


def _items(
    read_at: Callable[[int, int], bytes], start: int, size: int
) -> tuple[list[tuple[int, int]], int]:
    """Fragment items from ``start`` to the delimiter: ``[(offset, length)]`` and its offset."""
    items: list[tuple[int, int]] = []
    pos = start
    while True:
        if pos + 8 > size:
            raise FragmentError(
                f"the Pixel Data sequence is cut at byte {size}: no sequence delimiter "
                "after its last fragment (the file is truncated)"
            )
        tag, length = _HEADER.unpack(read_at(pos, 8))
        if tag == _DELIMITER:
            return items, pos
        if tag != _ITEM:
            raise FragmentError(
                f"found tag {tag[1::-1].hex().upper()},{tag[3:1:-1].hex().upper()} "
                f"at byte {pos} where a Pixel Data fragment item was expected"
            )
        if length == 0xFFFFFFFF or pos + 8 + length > size:
            raise FragmentError(
                f"the fragment item at byte {pos} claims {length} bytes, past the end "
                f"of the file ({size} bytes; the file is truncated)"
            )
        items.append((pos, 8 + length))
        if len(items) > _MAX_FRAGMENTS:
            raise FragmentError("more than 16 million Pixel Data fragments")
        pos += 8 + length


def frame_spans(
    read_at: Callable[[int, int], bytes], value_offset: int, size: int, number_of_frames: int
) -> list[tuple[int, int]] | None:
    """The ``(offset, length)`` of every frame's fragment items, or None if not knowable.

    Parameters
    ----------
    read_at : callable
        ``read_at(offset, n)`` returns ``n`` bytes of the file at ``offset``.
    value_offset : int
        File position of the Pixel Data value (the Basic Offset Table item).
    size : int
        Size of the file in bytes.
    number_of_frames : int
        NumberOfFrames of the file (1 when absent).

    Returns
    -------
    list of (int, int) or None
        One span per frame. None when the frames cannot be told apart without
        decoding (several fragments per frame and no offset table).

    Raises
    ------
    FragmentError
        Truncated or malformed encapsulation (missing delimiter, item running
        past the end of the file, an offset table that disagrees with the items).

    Examples
    --------
    >>> from pydicom.encaps import encapsulate
    >>> data = encapsulate([b"ab", b"cdef"], has_bot=True) + b"\\xfe\\xff\\xdd\\xe0" + bytes(4)
    >>> spans = frame_spans(lambda o, n: data[o:o + n], 0, len(data), 2)
    >>> [bytes(codestream(data[o:o + n])) for o, n in spans]
    [b'ab', b'cdef']
    """
    if value_offset + 8 > size:
        raise FragmentError("the Pixel Data value is cut before its offset table")
    tag, bot_length = _HEADER.unpack(read_at(value_offset, 8))
    if tag != _ITEM or bot_length == 0xFFFFFFFF or bot_length % 4:
        raise FragmentError("encapsulated Pixel Data does not start with a Basic Offset Table item")
    first = value_offset + 8 + bot_length
    if first > size:
        raise FragmentError("the Basic Offset Table runs past the end of the file")
    items, end = _items(read_at, first, size)
    if not items:
        raise FragmentError("encapsulated Pixel Data holds no fragment")
    n = max(int(number_of_frames), 1)
    if bot_length:
        offsets = list(struct.unpack(f"<{bot_length // 4}I", read_at(value_offset + 8, bot_length)))
        starts = {o - first: i for i, (o, _) in enumerate(items)}
        if len(offsets) != n or offsets[0] != 0 or any(o not in starts for o in offsets):
            if n == 1 or len(items) == n:  # a wrong table; the items still tell
                return _by_items(items, end, n)
            raise FragmentError(
                f"the Basic Offset Table lists {len(offsets)} frame(s) that do not match "
                f"the {len(items)} fragment(s) of {n} frame(s)"
            )
        bounds = [first + o for o in offsets] + [end]
        if any(b >= c for b, c in zip(bounds, bounds[1:])):
            raise FragmentError("the Basic Offset Table is not increasing")
        return [(b, c - b) for b, c in zip(bounds, bounds[1:])]
    return _by_items(items, end, n)


def _by_items(items: list[tuple[int, int]], end: int, n: int) -> list[tuple[int, int]] | None:
    if n == 1:
        return [(items[0][0], end - items[0][0])]
    if len(items) == n:
        return list(items)
    if len(items) < n:
        raise FragmentError(f"{n} frames but only {len(items)} Pixel Data fragment(s)")
    return None  # several fragments per frame without an offset table: pydicom splits


def codestream(span: bytes | bytearray | memoryview) -> bytes | memoryview:
    """The codestream of one frame: the payloads of the fragment items in ``span`` joined.

    A single fragment is returned as a view, without copying.
    """
    view = memoryview(span)
    parts = []
    pos = 0
    while pos + 8 <= len(view):
        tag, length = _HEADER.unpack_from(view, pos)
        if tag != _ITEM or pos + 8 + length > len(view):
            raise FragmentError(f"malformed fragment item at byte {pos} of the frame's data")
        parts.append(view[pos + 8 : pos + 8 + length])
        pos += 8 + length
    if pos != len(view) or not parts:
        raise FragmentError("the frame's data do not end on a fragment boundary")
    return parts[0] if len(parts) == 1 else b"".join(parts)
