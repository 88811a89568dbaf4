"""Statement building: the SQL of every manager operation on one table.

:class:`Statements` builds the fixed statements once per table (select, get by key,
insert, delete, upserts per conflict target) and the variable ones from validated
criteria (through :class:`~registers.db.query.QueryCompiler`, so identifiers are
allow-listed and values always bound). Nothing here talks to the database; the flows
(:mod:`registers.db.flows`) and the operations send what is built here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from registers.db.dialects import Dialect
from registers.db.engine import Database
from registers.db.query import Q, QueryCompiler

__all__ = ["IN_CHUNK", "Described", "Statement", "Statements", "unique_name"]

# Values bound in one ``IN (...)`` list (every backend accepts this many parameters).
IN_CHUNK = 5000


# Characters of text and bytes per MySQL/MariaDB multi-row statement: as UTF-8 (up to 4
# bytes a character) and escaped, well under the default max_allowed_packet of 16 MiB.
_MYSQL_BATCH_CHARS = 2 * 1024 * 1024
_UNNEST_ROWS = 10_000  # rows per PostgreSQL bulk INSERT ... SELECT FROM unnest(...)
_NAME_IDS = itertools.count(1)


def unique_name(prefix: str) -> str:
    """A name for a savepoint or server-side cursor that nothing else in the process has."""
    return f"{prefix}{next(_NAME_IDS)}"


class Statement(NamedTuple):
    """One SQL statement and its parameters (a sequence of rows when ``many``)."""

    sql: str
    params: Any = ()
    many: bool = False


class Described(Statement):
    """A statement whose result must carry its column names (``raw()``)."""

    __slots__ = ()


class Pages:
    """One ordering's pages: the first page's ``SELECT``, then after each page the one
    that continues past its last row (keyset pagination: linear in the row count and
    exact with ties and NULLs, under the NULL rule of ``QueryCompiler.order_sql``).

    On PostgreSQL (``by_cursor``) the rows after a full first page are read through one
    server-side cursor over :meth:`rest` instead: a keyset page is a fresh query whose
    plan depends on the table's statistics, and without them (a table just loaded,
    autovacuum off) PostgreSQL sorts the whole table for every page.
    """

    def __init__(self, st: Statements, where: str, params: list[Any],
                 terms: list[tuple[Any, bool]], batch_size: int) -> None:
        self.st = st
        self.where = where
        self.params = params
        self.terms = terms
        self.batch_size = batch_size
        self.indexes = [st.names.index(entry.spec.name) for entry, _ in terms]
        self.order = st.query.order_sql(terms)
        self.first = (f"{st.select}{where}{self.order} LIMIT {batch_size}", params)
        self.by_cursor = st.family == "postgresql"

    def rest(self, row: Sequence[Any]) -> tuple[str, list[Any]]:
        """Every row that sorts after ``row``, in order (for a server-side cursor)."""
        return self.after(row, limit=False)

    @staticmethod
    def cursor_name() -> str:
        """A server-side cursor name no other cursor of the process has."""
        return unique_name("registers_rows_")

    def after(self, row: Sequence[Any], limit: bool = True) -> tuple[str, list[Any]]:
        """The next page: rows that sort after ``row`` (a raw row of this table)."""
        p = self.st.dialect.placeholder
        params = list(self.params)
        alternatives = []
        equal: list[tuple[str, list[Any]]] = []  # the earlier terms hold the row's values
        for (entry, descending), index in zip(self.terms, self.indexes):
            value = row[index]
            if value is not None and entry.compare_param is not None:
                value = entry.compare_param(value)
            column = entry.compared
            if value is None:
                beyond = None if descending else f"{column} IS NOT NULL"
                same = f"{column} IS NULL"
                beyond_params: list[Any] = []
            else:
                beyond = f"({column} < {p} OR {column} IS NULL)" if descending else \
                    f"{column} > {p}"
                same = f"{column} = {p}"
                beyond_params = [value]
            if beyond is not None:
                alternatives.append(" AND ".join([*(e for e, _ in equal), beyond]))
                params.extend([v for _, vs in equal for v in vs] + beyond_params)
            equal.append((same, [] if value is None else [value]))
        glue = " AND " if self.where else " WHERE "
        keyset = " OR ".join(f"({a})" for a in alternatives) or "1 = 0"
        lead, lead_params = self._lead(row)
        params[len(self.params):len(self.params)] = lead_params
        tail = f"{self.order} LIMIT {self.batch_size}" if limit else self.order
        return f"{self.st.select}{self.where}{glue}{lead}({keyset}){tail}", params

    def _lead(self, row: Sequence[Any]) -> tuple[str, list[Any]]:
        """A bound on the first term that every alternative of the keyset implies
        (``age >= ?`` before ``age > ? OR (age = ? AND id > ?)``): an index range the
        planners seek to, where the OR alone makes SQLite and PostgreSQL scan the index
        from its start on every page (quadratic in the row count)."""
        if len(self.terms) < 2:
            return "", []  # the key alone: ``id > ?`` is a range already
        (entry, descending), value = self.terms[0], row[self.indexes[0]]
        if value is None or (descending and self.st.query.may_be_null(entry)):
            return "", []  # NULLs sort first: no bound leaves them out
        if entry.compare_param is not None:
            value = entry.compare_param(value)
        p = self.st.dialect.placeholder
        return f"{entry.compared} {'<=' if descending else '>='} {p} AND ", [value]


class Statements:
    """The SQL of one table, built once where it is fixed."""

    def __init__(self, table_name: str, names: Sequence[str], key: str, managed_key: bool,
                 key_is_int: bool, dialect: Dialect, query: QueryCompiler,
                 database: Database, keep: Sequence[str] = ()) -> None:
        self.dialect = dialect
        # Written by the insert only, never by an upsert's update branch (auto_now_add).
        self.keep = tuple(keep)
        self.query = query
        self.names = list(names)
        self.key = key
        self.managed_key = managed_key
        self.key_is_int = key_is_int
        self.is_sqlite = database.is_sqlite
        self.family = database.family
        self.database = database
        self._pg_types: dict[str, str] | None = None
        q, p = dialect.quote, dialect.placeholder
        self.table = q(table_name)
        self.table_name = table_name
        self.quoted_key = q(key)
        self.select_list = ", ".join(q(n) for n in names)
        self.select = f"SELECT {self.select_list} FROM {self.table}"
        self.get = f"{self.select} WHERE {self.quoted_key} = {p}"
        self.exists_head = f"SELECT 1 FROM {self.table}"
        self.count_head = f"SELECT COUNT(*) FROM {self.table}"
        self.delete = f"DELETE FROM {self.table} WHERE {self.quoted_key} = {p}"
        self.insert_names = [n for n in names if n != key]
        self.insert_full = self.insert(self.names)
        self.insert_nokey = self.insert(self.insert_names)
        self._upserts: dict[tuple[Any, ...], str] = {}
        # PostgreSQL: the arguments of ``pg_get_serial_sequence`` for the key's sequence,
        # and a ``RETURNING`` term of an upsert with an explicit key, true when it
        # inserted a key the sequence has not reached (the sequence must then move past
        # it; the term takes ``sequence_args``). Read from the sequence in the same
        # statement, so nothing about the sequence is remembered between calls (it may
        # have been reset, by ``TRUNCATE ... RESTART IDENTITY`` say).
        self.sequence_args = (self.table, key)
        self.passed_sequence = (
            f"(xmax = 0 AND {self.quoted_key} > COALESCE(pg_sequence_last_value("
            "pg_get_serial_sequence(%s, %s)::regclass), 0))")

    def insert(self, names: Sequence[str]) -> str:
        """``INSERT`` of ``names`` (with ``RETURNING`` the generated key where supported)."""
        q = self.dialect.quote
        if not names:  # only a generated key
            sql = self.dialect.insert_defaults(self.table)
        else:
            sql = (
                f"INSERT INTO {self.table} ({', '.join(q(n) for n in names)}) "
                f"VALUES ({self.dialect.params(len(names))})"
            )
        if self.dialect.insert_returning and self.managed_key:
            sql += f" RETURNING {self.quoted_key}"
        return sql

    def upsert(self, with_key: bool, conflict: tuple[str, ...], returning: bool | str = True,
               keep: tuple[str, ...] | None = None, assign: tuple[str, ...] = ()) -> str:
        """One atomic insert-or-update on the ``conflict`` columns (cached per shape).

        ``keep``: the columns the update branch leaves alone (default: the
        ``auto_now_add`` ones); ``assign``: further ``SET`` terms (see ``Dialect.upsert``).
        """
        shape = (with_key, conflict, returning, keep, assign)
        cached = self._upserts.get(shape)
        if cached is None:
            names = self.names if with_key else self.insert_names
            cached = self.dialect.upsert(
                self.table_name, names, conflict, self.key, self.key_is_int, returning,
                keep=self.keep if keep is None else keep, assign=assign,
            )
            if len(self._upserts) >= 512:  # shapes come from code, but stay bounded
                self._upserts.clear()
            self._upserts[shape] = cached
        return cached

    def kept(self, with_key: bool, target: tuple[str, ...], given: Any,
             auto_now: Sequence[str], also: Any = ()) -> tuple[str, ...] | None:
        """The columns an upsert's update branch leaves alone when the caller gave only
        the fields ``given`` (``also``: columns the update sets otherwise, by
        ``on_conflict``); None when it sets every column it sets by default."""
        names = self.names if with_key else self.insert_names
        fixed = (*target, self.key, *self.keep)
        left = [n for n in names if n not in fixed and (n in also or (
            n not in given and n not in auto_now))]
        if not left:
            return None
        return tuple(n for n in names if n in fixed or n in left)

    # --- reads ------------------------------------------------------------------------

    def select_where(self, criteria: Mapping[str, Any], order_by: Any, limit: int | None,
                     offset: int | None, reverse: bool = False,
                     q: Sequence[Q] = ()) -> tuple[str, list[Any]]:
        """``SELECT`` of whole rows matching ``q`` and ``criteria``, ordered and paged
        (compiled once per shape: see ``QueryCompiler.select_statement``)."""
        # every read has one defined order, the same on every backend: key order
        # without order_by (the compiler breaks ties of order_by by the key)
        sql, params, _ = self.query.select_statement(
            ((q, criteria),), self.key if order_by is None else order_by, reverse=reverse,
            limit=limit, offset=offset)
        return sql, params

    def pages(self, criteria: Mapping[str, Any], order_by: Any, batch_size: int,
              q: Sequence[Q] = ()) -> Pages:
        """Keyset pagination of the rows matching ``q`` and ``criteria`` in ``order_by``
        order (the key breaks ties), ``batch_size`` rows a page."""
        where, params = self.query.where(criteria, q)
        return Pages(self, where, params, self.ordering(order_by), batch_size)

    def ordering(self, order_by: Any, reverse: bool = False) -> list[tuple[Any, bool]]:
        """The terms of ``order_by``, then the key (which breaks ties): every read has
        one defined order, the same on every backend (key order without ``order_by``)."""
        terms = self.query.order_terms(order_by, reverse)
        if all(entry.spec.name != self.key for entry, _ in terms):
            terms.append((self.query.field(self.key), reverse))
        return terms

    def keys_for(self, field: str, count: int) -> str:
        """(value, key) of the rows whose ``field`` is one of ``count`` values."""
        q = self.dialect.quote
        return (
            f"SELECT {q(field)}, {self.quoted_key} FROM {self.table} "
            f"WHERE {q(field)} IN ({self.dialect.params(count)})"
        )

    def keys_for_sets(self, fields: Sequence[str], count: int) -> str:
        """(values..., key) of the rows whose ``fields`` hold one of ``count`` value
        tuples (a composite unique set)."""
        q = self.dialect.quote
        match = f"({self.dialect.match(fields)})"
        return (
            f"SELECT {', '.join(q(f) for f in fields)}, {self.quoted_key} FROM {self.table} "
            f"WHERE {' OR '.join([match] * count)}"
        )

    # --- writes -----------------------------------------------------------------------

    def update(self, set_sql: str, where: str) -> str:
        return f"UPDATE {self.table} SET {set_sql}{where}"

    def update_joined(self, set_sql: str, count: int) -> str:
        """MySQL: ``UPDATE`` of ``count`` keys whose ``SET`` reads the old row through a
        self-join (aliases ``registers_row`` / ``registers_old``, see flows.py)."""
        new, old = "registers_row", "registers_old"
        return (
            f"UPDATE {self.table} AS {new} JOIN {self.table} AS {old} "
            f"ON {old}.{self.quoted_key} = {new}.{self.quoted_key} SET {set_sql} "
            f"WHERE {new}.{self.quoted_key} IN ({self.dialect.params(count)})"
        )

    def update_returning(self, set_sql: str, where: str) -> str:
        return f"{self.update(set_sql, where)} RETURNING {self.select_list}"

    def lock_keys(self, where: str) -> str:
        """The keys of the rows matching ``where``, locked for update."""
        return f"SELECT {self.quoted_key} FROM {self.table}{where} FOR UPDATE"

    def lock_by(self, fields: Sequence[str]) -> str:
        """The key of the row whose ``fields`` hold given values, locked for update."""
        return (
            f"SELECT {self.quoted_key} FROM {self.table} WHERE {self.dialect.match(fields)} "
            "FOR UPDATE"
        )

    def key_in(self, count: int) -> str:
        return f" WHERE {self.quoted_key} IN ({self.dialect.params(count)})"

    def update_by_key(self, names: Sequence[str]) -> str:
        q, p = self.dialect.quote, self.dialect.placeholder
        sets = ", ".join(f"{q(n)} = {p}" for n in names)
        return f"UPDATE {self.table} SET {sets} WHERE {self.quoted_key} = {p}"

    def delete_where(self, criteria: Mapping[str, Any],
                     q: Sequence[Q] = ()) -> tuple[str, list[Any]]:
        where, params = self.query.where(criteria, q)
        return f"DELETE FROM {self.table}{where}", params

    def sync_sequence(self) -> Statement:
        """PostgreSQL: move the key sequence past the largest key (after explicit keys),
        never backwards (a deleted key is not handed out again). Returns the new value."""
        seq = "pg_get_serial_sequence(%s, %s)"
        return Statement(
            f"SELECT setval({seq}, GREATEST((SELECT COALESCE(MAX({self.quoted_key}), 0) "
            f"FROM {self.table}), COALESCE(pg_sequence_last_value({seq}::regclass), 0), 1))",
            (*self.sequence_args, *self.sequence_args),
        )

    def upsert_telling_insert(self, conflict: tuple[str, ...]) -> str:
        """PostgreSQL upsert with a known key returning :attr:`passed_sequence`."""
        return self.upsert(True, conflict, returning=self.passed_sequence)

    def batch_size(self, width: int) -> int:
        """Rows per multi-row statement for rows of ``width`` parameters."""
        limit = 32_000 if self.is_sqlite else 60_000
        return max(1, min(1000, limit // max(width, 1)))

    def chunks(self, rows: Sequence[Sequence[Any]], width: int
               ) -> Iterator[Sequence[Sequence[Any]]]:
        """``rows`` cut into multi-row statements of at most :meth:`batch_size` rows; on
        MySQL/MariaDB also of at most ``_MYSQL_BATCH_CHARS`` characters of text and bytes,
        since a statement over the server's ``max_allowed_packet`` (16 MiB by default)
        makes it drop the connection."""
        size = self.batch_size(width)
        if self.family != "mysql":
            for start in range(0, len(rows), size):
                yield rows[start:start + size]
            return
        batch: list[Sequence[Any]] = []
        used = 0
        for row in rows:
            weight = sum(len(v) for v in row if isinstance(v, (str, bytes)))
            if batch and (len(batch) == size or used + weight > _MYSQL_BATCH_CHARS):
                yield batch
                batch, used = [], 0
            batch.append(row)
            used += weight
        if batch:
            yield batch

    def _unnest_inserts(self, names: Sequence[str], rows: Sequence[Sequence[Any]]
                        ) -> Iterator[tuple[Statement, int]]:
        """PostgreSQL: ``INSERT ... SELECT * FROM unnest(%b::type[], ...) RETURNING key``,
        one array parameter per column, so a batch of any size is one short statement
        (measured 3x faster than a 1,000-row ``VALUES`` list, and than ``executemany``).
        The arrays go in binary (``%b``): psycopg dumps a text array about twice as fast
        that way, with no quoting to check per element. The keys come back in row order:
        the rows are inserted in array order and the sequence hands out increasing values
        within one statement."""
        types = self._pg_types
        if types is None or any(n not in types for n in names):  # first use, or a new column
            types = self._pg_types = self._column_types()
        q = self.dialect.quote
        sql = (f"INSERT INTO {self.table} ({', '.join(q(n) for n in names)}) "
               f"SELECT * FROM unnest({', '.join(f'%b::{types[n]}[]' for n in names)}) "
               f"RETURNING {self.quoted_key}")
        for start in range(0, len(rows), _UNNEST_ROWS):
            batch = rows[start:start + _UNNEST_ROWS]
            yield Statement(sql, [list(column) for column in zip(*batch)]), len(batch)

    def _column_types(self) -> dict[str, str]:
        """Each column's PostgreSQL type, as its table declares it."""
        table = self.database.metadata.tables[self.table_name]
        dialect = self.database.dialect
        return {c.name: c.type.compile(dialect=dialect) for c in table.columns}

    def multi_row_inserts(
        self, names: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> Iterator[tuple[Statement, int]]:
        """Batched multi-row INSERTs (with RETURNING the key where supported), and the
        row count of each."""
        q = self.dialect.quote
        if self.family == "postgresql" and names:
            yield from self._unnest_inserts(names, rows)
            return
        head = f"INSERT INTO {self.table} ({', '.join(q(n) for n in names)}) VALUES "
        one = f"({self.dialect.params(len(names))})"
        tail = f" RETURNING {self.quoted_key}" if self.dialect.insert_returning else ""
        for batch in self.chunks(rows, len(names)):
            sql = head + ", ".join([one] * len(batch)) + tail
            yield Statement(sql, [v for row in batch for v in row]), len(batch)
