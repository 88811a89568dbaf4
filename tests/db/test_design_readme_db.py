"""Every registers.db snippet of the design document, run with its results checked.

The snippets are copied as written; only the database URL is swapped for the test's private
database so that they run on every backend (one quick-start case also runs with the literal
``"app.db"`` in a temporary working directory).
"""

import logging
import sys
import types
from datetime import datetime
from typing import Any, Optional

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from registers.db import (
    ImmutableFieldError,
    InvalidPrimaryKeyAssignmentError,
    InvalidQueryError,
    RecordNotFoundError,
    database_registry,
    dispose_engine,
)

from ._helpers import RawSQL


def _quick_start_user(url: str) -> Any:
    @database_registry(
        url,
        table_name="users",
        key_field="id",
        autoincrement=True,
        unique_fields=["email"],
    )
    class User(BaseModel):
        id: int | None = None
        name: str
        email: str

    return User


def _crud_user(url: str) -> Any:
    """The quick-start User plus the ``role`` field the CRUD and querying snippets use."""

    @database_registry(
        url,
        table_name="users",
        key_field="id",
        autoincrement=True,
        unique_fields=["email"],
    )
    class User(BaseModel):
        id: int | None = None
        name: str
        email: str
        role: str = "trial"

    return User


# ----------------------------------------------------------------------------- quick start


def _run_quick_start(User: Any) -> None:
    # Create
    user = User.objects.create(name="Alice", email="alice@example.com")
    assert user == User(id=1, name="Alice", email="alice@example.com")

    # Read
    user = User.objects.get(1)
    assert user.email == "alice@example.com"
    user = User.objects.get(email="alice@example.com")
    assert user.id == 1

    # Update
    user.name = "Alicia"
    user.save()
    assert User.objects.get(1).name == "Alicia"
    assert User.objects.count() == 1

    # Delete
    user.delete()
    assert User.objects.get(1) is None
    assert User.objects.count() == 0


def test_quick_start(database_url: str) -> None:
    _run_quick_start(_quick_start_user(database_url))


def test_quick_start_as_written_with_app_db(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)
    try:
        _run_quick_start(_quick_start_user("app.db"))
        assert (tmp_path / "app.db").exists()
    finally:
        dispose_engine("app.db")


def test_primary_key_conventions(database_url: str) -> None:
    User = _quick_start_user(database_url)

    @database_registry(database_url, table_name="manuals")
    class Manual(BaseModel):
        id: int
        name: str

    # `id: int | None = None` gives a database-managed autoincrement primary key.
    assert User.objects.create(name="a", email="a@x").id == 1
    # `id: int` is a manual primary key and must be supplied explicitly.
    assert Manual.objects.create(id=10, name="m").id == 10
    # `create(id=...)` is rejected for database-managed keys.
    with pytest.raises(InvalidPrimaryKeyAssignmentError):
        User.objects.create(id=5, name="b", email="b@x")
    # Persisted primary keys are immutable once the record exists.
    user = User.objects.get(1)
    user.id = 2
    with pytest.raises(ImmutableFieldError):
        user.save()


# -------------------------------------------------------------------------------- CRUD API


def test_crud_strict_insert(database_url: str) -> None:
    from registers.db import UniqueConstraintError

    User = _crud_user(database_url)

    # Strict insert — raises DuplicateKeyError on collision
    user = User.objects.create(name="Bob", email="bob@example.com")
    assert user.id == 1
    # (same email again: the unique field collides)
    with pytest.raises(UniqueConstraintError):
        User.objects.create(name="Bob", email="bob@example.com")


def test_crud_strict_create_alias(database_url: str) -> None:
    User = _crud_user(database_url)

    # Alias for callers who want explicit strict-insert wording
    user = User.objects.strict_create(name="Bob", email="bob@example.com")

    assert user == User(id=1, name="Bob", email="bob@example.com")


def test_crud_upsert(database_url: str) -> None:
    User = _crud_user(database_url)
    User.objects.create(name="Robert", email="robert@example.com")

    # Atomic upsert — INSERT … ON CONFLICT DO UPDATE, no race conditions
    user = User.objects.upsert(id=1, name="Bob", email="bob@example.com")
    assert user == User(id=1, name="Bob", email="bob@example.com")
    assert User.objects.count() == 1

    # If no primary key is supplied, upsert falls back to configured unique fields
    user = User.objects.upsert(name="Bob", email="bob@example.com")
    assert user.id == 1
    assert User.objects.count() == 1


def test_crud_update_where_delete_and_delete_where(database_url: str) -> None:
    User = _crud_user(database_url)
    User.objects.create(name="T1", email="t1@x", role="trial")
    User.objects.create(name="T2", email="t2@x", role="trial")
    User.objects.create(name="I1", email="i1@x", role="inactive")
    User.objects.create(name="I2", email="i2@x", role="inactive")
    user_id = User.objects.create(name="Gone", email="gone@x", role="admin").id

    # Bulk field update — returns refreshed records
    updated = User.objects.update_where({"role": "trial"}, role="active")
    assert sorted((u.name, u.role) for u in updated) == [("T1", "active"), ("T2", "active")]

    # Delete by primary key
    assert User.objects.delete(user_id) is True

    # Delete by criteria — returns row count
    count = User.objects.delete_where(role="inactive")
    assert count == 2
    assert sorted(u.name for u in User.objects.all()) == ["T1", "T2"]


def test_crud_instance_operations(database_url: str) -> None:
    User = _crud_user(database_url)
    user = User(name="Ada", email="ada@x")

    # Upsert this instance
    user.save()
    assert user.id == 1

    # Persisted primary keys are immutable
    user.id = 999
    with pytest.raises(ImmutableFieldError):
        user.save()  # -> ImmutableFieldError
    user.id = 1

    # Re-fetch from the database (raises RecordNotFoundError if gone)
    fresh = user.refresh()
    assert fresh == User(id=1, name="Ada", email="ada@x")

    # Delete this instance's row
    assert user.delete() is True
    with pytest.raises(RecordNotFoundError):
        user.refresh()


# -------------------------------------------------------------------------------- querying


def test_querying(database_url: str) -> None:
    User = _crud_user(database_url)
    User.objects.create(name="Alice", email="alice@example.com", role="admin")
    User.objects.bulk_create(
        [{"name": f"active{i}", "email": f"a{i}@x", "role": "active"} for i in range(70)]
    )
    User.objects.create(name="Trial", email="trial@x", role="trial")
    User.objects.create(name="Newest", email="new@x", role="trial")

    # All rows
    users = User.objects.all()
    assert len(users) == 73

    # Filter with equality criteria
    admins = User.objects.filter(role="admin")
    assert [a.name for a in admins] == ["Alice"]

    # Filter values are validated against the declared field types
    with pytest.raises(InvalidQueryError):
        User.objects.filter(role=123)  # -> InvalidQueryError if the type is invalid

    # Pagination
    page = User.objects.filter(role="active", limit=20, offset=40)
    assert len(page) == 20
    assert {u.role for u in page} == {"active"}
    assert len({u.id for u in page}) == 20

    # First / last
    newest = User.objects.last()
    assert newest.name == "Newest"
    first_trial = User.objects.first(role="trial")
    assert first_trial.name == "Trial"

    # Get one or None
    user = User.objects.get(1)
    assert user.name == "Alice"
    user = User.objects.get(email="alice@example.com")
    assert user.id == 1

    # Get or raise RecordNotFoundError
    user = User.objects.require(1)
    assert user.name == "Alice"
    with pytest.raises(RecordNotFoundError):
        User.objects.require(1000)

    # Existence and count
    exists = User.objects.exists(email="alice@example.com")
    total = User.objects.count(role="active")
    assert exists is True
    assert total == 70


def test_pagination_pages_do_not_overlap(database_url: str) -> None:
    User = _crud_user(database_url)
    User.objects.bulk_create(
        [{"name": f"u{i}", "email": f"u{i}@x", "role": "active"} for i in range(50)]
    )

    pages = [User.objects.filter(role="active", limit=20, offset=o) for o in (0, 20, 40)]

    assert [len(p) for p in pages] == [20, 20, 10]
    assert len({u.id for p in pages for u in p}) == 50


# ----------------------------------------------------------------------- schema management


def _profile(url: str) -> Any:
    @database_registry(url, table_name="profiles", key_field="id", autoincrement=True)
    class Profile(BaseModel):
        id: int | None = None
        user_id: int
        bio: str

    return Profile


def test_schema_management(database_url: str, raw: RawSQL) -> None:
    User = _quick_start_user(database_url)
    User.objects.create(name="Alice", email="alice@example.com")

    # Idempotent table creation
    User.create_schema()  # or User.objects.create_schema()
    User.objects.create_schema()
    assert User.objects.count() == 1

    # Inspection
    assert User.schema_exists() is True  # or User.objects.schema_exists()
    assert User.objects.schema_exists() is True

    # Destructive operations
    User.truncate()  # delete all rows, keep schema
    assert User.objects.count() == 0
    assert User.schema_exists() is True
    User.drop_schema()  # drop the table entirely
    assert User.schema_exists() is False
    assert not raw.has_table("users")

    User.create_schema()
    # Additive column evolution (no migration framework required)
    User.objects.add_column("verified_at", Optional[datetime])  # noqa: UP045
    assert User.objects.ensure_column("verified_at", Optional[datetime]) is False  # noqa: UP045
    assert "verified_at" in raw.column_names("users")


def test_schema_management_transaction_commits(database_url: str) -> None:
    User = _quick_start_user(database_url)
    Profile = _profile(database_url)

    # Explicit transaction for batched atomicity
    with User.objects.transaction() as conn:
        User.objects.create(name="Alice", email="alice@example.com")
        Profile.objects.create(user_id=1, bio="...")
    assert conn is not None

    assert User.objects.require(1).name == "Alice"
    assert Profile.objects.require(1).user_id == 1


def test_schema_management_transaction_is_atomic(database_url: str) -> None:
    User = _quick_start_user(database_url)
    Profile = _profile(database_url)

    with pytest.raises(RuntimeError), User.objects.transaction():
        User.objects.create(name="Alice", email="alice@example.com")
        Profile.objects.create(user_id=1, bio="...")
        raise RuntimeError("fail after both writes")

    assert User.objects.count() == 0
    assert Profile.objects.count() == 0


def test_schema_management_transaction_is_atomic_when_a_write_fails(database_url: str) -> None:
    from registers.db import RegistryError

    User = _quick_start_user(database_url)
    Profile = _profile(database_url)

    with pytest.raises((RegistryError, ValueError)), User.objects.transaction():
        User.objects.create(name="Alice", email="alice@example.com")
        Profile.objects.create(user_id="not an int", bio="...")

    assert User.objects.count() == 0
    assert Profile.objects.count() == 0


# ---------------------------------------------------------------------------- relationships


def test_relationships(database_url: str) -> None:
    from registers.db.relations import BelongsTo, HasMany, HasManyThrough

    @database_registry(database_url, table_name="authors", key_field="id", autoincrement=True)
    class Author(BaseModel):
        id: int | None = None
        name: str

    @database_registry(database_url, table_name="posts", key_field="id", autoincrement=True)
    class Post(BaseModel):
        id: int | None = None
        author_id: int
        title: str

    @database_registry(database_url, table_name="post_tags", key_field="id", autoincrement=True)
    class PostTag(BaseModel):
        id: int | None = None
        post_id: int
        tag_id: int

    @database_registry(database_url, table_name="tags", key_field="id", autoincrement=True)
    class Tag(BaseModel):
        id: int | None = None
        name: str

    # Optionally declare relationships after all classes are decorated (not required)
    Author.posts = HasMany(Post, foreign_key="author_id")
    Post.author = BelongsTo(Author, local_key="author_id")
    Post.tags = HasManyThrough(Tag, through=PostTag, source_key="post_id", target_key="tag_id")

    Author.objects.create(name="Ada")
    Post.objects.create(author_id=1, title="Notes")
    Post.objects.create(author_id=1, title="Engines")
    Tag.objects.create(name="math")
    Tag.objects.create(name="history")
    PostTag.objects.create(post_id=1, tag_id=2)
    PostTag.objects.create(post_id=1, tag_id=1)

    author = Author.objects.require(1)
    posts = author.posts  # → list[Post]
    assert sorted(p.title for p in posts) == ["Engines", "Notes"]
    assert all(isinstance(p, Post) for p in posts)

    post = Post.objects.require(1)
    assert post.author == Author(id=1, name="Ada")  # → Author | None
    tags = post.tags  # → list[Tag]
    assert sorted(t.name for t in tags) == ["history", "math"]
    assert all(isinstance(t, Tag) for t in tags)


# ------------------------------------------------------------------------ FastAPI lifespan

APP_CODE = '''
import logging
from contextlib import asynccontextmanager
from fastapi import FastAPI
from models import User, Product, Order

def initialize_schemas():
    """Create every table schema exactly once on app startup (idempotent)."""
    logging.info("    Initializing ecommerce database schemas...")

    models = [
        User,
        Product,
        Order,
    ]

    for model in models:
        try:
            # The Production Spec guarantees these schema methods exist on the
            # registry/manager attached to the model. We call them directly on
            # the class (the most ergonomic pattern for FastAPI usage).
            if not model.schema_exists():
                model.create_schema()
                logging.info(f"Schema created - {model.__name__}")
            else:
                logging.info(f"Schema already exists - {model.__name__}")
        except AttributeError:
            # Safety net in case the manager is attached under a different name
            # (e.g. model.manager or model.registry). The core CRUD routes will
            # still work.
            logging.warning(
                f"Schema methods not directly on {model.__name__}. "
                "Manual schema creation may be required."
            )
        except Exception as exc:  # catches SchemaError, etc.
            logging.error(f"Failed to initialize {model.__name__}: {exc}")


def dispose_engines():
    """Dispose all SQLAlchemy engines on app shutdown to close DB connections."""
    logging.info("Disposing database engines...")

    models = [
        User,
        Product,
        Order,
    ]

    for model in models:
        try:
            if model.schema_exists():
                model.drop_schema()
                logging.info(f"Engine dropped → {model.__name__}")
            else:
                logging.info(f"Engine does not exist → {model.__name__}")
        except Exception as exc:  # catches SchemaError, etc.
            logging.error(f"Failed to dispose {model.__name__}: {exc}")

def dispose_engines():
    for model in [User, Product, Order]:
        model.objects.dispose()


@asynccontextmanager
async def lifespan(app: FastAPI):
    initialize_schemas()
    yield
    dispose_engines()


app = FastAPI(lifespan=lifespan)


@app.get("/users/{user_id}", response_model=User)
async def get_user(user_id: int):
    return User.objects.require(user_id)


@app.post("/users/", response_model=User)
async def create_user(user: User):
    return User.objects.create(**user.model_dump(exclude={"id"}))
'''


@pytest.fixture
def shop(database_url: str, monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """The design document's ``models`` module (tables not created until the lifespan runs)."""

    @database_registry(database_url, table_name="users", unique_fields=["email"], auto_create=False)
    class User(BaseModel):
        id: int | None = None
        name: str
        email: str

    @database_registry(database_url, table_name="products", auto_create=False)
    class Product(BaseModel):
        id: int | None = None
        name: str
        price: float

    @database_registry(database_url, table_name="orders", auto_create=False)
    class Order(BaseModel):
        id: int | None = None
        user_id: int
        product_id: int

    module = types.ModuleType("models")
    module.User, module.Product, module.Order = User, Product, Order
    monkeypatch.setitem(sys.modules, "models", module)
    namespace: dict[str, Any] = {"__name__": "design_doc_app"}
    exec(compile(APP_CODE, "design-readme-fastapi.py", "exec"), namespace)
    return types.SimpleNamespace(app=namespace["app"], User=User, Product=Product, Order=Order)


def test_fastapi_lifespan_creates_schemas_and_serves_models(
    shop: types.SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    assert shop.User.schema_exists() is False

    with caplog.at_level(logging.INFO), TestClient(shop.app) as client:
        for model in (shop.User, shop.Product, shop.Order):
            assert model.schema_exists() is True

        created = client.post("/users/", json={"name": "Alice", "email": "alice@example.com"})
        assert created.status_code == 200
        assert created.json() == {"id": 1, "name": "Alice", "email": "alice@example.com"}

        fetched = client.get("/users/1")
        assert fetched.status_code == 200
        assert fetched.json() == created.json()

        invalid = client.post("/users/", json={"name": "No email"})
        assert invalid.status_code == 422

        schema = client.get("/openapi.json").json()["components"]["schemas"]["User"]
        assert set(schema["properties"]) == {"id", "name", "email"}

    assert "Schema created - User" in caplog.text
    assert "Failed to initialize" not in caplog.text
    # the second dispose_engines only disposes: the data survives the shutdown
    assert shop.User.objects.require(1).name == "Alice"


def test_fastapi_lifespan_is_idempotent_across_restarts(
    shop: types.SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(shop.app) as client:
        client.post("/users/", json={"name": "Alice", "email": "alice@example.com"})

    with caplog.at_level(logging.INFO), TestClient(shop.app) as client:
        assert client.get("/users/1").json()["name"] == "Alice"

    assert "Schema already exists - User" in caplog.text


def test_fastapi_missing_user_raises_record_not_found(shop: types.SimpleNamespace) -> None:
    with TestClient(shop.app) as client, pytest.raises(RecordNotFoundError):
        client.get("/users/42")


def test_fastapi_missing_user_is_a_server_error_without_a_handler(
    shop: types.SimpleNamespace,
) -> None:
    with TestClient(shop.app, raise_server_exceptions=False) as client:
        assert client.get("/users/42").status_code == 500


async def test_fastapi_app_with_httpx_async_client(shop: types.SimpleNamespace) -> None:
    import httpx

    shop.User.create_schema()
    transport = httpx.ASGITransport(app=shop.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        created = await client.post("/users/", json={"name": "Bo", "email": "bo@example.com"})
        fetched = await client.get(f"/users/{created.json()['id']}")

    assert created.status_code == 200
    assert fetched.json() == {"id": 1, "name": "Bo", "email": "bo@example.com"}
