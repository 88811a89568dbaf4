"""C9: the invoke() test helper."""

from __future__ import annotations

import sys

from registers.cli import CommandRegistry


def test_invoke_captures_output_and_return_value(cli: CommandRegistry) -> None:
    @cli.register()
    def greet(name: str) -> str:
        print("working", file=sys.stderr)
        return f"Hello, {name}!"

    result = cli.invoke(["greet", "Ann"])
    assert (result.exit_code, result.stdout, result.stderr) == (0, "Hello, Ann!\n", "working\n")
    assert result.return_value == "Hello, Ann!"
    assert result.exception is None
    assert result.output == result.stdout


def test_invoke_accepts_a_command_line_string(cli: CommandRegistry) -> None:
    cli.register("echo")(lambda text: text)
    assert cli.invoke("echo 'two words'").return_value == "two words"


def test_invoke_serves_input_as_stdin(cli: CommandRegistry) -> None:
    cli.register("shout")(lambda: sys.stdin.read().upper())
    assert cli.invoke(["shout"], input="hi\n").stdout == "HI\n\n"


def test_invoke_never_raises_system_exit(cli: CommandRegistry) -> None:
    @cli.register()
    def leave(code: int) -> None:
        sys.exit(code)

    assert cli.invoke(["leave", "0"]).exit_code == 0
    result = cli.invoke(["leave", "3"])
    assert result.exit_code == 3
    assert isinstance(result.exception, SystemExit)


def test_invoke_captures_handler_exceptions(cli: CommandRegistry) -> None:
    @cli.register()
    def boom() -> None:
        raise ValueError("bad")

    result = cli.invoke(["boom"])
    assert result.exit_code == 1
    assert isinstance(result.exception, ValueError)


def test_invoke_restores_the_standard_streams(cli: CommandRegistry) -> None:
    streams = (sys.stdin, sys.stdout, sys.stderr)
    cli.register("x")(lambda: None)
    cli.invoke(["x"], input="")
    cli.invoke(["nope"])
    assert (sys.stdin, sys.stdout, sys.stderr) == streams
