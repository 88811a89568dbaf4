"""Code written against registers 2.1.0's CLI helpers keeps working (issue 19).

Each test is one 2.1.0 usage; docs/coming-from-2.1.md lists what differs on purpose.
"""

from __future__ import annotations

import argparse
import decimal
import enum
import functools
import pathlib
from collections.abc import Callable
from typing import Annotated, Any, Literal, Optional

import pytest

from registers.cli import CommandRegistry, DIContainer, build_parser
from registers.cli.parser import COMMAND_DEST
from registers.cli.utils.reflection import EMPTY, get_params
from registers.cli.utils.typing import resolve_argparse_type


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Database:
    """A service the container injects (never on the command line)."""


def _app() -> CommandRegistry:
    cli = CommandRegistry(prog="app")

    @cli.register(ops=["-l", "--ls"])
    def list_items(
        limit: int = 10,
        verbose: bool = False,
        color: bool = True,
        tag: list[str] = [],  # noqa: B006 - a default argparse users read back
        name: str | None = None,
        where: pathlib.Path = pathlib.Path("."),
    ) -> None:
        """List things."""

    @cli.register()
    def add(title: str, priority: Literal["low", "high"] = "low") -> None:
        """Add a thing."""

    @cli.register()
    def sync(db: Database, dry_run: bool = False) -> None:
        """Uses an injected service."""

    group = cli.group("db", description="Database commands")

    @group.register()
    def migrate(steps: int = 1, fake: bool = False) -> None:
        """Migrate."""

    return cli


# --- build_parser(registry).parse_args() ---------------------------------------------


def _public(ns: argparse.Namespace) -> dict[str, Any]:
    """The namespace without registers' internal command path (COMMAND_DEST)."""
    return {k: v for k, v in vars(ns).items() if k != COMMAND_DEST}


def test_parse_args_holds_every_parameter_with_its_default() -> None:
    ns = build_parser(_app()).parse_args(["list-items"])
    assert ns.command == "list-items"
    assert ns.limit == 10
    assert ns.verbose is False
    assert ns.color is True
    assert ns.tag == []
    assert ns.name is None
    assert ns.where == pathlib.Path(".")
    assert set(_public(ns)) == {"command", "limit", "verbose", "color", "tag", "name", "where"}


def test_given_values_win_over_defaults_and_keep_their_types() -> None:
    ns = build_parser(_app()).parse_args(
        ["-l", "--limit", "3", "--verbose", "--no-color", "--tag", "a", "--tag", "b", "--name",
         "x"]
    )
    assert (ns.limit, ns.verbose, ns.color, ns.tag, ns.name) == (3, True, False, ["a", "b"], "x")


@pytest.mark.parametrize("alias", ["list-items", "list_items", "-l", "--ls", "l", "ls"])
def test_every_alias_spelling_fills_the_same_defaults(alias: str) -> None:
    ns = build_parser(_app()).parse_args([alias])
    assert ns.command == "list-items"  # the canonical name (see docs/coming-from-2.1.md)
    assert (ns.limit, ns.verbose) == (10, False)


def test_positional_and_literal_defaults() -> None:
    ns = build_parser(_app()).parse_args(["add", "Write docs"])
    assert (ns.command, ns.title, ns.priority) == ("add", "Write docs", "low")


def test_group_command_gets_its_defaults_and_nothing_of_other_commands() -> None:
    ns = build_parser(_app()).parse_args(["db", "migrate"])
    assert _public(ns) == {"command": "db migrate", "steps": 1, "fake": False}


def test_injected_parameters_are_not_in_the_namespace() -> None:
    container = DIContainer()
    container.register(Database, Database())
    ns = build_parser(_app(), container).parse_args(["sync"])
    assert _public(ns) == {"command": "sync", "dry_run": False}


def test_no_command_gives_command_none() -> None:
    assert _public(build_parser(_app()).parse_args([])) == {"command": None}


def test_defaults_false_leaves_parameters_not_given_out() -> None:
    ns = build_parser(_app(), defaults=False).parse_args(["list-items", "--limit", "2"])
    assert _public(ns) == {"command": "list-items", "limit": 2}


def test_the_dispatcher_still_uses_the_handlers_own_defaults() -> None:
    cli = CommandRegistry(prog="app")
    seen: list[Any] = []

    @cli.register()
    def run(items: list[str] = []) -> None:  # noqa: B006 - the handler's own default
        seen.append(items)

    assert cli.invoke(["run"]).exit_code == 0
    assert seen == [[]]


def test_an_empty_registry_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser(CommandRegistry(prog="empty"))
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "empty: error: no commands are registered"


def test_an_empty_registry_still_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser(CommandRegistry(prog="empty")).parse_args(["--help"])
    assert exit_info.value.code == 0
    assert "No commands are registered." in capsys.readouterr().out


def test_an_unknown_command_is_still_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser(_app()).parse_args(["lst-items"])
    assert exit_info.value.code == 2
    assert "Did you mean 'list-items'?" in capsys.readouterr().err


def test_parse_args_rejects_a_bad_value_naming_the_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser(_app()).parse_args(["list-items", "--limit", "x"])
    assert exit_info.value.code == 2
    assert "--limit" in capsys.readouterr().err


# --- resolve_argparse_type -----------------------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (int, int),
        (float, float),
        (str, str),
        (Optional[int], int),  # noqa: UP045 - the 2.1.0 spelling
        (int | None, int),
        (Annotated[float, "meta"], float),
        (Optional[Annotated[str, "meta"]], str),  # noqa: UP045
        (list[int], int),
        (tuple[float, ...], float),
        (decimal.Decimal, decimal.Decimal),
        (pathlib.Path, pathlib.Path),
        (bool, None),
        (Optional[bool], None),  # noqa: UP045
        (Database, None),
        (dict[str, int], None),
        (int | str, None),
    ],
)
def test_resolve_argparse_type_returns_the_type_itself(annotation: Any, expected: Any) -> None:
    assert resolve_argparse_type(annotation) is expected


def test_resolve_argparse_type_of_a_subclass_is_a_converter_not_the_base() -> None:
    class Port(int):
        pass

    convert = resolve_argparse_type(Port)
    assert convert is not int and convert is not None
    assert convert("8080") == 8080


@pytest.mark.parametrize("annotation", [Color, Literal["a", "b"]])
def test_resolve_argparse_type_of_choices_is_a_converter(annotation: Any) -> None:
    convert = resolve_argparse_type(annotation)
    assert callable(convert) and convert is not annotation
    with pytest.raises(argparse.ArgumentTypeError, match="invalid choice"):
        convert("nope")


def test_resolved_types_work_as_argparse_types() -> None:
    parser = argparse.ArgumentParser()
    convert = resolve_argparse_type(Optional[int])  # noqa: UP045
    assert convert is not None
    parser.add_argument("--n", type=convert)
    assert parser.parse_args(["--n", "7"]).n == 7


# --- get_params ----------------------------------------------------------------------


def _plain(name: str, count: int = 3, *, flag: bool = False, note: str | None = None) -> None:
    """Do it."""


class Tool:
    def run(self, path: pathlib.Path, retries: int = 2) -> None:
        """Run."""

    @classmethod
    def build(cls, size: int) -> None:
        """Build."""

    @staticmethod
    def check(self: int, strict: bool = True) -> None:  # "self" as a real parameter
        """Check."""


def test_get_params_items_have_name_annotation_default_has_default() -> None:
    params = get_params(_plain)
    assert [(p.name, p.annotation, p.default, p.has_default) for p in params] == [
        ("name", str, EMPTY, False),
        ("count", int, 3, True),
        ("flag", bool, False, True),
        ("note", str | None, None, True),  # a None default is a default
    ]


@pytest.mark.parametrize(
    ("func", "names"),
    [
        (Tool.run, ["path", "retries"]),
        (Tool().run, ["path", "retries"]),
        (Tool.build, ["size"]),
        (Tool.check, ["self", "strict"]),
    ],
)
def test_get_params_of_methods_skips_self(func: Callable[..., Any], names: list[str]) -> None:
    assert [p.name for p in get_params(func)] == names


def test_get_params_keeps_a_self_parameter_of_a_module_function() -> None:
    def outer() -> Callable[..., None]:
        def inner(self: int, x: int = 1) -> None: ...

        return inner

    def top(self: int) -> None: ...

    assert [p.name for p in get_params(outer())] == ["self", "x"]
    assert [p.name for p in get_params(top)] == ["self"]


def test_get_params_of_a_wrapped_method_skips_self() -> None:
    def logged(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return func(*args, **kwargs)

        return wrapper

    class Service:
        @logged
        def go(self, speed: int = 5) -> None: ...

    params = get_params(Service.go)
    assert [(p.name, p.default, p.has_default) for p in params] == [("speed", 5, True)]
