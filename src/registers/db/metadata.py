"""``RegistryConfig``: the validated options of one registered model."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from registers.db.exceptions import ConfigurationError, ModelRegistrationError
from registers.db.fields import COLUMN_OPTION_NAMES, utc_now
from registers.db.typing_utils import (
    ColumnSpec,
    default_table_name,
    is_model_class,
    normalize_url,
    unwrap_annotation,
)

__all__ = ["IDENTIFIER_LIMIT", "RESERVED_METHODS", "RegistryConfig", "constraint_name"]

# Names the decorator attaches; a field or class attribute of the same name would clash.
RESERVED_METHODS = ("save", "delete", "refresh", "asave", "adelete", "arefresh")

IDENTIFIER_LIMIT = 63
"""Bytes in a table, column, constraint or index name: PostgreSQL's limit (MySQL and
MariaDB allow 64 characters, so a name within it is valid on every backend)."""

_AUTO_TIME_KINDS = ("datetime",)


def constraint_name(prefix: str, table: str, parts: Sequence[str] = ()) -> str:
    """The name registers gives a constraint or index: ``<prefix>_<table>[_<part>...]``.

    A name longer than :data:`IDENTIFIER_LIMIT` bytes is cut and ends with 8 hex digits
    of a hash of the whole name, so it stays unique, stable and valid on every backend.
    """
    name = "_".join([prefix, table, *parts])
    encoded = name.encode("utf-8")
    if len(encoded) <= IDENTIFIER_LIMIT:
        return name
    digest = hashlib.sha256(encoded).hexdigest()[:8]
    head = encoded[: IDENTIFIER_LIMIT - len(digest) - 1].decode("utf-8", errors="ignore")
    return f"{head}_{digest}"


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
    unique_fields: tuple[str | tuple[str, ...], ...] = ()
    indexes: tuple[str | tuple[str, ...], ...] = ()
    url: str = field(init=False)
    columns: list[ColumnSpec] = field(init=False)
    managed_key: bool = field(init=False)
    unique_sets: list[tuple[str, ...]] = field(init=False)
    """Every UNIQUE constraint but the key's, in declaration order (single and composite)."""
    index_sets: list[tuple[str, ...]] = field(init=False)
    """Every plain index, in declaration order (single and composite)."""

    def __post_init__(self) -> None:
        model = self.model
        if not is_model_class(model):
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
        unique = self._check_field_sets("unique_fields", self.unique_fields)
        indexes = self._check_field_sets("indexes", self.indexes)
        self.unique_fields = tuple(s[0] if len(s) == 1 else s for s in unique)
        self.indexes = tuple(s[0] if len(s) == 1 else s for s in indexes)
        self._check_model_config()
        for field_name, info in model.model_fields.items():
            self._check_field_name(field_name)
            self._check_misplaced_options(field_name, info)
        self.columns = [ColumnSpec.from_field(n, i) for n, i in model.model_fields.items()]
        if not self.columns:
            raise ModelRegistrationError(f"{name} has no fields to store", model=name)
        self._apply_key()
        self._apply_unique_and_passwords()
        self._apply_constraint_sets(unique, indexes)
        self._check_column_options()

    # --- checks -------------------------------------------------------------------------

    def _check_table_name(self, table: Any) -> str:
        if not isinstance(table, str) or not table.strip():
            raise ConfigurationError(f"table_name must be a non-empty string, got {table!r}")
        if "\x00" in table or len(table.encode("utf-8")) > IDENTIFIER_LIMIT:
            raise ConfigurationError(
                f"table_name {table[:80]!r} is not a usable table name "
                f"(no NUL bytes, at most {IDENTIFIER_LIMIT} bytes in UTF-8)"
            )
        return table

    def _check_field_name(self, field_name: str) -> None:
        name = self.model.__name__
        if "__" in field_name.strip("_"):
            raise ConfigurationError(
                f"{name}.{field_name}: '__' inside a field name is reserved for lookups "
                "(field__gt=...); rename the field",
                model=name,
                field=field_name,
            )
        if len(field_name.encode("utf-8")) > IDENTIFIER_LIMIT:
            raise ConfigurationError(
                f"{name}.{field_name[:80]}: a column name has at most {IDENTIFIER_LIMIT} "
                "bytes in UTF-8 (PostgreSQL would cut it); rename the field",
                model=name,
                field=field_name,
            )

    def _check_field_sets(
        self, option: str, given: Iterable[str | Sequence[str]] | str
    ) -> list[tuple[str, ...]]:
        """``unique_fields`` / ``indexes``: names and tuples of names -> tuples, checked."""
        name = self.model.__name__
        if isinstance(given, str):
            given = (given,)
        try:
            items = list(given)
        except TypeError:
            raise ConfigurationError(
                f"{option} must be a list of field names or of tuples of field names, "
                f"got {given!r}",
                model=name,
            ) from None
        result: list[tuple[str, ...]] = []
        for item in items:
            group = (item,) if isinstance(item, str) else item
            if not isinstance(group, (tuple, list)) or not group:
                raise ConfigurationError(
                    f"{option}: {item!r} is neither a field name nor a non-empty tuple of "
                    "field names",
                    model=name,
                )
            for part in group:
                if not isinstance(part, str) or part not in self.model.model_fields:
                    raise ConfigurationError(
                        f"{option}: {name} has no field {part!r}", model=name, field=str(part)
                    )
            if len(set(group)) != len(group):
                raise ConfigurationError(
                    f"{option}: {tuple(group)!r} names a field twice", model=name
                )
            result.append(tuple(group))
        duplicates = sorted({", ".join(g) for g in result if result.count(g) > 1})
        if duplicates:
            raise ConfigurationError(
                f"{option} contains duplicates: {'; '.join(duplicates)}", model=name
            )
        return result

    def _check_model_config(self) -> None:
        if self.model.model_config.get("extra") == "allow":
            raise ConfigurationError(
                f"{self.model.__name__} has model_config extra='allow': extra attributes "
                "have no column and would be silently lost on save; declare them as fields",
                model=self.model.__name__,
            )

    def _check_misplaced_options(self, field_name: str, info: Any) -> None:
        """``pydantic.Field(unique=True)`` only reaches the JSON schema: refuse it."""
        extra = info.json_schema_extra
        if not isinstance(extra, dict):
            return
        misplaced = [k for k in COLUMN_OPTION_NAMES if k in extra]
        if misplaced:
            raise ConfigurationError(
                f"{self.model.__name__}.{field_name}: {misplaced[0]!r} is a column option "
                f"but was given to pydantic.Field (it would be ignored); use "
                f"registers.db.db_field({misplaced[0]}=...)",
                model=self.model.__name__,
                field=field_name,
            )

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
                column.unique = column.indexed = True
            if column.options.index or column.primary_key:
                column.indexed = True
            hashed = column.options.hash_password
            column.hashed = hashed if hashed is not None else column.name == "password"
            if column.hashed and unwrap_annotation(column.annotation) is not str:
                raise ConfigurationError(
                    f"{self.model.__name__}.{column.name}: only str fields can hold a "
                    "password hash",
                    model=self.model.__name__,
                    field=column.name,
                )

    def _apply_constraint_sets(
        self, unique: list[tuple[str, ...]], indexes: list[tuple[str, ...]]
    ) -> None:
        key = self.key_field
        sets: list[tuple[str, ...]] = []
        for group in [*unique, *((c.name,) for c in self.columns if c.options.unique)]:
            if group != (key,) and group not in sets:
                sets.append(group)
        self.unique_sets = sets
        index_sets: list[tuple[str, ...]] = []
        for group in [*indexes, *((c.name,) for c in self.columns if c.options.index)]:
            # A key or UNIQUE constraint already is an index.
            if group != (key,) and group not in sets and group not in index_sets:
                index_sets.append(group)
        self.index_sets = index_sets
        by_name = {c.name: c for c in self.columns}
        for group in [*sets, *index_sets]:
            for part in group:
                by_name[part].indexed = True

    def _check_column_options(self) -> None:
        name = self.model.__name__
        for column in self.columns:
            options = column.options
            where = f"{name}.{column.name}"
            if options.autoincrement is not None and not column.primary_key:
                raise ConfigurationError(
                    f"{where}: autoincrement applies to the primary key only "
                    f"(the key is {self.key_field!r})",
                    model=name, field=column.name,
                )
            if options.on_delete == "set null" and not column.nullable:
                raise ConfigurationError(
                    f"{where}: on_delete='set null' needs a field that allows None "
                    f"(declare it `{column.name}: int | None = ...`)",
                    model=name, field=column.name,
                )
            if (options.auto_now or options.auto_now_add) and \
                    column.kind not in _AUTO_TIME_KINDS:
                option = "auto_now" if options.auto_now else "auto_now_add"
                raise ConfigurationError(
                    f"{where}: {option} needs a timezone-aware datetime field "
                    f"(datetime or AwareDatetime), not {column.annotation!r}",
                    model=name, field=column.name,
                )
            if options.check is not None and "\x00" in options.check:
                raise ConfigurationError(
                    f"{where}: check contains a NUL byte", model=name, field=column.name
                )

    # --- derived ------------------------------------------------------------------------

    @property
    def key_column(self) -> ColumnSpec:
        return next(c for c in self.columns if c.name == self.key_field)

    @property
    def unique_columns(self) -> list[str]:
        """The fields with a UNIQUE constraint of their own (not the key)."""
        return [c.name for c in self.columns if c.unique and not c.primary_key]

    def name_of(self, prefix: str, parts: Sequence[str] = ()) -> str:
        """The name of one of this table's constraints (see :func:`constraint_name`)."""
        assert self.table_name is not None
        return constraint_name(prefix, self.table_name, parts)

    @property
    def unique_names(self) -> dict[str, tuple[str, ...]]:
        """``uq_...`` constraint name -> the fields it covers."""
        return {self.name_of("uq", group): group for group in self.unique_sets}

    @property
    def conflict_sets(self) -> list[tuple[str, ...]]:
        """What ``upsert`` may match a row on when no key is given, in the order tried:
        single unique fields in field order, then composite sets as declared."""
        singles = [(c.name,) for c in self.columns if c.unique and not c.primary_key]
        return [*singles, *(s for s in self.unique_sets if len(s) > 1)]

    @property
    def auto_now_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.options.auto_now]

    @property
    def auto_now_add_columns(self) -> list[str]:
        """Fields an upsert's update branch never overwrites (their insert time)."""
        return [c.name for c in self.columns if c.options.auto_now_add]

    @property
    def stamps(self) -> bool:
        """Whether any field is ``auto_now`` / ``auto_now_add``."""
        return any(c.options.auto_now or c.options.auto_now_add for c in self.columns)

    def stamp(self, values: dict[str, Any], given: Any) -> None:
        """Set ``auto_now`` fields of a row about to be written to the current time, and
        ``auto_now_add`` fields too unless the caller gave them (``given``: field names).

        One timestamp per write, so a new row's created and updated times are equal.
        """
        now = utc_now()
        for column in self.columns:
            options = column.options
            if options.auto_now or (options.auto_now_add and column.name not in given):
                values[column.name] = now
