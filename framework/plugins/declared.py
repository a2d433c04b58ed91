"""What a connector package declares without importing its code: its spec file.

``runner spec NAME`` prints a connector's SPEC message, which says only what the spec file says
(its connection spec and documentation link, for a source whether any stream is incremental).
Loading the connector for that would import its engine, pydantic, jsonschema and requests (half a
second); a package that names its spec file in ``SPEC_FILE`` and imports its connector lazily
(``__getattr__``, PEP 562: :func:`lazy` makes one) lets the runner answer
from the file alone. A plugin that declares no ``SPEC_FILE``, or a connector registered
in-process, is loaded and asked, as before.

The light answer reads the parts of the file it prints and checks their types; the rest of the
file (streams, client, webhooks) is validated by every command that uses it (``check``,
``discover``, ``read``, ``write``) and by the spec tests. When the file is anything but what the
light answer expects, the runner loads the connector, whose error names the fault.

Only the standard library and orjson here (a test checks what ``runner spec`` imports).
"""

from __future__ import annotations

import importlib
import os
from importlib import resources
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import orjson

from framework.errors import ConnectorError

ENTRY_POINT_GROUP = "tajo.connectors"
RESTRICT_ENV = "TAJO_CONNECTORS"
PLUGINS_ENV = "TAJO_PLUGINS"
#: The module attribute a connector package names its spec file with.
SPEC_ATTRIBUTE = "SPEC_FILE"
#: The protocol version a SPEC message states (``Connector.spec``'s).
PROTOCOL_VERSION = "0.18.0"
#: The sync modes a destination's SPEC message lists (``Connector.spec``'s).
DESTINATION_SYNC_MODES = ["append", "append_dedup", "overwrite"]


def data_file(name: str) -> Path:
    """A file of the repository's top level (``specs/...``), found as
    ``framework.protocol.catalog.data_path`` finds it (that module loads the pydantic models):
    an installed wheel carries them in ``framework/_data``, a checkout has them next to the
    ``framework`` package. A test checks the two agree."""
    packaged = Path(str(resources.files("framework"))) / "_data" / name
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parents[2] / name


def allowed() -> set[str] | None:
    """``TAJO_CONNECTORS``: the entry points that may load (None: all)."""
    value = os.environ.get(RESTRICT_ENV)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def plugins_in_development() -> list[EntryPoint]:
    """``TAJO_PLUGINS=name=module:attr,...``: connectors loaded from the import path, as entry
    points would load them once installed (a plugin under development, its tests)."""
    value = os.environ.get(PLUGINS_ENV, "")
    points = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, sep, target = item.partition("=")
        if not sep or ":" not in target:
            raise ConnectorError(f"{PLUGINS_ENV}: {item!r} is not name=module:attribute "
                                 "(e.g. shopify=tajo_shopify:connector)", "config_error")
        points.append(EntryPoint(name.strip(), target.strip(), ENTRY_POINT_GROUP))
    return points


def points() -> list[EntryPoint]:
    """The connector entry points, those of ``TAJO_PLUGINS`` first."""
    return [*plugins_in_development(), *entry_points(group=ENTRY_POINT_GROUP)]


def spec_file(name: str) -> Path | None:
    """The spec file the package of connector ``name``'s entry point declares, when it declares
    one and the connector is not loaded yet (a loaded one is asked: it may have been replaced);
    None otherwise. A package that fails to import is left to the loader (its error is the
    registry's)."""
    if (only := allowed()) is not None and name not in only:
        return None
    point = next((ep for ep in points() if ep.name == name), None)
    if point is None:
        return None
    try:
        module = importlib.import_module(point.module)
    except Exception:
        return None
    declared = getattr(module, SPEC_ATTRIBUTE, None)
    if declared is None or point.attr in vars(module):
        return None
    return Path(declared)


def spec_message(path: Path) -> bytes | None:
    """The SPEC message of the spec file at ``path``, as ``Connector.spec`` makes it (same
    keys, same order), or None when the file is not what that needs (the loader then says
    what is wrong with it)."""
    try:
        raw: Any = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(raw, dict):
        return None
    connection, documentation = raw.get("connectionSpecification"), raw.get("documentationUrl")
    streams = raw.get("streams", [])
    if (not isinstance(connection, dict) or not isinstance(documentation, str | None)
            or not isinstance(streams, list)):
        return None
    spec: dict[str, Any] = {"connectionSpecification": connection}
    if documentation is not None:
        spec["documentationUrl"] = documentation
    if raw.get("kind") == "source":
        defaults = raw.get("stream_defaults") or {}
        if not isinstance(defaults, dict) or not all(isinstance(s, dict) for s in streams):
            return None
        spec["supportsIncremental"] = any({**defaults, **s}.get("incremental") is not None
                                          for s in streams)
    elif raw.get("kind") == "destination":
        spec["supported_destination_sync_modes"] = DESTINATION_SYNC_MODES
    else:
        return None
    spec["protocol_version"] = PROTOCOL_VERSION
    return orjson.dumps({"type": "SPEC", "spec": spec}) + b"\n"


def lazy(package: str, module: str, names: set[str]) -> Any:
    """A package's ``__getattr__`` (PEP 562) that imports ``module`` the first time one of
    ``names`` is asked for and hands out its attribute; any other name is not there (so
    ``from package import submodule`` still imports the submodule alone)."""
    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
