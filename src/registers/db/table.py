"""What is fixed per table: columns, codecs, input validation, rows <-> models.

:class:`ModelTable` is the base of the manager (:class:`~registers.db.registry.
DatabaseRegistry`). Everything here is computed once when a model is registered and is
pure: no statement is sent from this module. Per-column codecs convert values on the way
in (``to_db``) and out (``from_db``); pydantic's validator is called directly on the way
out, so a corrupt row raises ``ValidationError`` instead of returning garbage.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import SchemaValidator

from registers.db.dialects import Dialect, mysql_packet_limit, mysql_unique_keys
from registers.db.engine import Database, get_database
from registers.db.errors import ErrorTranslator
from registers.db.exceptions import (
    InvalidPrimaryKeyAssignmentError,
    InvalidQueryError,
    RecordNotFoundError,
)
from registers.db.metadata import RegistryConfig
from registers.db.query import QueryCompiler
from registers.db.schema import SchemaManager, build_table
from registers.db.security import hash_password, is_password_hash
from registers.db.statements import Statements
from registers.db.typing_utils import _sqlite_float

__all__ = ["PERSISTED_KEY", "ModelTable"]

M = TypeVar("M", bound=BaseModel)

# Key of a record as last read from / written to the database, kept in the instance's
# __dict__ (pydantic ignores non-field entries there in ==, repr and dumps).
PERSISTED_KEY = "__registers_persisted_key__"


class ModelTable(Generic[M]):
    """One model's table: its columns, codecs and the conversions between rows and models."""

    def __init__(self, model: type[M], config: RegistryConfig) -> None:
        self.config = config
        self.model: type[M] = model
        self.model_name = model.__name__
        self.table_name: str = config.table_name or ""
        self.database: Database = get_database(config.url)
        self.table: sa.Table = build_table(config, self.database.metadata, self.database.family)
        self.schema = SchemaManager(self.database, self.table, self.model_name, config)
        family = self.database.family
        self.dialect = Dialect(family, self.database.quoting_dialect, self.database.placeholder)
        columns = config.columns
        self.query = QueryCompiler(self.model_name, self.table_name, columns, self.dialect,
                                   model=model, key=config.key_field)
        self.key = config.key_field
        self.managed_key = config.managed_key
        self.names = [c.name for c in columns]
        self._key_index = self.names.index(self.key)
        self._to_db = [c.to_db(family) for c in columns]
        self._from_db = [c.from_db(family) for c in columns]
        self._any_from_db = any(self._from_db)
        self._hashed = [c.name for c in columns if c.hashed]
        for name in self._hashed:
            # Keep hashes out of repr(); pydantic reads this flag at repr time.
            self.model.model_fields[name].repr = False
        self._input_keys = [_input_key(model, n) for n in self.names]
        self._field_set = frozenset(model.model_fields)
        self._aliased = self._input_keys != self.names
        self._extractors: dict[tuple[str, ...], Callable[[Any], Sequence[Any]]] = {}
        validator = model.__pydantic_validator__
        # Calling pydantic's validator directly skips model_validate's Python frame; a
        # model that is not complete yet (forward references) goes through model_validate.
        plain: Callable[[Any], M] = (
            validator.validate_python
            if isinstance(validator, SchemaValidator) else model.model_validate
        )
        self._validate: Callable[[Any], M] = (
            self._validate_hiding_passwords if self._hashed else plain
        )
        key_adapter: TypeAdapter[Any] = TypeAdapter(config.key_column.python_type)
        self._validate_key: Callable[[Any], Any] = (
            key_adapter.validator.validate_python
            if isinstance(key_adapter.validator, SchemaValidator)
            else key_adapter.validate_python
        )
        self._key_to_db = self._to_db[self._key_index]
        self._key_is_int = config.key_column.kind == "int"
        self._insert_names = [n for n in self.names if n != self.key]
        self.errors = ErrorTranslator(
            self.model_name, self.table_name, family, self.key, self._hashed,
            lambda: self.database.dialect.loaded_dbapi.IntegrityError, config.unique_names,
            self.names,
        )
        self.errors.refused_tables = self.database.refused_tables
        if family == "mysql":
            spare = self.database.spare_connection
            self.errors.packet_limit = lambda: mysql_packet_limit(spare)
            self.errors.unique_keys = lambda: mysql_unique_keys(spare, self.table_name)
        # a generated key already stored: retried with the next one (PostgreSQL)
        self._sequence_retry = self.errors.generated_key_taken \
            if family == "postgresql" and self.managed_key else None
        self.sql = Statements(self.table_name, self.names, self.key, self.managed_key,
                              self._key_is_int, self.dialect, self.query, self.database,
                              keep=config.auto_now_add_columns)
        self._stamps = config.stamps  # auto_now / auto_now_add fields to set on writes
        self._key_target = (self.key,)
        self._conflict_sets = config.conflict_sets
        # an upsert given all of these sets every column: the one-statement upsert
        self._every_field = frozenset(self.names) - {self.key, *config.auto_now_columns}

    @property
    def hashed_fields(self) -> tuple[str, ...]:
        """The fields stored as password hashes."""
        return tuple(self._hashed)

    # --- rows -> models -------------------------------------------------------------

    def _first(self, rows: Sequence[Sequence[Any]]) -> M | None:
        """The model of the first row, or None: the finish of every one-row read."""
        if not rows:
            return None
        row = rows[0]
        if self._any_from_db:
            row = self._decoded(row)
        instance = self._validate(dict(zip(self._input_keys, row)))
        instance.__dict__[PERSISTED_KEY] = row[self._key_index]
        return instance

    def _to_model(self, row: Sequence[Any]) -> M:
        model = self._first((row,))
        assert model is not None
        return model

    def from_row(self, row: Sequence[Any]) -> M:
        """The validated model of one row of this table's columns (in field order)."""
        return self._to_model(row)

    def _decoded(self, row: Sequence[Any]) -> list[Any]:
        return [v if f is None or v is None else f(v) for f, v in zip(self._from_db, row)]

    def _to_models(self, rows: Sequence[Sequence[Any]]) -> list[M]:
        """Models from rows (the flat loop of every list-returning read)."""
        if self._any_from_db:
            rows = [self._decoded(row) for row in rows]
        validate, keys, key_index = self._validate, self._input_keys, self._key_index
        models = [validate(dict(zip(keys, row))) for row in rows]
        for model, row in zip(models, rows):
            model.__dict__[PERSISTED_KEY] = row[key_index]
        return models

    def _models(self, rows: Iterable[Sequence[Any]]) -> Iterator[M]:
        """Models from rows, one at a time (streaming: nothing else stays alive)."""
        validate, keys, key_index = self._validate, self._input_keys, self._key_index
        decode = self._decoded if self._any_from_db else None
        for row in rows:
            if decode is not None:
                row = decode(row)
            instance = validate(dict(zip(keys, row)))
            instance.__dict__[PERSISTED_KEY] = row[key_index]
            yield instance

    def _validate_hiding_passwords(self, data: Any) -> M:
        try:
            return self.model.model_validate(data)
        except ValidationError as exc:
            error = _hide_inputs(exc, self._hashed)
        # Raised outside the handler so the original (showing the input) is not chained.
        raise error

    # --- models -> parameters -------------------------------------------------------

    def _params(self, values: Mapping[str, Any], names: Sequence[str]) -> Sequence[Any]:
        """Driver parameters for ``names`` taken from a validated instance's values."""
        try:
            return self._extractor(names)(values)
        except ValueError as exc:
            raise InvalidQueryError(
                f"cannot store a value of {self.model_name} in {self.table_name!r}: {exc}",
                model=self.model_name, table=self.table_name,
            ) from exc

    def _extractor(self, names: Sequence[str]) -> Callable[[Any], Sequence[Any]]:
        """``values -> params`` for ``names``, built once: a C ``itemgetter`` when no
        codec applies (SQLite's NaN check on floats is inlined)."""
        key = tuple(names)
        found = self._extractors.get(key)
        if found is not None:
            return found
        codecs = [self._to_db[self.names.index(n)] for n in key]
        nan_checks = tuple(i for i, c in enumerate(codecs) if c is _sqlite_float)
        if len(key) > 1 and all(c is None or c is _sqlite_float for c in codecs):
            getter = operator.itemgetter(*key)
            if nan_checks:
                def found(values: Any) -> Sequence[Any]:
                    row: tuple[Any, ...] = getter(values)
                    for i in nan_checks:
                        if row[i] != row[i]:
                            raise ValueError("NaN cannot be stored in SQLite")
                    return row
            else:
                found = getter
        else:
            pairs = list(zip(key, codecs))

            def found(values: Any) -> Sequence[Any]:
                return [
                    v if f is None or v is None else f(v)
                    for f, v in ((f, values[n]) for n, f in pairs)
                ]
        self._extractors[key] = found
        return found

    def _coerce_key(self, key: Any) -> Any:
        if key is None or isinstance(key, (dict, list, tuple, set)):
            raise InvalidQueryError(
                f"invalid key {key!r} for {self.model_name}.{self.key}",
                model=self.model_name, field=self.key,
            )
        try:
            key = self._validate_key(key)
        except ValidationError as exc:
            raise InvalidQueryError(
                f"invalid key {key!r} for {self.model_name}.{self.key}: "
                f"{exc.errors()[0]['msg']}",
                model=self.model_name, field=self.key,
            ) from exc
        return self._key_to_db(key) if self._key_to_db is not None else key

    def _stored_key(self, key: Any) -> Any:
        return self._key_to_db(key) if self._key_to_db is not None and key is not None else key

    def _persisted(self, instance: BaseModel) -> Any:
        """The stored key of ``instance`` (as last read or written), else from its key
        field, else None (never saved)."""
        values = instance.__dict__
        if PERSISTED_KEY in values:
            return values[PERSISTED_KEY]
        key = values.get(self.key)
        return None if key is None else self._coerce_key(key)

    # --- validation of input --------------------------------------------------------

    def _build(self, data: Mapping[str, Any]) -> M:
        """A validated instance from field-name keyed ``data`` (unknown names rejected)."""
        unknown = [] if self._field_set.issuperset(data) else [
            k for k in data if k not in self._field_set
        ]
        if unknown:
            raise InvalidQueryError(
                f"{self.model_name} has no field {unknown[0]!r} "
                f"(fields: {', '.join(self.names)})",
                model=self.model_name, field=unknown[0],
            )
        if self._aliased:
            data = {_input_key(self.model, k): v for k, v in data.items()}
        return self._validate(data)

    def _revalidated(self, instance: BaseModel, extra: Mapping[str, Any] | None = None) -> M:
        """A fresh validated copy of ``instance``'s field values (plus ``extra``)."""
        values = instance.__dict__
        data = {n: values[n] for n in self.names}
        if extra:
            data.update(extra)
            fresh = self._build(data)
        else:
            if self._aliased:
                data = {k: data[n] for n, k in zip(self.names, self._input_keys)}
            fresh = self._validate(data)
        # which fields the caller gave decides what auto_now_add sets and what upsert updates
        fresh.__pydantic_fields_set__ = {*instance.model_fields_set, *(extra or ())}
        return fresh

    def _coerce_item(self, item: M | Mapping[str, Any]) -> M:
        if type(item) is dict:
            return self._build(item)
        if isinstance(item, self.model):
            return self._revalidated(item)
        if isinstance(item, Mapping):
            return self._build(item)
        raise InvalidQueryError(
            f"expected {self.model_name} instances or dicts, got {type(item).__name__}",
            model=self.model_name,
        )

    def _plain_passwords(self, values: Mapping[str, Any]) -> list[str]:
        """The password fields of ``values`` still holding plain text (to be hashed)."""
        return [n for n in self._hashed
                if isinstance(v := values.get(n), str) and not is_password_hash(v)]

    def _hash_passwords(self, values: dict[str, Any]) -> None:
        for name in self._hashed:
            if name in values:
                values[name] = self._hashed_value(values[name])

    def _hashed_value(self, value: Any) -> Any:
        """A password field's value as stored: plain text hashed, a hash kept as it is."""
        if isinstance(value, str) and not is_password_hash(value):
            return hash_password(value)
        return value

    def _check_managed_key(self, data: Mapping[str, Any] | BaseModel) -> None:
        value = data.__dict__.get(self.key) if isinstance(data, BaseModel) else data.get(self.key)
        if self.managed_key and value is not None:
            raise InvalidPrimaryKeyAssignmentError(
                f"{self.model_name}.{self.key} is generated by the database; "
                f"do not pass {self.key}={value!r} to create()",
                model=self.model_name, field=self.key, value=value,
            )

    def _not_found(self, args: tuple[Any, ...], criteria: Mapping[str, Any]) -> RecordNotFoundError:
        keyed = bool(args) and type(args[0]).__name__ != "Q"
        what = f"{self.key}={args[0]!r}" if keyed else ", ".join([
            *(repr(a) for a in args if not self._hashed),  # a Q may name a password
            *(f"{k}={'<hidden>' if k.partition('__')[0] in self._hashed else repr(v)}"
              for k, v in criteria.items())])
        return RecordNotFoundError(
            f"no {self.model_name} with {what} in table {self.table_name!r}",
            model=self.model_name, table=self.table_name,
        )


def _input_key(model: type[BaseModel], name: str) -> str:
    """The key pydantic validation expects for field ``name`` (its alias, if any)."""
    info = model.model_fields[name]
    if model.model_config.get("populate_by_name") or model.model_config.get("validate_by_name"):
        return name
    alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
    return alias if isinstance(alias, str) else name


def field_error(title: str, field: str, exc: ValidationError, hide: bool) -> ValidationError:
    """A one-field ``ValidationError`` located at ``field`` (input hidden for passwords)."""
    details: list[Any] = []
    for error in exc.errors():
        detail: dict[str, Any] = {
            "type": error["type"],
            "loc": (field, *error["loc"]),
            "input": "***" if hide else error["input"],
        }
        if "ctx" in error:
            detail["ctx"] = error["ctx"]
        details.append(detail)
    return ValidationError.from_exception_data(title, details)


def _hide_inputs(exc: ValidationError, fields: Sequence[str]) -> ValidationError:
    """``exc`` with the offending input of password fields replaced by ``***``."""
    if not fields:
        return exc
    details: list[Any] = []
    for error in exc.errors():
        hidden = not error["loc"] or error["loc"][0] in fields
        detail: dict[str, Any] = {
            "type": error["type"],
            "loc": error["loc"],
            "input": "***" if hidden else error["input"],
        }
        if "ctx" in error:
            detail["ctx"] = error["ctx"]
        details.append(detail)
    return ValidationError.from_exception_data(exc.title, details)
