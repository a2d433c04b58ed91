"""Where the runner's logs go: stderr only, every known secret redacted, text or JSON lines.

Apart from the verbs (``commands.py``) so that a command that needs none of them, ``runner spec``
read from its spec file, starts without the protocol's models.
"""

from __future__ import annotations

import logging
import sys

import orjson

from framework.errors import RedactingFilter


class JsonFormatter(logging.Formatter):
    """One JSON object per log line (for log collectors)."""

    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps({"time": self.formatTime(record), "level": record.levelname,
                             "logger": record.name, "message": record.getMessage()}).decode()


def setup_logging(verbose: bool = False, json_logs: bool = False) -> None:
    """Logs to stderr only, with every known secret redacted."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_logs else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger("tajo")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
