"""Child streams (order lines, coupons) keep their own sync mode and state.

A child is extracted from its parent's records, but Airbyte configures and resets every stream on
its own: a child added to an existing connection, reset alone, or read in full next to an
incremental parent must be backfilled, and the STATE messages must come out in the same order
whatever Python's hash seed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import messages, run_cli, start_sandbox

from connectors.bigcommerce import connector

FAMILY = ("orders", "order_products", "order_coupons")


@pytest.fixture(scope="module")
def store() -> Any:
    box = start_sandbox("--customers", "40", "--orders", "300", "--products", "10",
                        "--seed", "21", "--plan", "enterprise")
    yield box
    box.stop()


def catalog(tmp_path: Path, modes: dict[str, str]) -> Path:
    """A configured catalog of ``modes`` ({stream: sync mode})."""
    streams = []
    for stream in connector.discover().streams:
        if stream.name in modes:
            streams.append({"stream": stream.model_dump(mode="json", exclude_none=True),
                            "sync_mode": modes[stream.name],
                            "destination_sync_mode": "append_dedup"})
    path = tmp_path / f"catalog-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps({"streams": streams}))
    return path


def read(store: Any, tmp_path: Path, modes: dict[str, str],
         state: list[dict[str, Any]] | None = None, seed: str | None = None
         ) -> list[dict[str, Any]]:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(store.config(page_size=50)))
    args = ["source-bigcommerce", "read", "--config", str(config),
            "--catalog", str(catalog(tmp_path, modes))]
    if state is not None:
        path = tmp_path / f"state-{len(list(tmp_path.iterdir()))}.json"
        path.write_text(json.dumps(state))
        args += ["--state", str(path)]
    result = run_cli(*args, env={"PYTHONHASHSEED": seed} if seed else None)
    assert result.returncode == 0, result.stderr.decode()
    return messages(result.stdout)


def records(output: list[dict[str, Any]], stream: str) -> list[dict[str, Any]]:
    return [m["record"]["data"] for m in output
            if m["type"] == "RECORD" and m["record"]["stream"] == stream]


def final_states(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last STATE of each stream, as a state file holds them."""
    last: dict[str, dict[str, Any]] = {}
    for m in output:
        if m["type"] == "STATE":
            last[m["state"]["stream"]["stream_descriptor"]["name"]] = m["state"]
    return list(last.values())


def state_names(output: list[dict[str, Any]]) -> list[str]:
    return [m["state"]["stream"]["stream_descriptor"]["name"] for m in output
            if m["type"] == "STATE"]


@pytest.fixture(scope="module")
def everything(store: Any, tmp_path_factory: Any) -> list[dict[str, Any]]:
    """A first read of the whole family, incremental."""
    return read(store, tmp_path_factory.mktemp("first"), dict.fromkeys(FAMILY, "incremental"))


def test_the_store_has_coupons_to_lose(everything) -> None:
    coupons = records(everything, "order_coupons")
    with_coupon = {o["id"] for o in records(everything, "orders") if o["coupon_discount"]}
    assert len(coupons) >= 20 and {c["order_id"] for c in coupons} == with_coupon


@pytest.mark.parametrize("how", ["added to the connection", "reset on its own"])
def test_a_child_without_state_is_backfilled_while_its_parent_resumes(
        store, everything, tmp_path, how) -> None:
    if how == "added to the connection":
        before = read(store, tmp_path, {"orders": "incremental",
                                        "order_products": "incremental"})
        state = final_states(before)
    else:
        state = [s for s in final_states(everything)
                 if s["stream"]["stream_descriptor"]["name"] != "order_coupons"]
    assert {s["stream"]["stream_descriptor"]["name"] for s in state} == {
        "orders", "order_products"}
    after = read(store, tmp_path, dict.fromkeys(FAMILY, "incremental"), state)
    expected = {(c["order_id"], c["id"]) for c in records(everything, "order_coupons")}
    got = [(c["order_id"], c["id"]) for c in records(after, "order_coupons")]
    assert len(got) == len(set(got)) and set(got) == expected
    # The parent and the other child resume where they were: at most the newest second again.
    newest = max(o["date_modified"] for o in records(everything, "orders"))
    assert all(o["date_modified"] == newest for o in records(after, "orders"))
    assert len(records(after, "orders")) < 5
    # Every stream now stands at the same place.
    cursors = {s["stream"]["stream_descriptor"]["name"]:
               s["stream"]["stream_state"]["stores"][store.store_hash]["date_modified"]
               for s in final_states(after)}
    assert cursors == dict.fromkeys(FAMILY, newest)


def test_a_full_refresh_child_next_to_an_incremental_parent_is_read_in_full(
        store, everything, tmp_path) -> None:
    state = final_states(everything)
    after = read(store, tmp_path, {"orders": "incremental", "order_products": "incremental",
                                   "order_coupons": "full_refresh"}, state)
    assert len(records(after, "order_coupons")) == len(records(everything, "order_coupons"))
    assert len(records(after, "orders")) < 5
    lines = {(r["order_id"], r["id"]) for r in records(after, "order_products")}
    assert len(lines) < len(records(everything, "order_products")) / 10


def test_a_full_refresh_parent_keeps_its_incremental_child_where_it_was(
        store, everything, tmp_path) -> None:
    state = final_states(everything)
    after = read(store, tmp_path, {"orders": "full_refresh", "order_coupons": "incremental"},
                 state)
    assert len(records(after, "orders")) == len(records(everything, "orders"))
    assert len(records(after, "order_coupons")) < 3


def test_states_come_out_in_the_same_order_whatever_the_hash_seed(store, tmp_path) -> None:
    # How many checkpoints a read makes depends on its parallel slices' timing; the order of
    # the streams at each checkpoint must not depend on anything.
    for seed in ("0", "1", "2", "3", "4", "5"):
        output = read(store, tmp_path, dict.fromkeys(FAMILY, "incremental"), seed=seed)
        names = state_names(output)
        # A parent's STATE comes before its children's at every checkpoint: a child is never
        # ahead of its parent when a run stops between two STATE messages.
        assert names[:3] == list(FAMILY)
        assert names == list(FAMILY) * (len(names) // 3)


def test_every_stream_read_ends_with_its_state_even_when_nothing_is_new(
        store, everything, tmp_path) -> None:
    modes = {s.stream.name: s.sync_mode for s in connector.configured_catalog().streams}
    first = read(store, tmp_path, modes)
    again = read(store, tmp_path, modes, final_states(first))
    for output in (first, again):
        assert set(state_names(output)) == set(modes)
        # The STATE of a stream comes before its COMPLETE status.
        for name in modes:
            at = [i for i, m in enumerate(output) if m["type"] == "STATE"
                  and m["state"]["stream"]["stream_descriptor"]["name"] == name]
            done = [i for i, m in enumerate(output) if m["type"] == "TRACE"
                    and m["trace"].get("stream_status", {}).get("status") == "COMPLETE"
                    and m["trace"]["stream_status"]["stream_descriptor"]["name"] == name]
            assert at and done and at[-1] < done[0], name
    assert not records(again, "orders") or len(records(again, "orders")) < 5
    full_refresh = [n for n, mode in modes.items() if mode == "full_refresh"]
    assert full_refresh  # e.g. customer_groups, store
