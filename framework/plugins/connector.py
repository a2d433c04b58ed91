"""The plugin API: what a connector is, and how the runner finds connectors.

A connector is an object with a ``name``, a ``kind`` (source or destination) and a spec file;
sources add ``check``, ``discover`` and ``read``, destinations ``check`` and ``write``. Connectors
are found through the ``tajo.connectors`` entry point group, built-in ones included, so a
third-party package adds one with two lines of pyproject::

    [project.entry-points."tajo.connectors"]
    shopify = "tajo_shopify:connector"

``TAJO_CONNECTORS=a,b`` restricts which entry points load (empty: none), which keeps tests
isolated from whatever else is installed; ``TAJO_PLUGINS=name=module:attr`` loads a plugin that is
not installed yet (from the import path).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import click

from framework.declarative.spec import LoadedSpec, load_spec
from framework.errors import ConfigError, ConnectorError
from framework.plugins import declared
from framework.protocol import messages as p
from framework.protocol.config import load_config


class Connector:
    """Base of every connector: its spec file and its config.

    Args:
        spec_file: the connector's JSON spec (see ``specs/``).
        sandbox: an optional click command that serves a local emulator of the connector's API;
            ``runner sandbox NAME`` runs it.
        version: shown by ``runner connectors``.
    """

    kind: ClassVar[str] = ""

    def __init__(self, spec_file: str | Path, *, sandbox: click.Command | None = None,
                 version: str = "0.1.0") -> None:
        self.spec_file = Path(spec_file)
        self.sandbox = sandbox
        self.version = version
        self._spec: LoadedSpec | None = None

    @property
    def loaded(self) -> LoadedSpec:
        """The validated spec file (loaded once)."""
        if self._spec is None:
            self._spec = load_spec(self.spec_file)
            if self._spec.model.kind != self.kind:
                raise ConnectorError(f"{self.spec_file}: at $.kind: {self._spec.model.kind!r} "
                                     f"spec used by a {self.kind} connector")
        return self._spec

    @property
    def name(self) -> str:
        """The connector's name, from its spec file."""
        return self.loaded.name

    def spec(self) -> p.ConnectorSpecification:
        """The answer to ``spec``."""
        model = self.loaded.model
        extra: dict[str, Any] = {}
        if self.kind == "source":
            extra["supportsIncremental"] = any(s.incremental for s in model.streams)
        else:
            extra["supported_destination_sync_modes"] = ["append", "append_dedup", "overwrite"]
        return p.ConnectorSpecification(connectionSpecification=model.connectionSpecification,
                                         documentationUrl=model.documentationUrl,
                                         protocol_version="0.18.0", **extra)

    def load_config(self, path: str | Path, *,
                    on_unknown: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Read and validate a config file against the connection spec (an unknown key is an
        error, or is told to ``on_unknown`` and ignored)."""
        return load_config(path, self.loaded.model.connectionSpecification, self.name,
                           on_unknown=on_unknown)

    def check(self, config: dict[str, Any]) -> p.AirbyteConnectionStatus:
        """Verify the config works; the message says how to fix it when it does not."""
        raise NotImplementedError


class Source(Connector):
    """A connector that reads: ``discover`` its streams, ``read`` them as messages."""

    kind = "source"

    def discover(self, config: dict[str, Any] | None) -> p.AirbyteCatalog:
        """The streams this source offers."""
        raise NotImplementedError

    def read(self, config: dict[str, Any], catalog: p.ConfiguredAirbyteCatalog,
             state: dict[str, dict[str, Any]]) -> Iterator[bytes]:
        """Serialized messages (one JSON line each): records, states, traces."""
        raise NotImplementedError

    def configured_catalog(self, everything: bool = False) -> p.ConfiguredAirbyteCatalog:
        """The catalog a read without one reads: every stream, incremental where it can be,
        deduplicated by primary key (``everything``: a source's optional streams too)."""
        streams = []
        for stream in self.discover(None).streams:
            incremental = "incremental" in stream.supported_sync_modes
            streams.append(p.ConfiguredAirbyteStream(
                stream=stream, sync_mode="incremental" if incremental else "full_refresh",
                destination_sync_mode="append_dedup",
                cursor_field=stream.default_cursor_field,
                primary_key=stream.source_defined_primary_key))
        return p.ConfiguredAirbyteCatalog(streams=streams)


class Destination(Connector):
    """A connector that writes: consumes messages, yields the states it has committed."""

    kind = "destination"

    def write(self, config: dict[str, Any], catalog: p.ConfiguredAirbyteCatalog,
              messages: Iterable[dict[str, Any]]) -> Iterator[bytes]:
        """Consume parsed messages; yield serialized STATE messages once their records are
        committed (and LOG/TRACE messages)."""
        raise NotImplementedError


_registry: dict[str, Connector] = {}


def connectors(only: str | None = None) -> dict[str, Connector]:
    """Every connector: those registered in-process, then ``TAJO_PLUGINS``, then the entry
    points. With ``only``, just that one is loaded when it exists (the others are not
    imported: ``runner read SOURCE`` starts without the destinations)."""
    found = dict(_registry)
    allowed = declared.allowed()
    points = declared.points()
    if only is not None and (only in found or any(ep.name == only for ep in points)):
        points = [ep for ep in points if ep.name == only]
    for ep in points:
        if ep.name in found or (allowed is not None and ep.name not in allowed):
            continue
        try:
            connector = ep.load()
        except Exception as exc:  # a broken plugin must not take the others down
            raise ConnectorError(f"connector plugin {ep.name!r} ({ep.value}) failed to load: "
                                 f"{type(exc).__name__}: {exc}") from None
        if not isinstance(connector, Connector):
            raise ConnectorError(f"connector plugin {ep.name!r} ({ep.value}) is a "
                                 f"{type(connector).__name__}, not a framework Connector")
        found[ep.name] = connector
    return found


def get(name: str, kind: str | None = None) -> Connector:
    """The connector called ``name``; the error lists the valid names."""
    connector = connectors(only=name).get(name)
    if connector is None or (kind and connector.kind != kind):
        found = connectors()
        valid = sorted(n for n, c in found.items() if not kind or c.kind == kind)
        what = f"{kind} connector" if kind else "connector"
        raise ConfigError(f"unknown {what} {name!r}; valid: {', '.join(valid) or '(none)'}")
    return connector


def register(name: str, connector: Connector) -> None:
    """Register a connector in-process (tests, embedding); it wins over an entry point."""
    _registry[name] = connector


def unregister(name: str) -> None:
    """Undo :func:`register`."""
    _registry.pop(name, None)
