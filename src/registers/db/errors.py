"""Driver-error translation: the one place a database failure becomes a ``RegistryError``.

Every manager operation, sync or async, catches what the driver raised at one seam (the
connection policy of :mod:`registers.db.sync_ops` and :mod:`registers.db.aio`) and hands
it to :class:`ErrorTranslator`, which unwraps SQLAlchemy's wrapper, classifies it by what
the driver reports (:func:`registers.db.dialects.classify_integrity_error`) and returns
the documented exception, with the model, table and field it knows. The caller raises it
with the driver's exception chained as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from registers.db.dialects import classify_integrity_error
from registers.db.exceptions import (
    ConstraintError,
    DatabaseError,
    DuplicateKeyError,
    InvalidQueryError,
    RegistryError,
    SchemaError,
    UniqueConstraintError,
)

__all__ = ["ErrorTranslator", "connect_error", "driver_error", "first_line"]


def driver_error(exc: BaseException) -> BaseException:
    """The driver's exception inside SQLAlchemy's wrapper (what gets classified)."""
    original = getattr(exc, "orig", None)
    return original if isinstance(original, BaseException) else exc


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its class name when it has none."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def connect_error(shown_url: str, exc: BaseException) -> DatabaseError:
    """The error for a connection that could not be opened to ``shown_url``."""
    return DatabaseError(f"cannot connect to {shown_url}: {first_line(driver_error(exc))}")


class ErrorTranslator:
    """Turns a driver exception raised for one table into the documented ``RegistryError``."""

    def __init__(self, model_name: str, table_name: str, family: str, key: str,
                 hidden: Sequence[str], integrity_error: type[BaseException]) -> None:
        self.model_name = model_name
        self.table_name = table_name
        self.family = family
        self.key = key
        self.hidden = tuple(hidden)  # fields whose values never appear in a message
        self.integrity_error = integrity_error
        self.where = f"table {table_name!r} ({model_name})"

    def __call__(self, exc: BaseException, action: str,
                 data: Mapping[str, Any] | None = None) -> RegistryError:
        """The error for ``exc`` raised while trying to ``action`` this table."""
        exc = driver_error(exc)
        if isinstance(exc, RegistryError):
            return exc
        if isinstance(exc, self.integrity_error):
            return self._constraint(exc, action, data)
        message = first_line(exc)
        lowered = message.lower()
        context = {"model": self.model_name, "table": self.table_name}
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
        if isinstance(exc, OverflowError) or "out of range" in lowered:
            return InvalidQueryError(
                f"cannot {action} {self.where}: a value is out of range for its column "
                f"({message})",
                **context,
            )
        if "no such table" in lowered or "does not exist" in lowered or "doesn't exist" in lowered:
            return SchemaError(
                f"{self.where} does not exist: call {self.model_name}.create_schema() "
                f"({message})",
                **context,
            )
        return DatabaseError(f"cannot {action} {self.where}: {message}", **context)

    def _constraint(self, exc: BaseException, action: str,
                    data: Mapping[str, Any] | None) -> RegistryError:
        violation = classify_integrity_error(self.family, exc, self.table_name)
        columns = violation.columns
        constraint = violation.constraint or ""
        prefix = f"uq_{self.table_name}_"
        if violation.kind == "unique" and constraint.startswith(prefix):
            columns = (constraint[len(prefix):],)
        context = {"model": self.model_name, "table": self.table_name}
        if violation.kind == "primary" or (violation.kind == "unique" and columns == (self.key,)):
            value = data.get(self.key) if data else None
            return DuplicateKeyError(
                f"{self.model_name} with {self.key}={value!r} already exists in {self.where}",
                field=self.key, value=value, **context,
            )
        if violation.kind == "unique":
            field = columns[0] if columns else None
            shown = ""
            if data and field and field in data and field not in self.hidden:
                shown = f"={data[field]!r}"[:120]
            return UniqueConstraintError(
                f"{self.model_name}.{field or '?'}{shown} must be unique: "
                f"a row with that value already exists in {self.where}",
                field=field, **context,
            )
        detail = f" on {', '.join(columns)}" if columns else ""
        return ConstraintError(
            f"cannot {action} {self.where}: {violation.kind.replace('_', ' ')} constraint "
            f"failed{detail}",
            **context,
        )
