"""SPEC D6: password fields are stored as salted hashes."""

import base64
import binascii
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from registers.db import (
    RecordNotFoundError,
    UniqueConstraintError,
    database_registry,
    db_field,
    hash_password,
    is_password_hash,
    verify_password,
)

from ._helpers import RawSQL

OWASP_MIN_ITERATIONS = 600_000  # OWASP 2023 guidance for PBKDF2-HMAC-SHA256


@pytest.fixture
def Account(database_url: str) -> Any:
    @database_registry(database_url, table_name="accounts", unique_fields=["email"])
    class Account(BaseModel):
        id: int | None = None
        email: str
        password: str
        name: str = ""

    return Account


def _stored(raw: RawSQL, column: str = "password", table: str = "accounts") -> list[str]:
    return [row[column] for row in raw.rows(table)]


def _decode(text: str) -> set[bytes]:
    """The digest under each encoding a pbkdf2 hash commonly uses."""
    candidates = set()
    for decode in (base64.b64decode, base64.urlsafe_b64decode, bytes.fromhex):
        try:
            padded = text + "=" * (-len(text) % 4) if decode is not bytes.fromhex else text
            candidates.add(decode(padded))
        except (ValueError, binascii.Error):
            pass
    return candidates


# -------------------------------------------------------------------- the public functions


def test_hash_format_is_pbkdf2_sha256_with_owasp_iterations() -> None:
    hashed = hash_password("correct horse")

    algorithm, iterations, salt, digest = hashed.split("$")
    assert algorithm == "pbkdf2_sha256"
    assert int(iterations) >= OWASP_MIN_ITERATIONS
    assert len(salt) >= 16
    assert digest


def test_hash_digest_is_standard_pbkdf2() -> None:
    hashed = hash_password("correct horse")
    _, iterations, salt, digest = hashed.split("$")

    expected = hashlib.pbkdf2_hmac("sha256", b"correct horse", salt.encode(), int(iterations))
    assert expected in _decode(digest)


def test_hashes_are_salted() -> None:
    first, second = hash_password("same"), hash_password("same")

    assert first != second
    assert first.split("$")[2] != second.split("$")[2]


@pytest.mark.parametrize("plain", ["correct horse", "", "ünïcødé 🔑", "x" * 1000, "$dollar$"])
def test_verify_password_accepts_the_right_password_only(plain: str) -> None:
    hashed = hash_password(plain)

    assert verify_password(plain, hashed) is True
    assert verify_password(plain + "!", hashed) is False
    assert verify_password(plain.upper() + "X", hashed) is False


@pytest.mark.parametrize(
    "not_a_hash",
    [
        "plain",
        "",
        "pbkdf2_sha256$",
        "pbkdf2_sha256$abc$salt$digest",
        "pbkdf2_sha256$600000$salt",
        "md5$1$salt$digest",
        "$$$",
    ],
)
def test_verify_password_against_a_malformed_hash_is_false(not_a_hash: str) -> None:
    assert verify_password("plain", not_a_hash) is False


def test_is_password_hash() -> None:
    assert is_password_hash(hash_password("x")) is True


@pytest.mark.parametrize(
    "value",
    ["plain", "", "pbkdf2_sha256$abc", "pbkdf2_sha256$x$y$z", "$$$", None, 42],
)
def test_is_password_hash_rejects_non_hashes(value: Any) -> None:
    assert is_password_hash(value) is False


# ------------------------------------------------------------------------ hashing on write

WRITES: dict[str, Callable[[Any, str], Any]] = {
    "create": lambda M, pw: M.objects.create(email="a@x.io", password=pw),
    "strict_create": lambda M, pw: M.objects.strict_create(email="a@x.io", password=pw),
    "save": lambda M, pw: (m := M(email="a@x.io", password=pw), m.save(), m)[2],
    "upsert": lambda M, pw: M.objects.upsert(email="a@x.io", password=pw),
    "upsert-instance": lambda M, pw: M.objects.upsert(M(email="a@x.io", password=pw)),
    "bulk_create": lambda M, pw: M.objects.bulk_create([{"email": "a@x.io", "password": pw}])[0],
    "bulk_upsert": lambda M, pw: M.objects.bulk_upsert([M(email="a@x.io", password=pw)])[0],
}


@pytest.mark.parametrize("write", list(WRITES))
def test_password_is_hashed_on_every_write(Account: Any, raw: RawSQL, write: str) -> None:
    WRITES[write](Account, "s3cret!")

    (stored,) = _stored(raw)
    assert stored != "s3cret!"
    assert stored.startswith("pbkdf2_sha256$")
    assert verify_password("s3cret!", stored)


@pytest.mark.parametrize("write", list(WRITES))
def test_returned_model_carries_the_hash_not_the_plain_text(Account: Any, write: str) -> None:
    account = WRITES[write](Account, "s3cret!")

    assert account.password != "s3cret!"
    assert is_password_hash(account.password)
    assert account.verify_password("s3cret!") is True


def test_password_is_hashed_by_update_where(Account: Any, raw: RawSQL) -> None:
    Account.objects.create(email="a@x.io", password="old")

    (updated,) = Account.objects.update_where({"email": "a@x.io"}, password="new")

    (stored,) = _stored(raw)
    assert verify_password("new", stored)
    assert updated.password == stored
    assert updated.verify_password("new") is True


def test_upsert_update_path_hashes_the_new_password(Account: Any, raw: RawSQL) -> None:
    Account.objects.create(email="a@x.io", password="old")

    Account.objects.upsert(email="a@x.io", password="new")

    (stored,) = _stored(raw)
    assert verify_password("new", stored)
    assert not verify_password("old", stored)


@pytest.mark.parametrize("write", list(WRITES))
def test_an_existing_hash_is_never_hashed_again(Account: Any, raw: RawSQL, write: str) -> None:
    hashed = hash_password("s3cret!")

    WRITES[write](Account, hashed)

    assert _stored(raw) == [hashed]


def test_unchanged_password_is_not_rehashed_on_save(Account: Any, raw: RawSQL) -> None:
    account = Account.objects.create(email="a@x.io", password="s3cret!")
    before = _stored(raw)

    account.name = "renamed"
    account.save()

    assert _stored(raw) == before
    assert account.verify_password("s3cret!") is True


def test_changed_password_is_hashed_on_save(Account: Any, raw: RawSQL) -> None:
    account = Account.objects.create(email="a@x.io", password="old")

    account.password = "new"
    account.save()

    (stored,) = _stored(raw)
    assert verify_password("new", stored)
    assert account.verify_password("new") is True
    assert account.verify_password("old") is False


def test_instance_verify_password(Account: Any) -> None:
    Account.objects.create(email="a@x.io", password="s3cret!")
    fetched = Account.objects.get(1)

    assert fetched.verify_password("s3cret!") is True
    assert fetched.verify_password("wrong") is False
    assert fetched.verify_password("") is False


# ------------------------------------------------------------------------ opting in and out


def test_db_field_hash_password_true_hashes_another_field(database_url: str, raw: RawSQL) -> None:
    @database_registry(database_url, table_name="api_keys")
    class ApiKey(BaseModel):
        id: int | None = None
        secret: str = db_field(hash_password=True)

    key = ApiKey.objects.create(secret="tok-123")

    (stored,) = _stored(raw, "secret", "api_keys")
    assert verify_password("tok-123", stored)
    assert key.verify_password("tok-123") is True


def test_db_field_hash_password_false_opts_a_password_field_out(
    database_url: str, raw: RawSQL
) -> None:
    @database_registry(database_url, table_name="wifis")
    class Wifi(BaseModel):
        id: int | None = None
        password: str = db_field(hash_password=False)

    Wifi.objects.create(password="guest-wifi")

    assert _stored(raw, "password", "wifis") == ["guest-wifi"]
    assert not hasattr(Wifi(password="x"), "verify_password")


def test_optional_password_stores_none(database_url: str, raw: RawSQL) -> None:
    @database_registry(database_url, table_name="members")
    class Member(BaseModel):
        id: int | None = None
        password: str | None = None

    member = Member.objects.create()

    assert _stored(raw, "password", "members") == [None]
    assert member.verify_password("") is False
    assert member.verify_password("None") is False


# --------------------------------------------------------------------- never in error text


def test_password_never_appears_in_unique_error(Account: Any) -> None:
    Account.objects.create(email="a@x.io", password="hunter2")

    with pytest.raises(UniqueConstraintError) as info:
        Account.objects.create(email="a@x.io", password="hunter2")

    text = str(info.value) + repr(info.value) + repr(info.value.args)
    assert "hunter2" not in text
    assert "pbkdf2_sha256$" not in text


def test_password_never_appears_in_not_found_error(Account: Any) -> None:
    with pytest.raises(RecordNotFoundError) as info:
        Account.objects.require(email="a@x.io", password="hunter2")

    text = str(info.value) + repr(info.value) + repr(info.value.args)
    assert "hunter2" not in text
