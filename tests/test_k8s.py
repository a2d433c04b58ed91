"""The Kubernetes manifests (deploy/k8s/): valid against Kubernetes' own schemas (the
kubernetes-validate package bundles them; strict: an unknown field is an error), and what
they run is what the runner accepts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
KUBERNETES = "1.30.0"  # the oldest minor still supported upstream when this was written


def documents() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents() if doc["kind"] == kind]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_are_valid_kubernetes(path: Path) -> None:
    import kubernetes_validate

    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)  # raises what is wrong


def test_a_wrong_field_is_caught() -> None:
    """The check can fail: a misspelt field of a real manifest is refused."""
    import kubernetes_validate

    receiver = next(d for d in of_kind("Deployment") if d["metadata"]["name"] == "tajo-receiver")
    container = receiver["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbes"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(receiver, KUBERNETES, strict=True)


def _pod(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def test_receivers_workers_and_backfill_are_laid_out() -> None:
    deployments = {d["metadata"]["name"]: d for d in of_kind("Deployment")}
    receiver, worker = deployments["tajo-receiver"], deployments["tajo-worker"]
    assert receiver["spec"]["replicas"] >= 2
    probe = _pod(receiver)["containers"][0]["readinessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"
    # Not restarted for a storage outage: liveness asks only that the process answers.
    assert _pod(receiver)["containers"][0]["livenessProbe"]["httpGet"]["path"] == "/livez"
    budget = of_kind("PodDisruptionBudget")[0]
    assert budget["spec"]["selector"]["matchLabels"] == receiver["spec"]["selector"][
        "matchLabels"]
    assert budget["spec"]["minAvailable"] >= 1
    assert _pod(worker)["containers"][0]["args"][0] == "worker"
    job = of_kind("Job")[0]
    assert "--once" in _pod(job)["containers"][0]["args"]
    # Secrets come from the Secret, never from the manifests' own text.
    secret_names = {s["metadata"]["name"] for s in of_kind("Secret")}
    for workload in (receiver, worker, job):
        for container in _pod(workload)["containers"]:
            assert {ref["secretRef"]["name"] for ref in container["envFrom"]} <= secret_names
            assert "env" not in container


def test_what_the_pods_run_is_what_the_runner_accepts() -> None:
    from app.cli import cli

    for workload in of_kind("Deployment") + of_kind("Job"):
        args = _pod(workload)["containers"][0]["args"]
        group = cli
        while isinstance(group, click.Group):  # runner webhooks serve ...: down to the command
            command = group.get_command(click.Context(group), args[0])
            assert command is not None, args
            group, args = command, args[1:]
        context = group.make_context(str(group.name), list(args))
        config = context.params.get("config_path") or context.params.get("folder")
        assert str(config).startswith("/etc/tajo/")


def test_the_configmaps_hold_valid_configs_with_storage(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Each config of the ConfigMaps loads as a sync config once the Secret's variables are
    set, keeps its state in PostgreSQL, and holds no secret of its own."""
    from app import sync
    from framework.storage import is_postgres

    secret = of_kind("Secret")[0]["stringData"]
    for name, value in secret.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TAJO_CONNECTORS", os.environ.get("TAJO_CONNECTORS", ""))
    for config_map in of_kind("ConfigMap"):
        for key, text in config_map["data"].items():
            assert not any(value in text for value in secret.values())
            path = tmp_path / key
            path.write_text(text)
            for job in sync.load(path):
                assert is_postgres(str(job.state_path))
                assert is_postgres(job.source_config["spool_path"])
