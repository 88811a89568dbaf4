"""Helpers for the registers.db tests (imported by conftest and by test modules)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from hypothesis import strategies as st

# Characters of text a database stores: no NUL and no lone surrogates (registers refuses
# both, tested on their own), for hypothesis strategies.
STORABLE_CHARS = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))


class StatementLog(list[str]):
    """The SQL statements seen by the engine while a ``count_statements`` block ran."""

    def matching(self, keyword: str) -> list[str]:
        """Statements whose first word is ``keyword`` (case-insensitive)."""
        keyword = keyword.upper()
        return [s for s in self if s.lstrip().split(None, 1)[0].upper() == keyword]

    connections: list[Any]


@contextmanager
def count_statements_on(url: str) -> Iterator[StatementLog]:
    from registers.db import get_engine

    log = StatementLog()
    log.connections = []
    engine = get_engine(url)

    def on_execute(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        log.append(statement)
        log.connections.append(conn)

    sa.event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield log
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_execute)


class RawSQL:
    """Direct access to a test database, bypassing the manager (to inspect or corrupt)."""

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def engine(self) -> sa.Engine:
        from registers.db import get_engine

        return get_engine(self.url)

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql), params or {})

    def rows(self, table: str, order_by: str = "id") -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            result = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order_by}"))
            return [dict(row._mapping) for row in result]

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params or {}).scalar()

    def columns(self, table: str) -> list[dict[str, Any]]:
        return list(sa.inspect(self.engine).get_columns(table))

    def column_names(self, table: str) -> list[str]:
        return [c["name"] for c in self.columns(table)]

    def has_table(self, table: str) -> bool:
        return sa.inspect(self.engine).has_table(table)


def by_id(records: Sequence[Any]) -> list[Any]:
    """Records sorted by their ``id`` (for comparisons that must ignore row order)."""
    return sorted(records, key=lambda r: r.id)
