"""SPEC D8: schema helpers, column evolution, schema_diff and metadata_for."""

from datetime import datetime
from typing import Any, Optional

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

import registers.db
from registers.db import MigrationError, RegistryError, database_registry, metadata_for

from ._helpers import RawSQL


@pytest.fixture
def User(database_url: str) -> Any:
    @database_registry(database_url, table_name="users")
    class User(BaseModel):
        id: int | None = None
        name: str
        age: int | None = None

    return User


def _call(User: Any, where: str, method: str, *args: Any) -> Any:
    target = User if where == "class" else User.objects
    return getattr(target, method)(*args)


WHERE = ["class", "manager"]


# ----------------------------------------------------------------- create / drop / truncate


@pytest.mark.parametrize("where", WHERE)
def test_create_schema_is_idempotent(User: Any, raw: RawSQL, where: str) -> None:
    User.objects.create(name="Ada")

    _call(User, where, "create_schema")
    _call(User, where, "create_schema")

    assert raw.has_table("users")
    assert User.objects.count() == 1


@pytest.mark.parametrize("where", WHERE)
def test_schema_exists_reports_the_live_table(User: Any, raw: RawSQL, where: str) -> None:
    assert _call(User, where, "schema_exists") is True

    raw.execute("DROP TABLE users")

    assert _call(User, where, "schema_exists") is False


@pytest.mark.parametrize("where", WHERE)
def test_drop_schema_drops_the_table(User: Any, raw: RawSQL, where: str) -> None:
    _call(User, where, "drop_schema")

    assert not raw.has_table("users")
    assert User.schema_exists() is False


@pytest.mark.parametrize("where", WHERE)
def test_drop_then_create_gives_an_empty_table(User: Any, where: str) -> None:
    User.objects.create(name="Ada")

    _call(User, where, "drop_schema")
    _call(User, where, "create_schema")

    assert User.objects.count() == 0
    assert User.objects.create(name="Bob").name == "Bob"


@pytest.mark.parametrize("where", WHERE)
def test_truncate_deletes_rows_and_keeps_the_table(User: Any, raw: RawSQL, where: str) -> None:
    User.objects.bulk_create([{"name": n} for n in "abc"])

    _call(User, where, "truncate")

    assert raw.has_table("users")
    assert User.objects.count() == 0
    User.objects.create(name="after")
    assert User.objects.count() == 1


def test_operation_on_a_dropped_table_raises_a_registry_error(User: Any) -> None:
    User.drop_schema()

    with pytest.raises(RegistryError) as info:
        User.objects.create(name="Ada")

    assert "users" in str(info.value)
    assert info.value.__cause__ is not None


def test_drop_schema_of_a_referenced_table_raises_schema_error(database_url: str) -> None:
    from registers.db import SchemaError, db_field

    @database_registry(database_url, table_name="authors")
    class Author(BaseModel):
        id: int | None = None

    @database_registry(database_url, table_name="books")
    class Book(BaseModel):
        id: int | None = None
        author_id: int = db_field(foreign_key="authors.id")

    Book.objects.create(author_id=Author.objects.create().id)

    with pytest.raises(SchemaError) as info:
        Author.drop_schema()

    assert "authors" in str(info.value)
    assert info.value.__cause__ is not None
    assert Author.schema_exists() is True


# ------------------------------------------------------------------- add / ensure column


@pytest.mark.parametrize(
    "annotation",
    [Optional[datetime], datetime | None, str | None, int | None, Optional[bool]],  # noqa: UP045
)
def test_add_column_adds_a_nullable_column_to_the_live_table(
    User: Any, raw: RawSQL, annotation: Any
) -> None:
    User.objects.create(name="Ada")

    User.objects.add_column("verified_at", annotation)

    columns = {c["name"]: c for c in raw.columns("users")}
    assert "verified_at" in columns
    assert columns["verified_at"]["nullable"] is True
    assert raw.rows("users")[0]["verified_at"] is None


def test_model_keeps_working_after_a_column_is_added(User: Any) -> None:
    User.objects.create(name="Ada")

    User.objects.add_column("nickname", str | None)

    assert User.objects.get(1) == User(id=1, name="Ada")
    assert User.objects.create(name="Bob").id == 2
    assert [u.name for u in User.objects.filter(order_by="id")] == ["Ada", "Bob"]


def test_added_column_accepts_values(User: Any, raw: RawSQL) -> None:
    User.objects.add_column("verified_at", Optional[datetime])  # noqa: UP045
    User.objects.create(name="Ada")

    raw.execute("UPDATE users SET verified_at = :v", {"v": datetime(2024, 1, 1)})

    assert raw.rows("users")[0]["verified_at"] is not None


@pytest.mark.parametrize("name", ["name", "age", "id"])
def test_add_column_that_exists_raises_migration_error(User: Any, name: str) -> None:
    with pytest.raises(MigrationError) as info:
        User.objects.add_column(name, str | None)

    assert name in str(info.value)
    assert "users" in str(info.value)


def test_add_column_twice_raises_migration_error(User: Any) -> None:
    User.objects.add_column("extra", str | None)

    with pytest.raises(MigrationError) as info:
        User.objects.add_column("extra", str | None)

    assert "extra" in str(info.value)


def test_ensure_column_is_idempotent_and_reports_whether_it_added(User: Any, raw: RawSQL) -> None:
    assert User.objects.ensure_column("verified_at", Optional[datetime]) is True  # noqa: UP045
    assert User.objects.ensure_column("verified_at", Optional[datetime]) is False  # noqa: UP045
    assert User.objects.ensure_column("name", str) is False
    assert raw.column_names("users").count("verified_at") == 1


def test_add_column_not_nullable_on_an_empty_table(User: Any, raw: RawSQL) -> None:
    User.objects.add_column("score", int, nullable=False)

    columns = {c["name"]: c for c in raw.columns("users")}
    assert columns["score"]["nullable"] is False


def test_migration_error_is_a_schema_error() -> None:
    assert issubclass(MigrationError, RegistryError)


# ------------------------------------------------------------------------------ schema_diff


def test_schema_diff_of_a_fresh_table_is_empty(User: Any) -> None:
    diff = User.objects.schema_diff()

    assert not diff
    assert len(diff) == 0


def test_schema_diff_reports_an_extra_column(User: Any) -> None:
    User.objects.add_column("legacy_flag", str | None)

    diff = User.objects.schema_diff()

    assert diff
    assert "legacy_flag" in repr(diff)


def _make_table(url: str, *columns: sa.Column[Any]) -> None:
    from registers.db import get_engine

    metadata = sa.MetaData()
    sa.Table("users", metadata, sa.Column("id", sa.BigInteger, primary_key=True), *columns)
    metadata.create_all(get_engine(url))


@pytest.mark.parametrize(
    ("columns", "mentioned"),
    [
        ([("name", sa.Text, False)], "age"),
        ([("age", sa.BigInteger, True)], "name"),
        ([("name", sa.Text, False), ("age", sa.Text, True)], "age"),
        ([("name", sa.Text, True), ("age", sa.BigInteger, True)], "name"),
        ([("name", sa.Text, False), ("age", sa.BigInteger, False)], "age"),
    ],
    ids=["missing-age", "missing-name", "age-type", "name-nullable", "age-not-nullable"],
)
def test_schema_diff_reports_mismatches_with_an_existing_table(
    database_url: str, columns: list[tuple[str, Any, bool]], mentioned: str
) -> None:
    # Column objects belong to one Table: build fresh ones for every backend's run.
    _make_table(
        database_url, *(sa.Column(n, t, nullable=nullable) for n, t, nullable in columns)
    )

    @database_registry(database_url, table_name="users")
    class User(BaseModel):
        id: int | None = None
        name: str
        age: int | None = None

    diff = User.objects.schema_diff()

    assert len(diff) >= 1
    assert mentioned in repr(diff)


def test_schema_diff_of_a_matching_hand_made_table_is_empty(database_url: str) -> None:
    _make_table(
        database_url,
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("age", sa.BigInteger, nullable=True),
    )

    @database_registry(database_url, table_name="users")
    class User(BaseModel):
        id: int | None = None
        name: str
        age: int | None = None

    assert not User.objects.schema_diff()


def test_schema_diff_reports_a_missing_table(database_url: str) -> None:
    from registers.db import SchemaError

    @database_registry(database_url, table_name="users", auto_create=False)
    class User(BaseModel):
        id: int | None = None
        name: str

    # Either answer is fine: a diff entry, or a SchemaError, as long as it names the table.
    try:
        diff = User.objects.schema_diff()
    except SchemaError as exc:
        assert "users" in str(exc)
    else:
        assert diff
        assert "users" in repr(diff) or "name" in repr(diff)


# ------------------------------------------------------------------------------ metadata_for


def test_metadata_for_holds_every_registered_table_of_the_database(
    database_url: str, tmp_path: Any
) -> None:
    @database_registry(database_url, table_name="authors")
    class Author(BaseModel):
        id: int | None = None
        name: str

    @database_registry(database_url, table_name="posts", auto_create=False)
    class Post(BaseModel):
        id: int | None = None
        title: str

    other_url = f"sqlite:///{tmp_path / 'elsewhere.db'}"

    @database_registry(other_url, table_name="elsewhere")
    class Elsewhere(BaseModel):
        id: int | None = None

    try:
        metadata = metadata_for(database_url)
        assert isinstance(metadata, sa.MetaData)
        assert {"authors", "posts"} <= set(metadata.tables)
        assert "elsewhere" not in metadata.tables
        assert list(metadata.tables["authors"].columns.keys()) == ["id", "name"]
        assert metadata_for(other_url).tables.keys() >= {"elsewhere"}
    finally:
        registers.db.dispose_engine(other_url)


def test_metadata_for_can_create_the_schema_elsewhere(database_url: str, tmp_path: Any) -> None:
    @database_registry(database_url, table_name="authors")
    class Author(BaseModel):
        id: int | None = None
        name: str
        born: datetime | None = None

    target = sa.create_engine(f"sqlite:///{tmp_path / 'copy.db'}")
    try:
        metadata_for(database_url).create_all(target)
        columns = [c["name"] for c in sa.inspect(target).get_columns("authors")]
    finally:
        target.dispose()

    assert columns == ["id", "name", "born"]


def test_metadata_for_contains_the_managers_table(User: Any, database_url: str) -> None:
    table = metadata_for(database_url).tables["users"]

    assert table.name == User.objects.table.name
    assert list(table.columns.keys()) == ["id", "name", "age"]
    assert [c.name for c in table.primary_key.columns] == ["id"]


def test_manager_table_is_a_sqlalchemy_table(User: Any) -> None:
    assert isinstance(User.objects.table, sa.Table)
    assert User.objects.table.name == "users"


def test_schema_manager_is_exported() -> None:
    assert isinstance(registers.db.SchemaManager, type)
