"""Self-tests of the test infrastructure: the generator, the reference, the data.

They prove that :mod:`tests.synthetic` writes what it says (checked with plain
pydicom reads) and that :mod:`tests.reference` grids it as ``design.md`` says,
so both can be trusted as the oracle for lazydicom.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from tests.reference import read_frames, read_pixels, reference_coords, reference_ndarray
from tests.synthetic import (
    ENCODER_LIMITS,
    encoder_available,
    expected_ndarray,
    frame_pixels,
    grid_indices,
    write_enhanced_mr,
    write_junk,
    write_series,
)

DATA = Path(__file__).parent / "data"

# Unsorted on purpose: the array's axes must come out sorted by value.
COORDS: dict[str, list[Any]] = {
    "SliceLocation": [10.0, -5.0, 0.0, 2.5],
    "FlipAngle": [30, 2, 15],
    "RepetitionTime": [5.0, 2.5],
}
DIMS = tuple(COORDS)


@pytest.fixture(scope="module")
def grid_series(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_series(tmp_path_factory.mktemp("grid"), COORDS, (6, 4))


def test_every_file_carries_its_cell(grid_series: list[Path]) -> None:
    grid = tuple(len(v) for v in COORDS.values())
    assert len(grid_series) == np.prod(grid)
    for path, index in zip(grid_series, grid_indices(COORDS), strict=True):
        ds = pydicom.dcmread(path)
        for (key, values), i in zip(COORDS.items(), index, strict=True):
            assert float(ds[key].value) == values[i]
        cell = int(np.ravel_multi_index(index, grid))
        np.testing.assert_array_equal(ds.pixel_array, frame_pixels(cell, len(grid_series), (6, 4)))
        assert ds.pixel_array.shape == (ds.Rows, ds.Columns) == (6, 4)


def test_files_are_shuffled_into_subfolders_with_spaces(grid_series: list[Path]) -> None:
    assert any(" " in p.parent.name for p in grid_series)
    assert len({p.parent for p in grid_series}) > 1
    assert [p.name for p in grid_series] != sorted(p.name for p in grid_series)
    numbers = [pydicom.dcmread(p).InstanceNumber for p in grid_series]
    assert numbers == list(range(1, len(grid_series) + 1))


def test_frames_are_all_different(grid_series: list[Path]) -> None:
    expected = expected_ndarray(COORDS, (6, 4))
    frames = expected.reshape(4 * 6, -1).T
    assert len({f.tobytes() for f in frames}) == len(frames)


def test_reference_puts_each_frame_in_its_cell(grid_series: list[Path]) -> None:
    actual = reference_ndarray(grid_series[::-1], DIMS)
    assert actual.shape == (4, 6, 4, 3, 2)
    np.testing.assert_array_equal(actual, expected_ndarray(COORDS, (6, 4)))
    assert actual.dtype == np.uint16
    # arr[:, :, k] is pixel_array transposed; cell of SliceLocation -5, FlipAngle 2, TR 5
    ds = pydicom.dcmread(grid_series[1 * 6 + 1 * 2 + 0])
    np.testing.assert_array_equal(actual[:, :, 0, 0, 1], ds.pixel_array.T)
    assert reference_coords(grid_series, DIMS) == {k: sorted(v) for k, v in COORDS.items()}


def test_reference_selects_by_value_and_by_index(grid_series: list[Path]) -> None:
    full = expected_ndarray(COORDS, (6, 4))
    by_value = reference_ndarray(
        grid_series,
        coords={"SliceLocation": [2.5, -5.0, 99], "FlipAngle": 15, "RepetitionTime": [5]},
    )
    assert by_value.shape == (4, 6, 2, 1, 1)
    # in the order given: SliceLocation 2.5 (sorted index 2) before -5.0 (index 0)
    np.testing.assert_array_equal(by_value, full[:, :, [2, 0]][:, :, :, [1]][:, :, :, :, [1]])
    by_index = reference_ndarray(
        grid_series, slice={"SliceLocation": [2, 0], "FlipAngle": [1], "RepetitionTime": [1]}
    )
    np.testing.assert_array_equal(by_value, by_index)
    with pytest.raises(ValueError, match="two frames in one cell"):  # dims must separate all frames
        reference_ndarray(grid_series, coords={"SliceLocation": [2.5]})
    selected = reference_ndarray(
        grid_series, coords={"SliceLocation": [0.0], "FlipAngle": [30], "RepetitionTime": [5]}
    )
    np.testing.assert_array_equal(selected[:, :, 0, 0, 0], full[:, :, 1, 2, 1])
    empty = reference_ndarray(
        grid_series, coords={"SliceLocation": [99.0], "FlipAngle": [30], "RepetitionTime": [5]}
    )
    assert empty.size == 0


def test_missing_cells_are_filled(tmp_path: Path) -> None:
    coords: dict[str, list[Any]] = {"SliceLocation": [0.0, 5.0, 10.0], "EchoTime": [2.0, 1.0]}
    missing = {(0, 0), (2, 1)}
    files = write_series(tmp_path, coords, (5, 7), missing=missing, dtype="int16")
    assert len(files) == 4
    actual = reference_ndarray(files, tuple(coords), fill_value=-7)
    np.testing.assert_array_equal(
        actual, expected_ndarray(coords, (5, 7), dtype="int16", missing=missing, fill_value=-7)
    )
    assert (actual[:, :, 0, 1] == -7).all() and (
        actual[:, :, 2, 0] == -7
    ).all()  # EchoTime sorted: 1.0, 2.0
    assert (actual[:, :, 0, 0] != -7).all()


def test_duplicates_raise_naming_both_files(tmp_path: Path) -> None:
    coords: dict[str, list[Any]] = {"InversionTime": [100.0, 300.0, 200.0]}
    files = write_series(tmp_path, coords, duplicates={(1,)})
    assert len(files) == 4
    with pytest.raises(ValueError, match="two frames in one cell") as info:
        reference_ndarray(files, ("InversionTime",))
    assert str(files[1]) in str(info.value) and str(files[2]) in str(info.value)
    assert reference_ndarray(files, ("InstanceNumber",)).shape == (4, 6, 4)


def test_several_series_share_a_folder(tmp_path: Path) -> None:
    a = write_series(tmp_path, {"SliceLocation": [0.0, 1.0]}, series_description="a")
    b = write_series(tmp_path, {"SliceLocation": [0.0, 1.0]}, series_description="b", seed=0)
    assert not set(a) & set(b)
    assert len({pydicom.dcmread(p).SeriesInstanceUID for p in a + b}) == 2


FORMATS = [
    (ts, dtype, bits)
    for ts in (
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
        ExplicitVRBigEndian,
        RLELossless,
        JPEGLSLossless,
        JPEG2000Lossless,
    )
    for dtype, bits in (
        ("uint8", None),
        ("int8", None),
        ("uint16", None),
        ("int16", None),
        ("uint16", 12),
        ("int16", 12),
        ("uint32", None),
        ("int32", None),
    )
    # pydicom's encoders take at most 16 (RLE, JPEG-LS) or 24 (JPEG 2000) bits
    if (bits or 8 * np.dtype(dtype).itemsize) <= ENCODER_LIMITS.get(ts, (0, 0, 32))[2]
]


@pytest.mark.parametrize(
    ("transfer_syntax", "dtype", "bits_stored"),
    FORMATS,
    ids=[f"{ts.keyword}-{dtype}-{bits or 'full'}" for ts, dtype, bits in FORMATS],
)
def test_transfer_syntaxes_and_dtypes(
    tmp_path: Path, transfer_syntax: UID, dtype: str, bits_stored: int | None
) -> None:
    if not encoder_available(transfer_syntax):
        pytest.skip(f"no encoder for {transfer_syntax.name}")
    width = bits_stored or 8 * np.dtype(dtype).itemsize
    coords: dict[str, list[Any]] = {"SliceLocation": [3.0, 1.0, 2.0], "FlipAngle": [20, 10]}
    shape = (40, 33)  # JPEG 2000 needs >= 32 x 32
    files = write_series(
        tmp_path,
        coords,
        shape,
        transfer_syntax=transfer_syntax,
        dtype=dtype,
        bits_stored=bits_stored,
    )
    ds = pydicom.dcmread(files[0])
    assert ds.file_meta.TransferSyntaxUID == transfer_syntax
    assert (ds.BitsStored, ds.PixelRepresentation) == (width, int(dtype.startswith("int")))
    actual = reference_ndarray(files, tuple(coords))
    expected = expected_ndarray(coords, shape, dtype=dtype, bits_stored=bits_stored)
    assert actual.dtype == expected.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(actual, expected)


def test_rescale_gives_float32(tmp_path: Path) -> None:
    coords: dict[str, list[Any]] = {"SliceLocation": [0.0, 1.0], "EchoTime": [3.0, 1.0]}

    def rescale(index: tuple[int, ...]) -> tuple[float, float]:
        return (1.0, 0.0) if index == (0, 0) else (0.5 + index[0], -100.0 * index[1])

    files = write_series(tmp_path, coords, dtype="int16", bits_stored=12, rescale=rescale)
    actual = reference_ndarray(files, tuple(coords))
    assert actual.dtype == np.float32
    np.testing.assert_array_equal(
        actual, expected_ndarray(coords, dtype="int16", bits_stored=12, rescale=rescale)
    )
    # only the identity-rescaled frame selected: stored dtype
    one = reference_ndarray(files, coords={"SliceLocation": [0.0], "EchoTime": [3.0]})
    assert one.dtype == np.int16
    assert reference_ndarray(files, tuple(coords), rescale=False).dtype == np.int16


def test_rgb_series(tmp_path: Path) -> None:
    # strings sort lexicographically
    coords: dict[str, list[Any]] = {"AcquisitionTime": ["101500", "101000"]}
    files = write_series(tmp_path, coords, (6, 4), dtype="uint8", samples_per_pixel=3)
    actual = reference_ndarray(files, ("AcquisitionTime",))
    assert actual.shape == (4, 6, 2, 3)
    np.testing.assert_array_equal(
        actual, expected_ndarray(coords, (6, 4), dtype="uint8", samples_per_pixel=3)
    )


@pytest.mark.parametrize(
    "transfer_syntax",
    [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian, RLELossless],
)
def test_enhanced_mr(tmp_path: Path, transfer_syntax: UID) -> None:
    coords: dict[str, list[Any]] = {
        "InStackPositionNumber": [3, 1, 2],
        "EffectiveEchoTime": [5.0, 2.5],
    }

    def rescale(index: tuple[int, ...]) -> tuple[float, float]:
        return (1.0 + index[0], -float(index[1]))

    path = tmp_path / "enhanced" / "IM 0001"
    order = write_enhanced_mr(
        path, coords, (6, 4), transfer_syntax=transfer_syntax, missing={(2, 1)}, rescale=rescale
    )
    ds = pydicom.dcmread(path)
    assert ds.NumberOfFrames == len(order) == 5
    assert order != sorted(order)  # frames stored shuffled
    actual = reference_ndarray([path], tuple(coords))
    expected = expected_ndarray(coords, (6, 4), rescale=rescale, missing={(2, 1)})
    assert actual.dtype == np.float32
    np.testing.assert_array_equal(actual, expected)
    by_position = reference_ndarray([path], ("ImagePositionPatient", "EffectiveEchoTime"))
    np.testing.assert_array_equal(by_position, expected)


def test_enhanced_mr_duplicates_raise(tmp_path: Path) -> None:
    path = tmp_path / "dup.dcm"
    write_enhanced_mr(path, {"TemporalPositionIndex": [1, 2]}, duplicates={(0,)})
    with pytest.raises(ValueError, match="two frames in one cell.* frame "):
        reference_ndarray([path], ("TemporalPositionIndex",))


def test_junk(tmp_path: Path) -> None:
    junk = write_junk(tmp_path)
    for key in ("text", "empty", "random"):
        with pytest.raises(InvalidDicomError):
            pydicom.dcmread(junk[key])
    with pytest.raises(ValueError, match="less than expected"):
        _ = pydicom.dcmread(junk["truncated"]).pixel_array
    # pydicom reads past the bad length without an error: the value swallows the
    # rest of the file (and may warn about decoding those bytes as text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keywords = {elem.keyword for elem in pydicom.dcmread(junk["bad_length"])}
    assert "SeriesDescription" in keywords and not {"PatientName", "PixelData"} & keywords
    assert "PixelData" not in pydicom.dcmread(junk["no_pixels"])
    assert reference_ndarray([junk["valid"], junk["no_pixels"]]).shape == (24, 32, 1)
    assert junk["unreadable"].stat().st_mode & 0o777 == 0


# Real data: the inventory of PROVENANCE.md, measured again.
INVENTORY = {
    # folder: (files, series, frames)
    "ct-skull-jpeg-lossless": (10, 2, 10),
    "mr-enhanced-molli": (3, 2, 10),
    "mr-rider-neuro": (24, 12, 24),
    "mr-siemens-ima": (1, 1, 1),
    "us-palette-color": (1, 1, 11),
}


@pytest.mark.parametrize("folder", sorted(INVENTORY))
def test_real_data_inventory(folder: str) -> None:
    files = [p for p in (DATA / folder).rglob("*") if p.is_file() and ".lazydicom" not in p.parts]
    headers = [pydicom.dcmread(p) for p in files]
    frames = sum(int(h.get("NumberOfFrames") or 1) for h in headers if "PixelData" in h)
    assert (len(files), len({h.SeriesInstanceUID for h in headers}), frames) == INVENTORY[folder]


def test_reference_on_real_ct() -> None:
    folder = DATA / "ct-skull-jpeg-lossless"
    axial = [folder / f"I{k}" for k in range(95, 103)]
    arr = reference_ndarray(axial, ("SliceLocation",))
    assert arr.shape == (512, 512, 8) and arr.dtype == np.float32
    ds = pydicom.dcmread(axial[0])  # lowest slice
    np.testing.assert_array_equal(arr[:, :, 0], ds.pixel_array.T.astype(np.float32) - 1024)
    with pytest.raises(ValueError, match="two frames in one cell"):
        reference_ndarray(
            [folder / "I0", folder / "I1"], ("SliceLocation",)
        )  # two scouts, one location


def test_reference_on_real_palette_colour() -> None:
    path = DATA / "us-palette-color" / "0020.DCM"
    # classic multi-frame: every frame has the file's attributes
    with pytest.raises(ValueError, match="two frames in one cell"):
        reference_ndarray([path])
    frames = read_frames([path])
    assert len(frames) == 11
    rgb = read_pixels(*frames[3][1:])
    assert rgb.shape == (430, 600, 3) and rgb.dtype == np.uint16  # 16-bit palette
