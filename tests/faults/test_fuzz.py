"""Class 2: the fast header walker against pydicom, on mutated real files (hypothesis).

Each example mutates one real file of tests/data (byte flips, 32-bit values
written over lengths and tags, bytes inserted or deleted, a cut anywhere)
and reads it through both header paths of :mod:`lazydicom.header`: the
measured fast walker and pydicom alone. The rule:

- where pydicom parses the file, the fast path gives the same rows, value for
  value and type for type;
- where they cannot agree, both skip the file with a reason (HeaderError);
- never another exception, and every row passes the index's own checks
  (frame bytes inside the file), so a mangled file cannot put offsets that
  point elsewhere into the index.

Examples are derandomized (the same in every run, so CI is reproducible);
``HYPOTHESIS_PROFILE=fuzz`` runs many more, at random.
"""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lazydicom import header, schema
from tests.faults import corpus
from tests.faults.catalog import cases

settings.register_profile(
    "faults",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "fuzz",
    max_examples=5000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "faults")

SOURCES = ["explicit-vr-le", "implicit-vr-le", "jpeg-lossless", "rle-lossless"]
KINDS = cases(
    2,
    "correct",
    {
        f"fuzz/{ts}": f"60 mutated copies of the {ts} file (hypothesis, derandomized): the "
        "fast walker gives pydicom's rows, or both skip the file"
        for ts in SOURCES
    },
)

_INTERESTING = [0, 1, 2, 0x7FFFFFFF, 0xFFFFFFF0, 0xFFFFFFFF, 0xFFFEE000, 0xFFFEE0DD]


def _mutation(size: int, header_end: int):
    """A strategy of functions bytes -> bytes."""
    at = st.integers(0, header_end + 64)
    flips = st.lists(st.tuples(at, st.integers(0, 255)), min_size=1, max_size=4).map(
        lambda changes: ("flip", changes)
    )
    words = st.tuples(at, st.sampled_from(_INTERESTING + [size, size // 2])).map(
        lambda x: ("word", x)
    )
    cut = st.integers(0, size).map(lambda n: ("cut", n))
    insert = st.tuples(at, st.binary(min_size=1, max_size=8)).map(lambda x: ("insert", x))
    delete = st.tuples(at, st.integers(1, 8)).map(lambda x: ("delete", x))
    return st.one_of(flips, words, cut, insert, delete)


def _apply(data: bytes, mutation) -> bytes:
    kind, arg = mutation
    out = bytearray(data)
    if kind == "flip":
        for pos, value in arg:
            out[pos] = value
    elif kind == "word":
        pos, value = arg
        out[pos : pos + 4] = struct.pack("<I", value)
    elif kind == "cut":
        del out[arg:]
    elif kind == "insert":
        pos, extra = arg
        out[pos:pos] = extra
    else:
        pos, n = arg
        del out[pos : pos + n]
    return bytes(out)


def _outcome(path: Path, fast: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return header._read_header(path, (), fast=fast)
        except header.HeaderError as exc:
            assert str(exc).strip(), "a skip needs a reason"
            return "skipped"


def _typed(outcome):
    if not isinstance(outcome, list):
        return outcome
    return repr([[(k, type(v).__name__, v) for k, v in row.items()] for row in outcome])


@pytest.mark.parametrize("kind", KINDS)
def test_fast_walker_agrees_with_pydicom(kind, tmp_path):
    source = corpus.sample(kind.split("/")[1])
    data = source.read_bytes()
    header_end = corpus.layout(source).pixel_value
    target = tmp_path / "mutated.dcm"

    @settings(settings.get_profile(PROFILE))
    @given(_mutation(len(data), header_end))
    def check(mutation):
        mutated = _apply(data, mutation)
        target.write_bytes(mutated)
        fast, slow = _outcome(target, True), _outcome(target, False)
        assert _typed(fast) == _typed(slow), mutation
        if isinstance(fast, list):
            rows = pd.DataFrame.from_records(
                [{**r, "path": "f.dcm", "size": len(mutated), "mtime": 0} for r in fast]
            )
            table, _ = schema.to_arrow(rows)
            schema.check_index(table, ())  # offsets inside the file, frames numbered

    check()
