"""The import layering of design.md and style.md, checked with import-linter.

The contract in pyproject.toml ([tool.importlinter]) lists the layers from
the CLI down to errors; a module importing a layer above it (a cycle in the
making) fails this test with import-linter's report of the import chain.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def test_modules_import_only_downwards():
    lint = shutil.which("lint-imports")
    if lint is None:  # pragma: no cover - the test extra installs import-linter
        pytest.fail("lint-imports is not installed: pip install -e '.[test]'")
    done = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": str(Path(sys.executable).parent)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout
