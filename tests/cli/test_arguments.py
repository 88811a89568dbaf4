"""C2: every row of the annotation table, each with its bad-value case."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Optional
from uuid import UUID

import pytest

from registers.cli import CommandRegistry, DIContainer


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Service:
    pass


def _registry(handler: Callable[..., Any]) -> CommandRegistry:
    cli = CommandRegistry(prog="app")
    cli.register("cmd")(handler)
    return cli


def _value(annotation: Any) -> Callable[..., Any]:
    def cmd(value: Any) -> Any:
        return value

    cmd.__annotations__ = {"value": annotation}  # a closure variable: set it evaluated
    return cmd


UUID_TEXT = "12345678-1234-5678-1234-567812345678"

# (annotation, good input, expected value, bad input, fragment of the error)
POSITIONAL_ROWS = [
    (str, "Alice", "Alice", None, None),
    (int, "12", 12, "twelve", "invalid int value: 'twelve'"),
    (float, "1.5", 1.5, "x", "invalid float value: 'x'"),
    (Decimal, "1.10", Decimal("1.10"), "abc", "invalid Decimal value: 'abc'"),
    (Path, "/tmp/x", Path("/tmp/x"), None, None),
    (UUID, UUID_TEXT, UUID(UUID_TEXT), "not-a-uuid", "invalid UUID value: 'not-a-uuid'"),
    (date, "2024-05-01", date(2024, 5, 1), "2024-13-01", "invalid date value: '2024-13-01'"),
    (datetime, "2024-05-01T12:30", datetime(2024, 5, 1, 12, 30), "soon", "invalid datetime"),
    (Color, "green", Color.GREEN, "blue", "invalid choice: 'blue' (choose from red, green)"),
    (Level, "HIGH", Level.HIGH, "MID", "invalid choice: 'MID' (choose from LOW, HIGH)"),
    (Literal["fast", "slow"], "slow", "slow", "medium", "invalid choice: 'medium'"),
    (Literal[1, 2], "2", 2, "3", "invalid choice: '3'"),
    (Annotated[int, "How many"], "3", 3, "x", "invalid int value: 'x'"),
]


@pytest.mark.parametrize(("annotation", "text", "expected", "bad", "fragment"), POSITIONAL_ROWS)
def test_positional_is_converted(
    annotation: Any, text: str, expected: Any, bad: str | None, fragment: str | None
) -> None:
    result = _registry(_value(annotation)).invoke(["cmd", text])
    assert result.exit_code == 0, result.stderr
    assert result.return_value == expected
    assert type(result.return_value) is type(expected)


@pytest.mark.parametrize(
    ("annotation", "text", "expected", "bad", "fragment"),
    [row for row in POSITIONAL_ROWS if row[3] is not None],
)
def test_bad_positional_value_is_a_usage_error_naming_the_argument(
    annotation: Any, text: str, expected: Any, bad: str, fragment: str
) -> None:
    result = _registry(_value(annotation)).invoke(["cmd", bad])
    assert result.exit_code == 2
    assert result.stderr.startswith("app cmd: error: argument value: ")
    assert fragment in result.stderr
    assert result.stderr.splitlines()[1:] == ["Try 'app cmd --help' for help."]
    assert "Traceback" not in result.stderr


def test_missing_positional_is_a_usage_error() -> None:
    result = _registry(_value(int)).invoke(["cmd"])
    assert result.exit_code == 2
    assert result.stderr == (
        "app cmd: error: the following arguments are required: value\n"
        "Try 'app cmd --help' for help.\n"
    )


def test_unannotated_parameter_is_a_string() -> None:
    def cmd(value):  # type: ignore[no-untyped-def]
        return value

    assert _registry(cmd).invoke(["cmd", "7"]).return_value == "7"


def test_unannotated_default_gives_its_type() -> None:
    def cmd(count=3):  # type: ignore[no-untyped-def]
        return count

    assert _registry(cmd).invoke(["cmd", "--count", "5"]).return_value == 5


# -- bool ------------------------------------------------------------------------------------


def _flag(verbose: bool = False) -> bool:
    return verbose


def _true_flag(cache: bool = True) -> bool:
    return cache


@pytest.mark.parametrize(
    ("handler", "argv", "expected"),
    [
        (_flag, [], False),
        (_flag, ["--verbose"], True),
        (_true_flag, [], True),
        (_true_flag, ["--cache"], True),
        (_true_flag, ["--no-cache"], False),
    ],
)
def test_bool_is_a_flag(handler: Callable[..., Any], argv: list[str], expected: bool) -> None:
    assert _registry(handler).invoke(["cmd", *argv]).return_value is expected


def test_bool_without_default_is_a_false_flag() -> None:
    def cmd(force: bool) -> bool:
        return force

    assert _registry(cmd).invoke(["cmd"]).return_value is False
    assert _registry(cmd).invoke(["cmd", "--force"]).return_value is True


def test_false_flag_has_no_negative_form() -> None:
    result = _registry(_flag).invoke(["cmd", "--no-verbose"])
    assert result.exit_code == 2
    assert "unrecognized arguments: --no-verbose" in result.stderr


def test_flag_does_not_take_a_value() -> None:
    result = _registry(_flag).invoke(["cmd", "--verbose=yes"])
    assert result.exit_code == 2
    assert "argument --verbose: ignored explicit argument 'yes'" in result.stderr


# -- Optional and defaulted parameters ---------------------------------------------------------


def _optional(output: Optional[str] = None) -> Any:  # noqa: UP045 - the row under test
    return output


def _pipe_optional(output: str | None) -> Any:
    return output


def _defaulted(pages: int = 10) -> int:
    return pages


def _dry(dry_run: Optional[int] = None) -> Any:  # noqa: UP045
    return dry_run


@pytest.mark.parametrize(
    ("handler", "argv", "expected"),
    [
        (_optional, [], None),
        (_optional, ["--output", "./reports"], "./reports"),
        (_optional, ["--output=./r"], "./r"),
        (_pipe_optional, [], None),
        (_pipe_optional, ["--output", "x"], "x"),
        (_defaulted, [], 10),
        (_defaulted, ["--pages", "12"], 12),
        (_dry, ["--dry-run", "1"], 1),
        (_dry, ["--dry_run", "2"], 2),
        (_dry, ["--dry_run=3"], 3),
    ],
)
def test_optional_or_defaulted_is_an_option(
    handler: Callable[..., Any], argv: list[str], expected: Any
) -> None:
    result = _registry(handler).invoke(["cmd", *argv])
    assert result.exit_code == 0, result.stderr
    assert result.return_value == expected


def test_bad_option_value_is_a_usage_error_naming_the_option() -> None:
    result = _registry(_defaulted).invoke(["cmd", "--pages", "many"])
    assert result.exit_code == 2
    assert result.stderr == (
        "app cmd: error: argument --pages: invalid int value: 'many'\n"
        "Try 'app cmd --help' for help.\n"
    )


def test_option_without_value_is_a_usage_error() -> None:
    result = _registry(_defaulted).invoke(["cmd", "--pages"])
    assert result.exit_code == 2
    assert "argument --pages: expected one argument" in result.stderr


def test_default_is_shown_in_help() -> None:
    assert "(type: int; default: 10)" in _registry(_defaulted).invoke(["cmd", "--help"]).stdout


# -- Literal and Enum choices --------------------------------------------------------------------


def test_enum_option_gives_the_member() -> None:
    def cmd(color: Color = Color.RED) -> Color:
        return color

    cli = _registry(cmd)
    assert cli.invoke(["cmd"]).return_value is Color.RED
    assert cli.invoke(["cmd", "--color", "green"]).return_value is Color.GREEN
    assert cli.invoke(["cmd", "--color", "GREEN"]).return_value is Color.GREEN
    bad = cli.invoke(["cmd", "--color", "pink"])
    assert bad.exit_code == 2
    assert "argument --color: invalid choice: 'pink' (choose from red, green)" in bad.stderr


def test_choices_are_listed_in_help() -> None:
    def cmd(mode: Literal["fast", "slow"] = "fast", color: Color = Color.RED) -> None: ...

    out = _registry(cmd).invoke(["cmd", "--help"]).stdout
    assert "choices: fast, slow; default: fast" in out
    assert "choices: red, green; default: red" in out


# -- list and tuple -----------------------------------------------------------------------------


def test_list_positional_takes_one_or_more() -> None:
    def cmd(numbers: list[int]) -> list[int]:
        return numbers

    cli = _registry(cmd)
    assert cli.invoke(["cmd", "1", "2", "3"]).return_value == [1, 2, 3]
    missing = cli.invoke(["cmd"])
    assert missing.exit_code == 2
    assert "required: numbers" in missing.stderr
    bad = cli.invoke(["cmd", "1", "x"])
    assert bad.exit_code == 2
    assert "argument numbers: invalid int value: 'x'" in bad.stderr


def test_tuple_positional_gives_a_tuple() -> None:
    def cmd(paths: tuple[Path, ...]) -> tuple[Path, ...]:
        return paths

    assert _registry(cmd).invoke(["cmd", "a", "b"]).return_value == (Path("a"), Path("b"))


def test_fixed_tuple_takes_exactly_that_many() -> None:
    def cmd(point: tuple[int, int]) -> tuple[int, int]:
        return point

    cli = _registry(cmd)
    assert cli.invoke(["cmd", "1", "2"]).return_value == (1, 2)
    assert cli.invoke(["cmd", "1"]).exit_code == 2


def test_defaulted_list_is_a_repeatable_option() -> None:
    def cmd(tag: list[str] = []) -> list[str]:  # noqa: B006 - never mutated
        return tag

    cli = _registry(cmd)
    assert cli.invoke(["cmd"]).return_value == []
    assert cli.invoke(["cmd", "--tag", "a", "--tag", "b", "--tag", "c"]).return_value == [
        "a", "b", "c"]
    bad = cli.invoke(["cmd", "--tag"])
    assert bad.exit_code == 2
    assert "argument --tag" in bad.stderr


def test_bad_item_in_list_option_names_the_option() -> None:
    def cmd(ids: Optional[list[int]] = None) -> Any:  # noqa: UP045
        return ids

    result = _registry(cmd).invoke(["cmd", "--ids", "1", "--ids", "two"])
    assert result.exit_code == 2
    assert "argument --ids: invalid int value: 'two'" in result.stderr


# -- Annotated and docstring help -----------------------------------------------------------------


def test_annotated_help_text_is_shown() -> None:
    def cmd(count: Annotated[int, "How many records"]) -> int:
        return count

    out = _registry(cmd).invoke(["cmd", "--help"]).stdout
    assert "How many records (type: int)" in out


def test_docstring_args_section_gives_help() -> None:
    def cmd(name: str, times: int = 1) -> None:
        """Greet.

        Args:
            name (str): Who to greet.
            times: How often,
                at most ten.
        """

    out = _registry(cmd).invoke(["cmd", "--help"]).stdout
    assert "Who to greet. (type: str)" in out
    assert "How often, at most ten. (type: int; default: 1)" in out


# -- injected classes ---------------------------------------------------------------------------


def test_class_parameter_is_injected_never_on_the_command_line() -> None:
    def cmd(count: int, service: Service) -> Any:
        return (count, service)

    container = DIContainer()
    service = Service()
    container.register(Service, service)
    cli = _registry(cmd)
    assert cli.invoke(["cmd", "3"], container=container).return_value == (3, service)
    assert "service" not in cli.invoke(["cmd", "--help"]).stdout
    extra = cli.invoke(["cmd", "3", "x"], container=container)
    assert extra.exit_code == 2


def test_cli_type_registered_in_container_is_injected() -> None:
    def cmd(root: Path) -> Path:
        return root

    container = DIContainer()
    container.register(Path, Path("/srv"))
    assert _registry(cmd).invoke(["cmd"], container=container).return_value == Path("/srv")


def test_missing_service_is_a_framework_error() -> None:
    def cmd(service: Service) -> None: ...

    result = _registry(cmd).invoke(["cmd"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Cannot run command 'cmd': no service registered for parameter 'service' "
        "of type Service.\n"
    )


def test_optional_service_defaults_to_none() -> None:
    def cmd(service: Optional[Service] = None) -> Any:  # noqa: UP045
        return service

    assert _registry(cmd).invoke(["cmd"]).return_value is None


def test_string_annotations_are_evaluated() -> None:
    def cmd(count: int, when: date) -> Any:
        return (count, when)

    assert _registry(cmd).invoke(["cmd", "1", "2024-01-01"]).return_value == (1, date(2024, 1, 1))


def test_keyword_only_and_positional_only_parameters() -> None:
    def cmd(a: int, /, b: int, *, c: int = 0) -> Any:
        return (a, b, c)

    assert _registry(cmd).invoke(["cmd", "1", "2", "--c", "3"]).return_value == (1, 2, 3)
