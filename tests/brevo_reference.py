"""Brevo's official SDK holds the tests to it: every Brevo sandbox the tests start (whatever
starts it: a fixture, the chaos kit, ``runner sync --demo``) inherits ``TAJO_BREVO_REFERENCE``
and checks each request it gets and each answer it gives against brevo-python's models
(``connectors/brevo/sandbox/reference.py``); a test during which any was refused fails, naming
the route and pydantic's message. Imported by ``conftest.py``."""

from __future__ import annotations

import atexit
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from connectors.brevo.sandbox import REFERENCE_ENV

if not os.environ.get(REFERENCE_ENV):
    _handle, _name = tempfile.mkstemp(prefix="tajo-brevo-reference-", suffix=".jsonl")
    os.close(_handle)
    os.environ[REFERENCE_ENV] = _name
    atexit.register(Path(_name).unlink, missing_ok=True)
REPORT = Path(os.environ[REFERENCE_ENV])


def violations_since(offset: int) -> list[dict[str, object]]:
    """The violations the sandboxes recorded after ``offset`` bytes of the report."""
    if not REPORT.exists():
        return []
    with REPORT.open("rb") as report:
        report.seek(offset)
        return [orjson.loads(line) for line in report.read().splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def brevo_reference() -> Iterator[None]:
    """Fail the test when a Brevo sandbox saw traffic that Brevo's SDK refuses."""
    start = REPORT.stat().st_size if REPORT.exists() else 0
    yield
    found = violations_since(start)
    if found:
        shown = "\n".join(f"  {v['route']} ({v['side']}, HTTP {v['status']}): {v['problem']}"
                          for v in found[:20])
        more = f"\n  ... and {len(found) - 20} more" if len(found) > 20 else ""
        pytest.fail(f"{len(found)} requests or answers do not match Brevo's SDK "
                    f"(brevo-python):\n{shown}{more}", pytrace=False)
