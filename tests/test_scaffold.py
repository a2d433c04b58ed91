"""``runner new-connector``: the folder it writes passes the standard suite as it is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

pytestmark = pytest.mark.e2e


def test_a_new_connector_passes_the_standard_suite(tmp_path: Path) -> None:
    made = run_cli("runner", "new-connector", "acme_shop", "--dir", str(tmp_path))
    assert made.returncode == 0, made.stderr.decode()
    root = tmp_path / "tajo-acme_shop"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "README.md", "pyproject.toml", "tajo_acme_shop/__init__.py", "tajo_acme_shop/sandbox.py",
        "tajo_acme_shop/schemas/items.json", "tajo_acme_shop/spec.json",
        "tests/test_acme_shop.py"]
    env = {**os.environ, "PYTHONPATH": str(root), "TAJO_CONNECTORS": "acme_shop",
           "TAJO_PLUGINS": "acme_shop=tajo_acme_shop:connector"}
    listed = run_cli("runner", "connectors", env=env)
    assert listed.stdout.decode().split()[:2] == ["acme_shop", "source"]
    suite = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                           cwd=root, env=env, capture_output=True, timeout=300)
    assert suite.returncode == 0, suite.stdout.decode()[-2000:]
    assert "8 passed" in suite.stdout.decode()


def test_bad_names_and_existing_folders_are_refused(tmp_path: Path) -> None:
    bad = run_cli("runner", "new-connector", "Acme-Shop", "--dir", str(tmp_path))
    assert bad.returncode == 2
    assert "use 2 to 31 lowercase letters" in bad.stderr.decode()
    assert run_cli("runner", "new-connector", "acme", "--dir", str(tmp_path)).returncode == 0
    again = run_cli("runner", "new-connector", "acme", "--dir", str(tmp_path))
    assert again.returncode == 2 and "exists already" in again.stderr.decode()


def test_a_malformed_plugin_setting_is_named() -> None:
    result = run_cli("runner", "connectors", env={"TAJO_PLUGINS": "acme:connector"})
    assert result.returncode != 0
    assert "TAJO_PLUGINS: 'acme:connector' is not name=module:attribute" in \
        result.stderr.decode()
