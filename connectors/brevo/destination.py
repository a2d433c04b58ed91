"""The Brevo destination: keeps a Brevo account in step with the commerce model's records
(specs/schemas/commerce/v1) it reads on stdin; it knows no platform.

One path: records -> contacts (mapped, validated) and ledger updates -> at each flush, whole
batches to Brevo (imports of up to 8 MB, 1,000 orders, 100 products) -> once everything before
a STATE is in Brevo, the STATE is echoed. A batch that is not full waits for the next flush
(each one spends a request of the 100-an-hour bucket, whatever it holds), and so do the STATEs
after it: everything goes at the end of the input, or once ``checkpoint_minutes`` have passed
since the STATEs began to wait (what a crash makes the next run do again). A contact's rows
are merged while they wait, so that it goes to Brevo once with its latest totals. A record that
cannot be sent goes to the dead-letter file with its reason and is counted in
``rejectedRecordCount``; the sync goes on.

What this version sends: customers as contacts (``customer_mapping``, phones in international
form, group names, custom fields by name, ``ORDER_COUNT`` and ``TOTAL_SPENT``, the platform's
or computed from the orders) in the ``all_customers`` and ``buyers`` lists; orders as Brevo
e-commerce orders with their lines and coupons, and lifecycle events (``order_placed``,
``order_updated``, ``order_status_changed``, ``customer_created``, ``customer_updated``,
``cart_created``, ``cart_updated``, ``cart_abandoned``); products, variants (``parentId``) and
categories to the catalog, with their URLs, images, prices, SKUs and stock levels, so that
product blocks and back-in-stock alerts work.

Marketing safety: imports never set or clear a blacklist (``emailBlacklist`` and
``smsBlacklist`` stay false, which Brevo reads as "leave as is"), so a contact unsubscribed in
Brevo stays unsubscribed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from connectors.brevo.catalog import CatalogSender
from connectors.brevo.contacts import ContactImporter, Outcome
from connectors.brevo.erasure import Erasures
from connectors.brevo.events import EventOutbox, now_iso
from connectors.brevo.intake import KINDS, Intake, Work
from connectors.brevo.ledger import AccountMismatch, Ledger, dead_letter_sink, ledger_location
from connectors.brevo.limits import BUCKET_NAMES, BUCKETS, Buckets, estimate, tier_of
from connectors.brevo.lists import change_members
from connectors.brevo.mapping import DEFAULT_MAPPING, ContactMapper
from connectors.brevo.notify import notices_for
from connectors.brevo.orders import OrderSender
from connectors.brevo.payloads import (
    model_category,
    model_order,
    model_products,
)
from connectors.brevo.storefront import StorefrontEvents
from framework.declarative.spec import RateLimitHeaders
from framework.destinations.sink import Writer, state_stream
from framework.engine.http import HttpClient
from framework.errors import ConnectorError
from framework.protocol import messages as p

log = logging.getLogger("tajo.brevo")

RATE_LIMIT = RateLimitHeaders(requests_left="x-sib-ratelimit-remaining",
                              reset="x-sib-ratelimit-reset", reset_unit="s",
                              quota="x-sib-ratelimit-limit")
ERRORS = {
    "401": "Brevo rejected the API key (HTTP 401 on {path}): create a new API key in Brevo "
           "(Settings > SMTP & API > API keys) and put it in api_key",
    "403": "Brevo refused {path} (HTTP 403): the API key's account lacks the permission; "
           "check the key's restrictions (Settings > Security > Authorised IPs) and plan",
}
#: The commerce model's streams (as a source names them) and the kind of record each holds.
MODEL_STREAMS = {"commerce_customers": "customer", "commerce_orders": "order",
                 "commerce_products": "product", "commerce_categories": "category",
                 "commerce_stock_levels": "stock_level", "commerce_stores": "store",
                 "commerce_carts": "cart", "commerce_storefront_events": "storefront_event",
                 "commerce_erasures": "erasure", "commerce_account_erasures": "erasure"}
MODEL_STREAM_OF = {kind: stream for stream, kind in MODEL_STREAMS.items()}
#: Marks the fingerprint of a customer record that carried the platform's own order count or
#: amount spent (Shopify's numberOfOrders/amountSpent; a hex digest has no "p"): a later
#: change of the customer's orders alone then leaves those figures to the customer record,
#: instead of sending totals counted by this destination's rule (Shopify counts a cancelled
#: order; the rule does not).
OWN_TOTALS = "p"
# (ledger, api_url, key) -> the account (organization_id, name) GET /v3/account named, asked
# once per process
_BOUND: dict[tuple[str, str, str], tuple[str, str]] = {}
# (api_url, key) -> the size of the "all other endpoints" bucket GET /v3/account's answer
# announced (x-sib-ratelimit-limit): which rate-limit tier the account has
_OTHER_LIMIT: dict[tuple[str, str], int] = {}
#: A wait for a bucket's reset this long is said in the log (the run is paced, not stuck);
#: the per-second buckets' waits are shorter.
LONG_WAIT_S = 2.0
#: Records worked out between two commits of the ledger while STATEs wait anyway. A commit
#: writes every page the batch touched, and the email indexes take keys at random: committed
#: every 5,000 records, the ledger of a 300,000-customer backfill wrote 7.1 GB for a 144 MB
#: file; every 50,000, 1.1 GB, with 22% less CPU.
COMMIT_RECORDS = 50_000
#: Contact rows in imports Brevo has not been seen to end, past which their ends are learned
#: (once the next import is half full) before another import goes. Each row is kept, about
#: 500 bytes, until then, to mark it sent or dead-letter it: a backfill held them all until
#: the end of the run (a sync of 150,000 customers from 50 stores peaked at 272 MB, then 222,
#: 200 once the rows in flight kept their bodies packed, see contacts.py;
#: a million customers would have held half a gigabyte).
ROWS_IN_FLIGHT = 10_000


class DryRun:
    """Stands in for an API client in a dry run: reads go to Brevo, writes are only counted
    (and answered as Brevo would answer them)."""

    def __init__(self, real: HttpClient, plan: dict[str, int], imports: list[int]) -> None:
        self.real, self.plan = real, plan
        self.imports = imports  # processes "started" (shared): each ends at once, completed

    @property
    def quota(self) -> Any:
        return self.real.quota

    def send(self, method: str, path: str, *, json: Any = None, **kwargs: Any
             ) -> tuple[int, Any]:
        if method == "GET":
            if path == "/v3/processes":
                return 200, {"count": len(self.imports), "processes": [
                    {"id": n, "name": "IMPORTUSER", "status": "completed"}
                    for n in reversed(self.imports)]}
            if path.startswith("/v3/processes/"):
                return 200, {"status": "completed"}
            return self.real.send(method, path, json=json, **kwargs)
        key = self.kind(path)
        count = 1
        if isinstance(json, dict):
            for field in ("jsonBody", "orders", "events", "products", "categories", "emails"):
                if isinstance(json.get(field), list):
                    count = len(json[field])
        elif isinstance(json, list):
            count = len(json)
        self.plan[key] = self.plan.get(key, 0) + count
        if path == "/v3/contacts/import":
            self.imports.append(len(self.imports) + 1)
            return 202, {"processId": self.imports[-1]}
        return (201, {}) if method == "POST" else (204, None)

    @staticmethod
    def kind(path: str) -> str:
        """What a write changes, by its endpoint."""
        if path.endswith("/contacts/add"):
            return "list additions"
        if path.endswith("/contacts/remove"):
            return "list removals"
        for prefix, kind in (("/v3/contacts/attributes", "attributes"),
                             ("/v3/contacts", "contacts"), ("/v3/events", "events"),
                             ("/v3/orders", "orders"), ("/v3/products", "products"),
                             ("/v3/categories", "categories")):
            if path.startswith(prefix):
                return kind
        return path

    def close(self) -> None:
        self.real.close()


class BrevoWriter(Writer):
    """One ``write`` run: its clients, ledger, pending contacts and counters (the STATE rule,
    batching and flushing are ``Writer``'s)."""

    check_schemas = True

    def __init__(self, config: dict[str, Any], catalog: p.ConfiguredAirbyteCatalog) -> None:
        super().__init__(catalog)
        self.config = config
        base = config["api_url"].rstrip("/")
        headers = {"api-key": config["api_key"]}
        # Brevo limits each group of endpoints on its own: one pacer per group (a request
        # goes through its bucket's: connectors/brevo/limits.py).
        clients: dict[str, Any] = {
            bucket: HttpClient(base, headers, rate_limit=RATE_LIMIT, errors=ERRORS,
                               timeout=(10, float(config.get("request_timeout") or 60)),
                               on_wait=self._waiting(bucket))
            for bucket in BUCKETS}
        self.dry_run = bool(config.get("dry_run"))
        self.plan: dict[str, int] = {}  # what a dry run would have sent
        self.new_contacts = 0
        # brevo.db and dead-letter.jsonl (0600) in state_dir, or storage's PostgreSQL.
        self.ledger = Ledger(ledger_location(config))
        self.dead_letters: Any = dead_letter_sink(config, self.ledger)
        if self.dry_run:
            started: list[int] = []
            clients = {bucket: DryRun(client, self.plan, started)
                       for bucket, client in clients.items()}
        self.api = Buckets(clients)
        if self.dry_run:
            self.ledger.dry_run = True
            self.dead_letters.close()
            self.dead_letters = open(os.devnull, "ab")  # noqa: SIM115 (closed in close())
        self.mapper = ContactMapper(config.get("customer_mapping") or DEFAULT_MAPPING,
                                    self.ledger.store_country)
        lists = config.get("lists") or {}
        self.all_customers: int = lists["all_customers"]
        self.buyers: int | None = lists.get("buyers")
        self.batch_size = int(config.get("import_batch") or 5000)
        self.pending_contacts: dict[str, dict[str, Any]] = {}
        self.touched: set[str] = set()
        # Contacts whose record carried the platform's own totals in this run (their rows
        # may still wait or be in flight: sent_totals marks them once Brevo took them).
        self.own_totals: set[str] = set()
        self.noted: set[str] = set()
        self._bind_account()
        self.connected_at = self.ledger.connected_at(now_iso())
        self.notices = notices_for(config)  # Brevo's calls, while a receiver takes them
        self.contacts = ContactImporter(self.api, self.api, self._contact_refused,
                                        notices=self.notices)
        self.orders = OrderSender(self.api, self.api,
                                  lambda order, why: self.reject(
                                      "orders", why, order, counted_as=MODEL_STREAM_OF["order"]))
        self.catalog = CatalogSender(self.api, self.api, self.ledger, self._item_refused,
                                     int(config.get("product_batch") or 100), self._catalog_sent)
        self.events = EventOutbox(self.ledger, self.api, self.api,
                                  self._event_refused)
        self.pending_orders: dict[tuple[str, str], tuple[dict[str, Any], str | None]] = {}
        self.pending_products: dict[tuple[str, str], dict[str, Any]] = {}
        self.pending_categories: dict[tuple[str, str], dict[str, Any]] = {}
        self.stock_waiting: dict[str, tuple[str, str, float]] = {}  # brevo id -> its stock
        self.lapsed: set[str] = set()  # to leave the buyers list once their imports went
        # Batches that are not full wait (and the STATEs with them) at most this long.
        self.checkpoint_s = 60 * float(config.get("checkpoint_minutes") or 30)
        self.carry_since: float | None = None
        self.uncommitted = 0  # records worked out since the ledger's last commit
        self.final = self.draining = False
        self.cart_list_add: set[str] = set()
        self.cart_list_remove: set[str] = set()
        self.abandoned_list: int | None = lists.get("abandoned_cart")
        self.skipped_carts = 0
        self.deleted: dict[str, int] = {}
        self.gone_customers: set[str] = set()
        self.gone_products: list[tuple[str, str]] = []
        self.back_in_stock = 0
        self.flush_every_s = float(config.get("flush_seconds") or 30)
        # The event property naming the record's account (the spec's default keeps the
        # name earlier versions sent; a config without defaults applied gets "account").
        self.account_property = str(config.get("account_property") or "account")
        self.storefront = StorefrontEvents(self.ledger, self.events,
                                           config.get("storefront") or {},
                                           self.account_property)
        self.intake = Intake(self.ledger, self.events, self.connected_at,
                             self.account_property, self.storefront.bought_all)
        # Shoppers and stores to forget (connectors/brevo/erasure.py), at a draining flush.
        self.erasures = Erasures(
            self.ledger, self.api, str(config.get("erasure") or "delete"),
            self.mapper.attribute_types(),
            [i for i in (self.all_customers, self.buyers, self.abandoned_list) if i is not None],
            lambda stream, record, why: self.reject(stream, why, record))
        # What a contact row is made of besides its record: a record sent before with the
        # same of these is not mapped and sent again (its fingerprint says so).
        self.salt = orjson.dumps([sorted(self.mapper.mapping.items()), self.all_customers,
                                  self.buyers])

    def _bind_account(self) -> None:
        """The ledger belongs to one Brevo account (``GET /v3/account``'s organization_id:
        stable, and not a secret); pointed at another, nothing is written. Asked once per
        process for a ledger and key: the call spends the 100-an-hour bucket, and the
        forwarder writes every few seconds."""
        seen = (self.ledger.where, self.config["api_url"], self.config["api_key"])
        if seen not in _BOUND:
            status, answer = self.api.send("GET", "/v3/account")
            seen_limit = self.api.limit_seen("other")
            if seen_limit:
                _OTHER_LIMIT[(self.config["api_url"], self.config["api_key"])] = seen_limit
            if status != 200 or not isinstance(answer, dict) or not answer.get(
                    "organization_id"):
                self.close()
                raise ConnectorError(f"Brevo did not say which account the API key opens "
                                     f"(GET /v3/account: HTTP {status})", "transient_error")
            _BOUND[seen] = (str(answer["organization_id"]), str(answer.get("companyName")
                                                                 or ""))
        try:
            self.ledger.bind_account(*_BOUND[seen])
        except AccountMismatch as exc:
            self.close()
            raise ConnectorError(str(exc), "config_error") from None

    def close(self) -> None:
        if self.dry_run:
            self.ledger.db.rollback()  # nothing of a dry run stays
        self.ledger.close()
        self.dead_letters.close()
        self.api.close()
        notices = getattr(self, "notices", None)  # not yet made when the account check fails
        if notices is not None:
            notices.close()

    # --- records --------------------------------------------------------------------------

    def record(self, stream: str, data: dict[str, Any]) -> bool:
        kind = MODEL_STREAMS.get(stream)
        if kind is not None:
            return self.model_record(kind, stream, data)
        if stream not in self.noted:
            self.noted.add(stream)
            log.warning("stream %s is not one of the commerce model's (%s): its records are "
                        "not sent to Brevo; ask the source for the model's streams (runner "
                        "sync does; for a pipe, see the README's Brevo destination)", stream,
                        ", ".join(MODEL_STREAMS))
        return True

    def model_record(self, kind: str, stream: str, data: dict[str, Any]) -> bool:
        """A record of the commerce model (specs/schemas/commerce/v1): keyed by ``account``
        and ``id`` (text), dated by ``updated_at`` (ISO 8601 UTC), gone when ``deleted``.
        Those of ``intake.KINDS`` are kept for the flush, which works them out a batch at a
        time (a customer's email is checked now: a bad one is rejected with its record).
        The account is the ledger's key of the record's (platform, account): two platforms'
        stores of the same name never share ids in Brevo."""
        platform, account = data.get("platform"), data.get("account")
        if platform and account is not None:
            key = self.ledger.account_key(str(platform), str(account))
            if key != account:
                data = {**data, "account": key}
        if kind in KINDS:
            email = None
            if kind == "customer" and not data.get("deleted"):
                email = self.mapper.email(data)
                if email is None:
                    self.reject(stream, f"invalid email {data.get('email')!r}", data)
                    return False
            self.intake.take(kind, data, email)
        elif kind == "storefront_event":
            self.storefront.record(str(data.get("account", "")), data)
        elif kind == "erasure":
            self.erasures.take(stream, data)
        return True

    def _take(self, work: Work) -> None:
        """What the batch just worked out (``Intake.apply``) joins what this flush sends."""
        if self.dry_run:
            self.new_contacts += work.new_contacts
        for email in work.gone_customers:
            self.pending_contacts.pop(email, None)
            self.contacts.discard(email)
        self.gone_customers = (self.gone_customers - set(work.contacts)) | work.gone_customers
        self.pending_contacts.update(work.contacts)
        self.touched |= work.touched
        self.pending_orders.update(work.orders)
        for key in work.gone_products:
            if key not in work.products:
                self.pending_products.pop(key, None)
        self.pending_products.update(work.products)
        self.gone_products += work.gone_products
        self.pending_categories.update(work.categories)
        self.cart_list_add = (self.cart_list_add - work.cart_remove) | work.cart_add
        self.cart_list_remove = (self.cart_list_remove - work.cart_add) | work.cart_remove
        self.skipped_carts += work.skipped_carts
        for stream, count in work.deleted.items():
            self.deleted[stream] = self.deleted.get(stream, 0) + count
        self.back_in_stock += work.back_in_stock

    def _contact_refused(self, row: dict[str, Any], reason: str) -> None:
        self.reject("customers", reason, row, counted_as=MODEL_STREAM_OF["customer"])

    def _item_refused(self, kind: str, reason: str, item: dict[str, Any]) -> None:
        """A product or category Brevo refused, counted against the model stream of its kind."""
        self.reject(kind, reason, item, counted_as=MODEL_STREAM_OF[
            "category" if kind == "categories" else "product"])

    def _event_refused(self, key: str, event: dict[str, Any], reason: str) -> None:
        self.reject("events", reason, event, counted_as=_stream_of_event(key))

    def reject(self, stream: str, reason: str, data: dict[str, Any],
               counted_as: str | None = None) -> None:
        """Keep a record Brevo cannot take, with why, and count it against ``counted_as``
        (the input stream it came of; ``stream`` by default) in the next STATE echoed for it."""
        self.dead_letters.write(orjson.dumps({"stream": stream, "reason": reason,
                                              "at": p.now_ms(), "record": data}) + b"\n")
        super().reject(counted_as or stream, reason, data)
        log.warning("rejected a record of %s (%s); kept in the dead-letter file", stream, reason)

    # --- flushing -------------------------------------------------------------------------

    def flush(self) -> None:
        """Send what fills whole batches, or everything (``_drain``) and wait until Brevo has
        it; then commit the ledger (when STATEs may follow, see ``COMMIT_RECORDS``)."""
        self.dead_letters.flush()
        self.uncommitted += self.intake.count
        self._take(self.intake.apply())
        self.draining = self._drain()
        if self.pending_contacts or self.touched:
            self._flush_contacts()
        if self.draining:
            self._settle_contacts()
        else:
            half = self.contacts.buffered_bytes * 2 >= self.contacts.import_bytes
            if half and self.rows_in_flight() >= ROWS_IN_FLIGHT:
                # Learned once the buffer is half full (the import has had that long to
                # end): an import's rows and the next's are never all held at once.
                self._mark_sent(self.contacts.settle())
            self.contacts.submit()  # whole imports; Brevo works on them meanwhile
        self._send_orders()
        self._send_cart_lists()
        self.storefront.due()
        self.events.send()
        self._send_catalog()
        self._send_deletions()
        if self.draining:  # once the imports that could bring a contact back have ended
            self.erasures.apply()
        carrying = self.carrying()
        if not carrying or self.uncommitted >= COMMIT_RECORDS:
            # Before any STATE is echoed (none is while something waits), and now and then.
            # A run that dies loses what was not committed, which it reads again: no STATE
            # after it was echoed.
            self.ledger.commit()
            self.uncommitted = 0
        now = time.monotonic()
        self.carry_since = (self.carry_since or now) if carrying else None
        left_out = self.mapper.phones_left_out
        if left_out:
            log.warning("%d phone numbers are not valid numbers and were left out of SMS "
                        "(customers %s%s)", len(left_out), ", ".join(left_out[:5]),
                        ", ..." if len(left_out) > 5 else "")
            left_out.clear()

    def _flush_contacts(self) -> None:
        """The contacts of the customers kept (mapped, unless Brevo has the record as it is)
        and of those whose totals changed, into the importer's buffer; a few statements
        for the whole batch."""
        self.contacts.ensure_attributes(self.mapper.attribute_types())
        pending = self.pending_contacts
        others = self.ledger.customers_among(self.touched - set(pending))
        emails = [*pending, *sorted(others)]  # in the order the records came
        totals, sent = self.ledger.totals_of(emails), self.ledger.sent_of(emails)
        rows: dict[str, dict[str, Any]] = {}
        notes: dict[str, tuple[int, float, str | None]] = {}
        lapsed, buyers = [], set()
        for email in emails:
            orders, spent = totals.get(email, (0, 0.0))
            last = sent.get(email)
            record = pending.get(email)
            fingerprint = self._fingerprint(record) if record is not None else None
            if last is not None and fingerprint == last[2]:
                fingerprint = None  # Brevo has this record as it is: not mapped again
            moved = last is None or last[:2] != (orders, spent)
            if fingerprint is None and not moved:
                continue  # nothing of this contact changed
            rows[email] = (self.mapper.contact(record)[1]
                           if fingerprint and record is not None else {})
            if record is not None and (record.get("order_count") is not None
                                       or record.get("amount_spent") is not None):
                self.own_totals.add(email)
            if record is not None or not (email in self.own_totals or (
                    last and (last[2] or "").startswith(OWN_TOTALS))):
                # (Only its orders changed, and its platform keeps its totals: Brevo has
                # the platform's figures, which the platform changes with the customer.)
                self._totals(rows[email], record or {}, orders, spent)
            notes[email] = (orders, spent, fingerprint)
            if orders > 0:
                buyers.add(email)
            elif moved and last is not None and last[0] > 0:
                lapsed.append(email)  # no order counts any more: out of the buyers list
        self._claim_phones(rows)
        groups = [([self.all_customers], sorted(set(rows) - buyers))]
        if self.buyers is not None:
            groups.append(([self.all_customers, self.buyers], sorted(buyers)))
        else:
            groups[0][1].extend(sorted(buyers))
        for list_ids, members in groups:
            for email in members:
                # Merged into the row of the contact if one waits: one row, the latest
                # values; its totals are marked sent once its import has gone through.
                self.contacts.add(email, rows[email], list_ids, notes[email])
        self.lapsed |= set(lapsed)
        self.lapsed -= buyers
        self.pending_contacts.clear()
        self.touched.clear()

    def _fingerprint(self, record: dict[str, Any]) -> str:
        """What a contact row is made of: the record, the mapping and lists (``salt``), the
        store's country (the region of a national phone number)."""
        country = self.ledger.store_country(str(record.get("account", ""))) or ""
        own = record.get("order_count") is not None or record.get("amount_spent") is not None
        return (OWN_TOTALS if own else "") + hashlib.blake2b(
            self.salt + country.encode() + orjson.dumps(record, option=orjson.OPT_SORT_KEYS),
            digest_size=16).hexdigest()

    def _totals(self, attributes: dict[str, Any], record: dict[str, Any], orders: int,
                spent: float) -> None:
        """The computed attributes: the platform's own figures when it keeps them, else
        those of the orders seen."""
        computed = self.mapper.computed()
        if record.get("order_count") is not None:
            orders = record["order_count"]
        if record.get("amount_spent") is not None:
            spent = record["amount_spent"]
        if "order_count" in computed:
            attributes[computed["order_count"]] = orders
        if "amount_spent" in computed:
            attributes[computed["amount_spent"]] = spent

    def _claim_phones(self, rows: dict[str, dict[str, Any]]) -> None:
        """Each SMS number to the first contact that has it: Brevo allows one contact per
        number, so the others keep their contact without it."""
        numbers = {email: attributes["SMS"] for email, attributes in rows.items()
                   if attributes.get("SMS")}
        owners = self.ledger.sms_owners(set(numbers.values()))
        shared, claims = 0, []
        for email, sms in numbers.items():
            if owners.get(sms, email) != email:
                del rows[email]["SMS"]
                shared += 1
                continue
            owners[sms] = email
            claims.append((sms, email))
        self.ledger.claim_sms_many(claims)
        if shared:
            log.warning("%d contacts share a phone number with another contact; their SMS "
                        "was left out (Brevo allows one contact per number)", shared)

    def _send_orders(self) -> None:
        """Orders to Brevo's e-commerce orders; those older than the first sync are marked
        ``historical`` (they trigger no automation), the live ones go first. Payloads are built
        as they are sent: all 5,000 at once were the sync's largest allocation."""
        def created(order: dict[str, Any]) -> str:
            return str(order.get("created_at") or order.get("updated_at") or "")

        live = [key for key, (order, _) in self.pending_orders.items()
                if not (created(order) and created(order) < self.connected_at)]
        live_set = set(live)
        first = live + [key for key in self.pending_orders if key not in live_set]

        def payloads() -> Iterator[tuple[dict[str, Any], bool]]:
            for key in first:
                order, email = self.pending_orders[key]
                try:
                    payload = model_order(order, email)
                except ValueError as exc:
                    self.reject(MODEL_STREAM_OF["order"], str(exc), order)
                    continue
                yield payload, key not in live_set

        self.orders.send(payloads(), len(live), everything=self.draining)
        self.pending_orders.clear()

    def _send_catalog(self) -> None:
        """Categories, then products and their variants (``parentId``), then stock changes:
        what Brevo's product blocks and back-in-stock alerts read. The model's URLs are
        absolute: nothing waits for the store's record."""
        everything = self.draining
        self.catalog.upsert("categories", [model_category(row) for row in
                                           self.pending_categories.values()], everything)
        items: list[dict[str, Any]] = []
        for (account, _), product in self.pending_products.items():
            for item, variant_id in model_products(product, self.ledger.stock):
                items.append(item)
                self.ledger.put_item_name(item["id"], item["name"])
                if variant_id is not None:
                    self.ledger.put_item(account, variant_id, item["id"])
                    if "stock" in item:
                        self.stock_waiting[item["id"]] = (account, variant_id, item["stock"])
        self.catalog.upsert("products", items, everything)
        stale = self.ledger.stale_stock()
        for account, variant, brevo_id, level in stale:
            self.stock_waiting[brevo_id] = (account, variant, level)
        self.catalog.upsert("products", [self.catalog.named({"id": brevo_id, "stock": level})
                                         for _, _, brevo_id, level in stale], everything)
        self.pending_categories.clear()
        self.pending_products.clear()

    def _catalog_sent(self, items: list[dict[str, Any]]) -> None:
        """Products Brevo took: their stock is marked sent (a level marked before it went
        would be lost by a crash while it waited for its batch)."""
        for item in items:
            marked = self.stock_waiting.pop(str(item["id"]), None)
            if marked is not None and "stock" in item:
                self.ledger.mark_stock_sent(*marked)

    def _members(self, list_id: int, emails: list[str], action: str) -> None:
        change_members(self.api, list_id, emails, action)

    def _send_cart_lists(self) -> None:
        if not self.draining:
            return  # the contacts may still wait for their import
        if self.abandoned_list is not None:
            self._members(self.abandoned_list, sorted(self.cart_list_add), "add")
            self._members(self.abandoned_list, sorted(self.cart_list_remove), "remove")
        if self.skipped_carts:
            log.info("%d cart changes were of shoppers without consent (a guest, or no consent "
                     "to abandoned-cart emails): no event, not in the list", self.skipped_carts)
        self.cart_list_add.clear()
        self.cart_list_remove.clear()
        self.skipped_carts = 0

    def _send_deletions(self) -> None:
        """Customers gone from the store leave the customer lists (their contacts stay);
        products gone are marked deleted in the catalog."""
        if not self.draining:
            return  # an import that waits would add them back
        gone = sorted(self.gone_customers)
        for list_id in (self.all_customers, self.buyers, self.abandoned_list):
            if list_id is not None and gone:
                self._members(list_id, gone, "remove")
        now = now_iso()
        self.catalog.upsert("products", [self.catalog.named({"id": brevo_id, "isDeleted": True,
                                               "deletedAt": now})
                                  for store, product_id in self.gone_products
                                  for brevo_id in self.ledger.product_items(store, product_id)])
        if self.deleted:
            log.info("gone from the store: %s (customers leave the lists and keep their "
                     "contacts; products are marked deleted in Brevo)",
                     ", ".join(f"{n} {k}" for k, n in sorted(self.deleted.items())))
        if self.back_in_stock:
            log.info("%d variants came back in stock; their stock is updated in Brevo, which "
                     "sends its back-in-stock alerts", self.back_in_stock)
        self.gone_customers.clear()
        self.gone_products.clear()
        self.deleted.clear()
        self.back_in_stock = 0

    # --- the run --------------------------------------------------------------------------

    def pending(self) -> int:
        return max(self.intake.count, len(self.pending_contacts), len(self.pending_orders),
                   len(self.pending_products), len(self.pending_categories))

    def full(self) -> bool:
        return self.intake.count >= self.batch_size  # memory stays flat

    def state(self, message: dict[str, Any], final: bool = False) -> Iterator[bytes]:
        self.final = final  # the end of the input: everything goes
        return super().state(message, final)

    def _drain(self) -> bool:
        """Whether this flush sends everything, not full batches only: at the end of the
        input, once STATEs have waited ``checkpoint_s``, and when events are queued (an event
        goes after the contact it names)."""
        waited = self.carry_since is not None and (
            time.monotonic() - self.carry_since >= self.checkpoint_s)
        return (self.final or waited or bool(self.erasures.waiting) or bool(self.ledger.outbox(1))
                or bool(self.ledger.events_in_doubt()))

    def _settle_contacts(self) -> None:
        """Every contact waiting goes; Brevo's imports are waited for; the totals that went
        are marked sent, and the contacts whose orders no longer count leave the buyers
        list (after the imports, which would add them back)."""
        self.contacts.submit(everything=True)
        self._mark_sent(self.contacts.settle())
        if self.buyers is not None and self.lapsed:
            self._members(self.buyers, sorted(self.lapsed), "remove")
        self.lapsed.clear()

    def _mark_sent(self, outcome: Outcome) -> None:
        """What Brevo took is marked sent (a refused contact's totals and record go again
        next time)."""
        self.ledger.mark_sent_many([(email, *note) for email, note in outcome.taken
                                    if note is not None])

    def rows_in_flight(self) -> int:
        return sum(len(process.rows) for process in self.contacts.in_flight)

    def carrying(self) -> bool:
        """Whether anything waits for a later flush (a batch that is not full, an import in
        flight, list changes that wait for their contacts)."""
        return bool(self.contacts.busy() or self.orders.waiting_count()
                    or self.catalog.waiting_count() or self.lapsed or self.cart_list_add
                    or self.cart_list_remove or self.gone_customers or self.gone_products
                    or self.erasures.waiting)

    def streams_waiting(self) -> set[str]:
        """While anything waits, every held STATE waits with it: a STATE is echoed once
        everything before it is in Brevo."""
        if not self.carrying():
            return set()
        return {"", *(state_stream(held) or "" for held in self.held_states)}

    def _waiting(self, bucket: str) -> Any:
        """The pacer's ``on_wait`` for ``bucket``: a long wait for the bucket's reset is
        said, with what the run has spent in it (the run is paced, not stuck)."""
        def on_wait(seconds: float, reason: str) -> None:
            if seconds >= LONG_WAIT_S:
                log.warning("Brevo's rate limit for %s: %s (%.0f s; %d requests sent there "
                            "by this run)", BUCKET_NAMES[bucket], reason, seconds,
                            self.api.sent.get(bucket, 0) if hasattr(self, "api") else 0)
        return on_wait

    def tier(self) -> str:
        """The account's rate-limit tier: ``rate_limit_tier``, else the one whose "all other
        endpoints" bucket has the size Brevo's answer announced, else general."""
        if self.config.get("rate_limit_tier"):
            return str(self.config["rate_limit_tier"])
        seen = _OTHER_LIMIT.get((self.config["api_url"], self.config["api_key"]))
        return tier_of(seen) or "general"

def _stream_of_event(key: str) -> str:
    """The input stream an event's ledger key was made of (see ``_event``'s callers)."""
    kind = key.split(":")[1] if key.count(":") >= 2 else ""
    return MODEL_STREAM_OF.get(kind, MODEL_STREAM_OF["order"])


def dry_run_summary(writer: BrevoWriter) -> str:
    """What a dry run would have changed in Brevo, in one line."""
    plan = writer.plan
    contacts = plan.get("contacts", 0)
    parts = [f"{contacts} contacts ({writer.new_contacts} new, "
             f"{max(0, contacts - writer.new_contacts)} updated)"]
    parts += [f"{plan.get(kind, 0)} {kind}" for kind in
              ("list additions", "list removals", "events", "orders", "products", "categories",
               "attributes")]
    return ("dry run: would send " + ", ".join(parts) + "; nothing was written. "
            + estimate(writer.api.sent, writer.tier()))


def write(config: dict[str, Any], catalog: p.ConfiguredAirbyteCatalog,
          messages: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """Consume messages; yield each STATE once Brevo holds the records before it."""
    writer = BrevoWriter(config, catalog)
    yield from writer.write(messages)  # closes the writer, whatever happens
    if writer.dry_run:
        summary = dry_run_summary(writer)
        log.info("%s", summary)
        yield p.dump(p.AirbyteMessage(type="LOG", log=p.AirbyteLogMessage(
            level=p.LogLevel.INFO, message=summary)))
    elif sum(writer.api.sent.values()) > 0:
        # What the run spent, beside the progress display (the log, not the output: a write
        # echoes STATE messages only).
        log.info("%s", estimate(writer.api.sent, writer.tier()).replace(
            "Brevo requests by", "Brevo requests of this run by", 1))
