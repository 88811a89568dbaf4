"""``DatabaseRegistry``: the manager behind ``Model.objects``.

The manager is built in layers, one idea per module (see docs/development.md, "How
registers.db is built"):

=========================  ==========================================================
:mod:`~registers.db.table`       what is fixed per table: columns, codecs, rows <-> models
:mod:`~registers.db.statements`  the SQL of every operation, built once where it is fixed
:mod:`~registers.db.flows`       multi-statement algorithms as generators, and their runners
:mod:`~registers.db.plans`       each operation's plan and finish, shared by sync and async
:mod:`~registers.db.sync_ops`    the sync operations and the sync connection policy
:mod:`~registers.db.async_ops`   the async operations and the async connection policy
:mod:`~registers.db.aggregate_ops`  the aggregate shortcuts (``aggregate``, ``values``...)
:mod:`~registers.db.errors`      driver-error translation, at one seam
=========================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel

from registers.db.aggregate_ops import AggregateOperations
from registers.db.async_ops import AsyncOperations
from registers.db.evolution import _FROM_MODEL
from registers.db.metadata import RegistryConfig
from registers.db.schema import ColumnDifference, SchemaManager, creation_deferred
from registers.db.sync_ops import SyncOperations
from registers.db.table import PERSISTED_KEY

__all__ = ["PERSISTED_KEY", "DatabaseRegistry"]

M = TypeVar("M", bound=BaseModel)


class DatabaseRegistry(SyncOperations[M], AsyncOperations[M], AggregateOperations[M]):
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
        unique_fields: Sequence[str | Sequence[str]] = (),
        indexes: Sequence[str | Sequence[str]] = (),
    ) -> None:
        config = RegistryConfig(
            model,
            database_url,
            table_name,
            key_field,
            manager_attr,
            auto_create,
            autoincrement,
            unique_fields,  # type: ignore[arg-type]  # checked and normalised there
            indexes,  # type: ignore[arg-type]
        )
        super().__init__(model, config)
        if auto_create and not creation_deferred():
            # on first use, not now: importing a module of models (``app --help``) never
            # connects or creates a file
            self.database.create_later(self.table_name, self.create_schema)

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine of this model's database (for raw SQL); pending tables
        are created first."""
        return self.database.ready_engine()

    # --- schema ---------------------------------------------------------------------

    def create_schema(self) -> None:
        self.schema.create()
        self.database.refused_tables.pop(self.table_name, None)

    def drop_schema(self) -> None:
        self.schema.drop()

    def schema_exists(self) -> bool:
        return self.schema.exists()

    def truncate(self) -> None:
        self.schema.truncate()

    def add_column(self, name: str, annotation: Any = _FROM_MODEL, *,
                   nullable: bool | None = None, default: Any = _FROM_MODEL) -> None:
        """Add a column and back-fill existing rows (see :meth:`SchemaManager.add_column`)."""
        self.schema.add_column(name, annotation, nullable=nullable, default=default)

    def ensure_column(self, name: str, annotation: Any = _FROM_MODEL, *,
                      nullable: bool | None = None, default: Any = _FROM_MODEL) -> bool:
        """:meth:`add_column` unless the column exists; returns whether it was added."""
        return self.schema.ensure_column(name, annotation, nullable=nullable, default=default)

    def schema_diff(self) -> list[ColumnDifference]:
        return self.schema.diff()

    # --- lifecycle ------------------------------------------------------------------

    def dispose(self) -> None:
        """Release this database's connections (they reopen on next use)."""
        self.database.dispose()

    # registers 2.1.0 spellings (see docs/coming-from-2.1.md): ``engine`` and ``schema``.
    @property
    def _engine(self) -> sa.Engine:
        return self.database.ready_engine()

    @property
    def _schema(self) -> SchemaManager:
        return self.schema

    def __repr__(self) -> str:
        return f"<DatabaseRegistry {self.model_name} table={self.table_name!r}>"
