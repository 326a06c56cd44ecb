"""The command line: index report, array summary, help. Counts are checked against pydicom."""

from __future__ import annotations

import re
import subprocess
import sys

import pydicom
import pytest

from lazydicom.cli import main
from tests.synthetic import write_junk, write_series


def test_index_lists_series_frames_objects_and_skipped(corpus, capsys):
    junk = write_junk(corpus / "junk")
    assert main(["index", str(corpus), "-q"]) == 0
    out = capsys.readouterr().out
    # the enhanced MOLLI series: frames counted from pydicom's NumberOfFrames
    n = pydicom.dcmread(corpus / "mr-enhanced-molli" / "IM_0001", stop_before_pixels=True)
    assert f"'Cor_T1MOLLI_BH' MR: {int(n.NumberOfFrames)} frames in 1 files" in out
    assert "'ax 5 flip' MR: 2 frames in 2 files" in out
    assert "varies: SliceLocation(2)" in out
    assert "object(s) without pixel data" in out and "mr-enhanced-molli/PS_0002" in out
    for name in ("text", "empty", "truncated"):
        assert junk[name].relative_to(corpus).as_posix() in out
    assert "file(s) skipped" in out


def test_array_prints_shape_and_coords(tmp_path, capsys):
    write_series(tmp_path, {"SliceLocation": [5.0, 0.0], "FlipAngle": [10, 2, 5]}, (6, 4),
                 series_description="vfa")
    argv = ["array", str(tmp_path), "--dims", "SliceLocation,FlipAngle",
            "--where", "SeriesDescription=vfa", "--compute", "-q"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "shape (4, 6, 2, 3), dtype uint16" in out
    assert "SliceLocation: [0, 5]" in out and "FlipAngle: [2, 5, 10]" in out
    assert "computed: min" in out
    assert main(["array", str(tmp_path), "--where", "SeriesDescription=nope", "-q"]) == 1


@pytest.mark.parametrize("dims", ["(0020,1041),(0018,1314)", "(0020,1041), FlipAngle",
                                  "0x00201041,(0018,1314)"])
def test_dims_accepts_tags_with_their_comma(dims, tmp_path, capsys):
    write_series(tmp_path, {"SliceLocation": [5.0, 0.0], "FlipAngle": [10, 2, 5]}, (6, 4))
    assert main(["array", str(tmp_path), "--dims", "SliceLocation,FlipAngle", "-q"]) == 0
    by_keyword = capsys.readouterr().out
    assert main(["array", str(tmp_path), "--dims", dims, "-q"]) == 0
    out = capsys.readouterr().out
    assert "shape (4, 6, 2, 3)" in out
    assert re.search(r"\n  \S+: \[0, 5\]\n  \S+: \[2, 5, 10\]", out)
    assert out.count("\n") == by_keyword.count("\n")


@pytest.mark.parametrize("dims", ["(0020,1041", "SliceLocation,(0020,1041))", "((0020,1041))"])
def test_dims_with_unbalanced_parentheses_are_refused(dims, tmp_path, capsys):
    assert main(["array", str(tmp_path), "--dims", dims, "-q"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("lazydicom: error: --dims") and "(gggg,eeee)" in line


def test_missing_folder_is_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["index", str(tmp_path / "nope")]) == 1
    assert "No such folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["index"], ["array"], ["extract"]])
def test_help_documents_every_command(command):
    proc = subprocess.run([sys.executable, "-m", "lazydicom", *command, "--help"],
                          capture_output=True, text=True, check=True)
    assert "usage: lazydicom" in proc.stdout
    if not command:
        for name in ("index", "array", "extract"):
            assert name in proc.stdout
