"""Airbyte's standard connector tests (airbyte-cdk's ``standard_tests``) on ``source-shopify``,
as tests/test_airbyte_standard.py runs them on ``source-bigcommerce``: the CDK's own
``SourceTestSuiteBase`` pointed at the console script, the scenarios in
``connectors/shopify/acceptance-test-config.yml``, against two shops of the Shopify sandbox.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airbyte_cdk.test.models import ConnectorTestScenario
from airbyte_cdk.test.standard_tests import SourceTestSuiteBase
from airbyte_standard import SandboxScenario, ScriptSource, script_path
from test_airbyte_standard import docker_engine_running

pytest_plugins = ["airbyte_cdk.test.standard_tests.pytest_hooks"]
pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def skip_image_tests_without_docker(request: pytest.FixtureRequest) -> None:
    """As for BigCommerce's suite: the CDK's image tests build and run the connector's image
    (the Dockerfile's source-shopify target), which needs a running Docker engine."""
    if request.node.get_closest_marker("image_tests") and not docker_engine_running():
        pytest.skip("no Docker engine running: the CDK's image tests build and run the "
                    "connector's image")


@pytest.fixture(scope="module", autouse=True)
def sandbox() -> Iterator[dict[str, Any]]:
    process = subprocess.Popen([script_path("runner"), "sandbox", "shopify", "--port", "0",
                                "--shops", "2", "--customers", "25", "--orders", "50",
                                "--products", "8", "--checkouts", "6", "--seed", "21",
                                "--plan", "enterprise"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline() if process.stdout else ""
    if not line:
        process.kill()
        raise RuntimeError("runner sandbox shopify did not start")
    ready = json.loads(line)
    values = {"TAJO_STD_SHOPIFY_URL": ready["url"],
              "TAJO_STD_SHOP": ready["shops"][0]["shop"],
              "TAJO_STD_SHOP_TOKEN": ready["shops"][0]["access_token"],
              "TAJO_STD_SHOP_2": ready["shops"][1]["shop"],
              "TAJO_STD_SHOP_TOKEN_2": ready["shops"][1]["access_token"]}
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield ready
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        process.terminate()
        process.wait(timeout=10)


class TestSourceShopify(SourceTestSuiteBase):
    connector_name = "source-shopify"

    @classmethod
    def get_connector_root_dir(cls) -> Path:
        return ROOT / "connectors" / "shopify"

    @classmethod
    def get_scenarios(cls) -> list[ConnectorTestScenario]:
        return [SandboxScenario.of(s) for s in super().get_scenarios()]

    @classmethod
    def create_connector(cls, scenario: ConnectorTestScenario | None) -> ScriptSource:
        return ScriptSource("source-shopify")
