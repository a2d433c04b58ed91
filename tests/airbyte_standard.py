"""Airbyte's own standard connector tests, run against our console scripts (no Docker).

The CDK's suites (``airbyte_cdk.test.standard_tests``) drive a connector object in-process:
``run_test_job`` -> ``entrypoint_wrapper._run_command`` -> ``AirbyteEntrypoint(source).run(args)``,
which calls the object's ``spec``, ``check``, ``discover`` and ``read``. The adapters here are
such objects: each call runs our console script (``source-bigcommerce``, ``destination-brevo``...)
as a subprocess, exactly as the platform would run the image's entrypoint, and parses its stdout
lines into the CDK's ``AirbyteMessage`` models. So what the CDK judges is what the script prints,
through the CDK's own parser, not our protocol models.

What the adapters add:

* stderr lines come back as LOG messages, so the CDK's secret-leak check reads our logs too (the
  platform keeps a connector's stderr in its job log; in-process, the CDK only sees messages);
* a script that exits non-zero without a TRACE error fails the call (the platform would fail
  the job); with one, the messages are returned and the CDK judges the TRACE;
* ``read`` hands the catalog file to the script untouched, so a broken catalog is refused by our
  code (``test_fail_read_with_bad_catalog``), not by the CDK's parser.

Configs come from each connector's ``acceptance-test-config.yml`` (``connectors/<dir>/``) and hold
``${VAR}`` placeholders for what only exists at run time (the sandboxes' URLs, their random
tokens, a temporary directory). :class:`SandboxScenario` resolves them whenever the CDK reads a
scenario's config, rather than the adapter resolving them on the way to the script: the CDK also
reads the config itself, to validate it against the spec (``test_config_matches_spec``) and to
know which secret values to look for in the output; both must see the values the script got.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from airbyte_cdk.destinations import Destination
from airbyte_cdk.models import (
    AirbyteCatalog,
    AirbyteConnectionStatus,
    AirbyteLogMessage,
    AirbyteMessage,
    AirbyteMessageSerializer,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteCatalogSerializer,
    ConnectorSpecification,
    Level,
    TraceType,
    Type,
)
from airbyte_cdk.sources import Source
from airbyte_cdk.sources.message import InMemoryMessageRepository
from airbyte_cdk.test.models import ConnectorTestScenario
from serpyco_rs import SchemaValidationError

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LEVELS = {"CRITICAL": Level.FATAL, "ERROR": Level.ERROR, "WARNING": Level.WARN,
           "INFO": Level.INFO, "DEBUG": Level.DEBUG}


def resolve(value: Any) -> Any:
    """``value`` with every ``${VAR}`` replaced by the environment variable VAR."""
    if isinstance(value, dict):
        return {key: resolve(item) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item) for item in value]
    if isinstance(value, str):
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise KeyError(f"acceptance config refers to ${{{name}}}, which is not set: "
                               "the sandbox fixture of tests/test_airbyte_standard.py sets it")
            return os.environ[name]
        return _PLACEHOLDER.sub(replace, value)
    return value


class SandboxScenario(ConnectorTestScenario):
    """A scenario whose config placeholders are resolved when the CDK reads the config.

    The CDK derives new scenarios with ``without_expected_outcome`` and friends, which build a
    plain ``ConnectorTestScenario``; they are overridden to keep this class (and so the
    resolution) on every copy.
    """

    def get_config_dict(self, *, connector_root: Path, empty_if_missing: bool) -> dict[str, Any]:
        config = super().get_config_dict(connector_root=connector_root,
                                         empty_if_missing=empty_if_missing)
        return resolve(config)

    def without_expected_outcome(self) -> SandboxScenario:
        return self.model_copy(update={"status": None})

    def with_expecting_failure(self) -> SandboxScenario:
        return self.model_copy(update={"status": "failed"})

    def with_expecting_success(self) -> SandboxScenario:
        return self.model_copy(update={"status": "succeed"})

    @classmethod
    def of(cls, scenario: ConnectorTestScenario) -> SandboxScenario:
        return cls.model_validate(scenario.model_dump())


def script_path(name: str) -> str:
    """A console script of this package (the venv's bin when it is not on PATH)."""
    return shutil.which(name) or str(Path(sys.executable).parent / name)


def _stderr_log(line: str) -> AirbyteMessage:
    """A stderr line as the LOG message the platform would file it under."""
    level = next((lvl for word, lvl in _LEVELS.items() if f" {word} " in f" {line} "), Level.INFO)
    return AirbyteMessage(type=Type.LOG, log=AirbyteLogMessage(level=level, message=line))


def _parse(line: str) -> AirbyteMessage:
    """One stdout line through the CDK's own parser; a line that is not a message is a log
    line (the platform's rule), and the CDK's checks then see it as one."""
    try:
        return AirbyteMessageSerializer.load(json.loads(line))
    except (json.JSONDecodeError, SchemaValidationError):
        return AirbyteMessage(type=Type.LOG, log=AirbyteLogMessage(level=Level.INFO,
                                                                   message=line))


class ScriptRun:
    """One run of a console script: its messages, then its stderr as LOG messages."""

    def __init__(self, script: str, args: list[str], stdin: bytes | None = None,
                 timeout: float = 300) -> None:
        done = subprocess.run([script_path(script), *args], input=stdin, capture_output=True,
                              timeout=timeout, env=os.environ.copy())
        stdout = done.stdout.decode("utf-8", "replace")
        stderr = done.stderr.decode("utf-8", "replace")
        self.messages = [_parse(line) for line in stdout.splitlines() if line.strip()]
        self.messages += [_stderr_log(line) for line in stderr.splitlines() if line.strip()]
        errors = [m for m in self.messages
                  if m.type == Type.TRACE and m.trace and m.trace.type == TraceType.ERROR]
        if done.returncode != 0 and not errors:
            tail = "\n".join(stderr.splitlines()[-20:])
            raise RuntimeError(f"{script} {args[0]} exited {done.returncode} without a TRACE "
                               f"error message; stderr ends:\n{tail}")

    def only(self, kind: Type) -> list[AirbyteMessage]:
        return [m for m in self.messages if m.type == kind]

    def others(self, kind: Type) -> list[AirbyteMessage]:
        return [m for m in self.messages if m.type != kind]


class _ScriptConnector:
    """What sources and destinations share: ``spec`` and ``check`` through the script."""

    def __init__(self, script: str) -> None:
        self.script = script
        self._spec: ConnectorSpecification | None = None
        self._repository = InMemoryMessageRepository()
        self._files = tempfile.TemporaryDirectory(prefix=f"{script}-")

    @property
    def name(self) -> str:
        return self.script

    @property
    def message_repository(self) -> InMemoryMessageRepository:
        """Where the LOG messages of ``spec``, ``check`` and ``discover`` go: the entrypoint
        emits them next to the answer, as the platform would show them."""
        return self._repository

    def _file(self, name: str, content: Any) -> str:
        path = Path(self._files.name) / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return str(path)

    def _run(self, args: list[str], answer: Type, stdin: bytes | None = None) -> AirbyteMessage:
        """Run the script; its one ``answer`` message (the others go to the repository)."""
        run = ScriptRun(self.script, args, stdin)
        for message in run.others(answer):
            self._repository.emit_message(message)
        answers = run.only(answer)
        if len(answers) != 1:
            errors = [m.trace.error.message for m in run.only(Type.TRACE)
                      if m.trace and m.trace.error]
            raise RuntimeError(f"{self.script} {args[0]} printed {len(answers)} {answer.value} "
                               f"messages, expected 1; errors: {errors}")
        return answers[0]

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        if self._spec is None:
            spec = self._run(["spec"], Type.SPEC).spec
            assert spec is not None
            self._spec = spec
        return self._spec

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        status = self._run(["check", "--config", self._file("config.json", config)],
                           Type.CONNECTION_STATUS).connectionStatus
        assert status is not None
        return status


class ScriptSource(_ScriptConnector, Source):
    """The CDK's ``Source`` interface, answered by a source's console script."""

    def discover(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteCatalog:
        catalog = self._run(["discover", "--config", self._file("config.json", config)],
                            Type.CATALOG).catalog
        assert catalog is not None
        return catalog

    def read_catalog(self, catalog_path: str) -> Any:  # type: ignore[override]
        """The catalog as the file holds it: the script, not the CDK, must judge it."""
        return json.loads(Path(catalog_path).read_text())

    def read_state(self, state_path: str) -> Any:  # type: ignore[override]
        return json.loads(Path(state_path).read_text()) if state_path else None

    def read(self, logger: logging.Logger, config: Mapping[str, Any], catalog: Any,
             state: Any = None) -> Iterator[AirbyteMessage]:
        if isinstance(catalog, ConfiguredAirbyteCatalog):
            catalog = ConfiguredAirbyteCatalogSerializer.dump(catalog)
        args = ["read", "--config", self._file("config.json", config),
                "--catalog", self._file("catalog.json", catalog)]
        if state is not None:
            args += ["--state", self._file("state.json", state)]
        yield from ScriptRun(self.script, args).messages


class ScriptDestination(_ScriptConnector, Destination):
    """The CDK's ``Destination`` interface, answered by a destination's console script."""

    def write(self, config: Mapping[str, Any], configured_catalog: ConfiguredAirbyteCatalog,
              input_messages: Iterable[AirbyteMessage]) -> Iterable[AirbyteMessage]:
        stdin = b"".join(json.dumps(AirbyteMessageSerializer.dump(m)).encode() + b"\n"
                         for m in input_messages)
        catalog = ConfiguredAirbyteCatalogSerializer.dump(configured_catalog)
        run = ScriptRun(self.script, ["write", "--config", self._file("config.json", config),
                                      "--catalog", self._file("catalog.json", catalog)], stdin)
        return run.messages
