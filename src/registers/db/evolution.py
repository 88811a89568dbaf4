"""Schema evolution: adding a column to a live table, existing rows back-filled.

:class:`ColumnAdder` is what ``add_column`` / ``ensure_column`` run. It decides
everything before any DDL (the column's type, nullability and back-fill value, from the
model's field unless given), then adds the column, fills the existing rows and creates the
field's constraints and indexes in one step: one transaction on SQLite and PostgreSQL; on
MySQL/MariaDB, which commit each DDL statement, the value fills the rows inside the
``ALTER TABLE`` itself and an ``ADD COLUMN`` whose later step fails is undone.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from registers.db.errors import first_line
from registers.db.exceptions import MigrationError
from registers.db.metadata import IDENTIFIER_LIMIT
from registers.db.typing_utils import ColumnSpec, is_optional

__all__ = ["ColumnAdder"]

_FROM_MODEL: Any = type("_FromModel", (), {"__repr__": lambda self: "<from the model>"})()
"""Marks an ``add_column`` argument left to the model's field."""


class ColumnAdder:
    """Adds one column to a :class:`~registers.db.schema.SchemaManager`'s table."""

    def __init__(self, schema: Any) -> None:
        """``schema``: the table's :class:`~registers.db.schema.SchemaManager` (typed
        loosely: schema.py imports this module, not the other way round)."""
        self.config = schema.config
        self.database = schema.database
        self.table = schema.table
        self.model_name = schema.model_name
        self.database_dialect = schema.database_dialect
        self.live_columns = schema.live_columns
        self._connection = schema.connection
        self._fail = schema.fail

    def add(self, name: str, annotation: Any, nullable: bool | None, default: Any) -> None:
        """:meth:`SchemaManager.add_column`: plan everything, then run the DDL."""
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
                    factory = field_info.default_factory
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
                    f"({first_line(exc)})",
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


def _sqlite_literal(value: Any, name: str, manager: ColumnAdder) -> str:
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
