"""A `where` filter of the configs (journey triggers, campaign segments), on one record or a table.

A filter maps a property (or column) to a value it must equal or to a `Comparison`; every
entry must hold. The same filter selects one event (`matches`) or the rows of an Arrow table
(`expression`, for a campaign's segment), so a journey and a campaign read a rule alike.

>>> from configs.journey_schema import Comparison
>>> where = {"segment": "dormant", "cart_value": Comparison(gte=20)}
>>> matches(where, {"segment": "dormant", "cart_value": 35.0})
True
>>> matches(where, {"segment": "dormant"})  # a missing property never matches a rule
False
>>> import pyarrow as pa
>>> table = pa.table({"segment": ["dormant", "loyal", "dormant"], "cart_value": [35, 50, 5]})
>>> table.filter(expression(where))["cart_value"].to_pylist()
[35]
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

import pyarrow.compute as pc

from configs.journey_schema import Comparison, Where

_ORDERED = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


def _as_comparison(rule: Any) -> Comparison:
    return rule if isinstance(rule, Comparison) else Comparison(eq=rule)


def _holds(rule: Comparison, value: Any) -> bool:
    if rule.eq is not None and value != rule.eq:
        return False
    if rule.ne is not None and value == rule.ne:
        return False
    if rule.in_ is not None and value not in rule.in_:
        return False
    for name, compare in _ORDERED.items():
        bound = getattr(rule, name)
        if bound is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return False
            if not compare(value, bound):
                return False
    return True


def matches(where: Where, record: Mapping[str, Any]) -> bool:
    """Whether every rule of `where` holds for `record` (a missing property: no)."""
    return all(
        name in record and record[name] is not None and _holds(_as_comparison(rule), record[name])
        for name, rule in where.items()
    )


def expression(where: Where) -> pc.Expression:
    """`where` as an Arrow filter expression over columns of the same names."""
    result = pc.scalar(True)
    for name, rule in where.items():
        rule = _as_comparison(rule)
        column = pc.field(name)
        result = result & column.is_valid()
        if rule.eq is not None:
            result = result & (column == rule.eq)
        if rule.ne is not None:
            result = result & (column != rule.ne)
        if rule.in_ is not None:
            result = result & column.isin(rule.in_)
        for key, compare in _ORDERED.items():
            bound = getattr(rule, key)
            if bound is not None:
                result = result & compare(column, bound)
    return result
