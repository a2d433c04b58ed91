"""The code stays ruff clean and mypy clean (part of the README's test command, so CI enforces
both)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


# About 10 s of CPU from a clean checkout (2 s with mypy's cache, .mypy_cache): not fast loop.
@pytest.mark.e2e
def test_mypy_is_clean() -> None:
    """What ``[tool.mypy]`` in pyproject.toml names (framework, app, connectors) type-checks."""
    result = subprocess.run([sys.executable, "-m", "mypy"], capture_output=True, text=True,
                            cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
