"""The sandbox's Scripts API held to BigCommerce's OpenAPI file (tests/reference/bigcommerce/
scripts.v3.yml, nobody here wrote it), and ``runner storefront install|status|uninstall``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import run_cli
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from starlette.testclient import TestClient

from connectors.bigcommerce import scripts
from connectors.bigcommerce.sandbox.app import Sandbox, build_app
from connectors.bigcommerce.sandbox.data import Store

SPEC = yaml.safe_load((Path(__file__).parent / "reference" / "bigcommerce" / "scripts.v3.yml")
                      .read_text())
REGISTRY = Registry().with_resource("urn:scripts", Resource.from_contents(
    SPEC, default_specification=DRAFT4))
LIST, ONE = "/paths/~1content~1scripts", "/paths/~1content~1scripts~1{uuid}"
JSON = "content/application~1json/schema"


def conforms(pointer: str, instance: Any) -> None:
    """``instance`` is valid against the schema at ``pointer`` of the OpenAPI file."""
    OAS30Validator({"$ref": f"urn:scripts#{pointer}"}, registry=REGISTRY,
                   format_checker=oas30_format_checker).validate(instance)


class Api:
    """The sandbox in this process; every request body and answer checked against the
    OpenAPI file."""

    def __init__(self) -> None:
        self.sandbox = Sandbox(Store.generate(7, "enterprise", 3), "tok-all", 30_000, 0)
        self.http = TestClient(build_app([self.sandbox]))
        self.base = f"/stores/{self.sandbox.store.store_hash}/v3/content/scripts"

    def token(self, scopes: list[str], client_id: str | None = None) -> str:
        body: dict[str, Any] = {"scopes": scopes}
        if client_id:
            body["client_id"] = client_id
        return str(self.http.post("/_sandbox/tokens", json=body,
                                  headers={"X-Auth-Token": "tok-all"}).json()["access_token"])

    def call(self, method: str, uuid: str | None = None, body: Any = None,
             token: str = "tok-all", params: dict[str, Any] | None = None) -> tuple[int, Any]:
        operation = f"{ONE if uuid else LIST}/{method.lower()}"
        if body is not None and method in ("POST", "PUT") and isinstance(body, dict):
            try:
                conforms(f"{operation}/requestBody/{JSON}", body)
                valid_request = True
            except Exception:
                valid_request = False
        answer = self.http.request(method, self.base + (f"/{uuid}" if uuid else ""),
                                   json=body, params=params,
                                   headers={"X-Auth-Token": token})
        status = answer.status_code
        data = answer.json() if answer.content else None
        if status in (200, 404, 422) and str(status) in _responses(operation):
            conforms(f"{operation}/responses/{status}/{JSON}", data)
        if status == 204:
            assert not answer.content
        if status == 200 and body is not None and method in ("POST", "PUT"):
            assert valid_request, "the sandbox took a body the OpenAPI file refuses"
        return status, data


def _responses(operation: str) -> dict[str, Any]:
    node: Any = SPEC
    for part in operation.strip("/").split("/"):
        node = node[part.replace("~1", "/")]
    return dict(node["responses"])


@pytest.fixture
def api() -> Api:
    return Api()


TAG = {"name": "Ours", "kind": "script_tag", "html": "<script>1</script>",
       "consent_category": "targeting", "visibility": "storefront", "auto_uninstall": True}


def test_every_answer_matches_the_reference(api: Api) -> None:
    status, made = api.call("POST", body=TAG)
    assert status == 200
    script = made["data"]
    assert script["api_client_id"] == "sandbox-app" and script["location"] == "footer"
    assert api.call("GET", script["uuid"])[1]["data"] == script
    status, listed = api.call("GET", params={"sort": "name", "direction": "desc"})
    assert status == 200 and [s["uuid"] for s in listed["data"]] == [script["uuid"]]
    assert listed["meta"]["pagination"]["total"] == 1
    status, changed = api.call("PUT", script["uuid"], {"consent_category": "analytics"})
    assert status == 200 and changed["data"]["consent_category"] == "analytics"
    assert api.call("DELETE", script["uuid"]) == (204, None)
    status, missing = api.call("GET", script["uuid"])
    assert status == 404 and missing["status"] == 404


@pytest.mark.parametrize(("body", "field"), [
    ({k: v for k, v in TAG.items() if k != "name"}, "name"),
    ({**TAG, "name": ""}, "name"),
    ({**TAG, "name": "x" * 256}, "name"),
    ({"name": "a", "kind": "src"}, "src"),
    ({"name": "a", "kind": "src", "src": "https://x.example/a.js", "html": "<script></script>"},
     "html"),
    ({**TAG, "src": "https://x.example/a.js"}, "src"),
    ({**TAG, "html": "<script>" + "1" * 65536 + "</script>"}, "html"),
    ({**TAG, "html": "no tag"}, "html"),
    ({**TAG, "html": "<script></script>" * 6}, "html"),
    ({**TAG, "load_method": "async"}, "load_method"),
    ({**TAG, "consent_category": "unknown"}, "consent_category"),
    ({**TAG, "visibility": "everywhere"}, "visibility"),
    ({**TAG, "location": "body"}, "location"),
    ({**TAG, "kind": "inline"}, "kind"),
    ({"name": "a"}, "kind"),
    ({**TAG, "channel_id": 0}, "channel_id"),
    ({**TAG, "enabled": "yes"}, "enabled"),
    ({**TAG, "integrity_hashes": ["sha256-a"] * 6}, "integrity_hashes"),
])
def test_invalid_bodies_are_422_naming_the_field(api: Api, body: dict[str, Any],
                                                 field: str) -> None:
    status, answer = api.call("POST", body=body)
    assert status == 422, answer
    assert field in answer["errors"]


def test_an_app_has_ten_scripts_and_sees_only_its_own(api: Api) -> None:
    for n in range(10):
        assert api.call("POST", body={**TAG, "name": f"s{n}"})[0] == 200
    status, answer = api.call("POST", body={**TAG, "name": "eleventh"})
    assert status == 422 and "10" in answer["title"]
    other = api.token(["store_v2_content"], client_id="another-app")
    status, theirs = api.call("POST", body={**TAG, "name": "theirs"}, token=other)
    assert status == 200  # the limit is per app
    mine = api.call("GET", params={"limit": 250})[1]["data"]
    assert len(mine) == 10 and theirs["data"]["uuid"] not in {s["uuid"] for s in mine}
    for method, body in (("GET", None), ("PUT", {"enabled": False}), ("DELETE", None)):
        assert api.call(method, theirs["data"]["uuid"], body)[0] == 404


def test_the_content_scope_and_the_checkout_scope(api: Api) -> None:
    none = api.token(["store_v2_products"])
    assert api.call("GET", token=none)[0] == 403
    read_only = api.token(["store_v2_content_read_only"])
    assert api.call("GET", token=read_only)[0] == 200
    assert api.call("POST", body=TAG, token=read_only)[0] == 403
    assert api.call("POST", body={**TAG, "visibility": "all_pages"})[0] == 403


def test_an_unset_consent_category_is_left_out_of_answers(api: Api) -> None:
    """The reference's default, unknown, is not in its own enum (see sandbox/scripts.py)."""
    body = {k: v for k, v in TAG.items() if k != "consent_category"}
    status, made = api.call("POST", body=body)
    assert status == 200 and "consent_category" not in made["data"]
    assert api.sandbox.scripts.scripts[made["data"]["uuid"]]["consent_category"] == "unknown"


def test_our_script_body_is_a_valid_script_post_within_64_kb() -> None:
    body = scripts.wanted("https://hooks.example.com/storefront/bigcommerce", "abc123",
                          "client-1", "targeting")
    conforms(f"{LIST}/post/requestBody/{JSON}", body)
    assert len(body["html"]) < 64 * 1024 and body["html"].count("<script") == 1
    assert body["auto_uninstall"] is True and body["visibility"] == "storefront"
    settings = body["html"].rsplit("(", 1)[1].rsplit(")", 1)[0]
    assert json.loads(settings) == {"endpoint": "https://hooks.example.com/storefront/"
                                    "bigcommerce", "store": "abc123", "clientId": "client-1"}


# --- runner storefront install | status | uninstall (a sandbox as a subprocess) -------------

def _tajo(tmp_path: Path, sandbox: Any, token: str | None = None,
          consent: str = "analytics") -> Path:
    config = {"connectors": {"bigcommerce": {
        "store_hash": sandbox.store_hash, "access_token": token or sandbox.access_token,
        "api_url": sandbox.url, "client_id": "tajo-app",
        "lists": {"all_customers": 40}, "storefront": {"consent_category": consent}}},
        "brevo": {"api_key": "k"}, "state_dir": str(tmp_path / "state")}
    path = tmp_path / "tajo.json"
    path.write_text(json.dumps(config))
    return path


def _rows(result: Any) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr.decode()
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.e2e
def test_install_is_idempotent_and_touches_only_ours(tmp_path: Path, make_sandbox: Any) -> None:
    import requests

    sandbox = make_sandbox()
    api = f"{sandbox.url}/stores/{sandbox.store_hash}/v3/content/scripts"
    auth = {"X-Auth-Token": sandbox.access_token}
    other = requests.post(api, json={**TAG, "name": "Another app's"}, headers=auth,
                          timeout=10).json()["data"]
    config = _tajo(tmp_path, sandbox)
    url = ["--url", "http://127.0.0.1:9/"]
    first = _rows(run_cli("runner", "storefront", "install", "--config", str(config), *url,
                          "--json"))
    assert [r["action"] for r in first] == ["created"]
    again = _rows(run_cli("runner", "storefront", "install", "--config", str(config), *url,
                          "--json"))
    assert again == [{**first[0], "action": "unchanged"}]
    changed = _rows(run_cli("runner", "storefront", "install", "--config",
                            str(_tajo(tmp_path, sandbox, consent="targeting")), *url, "--json"))
    assert changed[0]["action"] == "updated" and changed[0]["fields"] == ["consent_category"]
    installed = requests.get(f"{api}/{first[0]['uuid']}", headers=auth, timeout=10).json()
    conforms(f"{ONE}/get/responses/200/{JSON}", installed)
    assert installed["data"]["consent_category"] == "targeting"
    assert '"endpoint":"http://127.0.0.1:9/storefront/bigcommerce"' in installed["data"]["html"]
    status = _rows(run_cli("runner", "storefront", "status", "--config", str(config), "--json"))
    assert status[0]["installed"] and status[0]["enabled"] and status[0]["received"] == {}
    gone = _rows(run_cli("runner", "storefront", "uninstall", "--config", str(config), "--json"))
    assert [r["action"] for r in gone] == ["removed"]
    left = requests.get(api, headers=auth, timeout=10).json()["data"]
    assert [s["uuid"] for s in left] == [other["uuid"]]  # another app's script stays
    text = run_cli("runner", "storefront", "status", "--config", str(config)).stdout.decode()
    assert "NOT INSTALLED" in text


@pytest.mark.e2e
def test_install_without_the_content_scope_says_what_to_grant(tmp_path: Path,
                                                              make_sandbox: Any) -> None:
    sandbox = make_sandbox()
    token = sandbox.admin("POST", "tokens", {"scopes": ["store_v2_information",
                                                        "store_v2_content_read_only"]})
    result = run_cli("runner", "storefront", "install", "--config",
                     str(_tajo(tmp_path, sandbox, token["access_token"])),
                     "--url", "https://hooks.example.com")
    assert result.returncode == 2
    assert "store_v2_content (Content: modify)" in result.stderr.decode()
    bad = run_cli("runner", "storefront", "install", "--config", str(_tajo(tmp_path, sandbox)),
                  "--url", "http://hooks.example.com")
    assert bad.returncode == 2 and "https://" in bad.stderr.decode()
