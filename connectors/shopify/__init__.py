"""The Shopify source: declared in specs/shopify.json (GraphQL streams whose queries are in
``queries/``), run by the framework's engine; its code, what JSON cannot say, is in
``source.py``, its webhook verification in ``webhooks.py``, its mapping to the commerce model
in ``commerce.json``. ``schema.py`` holds Shopify's published Admin schema, which every query
is validated against.

The connector and the rest of ``source.py`` are imported the first time one of them is asked
for (``from connectors.shopify import connector``, the ``tajo.connectors`` entry point):
``runner spec shopify`` reads ``SPEC_FILE`` alone (see ``framework/plugins/declared.py``).
"""

from __future__ import annotations

from framework.plugins.declared import data_file, lazy

SPEC_FILE = data_file("specs/shopify.json")

#: The names ``source.py`` gives the package (the ones its users import from it).
__getattr__ = lazy(__name__, "connectors.shopify.source", {
    "connector", "main", "COMMERCE", "COMMERCE_FUNCTIONS", "ShopifySource", "numeric_ids",
    "all_orders_problem"})
