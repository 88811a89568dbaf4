"""C6: middleware order, built-in logging, per-invocation timing, redaction."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any

import pytest

from registers.cli import (
    CommandRegistry,
    MiddlewareChain,
    logging_middleware_post,
    logging_middleware_pre,
)
from registers.cli.env import Env


@pytest.fixture
def logged() -> MiddlewareChain:
    chain = MiddlewareChain()
    chain.add_pre(logging_middleware_pre)
    chain.add_post(logging_middleware_post)
    return chain


def test_hooks_run_in_insertion_order(cli: CommandRegistry) -> None:
    events: list[str] = []
    cli.register("work")(lambda: "ok")
    chain = MiddlewareChain()
    def recorder(event: str) -> Callable[[str, object], None]:
        return lambda command, payload: events.append(event)

    for name in ("a", "b"):
        chain.add_pre(recorder(f"pre-{name}"))
        chain.add_post(recorder(f"post-{name}"))
    cli.invoke(["work"], middleware=chain)
    assert events == ["pre-a", "pre-b", "post-a", "post-b"]


def test_logging_hooks_log_command_arguments_and_elapsed(
    cli: CommandRegistry, logged: MiddlewareChain, caplog: pytest.LogCaptureFixture
) -> None:
    cli.register("greet")(lambda name: f"hi {name}")
    with caplog.at_level(logging.DEBUG, logger="registers.cli"):
        cli.invoke(["greet", "Ann"], middleware=logged)
    messages = [r.getMessage() for r in caplog.records if r.name == "registers.cli"]
    assert messages[0] == "Running command 'greet' with arguments {'name': 'Ann'}"
    assert messages[1].startswith("Command 'greet' finished in ")
    assert all(r.levelno == logging.DEBUG for r in caplog.records)


@pytest.mark.parametrize(
    "name",
    ["password", "db_password", "api_secret", "token", "api_key", "credentials", "passwd",
     "pwd", "passphrase", "pin", "user_pin", "otp", "otp_code", "otpCode", "auth",
     "auth_header", "authorization", "cookie", "session_cookie", "session", "session_id",
     "dsn", "sentry_dsn"],
)
def test_secret_values_are_never_logged(
    cli: CommandRegistry, logged: MiddlewareChain, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    code = f"def login(user: str, {name}: str) -> str:\n    return 'ok'\n"
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    cli.register("login")(namespace["login"])
    with caplog.at_level(logging.DEBUG, logger="registers.cli"):
        result = cli.invoke(["login", "ann", "hunter2"], middleware=logged)
    assert result.exit_code == 0
    assert "hunter2" not in caplog.text
    assert f"'{name}': '***'" in caplog.text
    assert "'user': 'ann'" in caplog.text


def test_timing_is_per_invocation_across_threads(
    cli: CommandRegistry, logged: MiddlewareChain, caplog: pytest.LogCaptureFixture
) -> None:
    @cli.register()
    def nap(seconds: float) -> None:
        time.sleep(seconds)

    def call(seconds: float) -> None:
        from registers.cli import Dispatcher

        Dispatcher(cli, None, logged).dispatch("nap", {"seconds": seconds})

    with caplog.at_level(logging.DEBUG, logger="registers.cli"):
        threads = [threading.Thread(target=call, args=(s,)) for s in (0.2, 0.0)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    elapsed = sorted(
        float(r.getMessage().split(" in ")[1].split(" ms")[0])
        for r in caplog.records
        if "finished" in r.getMessage()
    )
    assert elapsed[0] < 100 <= elapsed[1]


def test_timing_is_correct_for_reentrant_commands(
    cli: CommandRegistry, logged: MiddlewareChain, caplog: pytest.LogCaptureFixture
) -> None:
    from registers.cli import Dispatcher

    dispatcher = Dispatcher(cli, None, logged)

    @cli.register()
    def inner() -> None: ...

    @cli.register()
    def outer() -> None:
        time.sleep(0.1)
        dispatcher.dispatch("inner", {})

    with caplog.at_level(logging.DEBUG, logger="registers.cli"):
        dispatcher.dispatch("outer", {})
    timings = {
        r.getMessage().split("'")[1]: float(r.getMessage().split(" in ")[1].split(" ms")[0])
        for r in caplog.records
        if "finished" in r.getMessage()
    }
    assert timings["inner"] < 50 <= timings["outer"]


def test_nothing_is_formatted_when_debug_is_off(
    cli: CommandRegistry, logged: MiddlewareChain, caplog: pytest.LogCaptureFixture
) -> None:
    cli.register("x")(lambda: None)
    with caplog.at_level(logging.INFO, logger="registers.cli"):
        cli.invoke(["x"], middleware=logged)
    assert not caplog.records


@pytest.mark.parametrize("name", ["spinner", "author", "footprint", "shipping", "opinion"])
def test_ordinary_names_are_logged(
    cli: CommandRegistry, logged: MiddlewareChain, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    code = f"def show({name}: str) -> str:\n    return 'ok'\n"
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    cli.register("show")(namespace["show"])
    with caplog.at_level(logging.DEBUG, logger="registers.cli"):
        cli.invoke(["show", "visible"], middleware=logged)
    assert f"'{name}': 'visible'" in caplog.text


def test_env_declared_secret_and_nested_values_and_urls_are_redacted(
    cli: CommandRegistry, logged: MiddlewareChain, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    @cli.register()
    def connect(
        url: str,
        account: Annotated[str, Env("APP_ACCOUNT", secret=True)],
        token: Annotated[str, Env("APP_TOKEN", secret=False)] = "public-token",
    ) -> dict[str, Any]:
        return {}

    monkeypatch.setenv("APP_ACCOUNT", "acct-9876")
    with caplog.at_level(logging.DEBUG, logger="registers.cli"):
        result = cli.invoke(["connect", "postgresql://ann:hunter2@db:5432/app"], middleware=logged)
    assert result.exit_code == 0
    assert "hunter2" not in caplog.text and "acct-9876" not in caplog.text
    assert "postgresql://ann:***@db:5432/app" in caplog.text
    assert "'account': '***'" in caplog.text
    assert "'token': 'public-token'" in caplog.text  # declared not secret


def test_redact_nested_dicts_and_lists() -> None:
    from registers.cli.middleware import redact

    data = {"config": {"password": "p", "nested": {"api_key": "k", "port": 1}},
            "items": [{"token": "t", "id": 1}], "dsns": ("mysql://u:pw@h/db",)}
    assert redact(data) == {"config": {"password": "***", "nested": {"api_key": "***",
                                                                     "port": 1}},
                            "items": [{"token": "***", "id": 1}],
                            "dsns": ("mysql://u:***@h/db",)}


@pytest.mark.parametrize(
    ("annotation", "bad"), [("int", "12ab"), ("Literal['a', 'b']", "hunter2")]
)
def test_rejected_secret_value_is_not_echoed(
    cli: CommandRegistry, annotation: str, bad: str
) -> None:
    code = (f"from typing import Literal\ndef login(pin: {annotation}) -> str:\n"
            "    return 'ok'\n")
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    cli.register("login")(namespace["login"])
    result = cli.invoke(["login", bad])
    assert result.exit_code == 2
    assert bad not in result.stderr
    assert "argument pin: invalid" in result.stderr and "***" in result.stderr


def test_help_masks_a_password_in_a_url_default(cli: CommandRegistry) -> None:
    @cli.register()
    def migrate(database: str = "postgresql://app:hunter2@db/app") -> None: ...

    out = cli.invoke(["migrate", "--help"]).stdout
    assert "hunter2" not in out and "postgresql://app:***@db/app" in out
