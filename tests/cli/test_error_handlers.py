"""Issue 17: ``@cli.error_handler`` and the built-in one-line handling of registers.db and
pydantic errors raised by a user's own command."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from registers.cli import CommandRegistry
from registers.cli.exceptions import CommandError, RegistrationError
from registers.db import database_registry


class Point(BaseModel):
    x: int
    name: str = Field(max_length=3)


@pytest.fixture
def user_model(database_url: str) -> Any:
    @database_registry(database_url)
    class Person(BaseModel):
        id: int | None = None
        name: str

    return Person


def test_require_on_a_missing_row_is_one_line_exit_1(
    cli: CommandRegistry, user_model: Any
) -> None:
    @cli.register()
    def show(key: int) -> str:
        return str(user_model.objects.require(key))

    result = cli.invoke(["show", "42"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"app show: error: no Person with id=42 in table '{user_model.objects.table_name}'"]


def test_validation_error_of_a_command_is_one_line_exit_1(cli: CommandRegistry) -> None:
    @cli.register()
    def make(x: str, name: str) -> str:
        return Point(x=x, name=name).model_dump_json()

    result = cli.invoke(["make", "abc", "toolong"])
    assert result.exit_code == 1
    assert result.stderr == (
        "app make: error: 2 validation errors for Point: x: Input should be a valid integer, "
        "unable to parse string as an integer; name: String should have at most 3 characters\n"
    )
    assert "toolong" not in result.stderr  # input values are never echoed


def test_user_handler_takes_precedence_and_sets_the_status(
    cli: CommandRegistry, user_model: Any
) -> None:
    from registers.db.exceptions import RecordNotFoundError

    @cli.error_handler(RecordNotFoundError)
    def not_found(exc: RecordNotFoundError) -> int:
        print("nothing there", file=sys.stderr)
        return 4

    @cli.register()
    def show(key: int) -> str:
        return str(user_model.objects.require(key))

    result = cli.invoke(["show", "1"])
    assert (result.exit_code, result.stderr) == (4, "nothing there\n")


def test_handler_returning_none_exits_1(cli: CommandRegistry) -> None:
    @cli.error_handler(KeyError, LookupError)
    def lookup(exc: LookupError) -> None:
        print(f"missing {exc}", file=sys.stderr)

    @cli.register()
    def boom() -> None:
        raise KeyError("k")

    result = cli.invoke(["boom"])
    assert (result.exit_code, result.stderr) == (1, "missing 'k'\n")


def test_most_specific_handler_wins_and_group_handlers_come_first(cli: CommandRegistry) -> None:
    seen: list[str] = []

    def record(label: str, status: int) -> Callable[[BaseException], int]:
        def handler(exc: BaseException) -> int:
            seen.append(label)
            return status

        return handler

    cli.error_handler(Exception)(record("root Exception", 1))
    cli.error_handler(LookupError)(record("root LookupError", 2))
    ops = cli.group("ops")
    ops.error_handler(KeyError)(record("group KeyError", 3))

    @cli.register()
    def top() -> None:
        raise KeyError("k")

    @ops.register()
    def inner() -> None:
        raise KeyError("k")

    @ops.register()
    def other() -> None:
        raise ValueError("v")

    assert cli.invoke(["top"]).exit_code == 2
    assert cli.invoke(["ops", "inner"]).exit_code == 3
    assert cli.invoke(["ops", "other"]).exit_code == 1
    assert seen == ["root LookupError", "group KeyError", "root Exception"]


def test_user_exception_handler_replaces_the_builtin_one(cli: CommandRegistry) -> None:
    cli.error_handler(Exception)(lambda exc: print("custom", file=sys.stderr) or 9)

    @cli.register()
    def make() -> None:
        Point(x="no", name="a")

    result = cli.invoke(["make"])
    assert (result.exit_code, result.stderr) == (9, "custom\n")


def test_unhandled_exceptions_still_propagate(cli: CommandRegistry) -> None:
    @cli.register()
    def boom() -> None:
        raise RuntimeError("bug")

    result = cli.invoke(["boom"])
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)
    with pytest.raises(RuntimeError):
        cli.run(["boom"])


def test_handlers_travel_with_merge(cli: CommandRegistry) -> None:
    plugin = CommandRegistry()
    plugin.error_handler(ZeroDivisionError)(lambda exc: 5)

    @plugin.register()
    def div() -> float:
        return 1 / 0

    cli.merge(plugin)
    assert cli.invoke(["div"]).exit_code == 5


@pytest.mark.parametrize("bad", [(), ("KeyError",), (int,)])
def test_error_handler_needs_exception_classes(cli: CommandRegistry, bad: tuple[Any, ...]) -> None:
    with pytest.raises(RegistrationError, match="exception classes"):
        cli.error_handler(*bad)


def test_command_error_is_prefixed_with_the_program_and_command(cli: CommandRegistry) -> None:
    group = cli.group("db")

    @group.register()
    def check() -> None:
        raise CommandError("first problem", "second\nproblem", exit_code=2)

    result = cli.invoke(["db", "check"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "app db check: error: first problem",
        "app db check: error: second problem",
        "Try 'app db check --help' for help.",
    ]


def test_builtin_handling_as_a_process_and_without_importing_pydantic_early(
    tmp_path: Path,
) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        "import sys\n"
        "from registers.cli import CommandRegistry\n"
        "cli = CommandRegistry(prog='app')\n"
        "@cli.register()\n"
        "def fine() -> str:\n"
        "    return ','.join(m for m in ('pydantic', 'sqlalchemy') if m in sys.modules)\n"
        "@cli.register()\n"
        "def bad() -> None:\n"
        "    from pydantic import BaseModel\n"
        "    class M(BaseModel):\n"
        "        n: int\n"
        "    M(n='x')\n"
        "cli.run()\n"
    )
    fine = subprocess.run([sys.executable, str(script), "fine"], capture_output=True, text=True)
    assert (fine.returncode, fine.stdout) == (0, "\n")
    bad = subprocess.run([sys.executable, str(script), "bad"], capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr == ("app bad: error: 1 validation error for M: n: Input should be a "
                          "valid integer, unable to parse string as an integer\n")
