"""PyAirbyte runs ``source-bigcommerce`` as a local executable and caches it in DuckDB."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import Sandbox

# PyAirbyte reads these when imported: no registry lookups (a local executable), no telemetry.
os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
airbyte = pytest.importorskip("airbyte", reason="PyAirbyte could not be installed here")

pytestmark = pytest.mark.e2e


def test_pyairbyte_reads_the_source_into_its_duckdb_cache(
        make_sandbox, tmp_path: Path) -> None:
    store: Sandbox = make_sandbox("--customers", "70", "--orders", "45", "--products", "12",
                                  "--plan", "enterprise", "--seed", "9")
    executable = shutil.which("source-bigcommerce") or str(
        Path(sys.executable).parent / "source-bigcommerce")
    source = airbyte.get_source(
        "source-bigcommerce", local_executable=executable,
        config={"api_url": store.url,  # PyAirbyte validates it against the published spec
                "store_setup": {"mode": "one_store", "store_hash": store.store_hash,
                                "access_token": store.access_token}})
    source.check()
    assert "customers" in source.get_available_streams()
    source.select_streams(["customers", "orders", "order_products", "products"])
    cache = airbyte.new_local_cache("tajo_test", cache_dir=str(tmp_path / "cache"))
    result = source.read(cache=cache)
    frames = {name: result[name].to_pandas() for name in ("customers", "orders", "products")}
    assert {name: len(frame) for name, frame in frames.items()} == {
        "customers": 70, "orders": 45, "products": 12}
    assert set(frames["customers"]["store_hash"]) == {store.store_hash}
    assert frames["orders"]["id"].is_unique
    assert len(result["order_products"].to_pandas()) > 45
