"""The BigCommerce source: declared in specs/bigcommerce.json, run by the framework's engine
(its code, what JSON cannot say, is in ``source.py``).

The connector and the rest of ``source.py`` are imported the first time one of them is asked
for (``from connectors.bigcommerce import connector``, the ``tajo.connectors`` entry point):
``runner spec bigcommerce`` reads ``SPEC_FILE`` alone, without the engine, pydantic or requests
(see ``framework/plugins/declared.py``).
"""

from __future__ import annotations

from framework.plugins.declared import data_file, lazy

SPEC_FILE = data_file("specs/bigcommerce.json")

#: The names ``source.py`` gives the package (the ones its users import from it).
__getattr__ = lazy(__name__, "connectors.bigcommerce.source", {
    "connector", "main", "COMMERCE", "COMMERCE_FUNCTIONS", "order_line_items", "order_coupons",
    "cart_recovery", "recovery_link_check", "webhook_advice", "storefront_identity",
    "ABANDONED", "CONVERTED", "RECOVERY_SCOPE", "RECOVERY_FIX", "RETRY_RECOVERY_S",
    "PROBE_CART", "ORDER_PRODUCTS_PAGE"})
