"""``MiddlewareChain``: ordered pre/post hooks around every command, plus built-in logging.

Pre-hooks are called as ``hook(command, kwargs)`` with the bound arguments before the
handler runs (a pre-hook that raises stops the command); post-hooks as
``hook(command, result)`` after it returns. Both run in insertion order.

The built-in :func:`logging_middleware_pre` / :func:`logging_middleware_post` log at DEBUG
on the ``registers.cli`` logger. Their timing state lives in a context variable holding a
stack, so concurrent threads, asyncio tasks and re-entrant (nested) commands each measure
their own invocation. Values of secret parameters are logged as ``***``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from contextvars import ContextVar
    from typing import Any

    PreHook = Callable[[str, dict[str, Any]], Any]
    PostHook = Callable[[str, Any], Any]

__all__ = [
    "LOGGER_NAME",
    "MiddlewareChain",
    "declare_secrets",
    "is_secret_name",
    "logging_middleware_post",
    "logging_middleware_pre",
    "redact",
]

LOGGER_NAME = "registers.cli"
REDACTED = "***"
SECRET_WORDS = ("password", "secret", "token", "key", "credential")


def is_secret_name(name: str) -> bool:
    """Whether a parameter called ``name`` holds a secret (its value is never shown)."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def redact(kwargs: Mapping[str, Any], secrets: Iterable[str] | None = None) -> dict[str, Any]:
    """A copy of ``kwargs`` with the values of secret parameters replaced by ``***``.

    Secret are parameters whose names say so (:func:`is_secret_name`), those in
    ``secrets``, and, while a command runs, the parameters it declared secret
    (``Env(..., secret=True)``, ``Prompt(..., hide_input=True)``).
    """
    declared = frozenset(secrets) if secrets is not None else _declared_secrets()
    return {k: REDACTED if k in declared or is_secret_name(k) else v for k, v in kwargs.items()}


_secrets: ContextVar[frozenset[str]] | None = None


def _secret_var() -> ContextVar[frozenset[str]]:
    global _secrets
    if _secrets is None:
        from contextvars import ContextVar

        _secrets = ContextVar("registers_cli_secret_params", default=frozenset())
    return _secrets


def _declared_secrets() -> frozenset[str]:
    return _secret_var().get() if _secrets is not None else frozenset()


def declare_secrets(names: Iterable[str]) -> None:
    """Mark ``names`` secret for :func:`redact` in the current context (the dispatcher
    calls this with the running command's secret parameters before the pre-hooks)."""
    _secret_var().set(frozenset(names))


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
