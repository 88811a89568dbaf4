"""CLI fuzzing: arbitrary argv never shows a traceback, and secrets never reach the logs.

One program uses every C2 annotation type (scalars, bool flags, Optional, Literal, Enum,
list/tuple, Annotated help, an injected service, an environment-backed secret). Hypothesis
feeds it argv built from its own option names, plausible values and garbage; every run must
end with exit status 0, 1 or 2, a message on stderr when it is not 0, and no traceback.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registers.cli import (
    CommandRegistry,
    DIContainer,
    MiddlewareChain,
    logging_middleware_post,
    logging_middleware_pre,
)
from registers.cli.env import Env

SECRET_PASSWORD = "pw-7f3a9c1e-SECRET"
SECRET_TOKEN = "tok-b41d88e2-SECRET"
SECRET_ENV = "env-0c5e7a13-SECRET"
SECRETS = (SECRET_PASSWORD, SECRET_TOKEN, SECRET_ENV)


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Clock:
    """A service injected by type, never on the command line."""

    def now(self) -> str:
        return "noon"


def build_app() -> CommandRegistry:
    app = CommandRegistry(prog="fuzz", version="1.0")

    @app.register(ops=["-e", "--everything"], description="Every C2 type at once.")
    def everything(
        name: str,
        count: int,
        ratio: float,
        amount: Decimal,
        path: Path,
        ident: UUID,
        day: date,
        when: datetime,
        clock: Clock,
        verbose: bool = False,
        colour_check: bool = True,
        limit: int | None = None,
        mode: Literal["fast", "slow"] = "fast",
        colour: Colour = Colour.RED,
        tags: tuple[str, ...] = (),
        note: Annotated[str, "a free-form note"] = "",
        password: str = "",
        api_token: str | None = None,
        deploy_key: Annotated[str, Env("FUZZ_DEPLOY_KEY")] = "",
    ) -> str:
        return (
            f"{name!r} {count} {ratio} {amount} {path} {ident} {day} {when} {clock.now()} "
            f"{verbose} {colour_check} {limit} {mode} {colour.value} {len(tags)} {len(note)} "
            f"secrets:{len(password)},{len(api_token or '')},{len(deploy_key)}"
        )

    @app.register(description="Numbers, nargs=+.")
    def numbers(values: list[int], scale: float = 1.0, labels: list[str] | None = None) -> str:
        return f"{len(values)} {scale} {labels}"

    return app


APP = build_app()
OPTIONS = [
    "--verbose", "--colour-check", "--no-colour-check", "--limit", "--mode", "--colour",
    "--tags", "--note", "--password", "--api-token", "--api_token", "--deploy-key",
    "--scale", "--labels", "--help", "-h", "--version", "--", "-", "--nope", "-x", "--clock",
]
COMMANDS = ["everything", "-e", "--everything", "e", "numbers", "number", "nope", "", "--help"]
VALUES = [
    "Alice", "0", "-1", "42", "9" * 400, "1.5", "-0.0", "nan", "inf", "-inf", "1e309",
    "3.14", "1_000", "0x10", "12.50", "NaN", "/tmp/x", "", " ", "../../etc/passwd",
    "00000000-0000-0000-0000-000000000007", "not-a-uuid", "2024-02-29", "2023-02-29",
    "2024-01-02T03:04:05+01:00", "24:61", "fast", "slow", "FAST", "red", "RED", "blue",
    "--", "-5", "true", "\x00", "é🦄", "'; DROP TABLE users; --", "%s%n", "{}", "$(reboot)",
    SECRET_PASSWORD, SECRET_TOKEN,
]
token = st.sampled_from(OPTIONS) | st.sampled_from(VALUES) | st.text(max_size=20)
VALID = [
    "everything", "Ada", "3", "0.5", "12.50", "/tmp/x", "00000000-0000-0000-0000-000000000007",
    "2024-02-29", "2024-01-02T03:04:05", "--password", SECRET_PASSWORD,
    "--api-token", SECRET_TOKEN, "--mode", "slow", "--colour", "green",
    "--tags", "a", "--tags", "b",  # one value per occurrence (issue 17)
]


def _mutate(edits: list[tuple[int, int, str]]) -> list[str]:
    """VALID with tokens replaced (op 0), inserted (op 1) or deleted (op 2)."""
    argv = list(VALID)
    for op, position, value in edits:
        i = position % (len(argv) + 1)
        if op == 0 and i < len(argv):
            argv[i] = value
        elif op == 1:
            argv.insert(i, value)
        elif argv and i < len(argv):
            del argv[i]
    return argv


edits = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 40), token), min_size=1, max_size=4)
argv_strategy = (
    st.tuples(st.sampled_from(COMMANDS), st.lists(token, max_size=14)).map(
        lambda t: [t[0], *t[1]]
    )
    | st.lists(token, max_size=6)
    | edits.map(_mutate)
)
not_secret = token.filter(lambda t: not any(s in t for s in SECRETS))


def container() -> DIContainer:
    services = DIContainer()
    services.register(Clock, Clock())
    return services


def logging_chain() -> MiddlewareChain:
    chain = MiddlewareChain()
    chain.add_pre(logging_middleware_pre)
    chain.add_post(logging_middleware_post)
    return chain


def test_the_program_runs_with_valid_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUZZ_DEPLOY_KEY", SECRET_ENV)
    result = APP.invoke(VALID, container=container())
    assert result.exit_code == 0, result.stderr
    assert "secrets:" in result.stdout
    assert APP.invoke(["numbers", "1", "2", "--scale", "2"]).exit_code == 0


@pytest.mark.slow
def test_fuzzed_argv_exits_0_1_or_2_with_a_message_and_never_a_traceback(
    monkeypatch: pytest.MonkeyPatch, figures: Callable[[str, object], None]
) -> None:
    monkeypatch.setenv("FUZZ_DEPLOY_KEY", SECRET_ENV)
    services = container()
    statuses: dict[int, int] = {}

    @settings(max_examples=1000, deadline=None)
    @given(argv_strategy)
    def run(argv: list[str]) -> None:
        result = APP.invoke(argv, container=services)
        statuses[result.exit_code] = statuses.get(result.exit_code, 0) + 1
        shown = result.stdout + result.stderr
        assert result.exit_code in (0, 1, 2), (argv, result.exit_code, shown[-500:])
        assert "Traceback" not in shown, (argv, shown[-800:])
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            argv, repr(result.exception)
        )
        if result.exit_code:
            assert result.stderr.strip(), (argv, "non-zero exit without a message")

    run()
    figures("argv tried", sum(statuses.values()))
    figures("exit statuses", dict(sorted(statuses.items())))


def test_secret_parameters_are_never_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    figures: Callable[[str, object], None],
) -> None:
    monkeypatch.setenv("FUZZ_DEPLOY_KEY", SECRET_ENV)
    caplog.set_level(logging.DEBUG)
    services, chain = container(), logging_chain()
    result = APP.invoke(VALID, container=services, middleware=chain)
    assert result.exit_code == 0, result.stderr
    messages = [r.getMessage() for r in caplog.records]
    assert any("***" in m for m in messages), "the logging middleware logged no arguments"
    assert any("Ada" in m for m in messages)  # ordinary values are logged

    tried = 0

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(not_secret, max_size=8))
    def run(extra: list[str]) -> None:
        nonlocal tried
        tried += 1
        APP.invoke([*VALID, *extra], container=services, middleware=chain)

    run()
    logged = [r.getMessage() for r in caplog.records]
    figures("runs with secrets", tried + 1)
    figures("log records checked", len(logged))
    assert [m for m in logged if any(s in m for s in SECRETS)] == []


def test_help_names_the_secret_environment_variable_but_not_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FUZZ_DEPLOY_KEY", SECRET_ENV)
    result = APP.invoke(["everything", "--help"], container=container())
    assert result.exit_code == 0
    assert "FUZZ_DEPLOY_KEY" in result.stdout
    assert SECRET_ENV not in result.stdout + result.stderr
