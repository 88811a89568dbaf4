"""The exceptions of ``registers.db``.

Every error a manager method raises derives from :class:`RegistryError`; no raw
SQLAlchemy or driver exception escapes (the original is chained as ``__cause__``).
Invalid field values raise pydantic's ``ValidationError`` before any SQL runs.

::

    RegistryError
    ├── ConfigurationError            bad decorator / manager options
    ├── ModelRegistrationError        the class cannot be registered
    ├── SchemaError                   DDL failed, or the table is missing
    │   └── MigrationError            a schema evolution step cannot be applied
    ├── RelationshipError             a relationship descriptor is misconfigured
    ├── ConstraintError               a write broke a constraint (NOT NULL, FOREIGN KEY...)
    │   ├── DuplicateKeyError         INSERT collided with an existing primary key
    │   └── UniqueConstraintError     a UNIQUE constraint was violated
    ├── InvalidPrimaryKeyAssignmentError   a database-managed key was supplied
    ├── ImmutableFieldError           a persisted primary key was changed
    ├── RecordNotFoundError           ``require()`` / ``refresh()`` found no row
    ├── InvalidQueryError             unknown field or operator, malformed criteria
    └── DatabaseError                 any other failure reported by the database or driver
        └── DatabaseUnavailableError  the database cannot be reached: connect refused or
                                      timed out, server gone or stalled past read_timeout,
                                      no pooled connection within pool_timeout (retry / 503)

``DatabaseUnavailableError`` says nothing was decided by the database about the data:
the operation could not be carried out (a write that raised it inside its own transaction
was rolled back, or never reached the server), so retrying later, or answering HTTP 503,
is the right reaction. The bounds on waiting are set per database with
:func:`registers.db.configure_database`.

Each error carries the context it knows (``model``, ``table``, ``field``, ``value``) as
attributes; messages never contain a password or a password hash.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigurationError",
    "ConstraintError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "DuplicateKeyError",
    "ImmutableFieldError",
    "InvalidPrimaryKeyAssignmentError",
    "InvalidQueryError",
    "MigrationError",
    "ModelRegistrationError",
    "RecordNotFoundError",
    "RegistryError",
    "RelationshipError",
    "SchemaError",
    "UniqueConstraintError",
]


class RegistryError(Exception):
    """Base class of every ``registers.db`` error."""

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        table: str | None = None,
        field: str | None = None,
        value: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.model = model
        self.table = table
        self.field = field
        self.value = value

    def __str__(self) -> str:
        return self.message


class ConfigurationError(RegistryError):
    """An option of the decorator or manager is invalid."""


class ModelRegistrationError(RegistryError):
    """The class cannot be registered (not a pydantic model, name clash, ...)."""


class SchemaError(RegistryError):
    """A DDL operation failed, or the table does not exist."""


class MigrationError(SchemaError):
    """A schema evolution step (add a column, ...) cannot be applied."""


class RelationshipError(RegistryError):
    """A relationship descriptor is misconfigured or misused."""


class ConstraintError(RegistryError):
    """A write violated a constraint (NOT NULL, FOREIGN KEY, CHECK, key, unique)."""


class DuplicateKeyError(ConstraintError):
    """An INSERT collided with an existing primary key."""


class InvalidPrimaryKeyAssignmentError(RegistryError):
    """A value was supplied for a database-managed (autoincrement) key."""


class ImmutableFieldError(RegistryError):
    """The primary key of a persisted record was changed and saved."""


class UniqueConstraintError(ConstraintError):
    """A write violated a UNIQUE constraint.

    ``fields`` names every field of the constraint (several for a composite
    ``unique_fields`` entry); ``field`` is the first of them.
    """

    def __init__(self, message: str, *, fields: tuple[str, ...] = (), **context: Any) -> None:
        super().__init__(message, **context)
        self.fields = fields or ((self.field,) if self.field else ())


class RecordNotFoundError(RegistryError):
    """No row matched where one was required."""


class InvalidQueryError(RegistryError):
    """Criteria name an unknown field or operator, or are malformed."""


class DatabaseError(RegistryError):
    """Any other failure the database or its driver reported (the original is chained)."""


class DatabaseUnavailableError(DatabaseError):
    """The database cannot be reached, so the operation was not carried out.

    Raised when a connection cannot be opened (refused, unknown host, connect timeout, too
    many connections), when the server goes away or stops answering for longer than the
    configured ``read_timeout`` in the middle of an operation, and when no pooled
    connection frees up within ``pool_timeout``. The driver's error is chained as
    ``__cause__``. Retry later, or answer HTTP 503.

    A COMMIT that fails this way is the one case where the outcome is unknown: the
    server may have committed before the connection broke.
    """
