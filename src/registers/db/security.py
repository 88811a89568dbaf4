"""Password hashing: salted PBKDF2-SHA256 in the ``pbkdf2_sha256$iter$salt$digest`` format.

The iteration count follows the OWASP Password Storage Cheat Sheet (600,000 for
PBKDF2-HMAC-SHA256). Verification is constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["ALGORITHM", "ITERATIONS", "hash_password", "is_password_hash", "verify_password"]

ALGORITHM = "pbkdf2_sha256"
ITERATIONS = 600_000
_SALT_BYTES = 16


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _digest(password: str, salt: str, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("ascii"), iterations)


def hash_password(password: str, *, iterations: int = ITERATIONS) -> str:
    """Hash ``password`` with a fresh random salt.

    Args:
        password: The plain-text password.
        iterations: PBKDF2 rounds; the default follows current OWASP guidance.

    Returns:
        ``pbkdf2_sha256$<iterations>$<salt>$<digest>``.

    Raises:
        TypeError: ``password`` is not a string.
    """
    if not isinstance(password, str):
        raise TypeError("password must be a string")
    salt = _b64(secrets.token_bytes(_SALT_BYTES))
    return f"{ALGORITHM}${iterations}${salt}${_b64(_digest(password, salt, iterations))}"


def is_password_hash(value: object) -> bool:
    """Whether ``value`` is a hash produced by :func:`hash_password`."""
    if not isinstance(value, str):
        return False
    parts = value.split("$")
    return (
        len(parts) == 4
        and parts[0] == ALGORITHM
        and parts[1].isdigit()
        and int(parts[1]) > 0
        and bool(parts[2])
        and bool(parts[3])
    )


def verify_password(password: str, hashed: str) -> bool:
    """Check ``password`` against ``hashed`` in constant time.

    Returns ``False`` (never raises) for a malformed hash or a non-string password.
    """
    if not isinstance(password, str) or not is_password_hash(hashed):
        return False
    _, iterations, salt, digest = hashed.split("$")
    expected = _b64(_digest(password, salt, int(iterations)))
    return hmac.compare_digest(expected.encode("ascii"), digest.encode("ascii"))
