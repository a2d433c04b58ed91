"""A store that changes during the read: every record's latest version still arrives.

A read is exact up to its horizon (the server's time when the read cut its slices): every record
last changed before the final cursor arrives in that version. A change made during the read
lands past the horizon, and the next incremental read brings it.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import messages, run_cli

from connectors.bigcommerce import connector

TAG = {"customers": "notes", "orders": "staff_notes"}


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def last_versions(output: list[dict[str, Any]]) -> dict[tuple[str, int], str]:
    """The tag of the last version written of every record."""
    seen: dict[tuple[str, int], str] = {}
    for m in output:
        if m["type"] == "RECORD" and m["record"]["stream"] in TAG:
            data = m["record"]["data"]
            seen[(m["record"]["stream"], data["id"])] = data[TAG[m["record"]["stream"]]]
    return seen


@pytest.mark.e2e
def test_continuous_mutations_during_a_read_lose_no_latest_version(make_sandbox, tmp_path):
    box = make_sandbox("--customers", "3000", "--orders", "3000", "--products", "10",
                       "--latency-ms", "25", "--plan", "enterprise", "--seed", "41")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(box.config(page_size=50, concurrency=4)))
    catalog = connector.configured_catalog()
    catalog.streams = [s for s in catalog.streams if s.stream.name in TAG]
    catalog_path = tmp_path / "catalog.json"
    catalog_path.write_text(json.dumps(catalog.model_dump(mode="json", exclude_none=True)))

    latest: dict[tuple[str, int], tuple[int, str]] = {}
    stop = threading.Event()

    def mutate() -> None:
        round_no = 0
        while not stop.is_set():
            for resource in TAG:
                changed = box.admin("POST", "mutate", {"resource": resource, "update": 5,
                                                       "seed": f"{resource}-{round_no}"})
                for record_id, (modified, tag) in changed["versions"].items():
                    latest[(resource, int(record_id))] = (modified, tag)
            round_no += 1
            time.sleep(0.02)

    mutator = threading.Thread(target=mutate)
    mutator.start()
    time.sleep(1.5)  # changes before the read, then during it
    try:
        first = run_cli("runner", "read", "bigcommerce", "--config", str(config),
                        "--catalog", str(catalog_path))
    finally:
        stop.set()
        mutator.join()
    assert first.returncode == 0, first.stderr.decode()
    output = messages(first.stdout)
    emitted = last_versions(output)
    assert len(latest) > 50, "the store must really change during the read"
    read_started = min(t for t, _ in latest.values())
    assert any(t > read_started + 1 for t, _ in latest.values())
    final = {}
    for m in output:
        if m["type"] == "STATE":
            stream = m["state"]["stream"]
            final[stream["stream_descriptor"]["name"]] = stream["stream_state"]["stores"][
                box.store_hash]["date_modified"]
    # Every record last changed before the read's final cursor arrived, in its latest
    # version; what changed later (past the read's horizon) is the next run's.
    snapshot = box.admin("GET", "snapshot")
    checked = 0
    for resource in TAG:
        for record_id, modified in snapshot[resource]:
            if iso(modified) < final[resource]:
                assert (resource, record_id) in emitted, (resource, record_id)
                if (resource, record_id) in latest:
                    assert emitted[(resource, record_id)] == latest[(resource, record_id)][1]
                    checked += 1
    assert checked > 0
    # The next incremental read brings the rest: then every record is there, latest version.
    state = tmp_path / "state.jsonl"
    state.write_bytes(first.stdout)
    second = run_cli("runner", "read", "bigcommerce", "--config", str(config), "--catalog",
                     str(catalog_path), "--state", str(state))
    assert second.returncode == 0, second.stderr.decode()
    emitted.update(last_versions(messages(second.stdout)))
    for resource in TAG:
        assert {(resource, i) for i, _ in snapshot[resource]} <= set(emitted)
    for (resource, record_id), (_, tag) in latest.items():
        assert emitted[(resource, record_id)] == tag, (resource, record_id)
