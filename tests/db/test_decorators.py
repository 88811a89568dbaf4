"""SPEC D1: declaring a model with @database_registry or DatabaseRegistry."""

import dataclasses
from typing import Any

import pydantic
import pytest
import sqlalchemy as sa
from pydantic import BaseModel, ValidationError

from registers.db import (
    ConfigurationError,
    DatabaseRegistry,
    ModelRegistrationError,
    database_registry,
)

# --------------------------------------------------------------------------- happy path


def test_decorator_returns_the_same_class_with_a_manager(database_url: str) -> None:
    class Plain(BaseModel):
        id: int | None = None
        name: str

    decorated = database_registry(database_url, table_name="plains")(Plain)

    assert decorated is Plain
    assert issubclass(Plain, BaseModel)
    assert hasattr(Plain, "objects")
    created = Plain.objects.create(name="a")
    assert isinstance(created, Plain)
    assert created.id == 1


def test_model_stays_an_ordinary_pydantic_model(database_url: str) -> None:
    @database_registry(database_url, table_name="people")
    class Person(BaseModel):
        id: int | None = None
        name: str
        age: int = 0

    assert list(Person.model_fields) == ["id", "name", "age"]
    person = Person(name="Ada", age="36")  # lax validation unchanged
    assert person.age == 36
    assert person.model_dump() == {"id": None, "name": "Ada", "age": 36}
    assert set(Person.model_json_schema()["properties"]) == {"id", "name", "age"}
    with pytest.raises(ValidationError):
        Person(name="Ada", age="not a number")
    stored = Person.objects.create(name="Ada", age=36)
    assert stored.model_dump() == {"id": 1, "name": "Ada", "age": 36}
    assert Person.model_validate_json(stored.model_dump_json()) == stored


def test_custom_manager_attr_holds_the_manager(database_url: str) -> None:
    @database_registry(database_url, table_name="things", manager_attr="records")
    class Thing(BaseModel):
        id: int | None = None
        name: str

    assert not hasattr(Thing, "objects")
    assert Thing.records.create(name="x").id == 1
    assert Thing.records.count() == 1


@pytest.mark.parametrize("method", ["save", "delete", "refresh"])
def test_decorator_attaches_instance_methods(database_url: str, method: str) -> None:
    @database_registry(database_url, table_name="things")
    class Thing(BaseModel):
        id: int | None = None
        name: str

    assert callable(getattr(Thing(name="x"), method))


@pytest.mark.parametrize("method", ["create_schema", "drop_schema", "schema_exists", "truncate"])
def test_decorator_attaches_schema_class_methods(database_url: str, method: str) -> None:
    @database_registry(database_url, table_name="things")
    class Thing(BaseModel):
        id: int | None = None
        name: str

    assert callable(getattr(Thing, method))


def test_verify_password_is_attached_only_when_the_model_has_a_password(
    database_url: str,
) -> None:
    @database_registry(database_url, table_name="things")
    class Thing(BaseModel):
        id: int | None = None
        name: str

    @database_registry(database_url, table_name="accounts")
    class Account(BaseModel):
        id: int | None = None
        password: str

    assert not hasattr(Thing(name="x"), "verify_password")
    assert callable(Account(password="x").verify_password)


@pytest.mark.parametrize(
    ("class_name", "table"),
    [
        ("User", "users"),
        ("BlogPost", "blog_posts"),
        ("OrderItem", "order_items"),
        ("Category", "categories"),
        ("Address", "addresses"),
        ("Box", "boxes"),
    ],
)
def test_table_name_defaults_to_snake_case_plural(
    database_url: str, raw: Any, class_name: str, table: str
) -> None:
    model = pydantic.create_model(class_name, id=(int | None, None), name=(str, ...))
    registered = database_registry(database_url)(model)

    assert registered.objects.table.name == table
    registered.objects.create(name="x")
    assert raw.has_table(table)


def test_explicit_table_name_is_used(database_url: str, raw: Any) -> None:
    @database_registry(database_url, table_name="custom_people")
    class Person(BaseModel):
        id: int | None = None
        name: str

    Person.objects.create(name="x")
    assert raw.has_table("custom_people")
    assert raw.rows("custom_people") == [{"id": 1, "name": "x"}]


def test_auto_create_false_defers_table_creation(database_url: str, raw: Any) -> None:
    @database_registry(database_url, table_name="lazies", auto_create=False)
    class Lazy(BaseModel):
        id: int | None = None
        name: str

    assert not raw.has_table("lazies")
    assert Lazy.schema_exists() is False
    Lazy.create_schema()
    assert raw.has_table("lazies")


def test_auto_create_creates_the_table_on_first_use_not_at_decoration(
        database_url: str, raw: Any) -> None:
    @database_registry(database_url, table_name="eagers")
    class Eager(BaseModel):
        id: int | None = None
        name: str

    outside = sa.create_engine(database_url, poolclass=sa.pool.NullPool)  # not registers'
    assert not sa.inspect(outside).has_table("eagers")  # decorating never connects
    assert Eager.objects.count() == 0  # the first use creates it
    assert sa.inspect(outside).has_table("eagers")
    assert Eager.schema_exists() is True
    outside.dispose()


@pytest.mark.parametrize("first_use", ["schema_exists", "engine", "transaction", "acount"])
async def test_every_entry_point_creates_pending_tables_first(
        database_url: str, raw: Any, first_use: str) -> None:
    @database_registry(database_url, table_name="eagers")
    class Eager(BaseModel):
        id: int | None = None
        name: str

    if first_use == "schema_exists":
        assert Eager.schema_exists() is True
    elif first_use == "engine":
        with Eager.objects.engine.connect() as conn:  # raw SQL right after decoration
            assert conn.execute(sa.text("SELECT COUNT(*) FROM eagers")).scalar() == 0
    elif first_use == "transaction":
        with Eager.objects.transaction():
            Eager.objects.create(name="a")
    else:
        if database_url == "sqlite:///:memory:":
            pytest.skip("no async in-memory SQLite")
        assert await Eager.objects.acount() == 0
        await Eager.objects.adispose()
    assert raw.has_table("eagers")


def test_decorating_models_of_an_unreachable_server_succeeds_and_first_use_says_why() -> None:
    """Importing a module of models (``app --help``) must work with the server down."""
    from registers.db import DatabaseUnavailableError, configure_database

    url = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    configure_database(url, connect_timeout=2)

    @database_registry(url, table_name="unreachables")
    class Unreachable(BaseModel):
        id: int | None = None
        name: str

    with pytest.raises(DatabaseUnavailableError, match="cannot connect"):
        Unreachable.objects.count()
    with pytest.raises(DatabaseUnavailableError):  # still pending: tried again, same answer
        Unreachable.objects.create(name="a")


def test_decorating_a_sqlite_model_creates_no_file(tmp_path: Any) -> None:
    path = tmp_path / "later.db"

    @database_registry(f"sqlite:///{path}", table_name="laters")
    class Later(BaseModel):
        id: int | None = None
        name: str

    assert not path.exists()
    Later.objects.create(name="a")
    assert path.exists()


def test_eight_threads_racing_on_first_use_all_succeed(database_url: str) -> None:
    import threading

    @database_registry(database_url, table_name="racers")
    class Racer(BaseModel):
        id: int | None = None
        name: str

    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def use(i: int) -> None:
        try:
            start.wait()
            Racer.objects.create(name=f"r{i}")
        except BaseException as exc:  # pragma: no cover - the assertion reports it
            errors.append(exc)

    threads = [threading.Thread(target=use, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Racer.objects.count() == 8


def test_pending_tables_are_created_parents_first(database_url: str, raw: Any) -> None:
    """A child declared before its parent: its foreign key needs the parent table
    (PostgreSQL and MariaDB refuse it otherwise)."""
    from registers.db import db_field

    @database_registry(database_url, table_name="kids")
    class Kid(BaseModel):
        id: int | None = None
        parent_id: int | None = db_field(foreign_key="parents.id", default=None)

    @database_registry(database_url, table_name="parents")
    class Parent(BaseModel):
        id: int | None = None
        name: str

    Kid.objects.create(parent_id=None)  # the kid's first use creates both, parent first
    assert raw.has_table("parents") and raw.has_table("kids")
    p = Parent.objects.create(name="p")
    assert Kid.objects.create(parent_id=p.id).parent_id == p.id


def test_optional_int_key_is_database_managed_without_saying_so(database_url: str) -> None:
    @database_registry(database_url, table_name="items")
    class Item(BaseModel):
        id: int | None = None
        name: str

    first = Item.objects.create(name="a")
    second = Item.objects.create(name="b")
    assert (first.id, second.id) == (1, 2)


def test_explicit_autoincrement_true_on_optional_int_key(database_url: str) -> None:
    @database_registry(database_url, table_name="items", autoincrement=True)
    class Item(BaseModel):
        id: int | None = None
        name: str

    assert [Item.objects.create(name=n).id for n in "abc"] == [1, 2, 3]


def test_required_int_key_is_manual(database_url: str) -> None:
    @database_registry(database_url, table_name="items")
    class Item(BaseModel):
        id: int
        name: str

    assert Item.objects.create(id=42, name="a").id == 42
    assert Item.objects.get(42) == Item(id=42, name="a")
    with pytest.raises(ValidationError):
        Item.objects.create(name="no key")


def test_custom_key_field(database_url: str) -> None:
    @database_registry(database_url, table_name="countries", key_field="code")
    class Country(BaseModel):
        code: str
        name: str

    Country.objects.create(code="fr", name="France")
    assert Country.objects.get("fr") == Country(code="fr", name="France")
    assert Country.objects.delete("fr") is True


def test_database_registry_without_decorator(database_url: str) -> None:
    class Note(BaseModel):
        id: int | None = None
        text: str

    manager = DatabaseRegistry(Note, database_url, table_name="notes", unique_fields=["text"])

    created = manager.create(text="hello")
    assert isinstance(created, Note)
    assert created.id == 1
    assert manager.get(1) == created
    assert manager.get(text="hello") == created
    assert manager.count() == 1


def test_two_models_on_one_database_coexist(database_url: str) -> None:
    @database_registry(database_url, table_name="cats")
    class Cat(BaseModel):
        id: int | None = None
        name: str

    @database_registry(database_url, table_name="dogs")
    class Dog(BaseModel):
        id: int | None = None
        name: str

    Cat.objects.create(name="Tom")
    Dog.objects.create(name="Rex")
    Dog.objects.create(name="Fido")
    assert (Cat.objects.count(), Dog.objects.count()) == (1, 2)


# ----------------------------------------------------------------------- configuration errors


@dataclasses.dataclass
class StdlibDataclass:
    id: int
    name: str


@pydantic.dataclasses.dataclass
class PydanticDataclass:
    id: int
    name: str


class NotAModel:
    id: int
    name: str


@pytest.mark.parametrize(
    "target",
    [NotAModel, StdlibDataclass, PydanticDataclass, dict, object],
    ids=["plain-class", "stdlib-dataclass", "pydantic-dataclass", "dict", "object"],
)
def test_non_basemodel_is_rejected(database_url: str, target: type) -> None:
    with pytest.raises(ModelRegistrationError) as info:
        database_registry(database_url, table_name="bad")(target)
    assert target.__name__ in str(info.value)


def test_decorating_a_function_is_rejected(database_url: str) -> None:
    def not_a_class() -> None: ...

    with pytest.raises(ModelRegistrationError):
        database_registry(database_url, table_name="bad")(not_a_class)  # type: ignore[arg-type]


def test_decorating_an_instance_is_rejected(database_url: str) -> None:
    class Thing(BaseModel):
        id: int | None = None

    with pytest.raises(ModelRegistrationError):
        database_registry(database_url, table_name="bad")(Thing())  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["objects", "save", "delete", "refresh"])
def test_field_colliding_with_attached_name_is_rejected(database_url: str, name: str) -> None:
    model = pydantic.create_model("Clash", id=(int | None, None), **{name: (str, "x")})

    with pytest.raises(ModelRegistrationError) as info:
        database_registry(database_url, table_name="clashes")(model)
    assert "already defined" in str(info.value)
    assert name in str(info.value)


@pytest.mark.parametrize("name", ["save", "delete", "refresh"])
def test_method_colliding_with_attached_name_is_rejected(database_url: str, name: str) -> None:
    def method(self: Any) -> None: ...

    model = type(
        "Clash",
        (BaseModel,),
        {"__annotations__": {"id": int | None}, "id": None, name: method},
    )

    with pytest.raises(ModelRegistrationError) as info:
        database_registry(database_url, table_name="clashes")(model)
    assert "already defined" in str(info.value)
    assert name in str(info.value)


def test_manager_attr_colliding_with_field_is_rejected(database_url: str) -> None:
    class Clash(BaseModel):
        id: int | None = None
        records: list[int] = []

    with pytest.raises(ModelRegistrationError) as info:
        database_registry(database_url, table_name="clashes", manager_attr="records")(Clash)
    assert "already defined" in str(info.value)
    assert "records" in str(info.value)


def test_manager_attr_colliding_with_class_attribute_is_rejected(database_url: str) -> None:
    class Clash(BaseModel):
        id: int | None = None

        @classmethod
        def manager(cls) -> None: ...

    with pytest.raises(ModelRegistrationError) as info:
        database_registry(database_url, table_name="clashes", manager_attr="manager")(Clash)
    assert "already defined" in str(info.value)


def _simple_model() -> type[BaseModel]:
    class Simple(BaseModel):
        id: int | None = None
        name: str
        email: str
        code: str = ""

    return Simple


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"key_field": "uid"}, ["key_field", "uid"]),
        ({"unique_fields": ["mail"]}, ["unique_fields", "mail"]),
        ({"unique_fields": ["email", "nope"]}, ["unique_fields", "nope"]),
        ({"unique_fields": ["email", "email"]}, ["duplicates", "email"]),
        ({"unique_fields": ["name", "email", "name"]}, ["duplicates", "name"]),
    ],
    ids=["unknown-key", "unknown-unique", "one-unknown-unique", "dup-unique", "dup-unique-3"],
)
def test_invalid_field_options_raise_configuration_error(
    database_url: str, options: dict[str, Any], expected: list[str]
) -> None:
    with pytest.raises(ConfigurationError) as info:
        database_registry(database_url, table_name="simples", **options)(_simple_model())
    for word in expected:
        assert word in str(info.value)


@pytest.mark.parametrize(
    ("annotation", "default", "expected"),
    [
        (str | None, None, "integer"),
        (str, ..., "integer"),
        (float | None, None, "integer"),
        (int, ..., "allow None"),
    ],
    ids=["optional-str", "str", "optional-float", "required-int"],
)
def test_autoincrement_on_unsuitable_key_is_rejected(
    database_url: str, annotation: Any, default: Any, expected: str
) -> None:
    model = pydantic.create_model("Keyed", id=(annotation, default), name=(str, ...))

    with pytest.raises(ConfigurationError) as info:
        database_registry(database_url, table_name="keyed", autoincrement=True)(model)
    assert expected in str(info.value)


def test_configuration_error_leaves_no_table_behind(database_url: str, raw: Any) -> None:
    with pytest.raises(ConfigurationError):
        database_registry(database_url, table_name="never", key_field="nope")(_simple_model())
    assert not raw.has_table("never")


def test_decorator_with_keyword_url(database_url: str) -> None:
    @database_registry(database_url=database_url, table_name="things")
    class Thing(BaseModel):
        id: int | None = None
        name: str

    assert Thing.objects.create(name="x").id == 1
