"""C12: defaults from environment variables."""

from __future__ import annotations

from typing import Annotated

import pytest

from registers.cli import CommandRegistry
from registers.cli.env import Env


def _app() -> CommandRegistry:
    cli = CommandRegistry(prog="app")

    @cli.register()
    def deploy(
        token: Annotated[str, Env("APP_TOKEN"), "API token"],
        region: Annotated[str, Env("APP_REGION")] = "eu",
        retries: Annotated[int, Env("APP_RETRIES")] = 1,
        verbose: Annotated[bool, Env("APP_VERBOSE")] = False,
    ) -> tuple[str, str, int, bool]:
        return (token, region, retries, verbose)

    return cli


def test_env_supplies_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_TOKEN", "s3cret")
    monkeypatch.setenv("APP_RETRIES", "4")
    monkeypatch.setenv("APP_VERBOSE", "yes")
    assert _app().invoke(["deploy"]).return_value == ("s3cret", "eu", 4, True)


def test_command_line_beats_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_REGION", "us")
    result = _app().invoke(["deploy", "--token", "t", "--region", "ap"])
    assert result.return_value == ("t", "ap", 1, False)


def test_missing_required_env_option_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP_TOKEN", raising=False)
    result = _app().invoke(["deploy"])
    assert result.exit_code == 2
    assert "the following arguments are required: --token" in result.stderr


def test_bad_env_value_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_TOKEN", "t")
    monkeypatch.setenv("APP_RETRIES", "many")
    result = _app().invoke(["deploy"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "app deploy: error: environment variable APP_RETRIES: invalid int value: 'many'",
        "Try 'app deploy --help' for help.",
    ]


def test_help_names_the_variable_never_the_secret_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_TOKEN", "s3cret")
    out = _app().invoke(["deploy", "--help"]).stdout
    assert "env: APP_TOKEN" in out
    assert "s3cret" not in out
    assert "env: APP_REGION" in out
