"""DDL for registered models: build the table, create/drop it, evolve it, diff it."""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from registers.db.exceptions import MigrationError, SchemaError
from registers.db.metadata import IDENTIFIER_LIMIT
from registers.db.typing_utils import ColumnSpec, is_optional

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

_FROM_MODEL: Any = type("_FromModel", (), {"__repr__": lambda self: "<from the model>"})()
"""Marks an ``add_column`` argument left to the model's field."""


def build_table(config: RegistryConfig, metadata: sa.MetaData) -> sa.Table:
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
        # Managed keys are never handed out twice, even after the newest row is deleted.
        sqlite_autoincrement=config.managed_key,
    )


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
            # One real transaction (on SQLite too, whose connections run in autocommit
            # unless registers says BEGIN): a failed step leaves nothing behind.
            with self.database.transaction() as conn:
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
        keep_counter = self.database.family == "mysql" and bool(
            self.config and self.config.managed_key
        )
        try:
            with self._connection(write=True) as conn:
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
        plan = self._plan_column(name, annotation, nullable, default)
        try:
            with self._connection(write=True) as conn:
                self._add_planned_column(conn, plan)
        except (sa.exc.SQLAlchemyError, MigrationError) as exc:
            if self.database.family == "mysql" and plan.added:
                self._drop_half_added(name)
            if isinstance(exc, MigrationError):
                raise
            raise self._fail(f"add column {name!r} to", exc, MigrationError) from exc

    def _drop_half_added(self, name: str) -> None:
        """MySQL commits each DDL statement: undo the ADD COLUMN of a step that failed
        later (a CHECK or UNIQUE the old rows break), so nothing is half-applied."""
        with contextlib.suppress(Exception):
            if name in self.live_columns():
                quote = self.database_dialect().quote
                with self._connection(write=True) as conn:
                    conn.exec_driver_sql(
                        f"ALTER TABLE {quote(self.table.name)} DROP COLUMN {quote(name)}", ()
                    )

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

    # --- add_column internals -------------------------------------------------------

    def _migration_error(self, message: str, name: Any) -> MigrationError:
        return MigrationError(
            f"cannot add column {name!r} to table {self.table.name!r} of "
            f"{self.model_name}: {message}",
            model=self.model_name,
            table=self.table.name,
            field=name if isinstance(name, str) else None,
        )

    def _plan_column(
        self, name: Any, annotation: Any, nullable: bool | None, default: Any
    ) -> _ColumnPlan:
        if not isinstance(name, str) or not name.isidentifier():
            raise self._migration_error("not an identifier", name)
        if len(name.encode("utf-8")) > IDENTIFIER_LIMIT:
            raise self._migration_error(
                f"a column name has at most {IDENTIFIER_LIMIT} bytes in UTF-8", name
            )
        if name in self.live_columns():
            raise MigrationError(
                f"column {name!r} already exists in table {self.table.name!r}",
                model=self.model_name,
                table=self.table.name,
                field=name,
            )
        model_spec = self._model_spec(name)
        field_info = self.config.model.model_fields.get(name) if self.config else None
        if annotation is _FROM_MODEL:
            if model_spec is None:
                raise self._migration_error(
                    f"{self.model_name} has no field {name!r}: pass its annotation",
                    name,
                )
            spec = model_spec
        elif model_spec is not None and annotation == model_spec.annotation:
            spec = model_spec
        else:
            spec = ColumnSpec.from_field(name, FieldInfo.from_annotation(annotation))
            spec.indexed = model_spec.indexed if model_spec else False
        if nullable is None:
            nullable = spec.nullable or (model_spec is None and is_optional(spec.annotation))
        factory: Callable[[], Any] | None = None
        if default is _FROM_MODEL:
            default = None
            if field_info is not None and spec is model_spec:
                if field_info.default_factory is not None:
                    factory = field_info.default_factory  # type: ignore[assignment]
                elif not field_info.is_required():
                    default = field_info.default
        adapter: TypeAdapter[Any] = TypeAdapter(spec.value_annotation())
        to_db = spec.to_db(self.database.family)

        def stored(value: Any) -> Any:
            if value is None:
                return None
            try:
                value = adapter.validate_python(value)
                return value if to_db is None else to_db(value)
            except (ValidationError, ValueError) as exc:
                raise self._migration_error(
                    f"the default {value!r} is not a valid {spec.annotation!r} "
                    f"({_first_line(exc)})",
                    name,
                ) from None

        plan = _ColumnPlan(name, spec, nullable, stored(default), None)
        if factory is not None:
            plan.per_row = lambda: stored(factory())
        if plan.value is None and plan.per_row is None and not nullable:
            plan.needs_empty_table = True
        return plan

    def _model_spec(self, name: str) -> ColumnSpec | None:
        if self.config is None:
            return None
        return next((c for c in self.config.columns if c.name == name), None)

    def _add_planned_column(self, conn: sa.Connection, plan: _ColumnPlan) -> None:
        family = self.database.family
        quote = self.database_dialect().quote
        table, column = quote(self.table.name), quote(plan.name)
        key = quote(self.table.primary_key.columns[0].name) if self.table.primary_key.columns \
            else None
        if plan.needs_empty_table and conn.exec_driver_sql(
            f"SELECT 1 FROM {table} LIMIT 1", ()
        ).first() is not None:
            raise self._migration_error(
                "it is NOT NULL and the table has rows: give the field a default, pass "
                "default=..., or nullable=True",
                plan.name,
            )
        keys = [] if plan.per_row is None or key is None else [
            r[0] for r in conn.exec_driver_sql(f"SELECT {key} FROM {table}", ()).fetchall()
        ]
        first = plan.per_row() if plan.per_row is not None else plan.value
        column_type = plan.spec.column_type().compile(dialect=self.database.dialect)
        definition = f"ALTER TABLE {table} ADD COLUMN {column} {column_type}"
        not_null = "" if plan.nullable else " NOT NULL"
        check = self._check_of(plan.name)
        foreign_key = self._foreign_key_of(plan.name)
        if family == "sqlite":
            # SQLite cannot add NOT NULL or constraints later: they go into the column.
            literal = "" if first is None or plan.nullable else \
                f" DEFAULT {_sqlite_literal(first, plan.name, self)}"
            inline = ""
            if check is not None:
                inline += f" CONSTRAINT {quote(str(check.name))} CHECK ({check.sqltext})"
            if foreign_key is not None:
                if literal:
                    raise self._migration_error(
                        "SQLite can add a foreign key column only when it starts NULL "
                        "(declare the field `... | None = None`)",
                        plan.name,
                    )
                inline += " " + _sqlite_references(foreign_key, quote)
            conn.exec_driver_sql(f"{definition}{literal}{not_null}{inline}", ())
            if first is not None and plan.nullable:
                conn.exec_driver_sql(f"UPDATE {table} SET {column} = ?", (first,))
        elif family == "mysql":
            # MySQL commits DDL at once: the default fills every row within the ALTER
            # itself (PyMySQL binds it client-side), then stops being the default.
            ddl = definition
            if first is None:
                conn.exec_driver_sql(f"{ddl}{not_null}", ())
                plan.added = True
            else:
                conn.exec_driver_sql(f"{ddl} DEFAULT %s{not_null}", (first,))
                plan.added = True
                conn.exec_driver_sql(
                    f"ALTER TABLE {table} ALTER COLUMN {column} DROP DEFAULT", ()
                )
        else:
            conn.exec_driver_sql(definition, ())
            if first is not None:
                conn.exec_driver_sql(f"UPDATE {table} SET {column} = %s", (first,))
            if not plan.nullable:
                conn.exec_driver_sql(
                    f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL", ()
                )
        if keys and plan.per_row is not None:
            placeholder = "?" if family == "sqlite" else "%s"
            values = [(first, keys[0])] + [(plan.per_row(), k) for k in keys[1:]]
            conn.exec_driver_sql(
                f"UPDATE {table} SET {column} = {placeholder} WHERE {key} = {placeholder}",
                values,
            )
        if family != "sqlite":
            for constraint in (check, foreign_key):
                if constraint is not None:
                    conn.execute(sa.schema.AddConstraint(constraint))
        self._add_unique_and_indexes(conn, plan.name)

    def _check_of(self, name: str) -> sa.CheckConstraint | None:
        spec = self._model_spec(name)
        if spec is None or spec.options.check is None or self.config is None:
            return None
        wanted = self.config.name_of("ck", [name])
        return next(
            (c for c in self.table.constraints
             if isinstance(c, sa.CheckConstraint) and c.name == wanted),
            None,
        )

    def _foreign_key_of(self, name: str) -> sa.ForeignKeyConstraint | None:
        if self._model_spec(name) is None:
            return None
        return next(
            (c for c in self.table.foreign_key_constraints
             if [col.name for col in c.columns] == [name]),
            None,
        )

    def _add_unique_and_indexes(self, conn: sa.Connection, name: str) -> None:
        """The UNIQUE constraints and indexes the model declares on ``name`` whose
        columns all exist now."""
        live = set(self.live_columns_on(conn)) | {name}
        quote = self.database_dialect().quote
        for constraint in self.table.constraints:
            if not isinstance(constraint, sa.UniqueConstraint):
                continue
            columns = [c.name for c in constraint.columns]
            if name not in columns or not set(columns) <= live:
                continue
            if self.database.family == "sqlite":  # no ADD CONSTRAINT: a unique index
                conn.exec_driver_sql(
                    f"CREATE UNIQUE INDEX {quote(str(constraint.name))} ON "
                    f"{quote(self.table.name)} ({', '.join(quote(c) for c in columns)})",
                    (),
                )
            else:
                conn.execute(sa.schema.AddConstraint(constraint))
        for index in self.table.indexes:
            columns = [c.name for c in index.columns]
            if name in columns and set(columns) <= live:
                conn.execute(sa.schema.CreateIndex(index))

    def live_columns_on(self, conn: sa.Connection) -> list[str]:
        return [c["name"] for c in sa.inspect(conn).get_columns(self.table.name)]

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
        differences.extend(self._constraint_diff())
        return differences

    def _constraint_diff(self) -> list[ColumnDifference]:
        """UNIQUE constraints, indexes, CHECKs and foreign keys: model vs live table."""
        try:
            with self._connection(write=False) as conn:
                inspector = sa.inspect(conn)
                name = self.table.name
                live_uniques = inspector.get_unique_constraints(name)
                live_indexes = inspector.get_indexes(name)
                live_checks = inspector.get_check_constraints(name)
                live_fks = inspector.get_foreign_keys(name)
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail("inspect", exc) from exc
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


@dataclass
class _ColumnPlan:
    """What :meth:`SchemaManager.add_column` will do, decided before any DDL."""

    name: str
    spec: ColumnSpec
    nullable: bool
    value: Any  # the stored back-fill value (None: rows stay NULL)
    per_row: Callable[[], Any] | None  # a default_factory: one value per row
    needs_empty_table: bool = False
    added: bool = False  # the ADD COLUMN ran (MySQL: undo it if a later step fails)


def _sqlite_literal(value: Any, name: str, manager: SchemaManager) -> str:
    """A stored value as a SQLite literal (ADD COLUMN takes no bound parameters)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("9e999" if value > 0 else "-9e999")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"X'{bytes(value).hex()}'"
    text = str(value)
    if "\x00" in text:
        raise manager._migration_error("a default containing NUL cannot be added", name)
    return "'" + text.replace("'", "''") + "'"


def _sqlite_references(constraint: sa.ForeignKeyConstraint, quote: Callable[[str], str]) -> str:
    ref_table, ref_column = constraint.elements[0].target_fullname.split(".")
    sql = f"CONSTRAINT {quote(str(constraint.name))} REFERENCES {quote(ref_table)} " \
        f"({quote(ref_column)})"
    if constraint.ondelete:
        sql += f" ON DELETE {constraint.ondelete}"
    return sql


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
