"""registers' own column types (registers.db.column_types): the DDL of the dialects' types,
without importing the dialects.

Until 2.2 the MySQL/MariaDB and PostgreSQL column types were ``sqlalchemy.dialects.mysql``
and ``postgresql`` types (``LONGTEXT``, ``DATETIME(fsp=6)``, ``JSONB``...), so ``import
registers.db`` paid for both dialects. ``_old_column_type`` below is that mapping, written
with the dialects' types: every backend must get exactly the DDL it gave, and a database
created by it must be in step with today's models (``schema_diff()`` and Alembic's
autogenerate find nothing).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import subprocess
import sys
import textwrap
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest
import sqlalchemy as sa
from pydantic import BaseModel, Field, HttpUrl, NaiveDatetime, SecretBytes, SecretStr
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from registers.db import database_registry, db_field, get_engine, metadata_for
from registers.db.column_types import exact_collation
from registers.db.metadata import RegistryConfig
from registers.db.schema import build_table
from registers.db.typing_utils import _KINDS, ColumnSpec


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Every(BaseModel):
    """One field of every kind, indexed and not, nullable and not, sized and not."""

    id: int | None = None
    text: str
    maybe_text: str | None = None
    short: str = db_field(max_length=20, unique=True)
    code: str = db_field(index=True)
    long_key: str = Field(max_length=2000)
    price: Decimal
    amount: Decimal = Field(max_digits=10, decimal_places=2)
    places_only: Decimal | None = Field(default=None, decimal_places=4)
    at: dt.datetime
    naive: NaiveDatetime | None = None
    clock: dt.time
    day: dt.date
    blob: bytes
    secret: SecretStr
    secret_blob: SecretBytes | None = None
    link: HttpUrl | None = None
    tags: list[str] = []
    meta: dict[str, Any] | None = None
    choice: Literal["a", "b"] = "a"
    mixed: Literal["a", 1] | None = None
    token: uuid.UUID
    color: Color = Color.RED
    level: Level = Level.LOW
    flag: bool = False
    ratio: float = 0.5
    count: int = 0
    path: Path | None = None


OPTIONS: dict[str, Any] = {"table_name": "every", "unique_fields": [("code", "long_key")]}


def _old_column_type(spec: ColumnSpec, collation: str) -> sa.types.TypeEngine[Any]:
    """The column types of registers 2.1, spelled with the dialects' own types."""
    both = ("mysql", "mariadb")
    kind = spec.kind
    if kind in ("str", "string_like", "secret_str"):
        if spec.primary_key or spec.options.unique or spec.options.index or spec.indexed:
            varchar = mysql.VARCHAR(min(spec.max_length or 255, 768), charset="utf8mb4",
                                    collation=collation)
            return sa.Text().with_variant(varchar, *both)
        return sa.Text().with_variant(mysql.LONGTEXT(charset="utf8mb4", collation=collation),
                                      *both)
    if kind == "decimal":
        digits, places = spec.decimal_digits
        return (sa.Numeric(digits, places, asdecimal=True).with_variant(sa.String(), "sqlite")
                .with_variant(mysql.DECIMAL(digits or 65, places if places is not None else 30),
                              *both))
    if kind in ("datetime", "naive_datetime"):
        return (sa.DateTime(timezone=kind == "datetime").with_variant(sa.String(), "sqlite")
                .with_variant(mysql.DATETIME(fsp=6), *both))
    if kind == "time":
        return sa.Time().with_variant(sa.String(), "sqlite").with_variant(mysql.TIME(fsp=6),
                                                                          *both)
    if kind in ("bytes", "secret_bytes"):
        return sa.LargeBinary().with_variant(mysql.LONGBLOB(), *both)
    if kind == "json":
        return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    return _KINDS[kind].column_type(spec)  # unchanged: generic types only


def _tables(url: str, family: str, collation: str,
            monkeypatch: pytest.MonkeyPatch) -> tuple[sa.Table, sa.Table]:
    """(today's table, the 2.1 table) of :class:`Every`."""
    config = RegistryConfig(model=Every, database_url=url, **OPTIONS)
    new = build_table(config, sa.MetaData(), family)
    with monkeypatch.context() as patch:
        patch.setattr(ColumnSpec, "column_type",
                      lambda spec: _old_column_type(spec, collation))
        old = build_table(config, sa.MetaData(), family)
    return new, old


def _mariadb() -> sa.Dialect:
    return sa.create_engine("mariadb+pymysql://").dialect


def _mysql(version: tuple[int, ...]) -> sa.Dialect:
    dialect = sa.create_engine("mysql+pymysql://").dialect
    dialect.server_version_info = version
    return dialect


DIALECTS = {
    "sqlite": ("sqlite", lambda: sa.create_engine("sqlite://").dialect),
    "postgresql": ("postgresql", lambda: sa.create_engine("postgresql+psycopg://").dialect),
    "mariadb": ("mysql", _mariadb),
    "mysql-8": ("mysql", lambda: _mysql((8, 0, 36))),
    "mysql-5.7": ("mysql", lambda: _mysql((5, 7, 44))),
}


@pytest.mark.parametrize("name", list(DIALECTS))
def test_every_backend_gets_exactly_the_ddl_of_the_dialects_types(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    family, make = DIALECTS[name]
    dialect = make()
    new, old = _tables("sqlite:///unused.db", family, exact_collation(dialect), monkeypatch)

    def ddl(table: sa.Table) -> list[str]:
        return [str(CreateTable(table).compile(dialect=dialect)),
                *(str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes)]

    assert ddl(new) == ddl(old)
    text = ddl(new)[0].replace("`", "")
    expected = {  # the types the 2.1 mapping gave, spelled out (a guard on the guard)
        "sqlite": ["id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT", "text TEXT NOT NULL",
                   "price VARCHAR NOT NULL", "at VARCHAR NOT NULL", "blob BLOB NOT NULL",
                   "meta JSON"],
        "postgresql": ["price NUMERIC NOT NULL", "amount NUMERIC(10, 2) NOT NULL",
                       "at TIMESTAMP WITH TIME ZONE NOT NULL", "naive TIMESTAMP WITHOUT TIME ZONE",
                       "clock TIME WITHOUT TIME ZONE NOT NULL", "blob BYTEA NOT NULL",
                       "tags JSONB NOT NULL", "meta JSONB", "token UUID NOT NULL"],
        "mysql": [f"text LONGTEXT CHARACTER SET utf8mb4 COLLATE {exact_collation(dialect)} "
                  "NOT NULL",
                  f"short VARCHAR(20) CHARACTER SET utf8mb4 COLLATE {exact_collation(dialect)}",
                  f"long_key VARCHAR(768) CHARACTER SET utf8mb4 COLLATE "
                  f"{exact_collation(dialect)}",
                  "price DECIMAL(65, 30) NOT NULL", "amount DECIMAL(10, 2) NOT NULL",
                  "places_only DECIMAL(65, 4)",
                  "at DATETIME(6) NOT NULL", "naive DATETIME(6)", "clock TIME(6) NOT NULL",
                  "blob LONGBLOB NOT NULL", "secret_blob LONGBLOB", "tags JSON NOT NULL",
                  "token VARCHAR(36) NOT NULL"],
    }[family]
    if dialect.name == "mysql":  # SQLAlchemy renders mysql_* table options on "mysql" only
        expected.append("CHARSET=utf8mb4 COLLATE utf8mb4_bin")
    for piece in expected:
        assert piece in text, (piece, text)


def test_the_collation_follows_the_server() -> None:
    assert exact_collation(_mariadb()) == "utf8mb4_nopad_bin"  # utf8mb4_bin pads there
    assert exact_collation(_mysql((8, 0, 36))) == "utf8mb4_0900_bin"
    assert exact_collation(_mysql((5, 7, 44))) == "utf8mb4_bin"


def _alembic_differences(url: str) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with get_engine(url).connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True})
        return list(compare_metadata(context, metadata_for(url)))


def _values() -> dict[str, Any]:
    return {
        "text": "naïve 🐍 text " * 3, "short": "Ab ", "code": "c-1", "long_key": "k" * 700,
        "price": Decimal("12345678901234567890.123456789012345678901234567890"),
        "amount": Decimal("-99999999.99"),
        "places_only": Decimal("0.0001"),
        "at": dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=dt.timezone.utc),
        "naive": dt.datetime(1970, 1, 1, 0, 0, 0, 1), "clock": dt.time(23, 59, 59, 999999),
        "day": dt.date(1, 1, 1), "blob": bytes(range(256)) * 300, "secret": "s3cret",
        "secret_blob": b"\x00", "link": "https://example.com/x", "tags": ["a", "🐍"],
        "meta": {"k": [1, None, "v"]}, "choice": "b", "mixed": 1, "token": uuid.uuid4(),
        "color": Color.GREEN, "level": Level.HIGH, "flag": True, "ratio": -1e300, "count": -1,
        "path": Path("a/b"),
    }


def test_a_database_created_by_the_dialects_types_is_in_step_with_the_models(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = get_engine(database_url)
    with engine.connect():
        collation = exact_collation(engine.dialect)  # the server's version is known now
    family = "mysql" if engine.dialect.name in ("mysql", "mariadb") else engine.dialect.name
    _, old = _tables(database_url, family, collation, monkeypatch)
    old.metadata.create_all(engine)

    model = database_registry(database_url, auto_create=False, **OPTIONS)(
        type("Every", (Every,), {"__module__": __name__}))

    assert model.objects.schema_diff() == []
    assert _alembic_differences(database_url) == []
    # ...and it works: every value comes back as written.
    values = _values()
    created = model.objects.create(**values)
    assert model.objects.require(created.id) == created
    again = model.objects.get(short="Ab ")
    assert again is not None and again.price == values["price"]
    assert again.clock == values["clock"] and again.blob == values["blob"]
    assert model.objects.get(short="ab ") is None and model.objects.get(short="Ab") is None


def test_a_fresh_table_is_in_step_with_the_models(database_url: str) -> None:
    model = database_registry(database_url, **OPTIONS)(
        type("Every", (Every,), {"__module__": __name__}))
    created = model.objects.create(**_values())

    assert model.objects.schema_diff() == []
    assert _alembic_differences(database_url) == []
    assert model.objects.require(created.id) == created


def test_a_schema_diff_message_shows_the_ddl_of_the_backend(database_url: str) -> None:
    engine = get_engine(database_url)
    sa.Table("every", (metadata := sa.MetaData()), sa.Column("id", sa.BigInteger,
                                                              primary_key=True),
             sa.Column("at", sa.Integer), sa.Column("meta", sa.Integer))
    metadata.create_all(engine)

    @database_registry(database_url, table_name="every", auto_create=False)
    class Stamp(BaseModel):
        id: int | None = None
        at: dt.datetime
        meta: dict[str, int]

    shown = {d.column: d.expected for d in Stamp.objects.schema_diff()
             if d.kind == "type_mismatch"}
    family = "mysql" if engine.dialect.name in ("mysql", "mariadb") else engine.dialect.name
    assert shown == {
        "sqlite": {"at": "VARCHAR", "meta": "JSON"},
        "postgresql": {"at": "TIMESTAMP WITH TIME ZONE", "meta": "JSONB"},
        "mysql": {"at": "DATETIME(6)", "meta": "JSON"},
    }[family]


# --- what `import registers.db` loads ------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import datetime, decimal, json, sys, uuid

    HEAVY = ("sqlalchemy.dialects.mysql", "sqlalchemy.dialects.postgresql",
             "sqlalchemy.ext.asyncio", "greenlet", "aiosqlite", "asyncpg", "aiomysql",
             "psycopg", "pymysql", "alembic")
    seen = {{}}
    # What SQLAlchemy itself loads is not registers' doing (2.0.0, the floor, imports
    # greenlet with `import sqlalchemy`; later releases do not).
    import sqlalchemy
    base = {{m for m in HEAVY if m in sys.modules}}

    def note(step):
        seen[step] = sorted(m for m in HEAVY if m in sys.modules and m not in base)

    import registers.db
    from pydantic import BaseModel
    from registers.db import database_registry, db_field
    note("import")

    @database_registry({url!r}, table_name="items")
    class Item(BaseModel):
        id: int | None = None
        name: str = db_field(unique=True)
        price: decimal.Decimal = decimal.Decimal("1.10")
        at: datetime.datetime = datetime.datetime(2020, 1, 1, 0, 0, 0, 5)
        clock: datetime.time = datetime.time(1, 2, 3, 4)
        blob: bytes = b"\\x00"
        meta: dict[str, int] = {{}}
        token: uuid.UUID = uuid.UUID(int=1)
    note("decorate")

    if {use!r}:
        Item.objects.create(name="a", meta={{"k": 1}})
        assert Item.objects.get(name="a").meta == {{"k": 1}}
        assert [i.name for i in Item.objects.filter(name="a")] == ["a"]
        assert Item.objects.schema_diff() == []
        note("use")
    print(json.dumps(seen))
    """
)


def _modules_loaded(url: str, use: bool, cwd: Path) -> dict[str, list[str]]:
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(url=url, use=use)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_sqlite_application_loads_no_server_dialect_nor_async_machinery(
    tmp_path: Path,
) -> None:
    assert _modules_loaded("sqlite:///app.db", True, tmp_path) == {
        "import": [], "decorate": [], "use": []}


@pytest.mark.parametrize(
    ("url", "loaded"),
    [
        ("postgresql+psycopg://u@127.0.0.1:1/db", ["psycopg", "sqlalchemy.dialects.postgresql"]),
        ("mysql+pymysql://u@127.0.0.1:1/db", ["pymysql", "sqlalchemy.dialects.mysql"]),
        ("mariadb+pymysql://u@127.0.0.1:1/db", ["pymysql", "sqlalchemy.dialects.mysql"]),
    ],
)
def test_a_server_application_loads_its_own_dialect_only(
    url: str, loaded: list[str], tmp_path: Path
) -> None:
    seen = _modules_loaded(url, False, tmp_path)  # decorating does not connect
    assert seen["import"] == []
    assert [m for m in seen["decorate"] if m.startswith("sqlalchemy.")] == [
        m for m in loaded if m.startswith("sqlalchemy.")]
