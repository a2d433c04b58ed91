"""The destination base (framework/destinations/sink.py), in-process: a STATE is echoed only once
the records before it are committed, with its counts; flushes when a batch is full, when time is
up, at the end; states of streams whose records were kept back stay held. And the SQLite
destination on it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.sqlite import connector as sqlite
from framework.destinations.sink import Writer, state_stream
from framework.protocol import messages as p


def catalog(*names: str, schema: dict[str, Any] | None = None,
            key: list[list[str]] | None = None) -> p.ConfiguredAirbyteCatalog:
    return p.ConfiguredAirbyteCatalog(streams=[p.ConfiguredAirbyteStream(
        stream=p.AirbyteStream(name=n, json_schema=schema or {"type": "object"},
                               supported_sync_modes=["full_refresh"]),
        sync_mode="full_refresh", destination_sync_mode="append",
        primary_key=key) for n in names])


def rec(stream: str, **data: Any) -> dict[str, Any]:
    return {"type": "RECORD", "record": {"stream": stream, "data": data, "emitted_at": 1}}


def state(stream: str | None, value: int) -> dict[str, Any]:
    if stream is None:
        return {"type": "STATE", "state": {"type": "LEGACY", "data": {"at": value}}}
    return {"type": "STATE", "state": {"type": "STREAM", "stream": {
        "stream_descriptor": {"name": stream}, "stream_state": {"at": value}}}}


class Recorder(Writer):
    """Keeps records in memory; a flush "commits" them to ``committed`` and logs the time."""

    def __init__(self, names: tuple[str, ...] = ("a", "b"), **settings: Any) -> None:
        for name, value in settings.items():
            setattr(self, name, value)
        super().__init__(catalog(*names, schema=settings.get("schema")))
        self.kept: list[tuple[str, dict[str, Any]]] = []
        self.committed: list[tuple[str, dict[str, Any]]] = []
        self.log: list[str] = []
        self.held_back: set[str] = set()
        self.wait = False
        self.closed = 0

    def record(self, stream: str, data: dict[str, Any]) -> bool:
        if data.get("bad"):
            self.reject(stream, "bad", data)
            return False
        self.kept.append((stream, data))
        return True

    def pending(self) -> int:
        return len(self.kept)

    def flush(self) -> None:
        self.log.append(f"flush {len(self.kept)}")
        self.committed += [r for r in self.kept if r[0] not in self.held_back]
        self.kept = [r for r in self.kept if r[0] in self.held_back]

    def may_wait(self) -> bool:
        return self.wait

    def streams_waiting(self) -> set[str]:
        return {s for s, _ in self.kept}

    def not_saved(self, streams: set[str]) -> None:
        self.log.append(f"not saved {sorted(streams)}")

    def close(self) -> None:
        self.closed += 1


def run(writer: Writer, messages: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The echoed states, each checked against what was committed when it came out."""
    for line in writer.write(iter(messages)):
        yield orjson.loads(line)


def test_a_state_is_echoed_after_the_records_before_it_are_committed() -> None:
    writer = Recorder()
    out = writer.write(iter([rec("a", id=1), rec("a", id=2), state("a", 1), rec("a", id=3)]))
    first = orjson.loads(next(out))
    assert first["state"]["stream"]["stream_state"] == {"at": 1}
    assert [d["id"] for _, d in writer.committed] == [1, 2]  # committed before the echo
    assert first["state"]["destinationStats"] == {"recordCount": 2.0, "rejectedRecordCount": 0.0}
    assert list(out) == []
    assert [d["id"] for _, d in writer.committed] == [1, 2, 3]  # the end flushes the rest
    assert writer.closed == 1


def test_counts_are_per_stream_and_a_global_state_takes_the_rest() -> None:
    writer = Recorder()
    states = list(run(writer, [rec("a", id=1), rec("b", id=1), rec("b", id=2),
                               rec("a", bad=True), state("b", 1), rec("a", id=2),
                               state(None, 2)]))
    assert [s["state"]["destinationStats"] for s in states] == [
        {"recordCount": 2.0, "rejectedRecordCount": 0.0},
        {"recordCount": 2.0, "rejectedRecordCount": 1.0}]


def test_states_wait_until_a_flush_is_due() -> None:
    writer = Recorder(flush_every_s=3600.0, batch_size=3)
    out = writer.write(iter([rec("a", id=1), state("a", 1), rec("a", id=2), state("a", 2),
                             rec("a", id=3), rec("a", id=4), state("a", 3)]))
    first = orjson.loads(next(out))
    # Nothing flushed at the first two states (not due); the full batch flushed all three.
    assert first["state"]["stream"]["stream_state"] == {"at": 1}
    assert writer.log == ["flush 3"]
    assert [s["state"]["stream"]["stream_state"] for s in map(orjson.loads, out)] == [
        {"at": 2}, {"at": 3}]


def test_a_full_batch_flushes_between_states() -> None:
    writer = Recorder(flush_every_s=3600.0, batch_size=2)
    states = list(run(writer, [state("a", 0), rec("a", id=1), rec("a", id=2), rec("a", id=3)]))
    assert writer.log[0] == "flush 2"  # before the third record, with a state held
    assert len(states) == 1


def test_a_flush_may_be_put_off_but_not_at_the_end() -> None:
    writer = Recorder()
    writer.wait = True
    out = writer.write(iter([rec("a", id=1), state("a", 1)]))
    assert orjson.loads(next(out))["state"]["stream"]["stream_state"] == {"at": 1}
    assert writer.log == ["flush 1"]  # only at the end


def test_states_of_streams_held_back_stay_held_and_are_dropped_at_the_end() -> None:
    writer = Recorder()
    writer.held_back = {"b"}
    states = list(run(writer, [rec("b", id=1), state("b", 1), rec("a", id=1), state("a", 1),
                               state(None, 2)]))
    assert [state_stream(s) for s in states] == ["a"]  # b's state and the global one held
    assert writer.log[-1] == "not saved ['b']"


def test_records_against_their_schema_are_rejected_before_the_destination_sees_them() -> None:
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    writer = Recorder(check_schemas=True, schema=schema)
    states = list(run(writer, [rec("a", id="x"), rec("a", id=2), state("a", 1)]))
    assert writer.committed == [("a", {"id": 2})]
    assert states[0]["state"]["destinationStats"] == {"recordCount": 1.0,
                                                      "rejectedRecordCount": 1.0}


def test_close_runs_when_the_input_fails() -> None:
    writer = Recorder()

    def broken() -> Iterator[dict[str, Any]]:
        yield rec("a", id=1)
        raise OSError("pipe closed")

    with pytest.raises(OSError):
        list(writer.write(broken()))
    assert writer.closed == 1


def test_sqlite_commits_before_it_echoes_and_counts_rejections(tmp_path: Path) -> None:
    path = tmp_path / "mirror.db"
    out = sqlite.write({"path": str(path)}, catalog("a", key=[["id"]]),
                       iter([rec("a", id=1), rec("a", name="no key"), state("a", 1),
                             rec("a", id=2)]))
    first = orjson.loads(next(out))
    other = sqlite3.connect(path)  # another connection sees only what is committed
    assert other.execute('SELECT COUNT(*) FROM "a"').fetchone()[0] == 1
    assert first["state"]["destinationStats"] == {"recordCount": 1.0, "rejectedRecordCount": 1.0}
    assert list(out) == []
    assert other.execute('SELECT COUNT(*) FROM "a"').fetchone()[0] == 2
    assert other.execute("SELECT reason FROM _rejected").fetchall() == [
        ("primary key field missing",)]
