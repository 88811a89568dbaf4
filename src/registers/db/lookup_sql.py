"""Per-backend SQL for JSON key paths, date parts and regular expressions.

:mod:`registers.db.query` decides *what* a lookup means; this module spells it for
SQLite, PostgreSQL (JSONB) and MySQL/MariaDB so every backend returns the same rows.
Key paths reach here already allow-listed (``[A-Za-z0-9_-]`` segments), so they are
safe to inline; every value is a bound parameter.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["DATE_PARTS", "JsonPath", "date_part", "regex", "sqlite_regexp"]

DATE_PARTS = ("year", "month", "day", "date")

_SQLITE_PARTS = {"year": "%Y", "month": "%m", "day": "%d"}
_MYSQL_PARTS = {"year": "YEAR", "month": "MONTH", "day": "DAYOFMONTH"}
_MYSQL_NUMBERS = "('INTEGER', 'UNSIGNED INTEGER', 'DOUBLE', 'DECIMAL')"


class JsonPath:
    """SQL reading the value at one key path of a JSON column.

    ``keys`` are object keys, or array indexes when all digits. An index only reaches
    into an array on every backend (PostgreSQL would read an object's key ``"0"``, and
    MariaDB wraps a non-array as a one-element array: both are guarded). Every
    predicate built from these expressions is NULL (never true) when the path is
    missing.
    """

    def __init__(self, family: str, column: str, keys: Sequence[str]) -> None:
        self.family = family
        self.column = column
        self.keys = tuple(keys)
        self.path = self._path(self.keys)
        guards = [
            self._raw_typeof(self._path(self.keys[:i]))
            + (" = 'array'" if family == "postgresql" else " = 'ARRAY'")
            for i, key in enumerate(self.keys) if key.isdigit()
        ] if family != "sqlite" else []
        self.guard = " AND ".join(guards)

    def _path(self, keys: Sequence[str]) -> str:
        if self.family == "postgresql":
            return "'{" + ",".join(keys) + "}'"
        return "'$" + "".join(f"[{k}]" if k.isdigit() else f'."{k}"' for k in keys) + "'"

    def _raw_typeof(self, path: str) -> str:
        if self.family == "postgresql":
            return f"jsonb_typeof({self.column} #> {path})"
        return f"JSON_TYPE(JSON_EXTRACT({self.column}, {path}))"

    def _guarded(self, sql: str) -> str:
        return f"(CASE WHEN {self.guard} THEN {sql} END)" if self.guard else sql

    def _value(self) -> str:
        """PostgreSQL: the jsonb at the path; MySQL: JSON_EXTRACT of it."""
        if self.family == "postgresql":
            return self._guarded(f"({self.column} #> {self.path})")
        return self._guarded(f"JSON_EXTRACT({self.column}, {self.path})")

    def child(self, key_param: str) -> str:
        """A predicate: the object at this path has the key bound at ``key_param``."""
        c, path = self.column, self.path
        if self.family == "sqlite":
            # the parameter is the full path text, see child_param()
            return f"json_type({c}, {key_param}) IS NOT NULL"
        if self.family == "postgresql":
            return f"({self.is_('object')} AND jsonb_exists({self._value()}, {key_param}))"
        return (f"({self.is_('object')} AND JSON_CONTAINS_PATH({c}, 'one', "
                f"CONCAT({path}, '.', JSON_QUOTE({key_param}))) = 1)")

    def child_param(self, key: str) -> str:
        if self.family == "sqlite":
            return self.path[1:-1] + f'."{key}"'
        return key

    def _typeof(self) -> str:
        if self.family == "sqlite":
            return f"json_type({self.column}, {self.path})"
        if self.family == "postgresql":
            return f"jsonb_typeof({self._value()})"
        return f"JSON_TYPE({self._value()})"

    def is_(self, category: str) -> str:
        """A predicate on the JSON type at the path: string, number, true, false, null,
        array, object, or ``exists``."""
        c, path, t = self.column, self.path, self._typeof()
        if self.family == "sqlite":
            names = {"string": "= 'text'", "number": "IN ('integer', 'real')",
                     "true": "= 'true'", "false": "= 'false'", "null": "= 'null'",
                     "array": "= 'array'", "object": "= 'object'", "exists": "IS NOT NULL"}
            return f"{t} {names[category]}"
        if self.family == "postgresql":
            if category in ("true", "false", "null"):
                return f"{self._value()} = '{category}'::jsonb"
            if category == "exists":
                return f"{self._value()} IS NOT NULL"
            return f"{t} = '{category}'"
        if category == "exists":
            found = f"JSON_CONTAINS_PATH({c}, 'one', {path}) = 1"
            return f"({self.guard} AND {found})" if self.guard else found
        if category in ("true", "false"):
            return f"({t} = 'BOOLEAN' AND {self._value()} = '{category}')"
        if category == "number":
            return f"{t} IN {_MYSQL_NUMBERS}"
        return f"{t} = '{category.upper()}'"

    def text(self) -> str:
        """The string at the path as SQL text, compared exactly (NULL if not a string)."""
        c, path = self.column, self.path
        if self.family == "sqlite":
            return f"(CASE WHEN {self.is_('string')} THEN json_extract({c}, {path}) END)"
        if self.family == "postgresql":
            return f"(CASE WHEN {self.is_('string')} THEN {c} #>> {path} END)"
        # JSON_UNQUOTE yields utf8mb4_bin text: comparisons are exact, as elsewhere.
        return f"(CASE WHEN {self.is_('string')} THEN JSON_UNQUOTE({self._value()}) END)"

    def number(self) -> str:
        """The number at the path (NULL if not a number)."""
        c, path = self.column, self.path
        if self.family == "sqlite":
            return f"(CASE WHEN {self.is_('number')} THEN json_extract({c}, {path}) END)"
        if self.family == "postgresql":
            return f"(CASE WHEN {self.is_('number')} THEN ({c} #>> {path})::numeric END)"
        return f"(CASE WHEN {self.is_('number')} THEN {self._value()} + 0 END)"

    def has_element(self, category: str, placeholder: str) -> str:
        """A predicate: the array at the path has an element equal to the bound value.

        The parameter is :meth:`element_param` of the value.
        """
        c, path = self.column, self.path
        if self.family == "sqlite":
            types = {"string": "= 'text'", "number": "IN ('integer', 'real')",
                     "true": "= 'true'", "false": "= 'false'"}[category]
            test = "1 = 1" if category in ("true", "false") else f"e.value = {placeholder}"
            return (f"({self.is_('array')} AND EXISTS (SELECT 1 FROM json_each({c}, {path}) "
                    f"AS e WHERE e.type {types} AND {test}))")
        if self.family == "postgresql":
            return f"({self.is_('array')} AND {self._value()} @> CAST({placeholder} AS jsonb))"
        return f"({self.is_('array')} AND JSON_CONTAINS({self._value()}, {placeholder}) = 1)"

    def element_param(self, value: Any) -> list[Any]:
        import json

        if self.family == "sqlite":
            return [] if isinstance(value, bool) else [value]
        if self.family == "postgresql":
            return [json.dumps([value])]
        return [json.dumps(value)]


def date_part(family: str, kind: str, column: str, part: str) -> str:
    """SQL for ``part`` (year, month, day, date) of a date or datetime column, in UTC.

    Aware datetimes are stored in UTC on every backend (SQLite as ISO text, PostgreSQL
    as ``timestamptz``, MySQL as naive UTC), so the parts are the UTC ones everywhere.
    """
    zoned = kind == "datetime" and family == "postgresql"
    if family == "sqlite":
        if part == "date":
            return f"date({column})"
        return f"CAST(strftime('{_SQLITE_PARTS[part]}', {column}) AS INTEGER)"
    if family == "postgresql":
        source = f"({column} AT TIME ZONE 'UTC')" if zoned else column
        if part == "date":
            return f"CAST({source} AS DATE)"
        return f"CAST(EXTRACT({part.upper()} FROM {source}) AS INTEGER)"
    if part == "date":
        return f"DATE({column})"
    return f"{_MYSQL_PARTS[part]}({column})"


def regex(family: str, column: str, placeholder: str, insensitive: bool) -> str:
    """A predicate: ``column`` matches the bound regular expression (search, not match)."""
    if family == "sqlite":
        return f"registers_regexp({placeholder}, {column}, {1 if insensitive else 0})"
    if family == "postgresql":
        return f"{column} {'~*' if insensitive else '~'} {placeholder}"
    # MariaDB's PCRE follows the column's collation unless told otherwise.
    flag = "(?i)" if insensitive else "(?-i)"
    return f"{column} REGEXP CONCAT('{flag}', {placeholder})"


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str, insensitive: int) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE if insensitive else 0)


def sqlite_regexp(pattern: Any, value: Any, insensitive: Any) -> int | None:
    """``registers_regexp(pattern, value, insensitive)``: SQLite's regex lookups."""
    if pattern is None or value is None:
        return None
    return 1 if _compiled(str(pattern), int(insensitive)).search(str(value)) else 0
