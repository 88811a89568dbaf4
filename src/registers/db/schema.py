"""DDL for registered models: build the table, create/drop it, evolve it, diff it."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from registers.db.evolution import _FROM_MODEL, ColumnAdder
from registers.db.exceptions import MigrationError, SchemaError
from registers.db.typing_utils import ColumnSpec

if TYPE_CHECKING:
    from registers.db.engine import Database
    from registers.db.metadata import RegistryConfig

__all__ = [
    "ColumnDifference",
    "SchemaManager",
    "build_table",
    "creation_deferred",
    "defer_creation",
]

_deferred: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "registers_defer_creation", default=False
)


@contextmanager
def defer_creation() -> Iterator[None]:
    """Register models without creating their tables, whatever their ``auto_create``.

    Migration tools import the models to read their tables; creating the tables there
    would make autogenerate find nothing to do (the tables already exist) and would run
    DDL outside the migration. ``registers db`` and :mod:`registers.db.migrations` import
    models inside this block.
    """
    token = _deferred.set(True)
    try:
        yield
    finally:
        _deferred.reset(token)


def creation_deferred() -> bool:
    """Whether models registered now skip ``auto_create`` (inside :func:`defer_creation`)."""
    return _deferred.get()



def build_table(config: RegistryConfig, metadata: sa.MetaData, family: str) -> sa.Table:
    """The SQLAlchemy ``Table`` for a model, added to ``metadata`` (replacing any old one).

    Every constraint and index registers creates is named here (see
    :func:`~registers.db.metadata.constraint_name`), so errors and ``schema_diff()`` can
    tell which declaration a database object comes from.
    """
    table_name = config.table_name
    assert table_name is not None
    existing = metadata.tables.get(table_name)
    if existing is not None:
        metadata.remove(existing)
    columns = [_column(config, spec) for spec in config.columns]
    key = config.key_column.name
    return sa.Table(
        table_name,
        metadata,
        *columns,
        sa.PrimaryKeyConstraint(key, name=config.name_of("pk")),
        *[
            sa.UniqueConstraint(*group, name=config.name_of("uq", group))
            for group in config.unique_sets
        ],
        *[
            sa.CheckConstraint(spec.options.check, name=config.name_of("ck", [spec.name]))
            for spec in config.columns
            if spec.options.check is not None
        ],
        *[
            sa.Index(config.name_of("ix", group), *group)
            for group in config.index_sets
        ],
        **_table_options(config, family),
    )


def _table_options(config: RegistryConfig, family: str) -> dict[str, Any]:
    """The table options of the backend in use, and only those: SQLAlchemy imports the
    dialect of every option it is given (to check it), and the MySQL dialect alone is a
    good part of ``import registers.db``'s cost in a SQLite application."""
    if family == "sqlite":
        # Managed keys are never handed out twice, even after the newest row is deleted.
        return {"sqlite_autoincrement": config.managed_key}
    if family == "mysql":
        # utf8mb4 whatever the server's default (emoji, any script); text columns are
        # binary NO PAD on top of this (column_types.ExactVarchar).
        return {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
    return {}


def _column(config: RegistryConfig, spec: ColumnSpec) -> sa.Column[Any]:
    args: list[Any] = []
    if spec.options.foreign_key:
        ref_table, ref_column = spec.options.foreign_key.split(".")
        args.append(sa.ForeignKey(
            f"{ref_table}.{ref_column}",
            name=config.name_of("fk", [spec.name]),
            ondelete=spec.options.on_delete.upper() if spec.options.on_delete else None,
        ))
    return sa.Column(
        spec.name,
        spec.column_type(),
        *args,
        nullable=spec.nullable,
        autoincrement=bool(spec.primary_key and config.managed_key),
    )


@dataclass(frozen=True)
class ColumnDifference:
    """One difference between a model and its live table."""

    kind: str
    """``missing_column``, ``extra_column``, ``type_mismatch``, ``nullability_mismatch``,
    ``missing_unique``, ``extra_unique``, ``missing_index``, ``extra_index``,
    ``missing_check``, ``extra_check``, ``missing_foreign_key``, ``extra_foreign_key`` or
    ``foreign_key_mismatch``."""
    column: str  # the column, or the columns of a constraint joined by ", "
    expected: str | None = None
    actual: str | None = None

    def __str__(self) -> str:
        detail = f" (model: {self.expected}, table: {self.actual})" if self.expected else ""
        return f"{self.kind.replace('_', ' ')}: {self.column}{detail}"


class SchemaManager:
    """DDL for one registered table."""

    def __init__(
        self,
        database: Database,
        table: sa.Table,
        model_name: str,
        config: RegistryConfig | None = None,
    ) -> None:
        self.database = database
        self.table = table
        self.model_name = model_name
        self.config = config

    @property
    def _engine(self) -> sa.Engine:
        return self.database.engine

    def column_names(self) -> list[str]:
        """The model's column names, in field order (as declared, not as reflected)."""
        return [column.name for column in self.table.columns]

    @contextmanager
    def connection(self, write: bool) -> Iterator[sa.Connection]:
        """The caller's transaction connection if inside ``transaction()``, else a new one.

        Inside a block, DDL joins the block (on SQLite a second connection would wait
        for the block's write lock).
        """
        database = self.database
        if database.pending_tables:
            database.create_pending()
        tx = database.current_transaction()
        if tx is not None:
            yield tx.sa_connection
            return
        if write:
            # One real transaction (on SQLite too, whose connections run in autocommit
            # unless registers says BEGIN): a failed step leaves nothing behind.
            with self.database.transaction() as conn:
                yield conn
        else:
            with self._engine.connect() as conn:
                yield conn

    def fail(
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
            with self.connection(write=True) as conn:
                self.table.create(conn, checkfirst=True)
        except sa.exc.SQLAlchemyError as exc:
            try:
                created_meanwhile = self.exists()  # another process may have won the race
            except SchemaError:
                created_meanwhile = False
            if not created_meanwhile:
                raise self.fail("create", exc) from exc

    def drop(self) -> None:
        """Drop the table if it exists."""
        try:
            with self.connection(write=True) as conn:
                self.table.drop(conn, checkfirst=True)
        except sa.exc.SQLAlchemyError as exc:
            raise self.fail("drop", exc) from exc

    def exists(self) -> bool:
        try:
            with self.connection(write=False) as conn:
                return bool(sa.inspect(conn).has_table(self.table.name))
        except sa.exc.SQLAlchemyError as exc:
            raise self.fail("inspect", exc) from exc

    def truncate(self) -> None:
        """Delete every row, keeping the table."""
        statements = self.database_dialect().truncate(self.table.name)
        keep_counter = self.database.family == "mysql" and bool(
            self.config and self.config.managed_key
        )
        try:
            with self.connection(write=True) as conn:
                # MySQL's TRUNCATE restarts AUTO_INCREMENT: put it back, so no key is
                # handed out twice (SQLite's AUTOINCREMENT and PostgreSQL's sequence
                # already keep counting).
                counter = conn.exec_driver_sql(
                    "SELECT AUTO_INCREMENT FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
                    (self.table.name,),
                ).scalar() if keep_counter else None
                for statement in statements:
                    conn.exec_driver_sql(statement, ())
                if counter:
                    quote = self.database_dialect().quote
                    conn.exec_driver_sql(
                        f"ALTER TABLE {quote(self.table.name)} AUTO_INCREMENT = {int(counter)}",
                        (),
                    )
        except sa.exc.SQLAlchemyError as exc:
            raise self.fail("truncate", exc) from exc

    def database_dialect(self) -> Any:
        from registers.db.dialects import Dialect

        db = self.database
        return Dialect(db.family, db.dialect, db.placeholder)

    def live_columns(self) -> dict[str, dict[str, Any]]:
        try:
            with self.connection(write=False) as conn:
                inspector = sa.inspect(conn)
                if not inspector.has_table(self.table.name):
                    raise SchemaError(
                        f"table {self.table.name!r} of {self.model_name} does not exist",
                        model=self.model_name,
                        table=self.table.name,
                    )
                return {c["name"]: dict(c) for c in inspector.get_columns(self.table.name)}
        except sa.exc.SQLAlchemyError as exc:
            raise self.fail("inspect", exc) from exc

    def add_column(
        self,
        name: str,
        annotation: Any = _FROM_MODEL,
        *,
        nullable: bool | None = None,
        default: Any = _FROM_MODEL,
    ) -> None:
        """``ALTER TABLE ... ADD COLUMN``, existing rows back-filled, in one step.

        For a field of the model, ``annotation``, ``nullable`` and ``default`` come from
        the field unless given, and the field's UNIQUE, index, CHECK and foreign key are
        created with the column. Existing rows get ``default`` (a ``default_factory`` is
        called once per row), so a model read afterwards always validates.

        Raises:
            MigrationError: the column exists, the name is not an identifier, the column
                is NOT NULL with no default on a table that has rows, the default is not
                a valid value, or the database refused the change (nothing is changed).
        """
        ColumnAdder(self).add(name, annotation, nullable, default)

    def ensure_column(
        self,
        name: str,
        annotation: Any = _FROM_MODEL,
        *,
        nullable: bool | None = None,
        default: Any = _FROM_MODEL,
    ) -> bool:
        """Add the column (as :meth:`add_column`) unless it exists. Returns whether it was
        added."""
        if isinstance(name, str) and name in self.live_columns():
            return False
        try:
            self.add_column(name, annotation, nullable=nullable, default=default)
        except MigrationError:
            # Several processes ensuring the same column at start-up: one adds it.
            if isinstance(name, str) and name in self.live_columns():
                return False
            raise
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
                        str(column.type.compile(dialect=dialect)),  # the DDL, variants too
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
        differences.extend(self._constraint_diff())
        return differences

    def _constraint_diff(self) -> list[ColumnDifference]:
        """UNIQUE constraints, indexes, CHECKs and foreign keys: model vs live table."""
        try:
            with self.connection(write=False) as conn:
                inspector = sa.inspect(conn)
                name = self.table.name
                live_uniques = inspector.get_unique_constraints(name)
                live_indexes = inspector.get_indexes(name)
                live_checks = inspector.get_check_constraints(name)
                live_fks = inspector.get_foreign_keys(name)
        except sa.exc.SQLAlchemyError as exc:
            raise self.fail("inspect", exc) from exc
        differences: list[ColumnDifference] = []

        def compare(kind: str, expected: dict[Any, str], actual: dict[Any, str],
                    extra_too: bool = True) -> None:
            for item, label in expected.items():
                if item not in actual:
                    differences.append(ColumnDifference(f"missing_{kind}", label))
            if extra_too:
                for item, label in actual.items():
                    if item not in expected:
                        differences.append(ColumnDifference(f"extra_{kind}", label))

        def label(columns: Any) -> str:
            return ", ".join(columns)

        fk_names = {fk.get("name") for fk in live_fks}
        compare(
            "unique",
            {tuple(sorted(c.name for c in uc.columns)): label(c.name for c in uc.columns)
             for uc in self.table.constraints if isinstance(uc, sa.UniqueConstraint)},
            {
                **{tuple(sorted(uc["column_names"])): label(uc["column_names"])
                   for uc in live_uniques},
                **{tuple(sorted(ix["column_names"])): label(ix["column_names"])
                   for ix in live_indexes if ix.get("unique")},
            },
        )
        compare(
            "index",
            {tuple(c.name for c in ix.columns): label(c.name for c in ix.columns)
             for ix in self.table.indexes},
            {tuple(ix["column_names"]): label(ix["column_names"]) for ix in live_indexes
             # MySQL backs each foreign key with an index of the constraint's name.
             if not ix.get("unique") and ix.get("name") not in fk_names
             and None not in ix["column_names"]},
        )
        expected_checks = {
            str(ck.name): str(ck.name) for ck in self.table.constraints
            if isinstance(ck, sa.CheckConstraint) and ck.name
            and str(ck.name).startswith("ck_")
        }
        compare(
            "check",
            expected_checks,
            # Only registers' own names: MariaDB adds a CHECK to every JSON column.
            {str(ck["name"]): str(ck["name"]) for ck in live_checks
             if str(ck.get("name") or "").startswith("ck_")},
        )
        expected_fks = {
            _fk_key([c.name for c in fk.columns], fk.elements[0].target_fullname,
                    fk.ondelete): label(c.name for c in fk.columns)
            for fk in self.table.foreign_key_constraints
        }
        actual_fks = {
            _fk_key(fk["constrained_columns"],
                    f"{fk['referred_table']}.{','.join(fk['referred_columns'])}",
                    (fk.get("options") or {}).get("ondelete")): label(fk["constrained_columns"])
            for fk in live_fks
        }
        for item, columns in list(expected_fks.items()):
            other = next((k for k in actual_fks if k[0] == item[0] and k != item), None)
            if other is not None and item not in actual_fks:
                differences.append(ColumnDifference(
                    "foreign_key_mismatch", columns, _fk_text(item), _fk_text(other)
                ))
                del expected_fks[item], actual_fks[other]
        compare("foreign_key", expected_fks, actual_fks)
        return differences


def _fk_key(columns: Any, target: str, ondelete: str | None) -> tuple[Any, ...]:
    # RESTRICT and NO ACTION (the default) both refuse the delete of a referenced row.
    action = (ondelete or "").upper()
    return (tuple(columns), target, "" if action in ("", "RESTRICT", "NO ACTION") else action)


def _fk_text(key: tuple[Any, ...]) -> str:
    return f"-> {key[1]}" + (f" ON DELETE {key[2]}" if key[2] else "")


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
        (sa.types._Binary,),  # every binary type: MySQL's LONGBLOB is no LargeBinary
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
