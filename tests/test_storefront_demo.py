"""``runner sync --sandbox`` prints its store's storefront URL; with ``--keep`` the storefront
stays up with the script installed and a receiver forwarding into Brevo's sandbox, so a
shopper's events arrive there (the page's part, the script in a browser, is
tests/test_storefront_browser.py's)."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import RUNNER

pytestmark = pytest.mark.e2e


def test_the_demo_keeps_a_storefront_whose_events_reach_brevo(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    with log.open("w") as errors:
        demo = subprocess.Popen([RUNNER, "sync", "--sandbox", "--keep"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=errors, text=True)
    assert demo.stdout is not None and demo.stdin is not None
    try:
        lines: list[str] = []
        while not (lines and lines[-1].startswith("press Enter")):
            line = demo.stdout.readline()
            assert line, f"the demo ended: {''.join(lines)}{log.read_text()[-2000:]}"
            lines.append(line)
        out = "".join(lines)
        shop = re.search(r"its storefront (http://127\.0\.0\.1:\d+)/", out)
        assert shop, out
        store_url = shop.group(1)
        match = re.search(r"^storefront: (\S+)/ \(the script installed, sending to (\S+)\)$", out,
                          re.MULTILINE)
        assert match and match.group(1) == store_url, out
        receiver = match.group(2)
        config_path = re.search(r"runner status --config (\S+)", out)
        assert config_path, out
        config = json.loads(Path(config_path.group(1)).read_text())
        source = config["connectors"]["bigcommerce"]

        shopper = requests.Session()
        # The page shows the installed script once the shopper has consented to its category.
        shopper.cookies.set("tajo_sandbox_consent", '{"allow":[1,2,3],"deny":[]}')
        page = shopper.get(f"{store_url}/", timeout=10).text
        assert f"{receiver}/storefront/bigcommerce" in page
        email = requests.get(f"{store_url}/stores/{source['store_hash']}/v3/customers",
                             params={"limit": 1}, timeout=10,
                             headers={"X-Auth-Token": source["access_token"]}
                             ).json()["data"][0]["email"]
        shopper.post(f"{store_url}/login.php", data={"login_email": email,
                                                     "login_pass": "any"}, timeout=10)
        token = shopper.get(f"{store_url}/customer/current.jwt",
                            params={"app_client_id": source["client_id"]}, timeout=10)
        assert token.status_code == 200, token.text
        beacon = {"v": 1, "account": source["store_hash"], "visitor": "v" + secrets.token_hex(12),
                  "token": token.text.strip(), "events": [{
                      "id": "e1", "type": "product_viewed", "at": int(time.time() * 1000),
                      "url": f"{store_url}/products/1/",
                      "product": {"id": "1", "name": "One", "price": 10.0, "currency": "USD"}}]}
        sent = requests.post(f"{receiver}/storefront/bigcommerce", data=json.dumps(beacon),
                             headers={"Origin": store_url, "Content-Type": "text/plain"},
                             timeout=10)
        assert sent.status_code == 200, sent.text

        def viewed() -> list[dict[str, Any]]:
            state = requests.get(f"{config['brevo']['api_url']}/_sandbox/state", timeout=10,
                                 headers={"api-key": config["brevo"]["api_key"]}).json()
            return [e for e in state.get("events", []) if e["event_name"] == "product_viewed"
                    and e["identifiers"].get("email_id", "").lower() == email.lower()]

        deadline = time.monotonic() + 30
        while not viewed() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert viewed(), log.read_text()[-2000:]
        demo.stdin.write("\n")
        demo.stdin.flush()
        assert demo.wait(timeout=60) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
