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

import sqlalchemy as _sa

from registers.db.aio import adispose_all
from registers.db.connect import DatabaseOptions, configure_database
from registers.db.decorators import database_registry
from registers.db.engine import dispose_all, dispose_engine, get_database, get_engine
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
from registers.db.query import F
from registers.db.registry import DatabaseRegistry
from registers.db.relations import BelongsTo, HasMany, HasManyThrough, prefetch
from registers.db.schema import ColumnDifference, SchemaManager
from registers.db.security import hash_password, is_password_hash, verify_password
from registers.db.typing_utils import normalize_url as _normalize_url

__all__ = [
    "BelongsTo",
    "ColumnDifference",
    "ConfigurationError",
    "ConstraintError",
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
    "MigrationError",
    "Model",
    "ModelRegistrationError",
    "RecordNotFoundError",
    "RegistryConfig",
    "RegistryError",
    "RelationshipError",
    "SchemaError",
    "SchemaManager",
    "UniqueConstraintError",
    "adispose_all",
    "configure_database",
    "database_registry",
    "db_field",
    "dispose_all",
    "dispose_engine",
    "get_engine",
    "hash_password",
    "is_password_hash",
    "metadata_for",
    "prefetch",
    "verify_password",
]


def metadata_for(url: str) -> _sa.MetaData:
    """The SQLAlchemy ``MetaData`` with every registered table of ``url``.

    Use it as Alembic's ``target_metadata`` for autogenerate.
    """
    return get_database(_normalize_url(url, "")).metadata
