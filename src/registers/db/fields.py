"""``db_field``: a pydantic ``Field`` that also carries column options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field
from pydantic.fields import FieldInfo

__all__ = ["ColumnOptions", "column_options", "db_field"]


@dataclass(frozen=True)
class ColumnOptions:
    """Per-column options declared with :func:`db_field`."""

    primary_key: bool = False
    autoincrement: bool | None = None
    unique: bool = False
    index: bool = False
    foreign_key: str | None = None
    hash_password: bool | None = None


def db_field(
    default: Any = ...,
    *,
    primary_key: bool = False,
    autoincrement: bool | None = None,
    unique: bool = False,
    index: bool = False,
    foreign_key: str | None = None,
    hash_password: bool | None = None,
    **field_kwargs: Any,
) -> Any:
    """Declare a model field with database options.

    Args:
        default: The field default, as for ``pydantic.Field``.
        primary_key: Make this field the table's key (instead of ``key_field``).
        autoincrement: Let the database generate the (integer) key.
        unique: Add a UNIQUE constraint.
        index: Add an index.
        foreign_key: ``"table.column"`` this column references.
        hash_password: Store the value as a salted hash (``True``), or opt a field named
            ``password`` out of hashing (``False``).
        **field_kwargs: Passed to ``pydantic.Field`` (``default_factory``, ``max_length``...).

    Example:
        >>> class User(BaseModel):
        ...     email: str = db_field(unique=True, max_length=320)
    """
    if foreign_key is not None and (
        not isinstance(foreign_key, str) or foreign_key.count(".") != 1
    ):
        raise ValueError(f"foreign_key must look like 'table.column', got {foreign_key!r}")
    info: FieldInfo = Field(default, **field_kwargs)
    info.metadata.append(
        ColumnOptions(primary_key, autoincrement, unique, index, foreign_key, hash_password)
    )
    return info


def column_options(info: FieldInfo) -> ColumnOptions:
    """The :class:`ColumnOptions` of a model field (defaults when none were declared)."""
    for item in info.metadata:
        if isinstance(item, ColumnOptions):
            return item
    return _DEFAULT_OPTIONS


_DEFAULT_OPTIONS = ColumnOptions()
