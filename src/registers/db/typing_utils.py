"""Annotation -> column mapping, value codecs per dialect, URL and name defaults.

One table (:data:`_KINDS`) says how each Python type is stored: its SQLAlchemy column
type for DDL, and how values travel to and from each database. Adding a type is adding a
row. The codecs are plain callables applied on the hot path only where a conversion is
needed (``None`` means "the driver handles it").
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import math
import re
import types
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeGuard, Union

import pydantic
import sqlalchemy as sa
from pydantic import BaseModel, TypeAdapter
from pydantic.fields import FieldInfo

from registers.db.column_types import (
    BinaryJSON,
    ExactLongText,
    ExactVarchar,
    LongBinary,
    PreciseDateTime,
    PreciseTime,
)
from registers.db.fields import ColumnOptions, column_options

__all__ = [
    "Codec",
    "ColumnSpec",
    "default_table_name",
    "is_model_class",
    "is_optional",
    "normalize_url",
    "unwrap_annotation",
]

Codec = Callable[[Any], Any]
_NoneType = type(None)


def normalize_url(database_url: str | None, table_name: str) -> str:
    """Turn the decorator's ``database_url`` into a SQLAlchemy URL string.

    ``None`` means a SQLite file named after the table in the working directory; a bare
    path (``"app.db"``) means a SQLite file; anything with ``://`` is used as given.
    """
    if database_url is None:
        return f"sqlite:///{table_name}.db"
    if not isinstance(database_url, str) or not database_url.strip():
        raise ValueError(f"database_url must be a non-empty string, got {database_url!r}")
    if "://" in database_url:
        return database_url
    return f"sqlite:///{database_url}"


def default_table_name(class_name: str) -> str:
    """``OrderItem`` -> ``order_items``, ``Category`` -> ``categories``."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", class_name).lower()
    if snake.endswith("y") and len(snake) > 1 and snake[-2] not in "aeiou":
        return snake[:-1] + "ies"
    if snake.endswith(("s", "x", "z", "ch", "sh")):
        return snake + "es"
    return snake + "s"


def is_optional(annotation: Any) -> bool:
    """Whether ``annotation`` admits ``None`` (``Optional[T]``, ``T | None``, ``None``)."""
    annotation = _strip_annotated(annotation)
    if annotation is None or annotation is _NoneType or annotation is Any:
        return True
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return any(arg is _NoneType for arg in typing.get_args(annotation))
    return False


def _strip_annotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def is_model_class(value: Any) -> TypeGuard[type[BaseModel]]:
    """Whether ``value`` is a pydantic model class.

    Not just ``isinstance(value, type) and issubclass(value, BaseModel)``: on Python 3.10
    a parametrized generic (``dict[str, Any]``, ``list[Post]``) passes the ``isinstance``
    test and then makes ``issubclass`` raise ``TypeError``.
    """
    return (isinstance(value, type) and typing.get_origin(value) is None
            and issubclass(value, BaseModel))


def unwrap_annotation(annotation: Any) -> Any:
    """The stored type: ``Annotated`` and ``Optional`` removed (``int | None`` -> ``int``)."""
    annotation = _strip_annotated(annotation)
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not _NoneType]
        if len(args) == 1:
            return unwrap_annotation(args[0])
    return annotation


# --- codecs -------------------------------------------------------------------------

def _iso(value: Any) -> Any:
    return value.isoformat()


def _sqlite_datetime(value: _dt.datetime) -> str:
    # Aware values are kept in UTC and every value with microseconds, so the stored
    # text sorts and compares in time order.
    if value.tzinfo is not None:
        value = value.astimezone(_dt.timezone.utc)
    return value.isoformat(timespec="microseconds")


def _to_str(value: Any) -> Any:
    return str(value)


def _enum_value(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _utc(value: _dt.datetime) -> _dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(_dt.timezone.utc)


def _datetime_to_naive_utc(value: _dt.datetime) -> _dt.datetime:
    return _utc(value).replace(tzinfo=None)


def _datetime_from_naive_utc(value: Any) -> Any:
    if isinstance(value, _dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=_dt.timezone.utc)
    return value


def _datetime_to_aware(value: _dt.datetime) -> _dt.datetime:
    return _utc(value)


def _datetime_in_utc(value: Any) -> Any:
    if isinstance(value, _dt.datetime) and value.tzinfo is not None:
        return value.astimezone(_dt.timezone.utc)
    return value


def _time_from_timedelta(value: Any) -> Any:
    # PyMySQL returns TIME columns as timedelta.
    if isinstance(value, _dt.timedelta):
        seconds = int(value.total_seconds())
        return _dt.time(seconds // 3600, seconds % 3600 // 60, seconds % 60, value.microseconds)
    return value


def _naive_time(codec: Codec | None) -> Codec:
    """``codec`` behind a check that the time has no UTC offset: no backend keeps one
    (PostgreSQL's ``time`` and MySQL's ``TIME`` drop it), so it is refused everywhere."""
    def store(value: Any) -> Any:
        if isinstance(value, _dt.time) and value.tzinfo is not None:
            raise ValueError(
                f"time {value.isoformat()} has a UTC offset, which no backend keeps "
                "(store a naive time, or a datetime)")
        return value if codec is None else codec(value)
    return store


# MySQL's DECIMAL holds at most 65 digits; an undeclared Decimal field is DECIMAL(65, 30).
_MYSQL_PLACES = 30
_MYSQL_DIGITS = 65


def _column_digits(spec: ColumnSpec) -> tuple[int | None, int | None]:
    """``(precision, scale)`` of a Decimal column. ``max_digits`` alone bounds the digits,
    not where the point goes, so it leaves the column unbounded (pydantic checks the
    digits): ``NUMERIC(12)`` would mean scale 0, and PostgreSQL would round 1.5 to 2."""
    digits, places = spec.decimal_digits
    return (None, None) if places is None else (digits, places)


def _mysql_decimal(places: int | None, digits: int | None) -> Codec:
    places = _MYSQL_PLACES if places is None else places
    digits = _MYSQL_DIGITS if digits is None else digits

    def store(value: Any) -> Any:
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise ValueError(f"Decimal {value} cannot be stored in MySQL/MariaDB")
            _, numerals, exponent = value.as_tuple()
            assert isinstance(exponent, int)
            after = max(0, -exponent)
            before = max(0, len(numerals) + exponent)
            if after > places or before > digits - places:
                raise ValueError(
                    f"Decimal {value} does not fit DECIMAL({digits}, {places}) exactly "
                    f"(declare max_digits/decimal_places on the field)")
        return value
    return store


def _bounded_text(length: int, codec: Codec | None) -> Codec:
    def store(value: Any) -> Any:
        stored = value if codec is None else codec(value)
        if isinstance(stored, str) and len(stored) > length:
            raise ValueError(
                f"text of {len(stored)} characters is longer than this indexed column's "
                f"VARCHAR({length}) on MySQL/MariaDB (declare max_length, up to 768)")
        return stored
    return store


def _finite_float(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} cannot be stored in this database (finite floats only)")
    return value


def _sqlite_float(value: Any) -> Any:
    # SQLite stores NaN as NULL, so NaN would silently become None: refuse it.
    if isinstance(value, float) and math.isnan(value):
        raise ValueError("NaN cannot be stored in SQLite")
    return value


def _secret_value(value: Any) -> Any:
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value


def _json_loads(value: Any) -> Any:
    if isinstance(value, (str, bytes, bytearray)):
        return json.loads(value)
    return value


# --- the table ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Kind:
    """How one kind of Python value is stored, per dialect."""

    name: str
    column_type: Callable[[ColumnSpec], sa.types.TypeEngine[Any]]
    to_db: dict[str, Codec | None]
    from_db: dict[str, Codec | None]


def _text_type(spec: ColumnSpec) -> sa.types.TypeEngine[Any]:
    # MySQL cannot index TEXT: keys, unique and indexed strings get a bounded VARCHAR.
    length = spec.max_length or 255
    if spec.primary_key or spec.options.unique or spec.options.index or spec.indexed:
        return sa.Text().with_variant(ExactVarchar(min(length, 768)), "mysql", "mariadb")
    return sa.Text().with_variant(ExactLongText(), "mysql", "mariadb")


def _int_type(spec: ColumnSpec) -> sa.types.TypeEngine[Any]:
    # SQLite only auto-generates keys for a column declared exactly INTEGER PRIMARY KEY.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _decimal_type(spec: ColumnSpec) -> sa.types.TypeEngine[Any]:
    digits, places = _column_digits(spec)
    mysql_digits = digits or _MYSQL_DIGITS
    mysql_places = _MYSQL_PLACES if places is None else places
    # SQLite's NUMERIC affinity would turn "1.10" into a REAL: keep the exact text.
    return (
        sa.Numeric(digits, places, asdecimal=True)
        .with_variant(sa.String(), "sqlite")
        .with_variant(sa.DECIMAL(mysql_digits, mysql_places), "mysql", "mariadb")
    )


def _datetime_type(spec: ColumnSpec) -> sa.types.TypeEngine[Any]:
    return (
        sa.DateTime(timezone=True)
        .with_variant(sa.String(), "sqlite")
        .with_variant(PreciseDateTime(), "mysql", "mariadb")
    )


def _time_type(spec: ColumnSpec) -> sa.types.TypeEngine[Any]:
    return sa.Time().with_variant(sa.String(), "sqlite").with_variant(
        PreciseTime(), "mysql", "mariadb"
    )


def _enum_type(spec: ColumnSpec) -> sa.types.TypeEngine[Any]:
    values = [member.value for member in spec.python_type]
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return sa.BigInteger()
    length = max((len(str(v)) for v in values), default=1)
    return sa.String(max(length, 32))


def _json_type(spec: ColumnSpec) -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(BinaryJSON(), "postgresql")


def _same(codec: Codec | None) -> dict[str, Codec | None]:
    return {"sqlite": codec, "postgresql": codec, "mysql": codec}


_KINDS: dict[str, _Kind] = {
    "bool": _Kind("bool", lambda s: sa.Boolean(), _same(None), _same(None)),
    "int": _Kind("int", _int_type, _same(None), _same(None)),
    "float": _Kind(
        "float",
        lambda s: sa.Double(),
        {"sqlite": _sqlite_float, "postgresql": None, "mysql": _finite_float},
        _same(None),
    ),
    "str": _Kind("str", _text_type, _same(None), _same(None)),
    "bytes": _Kind(
        "bytes",
        lambda s: sa.LargeBinary().with_variant(LongBinary(), "mysql", "mariadb"),
        _same(None),
        {"sqlite": None, "postgresql": bytes, "mysql": None},
    ),
    "decimal": _Kind(
        "decimal",
        _decimal_type,
        {"sqlite": _to_str, "postgresql": None, "mysql": None},
        _same(None),
    ),
    "uuid": _Kind(
        "uuid",
        lambda s: sa.Uuid().with_variant(sa.String(36), "sqlite", "mysql", "mariadb"),
        {"sqlite": _to_str, "postgresql": None, "mysql": _to_str},
        _same(None),
    ),
    "date": _Kind(
        "date",
        lambda s: sa.Date().with_variant(sa.String(), "sqlite"),
        {"sqlite": _iso, "postgresql": None, "mysql": None},
        _same(None),
    ),
    "time": _Kind(
        "time",
        _time_type,
        {"sqlite": _iso, "postgresql": None, "mysql": None},
        {"sqlite": None, "postgresql": None, "mysql": _time_from_timedelta},
    ),
    "datetime": _Kind(
        "datetime",
        _datetime_type,
        # SQLite keeps the ISO text, offset included: naive and aware both round-trip.
        {
            "sqlite": _sqlite_datetime,
            "postgresql": _datetime_to_aware,
            "mysql": _datetime_to_naive_utc,
        },
        {"sqlite": None, "postgresql": _datetime_in_utc, "mysql": _datetime_from_naive_utc},
    ),
    # pydantic's NaiveDatetime: stored without a zone everywhere, returned naive.
    "naive_datetime": _Kind(
        "naive_datetime",
        lambda s: sa.DateTime(timezone=False)
        .with_variant(sa.String(), "sqlite")
        .with_variant(PreciseDateTime(), "mysql", "mariadb"),
        {"sqlite": _sqlite_datetime, "postgresql": None, "mysql": None},
        _same(None),
    ),
    # SecretStr / SecretBytes: the secret itself is stored (not pydantic's "**********").
    "secret_str": _Kind("secret_str", _text_type, _same(_secret_value), _same(None)),
    "secret_bytes": _Kind(
        "secret_bytes",
        lambda s: sa.LargeBinary().with_variant(LongBinary(), "mysql", "mariadb"),
        _same(_secret_value),
        {"sqlite": None, "postgresql": bytes, "mysql": None},
    ),
    # Other pydantic types that are strings in JSON (EmailStr, HttpUrl, ...).
    "string_like": _Kind("string_like", _text_type, _same(_to_str), _same(None)),
    "enum": _Kind("enum", _enum_type, _same(_enum_value), _same(None)),
    "json": _Kind("json", _json_type, _same(None), {
        "sqlite": _json_loads, "postgresql": None, "mysql": _json_loads,
    }),
}

_SCALARS: list[tuple[type, str]] = [
    (bool, "bool"),
    (int, "int"),
    (float, "float"),
    (str, "str"),
    (bytes, "bytes"),
    (Decimal, "decimal"),
    (uuid.UUID, "uuid"),
    (_dt.datetime, "datetime"),  # before date: datetime is a date subclass
    (_dt.date, "date"),
    (_dt.time, "time"),
    (enum.Enum, "enum"),
    (Path, "str"),
]


def _kind_of(python_type: Any) -> str:
    if typing.get_origin(python_type) is Literal:
        values = typing.get_args(python_type)
        if all(isinstance(v, str) for v in values):
            return "str"
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return "int"
        return "json"
    # On Python 3.10 a parametrized generic (dict[str, Any]) passes isinstance(..., type).
    if isinstance(python_type, type) and typing.get_origin(python_type) is None:
        for base, kind in _SCALARS:
            if issubclass(python_type, base):
                return kind
        special = _PYDANTIC_KINDS.get(python_type)
        if special is not None:
            return special
        if _is_json_string(python_type):
            return "string_like"
    return "json"


_PYDANTIC_KINDS: dict[Any, str] = {
    pydantic.NaiveDatetime: "naive_datetime",
    pydantic.AwareDatetime: "datetime",
    pydantic.PastDatetime: "datetime",
    pydantic.FutureDatetime: "datetime",
    pydantic.PastDate: "date",
    pydantic.FutureDate: "date",
    pydantic.SecretStr: "secret_str",
    pydantic.SecretBytes: "secret_bytes",
}


def _is_json_string(python_type: type) -> bool:
    """Whether pydantic serialises the type as a plain JSON string (EmailStr, HttpUrl...)."""
    if issubclass(python_type, BaseModel):
        return False
    try:
        schema = TypeAdapter(python_type).json_schema()
    except Exception:  # not every type has a JSON schema; it is then stored as JSON
        return False
    return schema.get("type") == "string" and schema.get("format") not in ("binary",)


@dataclass
class ColumnSpec:
    """One model field as a column: its type, nullability, options and codecs."""

    name: str
    annotation: Any
    python_type: Any
    kind: str
    nullable: bool
    options: ColumnOptions
    primary_key: bool = False
    unique: bool = False
    max_length: int | None = None
    decimal_digits: tuple[int | None, int | None] = (None, None)
    hashed: bool = False
    indexed: bool = False  # part of the key, a UNIQUE constraint or an index
    constraints: tuple[Any, ...] = ()

    @classmethod
    def from_field(cls, name: str, info: FieldInfo) -> ColumnSpec:
        annotation = info.annotation
        python_type = unwrap_annotation(annotation)
        nullable = is_optional(annotation) or (
            info.default is None and not info.is_required()
        )
        options = column_options(info)
        max_length = digits = places = None
        for meta in info.metadata:
            max_length = getattr(meta, "max_length", None) or max_length
            digits = getattr(meta, "max_digits", None) or digits
            places = getattr(meta, "decimal_places", None) or places
        kind = _kind_of(python_type)
        if kind == "str" and python_type is Path:
            kind = "str"
        return cls(
            name=name,
            annotation=annotation,
            python_type=python_type,
            kind=kind,
            nullable=nullable,
            options=options,
            max_length=max_length,
            decimal_digits=(digits, places),
            constraints=tuple(m for m in info.metadata if not isinstance(m, ColumnOptions)),
        )

    def value_annotation(self) -> Any:
        """The field's type with its constraints (``max_length``...), for validating updates."""
        if not self.constraints:
            return self.annotation
        params = (self.annotation, *self.constraints)
        return typing.Annotated[params]

    def column_type(self) -> sa.types.TypeEngine[Any]:
        return _KINDS[self.kind].column_type(self)

    def to_db(self, dialect: str) -> Codec | None:
        """The write conversion for ``dialect`` (``None`` when the driver needs none)."""
        if self.kind == "json":
            return _json_dumper(self.annotation)
        if self.python_type is Path:
            return _to_str
        family = _family(dialect)
        codec = _KINDS[self.kind].to_db[family]
        if self.kind == "time":
            return _naive_time(codec)
        if family == "mysql" and self.kind == "decimal":
            digits, places = _column_digits(self)
            return _mysql_decimal(places, digits)
        if family == "mysql" and self.kind in ("str", "string_like", "secret_str") and (
                self.primary_key or self.options.unique or self.options.index or self.indexed):
            return _bounded_text(min(self.max_length or 255, 768), codec)
        return codec

    def from_db(self, dialect: str) -> Codec | None:
        """The read conversion for ``dialect`` (``None`` when pydantic needs none)."""
        return _KINDS[self.kind].from_db[_family(dialect)]


def _family(dialect: str) -> str:
    return "mysql" if dialect in ("mysql", "mariadb") else dialect


def _json_dumper(annotation: Any) -> Codec:
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)

    def dump(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, BaseModel):
            return value.model_dump_json()
        return adapter.dump_json(value).decode("utf-8")

    return dump
