"""The BigCommerce source: declared in specs/bigcommerce.json, run by the framework's engine."""

from __future__ import annotations

from connectors.bigcommerce.sandbox import sandbox_command
from framework.airbyte import airbyte_cli
from framework.catalog import data_path
from framework.source import HttpSource

connector = HttpSource(data_path("specs/bigcommerce.json"), sandbox=sandbox_command)

#: ``source-bigcommerce``: the Airbyte CLI (spec, check, discover, read).
main = airbyte_cli(connector)
