"""``runner new-connector NAME``: a plugin folder that passes the standard suite as it is.

What it writes (``tajo-NAME/``): ``pyproject.toml`` (the entry point), ``tajo_NAME/spec.json``
(client, one incremental stream of customers and its commerce model stream, declared as data),
``tajo_NAME/schemas/customers.json``, ``tajo_NAME/commerce.json`` (the mapping of customers to
the commerce model: a stub with the fields every platform has), ``tajo_NAME/sandbox.py`` (a
local API to develop and test against), ``tajo_NAME/__init__.py`` (the connector and its
mapping), ``tests/test_NAME.py`` (the standard suite) and a README. Replace the sandbox's
endpoint and the stream with the platform's, and map its orders, products and carts too; the
suite keeps you honest.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from framework.errors import ConfigError

NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")

PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.21"]
build-backend = "hatchling.build"

[project]
name = "tajo-{name}"
version = "0.1.0"
description = "A tajo-connectors source for {title}"
requires-python = ">=3.11"
dependencies = ["tajo-connectors"]

[project.optional-dependencies]
test = ["pytest>=8"]

[project.entry-points."tajo.connectors"]
{name} = "tajo_{name}:connector"

[tool.hatch.build.targets.wheel]
packages = ["tajo_{name}"]
"""

INIT = '''\
"""The {title} source: declared in spec.json, run by the framework's engine; its records as the
commerce model (specs/schemas/commerce/v1) are declared in commerce.json."""

from pathlib import Path

from framework.declarative.mapping import Mapping
from framework.engine.source import HttpSource

from tajo_{name}.sandbox import sandbox_command

HERE = Path(__file__).parent
COMMERCE = Mapping(HERE / "commerce.json")
connector = HttpSource(HERE / "spec.json", sandbox=sandbox_command,
                       hooks=COMMERCE.hooks("commerce"))
'''

SANDBOX = '''\
"""``runner sandbox {name}``: a local {title} API to develop and test against.

Replace ``customers`` with the platform's real endpoints, shapes, errors and rate-limit
headers.
"""

from __future__ import annotations

import math
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from framework.declarative.formats import format_utc
from framework.devkit.sandbox import json_response, serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

START = datetime(2024, 1, 1, tzinfo=UTC)


def customer(number: int) -> dict[str, Any]:
    updated = START + timedelta(minutes=number)
    return {{"id": number, "email": f"customer{{number}}@example.com",
             "first_name": f"First{{number}}", "last_name": "Example",
             "updated_at": format_utc(updated)}}


def build_app(api_key: str, count: int) -> Starlette:
    async def customers(request: Request) -> Response:
        if request.headers.get("x-api-key") != api_key:
            return json_response({{"error": "invalid API key"}}, 401)
        try:
            page = max(int(request.query_params.get("page", 1)), 1)
            limit = min(max(int(request.query_params.get("limit", 50)), 1), 250)
        except ValueError:
            return json_response({{"error": "page and limit must be integers"}}, 400)
        rows = [customer(n) for n in range(1, count + 1)]
        since = request.query_params.get("updated_at_min")
        if since:
            rows = [r for r in rows if r["updated_at"] >= since]
        window = rows[(page - 1) * limit:page * limit]
        return json_response({{"data": window, "meta": {{
            "total": len(rows), "total_pages": max(1, math.ceil(len(rows) / limit))}}}})

    return Starlette(routes=[Route("/v1/customers", customers)])


@click.command("{name}")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, help="0: any free port.")
@click.option("--customers", "count", default=300, show_default=True)
def sandbox_command(host: str, port: int, count: int) -> None:
    """Serve the {title} sandbox; prints {{"url", "api_key", "account"}} once ready."""
    api_key = secrets.token_hex(16)
    serve(build_app(api_key, count), host, port, {{"api_key": api_key, "account": "demo"}})
'''

TESTS = '''\
"""The standard connector suite, generated for this connector."""

from framework.devkit.testing import source_tests

from tajo_{name} import connector

Test{cls} = source_tests(
    connector, sandbox_args=["--customers", "300"],
    config=lambda ready: {{"api_url": ready["url"], "api_key": ready["api_key"],
                          "account": ready["account"]}})
'''

README = """\
# tajo-{name}

A [tajo-connectors](https://github.com/) source for {title}, declared in
`tajo_{name}/spec.json`, with its mapping to the commerce model in `tajo_{name}/commerce.json`
(customers only, so far: add orders, products and carts) and a local sandbox
(`runner sandbox {name}`).

```sh
pip install -e '.[test]'
runner connectors                  # {name} is listed
pytest                              # the standard connector suite against the sandbox
```

Without installing: `PYTHONPATH=. TAJO_PLUGINS={name}=tajo_{name}:connector pytest`.
"""


def spec(name: str, title: str) -> dict[str, object]:
    return {
        "name": name, "kind": "source", "documentationUrl": "https://example.com/docs",
        "connectionSpecification": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": f"{title} source", "type": "object",
            "required": ["api_key", "account"],
            "properties": {
                "api_key": {"title": "API key", "type": "string", "minLength": 1,
                            "airbyte_secret": True, "order": 0},
                "account": {"title": "Account", "type": "string", "minLength": 1,
                            "description": "The shop (store, site) on the platform: it keys "
                                           "the records and the saved state", "order": 1},
                "api_url": {"title": "API URL", "type": "string",
                            "default": "https://api.example.com", "order": 2},
                "start_date": {"title": "Start date", "type": "string",
                               "description": "ISO 8601; records updated before it are "
                                              "skipped on the first run", "order": 3},
                "page_size": {"type": "integer", "minimum": 1, "maximum": 250,
                              "default": 100, "order": 4}}},
        "client": {
            "base_url": "{api_url}",
            "auth": {"type": "header", "header": "X-Api-Key", "config_field": "api_key"},
            # The key of each stream state's per-account positions (and of a config's list
            # of accounts): {"accounts": {account: {"updated_at": ...}}}.
            "accounts": "accounts", "account_field": "account",
            "add_fields": {"account": "{account}"},
            "errors": {"401": f"{title} rejected the API key (HTTP 401 on {{path}}): create a "
                              "new key and put it in api_key"}},
        "stream_defaults": {"records_path": "data", "total_path": "meta.total",
                            "check_params": {"limit": 1}},
        "streams": [{
            "name": "customers", "path": "/v1/customers",
            "paginator": {"type": "page_number",
                          "options": {"total_pages_path": "meta.total_pages"}},
            "primary_key": ["account", "id"],
            "incremental": {"cursor_field": "updated_at", "param": "updated_at_min",
                            "format": "iso8601"},
            "schema": "schemas/customers.json"}, {
            # The customers as the commerce model (commerce.json), read with them in one pass:
            # what a marketing destination reads. The schema is the model's, by its $id.
            "name": "commerce_customers",
            "parent": {"stream": "customers", "hook": "commerce.customer", "whole": True,
                       "cursor_field": "updated_at"},
            "primary_key": ["platform", "account", "id"],
            "schema": "urn:tajo:commerce:v1:customer"}]}


def mapping(name: str) -> dict[str, object]:
    """A stub of the platform's mapping to the commerce model: customers, by the sandbox's
    field names; consent is unknown until the platform's fields for it are mapped."""
    unknown = {"const": "unknown"}
    return {
        "description": "Records of this platform as the commerce model (specs/schemas/commerce/"
                       "v1): a path of the API record per model field. Map the platform's "
                       "consent fields, then add order, product, cart (README: Commerce model).",
        "model": "commerce/v1", "platform": name, "account": "account",
        "kinds": {"customer": {"stream": "customers", "fields": {
            "id": "id", "updated_at": "updated_at", "email": "email",
            "first_name": "first_name", "last_name": "last_name",
            "consent.email.state": unknown, "consent.sms.state": unknown,
            "consent.abandoned_cart.state": unknown}}}}


SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#", "title": "A customer", "type": "object",
    "required": ["account", "id", "updated_at"], "additionalProperties": True,
    "properties": {"account": {"type": "string"}, "id": {"type": "integer"},
                   "email": {"type": ["null", "string"]},
                   "first_name": {"type": ["null", "string"]},
                   "last_name": {"type": ["null", "string"]},
                   "updated_at": {"type": "string", "format": "date-time"}}}


def scaffold(name: str, where: Path) -> Path:
    """Write the plugin folder ``where/tajo-NAME``; returns it."""
    if not NAME.match(name):
        raise ConfigError(f"connector name {name!r}: use 2 to 31 lowercase letters, digits and "
                          "underscores, starting with a letter (e.g. shopify)")
    root = where / f"tajo-{name}"
    if root.exists():
        raise ConfigError(f"{root} exists already: choose another name or --dir")
    title = name.replace("_", " ").title()
    package = root / f"tajo_{name}"
    (package / "schemas").mkdir(parents=True)
    (root / "tests").mkdir()
    files = {
        root / "pyproject.toml": PYPROJECT.format(name=name, title=title),
        root / "README.md": README.format(name=name, title=title),
        package / "__init__.py": INIT.format(name=name, title=title),
        package / "sandbox.py": SANDBOX.format(name=name, title=title),
        package / "spec.json": json.dumps(spec(name, title), indent=2) + "\n",
        package / "schemas" / "customers.json": json.dumps(SCHEMA, indent=2) + "\n",
        package / "commerce.json": json.dumps(mapping(name), indent=2) + "\n",
        root / "tests" / f"test_{name}.py": TESTS.format(name=name, cls=title.replace(" ", "")),
    }
    for path, text in files.items():
        path.write_text(text)
    return root
