"""C1: registration, aliases, look-up, merging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from registers.cli import CommandRegistry, DuplicateCommandError, UnknownCommandError
from registers.cli.exceptions import RegistrationError
from registers.cli.registry import CommandEntry


def test_register_returns_function_unchanged(cli: CommandRegistry) -> None:
    def greet(name: str) -> str:
        return name

    assert cli.register()(greet) is greet


def test_default_name_turns_underscores_into_dashes(cli: CommandRegistry) -> None:
    @cli.register()
    def create_report() -> None: ...

    assert cli.get("create-report").name == "create-report"


def test_name_may_be_positional(cli: CommandRegistry) -> None:
    @cli.register("hi", description="Say hi")
    def greet() -> None: ...

    assert cli.get("hi").handler is greet


def test_bare_decorator_registers(cli: CommandRegistry) -> None:
    @cli.register
    def ping() -> str:
        return "pong"

    assert cli.has("ping")


@pytest.mark.parametrize("spelling", ["greet", "-g", "--greet", "g", "--g", "-greet"])
def test_alias_in_any_spelling_resolves(cli: CommandRegistry, spelling: str) -> None:
    @cli.register(ops=["-g", "--greet"], name="greet")
    def greet(name: str) -> str:
        return name

    assert cli.get(spelling).name == "greet"


def test_entry_is_a_tuple_of_name_handler_help_description_ops(cli: CommandRegistry) -> None:
    @cli.register("greet", description="Greet someone", ops=["-g"])
    def greet() -> None: ...

    entry = cli.get("greet")
    assert isinstance(entry, CommandEntry)
    assert tuple(entry) == ("greet", greet, "Greet someone", "Greet someone", ("-g",))
    name, handler, help_text, description, ops = entry
    assert (name, handler, help_text, description, ops) == tuple(entry)


def test_help_text_and_description_default_to_each_other(cli: CommandRegistry) -> None:
    @cli.register(help_text="Short")
    def one() -> None: ...

    @cli.register(description="Long")
    def two() -> None: ...

    assert cli.get("one").description == "Short"
    assert cli.get("two").help_text == "Long"


def test_docstring_summary_is_the_default_description(cli: CommandRegistry) -> None:
    @cli.register()
    def sync() -> None:
        """Sync the database.

        Longer text.
        """

    assert cli.get("sync").help_text == "Sync the database."


@pytest.mark.parametrize(
    ("first", "second", "word"),
    [
        ({"name": "greet"}, {"name": "greet"}, "greet"),
        ({"name": "greet", "ops": ["-g"]}, {"name": "go", "ops": ["g"]}, "g"),
        ({"name": "greet", "ops": ["--gr"]}, {"name": "gr"}, "gr"),
        ({"name": "greet"}, {"name": "other", "ops": ["--greet"]}, "--greet"),
    ],
)
def test_collision_raises_naming_both_commands(
    cli: CommandRegistry, first: dict[str, Any], second: dict[str, Any], word: str
) -> None:
    cli.register(**first)(lambda: None)
    with pytest.raises(DuplicateCommandError) as caught:
        cli.register(**second)(lambda: None)
    message = str(caught.value)
    assert first["name"] in message
    assert second["name"] in message
    assert word in message


def test_failed_registration_leaves_registry_unchanged(cli: CommandRegistry) -> None:
    cli.register("greet", ops=["-g"])(lambda: None)
    with pytest.raises(DuplicateCommandError):
        cli.register("other", ops=["-o", "-g"])(lambda: None)
    assert not cli.has("other")
    assert not cli.has("o")


def test_get_unknown_raises_with_suggestion(cli: CommandRegistry) -> None:
    cli.register("hello")(lambda: None)
    with pytest.raises(UnknownCommandError) as caught:
        cli.get("helo")
    assert caught.value.suggestion == "hello"
    assert str(caught.value) == "Unknown command 'helo'. Did you mean 'hello'?"


def test_has_all_len(cli: CommandRegistry) -> None:
    cli.register("a", ops=["-x"])(lambda: None)
    cli.register("b")(lambda: None)
    assert cli.has("a") and cli.has("-x") and not cli.has("c")
    assert list(cli.all()) == ["a", "b"]
    assert len(cli) == 2
    assert "a" in cli


def test_merge_copies_commands_and_aliases(cli: CommandRegistry) -> None:
    other = CommandRegistry()
    other.register("export", ops=["-e"])(lambda: "x")
    cli.merge(other)
    assert cli.get("-e").name == "export"


def test_merge_collision_raises_unless_override(cli: CommandRegistry) -> None:
    cli.register("export", ops=["-e"])(lambda: "old")
    other = CommandRegistry()
    other.register("export", ops=["-e"])(lambda: "new")
    with pytest.raises(DuplicateCommandError):
        cli.merge(other)
    cli.merge(other, allow_override=True)
    assert cli.get("-e").handler() == "new"
    assert len(cli) == 1


def test_list_commands_prints_names_aliases_and_summaries(
    cli: CommandRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.register("greet", ops=["-g", "--greet"], description="Greet someone by name")(
        lambda: None
    )
    cli.list_commands()
    assert "greet, -g, --greet  Greet someone by name" in capsys.readouterr().out


def _star_args(*names: str) -> None: ...


def _star_kwargs(**options: str) -> None: ...


def _unmappable(mapping: dict[str, int]) -> None: ...


def _union(value: int | str) -> None: ...



@pytest.mark.parametrize(
    ("handler", "fragment"),
    [
        (_star_args, "*names"),
        (_star_kwargs, "**options"),
        (_unmappable, "'mapping'"),
        (_union, "'value'"),
    ],
)
def test_unmappable_signature_fails_at_registration(
    cli: CommandRegistry, handler: Callable[..., Any], fragment: str
) -> None:
    with pytest.raises(RegistrationError) as caught:
        cli.register("cmd")(handler)
    assert fragment in str(caught.value)
    assert "cmd" in str(caught.value)


def test_string_annotation_that_cannot_be_evaluated_fails_at_registration(
    cli: CommandRegistry,
) -> None:
    def handler(value: NoSuchType) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(RegistrationError, match="NoSuchType"):
        cli.register("cmd")(handler)


@pytest.mark.parametrize("alias", ["-h", "--help", "--version", "--completion", "two words", ""])
def test_reserved_or_invalid_alias_is_rejected(cli: CommandRegistry, alias: str) -> None:
    with pytest.raises(RegistrationError):
        cli.register("cmd", ops=[alias])(lambda: None)


def test_parameter_named_command_is_an_ordinary_parameter(cli: CommandRegistry) -> None:
    @cli.register()
    def run(command: str, *, shell: str = "sh") -> str:
        return f"{shell} -c {command}"

    assert cli.invoke(["run", "ls", "--shell", "bash"]).stdout == "bash -c ls\n"
