"""The documentation builds, and its examples run.

- ``mkdocs build --strict`` must pass: every page in the nav, every link and
  anchor resolves, and mkdocstrings renders the API from the docstrings
  (numpy style). Skipped when the ``docs`` extra is not installed.
- The ``>>>`` examples of the pages in :data:`DOCTESTED` run as doctests, from
  the repository root, with ELLIPSIS and NORMALIZE_WHITESPACE. Markdown code
  fences are blanked out first (keeping line numbers), so a closing fence is
  not read as expected output.

- The ``python`` blocks of README.md and of every docs page run as written:
  each block as a script of its own (``__name__ == "__main__"``, so process
  pools work), in order, in a folder holding a copy of ``tests/data``. A
  block that cannot run here (a signature, a cluster's address) is marked
  with ``<!-- not run: why -->`` on the line before its fence.
- The ``lazydicom`` commands of the README's ``bash`` blocks run too.
- The command-line examples (``$ lazydicom ...`` lines in ``text`` blocks,
  followed by the output shown) run in a copy of ``tests/data`` and must print
  what the page shows (``...`` stands for any lines).

pytest's own ``--doctest-glob='*.md'`` does not reach ``docs/`` (testpaths are
``tests`` and ``lazydicom``), and could not handle the fences anyway.
"""

from __future__ import annotations

import contextlib
import doctest
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import lazydicom.errors

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DATA = ROOT / "tests" / "data"

#: Pages whose examples are doctests.
DOCTESTED = ["getting-started.md", "semantics.md", "writing.md"]

_FENCE = re.compile(r"(?m)^[ \t]*(```|~~~).*$")


class MarkdownDocTestParser(doctest.DocTestParser):
    """Doctest parser for Markdown: fence lines become blank lines."""

    def parse(self, string: str, name: str = "<string>"):
        return super().parse(_FENCE.sub("", string), name)


def _missing_docs_tools() -> list[str]:
    wanted = {
        "mkdocs": "mkdocs",
        "material": "mkdocs-material",
        "mkdocstrings": "mkdocstrings",
        "mkdocstrings_handlers.python": "mkdocstrings-python",
    }
    missing = []
    for module, dist in wanted.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(dist)
    return missing


def test_mkdocs_build_strict(tmp_path):
    missing = _missing_docs_tools()
    if missing:
        pytest.skip(f"docs tools not installed ({', '.join(missing)}): pip install -e '.[docs]'")
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--quiet",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(site),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"mkdocs build --strict failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for anchor in (
        "lazydicom.open",
        "lazydicom.zeros",
        "lazydicom.Database",
        "lazydicom.Study.ndarray",
        "lazydicom.Series.ndarray",
        "lazydicom.Series.numpy",
        "lazydicom.Series.xarray",
        "lazydicom.Series.to_zarr",
        "lazydicom.cache.FrameCache",
        "lazydicom.extract.extract",
        "lazydicom.io.zarr.to_zarr",
        "lazydicom.io.xarray.to_xarray",
        "lazydicom.backend.LazyDicomBackendEntrypoint",
        "lazydicom.CacheWarning",
        *(f"lazydicom.{name}" for name in lazydicom.errors.__all__),
    ):
        assert f'id="{anchor}"' in api, f"API page does not document {anchor}"
    # docstrings render: no Sphinx role left as text (mkdocstrings does not read them)
    for page in site.rglob("*.html"):
        roles = re.findall(r":(?:func|class|meth|mod|data|attr|exc|obj):", page.read_text("utf-8"))
        assert not roles, f"{page.relative_to(site)} shows Sphinx roles as text: {roles[:5]}"


@pytest.mark.parametrize("page", DOCTESTED)
def test_page_examples(page, tmp_path, monkeypatch):
    path = DOCS / page
    monkeypatch.chdir(ROOT)  # examples copy tests/data/... by relative path
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # their mkdtemp() folders
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        result = doctest.testfile(
            str(path),
            module_relative=False,
            parser=MarkdownDocTestParser(),
            optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
            encoding="utf-8",
        )
    assert result.attempted > 0, f"{page} has no examples"
    assert result.failed == 0, (
        f"{result.failed} of {result.attempted} examples in docs/{page} failed:\n"
        f"{report.getvalue()}"
    )


_BLOCK = re.compile(r"(?ms)^```(\w*)[^\n]*\n(.*?)^```[ \t]*$")


def _blocks(path: Path, *languages: str) -> list[str]:
    """The bodies of the fenced code blocks of a Markdown file in ``languages``."""
    return [body for lang, body in _BLOCK.findall(path.read_text(encoding="utf-8"))
            if lang in languages]


def _console_examples(path: Path) -> list[tuple[str, str]]:
    """``(command, output shown)`` for each ``$ lazydicom ...`` line of the text blocks."""
    examples = []
    for body in _blocks(path, "text"):
        for chunk in re.split(r"(?m)^(?=\$ )", body):
            if chunk.startswith("$ lazydicom "):
                command, _, output = chunk.partition("\n")
                examples.append((command[2:], output))
    return examples


def _bundled_data(root: Path) -> Path:
    """A copy of ``tests/data`` at ``root/tests/data`` (the examples' paths are relative)."""
    shutil.copytree(DATA, root / "tests" / "data", ignore=shutil.ignore_patterns(".lazydicom"))
    return root


def test_command_line_examples_print_what_the_page_shows(tmp_path, monkeypatch):
    from lazydicom.cli import main

    examples = _console_examples(DOCS / "cli.md")
    assert len(examples) >= 2, "docs/cli.md shows no `$ lazydicom` example"
    monkeypatch.chdir(_bundled_data(tmp_path))
    checker = doctest.OutputChecker()
    for command, shown in examples:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(shlex.split(command)[1:])
        got = out.getvalue() + err.getvalue()
        assert checker.check_output(shown, got, doctest.ELLIPSIS), (
            f"docs/cli.md: `{command}` (exit {status}) printed\n{got}\nbut the page shows\n"
            f"{shown}"
        )


_RESOLVE = """
import functools, json, sys
import lazydicom
missing = []
for name in json.loads(sys.argv[1]):
    try:
        functools.reduce(getattr, name.split(".")[1:], lazydicom)
    except AttributeError as exc:
        missing.append(f"{name}: {exc}")
print("\\n".join(missing))
"""


def test_names_the_docs_use_work_after_a_plain_import():
    """``lazydicom.extract.extract``, ``lazydicom.cache.FrameCache``... after ``import lazydicom``.

    In a fresh interpreter, so that no submodule is imported already.
    """
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    names = sorted({name for page in pages for name in re.findall(
        r"\blazydicom(?:\.[A-Za-z_]\w*)+", page.read_text(encoding="utf-8"))})
    assert "lazydicom.cache.FrameCache" in names and "lazydicom.extract.extract" in names
    proc = subprocess.run([sys.executable, "-c", _RESOLVE, json.dumps(names)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not proc.stdout.strip(), f"names in the docs that do not resolve:\n{proc.stdout}"


_NOT_RUN = re.compile(r"<!--\s*not run:\s*\S.*?-->\s*$")
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def _python_programs(path: Path) -> list[str]:
    """The ``python`` blocks of a page, in order, without those marked not run."""
    text = path.read_text(encoding="utf-8")
    programs = []
    for match in _BLOCK.finditer(text):
        before = text[:match.start()].rstrip().rsplit("\n", 1)[-1]
        if match.group(1) == "python" and not _NOT_RUN.search(before):
            programs.append(match.group(2))
    return programs


def _page_param(path: Path):
    uses_cluster = any("LocalCluster(" in p for p in _python_programs(path))
    return pytest.param(path, id=path.name,
                        marks=[pytest.mark.distributed] if uses_cluster else [])


@pytest.mark.parametrize("page", [_page_param(p) for p in PAGES if _python_programs(p)])
def test_python_blocks_run_as_written(page, tmp_path):
    """Each block is a script of its own: a reader may copy any one of them."""
    folder = _bundled_data(tmp_path)
    for number, code in enumerate(_python_programs(page), 1):
        program = tmp_path / f"example{number}.py"
        program.write_text(code, encoding="utf-8")
        proc = subprocess.run([sys.executable, program.name], cwd=folder,
                              env={**os.environ, "PYTHONPATH": str(ROOT)},
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (
            f"python block {number} of {page.relative_to(ROOT)} failed:\n{code}\n"
            f"{proc.stderr[-3000:]}"
        )


def test_readme_commands_run(tmp_path, monkeypatch):
    """The ``lazydicom`` commands of the README's set-up block, on the bundled data."""
    from lazydicom.cli import main

    commands = [part.strip() for body in _blocks(ROOT / "README.md", "bash")
                for line in body.splitlines() for part in line.split("&&")
                if part.strip().startswith("lazydicom ")]
    assert len(commands) >= 2
    monkeypatch.chdir(_bundled_data(tmp_path))
    for command in commands:
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(shlex.split(command)[1:]) == 0, command
