"""No secret in any output: every command runs with recognisable fake secrets (right and
wrong ones, verbose and JSON logs, failures included), and none may appear in stdout, stderr,
logs, dead-letter files, state, ledger or spool."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import LISTS, RUNNER, start_sandbox
from webhook_kit import HEADER, Poster, payload, start_receiver

pytestmark = pytest.mark.e2e

# Each secret has characters that change when escaped (quotes, backslash, non-ASCII, < and &),
# and the configs hand them over with surrounding whitespace (``padded``): a trailing newline,
# as a file-mounted Kubernetes secret has.
TOKEN = 'SECRETbc"tok\\en<&é7f3a9c1e55'
CLIENT_SECRET = "SECRETclient'secret&2b8d4"
HOOK_SECRET = 'SECREThook<secret>"91c0e7ab'
API_KEY = "xkeysib-SECRETbrevo" + "0" * 48 + '-SECRET\\tail"é'
WRONG_TOKEN = "SECRETwrong'token<55aa"
WRONG_KEY = "xkeysib-SECRETwrongkey" + "1" * 40 + "&é"
SECRETS = (TOKEN, CLIENT_SECRET, HOOK_SECRET, API_KEY, WRONG_TOKEN, WRONG_KEY, "SECRET")


def padded(secret: str) -> str:
    return f" {secret}\n"


def leaked(text: str) -> list[str]:
    """The secrets found in ``text``, in any spelling (framework/errors.py lists them)."""
    from framework.errors import secret_forms
    return [secret[:12] for secret in SECRETS for form in secret_forms(secret) if form in text]


def test_no_command_leaks_a_secret(tmp_path: Path) -> None:
    store = start_sandbox("--customers", "30", "--orders", "30", "--products", "5",
                          "--access-token", TOKEN, "--client-secret", CLIENT_SECRET)
    brevo = subprocess.Popen([RUNNER, "sandbox", "brevo", "--lists", "40,41,42", "--api-key",
                              API_KEY, "--import-delay-ms", "10"], stdout=subprocess.PIPE,
                             text=True)
    assert brevo.stdout is not None
    brevo_url = json.loads(brevo.stdout.readline())["url"]
    outputs: dict[str, str] = {}

    def write(name: str, obj: Any) -> str:
        path = tmp_path / name
        path.write_text(json.dumps(obj))
        return str(path)

    def run(name: str, *args: str, stdin: bytes = b"", code: int | None = None) -> bytes:
        result = subprocess.run([RUNNER, *args], input=stdin, capture_output=True, timeout=120)
        outputs[name] = (result.stdout + result.stderr).decode(errors="replace")
        if code is not None:
            assert result.returncode == code, (name, outputs[name][-400:])
        return result.stdout

    source = {"api_url": store.url, "store_hash": store.store_hash,
              "access_token": padded(TOKEN), "webhook_secret": padded(HOOK_SECRET),
              "client_secret": padded(CLIENT_SECRET), "spool_path": str(tmp_path / "spool.db")}
    destination = {"api_url": brevo_url, "api_key": padded(API_KEY), "lists": LISTS,
                   "state_dir": str(tmp_path / "brevo")}
    sync = {"connectors": {"bigcommerce": {**{k: v for k, v in source.items()
                                              if k != "spool_path"}, "lists": LISTS}},
            "brevo": {"api_key": padded(API_KEY), "api_url": brevo_url},
            "state_dir": str(tmp_path / "sync")}
    try:
        bc, dest, tajo = (write("bc.json", source), write("brevo.json", destination),
                          write("tajo.json", sync))
        run("spec", "spec", "bigcommerce", code=0)
        run("check", "-v", "check", "bigcommerce", "--config", bc, code=0)
        run("check brevo", "check", "brevo", "--config", dest, code=0)
        run("check sync", "check", "--config", tajo, code=0)
        run("discover", "discover", "bigcommerce", "--config", bc, code=0)
        records = run("read", "-v", "read", "bigcommerce", "--config", bc, code=0)
        # A record the destination rejects goes to the dead-letter file.
        bad = orjson.dumps({"type": "RECORD", "record": {"stream": "customers", "emitted_at": 1,
                            "data": {"id": 999, "email": "no-at-sign"}}}) + b"\n"
        run("write", "--json-logs", "write", "brevo", "--config", dest, stdin=records + bad,
            code=0)
        run("sync dry run", "-v", "sync", "--config", tajo, "--dry-run", code=0)
        run("sync", "--json-logs", "sync", "--config", tajo, code=0)
        run("status", "status", "--config", tajo, code=0)
        run("status json", "status", "--config", tajo, "--json", code=0)
        url = "http://127.0.0.1:9/webhooks/bigcommerce"
        run("register", "-v", "webhooks", "register", "--config", bc, "--url", url, code=0)
        run("list", "webhooks", "list", "--config", bc, "--json", code=0)
        # Wrong secrets: the failures must not echo them either.
        run("wrong token", "-v", "read", "bigcommerce", "--config",
            write("wrong.json", {**source, "access_token": padded(WRONG_TOKEN)}), code=2)
        run("wrong key", "check", "brevo", "--config",
            write("wrongkey.json", {**destination, "api_key": padded(WRONG_KEY)}), code=1)
        run("wrong key sync", "sync", "--config",
            write("wrongsync.json", {**sync, "brevo": {**sync["brevo"],
                                                        "api_key": padded(WRONG_KEY)}}))
        # The receiver, with a valid and a forged delivery.
        receiver = start_receiver(Path(bc))
        poster = Poster(receiver.endpoint)
        body = orjson.dumps(payload(store.store_hash, "store/customer/updated",
                                    {"type": "customer", "id": 3}))
        assert poster.post(body, {HEADER: HOOK_SECRET})[0] == 200
        assert poster.post(body, {HEADER: WRONG_TOKEN})[0] == 401
        poster.close()
        time.sleep(0.2)
        outputs["receiver"] = receiver.stop()
    finally:
        store.stop()
        brevo.terminate()
        brevo.wait(timeout=10)

    assert len(outputs) == 17
    for name, text in outputs.items():
        assert not leaked(text), f"{leaked(text)} appear in the output of {name}"
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".json"]
    assert any(p.name == "dead-letter.jsonl" and p.stat().st_size for p in files)
    assert any(p.name.endswith(".db") for p in files)
    for path in files:  # dead letters, SQLite state, ledger and spool (WAL files included)
        data = path.read_bytes().decode(errors="replace")
        assert not leaked(data), f"{leaked(data)} are stored in {path.name}"
