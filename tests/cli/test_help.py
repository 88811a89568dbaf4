"""C8: help lists commands with aliases; command help shows type, default, choices."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

import pytest

from registers.cli import CommandRegistry


class Env(enum.Enum):
    DEV = "dev"
    PROD = "prod"


def _app() -> CommandRegistry:
    cli = CommandRegistry(prog="app", description="Team tools.", version="1.0")

    @cli.register(ops=["-g", "--greet"], description="Greet someone by name")
    def greet(name: str) -> str:
        return name

    @cli.register(description="Deploy the service")
    def deploy(
        target: Env,
        replicas: Annotated[int, "How many copies"] = 2,
        strategy: Literal["rolling", "blue-green"] = "rolling",
        dry_run: bool = False,
    ) -> None: ...

    return cli


def test_main_help_lists_commands_with_description_and_aliases() -> None:
    result = _app().invoke(["--help"])
    assert result.exit_code == 0
    assert "Team tools." in result.stdout
    assert "greet, -g, --greet  Greet someone by name" in result.stdout
    assert "deploy" in result.stdout and "Deploy the service" in result.stdout


def test_command_help_shows_types_defaults_and_choices() -> None:
    out = _app().invoke(["deploy", "--help"]).stdout
    assert "usage: app deploy" in out
    assert "Deploy the service" in out
    assert "(choices: dev, prod)" in out
    assert "How many copies (type: int; default: 2)" in out
    assert "(choices: rolling, blue-green; default: rolling)" in out
    assert "--dry-run" in out


def test_alias_help_is_the_command_help() -> None:
    assert "usage: app greet" in _app().invoke(["-g", "--help"]).stdout


def test_help_is_plain_text() -> None:
    for argv in (["--help"], ["deploy", "--help"]):
        assert "\x1b[" not in _app().invoke(argv).stdout


def test_percent_signs_in_help_are_literal() -> None:
    cli = CommandRegistry(prog="app")

    @cli.register(description="Grow by 10%")
    def grow(rate: Annotated[float, "Rate in %"] = 0.5) -> None: ...

    result = cli.invoke(["grow", "--help"])
    assert result.exit_code == 0
    assert "Rate in % (type: float; default: 0.5)" in result.stdout


@pytest.mark.parametrize("default", [[], ()])
def test_empty_default_is_not_shown_in_help(default: object) -> None:
    cli = CommandRegistry(prog="app")

    @cli.register()
    def tag(names: Annotated[list[str], "Tags"] = default) -> None:  # type: ignore[assignment]
        ...

    result = cli.invoke(["tag", "--help"])
    assert result.exit_code == 0
    assert "Tags (type: str, repeat the option for more)" in result.stdout
    assert "default" not in result.stdout
