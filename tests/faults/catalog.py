"""The catalog of fault kinds: what each tries, and the outcome its test asserts.

Every test in ``tests/faults`` is parametrized with :func:`cases`, which
registers each kind here, so the catalog is exactly what the suite runs. The
table in ``docs/reliability.md`` is generated from it (``python -m
tests.faults.catalog --write``) and ``test_catalog.py`` fails when the page
and the suite disagree, so the numbers on the page cannot drift.

Outcomes are the three the issue allows ("never wrong data, never a traceback
from a dependency, never a write or delete outside the database folder"):

``error``
    a clear lazydicom error (a :class:`~lazydicom.LazyDicomError` subclass,
    or one ``lazydicom: error:`` line from the command line) naming the file
    or argument, and nothing changed;
``skipped``
    the file is listed in ``Database.skipped()`` with its reason, every other
    file is indexed;
``correct``
    correct data: the values, index or files are what they should be (a
    damaged index is rebuilt with a warning, a value that cannot be stored is
    absent with a warning, a killed process's work is finished or undone).

Kinds written ahead of work in progress are marked ``pending``: their tests
are strict xfails until that work lands.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

OUTCOMES = {
    "error": "clear lazydicom error, nothing changed",
    "skipped": "file skipped, reason in `skipped()`",
    "correct": "correct data",
}
CLASSES = {
    1: "One bad value breaks the folder",
    2: "Header parsing that disagrees with the file",
    3: "Files changed after indexing",
    4: "Damaged index, killed processes",
    5: "Symbolic links and where writes go",
    6: "Arguments",
    7: "Worker processes",
    8: "Command line",
    9: "Concurrency",
}

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
START, END = "<!-- fault-table:start -->", "<!-- fault-table:end -->"


@dataclass(frozen=True)
class Kind:
    """One kind of bad input or fault."""

    id: str
    issue_class: int
    outcome: str
    what: str
    pending: bool = False


KINDS: dict[str, Kind] = {}


def cases(issue_class: int, outcome: str, kinds: dict[str, str], *, pending: bool = False,
          reason: str = "work in progress") -> list:
    """Register ``{id: what}`` kinds and return them as pytest params (id = kind id).

    ``pending`` kinds get ``xfail(strict=True, reason=reason)``.
    """
    assert outcome in OUTCOMES, outcome
    params = []
    for kind_id, what in kinds.items():
        kind = Kind(kind_id, issue_class, outcome, what, pending)
        if KINDS.get(kind_id, kind) != kind:
            raise ValueError(f"fault kind {kind_id!r} registered twice, differently")
        KINDS[kind_id] = kind
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if pending else []
        params.append(pytest.param(kind_id, id=kind_id, marks=marks))
    return params


def load_all() -> dict[str, Kind]:
    """Import every fault test module (registering its kinds); return the catalog."""
    package = importlib.import_module("tests.faults")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("test_"):
            importlib.import_module(f"tests.faults.{module.name}")
    return KINDS


def markdown(kinds: dict[str, Kind]) -> str:
    """The tables of docs/reliability.md: counts per class and outcome, then every kind."""
    lines = [
        f"{len(kinds)} kinds of bad input and fault are tried by `tests/faults`"
        + (
            f" ({pending} of them pending work in progress, as strict expected failures)."
            if (pending := sum(k.pending for k in kinds.values()))
            else "; none is pending."
        ),
        "",
        "| class | kinds | " + " | ".join(OUTCOMES.values()) + " | pending |",
        "|---|---|" + "---|" * len(OUTCOMES) + "---|",
    ]
    total: Counter = Counter()
    for number, title in CLASSES.items():
        mine = [k for k in kinds.values() if k.issue_class == number]
        if not mine:
            continue
        done = [k for k in mine if not k.pending]
        counts = Counter(k.outcome for k in done)
        total.update(counts)
        total["pending"] += len(mine) - len(done)
        cells = " | ".join(str(counts[o]) for o in OUTCOMES)
        lines.append(f"| {number}. {title} | {len(mine)} | {cells} | {len(mine) - len(done)} |")
    cells = " | ".join(f"**{total[o]}**" for o in OUTCOMES)
    lines.append(f"| **total** | **{len(kinds)}** | {cells} | **{total['pending']}** |")
    lines += ["", "Every kind, by class:", ""]
    for number, title in CLASSES.items():
        mine = sorted((k for k in kinds.values() if k.issue_class == number), key=lambda k: k.id)
        if not mine:
            continue
        lines += [f"??? note \"{number}. {title} ({len(mine)})\"", ""]
        lines += ["    | kind | what is tried | outcome |", "    |---|---|---|"]
        for k in mine:
            outcome = OUTCOMES[k.outcome] + (" (pending)" if k.pending else "")
            what = k.what.replace("|", "\\|")
            lines.append(f"    | `{k.id}` | {what} | {outcome} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def docs_section(text: str) -> str:
    """The generated part of docs/reliability.md."""
    match = re.search(re.escape(START) + r"\n(.*?)" + re.escape(END), text, re.S)
    if match is None:
        raise ValueError(f"{DOCS} has no {START} ... {END} section")
    return match.group(1)


def write_docs() -> None:
    text = DOCS.read_text(encoding="utf-8")
    new = markdown(load_all())
    start = text.index(START) + len(START) + 1
    DOCS.write_text(text[:start] + new + text[text.index(END):], encoding="utf-8")


def main() -> None:
    # run as a script this module is __main__: use the one the tests register into
    registry = importlib.import_module("tests.faults.catalog")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"update {DOCS.name}")
    args = parser.parse_args()
    if args.write:
        registry.write_docs()
    else:
        print(registry.markdown(registry.load_all()))


if __name__ == "__main__":
    main()
