"""The protocol verbs (spec, check, discover, read, write) as message streams, and how they run.

Both command lines, ``runner`` and a connector's Airbyte CLI (``source-NAME``), call these.
Messages go to stdout, one JSON line each; logs, the one-line error and tracebacks go to stderr.
Exit codes: 0 success, 1 the run failed (API, network, bug), 2 the user's input is wrong
(config, catalog, state, stdin).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import sys
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from framework.declarative.spec import SpecError
from framework.errors import REDACT, ConfigError, ConnectorError
from framework.plugins.connector import Connector, Destination, Source, connectors
from framework.plugins.logs import JsonFormatter, setup_logging  # noqa: F401 (their old home)
from framework.protocol import messages as p
from framework.protocol.catalog import load_catalog, load_state, sources_catalog

log = logging.getLogger("tajo")


def spec(connector: Connector) -> Iterator[bytes]:
    """SPEC message."""
    yield p.dump(p.AirbyteMessage(type="SPEC", spec=connector.spec()))


def _config(connector: Connector, config_path: str | Path, warn_unknown: bool,
            warnings: list[bytes]) -> dict[str, Any]:
    """The loaded config. An unknown key fails ``runner``; the Airbyte CLI (``warn_unknown``)
    runs configs the platform saved, which may hold keys of a newer version (the reason Airbyte
    forbids ``additionalProperties: false``): it ignores the key, with a warning naming it,
    logged and appended to ``warnings`` as a LOG message."""
    if not warn_unknown:
        return connector.load_config(config_path)

    def warn(problem: str) -> None:
        text = f"{connector.name} config: {problem}; ignored"
        log.warning("%s", text)
        warnings.append(p.dump(p.log_message("WARN", text)))

    return connector.load_config(config_path, on_unknown=warn)


def check(connector: Connector, config_path: str | Path, *,
          warn_unknown: bool = False) -> Iterator[bytes]:
    """CONNECTION_STATUS message; an invalid config is a FAILED status, as Airbyte expects."""
    warnings: list[bytes] = []
    try:
        status = connector.check(_config(connector, config_path, warn_unknown, warnings))
    except ConfigError as exc:
        status = p.AirbyteConnectionStatus(status="FAILED", message=exc.message)
    if status.message:  # a check's message may quote an answer that echoed a secret
        status.message = REDACT(status.message)
    yield from warnings
    yield p.dump(p.AirbyteMessage(type="CONNECTION_STATUS", connectionStatus=status))
    if status.status == "FAILED":
        log.error("check failed: %s", status.message)


def discover(connector: Source, config_path: str | Path | None, *,
             warn_unknown: bool = False) -> Iterator[bytes]:
    """CATALOG message."""
    warnings: list[bytes] = []
    config = _config(connector, config_path, warn_unknown, warnings) if config_path else None
    yield from warnings
    yield p.dump(p.AirbyteMessage(type="CATALOG", catalog=connector.discover(config)))


M_ARENA_MAX = -8  # glibc's mallopt parameter numbers
M_MMAP_THRESHOLD = -3


def tune_memory() -> None:
    """Settings for a long run over many pages, made before any worker thread starts.

    Records are acyclic: the cyclic collector only re-walks every parsed page. Collect
    rarely (cycles still get collected), and keep the start-up objects out of its walks.

    glibc gives each thread that allocates its own malloc arena (up to 8 per core), and a
    page parsed on one reader thread and freed on another leaves each arena's high-water
    mark behind: a sync of 50,000 orders peaked at 216 MB with the default and at 159 MB
    with two arenas, at the same speed. ``MALLOC_ARENA_MAX`` set by the user wins.

    glibc also raises its threshold for serving a large block from its own mapping each time
    such a block is freed (up to 32 MB), after which a destination's multi-megabyte payloads
    come from, and fragment, the heap: a sync of 100,000 customers grew from 99 to 138 MB
    over its run, and peaked at 126 MB with the threshold held at 1 MB.
    ``MALLOC_MMAP_THRESHOLD_`` set by the user wins.
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    if not sys.platform.startswith("linux"):
        return
    # Not glibc (musl, e.g. Alpine): nothing to tune.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        if "MALLOC_ARENA_MAX" not in os.environ:
            libc.mallopt(M_ARENA_MAX, 2)
        if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
            libc.mallopt(M_MMAP_THRESHOLD, 1 << 20)


def read(connector: Source, config_path: str | Path, catalog_path: str | Path | None,
         state_path: str | Path | None, *, warn_unknown: bool = False) -> Iterator[bytes]:
    """Records, states and traces of every stream in the catalog."""
    tune_memory()
    warnings: list[bytes] = []
    config = _config(connector, config_path, warn_unknown, warnings)
    catalog = load_catalog(catalog_path) if catalog_path else connector.configured_catalog()
    state = load_state(state_path)
    yield from warnings
    yield from connector.read(config, catalog, state)


#: The longest stdin line accepted: far above any real record (marketing APIs take
#: requests of 10 MB at most), low enough that a stray binary file does not take the memory.
MAX_LINE = 16 * 2**20


def stdin_messages(stream: BinaryIO, streams: set[str]) -> Iterator[dict[str, Any]]:
    """Parsed messages from ``stream``; records of streams outside the catalog are skipped."""
    skipped: dict[str, int] = {}
    number = 0
    while line := stream.readline(MAX_LINE + 1):
        number += 1
        if len(line) > MAX_LINE:
            raise ConfigError(f"stdin line {number}: longer than {MAX_LINE // 2**20} MB; one "
                              "message per line, and a record this big is not one a "
                              "destination can send (is the input a single JSON document?)")
        if not line.strip():
            continue
        try:
            message = p.parse_line(line, number)
        except p.ProtocolError as exc:
            raise ConfigError(f"stdin {exc}") from None
        if message["type"] == "RECORD" and message["record"]["stream"] not in streams:
            name = message["record"]["stream"]
            if name not in skipped:
                log.warning("ignoring records of stream %r: it is not in the catalog", name)
            skipped[name] = skipped.get(name, 0) + 1
            continue
        yield message


def write(connector: Destination, config_path: str | Path, catalog_path: str | Path | None,
          stdin: BinaryIO, *, warn_unknown: bool = False) -> Iterator[bytes]:
    """Committed STATE messages (and logs) of the destination consuming stdin."""
    tune_memory()
    warnings: list[bytes] = []
    config = _config(connector, config_path, warn_unknown, warnings)
    # Without a catalog, every stream an installed source can emit, the optional ones too (a
    # marketing destination reads the commerce model's streams, which a read asks for).
    catalog = load_catalog(catalog_path) if catalog_path else sources_catalog(
        [c for _, c in sorted(connectors().items()) if isinstance(c, Source)], everything=True)
    names = {s.stream.name for s in catalog.streams}
    yield from warnings
    yield from connector.write(config, catalog, stdin_messages(stdin, names))


def run(messages: Iterable[bytes], *, out: BinaryIO | None = None) -> int:
    """Write ``messages`` to stdout; turn failures into one line on stderr and an exit code."""
    out = out or sys.stdout.buffer
    try:
        for chunk in messages:
            if chunk:
                out.write(chunk)
                out.flush()
        return 0
    except BrokenPipeError:
        return 1  # the reader went away (e.g. `| head`); nothing more to say
    except (ConnectorError, SpecError) as exc:
        message = REDACT(str(exc))
        failure = getattr(exc, "failure_type", "system_error")
        stream = getattr(exc, "stream", None)
        _emit_error(out, message, failure, stream, None)
        print(f"error: {message}", file=sys.stderr)
        return 2 if failure == "config_error" else 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message, stack = report_bug(exc)
        _emit_error(out, message, "system_error", None, stack)
        return 1


def report_bug(exc: Exception) -> tuple[str, str]:
    """An unexpected error on stderr: its stack trace and one line, secrets redacted; returns
    both (for an ERROR trace)."""
    stack = REDACT("".join(traceback.format_exception(exc)))
    message = REDACT(f"unexpected {type(exc).__name__}: {exc}")
    print(stack, file=sys.stderr, end="")
    print(f"error: {message} (this is a bug; please report it with the trace above)",
          file=sys.stderr)
    return message, stack


def _emit_error(out: BinaryIO, message: str, failure: str, stream: str | None,
                stack: str | None) -> None:
    try:
        trace = p.error_trace(message, failure, stream=stream, stack_trace=stack)
        out.write(p.dump(trace))
        out.flush()
    except (BrokenPipeError, OSError):
        pass
