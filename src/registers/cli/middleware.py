"""``MiddlewareChain``: ordered pre/post hooks around every command, plus built-in logging.

Pre-hooks are called as ``hook(command, kwargs)`` with the bound arguments before the
handler runs (a pre-hook that raises stops the command); post-hooks as
``hook(command, result)`` after it returns. Both run in insertion order.

The built-in :func:`logging_middleware_pre` / :func:`logging_middleware_post` log at DEBUG
on the ``registers.cli`` logger. Their timing state lives in a context variable holding a
stack, so concurrent threads, asyncio tasks and re-entrant (nested) commands each measure
their own invocation. Values of secret parameters are logged as ``***`` (see
:func:`redact`).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from contextvars import ContextVar
    from typing import Any

    PreHook = Callable[[str, dict[str, Any]], Any]
    PostHook = Callable[[str, Any], Any]

__all__ = [
    "LOGGER_NAME",
    "BoundArguments",
    "MiddlewareChain",
    "is_secret_name",
    "logging_middleware_post",
    "logging_middleware_pre",
    "redact",
    "redact_url",
    "redact_value",
]

LOGGER_NAME = "registers.cli"
REDACTED = "***"
# a name containing one of these holds a secret ...
SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "key", "credential",
                "cookie")
# ... and so does a name with one of these as a word ("pin", "user_pin", "otpCode", but
# not "spinner", "author" or "footprint")
SECRET_NAME_WORDS = frozenset({"pwd", "pin", "otp", "totp", "hotp", "auth", "authorization",
                               "session", "sessionid", "sid", "dsn", "cvv", "cvc", "ssn"})


def _words(name: str) -> list[str]:
    """``"userPin"`` -> ``["user", "pin"]``; ``"otp_code"`` -> ``["otp", "code"]``."""
    words: list[str] = []
    current = ""
    previous = ""
    for char in name:
        if not char.isalnum():
            if current:
                words.append(current)
            current = ""
        elif char.isupper() and (previous.islower() or previous.isdigit()):
            words.append(current)
            current = char
        else:
            current += char
        previous = char
    if current:
        words.append(current)
    return [word.lower() for word in words]


def is_secret_name(name: str) -> bool:
    """Whether a parameter (or dict key) called ``name`` holds a secret.

    True when the name contains password, passwd, passphrase, secret, token, key,
    credential or cookie, or has pwd, pin, otp, auth, authorization, session, sid, dsn,
    cvv, cvc or ssn as a word (``user_pin``, ``otpCode``, ``auth-header``).
    """
    lowered = name.lower()
    if any(word in lowered for word in SECRET_WORDS):
        return True
    return any(word in SECRET_NAME_WORDS for word in _words(name))


def redact_url(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@host`` URL replaced."""
    if "://" not in text or "@" not in text:
        return text
    import re

    return re.sub(r"(://[^/:@\s]*:)[^@/\s]*(@)", rf"\g<1>{REDACTED}\g<2>", text)


def redact_value(value: Any, secret: bool = False) -> Any:
    """``value`` for showing: ``***`` when secret, secret keys of dicts redacted (nested),
    passwords in URLs masked."""
    if secret:
        return REDACTED
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, dict):
        return {k: redact_value(v, isinstance(k, str) and is_secret_name(k))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(v) for v in value)
    return value


def redact(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``kwargs`` safe to log.

    The values of secret parameters (by name, see :func:`is_secret_name`, or declared with
    ``Env(..., secret=True)``) become ``***``, so do secret keys of nested dicts, and
    passwords in URLs are masked. A parameter declared ``Env(..., secret=False)`` is shown.
    """
    declared: Mapping[str, bool] = getattr(kwargs, "secrets", {})
    return {
        k: redact_value(v, declared.get(k, is_secret_name(k))) for k, v in kwargs.items()
    }


class BoundArguments(dict):  # type: ignore[type-arg]
    """The keyword arguments of one call, with which of them are secret (for hooks)."""

    __slots__ = ("secrets",)

    def __init__(self, *args: Any, secrets: Mapping[str, bool] | None = None) -> None:
        super().__init__(*args)
        self.secrets: Mapping[str, bool] = secrets or {}


class MiddlewareChain:
    """Ordered pre- and post-execution hooks.

    Example:
        >>> chain = MiddlewareChain()
        >>> chain.add_pre(lambda command, kwargs: print("running", command))
        >>> chain.run_pre("greet", {})
        running greet
    """

    __slots__ = ("_post", "_pre")

    def __init__(self) -> None:
        self._pre: list[PreHook] = []
        self._post: list[PostHook] = []

    def add_pre(self, hook: PreHook) -> None:
        """Append ``hook(command, kwargs)`` to run before every command."""
        self._pre.append(hook)

    def add_post(self, hook: PostHook) -> None:
        """Append ``hook(command, result)`` to run after every command returns."""
        self._post.append(hook)

    @property
    def pre_hooks(self) -> tuple[PreHook, ...]:
        """The pre-hooks, in the order they run."""
        return tuple(self._pre)

    @property
    def post_hooks(self) -> tuple[PostHook, ...]:
        """The post-hooks, in the order they run."""
        return tuple(self._post)

    def __bool__(self) -> bool:
        return bool(self._pre or self._post)

    def __len__(self) -> int:
        return len(self._pre) + len(self._post)

    def run_pre(self, command: str, kwargs: dict[str, Any]) -> None:
        """Call every pre-hook in order; an exception stops the chain (and the command)."""
        for hook in self._pre:
            hook(command, kwargs)

    def run_post(self, command: str, result: Any) -> None:
        """Call every post-hook in order."""
        for hook in self._post:
            hook(command, result)


_starts: ContextVar[tuple[float, ...]] | None = None


def _start_stack() -> ContextVar[tuple[float, ...]]:
    global _starts
    if _starts is None:
        from contextvars import ContextVar

        _starts = ContextVar("registers_cli_command_starts", default=())
    return _starts


def logging_middleware_pre(command: str, kwargs: Mapping[str, Any]) -> None:
    """Built-in pre-hook: log the command and its (redacted) arguments, start a timer."""
    import logging
    import time

    stack = _start_stack()
    stack.set((*stack.get(), time.perf_counter()))
    logger = logging.getLogger(LOGGER_NAME)
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("Running command %r with arguments %r", command, redact(kwargs))


def logging_middleware_post(command: str, result: Any) -> None:
    """Built-in post-hook: log that the command finished and how long it took."""
    import logging
    import time

    now = time.perf_counter()
    stack = _start_stack()
    starts = stack.get()
    if starts:
        stack.set(starts[:-1])
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.isEnabledFor(logging.DEBUG):
        return
    if starts:
        elapsed_ms = (now - starts[-1]) * 1000
        logger.debug("Command %r finished in %.3f ms", command, elapsed_ms)
    else:
        logger.debug("Command %r finished", command)
