"""C13: CommandRegistry.single(func): a program that is one command, no command word."""

from __future__ import annotations

from typing import Annotated

import pytest

from registers.cli import CommandRegistry, Option
from registers.cli.exceptions import RegistrationError


def greet(name: str, times: Annotated[int, Option("-n")] = 1, shout: bool = False) -> str:
    """Greet someone.

    Args:
        name: Who to greet.
        times: How many greetings.
    """
    text = " ".join([f"Hello, {name}!"] * times)
    return text.upper() if shout else text


@pytest.fixture
def app() -> CommandRegistry:
    return CommandRegistry.single(greet, prog="greet", version="2.0")


@pytest.mark.parametrize(("argv", "out"), [
    ("Ann", "Hello, Ann!"),
    ("Ann -n 2", "Hello, Ann! Hello, Ann!"),
    ("--shout Ann", "HELLO, ANN!"),
    # a word that is also a command-like name is just the argument
    ("greet", "Hello, greet!"),
])
def test_arguments_follow_the_program_name(app: CommandRegistry, argv: str, out: str) -> None:
    result = app.invoke(argv)
    assert (result.exit_code, result.stdout) == (0, out + "\n"), result.stderr


def test_help_is_the_commands_help(app: CommandRegistry) -> None:
    out = app.invoke("--help").stdout
    assert out.startswith("usage: greet [-h] [--version] [-n INT] [--shout] name")
    assert "Greet someone." in out and "Who to greet. (type: str)" in out
    assert "commands:" not in out and "--completion" not in out


def test_version(app: CommandRegistry) -> None:
    assert app.invoke("--version").stdout == "greet 2.0\n"


def test_missing_and_extra_arguments_are_usage_errors(app: CommandRegistry) -> None:
    missing = app.invoke("")
    try_line = "Try 'greet --help' for help.\n"
    assert (missing.exit_code, missing.stderr) == (
        2, "greet: error: the following arguments are required: name\n" + try_line)
    extra = app.invoke("Ann Bob")
    assert (extra.exit_code, extra.stderr) == (
        2, "greet: error: unrecognized arguments: Bob\n" + try_line)


def test_a_command_without_arguments_runs_with_none(tmp_path: object) -> None:
    app = CommandRegistry.single(lambda: "ran", prog="tool")
    assert app.invoke([]).stdout == "ran\n"


def test_confirm_and_exclusive_work_on_a_single_command() -> None:
    def wipe(json: bool = False, csv: bool = False) -> str:
        return "wiped"

    app = CommandRegistry.single(wipe, prog="wipe", confirm="Wipe it all?",
                                 mutually_exclusive=[("json", "csv")])
    assert app.invoke("--yes").stdout == "wiped\n"
    assert app.invoke("", input="n\n").stderr.endswith("wipe: aborted: not confirmed\n")
    assert app.invoke("--yes --json --csv").exit_code == 2


def test_run_in_a_script(tmp_path: object) -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(str(tmp_path)) / "tool.py"
    script.write_text(
        "from registers.cli import CommandRegistry\n"
        "def main(path: str, force: bool = False) -> str:\n"
        "    return f'{path} {force}'\n"
        "CommandRegistry.single(main).run()\n"
    )
    result = subprocess.run([sys.executable, str(script), "x.txt", "--force"],
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, "x.txt True\n")


def test_a_single_command_program_takes_no_more_commands_and_no_callback(
    app: CommandRegistry,
) -> None:
    with pytest.raises(RegistrationError, match="single command 'greet'"):
        app.register()(lambda: None)
    with pytest.raises(RegistrationError, match="single-command program has no root options"):
        app.callback()(lambda verbose=False: None)
    assert app.single_command == "greet"
