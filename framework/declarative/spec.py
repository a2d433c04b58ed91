"""Connector spec files: the JSON that declares a connector, validated when it is loaded.

A spec file holds the connection spec (a JSON Schema for the user's config) and, for an HTTP source,
the client (base URL, auth, rate-limit headers, error fixes) and its streams as data. A bad spec
fails on load with an error naming the file, the JSON path and, for names, the valid choices.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import orjson
from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from framework.declarative.formats import CURSOR_FORMATS
from framework.declarative.graphql import GraphQLClient, GraphQLRequest, check_files
from framework.declarative.paginators import PAGINATORS
from framework.protocol.catalog import data_path
from framework.protocol.config import config_fields as loaded_config_fields


class SpecError(Exception):
    """A connector spec file is wrong; the message names the file and the JSON path."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known(kind: str, value: str, registry: dict[str, Any]) -> str:
    if value not in registry:
        raise ValueError(f"unknown {kind} {value!r}; valid: {', '.join(sorted(registry))}")
    return value


class Authenticator:
    """What an auth ``type`` sends with every request, made of its options and the config.

    ``Options`` validates the spec's ``auth`` object (but ``type``) when the spec is loaded.
    """

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = self.Options.model_validate(options)

    def headers(self, config: dict[str, Any]) -> dict[str, str]:
        """The headers of every request for the account ``config``."""
        raise NotImplementedError


class HeaderAuth(Authenticator):
    """Sends config field ``config_field`` in header ``header`` (e.g. an access token)."""

    class Options(Authenticator.Options):
        header: str
        config_field: str

    def headers(self, config: dict[str, Any]) -> dict[str, str]:
        options = self.options
        assert isinstance(options, HeaderAuth.Options)
        return {options.header: str(config[options.config_field])}


AUTH_TYPES: dict[str, type[Authenticator]] = {}


def register_auth(name: str, cls: type[Authenticator]) -> None:
    """Make ``cls`` the auth a spec names as ``client.auth.type: name`` (dlt's
    ``register_auth``; the built-ins register the same way).

    Raises:
        TypeError: ``cls`` is not an :class:`Authenticator`.
        ValueError: another class is registered under ``name``.
    """
    if not (isinstance(cls, type) and issubclass(cls, Authenticator)):
        raise TypeError(f"auth type {name!r}: {cls!r} is not a subclass of "
                        "framework.declarative.spec.Authenticator")
    if AUTH_TYPES.get(name, cls) is not cls:
        raise ValueError(f"auth type {name!r} is registered already "
                         f"({AUTH_TYPES[name].__qualname__}); choose another name")
    AUTH_TYPES[name] = cls


register_auth("header", HeaderAuth)


class Auth(BaseModel):
    """Credentials sent with every request: a registered auth ``type`` and its options (for
    ``header``: config field ``config_field`` in header ``header``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str

    @field_validator("type")
    @classmethod
    def _auth_type(cls, value: str) -> str:
        return _known("auth type", value, AUTH_TYPES)

    @model_validator(mode="after")
    def _options(self) -> Auth:
        AUTH_TYPES[self.type].Options.model_validate(self.options)
        return self

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def authenticator(self) -> Authenticator:
        return AUTH_TYPES[self.type](self.options)


class RateLimitHeaders(_Strict):
    """Names of the response headers that describe the API's request quota."""

    requests_left: str
    reset: str
    reset_unit: Literal["ms", "s"] = "ms"
    quota: str | None = None
    window_ms: str | None = None
    retry_after_s: str | None = None


class Paginator(_Strict):
    """How a stream walks its pages: a registered paginator ``type`` and its options."""

    type: str
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _paginator_type(cls, value: str) -> str:
        return _known("paginator", value, PAGINATORS)


class Incremental(_Strict):
    """How the cursor is read from records and sent back to the API.

    ``max_param`` (an inclusive upper bound) lets the engine read time slices in parallel.
    """

    cursor_field: str
    param: str
    format: str
    max_param: str | None = None

    @field_validator("format")
    @classmethod
    def _cursor_format(cls, value: str) -> str:
        return _known("cursor format", value, CURSOR_FORMATS)


class Parent(_Strict):
    """A stream whose records come out of another stream's records (e.g. an order's lines),
    extracted by a named hook of the connector."""

    stream: str
    hook: str
    #: The child's records are whole as the hook makes them (e.g. records of a shared model,
    #: ``framework.declarative.mapping``): the engine adds neither the account fields nor the
    #: parent's
    #: cursor to them. Their cursor (the catalog's, and their state's key) is ``cursor_field``,
    #: a field the hook sets, when the parent has one.
    whole: bool = False
    cursor_field: str | None = None


class Channels(_Strict):
    """How the ``channel_ids`` of an account narrow a stream: a parameter with the list
    (``list``), one request series per channel (``each``), or a record field (``field``)."""

    mode: Literal["list", "each", "field"]
    param: str | None = None
    #: The record field naming the channel(s); with ``each``, what filters the records that
    #: webhooks bring (they are fetched by id, not per channel).
    field: str | None = None

    @model_validator(mode="after")
    def _named(self) -> Channels:
        # Without it the stream would silently read every channel's records.
        if self.mode == "field" and self.field is None:
            raise ValueError("mode 'field' needs 'field', the record field naming the "
                             "channel(s) of a record")
        if self.mode != "field" and self.param is None:
            raise ValueError(f"mode {self.mode!r} needs 'param', the request parameter that "
                             "takes the account's channels")
        return self


#: What a valid resource id is (``framework.webhooks.spool.check_id``): ``integer``
#: (1 to 2**31 - 1, a
#: JSON number or ASCII digits), ``uuid`` (8-4-4-4-12 hex digits) or ``text`` (1 to 100 of
#: letters, digits and ``._:-``, for a connector that declares nothing stricter).
IdType = Literal["integer", "uuid", "text"]


class Live(_Strict):
    """How a stream reads the resources that webhooks named: the ids spooled for
    ``resource`` since the stream's spool offset, fetched one by one (``path`` with ``{id}``)
    or in batches (the stream's path with the id-list filter ``param``).

    ``key`` is the record field holding the id: an id that brings no record (404, or absent
    from a batch) is written as a tombstone ``{key: id, "is_deleted": true}``. ``only``: the
    stream has nothing to poll (e.g. a platform with no list of carts), so it reads the spool in
    every mode. ``hook`` names a connector function run on every record (e.g. a cart's
    recovery link).
    """

    resource: str = Field(pattern=r"^[a-z_]+$")
    path: str | None = Field(default=None, pattern=r"^/.*\{id\}")
    param: str | None = None
    params: dict[str, str | int | bool] | None = None
    key: str | None = None
    batch: int = Field(default=50, ge=1, le=250)
    only: bool = False
    hook: str | None = None
    #: The record field a stream read ``only`` from the spool is ordered by: its state is the
    #: spool offset, no record field, but Airbyte's catalog names a cursor field for every
    #: incremental stream with a source-defined cursor (deduplication keeps the newest).
    cursor_field: str | None = None
    #: What a valid id of ``resource`` is: an event whose id is not one is dead-lettered.
    id_type: IdType = "text"
    #: Each spooled event is a record (its payload), fetched from nowhere: events a page
    #: sent, which no API holds (e.g. a product viewed).
    payload: bool = False


class WebhookScope(_Strict):
    """A webhook scope the connector understands: the spool resource it names, where its
    payload holds the resource id, and the API permission its subscription needs."""

    resource: str = Field(pattern=r"^[a-z_]+$")
    id: str
    oauth_scope: str
    #: What a valid resource id is: a delivery with another id is refused (400).
    id_type: IdType = "text"
    #: False: the platform sends it without a subscription (e.g. an app's mandatory privacy
    #: topics, sent to the address of the app's configuration): no subscription is looked
    #: for, and none missing is warned about.
    subscribed: bool = True


#: What a payload field must hold (``Payload.required``).
PayloadType = Literal["string", "integer", "object", "array"]


class Payload(_Strict):
    """What a delivery's JSON body holds: a body without a ``required`` field of its type is
    refused (400). ``dedupe`` names the fields whose values are one delivery's (a re-delivery
    repeats them, and is acknowledged, not stored again)."""

    required: dict[str, PayloadType]
    scope: str = "scope"
    #: Epoch seconds of the event: one older than the platform's retries is refused (a replay).
    created_at: str | None = None
    dedupe: list[str] = Field(min_length=1)


class Webhooks(_Strict):
    """The platform's webhooks: its subscriptions API and the payloads it delivers (the API
    calls themselves are its plugin's ``Subscriptions``)."""

    #: The platform's name in messages, and what it calls an account (e.g. a store).
    platform: str
    account: str = "account"
    path: str = Field(pattern=r"^/")
    #: Payload field naming the sender, and its expected value for an account.
    producer_field: str
    producer: str
    secret_header: str
    max_per_scope: int
    max_total: int
    scopes: dict[str, WebhookScope]
    payload: Payload
    #: The ports the platform delivers to (none: any).
    ports: list[int] | None = None
    #: Deliveries may also be signed the Standard Webhooks way with the app's client secret.
    signatures: Literal["standard_webhooks"] | None = None
    #: Seconds a spooled event waits before it is read: a platform whose dates are whole
    #: seconds needs 1 (see ``framework.engine.source._spool_mark``); 0 for finer dates.
    settle_s: float = Field(default=0.0, ge=0, le=60)
    #: Scope names that are not the platform's (e.g. a seed config's ``inventory/updated``)
    #: and the real scopes they stand for.
    aliases: dict[str, list[str]] = Field(default_factory=dict)


class IdentityToken(_Strict):
    """A signed token that a storefront page gets for its logged-in shopper from the platform
    (a JWT signed with the app's secret) and sends with its events: the storefront endpoint
    (``framework.webhooks.storefront``) verifies it and takes the shopper's identity from it.
    Claims are dotted paths (``customer.id``)."""

    algorithms: list[Literal["HS256", "HS384", "HS512"]] = Field(default=["HS256"],
                                                                  min_length=1)
    #: Config fields (an account's own, else the shared one) of the signing secret and of the
    #: audience the token is made for (the app's client id).
    secret_field: str
    audience_field: str | None = None
    issuer: str | None = None
    account_claim: str
    customer_id_claim: str
    email_claim: str | None = None
    #: Claims with a fixed value (e.g. what the token is for).
    claims: dict[str, str | int] = Field(default_factory=dict)
    #: Seconds a token stays valid after ``iat`` at most, whatever its ``exp`` says.
    max_age_s: int = Field(default=3600, ge=60)


class Origins(_Strict):
    """Where an account's storefront pages are: fields of a record of its API (e.g. the
    store's details) holding URLs or host names, each made an origin."""

    get: str = Field(pattern=r"^/")
    fields: list[str] = Field(min_length=1)


class Storefront(_Strict):
    """The storefront events a platform's pages send (``framework.webhooks.storefront``)."""

    #: The spool resource the events are kept as (a live stream with ``payload`` reads them).
    resource: str = Field(default="storefront_event", pattern=r"^[a-z_]+$")
    origins: Origins | None = None
    identity: IdentityToken | None = None


class Stream(_Strict):
    """One stream: a path, its parameters, where records are, its keys and its schema."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    path: str | None = Field(default=None, pattern=r"^/")
    params: dict[str, str | int | bool] = Field(default_factory=dict)
    records_path: str | None = None
    total_path: str | None = None
    paginator: Paginator = Paginator(type="single_page")
    primary_key: list[str] = Field(min_length=1)
    incremental: Incremental | None = None
    schema_file: str = Field(alias="schema")
    scope: str | None = None
    check_params: dict[str, str | int | bool] | None = None
    parent: Parent | None = None
    live: Live | None = None
    channels: Channels | None = None
    copy_fields: dict[str, str] = Field(default_factory=dict)
    #: Left out of the default catalog (a stream that costs requests many users can spare).
    optional: bool = False
    #: A stream read with a GraphQL query instead of ``path`` (``framework.declarative.graphql``).
    request: GraphQLRequest | None = None


@dataclass(frozen=True)
class Settings:
    """The settings the engine reads from an account's config (``ConfigNames.read``)."""

    concurrency: int = 1
    page_size: int = 250
    request_timeout: float = 60.0
    start_date: str | None = None
    channels: list[Any] | None = None
    spool_path: str | None = None
    read_mode: str | None = None


class ConfigNames(_Strict):
    """Which config field holds each setting the engine reads (``client.config``): the engine
    reads no config field by a name of its own. The defaults are the names the built-in
    specs use; a spec whose platform says it otherwise names its own (e.g. ``"channels":
    "shop_ids"``). ``spool_path`` and ``read_mode`` are set by whoever runs the source (a sync,
    a forwarder) under these names too."""

    concurrency: str = "concurrency"
    page_size: str = "page_size"
    request_timeout: str = "request_timeout"
    start_date: str = "start_date"
    channels: str = "channel_ids"
    spool_path: str = "spool_path"
    read_mode: str = "read_mode"
    webhooks: str = "webhooks"
    webhook_secret: str = "webhook_secret"
    client_secret: str = "client_secret"

    def read(self, config: dict[str, Any]) -> Settings:
        """The settings of one account's ``config`` (an absent or empty field: the default)."""
        return Settings(
            concurrency=int(config.get(self.concurrency) or 1),
            page_size=int(config.get(self.page_size) or 250),
            request_timeout=float(config.get(self.request_timeout) or 60),
            start_date=config.get(self.start_date) or None,
            channels=config.get(self.channels) or None,
            spool_path=config.get(self.spool_path) or None,
            read_mode=config.get(self.read_mode) or None)


class Client(_Strict):
    """What every request of the connector shares."""

    base_url: str
    auth: Auth
    headers: dict[str, str] = Field(default_factory=dict)
    rate_limit: RateLimitHeaders | None = None
    errors: dict[Literal["401", "403"], str] = Field(default_factory=dict)
    add_fields: dict[str, str] = Field(default_factory=dict)
    #: Which config field holds each setting the engine reads.
    config: ConfigNames = ConfigNames()
    #: Config field naming an account (a store); ``accounts`` lists several in one config
    #: and is the key of every stream state's per-account positions (default ``accounts``).
    account_field: str | None = None
    accounts: str | None = None
    #: The API's GraphQL endpoint, cost reader and bulk operations, for GraphQL streams.
    graphql: GraphQLClient | None = None


class ConnectorSpecFile(_Strict):
    """The whole spec file."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    kind: Literal["source", "destination"]
    documentationUrl: str | None = None
    connectionSpecification: dict[str, Any]
    client: Client | None = None
    stream_defaults: dict[str, Any] = Field(default_factory=dict)
    streams: list[Stream] = Field(default_factory=list)
    webhooks: Webhooks | None = None
    storefront: Storefront | None = None
    #: The switches of a sync config (``sync: {customers: true, ...}``) and the streams each
    #: turns on; streams in no group (e.g. the store's own details) are always read.
    sync_groups: dict[str, list[str]] = Field(default_factory=dict)


class LoadedSpec:
    """A validated spec file with its record schemas loaded."""

    def __init__(self, path: Path, model: ConnectorSpecFile, schemas: dict[str, dict[str, Any]]):
        self.path = path
        self.model = model
        self.schemas = schemas

    @property
    def name(self) -> str:
        return self.model.name

    @cached_property
    def streams(self) -> dict[str, Stream]:
        return {s.name: s for s in self.model.streams}


def _json_path(loc: tuple[Any, ...]) -> str:
    path = "$"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _read_json(path: Path, what: str) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except OSError as exc:
        raise SpecError(f"{path}: cannot read {what}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise SpecError(f"{path}: {what} is not valid JSON: {exc}") from None


def _check_live(stream: Stream, model: ConnectorSpecFile, where: str) -> None:
    live = stream.live
    assert live is not None
    resources = {s.resource for s in model.webhooks.scopes.values()} if model.webhooks else set()
    if live.payload:  # the events themselves: the storefront's, or a webhook's whose payload
        # is the whole record (e.g. a request to forget an account, which no API holds)
        kept = {model.storefront.resource} if model.storefront else set()
        if live.resource not in kept | resources:
            raise SpecError(f"{where}.live.resource: {live.resource!r} is neither the "
                            "storefront's resource nor a webhook scope's; valid: "
                            f"{', '.join(sorted(kept | resources)) or '(none declared)'}")
        return
    if live.resource not in resources:
        raise SpecError(f"{where}.live.resource: no webhook scope names {live.resource!r}; "
                        f"valid: {', '.join(sorted(resources)) or '(no webhooks declared)'}")
    if stream.request is not None:  # fetched by id with a GraphQL query
        if stream.request.by_ids is None:
            raise SpecError(f"{where}.request.by_ids: a GraphQL stream read from webhooks "
                            "needs the query that fetches records by their ids")
        return
    by_id = live.path or (stream.path if "{id}" in (stream.path or "") else None)
    if bool(by_id) == bool(live.param):
        raise SpecError(f"{where}.live: give either a path with {{id}} (one request per id) "
                        "or param (an id-list filter on the stream's path)")


def _check_graphql(stream: Stream, model: ConnectorSpecFile, path: Path, where: str) -> None:
    request = stream.request
    assert request is not None and model.client is not None
    if stream.path is not None:
        raise SpecError(f"{where}.path: a GraphQL stream has no path (its query says what "
                        "it reads)")
    if request.filter is not None and stream.incremental is None:
        raise SpecError(f"{where}.request.filter: the filter takes the cursor, so the stream "
                        "needs 'incremental' (its param is the query variable)")
    try:
        check_files(request, model.client.graphql, path, where)
    except ValueError as exc:
        raise SpecError(str(exc)) from None


class RecordSchemas(dict[str, dict[str, Any]]):
    """The record schemas by stream name, each checked against JSON Schema's metaschema when
    it is first looked up: a spec of twenty streams takes 0.1-0.5 s to check whole, which
    ``runner spec`` and a read of two streams need not pay. A bad schema is the same one-line
    error, at the discover or read that uses it (and at once in the standard suite)."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: dict[str, Path] = {}
        self.checked: set[str] = set()

    def add(self, name: str, schema: dict[str, Any], path: Path) -> None:
        super().__setitem__(name, schema)
        self.paths[name] = path

    def __getitem__(self, name: str) -> dict[str, Any]:
        schema = super().__getitem__(name)
        if name not in self.checked:
            try:
                Draft7Validator.check_schema(schema)
            except SchemaError as exc:
                raise SpecError(f"{self.paths[name]}: not a valid JSON Schema: "
                                f"{exc.message}") from None
            self.checked.add(name)
        return schema


#: A stream schema named by a shared model's ``$id`` (``urn:tajo:commerce:v1:customer``): a
#: plugin installed apart from the framework cannot name the model's schema by a path.
MODEL_SCHEMA = re.compile(r"^urn:tajo:([a-z_]+):(v[0-9]+):([a-z_]+)$")


def _schema_path(spec: Path, name: str, where: str) -> Path:
    """The file of a stream's ``schema``: a path beside the spec, or the framework's copy of
    the model schema whose ``$id`` it is."""
    found = MODEL_SCHEMA.match(name)
    if found is None:
        return spec.parent / name
    model, version, kind = found.groups()
    folder = data_path(f"specs/schemas/{model}/{version}")
    if not (folder / f"{kind}.json").is_file():
        known = sorted(f"urn:tajo:{model}:{version}:{p.stem}" for p in folder.glob("*.json"))
        raise SpecError(f"{where}.schema: no model schema {name!r}; valid: "
                        f"{', '.join(known) or '(none)'}")
    return folder / f"{kind}.json"


def parse_spec(raw: Any, path: Path) -> LoadedSpec:
    """Validate the parsed JSON of a spec file located at ``path``."""
    if isinstance(raw, dict) and isinstance(raw.get("streams"), list):
        defaults = raw.get("stream_defaults") or {}
        raw = {**raw, "streams": [{**defaults, **s} if isinstance(s, dict) else s
                                  for s in raw["streams"]]}
    try:
        model = ConnectorSpecFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        raise SpecError(f"{path}: at {_json_path(first['loc'])}: {message}") from None
    try:
        Draft7Validator.check_schema(model.connectionSpecification)
    except SchemaError as exc:
        raise SpecError(f"{path}: at $.connectionSpecification: not a valid JSON Schema: "
                        f"{exc.message}") from None
    if model.kind == "source" and model.streams and model.client is None:
        raise SpecError(f"{path}: at $.client: a source with streams needs a client")
    config_fields = loaded_config_fields(model.connectionSpecification)
    if model.client is not None:
        for name in re.findall(r"\{(\w+)\}", model.client.base_url):
            if name not in config_fields:
                raise SpecError(f"{path}: at $.client.base_url: placeholder {{{name}}} is not "
                                f"a config field; valid: {', '.join(sorted(config_fields))}")
    schemas = RecordSchemas()
    seen = set()
    for index, stream in enumerate(model.streams):
        where = f"{path}: at $.streams[{index}]"
        if stream.name in seen:
            raise SpecError(f"{where}.name: duplicate stream name {stream.name!r}")
        seen.add(stream.name)
        schema_path = _schema_path(path, stream.schema_file, where)
        schema = _read_json(schema_path, f"record schema of stream {stream.name!r}")
        if not isinstance(schema, dict):
            raise SpecError(f"{schema_path}: not a valid JSON Schema: not an object")
        properties = schema.get("properties", {})
        keys = [("primary_key", k) for k in stream.primary_key]
        if stream.incremental:
            keys.append(("incremental.cursor_field", stream.incremental.cursor_field))
        if stream.live is not None and stream.live.cursor_field is not None:
            keys.append(("live.cursor_field", stream.live.cursor_field))
        if stream.live is not None and stream.live.only and not stream.live.cursor_field:
            raise SpecError(f"{where}.live.cursor_field: a stream read only from the spool is "
                            "incremental (at a spool offset); name the record field its "
                            "records are ordered by (e.g. updated_time)")
        for field, key in keys:
            if key not in properties:
                raise SpecError(f"{where}.{field}: {key!r} is not a property of the record "
                                f"schema {stream.schema_file}")
        if stream.parent is not None:
            if stream.parent.stream not in {s.name for s in model.streams}:
                raise SpecError(f"{where}.parent.stream: no stream {stream.parent.stream!r}")
            own = stream.parent.cursor_field
            if own is not None and own not in properties:
                raise SpecError(f"{where}.parent.cursor_field: {own!r} is not a property of "
                                f"the record schema {stream.schema_file}")
        elif stream.request is not None:
            _check_graphql(stream, model, path, where)
        elif stream.path is None and not (stream.live and stream.live.payload):
            raise SpecError(f"{where}.path: a stream needs a path (or a parent, a GraphQL "
                            "request, or live.payload)")
        if stream.live is not None:
            _check_live(stream, model, where)
        if PAGINATORS[stream.paginator.type].needs_cursor and not stream.incremental:
            raise SpecError(f"{where}.paginator.type: {stream.paginator.type!r} walks the "
                            "cursor field, so the stream needs 'incremental'")
        try:
            PAGINATORS[stream.paginator.type].Options.model_validate(stream.paginator.options)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise SpecError(f"{where}.paginator.options{_json_path(first['loc'])[1:]}: "
                            f"{first['msg']}") from None
        schemas.add(stream.name, schema, schema_path)
    for group, names in model.sync_groups.items():
        for name in names:
            if name not in schemas:
                raise SpecError(f"{path}: at $.sync_groups.{group}: no stream {name!r}; valid: "
                                f"{', '.join(schemas)}")
    return LoadedSpec(path, model, schemas)


def load_spec(path: str | Path) -> LoadedSpec:
    """Load and validate a spec file (and the record schemas it names)."""
    path = Path(path)
    return parse_spec(_read_json(path, "connector spec"), path)
