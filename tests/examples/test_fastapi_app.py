"""The FastAPI example (examples/fastapi_app), exercised through its HTTP API.

Each test imports the app afresh against a private database (``database_url`` from
tests/conftest.py: a SQLite file always, PostgreSQL and MariaDB when configured) and drives
it with ``fastapi.testclient.TestClient`` (httpx underneath), lifespan included.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from registers.db import dispose_engine

APP_DIR = Path(__file__).resolve().parents[2] / "examples" / "fastapi_app"
APP_MODULES = ("models", "main")


@pytest.fixture
def shop(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The example's ``main`` module, its models bound to a private database."""
    monkeypatch.setenv("SHOP_DATABASE_URL", database_url)
    monkeypatch.syspath_prepend(str(APP_DIR))
    for name in APP_MODULES:
        sys.modules.pop(name, None)
    try:
        yield importlib.import_module("main")
    finally:
        for name in APP_MODULES:
            sys.modules.pop(name, None)
        dispose_engine(database_url)


@pytest.fixture
def client(shop: ModuleType) -> Iterator[TestClient]:
    with TestClient(shop.app) as client:
        yield client


def add_user(client: TestClient, name: str = "Ada", email: str = "ada@example.com") -> dict:
    response = client.post("/users/", json={"name": name, "email": email})
    assert response.status_code == 201, response.text
    return response.json()


def add_product(client: TestClient, sku: str = "MUG-01", stock: int = 5, **extra) -> dict:
    body = {"sku": sku, "name": "Mug", "price": "9.90", "stock": stock, **extra}
    response = client.post("/products/", json=body)
    assert response.status_code == 201, response.text
    return response.json()


# --- lifespan -------------------------------------------------------------------------


def test_startup_creates_the_tables(shop: ModuleType) -> None:
    models = (shop.User, shop.Product, shop.Order)
    assert not any(model.schema_exists() for model in models)
    with TestClient(shop.app):
        assert all(model.schema_exists() for model in models)


def test_startup_is_idempotent_and_keeps_data(shop: ModuleType) -> None:
    with TestClient(shop.app) as client:
        add_user(client)
    with TestClient(shop.app) as client:
        assert [u["name"] for u in client.get("/users/").json()] == ["Ada"]


def test_shutdown_releases_connections_but_keeps_tables(shop: ModuleType) -> None:
    with TestClient(shop.app) as client:
        add_user(client)
    # After shutdown the connections are closed; the next use opens new ones.
    assert shop.User.schema_exists()
    assert shop.User.objects.count() == 1


# --- users ----------------------------------------------------------------------------


def test_create_user_returns_the_stored_model(client: TestClient) -> None:
    created = add_user(client)
    assert created == {"id": 1, "name": "Ada", "email": "ada@example.com"}


def test_client_sent_id_is_ignored_on_create(client: TestClient) -> None:
    response = client.post("/users/", json={"id": 99, "name": "Bo", "email": "bo@example.com"})
    assert response.status_code == 201
    assert response.json()["id"] == 1


def test_get_user(client: TestClient) -> None:
    created = add_user(client)
    response = client.get(f"/users/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


def test_missing_user_is_404(client: TestClient) -> None:
    response = client.get("/users/42")
    assert response.status_code == 404
    assert "42" in response.json()["detail"]


def test_duplicate_email_is_409(client: TestClient) -> None:
    add_user(client)
    response = client.post("/users/", json={"name": "Other", "email": "ada@example.com"})
    assert response.status_code == 409
    assert "email" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "No email"},
        {"name": "", "email": "x@example.com"},
        {"name": "Bad", "email": "not-an-email"},
        {"name": 5, "email": "x@example.com"},
    ],
)
def test_invalid_user_body_is_422(client: TestClient, body: dict) -> None:
    response = client.post("/users/", json=body)
    assert response.status_code == 422
    assert client.get("/users/").json() == []


def test_non_integer_user_id_is_422(client: TestClient) -> None:
    assert client.get("/users/abc").status_code == 422


def test_list_users_paginates_in_key_order(client: TestClient) -> None:
    for n in range(5):
        add_user(client, f"user{n}", f"u{n}@example.com")
    page = client.get("/users/", params={"limit": 2, "offset": 1}).json()
    assert [u["name"] for u in page] == ["user1", "user2"]
    assert client.get("/users/", params={"limit": 0}).status_code == 422


def test_replace_user(client: TestClient) -> None:
    created = add_user(client)
    response = client.put(f"/users/{created['id']}", json={"name": "Ada L.", "email": "al@x.org"})
    assert response.status_code == 200
    assert response.json() == {"id": created["id"], "name": "Ada L.", "email": "al@x.org"}
    assert client.get(f"/users/{created['id']}").json()["name"] == "Ada L."


def test_replace_missing_user_is_404_and_creates_nothing(client: TestClient) -> None:
    response = client.put("/users/7", json={"name": "Ghost", "email": "g@example.com"})
    assert response.status_code == 404
    assert client.get("/users/").json() == []


def test_replace_user_with_taken_email_is_409(client: TestClient) -> None:
    add_user(client)
    other = add_user(client, "Bo", "bo@example.com")
    response = client.put(f"/users/{other['id']}", json={"name": "Bo", "email": "ada@example.com"})
    assert response.status_code == 409
    assert client.get(f"/users/{other['id']}").json()["email"] == "bo@example.com"


def test_delete_user(client: TestClient) -> None:
    created = add_user(client)
    assert client.delete(f"/users/{created['id']}").status_code == 204
    assert client.get(f"/users/{created['id']}").status_code == 404
    assert client.delete(f"/users/{created['id']}").status_code == 404


# --- products -------------------------------------------------------------------------


def test_product_round_trips_its_decimal_price(client: TestClient) -> None:
    add_product(client, price="12.30")
    product = client.get("/products/MUG-01").json()
    assert product == {"sku": "MUG-01", "name": "Mug", "price": "12.30", "stock": 5}


def test_duplicate_sku_is_409(client: TestClient) -> None:
    add_product(client)
    response = client.post("/products/", json={"sku": "MUG-01", "name": "Again", "price": "1"})
    assert response.status_code == 409
    assert "MUG-01" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"sku": "mug 1", "name": "Mug", "price": "1.00"},
        {"sku": "MUG-02", "name": "Mug", "price": "-1"},
        {"sku": "MUG-02", "name": "Mug", "price": "1.001"},
        {"sku": "MUG-02", "name": "Mug", "price": "1.00", "stock": -3},
    ],
)
def test_invalid_product_is_422(client: TestClient, body: dict) -> None:
    assert client.post("/products/", json=body).status_code == 422


def test_missing_product_is_404(client: TestClient) -> None:
    assert client.get("/products/NOPE-1").status_code == 404


def test_list_products_filters(client: TestClient) -> None:
    add_product(client, "MUG-01", stock=0)
    add_product(client, "CUP-01", name="Tea cup")
    add_product(client, "POT-01", name="Teapot")
    in_stock = client.get("/products/", params={"in_stock": True}).json()
    assert [p["sku"] for p in in_stock] == ["CUP-01", "POT-01"]
    tea = client.get("/products/", params={"search": "TEA"}).json()
    assert [p["sku"] for p in tea] == ["CUP-01", "POT-01"]


def test_replace_product_keeps_its_sku(client: TestClient) -> None:
    add_product(client)
    body = {"sku": "MUG-01", "name": "Big mug", "price": "11.00", "stock": 2}
    assert client.put("/products/MUG-01", json=body).json() == body
    renamed = {**body, "sku": "MUG-99"}
    assert client.put("/products/MUG-01", json=renamed).status_code == 409


# --- orders ---------------------------------------------------------------------------


def test_order_takes_stock_and_copies_the_price(client: TestClient) -> None:
    user = add_user(client)
    add_product(client, stock=5, price="9.90")
    response = client.post(
        "/orders/", json={"user_id": user["id"], "product_sku": "MUG-01", "quantity": 2}
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["unit_price"] == "9.90"
    assert order["status"] == "placed"
    assert client.get("/products/MUG-01").json()["stock"] == 3
    assert client.get(f"/orders/{order['id']}").json() == order


def test_orders_of_a_user_come_from_the_relationship(client: TestClient) -> None:
    ada = add_user(client)
    bo = add_user(client, "Bo", "bo@example.com")
    add_product(client, stock=10)
    for user, quantity in ((ada, 1), (bo, 2), (ada, 3)):
        body = {"user_id": user["id"], "product_sku": "MUG-01", "quantity": quantity}
        assert client.post("/orders/", json=body).status_code == 201
    orders = client.get(f"/users/{ada['id']}/orders").json()
    assert [o["quantity"] for o in orders] == [1, 3]
    assert client.get("/users/99/orders").status_code == 404


def test_order_beyond_stock_is_409_and_changes_nothing(client: TestClient) -> None:
    user = add_user(client)
    add_product(client, stock=1)
    body = {"user_id": user["id"], "product_sku": "MUG-01", "quantity": 2}
    response = client.post("/orders/", json=body)
    assert response.status_code == 409
    assert "in stock" in response.json()["detail"]
    assert client.get("/products/MUG-01").json()["stock"] == 1
    assert client.get(f"/users/{user['id']}/orders").json() == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"user_id": 99, "product_sku": "MUG-01"}, 404),
        ({"user_id": 1, "product_sku": "NOPE-1"}, 404),
        ({"user_id": 1, "product_sku": "MUG-01", "quantity": 0}, 422),
        ({"product_sku": "MUG-01"}, 422),
    ],
)
def test_bad_orders(client: TestClient, body: dict, status: int) -> None:
    add_user(client)
    add_product(client)
    assert client.post("/orders/", json=body).status_code == status
    assert client.get("/products/MUG-01").json()["stock"] == 5


def test_user_with_orders_cannot_be_deleted(client: TestClient) -> None:
    user = add_user(client)
    add_product(client)
    client.post("/orders/", json={"user_id": user["id"], "product_sku": "MUG-01"})
    assert client.delete(f"/users/{user['id']}").status_code == 409
    assert client.delete("/products/MUG-01").status_code == 409


def test_openapi_schema_uses_the_models(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    # Models whose JSON differs between input and output (Decimal) get -Input/-Output twins.
    names = {name.split("-")[0] for name in schemas}
    assert {"User", "Product", "Order"} <= names
    assert set(schemas["User"]["properties"]) == {"id", "name", "email"}
