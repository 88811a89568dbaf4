"""Passwords: unique salts, OWASP cost, constant-time checks, and no leak anywhere.

"Anywhere" means: exception messages (and their chained causes), ``repr``/``str`` of
models, and every log record emitted at DEBUG while passwords are written, queried,
verified or rejected.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import registers.db.security as security
from registers.db import (
    RegistryError,
    database_registry,
    hash_password,
    is_password_hash,
    verify_password,
)

from ._support import raw_rows

OWASP_PBKDF2_SHA256 = 600_000
PLAIN = "correct horse battery staple 🐎"
OTHER_PLAIN = "Tr0ub4dor&3-secret"


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def parse(hashed: str) -> tuple[str, int, bytes, bytes]:
    algorithm, iterations, salt, digest = hashed.split("$")
    return algorithm, int(iterations), _b64decode(salt), _b64decode(digest)


@pytest.fixture
def user_model(database_url: str) -> Any:
    @database_registry(database_url, table_name="users", unique_fields=["email"])
    class User(BaseModel):
        id: int | None = None
        email: str
        password: str

    return User


def test_default_hash_meets_current_owasp_cost_with_a_long_salt() -> None:
    algorithm, iterations, salt, digest = parse(hash_password(PLAIN))
    assert algorithm == "pbkdf2_sha256"
    assert iterations >= OWASP_PBKDF2_SHA256
    assert len(salt) >= 16
    assert len(digest) == 32


def test_salts_are_unique(figures: Callable[[str, object], None]) -> None:
    # Low cost only to make thousands of hashes affordable; salting does not depend on it.
    hashes = [hash_password(PLAIN, iterations=1) for _ in range(5000)]
    salts = {h.split("$")[2] for h in hashes}
    figures("hashes", len(hashes))
    figures("distinct salts", len(salts))
    assert len(salts) == len(hashes)
    assert len({h.split("$")[3] for h in hashes}) == len(hashes)


def test_stored_hashes_of_one_password_differ_and_use_full_cost(
    user_model: Any, database_url: str
) -> None:
    for i in range(3):
        user_model.objects.create(email=f"u{i}@example.com", password=PLAIN)
    stored = [p for (p,) in raw_rows(database_url, "SELECT password FROM users")]
    assert len(set(stored)) == 3
    for hashed in stored:
        assert is_password_hash(hashed)
        assert parse(hashed)[1] >= OWASP_PBKDF2_SHA256
        assert PLAIN not in hashed


def test_verification_uses_a_constant_time_comparison(
    monkeypatch: pytest.MonkeyPatch, user_model: Any
) -> None:
    calls: list[tuple[Any, Any]] = []
    real = security.hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    hashed = hash_password(PLAIN, iterations=1000)
    assert verify_password(PLAIN, hashed)
    assert not verify_password(OTHER_PLAIN, hashed)
    assert len(calls) == 2
    user = user_model.objects.create(email="ct@example.com", password=PLAIN)
    assert user.verify_password(PLAIN)
    assert not user.verify_password(OTHER_PLAIN)
    assert len(calls) == 4


@pytest.mark.parametrize(
    "bad", ["", "pbkdf2_sha256$", "pbkdf2_sha256$0$a$b", "md5$1$a$b", "x" * 10_000, None, 5]
)
def test_verification_of_malformed_hashes_is_false_not_an_error(bad: Any) -> None:
    assert verify_password(PLAIN, bad) is False
    assert verify_password(bad, hash_password(PLAIN, iterations=1)) is False


# --- no leaks -------------------------------------------------------------------------

def exception_texts(exc: BaseException) -> Iterator[str]:
    """Message and repr of an exception and of everything chained to it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield repr(current.args)
        current = current.__cause__ or current.__context__


class Leaks:
    """Collects every text a user or operator could see, then looks for secrets in it."""

    def __init__(self, *secrets: str) -> None:
        self.secrets = list(secrets)
        self.texts: list[str] = []
        self.errors = 0

    def expect_error(self, call: Callable[[], Any]) -> None:
        try:
            call()
        except (RegistryError, ValidationError) as exc:
            self.errors += 1
            self.texts.extend(exception_texts(exc))
        else:
            raise AssertionError("expected an error")

    def found(self) -> list[str]:
        return [t[:160] for t in self.texts for s in self.secrets if s and s in t]


@pytest.fixture
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash at low cost in the leak tests (the cost is tested above; leaks do not vary)."""
    import registers.db.table as table

    monkeypatch.setattr(
        table, "hash_password", lambda plain: security.hash_password(plain, iterations=1000)
    )


@pytest.fixture
def exposure(
    cheap_hashing: None, user_model: Any, database_url: str, caplog: pytest.LogCaptureFixture
) -> dict[str, Leaks]:
    """Drive every write, read and error path that involves a password; collect the texts."""
    caplog.set_level(logging.DEBUG)
    objects = user_model.objects
    user = objects.create(email="a@example.com", password=PLAIN)
    (stored,) = raw_rows(database_url, "SELECT password FROM users")[0]
    secrets = (PLAIN, stored, stored.split("$")[3])
    errors, reprs, logs = Leaks(*secrets), Leaks(*secrets), Leaks(*secrets)

    errors.expect_error(lambda: objects.create(email="a@example.com", password=PLAIN))
    errors.expect_error(lambda: objects.create(id=user.id, email="b@example.com", password=PLAIN))
    errors.expect_error(lambda: objects.bulk_create(
        [{"email": "c@example.com", "password": PLAIN}, {"email": "a@example.com",
                                                         "password": PLAIN}]))
    errors.expect_error(lambda: objects.upsert(email="a@example.com", password=PLAIN, id="x"))
    objects.create(email="d@example.com", password=OTHER_PLAIN)
    errors.expect_error(
        lambda: objects.update_where({"email": "d@example.com"}, email="a@example.com",
                                     password=PLAIN)
    )
    errors.expect_error(lambda: objects.filter(password__nope=PLAIN))
    errors.expect_error(lambda: objects.filter(password=PLAIN, limit="x"))
    fresh = objects.require(user.id)
    fresh.id = 999
    errors.expect_error(fresh.save)

    assert user.verify_password(PLAIN)
    objects.update_where({"id": user.id}, password=PLAIN)
    objects.upsert(id=user.id, email="a@example.com", password=PLAIN)
    for record in (user, objects.require(user.id), *objects.all()):
        reprs.texts += [repr(record), str(record)]
    reprs.texts.append(repr(objects))
    logs.texts += [r.getMessage() for r in caplog.records]
    # Not-found errors quote their criteria: a password criterion must not be quoted.
    not_found = Leaks(*secrets)
    not_found.expect_error(lambda: objects.require(email="a@example.com", password=PLAIN))
    not_found.expect_error(lambda: objects.require(password=stored, email="zzz@example.com"))
    return {"errors": errors, "reprs": reprs, "logs": logs, "not_found": not_found}


def test_no_password_or_hash_in_error_messages(
    exposure: dict[str, Leaks], figures: Callable[[str, object], None]
) -> None:
    figures("error paths checked", exposure["errors"].errors)
    assert exposure["errors"].found() == []


def test_no_password_or_hash_in_not_found_messages(exposure: dict[str, Leaks]) -> None:
    assert exposure["not_found"].found() == []


def test_no_password_or_hash_in_log_records(
    exposure: dict[str, Leaks], figures: Callable[[str, object], None]
) -> None:
    figures("log records checked", len(exposure["logs"].texts))
    assert exposure["logs"].found() == []


def test_no_password_hash_in_model_repr(exposure: dict[str, Leaks]) -> None:
    assert exposure["reprs"].found() == []


def test_a_password_failing_validation_is_not_echoed(user_model: Any) -> None:
    """pydantic echoes rejected input; a rejected password must not be shown."""
    secret_number = 918273645546372819
    leaks = Leaks(str(secret_number))
    leaks.expect_error(lambda: user_model.objects.create(email="n@example.com",
                                                         password=secret_number))
    user_model.objects.create(email="m@example.com", password=PLAIN)
    leaks.expect_error(lambda: user_model.objects.update_where({"email": "m@example.com"},
                                                               password=secret_number))
    assert leaks.found() == []
