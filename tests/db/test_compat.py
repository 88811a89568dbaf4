"""Code written against registers 2.1.0's database layer keeps working (issue 19).

docs/coming-from-2.1.md lists what differs on purpose.
"""

from __future__ import annotations

import dataclasses

import pydantic
import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from registers.db import DatabaseRegistry, Model, ModelRegistrationError, database_registry


def test_a_pydantic_model_that_is_also_a_stdlib_dataclass_is_refused(database_url: str) -> None:
    @dataclasses.dataclass
    class Point(BaseModel):
        id: int | None = None
        x: int = 0

    with pytest.raises(ModelRegistrationError, match=r"'Point' is a dataclass"):
        database_registry(database_url)(Point)
    assert "objects" not in vars(Point)  # nothing half-attached


def test_a_plain_dataclass_is_refused(database_url: str) -> None:
    @dataclasses.dataclass
    class Point:
        id: int | None = None

    with pytest.raises(ModelRegistrationError, match=r"'Point' is a dataclass"):
        database_registry(database_url)(Point)  # type: ignore[type-var]


def test_a_pydantic_dataclass_is_refused(database_url: str) -> None:
    @pydantic.dataclasses.dataclass
    class Point:
        id: int | None = None

    with pytest.raises(ModelRegistrationError, match=r"'Point' is a dataclass"):
        database_registry(database_url)(Point)  # type: ignore[type-var]


@pytest.fixture
def user_model(database_url: str) -> type[Model]:
    @database_registry(database_url, table_name="users", unique_fields=["email"])
    class User(Model):
        id: int | None = None
        name: str
        email: str
        age: int = 0

    return User


def test_engine_is_public_and_runs_raw_sql(user_model: type[Model]) -> None:
    manager: DatabaseRegistry[Model] = user_model.objects
    manager.create(name="Ada", email="ada@example.com", age=36)
    assert isinstance(manager.engine, sa.Engine)
    with manager.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, age FROM users")).all()
    assert [tuple(r) for r in rows] == [("Ada", 36)]


def test_raw_sql_writes_through_the_engine_are_read_by_the_manager(
    user_model: type[Model],
) -> None:
    with user_model.objects.engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO users (name, email, age) VALUES (:n, :e, :a)"),
            {"n": "Grace", "e": "grace@example.com", "a": 45},
        )
    found = user_model.objects.get(email="grace@example.com")
    assert found is not None and found.model_dump()["age"] == 45


def test_the_2_1_spellings_keep_working(user_model: type[Model]) -> None:
    manager = user_model.objects
    assert manager._engine is manager.engine
    assert manager._schema is manager.schema
    assert manager._schema.column_names() == ["id", "name", "email", "age"]
    assert manager.schema.column_names() == ["id", "name", "email", "age"]


def test_engine_is_shared_by_every_model_of_the_url(database_url: str) -> None:
    @database_registry(database_url, table_name="a_rows")
    class A(Model):
        id: int | None = None

    @database_registry(database_url, table_name="b_rows")
    class B(Model):
        id: int | None = None

    assert A.objects.engine is B.objects.engine


def test_column_names_follow_field_names_not_aliases(database_url: str) -> None:
    @database_registry(database_url, table_name="aliased")
    class Aliased(BaseModel):
        id: int | None = None
        full_name: str = pydantic.Field(alias="fullName")

    manager: DatabaseRegistry[Aliased] = Aliased.objects  # type: ignore[attr-defined]
    assert manager.schema.column_names() == ["id", "full_name"]
