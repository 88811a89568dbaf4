"""Password hashing: salted PBKDF2-SHA256 in the ``pbkdf2_sha256$iter$salt$digest`` format.

The iteration count follows the OWASP Password Storage Cheat Sheet (600,000 for
PBKDF2-HMAC-SHA256). Verification is constant-time (``hmac.compare_digest``).

A value given for a password field is stored as is only when it is a well-formed hash
whose parameters lie within the bounds below (:func:`is_password_hash`); anything else,
including a hash of 1 or of 2,000,000,000 iterations, is treated as a plain-text password
and hashed. So whoever types a value never chooses the work factor, and
:func:`verify_password` never runs more than :data:`MAX_ITERATIONS` rounds.

Accepted: ``pbkdf2_sha256$<iterations>$<salt>$<digest>`` with

* ``iterations`` written in ASCII digits, no leading zero, within
  [:data:`MIN_ITERATIONS`, :data:`MAX_ITERATIONS`];
* ``salt`` of :data:`MIN_SALT_CHARS` to :data:`MAX_SALT_CHARS` characters from
  ``A-Z a-z 0-9 + / . -`` and ``_`` (base64 as written here, or Django's alphanumeric salts);
* ``digest`` the standard base64 of the 32-byte SHA-256 output, with or without ``=``
  padding (so hashes made by Django's ``PBKDF2PasswordHasher`` are accepted as well).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets

__all__ = [
    "ALGORITHM",
    "ITERATIONS",
    "MAX_ITERATIONS",
    "MIN_ITERATIONS",
    "hash_password",
    "is_password_hash",
    "verify_password",
]

ALGORITHM = "pbkdf2_sha256"
ITERATIONS = 600_000
MIN_ITERATIONS = 100_000
MAX_ITERATIONS = 1_200_000
MIN_SALT_CHARS = 8
MAX_SALT_CHARS = 128
_SALT_BYTES = 16
_DIGEST_BYTES = 32

_HASH = re.compile(
    rf"{ALGORITHM}\$([1-9][0-9]{{0,8}})\$([A-Za-z0-9+/._-]{{{MIN_SALT_CHARS},{MAX_SALT_CHARS}}})"
    r"\$([A-Za-z0-9+/]{43}=?)",
    re.ASCII,
)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _digest(password: str, salt: str, iterations: int) -> bytes:
    # surrogatepass: a lone surrogate (JSON "\ud800") is a password like any other
    secret = password.encode("utf-8", "surrogatepass")
    return hashlib.pbkdf2_hmac("sha256", secret, salt.encode("ascii"), iterations)


def hash_password(password: str, *, iterations: int = ITERATIONS) -> str:
    """Hash ``password`` with a fresh random salt.

    Args:
        password: The plain-text password.
        iterations: PBKDF2 rounds, at most ``MAX_ITERATIONS``; the default follows
            current OWASP guidance. Fewer than ``MIN_ITERATIONS`` is for tests only: such
            a hash is not accepted as an already-hashed value by a model's password field
            (it would be hashed again).

    Returns:
        ``pbkdf2_sha256$<iterations>$<salt>$<digest>``.

    Raises:
        TypeError: ``password`` is not a string.
        ValueError: ``iterations`` is outside the accepted bounds.
    """
    if not isinstance(password, str):
        raise TypeError("password must be a string")
    if (not isinstance(iterations, int) or isinstance(iterations, bool)
            or not 1 <= iterations <= MAX_ITERATIONS):
        raise ValueError(
            f"iterations must be an int from 1 to {MAX_ITERATIONS:,}, "
            f"got {iterations!r}"
        )
    salt = _b64(secrets.token_bytes(_SALT_BYTES))
    return f"{ALGORITHM}${iterations}${salt}${_b64(_digest(password, salt, iterations))}"


def _parse(value: object, minimum: int = MIN_ITERATIONS) -> tuple[int, str, bytes] | None:
    """(iterations, salt, digest bytes) of an acceptable hash, else None. Never raises."""
    if not isinstance(value, str) or len(value) > 256:
        return None
    match = _HASH.fullmatch(value)
    if match is None:
        return None
    iterations = int(match.group(1))
    if not minimum <= iterations <= MAX_ITERATIONS:
        return None
    encoded = match.group(3).rstrip("=")
    try:
        digest = base64.b64decode(encoded + "=", validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(digest) != _DIGEST_BYTES or _b64(digest) != encoded:
        return None  # non-canonical trailing bits: not something a hasher wrote
    return iterations, match.group(2), digest


def is_password_hash(value: object) -> bool:
    """Whether ``value`` is an acceptable PBKDF2-SHA256 hash (stored as given).

    Well formed, and iterations / salt within the documented bounds; see the module
    docstring. Never raises.
    """
    return _parse(value) is not None


def verify_password(password: str, hashed: str) -> bool:
    """Check ``password`` against ``hashed`` in constant time.

    Returns ``False`` (never raises) for a non-string password or a malformed hash,
    and for one of more than ``MAX_ITERATIONS`` rounds, so it never runs longer than
    ``MAX_ITERATIONS`` rounds take. (Hashes of fewer than ``MIN_ITERATIONS`` rounds, which
    only ``hash_password(iterations=...)`` makes, still verify: they are refused where a
    value is stored, not here.)
    """
    if not isinstance(password, str):
        return False
    parsed = _parse(hashed, minimum=1)
    if parsed is None:
        return False
    iterations, salt, digest = parsed
    return hmac.compare_digest(_digest(password, salt, iterations), digest)
