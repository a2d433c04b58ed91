"""Shopify's published Admin schema, fetched at set-up and pinned by checksum."""

from __future__ import annotations

import hashlib

import pytest

from connectors.shopify import schema


def test_an_unknown_field_fails_as_shopify_fails_it() -> None:
    errors = schema.validate(schema.DEFAULT_VERSION,
                             "{ customers(first: 5) { nodes { id emailx } } }")
    assert errors == ["Cannot query field 'emailx' on type 'Customer'. Did you mean 'email'?"]


def test_a_wrong_argument_fails() -> None:
    errors = schema.validate(schema.DEFAULT_VERSION,
                             "{ customers(first: 5, sortKey: PRICE) { nodes { id } } }")
    assert errors and "CustomerSortKeys" in errors[0]


def test_every_pinned_version_loads_and_knows_its_scopes() -> None:
    for version in schema.VERSIONS:
        assert schema.load(version).get_type("Customer") is not None
        assert schema.scopes(version)[("Customer", None)] == ["read_customers"]


def test_a_tarball_with_another_checksum_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path) -> None:
    import requests

    class Answer:
        content = b"not the package"

        def raise_for_status(self) -> None:
            return None

    monkeypatch.setattr(requests, "get", lambda *a, **k: Answer())
    monkeypatch.setenv("TAJO_SHOPIFY_SCHEMAS", str(tmp_path))
    with pytest.raises(schema.SchemaMissing, match="not the pinned"):
        schema.fetch()
    assert hashlib.sha256(Answer.content).hexdigest() != schema.SHA256
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_version_is_a_clear_error() -> None:
    with pytest.raises(schema.SchemaMissing, match="use one of 2025-10"):
        schema.ensure("2023-01")
