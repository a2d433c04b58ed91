"""``runner sync``: one config in the seed document's layout, one command, state kept locally.

The config names the source connectors under ``connectors`` (``bigcommerce: {enabled, store_hash,
access_token, client_id, sync: {...}, lists: {...}}``), the destination under its own name
(``brevo: {api_key}``), and ``customer_mapping`` and ``webhooks`` at the top. Its JSON Schema is
composed from the connectors' own specs, so every field is validated where it is declared and an
unknown key is an error naming it and the valid ones; the ``webhooks`` table is checked against
the source's scopes by every command that loads the config.

The same file drives ``runner webhooks register|list|serve`` (:func:`webhook_setup`): the spool
is ``{state_dir}/{source}.spool.db`` and, without a ``webhook_secret``, one is made on first use
and kept in ``{state_dir}/webhook_secret`` (0600), so that register and serve agree.

A job is one enabled source feeding the destination: its config, the destination's config (with
that source's ``lists``), the catalog its ``sync`` switches select, and its state store
(``{state_dir}/{source}.state.db``, shared with ``runner webhooks serve --forward``).
"""

from __future__ import annotations

import copy
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.events import subscribed
from app.forward import Forwarder, model_catalog, sync_once
from connectors.brevo.ledger import dead_letter_counts
from framework.declarative.formats import format_utc
from framework.engine.source import HttpSource
from framework.errors import REDACT, ConfigError, ConnectorError
from framework.files import private_file
from framework.plugins.connector import Destination, connectors, get
from framework.protocol import messages as p
from framework.protocol.config import (
    apply_defaults,
    lift_choices,
    load_file,
    prepare_choices,
    substitute_env,
    validate_config,
)
from framework.protocol.statestore import StateStore
from framework.storage import is_postgres, located
from framework.webhooks.spool import Spool
from framework.webhooks.subscriptions import api_of, declared

log = logging.getLogger("tajo.sync")

DESTINATION = "brevo"
JOB_KEYS = ("enabled", "sync", "lists")  # sync-config keys that are not the source's own
#: Destination keys set from elsewhere in the sync config (storage: its top-level key).
LIFTED = ("customer_mapping", "state_dir", "lists", "storage")


@dataclass
class Job:
    """One enabled source and what it feeds the destination."""

    name: str
    source: HttpSource
    source_config: dict[str, Any]
    destination: Destination
    destination_config: dict[str, Any]
    catalog: p.ConfiguredAirbyteCatalog
    #: The state store: a SQLite file in state_dir, or a location in PostgreSQL.
    state_path: str | Path
    #: The platform scopes of the webhooks table (empty for a source without webhooks).
    scopes: list[str] = field(default_factory=list)
    state_dir: Path = Path(".tajo")

    def store(self) -> StateStore:
        return StateStore(self.state_path)

    @property
    def streams(self) -> set[str]:
        """The streams its ``sync`` switches select: the model's, and the API streams they
        are made of (which webhooks feed, which scopes read)."""
        named = {s.stream.name for s in self.catalog.streams}
        loaded = self.source.loaded.streams
        return named | {parent.stream for name in named
                        if (parent := loaded[name].parent) is not None}


def _object(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": properties, **extra}


def sync_schema(sources: dict[str, HttpSource], destination: Destination) -> dict[str, Any]:
    """The JSON Schema of a sync config, made of the connectors' connection specs."""
    dest = destination.loaded.model.connectionSpecification
    dest_props = dest["properties"]
    connectors = {}
    for name, source in sources.items():
        spec = source.loaded.model.connectionSpecification
        # A connector's own ``webhooks`` table stays in its block (its spec validates it).
        props = {k: v for k, v in spec["properties"].items() if k != "read_mode"}
        groups = source.loaded.model.sync_groups
        props["enabled"] = {"type": "boolean", "default": True,
                            "description": "false: this connector is not synced"}
        props["sync"] = _object({g: {"type": "boolean", "default": True} for g in groups},
                                description="what to sync (all true by default)")
        props["lists"] = dest_props["lists"]
        connectors[name] = _object(props, required=["lists", *spec.get("required", [])])
    brevo = {k: v for k, v in dest_props.items() if k not in LIFTED}
    return _object({
        "connectors": _object(connectors, minProperties=1),
        "customer_mapping": dest_props["customer_mapping"],
        "webhooks": {"type": "array", "items": {"type": "object"},
                     "description": "the product page's webhooks table: it applies to every "
                                    "connector without a webhooks table of its own (each row "
                                    "is checked against that connector's spec)"},
        "state_dir": {"type": "string", "default": ".tajo",
                      "description": "where state, spool, ledger and dead letters are kept"},
        "storage": {"type": "string", "pattern": "^postgres(ql)?://",
                    "description": "a PostgreSQL URL (postgresql://USER:${PASSWORD}@HOST/DB) "
                                   "to keep the spool, stream states, run history, the Brevo "
                                   "ledger and dead letters in, instead of files in state_dir"},
        DESTINATION: _object(brevo, required=["api_key"]),
    }, required=["connectors", DESTINATION])


#: ``customer_mapping`` as the product page writes it (BigCommerce's customer fields) -> the
#: paths of the commerce model's customer the destination reads. Keys already model paths, or
#: named the same in both (email, first_name, phone, addresses[0].city, ...), pass as they are.
MAPPING_PATHS = {"customer_group_id": "group.name", "date_created": "created_at",
                 "date_modified": "updated_at", "orders_count": "order_count",
                 "total_spent": "amount_spent"}
ADDRESS_FIELDS = {"state": "region", "state_or_province": "region", "zip": "postal_code",
                  "address1": "line1", "address2": "line2"}
CUSTOM_FIELD_PREFIXES = ("form_fields.", "attributes.")


def model_path(path: str) -> str:
    """One ``customer_mapping`` key as a path of the model's customer."""
    if path in MAPPING_PATHS:
        return MAPPING_PATHS[path]
    for prefix in CUSTOM_FIELD_PREFIXES:
        if path.startswith(prefix):  # a form field or attribute, by its name
            return "custom_fields." + path.removeprefix(prefix)
    head, dot, last = path.rpartition(".")
    if dot and head.startswith("addresses[") and last in ADDRESS_FIELDS:
        return f"{head}.{ADDRESS_FIELDS[last]}"
    return path


def model_mapping(mapping: dict[str, str]) -> dict[str, str]:
    """``customer_mapping`` as the product page writes it, in the model's paths."""
    return {model_path(path): attribute for path, attribute in mapping.items()}


def sources() -> dict[str, HttpSource]:
    """The installed HTTP sources that have sync switches (the ones a sync config can name)."""
    return {name: conn for name, conn in connectors().items()
            if isinstance(conn, HttpSource) and conn.loaded.model.sync_groups}


def load(path: str | Path, *, dry_run: bool = False) -> list[Job]:
    """Read and validate a sync config; the jobs it asks for."""
    found = sources()
    destination = get(DESTINATION, "destination")
    assert isinstance(destination, Destination)
    config = substitute_env(load_file(path))
    # A section keeps the seed's layout (store_hash and access_token beside enabled): its
    # fields move into the source's choices (store_setup) before anything is validated.
    for name, section in ((config.get("connectors") or {}) if isinstance(config, dict)
                          else {}).items():
        if name in found and isinstance(section, dict):
            prepare_choices(section, found[name].loaded.model.connectionSpecification)
    schema = sync_schema(found, destination)
    validate_config(config, schema, "sync")
    state_dir = Path(config.get("state_dir") or ".tajo")
    storage = config.get("storage")
    jobs = []
    for name, section in config["connectors"].items():
        if section.get("enabled", True) is False:
            log.info("connectors.%s is not enabled: skipped", name)
            continue
        source = found[name]
        source_config = {k: copy.deepcopy(v) for k, v in section.items() if k not in JOB_KEYS}
        source_config.setdefault("spool_path", located(storage, name) if storage
                                 else str(state_dir / f"{name}.spool.db"))
        if config.get("webhooks") and "webhooks" not in section:
            others = [found[n] for n in config["connectors"] if n != name and n in found]
            source_config["webhooks"] = shared_webhooks(source, config["webhooks"], others)
        source_spec = source.loaded.model.connectionSpecification
        source_config = lift_choices(apply_defaults(validate_config(
            source_config, source_spec, name), source_spec), source_spec)
        destination_config = {**config[DESTINATION], "lists": section["lists"],
                              "state_dir": str(state_dir)}
        if storage:  # the ledger and dead letters follow the spool and states
            destination_config["storage"] = storage
        if config.get("customer_mapping"):
            destination_config["customer_mapping"] = model_mapping(config["customer_mapping"])
        if dry_run:
            destination_config["dry_run"] = True
        spec = destination.loaded.model.connectionSpecification
        destination_config = apply_defaults(validate_config(destination_config, spec,
                                                            DESTINATION), spec)
        # The table is checked here, not only by `runner webhooks register`: a scope the
        # source does not know would otherwise surface only when the receiver refuses it.
        scopes = subscribed(source, source_config) if source.loaded.model.webhooks else []
        jobs.append(Job(name, source, source_config, destination, destination_config,
                        catalog(source, section.get("sync") or {}),
                        state_location(source, source_config, state_dir, storage), scopes,
                        state_dir))
    if not jobs:
        raise ConfigError("no connector is enabled: set enabled: true under connectors")
    return jobs


def _scopes(source: HttpSource) -> set[str]:
    hooks = source.loaded.model.webhooks
    return set(hooks.scopes) | set(hooks.aliases) if hooks else set()


def shared_webhooks(source: HttpSource, rows: list[Any], others: list[HttpSource]
                    ) -> list[Any]:
    """The top-level ``webhooks`` table (the product page's layout, written for one platform)
    as a connector's. A scope that another connector of the config knows and this one does
    not means the table is the other's: the fix is a table of this connector's own. (A scope
    nobody knows, a typo, is left to the connector's own check, which lists the valid ones.)

    Raises:
        ConfigError: a row whose scope is another connector's.
    """
    known = _scopes(source)
    for index, row in enumerate(rows):
        scope = row.get("scope") if isinstance(row, dict) else None
        if scope not in known and any(scope in _scopes(other) for other in others):
            raise ConfigError(
                f"webhooks[{index}].scope: {scope!r} is not a scope of connectors."
                f"{source.name}, and the top-level webhooks table applies to every connector "
                f"without its own: give connectors.{source.name} a webhooks table of its own "
                f"(or move this table under the connector it is for)")
    return rows


def state_location(source: HttpSource, source_config: dict[str, Any], state_dir: Path,
                   storage: str | None) -> str | Path:
    """Where a job's stream states and runs are kept: ``{state_dir}/{source}.state.db``, or
    in PostgreSQL the namespace ``{source}.state.{its stores' keys}``: a store's states are
    found by any worker whose config names that store, whatever the file is called."""
    if not storage:
        return state_dir / f"{source.name}.state.db"
    keys = sorted(source.account_key(a) for a in source.accounts(source_config))
    return located(storage, f"{source.name}.state.{'+'.join(keys)}")


def is_sync_config(path: str | Path) -> bool:
    """Whether a file is a sync config (``connectors:`` at the top), not a source's own."""
    raw = load_file(path)
    return isinstance(raw, dict) and "connectors" in raw


def job_of(path: str | Path, source: HttpSource) -> Job:
    """The job of ``source`` in the sync config at ``path``."""
    for job in load(path):
        if job.name == source.name:
            return job
    raise ConfigError(f"{path} has no enabled connectors.{source.name}: add it (enabled: true) "
                      f"or give --source the connector the file configures")


@dataclass
class WebhookSetup:
    """What `runner webhooks` reads from its --config: the source's config (spool and secret
    set) and, from a sync config, its job (destination, sync switches, state)."""

    config: dict[str, Any]
    job: Job | None
    streams: set[str]


def webhook_setup(source: HttpSource, path: str | Path) -> WebhookSetup:
    """The source config that `runner webhooks` uses, from a source config or a sync config
    (``tajo.yaml``: its section of ``connectors``, its ``webhooks`` table, ``state_dir``)."""
    if not is_sync_config(path):
        return WebhookSetup(source.load_config(path), None, set(source.loaded.streams))
    job = job_of(path, source)
    config = dict(job.source_config)
    if not config.get("webhook_secret"):
        if is_postgres(str(job.state_path)):  # replicas: a secret made here is this machine's
            raise ConfigError(f"connectors.{source.name}.webhook_secret is not set: with "
                              "storage in PostgreSQL every receiver must verify with the same "
                              "secret; set it (e.g. webhook_secret: ${WEBHOOK_SECRET})")
        config["webhook_secret"] = stored_secret(job.state_dir)
    return WebhookSetup(config, job, job.streams)


def stored_secret(state_dir: Path) -> str:
    """The webhook secret kept in ``state_dir`` (made, 0600, on first use)."""
    path = private_file(state_dir / "webhook_secret", "webhook secret file")
    secret = path.read_text(encoding="ascii", errors="replace").strip()
    if not secret:
        secret = secrets.token_urlsafe(32)
        path.write_text(secret + "\n", encoding="ascii")
        log.info("webhook_secret is not set: made one and kept it in %s (register and serve "
                 "use it)", path)
    REDACT.add([secret])
    return secret


#: The most a ``browse_abandoned`` waits past its due time under the forwarder: it falls due
#: at a write of the Brevo destination (connectors/brevo/storefront.py), so the forwarder
#: runs a cycle at least this often while storefront events are forwarded.
DUE_EVERY_S = 30.0
STOREFRONT_STREAM = "commerce_storefront_events"


def due_every(catalog: p.ConfiguredAirbyteCatalog, destination_config: dict[str, Any]
              ) -> float | None:
    """How often the forwarder must run with no new event (None: never) so that a
    ``browse_abandoned`` goes out within ``DUE_EVERY_S`` of its due time, or within half its
    window when the window is shorter (at least every second): the storefront's events are
    forwarded and the window is not 0 (off)."""
    if not any(s.stream.name == STOREFRONT_STREAM for s in catalog.streams):
        return None
    minutes = (destination_config.get("storefront") or {}).get("browse_abandoned_minutes")
    if minutes is None:  # the destination's default window, an hour
        return DUE_EVERY_S
    window_s = float(minutes) * 60
    return max(1.0, min(DUE_EVERY_S, window_s / 2)) if window_s > 0 else None


def forwarder(setup: WebhookSetup, source: HttpSource, forward_config: str | Path,
              destination_name: str, state_dir: str | Path, poll_every_s: float) -> Forwarder:
    """The forwarder of ``runner webhooks serve --forward FILE``. FILE is a destination's
    config, or a sync config (the same ``tajo.yaml``): then its destination, its ``sync``
    switches (a stream switched off is not forwarded) and its state are used. It runs at
    least every :func:`due_every` with no new event, for ``browse_abandoned``."""
    if is_sync_config(forward_config):
        job = setup.job if setup.job is not None else job_of(forward_config, source)
        return Forwarder(source, setup.config, job.destination, job.destination_config,
                         job.state_path, poll_every_s, job.catalog,
                         due_every(job.catalog, job.destination_config))
    destination = get(destination_name, "destination")
    assert isinstance(destination, Destination)
    catalog_ = setup.job.catalog if setup.job is not None else None
    config = destination.load_config(forward_config)
    return Forwarder(source, setup.config, destination, config,
                     Path(state_dir) / f"{source.name}.state.db", poll_every_s, catalog_,
                     due_every(catalog_ or model_catalog(source), config))


def store_hooks(job: Job) -> dict[str, list[dict[str, Any]]]:
    """Each store's hooks, as BigCommerce lists them: this API account's only (``GET
    /v3/hooks``, and ``/v3/hooks/admin`` too, show no other app's)."""
    api = api_of(job.source)
    found = {}
    for account in job.source.accounts(job.source_config):
        client = job.source.client(account)
        try:
            found[job.source.account_key(account)] = api.list(client)
        finally:
            client.close()
    return found


def hook_warnings(job: Job, hooks: dict[str, list[dict[str, Any]]]) -> list[str]:
    """A stream read only from webhooks (carts) that is synced while a store has no active
    hook of ours for its resource: nothing of it would ever arrive."""
    spec = declared(job.source)
    header = spec.secret_header.lower()
    warnings = []
    for name in sorted(job.streams):
        live = job.source.loaded.streams[name].live
        if live is None or not live.only:
            continue
        scopes = sorted(scope for scope, d in spec.scopes.items() if d.resource == live.resource)
        if not scopes:  # no webhook brings it (storefront events: the storefront script does)
            continue
        if not any(spec.scopes[scope].subscribed for scope in scopes):
            continue  # the platform sends it unasked (a privacy topic): no subscription to miss
        for store, registered in hooks.items():
            if any(h.get("scope") in scopes and h.get("is_active", True)
                   and header in {k.lower() for k in h.get("headers") or {}}
                   for h in registered):
                continue
            warnings.append(
                f"{store}: {name} is synced but no {live.resource} webhook of ours is "
                f"registered (or active): {name} is read only from webhooks, so none reach "
                f"the destination; run `runner webhooks register --config CONFIG --url "
                f"https://YOUR-RECEIVER/webhooks/{job.name}` (or set sync.{name}: false)")
    return warnings


def setup_warnings(job: Job, hooks: dict[str, list[dict[str, Any]]] | None) -> list[str]:
    """What ``check`` and ``status`` warn about: a scope an enrichment needs, what the
    webhooks table misses, stores without the hooks a synced stream depends on."""
    warnings = job.source.warnings(job.source_config, job.streams)
    if job.scopes:
        warnings += job.source.table_advice(job.scopes, job.streams)
    if hooks is not None:
        warnings += hook_warnings(job, hooks)
    return warnings


def catalog(source: HttpSource, switches: dict[str, bool]) -> p.ConfiguredAirbyteCatalog:
    """The source's commerce-model streams (what the destination reads), less those made of
    the streams of the groups switched off."""
    off = {name for group, names in source.loaded.model.sync_groups.items()
           if switches.get(group) is False for name in names}
    return model_catalog(source, off)


def run(jobs: list[Job], observe: Callable[[dict[str, Any]], None] | None = None) -> int:
    """Sync every job; returns the records read. A failed job is recorded and raised."""
    return sum(_run_job(job, observe) for job in jobs)


def _run_job(job: Job, observe: Callable[[dict[str, Any]], None] | None) -> int:
    store = job.store()
    run_id = store.start_run("dry-run" if job.destination_config.get("dry_run") else "sync")
    counted = 0

    def watch(message: dict[str, Any]) -> None:
        nonlocal counted
        if message["type"] == "RECORD":
            counted += 1
        if observe is not None:
            observe(message)

    try:
        checked = job.destination.check(job.destination_config)  # e.g. a list that is missing
        if checked.status != "SUCCEEDED":
            raise ConfigError(f"{DESTINATION}: {checked.message}")
        sync_once(job.source, job.source_config, job.destination, job.destination_config,
                  store, job.catalog, observe=watch)
    except ConnectorError as exc:
        store.finish_run(run_id, "failed", exc.message, counted)
        raise
    except BaseException as exc:
        store.finish_run(run_id, "failed", f"{type(exc).__name__}: {exc}", counted)
        raise
    else:
        store.finish_run(run_id, "succeeded", None, counted)
    finally:
        store.close()
    return counted


def status(jobs: list[Job]) -> dict[str, Any]:
    """What ``runner status`` shows: both sides checked, last sync per stream, counts in
    Brevo, spool depth, last errors, dead letters."""
    report: dict[str, Any] = {"connectors": {}}
    destination = jobs[0].destination
    dest_config = jobs[0].destination_config
    dest_check = destination.check(dest_config)
    report["brevo"] = {"connected": dest_check.status == "SUCCEEDED",
                       "error": dest_check.message}
    counts = getattr(destination, "counts", None)
    if callable(counts) and report["brevo"]["connected"]:
        report["brevo"].update(counts(dest_config))
    for job in jobs:
        check = job.source.check(job.source_config)
        store = job.store()
        try:
            saved = store.load()
            runs = store.runs()
            last_sync = store.saved_at()
        finally:
            store.close()
        failed = next((r for r in runs if r["status"] == "failed"), None)
        # Incremental streams: when their state last moved; the others are read whole by
        # every sync, so: when the last successful sync ended.
        succeeded = next((r["finished_at"] for r in runs if r["status"] == "succeeded"
                          and r["kind"] == "sync"), None)
        warnings: list[str] = []
        if check.status == "SUCCEEDED":
            try:
                hooks = store_hooks(job) if job.source.loaded.model.webhooks else None
                warnings = setup_warnings(job, hooks)
            except ConnectorError as exc:
                warnings = [f"could not check the setup: {exc.message}"]
        report["connectors"][job.name] = {
            "connected": check.status == "SUCCEEDED", "error": check.message,
            "warnings": warnings,
            "last_run": runs[0] if runs else None,
            "last_error": failed["error"] if failed else None,
            # Named as the sync switches and the store name them (customers, orders, ...):
            # each model stream by the API stream it is made of.
            "streams": {_shown(job, s.stream.name): {
                "last_sync": _iso(last_sync.get(s.stream.name) or succeeded)}
                for s in job.catalog.streams},
            "spool": _spool_depth(job, saved)}
    report["dead_letters"] = dead_letter_counts(dest_config)
    report["connected"] = report["brevo"]["connected"] and all(
        c["connected"] for c in report["connectors"].values())
    return dict(REDACT.deep(report))  # checks and stored errors may quote a secret


def _shown(job: Job, name: str) -> str:
    """A stream as ``runner status`` names it: a model stream by its API stream."""
    parent = job.source.loaded.streams[name].parent
    return parent.stream if parent is not None else name


def _iso(epoch: float | None) -> str | None:
    return format_utc(epoch) if epoch else None


def _spool_depth(job: Job, saved: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Events in the spool, and those some stream has not read yet."""
    path = job.source_config.get("spool_path")
    if not path or (not is_postgres(path) and not Path(path).exists()):
        return {"events": 0, "unread": 0, "dead_letters": 0}
    loaded = job.source.loaded.streams
    live = {s.stream.name for s in job.catalog.streams
            if loaded[s.stream.name].live or ((parent := loaded[s.stream.name].parent)
                                              and loaded[parent.stream].live)}
    offsets = [state.get("spool_offset") or 0 for name in live
               for state in ((saved.get(name) or {}).get(job.source.state_key)
                             or {"": {}}).values()]
    spool = Spool(path)
    try:
        return {"events": spool.count(), "unread": spool.count(after=min(offsets, default=0)),
                "dead_letters": len(spool.dead_letters())}
    finally:
        spool.close()
