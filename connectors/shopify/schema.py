"""Shopify's own Admin GraphQL schema, offline: the authority the source and the sandbox answer to.

Shopify publishes the Admin API's schema of every supported version in its npm package
``@shopify/dev-mcp`` (``package/dist/data/admin_<version>.json.gz``: the introspection result
under ``data`` and, under ``offline_scopes``, the access scope each type and field needs).
The file is Shopify's, so it is not committed here: :func:`fetch` downloads the pinned
package from the npm registry once, checks its SHA-256 and keeps only the schema files in a
cache folder (``$TAJO_SHOPIFY_SCHEMAS``, or ``~/.cache/tajo-connectors/shopify-<package version>``).
The tests and ``runner sandbox shopify`` call :func:`ensure` (which fetches on first use);
``python -m connectors.shopify.schema fetch`` does it ahead of time (e.g. in an image build).

:func:`load` builds a graphql-core schema from it. ``assume_valid=True`` because the published
schema has deprecation quirks that strict validation rejects; queries are still validated
against it field by field and argument by argument, exactly as Shopify validates them.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

PACKAGE = "@shopify/dev-mcp"
PACKAGE_VERSION = "1.16.0"
TARBALL = f"https://registry.npmjs.org/{PACKAGE}/-/dev-mcp-{PACKAGE_VERSION}.tgz"
SHA256 = "4663c79229028e98f825a09d5f04ec6c3736331b740ce50260f9ffac10709474"
VERSIONS = ("2025-10", "2026-01", "2026-04", "2026-07", "2026-10")
# The default the source pins: a supported version (12 months) that is not the newest, so
# that a merchant's app has a quarter to move when Shopify releases the next one.
DEFAULT_VERSION = "2026-07"


class SchemaMissing(RuntimeError):
    """The schema files are not on this machine and could not be fetched."""


def cache_dir() -> Path:
    """Where the schema files are kept."""
    override = os.environ.get("TAJO_SHOPIFY_SCHEMAS")
    if override:
        return Path(override)
    return Path.home() / ".cache" / "tajo-connectors" / f"shopify-{PACKAGE_VERSION}"


def path(version: str) -> Path:
    """The cached schema file of an API version."""
    return cache_dir() / f"admin_{version}.json.gz"


def fetch(timeout: float = 120.0) -> Path:
    """Download the pinned package, check it, and keep its Admin schema files.

    The tarball is read in memory (about 10 MB compressed) and only the ``admin_*.json.gz``
    members are written, each through a temporary file and a rename, so a killed fetch never
    leaves a half-written schema behind.
    """
    import requests  # (lazily: ``load`` of a cached schema needs no HTTP client)

    try:
        response = requests.get(TARBALL, timeout=timeout)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise SchemaMissing(f"could not download Shopify's Admin schema ({TARBALL}): {exc}; "
                            "check the connection to the npm registry, or set "
                            "TAJO_SHOPIFY_SCHEMAS to a folder holding admin_<version>.json.gz"
                            ) from None
    digest = hashlib.sha256(response.content).hexdigest()
    if digest != SHA256:
        raise SchemaMissing(f"{TARBALL} has SHA-256 {digest}, not the pinned {SHA256}: "
                            "refusing a schema that is not the one the project was tested on")
    target = cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as archive:
        for member in archive.getmembers():
            name = Path(member.name).name
            if not (member.isfile() and member.name.startswith("package/dist/data/admin_")
                    and name.endswith(".json.gz")):
                continue
            source = archive.extractfile(member)
            assert source is not None
            with tempfile.NamedTemporaryFile(dir=target, delete=False) as out:
                out.write(source.read())
            os.replace(out.name, target / name)
    return target


def ensure(version: str) -> Path:
    """The schema file of ``version``, fetched first when it is not cached."""
    if version not in VERSIONS and version != "unstable":
        raise SchemaMissing(f"Shopify API version {version!r} is not one this project knows; "
                            f"use one of {', '.join(VERSIONS)}")
    if not path(version).exists():
        fetch()
    return path(version)


@functools.lru_cache(maxsize=8)
def document(version: str) -> dict[str, Any]:
    """The schema file's JSON: ``data`` (introspection) and ``offline_scopes``."""
    with gzip.open(ensure(version), "rb") as raw:
        doc: dict[str, Any] = json.load(raw)
    return doc


@functools.lru_cache(maxsize=8)
def load(version: str) -> Any:
    """The graphql-core schema of an Admin API version."""
    from graphql import build_client_schema

    return build_client_schema(document(version)["data"], assume_valid=True)


@functools.lru_cache(maxsize=8)
def scopes(version: str) -> dict[tuple[str, str | None], list[str]]:
    """The access scopes Shopify documents: ``(type, None)`` for a type and ``(type, field)``
    for a field, each with the offline scopes of which any one grants access."""
    items = document(version)["offline_scopes"]["items"]
    return {(item["typeName"], item.get("fieldName")): list(item.get("offlineScopes") or [])
            for item in items}


def validate(version: str, query: str) -> list[str]:
    """The errors Shopify's schema finds in a query (empty when it is valid)."""
    from graphql import parse
    from graphql import validate as graphql_validate
    from graphql.error import GraphQLSyntaxError

    try:
        ast = parse(query)
    except GraphQLSyntaxError as exc:
        return [exc.message]
    return [error.message for error in graphql_validate(load(version), ast)]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["fetch"]:
        print("usage: python -m connectors.shopify.schema fetch", file=sys.stderr)
        return 2
    try:
        folder = fetch()
    except SchemaMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Shopify Admin schemas {', '.join(VERSIONS)} in {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
