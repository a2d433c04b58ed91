"""The container images: linted (no Docker engine runs here) and true to Airbyte's conventions."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def hadolint() -> str:
    return shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")


def test_the_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def stages() -> dict[str, str]:
    parts = re.split(r"^FROM .* AS (\S+)$", DOCKERFILE.read_text(), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_each_connector_image_follows_airbyte_conventions() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    found = stages()
    assert "USER 10001" in found["base"]  # every image runs unprivileged
    for target in ("source-bigcommerce", "source-shopify", "destination-brevo"):
        body = found[target]
        assert target in scripts
        assert f'ENTRYPOINT ["{target}"]' in body
        assert f'AIRBYTE_ENTRYPOINT="{target}"' in body
        assert f'io.airbyte.name="tajo/{target}"' in body
        assert 'io.airbyte.version="0.1.0"' in body
    assert 'ENTRYPOINT ["runner"]' in found["runner"]


def test_the_shopify_images_carry_the_schema_the_source_validates_against(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Shopify source validates its queries against the configured version's published
    schema on every read and check (connectors/shopify/source.py): its image and the runner's
    carry the schema files, fetched and checked once at build, where the source looks."""
    found = stages()
    fetch = found["shopify-schemas"]
    assert "schema.fetch()" in fetch
    made = re.search(r"^ENV TAJO_SHOPIFY_SCHEMAS=(\S+)$", fetch, flags=re.M)
    assert made
    for target in ("source-shopify", "runner"):
        copied = re.search(rf"^COPY --from=shopify-schemas {made[1]} (\S+)$", found[target],
                           flags=re.M)
        assert copied, target
        assert f"TAJO_SHOPIFY_SCHEMAS={copied[1]}" in found[target], target
    # With that folder filled, a read or check needs no download: the source reads the
    # files at TAJO_SHOPIFY_SCHEMAS and nothing else.
    from connectors.shopify import schema
    from connectors.shopify.source import connector

    for version in schema.VERSIONS:
        shutil.copy(schema.ensure(version), tmp_path / f"admin_{version}.json.gz")
    monkeypatch.setenv("TAJO_SHOPIFY_SCHEMAS", str(tmp_path))

    def no_download(*_: object, **__: object) -> None:
        raise AssertionError("the source downloaded the schema although the image has it")

    monkeypatch.setattr(schema, "fetch", no_download)
    for cached in (schema.document, schema.load, schema.scopes):
        cached.cache_clear()
    try:
        assert schema.cache_dir() == tmp_path
        assert connector.version_problem(schema.DEFAULT_VERSION) is None
    finally:
        for cached in (schema.document, schema.load, schema.scopes):
            cached.cache_clear()
