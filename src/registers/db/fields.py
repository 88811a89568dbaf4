"""``db_field``: a pydantic ``Field`` that also carries column options."""

from __future__ import annotations

import datetime as _dt
import inspect
from dataclasses import dataclass
from typing import Any

from pydantic import Field
from pydantic.fields import FieldInfo

from registers.db.exceptions import ConfigurationError

__all__ = ["ON_DELETE_ACTIONS", "ColumnOptions", "column_options", "db_field", "utc_now"]

ON_DELETE_ACTIONS = ("cascade", "set null", "restrict")
"""The ``on_delete=`` actions registers implements, as spelt in ``db_field``."""

# The names a column option may have: given to ``pydantic.Field`` instead of ``db_field``
# they would only land in the JSON schema, so decoration refuses them (see metadata.py).
COLUMN_OPTION_NAMES = (
    "primary_key", "autoincrement", "unique", "index", "foreign_key", "hash_password",
    "check", "on_delete", "auto_now", "auto_now_add",
)

_PYDANTIC_FIELD_OPTIONS = frozenset(inspect.signature(Field).parameters) - {"extra"}


def utc_now() -> _dt.datetime:
    """The current time, timezone-aware in UTC (what ``auto_now``/``auto_now_add`` store)."""
    return _dt.datetime.now(_dt.timezone.utc)


@dataclass(frozen=True)
class ColumnOptions:
    """Per-column options declared with :func:`db_field`."""

    primary_key: bool = False
    autoincrement: bool | None = None
    unique: bool = False
    index: bool = False
    foreign_key: str | None = None
    hash_password: bool | None = None
    check: str | None = None
    on_delete: str | None = None
    auto_now: bool = False
    auto_now_add: bool = False


def db_field(
    default: Any = ...,
    *,
    primary_key: bool = False,
    autoincrement: bool | None = None,
    unique: bool = False,
    index: bool = False,
    foreign_key: str | None = None,
    on_delete: str | None = None,
    check: str | None = None,
    auto_now_add: bool = False,
    auto_now: bool = False,
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
        on_delete: What the database does to this row when the referenced row is
            deleted: ``"cascade"`` (delete it too), ``"set null"`` (the field must allow
            ``None``) or ``"restrict"`` (refuse the delete). Needs ``foreign_key``.
        check: A SQL condition every row must satisfy (``"qty >= 0"``), enforced by the
            database as a CHECK constraint named ``ck_<table>_<field>``.
        auto_now_add: A ``datetime`` set to the current time (UTC) when the row is
            inserted, unless a value is given.
        auto_now: A ``datetime`` set to the current time (UTC) on every write (insert,
            save, upsert, update_where, bulk writes).
        hash_password: Store the value as a salted hash (``True``), or opt a field named
            ``password`` out of hashing (``False``).
        **field_kwargs: Passed to ``pydantic.Field`` (``default_factory``, ``max_length``...).

    Raises:
        ConfigurationError: an option registers does not implement, or a value it cannot
            honour (``on_delete`` without ``foreign_key``, an unknown action, ...).

    Example:
        >>> class User(BaseModel):
        ...     email: str = db_field(unique=True, max_length=320)
    """
    unknown = sorted(set(field_kwargs) - _PYDANTIC_FIELD_OPTIONS)
    if unknown:
        raise ConfigurationError(
            f"db_field() has no option {unknown[0]!r} (registers implements: "
            f"{', '.join(COLUMN_OPTION_NAMES)}; pydantic.Field's own options pass through)",
            field=unknown[0],
        )
    if foreign_key is not None and (
        not isinstance(foreign_key, str) or foreign_key.count(".") != 1
    ):
        raise ConfigurationError(
            f"foreign_key must look like 'table.column', got {foreign_key!r}"
        )
    on_delete = _check_on_delete(on_delete, foreign_key)
    if check is not None and (not isinstance(check, str) or not check.strip()):
        raise ConfigurationError(f"check must be a non-empty SQL condition, got {check!r}")
    if auto_now and auto_now_add:
        raise ConfigurationError(
            "auto_now and auto_now_add exclude each other (auto_now already sets the "
            "time on insert)"
        )
    if (auto_now or auto_now_add) and default is ... and "default_factory" not in field_kwargs:
        field_kwargs["default_factory"] = utc_now
    info: FieldInfo = Field(default, **field_kwargs)
    info.metadata.append(
        ColumnOptions(primary_key, autoincrement, unique, index, foreign_key, hash_password,
                      check, on_delete, auto_now, auto_now_add)
    )
    return info


def _check_on_delete(on_delete: Any, foreign_key: str | None) -> str | None:
    if on_delete is None:
        return None
    action = " ".join(on_delete.lower().replace("_", " ").split()) \
        if isinstance(on_delete, str) else None
    if action not in ON_DELETE_ACTIONS:
        raise ConfigurationError(
            f"on_delete must be one of {', '.join(repr(a) for a in ON_DELETE_ACTIONS)}, "
            f"got {on_delete!r}"
        )
    if foreign_key is None:
        raise ConfigurationError(f"on_delete={on_delete!r} needs foreign_key='table.column'")
    return action


def column_options(info: FieldInfo) -> ColumnOptions:
    """The :class:`ColumnOptions` of a model field (defaults when none were declared)."""
    for item in info.metadata:
        if isinstance(item, ColumnOptions):
            return item
    return _DEFAULT_OPTIONS


_DEFAULT_OPTIONS = ColumnOptions()
