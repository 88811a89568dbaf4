"""``@database_registry``: validate a model class and attach its persistence layer."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from registers.db.exceptions import ModelRegistrationError
from registers.db.metadata import RESERVED_METHODS
from registers.db.registry import DatabaseRegistry
from registers.db.security import verify_password as _verify
from registers.db.typing_utils import is_model_class

__all__ = ["database_registry"]

T = TypeVar("T", bound=type[BaseModel])

_CLASS_METHODS = ("create_schema", "drop_schema", "schema_exists", "truncate")


def database_registry(
    database_url: str | None = None,
    *,
    table_name: str | None = None,
    key_field: str = "id",
    manager_attr: str = "objects",
    auto_create: bool = True,
    autoincrement: bool = False,
    unique_fields: Sequence[str | Sequence[str]] = (),
    indexes: Sequence[str | Sequence[str]] = (),
) -> Callable[[T], T]:
    """Give a pydantic model a table and a manager (``Model.objects``).

    Args:
        database_url: A SQLAlchemy URL, or a bare SQLite file path (``"app.db"``).
            ``None`` means ``<table_name>.db`` in the working directory.
        table_name: Defaults to the snake_case plural of the class name.
        key_field: The primary-key field. ``int | None = None`` keys are generated
            by the database.
        manager_attr: Where the manager is attached (``objects``).
        auto_create: Create the table at decoration if it is missing.
        autoincrement: Insist on a database-generated integer key.
        unique_fields: Fields that get a UNIQUE constraint (and drive ``upsert``): a
            name, or a tuple of names for one constraint over several columns
            (``[("tenant_id", "email")]``).
        indexes: Indexes to create: a field name or a tuple of names (a composite index,
            ``[("last_name", "first_name")]``).

    Raises:
        ModelRegistrationError: not a pydantic model, or a name clash.
        ConfigurationError: an option names an unknown field or is inconsistent.

    Typing: the decorator returns the class unchanged; subclass
    :class:`registers.db.Model` instead of ``BaseModel`` for ``User.objects`` and the
    attached methods to be typed for ``User`` (mypy and pyright, no plugin).

    Example:
        >>> @database_registry("app.db", unique_fields=["email"])
        ... class User(Model):
        ...     id: int | None = None
        ...     email: str
    """

    def decorate(cls: T) -> T:
        if dataclasses.is_dataclass(cls):
            # Also a BaseModel subclass turned into a stdlib dataclass (SPEC D1): its
            # generated __init__ and __eq__ bypass pydantic validation.
            raise ModelRegistrationError(
                f"{getattr(cls, '__name__', cls)!r} is a dataclass; "
                "@database_registry needs a pydantic BaseModel subclass, not a dataclass"
            )
        if not is_model_class(cls):
            raise ModelRegistrationError(
                f"{getattr(cls, '__name__', cls)!r} is not a pydantic BaseModel subclass; "
                "@database_registry needs one"
            )
        _check_free_names(cls, manager_attr)
        manager: DatabaseRegistry[Any] = DatabaseRegistry(
            cls,
            database_url,
            table_name=table_name,
            key_field=key_field,
            manager_attr=manager_attr,
            auto_create=auto_create,
            autoincrement=autoincrement,
            unique_fields=unique_fields,
            indexes=indexes,
        )
        _attach(cls, manager)
        return cls

    return decorate


def _check_free_names(cls: type[BaseModel], manager_attr: str) -> None:
    for name in (manager_attr, *RESERVED_METHODS):
        if name in cls.model_fields:
            raise ModelRegistrationError(
                f"{cls.__name__}.{name} is already defined as a field; "
                f"rename it or choose another manager_attr",
                model=cls.__name__,
                field=name,
            )
        if any(name in vars(base) for base in cls.__mro__ if base not in (BaseModel, object)):
            raise ModelRegistrationError(
                f"{cls.__name__}.{name} is already defined; @database_registry attaches "
                f"{name!r} itself",
                model=cls.__name__,
                field=name,
            )


def _attach(cls: type[BaseModel], manager: DatabaseRegistry[Any]) -> None:
    setattr(cls, manager.config.manager_attr, manager)

    def save(self: BaseModel) -> BaseModel:
        """Insert or update this record by key (generated values are set on it)."""
        result: BaseModel = manager.save_instance(self)
        return result

    def delete(self: BaseModel) -> bool:
        """Delete this record's row. Returns whether a row was deleted."""
        return manager.delete_instance(self)

    def refresh(self: BaseModel) -> BaseModel:
        """A fresh copy of this record from the database."""
        result: BaseModel = manager.refresh_instance(self)
        return result

    async def asave(self: BaseModel) -> BaseModel:
        """Async :meth:`save` (SQLAlchemy's async engine, no worker thread)."""
        result: BaseModel = await manager.asave_instance(self)
        return result

    async def adelete(self: BaseModel) -> bool:
        """Async :meth:`delete`."""
        return await manager.adelete_instance(self)

    async def arefresh(self: BaseModel) -> BaseModel:
        """Async :meth:`refresh`."""
        result: BaseModel = await manager.arefresh_instance(self)
        return result

    for method in (save, delete, refresh, asave, adelete, arefresh):
        method.__qualname__ = f"{cls.__name__}.{method.__name__}"
        setattr(cls, method.__name__, method)

    hashed = manager.hashed_fields
    if hashed and "verify_password" not in cls.model_fields:
        field = hashed[0]

        def verify_password(self: BaseModel, plain: str) -> bool:
            """Whether ``plain`` matches this record's stored password hash."""
            stored = self.__dict__.get(field)
            return isinstance(stored, str) and _verify(plain, stored)

        cls.verify_password = verify_password  # type: ignore[attr-defined]

    for name in _CLASS_METHODS:
        setattr(cls, name, staticmethod(getattr(manager, name)))
