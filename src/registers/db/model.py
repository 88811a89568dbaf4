"""``Model``: the typed base class for registered models (SPEC T1).

A class decorator cannot add attributes a type checker sees, so with a plain
``BaseModel`` both mypy and pyright report ``"type[User]" has no attribute "objects"``.
Subclass :class:`Model` instead and every manager call is typed for *your* class::

    from registers.db import Model, database_registry

    @database_registry("app.db", unique_fields=["email"])
    class User(Model):
        id: int | None = None
        email: str

    User.objects.get(1)        # User | None
    User.objects.filter()      # list[User]
    user.save()                # User

At run time :class:`Model` is an empty ``pydantic.BaseModel`` subclass: every declaration
below lives under ``TYPE_CHECKING``, and ``@database_registry`` attaches the real manager
and methods exactly as it does on a plain ``BaseModel``. ``Model.objects`` is declared as a
descriptor generic in its owner, which is how both checkers bind it to the class it is read
from (``User.objects`` is ``DatabaseRegistry[User]``) without a plugin.

A model registered with another ``manager_attr`` declares that name itself::

    records: ClassVar[DatabaseRegistry["User"]]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, TypeVar

from pydantic import BaseModel

__all__ = ["Model"]

if TYPE_CHECKING:
    from typing_extensions import Self

    from registers.db.registry import DatabaseRegistry

    _M = TypeVar("_M", bound=BaseModel)

    class _Manager:
        """``Model.objects``: the manager of the class it is read from."""

        def __get__(self, instance: object, owner: type[_M], /) -> DatabaseRegistry[_M]: ...


class Model(BaseModel):
    """A ``pydantic.BaseModel`` whose registered subclasses are fully typed.

    Nothing is added at run time; see the module documentation.
    """

    if TYPE_CHECKING:
        objects: ClassVar[_Manager]

        def save(self) -> Self:
            """Insert or update this record by key (generated values are set on it)."""
            ...

        def delete(self) -> bool:
            """Delete this record's row. Returns whether a row was deleted."""
            ...

        def refresh(self) -> Self:
            """A fresh copy of this record from the database."""
            ...

        async def asave(self) -> Self:
            """Async :meth:`save`."""
            ...

        async def adelete(self) -> bool:
            """Async :meth:`delete`."""
            ...

        async def arefresh(self) -> Self:
            """Async :meth:`refresh`."""
            ...

        def verify_password(self, plain: str) -> bool:
            """Whether ``plain`` matches the stored hash (models with a password field only)."""
            ...

        @classmethod
        def create_schema(cls) -> None:
            """Create the table (idempotent)."""
            ...

        @classmethod
        def drop_schema(cls) -> None:
            """Drop the table if it exists."""
            ...

        @classmethod
        def schema_exists(cls) -> bool:
            """Whether the table exists."""
            ...

        @classmethod
        def truncate(cls) -> None:
            """Delete every row."""
            ...
