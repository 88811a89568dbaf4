"""``Dispatcher``: bind arguments and services to a handler, run middleware, call it.

Each parameter is filled from the parsed arguments first, then from the container (by
annotation), then from its default. An ``async def`` handler makes ``dispatch`` return an
awaitable that runs the pre-hooks, the handler and the post-hooks in order. A generator
handler (``def`` or ``async def`` with ``yield``) makes it return a generator (an async
generator) of the items; the post-hooks run when it is exhausted, with the list of items.
"""

from __future__ import annotations

from .exceptions import DependencyNotFoundError
from .signature import SERVICE
from .utils.reflection import EMPTY

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping
    from typing import Any

    from .container import DIContainer
    from .middleware import MiddlewareChain
    from .registry import CommandEntry, CommandRegistry
    from .signature import CommandParam

__all__ = ["Dispatcher", "is_awaitable", "run_awaitable"]


def is_awaitable(value: object) -> bool:
    """Whether ``value`` must be awaited (coroutines, tasks, futures)."""
    return hasattr(value, "__await__") and not isinstance(value, type)


def run_awaitable(awaitable: Awaitable[Any]) -> Any:
    """Run ``awaitable`` to completion from synchronous code and return its result.

    Uses :func:`asyncio.run`; when called while an event loop is already running in this
    thread (e.g. ``invoke()`` from an async test), a private loop runs in a worker thread.
    """
    import asyncio

    async def main() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    return _run_in_thread(main)


def _run_in_thread(main: Any) -> Any:
    import asyncio
    import contextvars
    import threading

    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["value"] = context.run(asyncio.run, main())
        except BaseException as exc:  # re-raised in the calling thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="registers-cli-async")
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _is_generator(value: object) -> bool:
    import types

    return isinstance(value, types.GeneratorType)


def _in_context(context: Any, items: Iterator[Any]) -> Iterator[Any]:
    """Iterate ``items`` inside ``context`` (where the pre-hooks ran)."""
    while True:
        try:
            item = context.run(next, items)
        except StopIteration:
            return
        yield item


def _type_label(param: CommandParam) -> str:
    annotation = param.info.annotation
    return getattr(annotation, "__name__", None) or str(annotation)


class Dispatcher:
    """Call registered handlers with their arguments and services.

    Args:
        registry: Where commands are looked up (names, aliases and group paths).
        container: Services injected by parameter annotation.
        middleware: Hooks run around every command.

    Example:
        >>> from registers.cli import CommandRegistry, DIContainer
        >>> cli = CommandRegistry()
        >>> @cli.register()
        ... def add(a: int, b: int = 2) -> int:
        ...     return a + b
        >>> Dispatcher(cli, DIContainer()).dispatch("add", {"a": 1})
        3
    """

    __slots__ = ("container", "middleware", "registry")

    def __init__(
        self,
        registry: CommandRegistry,
        container: DIContainer | None = None,
        middleware: MiddlewareChain | None = None,
    ) -> None:
        self.registry = registry
        self.container = container
        self.middleware = middleware

    def bind(self, entry: CommandEntry, args: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments for ``entry``'s handler.

        Keys of ``args`` that are not parameters of the handler are ignored, so a whole
        ``vars(namespace)`` can be passed.

        Raises:
            DependencyNotFoundError: A parameter is not in ``args``, cannot be resolved from
                the container and has no default.
        """
        bound: dict[str, Any] = {}
        if self.middleware:  # hooks learn which values are secret (Env(..., secret=True))
            from .middleware import BoundArguments

            bound = BoundArguments(secrets={p.name: p.secret for p in entry.params})
        for param in entry.params:
            if param.name in args:
                bound[param.name] = args[param.name]
            elif self._resolvable(param):
                assert self.container is not None
                bound[param.name] = self.container.resolve(param.info.annotation)
            elif param.default is not EMPTY:
                bound[param.name] = param.default
            else:
                raise self._missing(entry, param)
        return bound

    def _resolvable(self, param: CommandParam) -> bool:
        annotation = param.info.annotation
        return (
            self.container is not None
            and isinstance(annotation, type)
            and self.container.has(annotation)
        )

    def _missing(self, entry: CommandEntry, param: CommandParam) -> DependencyNotFoundError:
        label = _type_label(param)
        if param.role == SERVICE:
            text = (f"Cannot run command '{entry.path}': no service registered for parameter "
                    f"'{param.name}' of type {label}.")
        else:
            text = (f"Cannot run command '{entry.path}': no value for parameter "
                    f"'{param.name}' of type {label}.")
        return DependencyNotFoundError(text, parameter=param.name, type=param.info.annotation)

    def dispatch(self, command: str, args: Mapping[str, Any]) -> Any:
        """Run ``command`` (a name, alias or ``"group command"`` path) with ``args``.

        Returns:
            The handler's result; for an ``async def`` handler, an awaitable of it.

        Raises:
            UnknownCommandError: No such command.
            DependencyNotFoundError: A parameter could not be filled.
        """
        entry = self.registry.get(command)
        if entry.is_async:
            return self._dispatch_async(entry, args)
        if getattr(entry, "is_async_gen", False):
            return self._dispatch_async_gen(entry, args)
        if self.middleware:
            # a fresh context per invocation: hook state never leaks between commands
            import contextvars

            context = contextvars.copy_context()
            result = context.run(self._dispatch_sync, entry, args)
            if _is_generator(result):
                return _in_context(context, result)
            return result
        return self._dispatch_sync(entry, args)

    def call(self, entry: CommandEntry, kwargs: dict[str, Any]) -> Any:
        """Call ``entry``'s handler with bound ``kwargs`` (positional-only ones by position)."""
        if not any(p.positional_only for p in entry.params):
            return entry.handler(**kwargs)
        rest = dict(kwargs)
        positional = [rest.pop(p.name) for p in entry.params if p.positional_only]
        return entry.handler(*positional, **rest)

    def _dispatch_sync(self, entry: CommandEntry, args: Mapping[str, Any]) -> Any:
        kwargs = self.bind(entry, args)
        if self.middleware is not None:
            self.middleware.run_pre(entry.path, kwargs)
        result = self.call(entry, kwargs)
        if is_awaitable(result):  # a sync wrapper around a coroutine function
            return self._finish(entry, result)
        if self.middleware is not None:
            if _is_generator(result):
                return self._stream(entry, result)
            self.middleware.run_post(entry.path, result)
        return result

    def _stream(self, entry: CommandEntry, items: Iterator[Any]) -> Iterator[Any]:
        seen = []
        for item in items:
            seen.append(item)
            yield item
        assert self.middleware is not None
        self.middleware.run_post(entry.path, seen)

    async def _dispatch_async_gen(
        self, entry: CommandEntry, args: Mapping[str, Any]
    ) -> AsyncIterator[Any]:
        kwargs = self.bind(entry, args)
        if self.middleware is not None:
            self.middleware.run_pre(entry.path, kwargs)
        seen = []
        async for item in self.call(entry, kwargs):
            seen.append(item)
            yield item
        if self.middleware is not None:
            self.middleware.run_post(entry.path, seen)

    async def _finish(self, entry: CommandEntry, pending: Awaitable[Any]) -> Any:
        result = await pending
        if self.middleware is not None:
            self.middleware.run_post(entry.path, result)
        return result

    async def _dispatch_async(self, entry: CommandEntry, args: Mapping[str, Any]) -> Any:
        kwargs = self.bind(entry, args)
        if self.middleware is not None:
            self.middleware.run_pre(entry.path, kwargs)
        result = await self.call(entry, kwargs)
        if self.middleware is not None:
            self.middleware.run_post(entry.path, result)
        return result
