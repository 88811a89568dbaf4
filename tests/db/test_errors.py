"""SPEC D9: the error hierarchy, where each error is raised, and what its message says."""

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

import registers.db
import registers.db.exceptions
from registers.db import (
    ConfigurationError,
    ConstraintError,
    DuplicateKeyError,
    ImmutableFieldError,
    InvalidPrimaryKeyAssignmentError,
    InvalidQueryError,
    MigrationError,
    ModelRegistrationError,
    RecordNotFoundError,
    RegistryError,
    RelationshipError,
    SchemaError,
    UniqueConstraintError,
    database_registry,
    db_field,
)
from registers.db.relations import HasMany

ERRORS = [
    ConfigurationError,
    ModelRegistrationError,
    SchemaError,
    MigrationError,
    RelationshipError,
    DuplicateKeyError,
    InvalidPrimaryKeyAssignmentError,
    ImmutableFieldError,
    UniqueConstraintError,
    RecordNotFoundError,
    InvalidQueryError,
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.__name__)
def test_every_error_inherits_registry_error(error: type[Exception]) -> None:
    assert issubclass(error, RegistryError)
    assert issubclass(RegistryError, Exception)


@pytest.mark.parametrize("error", [RegistryError, *ERRORS], ids=lambda e: e.__name__)
def test_every_error_lives_in_the_exceptions_module(error: type[Exception]) -> None:
    assert getattr(registers.db.exceptions, error.__name__) is error
    assert getattr(registers.db, error.__name__) is error


def test_errors_are_distinct_classes() -> None:
    assert len(set(ERRORS)) == len(ERRORS)
    assert not issubclass(DuplicateKeyError, UniqueConstraintError)
    assert not issubclass(UniqueConstraintError, DuplicateKeyError)


# ----------------------------------------------------------- each error raised where it should


class Env:
    """A small schema on the test database, for the scenarios below."""

    def __init__(self, url: str) -> None:
        self.url = url

        @database_registry(url, table_name="users", unique_fields=["email"])
        class User(BaseModel):
            id: int | None = None
            name: str
            email: str

        @database_registry(url, table_name="skus")
        class Sku(BaseModel):
            id: int
            name: str

        self.User = User
        self.Sku = Sku
        User.objects.create(name="Ada", email="ada@x.io")
        Sku.objects.create(id=7, name="bolt")


def _bad_model_option(env: Env) -> None:
    class Thing(BaseModel):
        id: int | None = None

    database_registry(env.url, table_name="things", key_field="uid")(Thing)


def _not_a_model(env: Env) -> None:
    class Thing:
        pass

    database_registry(env.url, table_name="things")(Thing)


def _immutable(env: Env) -> None:
    user = env.User.objects.get(1)
    user.id = 2
    user.save()


def _relationship(env: Env) -> None:
    class Loose(BaseModel):
        id: int | None = None
        user_id: int

    env.User.loose = HasMany(Loose, foreign_key="user_id")
    _ = env.User.objects.get(1).loose


SCENARIOS: list[tuple[str, type[Exception], Callable[[Env], Any], list[str]]] = [
    ("configuration", ConfigurationError, _bad_model_option, ["key_field", "uid"]),
    ("registration", ModelRegistrationError, _not_a_model, ["Thing"]),
    (
        "migration",
        MigrationError,
        lambda env: env.User.objects.add_column("email", str | None),
        ["email", "users"],
    ),
    ("relationship", RelationshipError, _relationship, ["Loose"]),
    (
        "duplicate-key",
        DuplicateKeyError,
        lambda env: env.Sku.objects.create(id=7, name="again"),
        ["7"],
    ),
    (
        "managed-key",
        InvalidPrimaryKeyAssignmentError,
        lambda env: env.User.objects.create(id=3, name="x", email="x@x.io"),
        ["id", "User"],
    ),
    ("immutable", ImmutableFieldError, _immutable, ["id", "User"]),
    (
        "unique",
        UniqueConstraintError,
        lambda env: env.User.objects.create(name="Other", email="ada@x.io"),
        ["email"],
    ),
    (
        "not-found",
        RecordNotFoundError,
        lambda env: env.User.objects.require(email="ghost@x.io"),
        ["User", "email", "ghost@x.io"],
    ),
    (
        "not-found-key",
        RecordNotFoundError,
        lambda env: env.Sku.objects.require(404),
        ["Sku", "404"],
    ),
    (
        "unknown-field",
        InvalidQueryError,
        lambda env: env.User.objects.filter(nickname="x"),
        ["nickname"],
    ),
    (
        "unknown-operator",
        InvalidQueryError,
        lambda env: env.User.objects.filter(name__soundslike="x"),
        ["soundslike"],
    ),
    (
        "empty-delete",
        InvalidQueryError,
        lambda env: env.User.objects.delete_where(),
        [],
    ),
]


@pytest.mark.parametrize(
    ("error", "scenario", "mentions"),
    [pytest.param(e, s, m, id=i) for i, e, s, m in SCENARIOS],
)
def test_error_is_raised_with_a_helpful_message(
    database_url: str, error: type[Exception], scenario: Callable[[Env], Any], mentions: list[str]
) -> None:
    env = Env(database_url)

    with pytest.raises(error) as info:
        scenario(env)

    message = str(info.value)
    assert message.strip()
    for word in mentions:
        assert word in message


def test_schema_error_when_ddl_fails(database_url: str) -> None:
    @database_registry(database_url, table_name="parents")
    class Parent(BaseModel):
        id: int | None = None

    @database_registry(database_url, table_name="kids")
    class Kid(BaseModel):
        id: int | None = None
        parent_id: int = db_field(foreign_key="parents.id")

    Kid.objects.create(parent_id=Parent.objects.create().id)

    with pytest.raises(SchemaError) as info:
        Parent.drop_schema()

    assert "parents" in str(info.value)


# ------------------------------------------------------------- no raw exception escapes


def _no_raw_escape(exc: BaseException) -> None:
    assert isinstance(exc, RegistryError), f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    assert exc.__cause__ is not None


def test_foreign_key_violation_is_wrapped(database_url: str) -> None:
    @database_registry(database_url, table_name="parents")
    class Parent(BaseModel):
        id: int | None = None

    @database_registry(database_url, table_name="kids")
    class Kid(BaseModel):
        id: int | None = None
        parent_id: int = db_field(foreign_key="parents.id")

    with pytest.raises(Exception) as info:
        Kid.objects.create(parent_id=12345)

    _no_raw_escape(info.value)
    assert Kid.objects.count() == 0


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
def test_integer_overflow_is_wrapped(database_url: str, value: int) -> None:
    @database_registry(database_url, table_name="nums")
    class Num(BaseModel):
        id: int | None = None
        n: int

    with pytest.raises(Exception) as info:
        Num.objects.create(n=value)

    _no_raw_escape(info.value)
    assert Num.objects.count() == 0


def test_writing_to_a_missing_table_is_wrapped(database_url: str) -> None:
    @database_registry(database_url, table_name="ghosts", auto_create=False)
    class Ghost(BaseModel):
        id: int | None = None
        name: str

    for call in (
        lambda: Ghost.objects.create(name="x"),
        lambda: Ghost.objects.get(1),
        lambda: Ghost.objects.filter(name="x"),
        lambda: Ghost.objects.count(),
        lambda: Ghost.objects.update_where({"id": 1}, name="y"),
        lambda: Ghost.objects.delete_where(name="x"),
        lambda: Ghost.objects.bulk_create([{"name": "x"}]),
        lambda: Ghost.objects.upsert(name="x"),
        lambda: Ghost.truncate(),
    ):
        with pytest.raises(Exception) as info:
            call()
        _no_raw_escape(info.value)
        assert "ghosts" in str(info.value)


def test_unreachable_sqlite_database_is_wrapped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}"

    class Far(BaseModel):
        id: int | None = None

    try:
        with pytest.raises(Exception) as info:
            database_registry(url, table_name="fars")(Far)
            Far.objects.count()  # type: ignore[attr-defined]
        _no_raw_escape(info.value)
    finally:
        registers.db.dispose_engine(url)


def test_unique_error_chains_the_driver_error(database_url: str) -> None:
    @database_registry(database_url, table_name="tags", unique_fields=["name"])
    class Tag(BaseModel):
        id: int | None = None
        name: str

    Tag.objects.create(name="x")

    with pytest.raises(UniqueConstraintError) as info:
        Tag.objects.create(name="x")

    assert info.value.__cause__ is not None
    assert not isinstance(info.value, sa.exc.SQLAlchemyError)
    assert "tags" in str(info.value) or "Tag" in str(info.value)


def test_duplicate_key_error_chains_the_driver_error(database_url: str) -> None:
    @database_registry(database_url, table_name="skus")
    class Sku(BaseModel):
        id: int

    Sku.objects.create(id=1)

    with pytest.raises(DuplicateKeyError) as info:
        Sku.objects.create(id=1)

    assert info.value.__cause__ is not None
    assert "skus" in str(info.value) or "Sku" in str(info.value)


def test_registry_errors_can_be_caught_broadly(database_url: str) -> None:
    env = Env(database_url)
    caught = []
    for call in (
        lambda: env.Sku.objects.create(id=7, name="again"),
        lambda: env.User.objects.create(name="x", email="ada@x.io"),
        lambda: env.User.objects.require(99),
        lambda: env.User.objects.filter(nope=1),
    ):
        try:
            call()
        except RegistryError as exc:
            caught.append(type(exc))
    assert caught == [
        DuplicateKeyError,
        UniqueConstraintError,
        RecordNotFoundError,
        InvalidQueryError,
    ]


# ------------------------------------------ tables another tool created (default names)

_HAND_MADE_KEY = {
    "sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "postgresql": "BIGSERIAL PRIMARY KEY",
    "mysql": "BIGINT AUTO_INCREMENT PRIMARY KEY",
}


def test_a_hand_made_unique_key_is_named_by_its_columns_even_with_the_pool_exhausted(
        database_url: str, backend: str, raw: Any) -> None:
    """A hand-made unique key over two columns is reported with both columns on every
    backend, also while every pooled connection is taken (MySQL asks the server for the
    key's columns on a connection of its own), sync and async; a key dropped and made
    again under another name over another column is asked for again."""
    raw.execute(f"CREATE TABLE legacy_pairs (id {_HAND_MADE_KEY[backend]}, "
                "a VARCHAR(20) NOT NULL, b VARCHAR(20) NOT NULL, c VARCHAR(20))")
    raw.execute("CREATE UNIQUE INDEX legacy_pairs_ab ON legacy_pairs (a, b)")
    raw.execute("INSERT INTO legacy_pairs (a, b, c) VALUES ('x', 'y', 'z')")

    @database_registry(database_url, table_name="legacy_pairs", auto_create=False)
    class Pair(BaseModel):
        id: int | None = None
        a: str
        b: str
        c: str | None = None

    if backend != "sqlite":
        from registers.db import configure_database

        configure_database(Pair.objects.database.key, pool_size=1, max_overflow=0,
                           pool_timeout=0.5)
    # the block holds the pool's only connection
    with pytest.raises(UniqueConstraintError) as info, Pair.objects.transaction():
        Pair.objects.create(a="x", b="y")
    assert info.value.fields == ("a", "b")
    assert "Pair.(a, b)=('x', 'y') must be unique together" in str(info.value)
    with pytest.raises(UniqueConstraintError) as async_info:
        asyncio.run(Pair.objects.acreate(a="x", b="y", c="w"))
    assert async_info.value.fields == ("a", "b")

    raw.execute("DROP INDEX legacy_pairs_ab" + (" ON legacy_pairs" if backend == "mysql" else ""))
    raw.execute("CREATE UNIQUE INDEX legacy_pairs_c ON legacy_pairs (c)")
    Pair.objects.create(a="x", b="y")  # (a, b) is no longer unique
    with pytest.raises(UniqueConstraintError) as again:
        Pair.objects.create(a="p", b="q", c="z")
    assert again.value.fields == ("c",) and "Pair.c='z' must be unique" in str(again.value)
    assert sorted((r["a"], r["b"], r["c"] or "") for r in raw.rows("legacy_pairs")) == [
        ("x", "y", ""), ("x", "y", "z")]


@pytest.mark.parametrize("table", ["legacy_items", "legacy_" + "x" * 56])
def test_a_hand_made_tables_key_and_unique_collisions_are_classified(
        database_url: str, backend: str, raw: Any, table: str) -> None:
    """The key and unique constraints of a table registers did not create carry the
    database's default names (PostgreSQL: ``<table>_pkey``, cut to 63 bytes for a long
    name; MariaDB: the column), not registers' ``pk_`` / ``uq_``: a key collision is
    still a DuplicateKeyError, a unique one a UniqueConstraintError, and nothing is
    written."""
    keyed = table[:-1] + "k"  # an explicit key: a collision is the caller's
    raw.execute(f"CREATE TABLE {keyed} (id BIGINT PRIMARY KEY, name VARCHAR(50) NOT NULL)")
    raw.execute(f"INSERT INTO {keyed} (id, name) VALUES (1, 'first')")
    raw.execute(f"CREATE TABLE {table} (id {_HAND_MADE_KEY[backend]}, "
                "name VARCHAR(50) NOT NULL, code VARCHAR(20) UNIQUE)")
    raw.execute(f"INSERT INTO {table} (id, name, code) VALUES (1, 'first', 'A-1')")

    @database_registry(database_url, table_name=keyed, auto_create=False)
    class Part(BaseModel):
        id: int
        name: str

    @database_registry(database_url, table_name=table, unique_fields=["code"],
                       auto_create=False)
    class Item(BaseModel):
        id: int | None = None
        name: str
        code: str | None = None

    with pytest.raises(DuplicateKeyError) as key_info:
        Part.objects.create(id=1, name="again")
    assert (key_info.value.field, key_info.value.value) == ("id", 1)
    assert "Part with id=1 already exists" in str(key_info.value)
    with pytest.raises(DuplicateKeyError, match="Part with id=1 already exists"):
        asyncio.run(Part.objects.acreate(id=1, name="again"))
    assert [r["name"] for r in raw.rows(keyed)] == ["first"]

    with pytest.raises(UniqueConstraintError) as unique_info:
        Item.objects.create(name="second", code="A-1")
    message = str(unique_info.value)
    assert "\n" not in message and table in message
    # MySQL's error names only the key (here `code`): its columns are asked of the server
    assert unique_info.value.field == "code" and "Item.code='A-1' must be unique" in message

    if backend == "mysql":  # MariaDB 10.11 has no index on an expression
        raw.execute(f"CREATE UNIQUE INDEX {table[:-1]}n ON {table} (name)")
        with pytest.raises(UniqueConstraintError) as named_info:
            Item.objects.create(name="FIRST")  # the default collation ignores case
        assert named_info.value.fields == ("name",)
        assert "Item.name='FIRST' must be unique" in str(named_info.value)
    else:  # a unique index on an expression: no field to name
        raw.execute(f"CREATE UNIQUE INDEX {table[:-1]}n ON {table} (lower(name))")
        with pytest.raises(UniqueConstraintError) as expression_info:
            Item.objects.create(name="FIRST")
        assert expression_info.value.field is None
        assert f"Item: unique key '{table[:-1]}n' failed" in str(expression_info.value)

    # PostgreSQL's sequence never saw id=1: the key it generates collides, and is retried
    made = Item.objects.create(name="second", code="B-2")
    assert made.id > 1
    assert [(r["id"], r["name"]) for r in raw.rows(table)] == [(1, "first"), (made.id, "second")]


def test_a_hand_made_tables_not_null_columns_are_named_on_every_backend(
        database_url: str, raw: Any) -> None:
    """A column the model does not know, NOT NULL without a default, and a key column
    the database does not generate: every backend names the column (MariaDB's 1364 is
    not an IntegrityError in PyMySQL), and nothing is written."""
    raw.execute("CREATE TABLE legacy_notes (id BIGINT NOT NULL PRIMARY KEY, "
                "body VARCHAR(50), audit VARCHAR(20) NOT NULL)")

    @database_registry(database_url, table_name="legacy_notes", auto_create=False)
    class Note(BaseModel):
        id: int
        body: str | None = None

    @database_registry(database_url, table_name="legacy_notes", auto_create=False)
    class Draft(BaseModel):  # expects generated keys the table does not make
        id: int | None = None
        body: str | None = None

    writes: dict[str, Callable[[], Any]] = {
        "create": lambda: Note.objects.create(id=1, body="x"),
        "acreate": lambda: asyncio.run(Note.objects.acreate(id=1, body="x")),
        "bulk_create": lambda: Note.objects.bulk_create([{"id": 1, "body": "x"}]),
        "upsert": lambda: Note.objects.upsert(id=1, body="x"),
    }
    for name, write in writes.items():
        with pytest.raises(ConstraintError) as info:
            write()
        message = str(info.value)
        assert message.endswith("not null constraint failed on audit"), (name, message)
        assert "legacy_notes" in message and "\n" not in message
    for write in (lambda: Draft.objects.create(body="x"),
                  lambda: asyncio.run(Draft.objects.acreate(body="x"))):
        with pytest.raises(ConstraintError) as info:
            write()
        assert "its id column has no default, so the database cannot generate Draft.id" \
            in str(info.value)
    assert raw.rows("legacy_notes") == []


def test_a_value_its_column_cannot_hold_is_an_invalid_query_naming_why(
        database_url: str, backend: str, raw: Any) -> None:
    """A table another tool created with narrow columns: the servers refuse a string
    longer than ``VARCHAR(5)``, an int beyond ``SMALLINT``, a number beyond
    ``NUMERIC(5, 2)``, as an InvalidQueryError saying which (MariaDB's own message
    without PyMySQL's tuple); SQLite has no such limits and stores them. Nothing
    refused is written."""
    raw.execute("CREATE TABLE narrow_rows (id BIGINT NOT NULL PRIMARY KEY, "
                "name VARCHAR(5), small SMALLINT, price NUMERIC(5, 2))")

    @database_registry(database_url, table_name="narrow_rows", auto_create=False)
    class Narrow(BaseModel):
        id: int
        name: str | None = None
        small: int | None = None
        price: Decimal | None = None

    Narrow.objects.create(id=1, name="ok")
    cases = [({"name": "x" * 6}, "too long"), ({"small": 40_000}, "out of range"),
             ({"price": Decimal("1234.5")}, "out of range")]
    def writes(values: dict[str, Any]) -> list[Callable[[], Any]]:
        return [
            lambda: Narrow.objects.create(id=2, **values),
            lambda: asyncio.run(Narrow.objects.acreate(id=2, **values)),
            lambda: Narrow.objects.bulk_create([{"id": 2, **values}]),
            lambda: Narrow.objects.update_where({"id": 1}, **values),
            lambda: Narrow.objects.upsert(id=1, **values),
        ]

    for values, why in cases:
        for write in writes(values):
            if backend == "sqlite":  # stored as given
                write()
                assert all(row[k] == v for row in raw.rows("narrow_rows")
                           for k, v in values.items() if row["id"] == 2)
                raw.execute("DELETE FROM narrow_rows WHERE id = 2")
                continue
            with pytest.raises(InvalidQueryError) as info:
                write()
            message = str(info.value)
            assert f"a value is {why} for its column" in message, message
            assert "narrow_rows" in message and "\n" not in message
            assert "(1" not in message  # no (code, "message") tuple
            assert raw.rows("narrow_rows") == [
                {"id": 1, "name": "ok", "small": None, "price": None}]


def test_a_statement_over_max_allowed_packet_is_an_invalid_query_not_an_outage(
        database_url: str, backend: str) -> None:
    """MySQL/MariaDB refuse a statement over ``max_allowed_packet`` (16 MiB by default)
    by answering error 1153 or just dropping the connection. Either way it is an
    InvalidQueryError naming the limit (the server is up), nothing is stored, and the
    next statement runs on a new connection; sync and async. SQLite and PostgreSQL store
    such a value."""
    from registers.db import InvalidQueryError

    @database_registry(database_url, table_name="big_docs")
    class Doc(BaseModel):
        id: int | None = None
        body: str

    body = "x" * (17 * 1024 * 1024)
    writes: list[Callable[[], Any]] = [
        lambda: Doc.objects.create(body=body),
        lambda: Doc.objects.upsert(id=1, body=body),
        lambda: asyncio.run(Doc.objects.acreate(body=body)),
    ]
    if backend != "mysql":
        Doc.objects.create(body=body)
        assert len(Doc.objects.get(1).body) == len(body)
        return
    for attempt in range(2):  # the server answers either way, by chance
        for write in writes:
            with pytest.raises(InvalidQueryError, match=r"max_allowed_packet of 16\.0 MiB") \
                    as caught:
                write()
            assert "takes at least 17.0 MiB" in str(caught.value)
            assert Doc.objects.count() == 0
            made = Doc.objects.create(body=f"small {attempt}")  # a new connection serves
            assert Doc.objects.get(made.id).body == f"small {attempt}"

            async def small() -> Any:
                try:
                    return await Doc.objects.acreate(body="async small")
                finally:
                    await Doc.objects.adispose()

            assert asyncio.run(small()).id is not None
            Doc.objects.truncate()
