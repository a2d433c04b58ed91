"""Marketbox: a made-up shop platform's source plugin, written as a third party would write one.

It lives in the tests (``tests/test_second_platform.py``) to prove that a second platform
reaches Brevo through the commerce model with no change to the framework or to the Brevo
destination: its spec (``spec.json``), record schemas (``schemas/``), mapping to the model
(``commerce.json``, data only) and sandbox (``sandbox.py``) are all it has. It is loaded the way an
installed plugin is, through the ``tajo.connectors`` entry point group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from framework.declarative.mapping import Mapping
from framework.declarative.spec import Authenticator, register_auth
from framework.engine.source import HttpSource

from .sandbox import sandbox_command

HERE = Path(__file__).parent


class BearerAuth(Authenticator):
    """``Authorization: Bearer <config_field>``: an auth type the framework does not have."""

    class Options(Authenticator.Options):
        config_field: str

    def headers(self, config: dict[str, Any]) -> dict[str, str]:
        options = self.options
        assert isinstance(options, BearerAuth.Options)
        return {"Authorization": f"Bearer {config[options.config_field]}"}


register_auth("marketbox_bearer", BearerAuth)  # before the spec that names it is loaded

#: Marketbox records as the commerce model (specs/schemas/commerce/v1).
COMMERCE = Mapping(HERE / "commerce.json")

connector = HttpSource(HERE / "spec.json", sandbox=sandbox_command,
                       hooks=COMMERCE.hooks("commerce"))
