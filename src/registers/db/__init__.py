"""registers.db: a complete persistence layer for pydantic v2 models.

::

    from registers.db import Model, database_registry

    @database_registry("app.db", unique_fields=["email"])
    class User(Model):
        id: int | None = None
        name: str
        email: str

    user = User.objects.create(name="Ada", email="ada@example.com")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from registers.db.aggregates import Aggregate, Avg, Count, Max, Min, Sum
from registers.db.connect import DatabaseOptions, configure_database
from registers.db.decorators import database_registry
from registers.db.engine import (
    dispose_all,
    dispose_engine,
    get_database,
    get_engine,
    metadata_for,
)
from registers.db.exceptions import (
    ConfigurationError,
    ConstraintError,
    DatabaseError,
    DatabaseUnavailableError,
    DuplicateKeyError,
    ImmutableFieldError,
    InvalidPrimaryKeyAssignmentError,
    InvalidQueryError,
    MigrationError,
    ModelRegistrationError,
    RecordNotFoundError,
    RegistryError,
    RelationshipError,
    SchemaError,
    UniqueConstraintError,
)
from registers.db.fields import db_field
from registers.db.metadata import RegistryConfig
from registers.db.model import Model
from registers.db.query import F, Q
from registers.db.queryset import Query
from registers.db.registry import DatabaseRegistry
from registers.db.relations import BelongsTo, HasMany, HasManyThrough, prefetch
from registers.db.schema import ColumnDifference, SchemaManager, defer_creation
from registers.db.security import hash_password, is_password_hash, verify_password

if TYPE_CHECKING:
    from registers.db.async_engine import adispose_all

__all__ = [
    "Aggregate",
    "Avg",
    "BelongsTo",
    "ColumnDifference",
    "ConfigurationError",
    "ConstraintError",
    "Count",
    "DatabaseError",
    "DatabaseOptions",
    "DatabaseRegistry",
    "DatabaseUnavailableError",
    "DuplicateKeyError",
    "F",
    "HasMany",
    "HasManyThrough",
    "ImmutableFieldError",
    "InvalidPrimaryKeyAssignmentError",
    "InvalidQueryError",
    "Max",
    "MigrationError",
    "Min",
    "Model",
    "ModelRegistrationError",
    "Q",
    "Query",
    "RecordNotFoundError",
    "RegistryConfig",
    "RegistryError",
    "RelationshipError",
    "SchemaError",
    "SchemaManager",
    "Sum",
    "UniqueConstraintError",
    "adispose_all",
    "configure_database",
    "database_registry",
    "db_field",
    "defer_creation",
    "dispose_all",
    "dispose_engine",
    "get_database",
    "get_engine",
    "hash_password",
    "is_password_hash",
    "metadata_for",
    "prefetch",
    "verify_password",
]



def __getattr__(name: str) -> Any:
    # The async machinery is imported on first use, not by `import registers.db`.
    if name == "adispose_all":
        from registers.db.async_engine import adispose_all

        globals()[name] = adispose_all
        return adispose_all
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
