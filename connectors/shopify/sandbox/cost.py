"""Query cost and the leaky bucket, per Shopify's documented rules (shopify-api.md, "Rate
limits"): a scalar or enum costs 0, an object 1, a connection 2 plus ``first`` (or ``last``)
times the cost of one of its nodes, and a mutation 10. A query is charged its requested cost
before it runs and refunded the difference to its actual cost (the same rules over what was
really returned: a page of 3 customers costs 2 + 3 x node, not 2 + 250 x node).

What the rules leave open, decided here: a list of objects that is not a connection
(``addresses``, ``refunds``) costs as one object, except a list asked by ids (``nodes(ids:)``),
which costs one object per id; a field of an interface (``node(id:)``)
costs, when requested, its common fields plus the dearest of its ``... on Type`` fragments;
a field whose argument is a variable is priced with the variable's value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    InlineFragmentNode,
    OperationDefinitionNode,
    get_named_type,
    is_leaf_type,
)
from graphql.execution.values import get_argument_values

MAX_QUERY_COST = 1000
MUTATION_COST = 10
MISSING = object()


def is_connection(named: Any) -> bool:
    return isinstance(named, GraphQLObjectType) and named.name.endswith("Connection") and \
        "pageInfo" in named.fields


@dataclass
class Pricer:
    """Prices one operation of a parsed document (``data`` given: its actual cost)."""

    schema: Any
    fragments: dict[str, Any]
    variables: Any  # the operation's coerced variables (graphql-core's get_variable_values)
    _cache: dict[tuple[str, int, str | None], list[Any]] = field(default_factory=dict)

    def operation(self, operation: OperationDefinitionNode, data: Any = None) -> int:
        if operation.operation.value == "mutation":
            return MUTATION_COST * sum(1 for s in operation.selection_set.selections
                                       if isinstance(s, FieldNode))
        return self.selections(self.schema.query_type, operation.selection_set, data)

    def _groups(self, parent: Any, selection_set: Any, group: str | None = None
                ) -> list[tuple[Any, FieldNode, str | None]]:
        """The fields of a selection, with their owner type and fragment group (cached: the
        actual cost walks the same selections once per returned node)."""
        key = (parent.name if parent else "", id(selection_set), group)
        if key not in self._cache:
            self._cache[key] = self._collect(parent, selection_set, group)
        return self._cache[key]

    def _collect(self, parent: Any, selection_set: Any, group: str | None
                 ) -> list[tuple[Any, FieldNode, str | None]]:
        found: list[tuple[Any, FieldNode, str | None]] = []
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, FieldNode):
                found.append((parent, node, group))
                continue
            if isinstance(node, FragmentSpreadNode):
                fragment = self.fragments.get(node.name.value)
                if fragment is None:
                    continue
                condition, selections = fragment.type_condition, fragment.selection_set
            else:
                assert isinstance(node, InlineFragmentNode)
                condition, selections = node.type_condition, node.selection_set
            owner = self.schema.type_map.get(condition.name.value) if condition else parent
            same = owner is parent or owner is None
            found.extend(self._groups(owner or parent, selections,
                                      group if same else condition.name.value))
        return found

    def selections(self, parent: Any, selection_set: Any, data: Any) -> int:
        by_group: dict[str | None, int] = {}
        for owner, node, group in self._groups(parent, selection_set):
            key = node.alias.value if node.alias else node.name.value
            if data is not None and (not isinstance(data, dict) or key not in data):
                continue
            value = data[key] if data is not None else MISSING
            by_group[group] = by_group.get(group, 0) + self.field(owner, node, value)
        common = by_group.pop(None, 0)
        if data is not None:
            return common + sum(by_group.values())
        return common + max(by_group.values(), default=0)

    def field(self, owner: Any, node: FieldNode, value: Any) -> int:
        fields = getattr(owner, "fields", {})
        definition = fields.get(node.name.value)
        if definition is None:
            return 0
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            return 0
        if is_connection(named):
            return self.connection(named, definition, node, value)
        if "ids" in definition.args:  # nodes(ids:) and its kind: one object per id
            return self.by_ids(named, definition, node, value)
        if value is MISSING:
            return 1 + self.selections(named, node.selection_set, None)
        if value is None or value == []:
            return 0
        one = value[0] if isinstance(value, list) else value
        return 1 + self.selections(named, node.selection_set, one)

    def by_ids(self, named: Any, definition: Any, node: FieldNode, value: Any) -> int:
        if value is MISSING:
            try:
                args = get_argument_values(definition, node, self.variables)
                ids = args.get("ids") or []
            except Exception:  # a bad argument: execution reports it
                ids = []
            return len(ids) * (1 + self.selections(named, node.selection_set, None))
        return sum(1 + self.selections(named, node.selection_set, item)
                   for item in value or [] if item is not None)

    def connection(self, named: Any, definition: Any, node: FieldNode, value: Any) -> int:
        node_type = get_named_type(named.fields["nodes"].type) if "nodes" in named.fields \
            else get_named_type(named.fields["edges"].type.of_type.of_type.of_type
                                .fields["node"].type)
        # (the key of nodes or edges, the key of node inside an edge, the node's selections)
        paths: list[tuple[str, str | None, Any]] = []
        for _, child, _ in self._groups(named, node.selection_set):
            if child.name.value == "nodes":
                paths.append((_key(child), None, child.selection_set))
            elif child.name.value == "edges":
                paths.extend((_key(child), _key(inner), inner.selection_set)
                             for inner in _selections(child)
                             if isinstance(inner, FieldNode) and inner.name.value == "node")
        if value is MISSING:
            try:
                args = get_argument_values(definition, node, self.variables)
            except Exception:  # a bad argument: execution reports it
                args = {}
            size = args.get("first") or args.get("last") or 0
            per_node = max((1 + self.selections(node_type, selections, None)
                            for _, _, selections in paths), default=1)
            return 2 + size * per_node
        if not isinstance(value, dict):
            return 0
        total = 2
        for outer, inner, selections in paths:
            items = value.get(outer) or []
            if inner is not None:
                items = [edge.get(inner) for edge in items if isinstance(edge, dict)]
            total += sum(1 + self.selections(node_type, selections, item)
                         for item in items if item is not None)
        return total


def _selections(node: FieldNode) -> tuple[Any, ...]:
    return tuple(node.selection_set.selections) if node.selection_set else ()


def _key(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value


@dataclass
class Bucket:
    """A leaky bucket of query points: holds ``size``, refills at ``rate`` per second."""

    rate: float
    size: float
    level: float = -1.0
    at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.level < 0:
            self.level = self.size

    def refill(self) -> float:
        now = time.monotonic()
        self.level = min(self.size, self.level + (now - self.at) * self.rate)
        self.at = now
        return self.level

    def take(self, points: int) -> bool:
        """Charge ``points`` if the bucket holds them (False: throttled, nothing charged)."""
        if self.refill() < points:
            return False
        self.level -= points
        return True

    def refund(self, points: int) -> None:
        self.level = min(self.size, self.level + max(0, points))

    def status(self) -> dict[str, Any]:
        return {"maximumAvailable": float(self.size),
                "currentlyAvailable": int(self.refill()), "restoreRate": float(self.rate)}
