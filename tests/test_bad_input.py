"""The bad input corpus: configs, stdin messages, API answers and records that are wrong, each
with the one-line message a user gets, the exit code, and nothing lost or leaked (rejected
records are in the dead-letter file and counted; no secret in any output). Hostile webhooks
have their own corpus in ``tests/test_webhooks.py`` (13 cases).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import LISTS, RUNNER, BrevoBox, Sandbox, start_sandbox

from framework.commands import MAX_LINE

pytestmark = pytest.mark.e2e

SECRET_TOKEN = "corpus-token-5b1f0c2e9d"
SECRET_KEY = "xkeysib-corpus-0000111122223333444455556666777788889999aaaabbbbccccddddeeeeffff-abcd"


@pytest.fixture(scope="module")
def store() -> Iterator[Sandbox]:
    box = start_sandbox("--customers", "20", "--orders", "20", "--products", "5",
                        "--access-token", SECRET_TOKEN)
    yield box
    box.stop()


@pytest.fixture(scope="module")
def account() -> Iterator[BrevoBox]:
    process = subprocess.Popen([RUNNER, "sandbox", "brevo", "--lists", "40,41,42",
                                "--api-key", SECRET_KEY, "--import-delay-ms", "10"],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline())
    yield BrevoBox(process, ready["url"], ready["api_key"])
    process.terminate()
    process.wait(timeout=10)


def run(*args: str, stdin: bytes = b"") -> tuple[int, str]:
    result = subprocess.run([RUNNER, *args], input=stdin, capture_output=True, timeout=120)
    output = result.stdout.decode() + result.stderr.decode()
    for secret in (SECRET_TOKEN, SECRET_KEY):
        assert secret not in output, f"a secret leaked into the output of {args[:2]}"
    return result.returncode, output


# --- config files -------------------------------------------------------------------------
# (id, change to a working source config, or raw file text; the message; the exit code of
# ``runner read bigcommerce``)
SOURCE_CONFIGS: list[tuple[str, Any, str, int]] = [
    ("wrong type", {"page_size": "abc"}, "'page_size' must be of type integer (got 'abc')", 2),
    ("unknown key", {"sycn": 1}, "unknown field 'sycn' (valid: api_url, channel_ids", 2),
    ("missing token", {"access_token": None}, "'store_setup' needs mode one_store (with "
     "store_hash and access_token) or several_stores (with stores)", 2),
    ("not a URL", {"api_url": "not a url"}, "'api_url' must be an https:// URL", 2),
    ("http to a remote host", {"api_url": "http://api.example.com"},
     "plain http:// only for loopback", 2),
    ("below minimum", {"concurrency": 0}, "'concurrency' must be >= 1 (got 0)", 2),
    ("above maximum", {"page_size": 1000}, "'page_size' must be <= 250", 2),
    ("not in the enum", {"read_mode": "push"}, "'read_mode' must be one of poll, webhooks", 2),
    ("bad date", {"start_date": "yesterday"}, "'start_date' must be an ISO 8601 date", 2),
    ("empty store hash", {"store_hash": ""}, "'store_setup.store_hash'", 2),
    ("channel ids not a list", {"channel_ids": "1,2"}, "'channel_ids' must be of type array", 2),
    ("timeout zero", {"request_timeout": 0}, "'request_timeout' must be > 0", 2),
    ("a list, not a mapping", [1, 2], "config must be a mapping of fields, got list", 2),
    ("YAML syntax", "store_hash: [unclosed\n", "is neither JSON nor YAML at line 2", 2),
    ("unset environment variable", "store_hash: abc\naccess_token: ${CORPUS_UNSET_TOKEN}\n",
     "environment variable CORPUS_UNSET_TOKEN is not set; export it first", 2),
    ("wrong token", {"access_token": "wrong-token-x"},
     "BigCommerce rejected the access token (HTTP 401", 2),
    ("wrong store hash", {"store_hash": "zzzzzz"}, "answered HTTP 404: no account there; "
     "check api_url, store_hash", 1),
    ("nothing listening", {"api_url": "http://127.0.0.1:9"},
     "failed after 6 attempts: ConnectionError; is the URL right and the server up?", 1),
]


@pytest.mark.parametrize(("change", "message", "code"),
                         [c[1:] for c in SOURCE_CONFIGS], ids=[c[0] for c in SOURCE_CONFIGS])
def test_source_config(store: Sandbox, tmp_path: Path, change: Any, message: str,
                       code: int) -> None:
    path = tmp_path / "bc.yaml"
    if isinstance(change, dict):
        config = {**store.config(), **change}
        path.write_text(json.dumps({k: v for k, v in config.items() if v is not None}))
    else:
        path.write_text(change if isinstance(change, str) else json.dumps(change))
    got, output = run("check" if code == 1 else "read", "bigcommerce", "--config", str(path))
    assert got == code, output
    assert any(message in line for line in output.splitlines()), output  # on one line


def test_an_unknown_key_is_a_warning_in_the_airbyte_cli(store: Sandbox, tmp_path: Path) -> None:
    """The platform may run a config saved by a newer version (Airbyte forbids
    additionalProperties: false for that reason): the Airbyte CLI warns, naming the key, and
    goes on; ``runner`` refuses the same config (the "unknown key" case above)."""
    path = tmp_path / "bc.json"
    path.write_text(json.dumps({**store.config(), "pagesize": 10}))
    result = subprocess.run([str(Path(RUNNER).parent / "source-bigcommerce"), "check",
                             "--config", str(path)], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    warnings = [m["log"]["message"] for m in messages
                if m["type"] == "LOG" and m["log"]["level"] == "WARN"]
    assert warnings == ["bigcommerce config: unknown field 'pagesize' (valid: api_url, "
                        "channel_ids, client_id, client_secret, concurrency, page_size, "
                        "read_mode, request_timeout, spool_path, start_date, store_setup, "
                        "webhook_secret, webhooks); ignored"]
    assert b"unknown field 'pagesize'" in result.stderr
    assert messages[-1]["connectionStatus"]["status"] == "SUCCEEDED"
    assert SECRET_TOKEN.encode() not in result.stdout + result.stderr


def _brevo(account: BrevoBox, tmp_path: Path, **change: Any) -> dict[str, Any]:
    config = {"api_url": account.url, "api_key": account.key, "lists": LISTS,
              "state_dir": str(tmp_path / "state"), **change}
    return {k: v for k, v in config.items() if v is not None}


BREVO_CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    ("no API key", {"api_key": None}, "'api_key' is required"),
    ("no all-customers list", {"lists": {"buyers": 41}}, "'lists.all_customers' is required"),
    ("list id not a number", {"lists": {"all_customers": "forty"}},
     "'lists.all_customers' must be of type integer"),
    ("wrong API key", {"api_key": "xkeysib-wrong-key-000"},
     "Brevo rejected the API key (HTTP 401 on /v3/contacts/lists): create a new API key"),
    ("a list that does not exist", {"lists": {"all_customers": 99}},
     "these lists do not exist in Brevo: all_customers=99; create them"),
    ("unknown mapping target", {"customer_mapping": {"email": "email", "first_name": 5}},
     "customer_mapping"),
]


@pytest.mark.parametrize(("change", "message"), [c[1:] for c in BREVO_CONFIGS],
                         ids=[c[0] for c in BREVO_CONFIGS])
def test_destination_config(account: BrevoBox, tmp_path: Path, change: dict[str, Any],
                            message: str) -> None:
    path = tmp_path / "brevo.json"
    path.write_text(json.dumps(_brevo(account, tmp_path, **change)))
    got, output = run("check", "brevo", "--config", str(path))
    assert got == 1, output
    assert message in output


SYNC_CONFIGS: list[tuple[str, str, str]] = [
    ("no connectors", "brevo: {api_key: x}\n", "'connectors' is required"),
    ("no brevo section", "connectors:\n  bigcommerce: {store_hash: a, access_token: t, "
     "lists: {all_customers: 40}}\n", "'brevo' is required"),
    ("misspelt key", "connectors:\n  bigcommerce: {sycn: {}}\nbrevo: {api_key: x}\n",
     "unknown field 'sycn' in 'connectors.bigcommerce'"),
    ("sync switch not a boolean", "connectors:\n  bigcommerce: {store_hash: a, access_token: t, "
     "lists: {all_customers: 40}, sync: {customers: maybe}}\nbrevo: {api_key: x}\n",
     "'connectors.bigcommerce.sync.customers' must be of type boolean (got 'maybe')"),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in SYNC_CONFIGS],
                         ids=[c[0] for c in SYNC_CONFIGS])
def test_sync_config(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tajo.yaml"
    path.write_text(text)
    got, output = run("sync", "--config", str(path))
    assert got == 2, output
    assert message in output


# --- stdin messages -----------------------------------------------------------------------

def record(stream: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"type": "RECORD", "record": {"stream": stream, "data": data,
                                                     "emitted_at": 1}}).encode() + b"\n"


def state(stream: str = "customers") -> bytes:
    return json.dumps({"type": "STATE", "state": {"type": "STREAM", "stream": {
        "stream_descriptor": {"name": stream}, "stream_state": {"cursor": 1}}}}).encode() + b"\n"


STATE = state()
CUSTOMER = {"id": 1, "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee",
            "date_created": "2024-01-01T00:00:00Z", "date_modified": "2024-01-01T00:00:00Z",
            "store_hash": "abc"}
GOOD = record("customers", CUSTOMER)

# (id, stdin, the message, the exit code)
STDIN: list[tuple[str, bytes, str, int]] = [
    ("not JSON", GOOD + b"hello\n", "stdin line 2: not JSON", 2),
    ("not an object", b"[1, 2]\n", "stdin line 1: expected a JSON object, got list", 2),
    ("unknown message type", b'{"type": "RECORDS", "record": {}}\n',
     "unknown message type 'RECORDS'; valid types: RECORD, STATE", 2),
    ("record without data", b'{"type": "RECORD", "record": {"stream": "customers", '
     b'"emitted_at": 1}}\n', "RECORD needs 'stream' (string) and 'data' (object)", 2),
    ("record without emitted_at", b'{"type": "RECORD", "record": {"stream": "customers", '
     b'"data": {}}}\n', "RECORD needs 'emitted_at' (integer ms)", 2),
    ("malformed state", b'{"type": "STATE", "state": {"type": "STREAM", "stream": {}}}\n',
     "invalid STATE message at 'state.stream.stream_descriptor'", 2),
    ("huge line", b'{"type": "RECORD", "record": {"stream": "customers", "data": {"x": "'
     + b"a" * (MAX_LINE + 10) + b'"}}}\n', "stdin line 1: longer than 16 MB", 2),
    ("unknown stream", record("nope", {"id": 1}) + STATE,
     "ignoring records of stream 'nope': it is not in the catalog", 0),
]


@pytest.mark.parametrize(("stdin", "message", "code"), [c[1:] for c in STDIN],
                         ids=[c[0] for c in STDIN])
def test_stdin(account: BrevoBox, tmp_path: Path, stdin: bytes, message: str,
               code: int) -> None:
    path = tmp_path / "brevo.json"
    path.write_text(json.dumps(_brevo(account, tmp_path)))
    got, output = run("write", "brevo", "--config", str(path), stdin=stdin)
    assert got == code, output[-500:]
    assert message in output


# --- records ------------------------------------------------------------------------------
# (id, the record, the reason kept with it in the dead-letter file; None: taken, with a
# warning)
RECORDS: list[tuple[str, bytes, str | None]] = [
    ("id of the wrong type", record("customers", {**CUSTOMER, "id": "abc"}),
     "does not match the customers schema: id is a string 'abc', the schema says integer"),
    ("no primary key", record("customers", {k: v for k, v in CUSTOMER.items() if k != "id"}),
     "the primary key 'id' is missing"),
    ("bad email", record("customers", {**CUSTOMER, "email": "not-an-email"}),
     "invalid email 'not-an-email'"),
    ("no email", record("customers", {**CUSTOMER, "email": None}),
     "email is null, the schema says a string"),
    ("bad date", record("customers", {**CUSTOMER, "date_modified": "yesterday"}),
     "date_modified 'yesterday' is not an ISO 8601 date-time"),
    ("amount not a number", record("orders", {
        "id": 5, "customer_id": 1, "total_inc_tax": "lots", "store_hash": "abc",
        "date_modified": "2024-01-01T00:00:00Z", "billing_address": {"email": "a@b.co"}}),
     "total_inc_tax is a string 'lots', the schema says integer or null or number"),
    ("flag not a boolean", record("customers", {**CUSTOMER, "accepts_product_review_"
                                                "abandoned_cart_emails": "yes"}),
     "accepts_product_review_abandoned_cart_emails is a string 'yes'"),
]


@pytest.mark.parametrize(("data", "reason"), [c[1:] for c in RECORDS],
                         ids=[c[0] for c in RECORDS])
def test_records_are_dead_lettered_and_counted(account: BrevoBox, tmp_path: Path,
                                               data: bytes, reason: str) -> None:
    path = tmp_path / "brevo.json"
    path.write_text(json.dumps(_brevo(account, tmp_path)))
    other = {**CUSTOMER, "id": 2, "email": "bob@example.com"}
    stream = json.loads(data)["record"]["stream"]
    got, output = run("write", "brevo", "--config", str(path),
                      stdin=data + state(stream) + record("customers", other) + STATE)
    assert got == 0, output[-500:]
    dead = [json.loads(line) for line in (tmp_path / "state" / "dead-letter.jsonl")
            .read_text().splitlines()]
    assert [d["reason"] for d in dead] and reason in dead[0]["reason"], dead
    assert dead[0]["record"] == json.loads(data)["record"]["data"]  # kept as it came
    assert "kept in the dead-letter file" in output
    states = [json.loads(line) for line in output.splitlines() if '"STATE"' in line]
    assert states[0]["state"]["destinationStats"]["rejectedRecordCount"] == 1.0
    assert "bob@example.com" in account.contacts()  # the good record went through


def test_a_bad_phone_is_left_out_of_sms_with_a_warning(account: BrevoBox,
                                                       tmp_path: Path) -> None:
    path = tmp_path / "brevo.json"
    path.write_text(json.dumps(_brevo(account, tmp_path)))
    data = {**CUSTOMER, "id": 3, "email": "cy@example.com", "phone": "12"}
    got, output = run("write", "brevo", "--config", str(path),
                      stdin=record("customers", data) + STATE)
    assert got == 0
    assert "1 phone numbers are not valid numbers and were left out of SMS" in output
    assert "SMS" not in account.contacts()["cy@example.com"]["attributes"]


# --- API answers --------------------------------------------------------------------------
# (id, faults queued on the store's next requests, the message, the exit code)
ANSWERS: list[tuple[str, dict[str, Any], str, int]] = [
    ("an HTML page with 200", {"status": 200, "html": True, "count": 6},
     "answered HTTP 200 with text/html; charset=utf-8, not JSON: '<html>", 1),
    ("a 502 page from a proxy", {"status": 502, "html": True, "count": 6},
     "failed with HTTP 502: <html><body><h1>502 Bad Gateway", 1),
    ("500s that outlast the retries", {"status": 500, "count": 6}, "failed with HTTP 500", 1),
    ("a 401 in the middle of a read", {"status": 401},
     "BigCommerce rejected the access token (HTTP 401", 2),
    ("records that are not a list", {"status": 200, "body": {"data": 5}},
     "answered without a list of records at 'data' (got int)", 1),
    ("a list instead of an object", {"status": 200, "body": [1, 2]},
     "answered without a list of records at 'data' (got list for the whole body)", 1),
]


@pytest.mark.parametrize(("fault", "message", "code"), [c[1:] for c in ANSWERS],
                         ids=[c[0] for c in ANSWERS])
def test_api_answers(make_sandbox: Callable[..., Sandbox], write_json: Any,
                     fault: dict[str, Any], message: str, code: int) -> None:
    box = make_sandbox("--customers", "5", "--orders", "5", "--products", "5",
                       "--access-token", SECRET_TOKEN)
    catalog = json.loads(subprocess.run([RUNNER, "discover", "bigcommerce", "--configured"],
                                        capture_output=True, check=True).stdout)
    catalog["streams"] = [s for s in catalog["streams"] if s["stream"]["name"] == "customers"]
    box.admin("POST", "faults", fault)
    got, output = run("read", "bigcommerce", "--config", str(write_json(box.config())),
                      "--catalog", str(write_json(catalog)))
    assert got == code, output[-500:]
    assert message in output
    assert '"type":"ERROR"' in output  # and the protocol's ERROR trace for an orchestrator


def test_the_corpus_has_forty_cases_and_more() -> None:
    count = (len(SOURCE_CONFIGS) + len(BREVO_CONFIGS) + len(SYNC_CONFIGS) + len(STDIN)
             + len(RECORDS) + 1 + len(ANSWERS) + 3)
    assert count >= 40, count



# --- state files --------------------------------------------------------------------------

def test_a_state_file_from_a_killed_run_resumes(tmp_path: Path) -> None:
    """The appended output of runs that failed (an ERROR trace) or were killed mid-line."""
    from framework.catalog import load_state

    trace = {"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": 1.0, "error": {
        "message": "x", "failure_type": "system_error"}}}
    path = tmp_path / "states.jsonl"
    path.write_bytes(json.dumps(trace).encode() + b"\n")
    assert load_state(path) == {}
    path.write_bytes(STATE + json.dumps(trace).encode() + b"\n" + STATE[:30])
    assert load_state(path) == {"customers": {"cursor": 1}}
    path.write_bytes(STATE + b"{torn\n" + STATE)
    with pytest.raises(Exception, match="line 2 is not JSON"):
        load_state(path)
