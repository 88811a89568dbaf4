"""DDL for registered models: build the table, create/drop it, evolve it, diff it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from registers.db.exceptions import MigrationError, SchemaError
from registers.db.typing_utils import ColumnSpec, is_optional

if TYPE_CHECKING:
    from registers.db.engine import Database
    from registers.db.metadata import RegistryConfig

__all__ = ["ColumnDifference", "SchemaManager", "build_table"]


def build_table(config: RegistryConfig, metadata: sa.MetaData) -> sa.Table:
    """The SQLAlchemy ``Table`` for a model, added to ``metadata`` (replacing any old one)."""
    table_name = config.table_name
    assert table_name is not None
    existing = metadata.tables.get(table_name)
    if existing is not None:
        metadata.remove(existing)
    columns = [_column(table_name, spec, config.managed_key) for spec in config.columns]
    key = config.key_column.name
    return sa.Table(
        table_name,
        metadata,
        *columns,
        sa.PrimaryKeyConstraint(key, name=f"pk_{table_name}"),
        *[
            sa.UniqueConstraint(c.name, name=f"uq_{table_name}_{c.name}")
            for c in config.columns
            if c.unique and not c.primary_key
        ],
        # utf8mb4 whatever the server's default (emoji, any script); text columns are
        # binary NO PAD on top of this (typing_utils.ExactVarchar).
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def _column(table: str, spec: ColumnSpec, managed_key: bool) -> sa.Column[Any]:
    args: list[Any] = []
    if spec.options.foreign_key:
        ref_table, ref_column = spec.options.foreign_key.split(".")
        args.append(sa.ForeignKey(f"{ref_table}.{ref_column}", name=f"fk_{table}_{spec.name}"))
    return sa.Column(
        spec.name,
        spec.column_type(),
        *args,
        nullable=spec.nullable,
        autoincrement=bool(spec.primary_key and managed_key),
        index=spec.options.index or None,
    )


@dataclass(frozen=True)
class ColumnDifference:
    """One difference between a model and its live table."""

    kind: str  # "missing_column", "extra_column", "type_mismatch", "nullability_mismatch"
    column: str
    expected: str | None = None
    actual: str | None = None

    def __str__(self) -> str:
        detail = f" (model: {self.expected}, table: {self.actual})" if self.expected else ""
        return f"{self.kind.replace('_', ' ')}: {self.column}{detail}"


class SchemaManager:
    """DDL for one registered table."""

    def __init__(self, database: Database, table: sa.Table, model_name: str) -> None:
        self.database = database
        self.table = table
        self.model_name = model_name

    @property
    def _engine(self) -> sa.Engine:
        return self.database.engine

    @contextmanager
    def _connection(self, write: bool) -> Iterator[sa.Connection]:
        """The caller's transaction connection if inside ``transaction()``, else a new one.

        Inside a block, DDL joins the block (on SQLite a second connection would wait
        for the block's write lock).
        """
        tx = self.database.current_transaction()
        if tx is not None:
            yield tx.sa_connection
            return
        if write:
            with self._engine.begin() as conn:
                yield conn
        else:
            with self._engine.connect() as conn:
                yield conn

    def _fail(
        self, action: str, exc: Exception, cls: type[SchemaError] = SchemaError
    ) -> SchemaError:
        return cls(
            f"cannot {action} table {self.table.name!r} of {self.model_name} "
            f"({self.database.url.render_as_string(hide_password=True)}): {_first_line(exc)}",
            model=self.model_name,
            table=self.table.name,
        )

    def create(self) -> None:
        """Create the table and its indexes if missing (idempotent)."""
        try:
            with self._connection(write=True) as conn:
                self.table.create(conn, checkfirst=True)
        except sa.exc.SQLAlchemyError as exc:
            try:
                created_meanwhile = self.exists()  # another process may have won the race
            except SchemaError:
                created_meanwhile = False
            if not created_meanwhile:
                raise self._fail("create", exc) from exc

    def drop(self) -> None:
        """Drop the table if it exists."""
        try:
            with self._connection(write=True) as conn:
                self.table.drop(conn, checkfirst=True)
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail("drop", exc) from exc

    def exists(self) -> bool:
        try:
            with self._connection(write=False) as conn:
                return bool(sa.inspect(conn).has_table(self.table.name))
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail("inspect", exc) from exc

    def truncate(self) -> None:
        """Delete every row, keeping the table."""
        statements = self.database_dialect().truncate(self.table.name)
        try:
            with self._connection(write=True) as conn:
                for statement in statements:
                    conn.exec_driver_sql(statement)
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail("truncate", exc) from exc

    def database_dialect(self) -> Any:
        from registers.db.dialects import Dialect

        db = self.database
        return Dialect(db.family, db.dialect, db.placeholder)

    def live_columns(self) -> dict[str, dict[str, Any]]:
        try:
            with self._connection(write=False) as conn:
                inspector = sa.inspect(conn)
                if not inspector.has_table(self.table.name):
                    raise SchemaError(
                        f"table {self.table.name!r} of {self.model_name} does not exist",
                        model=self.model_name,
                        table=self.table.name,
                    )
                return {c["name"]: dict(c) for c in inspector.get_columns(self.table.name)}
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail("inspect", exc) from exc

    def add_column(self, name: str, annotation: Any, *, nullable: bool = True) -> None:
        """``ALTER TABLE ... ADD COLUMN``; :class:`MigrationError` if it exists or fails."""
        if not isinstance(name, str) or not name.isidentifier():
            raise MigrationError(
                f"cannot add column {name!r} to {self.table.name!r}: not an identifier",
                model=self.model_name,
                table=self.table.name,
            )
        if name in self.live_columns():
            raise MigrationError(
                f"column {name!r} already exists in table {self.table.name!r}",
                model=self.model_name,
                table=self.table.name,
                field=name,
            )
        from pydantic.fields import FieldInfo

        spec = ColumnSpec.from_field(name, FieldInfo.from_annotation(annotation))
        nullable = nullable or is_optional(annotation)
        column_type = spec.column_type().compile(dialect=self.database.dialect)
        quote = self.database_dialect().quote
        sql = (
            f"ALTER TABLE {quote(self.table.name)} ADD COLUMN {quote(name)} {column_type}"
            f"{'' if nullable else ' NOT NULL'}"
        )
        try:
            with self._connection(write=True) as conn:
                conn.exec_driver_sql(sql)
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail(f"add column {name!r} to", exc, MigrationError) from exc

    def ensure_column(self, name: str, annotation: Any, *, nullable: bool = True) -> bool:
        """Add the column unless it exists. Returns whether it was added."""
        if name in self.live_columns():
            return False
        self.add_column(name, annotation, nullable=nullable)
        return True

    def diff(self) -> list[ColumnDifference]:
        """Differences between the model and the live table (empty when they agree)."""
        live = self.live_columns()
        dialect = self.database.dialect
        differences: list[ColumnDifference] = []
        for column in self.table.columns:
            actual = live.get(column.name)
            if actual is None:
                differences.append(ColumnDifference("missing_column", column.name))
                continue
            expected_type = column.type.dialect_impl(dialect)
            if not _same_affinity(expected_type, actual["type"]):
                differences.append(
                    ColumnDifference(
                        "type_mismatch",
                        column.name,
                        str(expected_type.compile(dialect=dialect)),
                        str(actual["type"].compile(dialect=dialect)),
                    )
                )
            if not column.primary_key and bool(actual["nullable"]) != bool(column.nullable):
                differences.append(
                    ColumnDifference(
                        "nullability_mismatch",
                        column.name,
                        "NULL" if column.nullable else "NOT NULL",
                        "NULL" if actual["nullable"] else "NOT NULL",
                    )
                )
        for name in live:
            if name not in self.table.columns:
                differences.append(ColumnDifference("extra_column", name))
        return differences


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()
    return text[0] if text else type(original).__name__


def _same_affinity(expected: Any, actual: Any) -> bool:
    groups = (
        (sa.Integer, sa.Boolean),  # MySQL reflects BOOL as TINYINT
        (sa.String, sa.Text, sa.Enum),
        (sa.Float, sa.Numeric),
        (sa.DateTime,),
        (sa.Date,),
        (sa.Time,),
        (sa.LargeBinary,),
        (sa.JSON,),
        (sa.Uuid,),
    )
    for group in groups:
        if isinstance(expected, group):
            if isinstance(expected, sa.Boolean):
                return isinstance(actual, (sa.Boolean, sa.Integer))
            if isinstance(expected, sa.JSON):  # MariaDB's JSON is LONGTEXT with a CHECK
                return isinstance(actual, (sa.JSON, sa.String))
            return isinstance(actual, group) or type(actual).__name__ in ("NullType",)
    return True
