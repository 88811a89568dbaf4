"""``RegistryConfig``: the validated options of one registered model."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from registers.db.exceptions import ConfigurationError, ModelRegistrationError
from registers.db.typing_utils import (
    ColumnSpec,
    default_table_name,
    normalize_url,
    unwrap_annotation,
)

__all__ = ["RESERVED_METHODS", "RegistryConfig"]

# Names the decorator attaches; a field or class attribute of the same name would clash.
RESERVED_METHODS = ("save", "delete", "refresh", "asave", "adelete", "arefresh")

_IDENTIFIER_LIMIT = 63  # PostgreSQL's limit; MySQL allows 64


@dataclass
class RegistryConfig:
    """Options of ``@database_registry`` / ``DatabaseRegistry``, checked once.

    Raises:
        ModelRegistrationError: ``model`` is not a pydantic model.
        ConfigurationError: an option names an unknown field or is inconsistent.
    """

    model: type[BaseModel]
    database_url: str | None = None
    table_name: str | None = None
    key_field: str = "id"
    manager_attr: str = "objects"
    auto_create: bool = True
    autoincrement: bool = False
    unique_fields: tuple[str, ...] = ()
    url: str = field(init=False)
    columns: list[ColumnSpec] = field(init=False)
    managed_key: bool = field(init=False)

    def __post_init__(self) -> None:
        model = self.model
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise ModelRegistrationError(
                f"{getattr(model, '__name__', model)!r} is not a pydantic BaseModel subclass; "
                "only pydantic v2 models can be registered"
            )
        name = model.__name__
        self.table_name = self._check_table_name(self.table_name or default_table_name(name))
        try:
            self.url = normalize_url(self.database_url, self.table_name)
        except ValueError as exc:
            raise ConfigurationError(f"database_url: {exc}", model=name) from exc
        if not isinstance(self.manager_attr, str) or not self.manager_attr.isidentifier():
            raise ConfigurationError(
                f"manager_attr must be an identifier, got {self.manager_attr!r}", model=name
            )
        self.unique_fields = self._check_unique_fields(self.unique_fields)
        for field_name in model.model_fields:
            if "__" in field_name.strip("_"):
                raise ConfigurationError(
                    f"{name}.{field_name}: '__' inside a field name is reserved for lookups "
                    "(field__gt=...); rename the field",
                    model=name,
                    field=field_name,
                )
        self.columns = [ColumnSpec.from_field(n, i) for n, i in model.model_fields.items()]
        if not self.columns:
            raise ModelRegistrationError(f"{name} has no fields to store", model=name)
        self._apply_key()
        self._apply_unique_and_passwords()

    # --- checks -------------------------------------------------------------------------

    def _check_table_name(self, table: Any) -> str:
        if not isinstance(table, str) or not table.strip():
            raise ConfigurationError(f"table_name must be a non-empty string, got {table!r}")
        if "\x00" in table or len(table.encode("utf-8")) > _IDENTIFIER_LIMIT:
            raise ConfigurationError(
                f"table_name {table[:80]!r} is not a usable table name "
                f"(no NUL bytes, at most {_IDENTIFIER_LIMIT} bytes in UTF-8)"
            )
        return table

    def _check_unique_fields(self, fields: Iterable[str] | str) -> tuple[str, ...]:
        if isinstance(fields, str):
            fields = (fields,)
        result = tuple(fields)
        known = self.model.model_fields
        for item in result:
            if item not in known:
                raise ConfigurationError(
                    f"unique_fields: {self.model.__name__} has no field {item!r}",
                    model=self.model.__name__,
                    field=str(item),
                )
        duplicates = sorted({f for f in result if result.count(f) > 1})
        if duplicates:
            raise ConfigurationError(
                f"unique_fields contains duplicates: {', '.join(duplicates)}",
                model=self.model.__name__,
            )
        return result

    def _apply_key(self) -> None:
        name = self.model.__name__
        declared = [c for c in self.columns if c.options.primary_key]
        if len(declared) > 1:
            raise ConfigurationError(
                f"{name} declares more than one primary_key field: "
                f"{', '.join(c.name for c in declared)}",
                model=name,
            )
        if declared:
            self.key_field = declared[0].name
        if self.key_field not in self.model.model_fields:
            raise ConfigurationError(
                f"key_field: {name} has no field {self.key_field!r}",
                model=name,
                field=self.key_field,
            )
        key = self.key_column
        key.primary_key = True
        is_int = key.kind == "int"
        wants = self.autoincrement or bool(key.options.autoincrement)
        if wants and not is_int:
            raise ConfigurationError(
                f"autoincrement needs an integer key, but {name}.{key.name} is "
                f"{getattr(key.python_type, '__name__', key.python_type)}",
                model=name,
                field=key.name,
            )
        if wants and not key.nullable:
            raise ConfigurationError(
                f"autoincrement key {name}.{key.name} must allow None "
                f"(declare it `{key.name}: int | None = None`)",
                model=name,
                field=key.name,
            )
        # `id: int | None = None` is database-managed without saying so.
        self.managed_key = is_int and key.nullable and key.options.autoincrement is not False
        key.nullable = False

    def _apply_unique_and_passwords(self) -> None:
        for column in self.columns:
            if column.name in self.unique_fields or column.options.unique:
                column.unique = True
            hashed = column.options.hash_password
            column.hashed = hashed if hashed is not None else column.name == "password"
            if column.hashed and unwrap_annotation(column.annotation) is not str:
                raise ConfigurationError(
                    f"{self.model.__name__}.{column.name}: only str fields can hold a "
                    "password hash",
                    model=self.model.__name__,
                    field=column.name,
                )

    # --- derived ------------------------------------------------------------------------

    @property
    def key_column(self) -> ColumnSpec:
        return next(c for c in self.columns if c.name == self.key_field)

    @property
    def unique_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.unique and not c.primary_key]
