"""Configured catalogs and state files, as the runner and the Airbyte CLI read them."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from framework.errors import ConfigError
from framework.protocol import messages as p
from framework.protocol.config import load_file

log = logging.getLogger("tajo")
#: Messages a run prints besides its states (skipped in a state file made of its output).
OTHER_MESSAGES = frozenset({"RECORD", "LOG", "TRACE", "SPEC", "CONNECTION_STATUS", "CATALOG",
                            "CONTROL"})


def data_path(name: str) -> Path:
    """A file of the repository's top level (``specs/...``, ``catalog.json``).

    An installed wheel carries them in ``framework/_data``; a checkout (or an editable install)
    has them next to the ``framework`` package.
    """
    packaged = Path(str(resources.files("framework"))) / "_data" / name
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parents[2] / name


def load_catalog(path: str | Path) -> p.ConfiguredAirbyteCatalog:
    """A ConfiguredAirbyteCatalog file."""
    path = Path(path)
    raw = load_file(path, "catalog")
    try:
        return p.ConfiguredAirbyteCatalog.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ConfigError(f"catalog file {path} is not a ConfiguredAirbyteCatalog: at '{where}': "
                          f"{first['msg']}") from None


def sources_catalog(sources: list[Any], everything: bool = False
                    ) -> p.ConfiguredAirbyteCatalog:
    """The default catalogs of the ``sources`` (by name; ``everything``: their optional
    streams too), whichever of them the messages come from. A stream two sources name is the
    first's."""
    streams: dict[str, p.ConfiguredAirbyteStream] = {}
    for source in sources:
        for stream in source.configured_catalog(everything).streams:
            streams.setdefault(stream.stream.name, stream)
    return p.ConfiguredAirbyteCatalog(streams=list(streams.values()))


def _state_from(message: dict[str, Any], states: dict[str, dict[str, Any]]) -> None:
    """Fold one state message (or AirbyteMessage wrapping one) into ``states``."""
    if message.get("type") == "STATE" and isinstance(message.get("state"), dict):
        message = message["state"]
    kind = message.get("type") or "LEGACY"  # no type: a plain {stream: state} mapping
    if kind == "STREAM":
        stream = message.get("stream") or {}
        name = (stream.get("stream_descriptor") or {}).get("name")
        if not isinstance(name, str):
            raise ConfigError("state message of type STREAM has no stream_descriptor.name")
        states[name] = stream.get("stream_state") or {}
    elif kind == "GLOBAL":
        for stream in (message.get("global") or {}).get("stream_states", []):
            states[stream["stream_descriptor"]["name"]] = stream.get("stream_state") or {}
    elif kind == "LEGACY":
        legacy = message.get("data") if "data" in message else message
        if not isinstance(legacy, dict):
            raise ConfigError(f"legacy state is a {type(legacy).__name__}, expected "
                              "{stream: state}; give the state messages a previous run printed")
        for name, value in legacy.items():
            if not isinstance(value, dict):  # e.g. {"accounts": 5}: a stream's state, unwrapped
                raise ConfigError(
                    f"legacy state of stream {name!r} is a {type(value).__name__}, expected "
                    "an object; give the state messages a previous run printed (or remove "
                    "the state file to read every stream again)")
            states[name] = value
    else:
        raise ConfigError(f"unknown state message type {kind!r}; valid: STREAM, GLOBAL, LEGACY")


def load_state(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """Per-stream states from a state file.

    Accepted: the Airbyte form (a JSON array of state messages), one state message, or the
    JSON lines a previous ``read``/``write`` printed (the last state of each stream wins).
    """
    if not path:
        return {}
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read state file {path}: {exc.strerror}") from None
    states: dict[str, dict[str, Any]] = {}
    if not text.strip():
        return states
    try:
        parsed = orjson.loads(text)
        items = parsed if isinstance(parsed, list) else [parsed]
    except orjson.JSONDecodeError:
        items = []
        lines = text.splitlines()
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    items.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    if number == len(lines) and not text.endswith(b"\n"):
                        # The torn end of a run killed while it wrote: what it had written
                        # before stands.
                        log.warning("state file %s: ignoring its unfinished last line", path)
                        continue
                    raise ConfigError(f"state file {path} line {number} is not JSON; give the "
                                      "state messages a previous run printed") from None
    # The output of a run holds other messages too (an ERROR trace, logs): states only.
    items = [m for m in items if not (isinstance(m, dict) and m.get("type") in OTHER_MESSAGES)]
    for item in items:
        if not isinstance(item, dict):
            raise ConfigError(f"state file {path} holds a {type(item).__name__}, "
                              "expected state messages")
        _state_from(item, states)
    return states
