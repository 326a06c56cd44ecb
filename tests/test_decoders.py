"""lazydicom.decoders: every frame equals pydicom's ``pixel_array``.

The reference is ``Dataset.pixel_array`` computed by pydicom with the
imagecodecs plugin taken out of its decoders, so that the code under test
never takes part in its own reference. Frames are split out of the Pixel Data
with pydicom's ``generate_frames``, as lazydicom's readers will hand them over.

Real data: every file of pydicom's bundled test files with an encapsulated
transfer syntax, every file in ``tests/data``, and the XA JPEG Baseline
multi-frame of the shared corpus (``../shared/data`` beside the project, when
present). Synthetic data covers what those files do not: each lossless
syntax with its sample depths, signedness, BitsStored below BitsAllocated with
junk in the unused bits, codestream/dataset mismatches, and codestreams
imagecodecs must decline.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import get_decoder

from lazydicom.decoders import (
    IMAGECODECS_SYNTAXES,
    PLUGIN_NAME,
    decode_frame,
    decoder_for,
    register_plugin,
)
from lazydicom.errors import MissingDecoderError

imagecodecs = pytest.importorskip("imagecodecs")

ROOT = Path(__file__).resolve().parents[1]
PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR = "1.2.840.10008.1.2.4.81"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K = "1.2.840.10008.1.2.4.91"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_LOSSLESS_RPCL = "1.2.840.10008.1.2.4.202"
RLE = "1.2.840.10008.1.2.5"


# -- the reference and the call under test ------------------------------------------------


@contextlib.contextmanager
def without_imagecodecs_plugin() -> Iterator[None]:
    """pydicom's decoders as they are without lazydicom (public Decoder API)."""
    for uid in IMAGECODECS_SYNTAXES:
        with contextlib.suppress(ValueError):
            get_decoder(uid).remove_plugin(PLUGIN_NAME)
    try:
        yield
    finally:
        register_plugin()


def reference_frames(ds: Dataset) -> list[np.ndarray] | Exception:
    """``ds.pixel_array`` frame by frame, or the exception pydicom raises."""
    with without_imagecodecs_plugin(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            arr = ds.pixel_array
        except Exception as exc:  # noqa: BLE001 - the reference may fail; then so must we
            return exc
    return [arr] if int(ds.get("NumberOfFrames", 1) or 1) == 1 else list(arr)


def pixel_kwargs(ds: Dataset) -> dict:
    return {
        "rows": ds.Rows,
        "columns": ds.Columns,
        "samples_per_pixel": ds.SamplesPerPixel,
        "bits_allocated": ds.BitsAllocated,
        "bits_stored": ds.BitsStored,
        "pixel_representation": ds.PixelRepresentation,
        "photometric_interpretation": ds.PhotometricInterpretation,
        "planar_configuration": ds.get("PlanarConfiguration", 0),
    }


def split_frames(ds: Dataset) -> list[bytes]:
    n = int(ds.get("NumberOfFrames", 1) or 1)
    return list(generate_frames(ds.PixelData, number_of_frames=n))


def assert_decodes_like_pydicom(ds: Dataset) -> None:
    expected = reference_frames(ds)
    frames = split_frames(ds)
    kwargs = pixel_kwargs(ds)
    syntax = ds.file_meta.TransferSyntaxUID
    if isinstance(expected, Exception):
        for frame in frames:
            with warnings.catch_warnings(), pytest.raises(Exception):  # noqa: B017
                warnings.simplefilter("ignore")
                decode_frame(frame, syntax, **kwargs)
        return
    assert len(frames) >= len(expected)
    for k, ref in enumerate(expected):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = decode_frame(frames[k], syntax, **kwargs)
        assert (got.dtype, got.shape) == (ref.dtype, ref.shape), f"frame {k}"
        np.testing.assert_array_equal(got, ref, err_msg=f"frame {k}")


def read(path: Path) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, force=True)


# -- real files ---------------------------------------------------------------------------


def _encapsulated_files(folder: Path) -> dict[Path, str]:
    """The files under ``folder`` with Pixel Data in an encapsulated syntax -> that syntax."""
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, defer_size=256, force=True)
            syntax = ds.file_meta.TransferSyntaxUID
        except Exception:  # noqa: BLE001 - not DICOM, or no file meta
            continue
        if syntax.is_encapsulated and "PixelData" in ds:
            found[path] = str(syntax)
    return found


#: Every compressed file of pydicom's test files and tests/data -> its transfer syntax.
REAL_FILES = {
    **_encapsulated_files(PYDICOM_FILES),
    **_encapsulated_files(ROOT / "tests" / "data"),
}


def _file_id(path: Path) -> str:
    folder = "pydicom" if PYDICOM_FILES in path.parents else path.parent.name
    return f"{folder}/{path.name} [{pydicom.uid.UID(REAL_FILES[path]).keyword}]"


def test_real_files_cover_every_imagecodecs_family():
    syntaxes = set(REAL_FILES.values())
    assert {JPEG_LOSSLESS_SV1, JPEG_LS, JPEG_LS_NEAR, J2K_LOSSLESS, RLE} <= syntaxes
    assert {JPEG_BASELINE, J2K} <= syntaxes  # and pydicom's own


@pytest.mark.parametrize("path", list(REAL_FILES), ids=_file_id)
def test_real_file_frames_equal_pixel_array(path):
    assert_decodes_like_pydicom(read(path))


#: Files whose codestreams the plugin declines (decode_frame gives them to pydicom's plugins).
PLUGIN_DECLINES = {"GDCMJ2K_TextGBR.dcm": "JP2"}  # a JP2 file, not a bare codestream


@pytest.mark.parametrize(
    "path",
    [p for p, syntax in REAL_FILES.items() if syntax in IMAGECODECS_SYNTAXES],
    ids=_file_id,
)
def test_real_file_through_pydicom_with_the_plugin(path):
    """pydicom itself, told to use the plugin, gives its reference: the plugin is exact."""
    ds = read(path)
    expected = reference_frames(ds)
    decoder = get_decoder(ds.file_meta.TransferSyntaxUID)
    if path.name in PLUGIN_DECLINES:
        with pytest.raises(RuntimeError, match=PLUGIN_DECLINES[path.name]):
            decoder.as_array(ds, decoding_plugin=PLUGIN_NAME)
        return
    arr, _ = decoder.as_array(ds, decoding_plugin=PLUGIN_NAME)
    expected_arr = expected[0] if len(expected) == 1 else np.stack(expected)
    assert (arr.dtype, arr.shape) == (expected_arr.dtype, expected_arr.shape)
    np.testing.assert_array_equal(arr, expected_arr)


def test_shared_xa_jpeg_baseline_multiframe():
    path = SHARED / "xa-jpeg-multiframe" / "0002.DCM"
    if not path.is_file():
        pytest.skip(f"shared corpus not found ({path}); it sits beside the project root")
    ds = read(path)
    assert ds.file_meta.TransferSyntaxUID == JPEG_BASELINE and int(ds.NumberOfFrames) == 96
    assert_decodes_like_pydicom(ds)


# -- synthetic frames -----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """Two frames of one transfer syntax, encoded from random samples."""

    name: str
    syntax: str
    encode: Callable[[np.ndarray], bytes]  # one frame's samples -> codestream
    bits_allocated: int = 16
    bits_stored: int = 16
    pixel_representation: int = 0
    photometric: str = "MONOCHROME2"
    samples: int = 1
    sample_bits: int = 16  # random samples fill this many low bits (the rest are junk-free)

    def samples_for(self, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        shape = (23, 37) if self.samples == 1 else (23, 37, 3)
        dtype = np.uint8 if self.sample_bits <= 8 else np.uint16
        arr = rng.integers(0, 2**self.sample_bits, shape, dtype=np.uint64).astype(dtype)
        arr.reshape(-1)[:4] = [0, 1, 2**self.sample_bits - 1, 2 ** (self.sample_bits - 1)]
        return arr

    def dataset(self) -> Dataset:
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = self.syntax
        ds.Rows, ds.Columns = 23, 37
        ds.SamplesPerPixel = self.samples
        ds.PhotometricInterpretation = self.photometric
        if self.samples > 1:
            ds.PlanarConfiguration = 0
        ds.BitsAllocated, ds.BitsStored = self.bits_allocated, self.bits_stored
        ds.HighBit = self.bits_stored - 1
        ds.PixelRepresentation = self.pixel_representation
        ds.NumberOfFrames = 2
        ds.PixelData = encapsulate([self.encode(self.samples_for(seed)) for seed in (1, 2)])
        ds["PixelData"].VR = "OB"
        return ds


def ljpeg(predictor: int = 1, bits: int = 16, space: str | None = None) -> Callable:
    def encode(arr: np.ndarray) -> bytes:
        colour = {} if space is None else {"colorspace": space, "outcolorspace": space}
        stream = imagecodecs.jpeg8_encode(
            arr, lossless=True, predictor=predictor, bitspersample=bits, **colour
        )
        return select_chroma_table(stream) if space == "YCbCr" else stream

    return encode


def select_chroma_table(stream: bytes) -> bytes:
    """Make a lossless YCbCr stream from ``imagecodecs.jpeg8_encode`` valid.

    libjpeg-turbo 3.1 (imagecodecs 2026.3) codes the chroma components with
    Huffman table 1 but writes 0 as their table selector in the scan header;
    decoders then disagree (and differ from the source). Select table 1.
    """
    out = bytearray(stream)
    offset = 2
    while out[offset + 1] != 0xDA:
        offset += 2 + int.from_bytes(out[offset + 2 : offset + 4], "big")
    for component in (1, 2):  # Cb, Cr: (selector, Td << 4 | Ta) pairs after Ns
        out[offset + 5 + 2 * component + 1] = 0x10
    return bytes(out)


def jls(bits: int, near: int = 0, interleave: int = 0) -> Callable:
    def encode(arr: np.ndarray) -> bytes:
        import jpeg_ls

        if interleave == 0 and arr.ndim == 3:
            arr = np.ascontiguousarray(arr.transpose(2, 0, 1))
        rows, columns = arr.shape[-2:] if interleave == 0 else arr.shape[:2]
        samples = 1 if arr.ndim == 2 else 3
        return bytes(
            jpeg_ls.encode_buffer(
                arr.tobytes(), rows, columns, samples, bits, near, interleave if samples > 1 else 0
            )
        )

    return encode


def j2k(bits: int | None = None, signed: bool = False, reversible: bool = True, **kw) -> Callable:
    def encode(arr: np.ndarray) -> bytes:
        if signed:
            arr = arr.view(np.int8 if arr.dtype == np.uint8 else np.int16)
        return imagecodecs.jpeg2k_encode(
            arr, codecformat="J2K", reversible=reversible, bitspersample=bits, level=0, **kw
        )

    return encode


def htj2k(signed: bool = False) -> Callable:
    def encode(arr: np.ndarray) -> bytes:
        if signed:
            arr = arr.view(np.int8 if arr.dtype == np.uint8 else np.int16)
        return imagecodecs.htj2k_encode(arr, reversible=True)

    return encode


def rle(bits_allocated: int, samples: int = 1, photometric: str = "MONOCHROME2") -> Callable:
    def encode(arr: np.ndarray) -> bytes:
        from pydicom.pixels.encoders import RLELosslessEncoder

        if bits_allocated == 32:
            arr = arr.astype(np.uint32) * 65537
        return RLELosslessEncoder.encode(
            arr.tobytes(),  # raw bytes: junk above BitsStored is kept
            encoding_plugin="pydicom",
            validate=False,
            rows=23,
            columns=37,
            samples_per_pixel=samples,
            bits_allocated=bits_allocated,
            bits_stored=bits_allocated,
            pixel_representation=0,
            photometric_interpretation=photometric,
            planar_configuration=0,
            number_of_frames=1,
        )

    return encode


SYNTHETIC = [
    # JPEG Lossless: the CT case, BitsStored < precision with junk bits, all predictors
    Case("ljpeg-sv1 i16", JPEG_LOSSLESS_SV1, ljpeg(), pixel_representation=1),
    Case("ljpeg-sv1 i16 stored 12", JPEG_LOSSLESS_SV1, ljpeg(), 16, 12, 1),
    Case("ljpeg-sv1 u16 stored 12", JPEG_LOSSLESS_SV1, ljpeg(), 16, 12, 0),
    Case("ljpeg-sv1 u16 precision 12", JPEG_LOSSLESS_SV1, ljpeg(bits=12), 16, 12, sample_bits=12),
    Case(
        "ljpeg-sv1 i16 precision 10", JPEG_LOSSLESS_SV1, ljpeg(bits=10), 16, 10, 1, sample_bits=10
    ),
    Case("ljpeg-sv1 u8", JPEG_LOSSLESS_SV1, ljpeg(bits=8), 8, 8, sample_bits=8),
    Case("ljpeg-sv1 i8", JPEG_LOSSLESS_SV1, ljpeg(bits=8), 8, 8, 1, sample_bits=8),
    Case(
        "ljpeg-sv1 precision 8 in 16 bits", JPEG_LOSSLESS_SV1, ljpeg(bits=8), 16, 8, sample_bits=8
    ),
    *[
        Case(f"ljpeg predictor {p} u16", JPEG_LOSSLESS, ljpeg(predictor=p), 16, 16)
        for p in range(1, 8)
    ],
    Case(
        "ljpeg-sv1 rgb",
        JPEG_LOSSLESS_SV1,
        ljpeg(bits=8, space="RGB"),
        8,
        8,
        photometric="RGB",
        samples=3,
        sample_bits=8,
    ),
    Case(
        "ljpeg-sv1 ybr-full",
        JPEG_LOSSLESS_SV1,
        ljpeg(bits=8, space="YCbCr"),
        8,
        8,
        photometric="YBR_FULL",
        samples=3,
        sample_bits=8,
    ),
    # JPEG-LS: signed pixels are stored unsigned; pydicom sign-extends from the precision
    Case("jls u16", JPEG_LS, jls(16)),
    Case("jls i16 stored 12", JPEG_LS, jls(12), 16, 12, 1, sample_bits=12),
    Case("jls u16 stored 12", JPEG_LS, jls(12), 16, 12, 0, sample_bits=12),
    Case("jls u8", JPEG_LS, jls(8), 8, 8, sample_bits=8),
    Case("jls i8 in 16 bits", JPEG_LS, jls(8), 16, 8, 1, sample_bits=8),
    Case("jls-near u16 stored 12", JPEG_LS_NEAR, jls(12, near=3), 16, 12, sample_bits=12),
    *[
        Case(
            f"jls rgb interleave {mode}",
            JPEG_LS,
            jls(8, interleave=mode),
            8,
            8,
            photometric="RGB",
            samples=3,
            sample_bits=8,
        )
        for mode in (0, 1, 2)
    ],
    Case(
        "jls-near rgb interleave 0",
        JPEG_LS_NEAR,
        jls(8, near=2, interleave=0),
        8,
        8,
        photometric="RGB",
        samples=3,
        sample_bits=8,
    ),
    # JPEG 2000 Lossless: signedness of codestream and dataset agree or not
    Case("j2k u16", J2K_LOSSLESS, j2k()),
    Case("j2k i16", J2K_LOSSLESS, j2k(signed=True), pixel_representation=1),
    Case("j2k unsigned 12 as signed", J2K_LOSSLESS, j2k(bits=12), 16, 12, 1, sample_bits=12),
    Case(
        "j2k signed 12 as unsigned",
        J2K_LOSSLESS,
        j2k(bits=12, signed=True),
        16,
        12,
        0,
        sample_bits=12,
    ),
    Case("j2k u8", J2K_LOSSLESS, j2k(), 8, 8, sample_bits=8),
    Case("j2k precision 8 in 16 bits", J2K_LOSSLESS, j2k(), 16, 8, sample_bits=8),
    Case(
        "j2k rgb mct ybr-rct",
        J2K_LOSSLESS,
        j2k(),
        8,
        8,
        photometric="YBR_RCT",
        samples=3,
        sample_bits=8,
    ),
    Case(
        "j2k rgb no mct",
        J2K_LOSSLESS,
        j2k(mct=False),
        8,
        8,
        photometric="RGB",
        samples=3,
        sample_bits=8,
    ),
    Case("j2k irreversible labelled lossless", J2K_LOSSLESS, j2k(reversible=False)),
    # HTJ2K Lossless
    Case("htj2k u16", HTJ2K_LOSSLESS, htj2k()),
    Case("htj2k i16", HTJ2K_LOSSLESS, htj2k(signed=True), pixel_representation=1),
    Case("htj2k-rpcl u8", HTJ2K_LOSSLESS_RPCL, htj2k(), 8, 8, sample_bits=8),
    Case("htj2k rgb", HTJ2K_LOSSLESS, htj2k(), 8, 8, photometric="RGB", samples=3, sample_bits=8),
    Case("htj2k holding a part-1 codestream", HTJ2K_LOSSLESS, j2k()),
    # RLE Lossless: junk above BitsStored is masked or sign-extended by pydicom
    Case("rle u8", RLE, rle(8), 8, 8, sample_bits=8),
    Case("rle i16 stored 12", RLE, rle(16), 16, 12, 1),
    Case("rle u16 stored 12", RLE, rle(16), 16, 12, 0),
    Case("rle u32", RLE, rle(32), 32, 32),
    Case("rle rgb", RLE, rle(8, 3, "RGB"), 8, 8, photometric="RGB", samples=3, sample_bits=8),
    Case(
        "rle ybr-full",
        RLE,
        rle(8, 3, "YBR_FULL"),
        8,
        8,
        photometric="YBR_FULL",
        samples=3,
        sample_bits=8,
    ),
    Case("rle rgb 16", RLE, rle(16, 3, "RGB"), 16, 16, photometric="RGB", samples=3),
]


@pytest.mark.parametrize("case", SYNTHETIC, ids=lambda c: c.name)
def test_synthetic_frames_equal_pixel_array(case):
    assert_decodes_like_pydicom(case.dataset())


def test_declined_codestreams_fall_back_to_pydicom(monkeypatch):
    """An irreversible codestream under a lossless UID is pydicom's, not imagecodecs'."""
    case = next(c for c in SYNTHETIC if c.name == "j2k irreversible labelled lossless")
    ds = case.dataset()
    calls = []
    monkeypatch.setattr(imagecodecs, "jpeg2k_decode", lambda *a, **k: calls.append(1))
    assert_decodes_like_pydicom(ds)
    assert calls == []


# -- paths, plugin, errors, threads ---------------------------------------------------------


def ct_frames() -> list[tuple[bytes, dict]]:
    out = []
    for path in sorted((ROOT / "tests" / "data" / "ct-skull-jpeg-lossless").iterdir()):
        ds = read(path)
        out.append((split_frames(ds)[0], pixel_kwargs(ds)))
    return out


def test_single_sample_frames_skip_pydicom(monkeypatch):
    """Greyscale frames go straight to imagecodecs: pydicom's as_array is never called."""
    from pydicom.pixels.decoders.base import Decoder

    expected = [decode_frame(f, JPEG_LOSSLESS_SV1, **kw) for f, kw in ct_frames()]

    def refuse(*args, **kwargs):
        raise AssertionError("pydicom's as_array was called")

    monkeypatch.setattr(Decoder, "as_array", refuse)
    for (frame, kwargs), ref in zip(ct_frames(), expected):
        np.testing.assert_array_equal(decode_frame(frame, JPEG_LOSSLESS_SV1, **kwargs), ref)
    for name in ("MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"):
        ds = read(PYDICOM_FILES / name)
        decode_frame(split_frames(ds)[0], ds.file_meta.TransferSyntaxUID, **pixel_kwargs(ds))


def test_decoder_for():
    assert decoder_for(JPEG_LOSSLESS_SV1) == "imagecodecs"
    assert decoder_for(pydicom.uid.JPEGLSNearLossless) == "imagecodecs"
    assert decoder_for(RLE) == "imagecodecs"
    for lossy in (JPEG_BASELINE, J2K, "1.2.840.10008.1.2.4.203"):
        assert decoder_for(lossy) != "imagecodecs"
        assert decoder_for(lossy) in get_decoder(lossy).available_plugins


def test_plugin_is_registered_last_and_selectable():
    for uid in IMAGECODECS_SYNTAXES:
        decoder = get_decoder(uid)
        assert PLUGIN_NAME in decoder.available_plugins
        # pydicom tries plugins in registration order (kept only in the private
        # Decoder._available; available_plugins is sorted): its own come first
        assert list(decoder._available)[-1] == PLUGIN_NAME
    register_plugin()
    register_plugin()  # idempotent
    assert all(
        list(get_decoder(uid)._available).count(PLUGIN_NAME) == 1 for uid in IMAGECODECS_SYNTAXES
    )
    ds = read(PYDICOM_FILES / "SC_rgb_jpeg_gdcm.dcm")  # RGB JPEG Lossless: via pydicom's runner
    arr, _ = get_decoder(JPEG_LOSSLESS_SV1).as_array(ds, decoding_plugin="imagecodecs")
    np.testing.assert_array_equal(arr, reference_frames(ds)[0])


def test_plugin_not_registered_for_lossy_syntaxes():
    for uid in (JPEG_BASELINE, "1.2.840.10008.1.2.4.51", J2K, "1.2.840.10008.1.2.4.203"):
        assert PLUGIN_NAME not in get_decoder(uid).available_plugins


@pytest.mark.parametrize(
    "syntax",
    ["1.2.3.4", "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.1"],
    ids=["unknown", "mpeg2", "explicit-vr-little-endian"],
)
def test_missing_decoder_for_unknown_or_native_syntax(syntax):
    with pytest.raises(MissingDecoderError, match=syntax.replace(".", r"\.")):
        decode_frame(
            b"\xff\xd8",
            syntax,
            rows=1,
            columns=1,
            samples_per_pixel=1,
            bits_allocated=8,
            bits_stored=8,
            pixel_representation=0,
            photometric_interpretation="MONOCHROME2",
        )
    with pytest.raises(ImportError):  # MissingDecoderError is an ImportError
        decoder_for(syntax)


def test_missing_decoder_names_the_extra(monkeypatch):
    """No imagecodecs and no pydicom plugin: the message says what to install."""
    from pydicom.pixels.decoders.base import Decoder

    monkeypatch.setitem(sys.modules, "imagecodecs", None)
    monkeypatch.setattr(Decoder, "is_available", property(lambda self: False))
    with pytest.raises(MissingDecoderError, match=r"pip install 'lazydicom\[codecs\]'"):
        decoder_for(HTJ2K_LOSSLESS)


def test_without_imagecodecs_pydicom_decodes(monkeypatch):
    frame, kwargs = ct_frames()[3]
    expected = decode_frame(frame, JPEG_LOSSLESS_SV1, **kwargs)
    monkeypatch.setitem(sys.modules, "imagecodecs", None)
    assert decoder_for(JPEG_LOSSLESS_SV1) == "pylibjpeg"
    np.testing.assert_array_equal(decode_frame(frame, JPEG_LOSSLESS_SV1, **kwargs), expected)


def test_decoding_plugin_forces_a_pydicom_plugin(monkeypatch):
    frame, kwargs = ct_frames()[0]
    expected = decode_frame(frame, JPEG_LOSSLESS_SV1, **kwargs)

    def refuse(*args, **kw):
        raise AssertionError("imagecodecs was called")

    monkeypatch.setattr(imagecodecs, "jpeg8_decode", refuse)
    got = decode_frame(frame, JPEG_LOSSLESS_SV1, decoding_plugin="pylibjpeg", **kwargs)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(MissingDecoderError, match="no decoding plugin 'nonesuch'.*available"):
        decode_frame(frame, JPEG_LOSSLESS_SV1, decoding_plugin="nonesuch", **kwargs)


def test_memoryview_and_bytearray_input():
    frame, kwargs = ct_frames()[0]
    expected = decode_frame(frame, JPEG_LOSSLESS_SV1, **kwargs)
    for data in (bytearray(frame), memoryview(frame)):
        np.testing.assert_array_equal(decode_frame(data, JPEG_LOSSLESS_SV1, **kwargs), expected)


def test_thread_safe():
    """Frames decoded concurrently equal the same frames decoded one by one."""
    jobs = [(f, JPEG_LOSSLESS_SV1, kw) for f, kw in ct_frames()]
    for name in ("SC_rgb_jpeg_gdcm.dcm", "examples_jpeg2k.dcm", "SC_rgb_rle_16bit_2frame.dcm"):
        ds = read(PYDICOM_FILES / name)  # colour: through pydicom's runner and the plugin
        jobs += [(f, ds.file_meta.TransferSyntaxUID, pixel_kwargs(ds)) for f in split_frames(ds)]
    jobs = jobs * 4
    serial = [decode_frame(f, uid, **kw) for f, uid, kw in jobs]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda job: decode_frame(job[0], job[1], **job[2]), jobs))
    for a, b in zip(serial, threaded):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
