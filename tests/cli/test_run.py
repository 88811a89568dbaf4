"""C3: run(): exit statuses, one-line errors, suggestions, result printing, async."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
from pydantic import BaseModel

from registers.cli import CommandRegistry, FrameworkError
from registers.cli.exceptions import UsageError


@pytest.fixture
def app(cli: CommandRegistry) -> CommandRegistry:
    @cli.register(ops=["-g", "--greet"], description="Greet someone by name")
    def greet(name: str) -> str:
        return f"Hello, {name}!"

    @cli.register(description="Say hello")
    def hello() -> str:
        return "hello"

    return cli


def test_run_returns_and_prints_the_result(
    app: CommandRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    assert app.run(["greet", "Alice"]) == "Hello, Alice!"
    assert capsys.readouterr().out == "Hello, Alice!\n"


def test_print_result_false_prints_nothing(
    app: CommandRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    assert app.run(["greet", "Alice"], print_result=False) == "Hello, Alice!"
    assert capsys.readouterr().out == ""


def test_run_reads_sys_argv_by_default(
    app: CommandRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["app", "-g", "Bob"])
    assert app.run(print_result=False) == "Hello, Bob!"


@pytest.mark.parametrize("spelling", ["greet", "-g", "--greet", "g"])
def test_alias_first_token_maps_to_the_command(app: CommandRegistry, spelling: str) -> None:
    assert app.invoke([spelling, "Alice"]).stdout == "Hello, Alice!\n"


# -- bad input: each exits 2 with one clear line ------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["helo"], "Unknown command 'helo'. Did you mean 'hello'?"),
        (["grete", "x"], "Unknown command 'grete'. Did you mean 'greet'?"),
        (["xyzzy"], "Unknown command 'xyzzy'."),
        (["--gret", "x"], "Unknown command '--gret'. Did you mean 'greet'?"),
        (["greet"], "app greet: error: the following arguments are required: name"),
        (["greet", "Alice", "Bob"], "app greet: error: unrecognized arguments: Bob"),
        (["greet", "--loud", "x"], "app greet: error: unrecognized arguments: --loud"),
    ],
)
def test_bad_input_exits_2_with_one_line(app: CommandRegistry, argv: list[str], line: str) -> None:
    result = app.invoke(argv)
    assert result.exit_code == 2
    where = "app greet" if line.startswith("app greet") else "app"
    assert result.stderr == f"{line}\nTry '{where} --help' for help.\n"
    assert result.stdout == ""


def test_no_command_prints_help_on_stderr_and_exits_2(app: CommandRegistry) -> None:
    result = app.invoke([])
    assert result.exit_code == 2
    assert result.stderr.startswith("usage: app")
    assert "greet, -g, --greet" in result.stderr
    assert result.stdout == ""


def test_empty_registry_says_so_in_one_line(cli: CommandRegistry) -> None:
    for argv in ([], ["anything"]):
        result = cli.invoke(argv)
        assert result.exit_code == 2
        assert result.stderr == "app: no commands are registered.\n"


# -- results ------------------------------------------------------------------------------------


class User(BaseModel):
    name: str
    age: int


class Point:
    def __str__(self) -> str:
        return "(1, 2)"


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        ("plain text", "plain text\n"),
        (None, ""),
        ({"a": 1, "b": [1, 2]}, '{\n  "a": 1,\n  "b": [\n    1,\n    2\n  ]\n}\n'),
        ([1, "x"], '[\n  1,\n  "x"\n]\n'),
        (User(name="Ann", age=3), '{\n  "name": "Ann",\n  "age": 3\n}\n'),
        ([User(name="Ann", age=3)], '[\n  {\n    "name": "Ann",\n    "age": 3\n  }\n]\n'),
        (42, "42\n"),
        (Point(), "(1, 2)\n"),
    ],
)
def test_results_are_printed(cli: CommandRegistry, value: Any, printed: str) -> None:
    cli.register("show")(lambda: value)
    result = cli.invoke(["show"])
    assert result.stdout == printed
    assert result.return_value is value


def test_async_handler_runs_to_completion(cli: CommandRegistry) -> None:
    events: list[str] = []

    @cli.register()
    async def fetch(url: str) -> str:
        await asyncio.sleep(0)
        events.append(url)
        return f"fetched {url}"

    result = cli.invoke(["fetch", "x"])
    assert result.stdout == "fetched x\n"
    assert result.return_value == "fetched x"
    assert events == ["x"]


async def test_async_handler_runs_even_inside_a_running_loop(cli: CommandRegistry) -> None:
    @cli.register()
    async def fetch() -> str:
        await asyncio.sleep(0)
        return "done"

    assert cli.invoke(["fetch"]).stdout == "done\n"


def test_keyboard_interrupt_exits_130_without_traceback(cli: CommandRegistry) -> None:
    @cli.register()
    def wait() -> None:
        raise KeyboardInterrupt

    result = cli.invoke(["wait"])
    assert result.exit_code == 130
    assert "Traceback" not in result.stderr


def test_framework_error_exits_1_with_its_message(cli: CommandRegistry) -> None:
    @cli.register()
    def fail() -> None:
        raise FrameworkError("Something is misconfigured.")

    result = cli.invoke(["fail"])
    assert result.exit_code == 1
    assert result.stderr == "Something is misconfigured.\n"


def test_usage_error_from_a_handler_exits_2(cli: CommandRegistry) -> None:
    @cli.register()
    def fail() -> None:
        raise UsageError("--from must come before --to")

    assert cli.invoke(["fail"]).exit_code == 2


def test_user_exceptions_propagate_from_run(cli: CommandRegistry) -> None:
    @cli.register()
    def boom() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        cli.run(["boom"])


def test_version_option(capsys: pytest.CaptureFixture[str]) -> None:
    cli = CommandRegistry(prog="app", version="1.2.3")
    cli.register("x")(lambda: None)
    with pytest.raises(SystemExit) as caught:
        cli.run(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out == "app 1.2.3\n"


def test_no_version_option_without_version(app: CommandRegistry) -> None:
    assert "--version" not in app.invoke(["--help"]).stdout


def test_description_is_shown_in_help() -> None:
    cli = CommandRegistry(prog="app", description="Tools for the team.")
    cli.register("x")(lambda: None)
    assert "Tools for the team." in cli.invoke(["--help"]).stdout
