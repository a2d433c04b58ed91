"""``runner new-connector``: the folder it writes passes the standard suite as it is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from jsonschema import Draft7Validator

from framework.declarative.mapping import Mapping
from framework.declarative.spec import load_spec
from framework.devkit.scaffold import scaffold

pytestmark = pytest.mark.e2e


def test_a_new_connector_passes_the_standard_suite(tmp_path: Path) -> None:
    made = run_cli("runner", "new-connector", "acme_shop", "--dir", str(tmp_path))
    assert made.returncode == 0, made.stderr.decode()
    root = tmp_path / "tajo-acme_shop"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "README.md", "pyproject.toml", "tajo_acme_shop/__init__.py",
        "tajo_acme_shop/commerce.json", "tajo_acme_shop/sandbox.py",
        "tajo_acme_shop/schemas/customers.json", "tajo_acme_shop/spec.json",
        "tests/test_acme_shop.py"]
    env = {**os.environ, "PYTHONPATH": str(root), "TAJO_CONNECTORS": "acme_shop",
           "TAJO_PLUGINS": "acme_shop=tajo_acme_shop:connector"}
    listed = run_cli("runner", "connectors", env=env)
    assert listed.stdout.decode().split()[:2] == ["acme_shop", "source"]
    suite = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                           cwd=root, env=env, capture_output=True, timeout=300)
    assert suite.returncode == 0, suite.stdout.decode()[-2000:]
    assert "8 passed" in suite.stdout.decode()  # the model stream's records among them
    read = run_cli("runner", "discover", "acme_shop", env=env)
    streams = [s["name"] for s in json.loads(read.stdout)["catalog"]["streams"]]
    assert streams == ["customers", "commerce_customers"]


def test_the_scaffold_maps_customers_to_the_commerce_model(tmp_path: Path) -> None:
    """The mapping stub loads, is checked against the model, and makes a valid model customer
    of a record of the scaffold's sandbox (as the engine hands it over, account added)."""
    root = scaffold("acme", tmp_path)
    mapping = Mapping(root / "tajo_acme" / "commerce.json")
    assert set(mapping.kinds) == {"customer"} and mapping.platform == "acme"
    spec = load_spec(root / "tajo_acme" / "spec.json")
    model = spec.schemas["commerce_customers"]
    assert model["$id"] == "urn:tajo:commerce:v1:customer"
    record = {"account": "demo", "id": 7, "email": "customer7@example.com",
              "first_name": "First7", "last_name": "Example", "updated_at": "2024-01-01T00:07:00Z"}
    mapped = mapping.map("customer", record)
    assert mapped is not None
    assert not list(Draft7Validator(model).iter_errors(mapped))
    assert (mapped["platform"], mapped["account"], mapped["id"]) == ("acme", "demo", "7")
    assert mapped["consent"]["abandoned_cart"] == {"state": "unknown"}  # until it is mapped


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
