"""registers' own column types: MySQL/MariaDB and PostgreSQL DDL without their dialects.

Each type is a generic SQLAlchemy type whose DDL on the backends that need something more
comes from a :func:`~sqlalchemy.ext.compiler.compiles` hook, so defining and using them
imports neither ``sqlalchemy.dialects.mysql`` nor ``sqlalchemy.dialects.postgresql``
(about 150-400 ms of ``import registers.db``): a SQLite application never loads them, and
a server application loads only its own dialect, when it connects. The DDL is what the
dialects' own types (``mysql.LONGTEXT``, ``mysql.DATETIME(fsp=6)``, ``postgresql.JSONB``...)
produce. :func:`registers.db.typing_utils.ColumnSpec.column_type` uses them as variants
of a generic base type, so the other backends keep the generic DDL.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

__all__ = [
    "BinaryJSON",
    "ExactLongText",
    "ExactVarchar",
    "LongBinary",
    "PreciseDateTime",
    "PreciseTime",
    "exact_collation",
]

_MYSQL = ("mysql", "mariadb")


def exact_collation(dialect: Any) -> str:
    """The binary, NO PAD utf8mb4 collation of this MySQL/MariaDB server."""
    if getattr(dialect, "is_mariadb", False):
        return "utf8mb4_nopad_bin"  # MariaDB's utf8mb4_bin pads: 'a' = 'a ' there
    version = getattr(dialect, "server_version_info", None) or (0,)
    return "utf8mb4_0900_bin" if version >= (8, 0) else "utf8mb4_bin"


class ExactVarchar(sa.String):
    """MySQL/MariaDB ``VARCHAR(n)`` in utf8mb4 with a binary, NO PAD collation: equality,
    ``unique`` and upserts are exact (case and trailing spaces matter), as elsewhere."""

    cache_ok = True


class ExactLongText(sa.Text):
    """MySQL/MariaDB ``LONGTEXT`` in utf8mb4 with a binary, NO PAD collation."""

    cache_ok = True


class PreciseDateTime(sa.DateTime):
    """MySQL/MariaDB ``DATETIME(6)``: microseconds kept, as on the other backends."""

    cache_ok = True


class PreciseTime(sa.Time):
    """MySQL/MariaDB ``TIME(6)``: microseconds kept, as on the other backends."""

    cache_ok = True


class LongBinary(sa.LargeBinary):
    """MySQL/MariaDB ``LONGBLOB`` (up to 4 GiB; ``BLOB`` holds 64 KiB)."""

    cache_ok = True


class BinaryJSON(sa.JSON):
    """PostgreSQL ``JSONB``: parsed once on write, comparable and indexable."""

    cache_ok = True


@compiles(ExactVarchar, *_MYSQL)
def _exact_varchar(type_: ExactVarchar, compiler: Any, **kw: Any) -> str:
    return (f"VARCHAR({type_.length}) CHARACTER SET utf8mb4 "
            f"COLLATE {exact_collation(compiler.dialect)}")


@compiles(ExactLongText, *_MYSQL)
def _exact_longtext(type_: ExactLongText, compiler: Any, **kw: Any) -> str:
    return f"LONGTEXT CHARACTER SET utf8mb4 COLLATE {exact_collation(compiler.dialect)}"


@compiles(PreciseDateTime, *_MYSQL)
def _precise_datetime(type_: PreciseDateTime, compiler: Any, **kw: Any) -> str:
    return "DATETIME(6)"


@compiles(PreciseTime, *_MYSQL)
def _precise_time(type_: PreciseTime, compiler: Any, **kw: Any) -> str:
    return "TIME(6)"


@compiles(LongBinary, *_MYSQL)
def _long_binary(type_: LongBinary, compiler: Any, **kw: Any) -> str:
    return "LONGBLOB"


@compiles(BinaryJSON, "postgresql")
def _binary_json(type_: BinaryJSON, compiler: Any, **kw: Any) -> str:
    return "JSONB"
