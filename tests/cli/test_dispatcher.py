"""C4: binding order, missing values, async dispatch with hooks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from registers.cli import (
    CommandRegistry,
    DependencyNotFoundError,
    DIContainer,
    Dispatcher,
    MiddlewareChain,
    UnknownCommandError,
)


class Clock:
    def __init__(self, now: str = "noon") -> None:
        self.now = now


def test_args_first_then_container_then_default(cli: CommandRegistry) -> None:
    @cli.register()
    def report(title: str, clock: Clock, pages: int = 1) -> Any:
        return (title, clock.now, pages)

    container = DIContainer()
    container.register(Clock, Clock("dawn"))
    dispatcher = Dispatcher(cli, container)
    assert dispatcher.dispatch("report", {"title": "Q3"}) == ("Q3", "dawn", 1)
    given = Clock("dusk")
    assert dispatcher.dispatch("report", {"title": "Q3", "clock": given, "pages": 2}) == (
        "Q3",
        "dusk",
        2,
    )


def test_unknown_keys_in_args_are_ignored(cli: CommandRegistry) -> None:
    cli.register("one")(lambda a=1: a)
    assert Dispatcher(cli, DIContainer()).dispatch("one", {"a": 5, "other": 0}) == 5


def test_dispatch_accepts_aliases(cli: CommandRegistry) -> None:
    cli.register("greet", ops=["-g"])(lambda: "hi")
    assert Dispatcher(cli, DIContainer()).dispatch("-g", {}) == "hi"


def test_dispatch_unknown_command_raises(cli: CommandRegistry) -> None:
    with pytest.raises(UnknownCommandError):
        Dispatcher(cli, DIContainer()).dispatch("nope", {})


def test_missing_service_names_parameter_and_type(cli: CommandRegistry) -> None:
    @cli.register()
    def seed(count: int, clock: Clock) -> None: ...

    with pytest.raises(DependencyNotFoundError) as caught:
        Dispatcher(cli, DIContainer()).dispatch("seed", {"count": 1})
    assert "'clock'" in str(caught.value) and "Clock" in str(caught.value)
    assert caught.value.parameter == "clock"
    assert caught.value.type is Clock


def test_missing_argument_names_parameter_and_type(cli: CommandRegistry) -> None:
    @cli.register()
    def seed(count: int) -> None: ...

    with pytest.raises(DependencyNotFoundError, match="'count' of type int"):
        Dispatcher(cli, None).dispatch("seed", {})


def test_sync_dispatch_runs_hooks_in_order(cli: CommandRegistry) -> None:
    events: list[str] = []
    def work() -> str:
        events.append("handler")
        return "done"

    cli.register("work")(work)
    chain = MiddlewareChain()
    chain.add_pre(lambda c, k: events.append(f"pre1:{c}"))
    chain.add_pre(lambda c, k: events.append("pre2"))
    chain.add_post(lambda c, r: events.append(f"post:{r}"))
    assert Dispatcher(cli, DIContainer(), chain).dispatch("work", {}) == "done"
    assert events == ["pre1:work", "pre2", "handler", "post:done"]


async def test_async_dispatch_returns_an_awaitable_running_hooks_in_order(
    cli: CommandRegistry,
) -> None:
    events: list[str] = []

    @cli.register()
    async def fetch(url: str) -> str:
        await asyncio.sleep(0)
        events.append("handler")
        return url

    chain = MiddlewareChain()
    chain.add_pre(lambda c, k: events.append(f"pre:{k['url']}"))
    chain.add_post(lambda c, r: events.append(f"post:{r}"))
    pending = Dispatcher(cli, DIContainer(), chain).dispatch("fetch", {"url": "u"})
    assert events == []  # nothing runs until awaited
    assert await pending == "u"
    assert events == ["pre:u", "handler", "post:u"]


def test_pre_hook_that_raises_stops_the_command(cli: CommandRegistry) -> None:
    ran: list[bool] = []
    cli.register("work")(lambda: ran.append(True))
    chain = MiddlewareChain()

    def deny(command: str, kwargs: dict[str, Any]) -> None:
        raise PermissionError("denied")

    chain.add_pre(deny)
    with pytest.raises(PermissionError):
        Dispatcher(cli, DIContainer(), chain).dispatch("work", {})
    assert ran == []


def test_positional_only_parameters_are_passed_positionally(cli: CommandRegistry) -> None:
    def add(a: int, b: int, /) -> int:
        return a + b

    cli.register()(add)
    assert Dispatcher(cli, DIContainer()).dispatch("add", {"a": 1, "b": 2}) == 3


def test_decorated_handler_keeps_its_signature(cli: CommandRegistry) -> None:
    import functools
    from collections.abc import Callable

    def logged(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return ("logged", func(*args, **kwargs))

        return wrapper

    @cli.register()
    @logged
    def deploy(env: str, replicas: int = 1) -> Any:
        return (env, replicas)

    assert cli.invoke(["deploy", "prod", "--replicas", "2"]).return_value == (
        "logged",
        ("prod", 2),
    )
