"""Passwords: a value that merely looks like a hash never chooses the work factor.

A password field stores a value as given only when it is a well-formed PBKDF2-SHA256 hash
within the documented bounds; everything else is hashed as a password. ``verify_password``
never raises and never runs more than ``MAX_ITERATIONS`` rounds, whatever it is handed.
The number of rounds is observed by wrapping ``hashlib.pbkdf2_hmac`` (what every
verification calls), so the bound is checked exactly rather than by timing.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import registers.db.security as security
from registers.db import database_registry, hash_password, is_password_hash, verify_password
from registers.db.security import MAX_ITERATIONS, MIN_ITERATIONS

from ._support import raw_rows

DIGEST = base64.b64encode(b"\x01" * 32).decode().rstrip("=")
SALT = "c2FsdHNhbHRzYWx0"


def pbkdf2(iterations: object, salt: str = SALT, digest: str = DIGEST) -> str:
    return f"pbkdf2_sha256${iterations}${salt}${digest}"


# Values from the issue and their relatives: each must be refused as a stored hash.
HOSTILE = [
    pbkdf2(2_000_000_000),  # most of an hour per verification
    pbkdf2(MAX_ITERATIONS + 1),
    pbkdf2(1),  # a 1-iteration hash
    pbkdf2(MIN_ITERATIONS - 1),
    pbkdf2("9" * 5000),  # int() of it raised ValueError before
    pbkdf2("0"),
    pbkdf2("-600000"),
    pbkdf2("+600000"),
    pbkdf2(" 600000"),
    pbkdf2("600000 "),
    pbkdf2("0600000"),
    pbkdf2("６０００００"),  # fullwidth digits: str.isdigit() says yes
    pbkdf2("٦٠٠٠٠٠"),  # Arabic-Indic digits
    pbkdf2("600_000"),
    pbkdf2("6e5"),
    pbkdf2("600000.0"),
    "$1$",
    "$1$salt$hash",
    "$2b$12$" + "a" * 53,  # bcrypt
    "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
    "$6$rounds=999999999$salt$hash",  # sha512-crypt
    "pbkdf2_sha1$600000$" + SALT + "$" + DIGEST,
    "PBKDF2_SHA256$600000$" + SALT + "$" + DIGEST,
    "pbkdf2_sha256$600000$" + SALT,
    "pbkdf2_sha256$600000$" + SALT + "$" + DIGEST + "$extra",
    "pbkdf2_sha256$$" + SALT + "$" + DIGEST,
    pbkdf2(600_000, salt=""),
    pbkdf2(600_000, salt="short"),  # < MIN_SALT_CHARS
    pbkdf2(600_000, salt="s" * 129),
    pbkdf2(600_000, salt="sa lt sa lt"),
    pbkdf2(600_000, salt="saltsalt\x00"),
    pbkdf2(600_000, salt="sält sält"),
    pbkdf2(600_000, salt="salt$salt"),
    pbkdf2(600_000, digest=""),
    pbkdf2(600_000, digest=DIGEST[:-1]),  # 31.x bytes
    pbkdf2(600_000, digest=DIGEST + "AAAA"),  # 35 bytes
    pbkdf2(600_000, digest=DIGEST[:-1] + "!"),
    pbkdf2(600_000, digest=DIGEST[:-1] + "B"),  # non-canonical trailing bits
    pbkdf2(600_000, digest=DIGEST + "=="),
    pbkdf2(600_000, digest=base64.urlsafe_b64encode(b"\xff" * 32).decode().rstrip("=")),
    pbkdf2(600_000) + "\n",
    " " + pbkdf2(600_000),
    pbkdf2(600_000) + "x" * 10_000,
]


@pytest.fixture
def rounds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Every PBKDF2 iteration count run through ``hashlib`` while the test runs."""
    seen: list[int] = []
    real = hashlib.pbkdf2_hmac

    def counting(name: str, password: bytes, salt: bytes, iterations: int,
                 dklen: int | None = None) -> bytes:
        seen.append(iterations)
        return real(name, password, salt, iterations, dklen)

    monkeypatch.setattr(security.hashlib, "pbkdf2_hmac", counting)
    yield seen


@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v)[:40])
def test_a_hash_outside_the_bounds_is_not_accepted(value: str, rounds: list[int]) -> None:
    assert is_password_hash(value) is False
    assert verify_password("anything", value) is False
    # malformed or too costly: refused before any round; too cheap: verified, cheaply
    assert rounds == [] or rounds[0] < MIN_ITERATIONS


@pytest.mark.parametrize("iterations", [MIN_ITERATIONS, 600_000, MAX_ITERATIONS])
def test_a_well_formed_hash_within_the_bounds_is_accepted(iterations: int) -> None:
    assert is_password_hash(pbkdf2(iterations))


def test_a_django_hash_is_accepted_and_verifies() -> None:
    # django.contrib.auth.hashers.PBKDF2PasswordHasher: alphanumeric salt, padded digest
    salt = "Xq3bH0kTn8fLwzYp2RvA"
    raw = hashlib.pbkdf2_hmac("sha256", b"hunter2", salt.encode(), 600_000)
    django = f"pbkdf2_sha256$600000${salt}${base64.b64encode(raw).decode()}"
    assert is_password_hash(django)
    assert verify_password("hunter2", django) is True
    assert verify_password("hunter3", django) is False


@pytest.mark.parametrize("iterations", [0, -1, MAX_ITERATIONS + 1, True, 1.5, "600000"])
def test_hash_password_refuses_iterations_outside_the_bounds(iterations: Any) -> None:
    with pytest.raises(ValueError, match="iterations must be an int from 1 to"):
        hash_password("x", iterations=iterations)


@pytest.mark.parametrize("password", ["", "\ud800", "a\x00b", "🐎" * 1000, "x" * 1_000_000])
def test_odd_passwords_hash_and_verify(password: str) -> None:
    hashed = hash_password(password, iterations=1000)
    assert verify_password(password, hashed) is True
    assert verify_password(password + "!", hashed) is False


@pytest.mark.parametrize("password", [None, 1, b"bytes", ["x"], object()])
def test_verify_with_a_non_string_password_is_false(password: Any, rounds: list[int]) -> None:
    assert verify_password(password, hash_password("x", iterations=1000)) is False
    assert rounds == [1000]  # only the hash_password call above


hash_like = st.builds(
    lambda scheme, it, salt, digest, sep: sep.join([scheme, it, salt, digest]),
    st.sampled_from(["pbkdf2_sha256", "pbkdf2_sha1", "", "$1", "argon2"]),
    st.one_of(st.integers(-10, 10**12).map(str), st.text(max_size=12),
              st.integers(0, 10).map(lambda n: "9" * (n * 500))),
    st.one_of(st.text(max_size=40), st.just(SALT)),
    st.one_of(st.text(max_size=60), st.just(DIGEST), st.binary(max_size=40).map(
        lambda b: base64.b64encode(b).decode())),
    st.sampled_from(["$", "$$", "#"]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.one_of(hash_like, st.text(max_size=300), st.binary().map(repr)),
       password=st.text(max_size=50))
def test_verify_password_never_raises_and_never_exceeds_the_bound(
    value: str, password: str
) -> None:
    seen: list[int] = []
    real = security.hashlib.pbkdf2_hmac

    def counting(name: str, pw: bytes, salt: bytes, iterations: int,
                 dklen: int | None = None) -> bytes:
        seen.append(iterations)
        return real(name, pw, salt, min(iterations, 1), dklen)  # count, don't burn CPU

    security.hashlib.pbkdf2_hmac = counting  # type: ignore[assignment]
    try:
        result = verify_password(password, value)
        accepted = is_password_hash(value)
    finally:
        security.hashlib.pbkdf2_hmac = real
    assert isinstance(result, bool)
    assert all(1 <= n <= MAX_ITERATIONS for n in seen)
    assert len(seen) <= 1
    if accepted:
        assert seen and seen[0] >= MIN_ITERATIONS


@settings(max_examples=200, deadline=None)
@given(iterations=st.integers(MIN_ITERATIONS, MAX_ITERATIONS),
       salt=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/._-",
                    min_size=8, max_size=128),
       digest=st.binary(min_size=32, max_size=32))
def test_every_hash_within_the_bounds_is_accepted(iterations: int, salt: str,
                                                  digest: bytes) -> None:
    encoded = base64.b64encode(digest).decode()
    assert is_password_hash(pbkdf2(iterations, salt, encoded.rstrip("=")))
    assert is_password_hash(pbkdf2(iterations, salt, encoded))


def test_the_worst_accepted_verification_is_bounded(figures: Callable[[str, object], None]) -> None:
    """Measured, for docs/reliability.md: the longest verify_password can run."""
    worst = pbkdf2(MAX_ITERATIONS)
    started = time.perf_counter()
    assert verify_password("x", worst) is False
    worst_s = time.perf_counter() - started
    started = time.perf_counter()
    assert verify_password("x", pbkdf2(2_000_000_000)) is False
    hostile_s = time.perf_counter() - started
    figures("max iterations verified", MAX_ITERATIONS)
    figures("worst verify s", round(worst_s, 2))
    figures("2e9-iteration hash s", f"{hostile_s:.6f}")
    assert hostile_s < worst_s  # refused outright, not run


@pytest.fixture
def User(database_url: str) -> Any:
    @database_registry(database_url, table_name="users")
    class User(BaseModel):
        id: int | None = None
        name: str
        password: str

    return User


@pytest.mark.parametrize("value", [pbkdf2(2_000_000_000), "$1$", pbkdf2("9" * 5000),
                                   pbkdf2(1), pbkdf2(600_000, salt="x")],
                         ids=["2e9", "$1$", "5000-digit", "1-iteration", "short-salt"])
def test_a_hostile_pre_hashed_value_is_hashed_as_a_password(
    User: Any, database_url: str, value: str, rounds: list[int]
) -> None:
    user = User.objects.create(name="eve", password=value)
    stored = raw_rows(database_url, "SELECT password FROM users")[0][0]
    assert stored != value
    assert is_password_hash(stored)
    assert stored.split("$")[1] == str(security.ITERATIONS)
    assert user.verify_password(value) is True  # the value itself is the password now
    assert all(n <= MAX_ITERATIONS for n in rounds)


def test_a_valid_pre_hashed_value_is_stored_as_given(User: Any, database_url: str) -> None:
    hashed = hash_password("s3cret")
    user = User.objects.create(name="ada", password=hashed)
    assert raw_rows(database_url, "SELECT password FROM users")[0][0] == hashed
    assert user.verify_password("s3cret") is True
