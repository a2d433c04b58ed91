"""A Shopify stream's node is written three times: its page query, its bulk query (the
backfill) and its by-id query (webhooks). The engine takes each query as one file, with no
fragment shared between files, so they are copies; this keeps the copies selecting the same
fields (a field added to one only would make backfilled or webhook-fetched records differ from
paged ones)."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import TypeInfo, TypeInfoVisitor, Visitor, parse, visit

from connectors.shopify import schema

QUERIES = Path(__file__).resolve().parents[1] / "connectors/shopify/queries"
STREAMS = ["customers", "orders", "products", "collections", "abandoned_checkouts",
           "inventory_levels"]


def selected(text: str) -> set[tuple[str, str]]:
    """(type, field) pairs a query selects, leaving out the root, the connection wrappers and
    ``__typename`` (a bulk query adds it to join children to parents)."""
    info, out = TypeInfo(schema.load(schema.DEFAULT_VERSION)), set()

    class Fields(Visitor):
        def enter_field(self, node: object, *_: object) -> None:
            parent = info.get_parent_type()
            name = node.name.value  # type: ignore[attr-defined]
            if parent is None or name == "__typename" or parent.name in (
                    "QueryRoot", "PageInfo") or parent.name.endswith(("Connection", "Edge")):
                return
            out.add((parent.name, name))

    visit(parse(text), TypeInfoVisitor(info, Fields()))
    return out


@pytest.mark.parametrize("stream", STREAMS)
def test_bulk_and_by_id_queries_select_what_the_page_query_selects(stream: str) -> None:
    page = selected((QUERIES / f"{stream}.graphql").read_text())
    assert page
    copies = [p for p in (QUERIES / f"{stream}_bulk.graphql", QUERIES / f"{stream}_by_id.graphql")
              if p.exists()]
    assert copies
    for path in copies:
        other = selected(path.read_text())
        assert (sorted(page - other), sorted(other - page)) == ([], []), path.name
