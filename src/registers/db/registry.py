"""``DatabaseRegistry``: the manager behind ``Model.objects`` (reads and writes).

The hot path is deliberately flat: each table's statements are built once here, values
are converted by per-column codecs chosen once, and each operation is one connection
acquisition and one ``cursor.execute`` (see :mod:`registers.db.engine`).
"""

from __future__ import annotations

import contextlib
import itertools
import operator
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import SchemaValidator

from registers.db.aio import AsyncOperations
from registers.db.dialects import Dialect, classify_integrity_error, is_transient
from registers.db.engine import Database, get_database
from registers.db.exceptions import (
    ConstraintError,
    DatabaseError,
    DuplicateKeyError,
    ImmutableFieldError,
    InvalidPrimaryKeyAssignmentError,
    InvalidQueryError,
    RecordNotFoundError,
    RegistryError,
    SchemaError,
    UniqueConstraintError,
)
from registers.db.metadata import RegistryConfig
from registers.db.query import Expression, QueryCompiler
from registers.db.schema import ColumnDifference, SchemaManager, build_table
from registers.db.security import hash_password, is_password_hash
from registers.db.typing_utils import _sqlite_float

__all__ = ["DatabaseRegistry"]

M = TypeVar("M", bound=BaseModel)

# Key of a record as last read from / written to the database, kept in the instance's
# __dict__ (pydantic ignores non-field entries there in ==, repr and dumps).
PERSISTED_KEY = "__registers_persisted_key__"
_MISSING = object()
_IN_CHUNK = 5000
_RETRIES = 6
_SAVEPOINT_IDS = itertools.count(1)


class DatabaseRegistry(AsyncOperations, Generic[M]):
    """Persistence for one pydantic model: ``Model.objects``.

    Usable without the decorator::

        users = DatabaseRegistry(User, "app.db", unique_fields=["email"])
        users.create(name="Ada", email="ada@example.com")
    """

    def __init__(
        self,
        model: type[M],
        database_url: str | None = None,
        *,
        table_name: str | None = None,
        key_field: str = "id",
        manager_attr: str = "objects",
        auto_create: bool = True,
        autoincrement: bool = False,
        unique_fields: Sequence[str] = (),
    ) -> None:
        config = RegistryConfig(
            model,
            database_url,
            table_name,
            key_field,
            manager_attr,
            auto_create,
            autoincrement,
            tuple(unique_fields),
        )
        self.config = config
        self.model: type[M] = model
        self.model_name = model.__name__
        self.table_name: str = config.table_name or ""
        self.database: Database = get_database(config.url)
        self.table: sa.Table = build_table(config, self.database.metadata)
        self.schema = SchemaManager(self.database, self.table, self.model_name)
        self.dialect = Dialect(
            self.database.family, self.database.dialect, self.database.placeholder
        )
        self.query = QueryCompiler(self.model_name, self.table_name, config.columns, self.dialect)
        self._prepare()
        if auto_create:
            self.create_schema()

    # --- preparation ----------------------------------------------------------------

    def _prepare(self) -> None:
        """Build every fixed statement and codec list once."""
        config, family, q = self.config, self.database.family, self.dialect.quote
        columns = config.columns
        self.key = config.key_field
        self.managed_key = config.managed_key
        self.names = [c.name for c in columns]
        self._key_index = self.names.index(self.key)
        self._to_db = [c.to_db(family) for c in columns]
        self._from_db = [c.from_db(family) for c in columns]
        self._any_from_db = any(self._from_db)
        self._hashed = [c.name for c in columns if c.hashed]
        for name in self._hashed:
            # Keep hashes out of repr(); pydantic reads this flag at repr time.
            self.model.model_fields[name].repr = False
        self._input_keys = [_input_key(self.model, n) for n in self.names]
        # Hot-path constants, computed once per model.
        self._field_set = frozenset(self.model.model_fields)
        self._aliased = self._input_keys != self.names
        self._extractors: dict[tuple[str, ...], Callable[[Any], Sequence[Any]]] = {}
        validator = self.model.__pydantic_validator__
        # Calling pydantic's validator directly skips model_validate's Python frame; a
        # model that is not complete yet (forward references) goes through model_validate.
        plain: Callable[[Any], M] = (
            validator.validate_python
            if isinstance(validator, SchemaValidator) else self.model.model_validate
        )
        self._validate: Callable[[Any], M] = (
            self._validate_hiding_passwords if self._hashed else plain
        )
        self._key_adapter: TypeAdapter[Any] = TypeAdapter(config.key_column.python_type)
        self._key_to_db = self._to_db[self._key_index]
        self._key_is_int = config.key_column.kind == "int"
        # OverflowError: sqlite3 refuses ints beyond 64 bits before the database sees them.
        self._dbapi_error: tuple[type[BaseException], ...] = (
            self.database.dialect.loaded_dbapi.Error, OverflowError, UnicodeEncodeError,
        )
        self._integrity_error: type[BaseException] = (
            self.database.dialect.loaded_dbapi.IntegrityError
        )
        self._events = self.database.engine.dispatch
        self._is_sqlite = self.database.is_sqlite

        table, key = q(self.table_name), q(self.key)
        self.select_list = ", ".join(q(n) for n in self.names)
        self.sql_select = f"SELECT {self.select_list} FROM {table}"
        self.sql_get = f"{self.sql_select} WHERE {key} = {self.dialect.placeholder}"
        self.sql_delete = f"DELETE FROM {table} WHERE {key} = {self.dialect.placeholder}"
        self._insert_names = [n for n in self.names if n != self.key]
        self.sql_insert_full = self._insert_sql(self.names)
        self.sql_insert_nokey = self._insert_sql(self._insert_names)
        self._upserts: dict[tuple[bool, str, bool], str] = {}

    def _insert_sql(self, names: Sequence[str]) -> str:
        q = self.dialect.quote
        if not names:  # only a generated key
            sql = self.dialect.insert_defaults(q(self.table_name))
        else:
            sql = (
                f"INSERT INTO {q(self.table_name)} ({', '.join(q(n) for n in names)}) "
                f"VALUES ({self.dialect.params(len(names))})"
            )
        if self.dialect.insert_returning and self.managed_key:
            sql += f" RETURNING {q(self.key)}"
        return sql

    def _upsert_sql(self, with_key: bool, conflict: str, returning: bool = True) -> str:
        cached = self._upserts.get((with_key, conflict, returning))
        if cached is None:
            names = self.names if with_key else self._insert_names
            cached = self.dialect.upsert(
                self.table_name, names, [conflict], self.key, self._key_is_int, returning
            )
            self._upserts[(with_key, conflict, returning)] = cached
        return cached

    # --- plumbing -------------------------------------------------------------------

    def _execute(self, conn: Any, sql: str, params: Any, many: bool = False) -> Any:
        if self._is_sqlite and not self._events.before_cursor_execute:
            return conn.executemany(sql, params) if many else conn.execute(sql, params)
        cursor = conn.cursor()
        if self._events.before_cursor_execute:
            for listener in self._events.before_cursor_execute:
                listener(conn, cursor, sql, params, None, many)
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
        return cursor

    def _thread_connection(self) -> Any:
        """The thread's own SQLite connection when no block or lock is involved, else None.

        Single statements on a SQLite file outside ``transaction()`` run on it directly,
        in autocommit: the shortest path there is (no pool, no BEGIN/COMMIT).
        """
        db = self.database
        if not self._is_sqlite or db.is_memory or self._events.before_cursor_execute:
            return None
        if db._tx.get() is not None:
            return None
        holder = getattr(db._local, "holder", None)
        return None if holder is None else holder.connection

    def _read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        conn = self._thread_connection()
        if conn is not None:
            try:
                return conn.execute(sql, params).fetchall()  # type: ignore[no-any-return]
            except self._dbapi_error as exc:
                raise self._error(exc, "read from") from exc
        db = self.database
        conn, owned = db.acquire()
        try:
            rows = self._execute(conn, sql, params).fetchall()
            if owned and not db.is_sqlite:
                conn.rollback()
            return rows  # type: ignore[no-any-return]
        except self._dbapi_error as exc:
            if owned:
                db.rollback(conn)
            raise self._error(exc, "read from") from exc
        finally:
            db.release(conn, owned)

    def _write(self, work: Callable[[Any], Any], *, data: Mapping[str, Any] | None = None,
               atomic: bool = True,
               retry_if: Callable[[BaseException], bool] | None = None) -> Any:
        """Run ``work(conn)`` as one transaction (or inside the ambient one).

        A transaction of its own that hits a deadlock or serialization failure is
        retried (a few times, with backoff); inside an ambient transaction the error
        propagates, since only the caller can retry the whole block.
        """
        conn = None if atomic else self._thread_connection()
        if conn is not None:
            try:
                return work(conn)
            except self._dbapi_error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if not is_transient(self.database.family, exc):
                    raise self._error(exc, "write to", data) from exc
                # the database stayed busy past the timeout: take the retrying path
        for attempt in range(_RETRIES):
            try:
                return self._write_once(work, atomic, retry_if)
            except _Transient as transient:
                if attempt == _RETRIES - 1 or not transient.owned:
                    raise self._error(transient.error, "write to", data) from transient.error
                time.sleep(0.01 * (2**attempt) * (1 + random.random()))
            except self._dbapi_error as exc:
                raise self._error(exc, "write to", data) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _write_once(self, work: Callable[[Any], Any], atomic: bool,
                    retry_if: Callable[[BaseException], bool] | None = None) -> Any:
        db = self.database
        conn, owned = db.acquire()
        # Inside a caller's transaction, a write that fails must leave no partial rows
        # and (on PostgreSQL) must not poison the caller's transaction: give it a
        # savepoint. A single statement is already atomic elsewhere.
        savepoint = None if owned or not (atomic or db.family == "postgresql") else \
            f"registers_w{next(_SAVEPOINT_IDS)}"
        try:
            if owned and atomic:
                db.begin(conn)
            if savepoint:
                self._execute(conn, f"SAVEPOINT {savepoint}", ())
            result = work(conn)
            if savepoint:
                self._execute(conn, f"RELEASE SAVEPOINT {savepoint}", ())
            if owned:
                db.commit(conn)
            return result
        except self._dbapi_error as exc:
            self._undo(conn, owned, savepoint)
            if is_transient(db.family, exc) or (retry_if is not None and retry_if(exc)):
                raise _Transient(exc, owned) from exc
            raise
        except BaseException:
            self._undo(conn, owned, savepoint)
            raise
        finally:
            db.release(conn, owned)

    def _undo(self, conn: Any, owned: bool, savepoint: str | None) -> None:
        if owned:
            self.database.rollback(conn)
        elif savepoint:
            with contextlib.suppress(Exception):
                cursor = conn.cursor()
                cursor.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
                cursor.execute(f"RELEASE SAVEPOINT {savepoint}")

    def _error(self, exc: BaseException, action: str,
               data: Mapping[str, Any] | None = None) -> RegistryError:
        where = f"table {self.table_name!r} ({self.model_name})"
        if isinstance(exc, self._integrity_error):
            violation = classify_integrity_error(self.database.family, exc, self.table_name)
            columns = violation.columns
            constraint = violation.constraint or ""
            if violation.kind == "unique" and constraint.startswith(f"uq_{self.table_name}_"):
                columns = (constraint[len(f"uq_{self.table_name}_"):],)
            if violation.kind == "primary" or (
                violation.kind == "unique" and columns == (self.key,)
            ):
                value = data.get(self.key) if data else None
                return DuplicateKeyError(
                    f"{self.model_name} with {self.key}={value!r} already exists in {where}",
                    model=self.model_name, table=self.table_name, field=self.key, value=value,
                )
            if violation.kind == "unique":
                field = columns[0] if columns else None
                shown = ""
                if data and field and field in data and field not in self._hashed:
                    shown = f"={data[field]!r}"[:120]
                return UniqueConstraintError(
                    f"{self.model_name}.{field or '?'}{shown} must be unique: "
                    f"a row with that value already exists in {where}",
                    model=self.model_name, table=self.table_name, field=field,
                )
            detail = f" on {', '.join(columns)}" if columns else ""
            return ConstraintError(
                f"cannot {action} {where}: {violation.kind.replace('_', ' ')} constraint "
                f"failed{detail}",
                model=self.model_name, table=self.table_name,
            )
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        lowered = message.lower()
        if isinstance(exc, UnicodeEncodeError):
            return InvalidQueryError(
                f"cannot {action} {where}: text is not valid UTF-8 ({exc.reason})",
                model=self.model_name, table=self.table_name,
            )
        if isinstance(exc, OverflowError) or "out of range" in lowered:
            return InvalidQueryError(
                f"cannot {action} {where}: a value is out of range for its column ({message})",
                model=self.model_name, table=self.table_name,
            )
        if "no such table" in lowered or "does not exist" in lowered or "doesn't exist" in lowered:
            return SchemaError(
                f"{where} does not exist: call {self.model_name}.create_schema() "
                f"({message})",
                model=self.model_name, table=self.table_name,
            )
        return DatabaseError(
            f"cannot {action} {where}: {message}", model=self.model_name, table=self.table_name
        )

    def _to_model(self, row: Sequence[Any]) -> M:
        if self._any_from_db:
            row = [
                v if f is None or v is None else f(v)
                for f, v in zip(self._from_db, row)
            ]
        instance = self._validate(dict(zip(self._input_keys, row)))
        instance.__dict__[PERSISTED_KEY] = row[self._key_index]
        return instance

    def _to_models(self, rows: Iterable[Sequence[Any]]) -> list[M]:
        return list(self._models(rows))

    def _models(self, rows: Iterable[Sequence[Any]]) -> Iterator[M]:
        """Models from rows, one at a time (the flat loop of every read)."""
        if self._any_from_db:
            yield from map(self._to_model, rows)
            return
        validate, keys, key_index = self._validate, self._input_keys, self._key_index
        for row in rows:
            instance = validate(dict(zip(keys, row)))
            instance.__dict__[PERSISTED_KEY] = row[key_index]
            yield instance

    def _params(self, values: Mapping[str, Any], names: Sequence[str]) -> Sequence[Any]:
        """Driver parameters for ``names`` taken from a validated instance's values."""
        try:
            return self._extractor(names)(values)
        except ValueError as exc:
            raise InvalidQueryError(
                f"cannot store a value of {self.model_name} in {self.table_name!r}: {exc}",
                model=self.model_name, table=self.table_name,
            ) from exc

    def _extractor(self, names: Sequence[str]) -> Callable[[Any], Sequence[Any]]:
        """``values -> params`` for ``names``, built once: a C ``itemgetter`` when no
        codec applies (SQLite's NaN check on floats is inlined)."""
        key = tuple(names)
        found = self._extractors.get(key)
        if found is not None:
            return found
        codecs = [self._to_db[self.names.index(n)] for n in key]
        nan_checks = tuple(i for i, c in enumerate(codecs) if c is _sqlite_float)
        if len(key) > 1 and all(c is None or c is _sqlite_float for c in codecs):
            getter = operator.itemgetter(*key)
            if nan_checks:
                def found(values: Any) -> Sequence[Any]:
                    row: tuple[Any, ...] = getter(values)
                    for i in nan_checks:
                        if row[i] != row[i]:
                            raise ValueError("NaN cannot be stored in SQLite")
                    return row
            else:
                found = getter
        else:
            def found(values: Any) -> Sequence[Any]:
                return self._converted(values, key)
        self._extractors[key] = found
        return found

    def _converted(self, values: Mapping[str, Any], names: Sequence[str]) -> list[Any]:
        to_db = self._to_db if len(names) == len(self.names) else [
            self._to_db[self.names.index(n)] for n in names
        ]
        return [
            v if f is None or v is None else f(v)
            for f, v in zip(to_db, [values[n] for n in names])
        ]

    def _coerce_key(self, key: Any) -> Any:
        if key is None or isinstance(key, (dict, list, tuple, set)):
            raise InvalidQueryError(
                f"invalid key {key!r} for {self.model_name}.{self.key}",
                model=self.model_name, field=self.key,
            )
        try:
            key = self._key_adapter.validate_python(key)
        except ValidationError as exc:
            raise InvalidQueryError(
                f"invalid key {key!r} for {self.model_name}.{self.key}: "
                f"{exc.errors()[0]['msg']}",
                model=self.model_name, field=self.key,
            ) from exc
        return self._key_to_db(key) if self._key_to_db is not None else key

    # --- validation of input --------------------------------------------------------

    def _validate_hiding_passwords(self, data: Any) -> M:
        try:
            return self.model.model_validate(data)
        except ValidationError as exc:
            error = _hide_inputs(exc, self._hashed)
        # Raised outside the handler so the original (showing the input) is not chained.
        raise error

    def _build(self, data: Mapping[str, Any]) -> M:
        """A validated instance from field-name keyed ``data`` (unknown names rejected)."""
        unknown = [] if self._field_set.issuperset(data) else [
            k for k in data if k not in self._field_set
        ]
        if unknown:
            raise InvalidQueryError(
                f"{self.model_name} has no field {unknown[0]!r} "
                f"(fields: {', '.join(self.names)})",
                model=self.model_name, field=unknown[0],
            )
        if self._aliased:
            data = {_input_key(self.model, k): v for k, v in data.items()}
        return self._validate(data)

    def _coerce_item(self, item: M | Mapping[str, Any]) -> M:
        if type(item) is dict:
            return self._build(item)
        if isinstance(item, self.model):
            return self._validate(_field_values(item, self.names))
        if isinstance(item, Mapping):
            return self._build(item)
        raise InvalidQueryError(
            f"expected {self.model_name} instances or dicts, got {type(item).__name__}",
            model=self.model_name,
        )

    def _hash_passwords(self, values: dict[str, Any]) -> None:
        for name in self._hashed:
            value = values.get(name)
            if isinstance(value, str) and not is_password_hash(value):
                values[name] = hash_password(value)

    def _check_managed_key(self, data: Mapping[str, Any] | M) -> None:
        value = data.__dict__.get(self.key) if isinstance(data, BaseModel) else data.get(self.key)
        if self.managed_key and value is not None:
            raise InvalidPrimaryKeyAssignmentError(
                f"{self.model_name}.{self.key} is generated by the database; "
                f"do not pass {self.key}={value!r} to create()",
                model=self.model_name, field=self.key, value=value,
            )

    # --- writes ---------------------------------------------------------------------

    def create(self, **data: Any) -> M:
        """Insert a new row (strict: never overwrites) and return the model with its key.

        Raises:
            pydantic.ValidationError: ``data`` is not a valid model (before any SQL).
            InvalidPrimaryKeyAssignmentError: a database-managed key was supplied.
            DuplicateKeyError: the key exists. UniqueConstraintError: a unique value exists.
        """
        self._check_managed_key(data)
        instance = self._build(data)
        return self._insert(instance)

    strict_create = create

    def _insert(self, instance: M) -> M:
        values = instance.__dict__
        self._hash_passwords(values)
        with_key = not (self.managed_key and values[self.key] is None)
        names = self.names if with_key else self._insert_names
        sql = self.sql_insert_full if with_key else self.sql_insert_nokey
        params = self._params(values, names)

        def work(conn: Any) -> Any:
            cursor = self._execute(conn, sql, params)
            if with_key:
                return values[self.key]
            if self.dialect.insert_returning:
                return cursor.fetchone()[0]
            return cursor.lastrowid

        key = self._write(work, data=values, atomic=False)
        values[self.key] = key
        values[PERSISTED_KEY] = self._stored_key(key)
        return instance

    def _stored_key(self, key: Any) -> Any:
        return self._key_to_db(key) if self._key_to_db is not None and key is not None else key

    def upsert(self, instance: M | None = None, /, **data: Any) -> M:
        """Insert, or update the row with the same key (or unique field), atomically.

        With no key value, the first of ``unique_fields`` that has a value decides which
        row is updated; with neither, this is a plain insert.
        """
        if instance is not None:
            if not isinstance(instance, self.model):
                raise InvalidQueryError(
                    f"upsert() takes a {self.model_name} instance or field values, "
                    f"got {type(instance).__name__}",
                    model=self.model_name,
                )
            merged = {**_field_values(instance, self.names), **data}
            instance = self._build(merged)
        else:
            instance = self._build(data)
        return self._upsert(instance)

    def _conflict_target(self, values: Mapping[str, Any]) -> str | None:
        if values[self.key] is not None:
            return self.key
        for name in self.config.unique_columns:
            if values.get(name) is not None:
                return name
        return None

    def _upsert(self, instance: M) -> M:
        values = instance.__dict__
        self._hash_passwords(values)
        target = self._conflict_target(values)
        if target is None:
            return self._insert(instance)
        with_key = values[self.key] is not None
        names = self.names if with_key else self._insert_names
        params = self._params(values, names)
        guarded = self._needs_guarded_upsert(target)

        def work(conn: Any) -> Any:
            key = self._upsert_row(conn, values, with_key, target, names, params, guarded)
            if with_key and self.managed_key:
                self._sync_sequence(conn)
            return key

        key = self._write(work, data=values, atomic=guarded,
                          retry_if=self._lost_insert_race(target) if guarded else None)
        values[self.key] = self._key_adapter.validate_python(key) if key is not None else key
        values[PERSISTED_KEY] = self._stored_key(values[self.key])
        return instance

    def _needs_guarded_upsert(self, target: str) -> bool:
        """MySQL's ON DUPLICATE KEY UPDATE fires on *any* unique index, so with a second
        unique column it would update the row owning that value: lock and decide instead."""
        if self.database.family != "mysql":
            return False
        uniques = {self.key, *self.config.unique_columns}
        return len(uniques - {target}) > 0 and not (
            target != self.key and self.managed_key and len(uniques) == 2
        )

    def _upsert_row(self, conn: Any, values: Mapping[str, Any], with_key: bool, target: str,
                    names: Sequence[str], params: Sequence[Any], guarded: bool) -> Any:
        """Upsert one row on ``conn``; returns its key."""
        if not guarded:
            if with_key:  # the key is known: no RETURNING round trip needed
                self._execute(conn, self._upsert_sql(True, target, returning=False), params)
                return values[self.key]
            cursor = self._execute(conn, self._upsert_sql(False, target), params)
            if self.database.family == "mysql":
                return cursor.lastrowid
            return cursor.fetchone()[0]
        q = self.dialect.quote
        by_name = dict(zip(names, params))
        table, key = q(self.table_name), q(self.key)
        found = self._execute(
            conn, f"SELECT {key} FROM {table} WHERE {q(target)} = %s FOR UPDATE",
            [by_name[target]],
        ).fetchone()
        if found is None:
            sql = self.sql_insert_full if with_key else self.sql_insert_nokey
            cursor = self._execute(conn, sql, params)
            return values[self.key] if with_key else cursor.lastrowid
        changed = [n for n in names if n not in (target, self.key)]
        if changed:
            sets = ", ".join(f"{q(n)} = %s" for n in changed)
            self._execute(conn, f"UPDATE {table} SET {sets} WHERE {key} = %s",
                          [*(by_name[n] for n in changed), found[0]])
        return values[self.key] if with_key else found[0]

    def _lost_insert_race(self, target: str) -> Callable[[BaseException], bool]:
        """A concurrent upsert inserted the same ``target`` first: retrying updates it."""
        def check(exc: BaseException) -> bool:
            if not isinstance(exc, self._integrity_error):
                return False
            violation = classify_integrity_error(self.database.family, exc, self.table_name)
            name = violation.constraint or ""
            return name == "PRIMARY" if target == self.key else name.endswith(f"_{target}")
        return check

    def _sync_sequence(self, conn: Any) -> None:
        """After an explicit key on PostgreSQL, move the key sequence past it."""
        if self.database.family != "postgresql":
            return
        q = self.dialect.quote
        self._execute(
            conn,
            f"SELECT setval(pg_get_serial_sequence(%s, %s), "
            f"GREATEST((SELECT COALESCE(MAX({q(self.key)}), 0) FROM {q(self.table_name)}), 1))",
            (q(self.table_name), self.key),
        )

    def update_where(self, criteria: Mapping[str, Any], **updates: Any) -> list[M]:
        """Update every row matching ``criteria``; return the updated rows (by key order).

        Values may be :class:`~registers.db.query.F` expressions for atomic arithmetic:
        ``update_where({"id": 1}, hits=F("hits") + 1)``.
        """
        update, set_sql, set_params, where, where_params = self._update_statement(
            criteria, updates
        )
        params = set_params + where_params
        if self.dialect.update_returning:
            sql = f"{update} RETURNING {self.select_list}"
            rows = self._write(lambda conn: self._execute(conn, sql, params).fetchall(),
                               data=updates, atomic=False)
        else:
            rows = self._write(lambda conn: self._update_then_read(conn, where, where_params,
                                                                    set_sql, set_params),
                               data=updates)
        models = self._to_models(rows)
        models.sort(key=lambda m: m.__dict__[PERSISTED_KEY])
        return models

    def _update_statement(
        self, criteria: Mapping[str, Any], updates: Mapping[str, Any]
    ) -> tuple[str, str, list[Any], str, list[Any]]:
        """Checked ``UPDATE ... SET ... WHERE ...``: (sql, set, set params, where, params)."""
        if not isinstance(criteria, Mapping) or not criteria:
            raise InvalidQueryError(
                f"update_where() on {self.model_name} needs non-empty criteria "
                "(refusing to update every row)",
                model=self.model_name,
            )
        if not updates:
            raise InvalidQueryError(
                f"update_where() on {self.model_name} needs at least one field to update",
                model=self.model_name,
            )
        set_sql, set_params = self._set_clause(updates)
        where, where_params = self.query.where(criteria)
        update = f"UPDATE {self.dialect.quote(self.table_name)} SET {set_sql}{where}"
        return update, set_sql, set_params, where, where_params

    def _delete_where_statement(self, criteria: Mapping[str, Any]) -> tuple[str, list[Any]]:
        if not criteria:
            raise InvalidQueryError(
                f"delete_where() on {self.model_name} needs criteria "
                "(use truncate() to delete every row)",
                model=self.model_name,
            )
        where, params = self.query.where(criteria)
        return f"DELETE FROM {self.dialect.quote(self.table_name)}{where}", params

    def _get_key_params(self, args: tuple[Any, ...], criteria: Mapping[str, Any]) -> Any:
        """For ``get(key)``: the key's parameters; for ``get(**criteria)``: None."""
        if args:
            if len(args) > 1 or criteria:
                raise InvalidQueryError(
                    f"get() on {self.model_name} takes one key or keyword criteria, not both",
                    model=self.model_name,
                )
            return [self._coerce_key(args[0])]
        if not criteria:
            raise InvalidQueryError(
                f"get() on {self.model_name} needs a key or criteria", model=self.model_name
            )
        return None

    def _not_found(self, args: tuple[Any, ...], criteria: Mapping[str, Any]) -> RecordNotFoundError:
        what = f"{self.key}={args[0]!r}" if args else ", ".join(
            f"{k}={'<hidden>' if k.partition('__')[0] in self._hashed else repr(v)}"
            for k, v in criteria.items())
        return RecordNotFoundError(
            f"no {self.model_name} with {what} in table {self.table_name!r}",
            model=self.model_name, table=self.table_name,
        )

    def _update_then_read(self, conn: Any, where: str, where_params: list[Any],
                          set_sql: str, set_params: list[Any]) -> list[Any]:
        q = self.dialect.quote
        key, table = q(self.key), q(self.table_name)
        keys = [r[0] for r in self._execute(
            conn, f"SELECT {key} FROM {table}{where} FOR UPDATE", where_params).fetchall()]
        rows: list[Any] = []
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start:start + _IN_CHUNK]
            in_sql = f" WHERE {key} IN ({self.dialect.params(len(chunk))})"
            self._execute(conn, f"UPDATE {table} SET {set_sql}{in_sql}", set_params + chunk)
            rows.extend(self._execute(conn, f"{self.sql_select}{in_sql}", chunk).fetchall())
        return rows

    def _validate_field(self, entry: Any, name: str, value: Any) -> Any:
        if value is None:
            return None
        try:
            return entry.value_adapter.validate_python(value)
        except ValidationError as exc:
            error = _field_error(self.model_name, name, exc, entry.spec.hashed)
        raise error  # outside the handler: the original input is not chained

    def _set_clause(self, updates: Mapping[str, Any]) -> tuple[str, list[Any]]:
        parts: list[str] = []
        params: list[Any] = []
        for name, value in updates.items():
            entry = self.query.field(name)
            if name == self.key:
                raise ImmutableFieldError(
                    f"{self.model_name}.{name} is the primary key and cannot be updated",
                    model=self.model_name, field=name,
                )
            if isinstance(value, Expression):
                for ref in value.fields():
                    self.query.field(ref)
                parts.append(f"{entry.quoted} = {self.query.expression(value, params)}")
                continue
            if value is None and not entry.spec.nullable:
                raise InvalidQueryError(
                    f"{self.model_name}.{name} cannot be None", model=self.model_name, field=name
                )
            if entry.spec.hashed and isinstance(value, str) and not is_password_hash(value):
                value = hash_password(value)
            value = self._validate_field(entry, name, value)
            params.append(value if entry.to_db is None or value is None else entry.to_db(value))
            parts.append(f"{entry.quoted} = {self.dialect.placeholder}")
        return ", ".join(parts), params

    def delete(self, key: Any) -> bool:
        """Delete the row with ``key``. Returns whether a row was deleted."""
        params = [self._coerce_key(key)]
        count = self._write(lambda conn: self._execute(conn, self.sql_delete, params).rowcount,
                            atomic=False)
        return bool(count)

    def delete_where(self, **criteria: Any) -> int:
        """Delete every row matching ``criteria``; returns how many were deleted."""
        sql, params = self._delete_where_statement(criteria)
        return int(self._write(lambda conn: self._execute(conn, sql, params).rowcount,
                               atomic=False))

    def bulk_create(self, items: Iterable[M | Mapping[str, Any]]) -> list[M]:
        """Validate every item, then insert them all in one transaction (all or nothing)."""
        models = [self._coerce_item(item) for item in items]
        if not models:
            return []
        if self.managed_key:
            for model in models:
                if model.__dict__[self.key] is not None:
                    self._check_managed_key(model)
        if self._hashed:
            for model in models:
                self._hash_passwords(model.__dict__)
        generate = self.managed_key
        names = self._insert_names if generate else self.names
        rows = [self._params(m.__dict__, names) for m in models]

        def work(conn: Any) -> list[Any]:
            if not generate:
                self._execute(conn, self._insert_sql(names), rows, many=True)
                return [m.__dict__[self.key] for m in models]
            return self._insert_batches(conn, names, rows)

        keys = self._write(work)
        for model, key in zip(models, keys):
            model.__dict__[self.key] = key
            model.__dict__[PERSISTED_KEY] = self._stored_key(key)
        return models

    def _batch_size(self, width: int) -> int:
        limit = 32_000 if self.database.is_sqlite else 60_000
        return max(1, min(1000, limit // max(width, 1)))

    def _insert_batches(
        self, conn: Any, names: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> list[Any]:
        """Insert rows with database-generated keys; return the keys in row order."""
        if self.database.is_sqlite:
            self._execute(conn, self._insert_sql(names), rows, many=True)
            last = self._execute(conn, "SELECT last_insert_rowid()", ()).fetchone()[0]
            # Inside one write transaction SQLite hands out consecutive rowids.
            return list(range(last - len(rows) + 1, last + 1))
        keys: list[Any] = []
        for sql, params, count in self._multi_row_inserts(names, rows):
            cursor = self._execute(conn, sql, params)
            if self.dialect.insert_returning:
                keys.extend(r[0] for r in cursor.fetchall())
            else:
                # MySQL/MariaDB: consecutive ids from the first one of a multi-row INSERT.
                keys.extend(range(cursor.lastrowid, cursor.lastrowid + count))
        return keys

    def _multi_row_inserts(
        self, names: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> Iterator[tuple[str, list[Any], int]]:
        """Batched multi-row INSERTs (with RETURNING the key where supported):
        (sql, flat parameters, row count) per batch."""
        q = self.dialect.quote
        head = f"INSERT INTO {q(self.table_name)} ({', '.join(q(n) for n in names)}) VALUES "
        one = f"({self.dialect.params(len(names))})"
        tail = f" RETURNING {q(self.key)}" if self.dialect.insert_returning else ""
        size = self._batch_size(len(names))
        for start in range(0, len(rows), size):
            batch = rows[start:start + size]
            sql = head + ", ".join([one] * len(batch)) + tail
            yield sql, [v for row in batch for v in row], len(batch)

    def bulk_upsert(self, items: Iterable[M | Mapping[str, Any]]) -> list[M]:
        """Validate every item, then upsert them all in one transaction (all or nothing).

        Items are grouped by how they conflict (by key, or by a unique field); each
        group is written with one batched statement, so the statement count does not
        grow with the number of rows.
        """
        models = [self._coerce_item(item) for item in items]
        if not models:
            return []
        groups: dict[tuple[bool, str | None], list[int]] = {}
        for index, model in enumerate(models):
            values = model.__dict__
            self._hash_passwords(values)
            target = self._conflict_target(values)
            groups.setdefault((values[self.key] is not None, target), []).append(index)

        def work(conn: Any) -> list[Any]:
            keys: list[Any] = [None] * len(models)
            for (with_key, target), indexes in groups.items():
                names = self.names if with_key else self._insert_names
                rows = [self._params(models[i].__dict__, names) for i in indexes]
                if target is None:
                    found = self._insert_batches(conn, names, rows)
                elif self._needs_guarded_upsert(target):
                    found = [
                        self._upsert_row(conn, models[i].__dict__, with_key, target, names,
                                         row, True)
                        for i, row in zip(indexes, rows)
                    ]
                else:
                    sql = self._upsert_sql(with_key, target, returning=False)
                    self._execute(conn, sql, rows, many=True)
                    found = [models[i].__dict__[self.key] for i in indexes] if with_key else \
                        self._keys_for(conn, target, [models[i].__dict__[target] for i in indexes])
                for index, key in zip(indexes, found):
                    keys[index] = key
            if self.managed_key and any(with_key for with_key, _ in groups):
                self._sync_sequence(conn)
            return keys

        keys = self._write(work)
        for model, key in zip(models, keys):
            model.__dict__[self.key] = key
            model.__dict__[PERSISTED_KEY] = self._stored_key(key)
        return models

    def _keys_for(self, conn: Any, field: str, values: list[Any]) -> list[Any]:
        """The keys of the rows whose unique ``field`` holds ``values`` (same order)."""
        entry = self.query.field(field)
        stored = [v if entry.to_db is None else entry.to_db(v) for v in values]
        q = self.dialect.quote
        found: dict[Any, Any] = {}
        for start in range(0, len(stored), _IN_CHUNK):
            chunk = stored[start:start + _IN_CHUNK]
            sql = (
                f"SELECT {q(field)}, {q(self.key)} FROM {q(self.table_name)} "
                f"WHERE {q(field)} IN ({self.dialect.params(len(chunk))})"
            )
            for value, key in self._execute(conn, sql, chunk).fetchall():
                found[value if entry.to_db is None else entry.to_db(
                    entry.adapter.validate_python(value))] = key
        return [found.get(v) for v in stored]

    # --- reads ----------------------------------------------------------------------

    def get(self, *args: Any, **criteria: Any) -> M | None:
        """The row with key ``args[0]``, or the first matching ``criteria``; else None."""
        key_params = self._get_key_params(args, criteria)
        if key_params is not None:
            rows = self._read(self.sql_get, key_params)
            return self._to_model(rows[0]) if rows else None
        found = self.filter(limit=1, order_by=self.key, **criteria)
        return found[0] if found else None

    def require(self, *args: Any, **criteria: Any) -> M:
        """Like :meth:`get`, but raise :class:`RecordNotFoundError` when nothing matches."""
        found = self.get(*args, **criteria)
        if found is None:
            raise self._not_found(args, criteria)
        return found

    def _select(self, criteria: Mapping[str, Any], order_by: Any, limit: int | None,
                offset: int | None, reverse: bool = False) -> tuple[str, list[Any]]:
        where, params = self.query.where(criteria)
        sql = self.sql_select + where + self.query.order_by(order_by, reverse=reverse)
        if limit is not None or offset is not None:
            for name, value in (("limit", limit), ("offset", offset)):
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int) or value < 0
                ):
                    raise InvalidQueryError(f"{name} must be a non-negative int, got {value!r}")
            if limit is None:
                limit = 2**62
            sql += f" LIMIT {int(limit)}"
            if offset:
                sql += f" OFFSET {int(offset)}"
        return sql, params

    def filter(self, *, limit: int | None = None, offset: int | None = None,
               order_by: str | Sequence[str] | None = None, **criteria: Any) -> list[M]:
        """Rows matching ``criteria`` (``field=value`` or ``field__lookup=value``)."""
        sql, params = self._select(criteria, order_by, limit, offset)
        return self._to_models(self._read(sql, params))

    def all(self) -> list[M]:
        """Every row, in key order."""
        return self.filter(order_by=self.key)

    get_all = all

    def first(self, *, order_by: str | Sequence[str] | None = None, **criteria: Any) -> M | None:
        """The first matching row by key order (or ``order_by``), or None."""
        sql, params = self._select(criteria, order_by or self.key, 1, None)
        rows = self._read(sql, params)
        return self._to_model(rows[0]) if rows else None

    def last(self, *, order_by: str | Sequence[str] | None = None, **criteria: Any) -> M | None:
        """The last matching row by key order (or ``order_by``), or None."""
        sql, params = self._select(criteria, order_by or self.key, 1, None, reverse=True)
        rows = self._read(sql, params)
        return self._to_model(rows[0]) if rows else None

    def exists(self, **criteria: Any) -> bool:
        where, params = self.query.where(criteria)
        sql = f"SELECT 1 FROM {self.dialect.quote(self.table_name)}{where} LIMIT 1"
        return bool(self._read(sql, params))

    def count(self, **criteria: Any) -> int:
        where, params = self.query.where(criteria)
        sql = f"SELECT COUNT(*) FROM {self.dialect.quote(self.table_name)}{where}"
        return int(self._read(sql, params)[0][0])

    def iterate(self, *, batch_size: int = 1000, order_by: str | Sequence[str] | None = None,
                **criteria: Any) -> Iterator[M]:
        """Stream matching rows in batches of ``batch_size`` (memory stays flat).

        Without ``order_by`` rows come in key order using keyset pagination, so rows
        written meanwhile never shift a batch.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidQueryError(f"batch_size must be a positive int, got {batch_size!r}")
        if order_by is not None:
            offset = 0
            while True:
                batch = self.filter(limit=batch_size, offset=offset, order_by=order_by, **criteria)
                yield from batch
                if len(batch) < batch_size:
                    return
                offset += batch_size
        where, params = self.query.where(criteria)
        q, p = self.dialect.quote, self.dialect.placeholder
        glue = " AND " if where else " WHERE "
        order = f" ORDER BY {q(self.key)} LIMIT {batch_size}"
        first_sql = f"{self.sql_select}{where}{order}"
        next_sql = f"{self.sql_select}{where}{glue}{q(self.key)} > {p}{order}"
        rows = self._read(first_sql, params)
        while rows:
            # One model at a time: the consumer decides what stays alive, so memory stays
            # flat and the garbage collector never scans a whole batch of models.
            yield from self._models(rows)
            if len(rows) < batch_size:
                return
            rows = self._read(next_sql, [*params, rows[-1][self._key_index]])

    # --- instances ------------------------------------------------------------------

    def save_instance(self, instance: M) -> M:
        """Upsert ``instance`` by key; reflect generated values onto it."""
        values = instance.__dict__
        persisted = values.get(PERSISTED_KEY, _MISSING)
        current = values.get(self.key)
        if persisted is not _MISSING and persisted != self._stored_key(current):
            raise ImmutableFieldError(
                f"{self.model_name}.{self.key} is immutable once saved "
                f"(stored {persisted!r}, now {current!r})",
                model=self.model_name, table=self.table_name, field=self.key,
            )
        fresh = self._validate(_by_input_key(_field_values(instance, self.names),
                                             self.names, self._input_keys))
        if persisted is _MISSING and self.managed_key and current is None:
            self._insert(fresh)
        else:
            self._upsert(fresh)
        for name in self.names:
            values[name] = fresh.__dict__[name]
        values[PERSISTED_KEY] = fresh.__dict__[PERSISTED_KEY]
        return instance

    def delete_instance(self, instance: M) -> bool:
        values = instance.__dict__
        key = values.get(PERSISTED_KEY, _MISSING)
        if key is _MISSING:
            key = values.get(self.key)
            if key is None:
                return False
            key = self._stored_key(key)
        deleted = self._write(
            lambda conn: self._execute(conn, self.sql_delete, [key]).rowcount, atomic=False
        )
        values.pop(PERSISTED_KEY, None)
        return bool(deleted)

    def refresh_instance(self, instance: M) -> M:
        values = instance.__dict__
        key = values.get(PERSISTED_KEY, _MISSING)
        if key is _MISSING:
            key = values.get(self.key)
        if key is None:
            raise RecordNotFoundError(
                f"{self.model_name} instance has no {self.key}: it was never saved",
                model=self.model_name, table=self.table_name,
            )
        rows = self._read(self.sql_get, [key if PERSISTED_KEY in values else self._coerce_key(key)])
        if not rows:
            raise RecordNotFoundError(
                f"no {self.model_name} with {self.key}={values.get(self.key)!r} in table "
                f"{self.table_name!r} (deleted?)",
                model=self.model_name, table=self.table_name,
            )
        return self._to_model(rows[0])

    # --- transactions, schema, lifecycle ----------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One transaction for every manager on this database inside the block.

        Nested blocks are savepoints. An exception rolls the block back and propagates.
        """
        try:
            with self.database.transaction() as conn:
                yield conn
        except self._dbapi_error as exc:
            raise self._error(exc, "commit to") from exc

    def create_schema(self) -> None:
        self.schema.create()

    def drop_schema(self) -> None:
        self.schema.drop()

    def schema_exists(self) -> bool:
        return self.schema.exists()

    def truncate(self) -> None:
        self.schema.truncate()

    def add_column(self, name: str, annotation: Any, *, nullable: bool = True) -> None:
        self.schema.add_column(name, annotation, nullable=nullable)

    def ensure_column(self, name: str, annotation: Any, *, nullable: bool = True) -> bool:
        return self.schema.ensure_column(name, annotation, nullable=nullable)

    def schema_diff(self) -> list[ColumnDifference]:
        return self.schema.diff()

    def dispose(self) -> None:
        """Release this database's connections (they reopen on next use)."""
        self.database.dispose()

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine of this model's database (shared by every model of the
        URL), for raw SQL: ``with User.objects.engine.connect() as conn: ...``."""
        return self.database.engine

    # registers 2.1.0 spellings (see docs/coming-from-2.1.md): ``engine`` and ``schema``.
    @property
    def _engine(self) -> sa.Engine:
        return self.database.engine

    @property
    def _schema(self) -> SchemaManager:
        return self.schema

    def __repr__(self) -> str:
        return f"<DatabaseRegistry {self.model_name} table={self.table_name!r}>"


class _Transient(Exception):
    def __init__(self, error: BaseException, owned: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.owned = owned


def _input_key(model: type[BaseModel], name: str) -> str:
    """The key pydantic validation expects for field ``name`` (its alias, if any)."""
    info = model.model_fields[name]
    if model.model_config.get("populate_by_name") or model.model_config.get("validate_by_name"):
        return name
    alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
    return alias if isinstance(alias, str) else name


def _field_values(instance: BaseModel, names: Sequence[str]) -> dict[str, Any]:
    values = instance.__dict__
    return {n: values[n] for n in names}


def _by_input_key(values: Mapping[str, Any], names: Sequence[str],
                  input_keys: Sequence[str]) -> dict[str, Any]:
    if list(names) == list(input_keys):
        return dict(values)
    return {k: values[n] for n, k in zip(names, input_keys)}


def _field_error(title: str, field: str, exc: ValidationError, hide: bool) -> ValidationError:
    """A one-field ``ValidationError`` located at ``field`` (input hidden for passwords)."""
    details: list[Any] = []
    for error in exc.errors():
        detail: dict[str, Any] = {
            "type": error["type"],
            "loc": (field, *error["loc"]),
            "input": "***" if hide else error["input"],
        }
        if "ctx" in error:
            detail["ctx"] = error["ctx"]
        details.append(detail)
    return ValidationError.from_exception_data(title, details)


def _hide_inputs(exc: ValidationError, fields: Sequence[str]) -> ValidationError:
    """``exc`` with the offending input of password fields replaced by ``***``."""
    if not fields:
        return exc
    details: list[Any] = []
    for error in exc.errors():
        hidden = not error["loc"] or error["loc"][0] in fields
        detail: dict[str, Any] = {
            "type": error["type"],
            "loc": error["loc"],
            "input": "***" if hidden else error["input"],
        }
        if "ctx" in error:
            detail["ctx"] = error["ctx"]
        details.append(detail)
    return ValidationError.from_exception_data(exc.title, details)
