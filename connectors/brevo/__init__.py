"""The Brevo destination (``plugin.py``, writing with ``destination.py``) and its sandbox.

The connector is imported the first time it is asked for (``from connectors.brevo import
connector``, the ``tajo.connectors`` entry point): ``runner spec brevo`` reads ``SPEC_FILE``
alone (see ``framework/plugins/declared.py``).
"""

from __future__ import annotations

from framework.plugins.declared import data_file, lazy

SPEC_FILE = data_file("specs/brevo.json")

__getattr__ = lazy(__name__, "connectors.brevo.plugin",
                   {"connector", "main", "BrevoDestination", "LISTS_PAGE"})
