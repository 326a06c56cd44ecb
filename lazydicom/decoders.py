"""Decode one compressed frame into exactly the array pydicom's ``pixel_array`` gives.

[`decode_frame`][lazydicom.decoders.decode_frame] takes the codestream of one frame and returns its
pixels: the same values, dtype and shape as the frame of ``Dataset.pixel_array``
(pydicom 3 with its default options and the plugins of lazydicom's ``codecs``
extra). Where imagecodecs decodes a transfer syntax with identical output it
is used, because it is faster and releases the GIL; everything else is decoded
by pydicom's own decoder plugins.

==========================================  ================================  ==============
Transfer syntax                             Decoder                           Why
==========================================  ================================  ==============
JPEG Lossless (.4.57), Lossless SV1 (.4.70) imagecodecs ``jpeg8_decode``      lossless, exact
                                            (libjpeg-turbo 3)
JPEG-LS Lossless (.4.80), Near-Lossless     imagecodecs ``jpegls_decode``     integer, exact
(.4.81)                                     (CharLS)
JPEG 2000 Lossless (.4.90)                  imagecodecs ``jpeg2k_decode``     reversible
                                            (OpenJPEG)
HTJ2K Lossless (.4.201), Lossless RPCL      imagecodecs ``htj2k_decode``      reversible
(.4.202)                                    (OpenJPH), else ``jpeg2k_decode``
RLE Lossless (.5)                           imagecodecs ``dicomrle_decode``   lossless, exact
JPEG Baseline (.4.50), Extended (.4.51)     pydicom (pylibjpeg-libjpeg)       lossy: not exact
JPEG 2000 (.4.91), HTJ2K (.4.203)           pydicom (pylibjpeg-openjpeg)      lossy: not exact
==========================================  ================================  ==============

Lossy JPEG is left to pydicom because libjpeg-turbo's inverse DCT does not
round as pylibjpeg-libjpeg's does: in pydicom's JPEG Baseline and Extended
test files and the shared XA cine, up to 9% of the decoded samples differ (by
1). JPEG 2000 that may be lossy is left to pydicom because its irreversible
wavelet is floating point, which two builds need not round alike (they agree
on every test file here, but that is not a guarantee). JPEG-LS near-lossless
decoding, by contrast, is integer arithmetic specified exactly by the standard.

Per frame, imagecodecs decodes only what its output is verified for: the
codestream header must match the frame's Rows, Columns and Samples per Pixel,
end with its end marker (a truncated frame decodes to different noise in each
library), and use no feature the tests do not cover (a lossy JPEG process, a
point transform, subsampled components, an Adobe or JPEG-LS colour transform,
JPEG-LS mapping tables, an irreversible JPEG 2000 wavelet, a JP2 wrapper, more
than 16 bits). Any other frame, and every frame when imagecodecs is not
installed, goes to pydicom's plugins.

The imagecodecs path is also a pydicom decoder plugin named ``"imagecodecs"``
(registered when this module is imported; see
[`register_plugin`][lazydicom.decoders.register_plugin]), so pydicom can use it too::

    decoder.as_array(ds, decoding_plugin="imagecodecs")

Registered last, it never displaces the plugin pydicom prefers; pydicom tries
it only when the plugins before it fail. ``DECODER_DEPENDENCIES`` and
``is_available`` are the module attributes pydicom's plugin interface
requires.
"""

from __future__ import annotations

import functools
import threading
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .errors import MissingDecoderError

if TYPE_CHECKING:  # pragma: no cover
    from pydicom.pixels.decoders.base import DecodeRunner

__all__ = [
    "PLUGIN_NAME",
    "IMAGECODECS_SYNTAXES",
    "decode_frame",
    "decoder_for",
    "register_plugin",
]

#: The name of the imagecodecs plugin in pydicom (``decoding_plugin=...``).
PLUGIN_NAME = "imagecodecs"

_JPEG_LOSSLESS = ("1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70")
_JPEG_LS = ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81")
_J2K = ("1.2.840.10008.1.2.4.90",)
_HTJ2K = ("1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202")
_RLE = ("1.2.840.10008.1.2.5",)

#: Transfer syntaxes whose frames imagecodecs decodes (when installed), and how.
IMAGECODECS_SYNTAXES = MappingProxyType(
    {
        **dict.fromkeys(_JPEG_LOSSLESS, "jpeg8_decode"),
        **dict.fromkeys(_JPEG_LS, "jpegls_decode"),
        **dict.fromkeys(_J2K, "jpeg2k_decode"),
        **dict.fromkeys(_HTJ2K, "htj2k_decode"),
        **dict.fromkeys(_RLE, "dicomrle_decode"),
    }
)

_REQUIREMENT = "imagecodecs>=2024.1"
_MIN_VERSION = (2024, 1)
_EXTRA = "pip install 'lazydicom[codecs]'"

#: pydicom plugin interface: what the plugin needs, per transfer syntax.
DECODER_DEPENDENCIES = {uid: (_REQUIREMENT,) for uid in IMAGECODECS_SYNTAXES}

_SINGLE_SAMPLE = ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR")


class _NotVerified(Exception):
    """imagecodecs' output for this codestream is not known to equal pydicom's."""


class _Decoded(NamedTuple):
    """A frame as imagecodecs decoded it, before pydicom's processing."""

    array: np.ndarray  # C-contiguous; (rows, cols[, samples]), or (samples, rows, cols) if planar
    precision: int  # bits per sample in the codestream
    signed: bool  # the codestream says the samples are signed (JPEG 2000 only)
    planar: bool  # colour-by-plane (RLE)


def _imagecodecs() -> ModuleType | None:
    """imagecodecs if it is installed in a version the plugin supports, else None."""
    try:
        import imagecodecs
    except ImportError:
        return None
    return imagecodecs if _supported(imagecodecs.__version__) else None


@functools.cache
def _supported(version: str) -> bool:
    numbers = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    return numbers >= _MIN_VERSION


def is_available(uid: str) -> bool:
    """Whether the imagecodecs plugin can decode transfer syntax ``uid`` (pydicom's interface).

    Examples
    --------
    >>> is_available("1.2.840.10008.1.2.4.70")  # JPEG Lossless SV1, imagecodecs installed
    True
    >>> is_available("1.2.840.10008.1.2.4.50")  # JPEG Baseline is left to pydicom
    False
    """
    return str(uid) in IMAGECODECS_SYNTAXES and _imagecodecs() is not None


# -- codestream headers: only to decide whether imagecodecs' output is verified ---------


def _ends_with(src: memoryview, marker: bytes) -> bool:
    """Whether the codestream ends with ``marker`` (EOI, EOC), give or take padding.

    Neither marker can occur in entropy-coded JPEG or JPEG 2000 packet data,
    and fragments are padded (0x00, sometimes 0xFF) to an even length.
    """
    return marker in src[-8:].tobytes()


def _jpeg_header(src: memoryview) -> dict[str, Any]:
    """Frame and first-scan parameters of a JPEG or JPEG-LS codestream."""
    if src[:2].tobytes() != b"\xff\xd8":
        raise _NotVerified("the frame does not start with a JPEG SOI marker")
    if not _ends_with(src, b"\xff\xd9"):
        raise _NotVerified("the frame does not end with a JPEG EOI marker (truncated?)")
    info: dict[str, Any] = {"app": [], "lse": set()}
    offset, end = 2, len(src)
    while offset + 4 <= end:
        if src[offset] != 0xFF:
            raise _NotVerified(f"no JPEG marker at byte {offset}")
        marker = src[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        length = int.from_bytes(src[offset + 2 : offset + 4], "big")
        seg = src[offset + 4 : offset + 2 + length]
        if (0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)) or marker in (0xF7, 0xF9):
            if "sof" in info:
                raise _NotVerified("more than one JPEG frame header (hierarchical)")
            info["sof"] = marker
            info["precision"] = seg[0]
            info["rows"] = int.from_bytes(seg[1:3], "big")
            info["columns"] = int.from_bytes(seg[3:5], "big")
            info["components"] = seg[5]
            info["sampling"] = {seg[6 + 3 * i + 1] for i in range(seg[5])}
        elif 0xE0 <= marker <= 0xEF:  # APPn: (marker, start of the payload)
            info["app"].append((marker, seg[:16].tobytes()))
        elif marker == 0xF8 and length > 2:  # JPEG-LS preset parameters (LSE)
            info["lse"].add(seg[0])
        elif marker == 0xDA:  # the first scan: its entropy-coded data follows
            if "sof" not in info:
                raise _NotVerified("a JPEG scan before the frame header")
            ns = seg[0]
            info["predictor"] = seg[1 + 2 * ns]
            info["point_transform"] = seg[3 + 2 * ns] & 0x0F
            return info
        offset += 2 + length
    raise _NotVerified("the JPEG header ends before the first scan")


def _j2k_header(src: memoryview) -> dict[str, Any]:
    """Image size, components and wavelets of a JPEG 2000 codestream's main header."""
    if src[:4].tobytes() != b"\xff\x4f\xff\x51":
        raise _NotVerified("not a bare JPEG 2000 codestream (SOC, SIZ); JP2 files are not")
    if not _ends_with(src, b"\xff\xd9"):
        raise _NotVerified("the frame does not end with a JPEG 2000 EOC marker (truncated?)")
    siz = src[6:]  # after SOC and the SIZ marker and length
    x, y, x0, y0 = (int.from_bytes(siz[i : i + 4], "big") for i in (2, 6, 10, 14))
    components = int.from_bytes(siz[34:36], "big")
    comps = {siz[36 + 3 * i : 39 + 3 * i].tobytes() for i in range(components)}
    if len(comps) != 1:
        raise _NotVerified("JPEG 2000 components differ in precision, sign or subsampling")
    ssiz, xr, yr = next(iter(comps))
    if (xr, yr) != (1, 1):
        raise _NotVerified("subsampled JPEG 2000 components")
    info = {
        "rows": y - y0,
        "columns": x - x0,
        "components": components,
        "precision": (ssiz & 0x7F) + 1,
        "signed": bool(ssiz & 0x80),
        "reversible": True,
    }
    offset = 4 + int.from_bytes(src[4:6], "big")
    while offset + 4 <= len(src):
        marker = src[offset + 1]
        if src[offset] != 0xFF or marker == 0x90:  # SOT: end of the main header
            break
        length = int.from_bytes(src[offset + 2 : offset + 4], "big")
        seg = src[offset + 4 : offset + 2 + length]
        if marker == 0x52:  # COD: SPcod's transformation byte, 1 = reversible 5-3
            info["reversible"] &= seg[9] == 1
        elif marker == 0x53:  # COC: the same, after Ccoc (1 or 2 bytes) and Scoc
            info["reversible"] &= seg[(1 if components < 257 else 2) + 5] == 1
        offset += 2 + length
    return info


def _check_size(info: dict[str, Any], rows: int, columns: int, samples: int) -> None:
    found = (info["rows"], info["columns"], info["components"])
    if found != (rows, columns, samples):
        raise _NotVerified(
            f"the codestream holds {found[0]}x{found[1]} pixels of {found[2]} samples, "
            f"the frame should hold {rows}x{columns} of {samples}"
        )


@functools.cache
def _libjpeg_turbo_3(codecs: ModuleType) -> bool:
    version = codecs.jpeg8_version().split()[-1]  # "libjpeg_turbo 3.1.3/8.0"
    return int(version.split(".")[0]) >= 3


# -- the one imagecodecs implementation: pydicom's plugin and decode_frame call it -----


def _decode_imagecodecs(
    src: bytes | bytearray | memoryview,
    transfer_syntax: str,
    rows: int,
    columns: int,
    samples_per_pixel: int,
    bits_allocated: int,
) -> _Decoded:
    """Decode ``src`` with imagecodecs, or raise if its output is not verified equal.

    The array holds what pydicom's pylibjpeg plugin returns for the same
    codestream: samples in a container sized by their precision, colour by
    pixel (RLE: by plane), with no colour conversion.
    """
    codecs = _imagecodecs()
    if codecs is None:
        raise _NotVerified(f"{_REQUIREMENT} is not installed")
    view = memoryview(src).cast("B")
    if transfer_syntax in _JPEG_LOSSLESS:
        info = _jpeg_header(view)
        if info["sof"] != 0xC3:
            raise _NotVerified(f"JPEG process SOF{info['sof'] - 0xC0} is not lossless Huffman")
        if info["point_transform"]:
            raise _NotVerified("a lossless JPEG point transform")
        if len(info["sampling"]) != 1:
            raise _NotVerified("subsampled JPEG components")
        if any(
            m == 0xEE and app[:5] == b"Adobe" and app[11:12] != b"\x00" for m, app in info["app"]
        ):
            raise _NotVerified("an Adobe APP14 colour transform")
        if not _libjpeg_turbo_3(codecs):
            raise _NotVerified("imagecodecs was built with libjpeg-turbo < 3 (no lossless JPEG)")
        _check_size(info, rows, columns, samples_per_pixel)
        if samples_per_pixel not in (1, 3):
            raise _NotVerified(f"{samples_per_pixel} JPEG components")
        space = "GRAY" if samples_per_pixel == 1 else "RGB"  # in = out: no colour conversion
        arr = codecs.jpeg8_decode(view, colorspace=space, outcolorspace=space)
        return _Decoded(arr, info["precision"], False, False)
    if transfer_syntax in _JPEG_LS:
        info = _jpeg_header(view)
        if info["sof"] != 0xF7:
            raise _NotVerified("not a JPEG-LS (SOF55) codestream")
        if any(m == 0xE8 and app[:4] == b"mrfx" and app[4:5] != b"\x00" for m, app in info["app"]):
            raise _NotVerified("a JPEG-LS colour transform (APP8 mrfx)")
        if info["lse"] - {1}:  # 1: coding parameters; 2, 3: mapping tables; 4: oversize image
            raise _NotVerified("a JPEG-LS mapping table or oversize image (LSE)")
        _check_size(info, rows, columns, samples_per_pixel)
        arr = np.ascontiguousarray(codecs.jpegls_decode(view))  # colour by pixel
        return _Decoded(arr, info["precision"], False, False)
    if transfer_syntax in _J2K or transfer_syntax in _HTJ2K:
        info = _j2k_header(view)
        if not info["reversible"]:
            raise _NotVerified("an irreversible (9-7, floating point) JPEG 2000 wavelet")
        if info["precision"] > 16:
            raise _NotVerified(f"JPEG 2000 precision {info['precision']} > 16")
        _check_size(info, rows, columns, samples_per_pixel)
        arr = None
        if transfer_syntax in _HTJ2K:
            try:
                arr = codecs.htj2k_decode(view)
            except Exception:  # noqa: BLE001 - e.g. JPEG 2000 Part 1 code-blocks: use OpenJPEG
                arr = None
        if arr is None:
            arr = codecs.jpeg2k_decode(view)
        return _Decoded(arr, info["precision"], info["signed"], False)
    if transfer_syntax in _RLE:
        itemsize = bits_allocated // 8
        segments = int.from_bytes(view[:4], "little")
        if bits_allocated not in (8, 16, 32) or segments != samples_per_pixel * itemsize:
            raise _NotVerified(
                f"{segments} RLE segments for {samples_per_pixel} samples of {bits_allocated} bits"
            )
        out = bytearray(rows * columns * samples_per_pixel * itemsize)
        decoded = codecs.dicomrle_decode(view, f"<u{itemsize}", out=out)
        if len(decoded) != len(out):
            raise _NotVerified(f"the RLE segments hold {len(decoded)} bytes, not {len(out)}")
        arr = np.frombuffer(out, f"<u{itemsize}").reshape(samples_per_pixel, rows, columns)
        return _Decoded(arr, bits_allocated, False, True)
    raise _NotVerified(f"imagecodecs is not used for transfer syntax {transfer_syntax!r}")


def _imagecodecs_plugin(src: bytes, runner: DecodeRunner) -> bytes | bytearray:
    """pydicom decoding plugin: one frame, decoded by ``_decode_imagecodecs``.

    Sets the runner's options as pydicom's pylibjpeg plugin does for the same
    codestream, so that pydicom's processing (container, layout, sign and
    colour) is the same.
    """
    uid = str(runner.transfer_syntax)
    decoded = _decode_imagecodecs(
        src, uid, runner.rows, runner.columns, runner.samples_per_pixel, runner.bits_allocated
    )
    if decoded.planar:
        runner.set_option("planar_configuration", 1)
    if uid in _JPEG_LS:
        runner.set_option("planar_configuration", 0)
    if uid in _JPEG_LS or uid in _J2K or uid in _HTJ2K:
        runner.set_option("bits_allocated", 8 * decoded.array.dtype.itemsize)
    if (uid in _J2K or uid in _HTJ2K) and runner.photometric_interpretation in (
        "YBR_ICT",
        "YBR_RCT",
    ):  # OpenJPEG applies the inverse component transform
        runner.set_option("photometric_interpretation", "RGB")
    # a flat byte view: pydicom measures len() and np.frombuffer()s it
    return decoded.array.reshape(-1).view(np.uint8)  # type: ignore[return-value]


# -- registration with pydicom ----------------------------------------------------------

_lock = threading.Lock()


def register_plugin() -> None:
    """Add the imagecodecs plugin to pydicom's decoders (idempotent, thread-safe).

    Called when this module is imported. The plugin is added after pydicom's
    own plugins for each transfer syntax in ``IMAGECODECS_SYNTAXES``, so
    pydicom's default choice does not change; it can be selected with
    ``decoding_plugin="imagecodecs"``. If imagecodecs is not installed the
    plugin is registered as unavailable, and pydicom lists it among the
    missing dependencies. A decoder that already has a plugin of that name
    keeps it.

    Examples
    --------
    >>> from pydicom.pixels import get_decoder
    >>> register_plugin()  # again: nothing changes
    >>> "imagecodecs" in get_decoder("1.2.840.10008.1.2.4.70").available_plugins
    True
    """
    from pydicom.pixels import get_decoder

    with _lock:  # pydicom's add_plugin is not thread-safe
        for uid in IMAGECODECS_SYNTAXES:
            try:
                get_decoder(uid).add_plugin(PLUGIN_NAME, (__name__, "_imagecodecs_plugin"))
            except ValueError:  # a plugin of that name exists: ours, or pydicom's own
                pass


# -- choosing the decoder ----------------------------------------------------------------


def _pydicom_decoder(uid: str) -> Any:
    """pydicom's decoder for ``uid``, or MissingDecoderError saying why there is none."""
    import pydicom
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    name = UID(uid).name
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        raise MissingDecoderError(
            f"No decoder for transfer syntax {uid!r} ({name}): neither pydicom "
            f"{pydicom.__version__} nor imagecodecs decodes it"
        ) from None
    if not decoder.is_encapsulated:
        raise MissingDecoderError(
            f"Transfer syntax {uid!r} ({name}) is not compressed: its frames are "
            "read as they are stored, not decoded"
        )
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies)
        raise MissingDecoderError(
            f"Cannot decode {name} ({uid!r}): no decoder plugin is installed "
            f"({missing}). Install lazydicom's codecs extra: {_EXTRA}"
        )
    return decoder


def _pydicom_choice(decoder: Any) -> str:
    """The plugin pydicom tries first for ``decoder`` (its registration order)."""
    # pydicom keeps its preference order only in Decoder._available (public
    # available_plugins is sorted by name); fall back to that if it changes
    order = list(getattr(decoder, "_available", None) or decoder.available_plugins)
    return next((p for p in order if p != PLUGIN_NAME), order[0])


def decoder_for(transfer_syntax: str) -> str:
    """Name the library ``decode_frame`` decodes ``transfer_syntax`` with.

    Parameters
    ----------
    transfer_syntax : str
        A Transfer Syntax UID.

    Returns
    -------
    str
        ``"imagecodecs"`` for the syntaxes of ``IMAGECODECS_SYNTAXES``
        when imagecodecs is installed, otherwise the name of the pydicom plugin
        pydicom would use first (``"pylibjpeg"``, ``"gdcm"``, ``"pillow"``,
        ``"pyjpegls"``, ``"pydicom"``). A single frame whose codestream uses
        a feature imagecodecs is not verified for still goes to that pydicom
        plugin.

    Raises
    ------
    MissingDecoderError
        No installed library decodes the transfer syntax, it is unknown, or it
        is not compressed.

    Examples
    --------
    >>> decoder_for("1.2.840.10008.1.2.4.70")  # JPEG Lossless SV1
    'imagecodecs'
    >>> decoder_for("1.2.840.10008.1.2.4.50") in ("pylibjpeg", "gdcm", "pillow")  # lossy
    True
    """
    uid = str(transfer_syntax)
    if uid in IMAGECODECS_SYNTAXES and _imagecodecs() is not None:
        return PLUGIN_NAME
    return _pydicom_choice(_pydicom_decoder(uid))


# -- decode_frame -------------------------------------------------------------------------


def _direct(data: Any, uid: str, px: dict[str, Any]) -> np.ndarray | None:
    """Decode a single-sample frame without pydicom's runner, or None if pydicom must.

    pydicom 3 processes a decoded single-sample frame in two steps, which are
    repeated here: it views the samples with the dtype of BitsAllocated and
    PixelRepresentation (when the decoder's container has that size; else it
    casts, and this returns None), then shifts out and back in the bits above
    the significant ones: above BitsStored (JPEG, RLE), above the JPEG 2000
    precision when the codestream's signedness is not PixelRepresentation's,
    above the JPEG-LS precision for signed pixels. No colour step applies.
    """
    bits_allocated, bits_stored = px["bits_allocated"], px["bits_stored"]
    signed = px["pixel_representation"]
    if (
        px["samples_per_pixel"] != 1
        or px["photometric_interpretation"] not in _SINGLE_SAMPLE
        or bits_allocated not in (8, 16, 32)
        or not 0 < bits_stored <= bits_allocated
        or signed not in (0, 1)
    ):
        return None
    try:
        decoded = _decode_imagecodecs(data, uid, px["rows"], px["columns"], 1, bits_allocated)
    except Exception:  # noqa: BLE001 - not verified or not decodable: pydicom decides
        return None
    if decoded.array.dtype.itemsize * 8 != bits_allocated:
        return None
    arr = decoded.array.view(f"{'i' if signed else 'u'}{bits_allocated // 8}")
    arr = arr.reshape(px["rows"], px["columns"])
    if uid in _JPEG_LS:
        shift = bits_allocated - decoded.precision if signed else 0
    elif uid in _J2K or uid in _HTJ2K:
        monochrome = px["photometric_interpretation"] != "PALETTE COLOR"
        mismatch = decoded.signed != bool(signed)
        shift = bits_allocated - decoded.precision if monochrome and mismatch else 0
    else:
        shift = bits_allocated - bits_stored
    if shift > 0:
        arr <<= shift
        arr >>= shift
    return arr


def _with_pydicom(data: Any, uid: str, px: dict[str, Any], plugin: str) -> np.ndarray:
    """Decode through pydicom's decoder, as ``pixel_array`` does, with ``plugin`` or its choice."""
    from pydicom.encaps import encapsulate
    from pydicom.pixels import get_decoder

    frame = data if isinstance(data, bytes) else bytes(data)
    options: dict[str, Any] = {**px, "number_of_frames": 1, "pixel_keyword": "PixelData"}
    arr, _ = get_decoder(uid).as_array(
        encapsulate([frame]), index=0, decoding_plugin=plugin, **options
    )
    return arr


def decode_frame(
    data: bytes | bytearray | memoryview,
    transfer_syntax: str,
    *,
    rows: int,
    columns: int,
    samples_per_pixel: int,
    bits_allocated: int,
    bits_stored: int,
    pixel_representation: int,
    photometric_interpretation: str,
    planar_configuration: int = 0,
    decoding_plugin: str = "",
) -> np.ndarray:
    """Decode one compressed frame to what pydicom's ``pixel_array`` gives for it.

    Thread-safe; imagecodecs releases the GIL while it decodes. Which library
    decodes is in the module's description and [`decoder_for`][lazydicom.decoders.decoder_for].

    Parameters
    ----------
    data : bytes, bytearray or memoryview
        The frame's codestream: its fragments concatenated, without item headers
        (what ``pydicom.encaps.generate_frames`` yields).
    transfer_syntax : str
        The Transfer Syntax UID of the file.
    rows, columns, samples_per_pixel, bits_allocated, bits_stored, pixel_representation : int
        Rows, Columns, SamplesPerPixel, BitsAllocated, BitsStored and
        PixelRepresentation of the frame.
    photometric_interpretation : str
        PhotometricInterpretation of the frame.
    planar_configuration : int
        PlanarConfiguration (0 if absent).
    decoding_plugin : str
        ``""`` (default): imagecodecs where its output is verified identical,
        else pydicom's choice. A pydicom plugin name (``"pylibjpeg"``,
        ``"gdcm"``, ``"pillow"``, ``"pyjpegls"``, ``"pydicom"``,
        ``"imagecodecs"``): that plugin through pydicom's ``Decoder.as_array``,
        with no fallback, e.g. to compare or to rule lazydicom out.

    Returns
    -------
    numpy.ndarray
        ``(rows, columns)``, or ``(rows, columns, samples)`` for colour: the same
        values, dtype and shape as pydicom 3's ``pixel_array`` (default options)
        for this frame. So BitsStored and PixelRepresentation are applied as
        pydicom applies them (sign extension or masking), and YBR_FULL and
        YBR_FULL_422 are converted to RGB. Palette colour is not applied.

    Raises
    ------
    MissingDecoderError
        No installed library decodes the transfer syntax, or ``decoding_plugin``
        is not installed (an ImportError naming what to install); or the syntax
        is unknown or not compressed.

    Other exceptions come from the decoders, for data they cannot decode. They
    do not always notice corrupt entropy-coded data; such frames decode to
    noise that differs from one library to another.

    See Also
    --------
    decoder_for : which library decodes a transfer syntax.

    Examples
    --------
    One frame of a JPEG 2000 Lossless MR image from pydicom's test files:

    >>> import pydicom
    >>> from pydicom.data import get_testdata_file
    >>> from pydicom.encaps import generate_frames
    >>> ds = pydicom.dcmread(get_testdata_file("MR_small_jp2klossless.dcm"))
    >>> frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    >>> arr = decode_frame(
    ...     frame, ds.file_meta.TransferSyntaxUID,
    ...     rows=ds.Rows, columns=ds.Columns, samples_per_pixel=ds.SamplesPerPixel,
    ...     bits_allocated=ds.BitsAllocated, bits_stored=ds.BitsStored,
    ...     pixel_representation=ds.PixelRepresentation,
    ...     photometric_interpretation=ds.PhotometricInterpretation)
    >>> arr.shape, arr.dtype
    ((64, 64), dtype('int16'))
    >>> bool((arr == ds.pixel_array).all())
    True
    """
    uid = str(transfer_syntax)
    px = {
        "rows": int(rows),
        "columns": int(columns),
        "samples_per_pixel": int(samples_per_pixel),
        "bits_allocated": int(bits_allocated),
        "bits_stored": int(bits_stored),
        "pixel_representation": int(pixel_representation),
        "photometric_interpretation": str(photometric_interpretation),
        "planar_configuration": int(planar_configuration),
    }
    if decoding_plugin:
        decoder = _pydicom_decoder(uid)
        if decoding_plugin not in decoder.available_plugins:
            missing = "; ".join(decoder.missing_dependencies) or "none"
            raise MissingDecoderError(
                f"pydicom has no decoding plugin {decoding_plugin!r} for {decoder.UID.name}: "
                f"available {', '.join(decoder.available_plugins)}; not installed: {missing}"
            )
        return _with_pydicom(data, uid, px, decoding_plugin)
    if decoder_for(uid) != PLUGIN_NAME:
        return _with_pydicom(data, uid, px, "")
    arr = _direct(data, uid, px)
    if arr is not None:
        return arr
    try:
        return _with_pydicom(data, uid, px, PLUGIN_NAME)
    except Exception as exc:  # noqa: BLE001 - imagecodecs declined or failed: pydicom's plugins
        declined = exc
    decoder = _pydicom_decoder(uid)
    if _pydicom_choice(decoder) == PLUGIN_NAME:  # nothing else is installed
        missing = "; ".join(decoder.missing_dependencies)
        raise MissingDecoderError(
            f"imagecodecs cannot decode this {decoder.UID.name} frame ({declined}) and no "
            f"other decoder plugin is installed ({missing}). Install lazydicom's codecs "
            f"extra: {_EXTRA}"
        ) from declined
    return _with_pydicom(data, uid, px, "")


register_plugin()
