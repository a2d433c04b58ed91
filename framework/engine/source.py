"""The engine that runs the streams an HTTP source declares in its spec file.

One path for data: HTTP page -> records (selected, normalized, tagged) -> RECORD lines -> a STATE
line once the page is out. The stream config says everything else: path, params, paginator,
where the records are, keys, cursor and schema; ``framework.engine.reader`` reads the pages.

Reads run in worker threads, at most ``concurrency`` requests at once per account under that
account's one pacer; this thread writes their pages in arrival order and the per-stream states.
State shape: ``{ACCOUNTS: {account: {cursor_field: value}}}``, one entry per account, under the
name the spec gives the accounts list (``client.accounts``, e.g. ``stores``).
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import click

from framework.declarative.formats import compile_plan, format_utc, iso_utc
from framework.declarative.paginators import PAGINATORS
from framework.declarative.spec import Settings, Stream
from framework.engine import page_process
from framework.engine.graphql import check_stream, fetch_by_ids, read_graphql
from framework.engine.http import HttpClient
from framework.engine.reader import (
    Hook,
    Page,
    Slice,
    Unit,
    horizon,
    read_live,
    read_slice,
    time_slices,
)
from framework.errors import ConfigError, ConnectorError
from framework.plugins.connector import Source
from framework.protocol import messages as p
from framework.webhooks.spool import Spool
from framework.webhooks.subscriptions import Subscriptions

log = logging.getLogger("tajo.source")

#: The key of the per-account states when the spec names no accounts list.
ACCOUNTS_KEY = "accounts"
SPOOL_OFFSET = "spool_offset"


#: A setup check of one stream: (one account's config, its client) -> what is missing and how
#: to fix it, or None. It finds what does not stop a read but makes it poorer (e.g. a scope an
#: enrichment needs); ``runner check`` and ``runner status`` show it.
Check = Callable[[dict[str, Any], HttpClient], "str | None"]

#: Advice on a webhooks table: (the platform scopes subscribed, the streams synced) -> warnings.
Advice = Callable[[list[str], set[str]], list[str]]


class HttpSource(Source):
    """A source whose streams are declared in its spec file and run by this engine.

    Args:
        hooks: named functions for what JSON cannot say (e.g. extracting an order's lines).
        checks: setup checks by the stream they are for (run when that stream is synced).
        advice: what a webhooks table misses for the streams synced.
        subscriptions: the platform's webhook subscriptions API
            (``framework.webhooks.subscriptions``).
    """

    def __init__(self, spec_file: str | Path, *, sandbox: click.Command | None = None,
                 version: str = "0.1.0", hooks: dict[str, Hook] | None = None,
                 checks: dict[str, Check] | None = None, advice: Advice | None = None,
                 subscriptions: type[Subscriptions] | None = None) -> None:
        super().__init__(spec_file, sandbox=sandbox, version=version)
        self.hooks = hooks or {}
        self.checks = checks or {}
        self.advice = advice
        webhooks = self.loaded.model.webhooks
        #: The platform's webhook subscriptions API (its plugin's), for a spec with webhooks.
        self.subscriptions = (subscriptions(webhooks) if subscriptions and webhooks
                              else None)

    def warnings(self, config: dict[str, Any], streams: set[str]) -> list[str]:
        """The setup checks of the ``streams`` synced, for every account: one line each (the
        account named when there are several)."""
        found: list[str] = []
        accounts = self.accounts(config)
        for account in accounts:
            checks = [check for name, check in self.checks.items() if name in streams]
            if not checks:
                continue
            client = self.client(account)
            try:
                for check in checks:
                    warning = check(account, client)
                    if warning:
                        prefix = f"{self.account_key(account)}: " if len(accounts) > 1 else ""
                        found.append(prefix + warning)
            finally:
                client.close()
        return found

    def table_advice(self, scopes: list[str], streams: set[str]) -> list[str]:
        """What the webhooks table (its platform ``scopes``) misses for the ``streams``."""
        return self.advice(scopes, streams) if self.advice else []

    @property
    def state_key(self) -> str:
        """The key of a stream state's per-account positions: the accounts list's name
        (``client.accounts``), so that a state reads like the config it came of."""
        spec = self.loaded.model.client
        return (spec.accounts if spec else None) or ACCOUNTS_KEY

    @property
    def settle_s(self) -> float:
        """How old a spooled event must be before it is read (``webhooks.settle_s``)."""
        hooks = self.loaded.model.webhooks
        return hooks.settle_s if hooks else 0.0

    def accounts(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """One config per account: the top-level one, or each entry of the accounts list
        (``client.accounts``) over the shared fields."""
        spec = self.loaded.model.client
        key = spec.accounts if spec else None
        if key and config.get(key):
            shared = {k: v for k, v in config.items() if k != key}
            return [{**shared, **entry} for entry in config[key]]
        return [config]

    def settings(self, config: dict[str, Any]) -> Settings:
        """The settings the engine reads from one account's config, under the field names
        the spec declares (``client.config``)."""
        spec = self.loaded.model.client
        return spec.config.read(config) if spec else Settings()

    def account_key(self, account: dict[str, Any]) -> str:
        spec = self.loaded.model.client
        return str(account.get(spec.account_field, "")) if spec and spec.account_field else ""

    def client(self, config: dict[str, Any], resets: list[int] | None = None) -> HttpClient:
        """One pooled client (and pacer) for the account ``config`` names.

        Waits for quota are logged and, when ``resets`` is given, their end times (epoch ms)
        are appended to it so that the streams can report themselves RATE_LIMITED.
        """
        spec = self.loaded.model.client
        assert spec is not None  # parse_spec guarantees a client for sources with streams
        base_url = spec.base_url.format(**{k: str(v).rstrip("/") for k, v in config.items()})
        headers = {**spec.headers, **spec.auth.authenticator().headers(config)}

        def on_wait(seconds: float, reason: str) -> None:
            if seconds >= 1:
                log.info("%s: waiting %.1fs: %s", self.account_key(config), seconds, reason)
            if resets is not None and ("quota" in reason or "429" in reason):
                resets.append(p.now_ms() + int(seconds * 1000))

        settings = spec.config.read(config)
        return HttpClient(base_url, headers, rate_limit=spec.rate_limit,
                          errors=dict(spec.errors.items()),  # keyed by status, as text
                          concurrency=settings.concurrency, on_wait=on_wait,
                          timeout=(10, settings.request_timeout))

    def check(self, config: dict[str, Any]) -> p.AirbyteConnectionStatus:
        """One cheap request per OAuth scope (and API version) the streams need, for every
        account."""
        for account in self.accounts(config):
            client = self.client(account)
            checked = set()
            try:
                for stream in self.loaded.model.streams:
                    if stream.request is not None:
                        assert self.loaded.model.client is not None
                        check_stream(client, self.loaded.path, self.loaded.model.client.graphql,
                                     stream)
                        continue
                    if stream.path is None or "{" in stream.path:
                        continue
                    # One request per scope and API version: V2 and V3 endpoints of one scope
                    # can fail apart (customer groups are V2 only).
                    key = (stream.scope, stream.path.split("/")[1])
                    if key in checked:
                        continue
                    checked.add(key)
                    path = stream.path.format(**account)
                    status, answer = client.send("GET", path,
                                                 params=stream.check_params or {},
                                                 scope=stream.scope)
                    if status == 404:
                        assert self.loaded.model.client is not None  # self.client() made one
                        template = self.loaded.model.client.base_url
                        fields = ", ".join(re.findall(r"{(\w+)}", template))
                        raise ConnectorError(
                            f"GET {client.base_url}{path} answered HTTP 404: no account "
                            f"there; check {fields} (the API URL is {template})",
                            "config_error")
                    if status >= 400:
                        raise client.client_error("GET", client.base_url + path, status,
                                                  answer)
            except ConnectorError as exc:
                name = self.account_key(account)
                prefix = f"{name}: " if len(self.accounts(config)) > 1 else ""
                return p.AirbyteConnectionStatus(status="FAILED", message=prefix + exc.message)
            finally:
                client.close()
        return p.AirbyteConnectionStatus(status="SUCCEEDED")

    def airbyte_stream(self, stream: Stream) -> p.AirbyteStream:
        """The catalog entry of one declared stream."""
        cursor = self._cursor(stream)
        parent = self.loaded.streams[stream.parent.stream] if stream.parent else None
        live = stream.live or (parent.live if parent else None)  # a child reads as it does
        incremental = bool(cursor or (live and live.only))  # at a spool offset
        if cursor is None and live is not None:
            # What orders records read from the spool (a whole child's own field).
            cursor = (stream.parent.cursor_field if stream.parent else None) or live.cursor_field
        return p.AirbyteStream(
            name=stream.name,
            json_schema=self.loaded.schemas[stream.name],
            supported_sync_modes=["full_refresh", "incremental"] if incremental
            else ["full_refresh"],
            source_defined_cursor=True if incremental else None,
            default_cursor_field=[cursor] if cursor else None,
            source_defined_primary_key=[[k] for k in stream.primary_key],
            is_resumable=bool(incremental),
        )

    def _cursor(self, stream: Stream) -> str | None:
        """The cursor field of a stream (a child follows its parent's)."""
        if stream.parent is not None:
            parent = self.loaded.streams[stream.parent.stream]
            if parent.incremental is None:
                return None
            return stream.parent.cursor_field or parent.incremental.cursor_field
        return stream.incremental.cursor_field if stream.incremental else None

    def state_field(self, name: str, cursor: str) -> str:
        """The key under which stream ``name`` saves the position ``cursor`` of the stream
        it is read with: a whole child's own cursor field, else the cursor's own name."""
        parent = self.loaded.streams[name].parent
        return parent.cursor_field if parent and parent.cursor_field else cursor

    def discover(self, config: dict[str, Any] | None = None) -> p.AirbyteCatalog:
        """The declared streams (no request is needed: the schemas are static)."""
        return p.AirbyteCatalog(streams=[self.airbyte_stream(s) for s in self.loaded.model.streams])

    def configured_catalog(self, everything: bool = False) -> p.ConfiguredAirbyteCatalog:
        """The base catalog, less the optional streams unless ``everything``."""
        catalog = super().configured_catalog(everything)
        if not everything:
            catalog.streams = [c for c in catalog.streams
                               if not self.loaded.streams[c.stream.name].optional]
        return catalog

    # --- reading --------------------------------------------------------------------------

    def read(self, config: dict[str, Any], catalog: p.ConfiguredAirbyteCatalog,
             state: dict[str, dict[str, Any]]) -> Iterator[bytes]:
        """Read every stream of ``catalog``, resuming each account from its state."""
        declared = self.loaded.streams
        for configured in catalog.streams:
            if configured.stream.name not in declared:
                raise ConfigError(f"catalog names stream {configured.stream.name!r}, which "
                                  f"{self.name} does not have; valid: {', '.join(declared)}")
        modes = {c.stream.name: c.sync_mode for c in catalog.streams}
        resets: list[int] = []
        accounts = self.accounts(config)
        clients = [self.client(a, resets) for a in accounts]
        helper = None
        try:
            units = [unit for account, client in zip(accounts, clients, strict=True)
                     for unit in self._units(account, client, modes, state)]
            recipes = _recipes(units)
            helper = page_process.start(recipes)
            for key in recipes if helper else []:
                units[key].helper, units[key].helper_key = helper, key
            yield from _Coordinator(self, units, modes, state, resets, accounts).run()
        finally:
            if helper is not None:
                helper.close()
            for client in clients:
                client.close()

    def _units(self, account: dict[str, Any], client: HttpClient, modes: Mapping[str, str],
               state: dict[str, dict[str, Any]]) -> Iterator[Unit]:
        """The units of one account: each requested stream with its requested children.

        A child stream is extracted from its parent's records, yet its sync mode and state are
        its own: a child added to an existing connection (no state), reset on its own, or read
        in full next to an incremental parent must not take the parent's starting point, or
        it is never backfilled. Members of a family (a parent and its children) that start
        from the same point share one unit (one read of the parent); the others get a unit of
        their own, which reads the parent's pages again and writes only their records.
        """
        streams = self.loaded.model.streams
        key = self.account_key(account)
        settings = self.settings(account)
        webhooks_mode = settings.read_mode == "webhooks"
        mark = _spool_mark(settings.spool_path, self.settle_s)

        noun = self.loaded.model.webhooks.account if self.loaded.model.webhooks else "account"

        def saved(name: str, account_key: str) -> dict[str, Any]:
            return _saved(state, name, account_key, self.state_key, noun)

        spec = self.loaded.model.client
        assert spec is not None  # parse_spec guarantees a client for sources with streams
        added = {k: v.format(**account) for k, v in spec.add_fields.items()}
        for stream in streams:
            if stream.parent is not None:
                continue
            family = [stream, *(c for c in streams
                                if c.parent and c.parent.stream == stream.name)]
            members = [s for s in family if s.name in modes]
            if not members:
                continue
            plans = {s.name: compile_plan(self.loaded.schemas[s.name]) for s in family}
            live = stream.live
            if live and (live.only or webhooks_mode):
                offsets = [_live_start(m.name, key, modes, saved, webhooks_mode)
                           for m in members]
                for offset, group in _groups(members, offsets):
                    yield Unit(stream=stream, children=_children(stream, group),
                               emit=[m.name for m in group], account=key, config=account,
                               settings=settings,
                               client=client, incremental=True, start=None,
                               params=dict(stream.params), plans=plans, added=added,
                               keep=self._live_filter(stream, settings.channels),
                               slices=[Slice(offset=offset)], spool_mark=mark, live=True)
                continue
            if webhooks_mode:  # nothing to learn from webhooks about this stream
                continue
            for suffix, params, keep in self._channel_variants(stream, settings.channels):
                starts = [_poll_start(stream, m.name, key + suffix, settings.start_date,
                                      modes, saved, self.state_field)
                          for m in members]
                for (incremental, start), group in _groups(members, starts):
                    yield Unit(
                        stream=stream, children=_children(stream, group),
                        emit=[m.name for m in group], account=key + suffix,
                        config=account, settings=settings, client=client,
                        incremental=incremental, start=start,
                        params={**stream.params, **params}, plans=plans,
                        added=added, keep=keep, slices=[Slice(lower=start)],
                        spool_mark=mark if live else None,
                        resume=saved(members[0].name, key + suffix) if stream.request else {})

    @staticmethod
    def _live_filter(stream: Stream, account_channels: list[Any] | None
                     ) -> Callable[[dict[str, Any]], bool] | None:
        """Records fetched by id are not narrowed by a channel parameter: filter them by
        their channel field instead."""
        channels, rule = account_channels, stream.channels
        if not channels or rule is None or rule.field is None:
            return None
        wanted, name = set(channels), rule.field

        def keep(record: dict[str, Any]) -> bool:
            value = record.get(name)
            if value is None:  # e.g. a customer who may log in to every channel
                return True
            return bool(wanted & set(value if isinstance(value, list) else [value]))

        return keep

    @staticmethod
    def _channel_variants(stream: Stream, account_channels: list[Any] | None
                          ) -> list[tuple[str, dict[str, Any], Callable[..., bool] | None]]:
        """How an account's ``channel_ids`` narrow a stream: (state suffix, params, filter)."""
        channels = account_channels
        rule = stream.channels
        if not channels or rule is None:
            return [("", {}, None)]
        if rule.mode == "field":
            return [("", {}, HttpSource._live_filter(stream, account_channels))]
        assert rule.param is not None  # the spec requires one for "list" and "each"
        if rule.mode == "list":
            return [("", {rule.param: ",".join(map(str, channels))}, None)]
        return [(f"#channel={c}", {rule.param: c}, None) for c in channels]


def _groups(members: list[Stream], starts: list[Any]) -> list[tuple[Any, list[Stream]]]:
    """Members grouped by their starting point, in declaration order (the parent first), so
    that units and their STATE messages come out in the same order on every run."""
    groups: dict[Any, list[Stream]] = {}
    for member, start in zip(members, starts, strict=True):
        groups.setdefault(start, []).append(member)
    return list(groups.items())


def _children(parent: Stream, group: list[Stream]) -> list[Stream]:
    return [m for m in group if m is not parent]


#: How to fix a saved state that cannot be used.
STATE_FIX = ("correct it, or remove that stream's state (from the --state file, or from the "
             "state database in state_dir) to read the stream again from start_date")


#: A stream's saved position for one account: (stream, account) -> {field: value}.
Saved = Callable[[str, str], dict[str, Any]]


def _saved(state: dict[str, dict[str, Any]], name: str, account: str, key: str,
           noun: str = "account") -> dict[str, Any]:
    """A stream's own saved position for one account (never another stream's), under the
    accounts ``key``; a state of another shape is a ConfigError (it is not overwritten: the
    run stops before reading)."""
    own = state.get(name) or {}
    accounts = own.get(key, {}) if isinstance(own, dict) else None
    saved = accounts.get(account, {}) if isinstance(accounts, dict) else None
    if not isinstance(saved, dict):
        raise ConfigError(f"the saved state of stream {name!r} is not "
                          f'{{"{key}": {{{noun}: {{field: value}}}}}}; {STATE_FIX}')
    return dict(saved)


def _cursor_start(name: str, field: str, value: Any) -> str:
    """A saved cursor as the ISO 8601 date a request takes; anything else is a ConfigError."""
    try:
        if not isinstance(value, str):
            raise TypeError
        return iso_utc(value)
    except (TypeError, ValueError):
        raise ConfigError(f"the saved state of stream {name!r} has {field} {value!r}, not an "
                          f"ISO 8601 date; {STATE_FIX}") from None


def _poll_start(stream: Stream, name: str, account_key: str, start_date: str | None,
                modes: Mapping[str, str], saved: Saved,
                state_field: Callable[[str, str], str]) -> tuple[bool, str | None]:
    """Whether stream ``name`` (the polled ``stream`` or one of its children) is read
    incrementally, and from where: its own cursor, else the account's ``start_date``."""
    incremental = modes[name] == "incremental" and stream.incremental is not None
    start = None
    if stream.incremental is not None:
        if incremental:
            field = state_field(name, stream.incremental.cursor_field)
            start = saved(name, account_key).get(field)
            start = _cursor_start(name, field, start) if start is not None else None
        start = start or start_date
        start = iso_utc(start) if start else None
    return incremental, start


def _live_start(name: str, account_key: str, modes: Mapping[str, str], saved: Saved,
                webhooks_mode: bool) -> int:
    """The spool offset a live stream resumes from (0: from the start of the spool).
    Webhooks mode always resumes: it reads what changed since the last run."""
    if modes[name] == "incremental" or webhooks_mode:
        offset = saved(name, account_key).get(SPOOL_OFFSET) or 0
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise ConfigError(f"the saved state of stream {name!r} has {SPOOL_OFFSET} "
                              f"{offset!r}, not a whole number; {STATE_FIX}")
        return offset
    return 0


def _recipes(units: list[Unit]) -> dict[int, page_process.Recipe]:
    """Recipes, by the unit's index, of the units whose pages the helper processes can parse:
    no child streams (their hooks call the API), no filter on records (a function), not read
    by id from the spool."""
    recipes = {}
    for key, unit in enumerate(units):
        stream = unit.stream
        if unit.live or unit.children or unit.keep is not None or stream.path is None:
            continue
        cursor = stream.incremental.cursor_field if stream.incremental else None
        recipes[key] = page_process.Recipe(
            stream=stream.name, where=unit.client.base_url + stream.path,
            records_path=stream.records_path, total_path=stream.total_path,
            plan=unit.plans[stream.name], copy_fields=dict(stream.copy_fields),
            added=dict(unit.added),
            keys=tuple(dict.fromkeys(filter(None, [cursor, *stream.primary_key]))))
    return recipes


def _sorted(stream: Stream) -> bool:
    """Whether a stream's records come in ascending cursor order (state may move after each
    page): its paginator's, or its GraphQL request's, say."""
    if stream.request is not None:
        return stream.request.sorted_by_cursor
    return PAGINATORS[stream.paginator.type].sorted_by_cursor


def _spool_mark(spool_path: str | None, settle_s: float) -> int | None:
    """How far into the spool this run reads (None without a spool): up to the events that
    arrived at least ``settle_s`` ago (the source's ``webhooks.settle_s``).

    A platform that dates changes to the second sends the same webhook twice for
    two changes of a resource within one second (the second is a duplicate and is not
    stored). Fetching only once that second has passed since the webhook arrived means the
    fetch comes after every change of that second, so it returns the latest version whatever
    the clocks say.
    """
    if not spool_path:
        return None
    spool = Spool(spool_path)
    try:
        return spool.settled_offset(time.time() - settle_s)
    finally:
        spool.close()


def _read_error(failures: dict[str, Exception]) -> Exception:
    """The error a read ends with when streams failed (each was reported as it happened).

    As the Airbyte CDK does (``AbstractSource.read``), the other streams were read to the end
    and the read still fails, so that the run is not taken for a success. One error: itself
    (its stream, kind and fix). Several: one line naming each stream with its error; its kind
    is ``config_error`` when any of them is one (someone must change something), else
    ``transient_error`` when all are, else ``system_error``.
    """
    errors = list({id(exc): exc for exc in failures.values()}.values())
    if len(errors) == 1:
        return errors[0]
    by_error: dict[int, list[str]] = {}
    for name, exc in failures.items():
        by_error.setdefault(id(exc), []).append(name)
    parts = []
    kinds = set()
    for exc in errors:
        kind = exc.failure_type if isinstance(exc, ConnectorError) else "system_error"
        kinds.add(kind)
        text = exc.message if isinstance(exc, ConnectorError) else f"{type(exc).__name__}: {exc}"
        parts.append(f"{', '.join(by_error[id(exc)])}: {text}")
    kind = ("config_error" if "config_error" in kinds else
            "transient_error" if kinds == {"transient_error"} else "system_error")
    return ConnectorError(f"{len(failures)} streams failed (the others were read): "
                          + "; ".join(parts), kind)


class _Coordinator:
    """Runs units on worker threads and writes their pages, states and statuses in order."""

    def __init__(self, source: HttpSource, units: list[Unit], modes: Mapping[str, str],
                 state: dict[str, dict[str, Any]], resets: list[int],
                 accounts: list[dict[str, Any]]) -> None:
        self.source = source
        self.units = units
        self.modes = modes
        self.resets = resets
        concurrency = max(source.settings(a).concurrency for a in accounts)
        self.workers = max(1, min(64, concurrency * len(accounts)))
        # Serialized pages waiting to be written: enough to keep the writer busy, bounded
        # because a page of orders with their lines is over a megabyte.
        self.events: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=max(2, self.workers // 2))
        self.stop = threading.Event()
        self.pending = 0
        self.saved = {name: dict((state.get(name) or {}).get(source.state_key, {}))
                      for name in modes}
        self.since_state = dict.fromkeys(modes, 0)
        self.stated: set[str] = set()  # streams that have had a STATE in this run
        self.running: set[str] = set()
        self.open_units = {name: 0 for name in modes}
        for unit in units:
            for name in unit.emit:
                self.open_units[name] += 1
        self.estimates: dict[str, dict[str, int]] = {name: {} for name in modes}
        # One stream's permanent error never stops the others: a unit that fails stops
        # reading (its state stays where its last complete checkpoint put it), its streams
        # end INCOMPLETE, and the read ends with the error once every other unit is done.
        self.failures: dict[str, Exception] = {}  # stream -> its first error
        self.failed: set[int] = set()  # id() of the units that failed
        self.closed: set[int] = set()  # id() of the failed units whose streams were closed
        self.in_flight: dict[int, int] = {id(unit): 0 for unit in units}

    def run(self) -> Iterator[bytes]:
        for name in self.modes:
            yield p.dump(p.stream_status(name, "STARTED"))
        with ThreadPoolExecutor(self.workers, thread_name_prefix="reader") as pool:
            self.pool = pool
            try:
                for unit in self.units:
                    self._submit(unit, 0, probe=True)
                for name, count in self.open_units.items():
                    if count == 0:  # nothing to read for it (e.g. carts without a spool)
                        yield from self._complete(name)
                while self.pending:
                    event = self.events.get()
                    yield from self._rate_limited()
                    if event[0] == "page":
                        yield from self._page(event[1])
                    elif event[0] == "finished":
                        self.pending -= 1
                        self.in_flight[id(event[1])] -= 1
                        yield from self._finished(event[1], event[2])
                    else:
                        yield from self._failed(event[2], event[1])
            except GeneratorExit:  # the reader of our output went away: stop quietly
                self.stop.set()
                self._drain()
                raise
            except BaseException:
                self.stop.set()
                for name in self.modes:
                    if self.open_units[name] > 0:
                        yield p.dump(p.stream_status(name, "INCOMPLETE"))
                self._drain()
                raise
        if self.failures:
            raise _read_error(self.failures)

    def _drain(self) -> None:
        while True:
            try:
                self.events.get_nowait()
            except queue.Empty:
                return

    def _submit(self, unit: Unit, index: int, probe: bool = False) -> None:
        if id(unit) in self.failed:  # e.g. the slices of a page read before the error
            return
        self.pending += 1
        self.in_flight[id(unit)] += 1
        self.pool.submit(self._work, unit, index, probe)

    def _put(self, event: tuple[Any, ...]) -> None:
        while not self.stop.is_set():
            try:
                self.events.put(event, timeout=0.2)
                return
            except queue.Full:
                continue

    def _work(self, unit: Unit, index: int, probe: bool) -> None:
        def stopped() -> bool:  # the read is over, or this unit failed in another slice
            return self.stop.is_set() or id(unit) in self.failed

        try:
            loaded = self.source.loaded
            graphql = loaded.model.client.graphql if loaded.model.client else None
            if unit.live:
                by_ids = (partial(fetch_by_ids, spec_path=loaded.path, client_spec=graphql)
                          if unit.stream.request is not None else None)
                pages = read_live(unit, self.source.hooks, stopped, by_ids)
            elif unit.stream.request is not None:
                pages = read_graphql(unit, loaded.path, graphql, self.source.hooks, stopped)
            else:
                pages = read_slice(unit, index, self.source.hooks, probe, stopped)
            for page in pages:
                self._put(("page", page))
        except BaseException as exc:  # reported to the coordinating thread
            if isinstance(exc, ConnectorError):
                exc.stream = exc.stream or unit.stream.name
            self._put(("error", exc, unit))
        finally:
            self._put(("finished", unit, index))

    def _failed(self, unit: Unit, exc: BaseException) -> Iterator[bytes]:
        """A unit's error: its streams stop (the others go on); an interruption (not an
        ``Exception``) still ends the whole read."""
        if not isinstance(exc, Exception):
            raise exc
        self.failed.add(id(unit))
        message = exc.message if isinstance(exc, ConnectorError) else f"{type(exc).__name__}: {exc}"
        for name in unit.emit:
            self.failures.setdefault(name, exc)
        text = (f"stream {', '.join(unit.emit)} of {unit.account or 'the account'} failed: "
                f"{message}; the other streams go on")
        log.error("%s", text)
        yield p.dump(p.log_message("ERROR", text))
        yield from self._finished(unit, -1)

    def _rate_limited(self) -> Iterator[bytes]:
        while self.resets:
            reason = {"type": "RATE_LIMITED", "rate_limited": {"quota_reset": self.resets.pop(0)}}
            for name in sorted(self.running):
                yield p.dump(p.stream_status(name, "RUNNING", [reason]))

    def _page(self, page: Page) -> Iterator[bytes]:
        unit = page.unit
        for name in unit.emit:
            if name not in self.running:
                self.running.add(name)
                yield p.dump(p.stream_status(name, "RUNNING"))
        if page.total is not None and unit.stream.name in unit.emit:
            estimates = self.estimates[unit.stream.name]
            estimates[unit.account] = page.total
            yield p.dump(p.trace_message("ESTIMATE", name=unit.stream.name, type="STREAM",
                                         row_estimate=sum(estimates.values())))
        if page.lines:
            yield page.lines
        for name, count in page.counts.items():
            if name in self.since_state:
                self.since_state[name] += count
        piece = unit.slices[page.index]
        piece.cursor = max(filter(None, (piece.cursor, page.cursor)), default=None)
        if page.offset is not None:  # a live page: how far it read the spool
            piece.offset = max(piece.offset, page.offset)
        piece.done = page.done
        if page.split_at is not None:
            self._split(unit, page.split_at, page.total)
        elif page.pages is not None:
            for number in range(2, page.pages + 1):
                unit.slices.append(Slice(page=number))
                self._submit(unit, len(unit.slices) - 1)
        if unit.incremental and (unit.live or _sorted(unit.stream)):
            yield from self._checkpoint(unit)
        if page.marks:  # after the cursor: a bulk read's id goes once its cursor is saved
            yield from self._mark(unit, page.marks)

    def _mark(self, unit: Unit, marks: dict[str, Any]) -> Iterator[bytes]:
        """Set (or remove, for ``None``) fields of the unit's account state, e.g. the bulk
        operation a GraphQL read waits for, and say so in a STATE."""
        for name in unit.emit:
            entry = {**self.saved[name].get(unit.account, {}), **marks}
            self.saved[name][unit.account] = {k: v for k, v in entry.items() if v is not None}
            yield self._state(name)

    def _split(self, unit: Unit, at: tuple[str | None, set[tuple[Any, ...]]],
               total: int | None) -> None:
        """Cut the rest of a unit's range into slices read in parallel. When the API said
        how many records the range holds and that is a few pages (an incremental run), the
        rest is one slice: each slice costs at least one request, often a short page."""
        lower, at_lower = at
        if lower is None:
            return
        count = max(2, 2 * unit.settings.concurrency)
        page_size = unit.settings.page_size
        if total is not None and total <= page_size * count // 2:
            count = 1
        # The server's clock, not ours: a change made while the slices are read then always
        # lands at or past the horizon, never behind a slice that has finished.
        now = horizon(unit.client)
        unit.horizon = format_utc(now)
        for low, high in time_slices(lower, now, count):
            unit.slices.append(Slice(lower=low, upper=high,
                                     at_lower=at_lower if low == lower else set()))
            self._submit(unit, len(unit.slices) - 1)

    def _finished(self, unit: Unit, index: int) -> Iterator[bytes]:
        if id(unit) in self.failed:
            if self.in_flight[id(unit)] > 0 or id(unit) in self.closed:
                return  # its other slices are still stopping, or it was closed
            self.closed.add(id(unit))
        elif not all(piece.done for piece in unit.slices):
            return
        elif unit.incremental or unit.spool_mark:
            yield from self._checkpoint(unit, final=True)
        for name in unit.emit:
            self.open_units[name] -= 1
            if self.open_units[name] == 0:
                self.running.discard(name)
                yield from self._complete(name)

    def _complete(self, name: str) -> Iterator[bytes]:
        """A stream's last STATE, then its COMPLETE status (a stream one of whose units failed:
        INCOMPLETE, with no closing STATE; its checkpoints, e.g. another store's, stand).

        Every stream read ends with its own STATE, full-refresh streams and reads that found
        nothing new included (Airbyte's acceptance tests ask for it): it is the destination's
        signal that the stream's records are all out, and the platform's proof of progress.
        """
        if name in self.failures:  # its position stays where its checkpoints put it
            yield p.dump(p.stream_status(name, "INCOMPLETE"))
            return
        if self.since_state[name] or name not in self.stated:  # else the last one says it
            yield self._state(name)
        yield p.dump(p.stream_status(name, "COMPLETE"))

    def _state(self, name: str) -> bytes:
        self.stated.add(name)
        count, self.since_state[name] = self.since_state[name], 0
        return p.dump(p.state_message(name, {self.source.state_key: dict(self.saved[name])},
                                     count))

    def _checkpoint(self, unit: Unit, final: bool = False) -> Iterator[bytes]:
        """A STATE per stream of the unit when its frontier moved (or at its end).

        A live unit's position is its spool offset. A polling unit's is its cursor; when it
        finishes, every change spooled before it started is covered, so the stream's spool
        offset moves there too (the webhooks of those changes need no fetching).
        """
        cursor = unit.stream.incremental.cursor_field if unit.stream.incremental else None
        moves: list[tuple[str, str, Any]] = []  # (state key, field, value)
        if unit.live:
            moves.append((unit.account, SPOOL_OFFSET, unit.slices[0].offset))
        else:
            if cursor is not None and _sorted(unit.stream):
                moves.append((unit.account, cursor, unit.frontier()))
            elif cursor is not None:  # unsorted: only the end of the unit is safe
                moves.append((unit.account, cursor, max(
                    filter(None, [unit.start, *(s.cursor for s in unit.slices)]), default=None)))
            if final and unit.spool_mark:
                moves.append((self.source.account_key(unit.config), SPOOL_OFFSET,
                              unit.spool_mark))
        for name in unit.emit:
            changed = False
            for key, moved, value in moves:
                field = self.source.state_field(name, moved) if moved == cursor else moved
                before = self.saved[name].get(key, {}).get(field)
                if value is None or value == before or (field == SPOOL_OFFSET and not value):
                    continue
                self.saved[name][key] = {**self.saved[name].get(key, {}), field: value}
                changed = True
            if changed:
                yield self._state(name)
