"""The standard tests every connector passes, generated per connector (like singer-sdk's).

A plugin's test file is a few lines::

    TestMySource = source_tests(my_connector, sandbox_args=["--customers", "50"],
                                config=lambda ready: {"api_url": ready["url"], ...})

The source suite starts the connector's own sandbox (``runner sandbox NAME``) as a subprocess and
reads every stream once; the destination suite writes a generated message stream.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from framework.engine.source import HttpSource
from framework.plugins.connector import Destination
from framework.protocol import messages as p


def _runner() -> str:
    return shutil.which("runner") or str(Path(sys.executable).parent / "runner")


def source_tests(connector: HttpSource, *, sandbox_args: list[str],
                 config: Callable[[dict[str, Any]], dict[str, Any]],
                 empty: frozenset[str] = frozenset()) -> type:
    """A pytest class of the standard source tests for ``connector``, a source the engine
    reads (its spec's streams, a state per account).

    ``empty`` names streams the sandbox alone cannot fill (e.g. carts, known only from
    webhooks); they must still complete, and have tests of their own.
    """

    class StandardSourceTests:
        @pytest.fixture(scope="class")
        @staticmethod
        def ready() -> Iterator[dict[str, Any]]:
            process = subprocess.Popen([_runner(), "sandbox", connector.name, "--port", "0",
                                        *sandbox_args], stdout=subprocess.PIPE, text=True)
            assert process.stdout is not None  # a pipe, as asked
            try:
                yield json.loads(process.stdout.readline())
            finally:
                process.terminate()
                process.wait(timeout=10)

        @pytest.fixture(scope="class")
        @staticmethod
        def output(ready: dict[str, Any]) -> list[dict[str, Any]]:
            catalog = connector.configured_catalog(everything=True)  # optional streams too
            lines = b"".join(connector.read(config(ready), catalog, {}))
            return [json.loads(line) for line in lines.splitlines()]

        def test_spec_is_a_valid_json_schema(self) -> None:
            Draft7Validator.check_schema(connector.spec().connectionSpecification)

        def test_check_succeeds(self, ready: dict[str, Any]) -> None:
            status = connector.check(config(ready))
            assert status.status == "SUCCEEDED", status.message

        def test_discovered_streams_declare_keys_and_cursors(self) -> None:
            for stream in connector.discover(None).streams:
                assert stream.source_defined_primary_key, stream.name
                Draft7Validator.check_schema(stream.json_schema)
                for cursor in stream.default_cursor_field or []:
                    assert cursor in stream.json_schema["properties"], stream.name

        def test_every_stream_produces_records(self, output: list[dict[str, Any]]) -> None:
            produced = {m["record"]["stream"] for m in output if m["type"] == "RECORD"}
            assert produced == {s.name for s in connector.discover(None).streams} - empty

        def test_records_match_their_schema(self, output: list[dict[str, Any]]) -> None:
            validators = {s.name: Draft7Validator(s.json_schema)
                          for s in connector.discover(None).streams}
            for message in output:
                if message["type"] == "RECORD":
                    record = message["record"]
                    errors = list(validators[record["stream"]].iter_errors(record["data"]))
                    assert not errors, f"{record['stream']}: {errors[0].message}"

        def test_primary_keys_are_unique(self, output: list[dict[str, Any]]) -> None:
            keys = {s.name: s.source_defined_primary_key or []
                    for s in connector.discover(None).streams}
            seen: set[tuple[Any, ...]] = set()
            for message in output:
                if message["type"] == "RECORD":
                    record = message["record"]
                    key = (record["stream"], *(json.dumps(record["data"].get(k[0]))
                                               for k in keys[record["stream"]]))
                    assert key not in seen, f"duplicate primary key {key}"
                    seen.add(key)

        def test_final_state_holds_the_newest_cursor(self, output: list[dict[str, Any]]) -> None:
            checked = 0
            for stream in connector.discover(None).streams:
                field = stream.default_cursor_field[0] if stream.default_cursor_field else None
                if field is None or field not in stream.json_schema["properties"]:
                    continue  # no cursor of its own (e.g. a child following its parent)
                declared = connector.loaded.streams[stream.name]
                origin = (connector.loaded.streams[declared.parent.stream] if declared.parent
                          else declared)  # a child is read as its parent is
                if origin.live is not None and origin.live.only:
                    continue  # its state is a spool offset, not the cursor (e.g. carts)
                newest = max(m["record"]["data"][field] for m in output
                             if m["type"] == "RECORD" and m["record"]["stream"] == stream.name)
                final = [m["state"]["stream"]["stream_state"] for m in output
                         if m["type"] == "STATE"
                         and m["state"]["stream"]["stream_descriptor"]["name"] == stream.name][-1]
                reached = max(account[field]
                              for account in final[connector.state_key].values())
                if declared.parent is not None:
                    assert reached >= newest  # a child's state is its parent's
                else:
                    assert reached == newest
                checked += 1
            assert checked > 0

        def test_every_stream_completes(self, output: list[dict[str, Any]]) -> None:
            complete = {m["trace"]["stream_status"]["stream_descriptor"]["name"] for m in output
                        if m["type"] == "TRACE" and m["trace"]["type"] == "STREAM_STATUS"
                        and m["trace"]["stream_status"]["status"] == "COMPLETE"}
            assert complete == {s.name for s in connector.discover(None).streams}

    return StandardSourceTests


def destination_tests(connector: Destination, *,
                      config: Callable[[Path], dict[str, Any]],
                      catalog: p.ConfiguredAirbyteCatalog) -> type:
    """A pytest class of the standard destination tests for ``connector``."""

    class StandardDestinationTests:
        def messages(self) -> list[dict[str, Any]]:
            stream = catalog.streams[0].stream.name
            out: list[dict[str, Any]] = []
            for batch in range(3):
                for i in range(5):
                    data = {"id": batch * 5 + i, "account": "std", "email": "a@example.com",
                            "updated_at": "2024-01-01T00:00:00Z"}
                    out.append({"type": "RECORD", "record": {"stream": stream, "data": data,
                                                             "emitted_at": 1}})
                out.append({"type": "RECORD", "record": {"stream": "not_in_catalog",
                                                         "data": {}, "emitted_at": 1}})
                out.append(json.loads(p.dump(p.state_message(stream, {"batch": batch}))))
            return out

        def test_spec_is_a_valid_json_schema(self) -> None:
            Draft7Validator.check_schema(connector.spec().connectionSpecification)

        def test_check_succeeds(self, tmp_path: Path) -> None:
            assert connector.check(config(tmp_path)).status == "SUCCEEDED"

        def test_states_are_echoed_in_order_after_their_records(self, tmp_path: Path) -> None:
            names = {s.stream.name for s in catalog.streams}
            sent = [m for m in self.messages()
                    if m["type"] != "RECORD" or m["record"]["stream"] in names]
            lines = b"".join(connector.write(config(tmp_path), catalog, iter(sent)))
            echoed = [json.loads(line) for line in lines.splitlines()]
            states = [m for m in echoed if m["type"] == "STATE"]
            assert [s["state"]["stream"]["stream_state"] for s in states] == [
                {"batch": 0}, {"batch": 1}, {"batch": 2}]
            assert {m["type"] for m in echoed} <= {"STATE", "LOG", "TRACE"}

    return StandardDestinationTests
