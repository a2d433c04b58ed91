"""Paginators, looked up by name from a stream's ``paginator.type``.

The built-ins register the way a plugin does (``register_paginator("name", cls)``, dlt's
anchor): a plugin module registers its own before its spec is loaded.

A paginator sets the parameters of the first request and, given a page, those of the next one
(``None`` when the stream is done). The engine guards against loops: a paginator that asks for
the same parameters twice in a row is an error, not an endless read.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict

Params = dict[str, Any]
Record = dict[str, Any]


def dig(body: Any, path: str | None) -> Any:
    """The value at a dotted ``path`` of a JSON body (``None`` path: the body itself)."""
    if not path:
        return body
    for part in path.split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(part)
    return body


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit_param: str = "limit"


class Paginator:
    """Base class: one page only."""

    Options: ClassVar[type[_Options]] = _Options
    needs_cursor: ClassVar[bool] = False
    #: True when records arrive in ascending cursor order, so state may be saved after each page.
    sorted_by_cursor: ClassVar[bool] = False

    def __init__(self, options: dict[str, Any], page_size: int, **_: Any) -> None:
        self.options = self.Options.model_validate(options)
        self.page_size = page_size

    def first(self, params: Params) -> Params:
        """Parameters of the first request."""
        return {**params, self.options.limit_param: self.page_size}

    def fresh(self, records: list[Record]) -> list[Record]:
        """Records of a page that were not already produced (default: all)."""
        return records

    def next(self, params: Params, body: Any, records: list[Record]) -> Params | None:
        """Parameters of the next request, or ``None`` when there is none."""
        return None


class PageNumber(Paginator):
    """``page=1,2,...`` until a short page or the last page the API reports."""

    class Options(_Options):
        page_param: str = "page"
        total_pages_path: str | None = None

    options: Options  # what __init__ validated with the class's own Options

    def first(self, params: Params) -> Params:
        return {**super().first(params), self.options.page_param: 1}

    def next(self, params: Params, body: Any, records: list[Record]) -> Params | None:
        page = params[self.options.page_param]
        if len(records) < self.page_size:
            return None
        total_pages = dig(body, self.options.total_pages_path)
        if isinstance(total_pages, int) and page >= total_pages:
            return None
        return {**params, self.options.page_param: page + 1}


class Cursor(Paginator):
    """An opaque cursor from the body (e.g. ``meta.cursor_pagination.end_cursor``) sent back."""

    class Options(_Options):
        param: str = "after"
        cursor_path: str

    options: Options

    def next(self, params: Params, body: Any, records: list[Record]) -> Params | None:
        cursor = dig(body, self.options.cursor_path)
        if not cursor or not records:
            return None
        return {**params, self.options.param: cursor}


class Keyset(Paginator):
    """Walks a stream sorted ascending by its cursor field, moving the lower bound page by page.

    Each request asks for ``cursor >= last value seen``, so a record modified during the read
    moves behind the bound and is read again later in its new version, and none is skipped
    (page-number paging over a changing sort order skips records). Records at the bound that
    were already produced are dropped.

    Records already produced are recognized by key *and content*: a record changed twice in
    one second keeps its cursor value, and its second version must not be taken for the first.

    When a whole page shares one cursor value (more records in one second than a page holds),
    it pages within that value; offsets inside such a block can move while it is read (records
    leave it, and records modified in the current second join it), so the block is read again
    until a pass finds nothing new.
    """

    class Options(_Options):
        page_param: str = "page"

    options: Options
    needs_cursor = True
    sorted_by_cursor = True

    def __init__(self, options: dict[str, Any], page_size: int, *, cursor_field: str,
                 cursor_param: str, format_cursor: Any, primary_key: list[str],
                 start: str | None) -> None:
        super().__init__(options, page_size)
        self.cursor_field = cursor_field
        self.cursor_param = cursor_param
        self.format_cursor = format_cursor
        self.primary_key = primary_key
        self.lower = start
        self.at_lower: set[tuple[Any, ...]] = set()  # versions produced with cursor == lower
        self.beyond: set[tuple[Any, ...]] = set()  # versions produced past a block being checked
        self.found = 0  # records of the block produced in the current pass

    def _key(self, record: Record) -> tuple[Any, ...]:
        """A record's version: its primary key and a digest of its content."""
        digest = hash(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
        return (*(record.get(k) for k in self.primary_key), digest)

    def first(self, params: Params) -> Params:
        # The engine adds the start bound (``cursor_param``) to the first request.
        return {**super().first(params), self.options.page_param: 1}

    def fresh(self, records: list[Record]) -> list[Record]:
        field, lower = self.cursor_field, self.lower
        if self.at_lower or self.beyond:
            records = [r for r in records
                       if not ((r.get(field) == lower and self._key(r) in self.at_lower)
                               or (self.beyond and self._key(r) in self.beyond))]
        self.found += sum(1 for r in records if r.get(field) == lower)
        return records

    def next(self, params: Params, body: Any, records: list[Record]) -> Params | None:
        field, page_param = self.cursor_field, self.options.page_param
        page = params[page_param]
        full = len(records) >= self.page_size
        last = records[-1].get(field) if records else None
        if full and last == self.lower:
            self.at_lower.update(self._key(r) for r in records)
            return {**params, page_param: page + 1}
        if page > 1 and self.found:
            # This pass paged inside a one-second block: read the block again to catch
            # what the moving offsets hid, until a pass brings nothing new.
            self.at_lower.update(self._key(r) for r in records if r.get(field) == self.lower)
            self.beyond.update(self._key(r) for r in records if r.get(field) != self.lower)
            self.found = 0
            return {**params, page_param: 1}
        self.found = 0
        if not full:
            return None
        self.lower = last
        self.at_lower = {self._key(r) for r in records if r.get(field) == last}
        self.beyond = set()
        return {**params, page_param: 1, self.cursor_param: self.format_cursor(last)}


PAGINATORS: dict[str, type[Paginator]] = {}


def register_paginator(name: str, cls: type[Paginator]) -> None:
    """Make ``cls`` the paginator a stream names as ``paginator: {"type": name}``.

    Raises:
        TypeError: ``cls`` is not a :class:`Paginator` (its ``first``, ``fresh`` and
            ``next`` are what the engine calls).
        ValueError: another class is registered under ``name`` (a plugin cannot replace a
            paginator other connectors use).
    """
    if not (isinstance(cls, type) and issubclass(cls, Paginator)):
        raise TypeError(f"paginator {name!r}: {cls!r} is not a subclass of "
                        "framework.declarative.paginators.Paginator")
    if PAGINATORS.get(name, cls) is not cls:
        raise ValueError(f"paginator {name!r} is registered already "
                         f"({PAGINATORS[name].__qualname__}); choose another name")
    PAGINATORS[name] = cls


register_paginator("single_page", Paginator)
register_paginator("page_number", PageNumber)
register_paginator("cursor", Cursor)
register_paginator("keyset", Keyset)
