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

from framework.plugins.commands import MAX_LINE

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
                        "storefront, webhook_secret, webhooks); ignored"]
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


def state(stream: str = "commerce_customers") -> bytes:
    return json.dumps({"type": "STATE", "state": {"type": "STREAM", "stream": {
        "stream_descriptor": {"name": stream}, "stream_state": {"cursor": 1}}}}).encode() + b"\n"


STATE = state()
# Records of the commerce model, which the Brevo destination reads.
UNKNOWN = {"state": "unknown"}
CUSTOMER = {"platform": "bigcommerce", "account": "abc", "id": "1", "deleted": False,
            "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee",
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
            "consent": {"email": UNKNOWN, "sms": UNKNOWN, "abandoned_cart": UNKNOWN}}
ORDER = {"platform": "bigcommerce", "account": "abc", "id": "5", "deleted": False,
         "customer_id": "1", "email": "a@b.co", "counts_as_purchase": True, "total": 5.0,
         "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"}
GOOD = record("commerce_customers", CUSTOMER)

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
    ("id of the wrong type", record("commerce_customers", {**CUSTOMER, "id": 7}),
     "does not match the commerce_customers schema: id is integer 7, the schema says a "
     "string"),
    ("no primary key", record("commerce_customers",
                              {k: v for k, v in CUSTOMER.items() if k != "id"}),
     "the primary key 'id' is missing"),
    ("bad email", record("commerce_customers", {**CUSTOMER, "email": "not-an-email"}),
     "invalid email 'not-an-email'"),
    ("no email", record("commerce_customers", {**CUSTOMER, "email": None}),
     "invalid email None"),
    ("bad date", record("commerce_customers", {**CUSTOMER, "updated_at": "yesterday"}),
     "updated_at 'yesterday' is not an ISO 8601 date-time"),
    ("amount not a number", record("commerce_orders", {**ORDER, "total": "lots"}),
     "total is a string 'lots', the schema says integer or null or number"),
    ("flag not a boolean", record("commerce_orders", {**ORDER, "counts_as_purchase": "yes"}),
     "counts_as_purchase is a string 'yes'"),
]


@pytest.mark.parametrize(("data", "reason"), [c[1:] for c in RECORDS],
                         ids=[c[0] for c in RECORDS])
def test_records_are_dead_lettered_and_counted(account: BrevoBox, tmp_path: Path,
                                               data: bytes, reason: str) -> None:
    path = tmp_path / "brevo.json"
    path.write_text(json.dumps(_brevo(account, tmp_path)))
    other = {**CUSTOMER, "id": "2", "email": "bob@example.com"}
    stream = json.loads(data)["record"]["stream"]
    got, output = run("write", "brevo", "--config", str(path),
                      stdin=data + state(stream) + record("commerce_customers", other) + STATE)
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
    data = {**CUSTOMER, "id": "3", "email": "cy@example.com", "phone": "12"}
    got, output = run("write", "brevo", "--config", str(path),
                      stdin=record("commerce_customers", data) + STATE)
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
    from framework.protocol.catalog import load_state

    trace = {"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": 1.0, "error": {
        "message": "x", "failure_type": "system_error"}}}
    path = tmp_path / "states.jsonl"
    path.write_bytes(json.dumps(trace).encode() + b"\n")
    assert load_state(path) == {}
    path.write_bytes(STATE + json.dumps(trace).encode() + b"\n" + STATE[:30])
    assert load_state(path) == {"commerce_customers": {"cursor": 1}}
    path.write_bytes(STATE + b"{torn\n" + STATE)
    with pytest.raises(Exception, match="line 2 is not JSON"):
        load_state(path)


@pytest.mark.parametrize("saved", [{"stores": 5}, {"data": [1]}, {"customers": "x"}])
def test_a_legacy_state_that_is_not_streams_and_objects_is_one_line(
        tmp_path: Path, saved: Any) -> None:
    """A whole state file of ``{"stores": 5}`` was read as no state at all (exit 0)."""
    path = tmp_path / "state.json"
    path.write_text(json.dumps(saved))
    config = tmp_path / "bc.json"  # nothing listens there: the state is read first
    config.write_text(json.dumps({"api_url": "http://127.0.0.1:9", "store_hash": "abc123",
                                  "access_token": "corpus-token"}))
    before = path.read_bytes()
    got, output = run("read", "bigcommerce", "--config", str(config), "--state", str(path))
    assert got == 2, output
    assert "legacy state" in output and "expected" in output, output
    assert "this is a bug" not in output and path.read_bytes() == before


# --- a careless operator (issue 15) -------------------------------------------------------
ODD_TOKEN = 'corpus"odd\\tok<&é-2f4b'  # characters that change when escaped


def _forms_absent(output: str, secret: str) -> None:
    from framework.errors import secret_forms
    for form in secret_forms(secret):
        assert form not in output, f"a spelling of a secret appears: {form!r}"


@pytest.fixture(scope="module")
def odd_store() -> Iterator[Sandbox]:
    box = start_sandbox("--customers", "3", "--orders", "3", "--products", "2",
                        "--access-token", ODD_TOKEN)
    yield box
    box.stop()


def test_a_secret_with_a_trailing_newline_works_and_never_shows(odd_store: Sandbox,
                                                                tmp_path: Path) -> None:
    """A file-mounted Kubernetes secret ends with a newline: stripped, it works."""
    path = tmp_path / "bc.json"
    path.write_text(json.dumps(odd_store.config(access_token=ODD_TOKEN + "\n")))
    for command in ("check", "read"):
        got, output = run(command, "bigcommerce", "--config", str(path))
        assert got == 0, output[-500:]
        _forms_absent(output, ODD_TOKEN)


# (id, change to a working source config, the one-line message; all exit 2, nothing leaks)
CARELESS_CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    ("a line break inside a token", {"access_token": "corpus-tok\nen-77"},
     "'store_setup.access_token' has a control character (U+000A) inside it"),
    ("stores as a mapping", {"store_hash": None, "access_token": None,
                             "stores": {"main": {"store_hash": "abc", "access_token":
                                                 "corpus-mapped-token-91"}}},
     "'store_setup.stores' must be of type array (got a mapping)"),
    ("a token in api_url", {"api_url": "https://api.example.com/?token=corpus-url-token-52"},
     "'api_url' must be an https:// URL without a path"),
    ("a password in api_url", {"api_url": "https://me:corpus-url-pass-53@api.example.com"},
     "'api_url' must be an https:// URL without a path"),
]


@pytest.mark.parametrize(("change", "message"), [c[1:] for c in CARELESS_CONFIGS],
                         ids=[c[0] for c in CARELESS_CONFIGS])
def test_a_careless_config_is_one_line_without_its_secret(store: Sandbox, tmp_path: Path,
                                                          change: dict[str, Any],
                                                          message: str) -> None:
    path = tmp_path / "bc.json"
    config = {**store.config(), **change}
    path.write_text(json.dumps({k: v for k, v in config.items() if v is not None}))
    for command in ("check", "read"):  # check: the CONNECTION_STATUS on stdout too
        got, output = run(command, "bigcommerce", "--config", str(path))
        assert got == (1 if command == "check" else 2), output
        assert any(message in line for line in output.splitlines()), output
        assert "corpus-" not in output and "tok\nen" not in output


def test_a_sync_config_with_a_string_for_brevo_does_not_print_the_key(tmp_path: Path) -> None:
    path = tmp_path / "tajo.yaml"
    path.write_text("connectors:\n  bigcommerce: {store_hash: abc, access_token: t, "
                    "lists: {all_customers: 40}}\nbrevo: ${CORPUS_BREVO_KEY}\n")
    result = subprocess.run([RUNNER, "sync", "--config", str(path)], capture_output=True,
                            timeout=60, env={**__import__("os").environ,
                                             "CORPUS_BREVO_KEY": "xkeysib-corpus-shape-1\n"})
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 2, output
    assert "'brevo' must be of type object" in output and "corpus-shape" not in output


def test_a_yaml_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ['a0: &a0 "${HOME}lol"']
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    got, output = run("read", "bigcommerce", "--config", str(path))  # 120 s timeout in run
    assert got == 2 and "YAML aliases (*a0) are not accepted in a config" in output


# (id, the saved state of customers for the store, the message)
BAD_STATES: list[tuple[str, Any, str]] = [
    ("a cursor that is not a date", {"date_modified": "yesterday"},
     "has date_modified 'yesterday', not an ISO 8601 date"),
    ("an integer cursor", {"date_modified": 5}, "has date_modified 5, not an ISO 8601 date"),
    ("stores not a mapping", 5, 'is not {"stores": {store: {field: value}}}'),
]


@pytest.mark.parametrize(("saved", "message"), [c[1:] for c in BAD_STATES],
                         ids=[c[0] for c in BAD_STATES])
def test_a_bad_saved_state_is_one_line(store: Sandbox, tmp_path: Path, saved: Any,
                                       message: str) -> None:
    stream_state = {"stores": saved if saved == 5 else {store.store_hash: saved}}
    state = tmp_path / "state.json"
    state.write_text(json.dumps([{"type": "STREAM", "stream": {
        "stream_descriptor": {"name": "customers"}, "stream_state": stream_state}}]))
    before = state.read_bytes()
    config = tmp_path / "bc.json"
    config.write_text(json.dumps(store.config()))
    got, output = run("read", "bigcommerce", "--config", str(config), "--state", str(state))
    assert got == 2, output[-500:]
    assert message in output and "this is a bug" not in output
    assert "or from the state database in state_dir) to read the stream again" in output
    assert state.read_bytes() == before


def _sync_config(store: Sandbox, account: BrevoBox, tmp_path: Path) -> Path:
    path = tmp_path / "tajo.json"
    path.write_text(json.dumps({
        "connectors": {"bigcommerce": {"store_hash": store.store_hash, "api_url": store.url,
                                       "access_token": store.access_token, "lists": LISTS}},
        "brevo": {"api_key": account.key, "api_url": account.url},
        "state_dir": str(tmp_path / "state")}))
    return path


@pytest.mark.parametrize("name", ["bigcommerce.state.db", "brevo.db"])
def test_a_damaged_database_is_one_line_and_left_as_it_is(store: Sandbox, account: BrevoBox,
                                                          tmp_path: Path, name: str) -> None:
    damaged = tmp_path / "state" / name
    damaged.parent.mkdir()
    damaged.write_bytes(b"this is not SQLite\n" * 100)
    got, output = run("sync", "--config", str(_sync_config(store, account, tmp_path)))
    assert got == 2, output[-800:]
    assert f"{damaged} is damaged or not a SQLite database" in output
    assert f"mv {damaged} {damaged}.damaged" in output and "Traceback" not in output
    assert damaged.read_bytes() == b"this is not SQLite\n" * 100


def test_a_spool_path_that_is_a_directory(store: Sandbox, tmp_path: Path) -> None:
    config = tmp_path / "bc.json"
    config.write_text(json.dumps(store.config(spool_path=str(tmp_path))))
    got, output = run("read", "bigcommerce", "--config", str(config))
    assert got == 2, output[-500:]
    assert f"webhook spool {tmp_path} is a directory; give the path of a file in it" in output


@pytest.mark.parametrize(("host", "message"), [
    ("127.0.0.1", "the port is in use by another process; stop it or choose another --port"),
    ("no-such-host.invalid", "unknown host"),
])
def test_a_port_in_use_or_an_unknown_host(store: Sandbox, tmp_path: Path, host: str,
                                          message: str) -> None:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    config = tmp_path / "bc.json"
    config.write_text(json.dumps(store.config(spool_path=str(tmp_path / "spool.db"),
                                              webhook_secret="corpus-hook-secret-0123")))
    try:
        got, output = run("webhooks", "serve", "--config", str(config), "--host", host,
                          "--port", str(taken.getsockname()[1]))
    finally:
        taken.close()
    assert got == 2, output[-800:]
    assert f"error: cannot listen on {host}:" in output and message in output
    assert "Traceback" not in output and "corpus-hook" not in output


def test_customer_data_files_are_private_after_a_sync(store: Sandbox, account: BrevoBox,
                                                      tmp_path: Path) -> None:
    import stat
    got, output = run("sync", "--config", str(_sync_config(store, account, tmp_path)))
    assert got == 0, output[-800:]
    state_dir = tmp_path / "state"
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in state_dir.iterdir()}
    assert {"bigcommerce.state.db", "brevo.db"} <= set(files), files
    assert all(mode == 0o600 for mode in files.values()), files
