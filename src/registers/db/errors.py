"""Driver-error translation: the one place a database failure becomes a ``RegistryError``.

Every manager operation, sync or async, catches what the driver raised at one seam (the
connection policy of :mod:`registers.db.sync_ops` and :mod:`registers.db.async_ops`) and hands
it to :class:`ErrorTranslator`, which unwraps SQLAlchemy's wrapper, classifies it by what
the driver reports (:func:`registers.db.dialects.classify_integrity_error`) and returns
the documented exception, with the model, table and field it knows. The caller raises it
with the driver's exception chained as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from registers.db.dialects import (
    classify_integrity_error,
    is_packet_too_large,
    is_transient,
    is_unavailable,
    is_unraised_violation,
    mysql_statement_bytes,
    value_error_kind,
)
from registers.db.exceptions import (
    ConstraintError,
    DatabaseError,
    DatabaseUnavailableError,
    DuplicateKeyError,
    InvalidQueryError,
    RegistryError,
    SchemaError,
    UniqueConstraintError,
)

if TYPE_CHECKING:
    from registers.db.connect import DatabaseOptions

# A lost write smaller than this never asks the server for its max_allowed_packet.
_LARGE_STATEMENT = 1024 * 1024

__all__ = [
    "ErrorTranslator",
    "connect_error",
    "driver_error",
    "first_line",
    "transaction_error",
]


def driver_error(exc: BaseException) -> BaseException:
    """The driver's exception inside SQLAlchemy's wrapper (what gets classified)."""
    original = getattr(exc, "orig", None)
    return original if isinstance(original, BaseException) else exc


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its class name when it has none.

    PyMySQL's errors carry ``(code, message)``: shown as ``error code: message``, not as
    the tuple.
    """
    args = exc.args
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str) \
            and type(exc).__module__.startswith("pymysql"):
        text = f"error {args[0]}: {args[1]}"
    else:
        text = str(exc)
    return (text.strip().splitlines() or [type(exc).__name__])[0]


def connect_error(shown_url: str, exc: BaseException,
                  options: DatabaseOptions | None = None) -> DatabaseUnavailableError:
    """The error for a connection that could not be opened to ``shown_url`` (refused,
    timed out, rejected...) or checked out of a full pool: the database cannot be
    reached, whatever the driver said."""
    detail = first_line(driver_error(exc))
    if isinstance(exc, sa.exc.TimeoutError) and options is not None:
        detail = (f"no free connection within pool_timeout={options.pool_timeout:g}s "
                  f"(pool_size={options.pool_size} + max_overflow={options.max_overflow} "
                  "all in use)")
    return DatabaseUnavailableError(f"cannot connect to {shown_url}: {detail}")


def transaction_error(shown_url: str, family: str, exc: BaseException, action: str,
                      busy_timeout: float) -> DatabaseError:
    """The error for a ``transaction()`` block that could not ``action`` (``"begin a
    transaction on"``, ``"commit the transaction on"``) the database at ``shown_url``."""
    original = driver_error(exc)
    cls = DatabaseUnavailableError if is_unavailable(family, exc) else DatabaseError
    detail = first_line(original)
    if family == "sqlite" and is_transient(family, original):
        detail += f" (waited busy_timeout={busy_timeout:g}s for the lock)"
    return cls(f"cannot {action} {shown_url}: {detail}")


class ErrorTranslator:
    """Turns a driver exception raised for one table into the documented ``RegistryError``."""

    def __init__(self, model_name: str, table_name: str, family: str, key: str,
                 hidden: Sequence[str], integrity_error: Callable[[], type[BaseException]],
                 unique_names: Mapping[str, tuple[str, ...]] | None = None,
                 column_names: Sequence[str] = ()) -> None:
        self.model_name = model_name
        self.column_names = frozenset(column_names)
        # uq_... constraint name -> its fields (names can be shortened: never parse them)
        self.unique_names = dict(unique_names or {})
        self.table_name = table_name
        self.family = family
        self.key = key
        self.hidden = tuple(hidden)  # fields whose values never appear in a message
        self._integrity_error = integrity_error  # the driver's (imported on first use)
        self.where = f"table {table_name!r} ({model_name})"
        # the database's tables whose CREATE it refused (Database.refused_tables)
        self.refused_tables: Mapping[str, SchemaError] = {}
        # MySQL: the server's max_allowed_packet, read when a large write lost its
        # connection (the server drops a statement over it without an error)
        self.packet_limit: Callable[[], int | None] | None = None
        # MySQL: the table's unique keys (name -> columns), asked of the server when a
        # duplicate-entry error names a key registers did not create
        self.unique_keys: Callable[[], Mapping[str, tuple[str, ...]] | None] | None = None
        self._live_keys: Mapping[str, tuple[str, ...]] = {}

    @property
    def integrity_error(self) -> type[BaseException]:
        """The driver's integrity error class."""
        return self._integrity_error()

    def generated_key_taken(self, exc: BaseException) -> bool:
        """PostgreSQL: whether ``exc`` says a key the sequence generated is already
        stored (an explicit key is stored one statement before the sequence is moved
        past it, and a ``create()`` in between draws it): the write is retried with the
        next key. (MariaDB and SQLite move their counters past an explicit key as they
        store it.) A counter far behind still fails after the write's few attempts."""
        if not isinstance(exc, self.integrity_error):
            return False
        violation = classify_integrity_error(self.family, exc, self.table_name)
        return violation.kind == "primary" or violation.columns == (self.key,)

    async def atranslate(self, exc: BaseException, action: str,
                         data: Mapping[str, Any] | None = None) -> RegistryError:
        """The error for ``exc``, for async code: on MySQL, where naming it may ask the
        server (``packet_limit``, ``unique_keys``: a new connection, up to its connect
        timeout), in a worker thread, so the event loop never waits for that."""
        if self.packet_limit is None and self.unique_keys is None:
            return self(exc, action, data)
        import asyncio  # an error on MySQL only (asyncio is not imported for registers.db)

        return await asyncio.to_thread(self, exc, action, data)

    def __call__(self, exc: BaseException, action: str,
                 data: Mapping[str, Any] | None = None) -> RegistryError:
        """The error for ``exc`` raised while trying to ``action`` this table."""
        exc = driver_error(exc)
        if isinstance(exc, RegistryError):
            return exc
        if isinstance(exc, self.integrity_error) or is_unraised_violation(self.family, exc):
            return self._constraint(exc, action, data)
        message = first_line(exc)
        lowered = message.lower()
        context = {"model": self.model_name, "table": self.table_name}
        said = is_packet_too_large(self.family, exc)
        if said or is_unavailable(self.family, exc):
            too_large = self._over_packet_limit(action, data, said)
            if too_large is not None:
                return too_large
            return DatabaseUnavailableError(
                f"cannot {action} {self.where}: the database cannot be reached ({message})",
                **context,
            )
        if "readonly database" in lowered:
            return DatabaseError(
                f"cannot {action} {self.where}: the database is opened read-only ({message})",
                **context,
            )
        if self.family == "postgresql" and ("cannot contain NUL" in message
                                            or getattr(exc, "sqlstate", None) == "22P05"):
            # text: psycopg refuses it before sending; jsonb: the server (22P05)
            return InvalidQueryError(
                f"cannot {action} {self.where}: text contains a NUL (0x00) character, "
                "which PostgreSQL text and JSON cannot hold",
                **context,
            )
        if isinstance(exc, UnicodeEncodeError):
            return InvalidQueryError(
                f"cannot {action} {self.where}: text is not valid UTF-8 ({exc.reason})",
                **context,
            )
        if "user-defined function raised exception" in lowered or "division by" in lowered:
            # SQLite: a registers_* function of an F() expression refused a step.
            why = "integer overflow or division by zero" if "user-defined" in lowered \
                else f"division by zero: {message}"
            return InvalidQueryError(
                f"cannot {action} {self.where}: an F() expression failed ({why})", **context)
        refused = value_error_kind(self.family, exc)
        if refused == "too_long":
            return InvalidQueryError(
                f"cannot {action} {self.where}: a value is too long for its column "
                f"({message})",
                **context,
            )
        if refused or isinstance(exc, OverflowError) or "out of range" in lowered:
            return InvalidQueryError(
                f"cannot {action} {self.where}: a value is out of range for its column "
                f"({message})",
                **context,
            )
        if "no such table" in lowered or "does not exist" in lowered or "doesn't exist" in lowered:
            refusal = self.refused_tables.get(self.table_name)
            if refusal is not None:  # auto_create on first use: the database refused it
                return SchemaError(str(refusal), **context)
            return SchemaError(
                f"{self.where} does not exist: call {self.model_name}.create_schema() "
                f"({message})",
                **context,
            )
        return DatabaseError(f"cannot {action} {self.where}: {message}", **context)

    def _over_packet_limit(self, action: str, data: Mapping[str, Any] | None,
                           said: bool) -> InvalidQueryError | None:
        """A statement over MySQL's ``max_allowed_packet``: the server answers error 1153
        (``said``) or, as often, just drops the connection. A lost write whose values
        alone reach the server's limit (and the server answers) is that error, not an
        unreachable database."""
        size = mysql_statement_bytes(data.values()) if data else 0
        if not said and (self.packet_limit is None or size < _LARGE_STATEMENT):
            return None  # (packet_limit is set on MySQL only)
        limit = None if self.packet_limit is None else self.packet_limit()
        if not said and (limit is None or size < limit):
            return None
        mib = 1024 * 1024
        over = "max_allowed_packet" if limit is None else \
            f"max_allowed_packet of {limit / mib:.1f} MiB"
        takes = f"takes at least {size / mib:.1f} MiB, over" if size else "is over"
        return InvalidQueryError(
            f"cannot {action} {self.where}: the statement {takes} the server's {over} "
            "(raise max_allowed_packet on the server, or store the value in smaller "
            "pieces)",
            model=self.model_name, table=self.table_name,
        )

    def _constraint(self, exc: BaseException, action: str,
                    data: Mapping[str, Any] | None) -> RegistryError:
        violation = classify_integrity_error(self.family, exc, self.table_name)
        columns = violation.columns
        constraint = violation.constraint or ""
        if violation.kind == "unique" and constraint:
            # MySQL names the key as `table.name` on some versions.
            known = self._unique_key_columns(constraint.rsplit(".", 1)[-1])
            columns = known if known is not None else columns
        if violation.kind == "unique" and self.column_names \
                and not self.column_names.issuperset(columns):
            columns = ()  # an index on an expression (lower(email)): no field to name
        context = {"model": self.model_name, "table": self.table_name}
        if violation.kind == "primary" or (violation.kind == "unique" and columns == (self.key,)):
            value = data.get(self.key) if data else None
            if value is None:  # the database generated it
                return DuplicateKeyError(
                    f"the {self.key} the database generated for a new {self.model_name} "
                    f"belongs to a stored row in {self.where}: the table's key counter is "
                    "behind its keys (was it moved back outside registers?)",
                    field=self.key, value=None, **context,
                )
            return DuplicateKeyError(
                f"{self.model_name} with {self.key}={value!r} already exists in {self.where}",
                field=self.key, value=value, **context,
            )
        if violation.kind == "unique":
            return self._unique(columns, data, constraint.rsplit(".", 1)[-1])
        if violation.kind == "not_null" and columns == (self.key,) \
                and (not data or data.get(self.key) is None):
            return ConstraintError(
                f"cannot {action} {self.where}: its {self.key} column has no default, so "
                f"the database cannot generate {self.model_name}.{self.key}; give the column "
                f"a generated default (SERIAL, AUTO_INCREMENT, IDENTITY) or declare "
                f"`{self.key}: int` to supply keys",
                **context,
            )
        detail = f" on {', '.join(columns)}" if columns else ""
        kind = "CHECK" if violation.kind == "check" else violation.kind.replace("_", " ")
        named = f" {constraint}" if constraint else ""
        return ConstraintError(
            f"cannot {action} {self.where}: {kind} constraint{named} failed{detail}",
            **context,
        )

    def _unique_key_columns(self, name: str) -> tuple[str, ...] | None:
        """The columns of the unique key ``name``: registers' own, else (MySQL, whose
        error names only the key) the server's, asked once and again for a key not yet
        seen."""
        known = self.unique_names.get(name)
        if known is None and self.unique_keys is not None and name not in self._live_keys:
            self._live_keys = self.unique_keys() or self._live_keys
        return known if known is not None else self._live_keys.get(name)

    def _unique(self, columns: Sequence[str], data: Mapping[str, Any] | None,
                constraint: str = "") -> UniqueConstraintError:
        context = {"model": self.model_name, "table": self.table_name}
        shown = ""
        if data and columns and all(c in data and c not in self.hidden for c in columns):
            values = [data[c] for c in columns]
            shown = (f"={values[0]!r}" if len(values) == 1 else f"={tuple(values)!r}")[:120]
        if len(columns) > 1:
            return UniqueConstraintError(
                f"{self.model_name}.({', '.join(columns)}){shown} must be unique together: "
                f"a row with those values already exists in {self.where}",
                field=columns[0], fields=tuple(columns), **context,
            )
        if not columns:  # a key registers did not create: on an expression, or on MySQL
            named = f" {constraint!r}" if constraint else ""
            return UniqueConstraintError(
                f"{self.model_name}: unique key{named} failed: a row with those values "
                f"already exists in {self.where}",
                field=None, fields=(), **context,
            )
        field = columns[0]
        return UniqueConstraintError(
            f"{self.model_name}.{field}{shown} must be unique: "
            f"a row with that value already exists in {self.where}",
            field=field, fields=tuple(columns), **context,
        )
