"""Class 8: the command line matches by VR and fails with one line, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import lazydicom
from lazydicom.cli import main
from tests.faults.catalog import cases

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def db_path(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "db"
    lazydicom.zeros((4, 3, 2), {"FlipAngle": [5, 10]}, path=root, PatientID="0123",
                    SeriesDescription="vfa")
    lazydicom.zeros((4, 3, 1), path=root, PatientID="123", SeriesDescription="other")
    return root


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lazydicom", *argv], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)


MATCHES = cases(
    8,
    "correct",
    {
        "cli/where-leading-zero-id": "--where PatientID=0123 (was turned into 123: found "
        "nothing)",
        "cli/where-number": "--where FlipAngle=10 matches the DS value 10.0",
        "cli/where-either": "--where 'PatientID=0123|123' matches both",
    },
)


@pytest.mark.parametrize("kind", MATCHES)
def test_where_compares_by_vr(kind, db_path, capsys):
    where = {"cli/where-leading-zero-id": "PatientID=0123", "cli/where-number": "FlipAngle=10",
             "cli/where-either": "PatientID=0123|123"}[kind]
    assert main(["array", str(db_path), "--where", where, "-q"]) == 0
    out = capsys.readouterr().out
    assert ("'vfa'" in out) and (("'other'" in out) == kind.endswith("either"))


FAILS = cases(
    8,
    "error",
    {
        "cli/extract-to-a-file": "extract OUT where OUT is a file (was a traceback)",
        "cli/extract-unreachable-scheduler": "extract --scheduler to a closed port (was a "
        "traceback after 30 s)",
        "cli/extract-malformed-scheduler": "extract --scheduler tcp://nowhere (no port)",
        "cli/dims-typo": "array --dims FlipAngel (a suggestion, once)",
        "cli/extract-dims-typo": "extract --dims SliceLocation,FlipAngel (was one failure per "
        "series)",
        "cli/where-not-a-number": "--where FlipAngle=abc",
        "cli/where-unknown-key": "--where FlipAngel=5",
        "cli/where-no-equals": "--where FlipAngle",
        "cli/missing-folder": "index of a folder that does not exist",
    },
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends


@pytest.mark.parametrize("kind", FAILS)
def test_errors_are_one_line(kind, db_path, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    out = str(tmp_path / "out.zarr")
    argv, expect = {
        "cli/extract-to-a-file": (["extract", str(db_path), str(afile), "--dims", "FlipAngle"],
                                  "is a file"),
        "cli/extract-unreachable-scheduler": (
            ["extract", str(db_path), out, "--dims", "FlipAngle", "--scheduler",
             f"tcp://127.0.0.1:{_closed_port()}"], "cannot reach the dask scheduler"),
        "cli/extract-malformed-scheduler": (
            ["extract", str(db_path), out, "--dims", "FlipAngle", "--scheduler",
             "tcp://nowhere"], "not an address"),
        "cli/dims-typo": (["array", str(db_path), "--dims", "FlipAngel"],
                          "did you mean 'FlipAngle'"),
        "cli/extract-dims-typo": (["extract", str(db_path), out, "--dims",
                                   "SliceLocation,FlipAngel"], "did you mean 'FlipAngle'"),
        "cli/where-not-a-number": (["array", str(db_path), "--where", "FlipAngle=abc"],
                                   "not a number"),
        "cli/where-unknown-key": (["array", str(db_path), "--where", "FlipAngel=5"],
                                  "did you mean"),
        "cli/where-no-equals": (["array", str(db_path), "--where", "FlipAngle"], "KEY=VALUE"),
        "cli/missing-folder": (["index", str(tmp_path / "nope")], "No such folder"),
    }[kind]
    status = main([*argv, "-q"])  # in-process: an exception escaping main() fails the test
    captured = capsys.readouterr()
    assert status in (1, 2)
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("lazydicom: error: ") and expect in lines[0], lines
    assert not os.path.exists(out)


def test_as_a_command_no_traceback(db_path, tmp_path):
    """The same through ``python -m lazydicom``: one line on stderr, exit 2."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    proc = _run(["extract", str(db_path), str(afile), "--dims", "FlipAngle", "-q"])
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
